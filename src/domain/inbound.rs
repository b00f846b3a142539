use super::{PersonRef, WaMessageId};

/// One message a person sent us, reduced to what the bot acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub id: WaMessageId,
    pub from: PersonRef,
    /// Unix seconds, as WhatsApp stamped the message on the sender's side.
    pub sent_at: i64,
    pub content: MessageContent,
}

/// What a message carries. Only the parts the bot can read are kept; the
/// raw webhook is not stored.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageContent {
    Text(String),
    /// image, video, document, audio, voice or sticker, with its caption.
    Media {
        kind: String,
        caption: Option<String>,
    },
    Location {
        name: Option<String>,
        address: Option<String>,
        latitude: f64,
        longitude: f64,
    },
    Contacts(Vec<String>),
    /// A tapped button, quick reply or list row: counts by its title.
    Reply {
        title: String,
    },
    Reaction {
        emoji: Option<String>,
    },
    Order {
        items: usize,
    },
    System(String),
    /// A type we do not know or WhatsApp could not deliver (`unsupported`).
    Unsupported {
        kind: String,
    },
}

impl MessageContent {
    /// The name stored with the message and counted in metrics.
    pub fn kind(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Media { kind, .. } => kind,
            Self::Location { .. } => "location",
            Self::Contacts(_) => "contacts",
            Self::Reply { .. } => "reply",
            Self::Reaction { .. } => "reaction",
            Self::Order { .. } => "order",
            Self::System(_) => "system",
            Self::Unsupported { .. } => "unsupported",
        }
    }

    /// The text this message contributes to a turn, if the bot can read it.
    pub fn readable_text(&self) -> Option<String> {
        let text = match self {
            Self::Text(body) => body.clone(),
            Self::Media { caption, .. } => caption.clone()?,
            Self::Reply { title } => title.clone(),
            Self::Location { name, address, latitude, longitude } => {
                let place = [name.as_deref(), address.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(", ");
                if place.is_empty() {
                    format!("[lokasi: {latitude:.5}, {longitude:.5}]")
                } else {
                    format!("[lokasi: {place}]")
                }
            }
            Self::Contacts(names) if !names.is_empty() => format!("[kontak: {}]", names.join(", ")),
            _ => return None,
        };
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// Whether this message should start (or extend) a turn. Reactions and
    /// system notices never make the bot speak.
    pub fn wants_reply(&self) -> bool {
        !matches!(self, Self::Reaction { .. } | Self::System(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_titles_and_locations_become_text() {
        let caption = MessageContent::Media { kind: "image".into(), caption: Some(" KTP saya ".into()) };
        assert_eq!(caption.readable_text().as_deref(), Some("KTP saya"));
        let bare_photo = MessageContent::Media { kind: "image".into(), caption: None };
        assert_eq!(bare_photo.readable_text(), None);
        let reply = MessageContent::Reply { title: "Cek status".into() };
        assert_eq!(reply.readable_text().as_deref(), Some("Cek status"));
        let place = MessageContent::Location {
            name: Some("Kantor Camat".into()),
            address: None,
            latitude: -6.9,
            longitude: 107.6,
        };
        assert_eq!(place.readable_text().as_deref(), Some("[lokasi: Kantor Camat]"));
    }

    #[test]
    fn reactions_and_system_notices_never_want_a_reply() {
        assert!(!MessageContent::Reaction { emoji: Some("👍".into()) }.wants_reply());
        assert!(!MessageContent::System("number changed".into()).wants_reply());
        assert!(MessageContent::Media { kind: "sticker".into(), caption: None }.wants_reply());
    }
}
