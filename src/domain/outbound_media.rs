/// The kinds of file a message can carry to WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Document,
    Video,
    Audio,
}

impl MediaKind {
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Image, Self::Document, Self::Video, Self::Audio].into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The name the Cloud API, the database and the send API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Document => "document",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("url must be an http(s) address of at most 2048 characters without spaces")]
    Url,
    #[error("filename must be 1 to 240 characters without '/', '\\' or control characters")]
    FileName,
}

/// A file a message carries, by an address the provider fetches it from:
/// the file never passes through this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMedia {
    kind: MediaKind,
    url: String,
    filename: Option<String>,
}

impl OutboundMedia {
    const MAX_URL: usize = 2048;
    const MAX_FILE_NAME: usize = 240;

    pub fn new(kind: MediaKind, url: &str, filename: Option<&str>) -> Result<Self, MediaError> {
        let url = url.trim();
        let scheme = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if url.len() > Self::MAX_URL || scheme.is_none_or(str::is_empty) || url.chars().any(char::is_whitespace) {
            return Err(MediaError::Url);
        }
        let filename = filename.map(str::trim).filter(|name| !name.is_empty());
        if let Some(name) = filename {
            let bad = |c: char| c == '/' || c == '\\' || c.is_control();
            if name.chars().count() > Self::MAX_FILE_NAME || name.chars().any(bad) {
                return Err(MediaError::FileName);
            }
        }
        Ok(Self { kind, url: url.to_owned(), filename: filename.map(str::to_owned) })
    }

    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// What a document is called on the customer's phone.
    pub fn filename(&self) -> Option<&str> {
        self.filename.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_an_http_address_with_an_optional_plain_name() {
        let bill =
            OutboundMedia::new(MediaKind::Document, " https://isp.example/tagihan/0042.pdf ", Some("Tagihan.pdf"))
                .unwrap();
        assert_eq!((bill.url(), bill.filename()), ("https://isp.example/tagihan/0042.pdf", Some("Tagihan.pdf")));
        assert_eq!(MediaKind::parse("image"), Some(MediaKind::Image));
        assert_eq!(MediaKind::parse("sticker"), None);
        for bad in
            ["", "ftp://x/y", "https://", "https://a b/c", "/etc/passwd", &format!("https://{}", "a".repeat(2048))]
        {
            assert_eq!(OutboundMedia::new(MediaKind::Image, bad, None), Err(MediaError::Url), "{bad:?}");
        }
        for bad in ["../../x.pdf", "a\\b", "line\nbreak"] {
            assert_eq!(OutboundMedia::new(MediaKind::Document, "https://a/b", Some(bad)), Err(MediaError::FileName));
        }
    }
}
