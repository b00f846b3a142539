//! The outbox: every message that leaves the server is a row before it is
//! sent, and only the sender worker (`crate::outbox`) moves it on. A row is
//! taken for one attempt under a token of its own, so an attempt that
//! outlived its lease can no longer record anything over a later one.

use super::outbound_files::keep_file;
use super::turns::parse_sources;
use super::{Backend, Params, Store, StoreError};
use crate::domain::{AccountName, MediaKind, OutboundMedia, Recipient, UploadedFile};
use crate::domain::{ChannelKind, Source};
use sqlx::{Any, Row, Transaction};

/// States in which a row is still on its way: it holds every later row to
/// the same person, so parts and replies arrive in the order they were made.
/// Meta's "too many messages": to the number (130429) or to one person
/// (131056). Noted on the row even once a retry succeeds, so a campaign
/// can slow down.
pub(super) const THROTTLE_CODES: &str = "(130429, 131056)";
pub(super) const UNSENT: &str = "('queued', 'sending', 'failed_retryable')";
/// States the sender takes rows from.
const DUE: &str = "('queued', 'failed_retryable')";
/// The state of a row whose attempt ended without sending it: waiting for
/// another, unless it is a bot part and its person was handed to a human
/// after it was made (it was being sent when the pause committed). Nothing
/// of the bot's goes out after a pause; the handoff reply, queued with its
/// pause, is not older than it and still goes.
const NOT_SENT_YET: &str = "CASE WHEN origin = 'bot' AND EXISTS (SELECT 1 FROM users h \
       WHERE h.id = outbound_messages.user_id AND h.mode = 'human' AND h.paused_at > outbound_messages.created_at) \
     THEN 'cancelled' ELSE 'failed_retryable' END";

/// Where a message is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    Queued,
    /// An attempt is under way (or its sender died: see the lease).
    Sending,
    Sent,
    /// Waiting for its next attempt; also a send that got no answer, until
    /// a status webhook proves it went out or the wait is over.
    FailedRetryable,
    /// Refused in a way retrying cannot fix; an operator may retry it.
    FailedPermanent,
    /// Still failing when `SEND_RETRY_HOURS` ran out; an operator may retry it.
    Dead,
    /// A part of a bot reply its person was handed to a human before it was
    /// sent: never sent, and it holds nothing back.
    Cancelled,
}

impl SendState {
    pub const ALL: [SendState; 7] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::FailedRetryable,
        Self::FailedPermanent,
        Self::Dead,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::FailedRetryable => "failed_retryable",
            Self::FailedPermanent => "failed_permanent",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }
}

/// One row taken for an attempt.
#[derive(Debug, Clone)]
pub struct ClaimedSend {
    pub id: i64,
    /// This attempt's token; records are refused without it.
    pub token: String,
    pub user_id: i64,
    pub recipient: Option<Recipient>,
    /// The business's number it goes out from.
    pub account: AccountName,
    /// A file it carries (the send API's), with `body` as its caption.
    pub media: Option<OutboundMedia>,
    /// Graph's `template` object of a template message; `body` is the
    /// text it renders to.
    pub template: Option<serde_json::Value>,
    pub turn_id: Option<String>,
    pub part_index: i64,
    pub final_part: bool,
    /// `None` if the words were deleted before the message could go out.
    pub body: Option<String>,
    /// Attempts before this one.
    pub attempts: i64,
    /// The previous attempt got no answer: it may have been sent.
    pub ambiguous: bool,
    /// When the previous attempt began (Unix ms).
    pub previous_attempt_at: Option<i64>,
    pub give_up_at: i64,
}

