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
);

pub async fn post_message(app: &TestApp, phone: &str, text: &str, client_id: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/chat/messages", app.address))
        .json(&json!({ "phone": phone, "text": text, "clientId": client_id }))
        .send()
        .await
        .unwrap()
}

/// An open chat window: the event stream of one number.
pub struct Window {
    response: reqwest::Response,
    buffer: String,
}

impl Window {
    pub async fn open(app: &TestApp, phone: &str) -> Self {
        Self::open_at(app, &app.address, phone).await
    }

    pub async fn open_at(app: &TestApp, address: &str, phone: &str) -> Self {
        let response = app.client.get(format!("{address}/api/chat/events?phone={phone}")).send().await.unwrap();
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

pub async fn history(app: &TestApp, phone: &str) -> Vec<Value> {
    let response = app.client.get(format!("{}/api/chat/history?phone={phone}", app.address)).send().await.unwrap();
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
    let mut window = Window::open(&app, PHONE).await;
    let status: Value =
        app.client.get(format!("{}/api/whatsapp/status", app.address)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["webChat"], json!({ "enabled": true, "openWindows": 1 }));
    assert_eq!(post_message(&app, PHONE, "halo kak", "c-1").await.status(), 202);
    let second = post_message(&app, PHONE, "brp biaya dokter umum?", "c-2").await;
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

    let lines = history(&app, PHONE).await;
    let who: Vec<&str> = lines.iter().map(|line| line["from"].as_str().unwrap()).collect();
    assert_eq!(who, ["customer", "customer", "bot"]);
    assert_eq!(lines[0]["id"], "web.c-1");
    assert_eq!(lines[2]["id"], message["id"]);
    assert_eq!(lines[2]["kind"], "llm");
    assert_eq!(lines[2]["sources"][0]["citation"], "Panduan Klinik");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE channel = 'web' AND address = '{PHONE}' AND phone IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered' AND reply_kind = 'llm'").await, 1);
}

async fn a_retried_message_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    assert_eq!(post_message(&app, PHONE, "halo", "same-id").await.status(), 202);
    let retried = post_message(&app, PHONE, "halo", "same-id").await;
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

    let mut window = Window::open(&app, PHONE).await;
    post_message(&app, PHONE, "jam buka klinik kapan?", "q-1").await;
    let events = window.answer().await;
    let reply = events.iter().find(|(name, _)| name == "message").unwrap().1["text"].as_str().unwrap().to_owned();
    assert!(reply.starts_with("Berikut informasi dari dokumen kami:"), "{reply}");
    assert!(reply.contains("Senin sampai Sabtu pukul 07.00"), "{reply}");
    assert!(reply.contains("_(Panduan Klinik)_"), "{reply}");
    assert_eq!(events.last().unwrap().1["sources"][0]["heading"], "Jam buka");

    post_message(&app, PHONE, "xyzzy plugh", "q-2").await;
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
    assert!(history(&app, PHONE).await.is_empty(), "a web visitor never sees the WhatsApp conversation");

    let mut window = Window::open(&app, PHONE).await;
    post_message(&app, PHONE, "halo dari web", "w-1").await;
    window.answer().await;
    let lines = history(&app, PHONE).await;
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
    let too_long = "a".repeat(4097);
    for (phone, text, client_id, expected) in [
        ("12", "halo", "a", "phone"),
        (PHONE, "   ", "a", "empty"),
        (PHONE, too_long.as_str(), "a", "longer than 4096"),
        (PHONE, "halo", "../../etc", "clientId"),
    ] {
        let response = post_message(&app, phone, text, client_id).await;
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
    let events = app.client.get(format!("{}/api/chat/events?phone=abc", app.address)).send().await.unwrap();
    assert_eq!(events.status(), 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_chat_can_be_turned_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("WEB_CHAT_ENABLED", "false")]).await;
    for route in ["/", "/api/chat/config", &format!("/api/chat/history?phone={PHONE}")] {
        let response = app.client.get(format!("{}{route}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{route}");
    }
    assert_eq!(post_message(&app, PHONE, "halo", "x").await.status(), 404);
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
        ("/assets/chat.js", "text/javascript; charset=utf-8", "EventSource"),
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
    let mut window = Window::open(&app, PHONE).await;
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
async fn the_web_chat_takes_only_so_many_messages_a_minute() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("WEB_CHAT_MESSAGES_PER_MINUTE", "2")]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    assert_eq!(post_message(&app, PHONE, "satu", "r-1").await.status(), 202);
    assert_eq!(post_message(&app, "6285700001111", "dua", "r-2").await.status(), 202);
    let refused = post_message(&app, "6289912345678", "tiga", "r-3").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("try again"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id = 'web.r-3'").await, 0);
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
    let mut window = Window::open_at(&app, &format!("http://127.0.0.1:{}", replica.port), PHONE).await;
    // The message goes to the first replica, whose timer answers it.
    assert_eq!(post_message(&app, PHONE, "halo", "rep-1").await.status(), 202);
    let events = window.answer().await;
    let messages: Vec<&Value> = events.iter().filter(|(name, _)| name == "message").map(|(_, data)| data).collect();
    assert_eq!(messages.len(), 1, "{events:?}");
    assert_eq!(messages[0]["text"], "Halo dari replika lain!");
    assert_eq!(events.last().unwrap().0, "sources");
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);
}
