use super::{mask_middle, DomainError};
use std::fmt;

/// A business-scoped user id (`US.13491208655302741918`, or a parent id such
/// as `US.ENT.11815799212886844830`): Meta's stable handle for a person, the
/// only one we get for people who hide their number behind a username.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bsuid(String);

impl Bsuid {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let mut parts = raw.split('.');
        let country = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let valid = country.len() == 2
            && country.bytes().all(|b| b.is_ascii_uppercase())
            && !rest.is_empty()
            && rest.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
            && raw.len() <= 160;
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::Bsuid)
        }
    }

    /// The full id, for the database and the Graph API only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_middle(&self.0, 5, 3)
    }
}

impl fmt::Display for Bsuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Bsuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bsuid({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_parent_ids() {
        assert!(Bsuid::parse("US.13491208655302741918").is_ok());
        assert!(Bsuid::parse("US.ENT.11815799212886844830").is_ok());
        assert!(Bsuid::parse("BR.1502576394655843").is_ok());
    }

    #[test]
    fn rejects_phone_numbers_and_junk() {
        for bad in ["", "6281234567789", "us.123", "USA.123", "US.", "US..1", "US.12 3"] {
            assert_eq!(Bsuid::parse(bad), Err(DomainError::Bsuid), "{bad}");
        }
    }

    #[test]
    fn display_masks() {
        let id = Bsuid::parse("US.13491208655302741918").unwrap();
        assert_eq!(id.to_string(), "US.13***************918");
    }
}
