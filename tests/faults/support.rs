//! What the fault suite runs against: the real binary as a child process,
//! a fake Graph API that posts status webhooks back like Meta does, and a
//! fake OpenRouter whose answers can be slow, long or broken on purpose.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wa_ai_bridge::channels::cloud_api::sign;

pub const SECRET: &str = "faults-secret";
const PHONE_NUMBER_ID: &str = "1122334455667";
/// Lines of a long answer: about 6,000 characters, so it is sent in two parts.
const LONG_LINES: usize = 90;

pub fn phone(person: usize) -> String {
    format!("6281234{person:05}")
}

/// The words a person writes: unique across the run, so every reply says
/// which messages it answers.
pub fn token(person: usize, message: usize) -> String {
    format!("m{person:03}x{message}")
}

/// A signed webhook carrying one text message.
pub fn message_webhook(person: usize, message: usize) -> String {
    let from = phone(person);
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages",
        "value": { "messaging_product": "whatsapp", "metadata": { "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [{ "wa_id": from, "profile": { "name": "Pelanggan" } }],
            "messages": [{ "from": from, "id": format!("wamid.in.{person}.{message}"), "timestamp": unix_now().to_string(),
                "type": "text", "text": { "body": token(person, message) } }] } }] }] })
    .to_string()
}

fn status_webhook(id: &str, to: &str) -> String {
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages",
        "value": { "messaging_product": "whatsapp", "metadata": { "phone_number_id": PHONE_NUMBER_ID },
            "statuses": [{ "id": id, "status": "sent", "timestamp": unix_now().to_string(), "recipient_id": to }] } }] }] })
    .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Posts a signed webhook to the server on `port` until it answers 200, as
/// Meta redelivers what was not acknowledged. Returns how many tries it took.
pub async fn deliver(client: &reqwest::Client, port: u16, body: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    for attempt in 1.. {
        if acknowledged(client, port, body).await {
            return attempt;
        }
        assert!(Instant::now() < deadline, "a webhook was refused for two minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

/// One signed POST of a webhook; whether the server answered 200.
async fn acknowledged(client: &reqwest::Client, port: u16, body: &str) -> bool {
    client
        .post(format!("http://127.0.0.1:{port}/webhook/whatsapp"))
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body.as_bytes()))
        .timeout(Duration::from_secs(5))
        .body(body.to_owned())
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// How the fake Graph API answers a send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GraphFault {
    ServerError,
    Throttled,
    /// The message goes out but the answer comes after the send timeout.
    Hang,
    /// The message goes out but the answer is not JSON.
    Garbage,
}

pub struct Accepted {
    pub to: String,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
struct GraphState {
    accepted: Mutex<Vec<Accepted>>,
    /// Text sends asked for, per recipient, whatever the answer.
    attempts: Mutex<HashMap<String, usize>>,
    /// Faults answered in turn, one per send, while this lasts.
    faults: Mutex<Option<(Instant, Vec<GraphFault>)>>,
    next_fault: AtomicUsize,
    server_port: AtomicU16,
    client: reqwest::Client,
}

#[derive(Clone)]
pub struct FakeGraph {
    state: Arc<GraphState>,
    pub uri: String,
}

impl FakeGraph {
    pub async fn start() -> Self {
        let state = Arc::new(GraphState::default());
        let router = Router::new()
            .route(&format!("/v23.0/{PHONE_NUMBER_ID}/messages"), post(graph_send))
            .with_state(state.clone());
        Self { uri: serve(router).await, state }
    }

    /// Where status webhooks go.
    pub fn report_to(&self, port: u16) {
        self.state.server_port.store(port, Ordering::SeqCst);
    }

    pub fn misbehave(&self, for_how_long: Duration, faults: Vec<GraphFault>) {
        *self.state.faults.lock().unwrap() = Some((Instant::now() + for_how_long, faults));
    }

    pub fn accepted_count(&self) -> usize {
        self.state.accepted.lock().unwrap().len()
    }

    /// Each recipient's accepted texts, in the order they went out.
    pub fn replies(&self) -> HashMap<String, Vec<String>> {
        let mut replies: HashMap<String, Vec<String>> = HashMap::new();
        for sent in self.state.accepted.lock().unwrap().iter() {
            replies.entry(sent.to.clone()).or_default().push(sent.body.clone());
        }
        replies
    }

    /// When each accepted text went out.
    pub fn accepted_at(&self) -> Vec<Instant> {
        self.state.accepted.lock().unwrap().iter().map(|sent| sent.at).collect()
    }

    pub fn attempts(&self) -> HashMap<String, usize> {
        self.state.attempts.lock().unwrap().clone()
    }
}

async fn graph_send(State(state): State<Arc<GraphState>>, Json(request): Json<Value>) -> Response {
    if request["type"] != "text" {
        // Read receipts and typing indicators.
        return Json(json!({ "success": true })).into_response();
    }
    let to = request["to"].as_str().unwrap_or_default().to_owned();
    *state.attempts.lock().unwrap().entry(to.clone()).or_default() += 1;
    let fault = match &*state.faults.lock().unwrap() {
        Some((until, faults)) if Instant::now() < *until => {
            Some(faults[state.next_fault.fetch_add(1, Ordering::SeqCst) % faults.len()])
        }
        _ => None,
    };
    match fault {
        Some(GraphFault::ServerError) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": { "message": "boom", "code": 1 } })))
                .into_response()
        }
        Some(GraphFault::Throttled) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!({ "error": { "code": 130429 } })),
            )
                .into_response()
        }
        _ => {}
    }
    let id = format!("wamid.out.{}", uuid::Uuid::new_v4().simple());
    let body = request["text"]["body"].as_str().unwrap_or_default().to_owned();
    state.accepted.lock().unwrap().push(Accepted { to: to.clone(), body, at: Instant::now() });
    tokio::spawn(report_status(state.clone(), id.clone(), to));
    match fault {
        Some(GraphFault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(json!({ "messages": [{ "id": id }] })).into_response()
        }
        Some(GraphFault::Garbage) => (StatusCode::OK, "<html>upstream hiccup</html>").into_response(),
        _ => Json(json!({ "messages": [{ "id": id }] })).into_response(),
    }
}

