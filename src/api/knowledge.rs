//! `POST /api/whatsapp/refresh-kb`: rebuild the knowledge index from the
//! documents on disk and report what happened.

use super::admin::Admin;
use super::AppState;
use crate::domain::now_ms;
use crate::incidents::IncidentKind;
use crate::knowledge::{KnowledgeError, Report};
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

/// A failed refresh, kept whole because a rebuild shared by concurrent
/// callers hands each of them the same error.
pub struct RefreshFailed(pub Arc<KnowledgeError>);

/// Rebuilds every index: the default one, whose report is the answer as
/// it always was, and each account's own under `accounts`.
pub async fn refresh(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, RefreshFailed> {
    let failed = |error: Arc<KnowledgeError>| {
        state.incidents.record(IncidentKind::Knowledge, error.to_string(), now_ms());
        RefreshFailed(error)
    };
    let report = state.knowledge.refresh().await.map_err(failed)?;
    let mut body = serde_json::to_value(Report::clone(&report)).unwrap_or_default();
    if !state.account_knowledge.is_empty() {
        let mut accounts = serde_json::Map::new();
        for (name, base) in &state.account_knowledge {
            let report = base.refresh().await.map_err(failed)?;
            accounts.insert(name.label().to_owned(), serde_json::to_value(Report::clone(&report)).unwrap_or_default());
        }
        body["accounts"] = Value::Object(accounts);
    }
    Ok(Json(body))
}
