//! Sending through Fonnte's `POST /send`, its answers classified for the
//! outbox the way the Cloud API's are.

use super::device::DeviceStatus;
use crate::channels::{file_part, send_once, Answer, Channel, Connection, SendError};
use crate::config::FonnteSettings;
use crate::domain::{OutboundMedia, Recipient, UploadedFile};
use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// How long it waits when the quota or the package ran out. That needs the
/// owner to top up, which takes longer than a retry cycle; the message is
/// still kept (not dropped as permanent) so that answers written during the
/// gap go out once the owner pays, until the outbox's own deadline.
const QUOTA_PAUSE: Duration = Duration::from_secs(15 * 60);

pub struct Fonnte {
    http: reqwest::Client,
    send_url: String,
    token: Option<SecretString>,
    device: DeviceStatus,
}

#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    status: bool,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    requestid: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl Fonnte {
    pub fn new(settings: &FonnteSettings) -> Result<Self, reqwest::Error> {
        let api = settings.api_url.trim_end_matches('/');
        let http = reqwest::Client::builder().timeout(settings.send_timeout).build()?;
        Ok(Self {
            device: DeviceStatus::new(http.clone(), format!("{api}/device"), settings.token.clone()),
            http,
            send_url: format!("{api}/send"),
            token: settings.token.clone(),
        })
    }
}

impl Fonnte {
    /// One POST to Fonnte's send endpoint with the device token: the
    /// message (or a file's caption) and, for a file, its address and name.
    async fn send_form(&self, to: &Recipient, body: &str, file: Option<&OutboundMedia>) -> Result<String, SendError> {
        let Some(token) = &self.token else { return Err(SendError::NotConfigured("FONNTE_TOKEN")) };
        let Recipient::Phone(phone) = to else {
            return Err(SendError::Permanent { code: None, title: "not a WhatsApp phone number".into() });
        };
        // Our numbers are international already; countryCode 0 stops Fonnte
        // from rewriting a leading zero with Indonesia's 62.
        let mut fields = vec![("target", phone.expose()), ("message", body), ("countryCode", "0")];
        fields.extend(file.and_then(OutboundMedia::url).map(|url| ("url", url)));
        fields.extend(file.and_then(OutboundMedia::filename).map(|name| ("filename", name)));
        let request = self.http.post(&self.send_url).header("Authorization", token.expose_secret());
        let request = match file.and_then(OutboundMedia::upload) {
            // Fonnte takes an uploaded file as the `file` part of a form.
            Some(upload) => request.multipart(upload_form(fields, upload, file.and_then(OutboundMedia::filename))?),
            None => {
                let form = serde_urlencoded::to_string(fields).map_err(|error| SendError::Permanent {
                    code: None,
                    title: format!("cannot encode the message: {error}"),
                })?;
                request.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(form)
            }
        };
        let Answer { status, retry_after, body: text } = send_once(request).await?;
        if status.as_u16() == 429 || status.is_server_error() {
            let title = format!("Fonnte HTTP {}", status.as_u16());
            return Err(SendError::Transient {
                code: Some(status.as_u16().into()),
                title,
                retry_after,
                whole_channel: true,
            });
        }
        let Ok(answer) = serde_json::from_str::<SendAnswer>(&text) else {
            return Err(if status.is_success() {
                SendError::Ambiguous("Fonnte accepted the request with an unreadable answer".into())
            } else {
                SendError::Permanent {
                    code: Some(status.as_u16().into()),
                    title: format!("Fonnte HTTP {}", status.as_u16()),
                }
            });
        };
        if answer.status {
            return sent_id(&answer);
        }
        Err(classify(answer.reason.or(answer.detail).unwrap_or_else(|| format!("Fonnte HTTP {}", status.as_u16()))))
    }
}

#[async_trait]
impl Channel for Fonnte {
    async fn send_text(&self, to: &Recipient, _turn_id: Option<&str>, body: &str) -> Result<String, SendError> {
        self.send_form(to, body, None).await
    }

    /// Fonnte fetches a file from its address, or takes it uploaded, and
    /// picks the kind itself.
    async fn send_media(&self, to: &Recipient, media: &OutboundMedia, caption: &str) -> Result<String, SendError> {
        self.send_form(to, caption, Some(media)).await
    }

