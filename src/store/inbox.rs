//! The agent inbox: every conversation an agent may have to look at, those
//! waiting for a person first (longest waiting first), then the paused ones,
//! then the rest, most recent activity first; with what an agent needs to
//! pick one: unread messages, the last message, the pause, the 24-hour
//! window. Plus what tells a process the inbox may have moved.

use super::handoff::{mode_from_row, MODE_COLUMNS};
use super::transcripts::{shown_status, Sender};
use super::{Store, StoreError};
use crate::domain::{AccountName, Recipient};
use crate::handoff::window::ReplyWindow;
use crate::handoff::ConversationMode;
use sqlx::Row;

/// Characters of the last message shown in the list.
const PREVIEW_CHARS: usize = 120;
/// The newest inbound messages searched for the most recently active people.
/// A bounded range of the primary key, so a big history costs nothing; only
/// when it holds too few people (a small deployment, one very chatty person)
/// is every person looked at.
const RECENT_MESSAGES: i64 = 10_000;

/// Which part of the inbox a conversation is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxGroup {
    /// The person asked for a human and nobody has answered yet.
    Waiting,
    /// A pause is in effect: people of the business answer.
    Paused,
    /// The bot answers.
    Bot,
}

impl InboxGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxGroup::Waiting => "waiting",
            InboxGroup::Paused => "paused",
            InboxGroup::Bot => "bot",
        }
    }
}

/// The latest message of a conversation, either way, cut for a list.
#[derive(Debug, Clone, PartialEq)]
pub struct LastMessage {
    /// `customer`, `bot`, `agent` (sent from the admin page) or `phone`
    /// (sent from the WhatsApp Business app).
    pub from: &'static str,
    /// `None` for media without a caption, or once chat logging is off.
    pub preview: Option<String>,
    pub at: i64,
    /// Ours only: the outbox state until sent, then the delivery status.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    pub user_id: i64,
    pub person: Recipient,
    /// The business's number they wrote to.
    pub account: AccountName,
    pub profile_name: Option<String>,
    pub group: InboxGroup,
    /// As in effect at the moment of reading: a pause past its end reads
    /// as the bot's, before the next message writes it back.
    pub mode: ConversationMode,
    /// Customer messages received since an agent last opened it.
    pub unread: i64,
    pub last: Option<LastMessage>,
    /// When WhatsApp's 24-hour window closes; `None` before any customer
    /// message, and in the web chat, which has no window.
    pub window_open_until: Option<i64>,
}

impl InboxEntry {
    pub fn last_activity(&self) -> Option<i64> {
        self.last.as_ref().map(|last| last.at)
    }
}

/// How many conversations wait for a person or are paused, in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    pub waiting: i64,
    pub paused: i64,
}

/// What moves when a conversation changes on any replica: new messages in
/// and out, pauses and resumes. Reading it is three primary-key lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxMarker {
    inbound: i64,
    outbound: i64,
    handoffs: i64,
}

/// A conversation is in handoff while paused or waiting. The same text as
/// the predicate of the partial index `users_in_handoff` (migration 0010),
/// so both databases use that index.
const IN_HANDOFF: &str = "(mode = 'human' OR waiting_since IS NOT NULL)";
/// Whether the pause of a `users` row holds at `$1` (as `handoff::holds`);
/// a person waits for a human only while it does.
const HOLDS: &str = "mode = 'human' AND (paused_until IS NULL OR paused_until > $1)";

