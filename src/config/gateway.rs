//! How the gateway paces what nobody is waiting for right now: campaigns
//! and applications' queued notifications.

use super::Reader;
use crate::domain::BusinessHours;

/// Meta lets a number send 80 messages a second by default; a business
/// that starts lower keeps its quality rating while it learns its limits.
const DEFAULT_RATE: f64 = 20.0;
const MAX_RATE: f64 = 1000.0;
/// When customers expect a business to write to them.
pub const DEFAULT_SEND_HOURS: &str = "Mon-Sat 08:00-20:00 Asia/Jakarta";

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `SEND_RATE_PER_SECOND`: campaign messages per second, at most.
    pub send_rate_per_second: f64,
    /// `SEND_HOURS`: when campaigns (unless they say otherwise) and queued
    /// notifications go out.
    pub send_hours: BusinessHours,
    /// `WA_OUTBOX_*`: the old gateway's table, polled when configured.
    pub wa_outbox: Option<super::WaOutboxSettings>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    pub(super) fn gateway(&mut self) -> GatewaySettings {
        let raw = self.text("SEND_RATE_PER_SECOND");
        let send_rate_per_second = match raw.as_deref().map_or(Ok(DEFAULT_RATE), str::parse::<f64>) {
            Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE => rate,
            _ => {
                self.problems.push(format!(
                    "SEND_RATE_PER_SECOND must be a number of messages per second above 0 and at most {MAX_RATE}, \
                     got {raw:?}"
                ));
                DEFAULT_RATE
            }
        };
        let hours = self.text("SEND_HOURS").unwrap_or_else(|| DEFAULT_SEND_HOURS.into());
        let hours = if hours.eq_ignore_ascii_case("always") { String::new() } else { hours };
        let send_hours = BusinessHours::parse(&hours).unwrap_or_else(|problem| {
            self.problems.push(format!("SEND_HOURS {problem}"));
            BusinessHours::default()
        });
        let wa_outbox = self.wa_outbox(&send_hours);
        GatewaySettings { send_rate_per_second, send_hours, wa_outbox }
    }
}
