//! The seam between reading a turn's files and the channel that holds
//! them: WhatsApp's Cloud API today, other providers' media URLs later.

use super::files::MediaFiles;
use async_trait::async_trait;

#[async_trait]
pub trait MediaFetch: Send + Sync {
    /// Downloads one file into `files` within `limits`.
    async fn fetch(&self, media_id: &str, files: &MediaFiles, limits: &MediaLimits) -> Result<Downloaded, DownloadError>;
}
