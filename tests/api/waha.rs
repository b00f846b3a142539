//! WAHA as the WhatsApp provider: events in at `/webhook/waha` (HMAC-signed),
//! replies out to a fake WAHA (wiremock, checking `X-Api-Key` and the JSON
//! bodies), rows in the database; and the admin's session controls.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wa_ai_bridge::channels::waha::sign;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

on_both_backends!(
    a_burst_of_three_messages_is_answered_once_with_one_send_text,
    a_redelivered_message_and_its_message_any_twin_are_answered_once,
    send_errors_are_recorded_and_retried_until_sent,
    own_messages_never_trigger_the_bot_and_one_typed_on_the_phone_pauses_it,
    our_send_echoed_before_waha_answered_is_not_a_phone_reply,
    the_hmac_signature_is_required_when_a_key_is_set,
    group_messages_and_other_sessions_are_ignored,
    malformed_bodies_are_refused_and_nothing_is_stored,
    acks_update_the_delivery_status_of_our_reply,
    status_shows_the_session_state_cached_and_refreshed_by_events,
    the_qr_code_needs_the_admin_token_and_is_never_cached,
    session_start_stop_and_restart_reach_waha,
    a_document_is_fetched_from_waha_url_with_the_api_key,
);

const API_KEY: &str = "test-waha-api-key";
const HMAC_KEY: &str = "test-waha-hmac-key";
const CHAT: &str = "6281234567789@c.us";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n a fake QR code";

/// The server with WAHA as its WhatsApp provider, and the fake WAHA.
async fn spawn(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, MockServer) {
    let waha = MockServer::start().await;
    let uri = waha.uri();
    let mut env = vec![
        ("WAHA_URL", uri.as_str()),
        ("WAHA_API_KEY", API_KEY),
        ("WAHA_WEBHOOK_HMAC_KEY", HMAC_KEY),
        // WAHA replaces the Cloud API: none of its settings.
        ("META_ACCESS_TOKEN", ""),
        ("META_PHONE_NUMBER_ID", ""),
        ("META_APP_SECRET", ""),
        ("META_WEBHOOK_VERIFY_TOKEN", ""),
    ];
    env.extend_from_slice(extra);
    let app = TestApp::spawn_with(backend, &env).await;
    (app, waha)
}

/// WAHA accepts every send (answering as the WEBJS engine does, with a
/// fresh id), read receipt and typing request, and says the session works.
async fn waha_works(waha: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/api/sendText"))
        .and(header("x-api-key", API_KEY))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let chat = body["chatId"].as_str().unwrap_or_default();
            let short = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
            ResponseTemplate::new(201).set_body_json(json!({
                "id": { "fromMe": true, "remote": chat, "id": short, "_serialized": format!("true_{chat}_{short}") },
                "body": body["text"], "fromMe": true, "to": chat, "ack": 0,
            }))
        })
        .mount(waha)
        .await;
    for endpoint in ["/api/sendSeen", "/api/startTyping", "/api/stopTyping"] {
        Mock::given(method("POST"))
            .and(path(endpoint))
            .and(header("x-api-key", API_KEY))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
            .mount(waha)
            .await;
    }
    session_is(waha, "WORKING").await;
}

async fn session_is(waha: &MockServer, status: &str) {
    Mock::given(method("GET"))
        .and(path("/api/sessions/default"))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": "default", "status": status, "engine": { "engine": "WEBJS" },
            "me": if status == "WORKING" { json!({ "id": "6281100000001@c.us", "pushName": "Toko Maju" }) } else { Value::Null },
        })))
        .mount(waha)
        .await;
}

async fn sent_texts(waha: &MockServer) -> Vec<Value> {
    requests_to(waha, "/api/sendText").await
}

async fn wait_for_sends(waha: &MockServer, n: usize) -> Vec<Value> {
    wait_until(|| async { sent_texts(waha).await.len() >= n }).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sent_texts(waha).await
}

