//! The agent inbox: who waits for a person, who is paused, everyone else;
//! unread counts and marking read; the live stream, also of what another
//! replica stored.

use crate::helpers::*;
use crate::on_both_backends;
use crate::webchat::Window;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wa_ai_bridge::domain::PhoneNumber;

on_both_backends!(
    waiting_come_first_then_paused_then_the_rest,
    unread_counts_until_an_agent_reads,
    the_stream_shows_what_this_and_another_replica_store,
    a_very_chatty_person_does_not_hide_everyone_else,
    inbox_streams_are_capped_and_end_on_shutdown,
);

const HOUR_MS: i64 = 60 * 60 * 1000;

fn masked(phone: &str) -> String {
    PhoneNumber::parse(phone).unwrap().masked()
}

async fn execute(app: &TestApp, sql: &str, binds: &[i64]) {
    let pool = app.pool().await;
    let query = binds.iter().fold(sqlx::query(sql), |query, value| query.bind(*value));
    query.execute(&pool).await.expect("arranging the database");
    pool.close().await;
}

async fn user_id(app: &TestApp, phone: &str) -> i64 {
    app.count(&format!("SELECT id FROM users WHERE phone = '{phone}'")).await
}

fn now_ms() -> i64 {
    wa_ai_bridge::domain::now_ms()
}

/// The person writes once and waits for the bot's answer (the `n`th text
/// the fake Graph got), so everyone's last activity has its own moment.
async fn writes_and_is_answered(app: &TestApp, phone: &str, id: &str, n: usize) {
    app.say(phone, id, "halo kak").await;
    wait_until(|| async { app.sent_texts().await.len() >= n }).await;
}

async fn inbox(app: &TestApp) -> Value {
    app.admin_json("/api/admin/inbox").await
}

fn row<'a>(inbox: &'a Value, phone: &str) -> &'a Value {
    inbox["conversations"].as_array().unwrap().iter().find(|c| c["person"] == masked(phone)).expect("listed")
}

async fn pause(app: &TestApp, id: i64, body: Value) -> reqwest::StatusCode {
    let url = format!("{}/api/admin/conversations/{id}/pause", app.address);
    app.client.post(url).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap().status()
}

