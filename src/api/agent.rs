//! An agent writes to a customer from the admin page (admin or agent token):
//! `POST /api/admin/conversations/{id}/messages` with `{"text": "...",
//! "idempotencyKey": "..."}`. The message goes out through the outbox like
//! the bot's replies and pauses the bot. The same key again (a retried
//! request, a double click) answers with the same message and sends
//! nothing new. Text starting with the resume command gives the
//! conversation back to the bot instead: the command is never sent, and
//! words after it are sent first.

use super::admin::Admin;
use super::AppState;
use crate::channels::format::{markdown_to_whatsapp, split_for_whatsapp, MAX_MESSAGE_CHARS};
use crate::domain::clean_text;
use crate::domain::now_ms;
use crate::handoff::PauseReason;
use crate::store::{AgentMessage, AgentSend, Handed, Handover, QueuedPart, StoreError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest message an agent may send at once: four WhatsApp messages.
pub const MAX_TEXT_CHARS: usize = 4 * MAX_MESSAGE_CHARS;
const MAX_KEY_CHARS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the body must be JSON such as {{\"text\": \"Halo kak\", \"idempotencyKey\": \"...\"}}: {0}")]
    Body(String),
    #[error("the message is empty")]
    EmptyText,
    #[error("the message is longer than {MAX_TEXT_CHARS} characters")]
    TooLong,
    #[error("idempotencyKey must be 1 to {MAX_KEY_CHARS} letters, digits, '-', '_', '.' or ':'")]
    Key,
    #[error("no such conversation")]
    NotFound,
    /// WhatsApp would refuse free-form text (131047); carries when the
    /// window closed, `None` when the customer never wrote.
    #[error(
        "outside WhatsApp's 24-hour customer-service window: {}; WhatsApp refuses free-form messages then \
         (error 131047), so nothing was sent. The window opens again when the customer writes; until then only \
         an approved template can reach them",
        if .0.is_some() { "the customer last wrote more than 24 hours ago" } else { "the customer has not written yet" }
    )]
    OutsideWindow(Option<i64>),
    #[error("this idempotencyKey was already used for another text in this conversation; nothing was sent")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AgentError {
    /// What `wa_agent_messages_total{outcome}` counts it as.
    pub fn outcome(&self) -> &'static str {
        match self {
            AgentError::Body(_) | AgentError::EmptyText | AgentError::TooLong | AgentError::Key => "invalid",
            AgentError::NotFound => "unknown_conversation",
            AgentError::OutsideWindow(_) => "outside_window",
            AgentError::KeyReused => "key_reused",
            AgentError::Store(_) => "store_error",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    text: String,
    idempotency_key: Option<String>,
}

/// The text as it will be sent (control characters dropped, trimmed) and
/// the key, checked before anything is stored.
fn read_request(body: &[u8]) -> Result<(String, Option<String>), AgentError> {
    let request: Request = serde_json::from_slice(body).map_err(|error| AgentError::Body(error.to_string()))?;
    let text = clean_text(&request.text).trim().to_owned();
    if text.is_empty() {
        return Err(AgentError::EmptyText);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(AgentError::TooLong);
    }
    let key_ok = |key: &str| {
        (1..=MAX_KEY_CHARS).contains(&key.len())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    };
    match request.idempotency_key {
        Some(key) if !key_ok(&key) => Err(AgentError::Key),
        key => Ok((text, key)),
    }
}

