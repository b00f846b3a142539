//! Questions the documents could not answer, seen from outside: rows kept
//! after the reply, grouped by wording under `GET /api/admin/unanswered`,
//! the model's "I do not know" marker never reaching the customer, and
//! dismissing a group.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

const KLINIK: &str = "# Panduan Klinik\n\n## Biaya\n\nBiaya konsultasi dokter umum adalah Rp 75.000 per kunjungan.\n";

on_both_backends!(
    questions_nothing_matches_are_grouped_by_wording,
    the_marker_is_stripped_and_the_turn_is_kept_as_model_unsure,
    a_dismissed_group_is_gone
);

async fn unanswered(app: &TestApp) -> Value {
    app.admin_json("/api/admin/unanswered").await
}

/// Waits until `n` questions were recorded and returns the listing.
async fn wait_for_questions(app: &TestApp, n: u64) -> Value {
    wait_until(|| async { unanswered(app).await["questions"].as_u64() == Some(n) }).await;
    unanswered(app).await
}

/// A server with the one-page clinic document, `KNOWLEDGE_MIN_SCORE` set
/// (one small document scores far below the shipped ones) and the LLM
/// answering `reply`.
async fn clinic(backend: Backend, min_score: &str, reply: &str) -> TestApp {
    let overrides = [("KNOWLEDGE_MIN_SCORE", min_score)];
    let app = TestApp::spawn_with_documents(backend, &overrides, &[("klinik.md", KLINIK.as_bytes())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, reply).await;
    app
}

async fn questions_nothing_matches_are_grouped_by_wording(backend: Backend) {
    let app = clinic(backend, "0.1", "Maaf kak, belum ada infonya.").await;
    app.say("6281234567001", "wamid.u.1", "ada parkir motor gak?").await;
    app.say("6281234567002", "wamid.u.2", "Parkir motor ada kak?").await;
    app.say("6281234567003", "wamid.u.3", "jual sepatu bola?").await;
    app.wait_for_texts(3).await;

    let listing = wait_for_questions(&app, 3).await;
    let groups = listing["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{listing}");
    assert_eq!(groups[0]["count"], 2, "the two wordings of one question count together: {listing}");
    let wordings: Vec<&str> = groups[0]["wordings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(wordings.contains(&"ada parkir motor gak?") && wordings.contains(&"Parkir motor ada kak?"));
    assert_eq!(groups[1]["example"], "jual sepatu bola?");
    assert_eq!(groups[1]["reasons"], json!(["no_passages"]), "nothing in the documents matched: {listing}");
    assert!(groups[0]["latestAt"].as_i64().unwrap() > 0);
    let text = listing.to_string();
    assert!(!text.contains("6281234567001") && !text.contains("6281234567003"), "numbers are masked: {text}");

    // A question the documents answer is not listed.
    app.say("6281234567004", "wamid.u.4", "brp biaya konsultasi dokter umum?").await;
    app.wait_for_texts(4).await;
    assert_eq!(unanswered(&app).await["questions"], 3);
}

async fn the_marker_is_stripped_and_the_turn_is_kept_as_model_unsure(backend: Backend) {
    let reply = "[TIDAK_TAHU] Maaf kak, info biaya rawat inap belum ada di dokumen kami.";
    let app = clinic(backend, "0", reply).await;
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .and(body_string_contains("dokter gigi"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("[tidak tahu]")))
        .with_priority(1)
        .mount(&app.llm)
        .await;
    app.say("6281234567001", "wamid.m.1", "brp biaya konsultasi rawat inap?").await;
    app.say("6281234567002", "wamid.m.2", "biaya konsultasi dokter gigi brp?").await;

    let sent = app.wait_for_texts(2).await;
    let to = |number: &str| {
        sent.iter().find(|body| body["to"] == number).map(|body| body["text"]["body"].as_str().unwrap().to_owned())
    };
    assert_eq!(to("6281234567001").unwrap(), "Maaf kak, info biaya rawat inap belum ada di dokumen kami.");
    let not_found = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/not_found.md")).unwrap();
    let only_marker = to("6281234567002").unwrap();
    assert!(!only_marker.to_lowercase().contains("tidak tahu"), "{only_marker}");
    assert!(
        only_marker.contains(not_found.lines().next().unwrap().trim()),
        "the not-found text instead: {only_marker}"
    );

    let listing = wait_for_questions(&app, 2).await;
    for group in listing["groups"].as_array().unwrap() {
        assert_eq!(group["reasons"], json!(["model_unsure"]), "{listing}");
    }
    let transcripts = app.count("SELECT COUNT(*) FROM turns WHERE reply_text LIKE '%TIDAK_TAHU%'").await;
    assert_eq!(transcripts, 0, "the history the model reads back holds no marker either");
}

async fn a_dismissed_group_is_gone(backend: Backend) {
    let app = clinic(backend, "1000", "Maaf kak.").await;
    app.say("6281234567001", "wamid.d.1", "ada parkir motor?").await;
    app.say("6281234567002", "wamid.d.2", "brp biaya konsultasi?").await;
    let listing = wait_for_questions(&app, 2).await;
    let group = |example: &str| {
        listing["groups"].as_array().unwrap().iter().find(|g| g["example"] == example).cloned().unwrap()
    };
    let parkir = group("ada parkir motor?");
    assert_eq!(parkir["reasons"], json!(["no_passages"]));
    let weak = group("brp biaya konsultasi?");
    assert_eq!(weak["reasons"], json!(["low_score"]), "found, but below KNOWLEDGE_MIN_SCORE: {listing}");
    assert!(weak["topScore"].as_f64().unwrap() > 0.0);

    let dismiss = |token: Option<&'static str>, body: Value| {
        let mut request = app.client.post(format!("{}/api/admin/unanswered/dismiss", app.address)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(dismiss(None, json!({ "ids": parkir["ids"] })).await.unwrap().status(), 401);
    let response = dismiss(Some(ADMIN_TOKEN), json!({ "ids": parkir["ids"] })).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["dismissed"], 1);

    let listing = unanswered(&app).await;
    let examples: Vec<&Value> = listing["groups"].as_array().unwrap().iter().map(|g| &g["example"]).collect();
    assert_eq!(examples, [&json!("brp biaya konsultasi?")], "{listing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unanswered_questions_need_the_admin_token() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.get("/api/admin/unanswered", None).await.status(), 401);
    assert_eq!(app.get("/api/admin/unanswered", Some("wrong-token")).await.status(), 401);
    assert_eq!(app.get("/api/admin/unanswered", Some(ADMIN_TOKEN)).await.status(), 200);
}
