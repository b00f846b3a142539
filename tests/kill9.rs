//! The real binary, killed with SIGKILL in the middle of a quiet window or
//! while the LLM is thinking, answers the stored messages exactly once after
//! it is started again.

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wa_ai_bridge::channels::cloud_api::sign;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "kill9-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(port: u16, data_dir: &std::path::Path, graph: &str, llm: &str) -> Child {
    let cloud_api = [
        ("META_APP_SECRET", SECRET),
        ("META_ACCESS_TOKEN", "token"),
        ("META_PHONE_NUMBER_ID", "1122334455667"),
        ("WHATSAPP_GRAPH_BASE", graph),
    ];
    spawn(port, data_dir, llm, &cloud_api)
}

/// The binary with an empty environment but for what it needs: the
/// `provider`'s settings and a fake OpenRouter at `llm`.
fn spawn(port: u16, data_dir: &std::path::Path, llm: &str, provider: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wa-ai-bridge"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("DATA_DIR", data_dir)
        .env("PROMPTS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))
        .envs(provider.iter().copied())
        .env("OPENROUTER_API_KEY", "key")
        .env("OPENROUTER_URL", format!("{llm}/api/v1/chat/completions"))
        .env("MESSAGE_BUFFER_SECONDS", "2")
        .current_dir(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts")
}

async fn wait_healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if client.get(format!("http://127.0.0.1:{port}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become healthy");
}

async fn texts_sent(graph: &MockServer) -> usize {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b["type"] == "text"))
        .count()
}

async fn say(client: &reqwest::Client, port: u16, id: &str, text: &str) {
    let message = json!({ "from": "6281234567789", "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": text } });
    post_message(client, port, message).await;
}

async fn post_message(client: &reqwest::Client, port: u16, message: Value) {
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages",
        "value": { "messaging_product": "whatsapp", "contacts": [{ "wa_id": "6281234567789", "profile": { "name": "Budi" } }],
        "messages": [message] } }] }] })
    .to_string();
    let response = client
        .post(format!("http://127.0.0.1:{port}/webhook/whatsapp"))
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn wait_for_text(graph: &MockServer, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while texts_sent(graph).await == 0 {
        assert!(std::time::Instant::now() < deadline, "no reply within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn graph_accepting() -> Mock {
    Mock::given(method("POST"))
        .and(path("/v23.0/1122334455667/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": "wamid.out.1" }] })))
}

fn llm_answering(delay: Duration) -> Mock {
    Mock::given(method("POST")).and(path("/api/v1/chat/completions")).respond_with(
        ResponseTemplate::new(200)
            .set_body_json(
                json!({ "model": "m", "choices": [{ "message": { "role": "assistant", "content": "Halo kak!" } }] }),
            )
            .set_delay(delay),
    )
}

/// Fake Graph API and OpenRouter (answering after `llm_delay`), a data
/// folder and a port for the binary, which `start` runs.
struct Setup {
    graph: MockServer,
    llm: MockServer,
    data_dir: tempfile::TempDir,
    port: u16,
    client: reqwest::Client,
}

impl Setup {
    async fn new(llm_delay: Duration) -> Self {
        let (graph, llm) = (MockServer::start().await, MockServer::start().await);
        graph_accepting().mount(&graph).await;
        llm_answering(llm_delay).mount(&llm).await;
        let data_dir = tempfile::tempdir().unwrap();
        Self { graph, llm, data_dir, port: free_port(), client: reqwest::Client::new() }
    }

    /// Starts the binary and waits until it answers.
    async fn start(&self) -> Child {
        let server = start(self.port, self.data_dir.path(), &self.graph.uri(), &self.llm.uri());
        wait_healthy(&self.client, self.port).await;
        server
    }
}

