//! HTTP surface: the router, shared state, and the one place where module
//! errors become HTTP responses.

mod admin;
mod agent;
mod campaigns;
mod chat;
mod contacts;
mod error;
mod fonnte;
mod gateway;
mod handoff;
mod inbox;
mod knowledge;
mod media;
mod operations;
mod outbox;
mod pages;
mod send_form;
mod shed;
mod status;
mod templates;
mod unanswered;
mod waha;
mod webhook;

use crate::channels::web::WebChat;
use crate::channels::Channels;
use crate::config::Settings;
use crate::incidents::Incidents;
use crate::knowledge::KnowledgeBase;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::store::{SendState, Store};
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::Router;
pub use inbox::{InboxFeed, MAX_STREAMS as MAX_INBOX_STREAMS};
use std::sync::Arc;

/// Meta's payloads are a few kB; anything near this is not from Meta.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub channels: Channels,
    pub pipeline: Pipeline,
    pub outbox: Outbox,
    pub knowledge: KnowledgeBase,
    /// The indexes of accounts with documents of their own.
    pub account_knowledge: Vec<(crate::domain::AccountName, KnowledgeBase)>,
    pub webchat: WebChat,
    pub incidents: Incidents,
    pub inbox: InboxFeed,
    /// Cancelled when the server starts shutting down; ends open event
    /// streams so the graceful shutdown does not wait on them.
    pub stopping: tokio_util::sync::CancellationToken,
    pub started: std::time::Instant,
    /// The WAHA session of each account WAHA carries: its webhook and the
    /// admin's QR code and session controls need more than `Channel`.
    pub waha: std::collections::BTreeMap<crate::domain::AccountName, Arc<crate::channels::waha::Waha>>,
    pub templates: crate::templates::Templates,
}

/// Prometheus text format. Gauges that describe the present are read now.
async fn render_metrics(State(state): State<AppState>) -> String {
    metrics::gauge!("wa_buffered_conversations").set(state.pipeline.debouncer().len() as f64);
    metrics::gauge!("wa_webchat_open_windows").set(state.webchat.open_windows() as f64);
    metrics::gauge!("wa_webchat_open_streams").set(state.webchat.open_streams() as f64);
    metrics::gauge!("wa_admin_inbox_streams").set(state.inbox.open_streams() as f64);
    match state.store.inbox_counts(crate::domain::now_ms()).await {
        Ok(counts) => {
            metrics::gauge!("wa_conversations", "mode" => "human").set(counts.paused as f64);
            metrics::gauge!("wa_conversations_waiting").set(counts.waiting as f64);
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot count paused conversations"),
    }
    match state.store.outbox_counts().await {
        Ok(counts) => {
            // Sent and cancelled rows are history, not work: no gauge.
            let watched =
                SendState::ALL.into_iter().filter(|state| !matches!(state, SendState::Sent | SendState::Cancelled));
            for waiting in watched {
                let count = counts.iter().find(|(state, _)| *state == waiting).map_or(0, |(_, n)| *n);
                metrics::gauge!("wa_outbox_messages", "state" => waiting.as_str()).set(count as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot count the outbox"),
    }
    crate::telemetry::prometheus().render()
}

pub fn router(state: AppState) -> Router {
    // Installs the recorder before the first request counts anything.
    crate::telemetry::prometheus();
    let webhook_routes = get(webhook::verify_handshake).post(webhook::receive);
    Router::new()
        .route("/webhook/whatsapp", webhook_routes.clone())
        .route("/api/webhooks/whatsapp", webhook_routes)
        .route("/webhook/whatsapp/{secret}", post(webhook::receive_at_secret_path))
        .route("/webhook/fonnte/{secret}", post(fonnte::receive))
        .route("/webhook/waha", post(waha::receive))
        .route("/api/admin/whatsapp/qr", get(waha::qr))
        .route("/api/admin/whatsapp/session/{action}", post(waha::session))
        .route("/health", get(|| async { "ok" }))
        .merge(shed::bounded(
            Router::new()
                .route("/ready", get(status::ready))
                .route("/api/whatsapp/status", get(status::status))
                .route("/metrics", get(render_metrics)),
        ))
        .route("/api/whatsapp/stats", get(status::stats))
        .route("/api/whatsapp/refresh-kb", post(knowledge::refresh))
        .route("/api/admin/conversations", get(operations::conversations))
        .route("/api/admin/conversations/{id}", get(operations::transcript))
        .route("/api/admin/media/{message_id}", get(media::file))
        .route("/api/admin/conversations/{id}/messages", post(agent::send))
        .route("/api/admin/conversations/{id}/read", post(inbox::read))
        .route("/api/messages", post(gateway::create).layer(DefaultBodyLimit::max(gateway::MAX_BODY_BYTES)))
        .route("/api/messages/{id}", get(gateway::show))
        .route("/api/messages/{id}/retry", post(gateway::retry))
        .route(
            "/api/whatsapp/send",
            post(gateway::send_compatible).layer(DefaultBodyLimit::max(gateway::MAX_BODY_BYTES)),
        )
        .route(
            "/api/campaigns",
            get(campaigns::list).post(campaigns::create).layer(DefaultBodyLimit::max(campaigns::MAX_BODY_BYTES)),
        )
        .route("/api/campaigns/{id}", get(campaigns::show))
        .route("/api/campaigns/{id}/recipients", get(campaigns::report))
        .route("/api/campaigns/{id}/{action}", post(campaigns::act))
        .route("/api/templates", get(templates::list).post(templates::submit))
        .route("/api/templates/refresh", post(templates::refresh))
        .route("/api/templates/{name}", get(templates::show))
        .route("/api/admin/inbox", get(inbox::list))
        .route("/api/admin/inbox/events", get(inbox::events))
        .route("/api/admin/conversations/{id}/pause", post(handoff::pause))
        .route("/api/admin/conversations/{id}/resume", post(handoff::resume))
        .route("/api/admin/activity", get(operations::activity))
        .route("/api/admin/errors", get(operations::errors))
        .route("/api/admin/outbox", get(outbox::undelivered))
        .route("/api/admin/outbox/{id}", get(outbox::message))
        .route("/api/admin/outbox/{id}/retry", post(outbox::retry))
        .route("/api/admin/unanswered", get(unanswered::list))
        .route("/api/admin/unanswered/dismiss", post(unanswered::dismiss))
        .route("/api/admin/contacts", get(contacts::list).post(contacts::save))
        .route("/api/admin/contacts/import", post(contacts::import))
        .route("/api/admin/contacts/export", get(contacts::export))
        .route("/api/admin/contacts/{id}", get(contacts::show))
        .route("/api/admin/contacts/{id}/consent", post(contacts::set_consent))
        .route("/", get(pages::chat))
        .route("/admin", get(pages::admin))
        .route("/assets/{name}", get(pages::asset))
        .route("/api/chat/config", get(chat::config))
        .route("/api/chat/conversations", post(chat::start))
        .route("/api/chat/messages", post(chat::send))
        .route(
            "/api/chat/media",
            post(chat::upload).layer(DefaultBodyLimit::max(crate::channels::web::MAX_UPLOAD_BYTES)),
        )
        .route("/api/chat/events", get(chat::events))
        .route("/api/chat/history", get(chat::history))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
