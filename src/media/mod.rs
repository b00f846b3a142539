//! What customers send besides text, made readable for the turn: voice
//! notes transcribed, documents read, photos prepared for a model that
//! sees. Files are fetched when the turn is answered, never while the
//! webhook waits, and kept content-addressed under `DATA_DIR/media`.

mod download;
mod fetch;
mod files;
mod image;
mod reader;
mod transcribe;
mod turn;

pub use download::save_response;
pub use fetch::{essence, DownloadError, Downloaded, MediaFetch, MediaLimits};
pub use files::{FileError, MediaFiles, StoredFile};
pub use image::{to_data_url, ImageError, PreparedImage};
pub use reader::{MediaReader, ReaderParts};
pub use transcribe::{audio_format, TranscribeError, Transcriber, Transcript};
pub use turn::{MediaUsage, TurnInput};
