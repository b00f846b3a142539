use super::{mask_middle, DomainError};
use std::fmt;

/// An international phone number as WhatsApp sends it: digits only, country
/// code first, no '+'. `Display` and `Debug` mask it, so a number that slips
/// into a log line or an error message is never shown in full.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let digits = raw.trim().strip_prefix('+').unwrap_or(raw.trim());
        let valid = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if valid {
            Ok(Self(digits.to_owned()))
        } else {
            Err(DomainError::PhoneNumber)
        }
    }

    /// The full number, for the database and the Graph API only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_middle(&self.0, 4, 3)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_whatsapp_numbers_with_or_without_plus() {
        assert_eq!(PhoneNumber::parse("6281234567789").unwrap().expose(), "6281234567789");
        assert_eq!(PhoneNumber::parse("+6281234567789").unwrap().expose(), "6281234567789");
    }

    #[test]
    fn rejects_non_digits_and_wrong_lengths() {
        for bad in ["", "+", "12345", "1234567890123456", "62812abc789", "62 812 345 678", "US.1349"] {
            assert_eq!(PhoneNumber::parse(bad), Err(DomainError::PhoneNumber), "{bad}");
        }
    }

    #[test]
    fn display_and_debug_never_show_the_full_number() {
        let phone = PhoneNumber::parse("6281234567789").unwrap();
        assert_eq!(phone.to_string(), "6281******789");
        assert!(!format!("{phone:?}").contains("6281234567789"));
    }
}
