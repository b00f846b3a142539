use crate::helpers::*;
use crate::on_both_backends;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(
    a_burst_of_three_messages_gets_one_combined_answer,
    two_people_interleaved_get_their_own_answers,
    history_of_earlier_turns_is_sent_to_the_llm,
    a_day_of_silence_starts_a_new_session,
    only_unreadable_messages_get_the_text_only_reply,
    reactions_never_trigger_a_reply,
    a_username_user_without_phone_number_is_answered_by_bsuid,
);

async fn a_burst_of_three_messages_gets_one_combined_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    // The model thinks for a second: long enough for "typing…" to show.
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("Syarat bikin KTP: fotokopi KK dan surat pengantar RT/RW."))
                .set_delay(std::time::Duration::from_secs(1)),
        )
        .mount(&app.llm)
        .await;
    app.say("6281234567789", "wamid.burst.1", "halo kak").await;
    app.say("6281234567789", "wamid.burst.2", "mau tanya").await;
    app.say("6281234567789", "wamid.burst.3", "syarat bikin KTP apa aja?").await;

    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "6281234567789");
    assert_eq!(sent[0]["text"]["body"], "Syarat bikin KTP: fotokopi KK dan surat pengantar RT/RW.");

    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 1);
    assert_eq!(last_user_message(&llm[0]), "halo kak\nmau tanya\nsyarat bikin KTP apa aja?");
    assert_eq!(llm[0]["model"], "google/gemini-2.0-flash-exp:free");
    assert_eq!(llm[0]["messages"][0]["role"], "system");

    let receipts: Vec<_> =
        requests_to(&app.graph, SEND_PATH).await.into_iter().filter(|b| b["status"] == "read").collect();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["message_id"], "wamid.burst.3");
    assert_eq!(receipts[0]["typing_indicator"]["type"], "text");

    let llm_headers = &app.llm.received_requests().await.unwrap()[0].headers;
    assert_eq!(llm_headers.get("authorization").unwrap(), &format!("Bearer {OPENROUTER_KEY}"));
    assert!(llm_headers.get("http-referer").is_some() && llm_headers.get("x-title").is_some());

    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM turns WHERE model = 'google/gemini-2.0-flash-exp:free' AND prompt_tokens = 120 AND completion_tokens = 30 AND llm_latency_ms >= 0").await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE username = 'whatsapp_6281234567789' AND profile_name = 'Budi'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE status = 'accepted'").await, 1);
    assert!(app.metric("wa_turns_total{outcome=\"answered\"}").await >= 1.0);
    assert!(app.metric("wa_llm_tokens_total{kind=\"prompt\"}").await >= 120.0);
}

async fn two_people_interleaved_get_their_own_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Baik kak.").await;
    app.say("6281111111111", "wamid.a.1", "saya Ani").await;
    app.say("6282222222222", "wamid.b.1", "saya Budi").await;
    app.say("6281111111111", "wamid.a.2", "mau daftar").await;
    app.say("6282222222222", "wamid.b.2", "mau bayar").await;

    let sent = app.wait_for_texts(2).await;
    let mut recipients: Vec<String> = sent.iter().map(|s| s["to"].as_str().unwrap().to_owned()).collect();
    recipients.sort();
    assert_eq!(recipients, ["6281111111111", "6282222222222"]);
    let mut turns: Vec<String> = app.llm_requests().await.iter().map(last_user_message).collect();
    turns.sort();
    assert_eq!(turns, ["saya Ani\nmau daftar", "saya Budi\nmau bayar"]);
    // Answered at once: read receipts, but no "typing…" after the answer.
    let receipts: Vec<_> =
        requests_to(&app.graph, SEND_PATH).await.into_iter().filter(|b| b["status"] == "read").collect();
    assert_eq!(receipts.len(), 2);
    assert!(receipts.iter().all(|r| r.get("typing_indicator").is_none()), "{receipts:?}");
}