/// The file a row carries; a row whose columns no longer parse (written by
/// a later version) goes out as its text alone rather than not at all. An
/// uploaded file's type and size come from `outbound_files` (as `file_mime`
/// and `file_size`); rows of tables that never carry one lack the columns.
pub(super) fn media_from_row(row: &sqlx::any::AnyRow) -> Result<Option<OutboundMedia>, sqlx::Error> {
    let (kind, url, filename): (Option<String>, Option<String>, Option<String>) =
        (row.try_get("media_kind")?, row.try_get("media_url")?, row.try_get("media_filename")?);
    let Some(kind) = kind.as_deref().and_then(MediaKind::parse) else { return Ok(None) };
    if let Some(url) = url {
        return Ok(OutboundMedia::new(kind, &url, filename.as_deref()).ok());
    }
    let sha256: Option<String> = match row.try_get("media_file") {
        Err(sqlx::Error::ColumnNotFound(_)) => None,
        other => other?,
    };
    let (Some(sha256), Some(mime), Some(size)) = (sha256, row.try_get("file_mime")?, row.try_get("file_size")?) else {
        return Ok(None);
    };
    let file = UploadedFile { sha256, mime, size, contents: None };
    Ok(OutboundMedia::uploaded(kind, file, filename.as_deref()).ok())
}

/// The columns `media_from_row` reads, for a query on `outbound_messages o`
/// that joins `FILE_JOIN`.
pub(super) const MEDIA_COLUMNS: &str = "o.media_kind, o.media_url, o.media_filename, o.media_file, \
    f.mime AS file_mime, f.size AS file_size";
pub(super) const FILE_JOIN: &str = "LEFT JOIN outbound_files f ON f.sha256 = o.media_file";

/// The template a row sends, if it is a template message.
pub(super) fn template_from_row(row: &sqlx::any::AnyRow) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let template: Option<String> = row.try_get("template")?;
    Ok(template.and_then(|json| serde_json::from_str(&json).ok()))
}

/// One account's messages on one channel: what a throttled or broken
/// provider pauses, without holding up the business's other numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub channel: ChannelKind,
    pub account: AccountName,
}

impl Lane {
    fn key(&self) -> String {
        format!("{}:{}", self.channel.as_str(), self.account.as_stored())
    }
}

/// The condition leaving out the rows of `paused` lanes (of `o`, joined
/// with its person `u`); their keys are bound in order.
fn not_paused(p: &mut Params, paused: &[Lane]) -> String {
    match paused {
        [] => String::new(),
        _ => format!(" AND (o.channel || ':' || u.account) NOT IN ({})", p.list(paused.len())),
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        wa_message_id: String,
    },
    /// Not sent; try again at `at`.
    Retry {
        at: i64,
        code: Option<i64>,
        title: String,
    },
    /// No answer: look for a status proving it went out at `check_at`.
    Ambiguous {
        check_at: i64,
        title: String,
    },
    /// Given up: `dead` when time ran out, otherwise refused for good.
    Failed {
        dead: bool,
        code: Option<i64>,
        title: String,
    },
}

impl SendOutcome {
    pub fn failed(title: &str) -> Self {
        SendOutcome::Failed { dead: false, code: None, title: title.to_owned() }
    }

    pub fn dead(title: &str) -> Self {
        SendOutcome::Failed { dead: true, code: None, title: title.to_owned() }
    }

    /// The channel's error code, when it gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            SendOutcome::Retry { code, .. } | SendOutcome::Failed { code, .. } => *code,
            SendOutcome::Sent { .. } | SendOutcome::Ambiguous { .. } => None,
        }
    }
}

/// A reply whose every part is out, for channels that show its sources.
#[derive(Debug, Clone)]
pub struct FinishedReply {
    pub turn_id: String,
    pub sources: Vec<Source>,
    /// From the person's last message to their reply being out.
    pub waited_ms: i64,
}

/// A message as operators see it: one that did not go out, or one they
/// follow after pressing Retry.
#[derive(Debug, Clone)]
pub struct UndeliveredMessage {
    pub id: i64,
    pub user_id: i64,
    pub person: Option<Recipient>,
    pub origin: String,
    pub state: SendState,
    pub body: Option<String>,
    pub attempts: i64,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_attempt_at: i64,
}

/// What `Store::retry_send` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Queued again, with the later parts of its reply that were held.
    Requeued,
    /// Nothing to do: the message is already on its way or out.
    Unchanged(SendState),
}

/// A reply's text in the parts it is sent in.
pub struct QueuedReply<'a> {
    pub turn_id: &'a str,
    pub token: &'a str,
    pub user_id: i64,
    pub parts: &'a [String],
    pub give_up_at: i64,
}

