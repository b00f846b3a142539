//! Media under load (issue 16): 200 people each send a 1 MB photo and a
//! 30 s voice note in one burst while 200 others send text, all quiet
//! windows ending together. Figures: the server's peak RSS, when the text
//! people's replies come compared with a text-only burst run just before
//! by the same binary, and how long the media turns take.
//!
//! `cargo bench --bench media`. Loopback only, bounded in count and time
//! (about a minute); stops by itself.
//!
//! The server runs in a child process (this binary started again), so its
//! RSS is its own: the fake Graph API holds 200 MB of photos and the fake
//! OpenRouter receives every photo again as base64, which in one process
//! would be counted as the server's.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use server::{message, phone, runtime, settings, start_server, text_webhook, webhook, GRAPH_MESSAGES, SECRET};
use std::collections::HashMap;
use std::future::ready;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::percentile;
use wa_ai_bridge::channels::cloud_api::sign;
use wa_ai_bridge::domain::now_ms;
use wa_ai_bridge::llm::CONNECTIONS;

#[path = "support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

const MEDIA_PEOPLE: u64 = 200;
const TEXT_PEOPLE: u64 = 200;
/// Phone numbers: text people from 0, media people and warm-ups above.
const MEDIA_PHONES: u64 = 100_000;
const WARM_UP_PHONES: u64 = 200_000;
const QUIET: Duration = Duration::from_secs(2);
/// A real model takes seconds; answering at once would make replies
/// compete with the turns being measured (as in the core bench).
const LLM_DELAY: Duration = Duration::from_secs(2);
/// Whisper-class services take about a second for 30 s of speech.
const TRANSCRIBE_DELAY: Duration = Duration::from_secs(1);
const PHOTO_BYTES: usize = 1 << 20;
/// 30 s of Opus at 16 kbit/s, as WhatsApp records voice notes.
const VOICE_BYTES: usize = 60_000;
/// Photos with different pixels; each person's copy differs in its bytes
/// (see `Media::generate`), so content addressing stores 200 files.
const DISTINCT_PIXELS: usize = 4;
const TRANSCRIPT: &str = "kak ini foto KTP saya, syarat bikin KK apa aja?";
/// The warm-up people's words: their requests open the connections a
/// running server already has, a second before the burst.
const WARM_UP: &str = "pemanasan koneksi";
/// Every answer must come within this long after the burst: two cores
/// resizing 200 photos take a minute or two.
const LIMIT: Duration = Duration::from_secs(180);
/// A second send for someone would show within this time.
const AFTER_LAST: Duration = Duration::from_secs(3);
/// Names the environment variable that makes this binary the server.
const SERVER_ROLE: &str = "MEDIA_BENCH_SERVER";

fn main() {
    // Production's allocator without the counting: the figures here are
    // RSS and time.
    support::stop_counting();
    if let Ok(config) = std::env::var(SERVER_ROLE) {
        return child::serve(&config);
    }
    // Before any thread exists: this sets `SSL_CERT_FILE`, which the child
    // inherits.
    let tls = tls::BenchTls::trusted_by_this_process();
    let generating = Instant::now();
    let media = Arc::new(Media::generate(MEDIA_PEOPLE));
    println!(
        "media    {MEDIA_PEOPLE} photos of {:.2} MB ({DISTINCT_PIXELS} different pixel sets) and voice notes of {} KB, made in {:.1} s",
        media.photos[0].len() as f64 / 1e6,
        VOICE_BYTES / 1000,
        generating.elapsed().as_secs_f64()
    );
    let text_only = run(&tls, &media, 0);
    let with_media = run(&tls, &media, MEDIA_PEOPLE);
    summary(&text_only, &with_media);
    // After the figures, so a failing run still shows them.
    for outcome in [&text_only, &with_media] {
        assert_eq!((outcome.missing, outcome.twice), (0, 0), "every person answered exactly once (missing, twice)");
    }
}

/// The files the fake Graph API serves, by person.
struct Media {
    photos: Vec<Bytes>,
    voices: Vec<Bytes>,
}

