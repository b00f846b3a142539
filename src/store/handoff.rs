//! Pausing and resuming the bot for a person (see `crate::handoff`). Every
//! change first writes the person's row, the same row the claim writes, so
//! on PostgreSQL a pause and a claim for one person are serialised across
//! replicas (SQLite's `BEGIN IMMEDIATE` serialises every writer). Pauses and
//! resumes are recorded in `handoff_events`.

use super::{bind_ids, Backend, Params, Store, StoreError};
use crate::handoff::{
    holds, Actor, ConversationMode, Mode, Pause, PauseOutcome, PauseReason, PauseState, ResumeOutcome, EXPIRY,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// What [`mode_from_row`] reads, for queries that list people (the inbox).
pub(super) const MODE_COLUMNS: &str =
    "mode, pause_reason, paused_by, paused_at, paused_until, waiting_since, agent_seen_at";

impl Store {
    /// Pauses the bot for `user_id` (a pause in effect gets the new reason,
    /// author and end) and cancels the parts of bot replies not yet taken by
    /// the sender. `None` for an unknown person.
    pub async fn pause(&self, user_id: i64, pause: &Pause, now: i64) -> Result<Option<PauseOutcome>, StoreError> {
        let mut tx = self.write_tx().await?;
        let outcome = pause_in(&mut tx, self.backend, user_id, pause, now).await?;
        tx.commit().await?;
        self.conversations_changed();
        Ok(outcome)
    }

    /// Gives `user_id` back to the bot; nothing changes if it has them
    /// already. `None` for an unknown person.
    pub async fn resume(&self, user_id: i64, by: &Actor, now: i64) -> Result<Option<ResumeOutcome>, StoreError> {
        let mut tx = self.write_tx().await?;
        let outcome = resume_in(&mut tx, self.backend, user_id, by, now).await?;
        tx.commit().await?;
        self.conversations_changed();
        Ok(outcome)
    }

    /// Who answers `user_id` at `now`; `None` for an unknown person.
    pub async fn conversation_mode(&self, user_id: i64, now: i64) -> Result<Option<ConversationMode>, StoreError> {
        let row = sqlx::query(&format!("SELECT {MODE_COLUMNS} FROM users WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| mode_from_row(&row, now)).transpose()
    }
}

/// [`Store::pause`] inside a transaction that may do more (an agent's
/// message queued with its pause, the handoff reply queued with its pause).
pub(super) async fn pause_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_id: i64,
    pause: &Pause,
    now: i64,
) -> Result<Option<PauseOutcome>, StoreError> {
    let Some(before) = mode_now(tx, backend, user_id, now).await? else { return Ok(None) };
    let changed = before == Mode::Bot;
    // Someone answering the person ends their wait; a pause by an operator
    // leaves it as it was.
    let waiting_since = match pause.reason {
        PauseReason::CustomerAsked => "COALESCE(waiting_since, $3)",
        PauseReason::AgentReply | PauseReason::PhoneReply => "NULL",
        PauseReason::Admin => "waiting_since",
    };
    sqlx::query(&format!(
        "UPDATE users SET paused_at = CASE WHEN mode = 'human' THEN COALESCE(paused_at, $3) ELSE $3 END, \
           mode = 'human', pause_reason = $1, paused_by = $2, paused_until = $4, waiting_since = {waiting_since} \
         WHERE id = $5"
    ))
    .bind(pause.reason.as_str())
    .bind(pause.by.as_str())
    .bind(now)
    .bind(pause.until)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    if changed {
        record_event(tx, user_id, now, "pause", Some(pause.reason), pause.by.as_str(), pause.until).await?;
    }
    let cancelled = sqlx::query(
        "UPDATE outbound_messages SET state = 'cancelled', lease_token = NULL, lease_until = NULL, \
           error_title = 'cancelled: the conversation was handed to a person', updated_at = $2 \
         WHERE user_id = $1 AND origin = 'bot' AND state IN ('queued', 'failed_retryable')",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(Some(PauseOutcome { changed, until: pause.until, cancelled }))
}

/// [`Store::resume`] inside a transaction that may do more.
pub(super) async fn resume_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_id: i64,
    by: &Actor,
    now: i64,
) -> Result<Option<ResumeOutcome>, StoreError> {
    let Some(before) = mode_now(tx, backend, user_id, now).await? else { return Ok(None) };
    let changed = before == Mode::Human;
    if changed {
        record_event(tx, user_id, now, "resume", None, by.as_str(), None).await?;
        sqlx::query(&format!("UPDATE users SET {BACK_TO_BOT} WHERE id = $1")).bind(user_id).execute(&mut **tx).await?;
    }
    Ok(Some(ResumeOutcome { changed }))
}

/// Who answers `user_id` at `now` (`None`: no such person), after taking
/// their row for the rest of the transaction: a pause committed before is
/// seen, one committed after waits until this transaction ends. A pause
/// that ran out is ended here.
pub(super) async fn mode_now(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_id: i64,
    now: i64,
) -> Result<Option<Mode>, StoreError> {
    // Writing the row takes its lock on PostgreSQL; a plain read would not
    // wait for a pause in flight.
    let Some(row) = sqlx::query("UPDATE users SET mode = mode WHERE id = $1 RETURNING mode, paused_until")
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    let (stored, until): (String, Option<i64>) = (row.try_get("mode")?, row.try_get("paused_until")?);
    if holds(&stored, until, now) {
        return Ok(Some(Mode::Human));
    }
    if stored == Mode::Human.as_str() {
        end_expired(tx, backend, &[user_id], now).await?;
    }
    Ok(Some(Mode::Bot))
}

const BACK_TO_BOT: &str = "mode = 'bot', pause_reason = NULL, paused_by = NULL, paused_at = NULL, \
                           paused_until = NULL, waiting_since = NULL";

/// Gives the people of `user_ids` whose pause ran out before `now` back to
/// the bot, recording each resume at the moment their pause ended. Nobody
/// waits for a person any more then either.
pub(super) async fn end_expired(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let expired = |p: &mut Params| {
        format!("id IN ({}) AND mode = 'human' AND paused_until <= {}", p.list(user_ids.len()), p.one())
    };
    let mut p = Params::new(backend);
    let sql = format!(
        "INSERT INTO handoff_events (user_id, at, action, actor) \
         SELECT id, paused_until, 'resume', {} FROM users WHERE {}",
        p.one(),
        expired(&mut p)
    );
    bind_ids(sqlx::query(&sql).bind(EXPIRY), user_ids).bind(now).execute(&mut **tx).await?;
    let mut p = Params::new(backend);
    let sql = format!("UPDATE users SET {BACK_TO_BOT} WHERE {}", expired(&mut p));
    bind_ids(sqlx::query(&sql), user_ids).bind(now).execute(&mut **tx).await?;
    Ok(())
}

async fn record_event(
    tx: &mut Transaction<'_, Any>,
    user_id: i64,
    at: i64,
    action: &str,
    reason: Option<PauseReason>,
    actor: &str,
    until: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO handoff_events (user_id, at, action, reason, actor, until) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_id)
    .bind(at)
    .bind(action)
    .bind(reason.map(PauseReason::as_str))
    .bind(actor)
    .bind(until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn mode_from_row(row: &AnyRow, now: i64) -> Result<ConversationMode, StoreError> {
    let stored: String = row.try_get("mode")?;
    let until: Option<i64> = row.try_get("paused_until")?;
    let pause = if holds(&stored, until, now) {
        let reason: Option<String> = row.try_get("pause_reason")?;
        Some(PauseState {
            reason: reason.as_deref().and_then(PauseReason::parse),
            by: row.try_get("paused_by")?,
            at: row.try_get("paused_at")?,
            until,
        })
    } else {
        None
    };
    Ok(ConversationMode {
        mode: if pause.is_some() { Mode::Human } else { Mode::Bot },
        waiting_since: if pause.is_some() { row.try_get("waiting_since")? } else { None },
        agent_seen_at: row.try_get("agent_seen_at")?,
        pause,
    })
}
