use super::{PersonRef, WaMessageId};

/// One message a person sent us, reduced to what the bot acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub id: WaMessageId,
    pub from: PersonRef,
    /// Unix seconds, as WhatsApp stamped the message on the sender's side.
    pub sent_at: i64,
    pub content: MessageContent,
    /// The message this one answers (WhatsApp's `context.id`), quoted in
    /// the turn when we have it.
    pub reply_to: Option<WaMessageId>,
}

/// What a message carries. Only the parts the bot can read are kept; the
/// raw webhook is not stored.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageContent {
    Text(String),
    /// image, video, document, audio or sticker, with its caption and
    /// where to get the file (`None` when the payload did not say).
    Media {
        kind: String,
        caption: Option<String>,
        attachment: Option<Attachment>,
    },
    Location {
        name: Option<String>,
        address: Option<String>,
        latitude: f64,
        longitude: f64,
    },
    /// Shared contact cards, each "name (numbers)".
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

/// Where a message's file is and what it claims to be. The file itself is
/// fetched by the pipeline when the turn is answered, never while the
/// webhook waits for its 200.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub source: AttachmentSource,
    pub mime: Option<String>,
    /// A document's file name, as the sender's phone gave it.
    pub file_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachmentSource {
    /// The provider's media id, downloaded when the turn is answered.
    Provider(String),
    /// Already in the media folder (an upload to the web chat): its SHA-256
    /// and size.
    Stored { sha256: String, bytes: u64 },
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
            Self::Contacts(cards) if !cards.is_empty() => format!("[kontak: {}]", cards.join("; ")),
            _ => return None,
        };
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// Whether this message should start (or extend) a turn. Reactions,
    /// stickers and system notices never make the bot speak: a thumbs-up or
    /// a cartoon after an answer is a "thanks", not a question.
    pub fn wants_reply(&self) -> bool {
        match self {
            Self::Reaction { .. } | Self::System(_) => false,
            Self::Media { kind, .. } => kind != "sticker",
            _ => true,
        }
    }

    pub fn attachment(&self) -> Option<&Attachment> {
        match self {
            Self::Media { attachment, .. } => attachment.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_titles_and_locations_become_text() {
        let caption =
            MessageContent::Media { kind: "image".into(), caption: Some(" KTP saya ".into()), attachment: None };
        assert_eq!(caption.readable_text().as_deref(), Some("KTP saya"));
        let bare_photo = MessageContent::Media { kind: "image".into(), caption: None, attachment: None };
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
    fn reactions_stickers_and_system_notices_never_want_a_reply() {
        assert!(!MessageContent::Reaction { emoji: Some("👍".into()) }.wants_reply());
        assert!(!MessageContent::System("number changed".into()).wants_reply());
        assert!(!MessageContent::Media { kind: "sticker".into(), caption: None, attachment: None }.wants_reply());
        assert!(MessageContent::Media { kind: "audio".into(), caption: None, attachment: None }.wants_reply());
    }
}
