/// Where a person talks to us. Each channel has its own people: the same
/// phone number in the web chat and on WhatsApp is two conversations, so a
/// visitor to the web chat never sees a WhatsApp customer's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    WhatsApp,
    Web,
}

impl ChannelKind {
    /// The name stored in `users.channel` and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::WhatsApp => "whatsapp",
            ChannelKind::Web => "web",
        }
    }

    /// Reads a stored name; rows written by a newer version with a channel
    /// this one does not know are `None`, never a panic.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "whatsapp" => Some(ChannelKind::WhatsApp),
            "web" => Some(ChannelKind::Web),
            _ => None,
        }
    }
}
