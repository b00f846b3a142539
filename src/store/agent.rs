//! What people of the business write: an agent's message, queued in the
//! outbox like the bot's replies (a row per part, sent and retried by the
//! same worker) exactly once per idempotency key, with the pause it starts
//! in the same transaction; and echoes of what was sent from the WhatsApp
//! Business app, stored as sent messages that pause the bot.

use super::handoff::{pause_in, resume_in};
use super::outbox::{insert_parts, NewParts, SendState};
use super::people::{upsert_person, PeopleCache};
use super::{Store, StoreError};
use crate::domain::{DeliveryStatus, Echo};
use crate::handoff::window::ReplyWindow;
use crate::handoff::{Actor, Pause, PauseOutcome, ResumeOutcome};
use sqlx::{Any, Row, Transaction};

/// An agent's message, in the parts it is sent in.
pub struct AgentMessage<'a> {
    pub user_id: i64,
    pub author: &'a Actor,
    /// The same key again (a retried request, a double click) finds this
    /// message instead of queuing another.
    pub key: &'a str,
    pub parts: &'a [String],
    pub give_up_at: i64,
    pub then: Handover<'a>,
}

/// Who answers the person once an agent's message is queued.
pub enum Handover<'a> {
    /// The agent: the bot pauses, and the person waits for nobody any more.
    Pause(&'a Pause),
    /// The bot again: the agent's text followed the resume command.
    Resume,
}

/// One part of an agent's message as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPart {
    pub id: i64,
    pub state: SendState,
}

/// What queuing a message of the business did to its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    Paused(PauseOutcome),
    Resumed(ResumeOutcome),
}

/// What became of an agent's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSend {
    Queued(Vec<QueuedPart>, Handed),
    /// The key was used before for the same text: those parts, nothing new.
    Repeated(Vec<QueuedPart>),
    /// The key was used before for another text; nothing queued.
    KeyReused,
    /// WhatsApp would refuse free-form text now (131047); nothing queued.
    OutsideWindow(ReplyWindow),
    UnknownConversation,
}

/// An echo as [`Store::store_echoes`] takes it: what it does was decided by
/// the caller, which knows the pause length and the resume command.
pub struct EchoAction<'a> {
    pub echo: &'a Echo,
    /// `None`: the echo was the resume command; it is not shown in the
    /// transcript, and the bot answers the person again.
    pub pause: Option<&'a Pause>,
    /// What the transcript shows; `None` once chat logging is off.
    pub text: Option<String>,
}

