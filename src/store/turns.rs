//! A turn is everything a person said between two replies. Its row is the
//! unit of exactly-once: claiming it (see `claim`) is a write that only one
//! process can win, and its lease lets another process finish it if the
//! owner dies.

use super::contacts::{consent_in, Consent};
use super::handoff::{mode_now, pause_in};
use super::outbox::QueuedReply;
use super::usage::{recent_turns, RecentTurns};
use super::{bind_ids, Backend, Params, Store, StoreError};
use crate::contacts::ChangeSource;
use crate::domain::HistoryTurn;
use crate::domain::Source;
use crate::domain::HOUR_MS;
use crate::domain::{AccountName, PhoneNumber, Recipient};
use crate::handoff::{Mode, Pause, PauseOutcome};
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
    /// A person of the business has the conversation: the person's
    /// `messages` were consumed by turn `turn_id`, which nobody answers;
    /// `opted_out` when they were an opt-out phrase that changed the
    /// person's consent.
    Held { turn_id: String, messages: usize, opted_out: bool },
}

/// What became of a reply handed to [`Store::answer_turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Saved and its parts queued, after the pause it came with (`None`
    /// without one); `consent_changed` when the customer's own opt-out or
    /// opt-in that came with it changed their consent.
    Queued { pause: Option<PauseOutcome>, consent_changed: bool },
    /// The bot was paused while the reply was written: it is kept as the
    /// turn's draft for the agents, and nothing is queued.
    Draft,
    /// Another attempt owns or settled the turn: nothing was saved.
    Lost,
}

#[derive(Debug, Clone)]
pub struct ClaimedTurn {
    pub id: String,
    /// This attempt's fencing token (the turn's `owner`): every write about
    /// the turn checks it, so an attempt that lost its lease to another
    /// (even one in the same process) can no longer save or queue anything.
    pub token: String,
    pub user_id: i64,
    pub recipient: Option<Recipient>,
    /// The business's number the person wrote to, which answers them.
    pub account: AccountName,
    pub messages: Vec<TurnMessage>,
    /// When the person's last message of this turn reached us.
    pub last_message_at: i64,
    /// The reply, when an earlier owner already got it from the LLM (a
    /// turn taken over from a version that saved replies before sending).
    pub reply: Option<SavedReply>,
    /// The person's earlier answered turns, oldest first, for the prompt.
    pub history: Vec<HistoryTurn>,
    /// The person's turns in the hour before this one, for the limits.
    pub recent: RecentTurns,
}

impl ClaimedTurn {
    /// Everything readable the person said in this turn, in the order they
    /// sent it; empty when they sent only things the bot cannot read.
    pub fn user_text(&self) -> String {
        combine(self.messages.iter().map(|m| m.body.as_deref()))
    }
}

pub(super) fn combine<'a>(bodies: impl Iterator<Item = Option<&'a str>>) -> String {
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
    pub kind: String,
    /// What the message says in words (text, caption, place, cards).
    pub body: Option<String>,
    /// The message it replies to (`context.id`).
    pub reply_to: Option<String>,
    /// The file it carries and how far reading it got.
    pub media: Option<MessageMedia>,
}

/// A message's file as stored (see migration 0012 for the steps).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageMedia {
    pub media_id: Option<String>,
    pub mime: Option<String>,
    pub file_name: Option<String>,
    pub outcome: Option<String>,
    /// SHA-256 of the bytes: the file's name in the media folder.
    pub file: Option<String>,
    pub bytes: Option<i64>,
    /// The transcript or the document's text.
    pub text: Option<String>,
}

/// The media columns [`MessageMedia::from_row`] reads.
pub(super) const MEDIA_COLUMNS: &str =
    "media_id, media_mime, media_name, media_outcome, media_file, media_bytes, media_text";

