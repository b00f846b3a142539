//! The send API seen from an application: scoped tokens, numbers as
//! Indonesian systems write them, one message per idempotency key, the
//! 24-hour window checked before anything is queued, and the message's
//! fate (provider id, statuses, retry) read back.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

on_both_backends!(
    an_application_sends_once_per_key_and_follows_its_message,
    free_form_text_outside_the_window_is_refused_before_anything_is_queued,
    tokens_see_only_their_own_messages_and_a_failed_one_is_retried,
    files_go_by_address_through_each_provider,
);

const SIMRS: &str = "simrs-token-0123456789abcdef";
const BILLING: &str = "billing-token-0123456789abcdef";
const PERSON: &str = "6281234567789";

struct Gateway {
    app: TestApp,
    _tokens: tempfile::NamedTempFile,
}

/// A server with two applications' tokens (both `send`) besides the admin
/// token; Graph accepts sends and the person has written, so the window
/// is open.
async fn gateway(backend: Backend) -> Gateway {
    let file = tokens_file(&[("simrs", SIMRS), ("billing", BILLING)]);
    let path = file.path().display().to_string();
    let app = TestApp::spawn_with(backend, &[("API_TOKENS_FILE", path.as_str())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    Gateway { app, _tokens: file }
}

async fn an_application_sends_once_per_key_and_follows_its_message(backend: Backend) {
    let Gateway { app, _tokens } = gateway(backend).await;
    customer_wrote(&app, PERSON).await;
    let text = "Hasil lab Anda sudah bisa diambil.";
    let body = json!({ "to": "0812-3456-7789", "text": text, "idempotency_key": "lab-1" });

    assert_eq!(post(&app, "/api/messages", None, body.clone()).await.0, 401);
    let (status, first) = post(&app, "/api/messages", Some(SIMRS), body.clone()).await;
    assert_eq!(status, 202, "{first}");
    let id = first["message"]["id"].as_i64().unwrap();
    assert_eq!((first["duplicate"].clone(), first["message"]["to"].clone()), (json!(false), json!("6281******789")));
    let (status, again) = post(&app, "/api/messages", Some(SIMRS), body.clone()).await;
    assert_eq!((status, again["message"]["id"].as_i64(), again["duplicate"].clone()), (200, Some(id), json!(true)));
    let other_text = json!({ "to": PERSON, "text": "Lain", "idempotency_key": "lab-1" });
    let (status, refused) = post(&app, "/api/messages", Some(SIMRS), other_text).await;
    assert_eq!((status, refused["code"].clone()), (409, json!("key_reused")));
    // The key is the application's own: another token's "lab-1" is another message.
    let (status, billing) = post(
        &app,
        "/api/messages",
        Some(BILLING),
        json!({ "to": PERSON, "text": "Tagihan", "idempotency_key": "lab-1" }),
    )
    .await;
    assert_eq!(status, 202, "{billing}");

    wait_until(|| async { texts_with(&app, text).await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(texts_with(&app, text).await, 1, "one key, one message");
    wait_until(|| async { get(&app, &format!("/api/messages/{id}"), SIMRS).await.1["state"] == "sent" }).await;
    let (_, sent) = get(&app, &format!("/api/messages/{id}"), SIMRS).await;
    let wamid = sent["parts"][0]["providerMessageId"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid.out."), "{sent}");
    assert_eq!(sent["token"], "simrs");
    assert_eq!(app.post_webhook(&status_webhook(&wamid, "delivered", None)).await.status(), 200);
    let (_, delivered) = get(&app, &format!("/api/messages/{id}"), SIMRS).await;
    assert_eq!(delivered["parts"][0]["statuses"][0]["status"], "delivered", "{delivered}");
    assert!(delivered["parts"][0]["statuses"][0]["at"].as_i64().unwrap() > 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api' AND author = 'simrs'").await, 1);

    // The staff see who sent it, and when the customer answers, the bot knows what they are answering.
    let conversation = app.count("SELECT id FROM users WHERE phone = '6281234567789'").await;
    let transcript = app.admin_json(&format!("/api/admin/conversations/{conversation}")).await;
    let from_app: Vec<&Value> =
        transcript["messages"].as_array().unwrap().iter().filter(|m| m["from"] == "app").collect();
    assert_eq!((from_app[0]["author"].clone(), from_app[0]["text"].clone()), (json!("simrs"), json!(text)));
    app.say(PERSON, "wamid.customer.2", "jam berapa bisa diambil?").await;
    wait_until(|| async { app.llm_requests().await.len() == 2 }).await;
    let asked = app.llm_requests().await[1].to_string();
    assert!(asked.contains(text), "the application's message is in the history: {asked}");

    // Numbers in any other shape are refused with the reason, and nothing is stored.
    for (to, reason) in
        [("0212345678", "starts with 08"), ("0812abc", "may only hold digits"), ("0812", "has 5 digits")]
    {
        let (status, refused) = post(&app, "/api/messages", Some(SIMRS), json!({ "to": to, "text": "x" })).await;
        assert_eq!((status, refused["code"].clone()), (400, json!("invalid_number")), "{to}");
        assert!(refused["error"].as_str().unwrap().contains(reason), "{to}: {refused}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api'").await, 2);

    // The shape existing gateway clients read.
    let (status, compatible) = post(
        &app,
        "/api/whatsapp/send",
        Some(SIMRS),
        json!({ "to": "6281234567789@c.us", "text": "Antrean Anda: A-12" }),
    )
    .await;
    assert_eq!((status, compatible["ok"].clone(), compatible["status"].clone()), (202, json!(true), json!(202)));
    assert!(compatible["json"]["id"].as_i64().is_some(), "{compatible}");
    let (status, refused) = post(&app, "/api/whatsapp/send", Some(SIMRS), json!({ "to": "12", "text": "x" })).await;
    assert_eq!((status, refused["ok"].clone(), refused["status"].clone()), (400, json!(false), json!(400)));
    assert!(refused["json"]["error"].as_str().unwrap().starts_with("to: "), "{refused}");

    // A token of the send scope is not an admin.
    let (status, _) = get(&app, "/api/admin/conversations", SIMRS).await;
    assert_eq!(status, 403);
    assert!(app.metric("wa_api_messages_total{outcome=\"queued\"}").await >= 3.0);
}

async fn free_form_text_outside_the_window_is_refused_before_anything_is_queued(backend: Backend) {
    let Gateway { app, _tokens } = gateway(backend).await;
    let (status, refused) =
        post(&app, "/api/messages", Some(SIMRS), json!({ "to": "085712345678", "text": "Pengingat kontrol besok" }))
            .await;
    assert_eq!((status, refused["code"].clone()), (422, json!("outside_window")), "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("131047") && error.contains("template"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.sent_texts().await.is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 0);
}

async fn tokens_see_only_their_own_messages_and_a_failed_one_is_retried(backend: Backend) {
    let Gateway { app, _tokens } = gateway(backend).await;
    customer_wrote(&app, PERSON).await;
    graph_refuses_texts(&app.graph, 400, 131026, Some(1)).await;
    let (status, queued) =
        post(&app, "/api/messages", Some(SIMRS), json!({ "to": PERSON, "text": "Jadwal dokter berubah" })).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["message"]["id"].as_i64().unwrap();
    let path = format!("/api/messages/{id}");
    wait_until(|| async { get(&app, &path, SIMRS).await.1["state"] == "failed_permanent" }).await;
    let (_, failed) = get(&app, &path, SIMRS).await;
    assert_eq!(failed["parts"][0]["errorCode"], 131026, "{failed}");

    assert_eq!(get(&app, &path, BILLING).await.0, 404, "another application's message");
    assert_eq!(post(&app, &format!("{path}/retry"), Some(BILLING), json!({})).await.0, 404);
    assert_eq!(get(&app, &path, ADMIN_TOKEN).await.0, 200, "the admin token sees every message");
    assert_eq!(get(&app, "/api/messages/999999", SIMRS).await.0, 404);

    let (status, retried) = post(&app, &format!("{path}/retry"), Some(SIMRS), json!({})).await;
    assert_eq!((status, retried["retried"].clone()), (200, json!(true)), "{retried}");
    wait_until(|| async { get(&app, &path, SIMRS).await.1["state"] == "sent" }).await;
    let (_, again) = post(&app, &format!("{path}/retry"), Some(SIMRS), json!({})).await;
    assert_eq!(again["retried"], false, "a sent message is not sent again");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts_with(&app, "Jadwal dokter berubah").await, 2, "the refused attempt and the retry");
}

/// One server with three numbers: the Cloud API (default), a Fonnte device
/// and a WAHA session, each sent a document by address.
async fn files_go_by_address_through_each_provider(backend: Backend) {
    let (fonnte, waha, files) = (MockServer::start().await, MockServer::start().await, tempfile::tempdir().unwrap());
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(header("authorization", "fonnte-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": true, "id": ["777"] })))
        .mount(&fonnte)
        .await;
    let accepted =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/waha/send_text__webjs.json"));
    Mock::given(method("POST"))
        .and(path("/api/sendFile"))
        .and(header("x-api-key", "waha-key"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(accepted.unwrap(), "application/json"))
        .mount(&waha)
        .await;
    let channels = files.path().join("channels.toml");
    std::fs::write(
        &channels,
        format!(
            "[[account]]\nname = \"billing\"\nkind = \"fonnte\"\nsettings = {{ FONNTE_API_URL = \"{}\" }}\n\
             secrets = {{ FONNTE_TOKEN = \"T_FONNTE\", FONNTE_WEBHOOK_SECRET = \"T_HOOK\" }}\n\n\
             [[account]]\nname = \"desk\"\nkind = \"waha\"\nsettings = {{ WAHA_URL = \"{}\", WAHA_SESSION = \"desk\" }}\n\
             secrets = {{ WAHA_API_KEY = \"T_WAHA\" }}\n",
            fonnte.uri(),
            waha.uri()
        ),
    )
    .unwrap();
    let channels = channels.display().to_string();
    let overrides = [
        ("CHANNELS_FILE", channels.as_str()),
        ("T_FONNTE", "fonnte-token"),
        ("T_HOOK", "fonnte-hook"),
        ("T_WAHA", "waha-key"),
    ];
    let app = TestApp::spawn_with(backend, &overrides).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    customer_wrote(&app, PERSON).await;
    let bill = |account: &str| {
        json!({ "to": "081234567789", "type": "document", "url": "https://isp.example/tagihan/0042.pdf",
                "caption": "Tagihan November", "filename": "Tagihan-0042.pdf", "account": account })
    };

    let mut ids = Vec::new();
    for account in ["default", "billing", "desk"] {
        let (status, queued) = post(&app, "/api/messages", Some(ADMIN_TOKEN), bill(account)).await;
        assert_eq!(status, 202, "{account}: {queued}");
        assert_eq!(queued["message"]["media"]["filename"], "Tagihan-0042.pdf");
        ids.push(queued["message"]["id"].as_i64().unwrap());
    }
    for id in &ids {
        let path = format!("/api/messages/{id}");
        wait_until(|| async { get(&app, &path, ADMIN_TOKEN).await.1["state"] == "sent" }).await;
    }

    let to_graph = requests_to(&app.graph, SEND_PATH).await;
    let document: Vec<&Value> = to_graph.iter().filter(|body| body["type"] == "document").collect();
    assert_eq!(document.len(), 1, "{to_graph:?}");
    assert_eq!(
        document[0]["document"],
        json!({ "link": "https://isp.example/tagihan/0042.pdf", "caption": "Tagihan November", "filename": "Tagihan-0042.pdf" })
    );
    let to_fonnte = fonnte.received_requests().await.unwrap();
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_bytes(&to_fonnte[0].body).unwrap();
    assert_eq!(
        (form["target"].as_str(), form["url"].as_str(), form["filename"].as_str(), form["message"].as_str()),
        (PERSON, "https://isp.example/tagihan/0042.pdf", "Tagihan-0042.pdf", "Tagihan November")
    );
    let to_waha: Vec<Value> = waha
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r: &&Request| r.url.path() == "/api/sendFile")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        to_waha,
        [json!({ "session": "desk", "chatId": "6281234567789@c.us", "caption": "Tagihan November",
                 "file": { "url": "https://isp.example/tagihan/0042.pdf", "filename": "Tagihan-0042.pdf" } })]
    );

    // A file's fields are checked before anything is stored.
    for (body, reason) in [
        (json!({ "to": PERSON, "text": "x", "url": "https://a.example/b.jpg" }), "belong to a file"),
        (
            json!({ "to": PERSON, "type": "image", "url": "https://a.example/b.jpg", "filename": "b.jpg" }),
            "only a document",
        ),
        (json!({ "to": PERSON, "type": "image", "url": "file:///etc/passwd" }), "url must be"),
        (json!({ "to": PERSON, "type": "image" }), "needs its url"),
        (json!({ "to": PERSON, "type": "sticker", "url": "https://a.example/b.webp" }), "type must be"),
        (
            json!({ "to": PERSON, "type": "image", "url": "https://a.example/b.jpg", "caption": "x".repeat(1025) }),
            "caption",
        ),
    ] {
        let (status, refused) = post(&app, "/api/messages", Some(ADMIN_TOKEN), body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(refused["error"].as_str().unwrap().contains(reason), "{body}: {refused}");
    }
    let keyed = |url: &str| json!({ "to": PERSON, "type": "image", "url": url, "idempotency_key": "photo-1" });
    assert_eq!(post(&app, "/api/messages", Some(ADMIN_TOKEN), keyed("https://a.example/1.jpg")).await.0, 202);
    assert_eq!(post(&app, "/api/messages", Some(ADMIN_TOKEN), keyed("https://a.example/1.jpg")).await.0, 200);
    assert_eq!(
        post(&app, "/api/messages", Some(ADMIN_TOKEN), keyed("https://a.example/2.jpg")).await.0,
        409,
        "another file"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api'").await, 4);
}
