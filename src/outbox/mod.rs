//! The sender: everything that leaves the server is a row in the outbox
//! first (see `store::outbox`); this worker takes due rows, makes one
//! attempt each, and decides from the outcome when, and whether, to try
//! again. It is the only place that retries a send, because only here is it
//! known whether an earlier attempt may have gone out.

mod policy;

use crate::channels::{Channels, SendError};
use crate::config::OutboxSettings;
use crate::domain::now_ms;
use crate::domain::{ChannelKind, OutboundMedia};
use crate::incidents::{IncidentKind, Incidents};
use crate::store::{ClaimedSend, FinishedReply, Lane, SendOutcome, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Sends in flight at once. Replies to one person never overlap (each
/// waits for the one before), so this spreads over people.
const IN_FLIGHT: usize = 64;
/// How long the sender sleeps when it knows of nothing due: rows another
/// replica queued and then died before sending are found this soon.
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// What an attempt's lease adds to the channel's own time limit before the
/// attempt counts as abandoned: time to record the outcome, retries included.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// Attempts at recording a send's outcome before leaving it to the lease.
const RECORD_ATTEMPTS: u32 = 3;
/// WhatsApp stamps statuses with its own clock, in whole seconds.
const CLOCK_SLACK_SECS: i64 = 30;
const STORE_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    channels: Channels,
    incidents: Incidents,
    settings: OutboxSettings,
    lease: Duration,
    /// Tokens of this process's attempts start with it.
    process: String,
    wake: Notify,
    permits: Arc<Semaphore>,
    sending: TaskTracker,
    stopping: CancellationToken,
    /// Channels that said "slow down" or are down, and until when nothing
    /// is sent to them.
    paused: Mutex<HashMap<Lane, Instant>>,
    chat_logging: bool,
}

pub struct OutboxParts {
    pub store: Store,
    pub channels: Channels,
    pub incidents: Incidents,
    pub settings: OutboxSettings,
    /// The longest a channel takes to answer one send.
    pub send_timeout: Duration,
    /// Keep message bodies once a reply is out.
    pub chat_logging: bool,
}

impl Outbox {
    /// Starts the sender. It picks up whatever an earlier process left
    /// queued at once.
    pub fn start(parts: OutboxParts) -> Self {
        let outbox = Self {
            inner: Arc::new(Inner {
                store: parts.store,
                channels: parts.channels,
                incidents: parts.incidents,
                settings: parts.settings,
                lease: parts.send_timeout + LEASE_MARGIN,
                process: format!("wa-ai-bridge-{}", uuid::Uuid::new_v4()),
                wake: Notify::new(),
                permits: Arc::new(Semaphore::new(IN_FLIGHT)),
                sending: TaskTracker::new(),
                stopping: CancellationToken::new(),
                paused: Mutex::default(),
                chat_logging: parts.chat_logging,
            }),
        };
        tokio::spawn(outbox.clone().run());
        outbox
    }

    /// Something was queued: look now rather than at the next idle look.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// How long a message is worth sending (`SEND_RETRY_HOURS`).
    pub fn retry_for(&self) -> Duration {
        self.inner.settings.retry_for
    }

    /// Stops taking rows and lets attempts in flight finish for up to
    /// `grace`. An attempt still running after that is found by its lease
    /// and treated as one that may have gone out.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.stopping.cancel();
        inner.sending.close();
        if tokio::time::timeout(grace, inner.sending.wait()).await.is_err() {
            tracing::warn!(in_flight = inner.sending.len(), "sends still in flight at shutdown");
        }
    }

    async fn run(self) {
        let inner = &self.inner;
        loop {
            let paused = self.paused_lanes();
            let free = inner.permits.available_permits();
            let look_at = self.next_look(&paused).await;
            if free > 0 && look_at <= Instant::now() && self.claim_and_send(&paused, free).await == free {
                // There may be more due right now.
                continue;
            }
            let look_at = if look_at <= Instant::now() { Instant::now() + STORE_RETRY } else { look_at };
            tokio::select! {
                _ = inner.stopping.cancelled() => return,
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep_until(look_at) => {}
            }
        }
    }

    /// Takes up to `free` due rows and starts an attempt for each; returns
    /// how many.
    async fn claim_and_send(&self, paused: &[Lane], free: usize) -> usize {
        let inner = &self.inner;
        let token = format!("{}:{}", inner.process, uuid::Uuid::new_v4());
        let claim = inner
            .store
            .claim_sends(
                &token,
                now_ms(),
                inner.lease.as_millis() as i64,
                inner.settings.ambiguous_wait.as_millis() as i64,
                paused,
                free,
            )
            .await;
        let (claimed, orphaned) = match claim {
            Ok(claim) => claim,
            Err(error) => {
                tracing::error!(%error, "could not take messages to send; will retry");
                inner.incidents.record(IncidentKind::Store, format!("taking messages to send: {error}"), now_ms());
                tokio::time::sleep(STORE_RETRY).await;
                return 0;
            }
        };
        if orphaned > 0 {
            tracing::warn!(orphaned, "sends whose sender stopped mid-attempt wait for proof they went out");
            metrics::counter!("wa_sends_total", "outcome" => "ambiguous", "code" => "", "account" => "")
                .increment(orphaned);
        }
        let count = claimed.len();
        for send in claimed {
            let Ok(permit) = Arc::clone(&inner.permits).try_acquire_owned() else { break };
            let outbox = self.clone();
            inner.sending.spawn(async move {
                outbox.deliver(send).await;
                drop(permit);
                // The person's next part (or someone waiting for a slot).
                outbox.wake();
            });
        }
        count
    }

    /// When to look again if nothing wakes the sender: the next row due, the
    /// end of a pause, or the idle look, whichever comes first.
    async fn next_look(&self, paused: &[Lane]) -> Instant {
        let now = Instant::now();
        let mut at = now + IDLE_LOOK;
        if let Some(resume) = self.lock_paused().values().min() {
            at = at.min(*resume);
        }
        match self.inner.store.next_send_at(paused).await {
            Ok(Some(due)) => at.min(now + Duration::from_millis((due - now_ms()).max(0) as u64)),
            Ok(None) => at,
            Err(error) => {
                tracing::warn!(%error, "could not tell when the next message is due");
                now + STORE_RETRY
            }
        }
    }

    /// Lanes paused now.
    fn paused_lanes(&self) -> Vec<Lane> {
        let now = Instant::now();
        let mut paused = self.lock_paused();
        paused.retain(|_, until| *until > now);
        paused.keys().cloned().collect()
    }

    fn pause(&self, lane: Lane, delay: Duration) {
        let until = Instant::now() + delay;
        let mut paused = self.lock_paused();
        let entry = paused.entry(lane).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn lock_paused(&self) -> std::sync::MutexGuard<'_, HashMap<Lane, Instant>> {
        self.inner.paused.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One attempt at one row, recorded.
    async fn deliver(&self, send: ClaimedSend) {
        let inner = &self.inner;
        let outcome = self.attempt(&send).await;
        count_send(&send, &outcome);
        if let SendOutcome::Failed { dead, code, title } = &outcome {
            let to = send.recipient.as_ref().map_or_else(|| "-".to_owned(), |r| r.masked());
            tracing::warn!(to = %to, message = send.id, dead, code, "message not delivered: {title}");
            inner.incidents.record(IncidentKind::Send, format!("message {} to {to}: {title}", send.id), now_ms());
        }
        for attempt in 1..=RECORD_ATTEMPTS {
            match inner.store.record_send(&send, &outcome, now_ms(), inner.chat_logging).await {
                Ok(Some(finished)) => return self.reply_complete(&send, finished).await,
                Ok(None) => return,
                // A database that is back within seconds (a dropped
                // connection) loses nothing; otherwise the lease runs out and
                // the row is looked at again as one that may have been sent,
                // so nothing goes out twice blindly.
                Err(error) if attempt < RECORD_ATTEMPTS => {
                    tracing::warn!(message = send.id, %error, "could not record a send; trying again");
                    tokio::time::sleep(STORE_RETRY).await;
                }
                Err(error) => tracing::error!(message = send.id, %error, "could not record a send"),
            }
        }
    }

    async fn reply_complete(&self, send: &ClaimedSend, finished: FinishedReply) {
        metrics::histogram!("wa_time_to_reply_seconds").record(finished.waited_ms.max(0) as f64 / 1000.0);
        if let Some(recipient) = &send.recipient {
            let channel = self.inner.channels.to(recipient, &send.account);
            channel.reply_complete(recipient, &finished.turn_id, &finished.sources).await;
        }
    }

    /// Makes the attempt (or finds it is not needed) and decides what next.
    async fn attempt(&self, send: &ClaimedSend) -> SendOutcome {
        let inner = &self.inner;
        let now = now_ms();
        let Some(recipient) = &send.recipient else {
            return SendOutcome::failed("the person has no address any channel can reach");
        };
        if send.ambiguous {
            let since = send.previous_attempt_at.unwrap_or(now) / 1000 - CLOCK_SLACK_SECS;
            match inner.store.unclaimed_status_id(recipient, since).await {
                Ok(Some(id)) => {
                    metrics::counter!("wa_sends_ambiguous_total", "resolution" => "status_seen").increment(1);
                    return SendOutcome::Sent { wa_message_id: id };
                }
                Ok(None) if now >= send.give_up_at => {
                    return SendOutcome::dead(
                        "no answer to the last attempt and no status since; SEND_RETRY_HOURS passed",
                    )
                }
                Ok(None) => metrics::counter!("wa_sends_ambiguous_total", "resolution" => "resent").increment(1),
                Err(error) => {
                    let title = format!("could not look for a status of the last attempt: {error}");
                    return SendOutcome::Retry { at: now + STORE_RETRY.as_millis() as i64, code: None, title };
                }
            }
        }
        if now >= send.give_up_at {
            return SendOutcome::dead("SEND_RETRY_HOURS passed before it could be sent");
        }
        let Some(body) = &send.body else {
            return SendOutcome::failed("its text was deleted before it could be sent");
        };
        let media = match self.with_contents(send.media.as_ref()).await {
            Ok(media) => media,
            Err(outcome) => return outcome,
        };
        let lane = Lane { channel: recipient.channel(), account: send.account.clone() };
        let channel = inner.channels.to(recipient, &send.account);
        let sent = match (&send.template, &media) {
            (Some(template), media) => channel.send_template(recipient, template, body, media.as_ref()).await,
            (None, Some(media)) => channel.send_media(recipient, media, body).await,
            (None, None) => channel.send_text(recipient, send.turn_id.as_deref(), body).await,
        };
        let now = now_ms();
        match sent {
            Ok(wa_message_id) => SendOutcome::Sent { wa_message_id },
            Err(SendError::Transient { code, title, retry_after, whole_channel }) => {
                let delay = policy::retry_delay(send.attempts + 1, retry_after);
                if whole_channel {
                    self.pause(lane, delay);
                }
                let at = now + delay.as_millis() as i64;
                if at >= send.give_up_at {
                    SendOutcome::Failed {
                        dead: true,
                        code,
                        title: format!("still failing when SEND_RETRY_HOURS passed: {title}"),
                    }
                } else {
                    SendOutcome::Retry { at, code, title }
                }
            }
            Err(SendError::Ambiguous(title)) => {
                SendOutcome::Ambiguous { check_at: now + inner.settings.ambiguous_wait.as_millis() as i64, title }
            }
            Err(error @ (SendError::Permanent { .. } | SendError::NotConfigured(_))) => {
                SendOutcome::Failed { dead: false, code: error.code(), title: error.title() }
            }
        }
    }
}

impl Outbox {
    /// The file with its bytes for an uploaded one, read for this attempt
    /// only: a campaign's thousand messages do not hold a thousand copies.
    async fn with_contents(&self, media: Option<&OutboundMedia>) -> Result<Option<OutboundMedia>, SendOutcome> {
        let Some(file) = media.and_then(OutboundMedia::upload) else { return Ok(media.cloned()) };
        match self.inner.store.uploaded_contents(&file.sha256).await {
            Ok(Some(contents)) => Ok(media.map(|media| media.with_contents(contents))),
            Ok(None) => Err(SendOutcome::failed("its uploaded file was deleted before it could be sent")),
            Err(error) => {
                let title = format!("could not read its uploaded file: {error}");
                Err(SendOutcome::Retry { at: now_ms() + STORE_RETRY.as_millis() as i64, code: None, title })
            }
        }
    }
}

/// Counted per WhatsApp account (the label is empty for the web chat).
fn count_send(send: &ClaimedSend, outcome: &SendOutcome) {
    let whatsapp = send.recipient.as_ref().is_some_and(|r| r.channel() == ChannelKind::WhatsApp);
    let account = if whatsapp { send.account.label().to_owned() } else { String::new() };
    let code = outcome.code().map(|c| c.to_string()).unwrap_or_default();
    let outcome = match outcome {
        SendOutcome::Sent { .. } => "sent",
        SendOutcome::Retry { .. } => "retry",
        SendOutcome::Ambiguous { .. } => "ambiguous",
        SendOutcome::Failed { dead: true, .. } => "dead",
        SendOutcome::Failed { dead: false, .. } => "failed",
    };
    metrics::counter!("wa_sends_total", "outcome" => outcome, "code" => code, "account" => account).increment(1);
}
