//! Soak: many people writing over a long stretch, watched from outside the
//! server only (signed webhooks in, sends at the fake Graph API out), so it
//! holds whatever the sending path becomes. Every conversation must be
//! answered exactly once; the figures are throughput, deadline-to-reply,
//! peak memory and open file descriptors.
//!
//! `cargo bench --bench soak`: 10,000 conversations of 3 messages over a
//! minute, a short quiet window, done in about two minutes.
//! `SOAK_MINUTES=10 cargo bench --bench soak`: the same steady load for ten
//! minutes, a release check. Loopback only, bounded in count and time.

use axum::body::Bytes;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use server::{phone, runtime, settings, start_server, text_webhook, GRAPH_MESSAGES, SECRET};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::percentile;
use wa_ai_bridge::channels::cloud_api::sign;
use wa_ai_bridge::domain::now_ms;

#[path = "support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

/// The quick variant's load, which the long one keeps up for longer.
const CONVERSATIONS_PER_MINUTE: u64 = 10_000;
const MESSAGES: u64 = 3;
/// Between one person's messages: well inside the quiet window.
const TYPING_GAP: Duration = Duration::from_millis(400);
const QUIET: Duration = Duration::from_secs(2);
/// The fake LLM answers after 1 s plus up to this much.
const LLM_SPREAD_MS: u64 = 2_000;
/// How long after the last deadline a missing answer may still arrive, and
/// a second send for an answered conversation would show.
const GRACE: Duration = Duration::from_secs(30);
const AFTER_LAST: Duration = Duration::from_secs(5);
/// Marks the conversation in each message, so the fake LLM can pick the
/// same delay for a person whatever the order of requests.
const TAG: &str = "[soak ";

fn main() {
    let minutes: u64 =
        std::env::var("SOAK_MINUTES").ok().map(|m| m.parse().expect("SOAK_MINUTES: whole minutes")).unwrap_or(1);
    let conversations = CONVERSATIONS_PER_MINUTE * minutes;
    let spread = Duration::from_secs(60 * minutes);
    // Before any thread exists: this sets `SSL_CERT_FILE`.
    let tls = tls::BenchTls::trusted_by_this_process();
    let dir = tempfile::tempdir().unwrap();
    let graph = Arc::new(Graph::default());
    let fakes_rt = runtime(1, "fakes");
    let (llm_url, graph_url) = fakes_rt.block_on(fakes(Arc::clone(&graph), &tls));
    let settings = settings(
        dir.path(),
        &[
            ("MESSAGE_BUFFER_SECONDS", QUIET.as_secs_f64().to_string()),
            ("OPENROUTER_URL", format!("{llm_url}/api/v1/chat/completions")),
            ("WHATSAPP_GRAPH_BASE", graph_url),
        ],
    );
    let (server_rt, port) = start_server(settings);
    let monitor = Monitor::start(Arc::clone(&graph));

    let started = Instant::now();
    let deadlines = write(port, conversations, spread);
    let run = Run { minutes, conversations, writing: started.elapsed(), deadlines };
    let answered = graph.wait_for(conversations as usize, started + spread + GRACE);
    // Any second send for someone shows up in this time.
    std::thread::sleep(AFTER_LAST);
    let peak = monitor.stop();
    let end = Sample::now();

    let sends = graph.sends.lock().unwrap();
    run.report(&sends, graph.receipts.load(Ordering::Relaxed), &peak, &end);
    assert_eq!(answered, conversations as usize, "every conversation answered within {GRACE:?} of the last message");
    check_exactly_once(conversations, &sends);
    server_rt.shutdown_background();
    fakes_rt.shutdown_background();
}

/// What the fake Graph API received: each recipient's sends, at the
/// wall-clock millisecond they arrived, and how many read receipts.
#[derive(Default)]
struct Graph {
    sends: Mutex<HashMap<String, Vec<i64>>>,
    answered: AtomicU64,
    receipts: AtomicU64,
    requests: AtomicU64,
}

impl Graph {
    /// Counts a request and returns a number no other request gets.
    fn record(&self, body: &Value) -> u64 {
        let id = self.requests.fetch_add(1, Ordering::Relaxed);
        match body["to"].as_str() {
            Some(to) => {
                let mut sends = self.sends.lock().unwrap();
                let times = sends.entry(to.to_owned()).or_default();
                if times.is_empty() {
                    self.answered.fetch_add(1, Ordering::Relaxed);
                }
                times.push(now_ms());
            }
            None => {
                self.receipts.fetch_add(1, Ordering::Relaxed);
            }
        }
        id
    }

