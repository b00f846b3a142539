//! The web chat: a channel beside WhatsApp for trying the bot in a browser
//! (or a terminal, see `wa-ai-bridge chat`). Messages come in over HTTP and
//! go through exactly the same pipeline as WhatsApp's; replies go out as
//! Server-Sent Events to the windows of that conversation. A conversation
//! belongs to the browser that started it (see [`secret`]).

mod admission;
mod client;
mod relay;
mod secret;
mod upload;

pub use admission::{Refusal, StreamSlot};
pub use client::TrustedProxies;
pub use secret::ConversationSecret;
pub use upload::{inbound_file, Upload, MAX_UPLOAD_BYTES};

use crate::channels::{Channel, SendError};
use crate::config::Settings;
use crate::domain::{now_ms, Recipient};
use crate::domain::{ConversationKey, DomainError, InboundMessage, MessageContent, PersonRef, Source, WaMessageId};
use crate::store::{Backend, Store};
use async_trait::async_trait;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::broadcast;

/// WhatsApp's own limit on a text message.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Events a slow browser may fall behind by before it must reload history.
const EVENT_BUFFER: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum WebChatError {
    #[error("the web chat is turned off (WEB_CHAT_ENABLED=false)")]
    Disabled,
    #[error("invalid phone number: {0}")]
    Phone(#[from] DomainError),
    #[error(
        "this needs the conversation's secret as `Authorization: Bearer …` (POST /api/chat/conversations starts one)"
    )]
    NoSecret,
    #[error("no such conversation; start a new one")]
    UnknownConversation,
    #[error("the message is empty")]
    EmptyText,
    #[error("the message is longer than {MAX_TEXT_CHARS} characters")]
    TooLong,
    #[error("clientId must be 1 to 64 letters, digits or dashes")]
    ClientId,
    #[error("only photos (JPEG, PNG, WebP) and voice recordings (Ogg, WebM or MP4 audio) can be sent")]
    UnsupportedFile,
    #[error("the file is larger than {} MiB", MAX_UPLOAD_BYTES / (1024 * 1024))]
    FileTooLarge,
    #[error("could not keep the file: {0}")]
    FileStore(String),
    #[error(transparent)]
    Busy(#[from] Refusal),
    #[error("could not store the message: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What an open chat window is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum ChatEvent {
    /// The bot read the messages and is writing.
    Typing,
    Message {
        id: String,
        text: String,
        at: i64,
        turn_id: String,
    },
    Sources {
        turn_id: String,
        sources: Vec<Source>,
    },
}

impl ChatEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            ChatEvent::Typing => "typing",
            ChatEvent::Message { .. } => "message",
            ChatEvent::Sources { .. } => "sources",
        }
    }

    /// The SSE data: the variant's fields as a JSON object.
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                tagged.remove(self.name()).unwrap_or_else(|| serde_json::json!({}))
            }
            _ => serde_json::json!({}),
        }
    }
}

/// A message typed into the web chat, checked before it is stored.
pub fn inbound_message(
    conversation: &ConversationKey,
    text: &str,
    client_id: &str,
) -> Result<InboundMessage, WebChatError> {
    let text = crate::domain::clean_text(text);
    let text = text.trim();
    if text.is_empty() {
        return Err(WebChatError::EmptyText);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(WebChatError::TooLong);
    }
    message_from(conversation, client_id, MessageContent::Text(text.to_owned()))
}

/// A message of the conversation with the id the browser chose.
fn message_from(
    conversation: &ConversationKey,
    client_id: &str,
    content: MessageContent,
) -> Result<InboundMessage, WebChatError> {
    let client_id_ok =
        (1..=64).contains(&client_id.len()) && client_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !client_id_ok {
        return Err(WebChatError::ClientId);
    }
    Ok(InboundMessage {
        // The browser picks the id, so a retried send is a duplicate, not a
        // second message; within its conversation only, so another
        // browser's choice never swallows it.
        id: WaMessageId::parse(&format!("{}{client_id}", stored_prefix(conversation)))
            .map_err(|_| WebChatError::ClientId)?,
        from: PersonRef::web(conversation.clone()),
        sent_at: now_ms() / 1000,
        content,
        reply_to: None,
    })
}

