//! WAHA (WhatsApp HTTP API, devlikeapro/waha): a self-hosted server that
//! runs WhatsApp Web for one or more numbers and speaks HTTP. Replies go
//! out through `POST /api/sendText`; events come back as webhooks (see
//! `inbound.rs`), signed with HMAC-SHA512 when the session has a key.
//!
//! The number is linked by scanning a QR code, like WhatsApp Web, so the
//! session has a state worth showing (working, waiting for a scan, ...):
//! [`Waha::connection`] reads it, cached, and the admin page can start,
//! stop and restart the session and show its QR code.

mod inbound;
mod media;
mod signature;

pub use inbound::{parse_event, EventError, OwnMessage, Scope, WahaEvent};
pub use media::WahaMedia;
pub use signature::{sign, verify, SignatureError};

use crate::channels::{send_once, Answer, CachedConnection, Channel, Connection, ConnectionState, SendError};
use crate::config::WahaSettings;
use crate::domain::{mask_middle, MediaKind, MediaSource, OutboundMedia, Recipient};
use async_trait::async_trait;
use base64::prelude::{Engine, BASE64_STANDARD};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a session state read from WAHA is shown before asking again:
/// a public status page polled by many never becomes a flood of requests.
const STATE_CACHE: Duration = Duration::from_secs(15);
/// A QR code is a small PNG; anything much larger is not one.
const MAX_QR_BYTES: usize = 512 * 1024;
/// Session control requests; sends use `WAHA_SEND_TIMEOUT_SECONDS`.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);
/// Reading the state: status requests wait for it, so a WAHA that hangs
/// must not hold them long.
const STATE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum WahaError {
    #[error("WAHA_URL is not a valid URL")]
    BadUrl,
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    #[error("WAHA could not be reached: {0}")]
    Unreachable(String),
    #[error("WAHA answered HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("WAHA's answer could not be read")]
    Unreadable,
}

/// The session control requests WAHA offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAction {
    Start,
    Stop,
    Restart,
}

