//! The places people talk to us, one adapter folder each.
//!
//! An adapter reads what its provider delivers into domain values (the HTTP
//! handler in `api` hands them to `Pipeline::accept`: stored, then the quiet
//! timers restart) and takes replies out by implementing [`Channel`].
//! [`cloud_api`] is Meta's WhatsApp Cloud API, [`fonnte`] the Fonnte
//! gateway, [`web`] the web chat; every WhatsApp provider shapes its text
//! with [`format`].

mod answer;
pub mod cloud_api;
mod connection;
mod file_part;
pub mod fonnte;
pub mod format;
mod loose;
pub mod waha;
pub mod web;

pub use answer::{send_once, Answer};
pub use connection::{CachedConnection, Connection, ConnectionState};
pub use file_part::file_part;

use crate::domain::{AccountName, ChannelKind, OutboundMedia, Recipient, Source};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a message did not go out, in the terms the outbox decides on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("channel is not configured: {0}")]
    NotConfigured(&'static str),
    /// Retrying cannot help (outside the 24-hour window, blocked, bad token).
    #[error("rejected (code {code:?}): {title}")]
    Permanent { code: Option<i64>, title: String },
    /// Not sent; worth trying again. `whole_channel` when the channel as a
    /// whole is down or throttled, so every message to it should wait, not
    /// only this one (a per-person limit such as 131056 is not).
    #[error("not sent, will retry (code {code:?}): {title}")]
    Transient { code: Option<i64>, title: String, retry_after: Option<Duration>, whole_channel: bool },
    /// The request went out but no answer came back: the message may have
    /// been sent. Resending blindly could deliver it twice.
    #[error("no answer after sending: {0}")]
    Ambiguous(String),
}

impl SendError {
    pub fn code(&self) -> Option<i64> {
        match self {
            SendError::NotConfigured(_) | SendError::Ambiguous(_) => None,
            SendError::Permanent { code, .. } | SendError::Transient { code, .. } => *code,
        }
    }

    /// A short label for metrics and the database.
    pub fn title(&self) -> String {
        match self {
            SendError::NotConfigured(what) => format!("not configured: {what}"),
            SendError::Ambiguous(title) => title.clone(),
            SendError::Permanent { title, .. } | SendError::Transient { title, .. } => title.clone(),
        }
    }
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// Makes one attempt to send `body` and returns the channel's id for the
    /// message. Retrying is the outbox's job, never the channel's: only the
    /// outbox knows whether an earlier attempt may have gone out.
    async fn send_text(&self, to: &Recipient, turn_id: Option<&str>, body: &str) -> Result<String, SendError>;

    /// Makes one attempt to send a file by its address, with `caption`
    /// (may be empty). Channels that cannot carry files refuse for good.
    async fn send_media(&self, _to: &Recipient, _media: &OutboundMedia, _caption: &str) -> Result<String, SendError> {
        Err(SendError::Permanent { code: None, title: "this channel cannot send files".into() })
    }

    /// Makes one attempt to send an approved template (Graph's `template`
    /// object: name, language, components). Providers without templates
    /// send `text`, what it renders to, with the header's file if any.
    async fn send_template(
        &self,
        to: &Recipient,
        _template: &serde_json::Value,
        text: &str,
        media: Option<&OutboundMedia>,
    ) -> Result<String, SendError> {
        match media {
            Some(media) => self.send_media(to, media, text).await,
            None => self.send_text(to, None, text).await,
        }
    }

    /// Tells the person we read their message and, with `typing`, that we
    /// are writing. Best effort: callers log a failure and carry on.
    async fn mark_read(&self, to: &Recipient, message_id: &str, typing: bool) -> Result<(), SendError>;

    /// Every part of the reply is out. Channels that can show where an
    /// answer came from do it now; WhatsApp has nowhere to put them.
    async fn reply_complete(&self, _to: &Recipient, _turn_id: &str, _sources: &[Source]) {}

    /// What the provider says of the number (linked, waiting for a QR scan,
    /// out of quota), for the status page. `None` for channels that have no
    /// such state. Implementations cache the answer: the status page is
    /// public, and a poll of it must not become a request to the provider.
    async fn connection(&self) -> Option<Connection> {
        None
    }
}

/// The WhatsApp number of each account, and the web chat; the pipeline
/// answers each person on the channel and number they wrote to.
#[derive(Clone)]
pub struct Channels {
    whatsapp: BTreeMap<AccountName, Arc<dyn Channel>>,
    web: Arc<dyn Channel>,
}

impl Channels {
    pub fn new(whatsapp: impl IntoIterator<Item = (AccountName, Arc<dyn Channel>)>, web: Arc<dyn Channel>) -> Self {
        Self { whatsapp: whatsapp.into_iter().collect(), web }
    }

    /// The channel that reaches `recipient` from `account`. An account
    /// taken out of the configuration gets one that refuses every send,
    /// so its people's replies fail where an operator sees them.
    pub fn to(&self, recipient: &Recipient, account: &AccountName) -> Arc<dyn Channel> {
        match recipient.channel() {
            ChannelKind::WhatsApp => self.whatsapp.get(account).cloned().unwrap_or_else(|| Arc::new(RemovedAccount)),
            ChannelKind::Web => Arc::clone(&self.web),
        }
    }

    /// Each account's WhatsApp channel, the default account first.
    pub fn whatsapp(&self) -> impl Iterator<Item = (&AccountName, &Arc<dyn Channel>)> {
        self.whatsapp.iter()
    }
}

/// Where the people of an account that is no longer configured are sent.
struct RemovedAccount;

#[async_trait]
impl Channel for RemovedAccount {
    async fn send_text(&self, _to: &Recipient, _turn_id: Option<&str>, _body: &str) -> Result<String, SendError> {
        Err(SendError::NotConfigured("the WhatsApp account this person wrote to"))
    }

    async fn mark_read(&self, _to: &Recipient, _message_id: &str, _typing: bool) -> Result<(), SendError> {
        Err(SendError::NotConfigured("the WhatsApp account this person wrote to"))
    }
}
