use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("X-Hub-Signature-256 header is not sha256=<hex>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks Meta's `sha256=<hex HMAC-SHA256 of the raw body>` over the exact
/// bytes received. `verify_slice` compares in constant time.
pub fn verify(app_secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The header value Meta would send for `body`; used by tests and benches.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_own_signature_and_nothing_else() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let header = sign(b"secret", body);
        assert_eq!(verify(b"secret", Some(&header), body), Ok(()));
        assert_eq!(verify(b"other", Some(&header), body), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", Some(&header), b"{}"), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", None, body), Err(SignatureError::Missing));
        assert_eq!(verify(b"secret", Some("sha1=abc"), body), Err(SignatureError::Malformed));
        assert_eq!(verify(b"secret", Some("sha256=zz"), body), Err(SignatureError::Malformed));
        assert_eq!(verify(b"secret", Some("sha256=abcd"), body), Err(SignatureError::Mismatch));
    }
}
