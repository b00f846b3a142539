//! What one person can cost, seen from outside: the LLM requests they
//! cause, what the fake OpenRouter receives, and what they are told.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const PHONE: &str = "6281234567890";

on_both_backends!(every_request_caps_the_answer_and_a_cut_answer_is_still_sent);

fn text_of(sent: &Value) -> &str {
    sent["text"]["body"].as_str().unwrap_or_default()
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
