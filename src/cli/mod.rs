//! The commands beside the server: `index` and `search`, for people
//! tuning their documents from a terminal, and `chat`.

pub mod chat;

use crate::config::Settings;
use crate::knowledge::{KnowledgeBase, KnowledgeError, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;

/// Builds the index as `POST /api/whatsapp/refresh-kb` would, with a
/// progress bar on stderr and the report on stdout.
pub async fn index(settings: &Settings, json: bool) -> ExitCode {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let shown = bar.clone();
    let progress: Progress = Arc::new(move |done, total, file| {
        shown.set_length(total as u64);
        shown.set_position(done as u64);
        shown.set_message(file.to_owned());
    });
    let knowledge = match KnowledgeBase::open_with_progress(&settings.knowledge, Some(progress)) {
        Ok(knowledge) => knowledge,
        Err(error) => return fail(&error),
    };
    let outcome = knowledge.refresh().await;
    bar.finish_and_clear();
    let report = match &outcome {
        Ok(report) => report.as_ref(),
        Err(error) => match error.as_ref() {
            KnowledgeError::NothingIndexed(report) => report,
            other => return fail(other),
        },
    };
    if json {
        println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
    } else {
        println!("{report}");
        println!("index: {}", settings.knowledge.index_dir.display());
    }
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints what a question retrieves, best first, building the index first
/// if it is missing or stale.
pub async fn search(settings: &Settings, question: &str, top: Option<usize>) -> ExitCode {
    let mut knowledge_settings = settings.knowledge.clone();
    if let Some(top) = top {
        knowledge_settings.top_k = top.max(1);
    }
    let knowledge = match KnowledgeBase::open(&knowledge_settings) {
        Ok(knowledge) => knowledge,
        Err(error) => return fail(&error),
    };
    if let Err(error) = knowledge.refresh_if_stale().await {
        if !knowledge.is_loaded() {
            return fail(error.as_ref());
        }
    }
    let passages = knowledge.search(question).await;
    if passages.is_empty() {
        println!("No passage matches this question.");
    }
    for (rank, passage) in passages.iter().enumerate() {
        let section = passage.heading.as_deref().map(|h| format!(" — {h}")).unwrap_or_default();
        println!("#{} score {:.2}  {}{section}  [{}]", rank + 1, passage.score, passage.citation(), passage.file);
        for line in passage.text.lines() {
            println!("    {line}");
        }
        println!();
    }
    ExitCode::SUCCESS
}

fn fail(error: &KnowledgeError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}
