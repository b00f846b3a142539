//! Fetching a file a customer sent through Fonnte. The webhook carries a
//! public URL (the "media id" stored with the message); no token is sent
//! with it. Because the URL comes from an unsigned webhook, it is fetched
//! only over https and never from a private, loopback or link-local
//! address, so a forged webhook cannot make the bridge read its own
//! network.

use super::inbound::kind_and_mime;
use crate::config::FonnteSettings;
use crate::media::{essence, save_response, DownloadError, Downloaded, MediaFetch, MediaFiles, MediaLimits};
use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::{redirect, StatusCode, Url};
use std::net::IpAddr;

const MAX_REDIRECTS: usize = 5;

pub struct FonnteMedia {
    http: reqwest::Client,
    /// Only when FONNTE_API_URL itself is plain http on loopback (a local
    /// stand-in in tests): then loopback http URLs are fetched too.
    local_stand_in: bool,
}

impl FonnteMedia {
    pub fn new(settings: &FonnteSettings) -> Result<Self, reqwest::Error> {
        let local_stand_in = Url::parse(&settings.api_url).is_ok_and(|api| {
            api.scheme() == "http" && host_ips(&api).is_some_and(|ips| ips.iter().all(IpAddr::is_loopback))
        });
        // Each hop of a redirect is checked like the first URL.
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if literal_allowed(attempt.url(), local_stand_in) {
                attempt.follow()
            } else {
                attempt.error("redirect to a refused address")
            }
        });
        Ok(Self { http: reqwest::Client::builder().redirect(policy).build()?, local_stand_in })
    }

    /// Refuses URLs that are not https or that name or resolve to an
    /// address inside a private network.
    async fn check(&self, url: &Url) -> Result<(), DownloadError> {
        if !literal_allowed(url, self.local_stand_in) {
            return Err(DownloadError::NotFound);
        }
        if host_ips(url).is_some() {
            return Ok(());
        }
        let Some(domain) = url.host_str() else { return Err(DownloadError::NotFound) };
        let port = url.port_or_known_default().unwrap_or(443);
        let resolved = tokio::net::lookup_host((domain, port))
            .await
            .map_err(|error| DownloadError::Network(format!("cannot resolve the media host: {error}")))?;
        for address in resolved {
            if !(public(address.ip()) || (self.local_stand_in && address.ip().is_loopback())) {
                return Err(DownloadError::NotFound);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl MediaFetch for FonnteMedia {
    async fn fetch(
        &self,
        media_id: &str,
        files: &MediaFiles,
        limits: &MediaLimits,
    ) -> Result<Downloaded, DownloadError> {
        let url = Url::parse(media_id).map_err(|_| DownloadError::NotFound)?;
        self.check(&url).await?;
        let response = self.http.get(url.clone()).timeout(limits.timeout).send().await.map_err(failed)?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => return Err(DownloadError::NotFound),
            status => return Err(DownloadError::Http(status.as_u16())),
        }
        // The extension is what Fonnte described the file as; the served
        // type decides when the URL has none.
        let extension = url.path().rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
        let served = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(essence);
        let mime = kind_and_mime(None, extension.as_deref())
            .1
            .map(str::to_owned)
            .or(served)
            .unwrap_or_else(|| "application/octet-stream".into());
        save_response(response, files, limits, mime, None).await
    }
}

fn failed(error: reqwest::Error) -> DownloadError {
    if error.is_timeout() {
        DownloadError::TimedOut
    } else {
        DownloadError::Network(error.without_url().to_string())
    }
}

/// What can be decided without DNS: the scheme, and a host written as an
/// address (or "localhost").
fn literal_allowed(url: &Url, local_stand_in: bool) -> bool {
    let scheme_ok = url.scheme() == "https" || (local_stand_in && url.scheme() == "http");
    let host_ok = match host_ips(url) {
        Some(ips) => ips.iter().all(|ip| public(*ip) || (local_stand_in && ip.is_loopback())),
        None => url.host_str().is_some(),
    };
    scheme_ok && host_ok
}

/// The addresses a URL's host names without resolving: its literal address,
/// or loopback for "localhost"; `None` for any other name.
fn host_ips(url: &Url) -> Option<Vec<IpAddr>> {
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    let local = host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    local.then(|| vec![IpAddr::from([127, 0, 0, 1])])
}

/// An address on the public internet: not loopback, private, link-local,
/// shared (100.64/10), documentation, multicast or unspecified.
fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str, local: bool) -> bool {
        literal_allowed(&Url::parse(url).unwrap(), local)
    }

    #[test]
    fn only_https_to_public_hosts_unless_the_api_itself_is_local() {
        assert!(allowed("https://api.fonnte.com/files/a.jpg", false));
        assert!(allowed("https://8.8.8.8/a.jpg", false));
        for refused in [
            "http://api.fonnte.com/a.jpg",
            "https://127.0.0.1/a.jpg",
            "https://localhost/a.jpg",
            "https://10.0.0.5/a.jpg",
            "https://192.168.1.1/a.jpg",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/a.jpg",
            "https://[::1]/a.jpg",
            "https://[fd00::1]/a.jpg",
            "https://[::ffff:127.0.0.1]/a.jpg",
            "file:///etc/passwd",
        ] {
            assert!(!allowed(refused, false), "{refused}");
        }
        assert!(allowed("http://127.0.0.1:8080/a.jpg", true));
        assert!(!allowed("http://10.0.0.5/a.jpg", true));
    }
}
