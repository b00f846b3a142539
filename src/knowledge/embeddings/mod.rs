//! Optional dense retrieval. With `EMBEDDINGS_MODEL` set, every passage gets
//! a vector when the index is built, each question gets one when it is
//! asked, and the passages nearest the question join BM25's by reciprocal
//! rank fusion. A question worded with none of the document's words can
//! still find it. Without the setting, or when the provider fails, BM25
//! answers alone, as it always could.

mod client;
mod vectors;

pub(crate) use client::Embedder;
pub(crate) use vectors::Vectors;

use super::chunk::Chunk;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The constant of reciprocal rank fusion (Cormack, Clarke and Büttcher):
/// large enough that being first in one list is not worth more than being
/// near the top of both.
const RRF_K: f32 = 60.0;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error("the embeddings endpoint cannot be reached: {0}")]
    Unreachable(String),
    #[error("the embeddings endpoint answered HTTP {0}")]
    Refused(u16),
    #[error("the embeddings endpoint answered something unusable: {0}")]
    Malformed(String),
}

/// What a build did about vectors, for the refresh report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbeddingReport {
    pub model: String,
    /// Passages with a vector.
    pub passages: usize,
    /// Of those, vectors asked for in this build (the rest were reused).
    pub embedded: usize,
    /// Why this index has no vectors (BM25 alone answers), if it failed.
    pub error: Option<String>,
}

/// The text a passage's vector is made from: its section and its words.
fn embedded_text(chunk: &Chunk) -> String {
    match &chunk.heading {
        Some(heading) => format!("{heading}\n{}", chunk.text),
        None => chunk.text.clone(),
    }
}

/// Vectors for `chunks`, reusing those of `previous` made by the same
/// model from the same text.
pub(crate) async fn build(
    embedder: &Embedder,
    chunks: &[Chunk],
    previous: Option<&Vectors>,
) -> (Option<Vectors>, EmbeddingReport) {
    let texts: Vec<String> = chunks.iter().map(embedded_text).collect();
    let keys: Vec<vectors::TextKey> = texts.iter().map(|text| Sha256::digest(text.as_bytes()).into()).collect();
    let reusable: HashMap<_, &[f32]> =
        previous.filter(|p| p.model == embedder.model()).map(Vectors::by_key).unwrap_or_default();
    let missing: Vec<String> =
        texts.iter().zip(&keys).filter(|(_, key)| !reusable.contains_key(*key)).map(|(text, _)| text.clone()).collect();
    let mut report =
        EmbeddingReport { model: embedder.model().to_owned(), passages: 0, embedded: missing.len(), error: None };
    let fresh = match embedder.embed(&missing).await {
        Ok(fresh) => fresh,
        Err(error) => {
            tracing::warn!(%error, "no passage vectors for this index; BM25 answers alone");
            metrics::counter!("wa_knowledge_embedding_errors_total", "when" => "index").increment(1);
            report.embedded = 0;
            report.error = Some(error.to_string());
            return (None, report);
        }
    };
    let mut fresh = fresh.into_iter();
    let all: Vec<Vec<f32>> = keys
        .iter()
        .map(|key| reusable.get(key).map(|v| v.to_vec()).or_else(|| fresh.next()).unwrap_or_default())
        .collect();
    let sizes_agree = all.windows(2).all(|pair| pair[0].len() == pair[1].len());
    if !sizes_agree {
        report.embedded = 0;
        report.error = Some("the model's vectors changed size; rebuild from scratch".into());
        return (None, report);
    }
    report.passages = all.len();
    (Some(Vectors::new(embedder.model().to_owned(), keys, all)), report)
}

/// Reciprocal rank fusion of ranked lists of passage numbers: the best
/// `limit`, best first.
pub(crate) fn fuse(lists: &[&[u32]], limit: usize) -> Vec<u32> {
    let mut scores: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        for (rank, passage) in list.iter().enumerate() {
            *scores.entry(*passage).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut ranked: Vec<(u32, f32)> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(limit).map(|(passage, _)| passage).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_prefers_passages_both_lists_rank_well() {
        assert_eq!(fuse(&[&[1, 2, 3], &[2, 9, 3]], 3), [2, 3, 1]);
        assert_eq!(fuse(&[&[5, 6], &[]], 5), [5, 6], "one list alone keeps its order");
        assert!(fuse(&[&[1]], 0).is_empty());
    }
}
