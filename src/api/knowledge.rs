//! `POST /api/whatsapp/refresh-kb`: rebuild the knowledge index from the
//! documents on disk and report what happened.

use super::admin::Admin;
use super::AppState;
use crate::domain::now_ms;
use crate::incidents::IncidentKind;
use crate::knowledge::{KnowledgeError, Report};
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

/// A failed refresh, kept whole because a rebuild shared by concurrent
/// callers hands each of them the same error.
pub struct RefreshFailed(pub Arc<KnowledgeError>);

pub async fn refresh(_: Admin, State(state): State<AppState>) -> Result<Json<Report>, RefreshFailed> {
    let report = state.knowledge.refresh().await.map_err(|error| {
        state.incidents.record(IncidentKind::Knowledge, error.to_string(), now_ms());
        RefreshFailed(error)
    })?;
    Ok(Json(Report::clone(&report)))
}
