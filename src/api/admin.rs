//! Access to the admin endpoints: `Authorization: Bearer <token>` with the
//! admin token (`ADMIN_API_TOKEN`) or an agent's (`ADMIN_AGENTS`). Every
//! known token is compared, always all of them and in constant time, so
//! response timing reveals neither a token nor whose it is. Without any
//! token the endpoints are off.

use super::AppState;
use crate::config::Settings;
use crate::handoff::Actor;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// Proof that the request carried the admin token or an agent's.
pub struct Admin {
    /// The agent's name (`ADMIN_AGENTS`), or `admin` for the admin token.
    pub agent: Actor,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin endpoints are disabled: set ADMIN_API_TOKEN to enable them")]
    Disabled,
    #[error("missing or wrong admin token (Authorization: Bearer <ADMIN_API_TOKEN or an ADMIN_AGENTS token>)")]
    Unauthorized,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let settings = &state.settings;
        if settings.admin_token.is_none() && settings.agents.is_empty() {
            return Err(AdminError::Disabled);
        }
        let presented = bearer(parts).ok_or(AdminError::Unauthorized)?;
        identify(presented, settings).map(|agent| Admin { agent }).ok_or(AdminError::Unauthorized)
    }
}

/// The name behind `presented`. Digests are compared rather than the tokens
/// themselves, so their lengths take no part in the timing either.
fn identify(presented: &str, settings: &Settings) -> Option<Actor> {
    let presented = Sha256::digest(presented.as_bytes());
    let admin = settings.admin_token.iter().map(|token| (Actor::admin(), token));
    let agents = settings.agents.iter().map(|agent| (agent.name.clone(), &agent.token));
    let known: Vec<(Actor, _)> = admin.chain(agents).collect();
    // 1 + the index of the token that matched; 0 for none.
    let mut matched = 0u32;
    for (index, (_, token)) in known.iter().enumerate() {
        let same: Choice = presented.as_slice().ct_eq(Sha256::digest(token.expose_secret().as_bytes()).as_slice());
        matched.conditional_assign(&(index as u32 + 1), same);
    }
    let index = (matched as usize).checked_sub(1)?;
    known.into_iter().nth(index).map(|(name, _)| name)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: std::collections::HashMap<_, _> = pairs.iter().copied().collect();
        Settings::from_lookup(|key| map.get(key).map(|v| v.to_string())).unwrap()
    }

    #[test]
    fn each_token_speaks_for_its_agent_and_the_admin_token_for_admin() {
        let settings = settings(&[
            ("ADMIN_API_TOKEN", "the-admin-token-0123456789"),
            ("ADMIN_AGENTS", "Sari:sari-token-0123456789, Budi Santoso:budi-token-0123456789"),
        ]);
        let who = |token| identify(token, &settings).map(|actor| actor.as_str().to_owned());
        assert_eq!(who("the-admin-token-0123456789").as_deref(), Some("admin"));
        assert_eq!(who("sari-token-0123456789").as_deref(), Some("Sari"));
        assert_eq!(who("budi-token-0123456789").as_deref(), Some("Budi Santoso"));
        for wrong in ["", "sari-token-012345678", "sari-token-0123456789x", "Sari"] {
            assert_eq!(who(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn agents_work_without_an_admin_token() {
        let settings = settings(&[("ADMIN_AGENTS", "Sari:sari-token-0123456789")]);
        assert_eq!(identify("sari-token-0123456789", &settings), Some(Actor::new("Sari").unwrap()));
    }
}
