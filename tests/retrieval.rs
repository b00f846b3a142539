//! Retrieval quality over the documents shipped in `knowledge/`: for each
//! informal question of `tests/fixtures/retrieval/questions.jsonl`, does
//! the text that answers it appear in the top passages? Compared for
//! tantivy's standard analyzer and ours; fails if ours drops under the bar.
//!
//! `cargo test --release --test retrieval -- --nocapture` prints the table.

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use wa_ai_bridge::knowledge::{load_passages, Analyzer, PassageIndex};

const MIN_RECALL_AT_4: f64 = 0.85;

#[derive(Deserialize)]
struct Question {
    question: String,
    answer_substring: String,
    source_file: String,
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

#[tokio::test]
async fn the_indonesian_analyzer_finds_the_answers_to_informal_questions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let questions: Vec<Question> = std::fs::read_to_string(root.join("tests/fixtures/retrieval/questions.jsonl"))
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(questions.len() >= 40, "the evaluation needs at least 40 questions");
    let (passages, report) = load_passages(&root.join("knowledge"), Duration::from_secs(300)).await.unwrap();
    assert!(report.skipped.is_empty(), "{report}");
    for q in &questions {
        assert!(report.documents.iter().any(|d| d.file == q.source_file), "unknown source {}", q.source_file);
    }

    let standard = measure(&PassageIndex::build_in_memory(&passages, Analyzer::Standard).unwrap(), &questions);
    let indonesian = measure(&PassageIndex::build_in_memory(&passages, Analyzer::Indonesian).unwrap(), &questions);
    println!("{} questions over {} passages", questions.len(), passages.len());
    println!("| analyzer | recall@1 | recall@4 |\n|---|---|---|");
    println!("| tantivy default | {:.2} | {:.2} |", standard.at_1, standard.at_4);
    println!("| Indonesian (ours) | {:.2} | {:.2} |", indonesian.at_1, indonesian.at_4);
    println!("missed with ours:\n  {}", indonesian.misses.join("\n  "));

    assert!(indonesian.at_4 >= MIN_RECALL_AT_4, "recall@4 {:.2} is under {MIN_RECALL_AT_4}", indonesian.at_4);
    assert!(indonesian.at_4 > standard.at_4, "the Indonesian analyzer must beat the default");
}
