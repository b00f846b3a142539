//! The web chat seen from outside: messages posted over HTTP go through the
//! same buffer, retrieval, prompt, LLM and storage as WhatsApp's, and the
//! answer comes back as Server-Sent Events and in the history.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

pub const GUIDE: &str =
    "# Panduan Klinik\n\n## Biaya\n\nBiaya konsultasi dokter umum adalah Rp 75.000 per kunjungan.\n\n\
                         ## Jam buka\n\nKlinik buka Senin sampai Sabtu pukul 07.00 sampai 21.00.\n";
const PHONE: &str = "6281234567890";

on_both_backends!(
    two_quick_messages_get_one_answer_live_with_its_sources,
    a_retried_message_is_stored_once,
    without_an_api_key_the_documents_answer,
    a_failing_llm_on_whatsapp_answers_with_passages_instead_of_the_apology,
    the_same_number_on_whatsapp_and_the_web_is_two_conversations,
    a_conversation_is_seen_only_with_its_secret,
    a_client_id_counts_within_its_conversation,
    a_chatty_visitor_is_held_back_alone,
    forwarded_for_names_the_visitor_only_behind_a_trusted_proxy,
    open_event_streams_are_capped,
);

/// Starts a conversation as the page does, labelled `phone` when given,
/// and returns its secret.
pub async fn start_conversation(app: &TestApp, phone: Option<&str>) -> String {
    let response = start_request(app, phone, None).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["secret"].as_str().unwrap().to_owned()
}

pub async fn start_request(app: &TestApp, phone: Option<&str>, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request =
        app.client.post(format!("{}/api/chat/conversations", app.address)).json(&json!({ "phone": phone }));
    if let Some(hop) = forwarded_for {
        request = request.header("x-forwarded-for", hop);
    }
    request.send().await.unwrap()
}

pub async fn post_message(app: &TestApp, secret: &str, text: &str, client_id: &str) -> reqwest::Response {
    post_message_from(app, secret, text, client_id, None).await
}

pub async fn post_message_from(
    app: &TestApp,
    secret: &str,
    text: &str,
    client_id: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/api/chat/messages", app.address))
        .bearer_auth(secret)
        .json(&json!({ "text": text, "clientId": client_id }));
    if let Some(hop) = forwarded_for {
        request = request.header("x-forwarded-for", hop);
    }
    request.send().await.unwrap()
}

/// `GET /api/chat/{what}` with `secret` (none at all when empty).
pub async fn get_with(app: &TestApp, what: &str, secret: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/api/chat/{what}", app.address));
    if !secret.is_empty() {
        request = request.bearer_auth(secret);
    }
    if let Some(hop) = forwarded_for {
        request = request.header("x-forwarded-for", hop);
    }
    request.send().await.unwrap()
}

/// An open chat window: the event stream of one conversation.
pub struct Window {
    response: reqwest::Response,
    buffer: String,
}

impl Window {
    pub async fn open(app: &TestApp, secret: &str) -> Self {
        Self::open_at(app, &app.address, secret).await
    }

    pub async fn open_at(app: &TestApp, address: &str, secret: &str) -> Self {
        let response = app.client.get(format!("{address}/api/chat/events")).bearer_auth(secret).send().await.unwrap();
        Self::from_response(response)
    }

    pub fn from_response(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event as (name, data); keep-alive comments are skipped.
    /// `None` when the stream ended.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        // One deadline for the event: keep-alive comments do not extend it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let name = block.lines().find_map(|l| l.strip_prefix("event: "));
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(name), Some(data)) = (name, data) {
                    return Some((name.to_owned(), serde_json::from_str(data).unwrap()));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event within 30 s")
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events up to and including the next `sources` event.
    pub async fn answer(&mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let done = event.0 == "sources";
            events.push(event);
            if done {
                break;
            }
        }
        events
    }
}

