//! Fonnte (fonnte.com): an Indonesian gateway that drives a WhatsApp
//! number through WhatsApp Web. One device token sends and reads the
//! device's state; incoming messages and delivery statuses arrive as
//! unsigned webhooks, which is why their URL carries a secret.

mod device;
mod inbound;
mod media;
mod send;

pub use inbound::{parse_webhook, FonnteEvent, PayloadError};
pub use media::FonnteMedia;
pub use send::Fonnte;
