//! The admin token when none is configured: made up once, kept in
//! `DATA_DIR/admin-token` (readable by the owner only) and reused on later
//! starts, so the admin page works on first run without opening it to
//! everyone.

use crate::config::Settings;
use secrecy::SecretString;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILE: &str = "admin-token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// ADMIN_API_TOKEN is set.
    Configured,
    /// Generated or reused; the banner points here, never at the value.
    InFile(PathBuf),
    /// No token and none could be stored: the admin endpoints stay off.
    Off(String),
}

/// Fills in `settings.admin_token` when it is unset.
pub fn provide(settings: &mut Settings) -> AdminAccess {
    if settings.admin_token.is_some() {
        return AdminAccess::Configured;
    }
    let path = settings.data_dir.join(FILE);
    match read_or_create(&path) {
        Ok(token) => {
            settings.admin_token = Some(SecretString::from(token));
            AdminAccess::InFile(path)
        }
        Err(error) => {
            let reason = format!("cannot keep an admin token in {}: {error}", path.display());
            tracing::warn!("{reason}; admin endpoints are off until ADMIN_API_TOKEN is set");
            AdminAccess::Off(reason)
        }
    }
}

fn read_or_create(path: &Path) -> std::io::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.to_owned());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{token}")?;
    file.sync_all()?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn settings(data_dir: &Path) -> Settings {
        let mut settings = Settings::from_lookup(|_| None).unwrap();
        settings.data_dir = data_dir.to_owned();
        settings
    }

    #[test]
    fn a_made_up_token_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = settings(dir.path());
        assert_eq!(provide(&mut first), AdminAccess::InFile(dir.path().join(FILE)));
        let token = first.admin_token.unwrap().expose_secret().to_owned();
        assert_eq!(token.len(), 48);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut second = settings(dir.path());
        provide(&mut second);
        assert_eq!(second.admin_token.unwrap().expose_secret(), token);
    }

    #[test]
    fn a_configured_token_is_left_alone_and_no_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut configured = settings(dir.path());
        configured.admin_token = Some(SecretString::from("chosen-by-the-operator"));
        assert_eq!(provide(&mut configured), AdminAccess::Configured);
        assert!(!dir.path().join(FILE).exists());
    }

    #[test]
    fn an_unwritable_data_dir_turns_admin_off() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a directory").unwrap();
        let mut settings = settings(&blocker.join("data"));
        assert!(matches!(provide(&mut settings), AdminAccess::Off(_)));
        assert!(settings.admin_token.is_none());
    }
}
