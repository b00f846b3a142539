//! Read-only views for operators: who is in a conversation right now, and
//! whether the database answers at all.

use super::{Store, StoreError};
use crate::domain::{Bsuid, PersonRef, PhoneNumber};
use sqlx::Row;

/// The most conversations listed; the count is exact regardless.
const LISTED: i64 = 100;

/// A person whose messages are buffered or being answered.
#[derive(Debug, Clone)]
pub struct ActiveConversation {
    pub person: PersonRef,
    pub messages: i64,
    pub buffered: i64,
    pub answering: bool,
    pub last_activity_ms: i64,
}

impl Store {
    /// How many people have a conversation in progress, across every
    /// replica, and the most recently active of them.
    pub async fn active_conversations(&self) -> Result<(i64, Vec<ActiveConversation>), StoreError> {
        let active = "SELECT user_id FROM inbound_messages WHERE turn_id IS NULL AND wants_reply \
                      UNION SELECT user_id FROM turns WHERE status = 'answering'";
        let count: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM ({active}) AS active"))
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT u.phone, u.bsuid, \
               (SELECT COUNT(*) FROM inbound_messages m WHERE m.user_id = u.id) AS messages, \
               (SELECT COUNT(*) FROM inbound_messages m WHERE m.user_id = u.id AND m.turn_id IS NULL AND m.wants_reply) \
                 AS buffered, \
               (SELECT COUNT(*) FROM turns t WHERE t.user_id = u.id AND t.status = 'answering') AS answering, \
               (SELECT MAX(m.received_at) FROM inbound_messages m WHERE m.user_id = u.id) AS last_activity \
             FROM users u WHERE u.id IN ({active}) ORDER BY last_activity DESC LIMIT {LISTED}"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut listed = Vec::with_capacity(rows.len());
        for row in rows {
            let phone = row.try_get::<Option<String>, _>("phone")?.and_then(|p| PhoneNumber::parse(&p).ok());
            let bsuid = row.try_get::<Option<String>, _>("bsuid")?.and_then(|b| Bsuid::parse(&b).ok());
            let Ok(person) = PersonRef::new(phone, bsuid) else { continue };
            listed.push(ActiveConversation {
                person,
                messages: row.try_get("messages")?,
                buffered: row.try_get("buffered")?,
                answering: row.try_get::<i64, _>("answering")? > 0,
                last_activity_ms: row.try_get::<Option<i64>, _>("last_activity")?.unwrap_or_default(),
            });
        }
        Ok((count, listed))
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> super::Backend {
        self.backend
    }
}
