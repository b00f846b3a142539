//! Hostile input and load on the ways in: what one backend would store and
//! the other refuse, and reads that must not hold up webhooks.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    nul_characters_are_stripped_and_the_whole_webhook_is_stored,
    nul_characters_are_stripped_from_web_chat_messages,
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
    assert_eq!(last_user_message(&app.llm_requests().await[0]), "halo kak\nKTP saya");
}

async fn nul_characters_are_stripped_from_web_chat_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let send = |text: &'static str, client_id: &'static str| {
        app.client
            .post(format!("{}/api/chat/messages", app.address))
            .json(&json!({ "phone": PHONE, "text": text, "clientId": client_id }))
            .send()
    };
    assert_eq!(send("\u{0}\u{0}", "only-nul").await.unwrap().status(), 400, "nothing left to say");
    assert_eq!(send("halo\u{0} kak", "with-nul").await.unwrap().status(), 202);
    let pool = app.pool().await;
    let body: String = sqlx::query_scalar("SELECT body FROM inbound_messages").fetch_one(&pool).await.unwrap();
    assert_eq!(body, "halo kak");
    pool.close().await;
}