impl Media {
    fn generate(people: u64) -> Self {
        let bases: Vec<Vec<u8>> = (0..DISTINCT_PIXELS as u64).map(noisy_jpeg).collect();
        // A JPEG comment segment right after the start marker: decoders
        // skip it, so every person's photo costs the server a full decode
        // and resize, while the bytes (and the SHA-256) are the person's own.
        let photos = (0..people)
            .map(|n| {
                let base = &bases[n as usize % bases.len()];
                let comment = format!("bench person {n}");
                let length = (comment.len() + 2) as u16;
                let mut photo = Vec::with_capacity(base.len() + comment.len() + 4);
                photo.extend_from_slice(&base[..2]);
                photo.extend_from_slice(&[0xFF, 0xFE]);
                photo.extend_from_slice(&length.to_be_bytes());
                photo.extend_from_slice(comment.as_bytes());
                photo.extend_from_slice(&base[2..]);
                Bytes::from(photo)
            })
            .collect();
        let voices = (0..people)
            .map(|n| {
                let mut noise = Noise(n + 1);
                let mut voice = b"OggS".to_vec();
                voice.extend((4..VOICE_BYTES).map(|_| noise.next() as u8));
                Bytes::from(voice)
            })
            .collect();
        Media { photos, voices }
    }
}

/// A 1600×1200 photo of a gradient under noise, its noise tuned until the
/// JPEG is about 1 MB, as a phone photo is after WhatsApp's compression.
fn noisy_jpeg(seed: u64) -> Vec<u8> {
    let mut amplitude = 40.0_f64;
    let mut encoded = Vec::new();
    for _ in 0..8 {
        let mut noise = Noise(seed * 7919 + 1);
        let spread = amplitude.clamp(1.0, 255.0) as u64;
        let pixels = image::RgbImage::from_fn(1600, 1200, |x, y| {
            let mut channel = |base: u32| (base as u64 + noise.next() % spread).min(255) as u8;
            image::Rgb([channel(x * 160 / 1600), channel(y * 160 / 1200), channel(60)])
        });
        encoded.clear();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 85);
        pixels.write_with_encoder(encoder).unwrap();
        let ratio = PHOTO_BYTES as f64 / encoded.len() as f64;
        if (0.95..1.05).contains(&ratio) {
            break;
        }
        amplitude *= ratio;
    }
    encoded
}

/// xorshift64: fast, repeatable, good enough to defeat compression.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the fakes saw in one run.
#[derive(Default)]
struct Seen {
    /// Each recipient's sends, at the wall-clock millisecond they arrived.
    sends: Mutex<HashMap<String, Vec<i64>>>,
    requests: AtomicU64,
    downloads: AtomicU64,
    transcriptions: AtomicU64,
    /// Chat requests that carried a photo.
    with_photo: AtomicU64,
}

impl Seen {
    fn answered(&self, phones: &[String]) -> usize {
        let sends = self.sends.lock().unwrap();
        phones.iter().filter(|to| sends.contains_key(*to)).count()
    }
}

