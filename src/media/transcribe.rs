//! Speech to text for voice notes, through OpenRouter or any
//! OpenAI-compatible `/audio/transcriptions` endpoint (a business's own
//! Whisper server, Groq, OpenAI).

use crate::config::{TranscribeApi, TranscribeSettings};
use base64::Engine as _;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

/// Enough of a provider's complaint to tell a bad key from a bad model or
/// a rejected file, short enough for a log line.
const MAX_MESSAGE_CHARS: usize = 200;

pub struct Transcriber {
    http: reqwest::Client,
    url: String,
    settings: TranscribeSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// Audio seconds the provider reported, if any.
    pub seconds: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("transcription timed out")]
    Timeout,
    #[error("transcription refused with HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("transcription service unreachable: {0}")]
    Network(String),
    #[error("transcription answer unreadable: {0}")]
    Unreadable(String),
    #[error("transcription is empty")]
    Empty,
    #[error("audio format {0:?} is not one transcription accepts")]
    UnsupportedFormat(String),
}

#[derive(Deserialize)]
struct Answer {
    text: Option<String>,
    // Kept loose: a field we only report must not make a good transcript
    // unreadable when a server spells it differently.
    #[serde(default)]
    usage: Value,
    #[serde(default)]
    duration: Value,
}

impl Transcriber {
    pub fn new(settings: TranscribeSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(settings.timeout).build()?;
        let url = format!("{}/audio/transcriptions", settings.base_url.trim_end_matches('/'));
        Ok(Self { http, url, settings })
    }

