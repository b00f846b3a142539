//! Starts the real server on a random port, on a fresh database, against
//! fake Graph API and OpenRouter servers on loopback.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
pub use wa_ai_bridge::channels::cloud_api::sign;
use wa_ai_bridge::config::Settings;
use wa_ai_bridge::startup::Application;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const ACCESS_TOKEN: &str = "test-access-token";
pub const OPENROUTER_KEY: &str = "sk-or-test-key";
pub const PHONE_NUMBER_ID: &str = "1122334455667";
pub const SEND_PATH: &str = "/v23.0/1122334455667/messages";
pub const LLM_PATH: &str = "/api/v1/chat/completions";
pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_none() {
                    eprintln!("TEST_DATABASE_URL is not set: skipping the PostgreSQL run of {}", stringify!($name));
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres).await;
            }
        }
    )*};
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty())
}

/// A database nobody else uses: a new SQLite file, or a new PostgreSQL
/// database created on the `TEST_DATABASE_URL` server.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Self { url, _dir: Some(dir) }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let server = postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("wa_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect to TEST_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
                Self { url: format!("{base}/{name}"), _dir: None }
            }
        }
    }
}

/// One running server. Dropping it (or [`Server::crash`]) tears its runtime
/// down without any shutdown code running, as a `kill -9` would.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub port: u16,
}

impl Server {
    pub async fn start(settings: Settings) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (runtime, serving, port) = tokio::task::spawn_blocking(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            let app = runtime.block_on(Application::build(settings)).expect("application starts");
            let port = app.port();
            let serving = runtime.spawn(app.run_until(async {
                let _ = stopped.await;
            }));
            (runtime, serving, port)
        })
        .await
        .expect("server thread");
        Self { runtime: Some(runtime), stop: Some(stop), serving: Some(serving), port }
    }

    /// Stops as SIGTERM would: graceful shutdown, then the process ends.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await.expect("server task").expect("server stopped cleanly");
        }
    }

    pub fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub graph: MockServer,
    pub llm: MockServer,
    pub database: TestDatabase,
    pub server: Option<Server>,
    pub client: reqwest::Client,
    pub overrides: HashMap<String, String>,
    /// `KNOWLEDGE_DIR`: empty unless a test puts documents in it.
    pub knowledge: tempfile::TempDir,
    pub data: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts with the default fakes: Graph accepts every send, the LLM
    /// answers "Halo kak!".
    pub async fn spawn_with(backend: Backend, overrides: &[(&str, &str)]) -> Self {
        Self::spawn_with_documents(backend, overrides, &[]).await
    }

    /// Like [`TestApp::spawn_with`], with `documents` (name, contents) in
    /// the knowledge directory before the server starts.
    pub async fn spawn_with_documents(
        backend: Backend,
        overrides: &[(&str, &str)],
        documents: &[(&str, &[u8])],
    ) -> Self {
        show_logs_if_asked();
        let graph = MockServer::start().await;
        let llm = MockServer::start().await;
        let database = TestDatabase::new(backend).await;
        let overrides = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut app = Self {
            address: String::new(),
            graph,
            llm,
            database,
            server: None,
            client: reqwest::Client::new(),
            overrides,
            knowledge: tempfile::tempdir().expect("temp dir"),
            data: tempfile::tempdir().expect("temp dir"),
        };
        for (name, contents) in documents {
            app.put_document(name, contents);
        }
        app.restart().await;
        app
    }

    pub fn put_document(&self, name: &str, contents: &[u8]) {
        let path = self.knowledge.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
        std::fs::write(path, contents).expect("write document");
    }

    /// `GET path`, with `Authorization: Bearer token` when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// An admin endpoint's JSON, asserting it answered 200.
    pub async fn admin_json(&self, path: &str) -> Value {
        let response = self.get(path, Some(ADMIN_TOKEN)).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("JSON body")
    }

    pub async fn refresh_kb(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}/api/whatsapp/refresh-kb", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("refresh request")
    }

    pub fn settings(&self) -> Settings {
        let mut env: HashMap<String, String> = [
            ("PORT", "0".to_string()),
            ("DATABASE_URL", self.database.url.clone()),
            ("DATA_DIR", self.data.path().display().to_string()),
            ("KNOWLEDGE_DIR", self.knowledge.path().display().to_string()),
            ("ADMIN_API_TOKEN", ADMIN_TOKEN.into()),
            ("PROMPTS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/prompts").to_string()),
            ("META_APP_SECRET", APP_SECRET.into()),
            ("META_WEBHOOK_VERIFY_TOKEN", VERIFY_TOKEN.into()),
            ("META_ACCESS_TOKEN", ACCESS_TOKEN.into()),
            ("META_PHONE_NUMBER_ID", PHONE_NUMBER_ID.into()),
            ("WHATSAPP_GRAPH_BASE", self.graph.uri()),
            ("OPENROUTER_API_KEY", OPENROUTER_KEY.into()),
            ("OPENROUTER_URL", format!("{}{LLM_PATH}", self.llm.uri())),
            ("MESSAGE_BUFFER_SECONDS", "0.5".into()),
            ("LLM_MAX_RETRIES", "1".into()),
            ("LLM_MAX_BACKOFF_SECONDS", "1".into()),
            ("LLM_TIMEOUT_SECONDS", "5".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(self.overrides.clone());
        env.retain(|_, v| !v.is_empty());
        Settings::from_lookup(|key| env.get(key).cloned()).expect("valid test settings")
    }

    /// Stops the current server as a crash would and starts a new one on
    /// the same database.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.crash();
        }
        let server = Server::start(self.settings()).await;
        self.address = format!("http://127.0.0.1:{}", server.port);
        self.server = Some(server);
    }

    pub fn crash(&mut self) {
        if let Some(server) = self.server.take() {
            server.crash();
        }
    }

    pub async fn stop_gracefully(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    pub async fn post_webhook(&self, body: &str) -> reqwest::Response {
        self.post_raw(body.as_bytes(), Some(&sign(APP_SECRET.as_bytes(), body.as_bytes()))).await
    }

    pub async fn post_raw(&self, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        self.post_raw_to(&self.address, body, signature).await
    }

    pub async fn post_raw_to(&self, address: &str, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{address}/webhook/whatsapp"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send().await.expect("request reaches the server")
    }

    /// Sends a text message webhook and checks it was acknowledged.
    pub async fn say(&self, from: &str, id: &str, text: &str) {
        self.say_at(&self.address, from, id, text).await;
    }

    /// Like [`TestApp::say`], to another replica's address.
    pub async fn say_at(&self, address: &str, from: &str, id: &str, text: &str) {
        let body = text_webhook(from, id, text);
        let signature = sign(APP_SECRET.as_bytes(), body.as_bytes());
        let response = self.post_raw_to(address, body.as_bytes(), Some(&signature)).await;
        assert_eq!(response.status(), 200, "webhook for {id} acknowledged");
    }

    /// A sample's value on /metrics (0 when absent). The recorder is shared
    /// by every server in this test process, so compare with `>=`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.client.get(format!("{}/metrics", self.address)).send().await.unwrap().text().await.unwrap();
        text.lines().find_map(|line| line.strip_prefix(sample)?.trim().parse().ok()).unwrap_or(0.0)
    }

    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database.url).await.expect("test connects to its database")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let pool = self.pool().await;
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("count query");
        pool.close().await;
        count
    }

    /// Text messages the fake Graph API was asked to send.
    pub async fn sent_texts(&self) -> Vec<Value> {
        requests_to(&self.graph, SEND_PATH).await.into_iter().filter(|body| body["type"] == "text").collect()
    }

    pub async fn llm_requests(&self) -> Vec<Value> {
        requests_to(&self.llm, LLM_PATH).await
    }

    /// Waits until `n` texts were sent, then a little longer to catch any
    /// duplicate, and returns them.
    pub async fn wait_for_texts(&self, n: usize) -> Vec<Value> {
        wait_until(|| async { self.sent_texts().await.len() >= n }).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        self.sent_texts().await
    }
}

