//! The retrieval step the prompt builder calls: which passages of the
//! business's documents belong in the prompt for a question.

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Where the passage comes from, as the reply should cite it
    /// ("Panduan Layanan, hlm. 12").
    pub source: String,
    pub text: String,
    pub score: f32,
}

#[async_trait]
pub trait Retriever: Send + Sync {
    async fn retrieve(&self, question: &str) -> Vec<Passage>;
}

/// Used while no documents are indexed: the bot answers from the
/// conversation alone and says so when it does not know.
pub struct NoDocuments;

#[async_trait]
impl Retriever for NoDocuments {
    async fn retrieve(&self, _question: &str) -> Vec<Passage> {
        Vec::new()
    }
}
