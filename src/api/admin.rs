//! Access to the admin endpoints: `Authorization: Bearer <ADMIN_API_TOKEN>`,
//! compared in constant time so response timing reveals nothing about the
//! token. Without a configured token the endpoints are off.

use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

/// Proof that the request carried the admin token.
pub struct Admin;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin endpoints are disabled: set ADMIN_API_TOKEN to enable them")]
    Disabled,
    #[error("missing or wrong admin token (Authorization: Bearer <ADMIN_API_TOKEN>)")]
    Unauthorized,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = state.settings.admin_token.as_ref().ok_or(AdminError::Disabled)?;
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AdminError::Unauthorized)?;
        let matches: bool = presented.as_bytes().ct_eq(expected.expose_secret().as_bytes()).into();
        if matches {
            Ok(Admin)
        } else {
            Err(AdminError::Unauthorized)
        }
    }
}
