//! The live knowledge base: the index questions are answered from, and the
//! rebuilds that replace it. A rebuild writes a new index beside the live
//! one and swaps it in whole, so a question is always answered from one
//! complete index, old or new.

use super::gather::{current_hashes, gather, Progress};
use super::index::PassageIndex;
use super::manifest::{Layout, Manifest, FORMAT};
use super::report::Report;
use super::{Passage, Retriever};
use crate::config::KnowledgeSettings;
use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a reply waits for the very first index before it goes out
/// without passages.
const FIRST_INDEX_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("cannot use the knowledge directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write or open the index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("no document could be indexed; the previous index stays in use")]
    NothingIndexed(Report),
    #[error("the index build stopped unexpectedly")]
    Interrupted,
}

type Rebuild = Shared<BoxFuture<'static, Result<Arc<Report>, Arc<KnowledgeError>>>>;

/// The rebuild in progress and the documents (by hash) it started from.
#[derive(Clone)]
struct Running {
    from: BTreeMap<String, String>,
    result: Rebuild,
}

/// The live index: the report of the build that made it, and when.
#[derive(Debug, Clone)]
pub struct Summary {
    pub report: Report,
    pub built_at_ms: i64,
    pub passages: u64,
}

#[derive(Clone)]
pub struct KnowledgeBase {
    inner: Arc<Inner>,
}

struct Inner {
    settings: KnowledgeSettings,
    layout: Layout,
    live: watch::Sender<Option<Arc<Live>>>,
    rebuild: Mutex<Option<Running>>,
    progress: Option<Progress>,
}

struct Live {
    index: PassageIndex,
    manifest: Manifest,
}

impl KnowledgeBase {
    /// Opens the index built by an earlier run, if any. Nothing is built
    /// here: call [`KnowledgeBase::refresh_if_stale`] for that.
    pub fn open(settings: &KnowledgeSettings) -> Result<Self, KnowledgeError> {
        Self::open_with_progress(settings, None)
    }

    pub fn open_with_progress(
        settings: &KnowledgeSettings,
        progress: Option<Progress>,
    ) -> Result<Self, KnowledgeError> {
        let layout = Layout::new(&settings.index_dir);
        layout.create()?;
        let live =
            layout.current().and_then(|manifest| match PassageIndex::open(&layout.generation(&manifest.generation)) {
                Ok(index) => Some(Arc::new(Live { index, manifest })),
                Err(error) => {
                    tracing::warn!(%error, "the saved knowledge index cannot be opened; it will be rebuilt");
                    None
                }
            });
        if let Some(live) = &live {
            metrics::gauge!("wa_knowledge_passages").set(live.index.passage_count() as f64);
        }
        let (live, _) = watch::channel(live);
        let inner = Inner { settings: settings.clone(), layout, live, rebuild: Mutex::new(None), progress };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn is_loaded(&self) -> bool {
        self.inner.live.borrow().is_some()
    }

    /// Rebuilds when the documents on disk differ from those the live index
    /// was built from (or there is no index); returns the report of the
    /// build, or `None` when the index was already current.
    pub async fn refresh_if_stale(&self) -> Result<Option<Arc<Report>>, Arc<KnowledgeError>> {
        let on_disk = current_hashes(&self.inner.settings.dir).await.map_err(|e| Arc::new(e.into()))?;
        let current = self.inner.live.borrow().as_ref().map(|live| live.manifest.hashes == on_disk);
        if current == Some(true) {
            return Ok(None);
        }
        self.refresh().await.map(Some)
    }

    /// Rebuilds the index from the documents on disk and swaps it in.
    /// Callers that arrive while a rebuild of the same documents runs share
    /// its result instead of starting another. If the documents changed
    /// since that rebuild began, the caller waits for it and starts a fresh
    /// one, so a report never predates the call. A rebuild finishes even if
    /// every caller leaves.
    pub async fn refresh(&self) -> Result<Arc<Report>, Arc<KnowledgeError>> {
        loop {
            let on_disk = current_hashes(&self.inner.settings.dir).await.map_err(|e| Arc::new(e.into()))?;
            let running = self.inner.start_unless_running(on_disk.clone());
            if running.from == on_disk {
                return running.result.await;
            }
            let _ = running.result.await;
        }
    }

    /// What the live index holds, for status pages.
    pub fn summary(&self) -> Option<Summary> {
        self.inner.live.borrow().as_ref().map(|live| Summary {
            report: live.manifest.report.clone(),
            built_at_ms: live.manifest.built_at_ms,
            passages: live.index.passage_count(),
        })
    }

    /// True while a rebuild runs.
    pub fn is_refreshing(&self) -> bool {
        self.inner.rebuild.lock().map(|slot| slot.is_some()).unwrap_or(false)
    }

    /// The passages for `question` within the configured count and
    /// character budget. Waits for the first index if none exists yet.
    pub async fn search(&self, question: &str) -> Vec<Passage> {
        let Some(live) = self.live_or_wait().await else { return Vec::new() };
        let (top_k, budget) = (self.inner.settings.top_k, self.inner.settings.max_context_chars);
        let started = Instant::now();
        // Runs here, not on the blocking pool: a search takes tens to a few
        // hundred microseconds on an index the page cache holds, less than
        // a hand-over costs, and when a thousand windows end together the
        // pool would start hundreds of threads for them.
        let found = live.index.search(question, top_k);
        metrics::histogram!("wa_knowledge_retrieval_seconds").record(started.elapsed().as_secs_f64());
        match found {
            Ok(passages) => within_budget(passages, budget),
            Err(error) => {
                tracing::error!(%error, "knowledge search failed");
                Vec::new()
            }
        }
    }

    async fn live_or_wait(&self) -> Option<Arc<Live>> {
        let mut watcher = self.inner.live.subscribe();
        let waited = tokio::time::timeout(FIRST_INDEX_WAIT, watcher.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(live)) => live.clone(),
            _ => {
                tracing::warn!("no knowledge index yet; answering without documents");
                None
            }
        }
    }
}

