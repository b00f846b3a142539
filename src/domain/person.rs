use super::{Bsuid, ChannelKind, DomainError, PhoneNumber};

/// Who wrote a message, as far as the channel tells us: a phone number, a
/// business-scoped user id (WhatsApp only), or both. At least one is always
/// present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRef {
    channel: ChannelKind,
    phone: Option<PhoneNumber>,
    bsuid: Option<Bsuid>,
    pub parent_bsuid: Option<Bsuid>,
    pub profile_name: Option<String>,
}

impl PersonRef {
    pub fn new(phone: Option<PhoneNumber>, bsuid: Option<Bsuid>) -> Result<Self, DomainError> {
        if phone.is_none() && bsuid.is_none() {
            return Err(DomainError::NoIdentity);
        }
        Ok(Self { channel: ChannelKind::WhatsApp, phone, bsuid, parent_bsuid: None, profile_name: None })
    }

    /// A customer in the web chat, known by the number they typed.
    pub fn web(phone: PhoneNumber) -> Self {
        Self { channel: ChannelKind::Web, phone: Some(phone), bsuid: None, parent_bsuid: None, profile_name: None }
    }

    pub fn channel(&self) -> ChannelKind {
        self.channel
    }

    pub fn phone(&self) -> Option<&PhoneNumber> {
        self.phone.as_ref()
    }

    pub fn bsuid(&self) -> Option<&Bsuid> {
        self.bsuid.as_ref()
    }

    /// A masked label for logs and public views.
    pub fn masked(&self) -> String {
        self.phone
            .as_ref()
            .map(PhoneNumber::masked)
            .or_else(|| self.bsuid.as_ref().map(Bsuid::masked))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_at_least_one_identity() {
        assert_eq!(PersonRef::new(None, None), Err(DomainError::NoIdentity));
        let bsuid_only = PersonRef::new(None, Some(Bsuid::parse("US.1349").unwrap())).unwrap();
        assert_eq!(bsuid_only.masked(), "US.1349".chars().map(|_| '*').collect::<String>());
    }
}