impl MessageMedia {
    /// `None` for a message that carries no file.
    pub(super) fn from_row(row: &sqlx::any::AnyRow) -> Result<Option<Self>, StoreError> {
        let media = MessageMedia {
            media_id: row.try_get("media_id")?,
            mime: row.try_get("media_mime")?,
            file_name: row.try_get("media_name")?,
            outcome: row.try_get("media_outcome")?,
            file: row.try_get("media_file")?,
            bytes: row.try_get("media_bytes")?,
            text: row.try_get("media_text")?,
        };
        let has_media = media.media_id.is_some() || media.file.is_some() || media.outcome.is_some();
        Ok(has_media.then_some(media))
    }
}

impl TurnMessage {
    pub(super) fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            wa_message_id: row.try_get("wa_message_id")?,
            kind: row.try_get("kind")?,
            body: row.try_get("body")?,
            reply_to: row.try_get("reply_to")?,
            media: MessageMedia::from_row(row)?,
        })
    }
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

/// A customer's own opt-out or opt-in, settled with the turn that said it.
pub struct TurnConsent<'a> {
    pub account: &'a AccountName,
    pub phone: &'a PhoneNumber,
    pub to: Consent,
    /// The phrase they wrote, in its normalised words, for the consent log.
    pub phrase: &'a str,
}

pub struct ClaimWindow {
    pub quiet_ms: i64,
    pub max_wait_ms: i64,
    pub lease_ms: i64,
    /// Earlier turns loaded with each claimed turn.
    pub history_turns: usize,
}

