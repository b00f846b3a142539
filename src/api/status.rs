//! `GET /api/whatsapp/status` and `GET /ready`: is the bot working, and if
//! not, why. Credentials appear only as booleans; numbers only masked.

use super::admin::{Admin, MaybeAdmin};
use super::AppState;
use crate::config::{Account, WhatsAppProvider};
use crate::domain::AccountName;
use crate::incidents::IncidentKind;
use crate::store::Backend;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub async fn status(MaybeAdmin(admin): MaybeAdmin, State(state): State<AppState>) -> Json<Value> {
    let settings = &state.settings;
    // The top-level fields describe the first number, as they did before
    // there could be several; `whatsapp.accounts` lists them all.
    let first = &settings.accounts[0];
    let wa = &first.whatsapp;
    let webhook = json!({
        "accessToken": wa.access_token.is_some(),
        "phoneNumberId": wa.phone_number_id.is_some(),
        "verifyToken": wa.verify_token.is_some(),
        "appSecret": wa.app_secret.is_some(),
        "settings": provider_settings(first),
        "isConfigured": whatsapp_configured(first),
    });
    let knowledge_loaded = state.knowledge.is_loaded();
    let ai = json!({
        "openRouterApiKey": settings.llm.api_key.is_some(),
        // The database is always there: SQLite when DATABASE_URL is unset.
        "databaseUrl": true,
        "knowledgeBaseLoaded": knowledge_loaded,
        "isConfigured": settings.llm.api_key.is_some() && knowledge_loaded,
    });
    let (database_healthy, sessions) = match state.store.active_conversations().await {
        Ok((count, listed)) => {
            let sessions: Vec<Value> = listed
                .iter()
                .map(|c| {
                    json!({
                        "phone": c.person.masked(),
                        "channel": c.person.channel().as_str(),
                        "messageCount": c.messages,
                        "bufferedMessages": c.buffered,
                        "answering": c.answering,
                        "lastActivity": c.last_activity_ms,
                    })
                })
                .collect();
            (true, json!({ "activeSessions": count, "sessions": sessions }))
        }
        Err(error) => {
            tracing::error!(%error, "status: cannot read conversations");
            (false, json!({ "activeSessions": 0, "sessions": [] }))
        }
    };
    let fully = whatsapp_configured(first) && ai["isConfigured"] == true;
    let mut view = json!({
        "webhook": webhook,
        "ai": ai,
        "sessions": sessions,
        "isFullyConfigured": fully,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "database": { "backend": backend_name(state.store.backend()), "healthy": database_healthy },
        "knowledgeBase": knowledge(&state, admin),
        "llm": {
            "model": settings.llm.model,
            "fallbackModels": settings.llm.fallback_models,
            "lastError": state.incidents.last(IncidentKind::Llm),
        },
        "outbox": outbox(&state).await,
        "whatsapp": {
            "provider": first.provider.as_str(),
            "connection": connection(&state, &first.name, admin).await,
            "accounts": accounts(&state, admin).await,
            "lastSendError": state.incidents.last(IncidentKind::Send),
            "webhookLastSeen": state.incidents.webhook_last_seen(),
        },
        "webChat": { "enabled": settings.web_chat_enabled, "openWindows": state.webchat.open_windows() },
        "limits": limits(&state).await,
        "buffer": {
            "quietSeconds": settings.buffer.quiet.as_secs_f64(),
            "maxWaitSeconds": settings.buffer.max_wait.as_secs_f64(),
            "timersInThisProcess": state.pipeline.debouncer().len(),
        },
        "admin": admin,
    });
    if admin {
        view["inbox"] = inbox(&state).await;
    }
    Json(view)
}

/// The provider's word on the number; its details (quota, the number
/// itself) only for the admin.
async fn connection(state: &AppState, account: &AccountName, admin: bool) -> Value {
    let Some(channel) = state.channels.whatsapp().find(|(name, _)| *name == account).map(|(_, channel)| channel) else {
        return Value::Null;
    };
    let Some(connection) = channel.connection().await else { return Value::Null };
    let mut view = json!({
        "provider": connection.provider,
        "state": connection.state.as_str(),
        "checkedAt": connection.checked_at_ms,
    });
    if admin {
        view["detail"] = connection.detail;
    }
    view
}

/// Every number the server answers on, with its provider's word on it
/// and, for the admin, the settings it needs.
async fn accounts(state: &AppState, admin: bool) -> Value {
    let mut listed = Vec::with_capacity(state.settings.accounts.len());
    for account in &state.settings.accounts {
        let mut view = json!({
            "name": account.name.label(),
            "provider": account.provider.as_str(),
            "isConfigured": whatsapp_configured(account),
            "connection": connection(state, &account.name, admin).await,
            "ownKnowledge": account.knowledge_dir.is_some(),
            "ownSystemPrompt": account.system_prompt.is_some(),
        });
        if admin {
            view["settings"] = provider_settings(account);
        }
        listed.push(view);
    }
    Value::Array(listed)
}

/// Conversations waiting for a person, and paused ones: the agents' queue.
async fn inbox(state: &AppState) -> Value {
    match state.store.inbox_counts(crate::domain::now_ms()).await {
        Ok(counts) => json!({ "waiting": counts.waiting, "paused": counts.paused }),
        Err(error) => {
            tracing::error!(%error, "status: cannot count the inbox");
            Value::Null
        }
    }
}

