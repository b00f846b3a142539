//! What a provider says of its link to WhatsApp, for the status page and
//! the admin page, and the cache that keeps a public page from turning
//! every poll into a request to the provider.

use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A provider's view of its link to WhatsApp.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// `cloud_api`, `fonnte`, `waha`.
    pub provider: &'static str,
    pub state: ConnectionState,
    /// Provider details (quota, expiry, the number): for the admin only.
    pub detail: serde_json::Value,
    pub checked_at_ms: i64,
}

impl Connection {
    /// What `provider` says of the number now.
    pub fn checked_now(provider: &'static str, state: ConnectionState, detail: serde_json::Value) -> Self {
        Self { provider, state, detail, checked_at_ms: crate::domain::now_ms() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    Disconnected,
    /// Linked devices (WAHA) wait for someone to scan a QR code.
    ScanQr,
    Starting,
    Stopped,
    Failed,
    /// The provider did not answer.
    Unknown,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::ScanQr => "scan_qr",
            Self::Starting => "starting",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// The provider's last answer, shared by every status request until it is
/// `ttl` old. Requests that arrive while one is asking wait for its answer
/// instead of asking too.
pub struct CachedConnection {
    ttl: Duration,
    last: Mutex<Option<(Instant, Connection)>>,
}

impl CachedConnection {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, last: Mutex::new(None) }
    }

    pub async fn get_or_ask<F: Future<Output = Connection>>(&self, ask: impl FnOnce() -> F) -> Connection {
        let mut last = self.last.lock().await;
        if let Some((at, connection)) = last.as_ref() {
            if at.elapsed() < self.ttl {
                return connection.clone();
            }
        }
        let connection = ask().await;
        *last = Some((Instant::now(), connection.clone()));
        connection
    }

    /// The provider told us the state itself (an event): it holds for a
    /// whole `ttl` from now.
    pub async fn remember(&self, connection: Connection) {
        *self.last.lock().await = Some((Instant::now(), connection));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn connection(state: ConnectionState) -> Connection {
        Connection { provider: "test", state, detail: serde_json::Value::Null, checked_at_ms: 0 }
    }

    #[tokio::test(start_paused = true)]
    async fn asks_once_per_ttl_and_takes_what_an_event_says() {
        let cache = CachedConnection::new(Duration::from_secs(30));
        let asked = AtomicUsize::new(0);
        let ask = || async {
            asked.fetch_add(1, Ordering::SeqCst);
            connection(ConnectionState::Connected)
        };
        for _ in 0..5 {
            assert_eq!(cache.get_or_ask(ask).await.state, ConnectionState::Connected);
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        cache.get_or_ask(ask).await;
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        cache.remember(connection(ConnectionState::ScanQr)).await;
        assert_eq!(cache.get_or_ask(ask).await.state, ConnectionState::ScanQr);
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }
}
