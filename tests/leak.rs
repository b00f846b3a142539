//! A full conversation with debug logging captured: neither the person's
//! full number nor any configured secret may appear in the log.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::*;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_never_show_full_numbers_or_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    // The receiver's URL may carry its own secret; nothing listens on it, so
    // the failed attempt is logged.
    let notify_url = "http://127.0.0.1:9/T0123/hook-secret-path";
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("ADMIN_AGENTS", "Sari:sari-agent-token-0123456789"),
            ("HANDOFF_NOTIFY_URL", notify_url),
            ("HANDOFF_NOTIFY_SECRET", "notify-signing-secret-0123"),
            ("TRANSCRIBE_API_URL", "http://127.0.0.1:9/v1"),
            ("TRANSCRIBE_API_KEY", "transcribe-secret-key-0123"),
            // Nothing listens there either: the poller's failures are logged.
            ("WA_OUTBOX_DATABASE_URL", "mysql://gateway:wa-outbox-db-password@127.0.0.1:9/gateway"),
            ("WA_OUTBOX_POLL_SECONDS", "0.1"),
        ],
    )
    .await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak, syaratnya fotokopi KK.").await;
    app.say("6281234567789", "wamid.leak.1", "halo kak").await;
    app.say("6281234567789", "wamid.leak.2", "syarat bikin KTP apa aja?").await;
    app.wait_for_texts(1).await;
    send_media(&app).await;
    // Refused requests are logged too.
    app.post_raw(b"{}", Some("sha256=00")).await;
    // The web chat carries a number as a label and the conversation's secret in a header.
    let started: serde_json::Value = app
        .client
        .post(format!("{}/api/chat/conversations", app.address))
        .json(&serde_json::json!({ "phone": "6285700001111" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_secret = started["secret"].as_str().unwrap().to_owned();
    let events =
        app.client.get(format!("{}/api/chat/events", app.address)).bearer_auth(&chat_secret).send().await.unwrap();
    let posted = app
        .client
        .post(format!("{}/api/chat/messages", app.address))
        .bearer_auth(&chat_secret)
        .json(&serde_json::json!({ "text": "halo", "clientId": "leak-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 2 }).await;
    drop(events);
    let admin = app.client.get(format!("{}/api/admin/conversations", app.address)).bearer_auth(ADMIN_TOKEN);
    assert_eq!(admin.send().await.unwrap().status(), 200);
    // An agent answers, a wrong agent token is refused, the phone answers,
    // and a customer asks for a person (the notification fails).
    let agent_reply = |token: &'static str| {
        let url = format!("{}/api/admin/conversations/1/messages", app.address);
        app.client.post(url).bearer_auth(token).json(&serde_json::json!({ "text": "Halo kak, saya Sari" })).send()
    };
    assert_eq!(agent_reply("sari-agent-token-0123456789").await.unwrap().status(), 201);
    assert_eq!(agent_reply("sari-agent-token-0123456780").await.unwrap().status(), 401);
    assert_eq!(app.post_webhook(&fixture("smb_message_echoes__text.json")).await.status(), 200);
    app.say("6289912345678", "wamid.leak.3", "mau ngomong sama admin").await;
    wait_until(|| async { app.metric("wa_handoff_notify_total{outcome=\"retry\"}").await >= 1.0 }).await;
    wait_until(|| async { app.metric("wa_outbox_errors_total").await >= 1.0 }).await;

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("turn"), "the conversation was logged at all:\n{log}");
    assert!(log.contains("6281******789"), "the masked number is what the log shows");
    for failure in ["media download failed", "transcription failed", "wa_outbox: a poll failed"] {
        assert!(log.contains(failure), "the media failures were logged at all ({failure})");
    }
    for secret in [
        "6281234567789",
        "6285700001111",
        APP_SECRET,
        ACCESS_TOKEN,
        OPENROUTER_KEY,
        VERIFY_TOKEN,
        ADMIN_TOKEN,
        "sari-agent-token",
        "6289912345678",
        "hook-secret-path",
        // Media URLs are signed; the transcription service has a key of its own.
        "media-url-signature",
        "transcribe-secret-key",
        // A shared contact card's number.
        "812-9999-0000",
        "notify-signing-secret",
        "wa-outbox-db-password",
        &chat_secret,
        // The conversation's key is shown masked, like a number.
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(chat_secret.as_bytes())),
    ] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
}

/// A voice note (downloaded from a signed URL; its transcription fails, as
/// the transcription service is down), a photo whose download fails, and a
/// shared contact card: what is logged about them must name neither the URLs
/// nor the key nor the card's number.
async fn send_media(app: &TestApp) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    for (id, status) in [("voice-leak", 200), ("photo-leak", 500)] {
        Mock::given(method("GET"))
            .and(path(format!("/v23.0/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "url": format!("{}/cdn/{id}?sig=media-url-signature-{id}", app.graph.uri()),
                "mime_type": if id == "voice-leak" { "audio/ogg" } else { "image/jpeg" },
            })))
            .mount(&app.graph)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/cdn/{id}")))
            .respond_with(ResponseTemplate::new(status).set_body_bytes(b"OggS voice".to_vec()))
            .mount(&app.graph)
            .await;
    }
    let messages = serde_json::json!([
        { "from": "6281234567789", "id": "wamid.leak.voice", "timestamp": "1700000100", "type": "audio",
          "audio": { "id": "voice-leak", "mime_type": "audio/ogg" } },
        { "from": "6281234567789", "id": "wamid.leak.photo", "timestamp": "1700000101", "type": "image",
          "image": { "id": "photo-leak", "mime_type": "image/jpeg" } },
        { "from": "6281234567789", "id": "wamid.leak.card", "timestamp": "1700000102", "type": "contacts",
          "contacts": [{ "name": { "formatted_name": "Sari" }, "phones": [{ "phone": "+62 812-9999-0000" }] }] },
    ]);
    assert_eq!(app.post_webhook(&messages_webhook(messages, "6281234567789")).await.status(), 200);
    app.wait_for_texts(2).await;
}
