//! People of the business in the conversation, seen from outside: agents
//! write through the admin API (sent once per idempotency key, through the
//! outbox, pausing the bot), the WhatsApp Business app's echoes pause it
//! too, `#bot` gives it back, the team is notified when a customer asks for
//! a person, and the web chat takes part the same way.

use crate::helpers::*;
use crate::on_both_backends;
use crate::webchat::{post_message as visitor_says, start_conversation, Window};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both_backends!(
    an_agent_reply_is_sent_once_however_often_it_is_requested,
    a_refused_agent_reply_shows_its_error_in_the_transcript,
    outside_the_window_nothing_is_queued,
    bad_requests_store_and_send_nothing,
    an_agent_reply_pauses_the_bot_and_the_resume_command_gives_it_back,
    a_reply_from_the_phone_pauses_the_bot_and_its_resume_command_gives_it_back,
    the_team_is_notified_once_with_a_signature_when_a_customer_asks_for_a_person,
    a_failing_notification_receiver_is_tried_a_bounded_number_of_times,
    a_web_visitor_who_asks_for_a_person_gets_the_agents_reply_live,
);

const PHONE: &str = "6281234567789";
const SARI: &str = "sari-token-0123456789";
const AGENTS: (&str, &str) = ("ADMIN_AGENTS", "Sari:sari-token-0123456789, Budi:budi-token-0123456789");
const NOTIFY_SECRET: &str = "notify-secret-0123456789";

/// `POST /api/admin/conversations/{id}/messages` with `token`.
async fn agent_says(app: &TestApp, id: i64, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app.client.post(format!("{}/api/admin/conversations/{id}/messages", app.address)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Like [`agent_says`] as Sari, checking the status and returning the body.
async fn sari_says(app: &TestApp, id: i64, body: Value, status: u16) -> Value {
    let response = agent_says(app, id, Some(SARI), body.clone()).await;
    assert_eq!(response.status(), status, "{body}");
    response.json().await.unwrap()
}

async fn conversation_of(app: &TestApp, phone: &str) -> i64 {
    app.count(&format!("SELECT id FROM users WHERE phone = '{phone}'")).await
}

async fn transcript(app: &TestApp, id: i64) -> Value {
    app.admin_json(&format!("/api/admin/conversations/{id}")).await
}

/// The transcript's entries of `kind` (`message`, `draft`, `handoff`).
fn entries<'a>(transcript: &'a Value, kind: &str) -> Vec<&'a Value> {
    transcript["messages"].as_array().unwrap().iter().filter(|m| m["type"] == kind).collect()
}

/// The WhatsApp id of the outbound message `filter` selects.
async fn wamid_of(app: &TestApp, filter: &str) -> String {
    let pool = app.pool().await;
    let sql = format!("SELECT wa_message_id FROM outbound_messages WHERE {filter}");
    let wamid = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    wamid
}

