//! Deleting conversations past the retention period (`ENABLE_CLEANUP`).
//! Each table is walked in key order a page at a time, one short
//! transaction per page, so a large backlog never holds SQLite's write lock
//! for long. Every statement re-checks its own conditions, so replicas
//! cleaning at the same time only find less to delete.
//!
//! Nothing in flight is touched: messages waiting for a turn and turns not
//! finished are never deleted, nor the sessions and people they belong to.

use super::{Store, StoreError};
use sqlx::Any;

/// Rows of a table looked at per transaction.
const PAGE: i64 = 500;

/// Rows deleted by one cleanup, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub turns: u64,
    pub outbound_messages: u64,
    pub delivery_statuses: u64,
    pub inbound_messages: u64,
    pub sessions: u64,
    pub handoff_events: u64,
    pub unanswered_questions: u64,
    pub users: u64,
}

impl Deleted {
    pub fn by_table(&self) -> [(&'static str, u64); 8] {
        [
            ("turns", self.turns),
            ("outbound_messages", self.outbound_messages),
            ("delivery_statuses", self.delivery_statuses),
            ("inbound_messages", self.inbound_messages),
            ("sessions", self.sessions),
            ("handoff_events", self.handoff_events),
            ("unanswered_questions", self.unanswered_questions),
            ("users", self.users),
        ]
    }
}

type Counter = fn(&mut Deleted) -> &mut u64;

/// The old rows of one table. In every statement `$1 < key <= $2` is the
/// page and `$3` the cutoff.
struct Sweep {
    table: &'static str,
    key: &'static str,
    /// Which rows of the page go.
    old: &'static str,
    counter: Counter,
    /// Deletes of what references those rows, run first; `{rows}` stands
    /// for the keys of the rows that go.
    dependents: &'static [(&'static str, Counter)],
}

/// Finished turns, with their messages, reply parts and the statuses of
/// those parts. A message in a turn always goes with its turn; a turn whose
/// reply the outbox is still sending stays.
const TURNS: Sweep = Sweep {
    table: "turns",
    key: "id",
    old: "status <> 'answering' AND answered_at < $3 AND NOT EXISTS (SELECT 1 FROM outbound_messages o \
          WHERE o.turn_id = turns.id AND o.state IN ('queued', 'sending', 'failed_retryable'))",
    counter: |d| &mut d.turns,
    dependents: &[
        (
            "DELETE FROM delivery_statuses WHERE wa_message_id IN \
             (SELECT o.wa_message_id FROM outbound_messages o WHERE o.turn_id IN ({rows}))",
            |d| &mut d.delivery_statuses,
        ),
        ("DELETE FROM outbound_messages WHERE turn_id IN ({rows})", |d| &mut d.outbound_messages),
        ("DELETE FROM inbound_messages WHERE turn_id IN ({rows})", |d| &mut d.inbound_messages),
    ],
};

/// Messages that never wanted a reply (reactions, system notices).
const UNANSWERED_MESSAGES: Sweep = Sweep {
    table: "inbound_messages",
    key: "id",
    old: "turn_id IS NULL AND NOT wants_reply AND received_at < $3",
    counter: |d| &mut d.inbound_messages,
    dependents: &[],
};

/// Statuses about messages we have no record of (sent by other tools on the
/// same number, or arriving after their reply was deleted).
const STRAY_STATUSES: Sweep = Sweep {
    table: "delivery_statuses",
    key: "wa_message_id",
    old: "received_at < $3 AND NOT EXISTS \
          (SELECT 1 FROM outbound_messages o WHERE o.wa_message_id = delivery_statuses.wa_message_id)",
    counter: |d| &mut d.delivery_statuses,
    dependents: &[],
};

/// A claim only continues a session active within the last day, and the
/// cutoff is at least a day ago, so no new turn can join a session found here.
const SESSIONS: Sweep = Sweep {
    table: "sessions",
    key: "id",
    old: "last_activity_at < $3 AND NOT EXISTS \
          (SELECT 1 FROM turns t WHERE t.user_id = sessions.user_id AND t.session_id = sessions.id)",
    counter: |d| &mut d.sessions,
    dependents: &[],
};

