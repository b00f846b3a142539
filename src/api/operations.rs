//! Admin views behind the token: conversations and their transcripts,
//! activity per hour, and recent errors. Numbers are masked even here: an
//! operator needs to tell conversations apart, not to dial them.

use super::admin::Admin;
use super::AppState;
use crate::domain::now_ms;
use crate::handoff::PauseReason;
use crate::store::{Audience, ConversationSummary, StoreError, TranscriptEntry};
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
        "account": conversation.account.label(),
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

/// `GET /api/admin/conversations/{id}`: the last 200 entries of the
/// conversation (messages both ways, the bot's drafts, every pause and
/// resume), who answers the person now, and until when an agent's message
/// can reach them.
pub async fn transcript(
    _: Admin,
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<Json<Value>, OperationsError> {
    let now = now_ms();
    let store = &state.store;
    let transcript = store.transcript(user_id, 200, Audience::Staff).await?.ok_or(OperationsError::NotFound)?;
    let mode = store.conversation_mode(user_id, now).await?.ok_or(OperationsError::NotFound)?;
    let window = store.reply_window(user_id).await?.ok_or(OperationsError::NotFound)?;
    let pause = mode.pause.as_ref();
    let mut view = summary(&transcript.summary);
    for (key, value) in [
        ("mode", json!(mode.mode.as_str())),
        ("pauseReason", json!(pause.and_then(|p| p.reason).map(PauseReason::as_str))),
        ("pausedBy", json!(pause.and_then(|p| p.by.as_deref()))),
        ("pausedAt", json!(pause.and_then(|p| p.at))),
        ("pausedUntil", json!(pause.and_then(|p| p.until))),
        ("waitingSince", json!(mode.waiting_since)),
        ("agentSeenAt", json!(mode.agent_seen_at)),
        // Null for the web chat (no window) and for a customer who never
        // wrote; `canReply` says which.
        ("windowOpenUntil", json!(window.open_until())),
        ("canReply", json!(window.open_at(now))),
        ("messages", json!(transcript.entries.iter().map(staff_line).collect::<Vec<_>>())),
    ] {
        view[key] = value;
    }
    Ok(Json(view))
}

/// One entry as the people of the business see it: `type` is `message`,
/// `draft` (written by the bot while a pause committed, never sent) or
/// `handoff` (a pause or resume); messages say who they are `from`.
fn staff_line(entry: &TranscriptEntry) -> Value {
    match entry {
        TranscriptEntry::Customer { id, text, kind, at, media } => {
            let media = media.as_ref().map(|file| {
                json!({
                    "mime": file.mime,
                    "fileName": file.file_name,
                    "outcome": file.outcome,
                    "text": file.text,
                    // Served behind the admin token, to the admin page only.
                    "url": file.kept.then(|| super::media::url_of(id)),
                })
            });
            json!({ "type": "message", "id": id, "from": "customer", "text": text, "kind": kind, "at": at, "media": media })
        }
        TranscriptEntry::Outbound(sent) => json!({
            "type": "message",
            "id": sent.id,
            "from": sent.from.as_str(),
            "author": sent.author,
            "text": sent.text,
            "kind": sent.kind,
            "at": sent.at,
            "status": sent.status(),
            "state": sent.state,
            "whatsappStatus": sent.whatsapp_status,
            "errorCode": sent.error_code,
            "error": sent.error_title,
            "turnId": sent.turn_id,
            "sources": sent.sources,
        }),
        TranscriptEntry::Draft { turn_id, text, at } => {
            json!({ "type": "draft", "from": "bot", "turnId": turn_id, "text": text, "at": at })
        }
        TranscriptEntry::Handoff { action, reason, by, until, at } => {
            json!({ "type": "handoff", "action": action, "reason": reason, "by": by, "until": until, "at": at })
        }
    }
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
