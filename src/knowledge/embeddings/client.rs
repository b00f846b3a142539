//! Asking an OpenAI-compatible `/embeddings` endpoint (OpenRouter's or any
//! other) for the vectors of texts.

use super::EmbeddingError;
use crate::config::EmbeddingSettings;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// Inputs per request: large enough that indexing ten thousand passages is
/// a few hundred requests, small enough that one request stays well under
/// providers' body limits.
const BATCH: usize = 64;

#[derive(Clone)]
pub(crate) struct Embedder {
    http: reqwest::Client,
    settings: EmbeddingSettings,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    index: Option<usize>,
}

impl Embedder {
    pub(crate) fn new(settings: EmbeddingSettings) -> Self {
        let http = reqwest::Client::builder().timeout(settings.timeout).build().unwrap_or_default();
        Self { http, settings }
    }

    pub(crate) fn model(&self) -> &str {
        &self.settings.model
    }

    /// One unit-length vector per text, in order.
    pub(crate) async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            vectors.extend(self.embed_batch(batch).await?);
        }
        Ok(vectors)
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut request =
            self.http.post(&self.settings.url).json(&Request { model: &self.settings.model, input: texts });
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| EmbeddingError::Unreachable(without_url(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(EmbeddingError::Refused(status.as_u16()));
        }
        let body: Response = response.json().await.map_err(|e| EmbeddingError::Malformed(without_url(e)))?;
        order(body.data, texts.len())
    }
}

/// Providers may answer out of order (each item says its index) and must
/// answer every input with vectors of one size.
fn order(items: Vec<Item>, expected: usize) -> Result<Vec<Vec<f32>>, EmbeddingError> {
    if items.len() != expected {
        return Err(EmbeddingError::Malformed(format!("{} vectors for {expected} texts", items.len())));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in items.into_iter().enumerate() {
        let at = item.index.unwrap_or(position);
        let slot = slots.get_mut(at).ok_or_else(|| EmbeddingError::Malformed(format!("index {at} out of range")))?;
        *slot = Some(unit(item.embedding));
    }
    let vectors: Vec<Vec<f32>> = slots
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| EmbeddingError::Malformed("an input got no vector".into()))?;
    let size = vectors.first().map_or(0, Vec::len);
    if size == 0 || vectors.iter().any(|v| v.len() != size) {
        return Err(EmbeddingError::Malformed("vectors of different or zero sizes".into()));
    }
    Ok(vectors)
}

/// Scaled to length one, so a dot product is the cosine.
fn unit(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// reqwest's messages name the URL, which may carry a key in its query.
fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(embedding: &[f32], index: usize) -> Item {
        Item { embedding: embedding.to_vec(), index: Some(index) }
    }

    #[test]
    fn vectors_come_back_in_input_order_and_of_unit_length() {
        let ordered = order(vec![item(&[0.0, 2.0], 1), item(&[3.0, 4.0], 0)], 2).unwrap();
        assert_eq!(ordered, [vec![0.6, 0.8], vec![0.0, 1.0]]);
    }

    #[test]
    fn short_ragged_or_misnumbered_answers_are_refused() {
        assert!(order(vec![item(&[1.0], 0)], 2).is_err());
        assert!(order(vec![item(&[1.0], 0), item(&[1.0, 0.0], 1)], 2).is_err());
        assert!(order(vec![item(&[1.0], 0), item(&[1.0], 0)], 2).is_err());
        assert!(order(vec![item(&[1.0], 5)], 1).is_err());
    }
}