/// The fake OpenRouter (HTTPS with HTTP/2, as the real one: chat and
/// transcription) and the fake Graph API (sends, media metadata, the CDN).
async fn fakes(seen: Arc<Seen>, media: Arc<Media>, tls: &tls::BenchTls) -> (String, String) {
    let chat_seen = Arc::clone(&seen);
    let transcribe_seen = Arc::clone(&seen);
    let llm = Router::new()
        .route(
            "/api/v1/chat/completions",
            post(move |body: Bytes| {
                // A text turn is a few KB; a turn with a photo carries it
                // as base64, over a megabyte.
                if body.len() > 100_000 {
                    chat_seen.with_photo.fetch_add(1, Ordering::Relaxed);
                }
                async {
                    tokio::time::sleep(LLM_DELAY).await;
                    Json(json!({ "model": "m", "choices": [{ "message": { "role": "assistant", "content": "Halo kak!" } }] }))
                }
            }),
        )
        .route(
            "/api/v1/audio/transcriptions",
            post(move || {
                transcribe_seen.transcriptions.fetch_add(1, Ordering::Relaxed);
                async {
                    tokio::time::sleep(TRANSCRIBE_DELAY).await;
                    Json(json!({ "text": TRANSCRIPT, "usage": { "seconds": 30 } }))
                }
            }),
        );
    let sends_seen = Arc::clone(&seen);
    let cdn_media = Arc::clone(&media);
    let graph = Router::new()
        .route(
            GRAPH_MESSAGES,
            post(move |Json(body): Json<Value>| {
                let id = sends_seen.requests.fetch_add(1, Ordering::Relaxed);
                // Read receipts and typing indicators name no recipient.
                if let Some(to) = body["to"].as_str() {
                    sends_seen.sends.lock().unwrap().entry(to.to_owned()).or_default().push(now_ms());
                }
                // Each send has an id of its own: the outbox records it.
                ready(Json(json!({ "messages": [{ "id": format!("wamid.out.{id}") }] })))
            }),
        )
        .route(
            "/v23.0/{id}",
            get(move |Path(id): Path<String>, headers: HeaderMap| {
                let Some((mime, bytes)) = authorized(&headers).then(|| file(&media, &id)).flatten() else {
                    return ready(StatusCode::NOT_FOUND.into_response());
                };
                // The URL points back at this server, whatever port it got.
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
                ready(
                    Json(json!({ "messaging_product": "whatsapp", "url": format!("http://{host}/cdn/{id}"),
                        "mime_type": mime, "file_size": bytes.len(), "id": id }))
                    .into_response(),
                )
            }),
        )
        .route(
            "/cdn/{id}",
            get(move |Path(id): Path<String>, headers: HeaderMap| {
                ready(match authorized(&headers).then(|| file(&cdn_media, &id)).flatten() {
                    Some((mime, bytes)) => {
                        seen.downloads.fetch_add(1, Ordering::Relaxed);
                        ([(header::CONTENT_TYPE, mime)], bytes).into_response()
                    }
                    None => StatusCode::NOT_FOUND.into_response(),
                })
            }),
        );
    (tls.serve(llm, server::listen()).await, server::serve(graph).await)
}

/// As on Meta's side: media only with the access token.
fn authorized(headers: &HeaderMap) -> bool {
    headers.get(header::AUTHORIZATION).is_some_and(|value| value == "Bearer token")
}

/// `photo-<n>` or `voice-<n>`: its type and bytes.
fn file(media: &Media, id: &str) -> Option<(&'static str, Bytes)> {
    let (kind, n) = id.split_once('-')?;
    let n: usize = n.parse().ok()?;
    match kind {
        "photo" => Some(("image/jpeg", media.photos.get(n)?.clone())),
        "voice" => Some(("audio/ogg; codecs=opus", media.voices.get(n)?.clone())),
        _ => None,
    }
}

/// The burst of person `n` of the media people: a photo and a voice note,
/// in one webhook as WhatsApp delivers messages sent together.
fn media_webhook(n: u64) -> String {
    let phone_n = MEDIA_PHONES + n;
    webhook(
        phone_n,
        vec![
            message(
                phone_n,
                &format!("wamid.photo.{n}"),
                "image",
                json!({ "id": format!("photo-{n}"), "mime_type": "image/jpeg" }),
            ),
            message(
                phone_n,
                &format!("wamid.voice.{n}"),
                "audio",
                json!({ "id": format!("voice-{n}"), "mime_type": "audio/ogg; codecs=opus", "voice": true }),
            ),
        ],
    )
}

