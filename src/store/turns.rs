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

/// People per claim transaction: the pipeline's whole batch, so a thousand
/// windows ending together are claimed in one transaction. No statement
/// binds more than three values per person, well under the databases'
/// bind-parameter limits.
const CLAIM_CHUNK: usize = 1000;

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
    let mut waiting = read_waiting(tx, backend, user_ids, now).await?;
    let mut claims = Vec::with_capacity(user_ids.len());
    let mut due = Vec::new();
    for &user_id in user_ids {
        let claim = match waiting.get(&user_id) {
            None => Claim::Nothing,
            Some(person) if person.busy => Claim::Busy,
            Some(person) => {
                let due_at = (person.last_at + window.quiet_ms).min(person.first_at + window.max_wait_ms);
                if due_at > now {
                    Claim::NotYet { due_at }
                } else {
                    due.push(user_id);
                    continue;
                }
            }
        };
        claims.push((user_id, claim));
    }
    if due.is_empty() {
        return Ok(claims);
    }
    continue_sessions(tx, backend, &due, &waiting, now).await?;
    // One id prefix for the batch: every turn id is `<prefix>-<user id>`,
    // which the statements below compute in SQL for all people at once.
    let prefix = uuid::Uuid::new_v4().to_string();
    create_turns(tx, backend, &prefix, &due, owner, now, now + window.lease_ms).await?;
    let mut messages = attach_messages(tx, backend, &prefix, &due).await?;
    let mut history = load_history(tx, backend, &due, window.history_turns).await?;
    for user_id in due {
        let Some(person) = waiting.remove(&user_id) else { continue };
        let turn = ClaimedTurn {
            id: format!("{prefix}-{user_id}"),
            user_id,
            recipient: person.recipient,
            messages: messages.remove(&user_id).unwrap_or_default(),
            last_message_at: person.last_at,
            reply: None,
            done_parts: Vec::new(),
            history: history.remove(&user_id).unwrap_or_default(),
        };
        claims.push((user_id, Claim::Claimed(turn)));
    }
    Ok(claims)
}

/// What the claim needs to know about a person with messages waiting.
struct Waiting {
    first_at: i64,
    last_at: i64,
    /// A reply to them is still being written.
    busy: bool,
    /// Their session, unless it ended with a long silence.
    recent_session: Option<i64>,
    recipient: Option<Recipient>,
}

/// Everything the claim decides on, for all of `user_ids` in one query.
async fn read_waiting(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    now: i64,
) -> Result<HashMap<i64, Waiting>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "SELECT i.user_id, MIN(i.received_at) AS first_at, MAX(i.received_at) AS last_at, \
           CAST(CASE WHEN EXISTS (SELECT 1 FROM turns t WHERE t.user_id = i.user_id AND t.status = 'answering' \
             AND t.lease_until > {}) THEN 1 ELSE 0 END AS BIGINT) AS busy, \
           (SELECT MAX(s.id) FROM sessions s WHERE s.user_id = i.user_id AND s.last_activity_at > {}) AS session_id, \
           u.channel, u.phone, u.bsuid, u.address \
         FROM inbound_messages i JOIN users u ON u.id = i.user_id \
         WHERE i.turn_id IS NULL AND i.wants_reply AND i.user_id IN ({}) GROUP BY i.user_id, u.id",
        p.one(),
        p.one(),
        p.list(user_ids.len())
    );
    let query = sqlx::query(&sql).bind(now).bind(now - SESSION_GAP_MS);
    let mut waiting = HashMap::with_capacity(user_ids.len());
    for row in bind_ids(query, user_ids).fetch_all(&mut **tx).await? {
        let person = Waiting {
            first_at: row.try_get("first_at")?,
            last_at: row.try_get("last_at")?,
            busy: row.try_get::<i64, _>("busy")? != 0,
            recent_session: row.try_get("session_id")?,
            recipient: Recipient::from_row(&row)?,
        };
        waiting.insert(row.try_get::<i64, _>("user_id")?, person);
    }
    Ok(waiting)
}

/// Continues each person's session, or starts one after a long silence.
/// A person's newest session is then the one their turn belongs to.
async fn continue_sessions(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    due: &[i64],
    waiting: &HashMap<i64, Waiting>,
    now: i64,
) -> Result<(), StoreError> {
    let (mut recent, mut new) = (Vec::new(), Vec::new());
    for &user_id in due {
        match waiting.get(&user_id).and_then(|person| person.recent_session) {
            Some(session_id) => recent.push(session_id),
            None => new.push(user_id),
        }
    }
    if !recent.is_empty() {
        let mut p = Params::new(backend);
        let touch_sql =
            format!("UPDATE sessions SET last_activity_at = {} WHERE id IN ({})", p.one(), p.list(recent.len()));
        bind_ids(sqlx::query(&touch_sql).bind(now), &recent).execute(&mut **tx).await?;
    }
    if !new.is_empty() {
        let mut p = Params::new(backend);
        let values: Vec<String> = new.iter().map(|_| format!("({})", p.list(3))).collect();
        let insert_sql =
            format!("INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES {}", values.join(", "));
        let insert_query = new.iter().fold(sqlx::query(&insert_sql), |q, id| q.bind(id).bind(now).bind(now));
        insert_query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// One `answering` turn per due person, owned by `owner` until `lease_until`.
async fn create_turns(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    prefix: &str,
    due: &[i64],
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<(), StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "INSERT INTO turns (id, user_id, session_id, owner, lease_until, created_at, last_message_at, status) \
         SELECT {} || '-' || i.user_id, i.user_id, (SELECT MAX(s.id) FROM sessions s WHERE s.user_id = i.user_id), \
           {}, {}, {}, MAX(i.received_at), 'answering' \
         FROM inbound_messages i WHERE i.turn_id IS NULL AND i.wants_reply AND i.user_id IN ({}) GROUP BY i.user_id",
        p.one(),
        p.one(),
        p.one(),
        p.one(),
        p.list(due.len())
    );
    let query = sqlx::query(&sql).bind(prefix).bind(owner).bind(lease_until).bind(now);
    bind_ids(query, due).execute(&mut **tx).await?;
    Ok(())
}

/// Moves each due person's waiting messages into their new turn and
/// returns them per person, in the order they were sent.
async fn attach_messages(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    prefix: &str,
    due: &[i64],
) -> Result<HashMap<i64, Vec<TurnMessage>>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "UPDATE inbound_messages SET turn_id = {} || '-' || user_id \
         WHERE turn_id IS NULL AND wants_reply AND user_id IN ({}) \
         RETURNING user_id, sent_at_secs, id, wa_message_id, body",
        p.one(),
        p.list(due.len())
    );
    let mut attached: Vec<(i64, i64, i64, TurnMessage)> = Vec::new();
    for row in bind_ids(sqlx::query(&sql).bind(prefix), due).fetch_all(&mut **tx).await? {
        let message = TurnMessage { wa_message_id: row.try_get("wa_message_id")?, body: row.try_get("body")? };
        attached.push((row.try_get("user_id")?, row.try_get("sent_at_secs")?, row.try_get("id")?, message));
    }
    attached.sort_unstable_by_key(|&(user_id, sent_at, id, _)| (user_id, sent_at, id));
    let mut messages: HashMap<i64, Vec<TurnMessage>> = HashMap::with_capacity(due.len());
    for (user_id, _, _, message) in attached {
        messages.entry(user_id).or_default().push(message);
    }
    Ok(messages)
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
