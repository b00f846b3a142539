//! What every provider's send has in common: one request, and its answer
//! read as far as the outbox needs to decide. Whether a message may have
//! gone out is the same question for every provider, so it is answered
//! here once.

use super::SendError;
use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, StatusCode};
use std::time::Duration;

/// A provider's answer: its status, when it asks us to come back, and its
/// body (empty when a refusal's body was lost: the status still decides).
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// Sends `request` once. A request that got no answer, and a success whose
/// body was lost, are classified here; everything else is the caller's to
/// read.
pub async fn send_once(request: RequestBuilder) -> Result<Answer, SendError> {
    let response = request.send().await.map_err(unanswered)?;
    let status = response.status();
    let retry_after =
        response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(crate::retry_after::parse);
    let body = match response.text().await {
        Ok(text) => text,
        // The status line came back but the body did not: for a success
        // the message is out, and we cannot know its id.
        Err(error) if status.is_success() => {
            return Err(SendError::Ambiguous(format!("body lost: {}", error.without_url())))
        }
        Err(_) => String::new(),
    };
    Ok(Answer { status, retry_after, body })
}

/// A request that got no answer. A connection that was never made sent
/// nothing; anything later (a timeout while waiting, a connection cut) may
/// have delivered the message.
fn unanswered(error: reqwest::Error) -> SendError {
    let never_sent = error.is_connect() || error.is_builder();
    let title = format!("network: {}", error.without_url());
    if never_sent {
        SendError::Transient { code: None, title, retry_after: None, whole_channel: true }
    } else {
        SendError::Ambiguous(title)
    }
}
