//! A `wa_outbox` row checked into something the outbox can send; a row
//! that cannot be sent says why, and that reason is written back to it.

use super::table::LegacyRow;
use crate::channels::format::{split_for_whatsapp, MAX_MESSAGE_CHARS};
use crate::domain::{clean_text, indonesian_number, MediaError, MediaKind, NumberError, OutboundMedia, PhoneNumber};

/// The longest text sent at once: four WhatsApp messages, as the send API.
const MAX_TEXT_CHARS: usize = 4 * MAX_MESSAGE_CHARS;
/// WhatsApp's limit on a file's caption.
const MAX_CAPTION_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    #[error("nowa: {0}")]
    Number(#[from] NumberError),
    #[error("type must be TEXT, IMAGE, VIDEO or FILE, got {0:?}")]
    Kind(String),
    #[error("pesan is empty")]
    EmptyText,
    #[error("pesan is longer than {MAX_TEXT_CHARS} characters")]
    TooLong,
    #[error("{0} rows need the file's address (http:// or https://) in file")]
    NoFile(&'static str),
    #[error("file: {0}")]
    Media(#[from] MediaError),
    #[error("pesan, the file's caption, is longer than {MAX_CAPTION_CHARS} characters")]
    CaptionTooLong,
}

/// What a row asks to send.
#[derive(Debug)]
pub struct Notification {
    pub to: PhoneNumber,
    /// The text in as many parts as it takes, or a file's caption.
    pub parts: Vec<String>,
    pub media: Option<OutboundMedia>,
}

impl Notification {
    pub fn from_row(row: &LegacyRow) -> Result<Self, RowProblem> {
        let to = indonesian_number(row.nowa.as_deref().unwrap_or_default())?;
        let text = clean_text(row.pesan.as_deref().unwrap_or_default()).trim().to_owned();
        let kind = row.kind.as_deref().map(str::trim).unwrap_or_default().to_ascii_uppercase();
        let media = match kind.as_str() {
            // Rows written before the old gateway sent files have no type.
            "" | "TEXT" => None,
            "IMAGE" => Some(MediaKind::Image),
            "VIDEO" => Some(MediaKind::Video),
            "FILE" | "DOCUMENT" => Some(MediaKind::Document),
            _ => return Err(RowProblem::Kind(row.kind.clone().unwrap_or_default())),
        };
        let Some(kind) = media else {
            if text.is_empty() {
                return Err(RowProblem::EmptyText);
            }
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(RowProblem::TooLong);
            }
            return Ok(Self { to, parts: split_for_whatsapp(&text, MAX_MESSAGE_CHARS), media: None });
        };
        let url = row.file.as_deref().map(str::trim).filter(|url| !url.is_empty());
        let url = url.ok_or(RowProblem::NoFile(kind.as_str()))?;
        // The old gateway named a document after its address.
        let filename = (kind == MediaKind::Document)
            .then(|| url.split(['?', '#']).next().and_then(|path| path.rsplit('/').next()))
            .flatten()
            .filter(|name| !name.is_empty() && !name.contains(':'));
        let media = OutboundMedia::new(kind, url, filename)?;
        if text.chars().count() > MAX_CAPTION_CHARS {
            return Err(RowProblem::CaptionTooLong);
        }
        Ok(Self { to, parts: vec![text], media: Some(media) })
    }

    /// The words on one line, for a template's body parameter (WhatsApp
    /// refuses line breaks, tabs and long runs of spaces in one); a file
    /// goes as its address after the caption.
    pub fn one_line(&self) -> String {
        let url = self.media.as_ref().and_then(OutboundMedia::url);
        self.parts.iter().map(String::as_str).chain(url).flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(nowa: &str, pesan: &str, kind: Option<&str>, file: Option<&str>) -> LegacyRow {
        LegacyRow {
            id: 1,
            nowa: Some(nowa.into()),
            pesan: Some(pesan.into()),
            kind: kind.map(str::to_owned),
            file: file.map(str::to_owned),
        }
    }

    #[test]
    fn rows_become_texts_and_files() {
        let text = Notification::from_row(&row("0812-3456-7789", "Halo\nBudi", Some("text"), None)).unwrap();
        assert_eq!(
            (text.to.expose(), text.parts.as_slice(), &text.media),
            ("6281234567789", &["Halo\nBudi".to_owned()][..], &None)
        );
        assert_eq!(text.one_line(), "Halo Budi");
        let file = row("6281234567789", "Tagihan", Some("FILE"), Some("https://isp.example/t/0042.pdf?x=1"));
        let file = Notification::from_row(&file).unwrap();
        assert_eq!(file.media.as_ref().and_then(OutboundMedia::filename), Some("0042.pdf"));
        assert_eq!(file.one_line(), "Tagihan https://isp.example/t/0042.pdf?x=1");
    }

    #[test]
    fn bad_rows_say_why() {
        for (bad, reason) in [
            (row("12", "Halo", None, None), "nowa"),
            (row("0812345677", "Halo", Some("STICKER"), None), "type must be"),
            (row("0812345677", " ", Some("TEXT"), None), "pesan is empty"),
            (row("0812345677", "Foto", Some("IMAGE"), None), "need the file's address"),
            (row("0812345677", "Foto", Some("IMAGE"), Some("file:///etc/passwd")), "file:"),
        ] {
            let problem = Notification::from_row(&bad).unwrap_err().to_string();
            assert!(problem.contains(reason), "{problem}");
        }
    }
}
