//! A turn is everything a person said between two replies. Its row is the
//! unit of exactly-once: claiming it is a conditional write that only one
//! process can win, and its lease lets another process finish it if the
//! owner dies.

use super::people::Recipient;
use super::{Backend, Params, Store, StoreError};
use crate::domain::Source;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

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
    pub reply: Option<SavedReply>,
    /// Parts of the reply already handed to WhatsApp (or failed for good).
    pub done_parts: Vec<i64>,
    /// The person's earlier answered turns, oldest first, for the prompt.
    pub history: Vec<HistoryTurn>,
}

impl ClaimedTurn {
    /// Everything readable the person said in this turn, in the order they
    /// sent it; empty when they sent only things the bot cannot read.
    pub fn user_text(&self) -> String {
        combine(self.messages.iter().map(|m| m.body.as_deref()))
    }
}

fn combine<'a>(bodies: impl Iterator<Item = Option<&'a str>>) -> String {
    bodies.flatten().collect::<Vec<_>>().join("\n")
}

#[derive(Debug, Clone, PartialEq)]
pub struct SavedReply {
    pub text: String,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TurnMessage {
    pub wa_message_id: String,
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
    /// `llm`, `offline`, `fallback` or `unreadable`.
    pub kind: &'a str,
    pub usage: LlmUsage,
    pub sources: &'a [Source],
}

pub struct ClaimWindow {
    pub quiet_ms: i64,
    pub max_wait_ms: i64,
    pub lease_ms: i64,
    /// Earlier turns loaded with each claimed turn.
    pub history_turns: usize,
}

const SESSION_GAP_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Claims the turns of every person in `user_ids` whose quiet window is
    /// over, in one transaction of a few set-based statements: when a
    /// thousand windows end together, their LLM requests must not queue
    /// behind a thousand separate transactions.
    pub async fn claim_turns(
        &self,
        user_ids: &[i64],
        owner: &str,
        now: i64,
        window: &ClaimWindow,
    ) -> Result<Vec<(i64, Claim)>, StoreError> {
        let mut claims: Vec<(i64, Claim)> = Vec::new();
        for chunk in user_ids.chunks(CLAIM_CHUNK) {
            let mut tx = self.write_tx().await?;
            claims.extend(claim_chunk(&mut tx, self.backend, chunk, owner, now, window).await?);
            tx.commit().await?;
        }
        Ok(claims)
    }

