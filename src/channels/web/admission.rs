//! How much the web chat takes in, and from whom. It is open to anyone who
//! can reach the server and every message is an LLM answer someone pays
//! for, so each message must fit in three token buckets (its conversation's,
//! its client address's and everyone's together), each new conversation in
//! its address's bucket, and each open event stream under two caps. A
//! visitor who runs out waits for their own buckets without using up
//! anyone else's.

use crate::config::WebChatLimits;
use crate::domain::ConversationKey;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Visitors (conversations, addresses) remembered per kind of bucket. A
/// visitor whose bucket is full again is forgotten (a fresh bucket is the
/// same) every few minutes and whenever the cap is reached; past the cap,
/// the one idle longest goes.
const MAX_KEYS: usize = 10_000;
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// What a refused event stream is told to wait: streams end when a window
/// closes, not on a clock.
const STREAM_RETRY: Duration = Duration::from_secs(30);

/// Which limit a refused request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Everyone,
    Conversation,
    AddressMessages,
    AddressConversations,
    Streams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}; please try again in {} s", limit.describe(), retry_after.as_secs())]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: Duration,
}

impl Limit {
    fn describe(self) -> &'static str {
        match self {
            Limit::Everyone => "the web chat is busy (WEB_CHAT_MESSAGES_PER_MINUTE reached)",
            Limit::Conversation => "too many messages in this conversation",
            Limit::AddressMessages => "too many messages from your network",
            Limit::AddressConversations => "too many new conversations from your network",
            Limit::Streams => "too many open chat windows",
        }
    }

    fn after(self, wait: Duration) -> Refusal {
        // Whole seconds, rounded up, as `Retry-After` takes them.
        Refusal { limit: self, retry_after: Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64) }
    }
}

#[derive(Clone, Copy)]
struct Rate {
    capacity: f64,
    per_second: f64,
}

impl Rate {
    fn per_minute(n: u32) -> Self {
        Self { capacity: f64::from(n.max(1)), per_second: f64::from(n.max(1)) / 60.0 }
    }

    fn per_hour(n: u32) -> Self {
        Self { capacity: f64::from(n.max(1)), per_second: f64::from(n.max(1)) / 3600.0 }
    }

    fn full(&self, now: Instant) -> Bucket {
        Bucket { tokens: self.capacity, at: now }
    }

