//! What one person can cost, seen from outside: the LLM requests they
//! cause, what the fake OpenRouter receives, and what they are told.

use crate::helpers::*;
use crate::on_both_backends;
use crate::webchat::GUIDE;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const PHONE: &str = "6281234567890";

on_both_backends!(
    over_the_hourly_limit_a_person_is_told_once_and_the_llm_is_not_asked,
    a_long_turn_reaches_the_llm_cut_with_a_note_and_history_stays_bounded,
    every_request_caps_the_answer_and_a_cut_answer_is_still_sent,
    once_the_daily_budget_is_spent_the_documents_answer,
);

fn text_of(sent: &Value) -> &str {
    sent["text"]["body"].as_str().unwrap_or_default()
}

async fn over_the_hourly_limit_a_person_is_told_once_and_the_llm_is_not_asked(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MAX_TURNS_PER_HOUR", "2")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    for (n, question) in ["halo", "mau tanya", "jam buka?"].into_iter().enumerate() {
        app.say(PHONE, &format!("wamid.limit.{n}"), question).await;
        app.wait_for_texts(n + 1).await;
    }
    let sent = app.sent_texts().await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(text_of(&sent[1]), "Halo kak!");
    let notice = text_of(&sent[2]);
    assert!(notice.contains("batas pertanyaan") && notice.contains("menit lagi"), "{notice}");
    assert!(!notice.contains("{menit}"), "the wait is filled in: {notice}");

    app.say(PHONE, "wamid.limit.3", "halo??").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 4 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.sent_texts().await.len(), 3, "told once, then nothing");
    assert_eq!(app.llm_requests().await.len(), 2, "the LLM saw only the turns within the limit");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE reply_kind = 'limited'").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE turn_id IS NULL").await, 0, "nothing re-claimed");
    assert!(app.metric("wa_limits_total{limit=\"turns_per_hour\"}").await >= 2.0);
}

async fn a_long_turn_reaches_the_llm_cut_with_a_note_and_history_stays_bounded(backend: Backend) {
    let overrides = [("MAX_TURN_CHARS", "1000"), ("CONVERSATION_HISTORY_CHARS", "600")];
    let app = TestApp::spawn_with(backend, &overrides).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    // 10,200 characters in one turn: three long messages in one webhook.
    let long = |n: usize| {
        json!({ "from": PHONE, "id": format!("wamid.long.{n}"), "timestamp": "1700000000",
        "type": "text", "text": { "body": "kata ".repeat(680) } })
    };
    let burst = messages_webhook(json!([long(0), long(1), long(2)]), PHONE);
    assert_eq!(app.post_webhook(&burst).await.status(), 200);
    app.wait_for_texts(1).await;
    app.say(PHONE, "wamid.long.3", "terus gimana?").await;
    app.wait_for_texts(2).await;

    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 2);
    let first = llm[0]["messages"].as_array().unwrap();
    let turn = last_user_message(&llm[0]);
    assert!(turn.chars().count() <= 1000 && turn.chars().count() > 900, "{} chars", turn.chars().count());
    assert!(turn.ends_with("kata"), "cut at a word end");
    let note = &first[first.len() - 2];
    assert_eq!(note["role"], "system");
    assert!(note["content"].as_str().unwrap().contains("terlalu panjang"), "{note}");

    let second = llm[1]["messages"].as_array().unwrap();
    let history: usize =
        second[1..second.len() - 1].iter().map(|m| m["content"].as_str().unwrap().chars().count()).sum();
    assert!(history > 0 && history <= 600, "history of {history} characters");
    assert_eq!(second.len(), 4, "system, the earlier turn both ways, the new turn; no note this time");
}

async fn every_request_caps_the_answer_and_a_cut_answer_is_still_sent(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("LLM_MAX_TOKENS", "200")]).await;
    graph_accepts_sends(&app.graph).await;
    let mut cut = completion("Jawaban yang terpotong di tengah");
    cut["choices"][0]["finish_reason"] = json!("length");
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(cut))
        .mount(&app.llm)
        .await;
    app.say(PHONE, "wamid.tokens.1", "ceritakan semuanya").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(text_of(&sent[0]), "Jawaban yang terpotong di tengah");
    assert_eq!(app.llm_requests().await[0]["max_tokens"], 200);
    assert!(app.metric("wa_limits_total{limit=\"max_tokens\"}").await >= 1.0);
}

async fn once_the_daily_budget_is_spent_the_documents_answer(backend: Backend) {
    // Each fake answer costs 150 tokens (120 prompt, 30 completion).
    let overrides = [("LLM_DAILY_TOKEN_BUDGET", "100")];
    let app = TestApp::spawn_with_documents(backend, &overrides, &[("klinik.md", GUIDE.as_bytes())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(
        status["limits"]["budget"],
        json!({ "dailyTokenBudget": 100, "tokensUsedToday": 0, "exhausted": false })
    );

    app.say(PHONE, "wamid.budget.1", "halo").await;
    app.wait_for_texts(1).await;
    app.say(PHONE, "wamid.budget.2", "brp biaya konsultasi dokter umum?").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(app.llm_requests().await.len(), 1, "no LLM request once the budget is spent");
    let answer = text_of(&sent[1]);
    assert!(answer.starts_with("Berikut informasi dari dokumen kami:") && answer.contains("Rp 75.000"), "{answer}");

    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(
        status["limits"]["budget"],
        json!({ "dailyTokenBudget": 100, "tokensUsedToday": 150, "exhausted": true })
    );
    assert!(app.metric("wa_limits_total{limit=\"daily_budget\"}").await >= 1.0);
}
