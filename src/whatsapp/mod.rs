//! Sending through the WhatsApp Cloud API, shaping replies for it, and
//! fetching the media customers send.

mod cloud_api;
mod format;
mod media;

pub use cloud_api::CloudApi;
pub use format::{markdown_to_whatsapp, split_for_whatsapp};
pub use media::MediaDownloader;

/// WhatsApp refuses text messages longer than this.
pub const MAX_MESSAGE_CHARS: usize = 4096;
