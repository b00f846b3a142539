//! The outbox for operators (admin token): messages that did not go out or
//! are still trying, and a Retry that is safe to press twice.

use super::admin::Admin;
use super::operations::OperationsError;
use super::AppState;
use crate::domain::now_ms;
use crate::store::{RetryOutcome, SendState, UndeliveredMessage};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

fn view(message: &UndeliveredMessage) -> Value {
    json!({
        "id": message.id,
        "conversation": message.user_id,
        "person": message.person.as_ref().map(|p| p.masked()),
        "channel": message.person.as_ref().map(|p| p.channel().as_str()),
        "origin": message.origin,
        "state": message.state.as_str(),
        "text": message.body,
        "attempts": message.attempts,
        "errorCode": message.error_code,
        "error": message.error_title,
        "createdAt": message.created_at,
        "updatedAt": message.updated_at,
        "nextAttemptAt": (message.state == SendState::FailedRetryable).then_some(message.next_attempt_at),
    })
}

/// `GET /api/admin/outbox?limit=50`: failed, dead and retrying messages,
/// most recently changed first.
pub async fn undelivered(
    _: Admin,
    State(state): State<AppState>,
    Query(limit): Query<Limit>,
) -> Result<Json<Value>, OperationsError> {
    let listed = state.store.undelivered(limit.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(json!({ "messages": listed.iter().map(view).collect::<Vec<_>>() })))
}

/// `GET /api/admin/outbox/{id}`: one message in any state, so the admin
/// page can show a retried message going from queued to sent.
pub async fn message(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, OperationsError> {
    let message = state.store.outbound_message(id).await?.ok_or(OperationsError::NotFound)?;
    Ok(Json(view(&message)))
}

/// `POST /api/admin/outbox/{id}/retry`: a failed or dead message (with the
/// parts of its reply it held back) is queued again for another
/// `SEND_RETRY_HOURS`; anything else is left as it is and its state said.
pub async fn retry(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, OperationsError> {
    let retry_for = state.outbox.retry_for().as_millis() as i64;
    let outcome = state.store.retry_send(id, now_ms(), retry_for).await?.ok_or(OperationsError::NotFound)?;
    let (requeued, state_now) = match outcome {
        RetryOutcome::Requeued => {
            state.outbox.wake();
            tracing::info!(message = id, "message queued again by an operator");
            (true, SendState::Queued)
        }
        RetryOutcome::Unchanged(current) => (false, current),
    };
    Ok(Json(json!({ "id": id, "requeued": requeued, "state": state_now.as_str() })))
}