impl SessionAction {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "start" => Some(Self::Start),
            "stop" => Some(Self::Stop),
            "restart" => Some(Self::Restart),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

pub struct Waha {
    /// Sends: bounded by `WAHA_SEND_TIMEOUT`.
    http: reqwest::Client,
    /// State, QR and session control.
    control: reqwest::Client,
    base: Url,
    api_key: Option<SecretString>,
    session: String,
    state: CachedConnection,
}

impl Waha {
    /// `None` without `WAHA_URL`.
    pub fn new(settings: &WahaSettings) -> Result<Option<Self>, WahaError> {
        let Some(url) = settings.url.as_deref() else { return Ok(None) };
        let base = Url::parse(url.trim()).map_err(|_| WahaError::BadUrl)?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(WahaError::BadUrl);
        }
        let client = |timeout| {
            // No redirects: the API key is a custom header, which reqwest
            // would carry to whatever host a redirect names.
            reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|error| WahaError::Client(error.to_string()))
        };
        Ok(Some(Self {
            http: client(settings.send_timeout)?,
            control: client(CONTROL_TIMEOUT)?,
            base,
            api_key: settings.api_key.clone(),
            session: settings.session.clone(),
            state: CachedConnection::new(STATE_CACHE),
        }))
    }

    /// `WAHA_URL` with `segments` appended, each percent-encoded as needed.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, client: &reqwest::Client, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = client.request(method, url);
        match &self.api_key {
            Some(key) => request.header("X-Api-Key", key.expose_secret()),
            None => request,
        }
    }

    /// The session's state, read from WAHA at most every 15 seconds; a
    /// `session.status` event or a control request sets it sooner.
    pub async fn session_state(&self) -> Connection {
        self.state.get_or_ask(|| self.ask_state()).await
    }

    async fn ask_state(&self) -> Connection {
        let (state, detail) = match self.read_session().await {
            Ok(session) => (state_of(session["status"].as_str().unwrap_or_default()), self.describe(&session)),
            Err(error) => {
                tracing::warn!(%error, "WAHA session state unavailable");
                (ConnectionState::Unknown, json!({ "session": self.session, "error": error.to_string() }))
            }
        };
        Connection::checked_now("waha", state, detail)
    }

    /// A `session.status` event: the new state is taken as WAHA says it.
    pub async fn session_changed(&self, status: &str) {
        let detail = json!({ "session": self.session, "status": status });
        self.state.remember(Connection::checked_now("waha", state_of(status), detail)).await;
    }

    async fn read_session(&self) -> Result<Value, WahaError> {
        let url = self.url(&["api", "sessions", &self.session]);
        let request = self.request(&self.control, reqwest::Method::GET, url).timeout(STATE_TIMEOUT);
        let body = checked(request.send().await.map_err(unreachable)?).await?;
        serde_json::from_slice(&body).map_err(|_| WahaError::Unreadable)
    }

    /// What the admin sees of the session. The linked number is the
    /// business's own, shown masked all the same, as everywhere.
    fn describe(&self, session: &Value) -> Value {
        let me =
            session["me"]["id"].as_str().and_then(|id| id.split('@').next()).map(|number| mask_middle(number, 4, 3));
        json!({
            "session": self.session,
            "status": session["status"],
            "me": me,
            "pushName": session["me"]["pushName"],
            "engine": session["engine"]["engine"],
        })
    }

    /// The QR code to link the number, as WAHA renders it (PNG).
    pub async fn qr_code(&self) -> Result<(Bytes, String), WahaError> {
        let url = self.url(&["api", &self.session, "auth", "qr"]);
        let request = self.request(&self.control, reqwest::Method::GET, url).header(ACCEPT, "image/png");
        let response = request.send().await.map_err(unreachable)?;
        let served = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(crate::media::essence);
        let image = checked(response).await?;
        if image.len() > MAX_QR_BYTES {
            return Err(WahaError::Unreadable);
        }
        Ok((image, served.filter(|mime| mime.starts_with("image/")).unwrap_or_else(|| "image/png".to_owned())))
    }

    /// Starts, stops or restarts the session, and answers its state after.
    pub async fn control_session(&self, action: SessionAction) -> Result<Connection, WahaError> {
        let url = self.url(&["api", "sessions", &self.session, action.as_str()]);
        let response = self.request(&self.control, reqwest::Method::POST, url).send().await.map_err(unreachable);
        let done = match response {
            Ok(response) => checked(response).await.map(|_| ()),
            Err(error) => Err(error),
        };
        // Whatever came of it, what status showed may be out of date now.
        let after = self.ask_state().await;
        self.state.remember(after.clone()).await;
        done.map(|()| after)
    }

    /// One POST to WAHA's API, its outcome classified for the outbox.
    async fn post(&self, endpoint: &str, body: &Value) -> Result<Value, SendError> {
        let url = self.url(&["api", endpoint]);
        let Answer { status, retry_after, body: text } =
            send_once(self.request(&self.http, reqwest::Method::POST, url).json(body)).await?;
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        Err(refusal(status, &text, retry_after))
    }

    fn chat_id(to: &Recipient) -> Result<String, SendError> {
        match to {
            Recipient::Phone(phone) => Ok(format!("{}@c.us", phone.expose())),
            _ => Err(SendError::Permanent { code: None, title: "WAHA sends only to phone numbers".into() }),
        }
    }
}

/// WAHA's session states: WORKING once the number is linked and online.
fn state_of(status: &str) -> ConnectionState {
    match status {
        "WORKING" => ConnectionState::Connected,
        "SCAN_QR_CODE" => ConnectionState::ScanQr,
        "STARTING" => ConnectionState::Starting,
        "STOPPED" => ConnectionState::Stopped,
        "FAILED" => ConnectionState::Failed,
        _ => ConnectionState::Unknown,
    }
}

/// The body of a 2xx answer; anything else is WAHA's refusal, with its
/// message (NestJS writes `{ statusCode, message }`).
async fn checked(response: reqwest::Response) -> Result<Bytes, WahaError> {
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return Ok(body);
    }
    Err(WahaError::Refused { status: status.as_u16(), message: error_message(&body).unwrap_or_default() })
}

fn unreachable(error: reqwest::Error) -> WahaError {
    WahaError::Unreachable(error.without_url().to_string())
}

