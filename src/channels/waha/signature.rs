//! WAHA's webhook signature: with a session's `hmac.key` set, every event
//! carries `X-Webhook-Hmac` (hex HMAC-SHA512 of the raw body) and
//! `X-Webhook-Hmac-Algorithm: sha512`.

use hmac::{Hmac, Mac};
use sha2::Sha512;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("X-Webhook-Hmac header is missing")]
    Missing,
    #[error("X-Webhook-Hmac is not hex, or X-Webhook-Hmac-Algorithm is not sha512")]
    Malformed,
    #[error("X-Webhook-Hmac does not match the body")]
    Mismatch,
}

/// Checks the signature over the exact bytes received; `verify_slice`
/// compares in constant time. A missing algorithm header is taken as
/// sha512, the only one WAHA uses; any other is refused.
pub fn verify(key: &[u8], hmac: Option<&str>, algorithm: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let hmac = hmac.ok_or(SignatureError::Missing)?;
    if algorithm.is_some_and(|algorithm| !algorithm.trim().eq_ignore_ascii_case("sha512")) {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hmac.trim()).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha512>::new_from_slice(key).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The `X-Webhook-Hmac` value WAHA would send for `body`; used by tests.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_own_signature_and_nothing_else() {
        let body = br#"{"event":"message","session":"default"}"#;
        let good = sign(b"key", body);
        assert_eq!(good.len(), 128, "hex of 64 bytes");
        assert_eq!(verify(b"key", Some(&good), Some("sha512"), body), Ok(()));
        assert_eq!(verify(b"key", Some(&good.to_uppercase()), Some("SHA512"), body), Ok(()));
        assert_eq!(verify(b"key", Some(&good), None, body), Ok(()));
        assert_eq!(verify(b"other", Some(&good), Some("sha512"), body), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"key", Some(&good), Some("sha512"), b"{}"), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"key", None, Some("sha512"), body), Err(SignatureError::Missing));
        assert_eq!(verify(b"key", Some(&good), Some("sha256"), body), Err(SignatureError::Malformed));
        assert_eq!(verify(b"key", Some("zz"), Some("sha512"), body), Err(SignatureError::Malformed));
        assert_eq!(verify(b"key", Some(&good[..64]), Some("sha512"), body), Err(SignatureError::Mismatch));
    }
}