async fn history_of_earlier_turns_is_sent_to_the_llm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Jawaban pertama.").await;
    app.say("6281234567789", "wamid.h.1", "pertanyaan pertama").await;
    app.wait_for_texts(1).await;
    app.say("6281234567789", "wamid.h.2", "pertanyaan kedua").await;
    app.wait_for_texts(2).await;
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 2);
    let roles: Vec<&str> = llm[1]["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(llm[1]["messages"][1]["content"], "pertanyaan pertama");
    assert_eq!(llm[1]["messages"][2]["content"], "Jawaban pertama.");
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
}

async fn a_day_of_silence_starts_a_new_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Siap kak.").await;
    app.say("6281234567789", "wamid.s.1", "halo").await;
    app.wait_for_texts(1).await;
    app.say("6281234567789", "wamid.s.2", "masih di sini").await;
    app.wait_for_texts(2).await;
    let day = 25 * 60 * 60 * 1000;
    sqlx::query("UPDATE sessions SET started_at = started_at - $1, last_activity_at = last_activity_at - $1")
        .bind(day)
        .execute(&app.pool().await)
        .await
        .unwrap();
    app.say("6281234567789", "wamid.s.3", "halo lagi").await;
    app.wait_for_texts(3).await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 3 }).await;
    let distinct = "SELECT COUNT(DISTINCT session_id) FROM turns";
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
    assert_eq!(app.count(distinct).await, 2);
    // The first two turns share the old session; the third has the new one.
    let latest = "SELECT COUNT(*) FROM turns t JOIN sessions s ON s.id = t.session_id \
                  WHERE s.id = (SELECT MAX(id) FROM sessions) AND t.user_text = 'halo lagi'";
    assert_eq!(app.count(latest).await, 1);
}

/// Without a transcription service, a voice note is as unreadable as it
/// was before transcription existed; a sticker never joins a turn.
async fn only_unreadable_messages_get_the_text_only_reply(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TRANSCRIBE_ENABLED", "false")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "should not be used").await;
    let voice = json!([{ "from": "6281234567789", "id": "wamid.voice.1", "timestamp": "1700000000", "type": "audio",
        "audio": { "id": "123", "mime_type": "audio/ogg; codecs=opus", "voice": true } }]);
    let sticker = json!([{ "from": "6281234567789", "id": "wamid.sticker.1", "timestamp": "1700000001", "type": "sticker",
        "sticker": { "id": "456", "mime_type": "image/webp", "animated": false } }]);
    assert_eq!(app.post_webhook(&messages_webhook(voice, "6281234567789")).await.status(), 200);
    assert_eq!(app.post_webhook(&messages_webhook(sticker, "6281234567789")).await.status(), 200);
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    let expected = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/unreadable.md")).unwrap();
    assert_eq!(sent[0]["text"]["body"], expected.trim());
    assert!(app.llm_requests().await.is_empty());
}

async fn reactions_never_trigger_a_reply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "should not be used").await;
    let response = app.post_webhook(&fixture("message__reaction.json")).await;
    assert_eq!(response.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(app.sent_texts().await.is_empty());
    assert!(app.llm_requests().await.is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE kind = 'reaction'").await, 1);
}

async fn a_username_user_without_phone_number_is_answered_by_bsuid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let body = webhook_with(
        json!([{ "profile": { "name": "Sari" }, "user_id": "ID.98765432109876543210", "username": "@sari" }]),
        json!([{ "from_user_id": "ID.98765432109876543210", "id": "wamid.bsuid.1", "timestamp": "1700000000",
            "type": "text", "text": { "body": "halo, jam buka?" } }]),
    );
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["recipient"], "ID.98765432109876543210");
    assert!(sent[0].get("to").is_none());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE bsuid = 'ID.98765432109876543210' AND phone IS NULL").await,
        1
    );

    // Later the same person arrives with phone and BSUID: one person, linked.
    let linked = webhook_with(
        json!([{ "profile": { "name": "Sari" }, "wa_id": "6285555555555", "user_id": "ID.98765432109876543210" }]),
        json!([{ "from": "6285555555555", "from_user_id": "ID.98765432109876543210", "id": "wamid.bsuid.2",
            "timestamp": "1700000100", "type": "text", "text": { "body": "makasih" } }]),
    );
    assert_eq!(app.post_webhook(&linked).await.status(), 200);
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent[1]["to"], "6285555555555");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}
