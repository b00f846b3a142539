//! Per-person debounce. People send several short messages in a row; the
//! bot waits until they have been quiet for `quiet`, or until `max_wait`
//! after their first message, then hands the person over once. Shortly
//! before that (`lead`), while the person is still quiet, it says so, so
//! the answer can be prepared ahead of the deadline.
//!
//! This is only the in-memory clock. The messages themselves are already in
//! the database, so a crash loses nothing: start-up rebuilds the timers from
//! stored timestamps with [`Debouncer::schedule`].

use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Called with a person's user id.
pub type Notify = Arc<dyn Fn(i64) + Send + Sync>;

/// Whom the debouncer tells what, and when.
pub struct Hooks {
    /// How long before the end of a window `on_near` is called.
    pub lead: Duration,
    /// The window ends in `lead` unless the person writes again. Called
    /// again if a new message moves the deadline.
    pub on_near: Notify,
    /// The window is over; called once per window.
    pub on_due: Notify,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    first_at: Instant,
    due_at: Instant,
    last_at: Instant,
}

#[derive(Clone)]
pub struct Debouncer {
    inner: Arc<Inner>,
}

struct Inner {
    windows: DashMap<i64, Window>,
    quiet: Duration,
    max_wait: Duration,
    hooks: Hooks,
}

impl Debouncer {
    pub fn new(quiet: Duration, max_wait: Duration, hooks: Hooks) -> Self {
        Self { inner: Arc::new(Inner { windows: DashMap::new(), quiet, max_wait, hooks }) }
    }

    /// A new message from `user_id` arrived now: restart its quiet timer.
    pub fn message_arrived(&self, user_id: i64) {
        let now = Instant::now();
        self.upsert(user_id, now, now);
    }

    /// Rebuilds a window from stored arrival times (already converted to
    /// this process's clock), e.g. after a restart. A window already open
    /// here keeps its earlier first message.
    pub fn schedule(&self, user_id: i64, first_at: Instant, last_at: Instant) {
        self.upsert(user_id, first_at, last_at);
    }

    /// Asks for `user_id` to be handed over again at `at`, e.g. because the
    /// database saw a later message than this process did.
    pub fn retry_at(&self, user_id: i64, at: Instant) {
        let mut spawn = false;
        self.inner.windows.entry(user_id).and_modify(|w| w.due_at = w.due_at.max(at)).or_insert_with(|| {
            spawn = true;
            Window { first_at: at, due_at: at, last_at: at }
        });
        if spawn {
            self.spawn_timer(user_id);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.windows.is_empty()
    }

    fn upsert(&self, user_id: i64, first_at: Instant, last_at: Instant) {
        let (quiet, max_wait) = (self.inner.quiet, self.inner.max_wait);
        let mut spawn = false;
        self.inner
            .windows
            .entry(user_id)
            .and_modify(|w| {
                w.first_at = w.first_at.min(first_at);
                w.last_at = w.last_at.max(last_at);
                w.due_at = (w.last_at + quiet).min(w.first_at + max_wait);
            })
            .or_insert_with(|| {
                spawn = true;
                Window { first_at, last_at, due_at: (last_at + quiet).min(first_at + max_wait) }
            });
        if spawn {
            self.spawn_timer(user_id);
        }
    }

    /// One sleeping task per waiting person. New messages only move the
    /// deadline in the map; the task re-reads it when it wakes, so nothing
    /// is cancelled or respawned on the hot path.
    fn spawn_timer(&self, user_id: i64) {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            // The deadline `on_near` was last called for.
            let mut announced = None;
            loop {
                let Some(due_at) = inner.due_at(user_id) else { return };
                if announced != Some(due_at) && Instant::now() < due_at {
                    sleep_until(due_at.checked_sub(inner.hooks.lead).unwrap_or(due_at)).await;
                    if inner.due_at(user_id) == Some(due_at) {
                        (inner.hooks.on_near)(user_id);
                        announced = Some(due_at);
                    }
                    continue;
                }
                sleep_until(due_at).await;
                let fired = inner.windows.remove_if(&user_id, |_, w| w.due_at <= Instant::now()).is_some();
                if fired {
                    (inner.hooks.on_due)(user_id);
                    return;
                }
            }
        });
    }
}

