//! How requests to the Cloud API prove who we are, and where its paths
//! start: Meta's bearer token under `{base}/{version}`, or, for a provider
//! that speaks the same protocol (360dialog), its key in a header of its own
//! under `{base}` (the key already names the number).

use crate::config::WhatsAppSettings;
use reqwest::header::HeaderName;
use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
pub(super) struct Credentials {
    token: SecretString,
    header: Option<HeaderName>,
}

impl Credentials {
    pub(super) fn new(settings: &WhatsAppSettings) -> Option<Self> {
        Some(Self { token: settings.access_token.clone()?, header: settings.auth_header.clone() })
    }

    pub(super) fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.header {
            Some(name) => request.header(name.clone(), self.token.expose_secret()),
            None => request.bearer_auth(self.token.expose_secret()),
        }
    }
}

/// Whether the settings name a Cloud-API-compatible provider rather than
/// Meta itself.
pub(super) fn is_compatible_provider(settings: &WhatsAppSettings) -> bool {
    settings.auth_header.is_some()
}

/// The root that `/messages` and `/{media id}` hang from.
pub(super) fn api_root(settings: &WhatsAppSettings) -> String {
    let base = settings.graph_base.trim_end_matches('/');
    if is_compatible_provider(settings) {
        base.to_owned()
    } else {
        format!("{base}/{}", settings.graph_version)
    }
}

/// `/messages` of the number: Meta needs the number's id in the path.
pub(super) fn messages_url(settings: &WhatsAppSettings) -> Option<String> {
    let root = api_root(settings);
    if is_compatible_provider(settings) {
        return Some(format!("{root}/messages"));
    }
    settings.phone_number_id.as_ref().map(|id| format!("{root}/{id}/messages"))
}
