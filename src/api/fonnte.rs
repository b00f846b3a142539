//! `POST /webhook/fonnte/{secret}`: Fonnte's incoming messages and the
//! statuses of messages we sent. Fonnte does not sign its webhooks, so the
//! URL carries a secret (FONNTE_WEBHOOK_SECRET), compared in constant time;
//! a wrong one is a 404, as if the route did not exist. Where the business
//! knows Fonnte's addresses, FONNTE_ALLOWED_IPS also refuses other senders.

use super::AppState;
use crate::channels::fonnte::{parse_webhook, FonnteEvent, PayloadError};
use crate::domain::now_ms;
use crate::incidents::IncidentKind;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde_json::json;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum FonnteWebhookError {
    /// No secret configured, or not this one: the route "does not exist".
    #[error("not found")]
    UnknownPath,
    #[error("source address not allowed")]
    Source,
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("could not store the webhook: {0}")]
    Store(#[from] StoreError),
}

/// Answers 200 once what the body carries is stored.
pub async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, FonnteWebhookError> {
    let settings = &state.settings.fonnte;
    let expected = settings.webhook_secret.as_ref().ok_or(FonnteWebhookError::UnknownPath)?;
    if !bool::from(secret.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        return Err(FonnteWebhookError::UnknownPath);
    }
    if !settings.allowed_sources.is_empty() {
        let forwarded = headers.get_all("x-forwarded-for").into_iter().filter_map(|value| value.to_str().ok());
        let client = state.settings.trusted_proxies.client(peer.ip(), forwarded).to_canonical();
        if !settings.allowed_sources.iter().any(|allowed| allowed.to_canonical() == client) {
            return Err(FonnteWebhookError::Source);
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let (messages, statuses) = match parse_webhook(&body, content_type, now_ms() / 1000)? {
        FonnteEvent::Message(message) => {
            let kind = message.content.kind().to_owned();
            metrics::counter!("wa_inbound_messages_total", "kind" => kind, "channel" => "whatsapp").increment(1);
            (vec![*message], Vec::new())
        }
        FonnteEvent::Status(status) => {
            metrics::counter!("wa_statuses_total", "status" => status.status.as_str()).increment(1);
            (Vec::new(), vec![status])
        }
        FonnteEvent::Ignored(reason) => {
            metrics::counter!("wa_fonnte_webhooks_total", "outcome" => "ignored", "reason" => reason).increment(1);
            state.incidents.webhook_seen(now_ms());
            return Ok(StatusCode::OK);
        }
    };
    let outcome = state.pipeline.accept(messages, statuses).await.inspect_err(|error| {
        state.incidents.record(IncidentKind::Webhook, format!("could not store a Fonnte webhook: {error}"), now_ms())
    })?;
    state.incidents.webhook_seen(now_ms());
    metrics::counter!("wa_fonnte_webhooks_total", "outcome" => "ok", "reason" => "").increment(1);
    metrics::counter!("wa_inbound_duplicates_total").increment(outcome.duplicates as u64);
    Ok(StatusCode::OK)
}

/// Kept beside the handler rather than in `error.rs`: the categories are
/// this route's own (a wrong secret must look like a missing route).
impl IntoResponse for FonnteWebhookError {
    fn into_response(self) -> Response {
        let (status, outcome) = match &self {
            FonnteWebhookError::UnknownPath => (StatusCode::NOT_FOUND, "unknown_path"),
            FonnteWebhookError::Source => (StatusCode::FORBIDDEN, "source_refused"),
            FonnteWebhookError::Payload(_) => (StatusCode::BAD_REQUEST, "malformed"),
            FonnteWebhookError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        };
        metrics::counter!("wa_fonnte_webhooks_total", "outcome" => outcome, "reason" => "").increment(1);
        if status.is_server_error() {
            tracing::error!(error = %self, "Fonnte webhook failed");
        } else {
            tracing::warn!(error = %self, "Fonnte webhook refused");
        }
        let message = match &self {
            FonnteWebhookError::Store(_) => "could not store the webhook, please retry".to_owned(),
            other => other.to_string(),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
