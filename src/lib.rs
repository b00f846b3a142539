//! wa-ai-bridge: WhatsApp customers answered by an LLM grounded in the
//! business's own documents.
//!
//! The modules follow the data flow: [`webhook`] (verify, parse, store) ->
//! [`buffer`] (per-person quiet window) -> [`pipeline`] (claim a turn) ->
//! [`knowledge`] (retrieve passages) -> [`prompt`] -> [`llm`] ->
//! [`outbox`] (every message out, retried until sent) -> [`channel`]/[`whatsapp`]
//! -> statuses back through [`webhook`].
//! The [`webchat`] is a second channel through the same pipeline, and
//! [`handoff`] decides whether the bot or a person of the business answers.

pub mod api;
pub mod buffer;
pub mod campaigns;
pub mod channels;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod handoff;
pub mod housekeeping;
pub mod incidents;
pub mod knowledge;
pub mod limits;
pub mod llm;
pub mod media;
pub mod outbox;
pub mod phrases;
pub mod pipeline;
pub mod prompt;
pub mod retry_after;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod unanswered;
pub mod wa_outbox;
