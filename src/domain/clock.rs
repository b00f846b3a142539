/// Wall-clock milliseconds: the one clock every replica shares.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The window of the per-person turn count (`MAX_TURNS_PER_HOUR`) and of
/// the hourly figures.
pub const HOUR_MS: i64 = 3_600_000;
