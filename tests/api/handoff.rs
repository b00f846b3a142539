//! Human handoff from outside: a pause (by an operator, or asked for by the
//! customer) holds over quiet windows, restarts and replicas, wins over a
//! reply being written, cancels what the bot had not sent yet, and ends on
//! resume or when it expires, with what the humans said in the bot's history.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wa_ai_bridge::handoff::{Mode, PauseReason};
use wa_ai_bridge::store::Store;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(
    a_pause_holds_over_quiet_windows_and_a_resume_answers_the_next_message_once,
    a_pause_during_the_quiet_window_wins,
    a_pause_while_the_llm_thinks_keeps_the_reply_as_a_draft,
    an_expired_pause_gives_the_bot_back_with_what_the_humans_said,
    asking_for_a_person_gets_one_handoff_reply_and_pauses,
    the_handoff_reply_says_when_the_team_is_back_when_closed,
    a_pause_cancels_bot_parts_not_yet_sent_and_holds_nothing_back,
    a_bot_part_being_sent_when_the_pause_commits_is_not_retried,
    a_pause_on_one_replica_holds_on_the_other,
    pause_and_resume_refuse_bad_requests_and_are_idempotent,
);

const PERSON: &str = "6281234567789";

async fn post(app: &TestApp, path: &str, body: Option<&str>, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    request.send().await.expect("request")
}