/// What one run measured.
struct Outcome {
    media_people: u64,
    /// Text people: reply arrival minus the deadline minus the fake LLM's
    /// fixed delay, i.e. what the server adds; sorted.
    text_lag: Vec<Duration>,
    /// Media people: reply arrival minus the deadline (includes the fake
    /// transcription's 1 s and the fake LLM's 2 s); sorted.
    media_lag: Vec<Duration>,
    /// From the burst's first webhook to the last media person's reply.
    media_wall: Duration,
    rss_before_kb: u64,
    peak_rss_kb: u64,
    /// Highest of the 50 ms samples, a check on VmHWM.
    sampled_peak_kb: u64,
    /// People of the burst with no answer within `LIMIT`, or more than one.
    missing: usize,
    twice: usize,
    downloads: u64,
    transcriptions: u64,
    with_photo: u64,
}

/// One burst against a fresh server: `TEXT_PEOPLE` text people and
/// `media_people` media people.
fn run(tls: &tls::BenchTls, media: &Arc<Media>, media_people: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let fakes_rt = runtime(1, "fakes");
    let (llm, graph) = fakes_rt.block_on(fakes(Arc::clone(&seen), Arc::clone(media), tls));
    let extra = [
        ("MESSAGE_BUFFER_SECONDS", QUIET.as_secs_f64().to_string()),
        ("OPENROUTER_URL", format!("{llm}/api/v1/chat/completions")),
        ("WHATSAPP_GRAPH_BASE", graph),
        // Whatever the default model: photos reach it as image parts.
        ("LLM_VISION", "true".to_string()),
    ];
    let mut server = child::Server::start(dir.path(), &extra);
    let client_rt = runtime(1, "client");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/webhook/whatsapp", server.port);

    // The warm-up people fall due a second before the burst.
    let warm_ups: Vec<String> = (0..CONNECTIONS as u64).map(|k| text_webhook(WARM_UP_PHONES + k, k, WARM_UP)).collect();
    client_rt.block_on(deliver(&client, &url, warm_ups));
    std::thread::sleep(QUIET + Duration::from_secs(1));
    let warm_phones: Vec<String> = (0..CONNECTIONS as u64).map(|k| phone(WARM_UP_PHONES + k)).collect();
    wait_for(&seen, &warm_phones, Instant::now() + Duration::from_secs(10));
    let rss_before_kb = server.status("VmRSS:");

    // Built and signed up front, so sending them takes milliseconds.
    let questions = support::evaluation_questions();
    let mut bodies: Vec<String> =
        (0..TEXT_PEOPLE).map(|n| text_webhook(n, 1_000 + n, &questions[n as usize % questions.len()])).collect();
    bodies.extend((0..media_people).map(media_webhook));
    let sampler = Sampler::start(server.pid());
    let (burst, burst_ms) = (Instant::now(), now_ms());
    let acknowledged = client_rt.block_on(deliver(&client, &url, bodies));
    let deadlines: Vec<i64> = acknowledged.iter().map(|at| at + QUIET.as_millis() as i64).collect();

    let text_phones: Vec<String> = (0..TEXT_PEOPLE).map(phone).collect();
    let media_phones: Vec<String> = (0..media_people).map(|n| phone(MEDIA_PHONES + n)).collect();
    let everyone: Vec<String> = text_phones.iter().chain(&media_phones).cloned().collect();
    wait_for(&seen, &everyone, burst + LIMIT);
    let last_media =
        seen.sends.lock().unwrap().iter().filter(|(to, _)| media_phones.contains(*to)).map(|(_, at)| at[0]).max();
    std::thread::sleep(AFTER_LAST);
    let sampled_peak_kb = sampler.stop();
    let peak_rss_kb = server.status("VmHWM:");
    server.stop();

    let sends = seen.sends.lock().unwrap();
    let (missing, twice) = not_exactly_once(&sends, &everyone);
    // Of those answered; `missing` counts the others.
    let lag = |phones: &[String], deadlines: &[i64], minus: Duration| {
        let mut lag: Vec<Duration> = phones
            .iter()
            .zip(deadlines)
            .filter_map(|(to, deadline)| Some((sends.get(to)?[0] - deadline).max(0) as u64))
            .map(|late| Duration::from_millis(late).saturating_sub(minus))
            .collect();
        lag.sort();
        lag
    };
    let outcome = Outcome {
        media_people,
        text_lag: lag(&text_phones, &deadlines[..TEXT_PEOPLE as usize], LLM_DELAY),
        media_lag: lag(&media_phones, &deadlines[TEXT_PEOPLE as usize..], Duration::ZERO),
        media_wall: Duration::from_millis(last_media.map_or(0, |at| (at - burst_ms).max(0) as u64)),
        rss_before_kb,
        peak_rss_kb,
        sampled_peak_kb,
        missing,
        twice,
        downloads: seen.downloads.load(Ordering::Relaxed),
        transcriptions: seen.transcriptions.load(Ordering::Relaxed),
        with_photo: seen.with_photo.load(Ordering::Relaxed),
    };
    outcome.report();
    client_rt.shutdown_background();
    fakes_rt.shutdown_background();
    outcome
}

