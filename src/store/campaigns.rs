//! Campaigns and their recipients. A recipient leaves `pending` only in the
//! transaction that puts its message in the outbox, so a restart, a crash
//! or a second replica neither skips anyone nor writes to anyone twice.

use super::outbox::{attach, insert_parts, media_from_row, NewParts, UNSENT};
use super::people::{upsert_person, PeopleCache};
use super::{Backend, Params, Store, StoreError};
use crate::domain::{AccountName, OutboundMedia, PersonRef, PhoneNumber};
use sqlx::Row;

/// Recipients written per INSERT: well under SQLite's 32,766 parameters.
const INSERT_CHUNK: usize = 500;

/// Where a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignState {
    /// Waiting for `schedule_at`.
    Scheduled,
    Running,
    Paused,
    Cancelled,
    /// Everyone was released (or skipped).
    Done,
}

impl CampaignState {
    const ALL: [Self; 5] = [Self::Scheduled, Self::Running, Self::Paused, Self::Cancelled, Self::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }
}

/// An operator's (or application's) word on a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Pause,
    Resume,
    Cancel,
}

/// One person a campaign writes to, filled before anything is stored.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    /// Graph's `template` object filled for them, or `None` where the
    /// number's provider has no templates (sent as `text`).
    pub template: Option<serde_json::Value>,
    pub text: String,
    pub media: Option<OutboundMedia>,
}

pub struct NewCampaign<'a> {
    pub account: &'a AccountName,
    pub name: &'a str,
    pub template_name: &'a str,
    pub template_language: &'a str,
    pub author: &'a str,
    pub key: Option<&'a str>,
    pub schedule_at: i64,
    pub hours: &'a str,
    pub holidays: &'a [String],
    pub rate_per_second: f64,
    pub recipients: &'a [NewRecipient],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignCreated {
    New(i64),
    /// The key made this campaign before: its id, nothing new.
    Repeated(i64),
    /// The key made another campaign before.
    KeyReused,
}

/// A campaign as `GET /api/campaigns/{id}` shows it.
#[derive(Debug, Clone)]
pub struct CampaignView {
    pub id: i64,
    pub account: AccountName,
    pub name: String,
    pub template_name: String,
    pub template_language: String,
    pub author: String,
    pub state: CampaignState,
    pub schedule_at: i64,
    pub hours: String,
    pub holidays: Vec<String>,
    pub rate_per_second: f64,
    pub current_rate_per_second: f64,
    pub slowdowns: i64,
    pub note: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Recipients per stage: pending, queued, sent, delivered, read,
    /// failed, skipped, cancelled.
    pub counts: Vec<(&'static str, i64)>,
    pub total: i64,
}

/// One recipient in a campaign's report.
#[derive(Debug, Clone)]
pub struct RecipientReport {
    pub id: i64,
    pub phone: String,
    pub name: Option<String>,
    /// The report's stage (see [`CampaignView::counts`]).
    pub stage: &'static str,
    pub reason: Option<String>,
    pub wa_message_id: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub released_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// A campaign the runner may release recipients of.
#[derive(Debug, Clone)]
pub struct DueCampaign {
    pub id: i64,
    pub account: AccountName,
    pub author: String,
    pub template_name: String,
    pub template_language: String,
    pub hours: String,
    pub holidays: Vec<String>,
    pub rate_per_second: f64,
    pub current_rate_per_second: f64,
    pub throttled_at: Option<i64>,
}

/// What one release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Released {
    pub released: usize,
    /// Anyone still pending, now or later.
    pub remaining: bool,
}

/// The stages of the report, in the order they are shown.
const STAGES: [&str; 8] = ["pending", "queued", "sent", "delivered", "read", "failed", "skipped", "cancelled"];

fn stage(recipient_state: &str, send_state: Option<&str>, status: Option<&str>) -> &'static str {
    match (recipient_state, send_state, status) {
        ("pending", _, _) => "pending",
        ("skipped", _, _) => "skipped",
        ("cancelled", _, _) => "cancelled",
        (_, Some("failed_permanent" | "dead" | "cancelled"), _) | (_, _, Some("failed")) => "failed",
        (_, _, Some("read" | "played")) => "read",
        (_, _, Some("delivered")) => "delivered",
        (_, Some("sent"), _) => "sent",
        _ => "queued",
    }
}

