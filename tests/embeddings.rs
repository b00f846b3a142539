//! Dense retrieval against a fake OpenAI-compatible `/embeddings` server
//! whose vectors are deterministic: each dimension counts the words of one
//! "concept", so a question can be near a passage it shares no word with.
//! Checks what the vectors add to BM25 (also for the business's
//! `eval.jsonl`), that unchanged passages are not embedded twice, and that
//! a failing provider leaves BM25 answering.

use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_ai_bridge::config::{EmbeddingSettings, KnowledgeSettings};
use wa_ai_bridge::knowledge::KnowledgeBase;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const CONCEPTS: [&[&str]; 3] = [&["kredensial", "sandi", "password"], &["parkir", "kendaraan"], &["jadwal", "buka"]];

/// Remembers every text it was asked to embed.
#[derive(Clone, Default)]
struct FakeEmbedder {
    inputs: Arc<Mutex<Vec<String>>>,
}

fn vector(text: &str) -> Vec<f32> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    let mut vector: Vec<f32> =
        CONCEPTS.iter().map(|concept| words.iter().filter(|w| concept.contains(w)).count() as f32).collect();
    vector.push(0.1);
    vector
}

impl Respond for FakeEmbedder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["model"], "fake/embed");
        let inputs: Vec<String> =
            body["input"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
        self.inputs.lock().unwrap().extend(inputs.iter().cloned());
        // Out of order on purpose: items carry their index.
        let data: Vec<Value> =
            inputs.iter().enumerate().rev().map(|(i, text)| json!({"index": i, "embedding": vector(text)})).collect();
        ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": data}))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    settings: KnowledgeSettings,
    server: MockServer,
    fake: FakeEmbedder,
}

