use super::{Bsuid, ChannelKind, ConversationKey, PhoneNumber};

/// Where a reply goes. On WhatsApp: the phone number when we know it,
/// otherwise the business-scoped user id (people who hide their number
/// behind a username). In the web chat: the visitor's conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Phone(PhoneNumber),
    Bsuid(Bsuid),
    Web(ConversationKey),
}

impl Recipient {
    pub fn masked(&self) -> String {
        match self {
            Recipient::Phone(phone) => phone.masked(),
            Recipient::Web(conversation) => conversation.masked(),
            Recipient::Bsuid(bsuid) => bsuid.masked(),
        }
    }

    pub fn channel(&self) -> ChannelKind {
        match self {
            Recipient::Phone(_) | Recipient::Bsuid(_) => ChannelKind::WhatsApp,
            Recipient::Web(_) => ChannelKind::Web,
        }
    }
}