    /// Brings `bucket` up to `now`; `Some(wait)` when it holds no whole token.
    fn refill(&self, bucket: &mut Bucket, now: Instant) -> Option<Duration> {
        let earned = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + earned).min(self.capacity);
        bucket.at = now;
        (bucket.tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One bucket per visitor, bounded in number.
struct Keyed<K> {
    rate: Rate,
    buckets: HashMap<K, Bucket>,
    swept: Instant,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(rate: Rate) -> Self {
        Self { rate, buckets: HashMap::new(), swept: Instant::now() }
    }

    fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let rate = self.rate;
        self.buckets.get_mut(key).and_then(|bucket| rate.refill(bucket, now))
    }

    /// Takes a token the caller has just seen `wait` allow.
    fn take(&mut self, key: &K, now: Instant) {
        if !self.buckets.contains_key(key) {
            self.make_room(now);
        }
        let rate = self.rate;
        self.buckets.entry(key.clone()).or_insert_with(|| rate.full(now)).tokens -= 1.0;
    }

    fn make_room(&mut self, now: Instant) {
        if self.buckets.len() < MAX_KEYS && now.duration_since(self.swept) < SWEEP_EVERY {
            return;
        }
        self.swept = now;
        let rate = self.rate;
        self.buckets.retain(|_, bucket| {
            rate.refill(bucket, now);
            bucket.tokens < rate.capacity
        });
        if self.buckets.len() >= MAX_KEYS {
            let idlest = self.buckets.iter().min_by_key(|(_, bucket)| bucket.at).map(|(key, _)| key.clone());
            if let Some(key) = idlest {
                self.buckets.remove(&key);
            }
        }
    }
}

struct Buckets {
    everyone_rate: Rate,
    everyone: Bucket,
    conversations: Keyed<ConversationKey>,
    messages_from: Keyed<IpAddr>,
    conversations_from: Keyed<IpAddr>,
}

pub struct Admission {
    buckets: Mutex<Buckets>,
}

impl Admission {
    pub fn new(messages_per_minute: u32, limits: &WebChatLimits) -> Self {
        let everyone_rate = Rate::per_minute(messages_per_minute);
        Self {
            buckets: Mutex::new(Buckets {
                everyone_rate,
                everyone: everyone_rate.full(Instant::now()),
                conversations: Keyed::new(Rate::per_minute(limits.conversation_messages_per_minute)),
                messages_from: Keyed::new(Rate::per_hour(limits.address_messages_per_hour)),
                conversations_from: Keyed::new(Rate::per_hour(limits.address_conversations_per_hour)),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one message's place in every bucket it must fit in, or none
    /// of them: a refused message costs its sender nothing.
    pub fn admit_message(&self, conversation: &ConversationKey, from: IpAddr) -> Result<(), Refusal> {
        let mut buckets = self.lock();
        let buckets = &mut *buckets;
        let now = Instant::now();
        if let Some(wait) = buckets.conversations.wait(conversation, now) {
            return Err(Limit::Conversation.after(wait));
        }
        if let Some(wait) = buckets.messages_from.wait(&from, now) {
            return Err(Limit::AddressMessages.after(wait));
        }
        if let Some(wait) = buckets.everyone_rate.refill(&mut buckets.everyone, now) {
            return Err(Limit::Everyone.after(wait));
        }
        buckets.conversations.take(conversation, now);
        buckets.messages_from.take(&from, now);
        buckets.everyone.tokens -= 1.0;
        Ok(())
    }

    pub fn admit_conversation(&self, from: IpAddr) -> Result<(), Refusal> {
        let mut buckets = self.lock();
        let now = Instant::now();
        if let Some(wait) = buckets.conversations_from.wait(&from, now) {
            return Err(Limit::AddressConversations.after(wait));
        }
        buckets.conversations_from.take(&from, now);
        Ok(())
    }
}

/// Open event streams, each of which holds a connection and a task for as
/// long as a window is open.
#[derive(Clone)]
pub struct Streams {
    max: usize,
    per_address: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open stream's place; giving it back is dropping it.
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    from: IpAddr,
}

impl Streams {
    pub fn new(limits: &WebChatLimits) -> Self {
        Self { max: limits.max_streams, per_address: limits.streams_per_address, open: Arc::default() }
    }

    pub fn open(&self, from: IpAddr) -> Result<StreamSlot, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&from).copied().unwrap_or_default();
        if total >= self.max || mine >= self.per_address {
            return Err(Limit::Streams.after(STREAM_RETRY));
        }
        *open.entry(from).or_default() += 1;
        Ok(StreamSlot { open: Arc::clone(&self.open), from })
    }

    pub fn count(&self) -> usize {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).values().sum()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.from) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> WebChatLimits {
        WebChatLimits {
            conversation_messages_per_minute: 6,
            address_messages_per_hour: 20,
            address_conversations_per_hour: 2,
            max_streams: 3,
            streams_per_address: 2,
        }
    }

    fn conversation(n: u8) -> ConversationKey {
        ConversationKey::from_digest([n; 32])
    }

    fn address(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[tokio::test(start_paused = true)]
    async fn everyone_shares_a_minutes_worth_at_once_then_evenly() {
        let admission = Admission::new(6, &WebChatLimits { conversation_messages_per_minute: 100, ..limits() });
        let admitted = (0..10).filter(|&n| admission.admit_message(&conversation(n), address(n)).is_ok()).count();
        assert_eq!(admitted, 6, "a burst of a minute's worth");
        tokio::time::advance(Duration::from_secs(9)).await;
        let refused = admission.admit_message(&conversation(20), address(20)).unwrap_err();
        assert_eq!(refused, Refusal { limit: Limit::Everyone, retry_after: Duration::from_secs(1) });
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(admission.admit_message(&conversation(21), address(21)).is_ok());
        tokio::time::advance(Duration::from_secs(3600)).await;
        let admitted = (30..40).filter(|&n| admission.admit_message(&conversation(n), address(n)).is_ok()).count();
        assert_eq!(admitted, 6, "idle time does not bank more than a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn a_chatty_conversation_waits_alone_and_a_refusal_costs_nothing() {
        let admission = Admission::new(60, &limits());
        for _ in 0..6 {
            admission.admit_message(&conversation(1), address(1)).unwrap();
        }
        let refused = admission.admit_message(&conversation(1), address(1)).unwrap_err();
        assert_eq!(refused, Refusal { limit: Limit::Conversation, retry_after: Duration::from_secs(10) });
        assert!(admission.admit_message(&conversation(2), address(1)).is_ok(), "another conversation goes on");
        assert!(admission.admit_message(&conversation(3), address(2)).is_ok(), "so does another visitor");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(admission.admit_message(&conversation(1), address(1)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_message_takes_nothing_from_its_senders_buckets() {
        let admission = Admission::new(1, &limits());
        admission.admit_message(&conversation(1), address(1)).unwrap();
        assert_eq!(admission.admit_message(&conversation(2), address(2)).unwrap_err().limit, Limit::Everyone);
        let buckets = admission.lock();
        assert!(!buckets.conversations.buckets.contains_key(&conversation(2)));
        assert!(!buckets.messages_from.buckets.contains_key(&address(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_has_so_many_messages_and_conversations_an_hour() {
        let admission = Admission::new(1000, &limits());
        let admitted = (0..30).filter(|&n| admission.admit_message(&conversation(n), address(1)).is_ok()).count();
        assert_eq!(admitted, 20);
        let refused = admission.admit_message(&conversation(99), address(1)).unwrap_err();
        assert_eq!(refused, Refusal { limit: Limit::AddressMessages, retry_after: Duration::from_secs(180) });
        assert!(admission.admit_message(&conversation(99), address(2)).is_ok());

        assert!(admission.admit_conversation(address(1)).is_ok());
        assert!(admission.admit_conversation(address(1)).is_ok());
        let refused = admission.admit_conversation(address(1)).unwrap_err();
        assert_eq!(refused, Refusal { limit: Limit::AddressConversations, retry_after: Duration::from_secs(1800) });
        assert!(admission.admit_conversation(address(2)).is_ok(), "another address is not affected");
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert!(admission.admit_conversation(address(1)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn visitors_are_remembered_only_up_to_the_cap() {
        let mut keyed = Keyed::new(Rate::per_minute(2));
        let now = Instant::now();
        for n in 0..MAX_KEYS as u32 {
            keyed.take(&n, now);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        keyed.take(&u32::MAX, Instant::now());
        assert_eq!(keyed.buckets.len(), MAX_KEYS, "the idlest visitor made room");
        tokio::time::advance(Duration::from_secs(60)).await;
        keyed.take(&(u32::MAX - 1), Instant::now());
        assert_eq!(keyed.buckets.len(), 1, "visitors whose bucket filled up again are forgotten");
        tokio::time::advance(Duration::from_secs(60)).await;
        keyed.take(&1, Instant::now());
        assert_eq!(keyed.buckets.len(), 2, "below the cap, idle visitors wait for the next sweep");
        tokio::time::advance(SWEEP_EVERY).await;
        keyed.take(&2, Instant::now());
        assert_eq!(keyed.buckets.len(), 1, "the sweep forgot the two idle ones");
    }

    #[test]
    fn streams_are_capped_in_total_and_per_address() {
        let streams = Streams::new(&limits());
        let first = streams.open(address(1)).unwrap();
        let _second = streams.open(address(1)).unwrap();
        assert_eq!(streams.open(address(1)).err().map(|r| r.limit), Some(Limit::Streams), "two per address");
        let _third = streams.open(address(2)).unwrap();
        assert!(streams.open(address(3)).is_err(), "three in all");
        assert_eq!(streams.count(), 3);
        drop(first);
        assert!(streams.open(address(3)).is_ok(), "a closed stream gives its place back");
    }
}
