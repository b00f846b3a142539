//! Reading every document under the knowledge directory into passages,
//! several files at once, reusing cached text for files that have not
//! changed. One file failing never stops the others.

use super::chunk::{chunk_document, Chunk};
use super::document::{discover, extract, Extracted, SourceFile};
use super::manifest::Layout;
use super::report::{DocumentReport, Report, Skipped};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Called after each document with (documents done, documents in all,
/// the document's name), for progress bars.
pub type Progress = Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

/// Not a document: the business's own synonym groups (see `query`), at the
/// top of the knowledge directory.
pub(crate) const SYNONYMS_FILE: &str = "synonyms.txt";

pub(crate) struct Gathered {
    pub chunks: Vec<Chunk>,
    /// The text of [`SYNONYMS_FILE`], empty without one.
    pub synonyms: String,
    /// Content hash of every document considered, indexed or skipped.
    pub hashes: BTreeMap<String, String>,
    pub report: Report,
}

/// The documents under `dir` as passages, with the report of what was
/// indexed and what was skipped. Pass a `cache` to reuse and keep
/// extracted text between builds.
pub(crate) async fn gather(
    dir: &Path,
    cache: Option<&Layout>,
    limit: Duration,
    progress: Option<Progress>,
) -> std::io::Result<Gathered> {
    let (synonym_files, files): (Vec<_>, Vec<_>) = list(dir)?.into_iter().partition(|f| f.rel == SYNONYMS_FILE);
    let mut hashes = BTreeMap::new();
    let mut synonyms = String::new();
    for file in synonym_files {
        let bytes = tokio::fs::read(&file.path).await?;
        hashes.insert(file.rel, hex::encode(Sha256::digest(&bytes)));
        synonyms = String::from_utf8_lossy(&bytes).into_owned();
    }
    let total = files.len();
    let done = AtomicUsize::new(0);
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let outcomes: Vec<FileRead> = futures::stream::iter(files)
        .map(|file| async {
            let read = read_one(file, cache, limit).await;
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(progress) = &progress {
                progress(finished, total, &read.file.rel);
            }
            read
        })
        .buffered(parallel)
        .collect()
        .await;

    let mut gathered = Gathered { chunks: Vec::new(), synonyms, hashes, report: Report::default() };
    for FileRead { file, hash, outcome } in outcomes {
        if let Some(hash) = hash {
            gathered.hashes.insert(file.rel.clone(), hash);
        }
        match outcome {
            Err(reason) => {
                tracing::warn!(file = file.rel, reason, "knowledge document skipped");
                metrics::counter!("wa_knowledge_files_skipped_total").increment(1);
                gathered.report.skipped.push(Skipped { file: file.rel, reason });
            }
            Ok((document, from_cache)) => {
                let chunks = chunk_document(&file.rel, &document);
                let report = &mut gathered.report;
                report.files += 1;
                report.pages += document.pages.len();
                report.chunks += chunks.len();
                report.documents.push(DocumentReport {
                    file: file.rel,
                    title: document.title,
                    pages: document.pages.len(),
                    chunks: chunks.len(),
                    from_cache,
                });
                gathered.chunks.extend(chunks);
            }
        }
    }
    Ok(gathered)
}

/// A missing knowledge directory is an empty one: the bot then answers
/// from the conversation alone.
fn list(dir: &Path) -> std::io::Result<Vec<SourceFile>> {
    match discover(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(dir = %dir.display(), "the knowledge directory does not exist; no documents to index");
            Ok(Vec::new())
        }
        other => other,
    }
}

/// One document read: its content hash (when it could be read at all) and
/// its text, with whether that came from the cache, or why not.
struct FileRead {
    file: SourceFile,
    hash: Option<String>,
    outcome: Result<(Extracted, bool), String>,
}

async fn read_one(file: SourceFile, cache: Option<&Layout>, limit: Duration) -> FileRead {
    let bytes = match tokio::fs::read(&file.path).await {
        Ok(bytes) => bytes,
        Err(error) => return FileRead { file, hash: None, outcome: Err(format!("cannot read the file: {error}")) },
    };
    let hash = hex::encode(Sha256::digest(&bytes));
    if let Some(extracted) = cache.and_then(|layout| layout.cached(&hash)) {
        return FileRead { file, hash: Some(hash), outcome: Ok((extracted, true)) };
    }
    let outcome = extract(&file, bytes, limit).await;
    if let (Ok(extracted), Some(layout)) = (&outcome, cache) {
        if let Err(error) = layout.cache(&hash, extracted) {
            tracing::warn!(%error, file = file.rel, "cannot cache extracted text");
        }
    }
    FileRead { file, hash: Some(hash), outcome: outcome.map(|extracted| (extracted, false)) }
}

/// Hashes of the documents on disk now, to compare with the live index's
/// manifest without extracting anything.
pub(crate) async fn current_hashes(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut hashes = BTreeMap::new();
    for file in list(dir)? {
        if let Ok(bytes) = tokio::fs::read(&file.path).await {
            hashes.insert(file.rel, hex::encode(Sha256::digest(&bytes)));
        }
    }
    Ok(hashes)
}

/// Every passage of the documents under `dir`, without touching any cache:
/// for evaluations, benchmarks and `wa-ai-bridge search` comparisons.
pub async fn load_passages(dir: &Path, limit: Duration) -> std::io::Result<(Vec<Chunk>, Report)> {
    let gathered = gather(dir, None, limit, None).await?;
    Ok((gathered.chunks, gathered.report))
}
