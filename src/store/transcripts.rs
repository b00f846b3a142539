//! A person's conversation as it reads on their screen: what they sent and
//! each part of what we sent, oldest first. The web chat shows it back to
//! the visitor; the admin page shows it (behind the token) to the people of
//! the business, with what only they see: who wrote each message, how far
//! it got, the bot's unsent drafts, and every pause and resume.

use super::activity::ConversationSummary;
use super::turns::{parse_sources, MessageMedia, MEDIA_COLUMNS};
use super::{Store, StoreError};
use crate::domain::{ChannelKind, Source};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Who a transcript is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The customer: only what reached them or is on its way.
    Customer,
    /// The business: everything, drafts, cancelled parts and handoffs too.
    Staff,
}

/// Who wrote a message we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Bot,
    /// An agent from the admin page.
    Agent,
    /// Someone of the business from the WhatsApp Business app.
    Phone,
    /// An application through the send API (its token is the author).
    App,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Bot => "bot",
            Sender::Agent => "agent",
            Sender::Phone => "phone",
            Sender::App => "app",
        }
    }

    pub(super) fn of_origin(origin: &str) -> Self {
        match origin {
            "agent" => Sender::Agent,
            "echo" => Sender::Phone,
            "api" => Sender::App,
            _ => Sender::Bot,
        }
    }
}

/// A customer's file as the transcript shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFile {
    pub mime: Option<String>,
    pub file_name: Option<String>,
    /// How reading it went (`downloaded`, `read`, `too_large`, …); `None`
    /// before its turn was answered.
    pub outcome: Option<String>,
    /// Whether the file is still kept (`MEDIA_RETENTION_DAYS`).
    pub kept: bool,
    /// The transcript or the document's text.
    pub text: Option<String>,
}

/// A message we sent (or are sending), one part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEntry {
    /// The channel's id, once sent.
    pub id: Option<String>,
    pub from: Sender,
    /// The agent's name; `phone` for the WhatsApp Business app.
    pub author: Option<String>,
    pub text: Option<String>,
    /// How a bot reply was made: `llm`, `offline`, `fallback`, `unreadable`, `handoff`, ….
    pub kind: Option<String>,
    pub at: i64,
    /// The outbox state (`queued`, `sending`, `sent`, `failed_retryable`,
    /// `failed_permanent`, `dead`, `cancelled`).
    pub state: String,
    /// What WhatsApp reported once it had it: `accepted`, `sent`,
    /// `delivered`, `read` or `failed`; `pending` before.
    pub whatsapp_status: String,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// The turn it answers; `None` for messages not written by the bot.
    pub turn_id: Option<String>,
    /// On the last part of each reply only.
    pub sources: Option<Vec<Source>>,
}

impl OutboundEntry {
    /// One word for where it is: once sent, what WhatsApp last said
    /// (`sent`, `delivered`, `read`, `failed`); before, the outbox state.
    pub fn status(&self) -> &str {
        shown_status(&self.state, &self.whatsapp_status)
    }
}