/// What the stored ids of a conversation's messages start with: a part of
/// its key, long enough that two conversations never share it.
fn stored_prefix(conversation: &ConversationKey) -> String {
    format!("web.{}.", &conversation.expose()[..32])
}

/// The id the browser knows a stored message by: `web.<clientId>`.
pub fn shown_id(conversation: &ConversationKey, stored: &str) -> String {
    stored
        .strip_prefix(&stored_prefix(conversation))
        .map_or_else(|| stored.to_owned(), |client_id| format!("web.{client_id}"))
}

type Windows = Arc<DashMap<String, broadcast::Sender<ChatEvent>>>;

/// The web channel: one broadcast per conversation with a window open.
#[derive(Clone)]
pub struct WebChat {
    listeners: Windows,
    admission: Arc<admission::Admission>,
    streams: admission::Streams,
    relay: relay::Relay,
}

/// An open chat window's feed; the conversation's broadcast goes when its
/// last window closes, so conversations nobody watches cost nothing.
pub struct Subscription {
    pub events: broadcast::Receiver<ChatEvent>,
    listeners: Windows,
    key: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Our own receiver is still alive here, hence "at most one".
        self.listeners.remove_if(&self.key, |_, sender| sender.receiver_count() <= 1);
    }
}

impl WebChat {
    /// The web chat of a single process: events go straight to its windows.
    pub fn new(settings: &Settings) -> Self {
        let limits = &settings.web_chat_limits;
        Self {
            listeners: Arc::default(),
            admission: Arc::new(admission::Admission::new(settings.web_chat_messages_per_minute, limits)),
            streams: admission::Streams::new(limits),
            relay: relay::Relay::Local,
        }
    }

    /// On PostgreSQL, where replicas share the work, events reach every
    /// replica's windows through the database.
    pub async fn for_store(settings: &Settings, store: &Store) -> Self {
        let mut chat = Self::new(settings);
        if store.backend() == Backend::Postgres {
            let windows = Arc::clone(&chat.listeners);
            relay::listen(&settings.database_url, move |to, event| deliver(&windows, to, event)).await;
            chat.relay = relay::Relay::Postgres(store.pool().clone());
        }
        chat
    }

    /// Whether one more message may come in now (see [`admission`]).
    pub fn admit_message(&self, conversation: &ConversationKey, from: IpAddr) -> Result<(), WebChatError> {
        Ok(self.admission.admit_message(conversation, from)?)
    }

    pub fn admit_conversation(&self, from: IpAddr) -> Result<(), WebChatError> {
        Ok(self.admission.admit_conversation(from)?)
    }

    /// A place for one more event stream from `from`, held until dropped.
    pub fn open_stream(&self, from: IpAddr) -> Result<StreamSlot, WebChatError> {
        Ok(self.streams.open(from)?)
    }

    /// Event streams open in this process.
    pub fn open_streams(&self) -> usize {
        self.streams.count()
    }

    pub fn subscribe(&self, conversation: &ConversationKey) -> Subscription {
        let key = conversation.expose().to_owned();
        let events =
            self.listeners.entry(key.clone()).or_insert_with(|| broadcast::channel(EVENT_BUFFER).0).subscribe();
        Subscription { events, listeners: Arc::clone(&self.listeners), key }
    }

    /// Conversations with a window open, in this process.
    pub fn open_windows(&self) -> usize {
        self.listeners.len()
    }

    async fn publish(&self, to: &Recipient, event: ChatEvent) {
        let Recipient::Web(conversation) = to else { return };
        match &self.relay {
            relay::Relay::Local => deliver(&self.listeners, conversation.expose(), event),
            relay::Relay::Postgres(pool) => {
                if let Err(error) = relay::notify(pool, conversation.expose(), event).await {
                    tracing::warn!(to = %conversation.masked(), %error, "web chat event not relayed; it shows on reload");
                }
            }
        }
    }
}

