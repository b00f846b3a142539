//! `WA_OUTBOX_*`: the `wa_outbox` table of the old gateway, read from its
//! MySQL/MariaDB database, so applications that write to it switch
//! gateways without a change (see `crate::wa_outbox`).

use super::Reader;
use crate::domain::{AccountName, BusinessHours};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

const DEFAULT_POLL_SECONDS: f64 = 5.0;
const DEFAULT_BATCH: u32 = 50;
const MAX_BATCH: u32 = 1000;

#[derive(Debug, Clone)]
pub struct WaOutboxSettings {
    /// `WA_OUTBOX_DATABASE_URL`, `mysql://` or `mariadb://`; it holds a
    /// password, so only `masked_url` is ever logged.
    pub database_url: SecretString,
    /// `WA_OUTBOX_TEMPLATE` (`name` or `name:language`): the utility
    /// template, with one body parameter, a row goes out as when the Cloud
    /// API would refuse its text (the person has not written for 24 hours).
    pub template: Option<(String, Option<String>)>,
    /// `WA_OUTBOX_ACCOUNT`: the number rows go out from; the default one
    /// when unset.
    pub account: AccountName,
    /// `WA_OUTBOX_POLL_SECONDS`: how long the table is left alone after a
    /// look that found less than a batch.
    pub poll_interval: Duration,
    /// `WA_OUTBOX_BATCH`: rows taken in one transaction.
    pub batch: u32,
    /// `WA_OUTBOX_HOURS`: when rows are taken; `SEND_HOURS` when unset.
    /// Holidays come from the `wa_libur` table.
    pub hours: BusinessHours,
}

impl WaOutboxSettings {
    /// The URL with its password hidden: `mysql://app:***@db:3306/sekolah`.
    pub fn masked_url(&self) -> String {
        mask_password(self.database_url.expose_secret())
    }
}

fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "***".into() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    // Query parameters may carry a password too.
    let path = path.map(|p| p.split_once('?').map_or(p, |(db, _)| db));
    match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    }
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// `None` without `WA_OUTBOX_DATABASE_URL`: the poller stays off.
    pub(super) fn wa_outbox(&mut self, send_hours: &BusinessHours) -> Option<WaOutboxSettings> {
        let url = self.text("WA_OUTBOX_DATABASE_URL")?;
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
            self.problems.push(format!(
                "WA_OUTBOX_DATABASE_URL must be a MySQL or MariaDB URL (mysql://user:password@host:3306/database \
                 or mariadb://…), got one starting {:?}",
                url.split("://").next().unwrap_or_default()
            ));
        } else if url.replacen("mariadb://", "mysql://", 1).parse::<sqlx::mysql::MySqlConnectOptions>().is_err() {
            // sqlx's reason may quote the URL, password and all.
            self.problems.push(
                "WA_OUTBOX_DATABASE_URL cannot be read as a URL (a password with @, : or / must be percent-encoded)"
                    .into(),
            );
        }
        let template = self.text("WA_OUTBOX_TEMPLATE").and_then(|raw| {
            let (name, language) = raw.split_once(':').map_or((raw.as_str(), None), |(n, l)| (n, Some(l)));
            let valid = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid(name) && language.is_none_or(valid) {
                Some((name.to_owned(), language.map(str::to_owned)))
            } else {
                self.problems.push(format!(
                    "WA_OUTBOX_TEMPLATE must be a template's name, optionally with its language \
                     (notifikasi or notifikasi:id), got {raw:?}"
                ));
                None
            }
        });
        let account = match self.text("WA_OUTBOX_ACCOUNT") {
            None => AccountName::default(),
            Some(label) => AccountName::from_label(&label).unwrap_or_else(|problem| {
                self.problems.push(format!("WA_OUTBOX_ACCOUNT {problem}"));
                AccountName::default()
            }),
        };
        let poll_interval = self.seconds("WA_OUTBOX_POLL_SECONDS", DEFAULT_POLL_SECONDS);
        let batch = self.number("WA_OUTBOX_BATCH", DEFAULT_BATCH);
        if !(1..=MAX_BATCH).contains(&batch) {
            self.problems.push(format!("WA_OUTBOX_BATCH must be 1 to {MAX_BATCH}, got {batch}"));
        }
        let hours = match self.text("WA_OUTBOX_HOURS") {
            None => send_hours.clone(),
            Some(raw) => BusinessHours::parse(&raw).unwrap_or_else(|problem| {
                self.problems.push(format!("WA_OUTBOX_HOURS {problem}"));
                send_hours.clone()
            }),
        };
        Some(WaOutboxSettings {
            database_url: SecretString::from(url),
            template,
            account,
            poll_interval,
            batch: batch.clamp(1, MAX_BATCH),
            hours,
        })
    }
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// `WA_OUTBOX_ACCOUNT` must name a configured number, known only once
    /// every account is read.
    pub(super) fn wa_outbox_account(&mut self, settings: &super::Settings) {
        let Some(wa_outbox) = &settings.gateway.wa_outbox else { return };
        if !settings.accounts.iter().any(|account| account.name == wa_outbox.account) {
            self.problems.push(format!("WA_OUTBOX_ACCOUNT names no configured number: {}", wa_outbox.account));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_password;
    use crate::config::Settings;
    use std::collections::HashMap;

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        match Settings::from_lookup(|key| map.get(key).map(|value| value.to_string())) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems,
        }
    }

    #[test]
    fn settings_are_read_with_defaults_and_checked_together() {
        let map = HashMap::from([("WA_OUTBOX_DATABASE_URL", "mariadb://app:pw@db/gateway")]);
        let settings = Settings::from_lookup(|key| map.get(key).map(|value| value.to_string())).unwrap();
        let wa_outbox = settings.gateway.wa_outbox.expect("configured");
        assert_eq!((&wa_outbox.template, wa_outbox.batch), (&None, 50));
        assert_eq!(wa_outbox.hours, settings.gateway.send_hours);
        assert_eq!(wa_outbox.masked_url(), "mariadb://app:***@db/gateway");
        assert!(!format!("{wa_outbox:?}").contains("pw@"));

        let bad = problems(&[
            ("WA_OUTBOX_DATABASE_URL", "postgres://db/gateway"),
            ("WA_OUTBOX_TEMPLATE", "notifikasi:id:x"),
            ("WA_OUTBOX_ACCOUNT", "nobody"),
            ("WA_OUTBOX_BATCH", "0"),
            ("WA_OUTBOX_HOURS", "sometimes"),
        ]);
        for setting in ["DATABASE_URL must be a MySQL", "TEMPLATE", "ACCOUNT names no", "BATCH", "WA_OUTBOX_HOURS"] {
            assert!(bad.iter().any(|problem| problem.contains(setting)), "{setting}: {bad:?}");
        }
        assert!(problems(&[("WA_OUTBOX_TEMPLATE", "x:y:z")]).is_empty(), "ignored while the poller is off");
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(mask_password("mysql://app:s3cret@db:3306/sekolah"), "mysql://app:***@db:3306/sekolah");
        assert_eq!(mask_password("mariadb://db/sekolah?password=s3cret"), "mariadb://db/sekolah");
        assert_eq!(mask_password("mysql://root@127.0.0.1:3306"), "mysql://root@127.0.0.1:3306");
    }
}