/// `TEST_LOG=wa_ai_bridge=debug cargo test …` shows what the servers log.
fn show_logs_if_asked() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

pub async fn requests_to(server: &MockServer, path: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r: &&Request| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// Polls `condition` for up to 15 s.
pub async fn wait_until<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 15 s");
}

pub async fn graph_accepts_sends(graph: &MockServer) {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            if body["status"] == "read" {
                return ResponseTemplate::new(200).set_body_json(json!({ "success": true }));
            }
            let id = format!("wamid.out.{}", uuid::Uuid::new_v4().simple());
            ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": body["to"], "wa_id": body["to"] }],
                "messages": [{ "id": id }],
            }))
        })
        .mount(graph)
        .await;
}

/// Graph refuses text sends with `status` and a Graph error `code`, the
/// first `times` of them (every one when `None`); read receipts still pass
/// to whatever else is mounted.
pub async fn graph_refuses_texts(graph: &MockServer, status: u16, code: i64, times: Option<u64>) {
    let refusal = Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_partial_json(json!({ "type": "text" })))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({ "error": {
            "code": code, "message": format!("Graph error {code}"), "type": "OAuthException" } })))
        .with_priority(1);
    match times {
        Some(n) => refusal.up_to_n_times(n).mount(graph).await,
        None => refusal.mount(graph).await,
    }
}

pub async fn llm_answers(llm: &MockServer, answer: &str) {
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(answer)))
        .mount(llm)
        .await;
}

/// The LLM answers `answer` after thinking for `delay`.
pub async fn llm_answers_after(llm: &MockServer, answer: &str, delay: Duration) {
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(answer)).set_delay(delay))
        .mount(llm)
        .await;
}

