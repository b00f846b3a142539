//! The seam between the pipeline and the places people talk to us. The
//! WhatsApp Cloud API is the first channel; a web chat or another WhatsApp
//! provider plugs in by implementing [`Channel`].

use crate::store::Recipient;
use async_trait::async_trait;

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
    /// Sends one text message and returns the channel's id for it.
    async fn send_text(&self, to: &Recipient, body: &str) -> Result<String, SendError>;

    /// Tells the person we read their message and, with `typing`, that we
    /// are writing. Best effort: callers log a failure and carry on.
    async fn mark_read(&self, to: &Recipient, message_id: &str, typing: bool) -> Result<(), SendError>;
}
