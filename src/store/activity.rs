//! Read-only views for operators: who is in a conversation right now, and
//! whether the database answers at all.

use super::{Store, StoreError};
use crate::domain::{AccountName, Recipient};
use sqlx::Row;

/// The most conversations listed as active; the count is exact regardless.
const LISTED: i64 = 100;

/// People with messages buffered or a reply being written, on any replica.
const ACTIVE: &str = "SELECT user_id FROM inbound_messages WHERE turn_id IS NULL AND wants_reply \
                      UNION SELECT user_id FROM turns WHERE status = 'answering'";

/// One person's conversation at a glance.
#[derive(Debug, Clone)]
pub struct ConversationSummary {
    pub user_id: i64,
    pub person: Recipient,
    /// The business's number they wrote to.
    pub account: AccountName,
    pub profile_name: Option<String>,
    pub messages: i64,
    pub buffered: i64,
    pub answering: bool,
    pub last_activity_ms: i64,
}

impl ConversationSummary {
    /// "buffered", "answering" or "idle".
    pub fn state(&self) -> &'static str {
        if self.answering {
            "answering"
        } else if self.buffered > 0 {
            "buffered"
        } else {
            "idle"
        }
    }
}

impl Store {
    /// How many people have a conversation in progress, across every
    /// replica, and the most recently active of them.
    pub async fn active_conversations(&self) -> Result<(i64, Vec<ConversationSummary>), StoreError> {
        let count: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM ({ACTIVE}) AS active"))
            .fetch_one(&self.reader)
            .await?
            .try_get("n")?;
        Ok((count, self.summaries(&format!("u.id IN ({ACTIVE})"), LISTED).await?))
    }

    /// Everyone who wrote, most recently active first.
    pub async fn conversations(&self, limit: i64) -> Result<Vec<ConversationSummary>, StoreError> {
        self.summaries("EXISTS (SELECT 1 FROM inbound_messages m WHERE m.user_id = u.id)", limit).await
    }

    pub(super) async fn summaries(&self, filter: &str, limit: i64) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT u.id, u.channel, u.account, u.phone, u.bsuid, u.address, u.profile_name, \
               (SELECT COUNT(*) FROM inbound_messages m WHERE m.user_id = u.id) AS messages, \
               (SELECT COUNT(*) FROM inbound_messages m WHERE m.user_id = u.id AND m.turn_id IS NULL AND m.wants_reply) \
                 AS buffered, \
               (SELECT COUNT(*) FROM turns t WHERE t.user_id = u.id AND t.status = 'answering') AS answering, \
               (SELECT MAX(m.received_at) FROM inbound_messages m WHERE m.user_id = u.id) AS last_activity \
             FROM users u WHERE {filter} ORDER BY last_activity DESC, u.id DESC LIMIT {limit}"
        ))
        .fetch_all(&self.reader)
        .await?;
        let mut listed = Vec::with_capacity(rows.len());
        for row in rows {
            // A row no channel of this version can address is not listed.
            let Some(person) = super::people::recipient_from_row(&row)? else { continue };
            listed.push(ConversationSummary {
                user_id: row.try_get("id")?,
                person,
                account: super::people::account_from_row(&row)?,
                profile_name: row.try_get("profile_name")?,
                messages: row.try_get("messages")?,
                buffered: row.try_get("buffered")?,
                answering: row.try_get::<i64, _>("answering")? > 0,
                last_activity_ms: row.try_get::<Option<i64>, _>("last_activity")?.unwrap_or_default(),
            });
        }
        Ok(listed)
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub fn backend(&self) -> super::Backend {
        self.backend
    }
}