impl Store {
    /// Takes over turns whose owner's lease ran out, each under a new token
    /// from `new_token`. Turns for which `in_flight` says this process is
    /// still working on them are left alone: their heartbeat renews them.
    pub async fn reclaim_expired(
        &self,
        new_token: impl Fn() -> String,
        in_flight: impl Fn(&str) -> bool,
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
        for turn_id in expired.into_iter().filter(|id| !in_flight(id)) {
            let token = new_token();
            let mut tx = self.write_tx().await?;
            let won = sqlx::query(
                "UPDATE turns SET owner = $1, lease_until = $2 \
                 WHERE id = $3 AND status = 'answering' AND lease_until <= $4",
            )
            .bind(&token)
            .bind(now + lease_ms)
            .bind(&turn_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if won == 1 {
                reclaimed.push(load_turn(&mut tx, self.backend, &turn_id, token, history_turns).await?);
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

    /// Settles the turn with its reply and queues the reply's parts in the
    /// outbox, in one transaction: a turn is answered once, and its reply
    /// queued once, however many attempts got this far. With `pause`, the
    /// bot is paused in that transaction too, before the parts are queued
    /// (so the pause does not cancel them). With `consent`, the customer's
    /// consent changes (and is logged) in that transaction too, and the
    /// reply, which confirms the change, goes out only if it changed: a
    /// repeated STOP is not answered again. If the bot was paused meanwhile
    /// the reply is only kept, as a draft.
    pub async fn answer_turn(
        &self,
        record: &ReplyRecord<'_>,
        reply: &QueuedReply<'_>,
        pause: Option<&Pause>,
        consent: Option<&TurnConsent<'_>>,
        now: i64,
    ) -> Result<Answered, StoreError> {
        let mut tx = self.write_tx().await?;
        let consent_changed = match consent {
            Some(c) => {
                let source = ChangeSource::customer();
                Some(consent_in(&mut tx, c.account, c.phone, c.to, &source, Some(c.phrase), now).await?)
            }
            None => None,
        };
        let (reply_text, parts) = match consent_changed {
            Some(false) => ("", &[][..]),
            _ => (record.reply, reply.parts),
        };
        let paused = mode_now(&mut tx, self.backend, reply.user_id, now).await? == Some(Mode::Human);
        let answered = sqlx::query(
            "UPDATE turns SET user_text = $1, reply_text = $2, reply_kind = $3, model = $4, llm_latency_ms = $5, \
               prompt_tokens = $6, completion_tokens = $7, sources = $8, status = $9, answered_at = $10 \
             WHERE id = $11 AND owner = $12 AND status = 'answering'",
        )
        .bind(record.user_text)
        .bind(reply_text)
        .bind(record.kind)
        .bind(&record.usage.model)
        .bind(record.usage.latency_ms)
        .bind(record.usage.prompt_tokens)
        .bind(record.usage.completion_tokens)
        .bind(sources_json(record.sources))
        .bind(if paused { "draft" } else { "answered" })
        .bind(now)
        .bind(reply.turn_id)
        .bind(reply.token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if answered != 1 {
            return Ok(Answered::Lost);
        }
        if paused {
            tx.commit().await?;
            self.conversations_changed();
            return Ok(Answered::Draft);
        }
        let paused = match pause {
            Some(pause) => pause_in(&mut tx, self.backend, reply.user_id, pause, now).await?,
            None => None,
        };
        Store::queue_parts(&mut tx, self.backend, &QueuedReply { parts, ..*reply }, now).await?;
        tx.commit().await?;
        self.conversations_changed();
        Ok(Answered::Queued { pause: paused, consent_changed: consent_changed.unwrap_or(false) })
    }

    /// Extends this attempt's lease; `false` means another attempt took the
    /// turn over (or it is settled) and this one must stop.
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

    /// Hands every unfinished turn of this process (tokens starting with
    /// `process:`) back, so the next process (or another replica) resumes
    /// them now instead of when their lease ends.
    pub async fn release_leases(&self, process: &str) -> Result<u64, StoreError> {
        let released = sqlx::query("UPDATE turns SET lease_until = 0 WHERE owner LIKE $1 AND status = 'answering'")
            .bind(format!("{process}:%"))
            .execute(&self.pool)
            .await?;
        Ok(released.rows_affected())
    }

    /// Settles a turn that cannot be answered at all (its person has no
    /// address any channel can reach).
    pub async fn fail_turn(&self, turn_id: &str, owner: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE turns SET status = 'failed', answered_at = $1 WHERE id = $2 AND owner = $3")
            .bind(now)
            .bind(turn_id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Drops the words of a turn whose reply is out (`ENABLE_CHAT_LOGGING=false`):
/// the person's messages, what their files said and the files themselves
/// (the daily sweep deletes a file no message refers to), the reply and its
/// parts. Ids, times, statuses and usage stay, which is all that
/// exactly-once and the statistics need.
pub(super) async fn forget_words(tx: &mut Transaction<'_, Any>, turn_id: &str) -> Result<(), StoreError> {
    for forget in [
        "UPDATE turns SET user_text = NULL, reply_text = NULL WHERE id = $1",
        "UPDATE inbound_messages SET body = NULL, media_text = NULL, media_file = NULL WHERE turn_id = $1",
        "UPDATE outbound_messages SET body = NULL WHERE turn_id = $1",
    ] {
        sqlx::query(forget).bind(turn_id).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A status webhook can beat us to recording the send it is about; the
/// best status already logged for the message is applied now.
pub(super) async fn apply_early_statuses(tx: &mut Transaction<'_, Any>, wa_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbound_messages SET \
           status = (SELECT d.status FROM delivery_statuses d WHERE d.wa_message_id = $1 \
                     ORDER BY d.status_rank DESC LIMIT 1), \
           status_rank = (SELECT MAX(d.status_rank) FROM delivery_statuses d WHERE d.wa_message_id = $1), \
           error_code = (SELECT MAX(d.error_code) FROM delivery_statuses d WHERE d.wa_message_id = $1) \
         WHERE wa_message_id = $1 AND EXISTS (SELECT 1 FROM delivery_statuses d WHERE d.wa_message_id = $1)",
    )
    .bind(wa_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The last `limit` exchanges of each person, oldest first, in one query:
/// turns the LLM answered, and what was said while a person of the business
/// had the conversation (the person's held and drafted turns, the agents'
/// and the phone's messages), interleaved by time. Fallback apologies are
/// left out: they would teach the model nothing and crowd out real answers.
/// So are turns whose words were not kept (`ENABLE_CHAT_LOGGING=false`)
/// and drafts' replies, which the person never saw.
pub(super) async fn load_history(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    limit: usize,
) -> Result<HashMap<i64, Vec<HistoryTurn>>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "SELECT user_id, user_text, reply_text FROM ( \
           SELECT user_id, at, user_text, reply_text, \
                  ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY at DESC) AS recent \
           FROM ( \
             SELECT user_id, last_message_at AS at, user_text, \
                    CASE WHEN status = 'answered' THEN reply_text END AS reply_text \
             FROM turns WHERE user_id IN ({}) AND user_text IS NOT NULL \
               AND ((status = 'answered' AND reply_kind = 'llm' AND reply_text IS NOT NULL) \
                 OR status IN ('held', 'draft')) \
             UNION ALL \
             SELECT user_id, created_at AS at, NULL AS user_text, body AS reply_text \
             FROM outbound_messages WHERE user_id IN ({}) AND origin IN ('agent', 'echo', 'api') AND body IS NOT NULL \
               AND state NOT IN ('failed_permanent', 'dead', 'cancelled') \
           ) said \
         ) latest WHERE recent <= {} ORDER BY user_id, at",
        p.list(user_ids.len()),
        p.list(user_ids.len()),
        p.one()
    );
    let query = bind_ids(bind_ids(sqlx::query(&sql), user_ids), user_ids).bind(limit as i64);
    let mut history: HashMap<i64, Vec<HistoryTurn>> = HashMap::new();
    for row in query.fetch_all(&mut **tx).await? {
        let turns = history.entry(row.try_get("user_id")?).or_default();
        said(turns, row.try_get("user_text")?, row.try_get("reply_text")?);
    }
    Ok(history)
}

/// Adds what was said next to `turns`: the person's words after an answer
/// start a new turn, and words of the same side in a row join into one.
fn said(turns: &mut Vec<HistoryTurn>, user: Option<String>, reply: Option<String>) {
    fn join(to: &mut String, text: String) {
        if !to.is_empty() {
            to.push('\n');
        }
        to.push_str(&text);
    }
    if let Some(user) = user {
        match turns.last_mut() {
            Some(last) if last.assistant.is_empty() => join(&mut last.user, user),
            _ => turns.push(HistoryTurn { user, assistant: String::new() }),
        }
    }
    if let Some(reply) = reply {
        match turns.last_mut() {
            Some(last) => join(&mut last.assistant, reply),
            None => turns.push(HistoryTurn { user: String::new(), assistant: reply }),
        }
    }
}

async fn load_turn(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    turn_id: &str,
    token: String,
    history_turns: usize,
) -> Result<ClaimedTurn, StoreError> {
    let turn = sqlx::query(
        "SELECT t.user_id, t.reply_text, t.sources, t.last_message_at, t.created_at, \
           u.channel, u.account, u.phone, u.bsuid, u.address \
         FROM turns t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(turn_id)
    .fetch_one(&mut **tx)
    .await?;
    let sql = format!(
        "SELECT wa_message_id, kind, body, reply_to, {MEDIA_COLUMNS} FROM inbound_messages \
         WHERE turn_id = $1 ORDER BY sent_at_secs, id"
    );
    let messages = sqlx::query(&sql)
        .bind(turn_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(TurnMessage::from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let user_id: i64 = turn.try_get("user_id")?;
    let history = load_history(tx, backend, &[user_id], history_turns).await?.remove(&user_id).unwrap_or_default();
    let since = turn.try_get::<i64, _>("created_at")? - HOUR_MS;
    let recent = recent_turns(tx, backend, &[user_id], since).await?.remove(&user_id).unwrap_or_default();
    Ok(ClaimedTurn {
        id: turn_id.to_owned(),
        token,
        user_id,
        history,
        recent,
        recipient: super::people::recipient_from_row(&turn)?,
        account: super::people::account_from_row(&turn)?,
        messages,
        last_message_at: turn.try_get("last_message_at")?,
        reply: saved_reply(turn.try_get("reply_text")?, turn.try_get("sources")?),
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
