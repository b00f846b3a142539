//! Fetching a file a customer sent on WhatsApp. The webhook carries only a
//! media id; the Graph API turns it into a short-lived signed URL on Meta's
//! CDN, and the bytes come from there, with the same bearer token.

use super::auth::{api_root, is_compatible_provider, Credentials};
use crate::config::WhatsAppSettings;
use crate::media::{essence, save_response, DownloadError, Downloaded, MediaFetch, MediaFiles, MediaLimits};
use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

#[derive(Deserialize)]
struct Metadata {
    url: String,
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    file_size: Option<Size>,
}

/// Meta's reference shows `file_size` as a string ("303833"); other
/// descriptions of the same answer show a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Number(u64),
    Text(String),
}

impl Size {
    fn bytes(&self) -> Option<u64> {
        match self {
            Self::Number(bytes) => Some(*bytes),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
}

pub struct MediaDownloader {
    http: reqwest::Client,
    /// `{graph_base}/{graph_version}`, or a compatible provider's base.
    graph: String,
    credentials: Option<Credentials>,
    /// Only when the Graph API itself is plain http (a local stand-in):
    /// otherwise the token would cross the network in the clear.
    plain_http: bool,
    /// A compatible provider serves Meta's media URLs itself: the path and
    /// query of the URL are asked of the provider's host, with its key.
    via_provider: Option<Url>,
}

impl MediaDownloader {
    pub fn new(settings: &WhatsAppSettings) -> Result<Self, reqwest::Error> {
        let graph_base = settings.graph_base.trim_end_matches('/');
        let via_provider = is_compatible_provider(settings).then(|| Url::parse(graph_base).ok()).flatten();
        // reqwest's default redirect policy drops Authorization (and
        // cookies) when a redirect goes to another scheme, host or port, so
        // a CDN redirect never hands Meta's token to someone else. A
        // provider's key travels in a header of its own that the policy
        // does not know, so for a provider redirects are not followed.
        let redirects = if via_provider.is_some() {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::default()
        };
        Ok(Self {
            http: reqwest::Client::builder().redirect(redirects).build()?,
            graph: api_root(settings),
            credentials: Credentials::new(settings),
            plain_http: graph_base.starts_with("http://"),
            via_provider,
        })
    }

    async fn download(
        &self,
        credentials: &Credentials,
        media_id: &str,
        files: &MediaFiles,
        limits: &MediaLimits,
    ) -> Result<Downloaded, DownloadError> {
        let answer = self.get(format!("{}/{media_id}", self.graph), credentials).await?;
        let body = answer.bytes().await.map_err(network)?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|_| DownloadError::Network("unreadable media metadata from the Graph API".into()))?;

        // The Graph API's type is what the rest of the bridge acts on (voice
        // note, photo, document), so it decides, and before any byte moves.
        let mime = essence(&metadata.mime_type);
        if !limits.allows(&mime) {
            return Err(DownloadError::RefusedType(mime));
        }
        let limit = limits.max_bytes;
        if let Some(size) = metadata.file_size.and_then(|size| size.bytes()).filter(|&size| size > limit) {
            return Err(DownloadError::TooLarge { bytes: Some(size), limit });
        }
        let mut url = Url::parse(&metadata.url)
            .map_err(|_| DownloadError::Network("unreadable media URL from the Graph API".into()))?;
        if let Some(provider) = &self.via_provider {
            let (path, query) = (url.path().to_owned(), url.query().map(str::to_owned));
            url = provider.clone();
            url.set_path(&path);
            url.set_query(query.as_deref());
        }
        if !(url.scheme() == "https" || (self.plain_http && url.scheme() == "http")) {
            return Err(DownloadError::Network("media URL is not https".into()));
        }

        let response = self.get(url, credentials).await?;
        // A value that is not hex or base64 of 32 bytes cannot be compared
        // and is not taken as a mismatch.
        let sha256 = metadata.sha256.as_deref().and_then(sha256_hex);
        save_response(response, files, limits, mime, sha256.as_deref()).await
    }

    async fn get(
        &self,
        url: impl reqwest::IntoUrl,
        credentials: &Credentials,
    ) -> Result<reqwest::Response, DownloadError> {
        let response = credentials.apply(self.http.get(url)).send().await.map_err(network)?;
        match response.status() {
            status if status.is_success() => Ok(response),
            // Meta answers 404 for a media id or URL that has expired.
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(DownloadError::NotFound),
            // ... and 400 with Graph error 100 for an id it does not know.
            StatusCode::BAD_REQUEST if graph_code(response).await == Some(100) => Err(DownloadError::NotFound),
            status => Err(DownloadError::Http(status.as_u16())),
        }
    }
}

/// The Graph error code of a refusal, if its body says one.
async fn graph_code(response: reqwest::Response) -> Option<i64> {
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    body["error"]["code"].as_i64()
}

#[async_trait]
impl MediaFetch for MediaDownloader {
    async fn fetch(
        &self,
        media_id: &str,
        files: &MediaFiles,
        limits: &MediaLimits,
    ) -> Result<Downloaded, DownloadError> {
        let credentials = self.credentials.as_ref().ok_or(DownloadError::NotConfigured)?;
        if !is_media_id(media_id) {
            return Err(DownloadError::NotFound);
        }
        tokio::time::timeout(limits.timeout, self.download(credentials, media_id, files, limits))
            .await
            .map_err(|_| DownloadError::TimedOut)?
    }
}

/// Meta writes a file's SHA-256 in hex in some answers and in base64 in
/// others (the webhooks); either is compared, anything else is not.
fn sha256_hex(stated: &str) -> Option<String> {
    use base64::Engine as _;
    let stated = stated.trim();
    if stated.len() == 64 && hex::decode(stated).is_ok() {
        return Some(stated.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(stated).ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

/// Without the URL: it is signed.
fn network(error: reqwest::Error) -> DownloadError {
    DownloadError::Network(error.without_url().to_string())
}

/// The id becomes a path segment of a request that carries the token, so
/// nothing that could change the path ("/", "..", "?", "%") gets in.
fn is_media_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{MediaFiles, StoredFile};
    use secrecy::SecretString;
    use serde_json::json;
    use sha2::{Digest, Sha256};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

    const VOICE: &[u8] = b"OggS a short voice note";

    struct Setup {
        server: MockServer,
        downloader: MediaDownloader,
        files: MediaFiles,
        dir: tempfile::TempDir,
    }

    async fn setup() -> Setup {
        let server = MockServer::start().await;
        let downloader = MediaDownloader::new(&settings(&server.uri(), Some("test-token"))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::open(dir.path().join("media")).unwrap();
        Setup { server, downloader, files, dir }
    }

    fn settings(graph_base: &str, token: Option<&str>) -> WhatsAppSettings {
        WhatsAppSettings {
            app_secret: None,
            access_token: token.map(|t| SecretString::from(t.to_owned())),
            phone_number_id: None,
            verify_token: None,
            app_id: None,
            business_account_id: None,
            graph_base: graph_base.to_owned(),
            graph_version: "v23.0".into(),
            auth_header: None,
            webhook_secret: None,
            provider: crate::config::WhatsAppProvider::CloudApi,
            send_timeout: Duration::from_secs(5),
        }
    }

    fn limits() -> MediaLimits {
        MediaLimits {
            max_bytes: 1000,
            timeout: Duration::from_secs(5),
            allowed_types: vec!["audio/ogg".into(), "image/*".into()],
        }
    }

    fn sha256(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    impl Setup {
        fn names(&self) -> Vec<String> {
            let entries = std::fs::read_dir(self.dir.path().join("media")).unwrap();
            entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
        }

        async fn metadata(&self, id: &str, metadata: serde_json::Value) {
            Mock::given(method("GET"))
                .and(path(format!("/v23.0/{id}")))
                .and(header("authorization", "Bearer test-token"))
                .respond_with(ResponseTemplate::new(200).set_body_json(metadata))
                .mount(&self.server)
                .await;
        }

        /// The metadata of `VOICE` at `/cdn/voice`, changed by `edit`.
        async fn voice_metadata(&self, edit: impl FnOnce(&mut serde_json::Value)) {
            let mut metadata = json!({
                "url": format!("{}/cdn/voice?sig=secret", self.server.uri()),
                "mime_type": "audio/ogg; codecs=opus",
                "sha256": sha256(VOICE),
                "file_size": VOICE.len(),
                "id": "1234",
                "messaging_product": "whatsapp",
            });
            edit(&mut metadata);
            self.metadata("1234", metadata).await;
        }

        async fn cdn(&self, response: ResponseTemplate, times: u64) {
            Mock::given(method("GET"))
                .and(path("/cdn/voice"))
                .and(header("authorization", "Bearer test-token"))
                .respond_with(response)
                .expect(times)
                .mount(&self.server)
                .await;
        }

        async fn download(&self, limits: &MediaLimits) -> Result<Downloaded, DownloadError> {
            self.downloader.fetch("1234", &self.files, limits).await
        }
    }

    fn voice() -> ResponseTemplate {
        ResponseTemplate::new(200).insert_header("content-type", "audio/ogg").set_body_bytes(VOICE)
    }

    #[tokio::test]
    async fn downloads_with_the_token_and_stores_once() {
        let s = setup().await;
        s.voice_metadata(|_| {}).await;
        s.cdn(voice(), 2).await;

        let first = s.download(&limits()).await.unwrap();
        assert_eq!(first.mime, "audio/ogg");
        assert_eq!(first.file, StoredFile { sha256: sha256(VOICE), bytes: VOICE.len() as u64 });
        assert_eq!(s.files.read(&first.file.sha256).await.unwrap(), VOICE);

        let second = s.download(&limits()).await.unwrap();
        assert_eq!(second.file, first.file);
        assert_eq!(s.names(), [sha256(VOICE)]);
    }

    #[tokio::test]
    async fn an_announced_size_past_the_limit_is_not_downloaded() {
        let s = setup().await;
        s.voice_metadata(|m| m["file_size"] = json!("5000")).await;
        s.cdn(voice(), 0).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::TooLarge { bytes: Some(5000), limit: 1000 }), "{error:?}");
    }

    #[tokio::test]
    async fn a_content_length_past_the_limit_is_not_read() {
        let s = setup().await;
        s.voice_metadata(|m| m["file_size"] = json!(null)).await;
        s.cdn(voice().set_body_bytes(vec![0; 2000]), 1).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::TooLarge { bytes: Some(2000), limit: 1000 }), "{error:?}");
        assert!(s.names().is_empty());
    }

    /// A CDN that answers in chunks, without Content-Length.
    async fn chunked_cdn(chunks: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: audio/ogg\r\nTransfer-Encoding: chunked\r\n\r\n";
            // The client hangs up once past its limit: later writes may fail.
            let _ = socket.write_all(head.as_bytes()).await;
            for _ in 0..chunks {
                let _ = socket.write_all(&[b"100\r\n".as_slice(), &[b'x'; 256], b"\r\n"].concat()).await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        format!("http://{address}/cdn/voice")
    }

    #[tokio::test]
    async fn a_body_without_length_is_counted() {
        let s = setup().await;
        let url = chunked_cdn(8).await;
        s.voice_metadata(|m| {
            m["url"] = json!(url);
            m["file_size"] = json!(null);
        })
        .await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::TooLarge { bytes: None, limit: 1000 }), "{error:?}");
        assert!(s.names().is_empty());
    }