async fn read(app: &TestApp, id: i64, body: Option<Value>, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(format!("{}/api/admin/conversations/{id}/read", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn waiting_come_first_then_paused_then_the_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let people = ["6281200000001", "6281200000002", "6281200000003", "6281200000004", "6281200000005"];
    let [expired, waiting, paused, waiting_longer, bot] = people;
    for (n, phone) in [expired, paused, bot].iter().enumerate() {
        writes_and_is_answered(&app, phone, &format!("wamid.order.{n}"), n + 1).await;
    }
    // Two ask for a person (answered with the handoff message), the longer waiting first.
    writes_and_is_answered(&app, waiting_longer, "wamid.order.ask.1", 4).await;
    app.say(waiting_longer, "wamid.order.ask.1b", "mau ngomong sama admin").await;
    wait_until(|| async { app.sent_texts().await.len() >= 5 }).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.say(waiting, "wamid.order.ask.2", "bisa sama CS aja?").await;
    wait_until(|| async { app.sent_texts().await.len() >= 6 }).await;
    assert_eq!(pause(&app, user_id(&app, paused).await, json!({ "hours": 1 })).await, 200);
    assert_eq!(pause(&app, user_id(&app, expired).await, json!({ "hours": 0.0001 })).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = now_ms();

    let listed = inbox(&app).await;
    let order: Vec<&str> =
        listed["conversations"].as_array().unwrap().iter().map(|c| c["person"].as_str().unwrap()).collect();
    let expected: Vec<String> = [waiting_longer, waiting, paused, bot, expired].iter().map(|p| masked(p)).collect();
    assert_eq!(order, expected, "waiting (longest first), paused, then the most recently active: {listed}");
    assert_eq!((listed["waiting"].as_i64(), listed["paused"].as_i64()), (Some(2), Some(3)), "{listed}");
    assert!(!listed.to_string().contains("62812000000"), "numbers are masked");

    let first = row(&listed, waiting_longer);
    assert_eq!((first["group"].as_str(), first["mode"].as_str()), (Some("waiting"), Some("human")));
    assert!(first["waitingSince"].as_i64().unwrap() < row(&listed, waiting)["waitingSince"].as_i64().unwrap());
    assert_eq!((first["pauseReason"].as_str(), first["pausedBy"].as_str()), (Some("customer_asked"), Some("customer")));
    assert_eq!(first["unread"], 2);
    assert_eq!(first["lastMessage"]["from"], "bot", "the handoff answer: {first}");
    let by_hand = row(&listed, paused);
    assert_eq!((by_hand["group"].as_str(), by_hand["pausedBy"].as_str()), (Some("paused"), Some("admin")));
    let until = by_hand["pausedUntil"].as_i64().unwrap();
    assert!((now..=now + HOUR_MS).contains(&until), "an hour from the pause: {by_hand}");
    assert!(by_hand["waitingSince"].is_null());
    let ran_out = row(&listed, expired);
    assert_eq!((ran_out["group"].as_str(), ran_out["mode"].as_str()), (Some("bot"), Some("bot")), "{ran_out}");
    assert!(ran_out["pausedBy"].is_null(), "a pause that ran out is no state any more");

    let answered = row(&listed, bot);
    assert_eq!(answered["channel"], "whatsapp");
    assert_eq!(answered["name"], "Budi");
    assert_eq!(answered["unread"], 1, "never opened by an agent");
    assert_eq!(
        answered["lastMessage"],
        json!({ "from": "bot", "text": "Halo kak!", "at": answered["lastActivity"],
        "status": "sent" })
    );
    let received =
        app.count(&format!("SELECT received_at FROM inbound_messages WHERE user_id = {}", answered["id"])).await;
    assert_eq!(answered["windowOpenUntil"], received + 24 * HOUR_MS);

    let limited = app.admin_json("/api/admin/inbox?limit=2").await;
    assert_eq!(limited["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(limited["waiting"], 2, "the counts are of everyone");

    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(status["inbox"], json!({ "waiting": 2, "paused": 3 }));
    let public: Value = app.get("/api/whatsapp/status", None).await.json().await.unwrap();
    assert!(public.get("inbox").is_none(), "only admins see the queue");
}

async fn unread_counts_until_an_agent_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let phone = "6281298765432";
    app.say(phone, "wamid.unread.1", "halo").await;
    app.say(phone, "wamid.unread.2", "mau tanya").await;
    app.wait_for_texts(1).await;
    let id = user_id(&app, phone).await;
    assert_eq!(row(&inbox(&app).await, phone)["unread"], 2);

    let response = read(&app, id, None, Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(row(&inbox(&app).await, phone)["unread"], 0);

    writes_and_is_answered(&app, phone, "wamid.unread.3", 2).await;
    assert_eq!(row(&inbox(&app).await, phone)["unread"], 1, "a message after the agent looked");
    let before_it = app.count("SELECT received_at FROM inbound_messages WHERE wa_message_id = 'wamid.unread.2'").await;
    assert_eq!(read(&app, id, Some(json!({ "upTo": before_it })), Some(ADMIN_TOKEN)).await.status(), 200);
    assert_eq!(row(&inbox(&app).await, phone)["unread"], 1, "seen up to an earlier message: the new one is unread");
    let newest = app.count("SELECT received_at FROM inbound_messages WHERE wa_message_id = 'wamid.unread.3'").await;
    assert_eq!(read(&app, id, Some(json!({ "upTo": newest })), Some(ADMIN_TOKEN)).await.status(), 200);
    assert_eq!(row(&inbox(&app).await, phone)["unread"], 0);

    assert_eq!(read(&app, 999_999, None, Some(ADMIN_TOKEN)).await.status(), 404);
    for token in [None, Some("wrong")] {
        assert_eq!(read(&app, id, None, token).await.status(), 401);
        assert_eq!(app.get("/api/admin/inbox", token).await.status(), 401);
        assert_eq!(app.get("/api/admin/inbox/events", token).await.status(), 401);
    }
    let seen = app.count(&format!("SELECT agent_seen_at FROM users WHERE id = {id}")).await;
    assert_eq!(seen, newest, "refused requests changed nothing");
}

/// Events of `inbox` until one lists `phone` with a row `accept`s.
async fn until_row(stream: &mut Window, phone: &str, accept: impl Fn(&Value) -> bool) -> Value {
    loop {
        let (name, data) = stream.next().await.expect("the stream stays open");
        assert_eq!(name, "inbox");
        let found = data["rows"].as_array().unwrap().iter().find(|r| r["person"] == masked(phone) && accept(r));
        if let Some(found) = found {
            assert!(data["order"].as_array().unwrap().contains(&found["id"]), "{data}");
            return found.clone();
        }
    }
}

async fn the_stream_shows_what_this_and_another_replica_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let replica = Server::start(app.settings()).await;
    let replica_address = format!("http://127.0.0.1:{}", replica.port);
    let mut stream = Window::from_response(app.get("/api/admin/inbox/events", Some(ADMIN_TOKEN)).await);
    let (name, first) = stream.next().await.unwrap();
    assert_eq!(name, "inbox");
    assert_eq!(first["order"], json!([]));
    assert_eq!((first["waiting"].as_i64(), first["paused"].as_i64()), (Some(0), Some(0)));

    let here = "6281211110001";
    app.say(here, "wamid.live.1", "halo, ada yang bisa bantu?").await;
    let shown = until_row(&mut stream, here, |r| r["lastMessage"]["from"] == "customer").await;
    assert_eq!(shown["lastMessage"]["text"], "halo, ada yang bisa bantu?");
    until_row(&mut stream, here, |r| r["lastMessage"]["from"] == "bot").await;

    // The inbox is read again without a reason only every 15 s: each of these
    // shows within 5 s because the database's marker moved.
    let there = "6281211110002";
    for n in 1..=3 {
        let written = Instant::now();
        app.say_at(&replica_address, there, &format!("wamid.live.replica.{n}"), &format!("pesan {n}")).await;
        let shown = until_row(&mut stream, there, |r| r["unread"] == n).await;
        assert!(written.elapsed() < Duration::from_secs(5), "shown after {:?}", written.elapsed());
        if shown["lastMessage"]["from"] == "customer" {
            assert_eq!(shown["lastMessage"]["text"], format!("pesan {n}"));
            until_row(&mut stream, there, |r| r["lastMessage"]["from"] == "bot").await;
        }
    }

    let id = user_id(&app, there).await;
    execute(&app, "UPDATE users SET mode = 'human', waiting_since = $1 WHERE id = $2", &[now_ms(), id]).await;
    // A pause stored by another process, and nothing else: the marker does not
    // move, the inbox still comes round to it.
    let paused = until_row(&mut stream, there, |r| r["group"] == "waiting").await;
    assert_eq!(paused["mode"], "human");
    assert_eq!(read(&app, id, None, Some(ADMIN_TOKEN)).await.status(), 200);
    until_row(&mut stream, there, |r| r["unread"] == 0).await;

    // An agent answers through the other replica: no longer waiting, paused.
    let written = Instant::now();
    let reply = app
        .client
        .post(format!("{replica_address}/api/admin/conversations/{id}/messages"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "text": "Halo kak, saya bantu ya", "idempotencyKey": "inbox-live-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let answered = until_row(&mut stream, there, |r| r["lastMessage"]["from"] == "agent").await;
    assert!(written.elapsed() < Duration::from_secs(5), "shown after {:?}", written.elapsed());
    assert_eq!((answered["group"].as_str(), answered["pauseReason"].as_str()), (Some("paused"), Some("agent_reply")));
    assert_eq!(answered["lastMessage"]["text"], "Halo kak, saya bantu ya");
    drop(replica);
}

async fn a_very_chatty_person_does_not_hide_everyone_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let quiet = ["6281233330001", "6281233330002"];
    for (n, phone) in quiet.iter().enumerate() {
        writes_and_is_answered(&app, phone, &format!("wamid.quiet.{n}"), n + 1).await;
    }
    let chatty = "6281233330003";
    writes_and_is_answered(&app, chatty, "wamid.chatty.0", 3).await;
    // More messages than the inbox looks at for recent activity, stored
    // directly: nothing waits for a reply.
    execute(
        &app,
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 10001) \
         INSERT INTO inbound_messages (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at) \
         SELECT 'wamid.flood.' || n, $1, 'text', 'spam', FALSE, 0, $2 + n FROM seq",
        &[user_id(&app, chatty).await, now_ms()],
    )
    .await;
    let listed = inbox(&app).await;
    let order: Vec<&str> =
        listed["conversations"].as_array().unwrap().iter().map(|c| c["person"].as_str().unwrap()).collect();
    assert_eq!(order, [masked(chatty), masked(quiet[1]), masked(quiet[0])], "{listed}");
    assert_eq!(row(&listed, chatty)["unread"], 10_002);
}

async fn inbox_streams_are_capped_and_end_on_shutdown(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let open = || app.get("/api/admin/inbox/events", Some(ADMIN_TOKEN));
    let mut streams = Vec::new();
    for _ in 0..wa_ai_bridge::api::MAX_INBOX_STREAMS {
        streams.push(Window::from_response(open().await));
    }
    let refused = open().await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "5");
    assert!(app.metric("wa_admin_inbox_streams").await >= wa_ai_bridge::api::MAX_INBOX_STREAMS as f64);
    streams.pop();
    let mut last = loop {
        let response = open().await;
        if response.status() == 200 {
            break Window::from_response(response);
        }
        assert_eq!(response.status(), 429, "a closed stream gives its place back soon");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last.next().await.unwrap().0, "inbox");
    drop(streams);
    tokio::time::timeout(Duration::from_secs(10), app.stop_gracefully()).await.expect("stopped within 10 s");
    assert!(last.next().await.is_none(), "the stream ended");
}