impl Store {
    /// The first `limit` conversations of the inbox at `now`.
    pub async fn inbox(&self, now: i64, limit: i64) -> Result<Vec<InboxEntry>, StoreError> {
        let recent = format!(
            "SELECT user_id FROM (SELECT user_id, MAX(id) AS newest FROM inbound_messages \
               WHERE id > (SELECT COALESCE(MAX(id), 0) FROM inbound_messages) - {RECENT_MESSAGES} \
               GROUP BY user_id ORDER BY newest DESC LIMIT {limit}) recent"
        );
        let listed = self.inbox_of(&recent, now, limit).await?;
        if listed.len() as i64 >= limit || self.inbound_fits_window().await? {
            return Ok(listed);
        }
        let everyone = format!(
            "SELECT id FROM (SELECT id, newest FROM (SELECT u.id, \
               (SELECT MAX(m.received_at) FROM inbound_messages m WHERE m.user_id = u.id) AS newest FROM users u) \
             active WHERE newest IS NOT NULL ORDER BY newest DESC LIMIT {limit}) everyone"
        );
        self.inbox_of(&everyone, now, limit).await
    }

    /// Whether the window of recent messages holds every message there is.
    async fn inbound_fits_window(&self) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MIN(id), 0) AS oldest, COALESCE(MAX(id), 0) AS newest FROM inbound_messages")
                .fetch_one(&self.reader)
                .await?;
        let (oldest, newest): (i64, i64) = (row.try_get("oldest")?, row.try_get("newest")?);
        Ok(oldest > newest - RECENT_MESSAGES)
    }

    /// The inbox drawn from everyone in handoff and the people `recent`
    /// (a query of user ids) selects.
    async fn inbox_of(&self, recent: &str, now: i64, limit: i64) -> Result<Vec<InboxEntry>, StoreError> {
        // PostgreSQL cannot use an output column's alias inside an ORDER BY
        // expression, hence the outer query.
        let sql = format!(
            "WITH candidates AS (SELECT id AS user_id FROM users WHERE {IN_HANDOFF} UNION {recent}), \
             listed AS (SELECT u.id, u.channel, u.account, u.phone, u.bsuid, u.address, u.profile_name, {MODE_COLUMNS}, \
                 (SELECT m.id FROM inbound_messages m WHERE m.user_id = u.id \
                    ORDER BY m.received_at DESC, m.id DESC LIMIT 1) AS last_in, \
                 (SELECT o.id FROM outbound_messages o WHERE o.user_id = u.id AND o.state <> 'cancelled' \
                    ORDER BY o.created_at DESC, o.id DESC LIMIT 1) AS last_out, \
                 (SELECT COUNT(*) FROM inbound_messages m WHERE m.user_id = u.id \
                    AND m.received_at > COALESCE(u.agent_seen_at, -1)) AS unread \
               FROM users u WHERE u.id IN (SELECT user_id FROM candidates)) \
             SELECT * FROM (SELECT l.*, \
                 i.received_at AS in_at, SUBSTR(i.body, 1, {cut}) AS in_text, \
                 o.origin AS out_origin, o.created_at AS out_at, SUBSTR(o.body, 1, {cut}) AS out_text, \
                 o.state AS out_state, o.status AS out_status, \
                 CAST(CASE WHEN NOT ({HOLDS}) THEN 2 WHEN waiting_since IS NOT NULL THEN 0 ELSE 1 END \
                   AS BIGINT) AS grp, \
                 CAST(CASE WHEN COALESCE(i.received_at, 0) >= COALESCE(o.created_at, 0) \
                   THEN COALESCE(i.received_at, 0) ELSE o.created_at END AS BIGINT) AS activity \
               FROM listed l LEFT JOIN inbound_messages i ON i.id = l.last_in \
               LEFT JOIN outbound_messages o ON o.id = l.last_out) inbox \
             ORDER BY grp, CASE WHEN grp = 0 THEN waiting_since ELSE 0 END, activity DESC, id DESC LIMIT {limit}",
            cut = PREVIEW_CHARS + 1,
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.reader).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            // A row no channel of this version can address is not listed.
            let Some(person) = super::people::recipient_from_row(&row)? else { continue };
            let (channel, account): (String, String) = (row.try_get("channel")?, row.try_get("account")?);
            let windowed = self.has_reply_window(&channel, &account);
            entries.push(entry(&row, person, windowed, now)?);
        }
        Ok(entries)
    }

    /// Conversations waiting for a person, and paused ones, at `now`.
    pub async fn inbox_counts(&self, now: i64) -> Result<InboxCounts, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(CASE WHEN waiting_since IS NOT NULL THEN 1 END) AS waiting, COUNT(*) AS paused \
             FROM users WHERE {IN_HANDOFF} AND {HOLDS}"
        ))
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        Ok(InboxCounts { waiting: row.try_get("waiting")?, paused: row.try_get("paused")? })
    }

    /// Cheap enough to read every second on every replica.
    pub async fn inbox_marker(&self) -> Result<InboxMarker, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE((SELECT MAX(id) FROM inbound_messages), 0) AS inbound, \
               COALESCE((SELECT MAX(id) FROM outbound_messages), 0) AS outbound, \
               COALESCE((SELECT MAX(id) FROM handoff_events), 0) AS handoffs",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(InboxMarker {
            inbound: row.try_get("inbound")?,
            outbound: row.try_get("outbound")?,
            handoffs: row.try_get("handoffs")?,
        })
    }

    /// An agent has seen the conversation's messages up to `up_to`: only
    /// later ones count as unread. Never moves back. `false` for an unknown
    /// user.
    pub async fn mark_seen(&self, user_id: i64, up_to: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET agent_seen_at = CASE WHEN agent_seen_at IS NULL OR agent_seen_at < $1 \
               THEN $1 ELSE agent_seen_at END WHERE id = $2",
        )
        .bind(up_to)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        self.conversations_changed();
        Ok(true)
    }
}

