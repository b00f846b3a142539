//! `POST /webhook/waha`: WAHA's events, verified, parsed and stored before
//! they are acknowledged; and the admin's controls of the WAHA session
//! (its QR code; start, stop, restart).

use super::admin::Admin;
use super::AppState;
use crate::channels::waha::{self, EventError, OwnMessage, Scope, SessionAction, SignatureError, Waha, WahaError};
use crate::domain::now_ms;
use crate::domain::{Echo, MessageContent};
use crate::handoff::Actor;
use crate::incidents::IncidentKind;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum WahaApiError {
    #[error("WAHA is not the WhatsApp provider: set WAHA_URL")]
    NotConfigured,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] EventError),
    #[error("could not store the webhook: {0}")]
    Store(#[from] StoreError),
    #[error("only the admin token may control the WhatsApp session")]
    AdminOnly,
    #[error("no such session action (start, stop, restart)")]
    UnknownAction,
    #[error(transparent)]
    Waha(#[from] WahaError),
}

impl IntoResponse for WahaApiError {
    fn into_response(self) -> Response {
        let (status, outcome) = match &self {
            Self::NotConfigured => (StatusCode::NOT_FOUND, "not_configured"),
            Self::Signature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            Self::Payload(_) => (StatusCode::BAD_REQUEST, "malformed"),
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
            Self::AdminOnly => (StatusCode::FORBIDDEN, "admin_only"),
            Self::UnknownAction => (StatusCode::NOT_FOUND, "unknown_action"),
            Self::Waha(_) => (StatusCode::BAD_GATEWAY, "waha_error"),
        };
        if matches!(self, Self::Signature(_) | Self::Payload(_) | Self::Store(_)) {
            metrics::counter!("wa_webhooks_total", "outcome" => outcome, "provider" => "waha").increment(1);
        }
        if status.is_server_error() {
            tracing::error!(error = %self, "WAHA request failed");
        } else {
            tracing::warn!(error = %self, "WAHA request refused");
        }
        // Database details stay in the log; callers only learn the category.
        let message = match &self {
            Self::Store(_) => "could not store the webhook, please retry".to_owned(),
            other => other.to_string(),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

fn waha(state: &AppState) -> Result<&Arc<Waha>, WahaApiError> {
    state.waha.as_ref().ok_or(WahaApiError::NotConfigured)
}

/// Linking or unlinking the number changes who the bot speaks as: the
/// admin's to do, not an agent's.
fn admin_only(admin: &Admin) -> Result<(), WahaApiError> {
    if admin.agent == Actor::admin() {
        Ok(())
    } else {
        Err(WahaApiError::AdminOnly)
    }
}

/// `POST /webhook/waha`: answers 200 only once everything the event carries
/// is stored, so WAHA's retry covers any failure before that point.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, WahaApiError> {
    let waha = waha(&state)?;
    let settings = &state.settings.waha;
    if let Some(key) = &settings.webhook_hmac_key {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        waha::verify(
            key.expose_secret().as_bytes(),
            header("x-webhook-hmac"),
            header("x-webhook-hmac-algorithm"),
            &body,
        )?;
    }
    let event = waha::parse_event(&body, &Scope { session: &settings.session, groups: settings.groups })?;
    if let Some(status) = &event.session_status {
        waha.session_changed(status).await;
        tracing::info!(status = %status, "WAHA session changed state");
    }
    count(&event);
    let stored = async {
        let echoes = from_the_phone(&state, event.own).await?;
        let outcome = state.pipeline.accept(event.messages, event.statuses).await?;
        super::webhook::take_echoes(&state, &echoes).await?;
        Ok::<_, StoreError>(outcome)
    };
    let outcome = stored.await.inspect_err(|error| {
        state.incidents.record(IncidentKind::Webhook, format!("could not store a WAHA webhook: {error}"), now_ms())
    })?;
    state.incidents.webhook_seen(now_ms());
    metrics::counter!("wa_webhooks_total", "outcome" => "ok", "provider" => "waha").increment(1);
    metrics::counter!("wa_inbound_duplicates_total").increment(outcome.duplicates as u64);
    Ok(StatusCode::OK)
}

/// The business's own messages that a person typed on the phone: these
/// pause the bot as the Cloud API's echoes do. Ours are left out: WAHA
/// says so (`source: "api"`), or the outbox knows the id, or, when the
/// event overtakes WAHA's answer to our send, the outbox has a send to the
/// same number with the same words still waiting for its answer.
async fn from_the_phone(state: &AppState, own: Vec<OwnMessage>) -> Result<Vec<Echo>, StoreError> {
    let mut echoes = Vec::with_capacity(own.len());
    for message in own {
        if message.via_api {
            continue;
        }
        let echo = message.echo;
        let phone = echo.to.phone().map(|phone| phone.expose()).unwrap_or_default();
        let words = match &echo.content {
            MessageContent::Text(text) => Some(text.as_str()),
            _ => None,
        };
        if !state.store.is_our_send(echo.id.as_str(), phone, words).await? {
            echoes.push(echo);
        }
    }
    metrics::counter!("wa_echoes_total").increment(echoes.len() as u64);
    Ok(echoes)
}

fn count(event: &waha::WahaEvent) {
    for message in &event.messages {
        metrics::counter!("wa_inbound_messages_total", "kind" => message.content.kind().to_owned(), "channel" => "whatsapp")
            .increment(1);
    }
    for status in &event.statuses {
        metrics::counter!("wa_statuses_total", "status" => status.status.as_str()).increment(1);
    }
    metrics::counter!("wa_webhook_ignored_items_total").increment(event.ignored as u64);
}

/// `GET /api/admin/whatsapp/qr`: WAHA's QR code for linking the number,
/// never cached anywhere (it changes every few seconds, and it is a key).
pub async fn qr(admin: Admin, State(state): State<AppState>) -> Result<Response, WahaApiError> {
    admin_only(&admin)?;
    let (image, mime) = waha(&state)?.qr_code().await?;
    Ok(([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-store".to_owned())], image).into_response())
}

/// `POST /api/admin/whatsapp/session/{start|stop|restart}`.
pub async fn session(
    admin: Admin,
    State(state): State<AppState>,
    Path(action): Path<String>,
) -> Result<Json<serde_json::Value>, WahaApiError> {
    admin_only(&admin)?;
    let action = SessionAction::parse(&action).ok_or(WahaApiError::UnknownAction)?;
    let waha = waha(&state)?;
    let connection = waha.control_session(action).await?;
    tracing::info!(action = action.as_str(), "WAHA session control");
    Ok(Json(json!({ "action": action.as_str(), "state": connection.state.as_str() })))
}