pub async fn history(app: &TestApp, secret: &str) -> Vec<Value> {
    let response = get_with(app, "history", secret, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["messages"].as_array().unwrap().clone()
}

async fn two_quick_messages_get_one_answer_live_with_its_sources(backend: Backend) {
    let app = TestApp::spawn_with_documents(backend, &[], &[("klinik.md", GUIDE.as_bytes())]).await;
    // Slow enough for "typing…" to go out first.
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("Biaya konsultasi dokter umum **Rp 75.000** kak."))
                .set_delay(Duration::from_secs(1)),
        )
        .mount(&app.llm)
        .await;
    let chat = start_conversation(&app, Some(PHONE)).await;
    let mut window = Window::open(&app, &chat).await;
    let status: Value =
        app.client.get(format!("{}/api/whatsapp/status", app.address)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["webChat"], json!({ "enabled": true, "openWindows": 1 }));
    assert_eq!(post_message(&app, &chat, "halo kak", "c-1").await.status(), 202);
    let second = post_message(&app, &chat, "brp biaya dokter umum?", "c-2").await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.json::<Value>().await.unwrap(), json!({ "id": "web.c-2", "duplicate": false }));

    let events = window.answer().await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["typing", "message", "sources"]);
    let message = &events[1].1;
    assert_eq!(message["text"], "Biaya konsultasi dokter umum *Rp 75.000* kak.", "WhatsApp formatting");
    assert_eq!(events[2].1["turnId"], message["turnId"]);
    assert_eq!(events[2].1["sources"][0]["citation"], "Panduan Klinik");
    assert_eq!(events[2].1["sources"][0]["heading"], "Biaya", "the title is in the citation already");

    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 1, "one combined turn");
    assert_eq!(last_user_message(&llm[0]), "halo kak\nbrp biaya dokter umum?");
    assert!(llm[0]["messages"][0]["content"].as_str().unwrap().contains("Rp 75.000 per kunjungan"));
    assert!(app.sent_texts().await.is_empty(), "nothing went to WhatsApp");

    let lines = history(&app, &chat).await;
    let who: Vec<&str> = lines.iter().map(|line| line["from"].as_str().unwrap()).collect();
    assert_eq!(who, ["customer", "customer", "bot"]);
    assert_eq!(lines[0]["id"], "web.c-1");
    assert_eq!(lines[2]["id"], message["id"]);
    assert_eq!(lines[2]["kind"], "llm");
    assert_eq!(lines[2]["sources"][0]["citation"], "Panduan Klinik");
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM users WHERE channel = 'web' AND address IS NOT NULL AND phone IS NULL \
             AND profile_name = '6281******890'"
        )
        .await,
        1,
        "the number is a masked label, the conversation is its key"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered' AND reply_kind = 'llm'").await, 1);
}

async fn a_retried_message_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let chat = start_conversation(&app, Some(PHONE)).await;
    assert_eq!(post_message(&app, &chat, "halo", "same-id").await.status(), 202);
    let retried = post_message(&app, &chat, "halo", "same-id").await;
    assert_eq!(retried.json::<Value>().await.unwrap()["duplicate"], true);
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);
}

async fn without_an_api_key_the_documents_answer(backend: Backend) {
    let app =
        TestApp::spawn_with_documents(backend, &[("OPENROUTER_API_KEY", "")], &[("klinik.md", GUIDE.as_bytes())]).await;
    let config: Value =
        app.client.get(format!("{}/api/chat/config", app.address)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["llm"], false);
    assert_eq!(config["quietSeconds"], 0.5);

    let chat = start_conversation(&app, None).await;
    let mut window = Window::open(&app, &chat).await;
    post_message(&app, &chat, "jam buka klinik kapan?", "q-1").await;
    let events = window.answer().await;
    let reply = events.iter().find(|(name, _)| name == "message").unwrap().1["text"].as_str().unwrap().to_owned();
    assert!(reply.starts_with("Berikut informasi dari dokumen kami:"), "{reply}");
    assert!(reply.contains("Senin sampai Sabtu pukul 07.00"), "{reply}");
    assert!(reply.contains("_(Panduan Klinik)_"), "{reply}");
    assert_eq!(events.last().unwrap().1["sources"][0]["heading"], "Jam buka");

    post_message(&app, &chat, "xyzzy plugh", "q-2").await;
    let events = window.answer().await;
    let reply = events.iter().find(|(name, _)| name == "message").unwrap().1["text"].as_str().unwrap().to_owned();
    assert!(reply.starts_with("Mohon maaf kak, kami belum menemukan informasi"), "{reply}");
    assert_eq!(events.last().unwrap().1["sources"], json!([]));

    assert!(app.llm_requests().await.is_empty(), "no key, no request");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE reply_kind = 'offline'").await, 2);
}