/// WAHA's `message`, a string or (validation errors) a list of them,
/// cleaned and cut short for the database and the admin page.
fn error_message(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let message = match &body["message"] {
        Value::String(message) => message.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
        _ => return None,
    };
    let message: String = crate::domain::clean_text(&message).chars().take(200).collect();
    (!message.trim().is_empty()).then_some(message)
}

/// How a refused request counts for the outbox. The session not working
/// (WAHA answers 422 while it waits for a QR scan, starts or has failed),
/// an unknown session (404), a wrong API key (401/403), throttling (429)
/// and WAHA's own failures (5xx) hold every message until they pass, so
/// they are transient for the whole channel; any other 4xx is this
/// message's fault and retrying cannot help.
fn refusal(status: StatusCode, body: &str, retry_after: Option<Duration>) -> SendError {
    let code = Some(i64::from(status.as_u16()));
    let title = error_message(body.as_bytes()).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let whole_channel =
        status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 404 | 408 | 409 | 422 | 425 | 429);
    if whole_channel {
        let title = if status.as_u16() == 422 { format!("WAHA session not working: {title}") } else { title };
        SendError::Transient { code, title, retry_after, whole_channel: true }
    } else {
        SendError::Permanent { code, title }
    }
}

/// The id of the message `sendText` sent. WAHA answers with the engine's
/// message: WEBJS's has `id._serialized`, others a plain `id`, and NOWEB
/// the WhatsApp `key`, from which the id webhooks use is put together
/// (`true_<chat>@c.us_<key id>`).
fn sent_id(answer: &Value) -> Option<String> {
    if let Some(id) = inbound::message_id(&answer["id"]) {
        return Some(id.as_str().to_owned());
    }
    let key = &answer["key"];
    let chat = key["remoteJid"].as_str()?.replace("@s.whatsapp.net", "@c.us");
    let id = format!("{}_{chat}_{}", key["fromMe"].as_bool().unwrap_or(true), key["id"].as_str()?);
    crate::domain::WaMessageId::parse(&id).ok().map(|id| id.as_str().to_owned())
}

/// The id of what WAHA accepted. Accepted without one, which message it
/// became is unknown: the outbox waits for an ack rather than sending it
/// again.
fn accepted_id(answer: &Value) -> Result<String, SendError> {
    sent_id(answer).ok_or_else(|| SendError::Ambiguous("WAHA accepted the message without saying its id".into()))
}

#[async_trait]
impl Channel for Waha {
    async fn send_text(&self, to: &Recipient, _turn_id: Option<&str>, body: &str) -> Result<String, SendError> {
        let chat_id = Self::chat_id(to)?;
        let request = json!({ "session": self.session, "chatId": chat_id, "text": body, "linkPreview": false });
        accepted_id(&self.post("sendText", &request).await?)
    }

    /// WAHA fetches a file from its address itself; an uploaded one goes
    /// in the request, in base64.
    async fn send_media(&self, to: &Recipient, media: &OutboundMedia, caption: &str) -> Result<String, SendError> {
        let chat_id = Self::chat_id(to)?;
        let endpoint = match media.kind() {
            MediaKind::Image => "sendImage",
            MediaKind::Document => "sendFile",
            MediaKind::Video => "sendVideo",
            MediaKind::Audio => "sendVoice",
        };
        let mut file = match media.source() {
            MediaSource::Link(url) => json!({ "url": url }),
            MediaSource::Upload(upload) => {
                let Some(contents) = &upload.contents else {
                    return Err(SendError::Permanent { code: None, title: "the uploaded file was not loaded".into() });
                };
                json!({ "data": BASE64_STANDARD.encode(contents), "mimetype": upload.mime })
            }
        };
        if let Some(name) = media.filename() {
            file["filename"] = json!(name);
        }
        let mut request = json!({ "session": self.session, "chatId": chat_id, "file": file });
        if !caption.is_empty() && media.kind() != MediaKind::Audio {
            request["caption"] = json!(caption);
        }
        accepted_id(&self.post(endpoint, &request).await?)
    }

