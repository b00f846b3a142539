//! Reads the files of a claimed turn: downloads what is not stored yet,
//! transcribes voice notes, reads documents, prepares photos. Each step's
//! result is stored before the next step uses it, so a turn taken over
//! after a crash resumes where the last attempt got to.

use super::fetch::{DownloadError, Downloaded, MediaFetch, MediaLimits};
use super::files::MediaFiles;
use super::image::to_data_url;
use super::transcribe::Transcriber;
use super::turn::TurnInput;
use crate::config::MediaSettings;
use crate::domain::AccountName;
use crate::knowledge::read_customer_document;
use crate::store::{MediaStep, MessageMedia, Store, TurnMessage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a customer's PDF may take to read; the knowledge base gives
/// its own documents longer.
const DOCUMENT_READ_LIMIT: Duration = Duration::from_secs(10);

/// Turns whose photos are prepared and waiting for the model at once. A
/// prepared photo is up to about 1.5 MB of base64 (a 1568 px JPEG of a
/// noisy scene), and `MEDIA_PER_TURN_MAX` of them per turn: this bounds
/// what a burst of photos holds in memory, whatever the burst; later turns
/// with photos wait for a place, text turns never do.
const PHOTO_TURNS_IN_FLIGHT: usize = 32;

/// Enough to keep a link to Meta's CDN busy; more only adds buffers.
const DOWNLOADS_IN_FLIGHT: usize = 16;

pub struct MediaReader {
    store: Store,
    files: MediaFiles,
    fetch: HashMap<AccountName, Arc<dyn MediaFetch>>,
    transcriber: Option<Transcriber>,
    limits: MediaLimits,
    per_turn_max: usize,
    doc_max_chars: usize,
    image_max_side: u32,
    vision: bool,
    /// Photos decoded and documents read at once. Each decoded photo holds
    /// its pixels (a 12-megapixel photo is 36 MB) and a core: unbounded, a
    /// burst of photos takes all the memory and leaves the text turns'
    /// answers waiting for CPU.
    heavy: Semaphore,
    /// Turns with photos between preparing them and the model's answer.
    photo_places: Arc<Semaphore>,
    /// Downloads at once: each holds a connection's read buffer and a file
    /// being written, which a burst of hundreds would multiply.
    downloads: Semaphore,
}

pub struct ReaderParts {
    pub store: Store,
    pub files: MediaFiles,
    /// Where each account's media ids are downloaded: with that account's
    /// credentials. An account without a token has none.
    pub fetch: HashMap<AccountName, Arc<dyn MediaFetch>>,
    pub transcriber: Option<Transcriber>,
    pub settings: MediaSettings,
    /// Whether the model sees photos.
    pub vision: bool,
}

/// How a message's file ended up, in the words of the `media_outcome`
/// column and the `wa_media_total{outcome}` label.
mod outcome {
    pub const DOWNLOADED: &str = "downloaded";
    pub const READ: &str = "read";
    pub const OVER_TURN_LIMIT: &str = "over_turn_limit";
    pub const NO_FILE: &str = "no_file";
    pub const TRANSCRIPTION_FAILED: &str = "transcription_failed";
    pub const UNREADABLE: &str = "unreadable";
}

impl MediaReader {
    pub fn new(parts: ReaderParts) -> Self {
        let settings = parts.settings;
        Self {
            store: parts.store,
            files: parts.files,
            fetch: parts.fetch,
            transcriber: parts.transcriber,
            limits: MediaLimits {
                max_bytes: settings.max_bytes,
                timeout: settings.download_timeout,
                allowed_types: settings.allowed_types,
            },
            per_turn_max: settings.per_turn_max,
            doc_max_chars: settings.doc_max_chars,
            image_max_side: settings.image_max_side,
            vision: parts.vision,
            heavy: Semaphore::new(heavy_work_permits()),
            photo_places: Arc::new(Semaphore::new(PHOTO_TURNS_IN_FLIGHT)),
            downloads: Semaphore::new(DOWNLOADS_IN_FLIGHT),
        }
    }

    pub fn files(&self) -> &MediaFiles {
        &self.files
    }

    /// The turn's messages in order, with what their files say. Never
    /// fails: what cannot be read becomes a note, so the person still gets
    /// an answer. Without `transcribe`, voice notes not transcribed yet
    /// stay unread (the person is over their limit and gets no LLM answer).
    pub async fn read_turn(
        &self,
        account: &AccountName,
        turn_id: &str,
        messages: &[TurnMessage],
        transcribe: bool,
    ) -> TurnInput {
        let mut input = TurnInput::default();
        let quotes = self.quotes(turn_id, messages).await;
        let mut files_left = self.per_turn_max;
        for message in messages {
            if let Some(quoted) = message.reply_to.as_ref().and_then(|id| quotes.get(id)) {
                input.note(format!("[membalas pesan: \"{quoted}\"]"));
            }
            let Some(media) = &message.media else {
                if let Some(body) = &message.body {
                    input.words(body.clone());
                }
                continue;
            };
            let kind = Kind::of(&message.kind);
            if files_left == 0 {
                input.note(format!("[{} tidak dibaca: terlalu banyak berkas sekaligus]", kind.noun()));
                self.count(kind, outcome::OVER_TURN_LIMIT);
            } else {
                files_left -= 1;
                input.usage.files += 1;
                let fetch = self.fetch.get(account).map(Arc::as_ref);
                self.read_message(fetch, message, media, kind, transcribe, &mut input).await;
            }
            if let Some(caption) = &message.body {
                input.words(caption.clone());
            }
        }
        input
    }

    async fn quotes(&self, turn_id: &str, messages: &[TurnMessage]) -> HashMap<String, String> {
        let ids: Vec<&str> = messages.iter().filter_map(|m| m.reply_to.as_deref()).collect();
        if ids.is_empty() {
            return HashMap::new();
        }
        self.store.quoted_messages(&ids).await.unwrap_or_else(|error| {
            tracing::warn!(turn = %turn_id, %error, "could not look up the messages replied to");
            HashMap::new()
        })
    }

    async fn read_message(
        &self,
        fetch: Option<&dyn MediaFetch>,
        message: &TurnMessage,
        media: &MessageMedia,
        kind: Kind,
        transcribe: bool,
        input: &mut TurnInput,
    ) {
        let id = message.wa_message_id.as_str();
        let mut media = media.clone();
        if media.outcome.is_none() {
            media = self.download(fetch, id, media, kind).await;
        }
        if kind == Kind::Audio && self.transcriber.is_none() {
            // Kept for the admin page only; the turn reads as it did before
            // transcription existed, and a turn of voice notes alone gets
            // the "please write" answer.
            return;
        }
        match media.outcome.as_deref() {
            Some(outcome::DOWNLOADED) | Some(outcome::READ) => {}
            Some(failure) => {
                tracing::info!(message = %id, kind = kind.name(), outcome = failure, "file not read");
                return input.note(kind.failure_note(failure));
            }
            None => return input.note(kind.failure_note(outcome::NO_FILE)),
        }
        match kind {
            Kind::Audio => self.voice_note(id, &media, transcribe, input).await,
            Kind::Document => self.document(id, &media, input).await,
            Kind::Image => self.photo(id, &media, input).await,
            Kind::Video => input.note("[video; bot tidak dapat menonton video]"),
        }
    }

    /// Downloads the file and stores the outcome, whatever it is.
    async fn download(
        &self,
        fetch: Option<&dyn MediaFetch>,
        id: &str,
        mut media: MessageMedia,
        kind: Kind,
    ) -> MessageMedia {
        let outcome = match (fetch, &media.media_id) {
            (_, None) => Err(outcome::NO_FILE),
            (None, Some(_)) => Err("not_configured"),
            (Some(fetch), Some(media_id)) => match self.fetch_one(fetch, media_id).await {
                Ok(downloaded) => Ok(downloaded),
                Err(error) => {
                    tracing::warn!(message = %id, kind = kind.name(), %error, "media download failed");
                    Err(error.label())
                }
            },
        };
        let step = match &outcome {
            Ok(downloaded) => MediaStep {
                outcome: outcome::DOWNLOADED,
                file: Some(&downloaded.file.sha256),
                bytes: Some(downloaded.file.bytes as i64),
                mime: Some(&downloaded.mime),
                ..MediaStep::default()
            },
            Err(label) => MediaStep { outcome: label, ..MediaStep::default() },
        };
        self.count(kind, step.outcome);
        // Unstored, the next attempt downloads again: no worse than now.
        if let Err(error) = self.store.record_media(id, &step).await {
            tracing::warn!(message = %id, %error, "could not store what the download learned");
        }
        media.outcome = Some(step.outcome.to_owned());
        if let Ok(downloaded) = outcome {
            media.file = Some(downloaded.file.sha256);
            media.mime = Some(downloaded.mime);
        }
        media
    }

    async fn fetch_one(&self, fetch: &dyn MediaFetch, media_id: &str) -> Result<Downloaded, DownloadError> {
        let _permit = self.downloads.acquire().await;
        fetch.fetch(media_id, &self.files, &self.limits).await
    }

    async fn voice_note(&self, id: &str, media: &MessageMedia, transcribe: bool, input: &mut TurnInput) {
        if let Some(transcript) = &media.text {
            return input.words(format!("[pesan suara] {transcript}"));
        }
        let Some(transcriber) = self.transcriber.as_ref().filter(|_| transcribe) else { return };
        let Some(bytes) = self.stored_bytes(id, media).await else {
            return input.note(Kind::Audio.failure_note(outcome::NO_FILE));
        };
        let started = Instant::now();
        let result = transcriber.transcribe(&bytes, media.mime.as_deref().unwrap_or("audio/ogg")).await;
        metrics::histogram!("wa_transcription_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(transcript) => {
                let audio_ms = transcript.seconds.map(|s| (s * 1000.0).round() as i64);
                input.usage.audio_ms += audio_ms.unwrap_or(0);
                let step = MediaStep {
                    outcome: outcome::READ,
                    text: Some(&transcript.text),
                    audio_ms,
                    ..MediaStep::default()
                };
                self.store_step(id, &step).await;
                self.count(Kind::Audio, outcome::READ);
                input.words(format!("[pesan suara] {}", transcript.text));
            }
            Err(error) => {
                tracing::warn!(message = %id, %error, "transcription failed");
                self.store_step(id, &MediaStep { outcome: outcome::TRANSCRIPTION_FAILED, ..MediaStep::default() })
                    .await;
                self.count(Kind::Audio, outcome::TRANSCRIPTION_FAILED);
                input.note(Kind::Audio.failure_note(outcome::TRANSCRIPTION_FAILED));
            }
        }
    }

    async fn document(&self, id: &str, media: &MessageMedia, input: &mut TurnInput) {
        let name = media.file_name.clone().unwrap_or_else(|| "dokumen".into());
        if let Some(text) = &media.text {
            return input.document(name, text.clone());
        }
        let _permit = self.heavy.acquire().await;
        let Some(bytes) = self.stored_bytes(id, media).await else {
            return input.note(Kind::Document.failure_note(outcome::NO_FILE));
        };
        let is_pdf = media.mime.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("application/pdf"))
            || bytes.starts_with(b"%PDF");
        match read_customer_document(bytes, is_pdf, DOCUMENT_READ_LIMIT).await {
            Ok(text) => {
                let text = first_chars(&text, self.doc_max_chars);
                let chars = text.chars().count() as i64;
                let step =
                    MediaStep { outcome: outcome::READ, text: Some(&text), chars: Some(chars), ..MediaStep::default() };
                self.store_step(id, &step).await;
                self.count(Kind::Document, outcome::READ);
                input.document(name, text);
            }
            Err(reason) => {
                tracing::info!(message = %id, %reason, "customer's document unreadable");
                self.store_step(id, &MediaStep { outcome: outcome::UNREADABLE, ..MediaStep::default() }).await;
                self.count(Kind::Document, outcome::UNREADABLE);
                input.note(format!("[dokumen {name} tidak bisa dibaca: {reason}]"));
            }
        }
    }

    async fn photo(&self, id: &str, media: &MessageMedia, input: &mut TurnInput) {
        if !self.vision {
            return input.note("[gambar; bot tidak dapat melihat gambar, hanya keterangannya]");
        }
        if !input.has_photo_place() {
            if let Ok(place) = Arc::clone(&self.photo_places).acquire_owned().await {
                input.hold_photo_place(place);
            }
        }
        let _permit = self.heavy.acquire().await;
        let Some(bytes) = self.stored_bytes(id, media).await else {
            return input.note(Kind::Image.failure_note(outcome::NO_FILE));
        };
        let max_side = self.image_max_side;
        let prepared = tokio::task::spawn_blocking(move || to_data_url(&bytes, max_side)).await;
        match prepared {
            Ok(Ok(image)) => {
                input.note("[gambar]");
                input.image(image.data_url);
            }
            Ok(Err(error)) => {
                tracing::info!(message = %id, %error, "photo unreadable");
                input.note(Kind::Image.failure_note(outcome::UNREADABLE));
            }
            Err(_) => input.note(Kind::Image.failure_note(outcome::UNREADABLE)),
        }
    }

    async fn stored_bytes(&self, id: &str, media: &MessageMedia) -> Option<Vec<u8>> {
        let file = media.file.as_deref()?;
        match self.files.read(file).await {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::warn!(message = %id, %error, "stored media file missing");
                None
            }
        }
    }

    async fn store_step(&self, id: &str, step: &MediaStep<'_>) {
        if let Err(error) = self.store.record_media(id, step).await {
            tracing::warn!(message = %id, %error, "could not store what reading the file learned");
        }
    }

    fn count(&self, kind: Kind, outcome: &str) {
        metrics::counter!("wa_media_total", "kind" => kind.name(), "outcome" => outcome.to_owned()).increment(1);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Audio,
    Image,
    Document,
    Video,
}

impl Kind {
    fn of(kind: &str) -> Self {
        match kind {
            "audio" | "voice" => Kind::Audio,
            "image" | "sticker" => Kind::Image,
            "video" => Kind::Video,
            _ => Kind::Document,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Image => "image",
            Kind::Document => "document",
            Kind::Video => "video",
        }
    }

    /// Indonesian, like the rest of the turn; the model explains it to the
    /// person in its own words.
    fn noun(self) -> &'static str {
        match self {
            Kind::Audio => "pesan suara",
            Kind::Image => "gambar",
            Kind::Document => "dokumen",
            Kind::Video => "video",
        }
    }

    fn failure_note(self, outcome: &str) -> String {
        let noun = self.noun();
        let why = match outcome {
            "too_large" => "tidak bisa diunduh: berkas terlalu besar",
            "refused_type" => "tidak bisa dibuka: jenis berkas tidak didukung",
            outcome::TRANSCRIPTION_FAILED => "tidak bisa didengarkan saat ini",
            outcome::UNREADABLE => "tidak bisa dibaca",
            _ => "tidak bisa diunduh",
        };
        format!("[{noun} {why}]")
    }
}

/// One core is left to the runtime that answers everyone else.
fn heavy_work_permits() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
}

fn first_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
