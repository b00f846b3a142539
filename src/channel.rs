//! The seam between the pipeline and the places people talk to us.
//!
//! A channel brings messages in through `Pipeline::accept` (stored, then
//! the quiet timers restart) and takes replies out by
//! implementing [`Channel`]. The WhatsApp Cloud API and the web chat are the
//! two today. Another WhatsApp provider (WAHA, Fonnte) replaces the Cloud
//! API's `Channel` for [`ChannelKind::WhatsApp`]; a new place to talk adds a
//! [`ChannelKind`] and a field in [`Channels`].

use crate::domain::{ChannelKind, Source};
use crate::store::Recipient;
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("channel is not configured: {0}")]
    NotConfigured(&'static str),
    /// Retrying cannot help (outside the 24-hour window, blocked, bad token).
    #[error("rejected (code {code:?}): {title}")]
    Permanent { code: Option<i64>, title: String },
    /// Still failing after every retry.
    #[error("gave up after {attempts} attempts (code {code:?}): {title}")]
    Exhausted { attempts: u32, code: Option<i64>, title: String },
}

impl SendError {
    pub fn code(&self) -> Option<i64> {
        match self {
            SendError::NotConfigured(_) => None,
            SendError::Permanent { code, .. } | SendError::Exhausted { code, .. } => *code,
        }
    }

    /// A short label for metrics and the database.
    pub fn title(&self) -> String {
        match self {
            SendError::NotConfigured(what) => format!("not configured: {what}"),
            SendError::Permanent { title, .. } | SendError::Exhausted { title, .. } => title.clone(),
        }
    }
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// Sends one part of the reply to turn `turn_id` and returns the
    /// channel's id for the message.
    async fn send_text(&self, to: &Recipient, turn_id: &str, body: &str) -> Result<String, SendError>;

    /// Tells the person we read their message and, with `typing`, that we
    /// are writing. Best effort: callers log a failure and carry on.
    async fn mark_read(&self, to: &Recipient, message_id: &str, typing: bool) -> Result<(), SendError>;

    /// Every part of the reply is out. Channels that can show where an
    /// answer came from do it now; WhatsApp has nowhere to put them.
    async fn reply_complete(&self, _to: &Recipient, _turn_id: &str, _sources: &[Source]) {}
}

/// One channel per [`ChannelKind`]; the pipeline answers each person on the
/// channel they wrote on.
#[derive(Clone)]
pub struct Channels {
    pub whatsapp: Arc<dyn Channel>,
    pub web: Arc<dyn Channel>,
}

impl Channels {
    pub fn for_kind(&self, kind: ChannelKind) -> &Arc<dyn Channel> {
        match kind {
            ChannelKind::WhatsApp => &self.whatsapp,
            ChannelKind::Web => &self.web,
        }
    }
}