async fn a_failing_llm_on_whatsapp_answers_with_passages_instead_of_the_apology(backend: Backend) {
    let app = TestApp::spawn_with_documents(backend, &[], &[("klinik.md", GUIDE.as_bytes())]).await;
    graph_accepts_sends(&app.graph).await;
    Mock::given(method("POST")).and(path(LLM_PATH)).respond_with(ResponseTemplate::new(500)).mount(&app.llm).await;
    app.say("6281234567789", "wamid.fail.1", "brp biaya konsultasi dokter umum").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    let body = sent[0]["text"]["body"].as_str().unwrap();
    assert!(body.starts_with("Berikut informasi dari dokumen kami:"), "{body}");
    assert!(body.contains("Rp 75.000 per kunjungan"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE reply_kind = 'fallback'").await, 1);

    let status = app.admin_json("/api/whatsapp/status").await;
    assert!(status["llm"]["lastError"]["message"].as_str().unwrap().contains("500"), "{status}");
    assert!(status["whatsapp"]["webhookLastSeen"].as_i64().unwrap() > 0);
    assert!(status["whatsapp"]["lastSendError"].is_null());
}

async fn the_same_number_on_whatsapp_and_the_web_is_two_conversations(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say(PHONE, "wamid.private.1", "rahasia saya di WhatsApp").await;
    app.wait_for_texts(1).await;
    let chat = start_conversation(&app, Some(PHONE)).await;
    assert!(history(&app, &chat).await.is_empty(), "a web visitor never sees the WhatsApp conversation");

    let mut window = Window::open(&app, &chat).await;
    post_message(&app, &chat, "halo dari web", "w-1").await;
    window.answer().await;
    let lines = history(&app, &chat).await;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["text"], "halo dari web");
    assert_eq!(app.sent_texts().await.len(), 1, "the web answer did not go to WhatsApp");
    let llm = app.llm_requests().await;
    assert_eq!(llm[1]["messages"].as_array().unwrap().len(), 2, "no WhatsApp history in the web prompt");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_and_change_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let refused = start_request(&app, Some("12"), None).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("phone"));
    let chat = start_conversation(&app, None).await;
    let too_long = "a".repeat(4097);
    for (text, client_id, expected) in
        [("   ", "a", "empty"), (too_long.as_str(), "a", "longer than 4096"), ("halo", "../../etc", "clientId")]
    {
        let response = post_message(&app, &chat, text, client_id).await;
        assert_eq!(response.status(), 400, "{expected}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
    }
    let malformed = app
        .client
        .post(format!("{}/api/chat/messages", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(get_with(&app, "events", "", None).await.status(), 401, "no secret");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1, "only the conversation started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_chat_can_be_turned_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("WEB_CHAT_ENABLED", "false")]).await;
    for route in ["/", "/api/chat/config", "/api/chat/history"] {
        let response = app.client.get(format!("{}{route}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{route}");
    }
    assert_eq!(start_request(&app, None, None).await.status(), 404);
    assert_eq!(post_message(&app, &"a".repeat(64), "halo", "x").await.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    let admin = app.client.get(format!("{}/admin", app.address)).send().await.unwrap();
    assert_eq!(admin.status(), 200, "the admin page stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (route, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "/assets/chat.js"),
        ("/admin", "text/html; charset=utf-8", "/assets/admin.js"),
        ("/assets/chat.js", "text/javascript; charset=utf-8", "/api/chat/events"),
        ("/assets/admin.css", "text/css; charset=utf-8", "{"),
    ] {
        let response = app.client.get(format!("{}{route}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{route}");
        assert_eq!(response.headers()["content-type"], content_type, "{route}");
        assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{route} contains {needle}");
        assert!(!body.contains("https://"), "{route} loads nothing from elsewhere");
    }
    let missing = app.client.get(format!("{}/assets/../Cargo.toml", app.address)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_window_does_not_hold_up_a_graceful_shutdown() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let chat = start_conversation(&app, None).await;
    let mut window = Window::open(&app, &chat).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop_gracefully()).await.expect("stopped within 10 s");
    assert!(window.next().await.is_none(), "the stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_chat_talks_to_the_same_pipeline() {
    let app = TestApp::spawn_with_documents(Backend::Sqlite, &[], &[("klinik.md", GUIDE.as_bytes())]).await;
    llm_answers(&app.llm, "Klinik buka Senin sampai Sabtu kak.").await;
    let mut chat = tokio::process::Command::new(env!("CARGO_BIN_EXE_wa-ai-bridge"))
        .args(["chat", "--url", &app.address, "--phone", "6285700001111"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"halo\njam buka kapan?\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), chat.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("sebagai 6285******111"), "{stdout}");
    assert_eq!(stdout.matches("Bot: Klinik buka Senin sampai Sabtu kak.").count(), 1, "{stdout}");
    assert!(stdout.contains("Sumber: Panduan Klinik"), "{stdout}");
    assert_eq!(last_user_message(&app.llm_requests().await[0]), "halo\njam buka kapan?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_chat_hands_an_answer_in_flight_back_when_interrupted() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    // Only the terminal chat's own server uses the database.
    app.crash();
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion("Halo kak!")).set_delay(Duration::from_secs(30)),
        )
        .mount(&app.llm)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut chat = tokio::process::Command::new(env!("CARGO_BIN_EXE_wa-ai-bridge"))
        .arg("chat")
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &app.database.url)
        .env("DATA_DIR", app.data.path())
        .env("KNOWLEDGE_DIR", app.knowledge.path())
        .env("ADMIN_API_TOKEN", ADMIN_TOKEN)
        .env("OPENROUTER_API_KEY", OPENROUTER_KEY)
        .env("OPENROUTER_URL", format!("{}{LLM_PATH}", app.llm.uri()))
        .env("LLM_TIMEOUT_SECONDS", "60")
        .env("MESSAGE_BUFFER_SECONDS", "0.3")
        .env("SHUTDOWN_GRACE_SECONDS", "0.5")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"halo\n").await.unwrap();
    wait_until(|| async { app.llm_requests().await.len() == 1 }).await;

    let pid = chat.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), chat.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status:?}");
    let handed_back = app.count("SELECT COUNT(*) FROM turns WHERE status = 'answering' AND lease_until = 0").await;
    assert_eq!(handed_back, 1, "the next start resumes it at once, not when its lease ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_chat_takes_only_so_many_messages_a_minute() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("WEB_CHAT_MESSAGES_PER_MINUTE", "2")]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let chats = [start_conversation(&app, None).await, start_conversation(&app, None).await];
    let third = start_conversation(&app, None).await;
    assert_eq!(post_message(&app, &chats[0], "satu", "r-1").await.status(), 202);
    assert_eq!(post_message(&app, &chats[1], "dua", "r-2").await.status(), 202);
    let refused = post_message(&app, &third, "tiga", "r-3").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("try again"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id LIKE '%.r-3'").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_window_on_one_replica_sees_the_answer_another_replica_wrote() {
    if postgres_url().is_none() {
        eprintln!("TEST_DATABASE_URL is not set: skipping the two-replica web chat test");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    llm_answers(&app.llm, "Halo dari replika lain!").await;
    let replica = Server::start(app.settings()).await;
    let chat = start_conversation(&app, None).await;
    let mut window = Window::open_at(&app, &format!("http://127.0.0.1:{}", replica.port), &chat).await;
    // The message goes to the first replica, whose timer answers it.
    assert_eq!(post_message(&app, &chat, "halo", "rep-1").await.status(), 202);
    let events = window.answer().await;
    let messages: Vec<&Value> = events.iter().filter(|(name, _)| name == "message").map(|(_, data)| data).collect();
    assert_eq!(messages.len(), 1, "{events:?}");
    assert_eq!(messages[0]["text"], "Halo dari replika lain!");
    assert_eq!(events.last().unwrap().0, "sources");
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);
}

async fn a_conversation_is_seen_only_with_its_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Baik kak, dicatat.").await;
    // Two browsers pick the same sample number.
    let alice = start_conversation(&app, Some(PHONE)).await;
    let bob = start_conversation(&app, Some(PHONE)).await;
    let mut alices_window = Window::open(&app, &alice).await;
    let mut bobs_window = Window::open(&app, &bob).await;
    post_message(&app, &alice, "nama saya Ani, alamat Jl. Mawar 5", "a-1").await;
    alices_window.answer().await;

    let stranger = "0".repeat(64);
    for what in ["history", "events"] {
        assert_eq!(get_with(&app, what, "", None).await.status(), 401, "{what} without a secret");
        let wrong = get_with(&app, what, &stranger, None).await;
        assert_eq!(wrong.status(), 404, "{what} with a made-up secret");
        assert!(!wrong.text().await.unwrap().contains("Mawar"));
    }
    assert_eq!(post_message(&app, &stranger, "halo", "x-1").await.status(), 404);
    let old_style = app
        .client
        .post(format!("{}/api/chat/messages", app.address))
        .json(&json!({ "phone": PHONE, "text": "halo", "clientId": "x-2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(old_style.status(), 401, "a number opens nothing");
    assert!(history(&app, &bob).await.is_empty(), "the same number is another conversation");

    post_message(&app, &bob, "siapa nama saya?", "b-1").await;
    // Bob's window saw none of Alice's events: the first answer in it is his own.
    let events = bobs_window.answer().await;
    let lines = history(&app, &bob).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["text"], "siapa nama saya?");
    let message = events.iter().find(|(name, _)| name == "message").unwrap();
    assert_eq!(message.1["id"], lines[1]["id"], "{events:?}");
    assert!(!serde_json::to_string(&lines).unwrap().contains("Mawar"));

    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 2);
    assert!(!llm[1].to_string().contains("Mawar"), "Alice's turns are not Bob's history");
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE channel = 'web'").await, 2);
    let stored = app.count(&format!("SELECT COUNT(*) FROM users WHERE address = '{alice}' OR address = '{bob}'")).await;
    assert_eq!(stored, 0, "only hashes of the secrets are stored");
}

async fn a_client_id_counts_within_its_conversation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let (alice, bob) = (start_conversation(&app, None).await, start_conversation(&app, None).await);
    for (chat, text) in [(&alice, "halo dari Ani"), (&bob, "halo dari Budi")] {
        let sent = post_message(&app, chat, text, "same-id").await;
        assert_eq!(sent.status(), 202);
        assert_eq!(sent.json::<Value>().await.unwrap(), json!({ "id": "web.same-id", "duplicate": false }));
    }
    let retried = post_message(&app, &alice, "halo dari Ani", "same-id").await;
    assert_eq!(retried.json::<Value>().await.unwrap()["duplicate"], true);
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 2 }).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 2);
    let mut asked: Vec<String> = app.llm_requests().await.iter().map(last_user_message).collect();
    asked.sort();
    assert_eq!(asked, ["halo dari Ani", "halo dari Budi"]);
    assert_eq!(history(&app, &bob).await[0]["id"], "web.same-id");
}

async fn a_chatty_visitor_is_held_back_alone(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("WEB_CHAT_VISITOR_MESSAGES_PER_MINUTE", "2"), ("WEB_CHAT_ADDRESS_MESSAGES_PER_HOUR", "4")],
    )
    .await;
    llm_answers(&app.llm, "Halo kak!").await;
    let (chatty, other) = (start_conversation(&app, None).await, start_conversation(&app, None).await);
    assert_eq!(post_message(&app, &chatty, "satu", "v-1").await.status(), 202);
    assert_eq!(post_message(&app, &chatty, "dua", "v-2").await.status(), 202);
    let refused = post_message(&app, &chatty, "tiga", "v-3").await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("this conversation"), "{body}");
    assert_eq!(post_message(&app, &other, "halo", "o-1").await.status(), 202, "another conversation goes on");
    // Four an hour from one address (every test client is 127.0.0.1),
    // whichever conversation they are in.
    assert_eq!(post_message(&app, &other, "lagi", "o-2").await.status(), 202);
    let third = start_conversation(&app, None).await;
    let refused = post_message(&app, &third, "halo juga", "t-1").await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body = refused.text().await.unwrap();
    assert!(wait >= 60 && body.contains("from your network"), "{wait} {body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 4);
}