pub fn completion(answer: &str) -> Value {
    json!({
        "id": "gen-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "google/gemini-2.0-flash-exp:free",
        "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": answer } }],
        "usage": { "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150 },
    })
}

/// A real Cloud API payload shape (from the fixtures) with our values.
pub fn text_webhook(from: &str, id: &str, text: &str) -> String {
    messages_webhook(
        json!([{ "from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": text } }]),
        from,
    )
}

pub fn messages_webhook(messages: Value, from: &str) -> String {
    webhook_with(json!([{ "profile": { "name": "Budi" }, "wa_id": from }]), messages)
}

/// A `messages` webhook with the given `contacts` and `messages` arrays.
pub fn webhook_with(contacts: Value, messages: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1234567890", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID },
            "contacts": contacts,
            "messages": messages,
        }}]}],
    })
    .to_string()
}

pub fn status_webhook(wamid: &str, status: &str, error_code: Option<i64>) -> String {
    let mut entry =
        json!({ "id": wamid, "status": status, "timestamp": "1700000100", "recipient_id": "6281234567789" });
    if let Some(code) = error_code {
        entry["errors"] = json!([{ "code": code, "title": "Message failed to send" }]);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID },
            "statuses": [entry],
        }}]}],
    })
    .to_string()
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("fixture exists")
}

/// The user-visible text of the chat request's last user message.
pub fn last_user_message(llm_request: &Value) -> String {
    llm_request["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// `POST path` with a JSON body: the status and the JSON answer.
pub async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app.client.post(format!("{}{path}", app.address)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET path`: the status and the JSON answer.
pub async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.get(path, Some(token)).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An `API_TOKENS_FILE` of `send` tokens, (name, token) each.
pub fn tokens_file(tokens: &[(&str, &str)]) -> tempfile::NamedTempFile {
    use sha2::{Digest, Sha256};
    let file = tempfile::NamedTempFile::new().unwrap();
    let entries: Vec<String> = tokens
        .iter()
        .map(|(name, token)| {
            let digest = hex::encode(Sha256::digest(token.as_bytes()));
            format!("[[token]]\nname = \"{name}\"\nscopes = [\"send\"]\nsha256 = \"{digest}\"\n")
        })
        .collect();
    std::fs::write(file.path(), entries.join("\n")).unwrap();
    file
}

/// The business account id the template tests configure.
pub const WABA: &str = "556677889900";
pub const TEMPLATES_PATH: &str = "/v23.0/556677889900/message_templates";

/// A server whose business account lists `templates` (Graph's objects)
/// from the start, and whose Graph accepts every send.
pub async fn spawn_with_templates(backend: Backend, overrides: &[(&str, &str)], templates: Value) -> TestApp {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(TEMPLATES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": templates })))
        .mount(&graph)
        .await;
    graph_accepts_sends(&graph).await;
    let base = graph.uri();
    let mut all = vec![("META_BUSINESS_ACCOUNT_ID", WABA), ("WHATSAPP_GRAPH_BASE", base.as_str())];
    all.extend_from_slice(overrides);
    let mut app = TestApp::spawn_with(backend, &all).await;
    app.graph = graph;
    app
}

/// `person` writes "halo" and is answered: their 24-hour window is open.
pub async fn customer_wrote(app: &TestApp, person: &str) {
    app.say(person, "wamid.customer.1", "halo").await;
    app.wait_for_texts(1).await;
}

/// How many text messages with exactly `text` the fake Graph API got.
pub async fn texts_with(app: &TestApp, text: &str) -> usize {
    app.sent_texts().await.iter().filter(|body| body["text"]["body"] == text).count()
}

/// A fake Fonnte that accepts every send (answering message id `id`) and a
/// `CHANNELS_FILE` in `dir` with one Fonnte account `name` on it; the
/// account's token and webhook secret come from `FONNTE_SECRETS`.
pub async fn fonnte_account(dir: &tempfile::TempDir, name: &str, id: &str) -> (MockServer, String) {
    let fonnte = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(wiremock::matchers::header("authorization", "fonnte-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": true, "id": [id] })))
        .mount(&fonnte)
        .await;
    let channels = dir.path().join("channels.toml");
    std::fs::write(
        &channels,
        format!(
            "[[account]]\nname = \"{name}\"\nkind = \"fonnte\"\nsettings = {{ FONNTE_API_URL = \"{}\" }}\n\
             secrets = {{ FONNTE_TOKEN = \"T_FONNTE\", FONNTE_WEBHOOK_SECRET = \"T_HOOK\" }}\n",
            fonnte.uri()
        ),
    )
    .unwrap();
    (fonnte, channels.display().to_string())
}

/// The environment `fonnte_account`'s file names.
pub const FONNTE_SECRETS: [(&str, &str); 2] = [("T_FONNTE", "fonnte-token"), ("T_HOOK", "fonnte-hook")];
