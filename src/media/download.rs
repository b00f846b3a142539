//! The part of every provider's download that is the same: the answer that
//! carries the bytes, checked against the limits and streamed into the
//! media folder. How to get that answer (which URL, which credentials) is
//! each provider's own.

use super::fetch::{essence, DownloadError, Downloaded, MediaLimits};
use super::files::{FileError, MediaFiles};
use futures::TryStreamExt;
use reqwest::header::CONTENT_TYPE;

/// Stores the body of `response` as a file of type `mime` (what the
/// provider said the media is, already allowed by the caller). When the
/// provider gave the file's SHA-256 (hex), bytes that differ are refused
/// before the file gets its name.
pub async fn save_response(
    response: reqwest::Response,
    files: &MediaFiles,
    limits: &MediaLimits,
    mime: String,
    sha256: Option<&str>,
) -> Result<Downloaded, DownloadError> {
    let limit = limits.max_bytes;
    if let Some(length) = response.content_length().filter(|&length| length > limit) {
        return Err(DownloadError::TooLarge { bytes: Some(length), limit });
    }
    // A server that disagrees with the provider's word may be serving
    // something else than what was announced, so its type must be allowed
    // too. "application/octet-stream" claims nothing and is let through.
    let served = response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).map(essence);
    if let Some(served) = served {
        if served != mime && served != "application/octet-stream" && !limits.allows(&served) {
            return Err(DownloadError::RefusedType(served));
        }
    }

    // Counted while streaming too: Content-Length may be absent (chunked).
    let chunks = futures::stream::try_unfold(response, |mut response| async move {
        Ok::<_, reqwest::Error>(response.chunk().await?.map(|chunk| (chunk, response)))
    })
    .map_err(reqwest::Error::without_url);
    let partial = files.write_partial(chunks, limit).await.map_err(|error| match error {
        FileError::TooLarge { limit } => DownloadError::TooLarge { bytes: None, limit },
        FileError::Io(error) => DownloadError::Storage(error.to_string()),
        FileError::Source(message) => DownloadError::Network(message),
    })?;
    if sha256.is_some_and(|expected| expected != partial.file().sha256) {
        return Err(DownloadError::Corrupt);
    }
    let file = partial.keep().await.map_err(|error| DownloadError::Storage(error.to_string()))?;
    Ok(Downloaded { file, mime })
}
