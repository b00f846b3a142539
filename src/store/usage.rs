//! What people have cost so far, for the limits: each person's turns of
//! the last hour, read when their turn is claimed, and everyone's tokens of
//! the day. Read from `turns`, so every replica sees the same figures.

use super::{bind_ids, Backend, Params, Store, StoreError};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// One person's turns claimed in the hour before their current one (kept
/// small: it travels inside every claimed turn).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentTurns {
    /// When the oldest turn the LLM answered was claimed (0 without any):
    /// a turn frees an hour later.
    pub first_answered_at: i64,
    /// Turns the LLM answered.
    pub answered: u32,
    /// A turn was refused by the limit after the newest answer, so the
    /// person has been told.
    pub told: bool,
}

impl Store {
    /// LLM tokens (prompt and completion) of the turns claimed since `since`.
    pub async fn tokens_since(&self, since: i64) -> Result<i64, StoreError> {
        // PostgreSQL sums integers into NUMERIC, hence the cast.
        let tokens = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0) AS BIGINT) \
             FROM turns WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.reader)
        .await?;
        Ok(tokens)
    }
}

/// The turns of each of `user_ids` claimed after `since`, in one query on
/// the `turns_by_user` index; people without any are left out. The unary
/// `+` keeps both planners off `turns_by_created`, which would read every
/// turn of the last hour for each claim.
pub(super) async fn recent_turns(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    since: i64,
) -> Result<HashMap<i64, RecentTurns>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "SELECT user_id, CAST(SUM(CASE WHEN reply_kind = 'llm' THEN 1 ELSE 0 END) AS BIGINT) AS answered, \
           COALESCE(MIN(CASE WHEN reply_kind = 'llm' THEN created_at END), 0) AS first_answered_at, \
           CAST(CASE WHEN MAX(CASE WHEN reply_kind = 'limited' THEN created_at END) \
             > COALESCE(MAX(CASE WHEN reply_kind = 'llm' THEN created_at END), 0) THEN 1 ELSE 0 END AS BIGINT) AS told \
         FROM turns WHERE +created_at > {} AND user_id IN ({}) GROUP BY user_id",
        p.one(),
        p.list(user_ids.len())
    );
    let mut recent = HashMap::new();
    for row in bind_ids(sqlx::query(&sql).bind(since), user_ids).fetch_all(&mut **tx).await? {
        let turns = RecentTurns {
            first_answered_at: row.try_get("first_answered_at")?,
            answered: u32::try_from(row.try_get::<i64, _>("answered")?).unwrap_or(u32::MAX),
            told: row.try_get::<i64, _>("told")? != 0,
        };
        recent.insert(row.try_get("user_id")?, turns);
    }
    Ok(recent)
}
