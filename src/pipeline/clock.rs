//! Where stored wall-clock times meet this process's timers. Everything a
//! process waits for runs on the monotonic clock, which a change of the
//! system time does not move; only what replicas share (arrival times,
//! deadlines, leases) is wall-clock, and it is converted here, once, when
//! a timer is set. A wall-clock step between storing a time and converting
//! it moves that one timer by the step (see README, "Clocks").

use std::time::Duration;
use tokio::time::Instant;

/// Converts a wall-clock millisecond stored in the database into this
/// process's monotonic clock, given the wall clock read just now.
pub fn instant_at(wall_ms: i64, now_wall_ms: i64) -> Instant {
    let now = Instant::now();
    let offset = Duration::from_millis(wall_ms.abs_diff(now_wall_ms));
    if wall_ms >= now_wall_ms {
        now + offset
    } else {
        now.checked_sub(offset).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALL: i64 = 1_700_000_000_000;

    #[tokio::test(start_paused = true)]
    async fn a_stored_deadline_becomes_the_same_distance_on_the_monotonic_clock() {
        let now = Instant::now();
        assert_eq!(instant_at(WALL + 15_000, WALL), now + Duration::from_secs(15));
        assert_eq!(instant_at(WALL - 2_000, WALL) + Duration::from_secs(2), now);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wall_clock_step_moves_a_converted_deadline_by_the_step() {
        let now = Instant::now();
        let deadline = WALL + 15_000;
        // Stepped 5 s forward: the window ends 5 s early; backward: late.
        assert_eq!(instant_at(deadline, WALL + 5_000), now + Duration::from_secs(10));
        assert_eq!(instant_at(deadline, WALL - 5_000), now + Duration::from_secs(20));
    }
}
