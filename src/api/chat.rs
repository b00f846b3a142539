//! The web chat's HTTP side: messages in, Server-Sent Events out, and the
//! history a reopened window starts from. Off with WEB_CHAT_ENABLED=false.

use super::AppState;
use crate::domain::{ChannelKind, PhoneNumber, Source};
use crate::store::TranscriptEntry;
use crate::webchat::{inbound_message, WebChatError};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::stream::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Messages a reopened window shows.
const HISTORY: i64 = 200;
/// Numbers offered in the number picker, so trying the bot needs no typing.
const SAMPLE_PHONES: [&str; 3] = ["6281234567890", "6285700001111", "6289912345678"];

fn enabled(state: &AppState) -> Result<(), WebChatError> {
    if state.settings.web_chat_enabled {
        Ok(())
    } else {
        Err(WebChatError::Disabled)
    }
}

pub async fn config(State(state): State<AppState>) -> Result<Json<Value>, WebChatError> {
    enabled(&state)?;
    let settings = &state.settings;
    let wa = &settings.whatsapp;
    Ok(Json(json!({
        "quietSeconds": settings.buffer.quiet.as_secs_f64(),
        "llm": settings.llm.api_key.is_some(),
        "whatsapp": wa.access_token.is_some() && wa.phone_number_id.is_some(),
        "samplePhones": SAMPLE_PHONES,
        "business": settings.llm.app_title,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    phone: String,
    text: String,
    client_id: String,
}

/// `202` once the message is stored; the answer comes later as an event.
pub async fn send(
    State(state): State<AppState>,
    Json(message): Json<NewMessage>,
) -> Result<(StatusCode, Json<Value>), WebChatError> {
    enabled(&state)?;
    let inbound = inbound_message(&message.phone, &message.text, &message.client_id)?;
    state.webchat.admit()?;
    let id = inbound.id.as_str().to_owned();
    metrics::counter!("wa_inbound_messages_total", "kind" => "text", "channel" => "web").increment(1);
    let outcome = state.pipeline.accept(vec![inbound], Vec::new()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "duplicate": outcome.duplicates > 0 }))))
}

#[derive(Deserialize)]
pub struct Window {
    phone: String,
}

pub async fn events(
    State(state): State<AppState>,
    Query(window): Query<Window>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebChatError> {
    enabled(&state)?;
    let phone = PhoneNumber::parse(&window.phone)?;
    let subscription = state.webchat.subscribe(&phone);
    let stopping = state.stopping.clone();
    let stream = futures::stream::unfold((subscription, stopping), |(mut subscription, stopping)| async move {
        let event = tokio::select! {
            _ = stopping.cancelled() => return None,
            event = subscription.events.recv() => event,
        };
        match event {
            Ok(event) => {
                let sse = Event::default().event(event.name()).data(event.data().to_string());
                Some((Ok(sse), (subscription, stopping)))
            }
            // A window that fell behind reconnects and reloads history.
            Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => None,
        }
    });
    // A first byte at once, so a buffering proxy in between passes the
    // stream on and the page knows it is connected.
    let connected = futures::stream::once(std::future::ready(Ok(Event::default().comment("connected"))));
    Ok(Sse::new(connected.chain(stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}

pub async fn history(State(state): State<AppState>, Query(window): Query<Window>) -> Result<Json<Value>, WebChatError> {
    enabled(&state)?;
    let phone = PhoneNumber::parse(&window.phone)?;
    let Some(user_id) = state.store.user_by_address(ChannelKind::Web, phone.expose()).await? else {
        return Ok(Json(json!({ "messages": [] })));
    };
    let entries = state.store.transcript(user_id, HISTORY).await?.map(|t| t.entries).unwrap_or_default();
    Ok(Json(json!({ "messages": entries.iter().map(ChatLine::from).collect::<Vec<_>>() })))
}

/// One line of a transcript as both the web chat and the admin page show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatLine<'a> {
    id: Option<&'a str>,
    from: &'static str,
    text: Option<&'a str>,
    kind: Option<&'a str>,
    at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<&'a [Source]>,
}

impl<'a> From<&'a TranscriptEntry> for ChatLine<'a> {
    fn from(entry: &'a TranscriptEntry) -> Self {
        match entry {
            TranscriptEntry::Customer { id, text, kind, at } => ChatLine {
                id: Some(id),
                from: "customer",
                text: text.as_deref(),
                kind: Some(kind),
                at: *at,
                status: None,
                turn_id: None,
                sources: None,
            },
            TranscriptEntry::Bot { id, text, kind, at, status, turn_id, sources } => ChatLine {
                id: id.as_deref(),
                from: "bot",
                text: text.as_deref(),
                kind: kind.as_deref(),
                at: *at,
                status: Some(status),
                turn_id: turn_id.as_deref(),
                sources: sources.as_deref(),
            },
        }
    }
}
