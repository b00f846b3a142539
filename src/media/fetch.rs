//! The seam between reading a turn's files and the channel that holds
//! them: WhatsApp's Cloud API today, other providers' media URLs later.

use super::files::{MediaFiles, StoredFile};
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
pub trait MediaFetch: Send + Sync {
    /// Downloads one file into `files` within `limits`.
    async fn fetch(
        &self,
        media_id: &str,
        files: &MediaFiles,
        limits: &MediaLimits,
    ) -> Result<Downloaded, DownloadError>;
}

#[derive(Debug, Clone)]
pub struct MediaLimits {
    pub max_bytes: u64,
    /// The whole download: both requests and the body.
    pub timeout: Duration,
    /// MIME types allowed, compared on the essence (parameters like
    /// "; codecs=opus" dropped, lowercase); an entry ending in "/*" allows
    /// the whole type, e.g. "image/*".
    pub allowed_types: Vec<String>,
}

impl MediaLimits {
    pub fn allows(&self, mime: &str) -> bool {
        let mime = essence(mime);
        let Some((kind, subtype)) = mime.split_once('/') else { return false };
        if kind.is_empty() || subtype.is_empty() {
            return false;
        }
        self.allowed_types.iter().map(|allowed| essence(allowed)).any(|allowed| match allowed.strip_suffix("/*") {
            Some(whole) => whole == kind,
            None => allowed == mime,
        })
    }
}

#[derive(Debug)]
pub struct Downloaded {
    pub file: StoredFile,
    /// The essence of the type the Graph API gave for the media.
    pub mime: String,
}

/// Messages never hold the token or the media URL: the URL is signed and
/// fetches the file for anyone holding the token.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("META_ACCESS_TOKEN is not set")]
    NotConfigured,
    /// Also for an id that could not be a media id at all.
    #[error("media not found (unknown or expired)")]
    NotFound,
    /// `bytes` is the size announced, `None` when the limit was passed
    /// while counting the body.
    #[error("media larger than the limit of {limit} bytes")]
    TooLarge { bytes: Option<u64>, limit: u64 },
    #[error("media type {0:?} is not allowed")]
    RefusedType(String),
    #[error("media download timed out")]
    TimedOut,
    #[error("media bytes do not match the SHA-256 the Graph API gave")]
    Corrupt,
    #[error("media download answered HTTP {0}")]
    Http(u16),
    #[error("media download: {0}")]
    Network(String),
    #[error("storing media: {0}")]
    Storage(String),
}

impl DownloadError {
    /// Short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::NotFound => "not_found",
            Self::TooLarge { .. } => "too_large",
            Self::RefusedType(_) => "refused_type",
            Self::TimedOut => "timed_out",
            Self::Corrupt => "corrupt",
            Self::Http(_) => "http",
            Self::Network(_) => "network",
            Self::Storage(_) => "storage",
        }
    }
}

/// A MIME type without its parameters, lowercase: "audio/ogg; codecs=opus"
/// is "audio/ogg".
pub fn essence(mime: &str) -> String {
    mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}