/// Messages on their way out, by state: counts only, no one's data.
async fn outbox(state: &AppState) -> Value {
    match state.store.outbox_counts().await {
        Ok(counts) => counts.iter().map(|(state, n)| (state.as_str().to_owned(), json!(n))).collect(),
        Err(error) => {
            tracing::error!(%error, "status: cannot count the outbox");
            Value::Null
        }
    }
}

fn knowledge(state: &AppState, admin: bool) -> Value {
    let mut view = json!({ "loaded": state.knowledge.is_loaded(), "refreshing": state.knowledge.is_refreshing() });
    if let Some(summary) = state.knowledge.summary() {
        let report = &summary.report;
        view["documents"] = json!(report.files);
        view["pages"] = json!(report.pages);
        view["chunks"] = json!(summary.passages);
        view["builtAt"] = json!(summary.built_at_ms);
        view["skippedFiles"] = json!(report.skipped.len());
        if admin {
            view["skipped"] = json!(report.skipped);
            view["files"] = json!(report.documents);
            view["eval"] = json!(report.eval);
        }
    }
    view
}

/// What one person may cost, and how much of today's token budget is spent.
async fn limits(state: &AppState) -> Value {
    let (settings, pipeline) = (&state.settings, &state.pipeline);
    let limits = pipeline.limits().settings();
    json!({
        "maxTurnsPerHour": limits.turns_per_hour,
        "maxTurnChars": limits.turn_chars,
        "historyChars": limits.history_chars,
        "llmMaxTokens": settings.llm.max_tokens,
        "llmMaxConcurrent": settings.llm.max_concurrent,
        "llmQueued": pipeline.llm().queued(),
        "budget": pipeline.limits().budget_status(crate::domain::now_ms()).await,
    })
}

/// The settings the chosen provider needs, by name, and whether each is
/// set (never a value), for the admin page's configuration card.
fn provider_settings(account: &Account) -> Value {
    let wa = &account.whatsapp;
    let compatible = wa.auth_header.is_some();
    let (fonnte, waha) = (&account.fonnte, &account.waha);
    let named: Vec<(&str, bool)> = match account.provider {
        WhatsAppProvider::CloudApi if compatible => vec![
            ("META_ACCESS_TOKEN", wa.access_token.is_some()),
            ("WHATSAPP_AUTH_HEADER", true),
            ("WHATSAPP_WEBHOOK_SECRET", wa.webhook_secret.is_some()),
        ],
        WhatsAppProvider::CloudApi => vec![
            ("META_ACCESS_TOKEN", wa.access_token.is_some()),
            ("META_PHONE_NUMBER_ID", wa.phone_number_id.is_some()),
            ("META_WEBHOOK_VERIFY_TOKEN", wa.verify_token.is_some()),
            ("META_APP_SECRET", wa.app_secret.is_some()),
        ],
        WhatsAppProvider::Fonnte => vec![
            ("FONNTE_TOKEN", fonnte.token.is_some()),
            ("FONNTE_WEBHOOK_SECRET", fonnte.webhook_secret.is_some()),
            ("FONNTE_ALLOWED_IPS", !fonnte.allowed_sources.is_empty()),
        ],
        WhatsAppProvider::Waha => vec![
            ("WAHA_URL", waha.url.is_some()),
            ("WAHA_API_KEY", waha.api_key.is_some()),
            ("WAHA_WEBHOOK_HMAC_KEY", waha.webhook_hmac_key.is_some()),
        ],
    };
    named.into_iter().map(|(name, set)| json!({ "name": name, "set": set })).collect()
}

fn whatsapp_configured(account: &Account) -> bool {
    let wa = &account.whatsapp;
    let (fonnte, waha) = (&account.fonnte, &account.waha);
    match account.provider {
        // A Cloud-API-compatible provider puts the number in its key.
        WhatsAppProvider::CloudApi => {
            wa.access_token.is_some()
                && (wa.phone_number_id.is_some() || wa.auth_header.is_some())
                && (wa.app_secret.is_some() && wa.verify_token.is_some() || wa.webhook_secret.is_some())
        }
        WhatsAppProvider::Fonnte => fonnte.token.is_some() && fonnte.webhook_secret.is_some(),
        WhatsAppProvider::Waha => waha.url.is_some(),
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// 200 when this replica can do its job: the database answers, the
/// knowledge index is loaded or being built, and the credentials needed to
/// receive, answer and send are set. Otherwise 503 with the reasons.
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(error) = state.store.ping().await {
        tracing::error!(%error, "readiness: database unreachable");
        problems.push("database unreachable".to_owned());
    }
    if !state.knowledge.is_loaded() && !state.knowledge.is_refreshing() {
        problems.push("knowledge index neither loaded nor building".to_owned());
    }
    problems.extend(
        state
            .settings
            .missing_credentials()
            .into_iter()
            .map(|missing| format!("not configured: {}", missing.split(':').next().unwrap_or(missing))),
    );
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false, "problems": problems }))).into_response()
    }
}

#[derive(serde::Deserialize)]
pub struct StatsWindow {
    days: Option<i64>,
}

/// `GET /api/whatsapp/stats?days=N` (admin): activity over the last N days
/// (default 14, at most 366).
pub async fn stats(
    _: Admin,
    State(state): State<AppState>,
    Query(window): Query<StatsWindow>,
) -> Result<Json<crate::store::Stats>, StatusCode> {
    let days = window.days.unwrap_or(14).clamp(1, 366);
    state.store.stats(days, crate::domain::now_ms()).await.map(Json).map_err(|error| {
        tracing::error!(%error, "stats query failed");
        StatusCode::INTERNAL_SERVER_ERROR
    })
}
