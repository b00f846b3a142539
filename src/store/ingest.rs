//! Storing webhooks with group commit: concurrent webhooks are queued to one
//! writer that stores a whole batch in one transaction with one multi-row
//! insert, then answers each of them. Every webhook still gets its 200 only
//! after its own messages are committed.

use super::people::{upsert_person, PeopleCache};
use super::{Backend, Params, Store, StoreError};
use crate::domain::now_ms;
use crate::domain::{AttachmentSource, InboundMessage, StatusUpdate};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

/// Webhooks stored per transaction at most.
const MAX_BATCH: usize = 256;
/// Webhooks waiting for the writer before senders are slowed down.
pub(super) const QUEUE: usize = 4096;
/// People not heard from for an hour are forgotten by the writer's cache,
/// checked once an hour.
const IDLE: Duration = Duration::from_secs(60 * 60);
const PRUNE_EVERY: Duration = IDLE;

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

pub(super) struct Job {
    messages: Vec<InboundMessage>,
    statuses: Vec<StatusUpdate>,
    now: i64,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

pub(super) type IngestQueue = mpsc::Sender<Job>;

impl Store {
    /// Stores everything a webhook carries; when this returns `Ok`, all of
    /// it is committed.
    pub async fn ingest(
        &self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
        now: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let job = Job { messages, statuses, now, reply };
        self.ingest_queue.send(job).await.map_err(|_| StoreError::WriterStopped)?;
        outcome.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The single writer: takes whatever webhooks are waiting and stores them
/// together, and forgets people who went quiet (also when no webhooks come).
pub(super) async fn run_writer(store: Store, mut queue: mpsc::Receiver<Job>) {
    let mut cache = PeopleCache::default();
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut prune = tokio::time::interval_at(Instant::now() + PRUNE_EVERY, PRUNE_EVERY);
    prune.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = queue.recv_many(&mut jobs, MAX_BATCH) => {
                if received == 0 {
                    return;
                }
                write_jobs(&store, &mut cache, &mut jobs).await;
            }
            _ = prune.tick() => {
                let dropped = cache.prune(now_ms() - IDLE.as_millis() as i64);
                tracing::debug!(dropped, "forgot identities of people idle for an hour");
            }
        }
    }
}

/// A failed batch is retried webhook by webhook, so one bad webhook cannot
/// fail the others.
async fn write_jobs(store: &Store, cache: &mut PeopleCache, jobs: &mut Vec<Job>) {
    match write_batch(store, cache, jobs).await {
        Ok(outcomes) => {
            for (job, outcome) in jobs.drain(..).zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(_) if jobs.len() > 1 => {
            cache.clear();
            for job in jobs.drain(..) {
                let result = write_batch(store, cache, std::slice::from_ref(&job)).await;
                let _ = job.reply.send(result.map(|mut outcomes| outcomes.remove(0)));
            }
        }
        Err(error) => {
            cache.clear();
            if let Some(job) = jobs.pop() {
                let _ = job.reply.send(Err(error));
            }
        }
    }
}

async fn write_batch(store: &Store, cache: &mut PeopleCache, jobs: &[Job]) -> Result<Vec<IngestOutcome>, StoreError> {
    let mut tx = store.write_tx().await?;
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for (job_index, job) in jobs.iter().enumerate() {
        for message in &job.messages {
            let user_id = upsert_person(&mut tx, cache, &message.from, job.now).await?;
            // A batch can hold the same redelivered id twice: first one wins.
            let first = seen.insert(message.id.as_str());
            rows.push((job_index, message, user_id, first));
        }
    }
    let inserted = insert_messages(&mut tx, store.backend, &rows, jobs).await?;
    for job in jobs {
        for status in &job.statuses {
            apply_status(&mut tx, status, job.now).await?;
        }
    }
    tx.commit().await?;
    cache.commit();
    store.conversations_changed();

    let mut outcomes: Vec<IngestOutcome> =
        jobs.iter().map(|job| IngestOutcome { statuses: job.statuses.len(), ..Default::default() }).collect();
    for (job_index, message, user_id, first) in rows {
        let outcome = &mut outcomes[job_index];
        if !(first && inserted.contains(message.id.as_str())) {
            outcome.duplicates += 1;
            continue;
        }
        outcome.stored += 1;
        if message.content.wants_reply() && !outcome.waiting_users.contains(&user_id) {
            outcome.waiting_users.push(user_id);
        }
    }
    Ok(outcomes)
}

/// Rows per insert statement: 14 parameters each stays far below what
/// SQLite (32,766) and PostgreSQL (65,535) bind in one statement.
const ROWS_PER_INSERT: usize = 1000;

type Row<'a> = (usize, &'a InboundMessage, i64, bool);

/// Multi-row inserts for the batch; `RETURNING` tells which ids are new.
async fn insert_messages(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: &[Row<'_>],
    jobs: &[Job],
) -> Result<HashSet<String>, StoreError> {
    let fresh: Vec<_> = rows.iter().filter(|(.., first)| *first).collect();
    let mut inserted = HashSet::new();
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        inserted.extend(insert_chunk(tx, backend, chunk, jobs).await?);
    }
    Ok(inserted)
}

async fn insert_chunk(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    fresh: &[&Row<'_>],
    jobs: &[Job],
) -> Result<Vec<String>, StoreError> {
    let mut params = Params::new(backend);
    let values: Vec<String> = fresh.iter().map(|_| format!("({})", params.list(14))).collect();
    let sql = format!(
        "INSERT INTO inbound_messages (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at, \
           reply_to, media_id, media_mime, media_name, media_file, media_bytes, media_outcome) \
         VALUES {} ON CONFLICT (wa_message_id) DO NOTHING RETURNING wa_message_id",
        values.join(", ")
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for &&(job_index, message, user_id, _) in fresh {
        let attachment = message.content.attachment();
        let (media_id, stored) = match attachment.map(|a| &a.source) {
            Some(AttachmentSource::Provider(id)) => (Some(id.as_str()), None),
            Some(AttachmentSource::Stored { sha256, bytes }) => (None, Some((sha256.as_str(), *bytes as i64))),
            None => (None, None),
        };
        query = query
            .bind(message.id.as_str())
            .bind(user_id)
            .bind(message.content.kind())
            .bind(message.content.readable_text())
            .bind(message.content.wants_reply())
            .bind(message.sent_at)
            .bind(jobs[job_index].now)
            .bind(message.reply_to.as_ref().map(|id| id.as_str()))
            .bind(media_id)
            .bind(attachment.and_then(|a| a.mime.as_deref()))
            .bind(attachment.and_then(|a| a.file_name.as_deref()))
            .bind(stored.map(|(sha256, _)| sha256))
            .bind(stored.map(|(_, bytes)| bytes))
            // An upload is stored before its message: the download step is done.
            .bind(stored.map(|_| "downloaded"));
    }
    Ok(query.fetch_all(&mut **tx).await?)
}

async fn apply_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    status: &StatusUpdate,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_statuses \
         (wa_message_id, status, status_rank, error_code, occurred_secs, received_at, recipient) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wa_message_id, status) DO NOTHING",
    )
    .bind(status.message_id.as_str())
    .bind(status.status.as_str())
    .bind(status.status.rank())
    .bind(status.error_code)
    .bind(status.timestamp)
    .bind(now)
    .bind(&status.recipient)
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