/// Pauses and resumes as old as the conversations that go.
const HANDOFF_EVENTS: Sweep =
    Sweep { table: "handoff_events", key: "id", old: "at < $3", counter: |d| &mut d.handoff_events, dependents: &[] };

/// Unanswered questions go with the conversations they were asked in.
const UNANSWERED_QUESTIONS: Sweep = Sweep {
    table: "unanswered_questions",
    key: "id",
    old: "asked_at < $3",
    counter: |d| &mut d.unanswered_questions,
    dependents: &[],
};

/// People with nothing left. Messages in a turn went with their turn, so
/// only messages outside one need looking for; they are found through the
/// `turn_id` index, as `inbound_messages` has no index on `user_id`.
const USERS: Sweep = Sweep {
    table: "users",
    key: "id",
    old: "created_at < $3 \
          AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = users.id) \
          AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.user_id = users.id) \
          AND NOT EXISTS (SELECT 1 FROM outbound_messages o WHERE o.user_id = users.id) \
          AND NOT EXISTS (SELECT 1 FROM handoff_events h WHERE h.user_id = users.id) \
          AND NOT EXISTS (SELECT 1 FROM unanswered_questions q WHERE q.user_id = users.id) \
          AND id NOT IN (SELECT m.user_id FROM inbound_messages m WHERE m.turn_id IS NULL)",
    counter: |d| &mut d.users,
    dependents: &[],
};

impl Store {
    /// Deletes conversations finished before `cutoff` (Unix ms) and
    /// whatever is left without them.
    pub async fn delete_finished_before(&self, cutoff: i64) -> Result<Deleted, StoreError> {
        let mut deleted = Deleted::default();
        // Order matters: what references a row goes before it.
        self.sweep(&TURNS, String::new(), cutoff, &mut deleted).await?;
        self.sweep(&UNANSWERED_MESSAGES, 0_i64, cutoff, &mut deleted).await?;
        self.sweep(&STRAY_STATUSES, String::new(), cutoff, &mut deleted).await?;
        self.sweep(&SESSIONS, 0_i64, cutoff, &mut deleted).await?;
        self.sweep(&HANDOFF_EVENTS, 0_i64, cutoff, &mut deleted).await?;
        self.sweep(&UNANSWERED_QUESTIONS, 0_i64, cutoff, &mut deleted).await?;
        self.sweep(&USERS, 0_i64, cutoff, &mut deleted).await?;
        Ok(deleted)
    }

    /// Walks `sweep.table` page by page; `first` sorts before every key.
    async fn sweep<K>(&self, sweep: &Sweep, first: K, cutoff: i64, deleted: &mut Deleted) -> Result<(), StoreError>
    where
        K: for<'r> sqlx::Decode<'r, Any> + for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send + Unpin,
    {
        let Sweep { table, key, old, .. } = sweep;
        // The page ends at the largest of its keys as the database orders
        // them, which for text need not be Rust's order.
        let page_end = format!(
            "SELECT MAX({key}) FROM (SELECT {key} FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT {PAGE}) page"
        );
        let rows = format!("SELECT {key} FROM {table} WHERE {key} > $1 AND {key} <= $2 AND {old}");
        let delete = format!("DELETE FROM {table} WHERE {key} > $1 AND {key} <= $2 AND {old}");
        let mut after = first;
        loop {
            let mut tx = self.write_tx().await?;
            let end: Option<K> = sqlx::query_scalar(&page_end).bind(after.clone()).fetch_one(&mut *tx).await?;
            let Some(end) = end else { return Ok(()) };
            for (dependent, counter) in sweep.dependents {
                let sql = dependent.replace("{rows}", &rows);
                let query = sqlx::query(&sql).bind(after.clone()).bind(end.clone()).bind(cutoff);
                *counter(deleted) += query.execute(&mut *tx).await?.rows_affected();
            }
            let query = sqlx::query(&delete).bind(after.clone()).bind(end.clone()).bind(cutoff);
            *(sweep.counter)(deleted) += query.execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            after = end;
        }
    }
}