    #[tokio::test]
    async fn a_type_not_allowed_is_refused() {
        let s = setup().await;
        s.voice_metadata(|m| m["mime_type"] = json!("Application/X-MSDownload")).await;
        s.cdn(voice(), 0).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(&error, DownloadError::RefusedType(mime) if mime == "application/x-msdownload"), "{error:?}");
    }

    #[tokio::test]
    async fn the_cdn_type_must_be_allowed_when_it_disagrees() {
        let s = setup().await;
        s.voice_metadata(|_| {}).await;
        s.cdn(voice().insert_header("content-type", "text/html"), 1).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(&error, DownloadError::RefusedType(mime) if mime == "text/html"), "{error:?}");
        assert!(s.names().is_empty());

        let s = setup().await;
        s.voice_metadata(|_| {}).await;
        s.cdn(voice().insert_header("content-type", "application/octet-stream"), 1).await;
        assert_eq!(s.download(&limits()).await.unwrap().mime, "audio/ogg");
    }

    #[tokio::test]
    async fn a_hanging_graph_api_times_out() {
        let s = setup().await;
        Mock::given(method("GET"))
            .and(path("/v23.0/1234"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
            .mount(&s.server)
            .await;
        let limits = MediaLimits { timeout: Duration::from_millis(300), ..limits() };
        let error = s.download(&limits).await.unwrap_err();
        assert!(matches!(error, DownloadError::TimedOut), "{error:?}");
    }

    #[tokio::test]
    async fn an_expired_url_or_id_is_not_found() {
        let s = setup().await;
        s.voice_metadata(|_| {}).await;
        s.cdn(ResponseTemplate::new(404), 1).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::NotFound), "{error:?}");

        let error = s.downloader.fetch("9999", &s.files, &limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::NotFound), "{error:?}");
        assert_eq!(error.label(), "not_found");

        // Graph's answer for an object id it does not know.
        let unknown = json!({ "error": { "message": "Unsupported get request.", "code": 100 } });
        Mock::given(method("GET"))
            .and(path("/v23.0/unknown"))
            .respond_with(ResponseTemplate::new(400).set_body_json(unknown))
            .mount(&s.server)
            .await;
        let error = s.downloader.fetch("unknown", &s.files, &limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::NotFound), "{error:?}");
        Mock::given(method("GET"))
            .and(path("/v23.0/refused"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": { "code": 190 } })))
            .mount(&s.server)
            .await;
        let error = s.downloader.fetch("refused", &s.files, &limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::Http(400)), "{error:?}");
    }

    #[tokio::test]
    async fn bytes_that_do_not_match_the_hash_are_refused() {
        let s = setup().await;
        // The same bytes stored before must survive the refusal.
        s.files.store_bytes(b"tampered", 1000).await.unwrap();
        s.voice_metadata(|_| {}).await;
        s.cdn(voice().set_body_bytes(b"tampered".as_slice()), 1).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::Corrupt), "{error:?}");
        assert_eq!(s.names(), [sha256(b"tampered")]);
    }

    #[tokio::test]
    async fn ids_that_could_change_the_path_are_never_requested() {
        let s = setup().await;
        for id in ["", ".", "..", "../me", "1/2", "1?fields=x", "1%2F2"] {
            let error = s.downloader.fetch(id, &s.files, &limits()).await.unwrap_err();
            assert!(matches!(error, DownloadError::NotFound), "{id:?}: {error:?}");
        }
        assert!(s.server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn without_a_token_nothing_is_requested() {
        let server = MockServer::start().await;
        let downloader = MediaDownloader::new(&settings(&server.uri(), None)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::open(dir.path().join("media")).unwrap();
        let error = downloader.fetch("1234", &files, &limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::NotConfigured), "{error:?}");
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn errors_hold_neither_token_nor_url() {
        let s = setup().await;
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cdn/voice?sig=secret", closed.local_addr().unwrap());
        drop(closed);
        s.voice_metadata(|m| m["url"] = json!(url)).await;
        let error = s.download(&limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::Network(_)), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("secret") && !shown.contains("cdn") && !shown.contains("test-token"), "{shown}");
    }

    struct NoAuthorization;

    impl Match for NoAuthorization {
        fn matches(&self, request: &Request) -> bool {
            !request.headers.contains_key("authorization")
        }
    }

    #[tokio::test]
    async fn a_redirect_elsewhere_does_not_carry_the_token() {
        let s = setup().await;
        let elsewhere = MockServer::start().await;
        Mock::given(path("/moved")).and(NoAuthorization).respond_with(voice()).expect(1).mount(&elsewhere).await;
        s.voice_metadata(|_| {}).await;
        let redirect = ResponseTemplate::new(302).insert_header("location", format!("{}/moved", elsewhere.uri()));
        s.cdn(redirect, 1).await;
        assert_eq!(s.download(&limits()).await.unwrap().file.sha256, sha256(VOICE));
    }

    #[tokio::test]
    async fn the_media_url_must_be_https_when_the_graph_api_is() {
        let s = setup().await;
        let downloader = MediaDownloader {
            plain_http: false,
            ..MediaDownloader::new(&settings(&s.server.uri(), Some("test-token"))).unwrap()
        };
        s.voice_metadata(|_| {}).await;
        s.cdn(voice(), 0).await;
        let error = downloader.fetch("1234", &s.files, &limits()).await.unwrap_err();
        assert!(matches!(error, DownloadError::Network(_)), "{error:?}");
    }

    #[test]
    fn types_are_compared_on_their_essence() {
        let limits = limits();
        assert!(limits.allows("audio/ogg; codecs=opus"));
        assert!(limits.allows(" AUDIO/OGG "));
        assert!(limits.allows("image/jpeg"));
        assert!(limits.allows("image/webp;q=1"));
        assert!(!limits.allows("audio/mpeg"));
        assert!(!limits.allows("image"));
        assert!(!limits.allows("image/"));
        assert!(!limits.allows("imagex/png"));
        assert!(!limits.allows(""));
    }
}
