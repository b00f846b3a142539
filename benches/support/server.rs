//! What the benches that run the whole server share: its settings, its own
//! runtime (as a separate process would have), signed webhook bodies, and
//! loopback listeners for the fakes.

use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use wa_ai_bridge::config::Settings;
use wa_ai_bridge::startup::Application;

pub const SECRET: &str = "bench-secret";

/// The Graph API path the server sends to, for the settings' phone number id.
pub const GRAPH_MESSAGES: &str = "/v23.0/1122334455667/messages";

pub fn settings(data_dir: &std::path::Path, extra: &[(&str, String)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("PORT", "0".to_string()),
        ("DATA_DIR", data_dir.display().to_string()),
        // No documents unless a bench asks for them: indexing would share
        // the cores with what is measured.
        ("KNOWLEDGE_DIR", data_dir.join("no-documents").display().to_string()),
        ("PROMPTS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/prompts").to_string()),
        ("META_APP_SECRET", SECRET.to_string()),
        ("META_ACCESS_TOKEN", "token".to_string()),
        ("META_PHONE_NUMBER_ID", "1122334455667".to_string()),
        ("OPENROUTER_API_KEY", "key".to_string()),
        // Nothing leaves loopback even where a bench has no fake: port 9
        // (discard) refuses, and the bench's own fakes override these.
        ("OPENROUTER_URL", "http://127.0.0.1:9/api/v1/chat/completions".to_string()),
        ("WHATSAPP_GRAPH_BASE", "http://127.0.0.1:9".to_string()),
        ("MESSAGE_BUFFER_SECONDS", "600".to_string()),
        ("MESSAGE_BUFFER_MAX_SECONDS", "600".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Settings::from_lookup(|key| env.get(key).cloned()).expect("bench settings")
}

/// A runtime whose threads are named for profiles (`perf report --sort comm`).
pub fn runtime(workers: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).thread_name(name).enable_all().build().unwrap()
}

/// Runs the server on its own runtime, as a separate process would.
pub fn start_server(settings: Settings) -> (tokio::runtime::Runtime, u16) {
    let runtime = runtime(2, "server");
    let app = runtime.block_on(Application::build(settings)).expect("server starts");
    let port = app.port();
    runtime.spawn(app.run_until(std::future::pending()));
    (runtime, port)
}

/// The phone number of bench person `n`.
pub fn phone(n: u64) -> String {
    format!("62812{n:08}")
}

/// A webhook carrying one text message from person `phone_n`.
pub fn text_webhook(phone_n: u64, id: u64, text: &str) -> String {
    webhook(phone_n, vec![message(phone_n, &format!("wamid.bench.{id}"), "text", json!({ "body": text }))])
}

/// One message from person `phone_n`: `kind` names the field that holds
/// `body`, as in WhatsApp's payloads (`"type": "image", "image": {...}`).
pub fn message(phone_n: u64, id: &str, kind: &str, body: Value) -> Value {
    json!({ "from": phone(phone_n), "id": id, "timestamp": "1700000000", "type": kind, kind: body })
}

/// A webhook carrying `messages`, all from person `phone_n`, in one delivery.
pub fn webhook(phone_n: u64, messages: Vec<Value>) -> String {
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550001111", "phone_number_id": "1122334455667" },
        "contacts": [{ "profile": { "name": "Budi" }, "wa_id": phone(phone_n) }],
        "messages": messages } }] }] })
    .to_string()
}

pub fn listen() -> tokio::net::TcpListener {
    // A backlog above the burst: tokio's default of 1024 can drop a SYN
    // of a thousand simultaneous connects, adding a 1 s retransmit.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(4096).unwrap()
}

/// Serves `app` over plain HTTP on loopback; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = listen();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}
