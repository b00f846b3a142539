//! Figures for `GET /api/whatsapp/stats`, computed from the stored rows so
//! every replica reports the same numbers.

use super::{Store, StoreError};
use crate::domain::HOUR_MS;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub days: Vec<DayStats>,
    pub messages: i64,
    pub active_users: i64,
    pub turns_answered: i64,
    /// From the person's last message to our reply being saved and sent.
    pub reply_seconds_avg: Option<f64>,
    pub reply_seconds_p95: Option<f64>,
    /// Turns answered without the LLM because it failed: with passages
    /// from the documents, or with the apology when none matched.
    pub llm_fallbacks: i64,
    pub tokens: i64,
    /// Of WhatsApp replies only: the web chat has no delivery receipts.
    pub delivery_rate: Option<f64>,
    pub read_rate: Option<f64>,
    pub media: MediaStats,
    /// The same figures for each WhatsApp number (by account label) that
    /// had messages or answers in the period.
    pub accounts: BTreeMap<String, AccountStats>,
}

/// One WhatsApp number's share of the period.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountStats {
    pub messages: i64,
    pub active_users: i64,
    pub turns_answered: i64,
    pub tokens: i64,
}

/// What customers sent besides text, and what reading it cost.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStats {
    /// Files by kind and how reading them went (`read`, `downloaded`,
    /// `too_large`, …; `pending` before their turn was answered).
    pub files: BTreeMap<String, BTreeMap<String, i64>>,
    pub transcribed_seconds: f64,
    pub document_chars: i64,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayStats {
    /// UTC date, `YYYY-MM-DD`.
    pub day: String,
    pub messages: i64,
    pub active_users: i64,
    pub turns_answered: i64,
    pub llm_fallbacks: i64,
    pub tokens: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HourStats {
    /// Unix milliseconds at the start of the hour.
    pub start: i64,
    pub messages: i64,
    pub turns: i64,
    pub reply_seconds_avg: Option<f64>,
}

impl Store {
    /// Messages and answered turns per hour over the last `hours` hours,
    /// the current one included; every hour is present, quiet ones as zeros.
    pub async fn hourly(&self, hours: i64, now_ms: i64) -> Result<Vec<HourStats>, StoreError> {
        let first = now_ms / HOUR_MS - (hours - 1);
        let mut by_hour: Vec<HourStats> =
            (first..first + hours).map(|hour| HourStats { start: hour * HOUR_MS, ..HourStats::default() }).collect();
        let inbound = sqlx::query(
            "SELECT received_at / 3600000 AS hour, COUNT(*) AS messages FROM inbound_messages \
             WHERE received_at >= $1 GROUP BY received_at / 3600000",
        )
        .bind(first * HOUR_MS)
        .fetch_all(&self.reader)
        .await?;
        for row in inbound {
            if let Some(hour) = by_hour.get_mut((row.try_get::<i64, _>("hour")? - first) as usize) {
                hour.messages = row.try_get("messages")?;
            }
        }
        let turns = sqlx::query(
            "SELECT answered_at / 3600000 AS hour, COUNT(*) AS turns, \
               CAST(SUM(answered_at - last_message_at) AS BIGINT) AS waited \
             FROM turns WHERE status = 'answered' AND answered_at >= $1 GROUP BY answered_at / 3600000",
        )
        .bind(first * HOUR_MS)
        .fetch_all(&self.reader)
        .await?;
        for row in turns {
            if let Some(hour) = by_hour.get_mut((row.try_get::<i64, _>("hour")? - first) as usize) {
                hour.turns = row.try_get("turns")?;
                let waited = row.try_get::<Option<i64>, _>("waited")?.unwrap_or_default();
                hour.reply_seconds_avg = (hour.turns > 0).then(|| waited as f64 / hour.turns as f64 / 1000.0);
            }
        }
        Ok(by_hour)
    }

    /// Statistics over the last `days` days (UTC), today included.
    pub async fn stats(&self, days: i64, now_ms: i64) -> Result<Stats, StoreError> {
        let since = (now_ms / DAY_MS - (days - 1)) * DAY_MS;
        let mut by_day: BTreeMap<i64, DayStats> = BTreeMap::new();
        let inbound = sqlx::query(
            "SELECT received_at / 86400000 AS day, COUNT(*) AS messages, COUNT(DISTINCT user_id) AS users \
             FROM inbound_messages WHERE received_at >= $1 GROUP BY received_at / 86400000",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        for row in inbound {
            let day = by_day.entry(row.try_get("day")?).or_default();
            day.messages = row.try_get("messages")?;
            day.active_users = row.try_get("users")?;
        }
        let turns = sqlx::query(
            "SELECT answered_at / 86400000 AS day, COUNT(*) AS answered, \
               CAST(SUM(CASE WHEN reply_kind = 'fallback' THEN 1 ELSE 0 END) AS BIGINT) AS fallbacks, \
               CAST(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)) AS BIGINT) AS tokens \
             FROM turns WHERE status = 'answered' AND answered_at >= $1 GROUP BY answered_at / 86400000",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        for row in turns {
            let day = by_day.entry(row.try_get("day")?).or_default();
            day.turns_answered = row.try_get("answered")?;
            day.llm_fallbacks = row.try_get::<Option<i64>, _>("fallbacks")?.unwrap_or_default();
            day.tokens = row.try_get::<Option<i64>, _>("tokens")?.unwrap_or_default();
        }
        let active_users =
            sqlx::query("SELECT COUNT(DISTINCT user_id) AS n FROM inbound_messages WHERE received_at >= $1")
                .bind(since)
                .fetch_one(&self.reader)
                .await?
                .try_get("n")?;
        // PostgreSQL sums integers into NUMERIC, hence the casts above.
        let mut stats = Stats { active_users, ..Stats::default() };
        for (number, mut day) in by_day {
            day.day = crate::domain::civil_date(number);
            stats.messages += day.messages;
            stats.turns_answered += day.turns_answered;
            stats.llm_fallbacks += day.llm_fallbacks;
            stats.tokens += day.tokens;
            stats.days.push(day);
        }
        self.reply_times(since, &mut stats).await?;
        self.delivery_rates(since, &mut stats).await?;
        self.media_stats(since, &mut stats.media).await?;
        self.account_stats(since, &mut stats.accounts).await?;
        Ok(stats)
    }

    async fn account_stats(&self, since: i64, accounts: &mut BTreeMap<String, AccountStats>) -> Result<(), StoreError> {
        let label = |row: &sqlx::any::AnyRow| -> Result<String, StoreError> {
            Ok(super::people::account_from_row(row)?.label().to_owned())
        };
        let inbound = sqlx::query(
            "SELECT u.account, COUNT(*) AS messages, COUNT(DISTINCT m.user_id) AS users \
             FROM inbound_messages m JOIN users u ON u.id = m.user_id \
             WHERE m.received_at >= $1 AND u.channel = 'whatsapp' GROUP BY u.account",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        for row in inbound {
            let account = accounts.entry(label(&row)?).or_default();
            account.messages = row.try_get("messages")?;
            account.active_users = row.try_get("users")?;
        }
        let turns = sqlx::query(
            "SELECT u.account, COUNT(*) AS answered, \
               CAST(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)) AS BIGINT) AS tokens \
             FROM turns t JOIN users u ON u.id = t.user_id \
             WHERE t.status = 'answered' AND t.answered_at >= $1 AND u.channel = 'whatsapp' GROUP BY u.account",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        for row in turns {
            let account = accounts.entry(label(&row)?).or_default();
            account.turns_answered = row.try_get("answered")?;
            account.tokens = row.try_get::<Option<i64>, _>("tokens")?.unwrap_or_default();
        }
        Ok(())
    }

    async fn media_stats(&self, since: i64, media: &mut MediaStats) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COALESCE(media_outcome, 'pending') AS outcome, COUNT(*) AS files, \
               CAST(SUM(COALESCE(audio_ms, 0)) AS BIGINT) AS audio_ms, \
               CAST(SUM(COALESCE(media_chars, 0)) AS BIGINT) AS chars \
             FROM inbound_messages WHERE received_at >= $1 AND (media_id IS NOT NULL OR media_outcome IS NOT NULL) \
             GROUP BY kind, COALESCE(media_outcome, 'pending')",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        for row in rows {
            let (kind, outcome): (String, String) = (row.try_get("kind")?, row.try_get("outcome")?);
            media.files.entry(kind).or_default().insert(outcome, row.try_get("files")?);
            media.transcribed_seconds += row.try_get::<Option<i64>, _>("audio_ms")?.unwrap_or_default() as f64 / 1000.0;
            media.document_chars += row.try_get::<Option<i64>, _>("chars")?.unwrap_or_default();
        }
        Ok(())
    }

    async fn reply_times(&self, since: i64, stats: &mut Stats) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT answered_at - last_message_at AS waited FROM turns \
             WHERE status = 'answered' AND answered_at >= $1 ORDER BY waited",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        let waited: Vec<i64> = rows.iter().map(|row| row.try_get("waited")).collect::<Result<_, _>>()?;
        if let Some(p95_index) = (waited.len() * 95).div_ceil(100).checked_sub(1) {
            stats.reply_seconds_avg = Some(waited.iter().sum::<i64>() as f64 / waited.len() as f64 / 1000.0);
            stats.reply_seconds_p95 = Some(waited[p95_index] as f64 / 1000.0);
        }
        Ok(())
    }

    async fn delivery_rates(&self, since: i64, stats: &mut Stats) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS sent, \
               CAST(SUM(CASE WHEN status IN ('delivered', 'read', 'played') THEN 1 ELSE 0 END) AS BIGINT) AS delivered, \
               CAST(SUM(CASE WHEN status IN ('read', 'played') THEN 1 ELSE 0 END) AS BIGINT) AS seen \
             FROM outbound_messages WHERE wa_message_id IS NOT NULL AND created_at >= $1 \
               AND turn_id IN (SELECT t.id FROM turns t JOIN users u ON u.id = t.user_id WHERE u.channel = 'whatsapp')",
        )
        .bind(since)
        .fetch_one(&self.reader)
        .await?;
        let sent: i64 = row.try_get("sent")?;
        if sent > 0 {
            let delivered = row.try_get::<Option<i64>, _>("delivered")?.unwrap_or_default();
            let seen = row.try_get::<Option<i64>, _>("seen")?.unwrap_or_default();
            stats.delivery_rate = Some(delivered as f64 / sent as f64);
            stats.read_rate = Some(seen as f64 / sent as f64);
        }
        Ok(())
    }
}
