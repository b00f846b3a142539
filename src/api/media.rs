//! `GET /api/admin/media/{message id}`: a file a customer sent, for the
//! admin transcript view (audio player, photo thumbnail, document link).
//! Behind the admin token, like the transcript it belongs to.

use super::admin::Admin;
use super::operations::OperationsError;
use super::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Types a browser may show inline; anything else is downloaded as bytes,
/// so a customer's HTML or SVG can never run in the admin page's origin.
const SHOWN_INLINE: [&str; 9] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/webm",
    "video/mp4",
];

pub async fn file(
    _: Admin,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Response, OperationsError> {
    let stored = state.store.media_file(&message_id).await?.ok_or(OperationsError::NotFound)?;
    let bytes = state.pipeline.media().files().read(&stored.file).await.map_err(|_| OperationsError::NotFound)?;
    let essence = stored.mime.as_deref().and_then(|m| m.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    let (content_type, disposition) = match essence {
        Some(mime) if SHOWN_INLINE.contains(&mime.as_str()) => (mime, "inline".to_owned()),
        _ => {
            let name: String = stored
                .file_name
                .as_deref()
                .unwrap_or("file")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
                .collect();
            ("application/octet-stream".to_owned(), format!("attachment; filename=\"{name}\""))
        }
    };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, disposition),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
    ];
    Ok((headers, bytes).into_response())
}

/// Where the admin page fetches a message's file. Message ids are
/// WhatsApp's (`wamid.` and base64) or the web chat's: everything but
/// unreserved characters is percent-encoded.
pub fn url_of(message_id: &str) -> String {
    let mut url = String::from("/api/admin/media/");
    for byte in message_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_percent_encoded_into_the_path() {
        assert_eq!(super::url_of("wamid.HBg+Q/1="), "/api/admin/media/wamid.HBg%2BQ%2F1%3D");
    }
}
