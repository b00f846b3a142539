//! The admin page's data: conversations with masked numbers, transcripts,
//! activity per hour and recent errors, all behind the admin token.

use crate::helpers::*;
use crate::on_both_backends;
use crate::webchat::{post_message, start_conversation, Window, GUIDE};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(conversations_and_transcripts_show_masked_numbers_and_every_message, activity_counts_each_hour);

async fn conversations_and_transcripts_show_masked_numbers_and_every_message(backend: Backend) {
    let app = TestApp::spawn_with_documents(backend, &[], &[("klinik.md", GUIDE.as_bytes())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Rp 75.000 kak.").await;
    app.say("6281298765432", "wamid.admin.1", "brp biaya dokter umum?").await;
    app.wait_for_texts(1).await;
    let chat = start_conversation(&app, Some("6285700001111")).await;
    let mut window = Window::open(&app, &chat).await;
    post_message(&app, &chat, "jam buka?", "adm-1").await;
    window.answer().await;

    let listed = app.admin_json("/api/admin/conversations").await;
    let conversations = listed["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 2);
    assert!(conversations[0]["person"].as_str().unwrap().starts_with("web:"), "most recent first");
    assert_eq!(conversations[0]["name"], "6285******111", "the visitor's label, masked");
    assert_eq!(conversations[0]["channel"], "web");
    assert!(!listed.to_string().contains(&chat), "never the secret");
    assert_eq!(conversations[1]["person"], "6281******432");
    assert_eq!(conversations[1]["channel"], "whatsapp");
    assert_eq!(conversations[1]["name"], "Budi");
    assert_eq!(conversations[1]["state"], "idle");
    assert!(!listed.to_string().contains("6281298765432"), "no full number");

    let id = conversations[1]["id"].as_i64().unwrap();
    let transcript = app.admin_json(&format!("/api/admin/conversations/{id}")).await;
    let messages = transcript["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["from"], "customer");
    assert_eq!(messages[0]["text"], "brp biaya dokter umum?");
    assert_eq!(messages[1]["from"], "bot");
    assert_eq!(messages[1]["text"], "Rp 75.000 kak.");
    assert_eq!(messages[1]["kind"], "llm");
    assert_eq!(messages[1]["status"], "sent");
    assert_eq!(messages[1]["sources"][0]["citation"], "Panduan Klinik");
    assert!(!transcript.to_string().contains("6281298765432"));

    assert_eq!(app.get("/api/admin/conversations/999999", Some(ADMIN_TOKEN)).await.status(), 404);
    for route in ["/api/admin/conversations", &format!("/api/admin/conversations/{id}"), "/api/admin/errors"] {
        assert_eq!(app.get(route, None).await.status(), 401, "{route}");
        assert_eq!(app.get(route, Some("wrong")).await.status(), 401, "{route}");
    }
}

async fn activity_counts_each_hour(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281298765432", "wamid.hour.1", "halo").await;
    app.say("6281298765432", "wamid.hour.2", "kak").await;
    app.wait_for_texts(1).await;
    let activity = app.admin_json("/api/admin/activity?hours=3").await;
    let hours = activity["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 3);
    let now = hours[2].clone();
    assert_eq!(now["messages"], 2);
    assert_eq!(now["turns"], 1);
    assert!(now["replySecondsAvg"].as_f64().unwrap() >= 0.5, "the quiet period at least: {now}");
    assert_eq!(hours[0]["messages"], 0);
    assert!(hours[0]["replySecondsAvg"].is_null());
    assert_eq!(hours[1]["start"].as_i64().unwrap() - hours[0]["start"].as_i64().unwrap(), 3_600_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_errors_name_what_failed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    graph_refuses_texts(&app.graph, 400, 131047, None).await;
    Mock::given(method("POST")).and(path(LLM_PATH)).respond_with(ResponseTemplate::new(500)).mount(&app.llm).await;
    app.say("6281298765432", "wamid.err.1", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'failed'").await == 1 }).await;
    let errors = app.admin_json("/api/admin/errors").await;
    let kinds: Vec<&str> = errors["errors"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["send", "llm"], "newest first: {errors}");
    assert!(errors["errors"][0]["message"].as_str().unwrap().contains("131047"), "{errors}");
    assert!(!errors.to_string().contains("6281298765432"));
    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(status["whatsapp"]["lastSendError"]["kind"], "send");
}
