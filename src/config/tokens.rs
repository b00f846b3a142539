//! `API_TOKENS_FILE`: tokens for applications, each with a name and the
//! scopes it holds, stored as SHA-256 digests so the file itself gives no
//! token away.

use super::Reader;
use serde::Deserialize;
use std::collections::HashSet;

/// What a token lets an application do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Send messages and read what became of them (`/api/messages`).
    Send,
    /// Everything the admin token may do.
    Admin,
}

/// One application's token.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Recorded with every message it sends.
    pub name: String,
    pub scopes: Vec<Scope>,
    pub sha256: [u8; 32],
}

impl ApiToken {
    /// The admin scope holds every other.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    scopes: Vec<String>,
    sha256: String,
}

/// Names the server writes as authors itself.
const RESERVED: [&str; 4] = ["admin", "customer", "phone", "bot"];

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    pub(super) fn api_tokens(&mut self) -> Vec<ApiToken> {
        let Some(path) = self.text("API_TOKENS_FILE") else { return Vec::new() };
        let parsed = std::fs::read_to_string(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| toml::from_str::<TokensFile>(&text).map_err(|error| error.to_string()));
        let entries = match parsed {
            Ok(file) => file.token,
            Err(error) => {
                self.problems.push(format!("API_TOKENS_FILE {path}: {}", error.trim()));
                return Vec::new();
            }
        };
        let mut names = HashSet::new();
        let mut tokens = Vec::new();
        for entry in entries {
            let mut problems = Vec::new();
            let valid_name = !entry.name.is_empty()
                && entry.name.len() <= 32
                && entry.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
            if !valid_name || RESERVED.contains(&entry.name.as_str()) {
                problems
                    .push("name must be 1 to 32 of a-z, 0-9, '_' or '-', and not admin, customer, phone or bot".into());
            } else if !names.insert(entry.name.clone()) {
                problems.push("two tokens have this name".into());
            }
            let scopes: Vec<Scope> = entry
                .scopes
                .iter()
                .filter_map(|scope| match scope.as_str() {
                    "send" => Some(Scope::Send),
                    "admin" => Some(Scope::Admin),
                    other => {
                        problems.push(format!("unknown scope {other:?} (send, admin)"));
                        None
                    }
                })
                .collect();
            if entry.scopes.is_empty() {
                problems.push("scopes must name at least one of send, admin".into());
            }
            let digest = hex::decode(entry.sha256.trim()).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            if digest.is_none() {
                problems.push(
                    "sha256 must be the 64 hex digits of the token's SHA-256 (printf %s TOKEN | sha256sum)".into(),
                );
            }
            match (problems.is_empty(), digest) {
                (true, Some(sha256)) => tokens.push(ApiToken { name: entry.name, scopes, sha256 }),
                _ => self
                    .problems
                    .extend(problems.into_iter().map(|p| format!("API_TOKENS_FILE token {:?}: {p}", entry.name))),
            }
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;
    use crate::config::{ConfigError, Settings};
    use std::collections::HashMap;
    use std::io::Write;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn read(file: &str) -> Result<Settings, ConfigError> {
        let mut tokens = tempfile::NamedTempFile::new().unwrap();
        tokens.write_all(file.as_bytes()).unwrap();
        let map: HashMap<String, String> = [("API_TOKENS_FILE".to_owned(), tokens.path().display().to_string())].into();
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn tokens_are_read_with_their_scopes_and_digest() {
        let settings = read(&format!(
            "[[token]]\nname = \"simrs\"\nscopes = [\"send\"]\nsha256 = \"{DIGEST}\"\n\n\
             [[token]]\nname = \"ops\"\nscopes = [\"admin\"]\nsha256 = \"{}\"\n",
            DIGEST.to_uppercase()
        ))
        .unwrap();
        let [simrs, ops] = &settings.api_tokens[..] else { panic!("two tokens") };
        assert_eq!((simrs.name.as_str(), simrs.scopes.as_slice()), ("simrs", &[Scope::Send][..]));
        assert_eq!(hex::encode(simrs.sha256), DIGEST, "the digest of \"test\"");
        assert!(simrs.allows(Scope::Send) && !simrs.allows(Scope::Admin));
        assert!(ops.allows(Scope::Send) && ops.allows(Scope::Admin), "admin holds every scope");
    }

    #[test]
    fn every_mistake_is_reported_together() {
        let file = format!(
            "[[token]]\nname = \"admin\"\nscopes = [\"send\"]\nsha256 = \"{DIGEST}\"\n\n\
             [[token]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"not-hex\"\n\n\
             [[token]]\nname = \"b\"\nscopes = []\nsha256 = \"{DIGEST}\"\n"
        );
        let problems = read(&file).unwrap_err().problems;
        for expected in ["\"admin\": name", "unknown scope \"read\"", "\"a\": sha256 must", "\"b\": scopes must"] {
            assert!(problems.iter().any(|p| p.contains(expected)), "{expected:?} missing from {problems:#?}");
        }
        assert!(read("[[token]]\nname = 1").unwrap_err().to_string().contains("API_TOKENS_FILE"));
    }
}
