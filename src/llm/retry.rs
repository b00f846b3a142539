//! When to try an OpenRouter request again, and how long to wait first.

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use rand::Rng;
use reqwest::header::RETRY_AFTER;
use reqwest::Response;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Retries 429 and 5xx answers, timeouts and connection failures with
/// exponential backoff and jitter, honouring `Retry-After`. A `Retry-After`
/// longer than `max_backoff` is not waited out: the caller moves on to a
/// fallback model instead of leaving the person without an answer.
#[derive(Clone, Debug)]
pub struct BackoffPolicy {
    max_retries: usize,
    attempts: usize,
    max_backoff: Duration,
}

impl BackoffPolicy {
    pub fn new(max_retries: usize, max_backoff: Duration) -> Self {
        Self { max_retries, attempts: 0, max_backoff }
    }

    fn delay(&self, result: &Result<Response, OpenAIError>) -> Option<Duration> {
        if self.attempts >= self.max_retries || !is_transient(result) {
            return None;
        }
        let retry_after = result.as_ref().ok().and_then(|r| r.headers().get(RETRY_AFTER)).and_then(|v| v.to_str().ok());
        match retry_after.and_then(crate::retry_after::parse) {
            Some(wait) if wait > self.max_backoff => None,
            Some(wait) => Some(wait),
            None => {
                let base = Duration::from_millis(250).saturating_mul(1 << self.attempts.min(10));
                let jitter = Duration::from_millis(rand::rng().random_range(0..100));
                Some((base + jitter).min(self.max_backoff))
            }
        }
    }
}

fn is_transient(result: &Result<Response, OpenAIError>) -> bool {
    match result {
        Ok(response) => response.status().as_u16() == 429 || response.status().is_server_error(),
        Err(OpenAIError::Reqwest(error)) => error.is_connect() || error.is_timeout() || error.is_request(),
        Err(_) => false,
    }
}

impl tower::retry::Policy<HttpRequestFactory, Response, OpenAIError> for BackoffPolicy {
    type Future = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

    fn retry(
        &mut self,
        _req: &mut HttpRequestFactory,
        result: &mut Result<Response, OpenAIError>,
    ) -> Option<Self::Future> {
        let delay = self.delay(result)?;
        self.attempts += 1;
        tracing::warn!(attempt = self.attempts, delay_ms = delay.as_millis() as u64, "retrying LLM request");
        Some(Box::pin(tokio::time::sleep(delay)))
    }

    fn clone_request(&mut self, req: &HttpRequestFactory) -> Option<HttpRequestFactory> {
        Some(req.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> Result<Response, OpenAIError> {
        let mut builder = http::Response::builder().status(status);
        if let Some(value) = retry_after {
            builder = builder.header("retry-after", value);
        }
        Ok(Response::from(builder.body(reqwest::Body::from("")).unwrap()))
    }

    #[test]
    fn honours_retry_after_seconds() {
        let policy = BackoffPolicy::new(3, Duration::from_secs(8));
        assert_eq!(policy.delay(&response(429, Some("2"))), Some(Duration::from_secs(2)));
    }

    #[test]
    fn gives_up_on_a_retry_after_longer_than_the_cap() {
        let policy = BackoffPolicy::new(3, Duration::from_secs(8));
        assert_eq!(policy.delay(&response(429, Some("60"))), None);
    }

    #[test]
    fn backs_off_exponentially_without_retry_after_and_stops_at_the_limit() {
        let mut policy = BackoffPolicy::new(2, Duration::from_secs(8));
        let first = policy.delay(&response(503, None)).unwrap();
        assert!(first >= Duration::from_millis(250) && first < Duration::from_millis(350), "{first:?}");
        policy.attempts = 1;
        let second = policy.delay(&response(503, None)).unwrap();
        assert!(second >= Duration::from_millis(500) && second < Duration::from_millis(600), "{second:?}");
        policy.attempts = 2;
        assert_eq!(policy.delay(&response(503, None)), None);
    }

    #[test]
    fn client_errors_are_not_retried() {
        let policy = BackoffPolicy::new(3, Duration::from_secs(8));
        assert_eq!(policy.delay(&response(400, None)), None);
        assert_eq!(policy.delay(&response(401, None)), None);
        assert_eq!(policy.delay(&response(200, None)), None);
    }
}