/// `201` with the queued parts; `200` with the same parts for a key used
/// before, or with none when the text was only the resume command.
pub async fn send(
    Admin { agent }: Admin,
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AgentError> {
    let (text, key) = read_request(&body)?;
    let handoffs = state.pipeline.handoffs();
    let now = now_ms();
    let (text, resume) = match handoffs.after_resume_command(&text) {
        Some(rest) => (rest, true),
        None => (text.as_str(), false),
    };
    if text.is_empty() {
        let outcome = state.store.resume(user_id, &agent, now).await?.ok_or(AgentError::NotFound)?;
        handoffs.resumed(user_id, &agent, &outcome);
        count("resumed");
        return Ok((StatusCode::OK, Json(json!({ "id": user_id, "messages": [], "resumed": true }))));
    }
    // Without a key of the client's, one of ours still ties the parts
    // together (a failed part holds back the rest, Retry sends them all).
    let key = key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let parts = split_for_whatsapp(&markdown_to_whatsapp(text), MAX_MESSAGE_CHARS);
    let pause = handoffs.pause(PauseReason::AgentReply, agent.clone(), now);
    let message = AgentMessage {
        user_id,
        author: &agent,
        key: &key,
        parts: &parts,
        give_up_at: now + state.outbox.retry_for().as_millis() as i64,
        then: if resume { Handover::Resume } else { Handover::Pause(&pause) },
    };
    let (status, queued) = match state.store.queue_agent_message(&message, now).await? {
        AgentSend::Queued(queued, handed) => {
            state.outbox.wake();
            match handed {
                Handed::Paused(outcome) => handoffs.paused(user_id, &pause, &outcome),
                Handed::Resumed(outcome) => handoffs.resumed(user_id, &agent, &outcome),
            }
            tracing::info!(
                conversation = user_id,
                agent = agent.as_str(),
                parts = queued.len(),
                resume,
                "agent message queued"
            );
            count("queued");
            (StatusCode::CREATED, queued)
        }
        AgentSend::Repeated(queued) => {
            count("repeated");
            (StatusCode::OK, queued)
        }
        AgentSend::KeyReused => return Err(AgentError::KeyReused),
        AgentSend::OutsideWindow(window) => return Err(AgentError::OutsideWindow(window.open_until())),
        AgentSend::UnknownConversation => return Err(AgentError::NotFound),
    };
    let messages: Vec<Value> = queued.iter().map(part_view).collect();
    Ok((status, Json(json!({ "id": user_id, "idempotencyKey": key, "messages": messages, "resumed": resume }))))
}

fn part_view(part: &QueuedPart) -> Value {
    json!({ "id": part.id, "state": part.state.as_str() })
}

/// Refusals are counted where they become responses (`api::error`).
pub fn count(outcome: &'static str) {
    metrics::counter!("wa_agent_messages_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_anything_is_stored() {
        let (text, key) =
            read_request(br#"{"text": "  Halo kak\u0000 ", "idempotencyKey": "a1-b2_c3.d4:e5"}"#).unwrap();
        assert_eq!((text.as_str(), key.as_deref()), ("Halo kak", Some("a1-b2_c3.d4:e5")));
        assert_eq!(read_request(br#"{"text": "Halo"}"#).unwrap().1, None);
        let long = format!(r#"{{"text": "{}"}}"#, "a".repeat(MAX_TEXT_CHARS + 1));
        let long_key = format!(r#"{{"text": "a", "idempotencyKey": "{}"}}"#, "k".repeat(MAX_KEY_CHARS + 1));
        let cases: [(&[u8], &str); 8] = [
            (br#"{"text": "   "}"#, "empty"),
            (br#"{"text": "\u0007"}"#, "empty"),
            (long.as_bytes(), "long"),
            (br#"{"text": "a", "idempotencyKey": ""}"#, "key"),
            (br#"{"text": "a", "idempotencyKey": "a b"}"#, "key"),
            (long_key.as_bytes(), "key"),
            (br#"{"txt": "a"}"#, "body"),
            (b"Halo", "body"),
        ];
        for (body, expected) in cases {
            let got = match read_request(body) {
                Err(AgentError::EmptyText) => "empty",
                Err(AgentError::TooLong) => "long",
                Err(AgentError::Key) => "key",
                Err(AgentError::Body(_)) => "body",
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            };
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(body));
        }
    }
}
