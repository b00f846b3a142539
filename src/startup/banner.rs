//! The block a person sees when the server starts: where to open the web
//! chat and the admin page, and which credentials are missing with what
//! each one unlocks. Names settings and paths, never secret values.

use super::AdminAccess;
use crate::config::{Settings, WhatsAppProvider};

pub fn render(settings: &Settings, port: u16, admin: &AdminAccess) -> String {
    let address = settings.bind_address;
    // Every interface includes this machine's loopback; a specific address
    // answers only there.
    let base = if address.is_unspecified() {
        format!("http://localhost:{port}")
    } else {
        format!("http://{}", std::net::SocketAddr::new(address, port))
    };
    let reach = match address {
        _ if address.is_unspecified() => "every interface; BIND_ADDRESS=127.0.0.1 keeps it on this machine",
        _ if address.is_loopback() => "this machine only",
        _ => "this address only",
    };
    let rule = "─".repeat(72);
    let mut lines = vec![rule.clone(), format!(" wa-ai-bridge {} is running", env!("CARGO_PKG_VERSION"))];
    lines.push(format!("   Listening    {}   ({reach})", std::net::SocketAddr::new(address, port)));
    if settings.web_chat_enabled {
        lines.push(format!("   Web chat     {base}/   (try the bot as a customer)"));
    }
    lines.push(match admin {
        AdminAccess::Configured => format!("   Admin page   {base}/admin   (token: ADMIN_API_TOKEN)"),
        AdminAccess::InFile(path) => format!("   Admin page   {base}/admin   (token: in {})", path.display()),
        AdminAccess::Off(reason) => format!("   Admin page   off: {reason}"),
    });
    lines.push(format!("   Database     {}", database(settings)));
    lines.push(format!(
        "   Documents    {} (indexed in the background; refresh with POST /api/whatsapp/refresh-kb)",
        settings.knowledge.dir.display()
    ));
    let numbers: Vec<String> =
        settings.accounts.iter().map(|account| format!("{} ({})", account.name, account.provider.as_str())).collect();
    lines.push(format!("   WhatsApp     {}", numbers.join(", ")));
    let wa = &settings.whatsapp;
    // Only the environment's Cloud API number is set up by these names;
    // other providers and CHANNELS_FILE's accounts were checked on reading.
    let meta =
        settings.accounts.first().is_some_and(|a| a.name.is_default() && a.provider == WhatsAppProvider::CloudApi);
    let mut missing = Vec::new();
    if settings.llm.api_key.is_none() {
        missing.push((
            "OPENROUTER_API_KEY",
            "answers written by an LLM (until then: passages quoted from your documents)",
        ));
    }
    if meta && (wa.app_secret.is_none() || wa.verify_token.is_none()) {
        missing
            .push(("META_APP_SECRET, META_WEBHOOK_VERIFY_TOKEN", "receiving WhatsApp messages at /webhook/whatsapp"));
    }
    if meta && (wa.access_token.is_none() || wa.phone_number_id.is_none()) {
        missing.push(("META_ACCESS_TOKEN, META_PHONE_NUMBER_ID", "sending replies on WhatsApp"));
    }
    if missing.is_empty() {
        lines.push(" Fully configured: WhatsApp and the LLM are on.".to_owned());
    } else {
        lines.push(" Not configured yet, and what each unlocks:".to_owned());
        for (names, unlocks) in missing {
            lines.push(format!("   {names}\n       -> {unlocks}"));
        }
        lines.push(" Put them in .env (see .env.example) and restart.".to_owned());
    }
    lines.push(rule);
    lines.join("\n")
}

/// The backend and, for SQLite, the file; a PostgreSQL URL may carry a
/// password, so only its host part after the `@` is shown.
fn database(settings: &Settings) -> String {
    let url = &settings.database_url;
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//").split('?').next().unwrap_or_default();
        return format!("SQLite, {path}");
    }
    let host = url.rsplit('@').next().unwrap_or_default();
    let host = host.split_once("://").map_or(host, |(_, rest)| rest);
    format!("PostgreSQL, {host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Settings::from_lookup(|key| map.get(key).map(|v| v.to_string())).unwrap()
    }

    #[test]
    fn first_run_says_where_to_go_and_what_is_missing() {
        let banner = render(&settings(&[]), 3000, &AdminAccess::InFile("data/admin-token".into()));
        assert!(banner.contains("Web chat     http://localhost:3000/"));
        assert!(banner.contains("http://localhost:3000/admin   (token: in data/admin-token)"));
        assert!(banner.contains("SQLite, ./data/wa-ai-bridge.db"));
        assert!(banner.contains("Listening    0.0.0.0:3000   (every interface;"));
        assert!(banner.contains("OPENROUTER_API_KEY\n       -> answers written by an LLM"));
        assert!(banner.contains("META_ACCESS_TOKEN, META_PHONE_NUMBER_ID"));
        assert!(banner.contains("WhatsApp     default (cloud_api)"), "{banner}");
    }

    #[test]
    fn a_fonnte_number_is_not_asked_for_metas_credentials() {
        let fonnte = settings(&[("FONNTE_TOKEN", "t"), ("FONNTE_WEBHOOK_SECRET", "s"), ("OPENROUTER_API_KEY", "k")]);
        let banner = render(&fonnte, 3000, &AdminAccess::Configured);
        assert!(banner.contains("WhatsApp     default (fonnte)"), "{banner}");
        assert!(!banner.contains("META_"), "{banner}");
        assert!(banner.contains("Fully configured"), "{banner}");
    }

    #[test]
    fn never_shows_secrets() {
        let configured = settings(&[
            ("DATABASE_URL", "postgres://app:db-pass-123@db.internal:5432/wa"),
            ("OPENROUTER_API_KEY", "sk-or-secret"),
            ("META_APP_SECRET", "app-secret"),
            ("META_WEBHOOK_VERIFY_TOKEN", "verify-secret"),
            ("META_ACCESS_TOKEN", "access-secret"),
            ("META_PHONE_NUMBER_ID", "123"),
            ("ADMIN_API_TOKEN", "admin-secret"),
            ("WEB_CHAT_ENABLED", "false"),
        ]);
        let banner = render(&configured, 8080, &AdminAccess::Configured);
        for secret in ["db-pass-123", "sk-or-secret", "app-secret", "verify-secret", "access-secret", "admin-secret"] {
            assert!(!banner.contains(secret), "{secret} leaked:\n{banner}");
        }
        assert!(banner.contains("PostgreSQL, db.internal:5432/wa"));
        assert!(banner.contains("Fully configured"));
        assert!(!banner.contains("Web chat"));
    }

    #[test]
    fn a_specific_bind_address_is_where_the_pages_are() {
        let banner = render(&settings(&[("BIND_ADDRESS", "::1")]), 3000, &AdminAccess::Configured);
        assert!(banner.contains("Listening    [::1]:3000   (this machine only)"), "{banner}");
        assert!(banner.contains("Web chat     http://[::1]:3000/"), "{banner}");
    }
}
