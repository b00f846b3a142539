//! The daily cleanup of old conversations (`ENABLE_CLEANUP`); what is
//! deleted, and what never is, is decided in the store.

use crate::config::RetentionSettings;
use crate::store::{now_ms, Store};
use std::time::Duration;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs the cleanup `first_cleanup_after` from now and then every day, when
/// enabled. Every replica may run it: the deletes are idempotent.
pub fn start_cleanup(store: Store, retention: RetentionSettings) {
    if !retention.cleanup {
        return;
    }
    tokio::spawn(async move {
        let mut daily = interval_at(Instant::now() + retention.first_cleanup_after, DAY);
        // A slow run moves the next one back instead of starting it at once.
        daily.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            daily.tick().await;
            clean(&store, retention.cleanup_after_days).await;
        }
    });
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
