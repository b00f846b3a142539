//! The Fonnte channel end to end: webhooks in at /webhook/fonnte/{secret},
//! replies out to a fake Fonnte API on loopback that checks the device
//! token and the form fields, rows in the database.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

on_both_backends!(
    a_burst_of_three_messages_is_answered_once_after_the_quiet_window,
    a_redelivered_webhook_is_answered_once,
    a_disconnected_device_is_recorded_and_retried_until_sent,
    an_invalid_token_is_recorded_and_not_retried,
    fonntes_delivery_statuses_update_our_send,
    the_devices_own_messages_and_groups_do_not_trigger_the_bot,
    a_wrong_or_missing_secret_is_404_and_stores_nothing,
    a_source_outside_the_allowlist_is_refused,
    malformed_bodies_are_refused_and_store_nothing,
    the_device_status_appears_in_the_status_endpoint,
    a_photo_url_is_downloaded_and_reaches_the_model,
);

const TOKEN: &str = "fonnte-device-token";
const SECRET: &str = "fonnte-webhook-secret";
const DEVICE: &str = "6282227097005";
const PERSON: &str = "6281234567789";

/// A server on Fonnte only: the Cloud API's credentials are cleared.
async fn spawn(backend: Backend, fonnte: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    let uri = fonnte.uri();
    let mut overrides = vec![
        ("FONNTE_TOKEN", TOKEN),
        ("FONNTE_API_URL", uri.as_str()),
        ("FONNTE_WEBHOOK_SECRET", SECRET),
        ("META_ACCESS_TOKEN", ""),
        ("META_PHONE_NUMBER_ID", ""),
    ];
    overrides.extend_from_slice(extra);
    TestApp::spawn_with(backend, &overrides).await
}

/// Fonnte queues every send made with the device token, with a new id each.
async fn fonnte_accepts_sends(fonnte: &MockServer) {
    let next = std::sync::atomic::AtomicU64::new(80_367_170);
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(header("authorization", TOKEN))
        .respond_with(move |request: &Request| {
            let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let target = form(request).get("target").cloned().unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({
                "detail": "success! message in queue", "id": [id.to_string()], "process": "pending",
                "requestid": id + 1000, "status": true, "target": [target],
            }))
        })
        .mount(fonnte)
        .await;
}

fn form(request: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_bytes(&request.body).unwrap_or_default()
}

/// The form bodies of every `POST /send`, checking each carried the token.
async fn sends(fonnte: &MockServer) -> Vec<HashMap<String, String>> {
    let requests = fonnte.received_requests().await.unwrap_or_default();
    let sends: Vec<&Request> = requests.iter().filter(|r| r.url.path() == "/send").collect();
    for send in &sends {
        assert_eq!(send.headers.get("authorization").unwrap(), TOKEN);
    }
    sends.into_iter().map(form).collect()
}

async fn wait_for_sends(fonnte: &MockServer, n: usize) -> Vec<HashMap<String, String>> {
    wait_until(|| async { sends(fonnte).await.len() >= n }).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sends(fonnte).await
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/fonnte/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn text(timestamp: i64, message: &str) -> String {
    json!({ "device": DEVICE, "sender": PERSON, "message": message, "name": "Budi", "timestamp": timestamp })
        .to_string()
}

async fn post(app: &TestApp, secret: &str, body: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/webhook/fonnte/{secret}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn say(app: &TestApp, body: &str) {
    assert_eq!(post(app, SECRET, body).await.status(), 200);
}

async fn a_burst_of_three_messages_is_answered_once_after_the_quiet_window(backend: Backend) {
    let fonnte = MockServer::start().await;
    fonnte_accepts_sends(&fonnte).await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "Buka jam 08.00 sampai 16.00 kak.").await;
    say(&app, &text(1_733_000_000, "halo kak")).await;
    // The same fields form-encoded, as older integrations post them.
    let form = format!("device={DEVICE}&sender={PERSON}&message=mau+tanya&name=Budi&timestamp=1733000001");
    let response = app
        .client
        .post(format!("{}/webhook/fonnte/{SECRET}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    say(&app, &text(1_733_000_002, "jam buka kapan?")).await;

    let sent = wait_for_sends(&fonnte, 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["target"], PERSON);
    assert_eq!(sent[0]["message"], "Buka jam 08.00 sampai 16.00 kak.");
    assert_eq!(sent[0]["countryCode"], "0", "numbers are sent as they are");
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 1);
    assert_eq!(last_user_message(&llm[0]), "halo kak\nmau tanya\njam buka kapan?");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id LIKE 'fonnte:%'").await, 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE phone = '6281234567789' AND profile_name = 'Budi'").await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id = 'fonnte:80367170'").await, 1);
    assert!(app.graph.received_requests().await.unwrap_or_default().is_empty(), "nothing went to the Cloud API");
}

async fn a_redelivered_webhook_is_answered_once(backend: Backend) {
    let fonnte = MockServer::start().await;
    fonnte_accepts_sends(&fonnte).await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let body = fixture("message_text.json");
    for _ in 0..3 {
        say(&app, &body).await;
    }
    assert_eq!(wait_for_sends(&fonnte, 1).await.len(), 1);
    say(&app, &body).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sends(&fonnte).await.len(), 1, "a redelivery after the reply must not produce a second one");
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 1);
}

