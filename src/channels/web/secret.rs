//! The secret that makes a web chat conversation its browser's own. The
//! server makes it up when the conversation starts, hands it over once and
//! keeps only its SHA-256 (the [`ConversationKey`]): 256 random bits need
//! no slow hash, and looking a conversation up by the hash of what the
//! browser sends compares nothing secret in variable time.

use super::WebChatError;
use crate::domain::ConversationKey;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

pub struct ConversationSecret(String);

impl ConversationSecret {
    pub fn generate() -> Self {
        // ThreadRng is a CSPRNG reseeded from the operating system.
        Self(hex::encode(rand::random::<[u8; 32]>()))
    }

    /// The secret of `Authorization: Bearer …`; never in a URL, where
    /// proxies and access logs would keep it.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, WebChatError> {
        let secret = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(WebChatError::NoSecret)?;
        Ok(Self(secret.to_ascii_lowercase()))
    }

    /// Handed to the browser once, when the conversation starts.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> ConversationKey {
        ConversationKey::from_digest(Sha256::digest(self.0.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn secrets_are_random_and_read_back_from_the_header() {
        let secret = ConversationSecret::generate();
        assert_ne!(secret.expose(), ConversationSecret::generate().expose());
        let read = ConversationSecret::from_headers(&bearer(&format!("Bearer {}", secret.expose()))).unwrap();
        assert_eq!(read.key(), secret.key());
        assert_ne!(read.key().expose(), secret.expose(), "only the hash is kept");
        for bad in ["Bearer short", "Basic abc", &format!("Bearer {}", "g".repeat(64))] {
            assert!(matches!(ConversationSecret::from_headers(&bearer(bad)), Err(WebChatError::NoSecret)), "{bad}");
        }
        assert!(ConversationSecret::from_headers(&HeaderMap::new()).is_err());
    }
}