    /// How many people have an answer, once all `count` do or at `until`.
    fn wait_for(&self, count: usize, until: Instant) -> usize {
        while (self.answered.load(Ordering::Relaxed) as usize) < count && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.answered.load(Ordering::Relaxed) as usize
    }
}

/// The fake OpenRouter (HTTPS with HTTP/2, as the real one) answering after
/// 1–3 s, and the fake Graph API accepting every send.
async fn fakes(graph: Arc<Graph>, tls: &tls::BenchTls) -> (String, String) {
    let llm = Router::new().route(
        "/api/v1/chat/completions",
        post(|body: Bytes| async move {
            tokio::time::sleep(llm_delay(conversation_of(&body))).await;
            Json(json!({ "model": "m", "choices": [{ "message": { "role": "assistant", "content": "Halo kak! Syaratnya KTP dan KK ya." } }] }))
        }),
    );
    let graph = Router::new().route(
        GRAPH_MESSAGES,
        post(move |Json(body): Json<Value>| async move {
            // Each accepted message has an id of its own, as on WhatsApp:
            // the outbox records sends by it.
            let id = graph.record(&body);
            Json(json!({ "messages": [{ "id": format!("wamid.out.{id}") }] }))
        }),
    );
    (tls.serve(llm, server::listen()).await, server::serve(graph).await)
}

/// The conversation number a request's last message carries.
fn conversation_of(request: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(request);
    text.rfind(TAG).and_then(|at| text[at + TAG.len()..].split(']').next()?.parse().ok()).unwrap_or(0)
}

/// 1–3 s, the same for a person every run (a hash spreads neighbours apart).
fn llm_delay(conversation: u64) -> Duration {
    Duration::from_millis(1_000 + conversation.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (LLM_SPREAD_MS + 1))
}

/// Sends every conversation's messages at their planned moments, spread
/// evenly over `spread`; returns each person's deadline (the wall-clock
/// millisecond their last message was acknowledged, plus the quiet window).
fn write(port: u16, conversations: u64, spread: Duration) -> HashMap<u64, i64> {
    let client_rt = runtime(1, "client");
    let questions = Arc::new(support::evaluation_questions());
    let url = Arc::new(format!("http://127.0.0.1:{port}/webhook/whatsapp"));
    let deadlines = client_rt.block_on(async {
        let client = reqwest::Client::new();
        let start = tokio::time::Instant::now();
        let every = spread / conversations as u32;
        let mut requests = Vec::with_capacity((conversations * MESSAGES) as usize);
        // Plans in time order: person n's message k at n·every + k·gap.
        let mut plan: Vec<(Duration, u64, u64)> = (0..conversations)
            .flat_map(|n| (0..MESSAGES).map(move |k| (every * n as u32 + TYPING_GAP * k as u32, n, k)))
            .collect();
        plan.sort_unstable();
        for (at, n, k) in plan {
            tokio::time::sleep_until(start + at).await;
            let question = &questions[n as usize % questions.len()];
            let body = text_webhook(n, n * MESSAGES + k, &format!("{question} {TAG}{n}]"));
            let signature = sign(SECRET.as_bytes(), body.as_bytes());
            let request = client.post(url.as_str()).header("x-hub-signature-256", signature).body(body).send();
            requests.push(tokio::spawn(async move {
                let response = request.await.expect("server answers");
                assert_eq!(response.status(), 200, "webhook stored");
                (n, k, now_ms())
            }));
        }
        let mut deadlines = HashMap::new();
        for request in requests {
            let (n, k, acknowledged) = request.await.unwrap();
            if k == MESSAGES - 1 {
                deadlines.insert(n, acknowledged + QUIET.as_millis() as i64);
            }
        }
        deadlines
    });
    client_rt.shutdown_background();
    deadlines
}

#[derive(Clone, Copy, Default)]
struct Sample {
    rss_kb: u64,
    peak_rss_kb: u64,
    fds: usize,
    heap: isize,
}

impl Sample {
    /// This process holds the server, the fakes and the load generator.
    fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir("/proc/self/fd").map(Iterator::count).unwrap_or(0);
        Sample { rss_kb: field("VmRSS:"), peak_rss_kb: field("VmHWM:"), fds, heap: support::live_bytes() }
    }
}

/// Samples memory and descriptors every 200 ms and keeps the highest,
/// printing a line every 30 s so a long run shows any drift as it goes.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Sample>,
}

