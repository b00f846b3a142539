//! The old gateway's `wa_outbox` table (`WA_OUTBOX_DATABASE_URL`): rows
//! waiting as `ANTRIAN` are queued in the outbox and marked `Terproses`
//! (or `Gagal` with the reason), within `WA_OUTBOX_HOURS` and never on a
//! date in `wa_libur`, so the applications writing that table switch
//! gateways without a change.
//!
//! Exactly once, with any number of replicas: rows are locked with `FOR
//! UPDATE SKIP LOCKED`, queued under the key `wa_outbox:{id}` (our commit),
//! then marked (theirs). A crash between the two commits leaves a row
//! waiting; taken again, its key finds the message already queued.

mod notification;
mod table;

use crate::api::AppState;
use crate::config::WaOutboxSettings;
use crate::domain::{now_ms, OutboundMedia, SendingWindow};
use crate::incidents::{IncidentKind, Incidents};
use crate::outbox::Outbox;
use crate::store::{AppMessage, AppSend, Store, StoreError};
use crate::templates::{Scalar, TemplateArgs, TemplateError, Templates, Values};
use notification::Notification;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::MySqlPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The author of every message this queues; keys are `wa_outbox:{row id}`.
const AUTHOR: &str = "wa_outbox";
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
enum WaOutboxError {
    #[error("the wa_outbox database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts polling when `WA_OUTBOX_DATABASE_URL` is set; stops with the
/// server.
pub fn start(state: &AppState) {
    let Some(settings) = state.settings.gateway.wa_outbox.clone() else { return };
    let pool = match table::pool(settings.database_url.expose_secret()) {
        Ok(pool) => pool,
        Err(error) => {
            // Settings checked the URL; this is sqlx disagreeing.
            tracing::error!(url = %settings.masked_url(), %error, "wa_outbox: the database URL cannot be used");
            return;
        }
    };
    tracing::info!(url = %settings.masked_url(), account = %settings.account, "wa_outbox: polling");
    let poller = Poller {
        settings,
        pool,
        store: state.store.clone(),
        outbox: state.outbox.clone(),
        templates: state.templates.clone(),
        incidents: state.incidents.clone(),
        told_no_holidays: false,
    };
    tokio::spawn(poller.run(state.stopping.clone()));
}

struct Poller {
    settings: WaOutboxSettings,
    pool: MySqlPool,
    store: Store,
    outbox: Outbox,
    templates: Templates,
    incidents: Incidents,
    /// Whether the missing `wa_libur` table was logged (once is enough).
    told_no_holidays: bool,
}

/// What one look at the table found.
enum Round {
    /// A full batch: more may be waiting.
    Full,
    /// Less than a batch, or sending is not allowed for this long.
    Wait(Duration),
}

/// What became of a row, as written back to it.
enum Outcome {
    Queued { id: i64, repeated: bool, template: bool },
    Failed(String),
}

impl Outcome {
    fn status(&self) -> &'static str {
        match self {
            Outcome::Queued { .. } => table::TAKEN,
            Outcome::Failed(_) => table::FAILED,
        }
    }

    /// The `response` column: our message's id, which `GET
    /// /api/messages/{id}` follows to delivery, or the reason.
    fn response(&self) -> Value {
        match self {
            Outcome::Queued { id, template, .. } => {
                json!({ "ok": true, "id": id, "sent_as": if *template { "template" } else { "message" } })
            }
            Outcome::Failed(reason) => json!({ "ok": false, "reason": reason }),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Outcome::Queued { repeated: true, .. } => "repeated",
            Outcome::Queued { template: true, .. } => "template",
            Outcome::Queued { .. } => "queued",
            Outcome::Failed(_) => "failed",
        }
    }
}

