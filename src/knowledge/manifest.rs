//! The on-disk layout of the knowledge index under `DATA_DIR`:
//!
//! ```text
//! knowledge-index/
//!   CURRENT.json       which generation is live, and the hashes it was built from
//!   generations/<id>/  one complete tantivy index per build
//!   cache/<sha256>.<format>.json  extracted pages of each document, by
//!                      content hash and FORMAT (another version's cache is
//!                      not read, and is pruned)
//! ```
//!
//! A build writes a fresh generation and only then replaces `CURRENT.json`
//! (write to a temporary file, then rename), so a crash mid-build leaves the
//! previous index intact.

use super::document::Extracted;
use super::report::Report;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bumped whenever extraction, chunking or the analyzer changes what an
/// index would contain, so indexes built by older versions count as stale.
pub(crate) const FORMAT: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    pub generation: String,
    pub built_at_ms: i64,
    /// Every document considered, indexed or skipped, by content hash: the
    /// index is stale when this differs from what is on disk now.
    pub hashes: BTreeMap<String, String>,
    pub report: Report,
}

pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join("generations"))?;
        std::fs::create_dir_all(self.root.join("cache"))
    }

    pub fn generation(&self, id: &str) -> PathBuf {
        self.root.join("generations").join(id)
    }

    fn current_file(&self) -> PathBuf {
        self.root.join("CURRENT.json")
    }

    /// The live manifest, if there is one this version can use.
    pub fn current(&self) -> Option<Manifest> {
        let text = std::fs::read_to_string(self.current_file()).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        (manifest.format == FORMAT).then_some(manifest)
    }

    pub fn publish(&self, manifest: &Manifest) -> std::io::Result<()> {
        let temporary = self.root.join(format!("CURRENT.json.{}", manifest.generation));
        std::fs::write(&temporary, serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?)?;
        std::fs::rename(&temporary, self.current_file())
    }

    /// Deletes every generation but `keep`: searches still running on an
    /// older one hold its files open, which Unix keeps readable until closed.
    pub fn remove_generations_except(&self, keep: &[&str]) {
        let Ok(entries) = std::fs::read_dir(self.root.join("generations")) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name.as_str()) {
                if let Err(error) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(%error, generation = name, "cannot remove an old knowledge index");
                }
            }
        }
    }

    pub fn cached(&self, hash: &str) -> Option<Extracted> {
        let bytes = std::fs::read(self.cache_file(hash)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn cache(&self, hash: &str, extracted: &Extracted) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(extracted).map_err(std::io::Error::other)?;
        let temporary = self.root.join("cache").join(format!("{hash}.tmp"));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(temporary, self.cache_file(hash))
    }

    /// Drops cached extractions of documents that are gone or changed.
    pub fn prune_cache(&self, keep: &BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(self.root.join("cache")) else { return };
        let kept: Vec<String> = keep.values().map(|hash| cache_name(hash)).collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !kept.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn cache_file(&self, hash: &str) -> PathBuf {
        self.root.join("cache").join(cache_name(hash))
    }
}

/// The format is part of the name: pages extracted by another version
/// (plain text before FORMAT 3) are extracted again, not misread.
fn cache_name(hash: &str) -> String {
    format!("{hash}.{FORMAT}.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::document::Block;

    #[test]
    fn cached_pages_of_another_format_are_neither_read_nor_kept() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        layout.create().unwrap();
        let old = r#"{"title":"Ref","paged":true,"pages":["teks lama"]}"#;
        std::fs::write(dir.path().join("cache/abc.json"), old).unwrap();
        assert!(layout.cached("abc").is_none(), "plain-text pages of FORMAT 2 are extracted again");
        let document =
            Extracted { title: "Ref".into(), paged: true, pages: vec![vec![Block::Paragraph("isi".into())]] };
        layout.cache("abc", &document).unwrap();
        assert_eq!(layout.cached("abc").map(|cached| cached.pages), Some(document.pages));
        layout.prune_cache(&BTreeMap::from([("ref.pdf".to_owned(), "abc".to_owned())]));
        let left: Vec<String> = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [format!("abc.{FORMAT}.json")]);
    }
}