fn envelope(event: &str, payload: Value) -> String {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "timestamp": 1_733_360_000_000_i64,
        "event": event,
        "session": "default",
        "me": { "id": "6281100000001@c.us", "pushName": "Toko Maju" },
        "payload": payload,
        "engine": "WEBJS",
    })
    .to_string()
}

/// A customer's text message, as `message` or `message.any`.
fn customer_says(event: &str, id: &str, text: &str) -> String {
    envelope(
        event,
        json!({ "id": format!("false_{CHAT}_{id}"), "timestamp": 1_733_360_000, "from": CHAT, "fromMe": false,
                "to": "6281100000001@c.us", "body": text, "hasMedia": false, "_data": { "notifyName": "Budi" } }),
    )
}

/// A message the business's number sent to the customer (`message.any`).
fn business_says(id: &str, text: &str, source: Option<&str>) -> String {
    let mut payload = json!({ "id": id, "timestamp": 1_733_360_100, "from": "6281100000001@c.us", "fromMe": true,
                              "to": CHAT, "body": text, "hasMedia": false });
    if let Some(source) = source {
        payload["source"] = json!(source);
    }
    envelope("message.any", payload)
}

fn ack(id: &str, name: &str, number: i64) -> String {
    envelope(
        "message.ack",
        json!({ "id": id, "from": "6281100000001@c.us", "to": CHAT, "fromMe": true, "ack": number, "ackName": name }),
    )
}

async fn post_signed(app: &TestApp, body: &str, hmac: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/webhook/waha", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(hmac) = hmac {
        request = request.header("X-Webhook-Hmac", hmac).header("X-Webhook-Hmac-Algorithm", "sha512");
    }
    request.send().await.expect("request reaches the server")
}

async fn post(app: &TestApp, body: &str) -> u16 {
    post_signed(app, body, Some(&sign(HMAC_KEY.as_bytes(), body.as_bytes()))).await.status().as_u16()
}

async fn say(app: &TestApp, id: &str, text: &str) {
    assert_eq!(post(app, &customer_says("message", id, text)).await, 200, "{id} acknowledged");
}

async fn a_burst_of_three_messages_is_answered_once_with_one_send_text(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers_after(&app.llm, "Kami buka jam 8 pagi kak.", Duration::from_secs(1)).await;
    say(&app, "3EB0BURST1", "halo kak").await;
    say(&app, "3EB0BURST2", "mau tanya").await;
    say(&app, "3EB0BURST3", "jam buka kapan?").await;

    let sent = wait_for_sends(&waha, 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["session"], "default");
    assert_eq!(sent[0]["chatId"], CHAT);
    assert_eq!(sent[0]["text"], "Kami buka jam 8 pagi kak.");
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 1);
    assert_eq!(last_user_message(&llm[0]), "halo kak\nmau tanya\njam buka kapan?");

    let seen = requests_to(&waha, "/api/sendSeen").await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0],
        json!({ "session": "default", "chatId": CHAT, "messageIds": [format!("false_{CHAT}_3EB0BURST3")] })
    );
    assert_eq!(requests_to(&waha, "/api/startTyping").await, [json!({ "session": "default", "chatId": CHAT })]);
    wait_until(|| async { requests_to(&waha, "/api/stopTyping").await.len() == 1 }).await;

    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id LIKE 'false_6281234567789@c.us_%'").await,
        3
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE phone = '6281234567789' AND profile_name = 'Budi'").await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent' AND wa_message_id LIKE 'true_6281234567789@c.us_%'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
    assert!(app.graph.received_requests().await.unwrap_or_default().is_empty(), "nothing went to the Cloud API");
}

async fn a_redelivered_message_and_its_message_any_twin_are_answered_once(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let message = customer_says("message", "3EB0TWIN", "halo");
    let twin = customer_says("message.any", "3EB0TWIN", "halo");
    // WAHA posts both events at once, then retries one of them.
    let (a, b) = tokio::join!(post(&app, &message), post(&app, &twin));
    assert_eq!((a, b), (200, 200));
    assert_eq!(post(&app, &message).await, 200);
    let sent = wait_for_sends(&waha, 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(last_user_message(&app.llm_requests().await[0]), "halo");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 1);

    // A redelivery after the answer changes nothing.
    assert_eq!(post(&app, &twin).await, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sent_texts(&waha).await.len(), 1);
}

