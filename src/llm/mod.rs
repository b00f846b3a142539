//! The LLM stage: one chat completion through OpenRouter (any
//! OpenAI-compatible endpoint), with retries, a per-request timeout and
//! fallback models. It knows nothing about WhatsApp.

mod retry;

use crate::config::LlmSettings;
use crate::limits::FairQueue;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::Client;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use retry::BackoffPolicy;

/// HTTP/2 connections the requests are spread over. One connection carries
/// only as many requests at once as the server allows (100–256 streams on
/// common front ends), so a burst of answers beyond that would wait for
/// earlier answers to finish; and each connection encrypts on one thread at
/// a time, so several let the cores share a burst.
pub const CONNECTIONS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: Content,
}

impl ChatMessage {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self { role, content: Content::Text(text.into()) }
    }
}

/// A message's content: words alone, or words and images in the order the
/// person sent them (OpenAI's content parts, which OpenRouter passes to
/// every vision model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl Content {
    /// The words, without the images.
    pub fn words(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    Part::Text { text } => Some(text.as_str()),
                    Part::ImageUrl { .. } => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    pub fn has_images(&self) -> bool {
        matches!(self, Content::Parts(parts) if parts.iter().any(|part| matches!(part, Part::ImageUrl { .. })))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUrl {
    /// A `data:image/jpeg;base64,...` URL: the model never fetches anything
    /// from us.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// The model that answered: with fallbacks, not always the one asked for.
    pub model: String,
    pub latency: Duration,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    /// The answer stopped at `LLM_MAX_TOKENS`; it is sent as it is.
    pub cut_short: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no OPENROUTER_API_KEY configured")]
    NotConfigured,
    #[error("LLM request failed: {0}")]
    Request(#[from] OpenAIError),
    #[error("LLM request timed out after {0:?}")]
    Timeout(Duration),
    #[error("LLM answered with no text")]
    Empty,
}

#[derive(Clone)]
pub struct LlmClient {
    /// One client per connection; empty without an API key.
    clients: Arc<[Client<OpenAIConfig>]>,
    /// Which client the next request uses, round robin.
    next: Arc<AtomicUsize>,
    model: String,
    fallbacks: Vec<String>,
    /// `VISION_MODEL`: asked instead of `model` when a turn carries images.
    vision_model: Option<String>,
    overall_timeout: Duration,
    max_tokens: u32,
    /// `LLM_MAX_CONCURRENT` requests at once, the rest served person by person.
    queue: Arc<FairQueue>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    /// OpenRouter tries these in order when the first is down or rate
    /// limited; other OpenAI-compatible servers ignore the field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    models: Vec<&'a str>,
    messages: &'a [ChatMessage],
    max_tokens: u32,
    stream: bool,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
}

impl LlmClient {
    pub fn new(settings: &LlmSettings) -> Result<Self, reqwest::Error> {
        let clients = match &settings.api_key {
            None => Vec::new(),
            Some(key) => {
                let config = OpenAIConfig::new().with_api_base(&settings.api_base).with_api_key(key.expose_secret());
                // Header values are our own ASCII settings; a bad one only
                // loses attribution on OpenRouter's side.
                let config = config.clone().with_header("HTTP-Referer", settings.site_url.as_str()).unwrap_or(config);
                let config = config.clone().with_header("X-Title", settings.app_title.as_str()).unwrap_or(config);
                let mut clients = Vec::with_capacity(CONNECTIONS);
                for _ in 0..CONNECTIONS {
                    // A client of its own is a connection pool of its own.
                    let http = reqwest::Client::builder().timeout(settings.timeout).build()?;
                    let service = tower::ServiceBuilder::new()
                        .retry(BackoffPolicy::new(settings.max_retries, settings.max_backoff))
                        .service(ReqwestService::new(http));
                    clients.push(Client::with_config(config.clone()).with_http_service(service));
                }
                clients
            }
        };
        let attempts = (settings.max_retries as u32 + 1) * (settings.fallback_models.len() as u32 + 1);
        Ok(Self {
            clients: clients.into(),
            next: Arc::new(AtomicUsize::new(0)),
            model: settings.model.clone(),
            fallbacks: settings.fallback_models.clone(),
            vision_model: settings.vision_model.clone(),
            overall_timeout: (settings.timeout + settings.max_backoff) * attempts,
            max_tokens: settings.max_tokens,
            queue: FairQueue::new(settings.max_concurrent),
        })
    }

    pub fn primary_model(&self) -> &str {
        &self.model
    }

    /// Requests waiting for one of the `LLM_MAX_CONCURRENT` slots.
    pub fn queued(&self) -> usize {
        self.queue.queued()
    }

    /// Asks the primary model (with OpenRouter's own fallback list), then
    /// each fallback model in turn, returning the first usable answer or
    /// the last error. Waits first for a slot, in line behind `person`'s
    /// earlier requests but not behind other people's.
    pub async fn complete(&self, person: i64, messages: &[ChatMessage]) -> Result<Completion, LlmError> {
        if self.clients.is_empty() {
            return Err(LlmError::NotConfigured);
        }
        let _slot = self.queue.acquire(person).await;
        let client = &self.clients[self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len()];
        let started = Instant::now();
        let mut last_error = LlmError::Empty;
        // A vision model of its own answers turns with images, alone: the
        // text models behind it could not see them.
        let with_images = messages.iter().any(|m| m.content.has_images());
        let candidates: Vec<&String> = match &self.vision_model {
            Some(vision) if with_images => vec![vision],
            _ => std::iter::once(&self.model).chain(&self.fallbacks).collect(),
        };
        for (position, model) in candidates.into_iter().enumerate() {
            let models = if position == 0 && *model == self.model { self.fallback_list() } else { Vec::new() };
            let request = ChatRequest { model, models, messages, max_tokens: self.max_tokens, stream: false };
            let attempt = tokio::time::timeout(self.overall_timeout, client.chat().create_byot(&request)).await;
            match attempt {
                Ok(Ok(response)) => match into_completion(response, model, started.elapsed()) {
                    Ok(completion) => return Ok(completion),
                    Err(error) => last_error = error,
                },
                Ok(Err(error)) => last_error = LlmError::Request(error),
                Err(_) => last_error = LlmError::Timeout(self.overall_timeout),
            }
            tracing::warn!(model = %model, error = %last_error, "LLM model failed");
        }
        Err(last_error)
    }

    fn fallback_list(&self) -> Vec<&str> {
        if self.fallbacks.is_empty() {
            return Vec::new();
        }
        std::iter::once(self.model.as_str()).chain(self.fallbacks.iter().map(String::as_str)).collect()
    }
}

fn into_completion(response: ChatResponse, asked: &str, latency: Duration) -> Result<Completion, LlmError> {
    let (text, finish_reason) = response
        .choices
        .into_iter()
        .find_map(|choice| Some((choice.message.content?.trim().to_owned(), choice.finish_reason)))
        .filter(|(text, _)| !text.is_empty())
        .ok_or(LlmError::Empty)?;
    Ok(Completion {
        text,
        model: response.model.unwrap_or_else(|| asked.to_owned()),
        latency,
        prompt_tokens: response.usage.as_ref().and_then(|u| u.prompt_tokens),
        completion_tokens: response.usage.as_ref().and_then(|u| u.completion_tokens),
        cut_short: finish_reason.as_deref() == Some("length"),
    })
}
