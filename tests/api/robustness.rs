//! Hostile input and load on the ways in: what one backend would store and
//! the other refuse, and reads that must not hold up webhooks.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::json;
use std::time::{Duration, Instant};

on_both_backends!(
    nul_characters_are_stripped_and_the_whole_webhook_is_stored,
    nul_characters_are_stripped_from_web_chat_messages,
    webhooks_are_stored_promptly_while_status_is_flooded,
);

const PHONE: &str = "6281234567789";

async fn nul_characters_are_stripped_and_the_whole_webhook_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let messages = json!([
        { "from": PHONE, "id": "wamid.nul.1", "timestamp": "1700000000", "type": "text",
          "text": { "body": "halo\u{0} kak" } },
        { "from": PHONE, "id": "wamid.nul.2", "timestamp": "1700000001", "type": "image",
          "image": { "id": "1", "mime_type": "image/jpeg", "caption": "KTP\u{0}\u{7} saya" } },
    ]);
    let body = webhook_with(json!([{ "profile": { "name": "Bu\u{0}di" }, "wa_id": PHONE }]), messages);
    assert!(body.contains("\\u0000"), "the JSON carries NUL escapes");

    assert_eq!(app.post_webhook(&body).await.status(), 200);

    let pool = app.pool().await;
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM inbound_messages ORDER BY wa_message_id").fetch_all(&pool).await.unwrap();
    assert_eq!(bodies, ["halo kak", "KTP saya"]);
    let name: String = sqlx::query_scalar("SELECT profile_name FROM users").fetch_one(&pool).await.unwrap();
    assert_eq!(name, "Budi");
    pool.close().await;

    assert_eq!(app.wait_for_texts(1).await.len(), 1, "one reply for both messages");
    // The photo's file is not on the fake Graph API: the model is told so.
    assert_eq!(last_user_message(&app.llm_requests().await[0]), "halo kak\n[gambar tidak bisa diunduh]\nKTP saya");
}

async fn nul_characters_are_stripped_from_web_chat_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = crate::webchat::start_conversation(&app, Some(PHONE)).await;
    let send =
        |text: &'static str, client_id: &'static str| crate::webchat::post_message(&app, &secret, text, client_id);
    assert_eq!(send("\u{0}\u{0}", "only-nul").await.status(), 400, "nothing left to say");
    assert_eq!(send("halo\u{0} kak", "with-nul").await.status(), 202);
    let pool = app.pool().await;
    let body: String = sqlx::query_scalar("SELECT body FROM inbound_messages").fetch_one(&pool).await.unwrap();
    assert_eq!(body, "halo kak");
    pool.close().await;
}

/// What a webhook may take while the status endpoint is flooded; unloaded it
/// takes milliseconds.
const WEBHOOK_BOUND: Duration = Duration::from_secs(2);

async fn webhooks_are_stored_promptly_while_status_is_flooded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Thousands of people waiting make each status request count them.
    let pool = app.pool().await;
    for seed in [
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
         INSERT INTO users (channel, username, phone, created_at) SELECT 'whatsapp', 'seed' || i, '62811' || (1000000 + i), 0 FROM n",
        "INSERT INTO inbound_messages (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at) \
         SELECT 'wamid.seed.' || id, id, 'text', 'halo', TRUE, 0, 0 FROM users WHERE username LIKE 'seed%'",
    ] {
        sqlx::query(seed).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let until = Instant::now() + Duration::from_secs(2);
    let flood: Vec<_> = (0..32)
        .map(|_| {
            let (client, url) = (app.client.clone(), format!("{}/api/whatsapp/status", app.address));
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while Instant::now() < until {
                    statuses.push(client.get(&url).send().await.expect("status answers").status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut sent = 0;
    while Instant::now() < until {
        let started = Instant::now();
        app.say(PHONE, &format!("wamid.flood.{sent}"), "halo").await;
        assert!(started.elapsed() < WEBHOOK_BOUND, "webhook {sent} took {:?}", started.elapsed());
        sent += 1;
    }
    for client in flood {
        let statuses = client.await.unwrap();
        assert!(statuses.iter().all(|s| [200, 503].contains(s)), "only answers or refusals: {statuses:?}");
    }
    assert!(sent > 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id LIKE 'wamid.flood.%'").await, sent);
}

/// The server's one SQLite writer waits for a lock held elsewhere; the
/// status page, readiness and the admin views still answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_do_not_wait_for_the_writer() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.say(PHONE, "wamid.read.0", "halo").await;
    let pool = app.pool().await;
    let mut lock = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("UPDATE users SET profile_name = 'Sari'").execute(&mut *lock).await.unwrap();
    let waiting = {
        let body = text_webhook(PHONE, "wamid.read.1", "mau tanya");
        let (client, url) = (app.client.clone(), format!("{}/webhook/whatsapp", app.address));
        let signature = sign(APP_SECRET.as_bytes(), body.as_bytes());
        tokio::spawn(async move {
            let request = client.post(url).header("x-hub-signature-256", signature).body(body);
            request.send().await.unwrap().status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the webhook waits for the lock");
    for (path, token) in
        [("/api/whatsapp/status", None), ("/ready", None), ("/api/admin/conversations", Some(ADMIN_TOKEN))]
    {
        let read = tokio::time::timeout(Duration::from_secs(2), app.get(path, token)).await;
        assert_eq!(read.unwrap_or_else(|_| panic!("{path} waited for the writer")).status(), 200, "{path}");
    }
    lock.rollback().await.unwrap();
    assert_eq!(waiting.await.unwrap(), 200);
    pool.close().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 2);
}