async fn send_errors_are_recorded_and_retried_until_sent(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let not_working = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/waha/error__session_not_working.json"
    ))
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/api/sendText"))
        .respond_with(ResponseTemplate::new(422).set_body_raw(not_working, "application/json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&waha)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/sendText"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&waha)
        .await;
    waha_works(&waha).await;
    say(&app, "3EB0RETRY", "halo").await;

    wait_until(|| async {
        app.count("SELECT COUNT(*) FROM outbound_messages WHERE error_title LIKE '%session not working%'").await == 1
    })
    .await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent'").await == 1 }).await;
    let sent = wait_for_sends(&waha, 3).await;
    assert_eq!(sent.len(), 3, "refused, failed, then accepted");
    assert!(sent.iter().all(|body| body["text"] == "Halo kak!" && body["chatId"] == CHAT));
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE attempts = 3").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

async fn own_messages_never_trigger_the_bot_and_one_typed_on_the_phone_pauses_it(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "Halo kak!").await;
    say(&app, "3EB0OWN1", "halo").await;
    wait_for_sends(&waha, 1).await;
    let ours: String =
        sqlx::query_scalar("SELECT wa_message_id FROM outbound_messages").fetch_one(&app.pool().await).await.unwrap();

    // Our own reply comes back in message.any: marked as sent through the
    // API, and (older WAHA) unmarked but with the id the outbox stored.
    assert_eq!(post(&app, &business_says(&ours, "Halo kak!", Some("api"))).await, 200);
    assert_eq!(post(&app, &business_says(&ours, "Halo kak!", None)).await, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events").await, 0, "the bot is not paused by itself");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);

    // Someone answers on the phone: stored as theirs, the bot pauses.
    let phone = format!("true_{CHAT}_3EB0PHONE0001");
    let typed = business_says(&phone, "Halo kak Budi, saya Sari dari toko.", Some("app"));
    assert_eq!(post(&app, &typed).await, 200);
    assert_eq!(post(&app, &typed).await, 200, "a redelivery changes nothing");
    let stored = "SELECT COUNT(*) FROM outbound_messages WHERE origin = 'echo' AND author = 'phone' AND state = 'sent'";
    assert_eq!(app.count(stored).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM handoff_events WHERE action = 'pause' AND reason = 'phone_reply'").await,
        1
    );
    say(&app, "3EB0OWN2", "oke kak makasih").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'held'").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sent_texts(&waha).await.len(), 1, "the bot stays silent");
    assert_eq!(app.llm_requests().await.len(), 1);
}

/// WAHA's `message.any` for our reply can arrive before WAHA answers the
/// `sendText` that sent it: the outbox then has no id for it yet.
async fn our_send_echoed_before_waha_answered_is_not_a_phone_reply(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    let id = format!("true_{CHAT}_3EB0SLOWSEND");
    Mock::given(method("POST"))
        .and(path("/api/sendText"))
        .and(header("x-api-key", API_KEY))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": id, "fromMe": true, "to": CHAT }))
                .set_delay(Duration::from_millis(1500)),
        )
        .with_priority(1)
        .mount(&waha)
        .await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "Halo kak!").await;
    say(&app, "3EB0SLOW", "halo").await;
    wait_until(|| async { !sent_texts(&waha).await.is_empty() }).await;
    // WAHA sent it and tells us, while our request still waits.
    assert_eq!(post(&app, &business_says(&id, "Halo kak!", None)).await, 200);
    wait_until(|| async {
        app.count(&format!("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent' AND wa_message_id = '{id}'"))
            .await
            == 1
    })
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);
    // ... and the bot still answers.
    say(&app, "3EB0SLOW2", "makasih").await;
    assert_eq!(wait_for_sends(&waha, 2).await.len(), 2);
}

