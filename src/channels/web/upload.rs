//! A photo or a voice recording sent from the web chat. Its type is read
//! from its first bytes, never taken from the browser's word, and it is
//! stored the way a WhatsApp download is: from then on it is a message
//! like any other.

use super::{message_from, WebChatError, MAX_TEXT_CHARS};
use crate::domain::{clean_text, Attachment, AttachmentSource, ConversationKey, InboundMessage, MessageContent};
use crate::media::StoredFile;

/// The largest upload: the page scales photos down before sending, and a
/// minute of recorded speech is well under a megabyte.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// What an upload's bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upload {
    /// `image` or `audio`, as WhatsApp names its message types.
    pub kind: &'static str,
    pub mime: &'static str,
}

impl Upload {
    /// Photos and recordings browsers make; anything else is refused.
    pub fn sniff(bytes: &[u8]) -> Result<Self, WebChatError> {
        let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
        let (kind, mime) = if at(0, &[0xFF, 0xD8, 0xFF]) {
            ("image", "image/jpeg")
        } else if at(0, b"\x89PNG\r\n\x1a\n") {
            ("image", "image/png")
        } else if at(0, b"RIFF") && at(8, b"WEBP") {
            ("image", "image/webp")
        } else if at(0, b"OggS") {
            ("audio", "audio/ogg")
        } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
            ("audio", "audio/webm")
        } else if at(4, b"ftyp") {
            // Safari records MP4 audio.
            ("audio", "audio/mp4")
        } else {
            return Err(WebChatError::UnsupportedFile);
        };
        Ok(Self { kind, mime })
    }
}

/// The message an upload becomes, with its caption.
pub fn inbound_file(
    conversation: &ConversationKey,
    client_id: &str,
    upload: Upload,
    caption: Option<&str>,
    stored: &StoredFile,
) -> Result<InboundMessage, WebChatError> {
    let caption = caption.map(clean_text).map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    if caption.as_ref().is_some_and(|c| c.chars().count() > MAX_TEXT_CHARS) {
        return Err(WebChatError::TooLong);
    }
    let attachment = Attachment {
        source: AttachmentSource::Stored { sha256: stored.sha256.clone(), bytes: stored.bytes },
        mime: Some(upload.mime.to_owned()),
        file_name: None,
    };
    let content = MessageContent::Media { kind: upload.kind.to_owned(), caption, attachment: Some(attachment) };
    message_from(conversation, client_id, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let sniffed = |bytes: &[u8]| Upload::sniff(bytes).map(|u| (u.kind, u.mime)).ok();
        assert_eq!(sniffed(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(("image", "image/jpeg")));
        assert_eq!(sniffed(b"\x89PNG\r\n\x1a\n...."), Some(("image", "image/png")));
        assert_eq!(sniffed(b"RIFF\0\0\0\0WEBPVP8 "), Some(("image", "image/webp")));
        assert_eq!(sniffed(b"OggS\0\x02"), Some(("audio", "audio/ogg")));
        assert_eq!(sniffed(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]), Some(("audio", "audio/webm")));
        assert_eq!(sniffed(b"\0\0\0\x1cftypM4A "), Some(("audio", "audio/mp4")));
        assert_eq!(sniffed(b"<svg onload=alert(1)>"), None);
        assert_eq!(sniffed(b"%PDF-1.7"), None);
        assert_eq!(sniffed(b""), None);
    }
}
