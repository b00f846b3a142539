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
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

/// Called with the user ids whose moment came together, so that a thousand
/// windows ending at once are handed over as one batch.
pub type Notify = Arc<dyn Fn(Vec<i64>) + Send + Sync>;

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
    /// The deadline `on_near` was called for.
    announced: Option<Instant>,
}

impl Window {
    fn new(first_at: Instant, last_at: Instant, due_at: Instant) -> Self {
        Self { first_at, last_at, due_at, announced: None }
    }
}

/// What a person's window needs when the clock looks at it.
enum Moment {
    /// `on_near` is due; the window ends at this moment.
    Near(Instant),
    Due,
    /// Nothing yet: look again then.
    Later(Instant),
    Gone,
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
    /// Asks the clock task to look at a person's window at a moment.
    wake: mpsc::UnboundedSender<(Instant, i64)>,
}

impl Debouncer {
    /// Starts the clock task; must be called inside the runtime.
    pub fn new(quiet: Duration, max_wait: Duration, hooks: Hooks) -> Self {
        let (wake, wakes) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner { windows: DashMap::new(), quiet, max_wait, hooks, wake });
        tokio::spawn(run_clock(Arc::clone(&inner), wakes));
        Self { inner }
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
        let mut opened = false;
        self.inner.windows.entry(user_id).and_modify(|w| w.due_at = w.due_at.max(at)).or_insert_with(|| {
            opened = true;
            Window::new(at, at, at)
        });
        if opened {
            self.inner.look_before(at, user_id);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.windows.is_empty()
    }

    /// A later deadline needs no new wake-up: the clock looks at the window
    /// when the old one comes and finds the new deadline then. Only a new
    /// window or an earlier deadline does.
    fn upsert(&self, user_id: i64, first_at: Instant, last_at: Instant) {
        let (quiet, max_wait) = (self.inner.quiet, self.inner.max_wait);
        let mut look_at = None;
        self.inner
            .windows
            .entry(user_id)
            .and_modify(|w| {
                let before = w.due_at;
                w.first_at = w.first_at.min(first_at);
                w.last_at = w.last_at.max(last_at);
                w.due_at = (w.last_at + quiet).min(w.first_at + max_wait);
                if w.due_at < before {
                    look_at = Some(w.due_at);
                }
            })
            .or_insert_with(|| {
                let due_at = (last_at + quiet).min(first_at + max_wait);
                look_at = Some(due_at);
                Window::new(first_at, last_at, due_at)
            });
        if let Some(due_at) = look_at {
            self.inner.look_before(due_at, user_id);
        }
    }
}

impl Inner {
    /// Wakes the clock for `user_id` when `on_near` would be due for a
    /// window ending at `due_at`.
    fn look_before(&self, due_at: Instant, user_id: i64) {
        let at = due_at.checked_sub(self.hooks.lead).unwrap_or(due_at);
        // Fails only once the runtime is shutting down.
        let _ = self.wake.send((at, user_id));
    }

    fn moment(&self, user_id: i64, now: Instant) -> Moment {
        {
            let Some(mut window) = self.windows.get_mut(&user_id) else { return Moment::Gone };
            if now < window.due_at {
                let near_at = window.due_at.checked_sub(self.hooks.lead).unwrap_or(window.due_at);
                if window.announced == Some(window.due_at) {
                    return Moment::Later(window.due_at);
                }
                if now < near_at {
                    return Moment::Later(near_at);
                }
                window.announced = Some(window.due_at);
                return Moment::Near(window.due_at);
            }
        }
        // A message that arrived since the check above moved the deadline:
        // then the window stays, and is looked at again at once.
        match self.windows.remove_if(&user_id, |_, w| w.due_at <= now) {
            Some(_) => Moment::Due,
            None => Moment::Later(now),
        }
    }
}

/// One task keeps every window's next moment in a queue, and hands over all
/// the people whose moment has come with one call per hook. With a task per
/// window, timers firing together trickled in a few at a time, and a claim
/// started for the first few made the rest wait for it.
async fn run_clock(inner: Arc<Inner>, mut wakes: mpsc::UnboundedReceiver<(Instant, i64)>) {
    let mut queue: BinaryHeap<Reverse<(Instant, i64)>> = BinaryHeap::new();
    let mut received = Vec::new();
    loop {
        let next = queue.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            count = wakes.recv_many(&mut received, 1024) => {
                if count == 0 {
                    return;
                }
                queue.extend(received.drain(..).map(Reverse));
            }
            () = sleep_until_if(next) => {}
        }
        let now = Instant::now();
        let (mut near, mut due) = (Vec::new(), Vec::new());
        while let Some(&Reverse((at, user_id))) = queue.peek() {
            if at > now {
                break;
            }
            queue.pop();
            match inner.moment(user_id, now) {
                Moment::Near(due_at) => {
                    near.push(user_id);
                    queue.push(Reverse((due_at, user_id)));
                }
                Moment::Due => due.push(user_id),
                Moment::Later(at) => queue.push(Reverse((at, user_id))),
                Moment::Gone => {}
            }
        }
        if !near.is_empty() {
            (inner.hooks.on_near)(near);
        }
        if !due.is_empty() {
            (inner.hooks.on_due)(due);
        }
    }
}

async fn sleep_until_if(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Calls = mpsc::UnboundedReceiver<(i64, Instant)>;

    fn recorder() -> (Notify, Calls) {
        let (tx, rx) = mpsc::unbounded_channel();
        let notify: Notify = Arc::new(move |users: Vec<i64>| {
            for user in users {
                let _ = tx.send((user, Instant::now()));
            }
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
    async fn windows_ending_together_are_handed_over_in_one_call() {
        let (tx, mut batches) = mpsc::unbounded_channel();
        let on_due: Notify = Arc::new(move |users: Vec<i64>| {
            let _ = tx.send(users);
        });
        let hooks = Hooks { lead: Duration::from_secs(1), on_near: Arc::new(|_| {}), on_due };
        let buffer = Debouncer::new(Duration::from_secs(15), Duration::from_secs(60), hooks);
        for user in 0..500 {
            buffer.message_arrived(user);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        buffer.message_arrived(500);
        let mut first = batches.recv().await.unwrap();
        first.sort_unstable();
        assert_eq!(first, (0..500).collect::<Vec<_>>());
        assert_eq!(batches.recv().await.unwrap(), [500]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_found_at_recovery_is_kept() {
        let (buffer, mut due) = debouncer(15, 60);
        let start = Instant::now();
        buffer.message_arrived(2);
        // Another replica stored an earlier message from this person.
        buffer.schedule(2, start - Duration::from_secs(55), start - Duration::from_secs(55));
        let (_, at) = due.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_secs(5), "max wait counts from the earlier message");
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
