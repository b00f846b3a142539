use crate::webhook::WebhookError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebhookError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
            WebhookError::Payload(_) => StatusCode::BAD_REQUEST,
            WebhookError::VerificationRefused => StatusCode::FORBIDDEN,
            WebhookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let outcome = match &self {
            WebhookError::NotConfigured => "not_configured",
            WebhookError::Signature(_) => "bad_signature",
            WebhookError::Payload(_) => "malformed",
            WebhookError::VerificationRefused => "handshake_refused",
            WebhookError::Store(_) => "store_error",
        };
        metrics::counter!("wa_webhooks_total", "outcome" => outcome).increment(1);
        if status.is_server_error() {
            tracing::error!(error = %self, "webhook failed");
        } else {
            tracing::warn!(error = %self, "webhook refused");
        }
        // Database details stay in the log; callers only learn the category.
        let message = match &self {
            WebhookError::Store(_) => "could not store the webhook, please retry".to_owned(),
            other => other.to_string(),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
