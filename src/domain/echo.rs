use super::{MessageContent, PersonRef, WaMessageId};

/// A message the business sent from the WhatsApp Business app on a number
/// that also uses the Cloud API ("coexistence"), as Meta echoes it back in
/// an `smb_message_echoes` webhook. It already reached the customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Echo {
    pub id: WaMessageId,
    /// The customer it went to.
    pub to: PersonRef,
    /// Unix seconds, as WhatsApp stamped it.
    pub sent_at: i64,
    pub content: MessageContent,
}

impl Echo {
    /// What the transcript shows for it: its words, with a placeholder such
    /// as `[image]` for what has none.
    pub fn text(&self) -> String {
        let placeholder = format!("[{}]", self.content.kind());
        match &self.content {
            MessageContent::Text(text) => text.clone(),
            MessageContent::Media { caption: Some(caption), .. } => format!("{placeholder} {caption}"),
            content => content.readable_text().unwrap_or(placeholder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PhoneNumber;

    fn echo(content: MessageContent) -> Echo {
        let to = PersonRef::new(Some(PhoneNumber::parse("6281234567789").unwrap()), None).unwrap();
        Echo { id: WaMessageId::parse("wamid.echo").unwrap(), to, sent_at: 1, content }
    }

    #[test]
    fn what_has_no_words_shows_as_a_placeholder() {
        assert_eq!(echo(MessageContent::Text("Siap kak".into())).text(), "Siap kak");
        let photo = |caption: Option<&str>| MessageContent::Media {
            kind: "image".into(),
            caption: caption.map(Into::into),
            attachment: None,
        };
        assert_eq!(echo(photo(None)).text(), "[image]");
        assert_eq!(echo(photo(Some("brosur"))).text(), "[image] brosur");
        assert_eq!(echo(MessageContent::Reaction { emoji: Some("👍".into()) }).text(), "[reaction]");
        assert_eq!(echo(MessageContent::Contacts(vec!["Sari".into()])).text(), "[kontak: Sari]");
    }
}