impl Poller {
    async fn run(mut self, stopping: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let pause = match self.round().await {
                Ok(round) => {
                    if failures > 0 {
                        tracing::info!(url = %self.settings.masked_url(), "wa_outbox: the database answers again");
                    }
                    failures = 0;
                    match round {
                        Round::Full => Duration::ZERO,
                        Round::Wait(pause) => pause,
                    }
                }
                Err(error) => {
                    failures += 1;
                    metrics::counter!("wa_outbox_errors_total").increment(1);
                    tracing::warn!(url = %self.settings.masked_url(), %error, failures, "wa_outbox: a poll failed");
                    if failures == 1 {
                        self.incidents.record(IncidentKind::Store, format!("wa_outbox: {error}"), now_ms());
                    }
                    (self.settings.poll_interval * 2u32.saturating_pow(failures.min(16))).min(MAX_BACKOFF)
                }
            };
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn round(&mut self) -> Result<Round, WaOutboxError> {
        let now = now_ms();
        let window = SendingWindow { hours: self.settings.hours.clone(), holidays: self.holidays().await? };
        // Holidays are read again each poll, so one added or removed today
        // counts within a poll interval.
        match window.next_allowed(now) {
            Some(at) if at <= now => {}
            Some(at) => {
                return Ok(Round::Wait(Duration::from_millis((at - now) as u64).min(self.settings.poll_interval)))
            }
            None => return Ok(Round::Wait(self.settings.poll_interval)),
        }
        let mut tx = table::begin(&self.pool).await?;
        let rows = table::take(&mut tx, self.settings.batch).await?;
        let mut queued = false;
        for row in &rows {
            // A store failure ends the round before their commit: the rows
            // stay waiting, and those queued already are found by key.
            let outcome = match Notification::from_row(row) {
                Ok(notification) => self.queue(row.id, &notification).await?,
                Err(problem) => Outcome::Failed(problem.to_string()),
            };
            if let Outcome::Failed(reason) = &outcome {
                tracing::info!(row = row.id, %reason, "wa_outbox: a row cannot be sent");
            }
            queued |= matches!(outcome, Outcome::Queued { repeated: false, .. });
            table::mark(&mut tx, row.id, outcome.status(), &outcome.response().to_string()).await?;
            metrics::counter!("wa_outbox_rows_total", "outcome" => outcome.label()).increment(1);
        }
        tx.commit().await?;
        if queued {
            self.outbox.wake();
        }
        Ok(if rows.len() as u64 == u64::from(self.settings.batch) {
            Round::Full
        } else {
            Round::Wait(self.settings.poll_interval)
        })
    }

    async fn holidays(&mut self) -> Result<std::collections::BTreeSet<String>, WaOutboxError> {
        match table::holidays(&self.pool).await? {
            Some(dates) => Ok(dates),
            None => {
                if !self.told_no_holidays {
                    tracing::warn!("wa_outbox: there is no wa_libur table, so no day is a holiday");
                    self.told_no_holidays = true;
                }
                Ok(Default::default())
            }
        }
    }

    /// Queues the row as written; where the Cloud API would refuse that
    /// (the person has not written for 24 hours), as `WA_OUTBOX_TEMPLATE`.
    async fn queue(&self, row: i64, notification: &Notification) -> Result<Outcome, WaOutboxError> {
        let key = format!("{AUTHOR}:{row}");
        let account = &self.settings.account;
        let parts = &notification.parts;
        let reason = match self.queue_as(&key, notification, parts, notification.media.as_ref(), None).await? {
            AppSend::Queued(id) => return Ok(Outcome::Queued { id, repeated: false, template: false }),
            AppSend::Repeated(id) => return Ok(Outcome::Queued { id, repeated: true, template: false }),
            AppSend::OutsideWindow(_) => OUTSIDE_WINDOW,
            // Unless the row was taken before and queued as the template,
            // which asking again as the template finds.
            AppSend::KeyReused => CHANGED,
        };
        let template = self.settings.template.as_ref().filter(|_| self.templates.from_meta(account));
        let Some((name, language)) = template else { return Ok(Outcome::Failed(reason.into())) };
        let template = match self.templates.find(account, name, language.as_deref()).await {
            Ok(template) => template,
            Err(TemplateError::Store(error)) => return Err(error.into()),
            Err(error) => return Ok(Outcome::Failed(format!("WA_OUTBOX_TEMPLATE {name}: {error}"))),
        };
        let args = TemplateArgs {
            name: name.clone(),
            language: Some(template.language.clone()),
            body: Some(Values::List(vec![Scalar::Text(notification.one_line())])),
            ..TemplateArgs::default()
        };
        let filled = match crate::templates::fill(&template, &args) {
            Ok(filled) => filled,
            Err(problems) => {
                let error = TemplateError::Invalid(problems);
                return Ok(Outcome::Failed(format!("WA_OUTBOX_TEMPLATE {name}: {error}")));
            }
        };
        let parts = [filled.text];
        Ok(match self.queue_as(&key, notification, &parts, filled.media.as_ref(), Some(&filled.payload)).await? {
            AppSend::Queued(id) => Outcome::Queued { id, repeated: false, template: true },
            AppSend::Repeated(id) => Outcome::Queued { id, repeated: true, template: true },
            AppSend::KeyReused => Outcome::Failed(CHANGED.into()),
            // Templates are never refused; kept for the store's sake.
            AppSend::OutsideWindow(_) => Outcome::Failed(OUTSIDE_WINDOW.into()),
        })
    }

    async fn queue_as(
        &self,
        key: &str,
        notification: &Notification,
        parts: &[String],
        media: Option<&OutboundMedia>,
        template: Option<&Value>,
    ) -> Result<AppSend, StoreError> {
        let now = now_ms();
        let message = AppMessage {
            account: &self.settings.account,
            to: &notification.to,
            author: AUTHOR,
            key,
            parts,
            media,
            template,
            give_up_at: now + self.outbox.retry_for().as_millis() as i64,
        };
        let sent = self.store.queue_app_message(&message, now).await?;
        if let AppSend::Queued(id) = sent {
            tracing::info!(to = %notification.to, account = %self.settings.account, message = id, "wa_outbox: row queued");
        }
        Ok(sent)
    }
}

const OUTSIDE_WINDOW: &str = "the person has not written to this number in the last 24 hours, so WhatsApp's Cloud API \
                              refuses free-form messages (error 131047); set WA_OUTBOX_TEMPLATE to an approved \
                              utility template with one body parameter to send such rows";
const CHANGED: &str =
    "this row was queued before with other contents (changed after it was taken); nothing was sent again";
