//! A provider that speaks the Cloud API under its own address and key
//! (360dialog): its key in `WHATSAPP_AUTH_HEADER` on every request and never
//! as a bearer token, `/messages` and `/{media id}` under its base, media
//! URLs asked of its own host, and unsigned webhooks at a secret path.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, Request, ResponseTemplate};

on_both_backends!(
    a_compatible_provider_gets_its_key_in_its_own_header,
    a_compatible_providers_media_comes_from_its_own_host,
    an_unsigned_webhook_needs_the_secret_path,
);

const KEY_HEADER: &str = "D360-API-KEY";
const HOOK_SECRET: &str = "hook-7f3a9c21e4b8d605";
const PERSON: &str = "6281234500011";

/// A 360dialog-like server: no version and no number id in the paths.
async fn spawn_compatible(backend: Backend) -> TestApp {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("WHATSAPP_AUTH_HEADER", KEY_HEADER),
            ("WHATSAPP_WEBHOOK_SECRET", HOOK_SECRET),
            ("META_PHONE_NUMBER_ID", ""),
            ("META_APP_SECRET", ""),
            ("META_WEBHOOK_VERIFY_TOKEN", ""),
        ],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/messages"))
        .and(header(KEY_HEADER, ACCESS_TOKEN))
        .respond_with(|request: &Request| {
            if request.headers.contains_key("authorization") {
                return ResponseTemplate::new(400).set_body_json(json!({ "error": { "message": "bearer sent" } }));
            }
            let id = format!("wamid.d360.{}", uuid::Uuid::new_v4().simple());
            ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": id }] }))
        })
        .mount(&app.graph)
        .await;
    app
}

async fn post_unsigned(app: &TestApp, secret: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/webhook/whatsapp/{secret}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn texts_to_provider(app: &TestApp) -> Vec<serde_json::Value> {
    requests_to(&app.graph, "/messages").await.into_iter().filter(|body| body["type"] == "text").collect()
}

async fn a_compatible_provider_gets_its_key_in_its_own_header(backend: Backend) {
    let app = spawn_compatible(backend).await;
    llm_answers(&app.llm, "Bisa kak, daftar di loket 2.").await;
    for (id, text) in [("wamid.c.1", "halo"), ("wamid.c.2", "mau daftar")] {
        let response = post_unsigned(&app, HOOK_SECRET, &text_webhook(PERSON, id, text)).await;
        assert_eq!(response.status(), 200);
    }
    wait_until(|| async { !texts_to_provider(&app).await.is_empty() }).await;
    let sent = texts_to_provider(&app).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], PERSON);
    assert_eq!(sent[0]["text"]["body"], "Bisa kak, daftar di loket 2.");
    // Every request carried the key in its header, none a bearer token
    // (the mock refuses those, so a sent reply proves it for the send).
    let requests = app.graph.received_requests().await.unwrap();
    assert!(requests.iter().all(|r| r.headers.get(KEY_HEADER).is_some_and(|v| v == ACCESS_TOKEN)));
    assert!(requests.iter().all(|r| !r.headers.contains_key("authorization")));
    wait_until(|| async {
        app.count("SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id LIKE 'wamid.d360.%'").await == 1
    })
    .await;

    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(status["webhook"]["isConfigured"], true, "{status}");
    assert_eq!(status["whatsapp"]["provider"], "cloud_api");
}

async fn a_compatible_providers_media_comes_from_its_own_host(backend: Backend) {
    let app = spawn_compatible(backend).await;
    llm_answers(&app.llm, "Fotonya sudah kami terima.").await;
    // The provider answers with Meta's CDN URL; the file is asked of the
    // provider's host under the same path and query, with the key.
    Mock::given(method("GET"))
        .and(path("/media.7781"))
        .and(header(KEY_HEADER, ACCESS_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=7781&ext=1",
            "mime_type": "image/png",
            "id": "media.7781",
        })))
        .mount(&app.graph)
        .await;
    let png = tiny_png();
    Mock::given(method("GET"))
        .and(path("/whatsapp_business/attachments/"))
        .and(query_param("mid", "7781"))
        .and(header(KEY_HEADER, ACCESS_TOKEN))
        .respond_with(ResponseTemplate::new(200).insert_header("content-type", "image/png").set_body_bytes(png))
        .mount(&app.graph)
        .await;
    let photo = messages_webhook(
        json!([{ "from": PERSON, "id": "wamid.c.photo", "timestamp": "1700000000", "type": "image",
                 "image": { "id": "media.7781", "mime_type": "image/png", "caption": "ini KTP saya" } }]),
        PERSON,
    );
    assert_eq!(post_unsigned(&app, HOOK_SECRET, &photo).await.status(), 200);
    wait_until(|| async { !texts_to_provider(&app).await.is_empty() }).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id = 'wamid.c.photo' AND media_outcome = 'downloaded' AND media_file IS NOT NULL")
            .await,
        1
    );
    let llm = app.llm_requests().await;
    assert!(llm[0].to_string().contains("data:image/jpeg;base64,"), "the photo reached the model");
}

async fn an_unsigned_webhook_needs_the_secret_path(backend: Backend) {
    let app = spawn_compatible(backend).await;
    let body = text_webhook(PERSON, "wamid.c.wrong", "halo");
    for secret in ["hook-7f3a9c21e4b8d604", "x", "hook-7f3a9c21e4b8d6050"] {
        assert_eq!(post_unsigned(&app, secret, &body).await.status(), 404, "{secret}");
    }
    // Without META_APP_SECRET the signed route is off, not open.
    assert_eq!(app.post_raw(body.as_bytes(), None).await.status(), 503);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(post_unsigned(&app, HOOK_SECRET, "{not json").await.status(), 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
}

fn tiny_png() -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 30, 30]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}