/// The ids of the parts an agent request answered with.
fn ids(body: &Value) -> Vec<i64> {
    body["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

fn texts(sent: &[Value]) -> Vec<&str> {
    sent.iter().map(|s| s["text"]["body"].as_str().unwrap_or_default()).collect()
}

/// The customer writes and the bot answers; returns the conversation.
async fn customer_answered_once(app: &TestApp) -> i64 {
    app.say(PHONE, "wamid.agent.hello", "halo").await;
    app.wait_for_texts(1).await;
    conversation_of(app, PHONE).await
}

async fn an_agent_reply_is_sent_once_however_often_it_is_requested(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let id = customer_answered_once(&app).await;

    let request = json!({ "text": "Halo kak, saya **Sari**. Pesanan kakak sudah dikirim.", "idempotencyKey": "k-1" });
    let first = sari_says(&app, id, request.clone(), 201).await;
    let again = sari_says(&app, id, request.clone(), 200).await;
    assert_eq!(ids(&first), ids(&again), "the same message, nothing new");
    assert_eq!(first["messages"][0]["state"], "queued");
    // Two windows pressing Send at once.
    let twice = json!({ "text": "Ada lagi yang bisa dibantu?", "idempotencyKey": "k-2" });
    let (a, b, c) = tokio::join!(
        agent_says(&app, id, Some(SARI), twice.clone()),
        agent_says(&app, id, Some(SARI), twice.clone()),
        agent_says(&app, id, Some(SARI), twice.clone()),
    );
    let mut statuses = vec![a.status().as_u16(), b.status().as_u16(), c.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 201]);
    let bodies = [a.json::<Value>().await.unwrap(), b.json().await.unwrap(), c.json().await.unwrap()];
    assert!(bodies.iter().all(|body| ids(body) == ids(&bodies[0])), "{bodies:?}");

    let sent = app.wait_for_texts(3).await;
    assert_eq!(
        texts(&sent),
        ["Halo kak!", "Halo kak, saya *Sari*. Pesanan kakak sudah dikirim.", "Ada lagi yang bisa dibantu?"],
        "each once, WhatsApp formatting, in order"
    );
    let agents = "SELECT COUNT(*) FROM outbound_messages WHERE origin = 'agent' AND author = 'Sari' AND state = 'sent'";
    assert_eq!(app.count(agents).await, 2);

    let agent_wamid = wamid_of(&app, "origin = 'agent' ORDER BY id LIMIT 1").await;
    assert_eq!(app.post_webhook(&status_webhook(&agent_wamid, "delivered", None)).await.status(), 200);
    let view = transcript(&app, id).await;
    let messages = entries(&view, "message");
    let from: Vec<&str> = messages.iter().map(|m| m["from"].as_str().unwrap()).collect();
    assert_eq!(from, ["customer", "bot", "agent", "agent"]);
    let delivered = messages[2];
    assert_eq!((delivered["author"].clone(), delivered["status"].clone()), (json!("Sari"), json!("delivered")));
    assert_eq!((delivered["state"].clone(), delivered["whatsappStatus"].clone()), (json!("sent"), json!("delivered")));
    assert_eq!(delivered["id"], agent_wamid);
    assert_eq!(messages[1]["author"], Value::Null);
    assert_eq!((view["mode"].clone(), view["pauseReason"].clone()), (json!("human"), json!("agent_reply")));
    assert_eq!(view["pausedBy"], "Sari");
    assert_eq!(view["canReply"], true);
    let handoffs = entries(&view, "handoff");
    assert_eq!(handoffs.len(), 1, "paused once: {handoffs:?}");
    assert_eq!((handoffs[0]["action"].clone(), handoffs[0]["by"].clone()), (json!("pause"), json!("Sari")));
    assert!(app.metric("wa_agent_messages_total{outcome=\"repeated\"}").await >= 3.0);
}

async fn a_refused_agent_reply_shows_its_error_in_the_transcript(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let id = customer_answered_once(&app).await;
    // WhatsApp refuses the agent's first part: the window closed on its side.
    graph_refuses_texts(&app.graph, 400, 131047, Some(1)).await;
    let paragraphs: Vec<String> =
        (1..=30).map(|n| format!("Langkah {n}. {}", "Isi formulir dengan teliti. ".repeat(6))).collect();
    let long = paragraphs.join("\n\n");
    let body = sari_says(&app, id, json!({ "text": long }), 201).await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 2, "split like the bot's replies");
    let failed = "SELECT COUNT(*) FROM outbound_messages WHERE origin = 'agent' AND state = 'failed_permanent'";
    wait_until(|| async { app.count(failed).await == 2 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.sent_texts().await.len(), 2, "the bot's reply and the refused part; the rest held back");

    let view = transcript(&app, id).await;
    let messages = entries(&view, "message");
    let refused = messages[2];
    assert_eq!((refused["from"].clone(), refused["state"].clone()), (json!("agent"), json!("failed_permanent")));
    assert_eq!((refused["errorCode"].clone(), refused["error"].clone()), (json!(131047), json!("Graph error 131047")));
    assert!(messages[3]["error"].as_str().unwrap().starts_with("held back"), "{}", messages[3]);

    // Retry sends the whole message, in order.
    let retry = app.client.post(format!("{}/api/admin/outbox/{}/retry", app.address, body["messages"][0]["id"]));
    assert_eq!(retry.bearer_auth(SARI).send().await.unwrap().status(), 200);
    let sent = app.wait_for_texts(4).await;
    assert!(texts(&sent)[2].starts_with("Langkah 1.") && texts(&sent)[3].ends_with(paragraphs[29].trim()));

    // A failure WhatsApp reports later, in a status, shows the same way.
    let last = wamid_of(&app, "origin = 'agent' AND part_index = 1").await;
    assert_eq!(app.post_webhook(&status_webhook(&last, "failed", Some(131047))).await.status(), 200);
    let view = transcript(&app, id).await;
    let later = entries(&view, "message")[3].clone();
    assert_eq!((later["status"].clone(), later["errorCode"].clone()), (json!("failed"), json!(131047)));
}

async fn outside_the_window_nothing_is_queued(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let id = customer_answered_once(&app).await;
    let day_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        - 25 * 3600 * 1000;
    let pool = app.pool().await;
    sqlx::query("UPDATE inbound_messages SET received_at = $1").bind(day_ago).execute(&pool).await.unwrap();
    pool.close().await;

    let view = transcript(&app, id).await;
    assert_eq!(
        (view["canReply"].clone(), view["windowOpenUntil"].clone()),
        (json!(false), json!(day_ago + 24 * 3600 * 1000))
    );
    let refused = sari_says(&app, id, json!({ "text": "Halo kak, masih ada yang bisa dibantu?" }), 409).await;
    assert_eq!(refused["code"], "outside_window");
    assert_eq!(refused["windowOpenUntil"], day_ago + 24 * 3600 * 1000);
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("24-hour") && error.contains("131047") && error.contains("more than 24 hours ago"),
        "{error}"
    );

    // Someone the business wrote to from the phone, who never wrote to us.
    let stranger = fixture("smb_message_echoes__text.json").replace("6281234567789", "6285712345678");
    assert_eq!(app.post_webhook(&stranger).await.status(), 200);
    let stranger = conversation_of(&app, "6285712345678").await;
    let view = transcript(&app, stranger).await;
    assert_eq!((view["canReply"].clone(), view["windowOpenUntil"].clone()), (json!(false), Value::Null));
    let refused = sari_says(&app, stranger, json!({ "text": "Halo kak" }), 409).await;
    assert!(refused["error"].as_str().unwrap().contains("has not written yet"), "{refused}");

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'agent'").await, 0);
    assert_eq!(app.sent_texts().await.len(), 1, "only the bot's reply");
    assert_eq!(transcript(&app, id).await["mode"], "bot", "not paused either");
}