async fn a_disconnected_device_is_recorded_and_retried_until_sent(backend: Backend) {
    let fonnte = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("send_disconnected.json")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fonnte)
        .await;
    fonnte_accepts_sends(&fonnte).await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    say(&app, &text(1_733_000_000, "halo")).await;
    let sent = wait_for_sends(&fonnte, 2).await;
    assert_eq!(sent.len(), 2, "one refused attempt, one accepted");
    assert_eq!(sent[0]["message"], sent[1]["message"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE status = 'accepted' AND attempts = 2").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|line| line.starts_with("wa_sends_total{") && line.contains("outcome=\"retry\"")));
}

async fn an_invalid_token_is_recorded_and_not_retried(backend: Backend) {
    let fonnte = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("send_token_invalid.json")))
        .mount(&fonnte)
        .await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    say(&app, &text(1_733_000_000, "halo")).await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'failed'").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sends(&fonnte).await.len(), 1, "a refused token is not retried");
    let failed = "SELECT COUNT(*) FROM outbound_messages WHERE state = 'failed_permanent' \
                  AND error_title = 'Fonnte: token invalid' AND attempts = 1";
    assert_eq!(app.count(failed).await, 1);
    let status = app.admin_json("/api/whatsapp/status").await;
    assert!(status["whatsapp"]["lastSendError"].to_string().contains("token invalid"), "{status}");
}

async fn fonntes_delivery_statuses_update_our_send(backend: Backend) {
    let fonnte = MockServer::start().await;
    fonnte_accepts_sends(&fonnte).await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    say(&app, &text(1_733_000_000, "halo")).await;
    wait_for_sends(&fonnte, 1).await;
    say(&app, &fixture("status_read.json")).await;
    let read = "SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id = 'fonnte:80367170' AND status = 'read'";
    wait_until(|| async { app.count(read).await == 1 }).await;
    // Still queued at Fonnte: nothing to record yet.
    say(&app, &json!({ "device": DEVICE, "id": "80367170", "status": "pending", "state": "" }).to_string()).await;
    assert_eq!(app.count(read).await, 1);
}

