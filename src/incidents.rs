//! What went wrong lately, for the status endpoint and the admin page: the
//! last errors of each kind and when a webhook last arrived. Per process
//! and in memory: the log and the metrics are the durable record; this is
//! the glance an operator takes before reading them.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Errors kept; older ones drop off.
const KEPT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentKind {
    Llm,
    Send,
    Knowledge,
    Webhook,
    Store,
}

#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub at: i64,
    pub kind: IncidentKind,
    /// Already free of secrets and full phone numbers: callers pass error
    /// texts that never contain them.
    pub message: String,
}

#[derive(Clone, Default)]
pub struct Incidents {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    recent: VecDeque<Incident>,
    webhook_last_seen: Option<i64>,
}

impl Incidents {
    pub fn record(&self, kind: IncidentKind, message: impl Into<String>, at: i64) {
        let mut state = self.lock();
        if state.recent.len() == KEPT {
            state.recent.pop_back();
        }
        state.recent.push_front(Incident { at, kind, message: message.into() });
    }

    /// Newest first.
    pub fn recent(&self, limit: usize) -> Vec<Incident> {
        self.lock().recent.iter().take(limit).cloned().collect()
    }

    pub fn last(&self, kind: IncidentKind) -> Option<Incident> {
        self.lock().recent.iter().find(|incident| incident.kind == kind).cloned()
    }

    pub fn webhook_seen(&self, at: i64) {
        self.lock().webhook_last_seen = Some(at);
    }

    pub fn webhook_last_seen(&self) -> Option<i64> {
        self.lock().webhook_last_seen
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the ring half
        // written, so a poisoned lock is still good to use.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_finds_the_last_of_each_kind() {
        let incidents = Incidents::default();
        for n in 0..(KEPT as i64 + 5) {
            incidents.record(IncidentKind::Send, format!("send {n}"), n);
        }
        incidents.record(IncidentKind::Llm, "timed out", 1000);
        let recent = incidents.recent(usize::MAX);
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent[0].message, "timed out");
        assert_eq!(recent[1].message, format!("send {}", KEPT + 4));
        assert_eq!(incidents.last(IncidentKind::Send).unwrap().at, KEPT as i64 + 4);
        assert!(incidents.last(IncidentKind::Knowledge).is_none());
    }
}
