//! Fetching a file a customer sent through WAHA. WAHA downloads it when
//! the message arrives and serves it under `/api/files/…` of its own API,
//! with the API key; the event's `media.url` names it.

use crate::config::WahaSettings;
use crate::media::{essence, save_response, DownloadError, Downloaded, MediaFetch, MediaFiles, MediaLimits};
use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

pub struct WahaMedia {
    http: reqwest::Client,
    base: Url,
    api_key: Option<SecretString>,
}

impl WahaMedia {
    /// `None` without a usable `WAHA_URL`.
    pub fn new(settings: &WahaSettings) -> Result<Option<Self>, reqwest::Error> {
        let Some(base) = settings.url.as_deref().and_then(|url| Url::parse(url.trim()).ok()) else {
            return Ok(None);
        };
        // No redirects: the API key would follow one to any host.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Some(Self { http, base, api_key: settings.api_key.clone() }))
    }

    /// Where to fetch `url` from, never outside `WAHA_URL`'s origin, which
    /// is the only place the API key may go. WAHA writes its media URLs
    /// with the address it was told it has (often `localhost:3000` inside
    /// Docker), so a URL elsewhere that is one of WAHA's files is fetched
    /// from `WAHA_URL` instead; anything else is refused.
    fn source(&self, url: &str) -> Option<Url> {
        let url = Url::parse(url).ok()?;
        if url.origin() == self.base.origin() {
            return Some(url);
        }
        let (_, file) = url.path().split_once("/api/files/")?;
        let mut local = self.base.clone();
        let prefix = local.path().trim_end_matches('/').to_owned();
        local.set_path(&format!("{prefix}/api/files/{file}"));
        local.set_query(url.query());
        Some(local)
    }

    async fn download(&self, url: Url, files: &MediaFiles, limits: &MediaLimits) -> Result<Downloaded, DownloadError> {
        let mut request = self.http.get(url.clone());
        if let Some(key) = &self.api_key {
            request = request.header("X-Api-Key", key.expose_secret());
        }
        let response = request.send().await.map_err(|e| DownloadError::Network(e.without_url().to_string()))?;
        match response.status() {
            status if status.is_success() => {}
            // WAHA deletes its copies after a while (WHATSAPP_FILES_LIFETIME).
            StatusCode::NOT_FOUND | StatusCode::GONE => return Err(DownloadError::NotFound),
            status => return Err(DownloadError::Http(status.as_u16())),
        }
        // WAHA serves its files by extension; a type it could not tell is
        // guessed from the same extension.
        let served = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(essence);
        let mime = served.filter(|mime| mime != "application/octet-stream").or_else(|| by_extension(url.path()));
        let mime = mime.unwrap_or_else(|| "application/octet-stream".to_owned());
        if !limits.allows(&mime) {
            return Err(DownloadError::RefusedType(mime));
        }
        save_response(response, files, limits, mime, None).await
    }
}

fn by_extension(path: &str) -> Option<String> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    let mime = match extension.as_str() {
        "oga" | "ogg" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "pdf" => "application/pdf",
        _ => return None,
    };
    Some(mime.to_owned())
}

#[async_trait]
impl MediaFetch for WahaMedia {
    async fn fetch(
        &self,
        media_id: &str,
        files: &MediaFiles,
        limits: &MediaLimits,
    ) -> Result<Downloaded, DownloadError> {
        let url = self.source(media_id).ok_or(DownloadError::NotFound)?;
        tokio::time::timeout(limits.timeout, self.download(url, files, limits))
            .await
            .map_err(|_| DownloadError::TimedOut)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn media(url: &str) -> WahaMedia {
        let settings = WahaSettings {
            url: Some(url.into()),
            api_key: None,
            session: "default".into(),
            webhook_hmac_key: None,
            groups: false,
            send_timeout: Duration::from_secs(5),
        };
        WahaMedia::new(&settings).unwrap().unwrap()
    }

    #[test]
    fn files_come_only_from_waha_url() {
        let waha = media("http://waha:3000");
        let file = "http://waha:3000/api/files/default/false_62812@c.us_3EB0.oga";
        assert_eq!(waha.source(file).unwrap().as_str(), file);
        // WAHA believes it is localhost: the same file, from WAHA_URL.
        let local = "http://localhost:3000/api/files/default/false_62812@c.us_3EB0.oga";
        assert_eq!(waha.source(local).unwrap().as_str(), file);
        assert_eq!(waha.source("https://evil.example/steal").map(String::from), None);
        assert_eq!(waha.source("https://evil.example/api/files/../../etc/passwd").map(|u| u.to_string()), None);
        assert_eq!(waha.source("not a url"), None);
        let prefixed = media("https://gateway.example/waha/");
        assert_eq!(
            prefixed.source(local).unwrap().as_str(),
            "https://gateway.example/waha/api/files/default/false_62812@c.us_3EB0.oga"
        );
    }

    #[test]
    fn a_type_is_guessed_from_the_extension() {
        assert_eq!(by_extension("/api/files/default/x.OGA").as_deref(), Some("audio/ogg"));
        assert_eq!(by_extension("/api/files/default/x.jpeg").as_deref(), Some("image/jpeg"));
        assert_eq!(by_extension("/api/files/default/x"), None);
    }
}
