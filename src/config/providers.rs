//! Which WhatsApp provider carries the number, and each provider's
//! settings. Only the Cloud API's live in `WhatsAppSettings`, which predates
//! the others.

use super::Reader;
use secrecy::SecretString;
use std::net::IpAddr;
use std::time::Duration;

pub const DEFAULT_FONNTE_API_URL: &str = "https://api.fonnte.com";

/// The provider that answers people on WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhatsAppProvider {
    /// Meta's Cloud API, or a provider speaking it (360dialog).
    CloudApi,
    Fonnte,
    Waha,
}

impl WhatsAppProvider {
    /// The name shown in status, metrics and the admin page.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudApi => "cloud_api",
            Self::Fonnte => "fonnte",
            Self::Waha => "waha",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FonnteSettings {
    /// The device token, sent as `Authorization` with every request.
    pub token: Option<SecretString>,
    pub api_url: String,
    /// The last path segment of `/webhook/fonnte/{secret}`: Fonnte does not
    /// sign its webhooks, so knowing the URL is the proof.
    pub webhook_secret: Option<SecretString>,
    /// When set, webhooks from any other address are refused.
    pub allowed_sources: Vec<IpAddr>,
    pub send_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct WahaSettings {
    /// The WAHA server, e.g. `http://localhost:3000`.
    pub url: Option<String>,
    pub api_key: Option<SecretString>,
    pub session: String,
    /// Checks `X-Webhook-Hmac` on every event when set.
    pub webhook_hmac_key: Option<SecretString>,
    /// Answer in group chats (`@g.us`) too; off, a bot in a group speaks
    /// to everyone in it.
    pub groups: bool,
    pub send_timeout: Duration,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    pub(super) fn fonnte(&mut self) -> FonnteSettings {
        let allowed_sources = self
            .text("FONNTE_ALLOWED_IPS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|ip| !ip.is_empty())
                    .filter_map(|ip| match ip.parse() {
                        Ok(ip) => Some(ip),
                        Err(_) => {
                            self.problems.push(format!("FONNTE_ALLOWED_IPS: {ip:?} is not an IP address"));
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        FonnteSettings {
            token: self.secret(&["FONNTE_TOKEN"]),
            api_url: self.url("FONNTE_API_URL", DEFAULT_FONNTE_API_URL),
            webhook_secret: self.secret(&["FONNTE_WEBHOOK_SECRET"]),
            allowed_sources,
            send_timeout: self.seconds("FONNTE_SEND_TIMEOUT_SECONDS", 20.0),
        }
    }

    pub(super) fn waha(&mut self) -> WahaSettings {
        let url = self.text("WAHA_URL").is_some().then(|| self.url("WAHA_URL", ""));
        let session = self.text("WAHA_SESSION").unwrap_or_else(|| "default".into());
        if !session.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')) {
            self.problems.push(format!("WAHA_SESSION must be letters, digits, '_' or '-', got {session:?}"));
        }
        WahaSettings {
            url,
            api_key: self.secret(&["WAHA_API_KEY"]),
            session,
            webhook_hmac_key: self.secret(&["WAHA_WEBHOOK_HMAC_KEY"]),
            groups: self.flag("WAHA_GROUPS", false),
            send_timeout: self.seconds("WAHA_SEND_TIMEOUT_SECONDS", 20.0),
        }
    }

    /// One number, one provider: the one whose credentials are set.
    pub(super) fn provider(&mut self, meta: bool, fonnte: bool, waha: bool) -> WhatsAppProvider {
        let chosen: Vec<(&str, WhatsAppProvider)> = [
            (meta, "META_ACCESS_TOKEN", WhatsAppProvider::CloudApi),
            (fonnte, "FONNTE_TOKEN", WhatsAppProvider::Fonnte),
            (waha, "WAHA_URL", WhatsAppProvider::Waha),
        ]
        .into_iter()
        .filter(|(set, ..)| *set)
        .map(|(_, name, provider)| (name, provider))
        .collect();
        if chosen.len() > 1 {
            let names: Vec<&str> = chosen.iter().map(|(name, _)| *name).collect();
            self.problems
                .push(format!("only one WhatsApp provider can be configured, but {} are set", names.join(", ")));
        }
        chosen.first().map_or(WhatsAppProvider::CloudApi, |(_, provider)| *provider)
    }
}