impl Inner {
    /// The running rebuild, or a new one started from `on_disk`.
    fn start_unless_running(self: &Arc<Self>, on_disk: BTreeMap<String, String>) -> Running {
        let mut slot = self.rebuild.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(running) = slot.as_ref() {
            return running.clone();
        }
        let inner = self.clone();
        let task = tokio::spawn(async move {
            let outcome = inner.rebuild().await.map(Arc::new).map_err(Arc::new);
            *inner.rebuild.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
            outcome
        });
        let result =
            async move { task.await.unwrap_or_else(|_| Err(Arc::new(KnowledgeError::Interrupted))) }.boxed().shared();
        let running = Running { from: on_disk, result };
        *slot = Some(running.clone());
        running
    }

    async fn rebuild(&self) -> Result<Report, KnowledgeError> {
        let started = Instant::now();
        let outcome = self.build().await;
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("wa_knowledge_refresh_seconds").record(seconds);
        let label = match &outcome {
            Ok(_) => "ok",
            Err(KnowledgeError::NothingIndexed(_)) => "nothing_indexed",
            Err(_) => "error",
        };
        metrics::counter!("wa_knowledge_refreshes_total", "outcome" => label).increment(1);
        match &outcome {
            Ok(report) => tracing::info!(
                files = report.files,
                pages = report.pages,
                chunks = report.chunks,
                skipped = report.skipped.len(),
                ms = report.duration_ms,
                "knowledge index built"
            ),
            Err(error) => tracing::error!(%error, "knowledge index build failed"),
        }
        outcome
    }

    async fn build(&self) -> Result<Report, KnowledgeError> {
        let started = Instant::now();
        let settings = &self.settings;
        let gathered = gather(&settings.dir, Some(&self.layout), settings.file_timeout, self.progress.clone()).await?;
        let mut report = gathered.report;
        let previous = self.live.borrow().clone();
        if report.files == 0 && !report.skipped.is_empty() && previous.is_some() {
            report.kept_previous_index = true;
            report.duration_ms = elapsed_ms(started);
            return Err(KnowledgeError::NothingIndexed(report));
        }
        let generation = format!("g{}-{}", crate::store::now_ms(), uuid::Uuid::new_v4().simple());
        let directory = self.layout.generation(&generation);
        let chunks = gathered.chunks;
        let index = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&directory)?;
            PassageIndex::build_in_dir(&directory, &chunks).map_err(KnowledgeError::from)
        })
        .await
        .map_err(|_| KnowledgeError::Interrupted)??;
        report.duration_ms = elapsed_ms(started);
        let manifest = Manifest {
            format: FORMAT,
            generation: generation.clone(),
            built_at_ms: crate::store::now_ms(),
            hashes: gathered.hashes,
            report: report.clone(),
        };
        self.layout.publish(&manifest)?;
        metrics::gauge!("wa_knowledge_passages").set(index.passage_count() as f64);
        self.live.send_replace(Some(Arc::new(Live { index, manifest: manifest.clone() })));
        let keep_previous = previous.as_ref().map(|live| live.manifest.generation.as_str());
        self.layout.remove_generations_except(&[generation.as_str(), keep_previous.unwrap_or_default()]);
        self.layout.prune_cache(&manifest.hashes);
        Ok(report)
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Keeps passages, best first, while they fit in `budget` characters; the
/// best one is cut to fit rather than dropped.
fn within_budget(passages: Vec<Passage>, budget: usize) -> Vec<Passage> {
    let mut used = 0;
    let mut kept = Vec::new();
    for mut passage in passages {
        let size = passage.text.chars().count();
        if used + size > budget {
            if kept.is_empty() {
                passage.text = passage.text.chars().take(budget).collect();
                kept.push(passage);
            }
            break;
        }
        used += size;
        kept.push(passage);
    }
    kept
}

#[async_trait]
impl Retriever for KnowledgeBase {
    async fn retrieve(&self, question: &str) -> Vec<Passage> {
        self.search(question).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str) -> Passage {
        Passage { title: "T".into(), file: "t.md".into(), page: None, heading: None, text: text.into(), score: 1.0 }
    }

    #[test]
    fn the_budget_keeps_the_best_passages_that_fit() {
        let kept = within_budget(vec![passage("aaaa"), passage("bbbb"), passage("cc")], 9);
        let texts: Vec<_> = kept.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["aaaa", "bbbb"], "a later small passage does not jump the queue");
        let cut = within_budget(vec![passage("ééééé")], 3);
        assert_eq!(cut[0].text, "ééé");
    }
}
