use super::admin::AdminError;
use super::agent::{self, AgentError};
use super::contacts::ContactsApiError;
use super::fonnte::FonnteWebhookError;
use super::gateway::{self, GatewayError};
use super::handoff::HandoffRequestError;
use super::inbox::InboxError;
use super::knowledge::RefreshFailed;
use super::operations::OperationsError;
use super::shed::Overloaded;
use super::waha::WahaApiError;
use super::webhook::WebhookError;
use crate::channels::web::WebChatError;
use crate::domain::MediaError;
use crate::knowledge::KnowledgeError;
use crate::templates::TemplateError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let (status, outcome) = match &self {
            WebhookError::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            WebhookError::Signature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            WebhookError::Payload(_) => (StatusCode::BAD_REQUEST, "malformed"),
            WebhookError::VerificationRefused => (StatusCode::FORBIDDEN, "handshake_refused"),
            WebhookError::UnknownPath => (StatusCode::NOT_FOUND, "unknown_path"),
            WebhookError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        };
        webhook_refusal("cloud_api", status, outcome, &self)
    }
}

impl IntoResponse for FonnteWebhookError {
    fn into_response(self) -> Response {
        let (status, outcome) = match &self {
            // A wrong secret must look like a route that does not exist.
            FonnteWebhookError::UnknownPath => (StatusCode::NOT_FOUND, "unknown_path"),
            FonnteWebhookError::Source => (StatusCode::FORBIDDEN, "source_refused"),
            FonnteWebhookError::Payload(_) => (StatusCode::BAD_REQUEST, "malformed"),
            FonnteWebhookError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        };
        webhook_refusal("fonnte", status, outcome, &self)
    }
}

impl IntoResponse for WahaApiError {
    fn into_response(self) -> Response {
        let (status, outcome) = match &self {
            WahaApiError::NotConfigured => (StatusCode::NOT_FOUND, "not_configured"),
            WahaApiError::Signature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            WahaApiError::Payload(_) => (StatusCode::BAD_REQUEST, "malformed"),
            WahaApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
            WahaApiError::AdminOnly => (StatusCode::FORBIDDEN, "admin_only"),
            WahaApiError::UnknownAction => (StatusCode::NOT_FOUND, "unknown_action"),
            WahaApiError::Waha(_) => (StatusCode::BAD_GATEWAY, "waha_error"),
        };
        if matches!(self, WahaApiError::AdminOnly | WahaApiError::UnknownAction | WahaApiError::Waha(_)) {
            tracing::warn!(error = %self, "WAHA session control refused or failed");
            return (status, Json(json!({ "error": self.to_string() }))).into_response();
        }
        webhook_refusal("waha", status, outcome, &self)
    }
}

/// Every provider's webhook refusals alike: counted by provider and
/// outcome, logged by severity, and the sender told only the category
/// (database details stay in the log).
fn webhook_refusal(
    provider: &'static str,
    status: StatusCode,
    outcome: &'static str,
    error: &dyn std::fmt::Display,
) -> Response {
    metrics::counter!("wa_webhooks_total", "outcome" => outcome, "provider" => provider).increment(1);
    let message = if status.is_server_error() {
        tracing::error!(provider, %error, "webhook failed");
        "could not store the webhook, please retry".to_owned()
    } else {
        tracing::warn!(provider, %error, "webhook refused");
        error.to_string()
    };
    (status, Json(json!({ "error": message }))).into_response()
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            AdminError::Disabled => (StatusCode::SERVICE_UNAVAILABLE, "disabled"),
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        };
        metrics::counter!("wa_admin_refused_total", "reason" => reason).increment(1);
        tracing::warn!(error = %self, "admin request refused");
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// A refresh that indexed nothing answers 422 with its report, so the admin
/// sees each file's reason; other failures are the server's (500).
impl IntoResponse for RefreshFailed {
    fn into_response(self) -> Response {
        match self.0.as_ref() {
            KnowledgeError::NothingIndexed(report) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": self.0.to_string(), "report": report })))
                    .into_response()
            }
            other => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": other.to_string() }))).into_response(),
        }
    }
}

impl IntoResponse for WebChatError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebChatError::Disabled => StatusCode::NOT_FOUND,
            WebChatError::Phone(_) | WebChatError::EmptyText | WebChatError::TooLong | WebChatError::ClientId => {
                StatusCode::BAD_REQUEST
            }
            WebChatError::UnsupportedFile => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebChatError::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebChatError::FileStore(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebChatError::NoSecret => StatusCode::UNAUTHORIZED,
            WebChatError::UnknownConversation => StatusCode::NOT_FOUND,
            WebChatError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            WebChatError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        metrics::counter!("wa_webchat_refused_total", "status" => status.as_str().to_owned()).increment(1);
        let message = match &self {
            WebChatError::Store(_) | WebChatError::FileStore(_) => {
                tracing::error!(error = %self, "web chat message not stored");
                "could not store the message, please retry".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if let WebChatError::Busy(refusal) = &self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, refusal.retry_after.as_secs().into());
        }
        response
    }
}

