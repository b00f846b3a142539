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
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes; an uploaded {kind} may be at most {limit} bytes (send a larger one by url)")]
    TooLarge { kind: &'static str, size: usize, limit: usize },
    #[error("WhatsApp does not take this file as {kind}: {accepted}")]
    Unsupported { kind: &'static str, accepted: &'static str },
}

/// Where the provider gets a message's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// An address the provider fetches it from: the file never passes
    /// through this server.
    Link(String),
    /// Bytes an application uploaded, kept by the server until sent.
    Upload(UploadedFile),
}

/// A file uploaded through the send API, known by the SHA-256 of its bytes.
/// `contents` is there when the sender loaded it for an attempt; two
/// uploads are the same file when their bytes are.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub sha256: String,
    pub mime: String,
    pub size: i64,
    pub contents: Option<bytes::Bytes>,
}

impl PartialEq for UploadedFile {
    fn eq(&self, other: &Self) -> bool {
        (&self.sha256, &self.mime, self.size) == (&other.sha256, &other.mime, other.size)
    }
}

impl Eq for UploadedFile {}

impl UploadedFile {
    /// Checks `contents` can go to WhatsApp as `kind` and names its type:
    /// an image or video by its first bytes (Meta refuses one whose bytes
    /// are not what its type says), a document or audio by the type given
    /// with it or its name. Sizes are WhatsApp's, documents capped at ours.
    pub fn check(
        kind: MediaKind,
        contents: bytes::Bytes,
        declared_mime: Option<&str>,
        filename: Option<&str>,
    ) -> Result<Self, MediaError> {
        use sha2::Digest;
        if contents.is_empty() {
            return Err(MediaError::Empty);
        }
        let limit = max_upload_bytes(kind);
        if contents.len() > limit {
            return Err(MediaError::TooLarge { kind: kind.as_str(), size: contents.len(), limit });
        }
        let mime = accepted_mime(kind, &contents, declared_mime, filename)
            .ok_or(MediaError::Unsupported { kind: kind.as_str(), accepted: accepted_list(kind) })?;
        Ok(Self {
            sha256: hex::encode(sha2::Sha256::digest(&contents)),
            mime: mime.to_owned(),
            size: contents.len() as i64,
            contents: Some(contents),
        })
    }
}

/// The largest upload of each kind: WhatsApp's limits (5 MB images, 16 MB
/// video and audio), and 16 MB for documents though WhatsApp takes 100 MB,
/// because uploads wait in the database; a larger one goes by address.
pub const fn max_upload_bytes(kind: MediaKind) -> usize {
    const MB: usize = 1024 * 1024;
    match kind {
        MediaKind::Image => 5 * MB,
        MediaKind::Document | MediaKind::Video | MediaKind::Audio => 16 * MB,
    }
}

const DOCUMENT_TYPES: [(&str, &str); 9] = [
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("doc", "application/msword"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xls", "application/vnd.ms-excel"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("ppt", "application/vnd.ms-powerpoint"),
    ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("csv", "text/csv"),
];

const AUDIO_TYPES: [(&str, &str); 6] = [
    ("aac", "audio/aac"),
    ("amr", "audio/amr"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("ogg", "audio/ogg"),
    ("opus", "audio/ogg"),
];

fn accepted_list(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "a JPEG or PNG image",
        MediaKind::Video => "an MP4 or 3GP video",
        MediaKind::Document => "PDF, TXT, CSV, DOC(X), XLS(X) or PPT(X)",
        MediaKind::Audio => "AAC, AMR, MP3, M4A or OGG (Opus) audio",
    }
}

fn accepted_mime(
    kind: MediaKind,
    bytes: &[u8],
    declared: Option<&str>,
    filename: Option<&str>,
) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    let by_table = |table: &[(&'static str, &'static str)]| {
        let declared = declared.map(|mime| mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let extension = filename.and_then(|name| name.rsplit_once('.')).map(|(_, ext)| ext.to_ascii_lowercase());
        table
            .iter()
            .find(|(ext, mime)| declared.as_deref() == Some(*mime) || extension.as_deref() == Some(*ext))
            .map(|(_, mime)| *mime)
    };
    match kind {
        MediaKind::Image if at(0, &[0xFF, 0xD8, 0xFF]) => Some("image/jpeg"),
        MediaKind::Image if at(0, b"\x89PNG\r\n\x1a\n") => Some("image/png"),
        MediaKind::Video if at(4, b"ftyp3g") => Some("video/3gpp"),
        MediaKind::Video if at(4, b"ftyp") => Some("video/mp4"),
        MediaKind::Image | MediaKind::Video => None,
        // A PDF is the usual document (a bill, a lab result): its bytes
        // decide, whatever the application called it.
        MediaKind::Document if at(0, b"%PDF-") => Some("application/pdf"),
        MediaKind::Document => by_table(&DOCUMENT_TYPES).filter(|mime| *mime != "application/pdf"),
        MediaKind::Audio => by_table(&AUDIO_TYPES),
    }
}

/// A file a message carries, by address or uploaded, with what a document
/// is called on the customer's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMedia {
    kind: MediaKind,
    source: MediaSource,
    filename: Option<String>,
}

