use super::auth::{api_root, is_compatible_provider, messages_url, Credentials};
use super::number::{self, number_url};
use crate::channels::{file_part, send_once, Answer, CachedConnection, Channel, Connection, SendError};
use crate::config::WhatsAppSettings;
use crate::domain::{MediaKind, MediaSource, OutboundMedia, Recipient, UploadedFile};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

/// Graph error codes that mean "the platform is busy or briefly down: try
/// again later, and slow down for everyone": throttling (4, 80007, 130429)
/// and temporary failures (1, 2, 131000, 133004).
const CHANNEL_WIDE_CODES: [i64; 7] = [1, 2, 4, 80007, 130429, 131000, 133004];
/// Meta changes a number's rating at most daily; a minute old is fresh.
const STANDING_CACHED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// Too many messages to this one person (Meta's pair rate limit): only
/// their messages wait.
const PAIR_RATE_LIMIT: i64 = 131056;

pub struct CloudApi {
    http: reqwest::Client,
    messages_url: Option<String>,
    credentials: Option<Credentials>,
    /// `None` for a compatible provider: its key names the number, and it
    /// has no Graph node to ask.
    number_url: Option<String>,
    /// Where uploaded files go before a message names them.
    media_url: Option<String>,
    standing: CachedConnection,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<SentId>,
}

#[derive(Deserialize)]
struct SentId {
    id: String,
}

impl CloudApi {
    pub fn new(settings: &WhatsAppSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(settings.send_timeout).build()?,
            messages_url: messages_url(settings),
            credentials: Credentials::new(settings),
            number_url: settings
                .phone_number_id
                .as_ref()
                .filter(|_| !is_compatible_provider(settings))
                .map(|id| number_url(&api_root(settings), id)),
            media_url: media_url(settings),
            standing: CachedConnection::new(STANDING_CACHED_FOR),
        })
    }

    /// One POST to `/messages`, its outcome classified for the outbox.
    async fn post(&self, body: &Value) -> Result<Value, SendError> {
        let (Some(url), Some(credentials)) = (&self.messages_url, &self.credentials) else {
            return Err(SendError::NotConfigured("META_ACCESS_TOKEN and META_PHONE_NUMBER_ID"));
        };
        classify(send_once(credentials.apply(self.http.post(url)).json(body)).await?)
    }

    /// Uploads a file to the number's `/media`; Meta's id for it, which a
    /// message then names. An upload is not a message: one whose answer
    /// was lost is simply made again.
    async fn upload(&self, file: &UploadedFile, filename: Option<&str>) -> Result<String, SendError> {
        let (Some(url), Some(credentials)) = (&self.media_url, &self.credentials) else {
            return Err(SendError::NotConfigured("META_ACCESS_TOKEN and META_PHONE_NUMBER_ID"));
        };
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", file.mime.clone())
            .part("file", file_part(file, filename)?);
        let again = |title| SendError::Transient { code: None, title, retry_after: None, whole_channel: false };
        let answer = send_once(credentials.apply(self.http.post(url)).multipart(form)).await.and_then(classify);
        let answer = answer.map_err(|error| match error {
            SendError::Ambiguous(title) => again(title),
            other => other,
        })?;
        answer["id"].as_str().map(str::to_owned).ok_or_else(|| again("Graph API took the file without its id".into()))
    }
}

/// Graph's answer to a request, classified for the outbox.
fn classify(answer: Answer) -> Result<Value, SendError> {
    let Answer { status, retry_after, body: text } = answer;
    if status.is_success() {
        return serde_json::from_str(&text)
            .map_err(|_| SendError::Ambiguous("Graph API accepted the request with an unreadable answer".into()));
    }
    let graph = serde_json::from_str::<GraphErrorBody>(&text).ok().map(|b| b.error);
    let code = graph.as_ref().and_then(|e| e.code);
    let title = graph.and_then(|e| e.message).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let channel_wide =
        status.as_u16() == 429 || status.is_server_error() || code.is_some_and(|c| CHANNEL_WIDE_CODES.contains(&c));
    if channel_wide || code == Some(PAIR_RATE_LIMIT) {
        Err(SendError::Transient { code, title, retry_after, whole_channel: channel_wide })
    } else {
        Err(SendError::Permanent { code, title })
    }
}

