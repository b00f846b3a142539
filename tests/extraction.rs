//! PDF text extraction measured on real documents: every PDF in
//! `knowledge/` and, where it exists, `../shared/kb/` (one of those is not
//! ours to ship, so it is measured only where the folder is).
//!
//! - glued words: tokens of more than 25 letters that are not dictionary
//!   words nor part of a URL or path, per token; words run together are
//!   words nobody can search for.
//! - agreement with poppler's `pdftotext`: the share of its words (as a
//!   multiset, lowercase) that our text has too. Both texts are of every
//!   line as laid out: running heads and contents pages, which the index
//!   leaves out on purpose, are in both.
//! - the heading path of a section of the Debian reference.
//!
//! `cargo test --release --test extraction -- --nocapture` prints the numbers
//! (with the release-mode extraction time) for README.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wa_ai_bridge::knowledge::{is_dictionary_word, load_passages, pdf_text};

const MAX_GLUED_RATE: f64 = 0.005;
const MIN_AGREEMENT: f64 = 0.97;
const GLUED_LETTERS: usize = 25;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The PDFs to measure: `knowledge/` always, `../shared/kb/` when present
/// (its `hostile/` subfolder is for other tests and is not walked).
fn pdfs() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("knowledge")];
    let shared = root().join("../shared/kb");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!("notice: {} is absent; only knowledge/ is measured", shared.display());
    }
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()))
        .filter(|path| path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")))
        .collect();
    // The Debian reference is in both folders: measured once.
    found.sort_by_key(|path| path.file_name().map(|name| name.to_owned()));
    found.dedup_by_key(|path| path.file_name().map(|name| name.to_owned()));
    assert!(!found.is_empty(), "no PDF to measure");
    found
}

fn is_url_or_path(token: &str) -> bool {
    token.contains('/') || token.contains("www.") || token.contains('@') || token.contains('\\')
}

/// (glued tokens, all tokens): a token is a run of letters inside a
/// whitespace-separated piece of text.
fn glued(text: &str) -> (usize, usize) {
    let (mut glued, mut all) = (0, 0);
    for piece in text.split_whitespace() {
        let url = is_url_or_path(piece);
        for word in piece.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()) {
            all += 1;
            let long = word.chars().count() > GLUED_LETTERS;
            if long && !url && !is_dictionary_word(&word.to_lowercase()) {
                glued += 1;
            }
        }
    }
    (glued, all)
}

fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    counts
}

/// The share of `reference`'s words, counted with repetition, that `ours` has.
fn agreement(ours: &str, reference: &str) -> f64 {
    let ours = word_counts(ours);
    let reference = word_counts(reference);
    let total: usize = reference.values().sum();
    let shared: usize = reference.iter().map(|(word, n)| (*n).min(ours.get(word).copied().unwrap_or(0))).sum();
    shared as f64 / total.max(1) as f64
}

/// Plain `pdftotext` (reading order, not `-layout`): the same words without
/// the column padding, which is what a multiset of words compares fairly.
fn pdftotext(path: &Path) -> Option<String> {
    let output = Command::new("pdftotext").arg("-enc").arg("UTF-8").arg(path).arg("-").output().ok()?;
    assert!(output.status.success(), "pdftotext failed on {}", path.display());
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// How long reading the PDF into passages takes (extraction, layout,
/// headings and cutting; no index).
async fn passages_time(path: &Path) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(path, dir.path().join(path.file_name().unwrap())).unwrap();
    let started = Instant::now();
    let (_, report) = load_passages(dir.path(), Duration::from_secs(300)).await.unwrap();
    assert!(report.skipped.is_empty(), "{report}");
    started.elapsed()
}

#[tokio::test]
async fn extracted_text_keeps_words_apart_and_agrees_with_poppler() {
    let have_poppler = Command::new("pdftotext").arg("-v").output().is_ok();
    if !have_poppler {
        assert!(std::env::var_os("CI").is_none(), "pdftotext is not installed: apt-get install poppler-utils");
        eprintln!("notice: pdftotext is not installed; agreement with poppler is not measured");
    }
    let mut failures = Vec::new();
    eprintln!("| PDF | glued tokens | agreement with pdftotext | time to passages |\n|---|---|---|---|");
    for path in pdfs() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = pdf_text(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let elapsed = passages_time(&path).await;
        let (glued_tokens, tokens) = glued(&text);
        let rate = glued_tokens as f64 / tokens.max(1) as f64;
        let agreed = have_poppler.then(|| pdftotext(&path)).flatten().map(|reference| agreement(&text, &reference));
        let shown = agreed.map_or("not measured".to_owned(), |a| format!("{:.2}%", a * 100.0));
        eprintln!(
            "| {name} | {:.3}% ({glued_tokens}/{tokens}) | {shown} | {:.2} s |",
            rate * 100.0,
            elapsed.as_secs_f64()
        );
        if rate >= MAX_GLUED_RATE {
            failures.push(format!("{name}: glued-token rate {:.3}%", rate * 100.0));
        }
        if agreed.is_some_and(|a| a < MIN_AGREEMENT) {
            failures.push(format!("{name}: agreement {shown} under {:.0}%", MIN_AGREEMENT * 100.0));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn debian_reference_sections_carry_their_true_heading_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("knowledge/referensi-debian.id.pdf"), dir.path().join("referensi-debian.id.pdf"))
        .unwrap();
    let (passages, report) = load_passages(dir.path(), Duration::from_secs(300)).await.unwrap();
    assert!(report.skipped.is_empty(), "{report}");
    let expected =
        "Bab 6 Aplikasi jaringan › 6.3 Server dan utilitas akses jarak jauh (SSH) › 6.3.5 Menyiapkan ssh-agent";
    let section: Vec<&str> =
        passages.iter().filter_map(|p| p.heading.as_deref()).filter(|heading| heading.contains("6.3.5 ")).collect();
    assert!(!section.is_empty(), "no passage of section 6.3.5");
    for heading in section {
        eprintln!("6.3.5 passage heading: {heading}");
        assert_eq!(heading, expected);
    }
}
