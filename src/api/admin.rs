//! Who a request speaks for: `Authorization: Bearer <token>` with the admin
//! token (`ADMIN_API_TOKEN`), an agent's (`ADMIN_AGENTS`) or an
//! application's (`API_TOKENS_FILE`, with scopes). Every known token is
//! compared, always all of them and in constant time, so response timing
//! reveals neither a token nor whose it is. Without any token the
//! endpoints are off.

use super::AppState;
use crate::config::{Scope, Settings};
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
    #[error("this token may not {0}")]
    Forbidden(&'static str),
}

/// Who a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// The admin token or an agent's.
    Staff(Actor),
    /// An application's token, by its place in `Settings::api_tokens`.
    App(usize),
}

fn any_token(settings: &Settings) -> bool {
    settings.admin_token.is_some() || !settings.agents.is_empty() || !settings.api_tokens.is_empty()
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let settings = &state.settings;
        if !any_token(settings) {
            return Err(AdminError::Disabled);
        }
        let presented = bearer(parts).ok_or(AdminError::Unauthorized)?;
        match identify(presented, settings).ok_or(AdminError::Unauthorized)? {
            Caller::Staff(agent) => Ok(Admin { agent }),
            // An application with the admin scope may do what the admin token does.
            Caller::App(index) if settings.api_tokens[index].allows(Scope::Admin) => {
                Ok(Admin { agent: Actor::admin() })
            }
            Caller::App(_) => Err(AdminError::Forbidden("use the admin endpoints (it lacks the admin scope)")),
        }
    }
}

/// Proof that the request may send messages: the admin token, or an
/// application's token with the `send` scope. Agents write from the admin
/// page, not through the send API.
pub struct Sender {
    /// Recorded with every message it sends: `admin` or the token's name.
    pub name: String,
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let settings = &state.settings;
        if !any_token(settings) {
            return Err(AdminError::Disabled);
        }
        let presented = bearer(parts).ok_or(AdminError::Unauthorized)?;
        match identify(presented, settings).ok_or(AdminError::Unauthorized)? {
            Caller::Staff(agent) if agent == Actor::admin() => Ok(Sender { name: agent.as_str().to_owned() }),
            Caller::App(index) if settings.api_tokens[index].allows(Scope::Send) => {
                Ok(Sender { name: settings.api_tokens[index].name.clone() })
            }
            _ => Err(AdminError::Forbidden("send messages (it lacks the send scope)")),
        }
    }
}

/// The name behind `presented`. Digests are compared rather than the tokens
/// themselves, so their lengths take no part in the timing either.
/// Applications' tokens are kept only as digests, which is what makes this
/// possible for them at all.
fn identify(presented: &str, settings: &Settings) -> Option<Caller> {
    let presented = Sha256::digest(presented.as_bytes());
    let digest = |token: &secrecy::SecretString| <[u8; 32]>::from(Sha256::digest(token.expose_secret().as_bytes()));
    let admin = settings.admin_token.iter().map(|token| (Caller::Staff(Actor::admin()), digest(token)));
    let agents = settings.agents.iter().map(|agent| (Caller::Staff(agent.name.clone()), digest(&agent.token)));
    let apps = settings.api_tokens.iter().enumerate().map(|(index, token)| (Caller::App(index), token.sha256));
    let known: Vec<(Caller, [u8; 32])> = admin.chain(agents).chain(apps).collect();
    // 1 + the index of the token that matched; 0 for none.
    let mut matched = 0u32;
    for (index, (_, known_digest)) in known.iter().enumerate() {
        let same: Choice = presented.as_slice().ct_eq(known_digest.as_slice());
        matched.conditional_assign(&(index as u32 + 1), same);
    }
    let index = (matched as usize).checked_sub(1)?;
    known.into_iter().nth(index).map(|(caller, _)| caller)
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
        let who = |token| match identify(token, &settings) {
            Some(Caller::Staff(actor)) => Some(actor.as_str().to_owned()),
            _ => None,
        };
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
        assert_eq!(identify("sari-token-0123456789", &settings), Some(Caller::Staff(Actor::new("Sari").unwrap())));
    }
}
