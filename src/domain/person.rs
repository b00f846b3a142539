use super::{AccountName, Bsuid, ChannelKind, ConversationKey, DomainError, PhoneNumber};

/// Who wrote a message, as far as the channel tells us: a phone number, a
/// business-scoped user id (WhatsApp only), or both; in the web chat, the
/// conversation. At least one is always present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRef {
    channel: ChannelKind,
    /// The business's number they wrote to; the same phone writing to two
    /// numbers is two people, each with their own conversation.
    account: AccountName,
    phone: Option<PhoneNumber>,
    bsuid: Option<Bsuid>,
    conversation: Option<ConversationKey>,
    pub parent_bsuid: Option<Bsuid>,
    pub profile_name: Option<String>,
}

impl PersonRef {
    pub fn new(phone: Option<PhoneNumber>, bsuid: Option<Bsuid>) -> Result<Self, DomainError> {
        if phone.is_none() && bsuid.is_none() {
            return Err(DomainError::NoIdentity);
        }
        Ok(Self {
            channel: ChannelKind::WhatsApp,
            account: AccountName::default(),
            phone,
            bsuid,
            conversation: None,
            parent_bsuid: None,
            profile_name: None,
        })
    }

    /// Someone the business writes to first, known by their number on
    /// `account`.
    pub fn of_phone(phone: PhoneNumber, account: AccountName) -> Self {
        Self {
            channel: ChannelKind::WhatsApp,
            account,
            phone: Some(phone),
            bsuid: None,
            conversation: None,
            parent_bsuid: None,
            profile_name: None,
        }
    }

    /// A visitor of the web chat, known only by their conversation (any
    /// number they typed is a label, not an identity).
    pub fn web(conversation: ConversationKey) -> Self {
        Self {
            channel: ChannelKind::Web,
            account: AccountName::default(),
            phone: None,
            bsuid: None,
            conversation: Some(conversation),
            parent_bsuid: None,
            profile_name: None,
        }
    }

    pub fn channel(&self) -> ChannelKind {
        self.channel
    }

    /// Says which of the business's numbers they wrote to: the webhook
    /// that brought them knows, the payload alone does not.
    pub fn set_account(&mut self, account: AccountName) {
        self.account = account;
    }

    pub fn account(&self) -> &AccountName {
        &self.account
    }

    pub fn phone(&self) -> Option<&PhoneNumber> {
        self.phone.as_ref()
    }

    pub fn bsuid(&self) -> Option<&Bsuid> {
        self.bsuid.as_ref()
    }

    pub fn conversation(&self) -> Option<&ConversationKey> {
        self.conversation.as_ref()
    }

    /// A masked label for logs and public views.
    pub fn masked(&self) -> String {
        self.phone
            .as_ref()
            .map(PhoneNumber::masked)
            .or_else(|| self.bsuid.as_ref().map(Bsuid::masked))
            .or_else(|| self.conversation.as_ref().map(ConversationKey::masked))
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
