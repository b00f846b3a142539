use serde::{Deserialize, Serialize};

/// Where part of an answer came from, as people are shown it: under an
/// answer in the web chat and in the admin transcripts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// "Panduan Layanan, hlm. 12"
    pub citation: String,
    /// "7. Daftar Harga › 7.1 Konsultasi"
    pub heading: Option<String>,
}
