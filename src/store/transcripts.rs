//! A person's conversation as it reads on their screen: what they sent and
//! each part of our replies, oldest first. The web chat shows it back to the
//! visitor; the admin page shows it (behind the token) to operators.

use super::activity::ConversationSummary;
use super::turns::parse_sources;
use super::{Store, StoreError};
use crate::domain::{ChannelKind, Source};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub enum TranscriptEntry {
    Customer {
        id: String,
        /// `None` for media without a caption, or once chat logging is off.
        text: Option<String>,
        kind: String,
        at: i64,
    },
    Bot {
        id: Option<String>,
        text: Option<String>,
        /// How the reply was made: `llm`, `offline`, `fallback`, `unreadable`.
        kind: Option<String>,
        at: i64,
        /// Once sent: `sent` (accepted by the channel), `delivered`, `read` or
        /// `failed`. Before: the outbox state (`queued`, `sending`,
        /// `failed_retryable`, `failed_permanent`, `dead`, `cancelled`).
        status: String,
        /// The turn it answers; `None` for messages not written by the bot.
        turn_id: Option<String>,
        /// On the last part of each reply only.
        sources: Option<Vec<Source>>,
    },
}

impl TranscriptEntry {
    fn at(&self) -> i64 {
        match self {
            TranscriptEntry::Customer { at, .. } | TranscriptEntry::Bot { at, .. } => *at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Transcript {
    pub summary: ConversationSummary,
    pub entries: Vec<TranscriptEntry>,
}

impl Store {
    /// The user a channel knows by `address` (the web chat: the
    /// conversation key), if there is one.
    pub async fn user_by_address(&self, channel: ChannelKind, address: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM users WHERE channel = $1 AND address = $2")
            .bind(channel.as_str())
            .bind(address)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// The last `limit` messages both ways; `None` for an unknown user.
    pub async fn transcript(&self, user_id: i64, limit: i64) -> Result<Option<Transcript>, StoreError> {
        let Some(summary) = self.summaries(&format!("u.id = {user_id}"), 1).await?.pop() else {
            return Ok(None);
        };
        let inbound = sqlx::query(
            "SELECT wa_message_id, kind, body, received_at FROM inbound_messages WHERE user_id = $1 \
             ORDER BY received_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let outbound = sqlx::query(
            "SELECT o.wa_message_id, o.body, o.state, o.status, o.created_at, o.turn_id, t.reply_kind, t.sources, \
               CAST(CASE WHEN o.final_part THEN 1 ELSE 0 END AS BIGINT) AS final_part \
             FROM outbound_messages o LEFT JOIN turns t ON t.id = o.turn_id WHERE o.user_id = $1 \
             ORDER BY o.created_at DESC, o.id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let mut entries = Vec::with_capacity(inbound.len() + outbound.len());
        for row in inbound.iter().rev() {
            entries.push(TranscriptEntry::Customer {
                id: row.try_get("wa_message_id")?,
                text: row.try_get("body")?,
                kind: row.try_get("kind")?,
                at: row.try_get("received_at")?,
            });
        }
        for row in outbound.iter().rev() {
            let is_last = row.try_get::<i64, _>("final_part")? != 0;
            let status = shown_status(row.try_get("state")?, row.try_get("status")?);
            entries.push(TranscriptEntry::Bot {
                id: row.try_get("wa_message_id")?,
                text: row.try_get("body")?,
                kind: row.try_get("reply_kind")?,
                at: row.try_get("created_at")?,
                status,
                turn_id: row.try_get("turn_id")?,
                sources: is_last.then(|| parse_sources(row.try_get("sources").ok().flatten())),
            });
        }
        // A reply part is created after the messages it answers, so time
        // order is conversation order.
        entries.sort_by_key(TranscriptEntry::at);
        let keep_from = entries.len().saturating_sub(limit.max(0) as usize);
        entries.drain(..keep_from);
        Ok(Some(Transcript { summary, entries }))
    }
}

/// How far one of our messages got: the outbox state until the channel took
/// it, then what WhatsApp reported (`sent` for a message only accepted).
pub(super) fn shown_status(state: String, status: String) -> String {
    match (state.as_str(), status.as_str()) {
        ("sent", "accepted") => "sent".to_owned(),
        ("sent", _) => status,
        _ => state,
    }
}