fn entry(row: &sqlx::any::AnyRow, person: Recipient, windowed: bool, now: i64) -> Result<InboxEntry, StoreError> {
    let group = match row.try_get::<i64, _>("grp")? {
        0 => InboxGroup::Waiting,
        1 => InboxGroup::Paused,
        _ => InboxGroup::Bot,
    };
    let in_at: Option<i64> = row.try_get("in_at")?;
    let out_at: Option<i64> = row.try_get("out_at")?;
    let customer_last = in_at.is_some_and(|in_at| out_at.is_none_or(|out_at| in_at >= out_at));
    let last = match (customer_last, in_at, out_at) {
        (true, Some(at), _) => {
            Some(LastMessage { from: "customer", preview: preview(row.try_get("in_text")?), at, status: None })
        }
        (false, _, Some(at)) => {
            let origin: String = row.try_get("out_origin")?;
            let (out_state, out_status): (String, String) = (row.try_get("out_state")?, row.try_get("out_status")?);
            Some(LastMessage {
                from: Sender::of_origin(&origin).as_str(),
                preview: preview(row.try_get("out_text")?),
                at,
                status: Some(shown_status(&out_state, &out_status).to_owned()),
            })
        }
        _ => None,
    };
    Ok(InboxEntry {
        user_id: row.try_get("id")?,
        window_open_until: ReplyWindow::of(windowed, in_at).open_until(),
        person,
        account: super::people::account_from_row(row)?,
        profile_name: row.try_get("profile_name")?,
        group,
        mode: mode_from_row(row, now)?,
        unread: row.try_get("unread")?,
        last,
    })
}

/// One line of at most [`PREVIEW_CHARS`] characters.
fn preview(text: Option<String>) -> Option<String> {
    let text = text?;
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= PREVIEW_CHARS {
        return Some(line);
    }
    let mut cut: String = line.chars().take(PREVIEW_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview(None), None);
        assert_eq!(preview(Some("halo\n\n kak  ".into())).as_deref(), Some("halo kak"));
        let long = "kata ".repeat(40);
        let cut = preview(Some(long)).unwrap();
        assert_eq!(cut.chars().count(), PREVIEW_CHARS);
        assert!(cut.ends_with("kata…") || cut.ends_with("kat…") || cut.ends_with('…'), "{cut}");
        let exact = "é".repeat(PREVIEW_CHARS);
        assert_eq!(preview(Some(exact.clone())), Some(exact));
    }
}
