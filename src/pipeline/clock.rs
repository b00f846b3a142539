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
