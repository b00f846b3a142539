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
        let presented = bearer(parts).ok_or(AdminError::Unauthorized)?;
        let matches: bool = presented.as_bytes().ct_eq(expected.expose_secret().as_bytes()).into();
        if matches {
            Ok(Admin)
        } else {
            Err(AdminError::Unauthorized)
        }
    }
}

/// For endpoints that answer everyone but show admins more: no token is a
/// visitor, the right token an admin, and any other token is refused so a
/// mistyped token does not pass silently as a visitor.
pub struct MaybeAdmin(pub bool);

impl FromRequestParts<AppState> for MaybeAdmin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if bearer(parts).is_none() {
            return Ok(MaybeAdmin(false));
        }
        Admin::from_request_parts(parts, state).await.map(|_| MaybeAdmin(true))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}
