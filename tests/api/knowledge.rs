//! The knowledge base seen from outside: documents in `KNOWLEDGE_DIR`,
//! `POST /api/whatsapp/refresh-kb`, and passages arriving in the prompt.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::Value;
use std::time::Duration;

const BIAYA: &str = "# Panduan Klinik\n\n## Biaya\n\nBiaya konsultasi dokter umum adalah Rp 75.000 per kunjungan.\n\n\
                     ## Jam buka\n\nKlinik buka Senin sampai Sabtu pukul 07.00 sampai 21.00.\n";

fn hostile(name: &str) -> (String, Vec<u8>) {
    let path = format!("{}/tests/fixtures/knowledge/hostile/{name}", env!("CARGO_MANIFEST_DIR"));
    (name.to_owned(), std::fs::read(path).expect("hostile fixture"))
}

const HOSTILE: [&str; 6] =
    ["kosong.pdf", "pohon-melingkar.pdf", "sampah.pdf", "tanpa-teks.pdf", "terenkripsi.pdf", "terpotong.pdf"];

fn system_prompt(request: &Value) -> String {
    request["messages"][0]["content"].as_str().unwrap_or_default().to_owned()
}

/// Asks `question` as the only message of a fresh conversation and returns
/// the system prompt the LLM received for it.
async fn prompt_for(app: &TestApp, question: &str) -> String {
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Baik kak.").await;
    app.say("6281234567789", "wamid.kb.question", question).await;
    app.wait_for_texts(1).await;
    system_prompt(&app.llm_requests().await[0])
}

/// The generation `CURRENT.json` names, once a build has been published.
fn live_generation(app: &TestApp) -> Option<String> {
    let manifest = std::fs::read_to_string(app.data.path().join("knowledge-index/CURRENT.json")).ok()?;
    serde_json::from_str::<Value>(&manifest).ok()?["generation"].as_str().map(String::from)
}

fn generations(app: &TestApp) -> usize {
    std::fs::read_dir(app.data.path().join("knowledge-index/generations")).map_or(0, |dir| dir.count())
}

on_both_backends!(
    passages_from_the_documents_reach_the_prompt_with_their_source,
    questions_during_refreshes_are_all_answered,
    a_message_after_the_search_ahead_is_searched_with_the_rest
);

