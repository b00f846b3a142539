//! The WhatsApp numbers the server answers on: the one the single-account
//! environment variables describe (the default account) and those named in
//! `CHANNELS_FILE`.

use super::{FonnteSettings, Reader, WahaSettings, WhatsAppProvider, WhatsAppSettings};
use crate::domain::AccountName;
use std::path::PathBuf;

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

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// Every account, the default one first; never empty.
    pub(super) fn accounts(
        &mut self,
        whatsapp: &WhatsAppSettings,
        fonnte: &FonnteSettings,
        waha: &WahaSettings,
    ) -> Vec<Account> {
        vec![Account {
            name: AccountName::default(),
            provider: whatsapp.provider,
            whatsapp: whatsapp.clone(),
            fonnte: fonnte.clone(),
            waha: waha.clone(),
            knowledge_dir: None,
            system_prompt: None,
        }]
    }
}