fn deliver(windows: &Windows, to: &str, event: ChatEvent) {
    if let Some(sender) = windows.get(to) {
        // No window open: the reply is stored and shows in history.
        let _ = sender.send(event);
    }
}

#[async_trait]
impl Channel for WebChat {
    async fn send_text(&self, to: &Recipient, turn_id: Option<&str>, body: &str) -> Result<String, SendError> {
        if !matches!(to, Recipient::Web(_)) {
            return Err(SendError::Permanent { code: None, title: "not a web chat recipient".into() });
        }
        let id = format!("web-out.{}", uuid::Uuid::new_v4());
        let turn_id = turn_id.unwrap_or_default().to_owned();
        let event = ChatEvent::Message { id: id.clone(), text: body.to_owned(), at: now_ms(), turn_id };
        self.publish(to, event).await;
        Ok(id)
    }

    async fn mark_read(&self, to: &Recipient, _message_id: &str, typing: bool) -> Result<(), SendError> {
        if typing {
            self.publish(to, ChatEvent::Typing).await;
        }
        Ok(())
    }

    async fn reply_complete(&self, to: &Recipient, turn_id: &str, sources: &[Source]) {
        self.publish(to, ChatEvent::Sources { turn_id: turn_id.to_owned(), sources: sources.to_vec() }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(n: u8) -> ConversationKey {
        ConversationKey::from_digest([n; 32])
    }

    #[test]
    fn checks_what_the_browser_sends() {
        let message = inbound_message(&conversation(1), "  halo kak ", "3f2a-11").unwrap();
        assert_eq!(shown_id(&conversation(1), message.id.as_str()), "web.3f2a-11");
        let elsewhere = inbound_message(&conversation(2), "  halo kak ", "3f2a-11").unwrap();
        assert_ne!(message.id, elsewhere.id, "a clientId counts within its conversation");
        assert_eq!(message.content, MessageContent::Text("halo kak".into()));
        assert_eq!(message.from.conversation(), Some(&conversation(1)));
        assert!(matches!(inbound_message(&conversation(1), " ", "a"), Err(WebChatError::EmptyText)));
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        assert!(matches!(inbound_message(&conversation(1), &long, "a"), Err(WebChatError::TooLong)));
        assert!(matches!(inbound_message(&conversation(1), "halo", "a b"), Err(WebChatError::ClientId)));
        assert!(matches!(inbound_message(&conversation(1), "halo", ""), Err(WebChatError::ClientId)));
    }

    #[tokio::test]
    async fn replies_reach_open_windows_and_closed_ones_are_forgotten() {
        let chat = WebChat::new(&Settings::from_lookup(|_| None).unwrap());
        let to = Recipient::Web(conversation(1));
        let mut window = chat.subscribe(&conversation(1));
        chat.mark_read(&to, "web.1", true).await.unwrap();
        let id = chat.send_text(&to, Some("turn-1"), "Halo kak!").await.unwrap();
        chat.reply_complete(&to, "turn-1", &[]).await;
        assert_eq!(window.events.recv().await.unwrap(), ChatEvent::Typing);
        let ChatEvent::Message { id: sent, text, turn_id, .. } = window.events.recv().await.unwrap() else {
            panic!("expected the reply")
        };
        assert_eq!((sent, text.as_str(), turn_id.as_str()), (id, "Halo kak!", "turn-1"));
        let sources = window.events.recv().await.unwrap();
        assert_eq!(sources.name(), "sources");
        assert_eq!(sources.data(), serde_json::json!({ "turnId": "turn-1", "sources": [] }));
        assert_eq!(chat.open_windows(), 1);
        drop(window);
        assert_eq!(chat.open_windows(), 0);
        let whatsapp = Recipient::Phone(crate::domain::PhoneNumber::parse("6281234567890").unwrap());
        assert!(chat.send_text(&whatsapp, Some("t"), "x").await.is_err(), "WhatsApp numbers are not ours");
    }
}