impl Monitor {
    fn start(graph: Arc<Graph>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (started, mut peak, mut printed) = (Instant::now(), Sample::default(), Instant::now());
            while !stopped.load(Ordering::Relaxed) {
                let now = Sample::now();
                peak = Sample {
                    rss_kb: peak.rss_kb.max(now.rss_kb),
                    peak_rss_kb: now.peak_rss_kb,
                    fds: peak.fds.max(now.fds),
                    heap: support::peak_bytes(),
                };
                if printed.elapsed() >= Duration::from_secs(30) {
                    printed = Instant::now();
                    let answered = graph.answered.load(Ordering::Relaxed);
                    println!(
                        "soak     {:>4} s: {answered} answered, RSS {} MB, {} open fds, live heap {} MB",
                        started.elapsed().as_secs(),
                        now.rss_kb / 1024,
                        now.fds,
                        now.heap >> 20
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            peak
        });
        Monitor { stop, thread }
    }

    fn stop(self) -> Sample {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// What was sent, for the report.
struct Run {
    minutes: u64,
    conversations: u64,
    /// How long sending every webhook took.
    writing: Duration,
    /// Each conversation's deadline.
    deadlines: HashMap<u64, i64>,
}

impl Run {
    fn report(&self, sends: &HashMap<String, Vec<i64>>, receipts: u64, peak: &Sample, end: &Sample) {
        let late_ms: Vec<(u64, i64)> = (0..self.conversations)
            .filter_map(|n| Some((n, sends.get(&phone(n))?[0] - self.deadlines.get(&n)?)))
            .collect();
        let sorted = |mut all: Vec<Duration>| {
            all.sort();
            all
        };
        let lateness = sorted(late_ms.iter().map(|&(_, ms)| Duration::from_millis(ms.max(0) as u64)).collect());
        // What the server adds to the model's own time: quiet-window timing,
        // claim, prompt, both HTTP round trips and recording.
        let server_share = sorted(
            late_ms
                .iter()
                .map(|&(n, ms)| Duration::from_millis(ms.max(0) as u64).saturating_sub(llm_delay(n)))
                .collect(),
        );
        let first_replies = sends.values().map(|times| times[0]);
        let replying_ms = first_replies.clone().max().unwrap_or(0) - first_replies.min().unwrap_or(0);
        println!(
            "soak     {} conversations × {MESSAGES} messages over {} min, quiet window {} s, LLM 1–3 s",
            self.conversations,
            self.minutes,
            QUIET.as_secs()
        );
        println!(
            "         answered {} in {:.1} s of replies: {:.0} answers/s (webhooks sent in {:.1} s); {receipts} read receipts",
            sends.len(),
            replying_ms as f64 / 1e3,
            sends.len() as f64 / (replying_ms.max(1) as f64 / 1e3),
            self.writing.as_secs_f64(),
        );
        if !lateness.is_empty() {
            println!(
                "         deadline to reply (includes the LLM's 1–3 s): p50 {} ms, p99 {} ms, max {} ms",
                percentile(&lateness, 0.50).as_millis(),
                percentile(&lateness, 0.99).as_millis(),
                lateness.last().unwrap().as_millis()
            );
            println!(
                "         of which not the LLM's:                        p50 {} ms, p99 {} ms, max {} ms",
                percentile(&server_share, 0.50).as_millis(),
                percentile(&server_share, 0.99).as_millis(),
                server_share.last().unwrap().as_millis()
            );
        }
        println!(
            "         peak RSS {} MB (VmHWM, whole process: server, fakes and load), peak live heap {} MB, peak open fds {}",
            peak.peak_rss_kb / 1024,
            peak.heap >> 20,
            peak.fds
        );
        println!(
            "         at the end: RSS {} MB, live heap {} MB, open fds {}",
            end.rss_kb / 1024,
            end.heap >> 20,
            end.fds
        );
    }
}

/// Exactly one send per conversation: none missing, none twice, no stranger.
fn check_exactly_once(conversations: u64, sends: &HashMap<String, Vec<i64>>) {
    let twice: Vec<&String> = sends.iter().filter(|(_, times)| times.len() > 1).map(|(to, _)| to).collect();
    assert!(twice.is_empty(), "{} people answered more than once, e.g. {:?}", twice.len(), twice.first());
    let expected: std::collections::HashSet<String> = (0..conversations).map(phone).collect();
    assert!(sends.keys().all(|to| expected.contains(to)), "a send to someone who never wrote");
    assert_eq!(sends.len(), expected.len(), "everyone answered");
}
