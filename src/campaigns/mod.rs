//! Campaigns: one approved template to many people, released into the
//! outbox at a steady pace, within the campaign's hours and never on its
//! holidays, never twice to anyone. One replica at a time runs them (a
//! lease in the database), so `SEND_RATE_PER_SECOND` holds for the whole
//! deployment; the outbox then sends, retries and records each message
//! like any other.
//!
//! Pacing is a token bucket per campaign beneath one for the server: each
//! tick adds `rate × elapsed` and releases whole messages. Meta's "too many
//! messages" answers (130429, 131056) to a campaign's messages halve its
//! rate; a quiet minute raises it again by a quarter, up to what was asked.

mod plan;

pub use plan::{from_contacts, holidays, hours, plan, CampaignRequest, Moment};

use crate::config::GatewaySettings;
use crate::domain::{now_ms, BusinessHours, SendingWindow};
use crate::store::{DueCampaign, Store, StoreError};
use crate::templates::{TemplateError, Templates};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Meta's pair limit: one message to the same person every 6 seconds.
pub const PAIR_GAP_MS: i64 = 6_000;
/// The slowest a throttled campaign goes.
const MIN_RATE: f64 = 0.5;
/// A quiet spell after a slow-down before the pace is raised again.
const RECOVER_AFTER_MS: i64 = 60_000;
/// How often the pace, the template and Meta's answers are looked at.
const CHECK_EVERY_MS: i64 = 1_000;
/// Ticks while a campaign runs: fine enough that 200 messages a second go
/// out ten at a time, not in one burst a second.
const BUSY_TICK: Duration = Duration::from_millis(50);
const IDLE_TICK: Duration = Duration::from_secs(1);
const LEASE: &str = "campaigns";
const LEASE_MS: i64 = 10_000;

/// What the runner needs from the rest of the server.
pub struct RunnerParts {
    pub store: Store,
    pub templates: Templates,
    pub settings: GatewaySettings,
    /// How long a released message is worth sending (`SEND_RETRY_HOURS`).
    pub retry_for: Duration,
    /// Tells the outbox something was queued.
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    parts: RunnerParts,
    holder: String,
    state: Mutex<Pace>,
}

#[derive(Default)]
struct Pace {
    server: Bucket,
    campaigns: HashMap<i64, CampaignPace>,
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    allowance: f64,
    last: Option<i64>,
}

impl Bucket {
    /// Adds what `rate` earned since the last fill; at most a quarter
    /// second's worth (and the message being earned) waits, so a pause or
    /// a closed window does not end in a burst.
    fn fill(&mut self, rate: f64, now: i64) -> usize {
        let earned = self.last.map_or(0.0, |last| rate * (now - last).max(0) as f64 / 1000.0);
        self.allowance = (self.allowance + earned).min(rate / 4.0 + 1.0);
        self.last = Some(now);
        self.allowance.floor() as usize
    }

    fn spend(&mut self, count: usize) {
        self.allowance = (self.allowance - count as f64).max(0.0);
    }
}

#[derive(Default, Clone, Copy)]
struct CampaignPace {
    bucket: Bucket,
    checked_at: i64,
    raised_at: i64,
    /// A marketing template: nobody who opted out gets it.
    marketing: bool,
}

/// What a tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Campaigns whose time has come (running, or waiting for their hours).
    pub active: usize,
    pub released: usize,
}

impl Runner {
    pub fn new(parts: RunnerParts) -> Self {
        let holder = format!("campaigns-{}", uuid::Uuid::new_v4());
        Self { inner: Arc::new(Inner { parts, holder, state: Mutex::default() }) }
    }

    /// Runs campaigns until `stopping`, while this replica holds the lease.
    pub fn start(&self, stopping: CancellationToken) {
        let runner = self.clone();
        tokio::spawn(async move {
            loop {
                let now = now_ms();
                let busy = match runner.hold_lease(now).await {
                    Ok(true) => match runner.tick(now).await {
                        Ok(tick) => tick.active > 0,
                        Err(error) => {
                            tracing::error!(%error, "campaign tick failed");
                            false
                        }
                    },
                    Ok(false) => false,
                    Err(error) => {
                        tracing::warn!(%error, "could not take the campaign lease");
                        false
                    }
                };
                tokio::select! {
                    _ = stopping.cancelled() => return,
                    _ = tokio::time::sleep(if busy { BUSY_TICK } else { IDLE_TICK }) => {}
                }
            }
        });
    }

    async fn hold_lease(&self, now: i64) -> Result<bool, StoreError> {
        self.inner.parts.store.hold_lease(LEASE, &self.inner.holder, now + LEASE_MS, now).await
    }

