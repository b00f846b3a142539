//! A cap on work in flight whose waiting line is served one person at a
//! time: when a slot frees, the next person in the rotation gets it, not
//! the next request. Someone who queued ten requests waits behind everyone
//! else's first one, never in front of them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::oneshot;

pub struct FairQueue {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// People with requests waiting, in the order they are served.
    rotation: VecDeque<i64>,
    waiting: HashMap<i64, VecDeque<Waiter>>,
    queued: usize,
    next_id: u64,
}

struct Waiter {
    id: u64,
    granted: oneshot::Sender<()>,
}

/// One slot, given back when dropped: after an answer, an error, a panic or
/// a cancelled request alike.
pub struct Permit {
    queue: Arc<FairQueue>,
}

impl FairQueue {
    pub fn new(slots: usize) -> Arc<Self> {
        let state = State { free: slots, rotation: VecDeque::new(), waiting: HashMap::new(), queued: 0, next_id: 0 };
        Arc::new(Self { state: Mutex::new(state) })
    }

    /// Waits for a slot, behind `person`'s earlier requests but not behind
    /// other people's later ones.
    pub async fn acquire(self: &Arc<Self>, person: i64) -> Permit {
        let started = Instant::now();
        let (id, granted) = {
            let mut guard = self.lock();
            let state = &mut *guard;
            if state.free > 0 && state.queued == 0 {
                state.free -= 1;
                drop(guard);
                metrics::histogram!("wa_llm_queue_seconds").record(0.0);
                return Permit { queue: Arc::clone(self) };
            }
            let id = state.next_id;
            state.next_id += 1;
            let (sender, granted) = oneshot::channel();
            let line = state.waiting.entry(person).or_default();
            if line.is_empty() {
                state.rotation.push_back(person);
            }
            line.push_back(Waiter { id, granted: sender });
            state.queued += 1;
            metrics::gauge!("wa_llm_queue_length").set(state.queued as f64);
            (id, granted)
        };
        let mut waiting = Waiting { queue: self, person, id, holds_slot: true };
        // The sender lives in the queue until it is granted or we leave it.
        let _ = granted.await;
        waiting.holds_slot = false;
        metrics::histogram!("wa_llm_queue_seconds").record(started.elapsed().as_secs_f64());
        Permit { queue: Arc::clone(self) }
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.lock().queued
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement, so a panic
        // elsewhere while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a freed slot to the next person in the rotation.
    fn release(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        while let Some(person) = state.rotation.pop_front() {
            let line = state.waiting.get_mut(&person).expect("people in the rotation have a line");
            let waiter = line.pop_front().expect("lines in the rotation are not empty");
            if line.is_empty() {
                state.waiting.remove(&person);
            } else {
                state.rotation.push_back(person);
            }
            state.queued -= 1;
            metrics::gauge!("wa_llm_queue_length").set(state.queued as f64);
            if waiter.granted.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }

    /// Takes a request that gave up out of the line; `false` if it had
    /// already been handed a slot.
    fn leave(&self, person: i64, id: u64) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(line) = state.waiting.get_mut(&person) else { return false };
        let Some(at) = line.iter().position(|waiter| waiter.id == id) else { return false };
        line.remove(at);
        if line.is_empty() {
            state.waiting.remove(&person);
            state.rotation.retain(|&p| p != person);
        }
        state.queued -= 1;
        metrics::gauge!("wa_llm_queue_length").set(state.queued as f64);
        true
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.queue.release();
    }
}

/// A request still in line; if it is cancelled, it leaves the line, or
/// passes on the slot it was handed in the meantime.
struct Waiting<'a> {
    queue: &'a Arc<FairQueue>,
    person: i64,
    id: u64,
    holds_slot: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.holds_slot && !self.queue.leave(self.person, self.id) {
            self.queue.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// Queues `count` requests of `person` behind a full queue; each
    /// reports its person when served and holds its slot for a second.
    fn queue_up(queue: &Arc<FairQueue>, person: i64, count: usize, served: &mpsc::UnboundedSender<i64>) {
        for _ in 0..count {
            let (queue, served) = (Arc::clone(queue), served.clone());
            tokio::spawn(async move {
                let _permit = queue.acquire(person).await;
                served.send(person).unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            });
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_person_with_many_requests_does_not_starve_another() {
        let queue = FairQueue::new(1);
        let busy = queue.acquire(0).await;
        let (served, mut order) = mpsc::unbounded_channel();
        queue_up(&queue, 1, 10, &served);
        tokio::task::yield_now().await;
        queue_up(&queue, 2, 1, &served);
        tokio::task::yield_now().await;
        assert_eq!(queue.queued(), 11);
        drop(busy);
        let mut seen = Vec::new();
        for _ in 0..11 {
            seen.push(order.recv().await.unwrap());
        }
        assert_eq!(seen[..2], [1, 2], "B is served second, not eleventh: {seen:?}");
        assert_eq!(queue.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_come_back_after_a_panic_and_a_cancelled_wait() {
        let queue = FairQueue::new(1);
        let crashing = Arc::clone(&queue);
        let crashed = tokio::spawn(async move {
            let _permit = crashing.acquire(1).await;
            panic!("the answer failed");
        });
        assert!(crashed.await.is_err());
        let held = queue.acquire(1).await;
        let gave_up = tokio::time::timeout(Duration::from_secs(1), queue.acquire(2)).await;
        assert!(gave_up.is_err(), "the only slot is held");
        assert_eq!(queue.queued(), 0, "a cancelled wait leaves the line");
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(1), queue.acquire(3)).await;
        assert!(again.is_ok(), "the slot was given back");
    }
}