const TO_MILLI: f64 = 1000.0;

impl Store {
    pub async fn create_campaign(&self, campaign: &NewCampaign<'_>, now: i64) -> Result<CampaignCreated, StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(key) = campaign.key {
            let earlier = sqlx::query(
                "SELECT c.id, c.name, c.template_name, (SELECT COUNT(*) FROM campaign_recipients r \
                   WHERE r.campaign_id = c.id) AS recipients FROM campaigns c WHERE c.author = $1 AND c.idempotency_key = $2",
            )
            .bind(campaign.author)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = earlier {
                let same = row.try_get::<String, _>("name")? == campaign.name
                    && row.try_get::<String, _>("template_name")? == campaign.template_name
                    && row.try_get::<i64, _>("recipients")? == campaign.recipients.len() as i64;
                return Ok(if same {
                    CampaignCreated::Repeated(row.try_get("id")?)
                } else {
                    CampaignCreated::KeyReused
                });
            }
        }
        let rate = (campaign.rate_per_second * TO_MILLI).round() as i64;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO campaigns (account, name, template_name, template_language, author, idempotency_key, state, \
               schedule_at, hours, holidays, rate_milli, current_rate_milli, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8, $9, $10, $10, $11, $11) RETURNING id",
        )
        .bind(campaign.account.as_stored())
        .bind(campaign.name)
        .bind(campaign.template_name)
        .bind(campaign.template_language)
        .bind(campaign.author)
        .bind(campaign.key)
        .bind(campaign.schedule_at)
        .bind(campaign.hours)
        .bind(serde_json::to_string(campaign.holidays).unwrap_or_else(|_| "[]".into()))
        .bind(rate)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for chunk in campaign.recipients.chunks(INSERT_CHUNK) {
            let mut p = Params::new(self.backend);
            let rows: Vec<String> = chunk.iter().map(|_| format!("({}, 'pending')", p.list(8))).collect();
            let sql = format!(
                "INSERT INTO campaign_recipients (campaign_id, phone, name, template, body, media_kind, media_url, \
                   media_filename, state) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for recipient in chunk {
                let media = recipient.media.as_ref();
                query = query
                    .bind(id)
                    .bind(recipient.phone.expose().to_owned())
                    .bind(recipient.name.clone())
                    .bind(recipient.template.as_ref().map(serde_json::Value::to_string))
                    .bind(recipient.text.clone())
                    .bind(media.map(|m| m.kind().as_str()))
                    .bind(media.and_then(|m| m.url().map(str::to_owned)))
                    .bind(media.and_then(|m| m.filename().map(str::to_owned)));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(CampaignCreated::New(id))
    }

    pub async fn campaign(&self, id: i64) -> Result<Option<CampaignView>, StoreError> {
        let row =
            sqlx::query(&format!("{CAMPAIGN_SELECT} WHERE id = $1")).bind(id).fetch_optional(&self.reader).await?;
        let Some(row) = row else { return Ok(None) };
        let mut view = campaign_from_row(&row)?;
        let rows = sqlx::query(
            "SELECT r.state, o.state AS send_state, o.status, COUNT(*) AS n FROM campaign_recipients r \
             LEFT JOIN outbound_messages o ON o.id = r.outbound_id WHERE r.campaign_id = $1 \
             GROUP BY r.state, o.state, o.status",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        let mut counts: Vec<(&'static str, i64)> = STAGES.iter().map(|stage| (*stage, 0)).collect();
        for row in &rows {
            let (state, send_state, status): (String, Option<String>, Option<String>) =
                (row.try_get("state")?, row.try_get("send_state")?, row.try_get("status")?);
            let n: i64 = row.try_get("n")?;
            let at = stage(&state, send_state.as_deref(), status.as_deref());
            if let Some(count) = counts.iter_mut().find(|(name, _)| *name == at) {
                count.1 += n;
            }
            view.total += n;
        }
        view.counts = counts;
        Ok(Some(view))
    }

    /// The latest campaigns first.
    pub async fn campaigns(&self, limit: i64) -> Result<Vec<CampaignView>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM campaigns ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            views.extend(self.campaign(id).await?);
        }
        Ok(views)
    }

    /// A page of the report, in the order recipients were given.
    pub async fn campaign_report(&self, id: i64, after: i64, limit: i64) -> Result<Vec<RecipientReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.phone, r.name, r.state, r.reason, r.released_at, o.state AS send_state, o.status, \
               o.wa_message_id, o.error_code, o.error_title, o.updated_at \
             FROM campaign_recipients r LEFT JOIN outbound_messages o ON o.id = r.outbound_id \
             WHERE r.campaign_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3",
        )
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let (state, send_state, status): (String, Option<String>, Option<String>) =
                    (row.try_get("state")?, row.try_get("send_state")?, row.try_get("status")?);
                Ok(RecipientReport {
                    id: row.try_get("id")?,
                    phone: row.try_get("phone")?,
                    name: row.try_get("name")?,
                    stage: stage(&state, send_state.as_deref(), status.as_deref()),
                    reason: row.try_get("reason")?,
                    wa_message_id: row.try_get("wa_message_id")?,
                    error_code: row.try_get("error_code")?,
                    error_title: row.try_get("error_title")?,
                    released_at: row.try_get("released_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Applies `action`; the state after it, or `None` for no such
    /// campaign. An action that does not apply (resuming a finished
    /// campaign) leaves it as it is.
    pub async fn act_on_campaign(
        &self,
        id: i64,
        action: CampaignAction,
        now: i64,
    ) -> Result<Option<CampaignState>, StoreError> {
        let mut tx = self.write_tx().await?;
        let update = match action {
            CampaignAction::Pause => {
                "UPDATE campaigns SET state = 'paused', updated_at = $2 \
                 WHERE id = $1 AND state IN ('scheduled', 'running')"
            }
            CampaignAction::Resume => {
                "UPDATE campaigns SET state = CASE WHEN started_at IS NULL THEN 'scheduled' \
                 ELSE 'running' END, note = NULL, updated_at = $2 WHERE id = $1 AND state = 'paused'"
            }
            CampaignAction::Cancel => {
                "UPDATE campaigns SET state = 'cancelled', finished_at = $2, updated_at = $2 \
                 WHERE id = $1 AND state IN ('scheduled', 'running', 'paused')"
            }
        };
        let changed = sqlx::query(update).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
        if changed > 0 && action == CampaignAction::Cancel {
            sqlx::query(
                "UPDATE campaign_recipients SET state = 'cancelled' WHERE campaign_id = $1 AND state = 'pending'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM campaigns WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(state.as_deref().and_then(CampaignState::parse))
    }

    /// Takes or keeps the lease `name` for `holder` until `until`; `false`
    /// while another holder's lease runs.
    pub async fn hold_lease(&self, name: &str, holder: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query(
            "INSERT INTO worker_leases (name, holder, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until \
             WHERE worker_leases.holder = excluded.holder OR worker_leases.lease_until < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(taken > 0)
    }

    /// Campaigns whose time has come, oldest first.
    pub async fn due_campaigns(&self, now: i64) -> Result<Vec<DueCampaign>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account, author, template_name, template_language, hours, holidays, rate_milli, \
               current_rate_milli, throttled_at FROM campaigns \
             WHERE state IN ('scheduled', 'running') AND schedule_at <= $1 ORDER BY id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DueCampaign {
                    id: row.try_get("id")?,
                    account: super::people::account_from_row(row)?,
                    author: row.try_get("author")?,
                    template_name: row.try_get("template_name")?,
                    template_language: row.try_get("template_language")?,
                    hours: row.try_get("hours")?,
                    holidays: serde_json::from_str(&row.try_get::<String, _>("holidays")?).unwrap_or_default(),
                    rate_per_second: row.try_get::<i64, _>("rate_milli")? as f64 / TO_MILLI,
                    current_rate_per_second: row.try_get::<i64, _>("current_rate_milli")? as f64 / TO_MILLI,
                    throttled_at: row.try_get("throttled_at")?,
                })
            })
            .collect()
    }

    /// Puts up to `count` of the campaign's pending recipients in the
    /// outbox, each in the transaction that marks it released. Someone
    /// written to less than `pair_gap_ms` ago waits (Meta's pair limit).
    pub async fn release_recipients(
        &self,
        campaign: &DueCampaign,
        marketing: bool,
        count: usize,
        pair_gap_ms: i64,
        give_up_at: i64,
        now: i64,
    ) -> Result<Released, StoreError> {
        let mut tx = self.write_tx().await?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT id, phone, template, body, media_kind, media_url, media_filename FROM campaign_recipients \
             WHERE campaign_id = $1 AND state = 'pending' AND not_before <= $2 ORDER BY id LIMIT $3{lock}"
        ))
        .bind(campaign.id)
        .bind(now)
        .bind(count as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut done = Released::default();
        let mut people = PeopleCache::default();
        for row in &rows {
            let recipient: i64 = row.try_get("id")?;
            let Ok(phone) = PhoneNumber::parse(&row.try_get::<String, _>("phone")?) else {
                skip(&mut tx, recipient, "not a phone number").await?;
                continue;
            };
            // Looked at now, not when the campaign was made: a STOP written
            // since then counts.
            if marketing && opted_out(&mut tx, &campaign.account, &phone).await? {
                skip(&mut tx, recipient, "opted out of marketing messages").await?;
                continue;
            }
            let person = PersonRef::of_phone(phone, campaign.account.clone());
            let user_id = upsert_person(&mut tx, &mut people, &person, now).await?;
            // When this person was last written to; a message still on its
            // way counts as now, since it may go out any moment.
            let last: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT MAX(CASE WHEN state IN {UNSENT} THEN $1 ELSE COALESCE(attempt_started_at, created_at) END) \
                 FROM outbound_messages WHERE user_id = $2"
            ))
            .bind(now)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(last) = last.filter(|last| *last > now - pair_gap_ms) {
                sqlx::query("UPDATE campaign_recipients SET not_before = $1 WHERE id = $2")
                    .bind(last + pair_gap_ms)
                    .bind(recipient)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            let key = format!("campaign:{}:{recipient}", campaign.id);
            let body: String = row.try_get("body")?;
            let parts = [body];
            let new = NewParts {
                user_id,
                origin: "api",
                turn_id: None,
                author: Some(&campaign.author),
                idempotency_key: Some(&key),
                parts: &parts,
                give_up_at,
            };
            let Some(&outbound) = insert_parts(&mut tx, self.backend, &new, now).await?.first() else {
                skip(&mut tx, recipient, "already queued").await?;
                continue;
            };
            let template: Option<String> = row.try_get("template")?;
            let template = template.and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok());
            attach(&mut tx, outbound, media_from_row(row)?.as_ref(), template.as_ref(), now).await?;
            sqlx::query(
                "UPDATE campaign_recipients SET state = 'released', outbound_id = $1, released_at = $2 WHERE id = $3",
            )
            .bind(outbound)
            .bind(now)
            .bind(recipient)
            .execute(&mut *tx)
            .await?;
            done.released += 1;
        }
        done.remaining = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = $1 AND state = 'pending'",
        )
        .bind(campaign.id)
        .fetch_one(&mut *tx)
        .await?
            > 0;
        let state = if done.remaining { "running" } else { "done" };
        sqlx::query(
            "UPDATE campaigns SET state = $1, started_at = COALESCE(started_at, $2), updated_at = $2, \
               finished_at = CASE WHEN $1 = 'done' THEN $2 ELSE finished_at END \
             WHERE id = $3 AND state IN ('scheduled', 'running')",
        )
        .bind(state)
        .bind(now)
        .bind(campaign.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.released > 0 {
            self.conversations_changed();
        }
        Ok(done)
    }

    /// Meta's "too many messages" answers (130429 throughput, 131056 pair
    /// limit) to the campaign's messages recorded after `since`.
    pub async fn campaign_throttles_since(&self, campaign: i64, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_recipients r JOIN outbound_messages o ON o.id = r.outbound_id \
             WHERE r.campaign_id = $1 AND o.throttled_at > $2",
        )
        .bind(campaign)
        .bind(since)
        .fetch_one(&self.reader)
        .await?)
    }

    /// Records the campaign's pace; `slowed` when Meta asked for it.
    pub async fn set_campaign_rate(&self, campaign: i64, rate: f64, slowed: bool, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE campaigns SET current_rate_milli = $1, updated_at = $2, \
               slowdowns = slowdowns + CASE WHEN $3 THEN 1 ELSE 0 END, \
               throttled_at = CASE WHEN $3 THEN $2 ELSE throttled_at END WHERE id = $4",
        )
        .bind((rate * TO_MILLI).round() as i64)
        .bind(now)
        .bind(slowed)
        .bind(campaign)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pauses a campaign that cannot go on by itself, saying why.
    pub async fn pause_campaign_for(&self, campaign: i64, note: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE campaigns SET state = 'paused', note = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ('scheduled', 'running')",
        )
        .bind(note)
        .bind(now)
        .bind(campaign)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn opted_out(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &AccountName,
    phone: &PhoneNumber,
) -> Result<bool, StoreError> {
    let consent: Option<String> = sqlx::query_scalar("SELECT consent FROM contacts WHERE account = $1 AND phone = $2")
        .bind(account.as_stored())
        .bind(phone.expose())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(consent.as_deref() == Some(super::Consent::OptedOut.as_str()))
}