/// [`OutboundEntry::status`] of a row's outbox `state` and WhatsApp status.
pub(super) fn shown_status<'a>(state: &'a str, whatsapp: &'a str) -> &'a str {
    match (state, whatsapp) {
        ("sent", "accepted") => "sent",
        ("sent", whatsapp) => whatsapp,
        (state, _) => state,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TranscriptEntry {
    Customer {
        id: String,
        /// `None` for media without a caption, or once chat logging is off.
        text: Option<String>,
        kind: String,
        at: i64,
        /// What the message's file turned out to be, for a file message.
        media: Option<CustomerFile>,
    },
    Outbound(OutboundEntry),
    /// A reply the bot wrote while a pause committed: kept for the agents,
    /// never sent. Staff only.
    Draft {
        turn_id: String,
        text: Option<String>,
        at: i64,
    },
    /// The bot paused or resumed. Staff only.
    Handoff {
        /// `pause` or `resume`.
        action: String,
        reason: Option<String>,
        by: String,
        until: Option<i64>,
        at: i64,
    },
}

impl TranscriptEntry {
    fn at(&self) -> i64 {
        match self {
            TranscriptEntry::Customer { at, .. }
            | TranscriptEntry::Outbound(OutboundEntry { at, .. })
            | TranscriptEntry::Draft { at, .. }
            | TranscriptEntry::Handoff { at, .. } => *at,
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

    /// The last `limit` entries for `audience`; `None` for an unknown user.
    pub async fn transcript(
        &self,
        user_id: i64,
        limit: i64,
        audience: Audience,
    ) -> Result<Option<Transcript>, StoreError> {
        let Some(summary) = self.summaries(&format!("u.id = {user_id}"), 1).await?.pop() else {
            return Ok(None);
        };
        let mut entries = self.customer_messages(user_id, limit).await?;
        entries.extend(self.outbound_messages(user_id, limit, audience).await?);
        if audience == Audience::Staff {
            entries.extend(self.drafts(user_id, limit).await?);
            entries.extend(self.handoff_events(user_id, limit).await?);
        }
        // What we send is created after what it answers, so time order is
        // conversation order. Each list is oldest first and the sort is
        // stable, so entries of one moment keep their order.
        entries.sort_by_key(TranscriptEntry::at);
        let keep_from = entries.len().saturating_sub(limit.max(0) as usize);
        entries.drain(..keep_from);
        Ok(Some(Transcript { summary, entries }))
    }

    /// The rows `sql` selects for `user_id` (`$1`), newest first and at
    /// most `limit` (`$2`) of them, turned oldest first.
    async fn latest(&self, sql: &str, user_id: i64, limit: i64) -> Result<Vec<AnyRow>, StoreError> {
        let mut rows = sqlx::query(sql).bind(user_id).bind(limit).fetch_all(&self.reader).await?;
        rows.reverse();
        Ok(rows)
    }

    async fn customer_messages(&self, user_id: i64, limit: i64) -> Result<Vec<TranscriptEntry>, StoreError> {
        let sql = format!(
            "SELECT wa_message_id, kind, body, received_at, {MEDIA_COLUMNS} FROM inbound_messages WHERE user_id = $1 \
             ORDER BY received_at DESC, id DESC LIMIT $2"
        );
        self.latest(&sql, user_id, limit)
            .await?
            .iter()
            .map(|row| {
                Ok(TranscriptEntry::Customer {
                    id: row.try_get("wa_message_id")?,
                    text: row.try_get("body")?,
                    kind: row.try_get("kind")?,
                    at: row.try_get("received_at")?,
                    media: MessageMedia::from_row(row)?.map(CustomerFile::from),
                })
            })
            .collect()
    }

    /// Everything we sent but the resume commands typed on the phone; the
    /// customer does not see parts cancelled by a pause, never sent.
    async fn outbound_messages(
        &self,
        user_id: i64,
        limit: i64,
        audience: Audience,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        let hidden = match audience {
            Audience::Customer => " AND o.state <> 'cancelled'",
            Audience::Staff => "",
        };
        let sql = format!(
            "SELECT o.wa_message_id, o.origin, o.author, o.body, o.state, o.status, o.error_code, o.error_title, \
               o.created_at, o.turn_id, t.reply_kind, t.sources, \
               CAST(CASE WHEN o.final_part THEN 1 ELSE 0 END AS BIGINT) AS final_part \
             FROM outbound_messages o LEFT JOIN turns t ON t.id = o.turn_id \
             WHERE o.user_id = $1 AND o.origin IN ('bot', 'agent', 'echo', 'api'){hidden} \
             ORDER BY o.created_at DESC, o.id DESC LIMIT $2"
        );
        let rows = self.latest(&sql, user_id, limit).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let from = Sender::of_origin(&row.try_get::<String, _>("origin")?);
            let is_last = row.try_get::<i64, _>("final_part")? != 0;
            entries.push(TranscriptEntry::Outbound(OutboundEntry {
                id: row.try_get("wa_message_id")?,
                from,
                author: row.try_get("author")?,
                text: row.try_get("body")?,
                kind: row.try_get("reply_kind")?,
                at: row.try_get("created_at")?,
                state: row.try_get("state")?,
                whatsapp_status: row.try_get("status")?,
                error_code: row.try_get("error_code")?,
                error_title: row.try_get("error_title")?,
                turn_id: row.try_get("turn_id")?,
                sources: (from == Sender::Bot && is_last).then(|| parse_sources(row.try_get("sources").ok().flatten())),
            }));
        }
        Ok(entries)
    }

    async fn drafts(&self, user_id: i64, limit: i64) -> Result<Vec<TranscriptEntry>, StoreError> {
        let sql = "SELECT id, reply_text, COALESCE(answered_at, created_at) AS at FROM turns \
                   WHERE user_id = $1 AND status = 'draft' ORDER BY created_at DESC LIMIT $2";
        self.latest(sql, user_id, limit)
            .await?
            .iter()
            .map(|row| {
                Ok(TranscriptEntry::Draft {
                    turn_id: row.try_get("id")?,
                    text: row.try_get("reply_text")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    async fn handoff_events(&self, user_id: i64, limit: i64) -> Result<Vec<TranscriptEntry>, StoreError> {
        let sql = "SELECT at, action, reason, actor, until FROM handoff_events WHERE user_id = $1 \
                   ORDER BY at DESC, id DESC LIMIT $2";
        self.latest(sql, user_id, limit)
            .await?
            .iter()
            .map(|row| {
                Ok(TranscriptEntry::Handoff {
                    action: row.try_get("action")?,
                    reason: row.try_get("reason")?,
                    by: row.try_get("actor")?,
                    until: row.try_get("until")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }
}

impl From<MessageMedia> for CustomerFile {
    fn from(media: MessageMedia) -> Self {
        Self {
            mime: media.mime,
            file_name: media.file_name,
            outcome: media.outcome,
            kept: media.file.is_some(),
            text: media.text,
        }
    }
}
