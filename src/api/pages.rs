//! The web chat and the admin page, embedded in the binary so a copied
//! binary serves them with no files beside it and no CDN (the machines it
//! runs on may be offline).

use super::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const ASSETS: &[(&str, &str, &[u8])] = &[
    ("chat.html", "text/html; charset=utf-8", include_bytes!("../../assets/chat.html")),
    ("chat.css", "text/css; charset=utf-8", include_bytes!("../../assets/chat.css")),
    ("chat.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/chat.js")),
    ("wa-format.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/wa-format.js")),
    ("wa-format.css", "text/css; charset=utf-8", include_bytes!("../../assets/wa-format.css")),
    ("admin.html", "text/html; charset=utf-8", include_bytes!("../../assets/admin.html")),
    ("admin.css", "text/css; charset=utf-8", include_bytes!("../../assets/admin.css")),
    ("admin.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/admin.js")),
    ("icon.svg", "image/svg+xml", include_bytes!("../../assets/icon.svg")),
];

pub async fn chat(State(state): State<AppState>) -> Response {
    if !state.settings.web_chat_enabled {
        return (StatusCode::NOT_FOUND, "The web chat is turned off (WEB_CHAT_ENABLED=false).").into_response();
    }
    serve("chat.html")
}

pub async fn admin() -> Response {
    serve("admin.html")
}

pub async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    match ASSETS.iter().find(|(file, ..)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // The pages change with the binary; a stale cached script
                // talking to a newer API is worse than a re-download.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CONTENT_SECURITY_POLICY, CSP),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Everything from our own origin only: a page that could load a script
/// from elsewhere could send the admin token elsewhere too.
/// `blob:` images and media are the customers' files the admin page fetched
/// with its token, and the web chat's own photos and recordings.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                   style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'self'";