    /// One step at `now`: every campaign whose time has come releases what
    /// its pace allows. Public so tests can drive it with their own clock.
    pub async fn tick(&self, now: i64) -> Result<Tick, StoreError> {
        let parts = &self.inner.parts;
        let due = parts.store.due_campaigns(now).await?;
        let mut tick = Tick { active: due.len(), released: 0 };
        let server_allows = self.with_pace(|pace| pace.server.fill(parts.settings.send_rate_per_second, now));
        let mut left = server_allows;
        for campaign in &due {
            let Some((rate, marketing)) = self.checked_rate(campaign, now).await? else { continue };
            let Some(window) = window_of(campaign) else {
                let note = format!("paused: its hours {:?} cannot be read", campaign.hours);
                parts.store.pause_campaign_for(campaign.id, &note, now).await?;
                continue;
            };
            if window.next_allowed(now).is_none_or(|at| at > now) {
                // Outside its hours: nothing is owed for the time it waited.
                self.with_pace(|pace| pace.campaigns.entry(campaign.id).or_default().bucket = Bucket::default());
                continue;
            }
            let allowed = self.with_pace(|pace| pace.campaigns.entry(campaign.id).or_default().bucket.fill(rate, now));
            let count = allowed.min(left);
            if count == 0 {
                continue;
            }
            let give_up_at = now + parts.retry_for.as_millis() as i64;
            let released =
                parts.store.release_recipients(campaign, marketing, count, PAIR_GAP_MS, give_up_at, now).await?;
            self.with_pace(|pace| {
                pace.campaigns.entry(campaign.id).or_default().bucket.spend(released.released);
                pace.server.spend(released.released);
            });
            left -= released.released.min(left);
            tick.released += released.released;
            metrics::counter!("wa_campaign_messages_total").increment(released.released as u64);
            if !released.remaining {
                tracing::info!(campaign = campaign.id, "campaign: everyone released");
                self.with_pace(|pace| pace.campaigns.remove(&campaign.id));
            }
        }
        if tick.released > 0 {
            (parts.wake)();
        }
        Ok(tick)
    }

    /// The campaign's pace now, after a look (once a second) at Meta's
    /// answers and the template; `None` when it was paused for good reason.
    async fn checked_rate(&self, campaign: &DueCampaign, now: i64) -> Result<Option<(f64, bool)>, StoreError> {
        let parts = &self.inner.parts;
        let pace = self.with_pace(|pace| *pace.campaigns.entry(campaign.id).or_default());
        let mut rate = campaign.current_rate_per_second.min(parts.settings.send_rate_per_second);
        if now - pace.checked_at < CHECK_EVERY_MS {
            return Ok(Some((rate, pace.marketing)));
        }
        let template =
            parts.templates.find(&campaign.account, &campaign.template_name, Some(&campaign.template_language)).await;
        let marketing = match template {
            Ok(template) => template.is_marketing(),
            Err(TemplateError::Store(error)) => return Err(error),
            Err(error) => {
                let note = format!("paused: {error}");
                tracing::warn!(campaign = campaign.id, %note, "campaign paused");
                parts.store.pause_campaign_for(campaign.id, &note, now).await?;
                return Ok(None);
            }
        };
        self.with_pace(|p| {
            let pace = p.campaigns.entry(campaign.id).or_default();
            pace.checked_at = now;
            pace.marketing = marketing;
        });
        let since = pace.checked_at.max(campaign.throttled_at.unwrap_or(0));
        if parts.store.campaign_throttles_since(campaign.id, since).await? > 0 {
            rate = (campaign.current_rate_per_second / 2.0).max(MIN_RATE);
            tracing::warn!(campaign = campaign.id, rate, "Meta asked to slow down: campaign pace halved");
            metrics::counter!("wa_campaign_slowdowns_total").increment(1);
            parts.store.set_campaign_rate(campaign.id, rate, true, now).await?;
        } else if campaign.current_rate_per_second < campaign.rate_per_second
            && now - campaign.throttled_at.unwrap_or(0).max(pace.raised_at) >= RECOVER_AFTER_MS
        {
            rate = (campaign.current_rate_per_second * 1.25).min(campaign.rate_per_second);
            self.with_pace(|p| p.campaigns.entry(campaign.id).or_default().raised_at = now);
            parts.store.set_campaign_rate(campaign.id, rate, false, now).await?;
        }
        Ok(Some((rate.min(parts.settings.send_rate_per_second), marketing)))
    }

    fn with_pace<T>(&self, f: impl FnOnce(&mut Pace) -> T) -> T {
        let mut pace = self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut pace)
    }
}

/// The campaign's hours and holidays; `None` for hours that no longer
/// parse (written by a later version), which stop it rather than let it
/// send at any hour.
fn window_of(campaign: &DueCampaign) -> Option<SendingWindow> {
    let hours = BusinessHours::parse(&campaign.hours).ok()?;
    Some(SendingWindow { hours, holidays: campaign.holidays.iter().cloned().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_paces_and_does_not_burst_after_a_wait() {
        let mut bucket = Bucket::default();
        assert_eq!(bucket.fill(20.0, 0), 0);
        assert_eq!(bucket.fill(20.0, 50), 1, "20/s is one per 50 ms");
        bucket.spend(1);
        assert_eq!(bucket.fill(20.0, 60_000), 6, "a minute's wait gives a quarter second, not 1200");
        let mut slow = Bucket::default();
        slow.fill(0.5, 0);
        assert_eq!(slow.fill(0.5, 1_000), 0);
        assert_eq!(slow.fill(0.5, 2_000), 1);
    }
}
