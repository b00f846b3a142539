//! `POST /webhook/waha`: WAHA's events, verified, parsed and stored before
//! they are acknowledged; and the admin's controls of the WAHA session
//! (its QR code; start, stop, restart).

use super::admin::Admin;
use super::webhook::{deliver, Parsed};
use super::AppState;
use crate::channels::waha::{self, EventError, OwnMessage, Scope, SessionAction, SignatureError, Waha, WahaError};
use crate::config::Account;
use crate::domain::{AccountName, Echo, MessageContent};
use crate::handoff::Actor;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde::Deserialize;
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

/// Which account's session the admin means: `?account=` names it, and
/// without it the first WAHA account is meant.
#[derive(Deserialize)]
pub struct Which {
    account: Option<String>,
}

fn waha<'a>(state: &'a AppState, which: &Which) -> Result<&'a Arc<Waha>, WahaApiError> {
    match &which.account {
        None => state.waha.values().next(),
        Some(label) => AccountName::from_label(label).ok().and_then(|name| state.waha.get(&name)),
    }
    .ok_or(WahaApiError::NotConfigured)
}

/// The WAHA account an event is for: the one whose session it names, or
/// the first, whose parser then ignores another session's events. Read
/// before the signature is checked, to know whose key checks it.
fn account_of_event<'a>(state: &'a AppState, body: &[u8]) -> Result<(&'a Account, &'a Arc<Waha>), WahaApiError> {
    let session = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|event| event["session"].as_str().map(str::to_owned));
    let accounts: Vec<(&Account, &Arc<Waha>)> = state
        .settings
        .accounts
        .iter()
        .filter_map(|account| state.waha.get(&account.name).map(|waha| (account, waha)))
        .collect();
    accounts
        .iter()
        .find(|(account, _)| session.as_deref() == Some(account.waha.session.as_str()))
        .or(accounts.first())
        .copied()
        .ok_or(WahaApiError::NotConfigured)
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
    let (account, waha) = account_of_event(&state, &body)?;
    let settings = &account.waha;
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
    let echoes = from_the_phone(&state, event.own).await?;
    let parsed = Parsed { messages: event.messages, statuses: event.statuses, echoes, ignored: event.ignored };
    deliver(&state, "waha", parsed.on_account(&account.name)).await?;
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
    Ok(echoes)
}

/// `GET /api/admin/whatsapp/qr`: WAHA's QR code for linking the number,
/// never cached anywhere (it changes every few seconds, and it is a key).
pub async fn qr(
    admin: Admin,
    State(state): State<AppState>,
    Query(which): Query<Which>,
) -> Result<Response, WahaApiError> {
    admin_only(&admin)?;
    let (image, mime) = waha(&state, &which)?.qr_code().await?;
    Ok(([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-store".to_owned())], image).into_response())
}

/// `POST /api/admin/whatsapp/session/{start|stop|restart}`.
pub async fn session(
    admin: Admin,
    State(state): State<AppState>,
    Path(action): Path<String>,
    Query(which): Query<Which>,
) -> Result<Json<serde_json::Value>, WahaApiError> {
    admin_only(&admin)?;
    let action = SessionAction::parse(&action).ok_or(WahaApiError::UnknownAction)?;
    let waha = waha(&state, &which)?;
    let connection = waha.control_session(action).await?;
    tracing::info!(action = action.as_str(), "WAHA session control");
    Ok(Json(json!({ "action": action.as_str(), "state": connection.state.as_str() })))
}