async fn pause(app: &TestApp, user_id: i64) -> Value {
    let response = post(app, &format!("/api/admin/conversations/{user_id}/pause"), None, Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn resume(app: &TestApp, user_id: i64) -> Value {
    let response = post(app, &format!("/api/admin/conversations/{user_id}/resume"), None, Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn user_id(app: &TestApp) -> i64 {
    app.count(&format!("SELECT id FROM users WHERE username = 'whatsapp_{PERSON}'")).await
}

async fn turns(app: &TestApp, status: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM turns WHERE status = '{status}'")).await
}

async fn read_receipts(app: &TestApp) -> usize {
    requests_to(&app.graph, SEND_PATH).await.iter().filter(|body| body["status"] == "read").count()
}

/// The roles and texts of an LLM request, system prompt left out.
fn conversation(request: &Value) -> Vec<(String, String)> {
    request["messages"].as_array().unwrap()[1..]
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect()
}

async fn answered_once(app: &TestApp, id: &str, text: &str) -> i64 {
    app.say(PERSON, id, text).await;
    app.wait_for_texts(1).await;
    user_id(app).await
}

async fn a_pause_holds_over_quiet_windows_and_a_resume_answers_the_next_message_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let user = answered_once(&app, "wamid.hold.1", "halo").await;

    let paused = pause(&app, user).await;
    assert_eq!((paused["mode"].as_str(), paused["changed"].as_bool()), (Some("human"), Some(true)), "{paused}");
    assert!(paused["until"].as_i64().is_some(), "HANDOFF_PAUSE_HOURS applies: {paused}");
    // Three messages, each in a quiet window of its own.
    for (id, text) in [("wamid.hold.2", "halo?"), ("wamid.hold.3", "kok diam"), ("wamid.hold.4", "jadi gimana")] {
        app.say(PERSON, id, text).await;
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    wait_until(|| async { turns(&app, "held").await == 3 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "nothing sent while paused");
    assert_eq!(app.llm_requests().await.len(), 1, "no LLM call while paused");
    assert_eq!(read_receipts(&app).await, 1, "no read receipt or typing while paused");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE turn_id IS NULL").await, 0, "consumed");

    let resumed = resume(&app, user).await;
    assert_eq!((resumed["mode"].as_str(), resumed["changed"].as_bool()), (Some("bot"), Some(true)));
    app.say(PERSON, "wamid.hold.5", "halo lagi").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2, "the next message is answered once");
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 2);
    let said: Vec<(String, String)> = conversation(&llm[1]);
    let expected =
        [("user", "halo"), ("assistant", "Halo kak!"), ("user", "halo?\nkok diam\njadi gimana"), ("user", "halo lagi")];
    assert_eq!(said, expected.map(|(role, text)| (role.to_owned(), text.to_owned())));
    let events = app.count("SELECT COUNT(*) FROM handoff_events WHERE actor = 'admin' AND reason IS NULL").await;
    assert_eq!(events, 1, "the resume");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events WHERE action = 'pause' AND reason = 'admin'").await, 1);
    assert!(app.metric("wa_handoffs_total{reason=\"admin\"}").await >= 1.0);
    assert!(app.metric("wa_turns_total{outcome=\"held\"}").await >= 3.0);
}

async fn a_pause_during_the_quiet_window_wins(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MESSAGE_BUFFER_SECONDS", "1")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say(PERSON, "wamid.window.1", "halo").await;
    // The person is stored with the message; their window is still open.
    pause(&app, user_id(&app).await).await;
    wait_until(|| async { turns(&app, "held").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(app.sent_texts().await.is_empty());
    assert!(app.llm_requests().await.is_empty());
    assert_eq!(read_receipts(&app).await, 0);
}

async fn a_pause_while_the_llm_thinks_keeps_the_reply_as_a_draft(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers_after(&app.llm, "Jawaban terlambat.", Duration::from_secs(2)).await;
    app.say(PERSON, "wamid.draft.1", "syarat daftar apa aja?").await;
    wait_until(|| async { !app.llm_requests().await.is_empty() }).await;
    pause(&app, user_id(&app).await).await;
    wait_until(|| async { turns(&app, "draft").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(app.sent_texts().await.is_empty(), "no bot message after the pause");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 0, "nothing queued");
    let kept = "SELECT COUNT(*) FROM turns WHERE status = 'draft' AND reply_text = 'Jawaban terlambat.' \
                AND user_text = 'syarat daftar apa aja?'";
    assert_eq!(app.count(kept).await, 1, "the reply is kept for the agents");
    assert!(app.metric("wa_turns_total{outcome=\"draft\"}").await >= 1.0);
}

async fn an_expired_pause_gives_the_bot_back_with_what_the_humans_said(backend: Backend) {
    // 0.001 hours: 3.6 s.
    let app = TestApp::spawn_with(backend, &[("HANDOFF_PAUSE_HOURS", "0.001")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let user = answered_once(&app, "wamid.exp.1", "halo").await;
    let paused = pause(&app, user).await;
    let until = paused["until"].as_i64().unwrap();
    app.say(PERSON, "wamid.exp.2", "kiriman saya belum sampai").await;
    wait_until(|| async { turns(&app, "held").await == 1 }).await;
    // An agent answered meanwhile (through the outbox, as the inbox does).
    let pool = app.pool().await;
    let now = wa_ai_bridge::domain::now_ms();
    sqlx::query(
        "INSERT INTO outbound_messages (user_id, channel, origin, part_index, final_part, body, state, attempts, \
           next_attempt_at, give_up_at, wa_message_id, status, status_rank, created_at, updated_at) \
         VALUES ($1, 'whatsapp', 'agent', 0, TRUE, 'Sudah kami cek, besok sampai ya kak.', 'sent', 1, $2, $2, \
           'wamid.agent.1', 'sent', 1, $2, $2)",
    )
    .bind(user)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let wait = until - wa_ai_bridge::domain::now_ms() + 200;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;

    app.say(PERSON, "wamid.exp.3", "oke makasih").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2, "the bot answers again once the pause is over");
    let llm = app.llm_requests().await;
    let expected = [
        ("user", "halo"),
        ("assistant", "Halo kak!"),
        ("user", "kiriman saya belum sampai"),
        ("assistant", "Sudah kami cek, besok sampai ya kak."),
        ("user", "oke makasih"),
    ];
    assert_eq!(conversation(&llm[1]), expected.map(|(role, text)| (role.to_owned(), text.to_owned())));
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE mode = 'bot' AND paused_until IS NULL").await, 1);
    let expiry =
        format!("SELECT COUNT(*) FROM handoff_events WHERE action = 'resume' AND actor = 'expiry' AND at = {until}");
    assert_eq!(app.count(&expiry).await, 1, "the resume is recorded when the pause ended");
}

async fn asking_for_a_person_gets_one_handoff_reply_and_pauses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Biaya admin Rp 5.000.").await;
    app.say(PERSON, "wamid.ask.1", "halo").await;
    app.say(PERSON, "wamid.ask.2", "mau ngomong sama admin").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    let reply = sent[0]["text"]["body"].as_str().unwrap();
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/handoff.md")).unwrap();
    let first_line = template.lines().next().unwrap();
    assert!(reply.starts_with(first_line), "{reply}");
    assert!(reply.contains("Mohon ditunggu") && !reply.contains("[buka]") && !reply.contains("jam layanan"), "{reply}");
    assert!(app.llm_requests().await.is_empty(), "answered without the LLM");
    let paused = "SELECT COUNT(*) FROM users WHERE mode = 'human' AND pause_reason = 'customer_asked' \
                  AND paused_by = 'customer' AND waiting_since IS NOT NULL AND paused_until IS NOT NULL";
    assert_eq!(app.count(paused).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE reply_kind = 'handoff' AND status = 'answered'").await, 1);
    assert!(app.metric("wa_handoffs_total{reason=\"customer_asked\"}").await >= 1.0);

    // Paused: the next message is held, and the reply went out only once.
    app.say(PERSON, "wamid.ask.3", "halo? admin fee-nya brp").await;
    wait_until(|| async { turns(&app, "held").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.sent_texts().await.len(), 1);

    // A near miss from someone else is the bot's to answer.
    app.say("6289876543210", "wamid.near.1", "biaya admin berapa").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent[1]["text"]["body"], "Biaya admin Rp 5.000.");
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE mode = 'human'").await, 1);
}

async fn the_handoff_reply_says_when_the_team_is_back_when_closed(backend: Backend) {
    // Open only the day after tomorrow (UTC): closed now, whatever the time.
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let today = (wa_ai_bridge::domain::now_ms().div_euclid(86_400_000) + 3).rem_euclid(7) as usize;
    let hours = format!("{} 09:00-17:00 UTC", days[(today + 2) % 7]);
    let app = TestApp::spawn_with(backend, &[("BUSINESS_HOURS", &hours)]).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PERSON, "wamid.closed.1", "bisa sama CS aja?").await;
    let sent = app.wait_for_texts(1).await;
    let reply = sent[0]["text"]["body"].as_str().unwrap();
    let names = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"];
    let day = names[(today + 2) % 7];
    assert!(reply.contains(&format!("di luar jam layanan kami ({day} 09.00–17.00 UTC)")), "{reply}");
    assert!(reply.contains(&format!("mulai {day} pukul 09.00 UTC")), "{reply}");
    assert!(!reply.contains("Mohon ditunggu sebentar"), "{reply}");
}

/// Graph refuses the first text send with "too many messages to this person"
/// after `delay`, asking to wait `retry_after` seconds; accepts the rest.
async fn graph_refuses_first_text(app: &TestApp, delay: Duration, retry_after: u64) {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_partial_json(json!({ "type": "text" })))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("retry-after", retry_after.to_string().as_str())
                .set_body_json(json!({ "error": { "code": 131056, "message": "pair rate limit" } }))
                .set_delay(delay),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    graph_accepts_sends(&app.graph).await;
}

fn bodies(sent: &[Value]) -> Vec<&str> {
    sent.iter().map(|text| text["text"]["body"].as_str().unwrap()).collect()
}

async fn a_pause_cancels_bot_parts_not_yet_sent_and_holds_nothing_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_refuses_first_text(&app, Duration::ZERO, 60).await;
    llm_answers(&app.llm, "Jawaban bot.").await;
    app.say(PERSON, "wamid.cancel.1", "halo").await;
    wait_until(|| async {
        app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'failed_retryable'").await == 1
    })
    .await;
    let user = user_id(&app).await;
    let paused = pause(&app, user).await;
    assert_eq!(paused["cancelled"], 1, "{paused}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'cancelled'").await, 1);
    // A message queued after it (an agent's) is not held back by it.
    let pool = app.pool().await;
    let now = wa_ai_bridge::domain::now_ms();
    sqlx::query(
        "INSERT INTO outbound_messages (user_id, channel, origin, part_index, final_part, body, state, attempts, \
           next_attempt_at, give_up_at, status, status_rank, created_at, updated_at) \
         VALUES ($1, 'whatsapp', 'agent', 0, TRUE, 'Dari petugas.', 'queued', 0, $2, $3, 'pending', 0, $2, $2)",
    )
    .bind(user)
    .bind(now)
    .bind(now + 3_600_000)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(bodies(&sent), ["Jawaban bot.", "Dari petugas."], "the bot's only try was the refused one");
    let outbox = app.admin_json("/api/admin/outbox").await;
    assert!(outbox["messages"].as_array().unwrap().iter().all(|m| m["state"] != "cancelled"), "{outbox}");
}

async fn a_bot_part_being_sent_when_the_pause_commits_is_not_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_refuses_first_text(&app, Duration::from_millis(1500), 1).await;
    llm_answers(&app.llm, "Jawaban bot.").await;
    app.say(PERSON, "wamid.inflight.1", "halo").await;
    wait_until(|| async { !app.sent_texts().await.is_empty() }).await;
    let paused = pause(&app, user_id(&app).await).await;
    assert_eq!(paused["cancelled"], 0, "being sent, not waiting: {paused}");
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'cancelled'").await == 1 })
        .await;
    // Without the pause it would go again a second later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.sent_texts().await.len(), 1);
}

async fn a_pause_on_one_replica_holds_on_the_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let replica = Server::start(app.settings()).await;
    let replica_address = format!("http://127.0.0.1:{}", replica.port);
    let user = answered_once(&app, "wamid.rep.1", "halo").await;
    pause(&app, user).await;
    app.say_at(&replica_address, PERSON, "wamid.rep.2", "halo? masih ada orang?").await;
    app.say(PERSON, "wamid.rep.3", "tolong dijawab").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM inbound_messages WHERE turn_id IS NULL").await == 0 }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "neither replica answers while paused");
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(resume(&app, user).await["changed"], true);
    app.say_at(&replica_address, PERSON, "wamid.rep.4", "halo lagi").await;
    assert_eq!(app.wait_for_texts(2).await.len(), 2);
}

async fn pause_and_resume_refuse_bad_requests_and_are_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let user = answered_once(&app, "wamid.bad.1", "halo").await;
    let pause_path = format!("/api/admin/conversations/{user}/pause");
    let resume_path = format!("/api/admin/conversations/{user}/resume");
    for (path, body, token, status) in [
        (pause_path.as_str(), None, None, 401),
        (&pause_path, None, Some("wrong-token"), 401),
        (&resume_path, None, Some("wrong-token"), 401),
        ("/api/admin/conversations/999999/pause", None, Some(ADMIN_TOKEN), 404),
        ("/api/admin/conversations/999999/resume", None, Some(ADMIN_TOKEN), 404),
        ("/api/admin/conversations/abc/pause", None, Some(ADMIN_TOKEN), 400),
        (&pause_path, Some(r#"{"hours": -1}"#), Some(ADMIN_TOKEN), 400),
        (&pause_path, Some(r#"{"hours": "two"}"#), Some(ADMIN_TOKEN), 400),
        (&pause_path, Some(r#"{"hours": 1e9}"#), Some(ADMIN_TOKEN), 400),
        (&pause_path, Some(r#"{"minutes": 5}"#), Some(ADMIN_TOKEN), 400),
        (&pause_path, Some("not json"), Some(ADMIN_TOKEN), 400),
    ] {
        let response = post(&app, path, body, token).await;
        assert_eq!(response.status(), status, "{path} {body:?} {token:?}");
        let error: Value = response.json().await.unwrap_or(json!({ "error": "not JSON" }));
        assert!(status == 400 || error["error"].is_string(), "{error}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE mode = 'bot'").await, 1, "nothing changed");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events").await, 0);

    let resumed = resume(&app, user).await;
    assert_eq!((resumed["mode"].as_str(), resumed["changed"].as_bool()), (Some("bot"), Some(false)));
    let response = post(&app, &pause_path, Some(r#"{"hours": 2}"#), Some(ADMIN_TOKEN)).await;
    let first: Value = response.json().await.unwrap();
    let until = first["until"].as_i64().unwrap();
    assert!((until - wa_ai_bridge::domain::now_ms() - 7_200_000).abs() < 60_000, "{first}");
    let response = post(&app, &pause_path, Some(r#"{"hours": 0}"#), Some(ADMIN_TOKEN)).await;
    let again: Value = response.json().await.unwrap();
    assert_eq!((again["changed"].as_bool(), again["until"].is_null()), (Some(false), true), "{again}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE mode = 'human' AND paused_until IS NULL").await, 1);
    let store = Store::connect(&app.database.url).await.unwrap();
    let mode = store.conversation_mode(user, wa_ai_bridge::domain::now_ms()).await.unwrap().unwrap();
    assert_eq!(mode.mode, Mode::Human);
    let pause = mode.pause.unwrap();
    assert_eq!((pause.reason, pause.by.as_deref(), pause.until), (Some(PauseReason::Admin), Some("admin"), None));
    assert!(store.conversation_mode(999_999, 0).await.unwrap().is_none());
    assert_eq!(resume(&app, user).await["changed"], true);
    assert_eq!(resume(&app, user).await["changed"], false);
    let mode = store.conversation_mode(user, wa_ai_bridge::domain::now_ms()).await.unwrap().unwrap();
    assert_eq!((mode.mode, mode.pause), (Mode::Bot, None));
    store.close().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events WHERE action = 'pause'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM handoff_events WHERE action = 'resume'").await, 1);
}