impl IntoResponse for OperationsError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let OperationsError::Store(error) = &self {
            tracing::error!(%error, "admin view failed");
        }
        let message = if status.is_server_error() { "database error".to_owned() } else { self.to_string() };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl IntoResponse for Overloaded {
    fn into_response(self) -> Response {
        metrics::counter!("wa_public_reads_refused_total").increment(1);
        let body = Json(json!({ "error": self.to_string() }));
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], body).into_response()
    }
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        agent::count(self.outcome());
        let status = match &self {
            AgentError::Body(_) | AgentError::EmptyText | AgentError::TooLong | AgentError::Key => {
                StatusCode::BAD_REQUEST
            }
            AgentError::NotFound => StatusCode::NOT_FOUND,
            AgentError::OutsideWindow(_) | AgentError::KeyReused => StatusCode::CONFLICT,
            AgentError::Store(error) => {
                tracing::error!(%error, "agent message not queued");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status.is_server_error() { "database error".to_owned() } else { self.to_string() };
        let mut body = json!({ "error": message, "code": self.outcome() });
        if let AgentError::OutsideWindow(closed_at) = self {
            body["windowOpenUntil"] = json!(closed_at);
        }
        (status, Json(body)).into_response()
    }
}

/// The status and body of a refused send: the reason, its code, and for a
/// closed window when it closed.
pub fn gateway_refusal(error: GatewayError) -> (StatusCode, Value) {
    gateway::count(error.code());
    let status = match &error {
        GatewayError::BodyTooLarge | GatewayError::Media(MediaError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        GatewayError::Body(_)
        | GatewayError::Form(_)
        | GatewayError::Number(_)
        | GatewayError::Shape(_)
        | GatewayError::Media(_)
        | GatewayError::CaptionTooLong
        | GatewayError::EmptyText
        | GatewayError::TooLong
        | GatewayError::Key
        | GatewayError::UnknownAccount(_) => StatusCode::BAD_REQUEST,
        GatewayError::NotFound | GatewayError::NoCampaign => StatusCode::NOT_FOUND,
        GatewayError::Template(error) => template_status(error),
        GatewayError::KeyReused => StatusCode::CONFLICT,
        GatewayError::OutsideWindow(_) | GatewayError::OptedOut => StatusCode::UNPROCESSABLE_ENTITY,
        GatewayError::Store(store) => {
            tracing::error!(error = %store, "send API request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let message =
        if status == StatusCode::INTERNAL_SERVER_ERROR { "database error".to_owned() } else { error.to_string() };
    let mut body = json!({ "error": message, "code": error.code() });
    match error {
        GatewayError::OutsideWindow(closed_at) => body["windowOpenUntil"] = json!(closed_at),
        GatewayError::Template(TemplateError::Invalid(problems)) => body["problems"] = json!(problems),
        _ => {}
    }
    (status, body)
}

fn template_status(error: &TemplateError) -> StatusCode {
    match error {
        TemplateError::Unknown(_) | TemplateError::Language { .. } | TemplateError::Invalid(_) => {
            StatusCode::BAD_REQUEST
        }
        TemplateError::NotApproved { .. } | TemplateError::NoBusinessAccount => StatusCode::UNPROCESSABLE_ENTITY,
        TemplateError::Graph(error) => {
            tracing::warn!(%error, "Graph API refused a template request");
            StatusCode::BAD_GATEWAY
        }
        TemplateError::Store(error) => {
            tracing::error!(%error, "template request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl IntoResponse for TemplateError {
    fn into_response(self) -> Response {
        let status = template_status(&self);
        let message =
            if status == StatusCode::INTERNAL_SERVER_ERROR { "database error".to_owned() } else { self.to_string() };
        let mut body = json!({ "error": message });
        if let TemplateError::Invalid(problems) = self {
            body["problems"] = json!(problems);
        }
        (status, Json(body)).into_response()
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, body) = gateway_refusal(self);
        (status, Json(body)).into_response()
    }
}

impl IntoResponse for HandoffRequestError {
    fn into_response(self) -> Response {
        let status = match &self {
            HandoffRequestError::NotFound => StatusCode::NOT_FOUND,
            HandoffRequestError::Body(_) => StatusCode::BAD_REQUEST,
            HandoffRequestError::Store(error) => {
                tracing::error!(%error, "pause or resume failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status.is_server_error() { "database error".to_owned() } else { self.to_string() };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl IntoResponse for InboxError {
    fn into_response(self) -> Response {
        let status = match &self {
            InboxError::Busy => StatusCode::TOO_MANY_REQUESTS,
            InboxError::NotFound => StatusCode::NOT_FOUND,
            InboxError::Store(error) => {
                tracing::error!(%error, "inbox failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status.is_server_error() { "database error".to_owned() } else { self.to_string() };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if matches!(self, InboxError::Busy) {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

impl IntoResponse for ContactsApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ContactsApiError::UnknownAccount(_)
            | ContactsApiError::Number(_)
            | ContactsApiError::Contact(_)
            | ContactsApiError::Consent
            | ContactsApiError::State
            | ContactsApiError::Note
            | ContactsApiError::NotUtf8
            | ContactsApiError::Import(_)
            | ContactsApiError::TooMany
            | ContactsApiError::Body(_) => StatusCode::BAD_REQUEST,
            ContactsApiError::NotFound => StatusCode::NOT_FOUND,
            ContactsApiError::Store(error) => {
                tracing::error!(%error, "contacts request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status.is_server_error() { "database error".to_owned() } else { self.to_string() };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
