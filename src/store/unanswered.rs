//! Questions the bot could not answer from the documents, as rows for the
//! admin's "unanswered questions" view.

use super::{bind_ids, Params, Store, StoreError};
use crate::domain::Recipient;
use sqlx::Row;

/// One turn the documents did not answer.
#[derive(Debug, Clone)]
pub struct UnansweredQuestion {
    pub id: i64,
    pub user_id: i64,
    /// `None` for a person no channel of this version can address.
    pub person: Option<Recipient>,
    pub question: String,
    pub reason: String,
    pub top_score: Option<f64>,
    pub asked_at: i64,
}

/// What [`Store::record_unanswered`] writes.
pub struct NewUnanswered<'a> {
    pub user_id: i64,
    pub turn_id: &'a str,
    pub question: &'a str,
    pub reason: &'a str,
    pub top_score: Option<f32>,
    pub asked_at: i64,
}

impl Store {
    pub async fn record_unanswered(&self, row: &NewUnanswered<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO unanswered_questions (user_id, turn_id, question, reason, top_score_milli, asked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.user_id)
        .bind(row.turn_id)
        .bind(row.question)
        .bind(row.reason)
        // Thousandths: sqlx's Any driver cannot bind a float to PostgreSQL.
        .bind(row.top_score.map(|score| (f64::from(score) * 1000.0).round() as i64))
        .bind(row.asked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Questions asked since `since` (Unix ms), newest first, at most `limit`.
    pub async fn unanswered_since(&self, since: i64, limit: i64) -> Result<Vec<UnansweredQuestion>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT q.id, q.user_id, q.question, q.reason, q.top_score_milli, q.asked_at, \
               u.channel, u.account, u.phone, u.bsuid, u.address \
             FROM unanswered_questions q JOIN users u ON u.id = q.user_id \
             WHERE q.asked_at >= $1 ORDER BY q.asked_at DESC, q.id DESC LIMIT {limit}"
        ))
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UnansweredQuestion {
                    id: row.try_get("id")?,
                    user_id: row.try_get("user_id")?,
                    person: super::people::recipient_from_row(row)?,
                    question: row.try_get("question")?,
                    reason: row.try_get("reason")?,
                    top_score: row.try_get::<Option<i64>, _>("top_score_milli")?.map(|milli| milli as f64 / 1000.0),
                    asked_at: row.try_get("asked_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Deletes the rows `ids` (a dismissed group); returns how many went.
    pub async fn dismiss_unanswered(&self, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut params = Params::new(self.backend);
        let sql = format!("DELETE FROM unanswered_questions WHERE id IN ({})", params.list(ids.len()));
        Ok(bind_ids(sqlx::query(&sql), ids).execute(&self.pool).await?.rows_affected())
    }
}