async fn skip(tx: &mut sqlx::Transaction<'_, sqlx::Any>, recipient: i64, reason: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE campaign_recipients SET state = 'skipped', reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(recipient)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const CAMPAIGN_SELECT: &str = "SELECT id, account, name, template_name, template_language, author, state, \
       schedule_at, hours, holidays, rate_milli, current_rate_milli, slowdowns, note, created_at, started_at, \
       finished_at FROM campaigns";

fn campaign_from_row(row: &sqlx::any::AnyRow) -> Result<CampaignView, StoreError> {
    Ok(CampaignView {
        id: row.try_get("id")?,
        account: super::people::account_from_row(row)?,
        name: row.try_get("name")?,
        template_name: row.try_get("template_name")?,
        template_language: row.try_get("template_language")?,
        author: row.try_get("author")?,
        state: CampaignState::parse(&row.try_get::<String, _>("state")?).unwrap_or(CampaignState::Paused),
        schedule_at: row.try_get("schedule_at")?,
        hours: row.try_get("hours")?,
        holidays: serde_json::from_str(&row.try_get::<String, _>("holidays")?).unwrap_or_default(),
        rate_per_second: row.try_get::<i64, _>("rate_milli")? as f64 / TO_MILLI,
        current_rate_per_second: row.try_get::<i64, _>("current_rate_milli")? as f64 / TO_MILLI,
        slowdowns: row.try_get("slowdowns")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        counts: Vec::new(),
        total: 0,
    })
}
