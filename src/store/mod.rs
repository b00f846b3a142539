//! Persistence on SQLite (embedded default) or PostgreSQL (several replicas),
//! through one set of portable SQL statements on sqlx's `Any` driver. Times
//! are Unix milliseconds from our clock, so the same integers work on both.

mod activity;
mod agent;
mod campaigns;
mod claim;
mod cleanup;
mod contacts;
mod gateway;
mod handoff;
mod inbox;
mod ingest;
mod media;
mod outbound_files;
mod outbox;
mod people;
mod stats;
mod templates;
mod transcripts;
mod turns;
mod unanswered;
mod usage;

pub use activity::ConversationSummary;
pub use agent::{AgentMessage, AgentSend, EchoAction, Handed, Handover, QueuedPart};
pub use campaigns::{
    CampaignAction, CampaignCreated, CampaignState, CampaignView, DueCampaign, NewCampaign, NewRecipient,
    RecipientReport, Released,
};
pub use cleanup::Deleted;
pub use contacts::{Consent, ConsentChange, Contact, ContactPage, ContactQuery, ContactRow, SaveOutcome, Saved};
pub use gateway::{AppMessage, AppMessageView, AppSend, SentPart, KEY_LIFETIME_MS};
pub use inbox::{InboxCounts, InboxEntry, InboxGroup, InboxMarker, LastMessage};
pub use ingest::IngestOutcome;
pub use media::{MediaFileRef, MediaStep};
pub use outbox::{
    ClaimedSend, FinishedReply, Lane, QueuedReply, RetryOutcome, SendOutcome, SendState, UndeliveredMessage,
};
pub use stats::{DayStats, HourStats, Stats};
pub use templates::TemplateSync;
pub use transcripts::{Audience, CustomerFile, OutboundEntry, Sender, Transcript, TranscriptEntry};
pub use turns::{
    Answered, Claim, ClaimWindow, ClaimedTurn, LlmUsage, MessageMedia, PendingConversation, ReplyRecord, SavedReply,
    TurnConsent, TurnMessage,
};
pub use unanswered::{NewUnanswered, UnansweredQuestion};
pub use usage::RecentTurns;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("the database writer has stopped")]
    WriterStopped,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite connections that only read, beside the one writer.
const SQLITE_READERS: u32 = 4;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// For queries that only read. On SQLite a pool of its own: WAL lets
    /// readers run beside the writer, so status pages, the admin views and
    /// search-ahead never queue for the one connection webhooks commit on.
    /// On PostgreSQL the same pool as `pool`.
    reader: AnyPool,
    backend: Backend,
    ingest_queue: ingest::IngestQueue,
    /// Bumped after this process commits something an agent would see, so
    /// the inbox of this process shows it at once instead of at its next
    /// look at the database (which catches other replicas' changes).
    changes: Arc<tokio::sync::watch::Sender<()>>,
    /// Accounts (as stored) whose provider has no 24-hour window; shared
    /// by every clone, set once at start-up.
    windowless: Arc<std::sync::OnceLock<std::collections::HashSet<String>>>,
}

impl Store {
    /// Connects, creating the SQLite file and its folder if needed, and
    /// brings the schema up to date.
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if database_url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(database_url)?;
        }
        let options = AnyConnectOptions::from_str(database_url)?;
        let (checkpoint_options, reader_options) = (options.clone(), options.clone());
        let pool = AnyPoolOptions::new()
            // SQLite has one writer; one connection queues everyone fairly
            // instead of leaving writers in SQLite's sleeping busy handler.
            .max_connections(if backend == Backend::Sqlite { 1 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; NORMAL sync
                        // is durable across process crashes (only an OS crash can
                        // lose the last commits), which is the failure we guard.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // Checkpoints run beside the writer (see below), not
                        // inside whichever commit crosses the threshold.
                        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        // Opened after the migrations, so readers see the WAL mode the
        // writer set and never race the schema.
        let reader = match backend {
            Backend::Sqlite => {
                tokio::spawn(checkpoint_wal(checkpoint_options));
                sqlite_readers(reader_options).await?
            }
            Backend::Postgres => pool.clone(),
        };
        let (ingest_queue, queue) = tokio::sync::mpsc::channel(ingest::QUEUE);
        let changes = Arc::new(tokio::sync::watch::Sender::new(()));
        let windowless = Arc::default();
        let store = Self { pool, reader, backend, ingest_queue, changes, windowless };
        tokio::spawn(ingest::run_writer(store.clone(), queue));
        Ok(store)
    }

    /// Names the accounts whose provider lets a business write at any
    /// time (Fonnte, WAHA): their conversations have no 24-hour window.
    /// Only the first call counts.
    pub fn set_accounts_without_window(&self, accounts: impl IntoIterator<Item = crate::domain::AccountName>) {
        let _ = self.windowless.set(accounts.into_iter().map(|a| a.as_stored().to_owned()).collect());
    }

    /// Whether a conversation of `channel` on `account` (as stored) has
    /// WhatsApp's 24-hour window.
    pub(crate) fn has_reply_window(&self, channel: &str, account: &str) -> bool {
        channel == crate::domain::ChannelKind::WhatsApp.as_str()
            && !self.windowless.get().is_some_and(|windowless| windowless.contains(account))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// `BEGIN`, so it waits its turn (busy timeout) instead of failing at
    /// its first write because another writer committed after it began.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Follows [`Store::conversations_changed`] in this process.
    pub fn conversation_changes(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// Says that a conversation changed in a way an agent would see (a
    /// message in or out, a delivery status, a pause, a read).
    pub(crate) fn conversations_changed(&self) {
        self.changes.send_replace(());
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }
}

/// `query_only` makes a write through a reader an error instead of a
/// second writer contending for SQLite's lock.
async fn sqlite_readers(options: AnyConnectOptions) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(SQLITE_READERS)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA query_only = ON").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

/// Copies the SQLite write-ahead log into the database file every second
/// from a connection of its own. A passive checkpoint never blocks the
/// writer, so webhooks never wait for the fsync a checkpoint needs.
async fn checkpoint_wal(options: AnyConnectOptions) {
    use sqlx::ConnectOptions;
    let mut connection = match options.connect().await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::warn!(%error, "no checkpoint connection; the WAL grows until restart");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(error) = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::debug!(%error, "WAL checkpoint skipped");
        }
    }
}

fn create_sqlite_parent_dir(database_url: &str) -> Result<(), StoreError> {
    let path =
        database_url.trim_start_matches("sqlite:").trim_start_matches("//").split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source }),
        _ => Ok(()),
    }
}

/// Writes bind placeholders in the order they appear in a statement:
/// `$1, $2, …` for PostgreSQL, anonymous `?` for SQLite, whose named and
/// numbered parameters are looked up linearly, which makes a statement with
/// thousands of them quadratic to prepare. Values must be bound in the same
/// order the placeholders were written.
pub(crate) struct Params {
    backend: Backend,
    written: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Self {
        Self { backend, written: 0 }
    }

    pub(crate) fn one(&mut self) -> String {
        self.written += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.written),
        }
    }

    /// `count` placeholders separated by commas, e.g. for `IN (…)`.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }
}

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds `ids` in order, after whatever the query already has bound.
pub(crate) fn bind_ids<'q>(query: AnyQuery<'q>, ids: &[i64]) -> AnyQuery<'q> {
    ids.iter().fold(query, |query, id| query.bind(*id))
}