async fn passages_from_the_documents_reach_the_prompt_with_their_source(backend: Backend) {
    let app = TestApp::spawn_with_documents(backend, &[], &[("klinik.md", BIAYA.as_bytes())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Biayanya Rp 75.000 kak (Panduan Klinik).").await;
    app.say("6281234567789", "wamid.kb.1", "brp biaya nya periksa ke dokter umum?").await;
    app.wait_for_texts(1).await;

    let prompt = system_prompt(&app.llm_requests().await[0]);
    assert!(
        prompt.contains("<<<KUTIPAN 1 | sumber: Panduan Klinik | bagian: Panduan Klinik › Biaya\nBiaya konsultasi"),
        "{prompt}"
    );
    assert!(!prompt.contains("KUTIPAN 2 | sumber: Panduan Klinik | bagian: Panduan Klinik › Biaya"), "no duplicates");
    assert_eq!(last_user_message(&app.llm_requests().await[0]), "brp biaya nya periksa ke dokter umum?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_needs_the_admin_token() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.refresh_kb(None).await.status(), 401);
    assert_eq!(app.refresh_kb(Some("wrong-token")).await.status(), 401);
    assert_eq!(app.refresh_kb(Some(&format!("{ADMIN_TOKEN}x"))).await.status(), 401);
    let ok = app.refresh_kb(Some(ADMIN_TOKEN)).await;
    assert_eq!(ok.status(), 200);
    assert!(!app.data.path().join("admin-token").exists(), "a configured token is not written anywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_token_one_is_made_up_and_kept_in_the_data_dir() {
    let mut app = TestApp::spawn_with(Backend::Sqlite, &[("ADMIN_API_TOKEN", "")]).await;
    let token = std::fs::read_to_string(app.data.path().join("admin-token")).unwrap().trim().to_owned();
    assert_eq!(token.len(), 48);
    assert_eq!(app.refresh_kb(Some(ADMIN_TOKEN)).await.status(), 401, "the usual test token is not it");
    assert_eq!(app.refresh_kb(Some(&token)).await.status(), 200);
    app.restart().await;
    assert_eq!(app.refresh_kb(Some(&token)).await.status(), 200, "the same token after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pdfs_are_reported_and_skipped_while_good_documents_are_indexed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for name in HOSTILE {
        let (name, bytes) = hostile(name);
        app.put_document(&format!("rusak/{name}"), &bytes);
    }
    app.put_document("klinik.md", BIAYA.as_bytes());
    app.put_document("notes.docx", b"PK\x03\x04");

    let response = app.refresh_kb(Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["files"], 1);
    assert_eq!(report["documents"][0]["file"], "klinik.md");
    assert!(report["chunks"].as_u64().unwrap() >= 2);
    let reasons: Vec<(String, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["file"].as_str().unwrap().to_owned(), s["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    let reason = |file: &str| reasons.iter().find(|(f, _)| f == file).map(|(_, r)| r.clone()).unwrap_or_default();
    assert!(reason("rusak/kosong.pdf").contains("empty"));
    assert!(reason("rusak/terenkripsi.pdf").contains("encrypted"));
    assert!(reason("rusak/tanpa-teks.pdf").contains("no text"));
    assert!(reason("rusak/pohon-melingkar.pdf").contains("no pages"));
    assert!(reason("rusak/sampah.pdf").contains("cannot be read"));
    assert!(reason("rusak/terpotong.pdf").contains("cannot be read"));
    assert!(reason("notes.docx").contains("not supported"));

    // The server is still healthy and answers from the good document.
    assert!(prompt_for(&app, "biaya konsultasi brp").await.contains("Rp 75.000 per kunjungan"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_where_every_file_fails_keeps_the_previous_index() {
    let app = TestApp::spawn_with_documents(Backend::Sqlite, &[], &[("klinik.md", BIAYA.as_bytes())]).await;
    wait_until(|| async { live_generation(&app).is_some() }).await;
    std::fs::remove_file(app.knowledge.path().join("klinik.md")).unwrap();
    let (name, bytes) = hostile("terenkripsi.pdf");
    app.put_document(&name, &bytes);

    let response = app.refresh_kb(Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["report"]["kept_previous_index"], true);
    assert_eq!(body["report"]["skipped"][0]["file"], "terenkripsi.pdf");
    let errors = app.admin_json("/api/admin/errors").await;
    assert_eq!(errors["errors"][0]["kind"], "knowledge", "the admin page shows the failed refresh: {errors}");

    assert!(prompt_for(&app, "jam buka klinik kapan").await.contains("Senin sampai Sabtu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_documents_are_not_extracted_again_and_a_restart_reuses_the_index() {
    let mut app = TestApp::spawn_with_documents(Backend::Sqlite, &[], &[("klinik.md", BIAYA.as_bytes())]).await;
    wait_until(|| async { live_generation(&app).is_some() }).await;
    let first = live_generation(&app);

    app.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live_generation(&app), first, "an up-to-date index is not rebuilt at start-up");
    assert_eq!(generations(&app), 1);

    app.put_document("baru.md", b"# Baru\n\nPendaftaran online dibuka setiap hari pukul 06.00.");
    let report: Value = app.refresh_kb(Some(ADMIN_TOKEN)).await.json().await.unwrap();
    let cached: Vec<(String, bool)> = report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap().to_owned(), d["from_cache"].as_bool().unwrap()))
        .collect();
    assert_eq!(cached, [("baru.md".to_owned(), false), ("klinik.md".to_owned(), true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_share_one_rebuild() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Joins the start-up build, if it still runs, and waits for its end.
    assert_eq!(app.refresh_kb(Some(ADMIN_TOKEN)).await.status(), 200);
    // Enough text that a rebuild takes a moment, so the calls overlap.
    let long: String = (0..4000).map(|i| format!("Paragraf nomor {i} tentang layanan klinik.\n\n")).collect();
    app.put_document("panjang.md", long.as_bytes());

    let (a, b, c) = tokio::join!(
        app.refresh_kb(Some(ADMIN_TOKEN)),
        app.refresh_kb(Some(ADMIN_TOKEN)),
        app.refresh_kb(Some(ADMIN_TOKEN))
    );
    let reports: Vec<Value> = vec![a.json().await.unwrap(), b.json().await.unwrap(), c.json().await.unwrap()];
    assert!(reports.iter().all(|r| r == &reports[0]), "all callers got the same build's report");
    assert_eq!(reports[0]["files"], 1, "{}", reports[0]);
    // The generation before is kept as the previous one, plus exactly one new.
    assert_eq!(generations(&app), 2);
}

async fn questions_during_refreshes_are_all_answered(backend: Backend) {
    let app = TestApp::spawn_with_documents(backend, &[], &[("klinik.md", BIAYA.as_bytes())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Rp 75.000 kak").await;
    let people = 12;
    let refreshing = async {
        for round in 0..6 {
            // Each round changes a document, so every refresh really rebuilds.
            app.put_document("catatan.md", format!("# Catatan\n\nPengumuman nomor {round}.").as_bytes());
            let status = app.refresh_kb(Some(ADMIN_TOKEN)).await.status();
            assert_eq!(status, 200);
        }
    };
    let asking = async {
        for n in 0..people {
            app.say(&format!("62812000000{n:02}"), &format!("wamid.kb.load.{n}"), "brp biaya konsultasi dokter umum")
                .await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    };
    tokio::join!(refreshing, asking);

    let sent = app.wait_for_texts(people).await;
    assert_eq!(sent.len(), people, "every question answered exactly once");
    let prompts = app.llm_requests().await;
    assert_eq!(prompts.len(), people);
    assert!(
        prompts.iter().all(|p| system_prompt(p).contains("Rp 75.000 per kunjungan")),
        "no question lost its passages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_served_while_the_first_index_builds_and_the_reply_waits_for_it() {
    let pdf = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge/referensi-debian.id.pdf")).unwrap();
    let app = TestApp::spawn_with_documents(Backend::Sqlite, &[], &[("referensi-debian.id.pdf", &pdf)]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Pakai chown kak.").await;
    let response = app.post_webhook(&text_webhook("6281234567789", "wamid.kb.early", "chown tu buat apa ya")).await;
    assert_eq!(response.status(), 200);
    assert!(live_generation(&app).is_none(), "acknowledged before the 266-page index exists");

    // Extracting 266 pages takes seconds in a debug build on a busy machine.
    for _ in 0..600 {
        if !app.sent_texts().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.sent_texts().await.len(), 1);
    let prompt = system_prompt(&app.llm_requests().await[0]);
    assert!(prompt.contains("sumber: Referensi Debian, hlm."), "the reply waited for the index: {prompt}");
    assert!(live_generation(&app).is_some());
}

/// The passages are searched a second before the deadline. When the person
/// writes again after that and the deadline cannot move (it is already
/// `MESSAGE_BUFFER_MAX_SECONDS` after their first message), the answer must
/// not use passages found for only part of what they said.
async fn a_message_after_the_search_ahead_is_searched_with_the_rest(backend: Backend) {
    let documents: [(&str, &[u8]); 2] = [
        ("jadwal.md", b"# Jadwal\n\nKantor buka Senin sampai Sabtu pukul 07.00 sampai 21.00.\n"),
        ("tarif.md", b"# Tarif\n\nBiaya konsultasi dokter Rp 75.000.\n"),
    ];
    let window = [("MESSAGE_BUFFER_SECONDS", "3"), ("MESSAGE_BUFFER_MAX_SECONDS", "3")];
    let app = TestApp::spawn_with_documents(backend, &window, &documents).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Buka jam 07.00, biayanya Rp 75.000 kak.").await;
    app.say("6281234567711", "wamid.kb.ahead.1", "kantor buka jam brp?").await;
    // Searched ahead at 2 s; the deadline stays at 3 s.
    tokio::time::sleep(Duration::from_millis(2400)).await;
    app.say("6281234567711", "wamid.kb.ahead.2", "trus biaya konsultasinya brp?").await;
    app.wait_for_texts(1).await;

    let requests = app.llm_requests().await;
    assert_eq!(requests.len(), 1, "both messages answered together");
    assert_eq!(last_user_message(&requests[0]), "kantor buka jam brp?\ntrus biaya konsultasinya brp?");
    let prompt = system_prompt(&requests[0]);
    assert!(prompt.contains("pukul 07.00") && prompt.contains("Rp 75.000"), "passages for both messages: {prompt}");
    let errors = app.admin_json("/api/admin/errors").await;
    assert_eq!(errors["errors"], serde_json::json!([]), "reading ahead worked on this database");
}
