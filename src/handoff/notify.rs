//! `HANDOFF_NOTIFY_URL`: when a customer asks for a person, a signed JSON
//! POST tells the team wherever they route it (a chat channel, a pager).
//! It is sent in the background, never holding up the customer's answer,
//! and retried with backoff a bounded number of times; the inbox shows the
//! waiting conversation whether or not it arrives. Notifications still
//! being retried when the process stops are not sent.

use crate::channels::cloud_api::sign;
use crate::config::NotifySettings;
use crate::domain::ChannelKind;
use crate::store::Store;
use secrecy::ExposeSecret;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Attempts per notification; with the waits doubling from
/// `NotifySettings::first_retry` (8 s) the last is about two minutes after
/// the first.
pub const ATTEMPTS: u32 = 5;
/// Notifications being sent or waiting to retry at once; more are dropped
/// (and counted) rather than piling up while the receiver is down.
const IN_FLIGHT: usize = 256;
/// Characters of the customer's words in a notification.
const MAX_TEXT_CHARS: usize = 1000;
pub const SIGNATURE_HEADER: &str = "X-Signature-256";

/// A customer asked for a person.
#[derive(Debug, Clone)]
pub struct HandoffRequested {
    pub conversation_id: i64,
    pub channel: ChannelKind,
    /// Masked: the receiver is often a chat channel many people read, and
    /// an agent replies from the inbox, which needs no number.
    pub masked_person: String,
    /// What the customer wrote when they asked.
    pub text: String,
    /// Unix ms.
    pub at: i64,
}

/// The JSON the receiver gets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    event: &'static str,
    conversation_id: i64,
    channel: &'static str,
    masked_phone: &'a str,
    name: Option<&'a str>,
    text: String,
    at: i64,
}

impl HandoffRequested {
    /// `name` is the customer's profile name, read when the notification is
    /// sent rather than carried by every turn.
    fn body(&self, name: Option<&str>) -> Vec<u8> {
        let body = Body {
            event: "handoff_requested",
            conversation_id: self.conversation_id,
            channel: self.channel.as_str(),
            masked_phone: &self.masked_person,
            name,
            text: self.text.chars().take(MAX_TEXT_CHARS).collect(),
            at: self.at,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// Sends notifications when `HANDOFF_NOTIFY_URL` is set; does nothing
/// otherwise.
#[derive(Clone)]
pub struct Notifier {
    target: Option<Arc<Target>>,
}

struct Target {
    http: reqwest::Client,
    store: Store,
    settings: NotifySettings,
    in_flight: Arc<Semaphore>,
}

/// How one attempt went.
enum Attempt {
    Delivered,
    /// The receiver is down, slow or busy: worth trying again.
    Failed(String),
    /// The receiver said no (a 4xx other than 408 and 429); asking again
    /// would get the same answer.
    Refused(u16),
}

impl Notifier {
    /// Sends nothing.
    pub fn off() -> Self {
        Self { target: None }
    }

    pub fn new(settings: Option<&NotifySettings>, store: Store) -> Result<Self, reqwest::Error> {
        let Some(settings) = settings else { return Ok(Self::off()) };
        let http = reqwest::Client::builder()
            .timeout(settings.attempt_timeout)
            // A redirect would carry the body somewhere nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let target = Target { http, store, settings: settings.clone(), in_flight };
        Ok(Self { target: Some(Arc::new(target)) })
    }

    /// Starts sending `event` and returns at once.
    pub fn handoff_requested(&self, event: &HandoffRequested) {
        let Some(target) = &self.target else { return };
        let Ok(permit) = Arc::clone(&target.in_flight).try_acquire_owned() else {
            tracing::warn!(conversation = event.conversation_id, "too many handoff notifications pending; dropped");
            count("dropped");
            return;
        };
        let (target, event) = (Arc::clone(target), event.clone());
        tokio::spawn(async move {
            let name = target.store.profile_name(event.conversation_id).await.unwrap_or_else(|error| {
                tracing::warn!(%error, "handoff notification sent without the customer's name");
                None
            });
            target.deliver(event.conversation_id, event.body(name.as_deref())).await;
            drop(permit);
        });
    }
}

impl Target {
    async fn deliver(&self, conversation: i64, body: Vec<u8>) {
        let signature = sign(self.settings.secret.expose_secret().as_bytes(), &body);
        let mut wait = self.settings.first_retry;
        for attempt in 1..=ATTEMPTS {
            match self.attempt(&body, &signature).await {
                Attempt::Delivered => return count("sent"),
                Attempt::Refused(status) => {
                    tracing::warn!(conversation, status, "the handoff notification was refused");
                    return count("refused");
                }
                Attempt::Failed(why) if attempt < ATTEMPTS => {
                    tracing::info!(conversation, attempt, "handoff notification not delivered ({why}); retrying");
                    count("retry");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Attempt::Failed(why) => {
                    tracing::warn!(conversation, "handoff notification given up after {ATTEMPTS} attempts: {why}");
                    count("gave_up");
                }
            }
        }
    }

    async fn attempt(&self, body: &[u8], signature: &str) -> Attempt {
        let sent = self
            .http
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => {
                let status = response.status();
                let worth_retrying = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                if worth_retrying {
                    Attempt::Failed(format!("HTTP {}", status.as_u16()))
                } else {
                    Attempt::Refused(status.as_u16())
                }
            }
            // Without the URL: it may hold the receiver's own secret.
            Err(error) => Attempt::Failed(error.without_url().to_string()),
        }
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("wa_handoff_notify_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_documented_fields_and_a_bounded_text() {
        let event = HandoffRequested {
            conversation_id: 7,
            channel: ChannelKind::WhatsApp,
            masked_person: "6281******789".into(),
            text: "x".repeat(5000),
            at: 1_700_000_000_000,
        };
        let body: serde_json::Value = serde_json::from_slice(&event.body(Some("Budi"))).unwrap();
        assert_eq!(body["event"], "handoff_requested");
        assert_eq!(body["conversationId"], 7);
        assert_eq!(body["channel"], "whatsapp");
        assert_eq!(body["maskedPhone"], "6281******789");
        assert_eq!(body["name"], "Budi");
        assert_eq!(body["at"], 1_700_000_000_000i64);
        assert_eq!(body["text"].as_str().unwrap().chars().count(), MAX_TEXT_CHARS);
    }
}