impl Store {
    /// Queues an agent's message and hands the conversation over, in one
    /// transaction. Outside WhatsApp's 24-hour window nothing is queued.
    pub async fn queue_agent_message(&self, message: &AgentMessage<'_>, now: i64) -> Result<AgentSend, StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(earlier) = earlier_message(&mut *tx, message).await? {
            return Ok(earlier);
        }
        let Some(window) = self.window_of(&mut tx, message.user_id).await? else {
            return Ok(AgentSend::UnknownConversation);
        };
        if !window.open_at(now) {
            return Ok(AgentSend::OutsideWindow(window));
        }
        let parts = NewParts {
            user_id: message.user_id,
            origin: "agent",
            turn_id: None,
            author: Some(message.author.as_str()),
            idempotency_key: Some(message.key),
            parts: message.parts,
            give_up_at: message.give_up_at,
        };
        let ids = insert_parts(&mut tx, self.backend, &parts, now).await?;
        if ids.len() < message.parts.len() {
            // The same key committed by a request running beside this one
            // (PostgreSQL: its rows were invisible until it committed, and
            // the unique index made this insert wait for it).
            tx.rollback().await?;
            return Ok(earlier_message(&self.pool, message).await?.unwrap_or(AgentSend::KeyReused));
        }
        let handed = match message.then {
            Handover::Pause(pause) => {
                pause_in(&mut tx, self.backend, message.user_id, pause, now).await?.map(Handed::Paused)
            }
            Handover::Resume => {
                resume_in(&mut tx, self.backend, message.user_id, message.author, now).await?.map(Handed::Resumed)
            }
        };
        // The person's row was read above in this transaction.
        let Some(handed) = handed else { return Ok(AgentSend::UnknownConversation) };
        tx.commit().await?;
        self.conversations_changed();
        let parts = ids.into_iter().map(|id| QueuedPart { id, state: SendState::Queued }).collect();
        Ok(AgentSend::Queued(parts, handed))
    }

    /// Stores echoes as messages already sent to their customers and pauses
    /// (or, for the resume command, resumes) each conversation, all in one
    /// transaction, so a webhook is acknowledged only once all of it holds.
    /// Returns, for each echo in order, its conversation and what was done
    /// to it; `None` for one seen before (Meta redelivers), which changes
    /// nothing.
    pub async fn store_echoes(
        &self,
        echoes: &[EchoAction<'_>],
        now: i64,
    ) -> Result<Vec<Option<(i64, Handed)>>, StoreError> {
        if echoes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let mut people = PeopleCache::default();
        let mut handed = Vec::with_capacity(echoes.len());
        for action in echoes {
            let user_id = upsert_person(&mut tx, &mut people, &action.echo.to, now).await?;
            if !insert_echo(&mut tx, user_id, action, now).await? {
                handed.push(None);
                continue;
            }
            let done = match action.pause {
                Some(pause) => pause_in(&mut tx, self.backend, user_id, pause, now).await?.map(Handed::Paused),
                None => resume_in(&mut tx, self.backend, user_id, &Actor::phone(), now).await?.map(Handed::Resumed),
            };
            handed.push(done.map(|done| (user_id, done)));
        }
        tx.commit().await?;
        self.conversations_changed();
        Ok(handed)
    }

    /// The reply window of `user_id`'s conversation; `None` for an unknown
    /// person.
    pub async fn reply_window(&self, user_id: i64) -> Result<Option<ReplyWindow>, StoreError> {
        let mut connection = self.reader.acquire().await?;
        self.window_of(&mut connection, user_id).await
    }

    pub(super) async fn window_of(
        &self,
        connection: &mut sqlx::AnyConnection,
        user_id: i64,
    ) -> Result<Option<ReplyWindow>, StoreError> {
        let row = sqlx::query(
            "SELECT u.channel, u.account, \
               (SELECT MAX(m.received_at) FROM inbound_messages m WHERE m.user_id = u.id) AS last_message \
             FROM users u WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(&mut *connection)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (channel, account): (String, String) = (row.try_get("channel")?, row.try_get("account")?);
        Ok(Some(ReplyWindow::of(self.has_reply_window(&channel, &account), row.try_get("last_message")?)))
    }
}

/// The message queued earlier under the same key, if any: the same one
/// when its text is the same (or no longer kept), otherwise a reused key.
async fn earlier_message<'e, E>(executor: E, message: &AgentMessage<'_>) -> Result<Option<AgentSend>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = sqlx::query(
        "SELECT id, body, state FROM outbound_messages WHERE user_id = $1 AND idempotency_key = $2 ORDER BY part_index",
    )
    .bind(message.user_id)
    .bind(message.key)
    .fetch_all(executor)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(rows.len());
    let mut bodies = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: String = row.try_get("state")?;
        parts.push(QueuedPart { id: row.try_get("id")?, state: SendState::parse(&state).unwrap_or(SendState::Sent) });
        bodies.push(row.try_get::<Option<String>, _>("body")?);
    }
    let kept: Option<Vec<String>> = bodies.into_iter().collect();
    let same_text = kept.is_none_or(|kept| kept == message.parts);
    Ok(Some(if same_text { AgentSend::Repeated(parts) } else { AgentSend::KeyReused }))
}

/// `false` when the echo was stored before.
async fn insert_echo(
    tx: &mut Transaction<'_, Any>,
    user_id: i64,
    action: &EchoAction<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    // The resume command is kept only as a row that claims its id (so a
    // redelivery is recognised and its statuses are nobody's lost send),
    // under an origin the transcript does not show.
    let origin = if action.pause.is_some() { "echo" } else { "command" };
    let inserted = sqlx::query(
        "INSERT INTO outbound_messages (user_id, channel, origin, part_index, final_part, body, state, attempts, \
           next_attempt_at, give_up_at, wa_message_id, status, status_rank, created_at, updated_at, author) \
         VALUES ($1, (SELECT channel FROM users WHERE id = $1), $2, 0, TRUE, $3, 'sent', 0, $4, $4, $5, $6, $7, \
           $4, $4, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(origin)
    .bind(action.pause.and(action.text.as_deref()))
    .bind(now)
    .bind(action.echo.id.as_str())
    .bind(DeliveryStatus::Sent.as_str())
    .bind(DeliveryStatus::Sent.rank())
    .bind(Actor::phone().as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        // A status may have come before its echo.
        super::turns::apply_early_statuses(tx, action.echo.id.as_str()).await?;
    }
    Ok(inserted == 1)
}
