//! Retrieval quality: for each informal question, does the text that
//! answers it appear in the top passages?
//!
//! Two question sets. `questions.jsonl` was written with the documents
//! shipped in `knowledge/` open, by the people who built the analyzer.
//! `unseen_questions.jsonl` was written by someone who saw only the pages
//! of the two PDFs in `../shared/kb/` (one of them is not ours to ship, so
//! that half is measured only where the folder exists). The second set is
//! the honest one: nothing was tuned to its wording.
//!
//! `cargo test --release --test retrieval -- --nocapture` prints the table.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wa_ai_bridge::knowledge::{load_passages, Analyzer, Chunk, PassageIndex};

const MIN_RECALL_AT_4: f64 = 0.85;
/// Measured 0.86 (2026-12-04, the layout-aware PDF reader, trusted
/// headings weighted 4, the vocabulary groups); the floor leaves room for two
/// questions, not for a method that stopped working.
const MIN_UNSEEN_RECALL_AT_4: f64 = 0.82;

#[derive(Deserialize)]
struct Question {
    question: String,
    answer_substring: String,
    source_file: String,
}

fn questions(name: &str) -> Vec<Question> {
    let path = root().join("tests/fixtures/retrieval").join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Case, whitespace and punctuation differ between extractors and typing;
/// only letters and digits are compared.
fn normalise(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

struct Recall {
    at_1: f64,
    at_4: f64,
    misses: Vec<String>,
}

fn measure(index: &PassageIndex, questions: &[Question]) -> Recall {
    let (mut at_1, mut at_4, mut misses) = (0, 0, Vec::new());
    for q in questions {
        let answer = normalise(&q.answer_substring);
        let found = index.search(&q.question, 4).unwrap();
        let hit =
            |p: &wa_ai_bridge::knowledge::Passage| p.file == q.source_file && normalise(&p.text).contains(&answer);
        if found.first().is_some_and(hit) {
            at_1 += 1;
        }
        if found.iter().any(hit) {
            at_4 += 1;
        } else {
            misses.push(q.question.clone());
        }
    }
    let total = questions.len() as f64;
    Recall { at_1: f64::from(at_1) / total, at_4: f64::from(at_4) / total, misses }
}

/// Every question's source must be among the indexed documents, or a typo
/// in the fixture would pass as a miss.
async fn passages_of(dir: &Path, questions: &[Question]) -> Vec<Chunk> {
    let (passages, report) = load_passages(dir, Duration::from_secs(300)).await.unwrap();
    assert!(report.skipped.is_empty(), "{report}");
    for q in questions {
        assert!(report.documents.iter().any(|d| d.file == q.source_file), "unknown source {}", q.source_file);
    }
    passages
}

/// Prints the comparison and returns our analyzer's recall.
fn compare(set: &str, passages: &[Chunk], questions: &[Question]) -> Recall {
    let standard = measure(&PassageIndex::build_in_memory(passages, Analyzer::Standard).unwrap(), questions);
    let ours = measure(&PassageIndex::build_in_memory(passages, Analyzer::Indonesian).unwrap(), questions);
    println!("\n{set}: {} questions over {} passages", questions.len(), passages.len());
    println!("| analyzer | recall@1 | recall@4 |\n|---|---|---|");
    println!("| tantivy default | {:.2} | {:.2} |", standard.at_1, standard.at_4);
    println!("| Indonesian (ours) | {:.2} | {:.2} |", ours.at_1, ours.at_4);
    println!("missed with ours:\n  {}", ours.misses.join("\n  "));
    assert!(ours.at_4 > standard.at_4, "{set}: the Indonesian analyzer must beat the default");
    ours
}

#[tokio::test]
async fn informal_questions_over_the_shipped_documents_find_their_answers() {
    let questions = questions("questions.jsonl");
    assert!(questions.len() >= 40, "the evaluation needs at least 40 questions");
    let passages = passages_of(&root().join("knowledge"), &questions).await;
    let ours = compare("shipped documents", &passages, &questions);
    assert!(ours.at_4 >= MIN_RECALL_AT_4, "recall@4 {:.2} is under {MIN_RECALL_AT_4}", ours.at_4);
}

#[tokio::test]
async fn questions_written_without_seeing_our_passages_find_their_answers() {
    let questions = questions("unseen_questions.jsonl");
    assert!(questions.len() >= 40, "the evaluation needs at least 40 questions");
    let shared = root().join("../shared/kb");
    let documents: Vec<PathBuf> = ["pedoman-pengembangan-sdm-cicalengka.pdf", "referensi-debian.id.pdf"]
        .iter()
        .map(|name| shared.join(name))
        .collect();
    if !documents.iter().all(|path| path.is_file()) {
        println!("skipped: the unseen question set needs ../shared/kb/ beside the repository");
        return;
    }
    // Only the two PDFs: the folder also holds hostile files for other tests.
    let dir = tempfile::tempdir().unwrap();
    for path in &documents {
        std::fs::copy(path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let passages = passages_of(dir.path(), &questions).await;
    let ours = compare("unseen questions", &passages, &questions);
    assert!(ours.at_4 >= MIN_UNSEEN_RECALL_AT_4, "recall@4 {:.2} is under {MIN_UNSEEN_RECALL_AT_4}", ours.at_4);
}
