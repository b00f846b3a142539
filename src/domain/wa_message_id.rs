use super::DomainError;
use std::fmt;

/// The id WhatsApp gives a message (`wamid.…`): the key that makes
/// redelivered webhooks harmless.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct WaMessageId(String);

impl WaMessageId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid = !raw.is_empty() && raw.len() <= 512 && !raw.chars().any(char::is_control);
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::WaMessageId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WaMessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ids_and_rejects_empty_or_control_characters() {
        assert!(WaMessageId::parse("wamid.HBgNNjI4MTIzNDU2Nzg5FQIAERgSQTE=").is_ok());
        assert_eq!(WaMessageId::parse(""), Err(DomainError::WaMessageId));
        assert_eq!(WaMessageId::parse("wamid.\n1"), Err(DomainError::WaMessageId));
        assert_eq!(WaMessageId::parse(&"x".repeat(513)), Err(DomainError::WaMessageId));
    }
}
