//! Sending through the WhatsApp Cloud API, and shaping replies for it.

mod cloud_api;
mod format;

pub use cloud_api::CloudApi;
pub use format::{markdown_to_whatsapp, split_for_whatsapp};

/// WhatsApp refuses text messages longer than this.
pub const MAX_MESSAGE_CHARS: usize = 4096;
