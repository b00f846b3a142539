use super::{mask_middle, DomainError};
use std::fmt;

/// Names one web chat conversation: the hex SHA-256 of the secret the
/// browser holds. It is what the database keeps (`users.address`), so a
/// leaked database names conversations without opening them; `Display` and
/// `Debug` mask it all the same, as logs need no more than a hint.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey(String);

impl ConversationKey {
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    /// Reads a stored key; anything else (such as a number stored by an
    /// older version, when the number named the conversation) is refused.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid = raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::ConversationKey)
        }
    }

    /// The full key, for the database and the event relay only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        format!("web:{}", mask_middle(&self.0[..12], 4, 0))
    }
}

impl fmt::Display for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConversationKey({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_masks() {
        let key = ConversationKey::from_digest([0xab; 32]);
        assert_eq!(ConversationKey::parse(key.expose()), Ok(key.clone()));
        assert_eq!(key.masked(), "web:abab********");
        assert!(!format!("{key} {key:?}").contains(&key.expose()[..13]));
    }

    #[test]
    fn refuses_numbers_and_other_shapes() {
        for bad in ["6281234567890", "", &"A".repeat(64), &"a".repeat(63)] {
            assert_eq!(ConversationKey::parse(bad), Err(DomainError::ConversationKey), "{bad}");
        }
    }
}
