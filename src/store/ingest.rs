use super::people::upsert_person;
use super::{Store, StoreError};
use crate::domain::{InboundMessage, StatusUpdate};

/// What storing one webhook changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Users with a newly stored message that wants a reply: their quiet
    /// timers restart.
    pub waiting_users: Vec<i64>,
    pub stored: usize,
    /// Message ids seen before (Meta redelivers): acknowledged, ignored.
    pub duplicates: usize,
    pub statuses: usize,
}

impl Store {
    /// Stores everything a webhook carries in one transaction, so the 200
    /// that follows means all of it is durable, or none of it is and Meta
    /// retries.
    pub async fn ingest(
        &self,
        messages: &[InboundMessage],
        statuses: &[StatusUpdate],
        now: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let mut outcome = IngestOutcome::default();
        let mut tx = self.pool.begin().await?;
        for message in messages {
            let user_id = upsert_person(&mut tx, &message.from, now).await?;
            let wants_reply = message.content.wants_reply();
            let inserted = sqlx::query(
                "INSERT INTO inbound_messages \
                 (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wa_message_id) DO NOTHING",
            )
            .bind(message.id.as_str())
            .bind(user_id)
            .bind(message.content.kind())
            .bind(message.content.readable_text())
            .bind(wants_reply)
            .bind(message.sent_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.stored += 1;
            if wants_reply && !outcome.waiting_users.contains(&user_id) {
                outcome.waiting_users.push(user_id);
            }
        }
        for status in statuses {
            apply_status(&mut tx, status, now).await?;
            outcome.statuses += 1;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

async fn apply_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    status: &StatusUpdate,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_statuses (wa_message_id, status, error_code, occurred_secs, received_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (wa_message_id, status) DO NOTHING",
    )
    .bind(status.message_id.as_str())
    .bind(status.status.as_str())
    .bind(status.error_code)
    .bind(status.timestamp)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    // Statuses arrive out of order; a lower rank never replaces a higher one.
    sqlx::query(
        "UPDATE outbound_messages SET status = $1, status_rank = $2, \
         error_code = COALESCE($3, error_code), error_title = COALESCE($4, error_title), updated_at = $5 \
         WHERE wa_message_id = $6 AND status_rank < $2",
    )
    .bind(status.status.as_str())
    .bind(status.status.rank())
    .bind(status.error_code)
    .bind(&status.error_title)
    .bind(now)
    .bind(status.message_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
