//! Pausing and resuming the bot for one conversation (admin token): an
//! operator takes a conversation over, or gives it back. Both are safe to
//! repeat: pausing a paused conversation sets its new end, resuming one the
//! bot has changes nothing.

use super::admin::Admin;
use super::AppState;
use crate::domain::now_ms;
use crate::handoff::{Pause, PauseReason};
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The longest pause one request may ask for: a year.
const MAX_HOURS: f64 = 24.0 * 365.0;

#[derive(Debug, thiserror::Error)]
pub enum HandoffRequestError {
    #[error("no such conversation")]
    NotFound,
    #[error("the body must be empty or JSON such as {{\"hours\": 2}} (0 = until resumed, at most {MAX_HOURS}): {0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    hours: Option<f64>,
}

/// `POST /api/admin/conversations/{id}/pause`, body optional
/// `{"hours": 2}`: the bot stays silent for that long (0: until resumed;
/// no hours: `HANDOFF_PAUSE_HOURS`). Answers the conversation's new mode.
pub async fn pause(
    Admin { agent }: Admin,
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, HandoffRequestError> {
    let handoffs = state.pipeline.handoffs();
    let length = match pause_hours(&body)? {
        None => handoffs.settings().pause_for,
        Some(0.0) => None,
        Some(hours) => Some(Duration::from_secs_f64(hours * 3600.0)),
    };
    let now = now_ms();
    let pause = Pause::new(PauseReason::Admin, agent, now, length);
    let outcome = state.store.pause(user_id, &pause, now).await?.ok_or(HandoffRequestError::NotFound)?;
    handoffs.paused(user_id, &pause, &outcome);
    Ok(Json(json!({
        "id": user_id,
        "mode": "human",
        "until": outcome.until,
        "changed": outcome.changed,
        "cancelled": outcome.cancelled,
    })))
}

/// `POST /api/admin/conversations/{id}/resume`: the bot answers the
/// person's next message.
pub async fn resume(
    Admin { agent: by }: Admin,
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<Json<Value>, HandoffRequestError> {
    let outcome = state.store.resume(user_id, &by, now_ms()).await?.ok_or(HandoffRequestError::NotFound)?;
    state.pipeline.handoffs().resumed(user_id, &by, &outcome);
    Ok(Json(json!({ "id": user_id, "mode": "bot", "until": null, "changed": outcome.changed })))
}

/// The hours asked for, if any; a body that is not what the endpoint takes
/// is refused rather than read as "no hours".
fn pause_hours(body: &[u8]) -> Result<Option<f64>, HandoffRequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let body: PauseBody = serde_json::from_slice(body).map_err(|error| HandoffRequestError::Body(error.to_string()))?;
    match body.hours {
        Some(hours) if !(hours.is_finite() && (0.0..=MAX_HOURS).contains(&hours)) => {
            Err(HandoffRequestError::Body(format!("hours {hours} is out of range")))
        }
        hours => Ok(hours),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_body_is_empty_or_hours_in_range() {
        assert_eq!(pause_hours(b"").unwrap(), None);
        assert_eq!(pause_hours(b" \n").unwrap(), None);
        assert_eq!(pause_hours(b"{}").unwrap(), None);
        assert_eq!(pause_hours(br#"{"hours": 0}"#).unwrap(), Some(0.0));
        assert_eq!(pause_hours(br#"{"hours": 1.5}"#).unwrap(), Some(1.5));
        for bad in
            [&br#"{"hours": -1}"#[..], br#"{"hours": 9000}"#, br#"{"hours": "2"}"#, br#"{"hour": 2}"#, b"2", b"{"]
        {
            assert!(matches!(pause_hours(bad), Err(HandoffRequestError::Body(_))), "{}", String::from_utf8_lossy(bad));
        }
    }
}
