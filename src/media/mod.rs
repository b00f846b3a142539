//! Turning what customers send besides text into something the model can read.
pub mod files;