    pub async fn transcribe(&self, audio: &[u8], mime: &str) -> Result<Transcript, TranscribeError> {
        let format = audio_format(mime).ok_or_else(|| TranscribeError::UnsupportedFormat(essence(mime)))?;
        let settings = &self.settings;
        let mut request = self.http.post(&self.url);
        request = match settings.api {
            TranscribeApi::OpenRouter => {
                let mut body = json!({
                    "model": settings.model,
                    "input_audio": {
                        "data": base64::engine::general_purpose::STANDARD.encode(audio),
                        "format": format,
                    },
                });
                if !settings.language.is_empty() {
                    body["language"] = Value::String(settings.language.clone());
                }
                request.json(&body)
            }
            TranscribeApi::OpenAiCompatible => {
                let file = reqwest::multipart::Part::bytes(audio.to_vec())
                    .file_name(format!("voice.{format}"))
                    .mime_str(&essence(mime))
                    .map_err(|_| TranscribeError::UnsupportedFormat(essence(mime)))?;
                let mut form = reqwest::multipart::Form::new()
                    .part("file", file)
                    .text("model", settings.model.clone())
                    .text("response_format", "json");
                if !settings.language.is_empty() {
                    form = form.text("language", settings.language.clone());
                }
                request.multipart(form)
            }
        };
        // A local Whisper server has no key, and then no header at all.
        if let Some(key) = &settings.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(unanswered)?;
        let status = response.status();
        let body = response.text().await.map_err(unanswered)?;
        if !status.is_success() {
            return Err(TranscribeError::Status { status: status.as_u16(), message: self.complaint(&body) });
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| TranscribeError::Unreadable(e.to_string()))?;
        let text = answer.text.ok_or_else(|| TranscribeError::Unreadable("no text".into()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(TranscribeError::Empty);
        }
        let seconds = answer.usage.get("seconds").and_then(Value::as_f64).or_else(|| answer.duration.as_f64());
        Ok(Transcript { text: text.to_owned(), seconds })
    }

    /// The provider's own words about a refusal (`error.message` when it
    /// answers JSON), cut short, and never the key even if echoed back.
    fn complaint(&self, body: &str) -> String {
        let json = serde_json::from_str::<Value>(body).ok();
        let message = json
            .as_ref()
            .and_then(|v| {
                // OpenAI and OpenRouter say `error.message`; simpler servers
                // a bare `error`, `message` or (FastAPI) `detail`.
                ["/error/message", "/error", "/message", "/detail"].iter().find_map(|at| v.pointer(at)?.as_str())
            })
            .unwrap_or(body);
        let mut message = message.trim().to_owned();
        if let Some(key) = &self.settings.api_key {
            let key = key.expose_secret();
            if !key.is_empty() {
                message = message.replace(key, "[key]");
            }
        }
        message.chars().take(MAX_MESSAGE_CHARS).collect()
    }
}

/// reqwest's messages name the URL, which may carry a key in its query.
fn unanswered(error: reqwest::Error) -> TranscribeError {
    if error.is_timeout() {
        TranscribeError::Timeout
    } else {
        TranscribeError::Network(error.without_url().to_string())
    }
}

/// "Audio/OGG; codecs=opus" -> "audio/ogg".
fn essence(mime: &str) -> String {
    mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// The format name transcription APIs use for a MIME type: "audio/ogg;
/// codecs=opus" -> "ogg", audio/opus -> ogg, audio/mpeg -> mp3, audio/mp4 /
/// audio/x-m4a / audio/m4a -> m4a, audio/aac -> aac, audio/amr -> amr,
/// audio/webm -> webm, audio/wav / audio/x-wav / audio/wave -> wav,
/// audio/flac -> flac. None otherwise.
pub fn audio_format(mime: &str) -> Option<&'static str> {
    Some(match essence(mime).as_str() {
        // WhatsApp voice notes are Opus in an Ogg container.
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/webm" => "webm",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/flac" => "flac",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::time::Duration;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    const AUDIO: &[u8] = b"OggS\x00\x02fake opus \xff\x00 bytes";

    fn settings(api: TranscribeApi, base: &str, key: Option<&str>) -> TranscribeSettings {
        TranscribeSettings {
            api,
            base_url: format!("{base}/"),
            api_key: key.map(|k| SecretString::from(k.to_owned())),
            model: "whisper-large-v3".into(),
            language: "id".into(),
            timeout: Duration::from_secs(5),
        }
    }

    async fn answering(template: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/audio/transcriptions")).respond_with(template).mount(&server).await;
        server
    }

    fn only_request(requests: Option<Vec<Request>>) -> Request {
        let mut requests = requests.expect("recording is on");
        assert_eq!(requests.len(), 1);
        requests.remove(0)
    }

    #[tokio::test]
    async fn openrouter_gets_base64_json_and_reports_seconds() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/audio/transcriptions"))
            .and(header("authorization", "Bearer sk-or-test"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"text": "  halo, mau tanya harga \n", "usage": {"seconds": 12.3}})),
            )
            .mount(&server)
            .await;
        let transcriber =
            Transcriber::new(settings(TranscribeApi::OpenRouter, &server.uri(), Some("sk-or-test"))).unwrap();

        let transcript = transcriber.transcribe(AUDIO, "audio/ogg; codecs=opus").await.unwrap();

        assert_eq!(transcript, Transcript { text: "halo, mau tanya harga".into(), seconds: Some(12.3) });
        let request = only_request(server.received_requests().await);
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["model"], "whisper-large-v3");
        assert_eq!(body["language"], "id");
        assert_eq!(body["input_audio"]["format"], "ogg");
        let data = body["input_audio"]["data"].as_str().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(data).unwrap(), AUDIO);
    }

    #[tokio::test]
    async fn openai_compatible_gets_a_multipart_file_and_needs_no_key() {
        let server = answering(ResponseTemplate::new(200).set_body_json(json!({"text": "oke", "duration": 3.5}))).await;
        let transcriber = Transcriber::new(settings(TranscribeApi::OpenAiCompatible, &server.uri(), None)).unwrap();

        let transcript = transcriber.transcribe(AUDIO, "audio/ogg; codecs=opus").await.unwrap();

        assert_eq!(transcript, Transcript { text: "oke".into(), seconds: Some(3.5) });
        let request = only_request(server.received_requests().await);
        assert!(request.headers.get("authorization").is_none());
        let content_type = request.headers.get("content-type").unwrap().to_str().unwrap();
        assert!(content_type.starts_with("multipart/form-data"), "{content_type}");
        let body = &request.body;
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"name=\"file\"; filename=\"voice.ogg\""));
        assert!(has(b"Content-Type: audio/ogg"));
        assert!(has(AUDIO));
        assert!(has(b"name=\"model\"\r\n\r\nwhisper-large-v3\r\n"));
        assert!(has(b"name=\"language\"\r\n\r\nid\r\n"));
        assert!(has(b"name=\"response_format\"\r\n\r\njson\r\n"));
    }

    #[tokio::test]
    async fn a_refusal_carries_the_status_and_a_short_message_without_the_key() {
        let long = format!("bad key sk-secret {}", "x".repeat(500));
        let server = answering(ResponseTemplate::new(500).set_body_json(json!({"error": {"message": long}}))).await;
        let transcriber =
            Transcriber::new(settings(TranscribeApi::OpenRouter, &server.uri(), Some("sk-secret"))).unwrap();

        let error = transcriber.transcribe(AUDIO, "audio/ogg").await.unwrap_err();

        let TranscribeError::Status { status, message } = &error else { panic!("{error:?}") };
        assert_eq!(*status, 500);
        assert!(message.starts_with("bad key [key] xxx"), "{message}");
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(!error.to_string().contains("sk-secret"));
    }

    #[tokio::test]
    async fn a_slow_server_times_out() {
        let server = answering(
            ResponseTemplate::new(200).set_body_json(json!({"text": "late"})).set_delay(Duration::from_secs(3)),
        )
        .await;
        let mut settings = settings(TranscribeApi::OpenAiCompatible, &server.uri(), None);
        settings.timeout = Duration::from_millis(200);
        let transcriber = Transcriber::new(settings).unwrap();

        let error = transcriber.transcribe(AUDIO, "audio/ogg").await.unwrap_err();

        assert!(matches!(error, TranscribeError::Timeout), "{error:?}");
    }

    #[tokio::test]
    async fn blank_text_is_an_empty_transcript() {
        let server = answering(ResponseTemplate::new(200).set_body_json(json!({"text": " \n "}))).await;
        let transcriber = Transcriber::new(settings(TranscribeApi::OpenRouter, &server.uri(), Some("k"))).unwrap();

        let error = transcriber.transcribe(AUDIO, "audio/ogg").await.unwrap_err();

        assert!(matches!(error, TranscribeError::Empty), "{error:?}");
    }

    #[tokio::test]
    async fn an_unknown_format_is_refused_before_any_request() {
        let server = answering(ResponseTemplate::new(200).set_body_json(json!({"text": "x"}))).await;
        let transcriber = Transcriber::new(settings(TranscribeApi::OpenRouter, &server.uri(), None)).unwrap();

        let error = transcriber.transcribe(AUDIO, "video/mp4").await.unwrap_err();

        assert!(matches!(&error, TranscribeError::UnsupportedFormat(m) if m == "video/mp4"), "{error:?}");
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[test]
    fn audio_formats_by_mime_type() {
        let table = [
            ("audio/ogg; codecs=opus", Some("ogg")),
            ("Audio/OGG", Some("ogg")),
            ("audio/opus", Some("ogg")),
            ("audio/mpeg", Some("mp3")),
            ("audio/mp4", Some("m4a")),
            ("audio/x-m4a", Some("m4a")),
            ("audio/m4a", Some("m4a")),
            ("audio/aac", Some("aac")),
            ("audio/amr", Some("amr")),
            ("audio/webm", Some("webm")),
            ("audio/wav", Some("wav")),
            ("audio/x-wav", Some("wav")),
            ("audio/wave", Some("wav")),
            ("audio/flac", Some("flac")),
            ("video/mp4", None),
            ("text/plain", None),
            ("", None),
        ];
        for (mime, format) in table {
            assert_eq!(audio_format(mime), format, "{mime}");
        }
    }
}