async fn the_hmac_signature_is_required_when_a_key_is_set(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let body = customer_says("message", "3EB0HMAC", "halo");
    assert_eq!(post_signed(&app, &body, None).await.status(), 401, "missing");
    assert_eq!(post_signed(&app, &body, Some(&sign(b"wrong key", body.as_bytes()))).await.status(), 401, "wrong");
    let other_body = customer_says("message", "3EB0HMAC", "halo!");
    let signed_other = sign(HMAC_KEY.as_bytes(), other_body.as_bytes());
    assert_eq!(post_signed(&app, &body, Some(&signed_other)).await.status(), 401, "another body's");
    assert_eq!(post_signed(&app, &body, Some("not hex")).await.status(), 401, "malformed");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0, "nothing stored");
    assert_eq!(post(&app, &body).await, 200, "the right one");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 1);
    assert_eq!(wait_for_sends(&waha, 1).await.len(), 1);
}

async fn group_messages_and_other_sessions_are_ignored(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "should not be used").await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/waha");
    for name in ["message__group", "message__lid", "message__newsletter", "message__status_broadcast"] {
        let body = std::fs::read_to_string(format!("{fixtures}/{name}.json")).unwrap();
        assert_eq!(post(&app, &body).await, 200, "{name} acknowledged");
    }
    let other_session = customer_says("message", "3EB0OTHER", "halo").replace("\"default\"", "\"sales\"");
    assert_eq!(post(&app, &other_session).await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert!(sent_texts(&waha).await.is_empty());
    assert!(app.llm_requests().await.is_empty());
}

async fn malformed_bodies_are_refused_and_nothing_is_stored(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    for body in ["{\"event\": \"message\", \"payload\": ", "[]", "not json at all"] {
        assert_eq!(post(&app, body).await, 400, "{body}");
    }
    for table in ["inbound_messages", "users", "delivery_statuses", "outbound_messages"] {
        assert_eq!(app.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
    }
}

async fn acks_update_the_delivery_status_of_our_reply(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "Halo kak!").await;
    say(&app, "3EB0ACK", "halo").await;
    wait_for_sends(&waha, 1).await;
    let pool = app.pool().await;
    let ours: String =
        sqlx::query_scalar("SELECT wa_message_id FROM outbound_messages").fetch_one(&pool).await.unwrap();
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM outbound_messages")
            .fetch_one(&app.pool().await)
            .await
            .unwrap()
    };
    assert_eq!(post(&app, &ack(&ours, "DEVICE", 2)).await, 200);
    assert_eq!(status().await, "delivered");
    assert_eq!(post(&app, &ack(&ours, "READ", 3)).await, 200);
    assert_eq!(status().await, "read");
    // A late SERVER ack does not hide the READ.
    assert_eq!(post(&app, &ack(&ours, "SERVER", 1)).await, 200);
    assert_eq!(status().await, "read");
    assert_eq!(app.count("SELECT COUNT(*) FROM delivery_statuses").await, 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM delivery_statuses WHERE recipient = '6281234567789' AND status = 'read'").await,
        1
    );
}

async fn status_shows_the_session_state_cached_and_refreshed_by_events(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    let public: Value = app.get("/api/whatsapp/status", None).await.json().await.unwrap();
    let connection = &public["whatsapp"]["connection"];
    assert_eq!((connection["provider"].as_str(), connection["state"].as_str()), (Some("waha"), Some("connected")));
    assert!(connection.get("detail").is_none(), "details are for the admin: {public}");
    assert!(!public.to_string().contains("6281100000001"), "the business number is never shown in full");
    let admin = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(admin["whatsapp"]["connection"]["detail"]["me"], "6281******001");
    assert_eq!(admin["whatsapp"]["connection"]["detail"]["pushName"], "Toko Maju");
    for _ in 0..5 {
        app.get("/api/whatsapp/status", None).await;
    }
    assert_eq!(requests_to(&waha, "/api/sessions/default").await.len(), 1, "one look per 15 s, however many ask");
    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status(), 200, "no META_* needed with WAHA: {}", ready.text().await.unwrap());

    // WAHA says the number was logged out: status shows it at once.
    let logged_out = envelope("session.status", json!({ "name": "default", "status": "SCAN_QR_CODE" }));
    assert_eq!(post(&app, &logged_out).await, 200);
    let public: Value = app.get("/api/whatsapp/status", None).await.json().await.unwrap();
    assert_eq!(public["whatsapp"]["connection"]["state"], "scan_qr");
    assert_eq!(requests_to(&waha, "/api/sessions/default").await.len(), 1);
}