/// Posts every body at once, signed; returns when each was acknowledged
/// (wall-clock ms), in the order given. The acknowledgement comes after
/// the messages are stored, so a deadline reckoned from it is at most a
/// commit later than the server's own, and lag is never overstated.
async fn deliver(client: &reqwest::Client, url: &str, bodies: Vec<String>) -> Vec<i64> {
    let requests: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let signature = sign(SECRET.as_bytes(), body.as_bytes());
            let request = client.post(url).header("x-hub-signature-256", signature).body(body).send();
            tokio::spawn(async move {
                let response = request.await.expect("server answers");
                assert_eq!(response.status(), 200, "webhook stored");
                now_ms()
            })
        })
        .collect();
    let mut acknowledged = Vec::with_capacity(requests.len());
    for request in requests {
        acknowledged.push(request.await.unwrap());
    }
    acknowledged
}

fn wait_for(seen: &Seen, phones: &[String], until: Instant) {
    while seen.answered(phones) < phones.len() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many people of the burst had no send, and how many more than one.
fn not_exactly_once(sends: &HashMap<String, Vec<i64>>, phones: &[String]) -> (usize, usize) {
    let missing = phones.iter().filter(|to| !sends.contains_key(*to)).count();
    let twice = phones.iter().filter(|to| sends.get(*to).is_some_and(|at| at.len() > 1)).count();
    (missing, twice)
}

/// The child's VmRSS every 50 ms, keeping the highest.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(child::status(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A percentile in ms; 0 when nobody was answered.
fn ms(sorted: &[Duration], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    percentile(sorted, p).as_millis()
}

impl Outcome {
    fn name(&self) -> String {
        match self.media_people {
            0 => format!("text only: {TEXT_PEOPLE} text turns"),
            media => format!("with media: {TEXT_PEOPLE} text + {media} photo-and-voice turns"),
        }
    }

    fn report(&self) {
        println!("media    {}, windows ending together", self.name());
        println!(
            "         server RSS {} MB before the burst, peak {} MB (VmHWM; 50 ms samples {} MB)",
            self.rss_before_kb / 1024,
            self.peak_rss_kb / 1024,
            self.sampled_peak_kb / 1024
        );
        println!(
            "         text turns, reply after the deadline less the LLM's {} s: p50 {} ms, p99 {} ms, max {} ms",
            LLM_DELAY.as_secs(),
            ms(&self.text_lag, 0.50),
            ms(&self.text_lag, 0.99),
            ms(&self.text_lag, 1.0)
        );
        if self.media_people > 0 {
            println!(
                "         media turns, reply after the deadline (transcription {} s + LLM {} s included): p50 {} ms, p99 {} ms, max {} ms",
                TRANSCRIBE_DELAY.as_secs(),
                LLM_DELAY.as_secs(),
                ms(&self.media_lag, 0.50),
                ms(&self.media_lag, 0.99),
                ms(&self.media_lag, 1.0)
            );
            println!(
                "         {} of {} media turns answered, the last {:.1} s after the burst; {} downloads, {} transcriptions, {} chat requests with a photo",
                self.media_lag.len(),
                self.media_people,
                self.media_wall.as_secs_f64(),
                self.downloads,
                self.transcriptions,
                self.with_photo
            );
        }
        match (self.missing, self.twice) {
            (0, 0) => println!("         every person answered exactly once"),
            (missing, twice) => println!(
                "         NOT exactly once: {missing} unanswered within {} s, {twice} answered more than once",
                LIMIT.as_secs()
            ),
        }
    }
}

/// The block README takes.
fn summary(text_only: &Outcome, with_media: &Outcome) {
    let p99 = |outcome: &Outcome| ms(&outcome.text_lag, 0.99);
    println!();
    println!("Media burst (`cargo bench --bench media`): {TEXT_PEOPLE} text people, then the same with {MEDIA_PEOPLE} people more each");
    println!("sending a ~1 MB photo and a 30 s voice note, all quiet windows ending together; fakes on loopback");
    println!(
        "(transcription {} s, LLM {} s); the server alone in a child process.",
        TRANSCRIBE_DELAY.as_secs(),
        LLM_DELAY.as_secs()
    );
    println!();
    println!("| | text only | with media |");
    println!("|---|---|---|");
    println!(
        "| server peak RSS (VmHWM; goal < 300 MB) | {} MB | {} MB |",
        text_only.peak_rss_kb / 1024,
        with_media.peak_rss_kb / 1024
    );
    println!(
        "| text turns' lag past the deadline, p50 / p99 | {} / {} ms | {} / {} ms ({:.2}× the p99) |",
        ms(&text_only.text_lag, 0.50),
        p99(text_only),
        ms(&with_media.text_lag, 0.50),
        p99(with_media),
        p99(with_media) as f64 / p99(text_only).max(1) as f64
    );
    println!(
        "| media turns answered (the last after the burst) | | {} of {} in {:.1} s |",
        with_media.media_lag.len(),
        with_media.media_people,
        with_media.media_wall.as_secs_f64()
    );
    println!(
        "| people unanswered / answered twice | {} / {} | {} / {} |",
        text_only.missing, text_only.twice, with_media.missing, with_media.twice
    );
}

/// The server in a process of its own: the parent starts this binary again
/// with `SERVER_ROLE` set, reads the port from its first line, and reads
/// its memory from `/proc`.
mod child {
    use super::*;

    pub struct Server {
        process: Child,
        /// Closing it tells the child to exit.
        stdin: Option<ChildStdin>,
        pub port: u16,
    }

    impl Server {
        pub fn start(data_dir: &std::path::Path, extra: &[(&str, String)]) -> Self {
            let mut config = vec![data_dir.display().to_string()];
            config.extend(extra.iter().map(|(key, value)| format!("{key}={value}")));
            let mut process = Command::new(std::env::current_exe().unwrap())
                .env(SERVER_ROLE, config.join("\n"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("server process starts");
            let mut first = String::new();
            std::io::BufReader::new(process.stdout.take().unwrap()).read_line(&mut first).unwrap();
            let port = first.trim().parse().expect("the server's port");
            let stdin = process.stdin.take();
            Server { process, stdin, port }
        }

        pub fn pid(&self) -> u32 {
            self.process.id()
        }

        pub fn status(&self, field: &str) -> u64 {
            status(self.pid(), field)
        }

        pub fn stop(&mut self) {
            drop(self.stdin.take());
            self.process.wait().unwrap();
        }
    }

    /// A field of `/proc/<pid>/status` in kB.
    pub fn status(pid: u32, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status.lines().find_map(|line| line.strip_prefix(field)?.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    }

    /// The child's side: serve until the parent closes stdin (or exits).
    pub fn serve(config: &str) {
        let mut lines = config.lines();
        let data_dir = std::path::PathBuf::from(lines.next().unwrap());
        let extra: Vec<(&str, String)> =
            lines.filter_map(|line| line.split_once('=')).map(|(key, value)| (key, value.to_owned())).collect();
        let (_server, port) = start_server(settings(&data_dir, &extra));
        println!("{port}");
        std::io::stdout().flush().unwrap();
        std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).ok();
        // No orderly shutdown to wait for: the parent has what it needs.
        std::process::exit(0);
    }
}