#[tokio::test]
async fn sigkill_in_the_quiet_window_still_gets_exactly_one_reply() {
    let setup = Setup::new(Duration::ZERO).await;
    let (Setup { graph, llm, client, .. }, port) = (&setup, setup.port);
    let mut server = setup.start().await;

    for (id, text) in [("wamid.k9.1", "halo"), ("wamid.k9.2", "jam buka kapan?")] {
        say(client, port, id, text).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    assert_eq!(texts_sent(graph).await, 0, "killed before the quiet window ended");

    let mut restarted = setup.start().await;
    wait_for_text(graph, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    restarted.kill().ok();
    restarted.wait().ok();
    assert_eq!(texts_sent(graph).await, 1);
    let llm_calls = llm.received_requests().await.unwrap();
    assert_eq!(llm_calls.len(), 1);
    let request: Value = serde_json::from_slice(&llm_calls[0].body).unwrap();
    assert_eq!(request["messages"].as_array().unwrap().last().unwrap()["content"], "halo\njam buka kapan?");
}

/// With the default 30-second lease: a process killed while the model is
/// thinking leaves its turn leased; the next process takes it over once the
/// lease ends (its recovery scan runs every 10 s) and answers once.
#[tokio::test]
async fn sigkill_while_the_llm_thinks_is_answered_once_within_a_lease_and_a_third() {
    let setup = Setup::new(Duration::from_secs(3)).await;
    let (Setup { graph, llm, client, .. }, port) = (&setup, setup.port);
    let mut server = setup.start().await;
    say(client, port, "wamid.k9.lease", "halo").await;
    while llm.received_requests().await.unwrap_or_default().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().expect("SIGKILL");
    let killed_at = std::time::Instant::now();
    server.wait().unwrap();

    let mut restarted = setup.start().await;
    wait_for_text(graph, Duration::from_secs(50)).await;
    let recovered_in = killed_at.elapsed();
    eprintln!("kill -9 while the LLM thinks: reply {:.1} s after the kill", recovered_in.as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    restarted.kill().ok();
    restarted.wait().ok();
    assert_eq!(texts_sent(graph).await, 1);
    assert!(recovered_in < Duration::from_secs(45), "answered {recovered_in:?} after the kill");
    assert_eq!(llm.received_requests().await.unwrap().len(), 2, "the dead process's request, then the new one");
}

/// The pause is data: a server killed while a paused person's message waits
/// in its quiet window answers neither it nor the next one after a restart.
#[tokio::test]
async fn sigkill_while_paused_keeps_the_bot_silent_after_the_restart() {
    let setup = Setup::new(Duration::ZERO).await;
    let (Setup { graph, llm, client, data_dir, .. }, port) = (&setup, setup.port);
    let mut server = setup.start().await;
    say(client, port, "wamid.k9.pause.1", "halo").await;
    wait_for_text(graph, Duration::from_secs(10)).await;

    let token = std::fs::read_to_string(data_dir.path().join("admin-token")).unwrap();
    let conversations = format!("http://127.0.0.1:{port}/api/admin/conversations");
    let response = client.get(&conversations).bearer_auth(token.trim()).send().await.unwrap();
    let listed: Value = response.json().await.unwrap();
    let pause = format!("{conversations}/{}/pause", listed["conversations"][0]["id"]);
    assert_eq!(client.post(pause).bearer_auth(token.trim()).send().await.unwrap().status(), 200);
    say(client, port, "wamid.k9.pause.2", "masih di sana?").await;
    server.kill().expect("SIGKILL");
    server.wait().unwrap();

    let mut restarted = setup.start().await;
    say(client, port, "wamid.k9.pause.3", "halo? kok diam").await;
    // Two quiet windows and then some.
    tokio::time::sleep(Duration::from_secs(5)).await;
    restarted.kill().ok();
    restarted.wait().ok();
    assert_eq!(texts_sent(graph).await, 1, "only the answer from before the pause");
    assert_eq!(llm.received_requests().await.unwrap().len(), 1);
}

async fn requests_to(server: &MockServer, wanted: &str) -> usize {
    server.received_requests().await.unwrap_or_default().iter().filter(|r| r.url.path() == wanted).count()
}

/// A voice note downloaded and transcribed, then SIGKILL while the model
/// thinks: the next process answers it once, from what the first one
/// stored, without downloading or transcribing it again.
#[tokio::test]
async fn sigkill_after_the_download_answers_once_without_downloading_again() {
    let setup = Setup::new(Duration::from_secs(3)).await;
    let (Setup { graph, llm, client, .. }, port) = (&setup, setup.port);
    let voice = b"OggS a voice note".to_vec();
    Mock::given(method("GET"))
        .and(path("/v23.0/voice-k9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "url": format!("{}/cdn/voice-k9", graph.uri()), "mime_type": "audio/ogg", "file_size": voice.len() }),
        ))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/cdn/voice-k9"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(voice))
        .mount(graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/audio/transcriptions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "text": "jam buka kapan" })))
        .mount(llm)
        .await;

    let mut server = setup.start().await;
    let message = json!({ "from": "6281234567789", "id": "wamid.k9.voice", "timestamp": "1700000000", "type": "audio",
        "audio": { "id": "voice-k9", "mime_type": "audio/ogg; codecs=opus", "voice": true } });
    post_message(client, port, message).await;
    while requests_to(llm, "/api/v1/chat/completions").await == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();

    let mut restarted = setup.start().await;
    wait_for_text(graph, Duration::from_secs(50)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    restarted.kill().ok();
    restarted.wait().ok();
    assert_eq!(texts_sent(graph).await, 1);
    assert_eq!(requests_to(graph, "/cdn/voice-k9").await, 1, "downloaded once");
    assert_eq!(requests_to(llm, "/api/v1/audio/transcriptions").await, 1, "transcribed once");
    let asked: Vec<Value> = llm
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/v1/chat/completions")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(asked.len(), 2, "the dead process's request, then the new one");
    assert_eq!(asked[1]["messages"].as_array().unwrap().last().unwrap()["content"], "[pesan suara] jam buka kapan");
}

/// WAHA as the provider: a burst of messages, SIGKILL inside the quiet
/// window, and after the restart one `sendText` answers the whole burst.
#[tokio::test]
async fn waha_sigkill_in_the_quiet_window_still_gets_exactly_one_send_text() {
    const HMAC_KEY: &str = "kill9-waha-hmac";
    let (waha, llm) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/api/sendText"))
        .and(wiremock::matchers::header("x-api-key", "kill9-waha-key"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "true_6281234567789@c.us_3EB0K9OUT" })))
        .mount(&waha)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(201).set_body_json(json!({}))).mount(&waha).await;
    llm_answering(Duration::ZERO).mount(&llm).await;
    let data_dir = tempfile::tempdir().unwrap();
    let (port, client) = (free_port(), reqwest::Client::new());
    let waha_uri = waha.uri();
    let settings =
        [("WAHA_URL", waha_uri.as_str()), ("WAHA_API_KEY", "kill9-waha-key"), ("WAHA_WEBHOOK_HMAC_KEY", HMAC_KEY)];
    let start_waha = || spawn(port, data_dir.path(), &llm.uri(), &settings);
    let sends = || async { requests_to(&waha, "/api/sendText").await };
    let mut server = start_waha();
    wait_healthy(&client, port).await;
    for (id, text) in [("3EB0K91", "halo"), ("3EB0K92", "jam buka kapan?")] {
        let body = json!({ "event": "message", "session": "default", "payload": {
            "id": format!("false_6281234567789@c.us_{id}"), "timestamp": 1_733_360_000, "from": "6281234567789@c.us",
            "fromMe": false, "body": text, "hasMedia": false } })
        .to_string();
        let response = client
            .post(format!("http://127.0.0.1:{port}/webhook/waha"))
            .header("x-webhook-hmac", wa_ai_bridge::channels::waha::sign(HMAC_KEY.as_bytes(), body.as_bytes()))
            .header("x-webhook-hmac-algorithm", "sha512")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    assert_eq!(sends().await, 0, "killed before the quiet window ended");

    let mut restarted = start_waha();
    wait_healthy(&client, port).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sends().await == 0 {
        assert!(std::time::Instant::now() < deadline, "no reply after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    restarted.kill().ok();
    restarted.wait().ok();
    assert_eq!(sends().await, 1);
    let asked: Vec<Value> =
        llm.received_requests().await.unwrap().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["messages"].as_array().unwrap().last().unwrap()["content"], "halo\njam buka kapan?");
}

#[tokio::test]
async fn sigkill_in_the_quiet_window_on_fonnte_still_gets_exactly_one_reply() {
    let (fonnte, llm) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(wiremock::matchers::header("authorization", "fonnte-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "status": true, "id": ["80367170"], "process": "pending" })),
        )
        .mount(&fonnte)
        .await;
    llm_answering(Duration::ZERO).mount(&llm).await;
    let data_dir = tempfile::tempdir().unwrap();
    let (port, client) = (free_port(), reqwest::Client::new());
    let fonnte_uri = fonnte.uri();
    let settings =
        [("FONNTE_TOKEN", "fonnte-token"), ("FONNTE_API_URL", fonnte_uri.as_str()), ("FONNTE_WEBHOOK_SECRET", SECRET)];
    let start = || async {
        let server = spawn(port, data_dir.path(), &llm.uri(), &settings);
        wait_healthy(&client, port).await;
        server
    };
    let mut server = start().await;
    for (timestamp, text) in [(1_733_000_000, "halo"), (1_733_000_001, "jam buka kapan?")] {
        let body =
            json!({ "device": "6282227097005", "sender": "6281234567789", "message": text, "timestamp": timestamp });
        let response =
            client.post(format!("http://127.0.0.1:{port}/webhook/fonnte/{SECRET}")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    assert_eq!(requests_to(&fonnte, "/send").await, 0, "killed before the quiet window ended");

    let mut restarted = start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while requests_to(&fonnte, "/send").await == 0 {
        assert!(std::time::Instant::now() < deadline, "no reply after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    restarted.kill().ok();
    restarted.wait().ok();
    assert_eq!(requests_to(&fonnte, "/send").await, 1);
    let llm_calls = llm.received_requests().await.unwrap();
    assert_eq!(llm_calls.len(), 1);
    let request: Value = serde_json::from_slice(&llm_calls[0].body).unwrap();
    assert_eq!(request["messages"].as_array().unwrap().last().unwrap()["content"], "halo\njam buka kapan?");
}