/// Parts of one message about to be queued.
pub(super) struct NewParts<'a> {
    pub user_id: i64,
    /// `bot` or `agent`.
    pub origin: &'static str,
    pub turn_id: Option<&'a str>,
    pub author: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub parts: &'a [String],
    pub give_up_at: i64,
}

/// Queues `message`'s parts in `tx` and returns the ids of those that were
/// new, in order; a part already queued (the same turn, or the same agent
/// message under its key) is left as it is and not returned.
pub(super) async fn insert_parts(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    message: &NewParts<'_>,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    if message.parts.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Params::new(backend);
    let values: Vec<String> = message
        .parts
        .iter()
        .map(|_| {
            let user = p.one();
            let channel = format!("(SELECT channel FROM users WHERE id = {})", p.one());
            format!("({user}, {channel}, {}, 'queued', 0, {}, 'pending', 0, {})", p.list(5), p.list(2), p.list(4))
        })
        .collect();
    let sql = format!(
        "INSERT INTO outbound_messages (user_id, channel, origin, turn_id, part_index, final_part, body, state, \
           attempts, next_attempt_at, give_up_at, status, status_rank, created_at, updated_at, author, \
           idempotency_key) \
         VALUES {} ON CONFLICT DO NOTHING RETURNING id",
        values.join(", ")
    );
    let last = message.parts.len() - 1;
    let mut query = sqlx::query_scalar(&sql);
    for (index, body) in message.parts.iter().enumerate() {
        query = query
            .bind(message.user_id)
            .bind(message.user_id)
            .bind(message.origin)
            .bind(message.turn_id)
            .bind(index as i64)
            .bind(index == last)
            .bind(body.as_str())
            .bind(now)
            .bind(message.give_up_at)
            .bind(now)
            .bind(now)
            .bind(message.author)
            .bind(message.idempotency_key);
    }
    let mut ids: Vec<i64> = query.fetch_all(&mut **tx).await?;
    // Ids grow with the parts of one insert, so sorted is in part order.
    ids.sort_unstable();
    Ok(ids)
}

