use crate::channel::{Channel, SendError};
use crate::config::WhatsAppSettings;
use crate::store::Recipient;
use async_trait::async_trait;
use rand::Rng;
use reqwest::header::RETRY_AFTER;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Graph error codes that mean "slow down or try again": throttling
/// (4, 80007, 130429, 131056), temporary failures (1, 2, 131000, 133004).
/// Every other coded error is permanent (131047 outside the 24-hour
/// window, 131026 undeliverable, 190 expired token, 100 bad parameter ...).
const TRANSIENT_CODES: [i64; 8] = [1, 2, 4, 80007, 130429, 131000, 131056, 133004];
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

pub struct CloudApi {
    http: reqwest::Client,
    messages_url: Option<String>,
    token: Option<SecretString>,
    max_attempts: u32,
    base_delay: Duration,
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

enum Attempt {
    Done(Value),
    Retry { code: Option<i64>, title: String, wait: Option<Duration> },
    Fail(SendError),
}

impl CloudApi {
    pub fn new(settings: &WhatsAppSettings) -> Result<Self, reqwest::Error> {
        let messages_url = settings
            .phone_number_id
            .as_ref()
            .map(|id| format!("{}/{}/{}/messages", settings.graph_base, settings.graph_version, id));
        Ok(Self {
            http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?,
            messages_url,
            token: settings.access_token.clone(),
            max_attempts: settings.send_max_attempts.max(1),
            base_delay: Duration::from_millis(500),
        })
    }

    /// Posts to `/messages`, retrying throttling and server errors with
    /// bounded exponential backoff (or the server's `Retry-After`).
    async fn post(&self, body: &Value) -> Result<Value, SendError> {
        let (Some(url), Some(token)) = (&self.messages_url, &self.token) else {
            return Err(SendError::NotConfigured("META_ACCESS_TOKEN and META_PHONE_NUMBER_ID"));
        };
        let mut attempt = 1;
        loop {
            let (code, title, wait) = match self.attempt(url, token, body).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { code, title, wait } => (code, title, wait),
            };
            if attempt >= self.max_attempts {
                return Err(SendError::Exhausted { attempts: attempt, code, title });
            }
            let backoff = self.base_delay.saturating_mul(1 << (attempt - 1).min(6)).min(Duration::from_secs(8));
            let jitter = Duration::from_millis(rand::rng().random_range(0..=backoff.as_millis() as u64 / 4));
            let delay = wait.filter(|w| *w <= MAX_RETRY_AFTER).unwrap_or(backoff + jitter);
            tracing::warn!(attempt, code, delay_ms = delay.as_millis() as u64, "retrying WhatsApp send: {title}");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, url: &str, token: &SecretString, body: &Value) -> Attempt {
        let response = match self.http.post(url).bearer_auth(token.expose_secret()).json(body).send().await {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Retry { code: None, title: format!("network: {}", error.without_url()), wait: None }
            }
        };
        let status = response.status();
        let wait = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Attempt::Done(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        let graph = serde_json::from_str::<GraphErrorBody>(&text).ok().map(|b| b.error);
        let code = graph.as_ref().and_then(|e| e.code);
        let title = graph.and_then(|e| e.message).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let transient =
            status.as_u16() == 429 || status.is_server_error() || code.is_some_and(|c| TRANSIENT_CODES.contains(&c));
        if transient {
            Attempt::Retry { code, title, wait }
        } else {
            Attempt::Fail(SendError::Permanent { code, title })
        }
    }
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

#[async_trait]
impl Channel for CloudApi {
    async fn send_text(&self, to: &Recipient, _turn_id: &str, body: &str) -> Result<String, SendError> {
        let (field, id) = address(to)?;
        let mut request = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "text",
            "text": { "body": body, "preview_url": false },
        });
        request[field] = Value::String(id.to_owned());
        let response = self.post(&request).await?;
        serde_json::from_value::<SendResponse>(response)
            .ok()
            .and_then(|r| r.messages.into_iter().next())
            .map(|sent| sent.id)
            .ok_or_else(|| SendError::Permanent { code: None, title: "Graph API answered without a message id".into() })
    }

    async fn mark_read(&self, _to: &Recipient, message_id: &str, typing: bool) -> Result<(), SendError> {
        let mut request = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id });
        if typing {
            request["typing_indicator"] = json!({ "type": "text" });
        }
        self.post(&request).await.map(|_| ())
    }
}
