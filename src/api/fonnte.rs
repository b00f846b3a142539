//! `POST /webhook/fonnte/{secret}`: Fonnte's incoming messages and the
//! statuses of messages we sent. Fonnte does not sign its webhooks, so the
//! URL carries a secret (FONNTE_WEBHOOK_SECRET), compared in constant time;
//! a wrong one is a 404, as if the route did not exist. Where the business
//! knows Fonnte's addresses, FONNTE_ALLOWED_IPS also refuses other senders.

use super::webhook::{deliver, secret_path_matches, Parsed};
use super::AppState;
use crate::channels::fonnte::{parse_webhook, FonnteEvent, PayloadError};
use crate::config::WhatsAppProvider;
use crate::domain::now_ms;
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use std::net::SocketAddr;

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
    // Each device has its own secret, which tells whose webhook this is.
    let account = state
        .settings
        .accounts
        .iter()
        .filter(|account| account.provider == WhatsAppProvider::Fonnte)
        .find(|account| secret_path_matches(account.fonnte.webhook_secret.as_ref(), &secret))
        .ok_or(FonnteWebhookError::UnknownPath)?;
    let settings = &account.fonnte;
    if !settings.allowed_sources.is_empty() {
        let forwarded = headers.get_all("x-forwarded-for").into_iter().filter_map(|value| value.to_str().ok());
        let client = state.settings.trusted_proxies.client(peer.ip(), forwarded).to_canonical();
        if !settings.allowed_sources.iter().any(|allowed| allowed.to_canonical() == client) {
            return Err(FonnteWebhookError::Source);
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let parsed = match parse_webhook(&body, content_type, now_ms() / 1000)? {
        FonnteEvent::Message(message) => Parsed { messages: vec![*message], ..Parsed::default() },
        FonnteEvent::Status(status) => Parsed { statuses: vec![status], ..Parsed::default() },
        FonnteEvent::Ignored(reason) => {
            tracing::debug!(reason, "Fonnte webhook ignored");
            Parsed { ignored: 1, ..Parsed::default() }
        }
    };
    deliver(&state, "fonnte", parsed.on_account(&account.name)).await?;
    Ok(StatusCode::OK)
}
