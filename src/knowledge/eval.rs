//! The business's own check of retrieval: `eval.jsonl` in the knowledge
//! directory lists questions and the text their answer must contain. Every
//! build runs them against the new index with the search the bot uses, so
//! a document edit that hides an answer shows up in the refresh report
//! instead of in a customer's conversation.

use super::Passage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Kept out of the index: `discover` only takes document formats.
const EVAL_FILE: &str = "eval.jsonl";
/// The passages the bot puts in a prompt by default (`KB_TOP_K`), so
/// recall@4 is what the model gets to see.
pub(crate) const DEPTH: usize = 4;

/// How the questions of `eval.jsonl` fared against one build.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    pub questions: usize,
    /// Share of questions whose expected text is in the best passage.
    pub recall_at_1: f64,
    /// Share of questions whose expected text is in one of the best four.
    pub recall_at_4: f64,
    /// The previous build's recall@4, when there was one with questions.
    #[serde(default)]
    pub previous_recall_at_4: Option<f64>,
    pub misses: Vec<Miss>,
    /// Lines that are not a usable question; they are left out, never
    /// fail the build.
    pub errors: Vec<LineError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Miss {
    pub question: String,
    pub expected: String,
    /// Where the passages that were found come from, best first.
    pub found: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LineError {
    /// 1-based, as editors number lines.
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    question: String,
    #[serde(alias = "answer_substring")]
    expected: String,
    #[serde(default)]
    source_file: Option<String>,
}

impl EvalReport {
    /// True when this build finds fewer answers than the one before it.
    pub fn regressed(&self) -> bool {
        self.previous_recall_at_4.is_some_and(|previous| self.recall_at_4 < previous)
    }
}

/// The questions of `eval.jsonl`, read before a build so that their
/// vectors can be asked for with the build's own.
#[derive(Debug)]
pub(crate) struct EvalSet {
    cases: Vec<Case>,
    errors: Vec<LineError>,
}

impl EvalSet {
    /// Reads `dir/eval.jsonl`; `None` when there is no such file.
    pub(crate) fn load(dir: &Path) -> Option<Self> {
        match std::fs::read_to_string(dir.join(EVAL_FILE)) {
            Ok(text) => {
                let (cases, errors) = parse(&text);
                Some(Self { cases, errors })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                let reason = format!("cannot read {EVAL_FILE}: {error}");
                Some(Self { cases: Vec::new(), errors: vec![LineError { line: 0, reason }] })
            }
        }
    }

    pub(crate) fn questions(&self) -> Vec<String> {
        self.cases.iter().map(|case| case.question.clone()).collect()
    }

    /// Asks every question of `search` (which returns the best passages
    /// first, as the bot would get them); `previous` is the eval of the
    /// build being replaced.
    pub(crate) fn run(
        self,
        search: impl Fn(&str) -> Result<Vec<Passage>, String>,
        previous: Option<&EvalReport>,
    ) -> EvalReport {
        let mut report = run(&self.cases, search);
        report.errors.extend(self.errors);
        report.errors.sort_by_key(|error| error.line);
        report.previous_recall_at_4 = previous.filter(|eval| eval.questions > 0).map(|eval| eval.recall_at_4);
        record(&report);
        report
    }
}

fn parse(text: &str) -> (Vec<Case>, Vec<LineError>) {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let error = |reason: String| LineError { line: number + 1, reason };
        match serde_json::from_str::<Case>(line) {
            Err(e) => errors.push(error(e.to_string())),
            Ok(case) if case.question.trim().is_empty() => errors.push(error("question is empty".into())),
            Ok(case) if normalised(&case.expected).is_empty() => {
                errors.push(error("expected has no letters or digits".into()))
            }
            Ok(case) => cases.push(case),
        }
    }
    (cases, errors)
}

fn run(cases: &[Case], search: impl Fn(&str) -> Result<Vec<Passage>, String>) -> EvalReport {
    let mut report = EvalReport { questions: cases.len(), ..EvalReport::default() };
    let (mut first, mut within) = (0, 0);
    for case in cases {
        let passages = match search(&case.question) {
            Ok(passages) => passages,
            Err(reason) => {
                report.misses.push(Miss {
                    question: case.question.clone(),
                    expected: case.expected.clone(),
                    found: vec![format!("search failed: {reason}")],
                });
                continue;
            }
        };
        let expected = normalised(&case.expected);
        let answers = |passage: &Passage| {
            case.source_file.as_deref().is_none_or(|file| passage.file == file)
                && normalised(&passage.text).contains(&expected)
        };
        match passages.iter().position(answers) {
            Some(0) => (first, within) = (first + 1, within + 1),
            Some(_) => within += 1,
            None => report.misses.push(Miss {
                question: case.question.clone(),
                expected: case.expected.clone(),
                found: passages.iter().map(found_as).collect(),
            }),
        }
    }
    if !cases.is_empty() {
        report.recall_at_1 = first as f64 / cases.len() as f64;
        report.recall_at_4 = within as f64 / cases.len() as f64;
    }
    report
}