    async fn mark_read(&self, to: &Recipient, message_id: &str, typing: bool) -> Result<(), SendError> {
        let chat_id = Self::chat_id(to)?;
        let seen = json!({ "session": self.session, "chatId": chat_id, "messageIds": [message_id] });
        self.post("sendSeen", &seen).await?;
        if typing {
            self.post("startTyping", &json!({ "session": self.session, "chatId": chat_id })).await?;
        }
        Ok(())
    }

    /// WhatsApp Web keeps showing "typing…" for a while after the answer
    /// unless told to stop.
    async fn reply_complete(&self, to: &Recipient, _turn_id: &str, _sources: &[crate::domain::Source]) {
        let Ok(chat_id) = Self::chat_id(to) else { return };
        if let Err(error) = self.post("stopTyping", &json!({ "session": self.session, "chatId": chat_id })).await {
            tracing::debug!(%error, "WAHA stopTyping failed");
        }
    }

    async fn connection(&self) -> Option<Connection> {
        Some(self.session_state().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/waha");

    fn fixture(name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}.json")).unwrap()).unwrap()
    }

    #[test]
    fn the_sent_id_is_read_from_every_engine_answer() {
        assert_eq!(
            sent_id(&fixture("send_text__webjs")).as_deref(),
            Some("true_6281234567789@c.us_3EB0C0FFEE0000000001")
        );
        assert_eq!(
            sent_id(&fixture("send_text__string_id")).as_deref(),
            Some("true_6281234567789@c.us_3EB0C0FFEE0000000003")
        );
        assert_eq!(sent_id(&fixture("send_text__noweb")).as_deref(), Some("true_6281234567789@c.us_BAE5C0FFEE000001"));
        assert_eq!(sent_id(&json!({ "sent": true })), None);
        assert_eq!(sent_id(&Value::Null), None);
    }

    #[test]
    fn refusals_are_classified_for_the_outbox() {
        let not_working = std::fs::read_to_string(format!("{FIXTURES}/error__session_not_working.json")).unwrap();
        match refusal(StatusCode::UNPROCESSABLE_ENTITY, &not_working, None) {
            SendError::Transient { code: Some(422), whole_channel: true, title, .. } => {
                assert!(title.contains("Session status is not as expected"), "{title}")
            }
            other => panic!("{other:?}"),
        }
        for status in [500, 502, 503, 429, 401] {
            let error = refusal(StatusCode::from_u16(status).unwrap(), "", Some(Duration::from_secs(3)));
            assert!(matches!(error, SendError::Transient { whole_channel: true, .. }), "{status}: {error:?}");
        }
        let bad = refusal(StatusCode::BAD_REQUEST, r#"{"statusCode":400,"message":["chatId must be a string"]}"#, None);
        assert_eq!(bad, SendError::Permanent { code: Some(400), title: "chatId must be a string".into() });
    }

    #[test]
    fn session_states_map_to_connection_states() {
        assert_eq!(state_of("WORKING"), ConnectionState::Connected);
        assert_eq!(state_of("SCAN_QR_CODE"), ConnectionState::ScanQr);
        assert_eq!(state_of("STARTING"), ConnectionState::Starting);
        assert_eq!(state_of("STOPPED"), ConnectionState::Stopped);
        assert_eq!(state_of("FAILED"), ConnectionState::Failed);
        assert_eq!(state_of("SOMETHING_NEW"), ConnectionState::Unknown);
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_the_session() {
        let settings = WahaSettings {
            url: Some("https://gateway.example/waha/".into()),
            api_key: None,
            session: "toko utama".into(),
            webhook_hmac_key: None,
            groups: false,
            send_timeout: Duration::from_secs(5),
        };
        let waha = Waha::new(&settings).unwrap().unwrap();
        assert_eq!(
            waha.url(&["api", "sessions", &waha.session, "start"]).as_str(),
            "https://gateway.example/waha/api/sessions/toko%20utama/start"
        );
        let bad = WahaSettings { url: Some("not a url".into()), ..settings };
        assert!(matches!(Waha::new(&bad), Err(WahaError::BadUrl)));
    }

    #[test]
    fn only_phone_numbers_are_chats() {
        let phone = Recipient::Phone(crate::domain::PhoneNumber::parse("6281234567789").unwrap());
        assert_eq!(Waha::chat_id(&phone).unwrap(), "6281234567789@c.us");
    }
}
