//! Meta's WhatsApp Cloud API, and providers that speak its protocol under
//! another address (360dialog): webhook signatures, the webhook body read
//! into domain values, sending, and fetching the media customers send.
//! The HTTP handlers that use them are in `api::webhook`.

mod auth;
mod inbound;
mod media;
mod number;
mod send;
mod signature;
mod templates;

pub use inbound::{parse_webhook, parse_webhook_by_number, template_updates, PayloadError, WebhookBatch};
pub use media::MediaDownloader;
pub use send::CloudApi;
pub use signature::{sign, verify, SignatureError};
pub use templates::{TemplateApi, TemplateApiError};