/// Meta's "sent" status for an accepted message, posted shortly after and
/// again until the server acknowledges it (it may be down at the moment).
async fn report_status(state: Arc<GraphState>, id: String, to: String) {
    tokio::time::sleep(Duration::from_millis(150)).await;
    let body = status_webhook(&id, &to);
    for _ in 0..240 {
        if acknowledged(&state.client, state.server_port.load(Ordering::SeqCst), &body).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How the fake OpenRouter answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LlmFault {
    Throttled,
    ServerError,
    MalformedJson,
    NoChoices,
    CutMidBody,
    TooSlow,
}

pub const LLM_FAULTS: [LlmFault; 6] = [
    LlmFault::Throttled,
    LlmFault::ServerError,
    LlmFault::MalformedJson,
    LlmFault::NoChoices,
    LlmFault::CutMidBody,
    LlmFault::TooSlow,
];

struct LlmState {
    /// Answers take this long (milliseconds, uniformly).
    thinking: (u64, u64),
    /// People whose answers are long enough to be split.
    long_every: usize,
    /// Person `p` gets `faults[p % len]` on every request, when set.
    faults: Vec<LlmFault>,
    requests: AtomicUsize,
}

#[derive(Clone)]
pub struct FakeLlm {
    state: Arc<LlmState>,
    pub uri: String,
}

impl FakeLlm {
    pub async fn start(thinking: (u64, u64), long_every: usize, faults: Vec<LlmFault>) -> Self {
        let state = Arc::new(LlmState { thinking, long_every, faults, requests: AtomicUsize::new(0) });
        let router = Router::new().route("/api/v1/chat/completions", post(llm_answer)).with_state(state.clone());
        Self { uri: serve(router).await, state }
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

/// The person whose turn `text` is.
fn person_of(text: &str) -> usize {
    text.split_whitespace().find_map(|word| word.strip_prefix('m')?.split('x').next()?.parse().ok()).unwrap_or(0)
}

/// What the fake LLM answers to a turn: which messages it read and, for
/// some people, numbered lines enough for two parts.
pub fn answer_for(text: &str, long_every: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut answer = format!("Balasan untuk {} selesai.", words.join(" dan "));
    if long_every > 0 && person_of(text).is_multiple_of(long_every) {
        // Each turn's lines differ from another turn's, so a part sent twice
        // is never mistaken for the same line of a later reply.
        let turn = format!("t-{}", words.join("-"));
        for line in 1..=LONG_LINES {
            answer.push_str(&format!("\n\nbaris {line:03} {turn} jam buka klinik setiap hari kerja pukul delapan"));
        }
    }
    answer
}

async fn llm_answer(State(state): State<Arc<LlmState>>, Json(request): Json<Value>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let text = request["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
    let text = text.to_owned();
    if !state.faults.is_empty() {
        return llm_fault(state.faults[person_of(&text) % state.faults.len()]).await;
    }
    let (low, high) = state.thinking;
    let pause = rand::rng().random_range(low..=high);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    Json(json!({ "id": "gen-1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{ "index": 0, "finish_reason": "stop",
            "message": { "role": "assistant", "content": answer_for(&text, state.long_every) } }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20 } }))
    .into_response()
}

async fn llm_fault(fault: LlmFault) -> Response {
    match fault {
        LlmFault::Throttled => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response(),
        LlmFault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        LlmFault::MalformedJson => {
            (StatusCode::OK, [("content-type", "application/json")], "{\"choices\": [").into_response()
        }
        LlmFault::NoChoices => {
            Json(json!({ "id": "gen-1", "object": "chat.completion", "created": 0, "model": "m", "choices": [] }))
                .into_response()
        }
        LlmFault::CutMidBody => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"id\": \"gen-1\", \"choices\": [{\"message\": {\"content\": \"Hal")),
                Err(std::io::Error::other("cut")),
            ];
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        LlmFault::TooSlow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}

/// Where the server keeps its data: SQLite in its data directory, or a
/// fresh PostgreSQL database.
pub struct Database {
    pub url: String,
}

impl Database {
    /// `None` when PostgreSQL is asked for and `TEST_DATABASE_URL` is unset.
    pub async fn new(postgres: bool, data_dir: &std::path::Path) -> Option<Self> {
        if !postgres {
            let url = format!("sqlite://{}?mode=rwc", data_dir.join("wa-ai-bridge.db").display());
            return Some(Self { url });
        }
        let Some(server) = std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) else {
            eprintln!("TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
            return None;
        };
        use sqlx::Connection;
        let name = format!("wa_faults_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
        Some(Self { url: format!("{base}/{name}") })
    }

    pub fn name(&self) -> &str {
        self.url.rsplit('/').next().unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.expect("connect to the test database");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect(sql)
    }
}

/// A fresh data directory and database, the fakes, and the binary started
/// and restarted on them.
pub struct Scene {
    pub data_dir: tempfile::TempDir,
    pub database: Database,
    pub graph: FakeGraph,
    pub llm: FakeLlm,
    pub port: u16,
    pub client: reqwest::Client,
    env: Vec<(String, String)>,
    starts: usize,
    server: Option<Child>,
}

impl Scene {
    pub async fn new(postgres: bool, llm: FakeLlm, env: &[(&str, &str)]) -> Option<Self> {
        let data_dir = tempfile::tempdir().unwrap();
        let database = Database::new(postgres, data_dir.path()).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let graph = FakeGraph::start().await;
        graph.report_to(port);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Some(Self {
            data_dir,
            database,
            graph,
            llm,
            port,
            client: reqwest::Client::new(),
            env,
            starts: 0,
            server: None,
        })
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.data_dir.path().join(format!("server-{start}.log"))
    }

    /// Starts the binary; returns once it answers `/health`.
    pub async fn start(&mut self) -> Duration {
        let began = Instant::now();
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let knowledge = self.data_dir.path().join("knowledge");
        std::fs::create_dir_all(&knowledge).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wa-ai-bridge"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", self.port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("DATA_DIR", self.data_dir.path())
            .env("DATABASE_URL", &self.database.url)
            .env("KNOWLEDGE_DIR", &knowledge)
            .env("PROMPTS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))
            .env("META_APP_SECRET", SECRET)
            .env("META_ACCESS_TOKEN", "token")
            .env("META_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
            .env("WHATSAPP_GRAPH_BASE", &self.graph.uri)
            .env("OPENROUTER_API_KEY", "key")
            .env("OPENROUTER_URL", format!("{}/api/v1/chat/completions", self.llm.uri))
            .env("MESSAGE_BUFFER_SECONDS", "0.5")
            .env("TURN_LEASE_SECONDS", "2")
            .env("WHATSAPP_SEND_TIMEOUT_SECONDS", "1")
            .env("SEND_AMBIGUOUS_WAIT_SECONDS", "1")
            .env("RUST_LOG", "info")
            .current_dir(self.data_dir.path())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (key, value) in &self.env {
            command.env(key, value);
        }
        self.server = Some(command.spawn().expect("binary starts"));
        for _ in 0..400 {
            if self.alive_and_healthy().await {
                return began.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not become healthy; log:\n{}", self.log(self.starts));
    }

    pub async fn alive_and_healthy(&mut self) -> bool {
        let running = self.server.as_mut().is_some_and(|child| child.try_wait().unwrap().is_none());
        running
            && self
                .client
                .get(format!("http://127.0.0.1:{}/health", self.port))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.server.take() {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }

    pub fn log(&self, start: usize) -> String {
        std::fs::read_to_string(self.log_path(start)).unwrap_or_default()
    }

    /// The sum of the `/metrics` samples of `name` whose labels include `label`.
    pub async fn metric(&self, name: &str, label: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let text = self.client.get(url).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until every person in `people` has an answer to each of their
    /// messages and the database has nothing left in flight (or `limit`
    /// passes), then a little longer for anything sent twice to show up. A
    /// part whose sender was killed mid-send settles only after its attempt's
    /// lease (the send timeout plus 30 s) and the ambiguous wait.
    pub async fn wait_for_answers(&self, people: usize, messages: usize, limit: Duration) {
        let began = Instant::now();
        let deadline = began + limit;
        while Instant::now() < deadline {
            match check_answers(&self.graph.replies(), people, messages, self.llm_long()) {
                Verdict::Waiting(_) => {}
                Verdict::Broken(_) => break,
                Verdict::Done if self.in_flight().await == 0 => break,
                Verdict::Done => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("answered and settled {:?} after the wait began", began.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    /// Turns being answered and parts not yet known to be sent.
    async fn in_flight(&self) -> i64 {
        let db = &self.database;
        db.count("SELECT COUNT(*) FROM turns WHERE status = 'answering'").await
            + db.count("SELECT COUNT(*) FROM outbound_messages WHERE state <> 'sent'").await
    }

    fn llm_long(&self) -> usize {
        self.llm.state.long_every
    }

    /// The promise, checked at the fake Graph and in the database: every
    /// message answered exactly once, every part of every reply sent once
    /// and in order, and nothing left in flight.
    pub async fn assert_exactly_once(&self, people: usize, messages: usize) {
        let replies = self.graph.replies();
        if let Verdict::Waiting(problem) | Verdict::Broken(problem) =
            check_answers(&replies, people, messages, self.llm_long())
        {
            for start in 1..=self.starts {
                eprintln!("--- server log {start} (tail) ---");
                let log = self.log(start);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
            panic!("{problem}");
        }
        let db = &self.database;
        assert_eq!(db.count("SELECT COUNT(*) FROM inbound_messages").await, (people * messages) as i64);
        assert_eq!(db.count("SELECT COUNT(*) FROM inbound_messages WHERE wants_reply AND turn_id IS NULL").await, 0);
        assert_eq!(db.count("SELECT COUNT(*) FROM turns WHERE status <> 'answered'").await, 0, "turns not answered");
        assert_eq!(db.count("SELECT COUNT(*) FROM outbound_messages WHERE state <> 'sent'").await, 0, "parts not sent");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM outbound_messages").await,
            self.graph.accepted_count() as i64,
            "every part recorded once for each one the Graph API accepted"
        );
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where the answers stand.
pub enum Verdict {
    Done,
    /// Something is still missing; it may yet come.
    Waiting(String),
    /// Something came twice or out of order: waiting cannot mend it.
    Broken(String),
}

/// Whether each of the `people` got, for each of their `messages`, one
/// reply naming it, no text twice, and long replies whole and in order.
pub fn check_answers(
    replies: &HashMap<String, Vec<String>>,
    people: usize,
    messages: usize,
    long_every: usize,
) -> Verdict {
    let mut missing = None;
    for person in 0..people {
        let to = phone(person);
        let parts = replies.get(&to).map(Vec::as_slice).unwrap_or_default();
        let mut seen = HashSet::new();
        if let Some(twice) = parts.iter().find(|part| !seen.insert(part.as_str())) {
            return Verdict::Broken(format!("{to} got a part twice: {twice:.120}"));
        }
        let all = parts.join("\n\n");
        let words: Vec<&str> = all.split_whitespace().collect();
        for message in 0..messages {
            let wanted = token(person, message);
            match words.iter().filter(|w| **w == wanted).count() {
                1 => {}
                0 => missing = missing.or(Some(format!("{to}: message {wanted} not answered yet"))),
                named => return Verdict::Broken(format!("{to}: message {wanted} answered {named} times: {parts:?}")),
            }
        }
        if long_every > 0 && person.is_multiple_of(long_every) {
            let replies = all.matches("Balasan untuk").count();
            let lines: Vec<usize> =
                words.windows(2).filter(|w| w[0] == "baris").filter_map(|w| w[1].parse().ok()).collect();
            let expected: Vec<usize> = (0..replies).flat_map(|_| 1..=LONG_LINES).collect();
            if lines.len() > expected.len() || lines[..] != expected[..lines.len()] {
                return Verdict::Broken(format!("{to}: the long replies' lines came as {lines:?}"));
            }
            if lines.len() < expected.len() {
                missing = missing.or(Some(format!("{to}: a long reply is not complete yet")));
            }
        }
    }
    missing.map_or(Verdict::Done, Verdict::Waiting)
}

/// A seed from `FAULTS_SEED`, or a new one; printed so a run can be repeated.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    let seed = std::env::var("FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::rng().random());
    eprintln!("{test}: FAULTS_SEED={seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}
