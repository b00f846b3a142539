//! The web chat's HTTP side: conversations started, messages in,
//! Server-Sent Events out, and the history a reopened window starts from.
//! Everything but starting needs the conversation's secret, in a header.
//! Off with WEB_CHAT_ENABLED=false.

use super::AppState;
use crate::channels::web::{
    inbound_file, inbound_message, shown_id, ConversationSecret, Upload, WebChatError, MAX_UPLOAD_BYTES,
};
use crate::domain::now_ms;
use crate::domain::{ChannelKind, ConversationKey, PhoneNumber, Source};
use crate::media::FileError;
use crate::store::{Audience, TranscriptEntry};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::stream::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Messages a reopened window shows.
const HISTORY: i64 = 200;
/// Labels offered in the number picker, so trying the bot needs no typing.
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
        "linkDomains": settings.web_chat_link_domains,
    })))
}

/// Who is asking, for the limits per address (see `TRUSTED_PROXIES`).
fn client(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let forwarded = headers.get_all("x-forwarded-for").into_iter().filter_map(|value| value.to_str().ok());
    state.settings.trusted_proxies.client(peer.ip(), forwarded)
}

/// The conversation the request's secret opens; a missing secret is 401,
/// one that opens nothing 404, and neither says more.
async fn conversation(state: &AppState, headers: &HeaderMap) -> Result<(ConversationKey, i64), WebChatError> {
    let key = ConversationSecret::from_headers(headers)?.key();
    let user_id = state.store.user_by_address(ChannelKind::Web, key.expose()).await?;
    Ok((key, user_id.ok_or(WebChatError::UnknownConversation)?))
}

#[derive(Deserialize, Default)]
pub struct NewConversation {
    /// The number the visitor picked, if any: a label, never an identity.
    phone: Option<String>,
}

/// `201` with the conversation's secret, which only this answer ever shows.
pub async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Option<Json<NewConversation>>,
) -> Result<(StatusCode, Json<Value>), WebChatError> {
    enabled(&state)?;
    let Json(new) = body.unwrap_or_default();
    let label = new.phone.as_deref().map(PhoneNumber::parse).transpose()?;
    state.webchat.admit_conversation(client(&state, peer, &headers))?;
    let secret = ConversationSecret::generate();
    let key = secret.key();
    // Kept masked: the admin page tells conversations apart by it, and a
    // visitor's real number needs no copy in the database.
    let masked = label.as_ref().map(PhoneNumber::masked);
    state.store.start_web_conversation(&key, masked.as_deref(), now_ms()).await?;
    tracing::info!(conversation = %key, "web chat conversation started");
    Ok((StatusCode::CREATED, Json(json!({ "secret": secret.expose(), "label": masked }))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    text: String,
    client_id: String,
}

/// `202` once the message is stored; the answer comes later as an event.
pub async fn send(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(message): Json<NewMessage>,
) -> Result<(StatusCode, Json<Value>), WebChatError> {
    enabled(&state)?;
    let (key, _) = conversation(&state, &headers).await?;
    let inbound = inbound_message(&key, &message.text, &message.client_id)?;
    state.webchat.admit_message(&key, client(&state, peer, &headers))?;
    let id = shown_id(&key, inbound.id.as_str());
    metrics::counter!("wa_inbound_messages_total", "kind" => "text", "channel" => "web", "account" => "").increment(1);
    let outcome = state.pipeline.accept(vec![inbound], Vec::new()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "duplicate": outcome.duplicates > 0 }))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadQuery {
    client_id: String,
    caption: Option<String>,
}

/// `POST /api/chat/media?clientId=…&caption=…` with a photo or a voice
/// recording as the body: `202` once it is stored, like a typed message.
pub async fn upload(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), WebChatError> {
    enabled(&state)?;
    let (key, _) = conversation(&state, &headers).await?;
    let upload = Upload::sniff(&body)?;
    state.webchat.admit_message(&key, client(&state, peer, &headers))?;
    let stored =
        state.pipeline.media().files().store_bytes(&body, MAX_UPLOAD_BYTES as u64).await.map_err(
            |error| match error {
                FileError::TooLarge { .. } => WebChatError::FileTooLarge,
                other => WebChatError::FileStore(other.to_string()),
            },
        )?;
    let inbound = inbound_file(&key, &query.client_id, upload, query.caption.as_deref(), &stored)?;
    let id = shown_id(&key, inbound.id.as_str());
    metrics::counter!("wa_inbound_messages_total", "kind" => upload.kind, "channel" => "web", "account" => "")
        .increment(1);
    let outcome = state.pipeline.accept(vec![inbound], Vec::new()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "duplicate": outcome.duplicates > 0 }))))
}

pub async fn events(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebChatError> {
    enabled(&state)?;
    let (key, _) = conversation(&state, &headers).await?;
    let slot = state.webchat.open_stream(client(&state, peer, &headers))?;
    let subscription = state.webchat.subscribe(&key);
    let stopping = state.stopping.clone();
    // The slot lives as long as the stream, and gives its place back with it.
    let open = (subscription, stopping, slot);
    let stream = futures::stream::unfold(open, |(mut subscription, stopping, slot)| async move {
        let event = tokio::select! {
            _ = stopping.cancelled() => return None,
            event = subscription.events.recv() => event,
        };
        match event {
            Ok(event) => {
                let sse = Event::default().event(event.name()).data(event.data().to_string());
                Some((Ok(sse), (subscription, stopping, slot)))
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

pub async fn history(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, WebChatError> {
    enabled(&state)?;
    let (key, user_id) = conversation(&state, &headers).await?;
    let transcript = state.store.transcript(user_id, HISTORY, Audience::Customer).await?;
    let mut entries = transcript.map(|t| t.entries).unwrap_or_default();
    for entry in &mut entries {
        if let TranscriptEntry::Customer { id, .. } = entry {
            *id = shown_id(&key, id);
        }
    }
    let lines = json!({ "messages": entries.iter().filter_map(ChatLine::shown).collect::<Vec<_>>() });
    // A conversation's words are nobody else's: no shared cache keeps them.
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(lines)))
}

/// One line of the conversation as the visitor's window shows it. Whoever
/// of the business wrote a message, it is the business's bubble.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChatLine<'a> {
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

impl<'a> ChatLine<'a> {
    /// `None` for what only the business sees.
    fn shown(entry: &'a TranscriptEntry) -> Option<Self> {
        match entry {
            TranscriptEntry::Customer { id, text, kind, at, .. } => Some(ChatLine {
                id: Some(id),
                from: "customer",
                text: text.as_deref(),
                kind: Some(kind),
                at: *at,
                status: None,
                turn_id: None,
                sources: None,
            }),
            TranscriptEntry::Outbound(sent) => Some(ChatLine {
                id: sent.id.as_deref(),
                from: "bot",
                text: sent.text.as_deref(),
                kind: sent.kind.as_deref(),
                at: sent.at,
                status: Some(sent.status()),
                turn_id: sent.turn_id.as_deref(),
                sources: sent.sources.as_deref(),
            }),
            TranscriptEntry::Draft { .. } | TranscriptEntry::Handoff { .. } => None,
        }
    }
}
