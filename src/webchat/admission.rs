//! A cap on messages into the web chat, across every visitor: the web chat
//! is open to anyone who can reach the server, and each new number is a new
//! conversation the LLM is paid to answer. A token bucket: bursts up to a
//! minute's worth, refilled evenly.

use std::sync::Mutex;
use tokio::time::Instant;

pub struct Admission {
    per_minute: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Admission {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self { per_minute, bucket: Mutex::new(Bucket { tokens: per_minute, at: Instant::now() }) }
    }

    /// Takes one message's place, or says there is none left this minute.
    pub fn admit(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_minute / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(self.per_minute);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_minutes_worth_at_once_then_evenly() {
        let admission = Admission::new(6);
        assert_eq!((0..10).filter(|_| admission.admit()).count(), 6, "a burst of a minute's worth");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!admission.admit(), "one message every 10 s");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(admission.admit());
        assert!(!admission.admit());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!((0..10).filter(|_| admission.admit()).count(), 6, "idle time does not bank more than a minute");
    }
}
