//! The daily cleanup: old conversations (`ENABLE_CLEANUP`) and media files
//! past `MEDIA_RETENTION_DAYS`; hourly, the bytes of uploaded files already
//! sent. What is deleted, and what never is, is decided in the store.

use crate::config::RetentionSettings;
use crate::domain::now_ms;
use crate::media::MediaFiles;
use crate::store::Store;
use std::time::{Duration, SystemTime};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A file younger than this may belong to a download whose row is not
/// written yet, so the sweep leaves it for tomorrow.
const FRESH_FILE: Duration = Duration::from_secs(60 * 60);

/// How often the bytes of uploaded files already sent are dropped, and
/// how recent a file must be to be left alone (it may be being queued).
const FILE_RELEASE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Runs the cleanup `first_cleanup_after` from now and then every day.
/// Every replica may run it: the deletes are idempotent.
pub fn start_cleanup(store: Store, retention: RetentionSettings, files: MediaFiles, media_days: u32) {
    tokio::spawn(release_sent_files(store.clone()));
    tokio::spawn(async move {
        let mut daily = interval_at(Instant::now() + retention.first_cleanup_after, DAY);
        // A slow run moves the next one back instead of starting it at once.
        daily.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            daily.tick().await;
            if retention.cleanup {
                clean(&store, retention.cleanup_after_days).await;
            }
            let removed = sweep_media(&store, &files, media_days, FRESH_FILE).await;
            metrics::counter!("wa_cleanup_deleted_total", "table" => "media_files").increment(removed);
        }
    });
}

/// Files applications uploaded often hold one customer's data (a bill, a
/// lab result): kept only until every message carrying them is out.
async fn release_sent_files(store: Store) {
    let mut hourly = interval_at(Instant::now() + FILE_RELEASE_EVERY, FILE_RELEASE_EVERY);
    hourly.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        hourly.tick().await;
        match store.release_sent_files(now_ms(), FILE_RELEASE_EVERY.as_millis() as i64).await {
            Ok((emptied, forgotten)) => {
                metrics::counter!("wa_cleanup_deleted_total", "table" => "outbound_files")
                    .increment(emptied + forgotten);
                if emptied + forgotten > 0 {
                    tracing::info!(emptied, forgotten, "cleanup: dropped uploaded files already sent");
                }
            }
            Err(error) => tracing::warn!(%error, "could not drop uploaded files already sent; trying again in an hour"),
        }
    }
}

async fn clean(store: &Store, days: u32) {
    let cutoff = now_ms() - i64::from(days) * DAY.as_millis() as i64;
    match store.delete_finished_before(cutoff).await {
        Ok(deleted) => {
            for (table, count) in deleted.by_table() {
                metrics::counter!("wa_cleanup_deleted_total", "table" => table).increment(count);
            }
            tracing::info!(
                days,
                turns = deleted.turns,
                outbound_messages = deleted.outbound_messages,
                delivery_statuses = deleted.delivery_statuses,
                inbound_messages = deleted.inbound_messages,
                sessions = deleted.sessions,
                unanswered_questions = deleted.unanswered_questions,
                users = deleted.users,
                "cleanup: deleted conversations older than the retention period"
            );
        }
        Err(error) => tracing::error!(%error, "cleanup failed; it runs again tomorrow"),
    }
}

/// Lets go of files older than `days`, then deletes every file no message
/// refers to any more (their conversation was deleted, or they expired)
/// that is older than `grace`. Returns how many files were deleted.
pub async fn sweep_media(store: &Store, files: &MediaFiles, days: u32, grace: Duration) -> u64 {
    let cutoff = now_ms() - i64::from(days) * DAY.as_millis() as i64;
    if let Err(error) = store.expire_media(cutoff).await {
        tracing::error!(%error, "media cleanup failed; it runs again tomorrow");
        return 0;
    }
    let settled = SystemTime::now() - grace;
    let candidates = match files.stored_before(settled).await {
        Ok(candidates) => candidates,
        Err(error) => {
            tracing::error!(%error, "could not list the media folder");
            return 0;
        }
    };
    let in_use = match store.media_in_use(&candidates).await {
        Ok(in_use) => in_use,
        Err(error) => {
            tracing::error!(%error, "media cleanup failed; it runs again tomorrow");
            return 0;
        }
    };
    let mut removed = 0;
    for file in candidates.iter().filter(|file| !in_use.contains(*file)) {
        match files.remove(file).await {
            Ok(()) => removed += 1,
            Err(error) => tracing::warn!(%error, "could not delete a media file"),
        }
    }
    if removed > 0 {
        tracing::info!(removed, days, "cleanup: deleted media files no conversation refers to");
    }
    removed
}