/// `/media` of the number (of the key, for a compatible provider).
fn media_url(settings: &WhatsAppSettings) -> Option<String> {
    messages_url(settings).map(|url| format!("{}/media", url.trim_end_matches("/messages")))
}

/// The Cloud API addresses a person by phone number (`to`) or, for people
/// known only by username, by business-scoped user id (`recipient`).
fn address(to: &Recipient) -> Result<(&'static str, &str), SendError> {
    match to {
        Recipient::Phone(phone) => Ok(("to", phone.expose())),
        Recipient::Bsuid(bsuid) => Ok(("recipient", bsuid.expose())),
        Recipient::Web(_) => Err(SendError::Permanent { code: None, title: "not a WhatsApp recipient".into() }),
    }
}

/// The id Graph gave the message it accepted.
fn message_id(response: Value) -> Result<String, SendError> {
    serde_json::from_value::<SendResponse>(response)
        .ok()
        .and_then(|r| r.messages.into_iter().next())
        .map(|sent| sent.id)
        .ok_or_else(|| SendError::Permanent { code: None, title: "Graph API answered without a message id".into() })
}

#[async_trait]
impl Channel for CloudApi {
    async fn send_text(&self, to: &Recipient, _turn_id: Option<&str>, body: &str) -> Result<String, SendError> {
        let (field, id) = address(to)?;
        let mut request = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "text",
            "text": { "body": body, "preview_url": false },
        });
        request[field] = Value::String(id.to_owned());
        message_id(self.post(&request).await?)
    }

    /// Meta fetches a file from its address (`link`); an uploaded one is
    /// uploaded first and named by its id.
    async fn send_media(&self, to: &Recipient, media: &OutboundMedia, caption: &str) -> Result<String, SendError> {
        let (field, id) = address(to)?;
        let kind = media.kind().as_str();
        let mut file = match media.source() {
            MediaSource::Link(url) => json!({ "link": url }),
            MediaSource::Upload(upload) => json!({ "id": self.upload(upload, media.filename()).await? }),
        };
        // A voice note or audio file takes no caption.
        if !caption.is_empty() && media.kind() != MediaKind::Audio {
            file["caption"] = json!(caption);
        }
        if let Some(name) = media.filename() {
            file["filename"] = json!(name);
        }
        let mut request = json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "type": kind });
        request[kind] = file;
        request[field] = Value::String(id.to_owned());
        message_id(self.post(&request).await?)
    }

    /// Outside the 24-hour window only a template reaches the customer;
    /// Graph renders it from the approved definition, so `text` is ours.
    async fn send_template(
        &self,
        to: &Recipient,
        template: &Value,
        _text: &str,
        _media: Option<&OutboundMedia>,
    ) -> Result<String, SendError> {
        let (field, id) = address(to)?;
        let mut request = json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "type": "template", "template": template,
        });
        request[field] = Value::String(id.to_owned());
        message_id(self.post(&request).await?)
    }

    async fn mark_read(&self, _to: &Recipient, message_id: &str, typing: bool) -> Result<(), SendError> {
        let mut request = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id });
        if typing {
            request["typing_indicator"] = json!({ "type": "text" });
        }
        self.post(&request).await.map(|_| ())
    }

    async fn connection(&self) -> Option<Connection> {
        let (url, credentials) = (self.number_url.as_ref()?, self.credentials.as_ref()?);
        Some(self.standing.get_or_ask(|| number::ask(&self.http, url, credentials)).await)
    }
}