async fn bad_requests_store_and_send_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let id = customer_answered_once(&app).await;
    let ok = json!({ "text": "Halo kak" });
    assert_eq!(agent_says(&app, id, None, ok.clone()).await.status(), 401);
    assert_eq!(agent_says(&app, id, Some("sari-token-0123456780"), ok.clone()).await.status(), 401);
    assert_eq!(agent_says(&app, id, Some("Sari"), ok.clone()).await.status(), 401);
    assert_eq!(agent_says(&app, id + 1000, Some(SARI), ok.clone()).await.status(), 404);
    assert_eq!(agent_says(&app, id + 1000, Some(SARI), json!({ "text": "#bot" })).await.status(), 404);
    let too_long = "a".repeat(4 * 4096 + 1);
    for (body, expected) in [
        (json!({ "text": "" }), "invalid"),
        (json!({ "text": " \n\t " }), "invalid"),
        (json!({ "text": too_long }), "invalid"),
        (json!({ "text": "Halo", "idempotencyKey": "two words" }), "invalid"),
        (json!({ "text": "Halo", "idempotencyKey": "k".repeat(129) }), "invalid"),
        (json!({ "message": "Halo" }), "invalid"),
        (json!(["Halo"]), "invalid"),
    ] {
        let response = agent_says(&app, id, Some(SARI), body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], expected);
    }
    let not_json = app
        .client
        .post(format!("{}/api/admin/conversations/{id}/messages", app.address))
        .bearer_auth(SARI)
        .body("text=Halo")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    // A key used for another text is refused, not taken for a retry.
    sari_says(&app, id, json!({ "text": "Halo kak", "idempotencyKey": "k-1" }), 201).await;
    let reused = sari_says(&app, id, json!({ "text": "Selamat siang", "idempotencyKey": "k-1" }), 409).await;
    assert_eq!(reused["code"], "key_reused");

    let sent = app.wait_for_texts(2).await;
    assert_eq!(texts(&sent), ["Halo kak!", "Halo kak"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'agent'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events").await, 1, "only the good request paused");
}

async fn an_agent_reply_pauses_the_bot_and_the_resume_command_gives_it_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let id = customer_answered_once(&app).await;
    sari_says(&app, id, json!({ "text": "Saya bantu cek ya kak" }), 201).await;
    app.wait_for_texts(2).await;

    app.say(PHONE, "wamid.agent.2", "oke makasih kak").await;
    let held = "SELECT COUNT(*) FROM turns WHERE status = 'held'";
    wait_until(|| async { app.count(held).await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.sent_texts().await.len(), 2, "the bot stays silent while Sari has the conversation");
    assert_eq!(app.llm_requests().await.len(), 1);

    let resumed = sari_says(&app, id, json!({ "text": "#Bot" }), 200).await;
    assert_eq!((resumed["resumed"].clone(), resumed["messages"].clone()), (json!(true), json!([])));
    let view = transcript(&app, id).await;
    assert_eq!(view["mode"], "bot");
    let events: Vec<(&str, &str)> =
        entries(&view, "handoff").iter().map(|e| (e["action"].as_str().unwrap(), e["by"].as_str().unwrap())).collect();
    assert_eq!(events, [("pause", "Sari"), ("resume", "Sari")]);

    app.say(PHONE, "wamid.agent.3", "mau tanya lagi").await;
    let sent = app.wait_for_texts(3).await;
    assert_eq!(texts(&sent), ["Halo kak!", "Saya bantu cek ya kak", "Halo kak!"], "#bot itself never went out");

    // Words after the command go out, and the bot keeps the conversation.
    sari_says(&app, id, json!({ "text": "#bot Terima kasih sudah menunggu, kak" }), 201).await;
    let sent = app.wait_for_texts(4).await;
    assert_eq!(texts(&sent)[3], "Terima kasih sudah menunggu, kak");
    assert_eq!(transcript(&app, id).await["mode"], "bot");

    // Pressing Pause is recorded under the agent's name too.
    let pause = app.client.post(format!("{}/api/admin/conversations/{id}/pause", app.address));
    assert_eq!(pause.bearer_auth("budi-token-0123456789").send().await.unwrap().status(), 200);
    let view = transcript(&app, id).await;
    assert_eq!((view["pauseReason"].clone(), view["pausedBy"].clone()), (json!("admin"), json!("Budi")));
}

async fn a_reply_from_the_phone_pauses_the_bot_and_its_resume_command_gives_it_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    // The customer asks for a person and waits.
    app.say(PHONE, "wamid.phone.1", "mau ngomong sama admin dong").await;
    app.wait_for_texts(1).await;
    let id = conversation_of(&app, PHONE).await;
    assert!(transcript(&app, id).await["waitingSince"].is_i64());

    // Someone answers from the WhatsApp Business app; Meta delivers it twice.
    let echo = fixture("smb_message_echoes__text.json");
    assert_eq!(app.post_webhook(&echo).await.status(), 200);
    assert_eq!(app.post_webhook(&echo).await.status(), 200);
    let stored = "SELECT COUNT(*) FROM outbound_messages WHERE origin = 'echo' AND author = 'phone' AND state = 'sent'";
    assert_eq!(app.count(stored).await, 1, "stored once");
    let view = transcript(&app, id).await;
    assert_eq!((view["pauseReason"].clone(), view["pausedBy"].clone()), (json!("phone_reply"), json!("phone")));
    assert_eq!(view["waitingSince"], Value::Null, "someone answered");
    let messages = entries(&view, "message");
    let phone = messages.last().unwrap();
    assert_eq!(phone["from"], "phone");
    assert_eq!(phone["text"], "Halo kak Budi, saya Sari dari toko. Pesanannya sudah kami kirim ya.");
    assert_eq!(phone["id"], "wamid.HBgNNjI4MTIzNDU2Nzc4ORUCABEYEkVDSE9URVhUMDAwMDAwMDEA");

    app.say(PHONE, "wamid.phone.2", "siap kak makasih").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'held'").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "the bot stays silent");

    let resume = fixture("smb_message_echoes__resume_command.json");
    assert_eq!(app.post_webhook(&resume).await.status(), 200);
    assert_eq!(app.post_webhook(&resume).await.status(), 200);
    let view = transcript(&app, id).await;
    assert_eq!(view["mode"], "bot");
    assert!(
        entries(&view, "message").iter().all(|m| !m["text"].as_str().unwrap_or_default().contains("#bot")),
        "the command is not a message of the conversation"
    );
    let events: Vec<(&str, &str)> =
        entries(&view, "handoff").iter().map(|e| (e["action"].as_str().unwrap(), e["by"].as_str().unwrap())).collect();
    assert_eq!(events, [("pause", "customer"), ("resume", "phone")], "the redelivery changed nothing");

    app.say(PHONE, "wamid.phone.3", "mau tanya lagi").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(texts(&sent)[1], "Halo kak!", "the bot answers again");
    assert_eq!(sent.len(), 2, "the echoes were never sent by us");
    // A late redelivery of the first echo does not take the bot away again.
    assert_eq!(app.post_webhook(&echo).await.status(), 200);
    assert_eq!(transcript(&app, id).await["mode"], "bot");
}