async fn fixture(with_vectors: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    let fake = FakeEmbedder::default();
    Mock::given(method("POST")).and(path("/embeddings")).respond_with(fake.clone()).mount(&server).await;
    let settings = KnowledgeSettings {
        dir: dir.path().join("documents"),
        index_dir: dir.path().join("index"),
        top_k: 2,
        max_context_chars: 4000,
        file_timeout: Duration::from_secs(30),
        min_score: 0.0,
        embeddings: with_vectors.then(|| EmbeddingSettings {
            model: "fake/embed".into(),
            url: format!("{}/embeddings", server.uri()),
            api_key: None,
            timeout: Duration::from_secs(5),
        }),
    };
    std::fs::create_dir_all(&settings.dir).unwrap();
    write(&settings.dir, "keamanan.md", "# Keamanan akun\n\nGanti sandi secara berkala dan jangan dibagikan.");
    write(&settings.dir, "parkir.md", "# Parkir\n\nArea parkir kendaraan ada di basement gedung.");
    write(&settings.dir, "jam.md", "# Jam layanan\n\nJadwal buka Senin sampai Jumat.");
    Fixture { _dir: dir, settings, server, fake }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

async fn first_file(knowledge: &KnowledgeBase, question: &str) -> Option<String> {
    knowledge.search(question).await.first().map(|passage| passage.file.clone())
}

#[tokio::test]
async fn vectors_find_a_passage_that_shares_no_word_with_the_question() {
    let question = "kredensial saya bocor";
    let plain = fixture(false).await;
    let knowledge = KnowledgeBase::open(&plain.settings).unwrap();
    knowledge.refresh().await.unwrap();
    assert_eq!(first_file(&knowledge, question).await, None, "BM25 alone has nothing to match");

    let dense = fixture(true).await;
    let knowledge = KnowledgeBase::open(&dense.settings).unwrap();
    let report = knowledge.refresh().await.unwrap();
    let vectors = report.embeddings.clone().unwrap();
    assert_eq!((vectors.passages, vectors.embedded, vectors.error), (3, 3, None));
    assert_eq!(first_file(&knowledge, question).await.as_deref(), Some("keamanan.md"));
    assert_eq!(first_file(&knowledge, "parkir mobil di mana").await.as_deref(), Some("parkir.md"));
    assert!(dense.fake.inputs.lock().unwrap().iter().any(|input| input == question), "the question was embedded");
}

#[tokio::test]
async fn the_business_eval_is_run_with_the_same_fused_search_the_bot_uses() {
    let eval = r#"{"question": "kredensial saya bocor", "expected": "Ganti sandi secara berkala"}"#;
    for (with_vectors, recall) in [(false, 0.0), (true, 1.0)] {
        let fixture = fixture(with_vectors).await;
        write(&fixture.settings.dir, "eval.jsonl", eval);
        let knowledge = KnowledgeBase::open(&fixture.settings).unwrap();
        let report = knowledge.refresh().await.unwrap();
        let eval = report.eval.as_ref().expect("eval.jsonl was run");
        assert_eq!((eval.questions, eval.recall_at_4), (1, recall), "with vectors: {with_vectors}");
        let asked = fixture.fake.inputs.lock().unwrap().iter().any(|input| input == "kredensial saya bocor");
        assert_eq!(asked, with_vectors, "the eval question is embedded only when the index has vectors");
    }
}

#[tokio::test]
async fn a_refresh_embeds_only_passages_whose_text_changed_and_a_restart_keeps_the_vectors() {
    let fixture = fixture(true).await;
    let knowledge = KnowledgeBase::open(&fixture.settings).unwrap();
    knowledge.refresh().await.unwrap();
    fixture.fake.inputs.lock().unwrap().clear();

    write(&fixture.settings.dir, "parkir.md", "# Parkir\n\nParkir kendaraan roda dua di halaman depan.");
    let report = knowledge.refresh().await.unwrap();
    let vectors = report.embeddings.clone().unwrap();
    assert_eq!((vectors.passages, vectors.embedded), (3, 1));
    let asked = fixture.fake.inputs.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("roda dua"));

    let reopened = KnowledgeBase::open(&fixture.settings).unwrap();
    assert_eq!(reopened.refresh_if_stale().await.unwrap(), None, "the saved index and its vectors are current");
    assert_eq!(first_file(&reopened, "kredensial saya bocor").await.as_deref(), Some("keamanan.md"));
}

#[tokio::test]
async fn a_provider_down_while_indexing_leaves_bm25_answering_and_says_why() {
    let fixture = fixture(true).await;
    fixture.server.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&fixture.server).await;
    let knowledge = KnowledgeBase::open(&fixture.settings).unwrap();
    let report = knowledge.refresh().await.unwrap();
    let vectors = report.embeddings.clone().unwrap();
    assert_eq!(vectors.passages, 0);
    assert!(vectors.error.as_deref().unwrap().contains("500"), "{vectors:?}");
    assert!(report.to_string().contains("BM25 answers alone"), "{report}");
    assert_eq!(first_file(&knowledge, "jadwal buka hari apa").await.as_deref(), Some("jam.md"));
    let reopened = KnowledgeBase::open(&fixture.settings).unwrap();
    assert!(reopened.refresh_if_stale().await.unwrap().is_some(), "the next start tries the vectors again");
}

#[tokio::test]
async fn a_provider_failing_for_questions_leaves_bm25_answering() {
    let fixture = fixture(true).await;
    let knowledge = KnowledgeBase::open(&fixture.settings).unwrap();
    assert_eq!(knowledge.refresh().await.unwrap().embeddings.clone().unwrap().error, None);
    fixture.server.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(429)).mount(&fixture.server).await;
    assert_eq!(first_file(&knowledge, "area parkir dimana").await.as_deref(), Some("parkir.md"));
    knowledge.prepare(vec!["jadwal buka kapan".into()]).await;
    assert_eq!(first_file(&knowledge, "jadwal buka kapan").await.as_deref(), Some("jam.md"));
}