async fn forwarded_for_names_the_visitor_only_behind_a_trusted_proxy(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("WEB_CHAT_CONVERSATIONS_PER_HOUR", "2")]).await;
    // Not behind a trusted proxy: X-Forwarded-For is the client's own words.
    for hop in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(start_request(&app, None, Some(hop)).await.status(), 201);
    }
    let refused = start_request(&app, None, Some("203.0.113.3")).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 60);
    assert!(refused.text().await.unwrap().contains("new conversations"));

    app.overrides.insert("TRUSTED_PROXIES".into(), "127.0.0.0/8".into());
    app.restart().await;
    for _ in 0..2 {
        assert_eq!(start_request(&app, None, Some("6.6.6.6, 203.0.113.1")).await.status(), 201);
    }
    assert_eq!(start_request(&app, None, Some("203.0.113.1")).await.status(), 429);
    assert_eq!(start_request(&app, None, Some("203.0.113.2")).await.status(), 201, "another visitor is not affected");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 5);
}

async fn open_event_streams_are_capped(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("TRUSTED_PROXIES", "127.0.0.1"), ("WEB_CHAT_MAX_STREAMS", "3"), ("WEB_CHAT_STREAMS_PER_ADDRESS", "2")],
    )
    .await;
    let chat = start_conversation(&app, None).await;
    let open = |hop: &'static str| {
        let chat = chat.clone();
        let app = &app;
        async move { get_with(app, "events", &chat, Some(hop)).await }
    };
    let first = Window::from_response(open("203.0.113.1").await);
    let _second = Window::from_response(open("203.0.113.1").await);
    let refused = open("203.0.113.1").await;
    assert_eq!(refused.status(), 429, "two per address");
    assert!(refused.headers().contains_key("retry-after"));
    let _third = Window::from_response(open("203.0.113.2").await);
    assert_eq!(open("203.0.113.3").await.status(), 429, "three in all");
    assert!(app.metric("wa_webchat_open_streams").await >= 3.0);
    drop(first);
    wait_until(|| async { open("203.0.113.3").await.status() == 200 }).await;
}