    /// Fonnte has no read receipt for one message (only the device-wide
    /// "autoread" setting) and shows "typing…" only as part of a send, so
    /// there is nothing to do here.
    async fn mark_read(&self, _to: &Recipient, _message_id: &str, _typing: bool) -> Result<(), SendError> {
        Ok(())
    }

    async fn connection(&self) -> Option<Connection> {
        Some(self.device.current().await)
    }
}

/// `fields` and the uploaded file as a multipart form.
fn upload_form(
    fields: Vec<(&'static str, &str)>,
    upload: &UploadedFile,
    filename: Option<&str>,
) -> Result<reqwest::multipart::Form, SendError> {
    let form = fields
        .into_iter()
        .fold(reqwest::multipart::Form::new(), |form, (name, value)| form.text(name, value.to_owned()));
    Ok(form.part("file", file_part(upload, filename)?))
}

/// The id delivery statuses will refer to: Fonnte's message id, or, when
/// an answer lacks it, its request id (the message is queued either way).
fn sent_id(answer: &SendAnswer) -> Result<String, SendError> {
    let first = |value: &Option<Value>| match value {
        Some(Value::Array(ids)) => ids.first().and_then(scalar),
        Some(other) => scalar(other),
        None => None,
    };
    if let Some(id) = first(&answer.id) {
        return Ok(format!("fonnte:{id}"));
    }
    match first(&answer.requestid) {
        Some(request) => Ok(format!("fonnte:request:{request}")),
        None => Err(SendError::Ambiguous("Fonnte accepted the message without an id".into())),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() && text.len() <= 128 => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Fonnte answers refusals with HTTP 200, `status: false` and a sentence;
/// the sentence decides. A device that is offline, or a quota that ran
/// out, stops every message, so the whole channel waits; a bad token or a
/// bad number will not get better by retrying.
fn classify(reason: String) -> SendError {
    let lower = reason.to_ascii_lowercase();
    let title = format!("Fonnte: {reason}");
    // An offline phone usually comes back within minutes (battery,
    // network): the outbox's own backoff, a second doubling up to five
    // minutes, fits that.
    if lower.contains("disconnect") || lower.contains("not connected") || lower.contains("offline") {
        return SendError::Transient { code: None, title, retry_after: None, whole_channel: true };
    }
    if lower.contains("quota") || lower.contains("expired") || lower.contains("package") {
        return SendError::Transient { code: None, title, retry_after: Some(QUOTA_PAUSE), whole_channel: true };
    }
    SendError::Permanent { code: None, title }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(name: &str) -> SendAnswer {
        let path = format!("{}/tests/fixtures/fonnte/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn refusal(name: &str) -> SendError {
        let answer = answer(name);
        assert!(!answer.status);
        classify(answer.reason.unwrap())
    }

    #[test]
    fn a_queued_message_gives_fonntes_id() {
        assert_eq!(sent_id(&answer("send_ok.json")), Ok("fonnte:80367170".into()));
        let numeric: SendAnswer = serde_json::from_str(r#"{"status":true,"id":[80367171]}"#).unwrap();
        assert_eq!(sent_id(&numeric), Ok("fonnte:80367171".into()));
        let request_only: SendAnswer = serde_json::from_str(r#"{"status":true,"requestid":42}"#).unwrap();
        assert_eq!(sent_id(&request_only), Ok("fonnte:request:42".into()));
        let bare: SendAnswer = serde_json::from_str(r#"{"status":true}"#).unwrap();
        assert!(matches!(sent_id(&bare), Err(SendError::Ambiguous(_))));
    }

    #[test]
    fn an_offline_device_or_spent_quota_holds_the_whole_channel() {
        let offline = refusal("send_disconnected.json");
        assert!(matches!(offline, SendError::Transient { whole_channel: true, retry_after: None, .. }), "{offline:?}");
        let quota = refusal("send_quota.json");
        assert!(
            matches!(quota, SendError::Transient { whole_channel: true, retry_after: Some(pause), .. } if pause == QUOTA_PAUSE),
            "{quota:?}"
        );
    }

    #[test]
    fn a_bad_token_or_number_is_permanent() {
        assert!(matches!(refusal("send_token_invalid.json"), SendError::Permanent { .. }));
        let target = refusal("send_target_invalid.json");
        assert_eq!(target.title(), "Fonnte: target invalid");
        assert!(matches!(target, SendError::Permanent { .. }));
    }
}
