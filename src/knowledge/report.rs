//! What a build of the index did, in the shape `POST
//! /api/whatsapp/refresh-kb` and `wa-ai-bridge index` show it.

use super::embeddings::EmbeddingReport;
use super::eval::EvalReport;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Documents indexed.
    pub files: usize,
    pub pages: usize,
    pub chunks: usize,
    pub skipped: Vec<Skipped>,
    pub duration_ms: u64,
    pub documents: Vec<DocumentReport>,
    /// True when nothing could be indexed and the previous index stays in
    /// use.
    pub kept_previous_index: bool,
    /// Passage vectors, when `EMBEDDINGS_MODEL` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<EmbeddingReport>,
    /// How the questions of `eval.jsonl` fared against this build; `None`
    /// without that file. Boxed: most builds have none.
    #[serde(default)]
    pub eval: Option<Box<EvalReport>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentReport {
    pub file: String,
    pub title: String,
    pub pages: usize,
    pub chunks: usize,
    /// Unchanged since an earlier build, so its text came from the cache
    /// instead of being extracted again.
    pub from_cache: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for doc in &self.documents {
            let cached = if doc.from_cache { ", unchanged" } else { "" };
            writeln!(f, "  indexed  {} ({} pages, {} passages{cached})", doc.file, doc.pages, doc.chunks)?;
        }
        for skipped in &self.skipped {
            writeln!(f, "  skipped  {}: {}", skipped.file, skipped.reason)?;
        }
        if let Some(vectors) = &self.embeddings {
            match &vectors.error {
                None => writeln!(
                    f,
                    "  vectors  {}: {} passages ({} embedded now, the rest unchanged)",
                    vectors.model, vectors.passages, vectors.embedded
                )?,
                Some(error) => writeln!(f, "  vectors  {}: none, BM25 answers alone ({error})", vectors.model)?,
            }
        }
        write!(
            f,
            "{} files, {} pages, {} passages, {} skipped, in {:.1} s",
            self.files,
            self.pages,
            self.chunks,
            self.skipped.len(),
            self.duration_ms as f64 / 1000.0
        )?;
        if self.kept_previous_index {
            write!(f, "\nnothing could be indexed: the previous index stays in use")?;
        }
        if let Some(eval) = &self.eval {
            write!(f, "\n{eval}")?;
        }
        Ok(())
    }
}