impl OutboundMedia {
    const MAX_URL: usize = 2048;
    const MAX_FILE_NAME: usize = 240;

    /// A file by its address.
    pub fn new(kind: MediaKind, url: &str, filename: Option<&str>) -> Result<Self, MediaError> {
        let url = url.trim();
        let scheme = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if url.len() > Self::MAX_URL || scheme.is_none_or(str::is_empty) || url.chars().any(char::is_whitespace) {
            return Err(MediaError::Url);
        }
        Self::with_source(kind, MediaSource::Link(url.to_owned()), filename)
    }

    /// A file the application uploaded (see [`UploadedFile::check`]).
    pub fn uploaded(kind: MediaKind, file: UploadedFile, filename: Option<&str>) -> Result<Self, MediaError> {
        Self::with_source(kind, MediaSource::Upload(file), filename)
    }

    fn with_source(kind: MediaKind, source: MediaSource, filename: Option<&str>) -> Result<Self, MediaError> {
        let filename = filename.map(str::trim).filter(|name| !name.is_empty());
        if let Some(name) = filename {
            let bad = |c: char| c == '/' || c == '\\' || c.is_control();
            if name.chars().count() > Self::MAX_FILE_NAME || name.chars().any(bad) {
                return Err(MediaError::FileName);
            }
        }
        Ok(Self { kind, source, filename: filename.map(str::to_owned) })
    }

    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    pub fn source(&self) -> &MediaSource {
        &self.source
    }

    /// The address of a file sent by address.
    pub fn url(&self) -> Option<&str> {
        match &self.source {
            MediaSource::Link(url) => Some(url),
            MediaSource::Upload(_) => None,
        }
    }

    /// The uploaded file, if this one was uploaded.
    pub fn upload(&self) -> Option<&UploadedFile> {
        match &self.source {
            MediaSource::Upload(file) => Some(file),
            MediaSource::Link(_) => None,
        }
    }

    /// The same file with its bytes, loaded for an attempt.
    pub fn with_contents(&self, contents: bytes::Bytes) -> Self {
        let mut media = self.clone();
        if let MediaSource::Upload(file) = &mut media.source {
            file.contents = Some(contents);
        }
        media
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
        assert_eq!((bill.url(), bill.filename()), (Some("https://isp.example/tagihan/0042.pdf"), Some("Tagihan.pdf")));
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

    #[test]
    fn an_upload_is_checked_by_its_bytes_its_type_and_its_size() {
        let check = |kind, bytes: &[u8], mime: Option<&str>, name: Option<&str>| {
            UploadedFile::check(kind, bytes::Bytes::copy_from_slice(bytes), mime, name).map(|file| file.mime)
        };
        let png = b"\x89PNG\r\n\x1a\n....";
        assert_eq!(check(MediaKind::Image, png, Some("image/jpeg"), None), Ok("image/png".into()));
        assert_eq!(check(MediaKind::Image, &[0xFF, 0xD8, 0xFF, 0xE0], None, None), Ok("image/jpeg".into()));
        let not_an_image = check(MediaKind::Image, b"%PDF-1.7", Some("image/png"), Some("x.png"));
        assert_eq!(not_an_image, Err(MediaError::Unsupported { kind: "image", accepted: "a JPEG or PNG image" }));
        assert_eq!(check(MediaKind::Document, b"%PDF-1.7", None, Some("x.bin")), Ok("application/pdf".into()));
        assert!(check(MediaKind::Document, b"not a pdf", Some("application/pdf"), Some("x.pdf")).is_err());
        let sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        assert_eq!(check(MediaKind::Document, b"PK\x03\x04", None, Some("Tagihan.XLSX")), Ok(sheet.into()));
        assert_eq!(check(MediaKind::Document, b"a,b", Some("text/csv; charset=utf-8"), None), Ok("text/csv".into()));
        assert!(check(MediaKind::Document, b"MZ", Some("application/x-msdownload"), Some("x.exe")).is_err());
        assert_eq!(check(MediaKind::Video, b"\0\0\0\x18ftypmp42", None, None), Ok("video/mp4".into()));
        assert_eq!(check(MediaKind::Audio, b"OggS", None, Some("pesan.ogg")), Ok("audio/ogg".into()));
        assert_eq!(check(MediaKind::Image, b"", None, None), Err(MediaError::Empty));
        let big = vec![0xFF; 5 * 1024 * 1024 + 1];
        let too_large = UploadedFile::check(MediaKind::Image, big.into(), None, None);
        assert!(matches!(too_large, Err(MediaError::TooLarge { limit: 5_242_880, .. })), "{too_large:?}");

        let file = UploadedFile::check(MediaKind::Image, bytes::Bytes::from_static(png), None, None).unwrap();
        assert_eq!(file.sha256.len(), 64);
        let media = OutboundMedia::uploaded(MediaKind::Image, file.clone(), None).unwrap();
        assert_eq!((media.url(), media.upload().map(|f| f.size)), (None, Some(12)));
        let stored = UploadedFile { contents: None, ..file };
        assert_eq!(OutboundMedia::uploaded(MediaKind::Image, stored, None).unwrap(), media, "the bytes decide");
    }
}
