use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    handshake_echoes_the_challenge_only_for_the_right_token,
    bad_or_missing_signatures_are_refused_and_store_nothing,
    malformed_json_and_oversized_bodies_are_refused,
    every_fixture_is_acknowledged,
    redelivered_message_ids_are_stored_once,
);

async fn handshake_echoes_the_challenge_only_for_the_right_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for route in ["/webhook/whatsapp", "/api/webhooks/whatsapp"] {
        let ok = app
            .client
            .get(format!(
                "{}{route}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
                app.address
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        for query in [
            "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
            "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
            "hub.mode=subscribe&hub.challenge=1",
            "",
        ] {
            let refused = app.client.get(format!("{}{route}?{query}", app.address)).send().await.unwrap();
            assert_eq!(refused.status(), 403, "{route}?{query}");
        }
    }
}

async fn bad_or_missing_signatures_are_refused_and_store_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = text_webhook("6281234567789", "wamid.sig.1", "halo");
    let wrong = sign(b"not-the-secret", body.as_bytes());
    let tampered = sign(APP_SECRET.as_bytes(), b"{}");
    for signature in [None, Some("sha256=zz"), Some(wrong.as_str()), Some(tampered.as_str())] {
        let response = app.post_raw(body.as_bytes(), signature).await;
        assert_eq!(response.status(), 401, "{signature:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert!(app.metric("wa_webhooks_total{outcome=\"bad_signature\",provider=\"cloud_api\"}").await >= 4.0);

    let unconfigured = TestApp::spawn_with(backend, &[("META_APP_SECRET", "")]).await;
    let response = unconfigured.post_webhook(&body).await;
    assert_eq!(response.status(), 503);
    assert_eq!(unconfigured.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
}

async fn malformed_json_and_oversized_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.post_webhook("{\"object\": \"whatsapp_business_account\", \"entry\": [").await;
    assert_eq!(response.status(), 400);
    let big = format!("{{\"padding\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let response = app.post_webhook(&big).await;
    assert_eq!(response.status(), 413);
    assert!(app.metric("wa_webhooks_total{outcome=\"malformed\",provider=\"cloud_api\"}").await >= 1.0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 0);
}

async fn every_fixture_is_acknowledged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() > 60, "fixtures copied into the repo");
    for name in &names {
        let response = app.post_webhook(&fixture(name)).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    // The fixtures reuse `wamid.xyzxyz` for many messages, as redeliveries do.
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id = 'wamid.xyzxyz'").await, 1);
}

async fn redelivered_message_ids_are_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak, ada yang bisa dibantu?").await;
    for _ in 0..3 {
        app.say("6281234567789", "wamid.redelivered", "halo kak").await;
    }
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    // Meta redelivers again minutes later, after the reply went out.
    app.say("6281234567789", "wamid.redelivered", "halo kak").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1, "a redelivery after the reply must not produce a second one");
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 1);
}
