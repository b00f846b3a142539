//! `GET /api/admin/unanswered`: what customers asked that the documents did
//! not answer, grouped by similar wording, and `POST
//! /api/admin/unanswered/dismiss` once the business wrote the document.

use super::admin::Admin;
use super::operations::OperationsError;
use super::AppState;
use crate::domain::now_ms;
use crate::unanswered::{group, Group};
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Rows read for grouping: the window's newest, whatever the limit, so
/// counts stay right for the groups shown.
const MAX_ROWS: i64 = 5_000;
/// Ids one dismissal may name: a group holds at most `MAX_ROWS`.
const MAX_DISMISSED: usize = MAX_ROWS as usize;

#[derive(Deserialize)]
pub struct Window {
    limit: Option<usize>,
    days: Option<i64>,
}

#[derive(Deserialize)]
pub struct Dismissal {
    ids: Vec<i64>,
}

fn view(group: &Group) -> Value {
    let latest = group.latest();
    let top_score = group.questions.iter().filter_map(|q| q.top_score).reduce(f64::max);
    json!({
        "ids": group.ids(),
        "count": group.questions.len(),
        "example": latest.question,
        "latestAt": latest.asked_at,
        "reasons": group.reasons,
        "topScore": top_score,
        "conversation": latest.user_id,
        "person": latest.person.as_ref().map(|p| p.masked()),
        "channel": latest.person.as_ref().map(|p| p.channel().as_str()),
        "wordings": group.questions.iter().map(|q| q.question.as_str()).take(5).collect::<Vec<_>>(),
    })
}

/// `?limit=50&days=30`: groups of the last `days`, the most asked first.
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Query(window): Query<Window>,
) -> Result<Json<Value>, OperationsError> {
    let days = window.days.unwrap_or(30).clamp(1, 365);
    let limit = window.limit.unwrap_or(50).clamp(1, 500);
    let questions = state.store.unanswered_since(now_ms() - days * DAY_MS, MAX_ROWS).await?;
    let total = questions.len();
    let groups = group(questions);
    let listed: Vec<Value> = groups.iter().take(limit).map(view).collect();
    Ok(Json(json!({ "days": days, "questions": total, "groups": listed })))
}

/// Body `{"ids": [...]}`: the `ids` of a group as listed.
pub async fn dismiss(
    _: Admin,
    State(state): State<AppState>,
    Json(dismissal): Json<Dismissal>,
) -> Result<Json<Value>, OperationsError> {
    let ids: Vec<i64> = dismissal.ids.into_iter().take(MAX_DISMISSED).collect();
    let dismissed = state.store.dismiss_unanswered(&ids).await?;
    Ok(Json(json!({ "dismissed": dismissed })))
}