    /// Takes over turns whose owner died mid-answer (its lease ran out).
    pub async fn reclaim_expired(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        history_turns: usize,
    ) -> Result<Vec<ClaimedTurn>, StoreError> {
        let expired: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM turns WHERE status = 'answering' AND lease_until <= $1 ORDER BY created_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut reclaimed = Vec::new();
        for turn_id in expired {
            let mut tx = self.write_tx().await?;
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
                reclaimed.push(load_turn(&mut tx, self.backend, &turn_id, history_turns).await?);
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

    /// What each of `user_ids` has said since their last reply, combined as
    /// [`ClaimedTurn::user_text`] will combine it once the turn is claimed.
    /// People with nothing readable waiting are left out.
    pub async fn waiting_texts(&self, user_ids: &[i64]) -> Result<Vec<String>, StoreError> {
        let mut texts = Vec::new();
        for chunk in user_ids.chunks(CLAIM_CHUNK) {
            let sql = format!(
                "SELECT user_id, body FROM inbound_messages WHERE turn_id IS NULL AND wants_reply AND user_id IN ({}) \
                 ORDER BY user_id, sent_at_secs, id",
                Params::new(self.backend).list(chunk.len())
            );
            let rows = bind_ids(sqlx::query(&sql), chunk).fetch_all(&self.pool).await?;
            let mut said: Vec<(i64, Option<String>)> = Vec::with_capacity(rows.len());
            for row in rows {
                said.push((row.try_get("user_id")?, row.try_get("body")?));
            }
            for person in said.chunk_by(|a, b| a.0 == b.0) {
                let text = combine(person.iter().map(|(_, body)| body.as_deref()));
                if !text.is_empty() {
                    texts.push(text);
                }
            }
        }
        Ok(texts)
    }

    /// Keeps the reply before sending it, so an owner that dies mid-send
    /// is resumed with the same words, not a second LLM answer.
    /// Returns `false` when another process has taken the turn over.
    pub async fn save_reply(&self, turn_id: &str, owner: &str, record: &ReplyRecord<'_>) -> Result<bool, StoreError> {
        let saved = sqlx::query(
            "UPDATE turns SET user_text = $1, reply_text = $2, reply_kind = $3, model = $4, llm_latency_ms = $5, \
             prompt_tokens = $6, completion_tokens = $7, sources = $8 \
             WHERE id = $9 AND owner = $10 AND status = 'answering'",
        )
        .bind(record.user_text)
        .bind(record.reply)
        .bind(record.kind)
        .bind(&record.usage.model)
        .bind(record.usage.latency_ms)
        .bind(record.usage.prompt_tokens)
        .bind(record.usage.completion_tokens)
        .bind(sources_json(record.sources))
        .bind(turn_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(saved.rows_affected() == 1)
    }

    /// Extends this owner's lease; `false` means another process took the
    /// turn over and this one must stop before sending anything more.
    pub async fn renew_lease(&self, turn_id: &str, owner: &str, now: i64, lease_ms: i64) -> Result<bool, StoreError> {
        let renewed =
            sqlx::query("UPDATE turns SET lease_until = $1 WHERE id = $2 AND owner = $3 AND status = 'answering'")
                .bind(now + lease_ms)
                .bind(turn_id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
        Ok(renewed.rows_affected() == 1)
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
        if let Some(wa_id) = wa_id {
            apply_early_statuses(&self.pool, wa_id).await?;
        }
        Ok(())
    }

    /// Hands this owner's unfinished turns back, so the next process (or
    /// another replica) resumes them now instead of when the lease ends.
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let released = sqlx::query("UPDATE turns SET lease_until = 0 WHERE owner = $1 AND status = 'answering'")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(released.rows_affected())
    }

    /// Marks the turn done. Without `keep_text` its words (the person's
    /// messages, the reply and its parts) are dropped in the same
    /// transaction; ids, times, statuses and usage stay, which is all that
    /// exactly-once and the statistics need.
    pub async fn finish_turn(
        &self,
        turn_id: &str,
        owner: &str,
        status: &str,
        now: i64,
        keep_text: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let finished = sqlx::query("UPDATE turns SET status = $1, answered_at = $2 WHERE id = $3 AND owner = $4")
            .bind(status)
            .bind(now)
            .bind(turn_id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if finished == 1 && !keep_text {
            for forget in [
                "UPDATE turns SET user_text = NULL, reply_text = NULL WHERE id = $1",
                "UPDATE inbound_messages SET body = NULL WHERE turn_id = $1",
                "UPDATE outbound_messages SET body = NULL WHERE turn_id = $1",
            ] {
                sqlx::query(forget).bind(turn_id).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// People per claim transaction; keeps every statement well under the
/// databases' bind-parameter limits.
const CLAIM_CHUNK: usize = 500;

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Binds `ids` in order, after whatever the query already has bound.
fn bind_ids<'q>(query: AnyQuery<'q>, ids: &[i64]) -> AnyQuery<'q> {
    ids.iter().fold(query, |query, id| query.bind(*id))
}

/// A status webhook can beat us to recording the send it is about; the
/// best status already logged for the message is applied now.
async fn apply_early_statuses(pool: &sqlx::AnyPool, wa_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbound_messages SET \
           status = (SELECT d.status FROM delivery_statuses d WHERE d.wa_message_id = $1 \
                     ORDER BY d.status_rank DESC LIMIT 1), \
           status_rank = (SELECT MAX(d.status_rank) FROM delivery_statuses d WHERE d.wa_message_id = $1), \
           error_code = (SELECT MAX(d.error_code) FROM delivery_statuses d WHERE d.wa_message_id = $1) \
         WHERE wa_message_id = $1 AND EXISTS (SELECT 1 FROM delivery_statuses d WHERE d.wa_message_id = $1)",
    )
    .bind(wa_id)
    .execute(pool)
    .await?;
    Ok(())
}

async fn claim_chunk(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    owner: &str,
    now: i64,
    window: &ClaimWindow,
) -> Result<Vec<(i64, Claim)>, StoreError> {
    // Locks the people's rows on PostgreSQL, so claims for one person are
    // serialised across replicas. SQLite's `BEGIN IMMEDIATE` already made
    // this transaction the only writer.
    if backend == Backend::Postgres {
        let mut p = Params::new(backend);
        let lock_sql = format!("UPDATE users SET last_claim_at = {} WHERE id IN ({})", p.one(), p.list(user_ids.len()));
        bind_ids(sqlx::query(&lock_sql).bind(now), user_ids).execute(&mut **tx).await?;
    }

    let mut p = Params::new(backend);
    let busy_sql = format!(
        "SELECT DISTINCT user_id FROM turns WHERE status = 'answering' AND lease_until > {} AND user_id IN ({})",
        p.one(),
        p.list(user_ids.len())
    );
    let busy = bind_ids(sqlx::query(&busy_sql).bind(now), user_ids)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>("user_id"))
        .collect::<Result<Vec<_>, _>>()?;

    let waiting_sql = format!(
        "SELECT user_id, MIN(received_at) AS first_at, MAX(received_at) AS last_at FROM inbound_messages \
         WHERE turn_id IS NULL AND wants_reply AND user_id IN ({}) GROUP BY user_id",
        Params::new(backend).list(user_ids.len())
    );
    let mut waiting = HashMap::new();
    for row in bind_ids(sqlx::query(&waiting_sql), user_ids).fetch_all(&mut **tx).await? {
        let (first_at, last_at): (i64, i64) = (row.try_get("first_at")?, row.try_get("last_at")?);
        waiting.insert(row.try_get::<i64, _>("user_id")?, (first_at, last_at));
    }

    let mut claims = Vec::new();
    let mut due = Vec::new();
    for &user_id in user_ids {
        let claim = match waiting.get(&user_id) {
            _ if busy.contains(&user_id) => Claim::Busy,
            None => Claim::Nothing,
            Some(&(first_at, last_at)) => {
                let due_at = (last_at + window.quiet_ms).min(first_at + window.max_wait_ms);
                if due_at > now {
                    Claim::NotYet { due_at }
                } else {
                    due.push((user_id, last_at));
                    continue;
                }
            }
        };
        claims.push((user_id, claim));
    }
    if due.is_empty() {
        return Ok(claims);
    }
    let due_ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
    let sessions = touch_sessions(tx, backend, &due_ids, now).await?;
    let turns: Vec<(i64, String, i64)> =
        due.iter().map(|&(user_id, last_at)| (user_id, uuid::Uuid::new_v4().to_string(), last_at)).collect();

    let mut p = Params::new(backend);
    let values: Vec<String> = turns.iter().map(|_| format!("({}, 'answering')", p.list(7))).collect();
    let insert = format!(
        "INSERT INTO turns (id, user_id, session_id, owner, lease_until, created_at, last_message_at, status) VALUES {}",
        values.join(", ")
    );
    let mut insert_query = sqlx::query(&insert);
    for (user_id, turn_id, last_at) in &turns {
        insert_query = insert_query
            .bind(turn_id)
            .bind(user_id)
            .bind(sessions[user_id])
            .bind(owner)
            .bind(now + window.lease_ms)
            .bind(now)
            .bind(last_at);
    }
    insert_query.execute(&mut **tx).await?;

    // Each person has exactly one turn created by this owner at `now`.
    let mut p = Params::new(backend);
    let attach = format!(
        "UPDATE inbound_messages SET turn_id = (SELECT t.id FROM turns t WHERE t.user_id = inbound_messages.user_id \
           AND t.owner = {} AND t.created_at = {} AND t.status = 'answering') \
         WHERE turn_id IS NULL AND wants_reply AND user_id IN ({})",
        p.one(),
        p.one(),
        p.list(due_ids.len())
    );
    bind_ids(sqlx::query(&attach).bind(owner).bind(now), &due_ids).execute(&mut **tx).await?;

    let turn_ids: Vec<(i64, String)> = turns.into_iter().map(|(user_id, turn_id, _)| (user_id, turn_id)).collect();
    claims.extend(load_new_turns(tx, backend, &turn_ids, &due, window.history_turns).await?);
    Ok(claims)
}

/// Loads just-claimed turns with two queries for the whole batch.
async fn load_new_turns(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    turns: &[(i64, String)],
    due: &[(i64, i64)],
    history_turns: usize,
) -> Result<Vec<(i64, Claim)>, StoreError> {
    let messages_sql = format!(
        "SELECT turn_id, wa_message_id, body FROM inbound_messages WHERE turn_id IN ({}) ORDER BY sent_at_secs, id",
        Params::new(backend).list(turns.len())
    );
    let mut messages_query = sqlx::query(&messages_sql);
    for (_, turn_id) in turns {
        messages_query = messages_query.bind(turn_id);
    }
    let mut messages: HashMap<String, Vec<TurnMessage>> = HashMap::new();
    for row in messages_query.fetch_all(&mut **tx).await? {
        messages
            .entry(row.try_get("turn_id")?)
            .or_default()
            .push(TurnMessage { wa_message_id: row.try_get("wa_message_id")?, body: row.try_get("body")? });
    }
    let users_sql = format!(
        "SELECT id, channel, phone, bsuid, address FROM users WHERE id IN ({})",
        Params::new(backend).list(turns.len())
    );
    let user_ids: Vec<i64> = turns.iter().map(|(user_id, _)| *user_id).collect();
    let mut recipients = HashMap::new();
    for row in bind_ids(sqlx::query(&users_sql), &user_ids).fetch_all(&mut **tx).await? {
        recipients.insert(row.try_get::<i64, _>("id")?, Recipient::from_row(&row)?);
    }
    let mut history = load_history(tx, backend, &user_ids, history_turns).await?;
    let last_message: HashMap<i64, i64> = due.iter().copied().collect();
    Ok(turns
        .iter()
        .map(|(user_id, turn_id)| {
            let turn = ClaimedTurn {
                id: turn_id.clone(),
                user_id: *user_id,
                recipient: recipients.remove(user_id).flatten(),
                messages: messages.remove(turn_id).unwrap_or_default(),
                last_message_at: last_message[user_id],
                reply: None,
                done_parts: Vec::new(),
                history: history.remove(user_id).unwrap_or_default(),
            };
            (*user_id, Claim::Claimed(turn))
        })
        .collect())
}

/// Continues each person's session, or starts one after a long silence;
/// returns the session id per person.
async fn touch_sessions(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    now: i64,
) -> Result<HashMap<i64, i64>, StoreError> {
    let mut p = Params::new(backend);
    let recent_sql = format!(
        "SELECT user_id, MAX(id) AS id FROM sessions WHERE last_activity_at > {} AND user_id IN ({}) GROUP BY user_id",
        p.one(),
        p.list(user_ids.len())
    );
    let mut sessions = HashMap::new();
    for row in bind_ids(sqlx::query(&recent_sql).bind(now - SESSION_GAP_MS), user_ids).fetch_all(&mut **tx).await? {
        sessions.insert(row.try_get::<i64, _>("user_id")?, row.try_get::<i64, _>("id")?);
    }
    if !sessions.is_empty() {
        let mut p = Params::new(backend);
        let touch_sql =
            format!("UPDATE sessions SET last_activity_at = {} WHERE id IN ({})", p.one(), p.list(sessions.len()));
        let session_ids: Vec<i64> = sessions.values().copied().collect();
        bind_ids(sqlx::query(&touch_sql).bind(now), &session_ids).execute(&mut **tx).await?;
    }
    let new: Vec<i64> = user_ids.iter().copied().filter(|id| !sessions.contains_key(id)).collect();
    if !new.is_empty() {
        let mut p = Params::new(backend);
        let values: Vec<String> = new.iter().map(|_| format!("({})", p.list(3))).collect();
        let insert_sql = format!(
            "INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES {} RETURNING id, user_id",
            values.join(", ")
        );
        let insert_query = new.iter().fold(sqlx::query(&insert_sql), |q, id| q.bind(id).bind(now).bind(now));
        for row in insert_query.fetch_all(&mut **tx).await? {
            sessions.insert(row.try_get::<i64, _>("user_id")?, row.try_get::<i64, _>("id")?);
        }
    }
    Ok(sessions)
}

/// The last `limit` answered turns of each person, oldest first, in one
/// query. Fallback apologies are left out: they would teach the model
/// nothing and crowd out real answers. So are turns whose words were not
/// kept (`ENABLE_CHAT_LOGGING=false`).
async fn load_history(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    limit: usize,
) -> Result<HashMap<i64, Vec<HistoryTurn>>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "SELECT user_id, user_text, reply_text FROM ( \
           SELECT user_id, user_text, reply_text, created_at, \
                  ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY created_at DESC) AS recent \
           FROM turns WHERE status = 'answered' AND reply_kind = 'llm' \
             AND user_text IS NOT NULL AND reply_text IS NOT NULL AND user_id IN ({}) \
         ) latest WHERE recent <= {} ORDER BY user_id, created_at",
        p.list(user_ids.len()),
        p.one()
    );
    let mut history: HashMap<i64, Vec<HistoryTurn>> = HashMap::new();
    for row in bind_ids(sqlx::query(&sql), user_ids).bind(limit as i64).fetch_all(&mut **tx).await? {
        history
            .entry(row.try_get("user_id")?)
            .or_default()
            .push(HistoryTurn { user: row.try_get("user_text")?, assistant: row.try_get("reply_text")? });
    }
    Ok(history)
}

async fn load_turn(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    turn_id: &str,
    history_turns: usize,
) -> Result<ClaimedTurn, StoreError> {
    let turn = sqlx::query(
        "SELECT t.user_id, t.reply_text, t.sources, t.last_message_at, u.channel, u.phone, u.bsuid, u.address \
         FROM turns t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(turn_id)
    .fetch_one(&mut **tx)
    .await?;
    let messages =
        sqlx::query("SELECT wa_message_id, body FROM inbound_messages WHERE turn_id = $1 ORDER BY sent_at_secs, id")
            .bind(turn_id)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| Ok(TurnMessage { wa_message_id: row.try_get("wa_message_id")?, body: row.try_get("body")? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
    let done_parts: Vec<i64> = sqlx::query_scalar("SELECT part_index FROM outbound_messages WHERE turn_id = $1")
        .bind(turn_id)
        .fetch_all(&mut **tx)
        .await?;
    let user_id: i64 = turn.try_get("user_id")?;
    let history = load_history(tx, backend, &[user_id], history_turns).await?.remove(&user_id).unwrap_or_default();
    Ok(ClaimedTurn {
        id: turn_id.to_owned(),
        user_id,
        history,
        recipient: Recipient::from_row(&turn)?,
        messages,
        last_message_at: turn.try_get("last_message_at")?,
        reply: saved_reply(turn.try_get("reply_text")?, turn.try_get("sources")?),
        done_parts,
    })
}

pub(super) fn sources_json(sources: &[Source]) -> String {
    serde_json::to_string(sources).unwrap_or_else(|_| "[]".to_owned())
}

/// Sources are shown, never acted on: unreadable JSON becomes none.
pub(super) fn parse_sources(json: Option<String>) -> Vec<Source> {
    json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default()
}

fn saved_reply(text: Option<String>, sources: Option<String>) -> Option<SavedReply> {
    text.map(|text| SavedReply { text, sources: parse_sources(sources) })
}
