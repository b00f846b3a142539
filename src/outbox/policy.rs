//! How long to wait before trying a message again.

use rand::Rng;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
/// The longest pause between two attempts without a `Retry-After`: a
/// message queued during an outage goes out at most this long after it
/// ends, and a day of outage costs under 300 attempts per message.
const LONGEST: Duration = Duration::from_secs(300);
/// A `Retry-After` beyond this is taken as this: a server asking for a
/// day's pause is wrong more often than it is right.
const LONGEST_ASKED: Duration = Duration::from_secs(3600);

/// The pause after the `attempt`-th failed attempt (1 for the first):
/// exponential from a second, capped, with ±20 % jitter so that messages
/// that failed together do not all come back together; the server's
/// `Retry-After` wins when it gave one.
pub fn retry_delay(attempt: i64, retry_after: Option<Duration>) -> Duration {
    if let Some(asked) = retry_after {
        return asked.clamp(FIRST, LONGEST_ASKED);
    }
    let doublings = attempt.saturating_sub(1).clamp(0, 16) as u32;
    let base = FIRST.saturating_mul(1 << doublings).min(LONGEST);
    base.mul_f64(rand::rng().random_range(0.8..=1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_a_second_up_to_five_minutes() {
        for (attempt, base) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (500, 300)] {
            let delay = retry_delay(attempt, None).as_secs_f64();
            let base = base as f64;
            assert!(delay >= base * 0.8 && delay <= base * 1.2, "attempt {attempt}: {delay}");
        }
    }

    #[test]
    fn retry_after_wins_within_bounds() {
        assert_eq!(retry_delay(1, Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert_eq!(retry_delay(7, Some(Duration::ZERO)), FIRST);
        assert_eq!(retry_delay(1, Some(Duration::from_secs(86_400))), LONGEST_ASKED);
    }
}