async fn the_qr_code_needs_the_admin_token_and_is_never_cached(backend: Backend) {
    let (app, waha) = spawn(backend, &[("ADMIN_AGENTS", "Sari:sari-token-0123456789")]).await;
    session_is(&waha, "SCAN_QR_CODE").await;
    Mock::given(method("GET"))
        .and(path("/api/default/auth/qr"))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG, "image/png"))
        .mount(&waha)
        .await;
    assert_eq!(app.get("/api/admin/whatsapp/qr", None).await.status(), 401);
    assert_eq!(app.get("/api/admin/whatsapp/qr", Some("wrong-token")).await.status(), 401);
    assert_eq!(app.get("/api/admin/whatsapp/qr", Some("sari-token-0123456789")).await.status(), 403, "agents cannot");
    assert!(requests_to(&waha, "/api/default/auth/qr").await.is_empty());
    let response = app.get("/api/admin/whatsapp/qr", Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(status["whatsapp"]["connection"]["state"], "scan_qr");
}

async fn session_start_stop_and_restart_reach_waha(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    session_is(&waha, "WORKING").await;
    for action in ["start", "stop", "restart"] {
        Mock::given(method("POST"))
            .and(path(format!("/api/sessions/default/{action}")))
            .and(header("x-api-key", API_KEY))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "name": "default", "status": "STARTING" })))
            .expect(1)
            .mount(&waha)
            .await;
    }
    let control = |action: &str, token: Option<&str>| {
        let mut request = app.client.post(format!("{}/api/admin/whatsapp/session/{action}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(control("stop", None).await.unwrap().status(), 401);
    assert_eq!(control("logout", Some(ADMIN_TOKEN)).await.unwrap().status(), 404);
    for action in ["start", "stop", "restart"] {
        let response = control(action, Some(ADMIN_TOKEN)).await.unwrap();
        assert_eq!(response.status(), 200, "{action}");
        let body: Value = response.json().await.unwrap();
        assert_eq!((body["action"].as_str(), body["state"].as_str()), (Some(action), Some("connected")));
    }
    waha.verify().await;
}

async fn a_document_is_fetched_from_waha_url_with_the_api_key(backend: Backend) {
    let (app, waha) = spawn(backend, &[]).await;
    waha_works(&waha).await;
    llm_answers(&app.llm, "Sudah kami terima kak.").await;
    let file = format!("/api/files/default/false_{CHAT}_3EB0DOC.txt");
    Mock::given(method("GET"))
        .and(path(file.as_str()))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw("Catatan: pesanan nomor 42", "text/plain"))
        .mount(&waha)
        .await;
    // WAHA in Docker believes it is localhost:3000; the file is fetched
    // from WAHA_URL all the same.
    let body = envelope(
        "message",
        json!({ "id": format!("false_{CHAT}_3EB0DOC"), "timestamp": 1_733_360_000, "from": CHAT, "fromMe": false,
                "body": "", "hasMedia": true, "_data": { "type": "document" },
                "media": { "url": format!("http://localhost:3000{file}"), "mimetype": "text/plain",
                           "filename": "catatan.txt", "error": null } }),
    );
    assert_eq!(post(&app, &body).await, 200);
    wait_for_sends(&waha, 1).await;
    let asked = last_user_message(&app.llm_requests().await[0]);
    assert!(asked.contains("catatan.txt") && asked.contains("Catatan: pesanan nomor 42"), "{asked}");
    assert_eq!(requests_to(&waha, &file).await.len(), 1);
}