/// Gives the queued row `id` its file and template, in the transaction
/// that queued it: the sender only ever sees the row whole.
pub(super) async fn attach(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    media: Option<&OutboundMedia>,
    template: Option<&serde_json::Value>,
    now: i64,
) -> Result<(), StoreError> {
    if media.is_none() && template.is_none() {
        return Ok(());
    }
    let upload = media.and_then(OutboundMedia::upload);
    if let Some(file) = upload {
        keep_file(tx, file, now).await?;
    }
    sqlx::query(
        "UPDATE outbound_messages SET media_kind = $1, media_url = $2, media_filename = $3, template = $4, \
           media_file = $5 WHERE id = $6",
    )
    .bind(media.map(|media| media.kind().as_str()))
    .bind(media.and_then(OutboundMedia::url))
    .bind(media.and_then(OutboundMedia::filename))
    .bind(template.map(serde_json::Value::to_string))
    .bind(upload.map(|file| file.sha256.as_str()))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Queues a reply's parts in the transaction `tx` that also settles its
    /// turn, so a reply is queued exactly when its turn is answered.
    pub(super) async fn queue_parts(
        tx: &mut Transaction<'_, Any>,
        backend: Backend,
        reply: &QueuedReply<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let parts = NewParts {
            user_id: reply.user_id,
            origin: "bot",
            turn_id: Some(reply.turn_id),
            author: None,
            idempotency_key: None,
            parts: reply.parts,
            give_up_at: reply.give_up_at,
        };
        insert_parts(tx, backend, &parts, now).await?;
        Ok(())
    }

    /// Takes up to `limit` rows due now, at most one per person and only a
    /// person's oldest unsent one, for an attempt under `token`. Sends whose
    /// sender died first become ambiguous: they may have gone out.
    pub async fn claim_sends(
        &self,
        token: &str,
        now: i64,
        lease_ms: i64,
        ambiguous_wait_ms: i64,
        paused: &[Lane],
        limit: usize,
    ) -> Result<(Vec<ClaimedSend>, u64), StoreError> {
        if limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let mut tx = self.write_tx().await?;
        let orphaned = sqlx::query(&format!(
            "UPDATE outbound_messages SET state = {NOT_SENT_YET}, ambiguous = TRUE, next_attempt_at = $1, \
                   lease_token = NULL, lease_until = NULL, error_title = 'the sender stopped before an answer came', \
                   updated_at = $2 \
                 WHERE state = 'sending' AND lease_until <= $2"
        ))
        .bind(now + ambiguous_wait_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut p = Params::new(self.backend);
        let sql = format!(
            "SELECT o.id, o.user_id, o.turn_id, o.part_index, o.body, o.attempts, o.attempt_started_at, o.give_up_at, \
               CAST(CASE WHEN o.final_part THEN 1 ELSE 0 END AS BIGINT) AS final_part, \
               CAST(CASE WHEN o.ambiguous THEN 1 ELSE 0 END AS BIGINT) AS ambiguous, \
               {MEDIA_COLUMNS}, o.template, u.channel, u.account, u.phone, u.bsuid, u.address \
             FROM outbound_messages o JOIN users u ON u.id = o.user_id {FILE_JOIN} \
             WHERE o.state IN {DUE} AND o.next_attempt_at <= {}{} \
               AND NOT EXISTS (SELECT 1 FROM outbound_messages e \
                 WHERE e.user_id = o.user_id AND e.id < o.id AND e.state IN {UNSENT}) \
             ORDER BY o.next_attempt_at, o.id LIMIT {}{}",
            p.one(),
            not_paused(&mut p, paused),
            p.one(),
            if self.backend == Backend::Postgres { " FOR UPDATE OF o SKIP LOCKED" } else { "" }
        );
        let query = paused.iter().fold(sqlx::query(&sql).bind(now), |q, lane| q.bind(lane.key()));
        let rows = query.bind(limit as i64).fetch_all(&mut *tx).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed.push(ClaimedSend {
                id: row.try_get("id")?,
                token: token.to_owned(),
                user_id: row.try_get("user_id")?,
                recipient: super::people::recipient_from_row(row)?,
                account: super::people::account_from_row(row)?,
                media: media_from_row(row)?,
                template: template_from_row(row)?,
                turn_id: row.try_get("turn_id")?,
                part_index: row.try_get("part_index")?,
                final_part: row.try_get::<i64, _>("final_part")? != 0,
                body: row.try_get("body")?,
                attempts: row.try_get("attempts")?,
                ambiguous: row.try_get::<i64, _>("ambiguous")? != 0,
                previous_attempt_at: row.try_get("attempt_started_at")?,
                give_up_at: row.try_get("give_up_at")?,
            });
        }
        if !claimed.is_empty() {
            let mut p = Params::new(self.backend);
            let sql = format!(
                "UPDATE outbound_messages SET state = 'sending', lease_token = {}, lease_until = {}, \
                   attempts = attempts + 1, attempt_started_at = {}, updated_at = {} WHERE id IN ({})",
                p.one(),
                p.one(),
                p.one(),
                p.one(),
                p.list(claimed.len())
            );
            let query = sqlx::query(&sql).bind(token).bind(now + lease_ms).bind(now).bind(now);
            claimed.iter().fold(query, |q, send| q.bind(send.id)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((claimed, orphaned))
    }

    /// When the sender should look again: the earliest moment a row of
    /// `channels` that may go next is due, or an attempt's lease ends. Rows
    /// waiting behind an earlier one to the same person do not count: they
    /// are due when it is sent, and the sender is woken then.
    pub async fn next_send_at(&self, paused: &[Lane]) -> Result<Option<i64>, StoreError> {
        let mut p = Params::new(self.backend);
        let sql = format!(
            "SELECT MIN(at) FROM ( \
               SELECT MIN(o.next_attempt_at) AS at FROM outbound_messages o JOIN users u ON u.id = o.user_id \
                 WHERE o.state IN {DUE}{} \
                   AND NOT EXISTS (SELECT 1 FROM outbound_messages e \
                     WHERE e.user_id = o.user_id AND e.id < o.id AND e.state IN {UNSENT}) \
               UNION ALL SELECT MIN(lease_until) AS at FROM outbound_messages WHERE state = 'sending') AS due",
            not_paused(&mut p, paused)
        );
        let query = paused.iter().fold(sqlx::query_scalar(&sql), |q, lane| q.bind(lane.key()));
        Ok(query.fetch_one(&self.reader).await?)
    }

    /// Whether a message the business's own number sent, as a provider
    /// reports it back (WAHA's `message.any`), is one of ours: a row holds
    /// its id, or, when the report overtakes the provider's answer to our
    /// send, a row to the same number with the same words is still waiting
    /// for that answer (being sent, or sent without an answer).
    pub async fn is_our_send(&self, wa_message_id: &str, phone: &str, words: Option<&str>) -> Result<bool, StoreError> {
        // Two lookups, each on an index (the id; the person's messages),
        // rather than one OR that would scan the whole outbox.
        let ours: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id = $1) \
                  + (SELECT COUNT(*) FROM outbound_messages o JOIN users u ON u.id = o.user_id \
                     WHERE u.phone = $2 AND o.wa_message_id IS NULL AND o.state IN ('sending', 'failed_retryable') \
                       AND $3 IS NOT NULL AND TRIM(o.body) = $3)",
        )
        .bind(wa_message_id)
        .bind(phone)
        .bind(words)
        .fetch_one(&self.reader)
        .await?;
        Ok(ours > 0)
    }

    /// A message we may have sent in an attempt that got no answer: the id
    /// of a message to the same person that WhatsApp reported a status for
    /// since `since_secs`, and that no row of ours claims.
    pub async fn unclaimed_status_id(
        &self,
        recipient: &Recipient,
        since_secs: i64,
    ) -> Result<Option<String>, StoreError> {
        let address = match recipient {
            Recipient::Phone(phone) => phone.expose(),
            Recipient::Bsuid(bsuid) => bsuid.expose(),
            // The web chat answers in-process: never in doubt.
            Recipient::Web(_) => return Ok(None),
        };
        Ok(sqlx::query_scalar(
            "SELECT d.wa_message_id FROM delivery_statuses d WHERE d.recipient = $1 AND d.occurred_secs >= $2 \
               AND NOT EXISTS (SELECT 1 FROM outbound_messages o WHERE o.wa_message_id = d.wa_message_id) \
             ORDER BY d.occurred_secs LIMIT 1",
        )
        .bind(address)
        .bind(since_secs)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Records what an attempt came to, if the row is still this attempt's
    /// (a late "sent" also settles a row left waiting as ambiguous). Returns
    /// the reply when this was the last part of it to go out; without
    /// `keep_text` its words are dropped then.
    pub async fn record_send(
        &self,
        send: &ClaimedSend,
        outcome: &SendOutcome,
        now: i64,
        keep_text: bool,
    ) -> Result<Option<FinishedReply>, StoreError> {
        let mut tx = self.write_tx().await?;
        let ours = "id = $1 AND (lease_token = $2 OR (state = 'failed_retryable' AND ambiguous))";
        let finished = match outcome {
            SendOutcome::Sent { wa_message_id } => {
                let updated = sqlx::query(&format!(
                    "UPDATE outbound_messages SET state = 'sent', wa_message_id = $3, status = 'accepted', \
                       status_rank = 0, error_code = NULL, error_title = NULL, lease_token = NULL, \
                       lease_until = NULL, ambiguous = FALSE, updated_at = $4 WHERE {ours}"
                ))
                .bind(send.id)
                .bind(&send.token)
                .bind(wa_message_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 1 {
                    super::turns::apply_early_statuses(&mut tx, wa_message_id).await?;
                    finish_reply(&mut tx, send, now, keep_text).await?
                } else {
                    None
                }
            }
            SendOutcome::Retry { at, code, title } => {
                sqlx::query(&format!(
                    "UPDATE outbound_messages SET state = {NOT_SENT_YET}, ambiguous = FALSE, next_attempt_at = $3, \
                       error_code = $4, error_title = $5, lease_token = NULL, lease_until = NULL, updated_at = $6, \
                       throttled_at = CASE WHEN $4 IN {THROTTLE_CODES} THEN $6 ELSE throttled_at END \
                     WHERE id = $1 AND lease_token = $2"
                ))
                .bind(send.id)
                .bind(&send.token)
                .bind(at)
                .bind(code)
                .bind(title)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                None
            }
            SendOutcome::Ambiguous { check_at, title } => {
                sqlx::query(&format!(
                    "UPDATE outbound_messages SET state = {NOT_SENT_YET}, ambiguous = TRUE, next_attempt_at = $3, \
                       error_code = NULL, error_title = $4, lease_token = NULL, lease_until = NULL, updated_at = $5 \
                     WHERE id = $1 AND lease_token = $2"
                ))
                .bind(send.id)
                .bind(&send.token)
                .bind(check_at)
                .bind(title)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                None
            }
            SendOutcome::Failed { dead, code, title } => {
                give_up(&mut tx, send, *dead, *code, title, now).await?;
                None
            }
        };
        tx.commit().await?;
        self.conversations_changed();
        Ok(finished)
    }

    /// Queues a failed or dead message again, with the later parts of its
    /// reply that it held back, for another `retry_for_ms`. Anything else
    /// is left as it is, so pressing Retry twice sends once. `None` when
    /// there is no such message.
    pub async fn retry_send(&self, id: i64, now: i64, retry_for_ms: i64) -> Result<Option<RetryOutcome>, StoreError> {
        let mut tx = self.write_tx().await?;
        let Some(row) = sqlx::query("SELECT state, turn_id FROM outbound_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let state = row.try_get::<String, _>("state")?;
        let state = SendState::parse(&state).unwrap_or(SendState::Sent);
        if !matches!(state, SendState::FailedPermanent | SendState::Dead) {
            return Ok(Some(RetryOutcome::Unchanged(state)));
        }
        sqlx::query(&format!(
            "UPDATE outbound_messages SET state = 'queued', next_attempt_at = $1, give_up_at = $2, \
               error_code = NULL, error_title = NULL, ambiguous = FALSE, updated_at = $1 \
             WHERE state IN ('failed_permanent', 'dead') AND (id = $3 OR {})",
            same_message("$3")
        ))
        .bind(now)
        .bind(now + retry_for_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(turn_id) = row.try_get::<Option<String>, _>("turn_id")? {
            sqlx::query("UPDATE turns SET status = 'answered' WHERE id = $1 AND status = 'failed'")
                .bind(turn_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.conversations_changed();
        Ok(Some(RetryOutcome::Requeued))
    }

    /// Messages that did not go out or are still trying, most recently
    /// changed first.
    pub async fn undelivered(&self, limit: i64) -> Result<Vec<UndeliveredMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "{OPERATOR_VIEW} WHERE o.state IN ('failed_permanent', 'dead', 'failed_retryable') \
             ORDER BY o.updated_at DESC, o.id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(operator_view).collect()
    }

    /// One message in whatever state it is, so an operator who pressed
    /// Retry can follow it until it is out; `None` for an unknown id.
    pub async fn outbound_message(&self, id: i64) -> Result<Option<UndeliveredMessage>, StoreError> {
        let row =
            sqlx::query(&format!("{OPERATOR_VIEW} WHERE o.id = $1")).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(operator_view).transpose()
    }

    /// How many messages are in each state that still needs watching.
    pub async fn outbox_counts(&self) -> Result<Vec<(SendState, i64)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT state, COUNT(*) AS n FROM outbound_messages WHERE state IN {UNSENT} GROUP BY state \
             UNION ALL SELECT state, COUNT(*) AS n FROM outbound_messages \
               WHERE state IN ('failed_permanent', 'dead') GROUP BY state"
        ))
        .fetch_all(&self.reader)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let state: String = row.try_get("state")?;
            if let Some(state) = SendState::parse(&state) {
                counts.push((state, row.try_get("n")?));
            }
        }
        Ok(counts)
    }
}

const OPERATOR_VIEW: &str = "SELECT o.id, o.user_id, o.origin, o.state, o.body, o.attempts, o.error_code, \
       o.error_title, o.created_at, o.updated_at, o.next_attempt_at, u.channel, u.account, u.phone, u.bsuid, u.address \
     FROM outbound_messages o JOIN users u ON u.id = o.user_id";

/// Rows of the same message as row `id`: the parts of a bot reply share
/// its turn, those of an agent's message its key (in one conversation).
/// Other rows (echoes) are a message of their own.
fn same_message(id: &str) -> String {
    format!(
        "(turn_id = (SELECT turn_id FROM outbound_messages WHERE id = {id}) \
          OR (idempotency_key = (SELECT idempotency_key FROM outbound_messages WHERE id = {id}) \
              AND user_id = (SELECT user_id FROM outbound_messages WHERE id = {id})))"
    )
}

fn operator_view(row: &sqlx::any::AnyRow) -> Result<UndeliveredMessage, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(UndeliveredMessage {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        person: super::people::recipient_from_row(row)?,
        origin: row.try_get("origin")?,
        state: SendState::parse(&state).unwrap_or(SendState::FailedPermanent),
        body: row.try_get("body")?,
        attempts: row.try_get("attempts")?,
        error_code: row.try_get("error_code")?,
        error_title: row.try_get("error_title")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
    })
}

/// After the last part of a reply went out: the turn's answer time becomes
/// the moment the person got it, and its sources are returned. Without
/// `keep_text` the words go: a reply's all at once, an agent's part by part.
async fn finish_reply(
    tx: &mut Transaction<'_, Any>,
    send: &ClaimedSend,
    now: i64,
    keep_text: bool,
) -> Result<Option<FinishedReply>, StoreError> {
    if send.turn_id.is_none() && !keep_text {
        // An agent's words go once they are out, as a reply's do.
        sqlx::query("UPDATE outbound_messages SET body = NULL WHERE id = $1").bind(send.id).execute(&mut **tx).await?;
    }
    let (Some(turn_id), true) = (&send.turn_id, send.final_part) else { return Ok(None) };
    let Some(turn) = sqlx::query("UPDATE turns SET answered_at = $1 WHERE id = $2 RETURNING sources, last_message_at")
        .bind(now)
        .bind(turn_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    if !keep_text {
        super::turns::forget_words(tx, turn_id).await?;
    }
    Ok(Some(FinishedReply {
        turn_id: turn_id.clone(),
        sources: parse_sources(turn.try_get("sources")?),
        waited_ms: now - turn.try_get::<i64, _>("last_message_at")?,
    }))
}

/// A part given up on holds back the rest of its reply (read out of
/// context they would confuse), and its turn counts as failed.
async fn give_up(
    tx: &mut Transaction<'_, Any>,
    send: &ClaimedSend,
    dead: bool,
    code: Option<i64>,
    title: &str,
    now: i64,
) -> Result<(), StoreError> {
    let state = if dead { SendState::Dead } else { SendState::FailedPermanent }.as_str();
    let updated = sqlx::query(
        "UPDATE outbound_messages SET state = $3, error_code = $4, error_title = $5, lease_token = NULL, \
           lease_until = NULL, updated_at = $6 WHERE id = $1 AND lease_token = $2",
    )
    .bind(send.id)
    .bind(&send.token)
    .bind(state)
    .bind(code)
    .bind(title)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated != 1 {
        return Ok(());
    }
    sqlx::query(&format!(
        "UPDATE outbound_messages SET state = $1, error_title = 'held back: an earlier part was not sent', \
           updated_at = $2 WHERE {} AND part_index > $4 AND state IN {DUE}",
        same_message("$3")
    ))
    .bind(state)
    .bind(now)
    .bind(send.id)
    .bind(send.part_index)
    .execute(&mut **tx)
    .await?;
    let Some(turn_id) = send.turn_id.as_deref() else { return Ok(()) };
    sqlx::query("UPDATE turns SET status = 'failed' WHERE id = $1").bind(turn_id).execute(&mut **tx).await?;
    Ok(())
}
