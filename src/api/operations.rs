//! Admin views behind the token: conversations and their transcripts,
//! activity per hour, and recent errors. Numbers are masked even here: an
//! operator needs to tell conversations apart, not to dial them.

use super::admin::Admin;
use super::chat::ChatLine;
use super::AppState;
use crate::store::{now_ms, ConversationSummary, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

#[derive(Deserialize)]
pub struct Hours {
    hours: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    #[error("no such conversation")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn summary(conversation: &ConversationSummary) -> Value {
    json!({
        "id": conversation.user_id,
        "channel": conversation.person.channel().as_str(),
        "person": conversation.person.masked(),
        "name": conversation.profile_name,
        "messages": conversation.messages,
        "lastActivity": conversation.last_activity_ms,
        "state": conversation.state(),
    })
}

/// `GET /api/admin/conversations?limit=50`, most recently active first.
pub async fn conversations(
    _: Admin,
    State(state): State<AppState>,
    Query(limit): Query<Limit>,
) -> Result<Json<Value>, OperationsError> {
    let listed = state.store.conversations(limit.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(json!({ "conversations": listed.iter().map(summary).collect::<Vec<_>>() })))
}

/// `GET /api/admin/conversations/{id}`: the last 200 messages both ways.
pub async fn transcript(
    _: Admin,
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<Json<Value>, OperationsError> {
    let transcript = state.store.transcript(user_id, 200).await?.ok_or(OperationsError::NotFound)?;
    let mut view = summary(&transcript.summary);
    view["messages"] = json!(transcript.entries.iter().map(ChatLine::from).collect::<Vec<_>>());
    Ok(Json(view))
}

/// `GET /api/admin/activity?hours=48`: messages, answers and time to reply
/// per hour, for the admin page's charts.
pub async fn activity(
    _: Admin,
    State(state): State<AppState>,
    Query(hours): Query<Hours>,
) -> Result<Json<Value>, OperationsError> {
    let hours = state.store.hourly(hours.hours.unwrap_or(48).clamp(1, 24 * 31), now_ms()).await?;
    Ok(Json(json!({ "hours": hours })))
}

/// `GET /api/admin/errors?limit=50`: this process's recent errors.
pub async fn errors(_: Admin, State(state): State<AppState>, Query(limit): Query<Limit>) -> Json<Value> {
    let limit = limit.limit.unwrap_or(50).clamp(1, 100) as usize;
    Json(json!({ "errors": state.incidents.recent(limit) }))
}

impl OperationsError {
    pub fn status(&self) -> StatusCode {
        match self {
            OperationsError::NotFound => StatusCode::NOT_FOUND,
            OperationsError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