/// A receiver of handoff notifications answering `status` to everything.
async fn notify_receiver(status: u16) -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(status)).mount(&receiver).await;
    receiver
}

async fn the_team_is_notified_once_with_a_signature_when_a_customer_asks_for_a_person(backend: Backend) {
    let receiver = notify_receiver(200).await;
    let url = format!("{}/hook", receiver.uri());
    let app =
        TestApp::spawn_with(backend, &[("HANDOFF_NOTIFY_URL", &url), ("HANDOFF_NOTIFY_SECRET", NOTIFY_SECRET)]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say(PHONE, "wamid.notify.1", "halo").await;
    app.wait_for_texts(1).await;
    assert!(receiver.received_requests().await.unwrap().is_empty(), "nobody asked for a person yet");

    app.say(PHONE, "wamid.notify.2", "bisa sama CS aja?").await;
    app.wait_for_texts(2).await;
    wait_until(|| async { !receiver.received_requests().await.unwrap().is_empty() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let signature = request.headers.get("x-signature-256").unwrap().to_str().unwrap();
    assert_eq!(signature, sign(NOTIFY_SECRET.as_bytes(), &request.body), "signed over the exact body");
    assert_ne!(signature, sign(b"another secret", &request.body));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let id = conversation_of(&app, PHONE).await;
    assert_eq!(body["event"], "handoff_requested");
    assert_eq!(body["conversationId"], id);
    assert_eq!((body["channel"].clone(), body["maskedPhone"].clone()), (json!("whatsapp"), json!("6281******789")));
    assert_eq!((body["name"].clone(), body["text"].clone()), (json!("Budi"), json!("bisa sama CS aja?")));
    assert!(body["at"].is_i64());
    assert!(!String::from_utf8_lossy(&request.body).contains(PHONE), "the full number never leaves");
    assert!(app.metric("wa_handoff_notify_total{outcome=\"sent\"}").await >= 1.0);
}

async fn a_failing_notification_receiver_is_tried_a_bounded_number_of_times(backend: Backend) {
    let receiver = notify_receiver(500).await;
    let url = format!("{}/hook", receiver.uri());
    let mut app =
        TestApp::spawn_with(backend, &[("HANDOFF_NOTIFY_URL", &url), ("HANDOFF_NOTIFY_SECRET", NOTIFY_SECRET)]).await;
    // The same server with waits of 100 ms, 200 ms, … instead of 8 s, 16 s, ….
    app.crash();
    let mut settings = app.settings();
    settings.notify.as_mut().unwrap().first_retry = Duration::from_millis(100);
    let server = Server::start(settings).await;
    app.address = format!("http://127.0.0.1:{}", server.port);
    app.server = Some(server);
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;

    app.say(PHONE, "wamid.notify.3", "mau bicara dengan manusia").await;
    app.wait_for_texts(1).await;
    wait_until(|| async { receiver.received_requests().await.unwrap().len() >= 5 }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received_requests().await.unwrap().len(), 5, "five attempts, then it gives up");
    assert!(app.metric("wa_handoff_notify_total{outcome=\"gave_up\"}").await >= 1.0);
    assert_eq!(app.sent_texts().await.len(), 1, "the customer was answered all the same");
}

async fn a_web_visitor_who_asks_for_a_person_gets_the_agents_reply_live(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[AGENTS]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let chat = start_conversation(&app, Some("6281234567890")).await;
    let mut window = Window::open(&app, &chat).await;
    assert_eq!(visitor_says(&app, &chat, "operator dong", "c-1").await.status(), 202);
    let handoff_reply = next_message(&mut window).await;
    assert!(handoff_reply["text"].as_str().unwrap().contains("Petugas kami"), "{handoff_reply}");
    let id = app.count("SELECT id FROM users WHERE channel = 'web'").await;
    let view = transcript(&app, id).await;
    assert_eq!((view["mode"].clone(), view["pauseReason"].clone()), (json!("human"), json!("customer_asked")));
    assert_eq!((view["canReply"].clone(), view["windowOpenUntil"].clone()), (json!(true), Value::Null), "no window");

    sari_says(&app, id, json!({ "text": "Halo kak, saya Sari. Ada yang bisa dibantu?", "idempotencyKey": "w-1" }), 201)
        .await;
    let reply = next_message(&mut window).await;
    assert_eq!(reply["text"], "Halo kak, saya Sari. Ada yang bisa dibantu?");
    let agent_sent = "SELECT COUNT(*) FROM outbound_messages WHERE origin = 'agent' AND state = 'sent'";
    wait_until(|| async { app.count(agent_sent).await == 1 }).await;
    let view = transcript(&app, id).await;
    let agent = entries(&view, "message").into_iter().find(|m| m["from"] == "agent").cloned().unwrap();
    assert_eq!((agent["author"].clone(), agent["status"].clone()), (json!("Sari"), json!("sent")));
    assert_eq!(view["waitingSince"], Value::Null);

    assert_eq!(visitor_says(&app, &chat, "oke kak", "c-2").await.status(), 202);
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'held'").await == 1 }).await;
    assert_eq!(app.llm_requests().await.len(), 0, "the bot stays out of it");
    assert!(app.sent_texts().await.is_empty(), "nothing went to WhatsApp");
}

/// The next `message` event of a chat window.
async fn next_message(window: &mut Window) -> Value {
    loop {
        let (name, data) = window.next().await.expect("the stream stays open");
        if name == "message" {
            return data;
        }
    }
}
