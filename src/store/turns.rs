//! A turn is everything a person said between two replies. Its row is the
//! unit of exactly-once: claiming it is a conditional write that only one
//! process can win, and its lease lets another process finish it if the
//! owner dies.

use super::people::Recipient;
use super::{Store, StoreError};
use sqlx::{Any, Row, Transaction};

/// What a timer that fired for a person found in the database.
#[derive(Debug)]
pub enum Claim {
    /// This process owns the turn now and must answer it.
    Claimed(ClaimedTurn),
    /// Another message arrived (maybe at another replica): the quiet
    /// window now ends at this wall-clock millisecond.
    NotYet { due_at: i64 },
    /// A reply to this person is still being written; try again shortly so
    /// replies stay in order and history stays complete.
    Busy,
    /// Nothing waits for a reply (already claimed elsewhere).
    Nothing,
}

#[derive(Debug, Clone)]
pub struct ClaimedTurn {
    pub id: String,
    pub user_id: i64,
    pub recipient: Option<Recipient>,
    pub messages: Vec<TurnMessage>,
    /// When the person's last message of this turn reached us.
    pub last_message_at: i64,
    /// The reply, when an earlier owner already got it from the LLM.
    pub reply: Option<String>,
    /// Parts of the reply already handed to WhatsApp (or failed for good).
    pub done_parts: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TurnMessage {
    pub wa_message_id: String,
    pub kind: String,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTurn {
    pub user: String,
    pub assistant: String,
}

#[derive(Debug, Clone, Copy)]
pub struct PendingConversation {
    pub user_id: i64,
    pub first_at: i64,
    pub last_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct LlmUsage {
    pub model: Option<String>,
    pub latency_ms: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ReplyRecord<'a> {
    pub user_text: &'a str,
    pub reply: &'a str,
    /// `llm`, `fallback` or `unreadable`.
    pub kind: &'a str,
    pub usage: LlmUsage,
}

pub struct ClaimWindow {
    pub quiet_ms: i64,
    pub max_wait_ms: i64,
    pub lease_ms: i64,
}

const SESSION_GAP_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    pub async fn claim_turn(
        &self,
        user_id: i64,
        owner: &str,
        now: i64,
        window: &ClaimWindow,
    ) -> Result<Claim, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes SQLite's write lock at once (no failed lock
        // upgrade later) and locks the person's row on PostgreSQL, so claims
        // for one person are serialised across replicas.
        sqlx::query("UPDATE users SET last_claim_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let busy: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM turns WHERE user_id = $1 AND status = 'answering' AND lease_until > $2",
        )
        .bind(user_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if busy > 0 {
            return Ok(Claim::Busy);
        }
        let waiting = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(received_at) AS first_at, MAX(received_at) AS last_at \
             FROM inbound_messages WHERE user_id = $1 AND turn_id IS NULL AND wants_reply",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        let count: i64 = waiting.try_get("n")?;
        let (Some(first_at), Some(last_at)) =
            (waiting.try_get::<Option<i64>, _>("first_at")?, waiting.try_get::<Option<i64>, _>("last_at")?)
        else {
            return Ok(Claim::Nothing);
        };
        if count == 0 {
            return Ok(Claim::Nothing);
        }
        let due_at = (last_at + window.quiet_ms).min(first_at + window.max_wait_ms);
        if due_at > now {
            return Ok(Claim::NotYet { due_at });
        }
        let session_id = touch_session(&mut tx, user_id, now).await?;
        let turn_id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO turns (id, user_id, session_id, status, owner, lease_until, created_at, last_message_at) \
             VALUES ($1, $2, $3, 'answering', $4, $5, $6, $7)",
        )
        .bind(&turn_id)
        .bind(user_id)
        .bind(session_id)
        .bind(owner)
        .bind(now + window.lease_ms)
        .bind(now)
        .bind(last_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE inbound_messages SET turn_id = $1 WHERE user_id = $2 AND turn_id IS NULL AND wants_reply")
            .bind(&turn_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let turn = load_turn(&mut tx, &turn_id).await?;
        tx.commit().await?;
        Ok(Claim::Claimed(turn))
    }

    /// Takes over turns whose owner died mid-answer (its lease ran out).
    pub async fn reclaim_expired(&self, owner: &str, now: i64, lease_ms: i64) -> Result<Vec<ClaimedTurn>, StoreError> {
        let expired: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM turns WHERE status = 'answering' AND lease_until <= $1 ORDER BY created_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut reclaimed = Vec::new();
        for turn_id in expired {
            let mut tx = self.pool.begin().await?;
            let won = sqlx::query(
                "UPDATE turns SET owner = $1, lease_until = $2 \
                 WHERE id = $3 AND status = 'answering' AND lease_until <= $4",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(&turn_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if won == 1 {
                reclaimed.push(load_turn(&mut tx, &turn_id).await?);
            }
            tx.commit().await?;
        }
        Ok(reclaimed)
    }

    /// People with messages that no turn holds yet: after a restart their
    /// quiet timers are rebuilt from these timestamps.
    pub async fn pending_conversations(&self) -> Result<Vec<PendingConversation>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, MIN(received_at) AS first_at, MAX(received_at) AS last_at FROM inbound_messages \
             WHERE turn_id IS NULL AND wants_reply GROUP BY user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingConversation {
                    user_id: row.try_get("user_id")?,
                    first_at: row.try_get("first_at")?,
                    last_at: row.try_get("last_at")?,
                })
            })
            .collect()
    }

    /// The person's last answered turns, oldest first.
    pub async fn history(&self, user_id: i64, limit: usize) -> Result<Vec<HistoryTurn>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_text, reply_text FROM turns \
             WHERE user_id = $1 AND status = 'answered' AND reply_kind = 'llm' \
             ORDER BY created_at DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut turns = rows
            .iter()
            .map(|row| Ok(HistoryTurn { user: row.try_get("user_text")?, assistant: row.try_get("reply_text")? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        turns.reverse();
        Ok(turns)
    }

    /// Keeps the reply before sending it, so an owner that dies mid-send
    /// is resumed with the same words, not a second LLM answer.
    pub async fn save_reply(&self, turn_id: &str, record: &ReplyRecord<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE turns SET user_text = $1, reply_text = $2, reply_kind = $3, model = $4, llm_latency_ms = $5, \
             prompt_tokens = $6, completion_tokens = $7 WHERE id = $8",
        )
        .bind(record.user_text)
        .bind(record.reply)
        .bind(record.kind)
        .bind(&record.usage.model)
        .bind(record.usage.latency_ms)
        .bind(record.usage.prompt_tokens)
        .bind(record.usage.completion_tokens)
        .bind(turn_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records one part of a reply: accepted by WhatsApp (with its id) or
    /// failed for good (with the Graph error code).
    pub async fn record_part(
        &self,
        turn_id: &str,
        part_index: i64,
        body: &str,
        sent: Result<&str, (Option<i64>, &str)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (wa_id, status, rank, code, title) = match sent {
            Ok(wa_id) => (Some(wa_id), "accepted", 0, None, None),
            Err((code, title)) => (None, "failed", 4, code, Some(title)),
        };
        sqlx::query(
            "INSERT INTO outbound_messages \
             (turn_id, part_index, body, wa_message_id, status, status_rank, error_code, error_title, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (turn_id, part_index) DO NOTHING",
        )
        .bind(turn_id)
        .bind(part_index)
        .bind(body)
        .bind(wa_id)
        .bind(status)
        .bind(rank)
        .bind(code)
        .bind(title)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_turn(&self, turn_id: &str, status: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE turns SET status = $1, answered_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now)
            .bind(turn_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn touch_session(tx: &mut Transaction<'_, Any>, user_id: i64, now: i64) -> Result<i64, StoreError> {
    let recent: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM sessions WHERE user_id = $1 AND last_activity_at > $2 ORDER BY last_activity_at DESC LIMIT 1",
    )
    .bind(user_id)
    .bind(now - SESSION_GAP_MS)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = recent {
        sqlx::query("UPDATE sessions SET last_activity_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        return Ok(id);
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES ($1, $2, $2) RETURNING id",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

async fn load_turn(tx: &mut Transaction<'_, Any>, turn_id: &str) -> Result<ClaimedTurn, StoreError> {
    let turn = sqlx::query(
        "SELECT t.user_id, t.reply_text, t.last_message_at, u.phone, u.bsuid \
         FROM turns t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(turn_id)
    .fetch_one(&mut **tx)
    .await?;
    let messages = sqlx::query(
        "SELECT wa_message_id, kind, body FROM inbound_messages WHERE turn_id = $1 ORDER BY sent_at_secs, id",
    )
    .bind(turn_id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| {
        Ok(TurnMessage {
            wa_message_id: row.try_get("wa_message_id")?,
            kind: row.try_get("kind")?,
            body: row.try_get("body")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let done_parts: Vec<i64> = sqlx::query_scalar("SELECT part_index FROM outbound_messages WHERE turn_id = $1")
        .bind(turn_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok(ClaimedTurn {
        id: turn_id.to_owned(),
        user_id: turn.try_get("user_id")?,
        recipient: Recipient::from_columns(turn.try_get("phone")?, turn.try_get("bsuid")?),
        messages,
        last_message_at: turn.try_get("last_message_at")?,
        reply: turn.try_get("reply_text")?,
        done_parts,
    })
}
