//! Validated domain types. Everything that crosses a module boundary as an
//! identifier goes through one of these, so a bad value is rejected once, at
//! the edge, instead of being checked (or forgotten) everywhere.

mod account;
mod bsuid;
mod channel_kind;
mod clock;
mod conversation_key;
mod echo;
mod history;
mod hours;
mod inbound;
mod masking;
mod outbound_media;
mod person;
mod phone_number;
mod recipient;
mod source;
mod status;
mod text;
mod wa_message_id;
mod written_number;

pub use account::AccountName;
pub use bsuid::Bsuid;
pub use channel_kind::ChannelKind;
pub use clock::{now_ms, HOUR_MS};
pub use conversation_key::ConversationKey;
pub use echo::Echo;
pub use history::HistoryTurn;
pub use hours::{civil_date, BusinessHours, SendingWindow};
pub use inbound::{Attachment, AttachmentSource, InboundMessage, MessageContent};
pub use masking::mask_middle;
pub use outbound_media::{max_upload_bytes, MediaError, MediaKind, MediaSource, OutboundMedia, UploadedFile};
pub use person::PersonRef;
pub use phone_number::PhoneNumber;
pub use recipient::Recipient;
pub use source::Source;
pub use status::{DeliveryStatus, StatusUpdate};
pub use text::clean_text;
pub use wa_message_id::WaMessageId;
pub use written_number::{indonesian_number, NumberError};

/// Why a raw value was refused as a domain value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    #[error("phone number must be 7 to 15 digits, optionally after '+'")]
    PhoneNumber,
    #[error("WhatsApp message id must be 1 to 512 printable characters")]
    WaMessageId,
    #[error("business-scoped user id must look like CC.<alphanumeric>")]
    Bsuid,
    #[error("a person needs a phone number or a business-scoped user id")]
    NoIdentity,
    #[error("web chat conversation key must be 64 lowercase hex digits")]
    ConversationKey,
    #[error("account name must be 1 to 32 of a-z, 0-9, '_' or '-', and not 'default'")]
    AccountName,
}
