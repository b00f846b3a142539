//! The device's state from Fonnte's `POST /device`: connected or not,
//! quota left, package and expiry. Cached, so a public status page polled
//! every few seconds costs Fonnte one request per [`CACHE_FOR`].

use crate::channels::{CachedConnection, Connection, ConnectionState};
use crate::domain::mask_middle;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

const CACHE_FOR: Duration = Duration::from_secs(30);
/// The status page waits for this answer: a slow Fonnte must not hold it
/// for a whole send timeout.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct DeviceStatus {
    http: reqwest::Client,
    url: String,
    token: Option<SecretString>,
    cached: CachedConnection,
}

#[derive(Deserialize)]
struct DeviceAnswer {
    #[serde(default)]
    status: bool,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    device_status: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    quota: Option<Value>,
    #[serde(default)]
    expired: Option<Value>,
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
}

impl DeviceStatus {
    pub(super) fn new(http: reqwest::Client, url: String, token: Option<SecretString>) -> Self {
        Self { http, url, token, cached: CachedConnection::new(CACHE_FOR) }
    }

    pub(super) async fn current(&self) -> Connection {
        self.cached.get_or_ask(|| self.ask()).await
    }

    async fn ask(&self) -> Connection {
        let Some(token) = &self.token else {
            return connection(ConnectionState::Unknown, json!({ "error": "FONNTE_TOKEN is not set" }));
        };
        let answer = async {
            let request = self.http.post(&self.url).timeout(ASK_TIMEOUT);
            let response = request.header("Authorization", token.expose_secret()).send().await?;
            response.error_for_status()?.json::<DeviceAnswer>().await
        };
        match answer.await {
            Ok(answer) => read(answer),
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "Fonnte device status unavailable");
                connection(ConnectionState::Unknown, json!({ "error": "Fonnte did not answer" }))
            }
        }
    }
}

fn read(answer: DeviceAnswer) -> Connection {
    if !answer.status {
        let reason = answer.reason.unwrap_or_else(|| "refused".into());
        return connection(ConnectionState::Failed, json!({ "error": reason }));
    }
    let state = match answer.device_status.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("connect" | "connected") => ConnectionState::Connected,
        Some("disconnect" | "disconnected") => ConnectionState::Disconnected,
        _ => ConnectionState::Unknown,
    };
    let detail = json!({
        "device": answer.device.as_deref().map(|number| mask_middle(number, 4, 3)),
        "name": answer.name,
        "package": answer.package,
        "quota": answer.quota,
        "expires": answer.expired,
        "messages": answer.messages,
    });
    connection(state, detail)
}

fn connection(state: ConnectionState, detail: Value) -> Connection {
    Connection::checked_now("fonnte", state, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> DeviceAnswer {
        let path = format!("{}/tests/fixtures/fonnte/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn a_connected_device_shows_its_quota_and_expiry_with_the_number_masked() {
        let connection = read(fixture("device.json"));
        assert_eq!(connection.state, ConnectionState::Connected);
        assert_eq!(connection.detail["quota"], "78");
        assert_eq!(connection.detail["expires"], "18 November 2029");
        assert_eq!(connection.detail["package"], "Reguler");
        assert_eq!(connection.detail["device"], "6282******005");
    }

    #[test]
    fn a_disconnected_device_and_a_refused_token_are_told_apart() {
        assert_eq!(read(fixture("device_disconnected.json")).state, ConnectionState::Disconnected);
        let refused: DeviceAnswer = serde_json::from_str(r#"{"reason":"token invalid","status":false}"#).unwrap();
        let connection = read(refused);
        assert_eq!(connection.state, ConnectionState::Failed);
        assert_eq!(connection.detail["error"], "token invalid");
    }
}
