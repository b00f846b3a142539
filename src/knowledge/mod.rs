//! The retrieval step the prompt builder calls: which passages of the
//! business's documents belong in the prompt for a question.
//!
//! Documents under `KNOWLEDGE_DIR` are read ([`document`]), cut into
//! passages ([`chunk`]), indexed with tantivy through an analyzer made for
//! informal Indonesian ([`analyzer`]) and searched per turn. [`KnowledgeBase`]
//! owns the live index and its rebuilds.

pub(crate) mod analyzer;
mod base;
mod chunk;
pub(crate) mod document;
mod embeddings;
mod eval;
mod gather;
mod index;
mod manifest;
mod pdf;
mod query;
mod report;

#[doc(hidden)]
pub use analyzer::is_dictionary_word;
pub use base::{KnowledgeBase, KnowledgeError, Summary};
pub use chunk::Chunk;
#[doc(hidden)]
pub use document::{pdf_text, read_customer_document};
pub use embeddings::EmbeddingReport;
pub use eval::{EvalReport, LineError, Miss};
pub use gather::{load_passages, Progress};
pub use index::{Analyzer, PassageIndex};
pub use report::{DocumentReport, Report, Skipped};

use crate::domain::Source;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The document's title, as citations name it.
    pub title: String,
    /// Path under the knowledge directory.
    pub file: String,
    pub page: Option<u32>,
    pub heading: Option<String>,
    pub text: String,
    pub score: f32,
}

impl Passage {
    /// How the reply should cite the passage: "Panduan Layanan, hlm. 12".
    pub fn citation(&self) -> String {
        match self.page {
            Some(page) => format!("{}, hlm. {page}", self.title),
            None => self.title.clone(),
        }
    }

    /// The citation and the heading path below the document's own title
    /// (which the citation already names).
    pub fn source(&self) -> Source {
        let heading = self.heading.as_deref().map(|h| h.strip_prefix(&format!("{} › ", self.title)).unwrap_or(h));
        let heading = heading.filter(|h| *h != self.title).map(str::to_owned);
        Source { citation: self.citation(), heading }
    }
}

/// The sources of `passages`, each once, in the passages' order.
pub fn unique_sources<'a>(passages: impl IntoIterator<Item = &'a Passage>) -> Vec<Source> {
    let mut sources: Vec<Source> = Vec::new();
    for source in passages.into_iter().map(Passage::source) {
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    sources
}

#[async_trait]
pub trait Retriever: Send + Sync {
    async fn retrieve(&self, question: &str) -> Vec<Passage>;

    /// Questions that are about to be asked: retrieving for them now makes
    /// `retrieve` faster when they are.
    async fn prepare(&self, questions: Vec<String>);
}
