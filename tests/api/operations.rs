//! The operator surface: status, readiness and health, seen from outside.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(
    status_lists_people_in_conversation_with_masked_numbers_and_no_secrets,
    stats_count_messages_replies_tokens_and_delivery,
    status_shows_how_the_number_stands_with_meta_and_asks_once_a_minute,
);

async fn status(app: &TestApp) -> Value {
    app.get("/api/whatsapp/status", None).await.json().await.unwrap()
}

/// The start-up index build runs in the background; its end shows here.
async fn wait_for_index(app: &TestApp) {
    wait_until(|| async { status(app).await["knowledgeBase"]["loaded"] == true }).await;
}

async fn status_lists_people_in_conversation_with_masked_numbers_and_no_secrets(backend: Backend) {
    // A long quiet period keeps the messages buffered while we look.
    let app = TestApp::spawn_with(backend, &[("MESSAGE_BUFFER_SECONDS", "30")]).await;
    app.say("6281234567789", "wamid.status.1", "halo kak").await;
    app.say("6281234567789", "wamid.status.2", "mau tanya").await;
    app.say("6289876543210", "wamid.status.3", "permisi").await;
    wait_for_index(&app).await;

    let response = app.get("/api/whatsapp/status", None).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for hidden in
        ["6281234567789", "6289876543210", APP_SECRET, ACCESS_TOKEN, OPENROUTER_KEY, VERIFY_TOKEN, ADMIN_TOKEN]
    {
        assert!(!text.contains(hidden), "{hidden} must not appear in the status");
    }
    let status: Value = serde_json::from_str(&text).unwrap();
    for (section, keys) in [
        ("webhook", &["accessToken", "phoneNumberId", "verifyToken", "appSecret", "isConfigured"][..]),
        ("ai", &["openRouterApiKey", "databaseUrl", "knowledgeBaseLoaded", "isConfigured"][..]),
    ] {
        for key in keys {
            assert_eq!(status[section][key], true, "{section}.{key}");
        }
    }
    assert_eq!(status["isFullyConfigured"], true);
    assert_eq!(status["sessions"]["activeSessions"], 2);
    let sessions = status["sessions"]["sessions"].as_array().unwrap();
    let mine = sessions.iter().find(|s| s["phone"] == "6281******789").expect("masked number listed");
    assert_eq!(mine["bufferedMessages"], 2);
    assert_eq!(mine["messageCount"], 2);
    assert!(mine["lastActivity"].as_i64().unwrap() > 0);
    assert_eq!(status["admin"], false);
    assert!(status["database"]["healthy"].as_bool().unwrap());

    let as_admin: Value = app.get("/api/whatsapp/status", Some(ADMIN_TOKEN)).await.json().await.unwrap();
    assert_eq!(as_admin["admin"], true);
    assert!(as_admin["knowledgeBase"]["files"].is_array());
    assert_eq!(app.get("/api/whatsapp/status", Some("not-the-token")).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_readiness_say_what_is_missing_without_credentials() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("META_ACCESS_TOKEN", ""), ("META_APP_SECRET", ""), ("OPENROUTER_API_KEY", "")],
    )
    .await;
    let status = status(&app).await;
    assert_eq!(status["webhook"]["accessToken"], false);
    assert_eq!(status["webhook"]["appSecret"], false);
    assert_eq!(status["webhook"]["phoneNumberId"], true);
    assert_eq!(status["webhook"]["isConfigured"], false);
    assert_eq!(status["ai"]["openRouterApiKey"], false);
    assert_eq!(status["isFullyConfigured"], false);
    assert_eq!(status["sessions"]["activeSessions"], 0);

    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    let problems = body["problems"].to_string();
    for missing in ["META_ACCESS_TOKEN", "META_APP_SECRET", "OPENROUTER_API_KEY"] {
        assert!(problems.contains(missing), "{missing} in {problems}");
    }
    assert_eq!(app.get("/health", None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_server_is_ready_once_its_index_is_loaded() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    wait_for_index(&app).await;
    assert_eq!(app.get("/ready", None).await.status(), 200);
    assert_eq!(status(&app).await["ai"]["knowledgeBaseLoaded"], true);
}

async fn stats_count_messages_replies_tokens_and_delivery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281234567789", "wamid.stats.1", "halo").await;
    app.say("6281234567789", "wamid.stats.2", "mau tanya").await;
    app.wait_for_texts(1).await;
    let sql = "SELECT wa_message_id FROM outbound_messages";
    let wamid: String = sqlx::query_scalar(sql).fetch_one(&app.pool().await).await.unwrap();
    for status in ["delivered", "read"] {
        assert_eq!(app.post_webhook(&status_webhook(&wamid, status, None)).await.status(), 200);
    }

    assert_eq!(app.get("/api/whatsapp/stats", None).await.status(), 401);
    assert_eq!(app.get("/api/whatsapp/stats", Some("wrong")).await.status(), 401);
    let stats: Value = app.get("/api/whatsapp/stats?days=7", Some(ADMIN_TOKEN)).await.json().await.unwrap();
    assert_eq!(stats["messages"], 2);
    assert_eq!(stats["activeUsers"], 1);
    assert_eq!(stats["turnsAnswered"], 1);
    assert_eq!(stats["llmFallbacks"], 0);
    assert_eq!(stats["tokens"], 150, "prompt + completion tokens of the fake completion");
    assert_eq!(stats["deliveryRate"], 1.0);
    assert_eq!(stats["readRate"], 1.0);
    let waited = stats["replySecondsAvg"].as_f64().unwrap();
    assert!((0.4..10.0).contains(&waited), "the quiet period is part of the wait: {waited}");
    assert_eq!(stats["days"].as_array().unwrap().len(), 1);
    assert_eq!(stats["days"][0]["messages"], 2);
}

async fn status_shows_how_the_number_stands_with_meta_and_asks_once_a_minute(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    Mock::given(method("GET"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}")))
        .and(query_param("fields", "verified_name,display_phone_number,quality_rating,status,messaging_limit_tier"))
        .and(header("authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "verified_name": "Toko Maju", "display_phone_number": "+62 812-3456-7890", "quality_rating": "RED",
            "status": "CONNECTED", "messaging_limit_tier": "TIER_250", "id": PHONE_NUMBER_ID,
        })))
        .expect(1)
        .mount(&app.graph)
        .await;
    for _ in 0..5 {
        let public = status(&app).await;
        assert_eq!(public["whatsapp"]["provider"], "cloud_api");
        assert_eq!(public["whatsapp"]["connection"]["state"], "connected", "{public}");
        assert!(public["whatsapp"]["connection"].get("detail").is_none(), "details are the admin's: {public}");
    }
    let admin = app.admin_json("/api/whatsapp/status").await;
    let detail = &admin["whatsapp"]["connection"]["detail"];
    assert_eq!(
        (detail["qualityRating"].as_str(), detail["messagingLimitTier"].as_str()),
        (Some("RED"), Some("TIER_250"))
    );
    assert!(!admin.to_string().contains("3456-7890"), "the number is masked");
    app.graph.verify().await;
}
