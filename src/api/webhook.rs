//! The entry of the data flow for the Cloud API: Meta's verification
//! handshake, and events that are verified, parsed and stored before they
//! are acknowledged.

use super::AppState;
use crate::channels::cloud_api::{self, parse_webhook_by_number, PayloadError, SignatureError, WebhookBatch};
use crate::config::{Account, WhatsAppProvider};
use crate::domain::{now_ms, AccountName, Echo, InboundMessage, MessageContent, StatusUpdate};
use crate::handoff::{Actor, PauseReason};
use crate::incidents::IncidentKind;
use crate::store::{EchoAction, Handed, StoreError};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook is disabled until META_APP_SECRET is set")]
    NotConfigured,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("could not store the webhook: {0}")]
    Store(#[from] StoreError),
    #[error("verification refused")]
    VerificationRefused,
    #[error("no such webhook")]
    UnknownPath,
}

#[derive(Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET`: Meta proves we own the URL by echoing its challenge.
pub async fn verify_handshake(
    State(state): State<AppState>,
    Query(handshake): Query<Handshake>,
) -> Result<String, WebhookError> {
    // Each Cloud API account may have its own app, and so its own token.
    let given = handshake.verify_token.as_deref().unwrap_or_default();
    let token_matches = cloud_accounts(&state)
        .filter_map(|account| account.whatsapp.verify_token.as_ref())
        .fold(false, |matched, expected| {
            matched | bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes()))
        })
        && !given.is_empty();
    match (handshake.mode.as_deref(), handshake.challenge) {
        (Some("subscribe"), Some(challenge)) if token_matches => Ok(challenge),
        _ => Err(WebhookError::VerificationRefused),
    }
}

/// `POST`: answers 200 only once everything the body carries is stored,
/// so Meta's retry covers any failure before that point.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, WebhookError> {
    let header = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    // The accounts whose app signed this body: only their numbers may be
    // spoken for in it.
    let mut signed = Vec::new();
    let mut refusal = WebhookError::NotConfigured;
    for account in cloud_accounts(&state) {
        let Some(secret) = &account.whatsapp.app_secret else { continue };
        match cloud_api::verify(secret.expose_secret().as_bytes(), header, &body) {
            Ok(()) => signed.push(account),
            Err(error) => refusal = error.into(),
        }
    }
    if signed.is_empty() {
        return Err(refusal);
    }
    store(&state, &body, &signed).await
}

/// `POST /webhook/whatsapp/{secret}`, for Cloud-API-compatible providers
/// that forward Meta's events without a signature we can check (360dialog):
/// knowing the URL is the proof. A wrong secret is a 404, as for any path
/// that does not exist, so guessing learns nothing.
pub async fn receive_at_secret_path(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    body: Bytes,
) -> Result<StatusCode, WebhookError> {
    let account = cloud_accounts(&state)
        .find(|account| secret_path_matches(account.whatsapp.webhook_secret.as_ref(), &secret))
        .ok_or(WebhookError::UnknownPath)?;
    store(&state, &body, &[account]).await
}

fn cloud_accounts(state: &AppState) -> impl Iterator<Item = &Account> {
    state.settings.accounts.iter().filter(|account| account.provider == WhatsAppProvider::CloudApi)
}

/// Stores what each number in the body carries as its account's. A number
/// none of `accounts` has is not ours to answer, unless only one account
/// could have sent it: a single number keeps working whatever id Meta
/// gives it.
async fn store(state: &AppState, body: &[u8], accounts: &[&Account]) -> Result<StatusCode, WebhookError> {
    let mut parsed = Parsed::default();
    for (number, batch) in parse_webhook_by_number(body)? {
        let owner = accounts.iter().find(|account| number.is_some() && account.whatsapp.phone_number_id == number).or(
            match accounts {
                [only] => Some(only),
                _ => None,
            },
        );
        match owner {
            Some(account) => parsed.absorb(Parsed::from(batch).on_account(&account.name)),
            None => {
                tracing::warn!("a webhook spoke for a phone number id no account has; its items are ignored");
                parsed.ignored += batch.messages.len() + batch.statuses.len() + batch.echoes.len() + batch.ignored;
            }
        }
    }
    take_template_updates(state, body, accounts).await?;
    deliver(state, "cloud_api", parsed).await?;
    Ok(StatusCode::OK)
}

/// Meta's word on the business's templates (approved, rejected, paused,
/// recategorised) goes into the cache before the webhook is acknowledged.
/// Templates belong to a business account, not a number: the account is
/// found by the entry's business account id.
async fn take_template_updates(state: &AppState, body: &[u8], accounts: &[&Account]) -> Result<(), StoreError> {
    let updates = cloud_api::template_updates(body);
    for account in accounts {
        let own: Vec<_> = updates
            .iter()
            .filter(|update| {
                accounts.len() == 1
                    || (update.business_account_id.is_some()
                        && update.business_account_id == account.whatsapp.business_account_id)
            })
            .cloned()
            .collect();
        if !own.is_empty() {
            state.templates.updated(&account.name, &own).await?;
        }
    }
    Ok(())
}