impl Inner {
    fn due_at(&self, user_id: i64) -> Option<Instant> {
        self.windows.get(&user_id).map(|w| w.due_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    type Calls = mpsc::UnboundedReceiver<(i64, Instant)>;

    fn recorder() -> (Notify, Calls) {
        let (tx, rx) = mpsc::unbounded_channel();
        let notify: Notify = Arc::new(move |user| {
            let _ = tx.send((user, Instant::now()));
        });
        (notify, rx)
    }

    /// A debouncer and the calls of its `on_due` and `on_near` hooks.
    fn watched(quiet: u64, max: u64, lead: u64) -> (Debouncer, Calls, Calls) {
        let ((on_due, due), (on_near, near)) = (recorder(), recorder());
        let hooks = Hooks { lead: Duration::from_secs(lead), on_near, on_due };
        (Debouncer::new(Duration::from_secs(quiet), Duration::from_secs(max), hooks), due, near)
    }

    fn debouncer(quiet: u64, max: u64) -> (Debouncer, Calls) {
        let (buffer, due, _) = watched(quiet, max, 1);
        (buffer, due)
    }

    #[tokio::test(start_paused = true)]
    async fn says_the_deadline_is_near_once_per_deadline() {
        let (buffer, mut due, mut near) = watched(15, 60, 1);
        let start = Instant::now();
        buffer.message_arrived(4);
        let (user, at) = near.recv().await.unwrap();
        assert_eq!((user, at - start), (4, Duration::from_secs(14)));
        // Writing again after that moves the deadline, so it is near again later.
        tokio::time::sleep(Duration::from_millis(500)).await;
        buffer.message_arrived(4);
        let (_, at) = near.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_millis(28_500));
        let (_, at) = due.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_millis(29_500));
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(near.try_recv().is_err(), "near again without a new deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_rebuilt_after_its_deadline_is_not_announced() {
        let (buffer, mut due, mut near) = watched(15, 60, 1);
        tokio::time::sleep(Duration::from_secs(100)).await;
        let now = Instant::now();
        buffer.schedule(3, now - Duration::from_secs(40), now - Duration::from_secs(30));
        assert_eq!(due.recv().await.unwrap(), (3, now));
        assert!(near.try_recv().is_err(), "there was nothing left to prepare for");
    }

    #[tokio::test(start_paused = true)]
    async fn fires_once_after_the_person_goes_quiet() {
        let (buffer, mut due) = debouncer(15, 60);
        let start = Instant::now();
        buffer.message_arrived(7);
        tokio::time::sleep(Duration::from_secs(5)).await;
        buffer.message_arrived(7);
        tokio::time::sleep(Duration::from_secs(5)).await;
        buffer.message_arrived(7);
        let (user, at) = due.recv().await.unwrap();
        assert_eq!(user, 7);
        assert_eq!(at - start, Duration::from_secs(25));
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(due.try_recv().is_err(), "a second hand-over for one window");
        assert!(buffer.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn someone_who_never_pauses_is_answered_at_max_wait() {
        let (buffer, mut due) = debouncer(15, 60);
        let start = Instant::now();
        for _ in 0..20 {
            buffer.message_arrived(1);
            tokio::time::sleep(Duration::from_secs(10)).await;
            if let Ok((_, at)) = due.try_recv() {
                assert_eq!(at - start, Duration::from_secs(60));
                return;
            }
        }
        panic!("never answered");
    }

    #[tokio::test(start_paused = true)]
    async fn people_are_timed_independently() {
        let (buffer, mut due) = debouncer(15, 60);
        let start = Instant::now();
        buffer.message_arrived(1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        buffer.message_arrived(2);
        let first = due.recv().await.unwrap();
        let second = due.recv().await.unwrap();
        assert_eq!((first.0, first.1 - start), (1, Duration::from_secs(15)));
        assert_eq!((second.0, second.1 - start), (2, Duration::from_secs(25)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rebuilt_window_whose_deadline_passed_fires_at_once() {
        let (buffer, mut due) = debouncer(15, 60);
        tokio::time::sleep(Duration::from_secs(100)).await;
        let now = Instant::now();
        buffer.schedule(3, now - Duration::from_secs(40), now - Duration::from_secs(30));
        let (user, at) = due.recv().await.unwrap();
        assert_eq!((user, at), (3, now));
        assert!(buffer.is_empty(), "a fired window is not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rebuilt_window_keeps_its_original_deadline() {
        let (buffer, mut due) = debouncer(15, 60);
        tokio::time::sleep(Duration::from_secs(100)).await;
        let now = Instant::now();
        buffer.schedule(3, now - Duration::from_secs(5), now - Duration::from_secs(5));
        let (_, at) = due.recv().await.unwrap();
        assert_eq!(at - now, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_at_hands_over_again_later() {
        let (buffer, mut due) = debouncer(15, 60);
        let now = Instant::now();
        buffer.retry_at(9, now + Duration::from_secs(2));
        let (user, at) = due.recv().await.unwrap();
        assert_eq!((user, at - now), (9, Duration::from_secs(2)));
        assert!(buffer.is_empty(), "a fired retry is not kept");
    }
}
