//! What one person can cost. The LLM's concurrency cap is the `FairQueue`
//! inside `LlmClient`, so a person with many turns waiting cannot hold
//! everyone else's answers back.

mod fair_queue;

pub use fair_queue::{FairQueue, Permit};
