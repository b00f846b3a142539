//! The WhatsApp numbers the server answers on: the one the single-account
//! environment variables describe (the default account) and those named in
//! `CHANNELS_FILE`.
//!
//! Each account in the file is read by the same code as the environment,
//! from the settings the file gives it: literal values under `settings`,
//! credentials under `secrets` as the name of the environment variable that
//! holds them, so the file itself can be committed.

use super::{FonnteSettings, Reader, WahaSettings, WhatsAppProvider, WhatsAppSettings};
use crate::domain::AccountName;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One number and how the server reaches it.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: AccountName,
    pub provider: WhatsAppProvider,
    /// The Cloud API's settings (read when `provider` is `CloudApi`).
    pub whatsapp: WhatsAppSettings,
    pub fonnte: FonnteSettings,
    pub waha: WahaSettings,
    /// The account's own documents; `None` answers from `KNOWLEDGE_DIR`.
    pub knowledge_dir: Option<PathBuf>,
    /// Replaces `prompts/system.md` for this account's people.
    pub system_prompt: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsFile {
    #[serde(default)]
    account: Vec<AccountEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    name: String,
    kind: String,
    knowledge: Option<PathBuf>,
    system_prompt: Option<PathBuf>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// What a file may set for each kind: plain settings, then credentials.
fn keys_of(kind: WhatsAppProvider) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        WhatsAppProvider::CloudApi => (
            &[
                "META_PHONE_NUMBER_ID",
                "META_APP_ID",
                "META_BUSINESS_ACCOUNT_ID",
                "WHATSAPP_GRAPH_BASE",
                "WHATSAPP_GRAPH_VERSION",
                "WHATSAPP_AUTH_HEADER",
                "WHATSAPP_SEND_TIMEOUT_SECONDS",
            ],
            &["META_ACCESS_TOKEN", "META_APP_SECRET", "META_WEBHOOK_VERIFY_TOKEN", "WHATSAPP_WEBHOOK_SECRET"],
        ),
        WhatsAppProvider::Fonnte => (
            &["FONNTE_API_URL", "FONNTE_ALLOWED_IPS", "FONNTE_SEND_TIMEOUT_SECONDS"],
            &["FONNTE_TOKEN", "FONNTE_WEBHOOK_SECRET"],
        ),
        WhatsAppProvider::Waha => (
            &["WAHA_URL", "WAHA_SESSION", "WAHA_GROUPS", "WAHA_SEND_TIMEOUT_SECONDS"],
            &["WAHA_API_KEY", "WAHA_WEBHOOK_HMAC_KEY"],
        ),
    }
}

