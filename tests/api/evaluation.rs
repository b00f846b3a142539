//! `eval.jsonl` seen from outside: the refresh report says how well the new
//! index finds the business's own questions, what it missed, which lines
//! it could not read, and when a refresh made it worse.

use crate::helpers::*;
use serde_json::Value;

const KLINIK: &str = "# Panduan Klinik\n\n## Biaya\n\nBiaya konsultasi dokter umum adalah Rp 75.000 per kunjungan.\n\n\
                      ## Jam buka\n\nKlinik buka Senin sampai Sabtu pukul 07.00 sampai 21.00.\n\n\
                      ## Parkir\n\nTersedia parkir motor dan mobil di halaman depan klinik.\n";

const EVAL: &str = r#"{"question": "brp biaya konsultasi dokter umum?", "expected": "Rp 75.000"}
{"question": "klinik buka jam berapa?", "answer_substring": "pukul 07.00", "source_file": "klinik.md"}
this line is not JSON
{"question": "ada parkir mobil?"}
{"question": "bisa bayar pakai kartu kredit?", "expected": "kartu kredit"}
"#;

async fn refreshed(app: &TestApp) -> Value {
    let response = app.refresh_kb(Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200, "a bad eval line never fails the refresh");
    response.json().await.expect("report JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_report_carries_recall_misses_and_bad_lines() {
    let documents: [(&str, &[u8]); 2] = [("klinik.md", KLINIK.as_bytes()), ("eval.jsonl", EVAL.as_bytes())];
    let app = TestApp::spawn_with_documents(Backend::Sqlite, &[], &documents).await;
    wait_until(|| async { app.admin_json("/api/whatsapp/status").await["knowledgeBase"]["eval"].is_object() }).await;
    let status = app.admin_json("/api/whatsapp/status").await;
    assert_eq!(status["knowledgeBase"]["eval"]["questions"], 3, "the start-up build ran the questions: {status}");
    let public = app.get("/api/whatsapp/status", None).await.json::<Value>().await.unwrap();
    assert!(public["knowledgeBase"].get("eval").is_none(), "questions are for admins only: {public}");

    let report = refreshed(&app).await;
    assert_eq!(report["files"], 1, "eval.jsonl is not indexed as a document: {report}");
    let eval = &report["eval"];
    assert_eq!(eval["questions"], 3, "{eval}");
    assert_eq!(eval["recall_at_4"].as_f64().unwrap(), 2.0 / 3.0);
    assert_eq!(eval["misses"].as_array().unwrap().len(), 1);
    assert_eq!(eval["misses"][0]["question"], "bisa bayar pakai kartu kredit?");
    assert_eq!(eval["misses"][0]["expected"], "kartu kredit");
    let errors: Vec<u64> = eval["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(errors, [3, 4], "{eval}");
    assert!(eval["errors"][1]["reason"].as_str().unwrap().contains("expected"), "{eval}");
    assert_eq!(eval["previous_recall_at_4"].as_f64().unwrap(), 2.0 / 3.0, "the start-up build's, unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_finds_fewer_answers_says_what_recall_was() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.put_document("klinik.md", KLINIK.as_bytes());
    app.put_document(
        "eval.jsonl",
        br#"{"question": "brp biaya konsultasi dokter umum?", "expected": "Rp 75.000"}
{"question": "ada parkir mobil?", "expected": "parkir motor dan mobil"}"#,
    );
    assert_eq!(refreshed(&app).await["eval"]["recall_at_4"], 1.0);

    app.put_document("klinik.md", KLINIK.replace("parkir motor dan mobil", "parkir motor").as_bytes());
    let eval = refreshed(&app).await["eval"].clone();
    assert_eq!(eval["recall_at_4"], 0.5, "{eval}");
    assert_eq!(eval["previous_recall_at_4"], 1.0, "{eval}");
    assert_eq!(eval["misses"][0]["question"], "ada parkir mobil?");
    assert!(app.metric("wa_knowledge_eval_regressions_total").await >= 1.0);
}