/// "Panduan, hlm. 3 › Biaya (panduan.pdf)": enough to open the right place.
fn found_as(passage: &Passage) -> String {
    let source = passage.source();
    match source.heading {
        Some(heading) => format!("{} › {heading} ({})", source.citation, passage.file),
        None => format!("{} ({})", source.citation, passage.file),
    }
}

/// Letters and digits only, lower-cased: PDFs break lines and spaces
/// where they like, and "Rp 75.000" should match "Rp75.000".
fn normalised(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

fn record(report: &EvalReport) {
    metrics::gauge!("wa_knowledge_eval_recall", "at" => "1").set(report.recall_at_1);
    metrics::gauge!("wa_knowledge_eval_recall", "at" => "4").set(report.recall_at_4);
    if let (true, Some(previous)) = (report.regressed(), report.previous_recall_at_4) {
        metrics::counter!("wa_knowledge_eval_regressions_total").increment(1);
        tracing::warn!(
            was = previous,
            now = report.recall_at_4,
            misses = report.misses.len(),
            "the new knowledge index answers fewer evaluation questions than the previous one"
        );
    }
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "eval: {} questions, recall@1 {:.2}, recall@4 {:.2}",
            self.questions, self.recall_at_1, self.recall_at_4
        )?;
        if let Some(previous) = self.previous_recall_at_4 {
            let change = if self.regressed() { "WORSE: " } else { "" };
            write!(f, " ({change}was {previous:.2})")?;
        }
        for miss in &self.misses {
            write!(f, "\n  missed   {:?}: expected {:?}; found {}", miss.question, miss.expected, found_list(miss))?;
        }
        for error in &self.errors {
            write!(f, "\n  {EVAL_FILE} line {}: {}", error.line, error.reason)?;
        }
        Ok(())
    }
}

fn found_list(miss: &Miss) -> String {
    if miss.found.is_empty() {
        "nothing".into()
    } else {
        miss.found.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(file: &str, text: &str) -> Passage {
        Passage { title: "T".into(), file: file.into(), page: None, heading: None, text: text.into(), score: 1.0 }
    }

    #[test]
    fn malformed_lines_are_reported_by_number_and_the_rest_still_run() {
        let text = "{\"question\": \"biaya?\", \"expected\": \"Rp 75.000\"}\n\nnot json\n\
                    {\"question\": \"jam?\"}\n{\"question\": \"jam?\", \"answer_substring\": \"07.00\"}\n\
                    {\"question\": \" \", \"expected\": \"x\"}\n{\"question\": \"a\", \"expected\": \"...\"}\n";
        let (cases, errors) = parse(text);
        assert_eq!(cases.len(), 2, "the alias counts as expected");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 6, 7]);
        assert!(errors[1].reason.contains("expected"), "{errors:?}");
    }

    #[test]
    fn recall_counts_the_expected_text_normalised_within_the_top_passages() {
        let (cases, _) = parse(
            "{\"question\": \"first\", \"expected\": \"rp75.000\"}\n\
             {\"question\": \"second\", \"expected\": \"Buka pukul 07.00\"}\n\
             {\"question\": \"wrong file\", \"expected\": \"Rp 75.000\", \"source_file\": \"lain.md\"}\n\
             {\"question\": \"absent\", \"expected\": \"parkir gratis\"}\n",
        );
        let found = [passage("a.md", "Biaya Rp 75.000."), passage("a.md", "Klinik buka\npukul 07.00")];
        let report =
            run(&cases, |question| Ok(if question == "second" { found.to_vec() } else { found[..1].to_vec() }));
        assert_eq!(report.questions, 4);
        assert_eq!(report.recall_at_1, 0.25);
        assert_eq!(report.recall_at_4, 0.5);
        let missed: Vec<&str> = report.misses.iter().map(|m| m.question.as_str()).collect();
        assert_eq!(missed, ["wrong file", "absent"]);
        assert_eq!(report.misses[1].found, ["T (a.md)"]);
    }

    #[test]
    fn a_lower_recall_than_the_previous_build_is_a_regression() {
        let report =
            EvalReport { questions: 2, recall_at_4: 0.5, previous_recall_at_4: Some(1.0), ..Default::default() };
        assert!(report.regressed());
        assert!(report.to_string().contains("WORSE: was 1.00"), "{report}");
        let same = EvalReport { previous_recall_at_4: Some(0.5), ..report };
        assert!(!same.regressed());
    }
}