async fn the_devices_own_messages_and_groups_do_not_trigger_the_bot(backend: Backend) {
    let fonnte = MockServer::start().await;
    fonnte_accepts_sends(&fonnte).await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "should not be used").await;
    say(&app, &fixture("message_self.json")).await;
    say(&app, &fixture("message_group.json")).await;
    say(&app, &json!({ "device": DEVICE, "sender": PERSON, "message": "catatan", "quick": true }).to_string()).await;
    say(&app, &fixture("connect.json")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sends(&fonnte).await.is_empty());
    assert!(app.llm_requests().await.is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

async fn a_wrong_or_missing_secret_is_404_and_stores_nothing(backend: Backend) {
    let fonnte = MockServer::start().await;
    let app = spawn(backend, &fonnte, &[]).await;
    let body = fixture("message_text.json");
    for wrong in ["wrong", "fonnte-webhook-secreT", "fonnte-webhook-secret-and-more", "%20"] {
        assert_eq!(post(&app, wrong, &body).await.status(), 404, "{wrong}");
    }
    let no_secret = app.client.post(format!("{}/webhook/fonnte", app.address)).body(body.clone()).send().await.unwrap();
    assert_eq!(no_secret.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);

    let unset = spawn(backend, &fonnte, &[("FONNTE_WEBHOOK_SECRET", "")]).await;
    assert_eq!(post(&unset, SECRET, &body).await.status(), 404, "no secret configured: no route");
    assert_eq!(unset.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
}

async fn a_source_outside_the_allowlist_is_refused(backend: Backend) {
    let fonnte = MockServer::start().await;
    let app = spawn(backend, &fonnte, &[("FONNTE_ALLOWED_IPS", "203.0.113.7")]).await;
    // A forged X-Forwarded-For counts only behind a trusted proxy.
    let response = app
        .client
        .post(format!("{}/webhook/fonnte/{SECRET}", app.address))
        .header("content-type", "application/json")
        .header("x-forwarded-for", "203.0.113.7")
        .body(fixture("message_text.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);

    let allowed = spawn(backend, &fonnte, &[("FONNTE_ALLOWED_IPS", "203.0.113.7,127.0.0.1")]).await;
    llm_answers(&allowed.llm, "Halo kak!").await;
    say(&allowed, &fixture("message_text.json")).await;
    assert_eq!(allowed.count("SELECT COUNT(*) FROM inbound_messages").await, 1);
}

async fn malformed_bodies_are_refused_and_store_nothing(backend: Backend) {
    let fonnte = MockServer::start().await;
    let app = spawn(backend, &fonnte, &[]).await;
    for body in [
        "{\"sender\": ",
        "[1, 2]",
        "",
        "hello=world",
        r#"{"device":"6282227097005","sender":"not-a-number","message":"halo"}"#,
    ] {
        assert_eq!(post(&app, SECRET, body).await.status(), 400, "{body}");
    }
    let big = json!({ "sender": PERSON, "message": "x".repeat(1024 * 1024 + 1) }).to_string();
    assert_eq!(post(&app, SECRET, &big).await.status(), 413);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

async fn the_device_status_appears_in_the_status_endpoint(backend: Backend) {
    let fonnte = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .and(header("authorization", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("device.json")))
        .mount(&fonnte)
        .await;
    let app = spawn(backend, &fonnte, &[]).await;
    let public: Value = app.get("/api/whatsapp/status", None).await.json().await.unwrap();
    let connection = &public["whatsapp"]["connection"];
    assert_eq!(connection["provider"], "fonnte", "{public}");
    assert_eq!(connection["state"], "connected");
    assert!(connection.get("detail").is_none(), "quota and expiry are for the admin");
    let admin = app.admin_json("/api/whatsapp/status").await;
    let detail = &admin["whatsapp"]["connection"]["detail"];
    assert_eq!(detail["quota"], "78", "{admin}");
    assert_eq!(detail["expires"], "18 November 2029");
    assert!(!admin.to_string().contains(DEVICE), "the device number is masked");
    let asked = fonnte.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/device").count();
    assert_eq!(asked, 1, "status polls share one cached answer");
}

async fn a_photo_url_is_downloaded_and_reaches_the_model(backend: Backend) {
    let fonnte = MockServer::start().await;
    fonnte_accepts_sends(&fonnte).await;
    Mock::given(method("GET"))
        .and(path("/files/ktp-budi.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(64, 48), "image/png"))
        .mount(&fonnte)
        .await;
    let app = spawn(backend, &fonnte, &[]).await;
    llm_answers(&app.llm, "Fotonya sudah jelas kak.").await;
    let body = json!({ "device": DEVICE, "sender": PERSON, "message": "ini KTP saya", "name": "Budi",
        "timestamp": 1_733_000_200, "url": format!("{}/files/ktp-budi.png", fonnte.uri()),
        "filename": "ktp-budi.png", "extension": "png" });
    say(&app, &body.to_string()).await;
    assert_eq!(wait_for_sends(&fonnte, 1).await.len(), 1);
    let requests = app.llm_requests().await;
    assert_eq!(requests.len(), 1);
    let parts = requests[0]["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    let image = parts.as_array().unwrap().iter().find(|part| part["type"] == "image_url").expect("the photo");
    assert!(image["image_url"]["url"].as_str().unwrap().starts_with("data:image/jpeg;base64,"));
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE kind = 'image'").await, 1);
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let photo = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(photo).write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}