fn kind_named(kind: &str) -> Option<WhatsAppProvider> {
    [WhatsAppProvider::CloudApi, WhatsAppProvider::Fonnte, WhatsAppProvider::Waha]
        .into_iter()
        .find(|provider| provider.as_str() == kind)
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// Every account, the default one first when it is configured (or when
    /// there is no file: a first run without credentials still has a
    /// number to set up). Never empty without a problem reported.
    pub(super) fn accounts(
        &mut self,
        whatsapp: &WhatsAppSettings,
        fonnte: &FonnteSettings,
        waha: &WahaSettings,
    ) -> Vec<Account> {
        let file = self.text("CHANNELS_FILE").map(PathBuf::from);
        let default_configured = whatsapp.access_token.is_some() || fonnte.token.is_some() || waha.url.is_some();
        let mut accounts = Vec::new();
        if file.is_none() || default_configured {
            accounts.push(Account {
                name: AccountName::default(),
                provider: whatsapp.provider,
                whatsapp: whatsapp.clone(),
                fonnte: fonnte.clone(),
                waha: waha.clone(),
                knowledge_dir: None,
                system_prompt: None,
            });
        }
        if let Some(file) = file {
            accounts.extend(self.accounts_file(&file));
            if accounts.is_empty() {
                self.problems.push(format!("CHANNELS_FILE {}: names no [[account]]", file.display()));
            }
        }
        self.check_routing(&accounts);
        accounts
    }

    fn accounts_file(&mut self, path: &Path) -> Vec<Account> {
        let parsed = std::fs::read_to_string(path)
            .map_err(|error| error.to_string())
            .and_then(|text| toml::from_str::<ChannelsFile>(&text).map_err(|error| error.to_string()));
        match parsed {
            Ok(file) => file.account.into_iter().filter_map(|entry| self.account(entry)).collect(),
            Err(error) => {
                self.problems.push(format!("CHANNELS_FILE {}: {}", path.display(), error.trim()));
                Vec::new()
            }
        }
    }

    fn account(&mut self, entry: AccountEntry) -> Option<Account> {
        let name = AccountName::parse(&entry.name);
        let kind = kind_named(&entry.kind);
        let shown = &entry.name;
        let mut problems = Vec::new();
        if let Err(error) = &name {
            problems.push(format!("name {shown:?}: {error}"));
        }
        let Some(kind) = kind else {
            problems.push(format!("kind must be cloud_api, fonnte or waha, got {:?}", entry.kind));
            self.problems.extend(problems.into_iter().map(|p| format!("CHANNELS_FILE account {shown:?}: {p}")));
            return None;
        };
        let values = self.account_values(kind, &entry, &mut problems);
        let lookup = |key: &str| values.get(key).cloned();
        let mut inner = Reader { lookup: &lookup, problems: Vec::new() };
        let mut whatsapp = inner.whatsapp();
        let (fonnte, waha) = (inner.fonnte(), inner.waha());
        problems.append(&mut inner.problems);
        whatsapp.provider = kind;
        let required: &[&str] = match kind {
            WhatsAppProvider::CloudApi if whatsapp.auth_header.is_some() => {
                &["META_ACCESS_TOKEN", "WHATSAPP_WEBHOOK_SECRET"]
            }
            WhatsAppProvider::CloudApi => &["META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID", "META_APP_SECRET"],
            WhatsAppProvider::Fonnte => &["FONNTE_TOKEN", "FONNTE_WEBHOOK_SECRET"],
            WhatsAppProvider::Waha => &["WAHA_URL"],
        };
        // A key the file names but could not use was reported already.
        let named = |key: &str| entry.settings.contains_key(key) || entry.secrets.contains_key(key);
        for key in required.iter().filter(|key| !values.contains_key(**key) && !named(key)) {
            problems.push(format!("{key} is required for a {} account", kind.as_str()));
        }
        if let Some(dir) = entry.knowledge.as_ref().filter(|dir| !dir.is_dir()) {
            problems.push(format!("knowledge {} is not a folder", dir.display()));
        }
        if let Some(file) = entry.system_prompt.as_ref().filter(|file| !file.is_file()) {
            problems.push(format!("system_prompt {} is not a file", file.display()));
        }
        if !problems.is_empty() {
            self.problems.extend(problems.into_iter().map(|p| format!("CHANNELS_FILE account {shown:?}: {p}")));
            return None;
        }
        Some(Account {
            name: name.ok()?,
            provider: kind,
            whatsapp,
            fonnte,
            waha,
            knowledge_dir: entry.knowledge,
            system_prompt: entry.system_prompt,
        })
    }

    /// The settings an account's reader sees: its literal values and the
    /// environment variables its secrets name. Nothing falls through to
    /// the default account's environment, so a second number can never
    /// borrow the first one's token by omission.
    fn account_values(
        &self,
        kind: WhatsAppProvider,
        entry: &AccountEntry,
        problems: &mut Vec<String>,
    ) -> HashMap<String, String> {
        let (plain, secret) = keys_of(kind);
        let mut values = HashMap::new();
        for (key, value) in &entry.settings {
            if secret.contains(&key.as_str()) {
                problems.push(format!(
                    "{key} is a credential: put it under [account.secrets] as the name of an environment variable"
                ));
                continue;
            }
            if !plain.contains(&key.as_str()) {
                problems.push(format!("{key} is not a setting of a {} account", kind.as_str()));
                continue;
            }
            let value = match value {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => value.to_string(),
                _ => {
                    problems.push(format!("{key} must be a string, number or true/false"));
                    continue;
                }
            };
            values.insert(key.clone(), value);
        }
        for (key, variable) in &entry.secrets {
            if !secret.contains(&key.as_str()) {
                problems.push(format!("{key} is not a credential of a {} account", kind.as_str()));
                continue;
            }
            match self.text(variable) {
                Some(value) => {
                    values.insert(key.clone(), value);
                }
                None => problems.push(format!("{key} names the environment variable {variable}, which is not set")),
            }
        }
        values
    }

    /// Each webhook finds its account by what it carries: the Cloud API's
    /// phone number id, the secret in the URL, WAHA's session name. Two
    /// accounts sharing one could not be told apart.
    fn check_routing(&mut self, accounts: &[Account]) {
        let mut seen: HashSet<(&str, String)> = HashSet::new();
        for account in accounts {
            let mut claims: Vec<(&str, String)> = vec![("name", account.name.label().to_owned())];
            match account.provider {
                WhatsAppProvider::CloudApi => {
                    claims.extend(account.whatsapp.phone_number_id.clone().map(|id| ("META_PHONE_NUMBER_ID", id)));
                    claims.extend(
                        account.whatsapp.webhook_secret.as_ref().map(|s| ("webhook secret", s.expose_secret().into())),
                    );
                }
                WhatsAppProvider::Fonnte => claims.extend(
                    account.fonnte.webhook_secret.as_ref().map(|s| ("webhook secret", s.expose_secret().into())),
                ),
                WhatsAppProvider::Waha => claims.push(("WAHA_SESSION", account.waha.session.clone())),
            }
            for (what, value) in claims {
                let shown = if what == "webhook secret" { String::new() } else { format!(" {value:?}") };
                if !seen.insert((what, value)) {
                    self.problems.push(format!(
                        "CHANNELS_FILE: two accounts share the {what}{shown}; each needs its own to tell their \
                         webhooks apart",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Settings, WhatsAppProvider};
    use crate::domain::AccountName;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;
    use std::io::Write;

    fn read(file: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut channels = tempfile::NamedTempFile::new().unwrap();
        channels.write_all(file.as_bytes()).unwrap();
        let mut map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("CHANNELS_FILE".into(), channels.path().display().to_string());
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    const TWO: &str = r#"
        [[account]]
        name = "cs"
        kind = "cloud_api"
        settings = { META_PHONE_NUMBER_ID = "111", WHATSAPP_SEND_TIMEOUT_SECONDS = 5 }
        secrets = { META_ACCESS_TOKEN = "CS_TOKEN", META_APP_SECRET = "CS_SECRET" }

        [[account]]
        name = "billing"
        kind = "fonnte"
        [account.secrets]
        FONNTE_TOKEN = "BILLING_TOKEN"
        FONNTE_WEBHOOK_SECRET = "BILLING_HOOK"
    "#;

    #[test]
    fn accounts_take_credentials_from_the_variables_the_file_names() {
        let env = [("CS_TOKEN", "cs-token"), ("CS_SECRET", "cs-secret"), ("BILLING_TOKEN", "b"), ("BILLING_HOOK", "h")];
        let settings = read(TWO, &env).unwrap();
        let names: Vec<&str> = settings.accounts.iter().map(|a| a.name.label()).collect();
        assert_eq!(names, ["cs", "billing"], "no default account without its own credentials");
        let cs = &settings.accounts[0];
        assert_eq!((cs.provider, cs.whatsapp.phone_number_id.as_deref()), (WhatsAppProvider::CloudApi, Some("111")));
        assert_eq!(cs.whatsapp.access_token.as_ref().unwrap().expose_secret(), "cs-token");
        assert_eq!(cs.whatsapp.send_timeout.as_secs(), 5);
        let billing = &settings.accounts[1];
        assert_eq!(billing.provider, WhatsAppProvider::Fonnte);
        assert_eq!(billing.fonnte.token.as_ref().unwrap().expose_secret(), "b");
        assert!(billing.whatsapp.access_token.is_none(), "nothing is borrowed from another account");
    }

    #[test]
    fn the_environment_account_stays_the_default_beside_the_file() {
        let env = [
            ("FONNTE_TOKEN", "env"),
            ("FONNTE_WEBHOOK_SECRET", "env-hook"),
            ("CS_TOKEN", "t"),
            ("CS_SECRET", "s"),
            ("BILLING_TOKEN", "b"),
            ("BILLING_HOOK", "h"),
        ];
        let settings = read(TWO, &env).unwrap();
        assert_eq!(settings.accounts.len(), 3);
        assert_eq!(settings.accounts[0].name, AccountName::default());
        assert_eq!(settings.accounts[0].provider, WhatsAppProvider::Fonnte);
    }

    #[test]
    fn every_mistake_in_the_file_is_reported_together() {
        let file = r#"
            [[account]]
            name = "Toko Jaya"
            kind = "fonnte"
            settings = { FONNTE_TOKEN = "literal", WAHA_URL = "http://x" }
            secrets = { FONNTE_WEBHOOK_SECRET = "UNSET_VARIABLE" }

            [[account]]
            name = "b"
            kind = "telegram"

            [[account]]
            name = "w1"
            kind = "waha"
            settings = { WAHA_URL = "http://waha:3000" }

            [[account]]
            name = "w2"
            kind = "waha"
            settings = { WAHA_URL = "http://other:3000" }
        "#;
        let problems = read(file, &[]).unwrap_err().problems;
        let expected = [
            "\"Toko Jaya\": name",
            "FONNTE_TOKEN is a credential",
            "WAHA_URL is not a setting of a fonnte account",
            "names the environment variable UNSET_VARIABLE, which is not set",
            "kind must be cloud_api, fonnte or waha, got \"telegram\"",
            "two accounts share the WAHA_SESSION \"default\"",
        ];
        for text in expected {
            assert!(problems.iter().any(|p| p.contains(text)), "{text:?} missing from {problems:#?}");
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn a_file_that_is_not_toml_or_has_unknown_keys_is_refused() {
        for (file, expected) in
            [("[[account]\n", "CHANNELS_FILE"), ("[[account]]\nname='a'\nkind='waha'\ncolor=1", "color")]
        {
            let err = read(file, &[]).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert!(read("", &[]).unwrap_err().to_string().contains("names no [[account]]"));
    }
}
