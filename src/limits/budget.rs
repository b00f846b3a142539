//! The daily token budget shared by every replica. The day's spending is
//! summed in the database, which every replica writes to, and kept here
//! for a few seconds so that checking it costs nothing per turn; what this
//! process spends meanwhile is added as it goes.

use crate::store::{Store, StoreError};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a reading of the day's spending is trusted. Other replicas'
/// spending shows up this late at most.
const FRESH_FOR: Duration = Duration::from_secs(5);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub struct DailyBudget {
    tokens: Option<i64>,
    store: Store,
    reading: Mutex<Option<Reading>>,
}

struct Reading {
    /// Days since the Unix epoch: the budget starts again at midnight UTC.
    day: i64,
    used: i64,
    at: Instant,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStatus {
    pub daily_token_budget: Option<i64>,
    pub tokens_used_today: i64,
    pub exhausted: bool,
}

impl DailyBudget {
    pub fn new(tokens: Option<i64>, store: Store) -> Self {
        Self { tokens, store, reading: Mutex::new(None) }
    }

    /// Whether today's tokens are spent. A database that cannot say does
    /// not stop answers: the last reading stands until it can.
    pub async fn exhausted(&self, now_ms: i64) -> bool {
        self.status(now_ms).await.exhausted
    }

    pub async fn status(&self, now_ms: i64) -> BudgetStatus {
        let Some(tokens) = self.tokens else {
            return BudgetStatus { daily_token_budget: None, tokens_used_today: 0, exhausted: false };
        };
        let used = match self.used_today(now_ms).await {
            Ok(used) => used,
            Err(error) => {
                tracing::warn!(%error, "cannot read today's token spending; using the last reading");
                self.reading.lock().await.as_ref().map_or(0, |reading| reading.used)
            }
        };
        BudgetStatus { daily_token_budget: Some(tokens), tokens_used_today: used, exhausted: used >= tokens }
    }

    /// Counts tokens this process just spent, ahead of the next reading.
    pub async fn spent(&self, tokens: i64) {
        if let Some(reading) = self.reading.lock().await.as_mut() {
            reading.used += tokens;
            metrics::gauge!("wa_llm_tokens_today").set(reading.used as f64);
        }
    }

    /// One turn reads the database while the others wait for its reading.
    async fn used_today(&self, now_ms: i64) -> Result<i64, StoreError> {
        let day = now_ms.div_euclid(DAY_MS);
        let mut reading = self.reading.lock().await;
        if let Some(fresh) = reading.as_ref().filter(|r| r.day == day && r.at.elapsed() < FRESH_FOR) {
            return Ok(fresh.used);
        }
        let used = self.store.tokens_since(day * DAY_MS).await?;
        metrics::gauge!("wa_llm_tokens_today").set(used as f64);
        *reading = Some(Reading { day, used, at: Instant::now() });
        Ok(used)
    }
}
