use super::DomainError;

/// Which of the business's WhatsApp numbers a person wrote to. The number
/// set up by the single-account environment variables is the default
/// account, stored as `''` so databases from before several numbers keep
/// their people; `CHANNELS_FILE` names the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

impl AccountName {
    /// How the default account is shown, and why no file may use the name.
    pub const DEFAULT_LABEL: &'static str = "default";
    const MAX_LEN: usize = 32;

    /// A name from `CHANNELS_FILE`: 1 to 32 of `a-z`, `0-9`, `_`, `-`, so it
    /// can sit in metric labels, URLs and usernames as it is.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.bytes().all(allowed) || raw == Self::DEFAULT_LABEL {
            return Err(DomainError::AccountName);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Reads the `account` column back: `''` is the default account.
    pub fn from_stored(stored: &str) -> Result<Self, DomainError> {
        if stored.is_empty() {
            Ok(Self::default())
        } else {
            Self::parse(stored)
        }
    }

    /// Reads what an operator typed or a page sent: the label `default`
    /// included.
    pub fn from_label(label: &str) -> Result<Self, DomainError> {
        if label == Self::DEFAULT_LABEL {
            Ok(Self::default())
        } else {
            Self::parse(label)
        }
    }

    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of the `account` column.
    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// The name shown in status, metrics and the admin page.
    pub fn label(&self) -> &str {
        if self.is_default() {
            Self::DEFAULT_LABEL
        } else {
            &self.0
        }
    }
}

impl std::fmt::Display for AccountName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_labels_urls_and_usernames() {
        assert_eq!(AccountName::parse("billing-2").unwrap().label(), "billing-2");
        for bad in ["", "Billing", "toko jaya", "a/b", "default", &"x".repeat(33)] {
            assert_eq!(AccountName::parse(bad), Err(DomainError::AccountName), "{bad:?}");
        }
    }

    #[test]
    fn the_default_account_is_stored_empty_and_shown_by_its_label() {
        let default = AccountName::from_stored("").unwrap();
        assert!(default.is_default());
        assert_eq!((default.as_stored(), default.label()), ("", "default"));
        assert_eq!(AccountName::from_label("default").unwrap(), default);
        assert_eq!(AccountName::from_stored("cs").unwrap().as_stored(), "cs");
    }
}