/// What a provider's webhook carried, read into domain values.
#[derive(Default)]
pub(super) struct Parsed {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    /// What the business itself sent from its phone.
    pub echoes: Vec<Echo>,
    /// Items understood and deliberately not acted on (groups, reactions to
    /// nothing, events of another session).
    pub ignored: usize,
}

impl Parsed {
    /// Everyone in it wrote to (or was written to from) `account`.
    pub(super) fn on_account(mut self, account: &AccountName) -> Self {
        for message in &mut self.messages {
            message.from.set_account(account.clone());
        }
        for echo in &mut self.echoes {
            echo.to.set_account(account.clone());
        }
        self
    }

    fn absorb(&mut self, other: Parsed) {
        self.messages.extend(other.messages);
        self.statuses.extend(other.statuses);
        self.echoes.extend(other.echoes);
        self.ignored += other.ignored;
    }
}

impl From<WebhookBatch> for Parsed {
    fn from(batch: WebhookBatch) -> Self {
        Self { messages: batch.messages, statuses: batch.statuses, echoes: batch.echoes, ignored: batch.ignored }
    }
}

/// The end every provider's webhook shares: messages and statuses to the
/// pipeline, echoes to the handoff, all stored before the caller answers
/// 200; then counted, and the webhook noted as seen.
pub(super) async fn deliver(state: &AppState, provider: &'static str, parsed: Parsed) -> Result<(), StoreError> {
    count_parsed(&parsed);
    let stored = async {
        let outcome = state.pipeline.accept(parsed.messages, parsed.statuses).await?;
        take_echoes(state, &parsed.echoes).await?;
        Ok::<_, StoreError>(outcome)
    };
    let outcome = stored.await.inspect_err(|error| {
        let note = format!("could not store a webhook ({provider}): {error}");
        state.incidents.record(IncidentKind::Webhook, note, now_ms())
    })?;
    state.incidents.webhook_seen(now_ms());
    metrics::counter!("wa_webhooks_total", "outcome" => "ok", "provider" => provider).increment(1);
    metrics::counter!("wa_inbound_duplicates_total").increment(outcome.duplicates as u64);
    tracing::debug!(
        provider,
        stored = outcome.stored,
        duplicates = outcome.duplicates,
        statuses = outcome.statuses,
        "webhook stored"
    );
    Ok(())
}

/// For providers that cannot sign what they send, the secret in the URL is
/// the proof. Compared in constant time; with none configured nothing
/// matches, so the route acts as if it did not exist.
pub(super) fn secret_path_matches(expected: Option<&SecretString>, given: &str) -> bool {
    expected.is_some_and(|expected| bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())))
}

/// What the business sent from the WhatsApp Business app: each echo is
/// stored as a message of its conversation and pauses the bot, since a
/// person of the business is answering. One that starts with the resume
/// command gives the conversation back to the bot instead and is not kept
/// as a message (the customer saw it already; it cannot be taken back).
pub(super) async fn take_echoes(state: &AppState, echoes: &[Echo]) -> Result<(), StoreError> {
    if echoes.is_empty() {
        return Ok(());
    }
    let handoffs = state.pipeline.handoffs();
    let now = now_ms();
    let pause = handoffs.pause(PauseReason::PhoneReply, Actor::phone(), now);
    let keep_words = state.settings.retention.chat_logging;
    let actions: Vec<EchoAction> = echoes
        .iter()
        .map(|echo| {
            let command =
                matches!(&echo.content, MessageContent::Text(text) if handoffs.after_resume_command(text).is_some());
            EchoAction { echo, pause: (!command).then_some(&pause), text: keep_words.then(|| echo.text()) }
        })
        .collect();
    let handed = state.store.store_echoes(&actions, now).await?;
    let duplicates = handed.iter().filter(|done| done.is_none()).count();
    for (user_id, done) in handed.into_iter().flatten() {
        match done {
            Handed::Paused(outcome) => handoffs.paused(user_id, &pause, &outcome),
            Handed::Resumed(outcome) => handoffs.resumed(user_id, &Actor::phone(), &outcome),
        }
    }
    tracing::debug!(echoes = echoes.len(), duplicates, "echoes of the WhatsApp Business app stored");
    Ok(())
}

fn count_parsed(batch: &Parsed) {
    for message in &batch.messages {
        let (kind, account) = (message.content.kind().to_owned(), message.from.account().label().to_owned());
        metrics::counter!("wa_inbound_messages_total", "kind" => kind, "channel" => "whatsapp", "account" => account)
            .increment(1);
    }
    for status in &batch.statuses {
        metrics::counter!("wa_statuses_total", "status" => status.status.as_str()).increment(1);
    }
    metrics::counter!("wa_webhook_ignored_items_total").increment(batch.ignored as u64);
    metrics::counter!("wa_echoes_total").increment(batch.echoes.len() as u64);
}
