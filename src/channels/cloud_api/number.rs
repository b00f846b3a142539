//! The number's standing with Meta: its verified name, quality rating and
//! messaging tier, read from the Graph API for the status and admin pages.
//! A RED rating or a lower tier is what an operator must see before Meta
//! starts refusing messages.

use super::auth::Credentials;
use crate::channels::{Connection, ConnectionState};
use crate::domain::mask_middle;
use serde::Deserialize;
use serde_json::{json, Value};

/// The fields asked for; the Graph API refuses a request naming one it does
/// not know, so only documented ones.
const FIELDS: &str = "verified_name,display_phone_number,quality_rating,status,messaging_limit_tier";

/// The status page waits for this answer (once a minute): a slow Graph API
/// must not hold it for a whole send timeout.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Deserialize)]
struct Number {
    #[serde(default)]
    verified_name: Option<String>,
    #[serde(default)]
    display_phone_number: Option<String>,
    #[serde(default)]
    quality_rating: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    messaging_limit_tier: Option<String>,
}

/// `{root}/{phone number id}?fields=…`
pub(super) fn number_url(root: &str, phone_number_id: &str) -> String {
    format!("{root}/{phone_number_id}?fields={FIELDS}")
}

pub(super) async fn ask(http: &reqwest::Client, url: &str, credentials: &Credentials) -> Connection {
    let answer = async {
        let response = credentials.apply(http.get(url).timeout(ASK_TIMEOUT)).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.bytes().await?))
    };
    match answer.await {
        Ok((status, body)) if status.is_success() => match serde_json::from_slice::<Number>(&body) {
            Ok(number) => read(number),
            Err(_) => connection(ConnectionState::Unknown, json!({ "error": "unreadable answer from the Graph API" })),
        },
        Ok((status, body)) => {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|body| body["error"]["message"].as_str().map(|m| m.chars().take(200).collect::<String>()));
            // A token Meta no longer accepts stops every send: that is a
            // failure, not a passing doubt.
            let state = if status.as_u16() == 401 { ConnectionState::Failed } else { ConnectionState::Unknown };
            connection(state, json!({ "error": message.unwrap_or_else(|| format!("HTTP {}", status.as_u16())) }))
        }
        Err(error) => {
            tracing::warn!(error = %error.without_url(), "Graph API did not say how the number stands");
            connection(ConnectionState::Unknown, json!({ "error": "the Graph API did not answer" }))
        }
    }
}

fn read(number: Number) -> Connection {
    let state = match number.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
        // A flagged number still sends; its quality rating says how close
        // it is to being limited.
        Some("CONNECTED" | "FLAGGED") | None => ConnectionState::Connected,
        Some("PENDING" | "MIGRATED") => ConnectionState::Starting,
        Some("DISCONNECTED" | "DELETED" | "UNVERIFIED") => ConnectionState::Disconnected,
        Some("RESTRICTED" | "BANNED" | "RATE_LIMITED") => ConnectionState::Failed,
        Some(_) => ConnectionState::Unknown,
    };
    let detail = json!({
        "verifiedName": number.verified_name,
        "number": number.display_phone_number.map(|n| mask_middle(&n, 4, 3)),
        "qualityRating": number.quality_rating,
        "status": number.status,
        "messagingLimitTier": number.messaging_limit_tier,
    });
    connection(state, detail)
}

fn connection(state: ConnectionState, detail: Value) -> Connection {
    Connection::checked_now("cloud_api", state, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_json(value: Value) -> Connection {
        read(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn the_standing_is_read_with_the_number_masked() {
        let connection = read_json(json!({
            "verified_name": "Toko Maju", "display_phone_number": "+62 812-3456-7890",
            "quality_rating": "YELLOW", "status": "CONNECTED", "messaging_limit_tier": "TIER_1K", "id": "1"
        }));
        assert_eq!(connection.state, ConnectionState::Connected);
        assert_eq!(connection.detail["qualityRating"], "YELLOW");
        assert_eq!(connection.detail["messagingLimitTier"], "TIER_1K");
        assert!(!connection.detail["number"].as_str().unwrap().contains("3456"));
    }

    #[test]
    fn statuses_map_to_states() {
        for (status, state) in [
            ("FLAGGED", ConnectionState::Connected),
            ("PENDING", ConnectionState::Starting),
            ("DISCONNECTED", ConnectionState::Disconnected),
            ("RESTRICTED", ConnectionState::Failed),
            ("SOMETHING_NEW", ConnectionState::Unknown),
        ] {
            assert_eq!(read_json(json!({ "status": status })).state, state, "{status}");
        }
    }
}
