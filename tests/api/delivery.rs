use crate::helpers::*;
use crate::on_both_backends;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(
    statuses_update_the_stored_reply,
    markdown_is_converted_to_whatsapp_formatting,
    a_6000_character_answer_is_split_and_sent_in_order,
    a_dead_llm_still_gets_the_person_a_polite_reply,
    graph_429_then_success_is_delivered_once,
    permanent_graph_errors_are_recorded_and_not_retried,
    a_status_that_arrives_before_the_send_is_recorded_still_applies,
);

async fn statuses_update_the_stored_reply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281234567789", "wamid.st.1", "halo").await;
    app.wait_for_texts(1).await;
    let pool = app.pool().await;
    let wamid: String =
        sqlx::query_scalar("SELECT wa_message_id FROM outbound_messages").fetch_one(&pool).await.unwrap();
    let status = |s: &str| {
        let pool = pool.clone();
        let wamid = wamid.clone();
        let s = s.to_owned();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM outbound_messages WHERE wa_message_id = $1")
                .bind(wamid)
                .fetch_one(&pool)
                .await
                .map(|got| got == s)
                .unwrap()
        }
    };
    assert_eq!(app.post_webhook(&status_webhook(&wamid, "delivered", None)).await.status(), 200);
    assert!(status("delivered").await);
    assert_eq!(app.post_webhook(&status_webhook(&wamid, "read", None)).await.status(), 200);
    assert!(status("read").await);
    // A late "sent" (webhooks arrive out of order) must not hide the "read".
    assert_eq!(app.post_webhook(&status_webhook(&wamid, "sent", None)).await.status(), 200);
    assert!(status("read").await);
    assert_eq!(app.post_webhook(&status_webhook(&wamid, "failed", Some(131047))).await.status(), 200);
    assert!(status("failed").await);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE error_code = 131047").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM delivery_statuses").await, 4);
    // The real fixture for a failed status is stored with its error code.
    assert_eq!(app.post_webhook(&fixture("message_status__failed.json")).await.status(), 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM delivery_statuses WHERE error_code = 130472").await, 1);
}

async fn markdown_is_converted_to_whatsapp_formatting(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "## Syarat KTP\n\nSiapkan **fotokopi KK** dan ~~paspor~~:\n\n- surat pengantar RT\n- pas foto\n\nInfo: [dukcapil](https://dukcapil.example.id)").await;
    app.say("6281234567789", "wamid.md.1", "syarat ktp?").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(
        sent[0]["text"]["body"],
        "*Syarat KTP*\n\nSiapkan *fotokopi KK* dan ~paspor~:\n\n- surat pengantar RT\n- pas foto\n\nInfo: dukcapil (https://dukcapil.example.id)"
    );
}

async fn a_6000_character_answer_is_split_and_sent_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    let paragraphs: Vec<String> = (1..=34)
        .map(|n| format!("Paragraf {n}. {}", "Ini kalimat penjelasan yang cukup panjang. ".repeat(4).trim()))
        .collect();
    let answer = paragraphs.join("\n\n");
    assert!(answer.chars().count() >= 6000, "{}", answer.len());
    llm_answers(&app.llm, &answer).await;
    app.say("6281234567789", "wamid.long.1", "jelaskan semuanya").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2);
    let bodies: Vec<&str> = sent.iter().map(|s| s["text"]["body"].as_str().unwrap()).collect();
    assert!(bodies.iter().all(|b| b.chars().count() <= 4096));
    assert!(bodies[0].starts_with("Paragraf 1."));
    assert!(bodies[1].ends_with(paragraphs.last().unwrap().as_str()));
    assert_eq!(bodies.join("\n\n"), answer, "split at paragraph boundaries, nothing lost, in order");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 2);
}

async fn a_dead_llm_still_gets_the_person_a_polite_reply(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("OPENROUTER_FALLBACK_MODELS", "meta-llama/llama-3.3-70b-instruct:free")]).await;
    graph_accepts_sends(&app.graph).await;
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "error": { "message": "upstream down" } })))
        .mount(&app.llm)
        .await;
    app.say("6281234567789", "wamid.dead.1", "halo, brp biayanya?").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    let expected = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/llm_unavailable.md")).unwrap();
    assert_eq!(sent[0]["text"]["body"], expected.trim());
    // Primary (with OpenRouter's fallback list) and the fallback model, each retried once.
    let requests = app.llm_requests().await;
    assert_eq!(requests.len(), 4);
    assert_eq!(
        requests[0]["models"],
        json!(["google/gemini-2.0-flash-exp:free", "meta-llama/llama-3.3-70b-instruct:free"])
    );
    assert_eq!(requests[3]["model"], "meta-llama/llama-3.3-70b-instruct:free");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE reply_kind = 'fallback' AND status = 'answered'").await, 1);
}

async fn graph_429_then_success_is_delivered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    graph_refuses_texts(&app.graph, 429, 130429, Some(1)).await;
    graph_accepts_sends(&app.graph).await;
    app.say("6281234567789", "wamid.429.1", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages").await == 1 }).await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2, "one refused attempt, one accepted");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE status = 'accepted'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

async fn permanent_graph_errors_are_recorded_and_not_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    graph_refuses_texts(&app.graph, 400, 131047, None).await;
    graph_accepts_sends(&app.graph).await;
    app.say("6281234567789", "wamid.perm.1", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'failed'").await == 1 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "a permanent error is not retried");
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM outbound_messages WHERE state = 'failed_permanent' AND error_code = 131047 \
             AND attempts = 1"
        )
        .await,
        1
    );
}

async fn a_status_that_arrives_before_the_send_is_recorded_still_applies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_partial_json(json!({ "type": "text" })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": "wamid.early.out" }] })))
        .mount(&app.graph)
        .await;
    graph_accepts_sends(&app.graph).await;
    // Meta's "delivered" for our reply overtakes the Graph API's answer.
    assert_eq!(app.post_webhook(&status_webhook("wamid.early.out", "delivered", None)).await.status(), 200);
    app.say("6281234567789", "wamid.early.in", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent'").await == 1 }).await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id = 'wamid.early.out' AND status = 'delivered'"
        )
        .await,
        1
    );
}
