//! The live knowledge base: the index questions are answered from, and the
//! rebuilds that replace it. A rebuild writes a new index beside the live
//! one and swaps it in whole, so a question is always answered from one
//! complete index, old or new.

use super::embeddings::{self, Embedder, Vectors};
use super::eval::{self, EvalSet};
use super::gather::{current_hashes, gather, Progress};
use super::index::{Hit, PassageIndex};
use super::manifest::{Layout, Manifest, FORMAT};
use super::report::Report;
use super::{Passage, Retriever};
use crate::config::KnowledgeSettings;
use async_trait::async_trait;
use dashmap::DashMap;
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a reply waits for the very first index before it goes out
/// without passages.
const FIRST_INDEX_WAIT: Duration = Duration::from_secs(120);
/// How long passages searched ahead are kept for their question: well past
/// the deadline they were searched for. A person handed over again later
/// (their previous reply was still being written) is prepared again.
const PREPARED_FOR: Duration = Duration::from_secs(10);
/// Bounds the memory of passages searched ahead.
const MAX_PREPARED: usize = 10_000;
/// How deep each ranking goes into fusion: a passage BM25 or the vectors
/// rank this low adds little either way.
const FUSION_DEPTH: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("cannot use the knowledge directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write or open the index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("no document could be indexed; the previous index stays in use")]
    NothingIndexed(Box<Report>),
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
    embedder: Option<Embedder>,
}

struct Live {
    index: PassageIndex,
    /// The passages' vectors, when this generation was built with them.
    vectors: Option<Vectors>,
    manifest: Manifest,
    /// Passages found ahead of a deadline, by the exact question. They live
    /// and die with the index they came from.
    prepared: DashMap<String, Prepared>,
}

struct Prepared {
    at: Instant,
    passages: Vec<Passage>,
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
        let live = layout.current().and_then(|manifest| {
            match Live::open(&layout.generation(&manifest.generation), manifest) {
                Ok(live) => Some(Arc::new(live)),
                Err(error) => {
                    tracing::warn!(%error, "the saved knowledge index cannot be opened; it will be rebuilt");
                    None
                }
            }
        });
        if let Some(live) = &live {
            metrics::gauge!("wa_knowledge_passages").set(live.index.passage_count() as f64);
        }
        let (live, _) = watch::channel(live);
        let embedder = settings.embeddings.clone().map(Embedder::new);
        let inner = Inner { settings: settings.clone(), layout, live, rebuild: Mutex::new(None), progress, embedder };
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
        let current =
            self.inner.live.borrow().as_ref().map(|live| {
                live.manifest.hashes == on_disk && self.inner.has_the_vectors_wanted(&live.manifest.report)
            });
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
        if let Some(passages) = live.prepared(question) {
            return passages;
        }
        // Runs here, not on the blocking pool: a search takes tens to a few
        // hundred microseconds on an index the page cache holds, less than
        // a hand-over costs, and when a thousand windows end together the
        // pool would start hundreds of threads for them.
        metrics::counter!("wa_knowledge_searches_total", "when" => "at_answer").increment(1);
        let vector = self.inner.question_vectors(live.vectors.is_some(), &[question.to_owned()]).await.pop().flatten();
        live.find(question, vector.as_deref(), &self.inner.settings).unwrap_or_default()
    }

    /// Searches now for questions about to be asked, so that
    /// [`KnowledgeBase::search`] finds their passages ready. A question
    /// asked in other words, or after the index was rebuilt, is searched
    /// again when it is asked.
    pub async fn prepare(&self, questions: Vec<String>) {
        let Some(live) = self.inner.live.borrow().clone() else { return };
        let settings = self.inner.settings.clone();
        // One request for the whole batch's vectors.
        let vectors = self.inner.question_vectors(live.vectors.is_some(), &questions).await;
        let questions = questions.into_iter().zip(vectors).collect();
        // A whole batch of searches is worth the hand-over, and keeps them
        // off the workers that are answering.
        let _ = tokio::task::spawn_blocking(move || live.prepare(questions, &settings)).await;
    }

    async fn live_or_wait(&self) -> Option<Arc<Live>> {
        if let Some(live) = self.inner.live.borrow().clone() {
            return Some(live);
        }
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

impl Live {
    fn new(index: PassageIndex, vectors: Option<Vectors>, manifest: Manifest) -> Self {
        Self { index, vectors, manifest, prepared: DashMap::new() }
    }

    fn open(directory: &std::path::Path, manifest: Manifest) -> Result<Self, KnowledgeError> {
        Ok(Self::new(PassageIndex::open(directory)?, Vectors::load(directory)?, manifest))
    }

    /// `None` when the search failed (logged). With a question vector, the
    /// passages nearest it are fused with BM25's.
    fn find(&self, question: &str, vector: Option<&[f32]>, settings: &KnowledgeSettings) -> Option<Vec<Passage>> {
        let started = Instant::now();
        let found = ranked(&self.index, self.vectors.as_ref(), question, vector, settings.top_k);
        metrics::histogram!("wa_knowledge_retrieval_seconds").record(started.elapsed().as_secs_f64());
        match found {
            Ok(passages) => Some(within_budget(passages, settings.max_context_chars)),
            Err(error) => {
                tracing::error!(%error, "knowledge search failed");
                None
            }
        }
    }

    fn prepare(&self, questions: Vec<(String, Option<Vec<f32>>)>, settings: &KnowledgeSettings) {
        self.prepared.retain(|_, ready| ready.at.elapsed() < PREPARED_FOR);
        for (question, vector) in questions {
            if self.prepared.len() >= MAX_PREPARED {
                break;
            }
            // Asked by someone else a moment ago: the same passages, kept
            // for this person's deadline too.
            if let Some(mut ready) = self.prepared.get_mut(&question) {
                ready.at = Instant::now();
                continue;
            }
            if let Some(passages) = self.find(&question, vector.as_deref(), settings) {
                self.prepared.insert(question, Prepared { at: Instant::now(), passages });
                metrics::counter!("wa_knowledge_searches_total", "when" => "ahead").increment(1);
            }
        }
    }

    /// Kept, not taken: several people may ask the very same thing.
    fn prepared(&self, question: &str) -> Option<Vec<Passage>> {
        let ready = self.prepared.get(question).filter(|ready| ready.at.elapsed() < PREPARED_FOR)?;
        metrics::counter!("wa_knowledge_searches_total", "when" => "ahead_reused").increment(1);
        Some(ready.passages.clone())
    }
}

impl Inner {
    /// The questions' vectors when the index has passage vectors to compare
    /// them with; `None` for each when it has not, or when the provider
    /// fails (BM25 then answers alone).
    async fn question_vectors(&self, index_has_vectors: bool, questions: &[String]) -> Vec<Option<Vec<f32>>> {
        let Some(embedder) = self.embedder.as_ref().filter(|_| index_has_vectors && !questions.is_empty()) else {
            return vec![None; questions.len()];
        };
        match embedder.embed(questions).await {
            Ok(vectors) => vectors.into_iter().map(Some).collect(),
            Err(error) => {
                tracing::warn!(%error, "no question vectors; BM25 answers alone");
                metrics::counter!("wa_knowledge_embedding_errors_total", "when" => "question").increment(1);
                vec![None; questions.len()]
            }
        }
    }

    /// Whether an index built with `report` has vectors exactly when, and
    /// from the model that, the settings ask for. One whose vectors failed
    /// is rebuilt at the next start, which tries again.
    fn has_the_vectors_wanted(&self, report: &Report) -> bool {
        let wanted = self.embedder.as_ref().map(Embedder::model);
        let built = report.embeddings.as_ref().filter(|vectors| vectors.error.is_none()).map(|v| v.model.as_str());
        wanted == built
    }

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
            return Err(KnowledgeError::NothingIndexed(Box::new(report)));
        }
        let generation = format!("g{}-{}", crate::domain::now_ms(), uuid::Uuid::new_v4().simple());
        let directory = self.layout.generation(&generation);
        let (chunks, synonyms) = (gathered.chunks, gathered.synonyms);
        let vectors = match &self.embedder {
            Some(embedder) => {
                let (vectors, vectors_report) =
                    embeddings::build(embedder, &chunks, previous.as_ref().and_then(|live| live.vectors.as_ref()))
                        .await;
                report.embeddings = Some(vectors_report);
                vectors
            }
            None => None,
        };
        let previous_eval = previous.as_ref().and_then(|live| live.manifest.report.eval.clone());
        let eval_set = EvalSet::load(&settings.dir);
        let eval_questions = eval_set.as_ref().map(EvalSet::questions).unwrap_or_default();
        let eval_vectors: HashMap<String, Vec<f32>> = eval_questions
            .iter()
            .cloned()
            .zip(self.question_vectors(vectors.is_some(), &eval_questions).await)
            .filter_map(|(question, vector)| Some((question, vector?)))
            .collect();
        let (index, vectors, eval) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&directory)?;
            if let Some(vectors) = &vectors {
                vectors.save(&directory)?;
            }
            let index = PassageIndex::build_in_dir(&directory, &chunks, &synonyms)?;
            // Before the swap, so the report of a build says how the index
            // it puts live answers the business's questions.
            let eval = eval_set.map(|set| {
                let search = |question: &str| {
                    let vector = eval_vectors.get(question).map(Vec::as_slice);
                    ranked(&index, vectors.as_ref(), question, vector, eval::DEPTH).map_err(|e| e.to_string())
                };
                set.run(search, previous_eval.as_deref())
            });
            Ok::<_, KnowledgeError>((index, vectors, eval))
        })
        .await
        .map_err(|_| KnowledgeError::Interrupted)??;
        report.eval = eval.map(Box::new);
        report.duration_ms = elapsed_ms(started);
        let manifest = Manifest {
            format: FORMAT,
            generation: generation.clone(),
            built_at_ms: crate::domain::now_ms(),
            hashes: gathered.hashes,
            report: report.clone(),
        };
        self.layout.publish(&manifest)?;
        metrics::gauge!("wa_knowledge_passages").set(index.passage_count() as f64);
        self.live.send_replace(Some(Arc::new(Live::new(index, vectors, manifest.clone()))));
        let keep_previous = previous.as_ref().map(|live| live.manifest.generation.as_str());
        self.layout.remove_generations_except(&[generation.as_str(), keep_previous.unwrap_or_default()]);
        self.layout.prune_cache(&manifest.hashes);
        Ok(report)
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The bot's search: BM25, fused with the nearest passage vectors when
/// there are vectors and the question has one. Best first, at most `limit`.
fn ranked(
    index: &PassageIndex,
    vectors: Option<&Vectors>,
    question: &str,
    vector: Option<&[f32]>,
    limit: usize,
) -> tantivy::Result<Vec<Passage>> {
    let hits = match (vector, vectors) {
        (Some(vector), Some(vectors)) => {
            let bm25 = index.hits(question, FUSION_DEPTH.max(limit))?;
            let sparse: Vec<u32> = bm25.iter().map(|hit| hit.passage).collect();
            let dense = vectors.nearest(vector, FUSION_DEPTH);
            // A passage only the vectors found has no BM25 score.
            let score = |n: u32| bm25.iter().find(|hit| hit.passage == n).map_or(0.0, |hit| hit.score);
            embeddings::fuse(&[&sparse, &dense], limit)
                .into_iter()
                .map(|passage| Hit { passage, score: score(passage) })
                .collect()
        }
        _ => index.hits(question, limit)?,
    };
    index.passages(&hits)
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

    async fn prepare(&self, questions: Vec<String>) {
        KnowledgeBase::prepare(self, questions).await
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

    fn settings(dir: &std::path::Path) -> KnowledgeSettings {
        KnowledgeSettings {
            dir: dir.join("documents"),
            index_dir: dir.join("index"),
            top_k: 4,
            max_context_chars: 4000,
            file_timeout: Duration::from_secs(30),
            embeddings: None,
            min_score: 0.0,
        }
    }

    fn write_fee(settings: &KnowledgeSettings, fee: &str) {
        std::fs::create_dir_all(&settings.dir).unwrap();
        std::fs::write(settings.dir.join("tarif.md"), format!("# Tarif\n\nBiaya konsultasi {fee}.\n")).unwrap();
    }

    /// A knowledge base built from one document naming the consultation fee.
    async fn indexed(dir: &std::path::Path) -> (KnowledgeBase, KnowledgeSettings) {
        let settings = settings(dir);
        write_fee(&settings, "Rp 75.000");
        let knowledge = KnowledgeBase::open(&settings).unwrap();
        knowledge.refresh().await.unwrap();
        (knowledge, settings)
    }

    #[tokio::test]
    async fn passages_searched_ahead_are_the_ones_a_search_finds_and_belong_to_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let (knowledge, settings) = indexed(dir.path()).await;
        let question = "brp biaya konsultasi?".to_owned();

        knowledge.prepare(vec![question.clone(), question.clone()]).await;
        let live = knowledge.inner.live.borrow().clone().unwrap();
        assert_eq!(live.prepared.len(), 1);
        let searched = live.find(&question, None, &settings).unwrap();
        assert!(searched[0].text.contains("75.000"));
        for _ in 0..2 {
            assert_eq!(knowledge.search(&question).await, searched, "two people may ask the same");
        }

        write_fee(&settings, "Rp 90.000");
        knowledge.refresh().await.unwrap();
        let found = knowledge.search(&question).await;
        assert!(found[0].text.contains("90.000"), "not the passages searched in the old index: {found:?}");
    }

    #[tokio::test]
    async fn passages_searched_ahead_expire() {
        let dir = tempfile::tempdir().unwrap();
        let (knowledge, _) = indexed(dir.path()).await;
        let live = knowledge.inner.live.borrow().clone().unwrap();
        let old = Prepared { at: Instant::now() - PREPARED_FOR, passages: vec![passage("lama")] };
        live.prepared.insert("lama?".into(), old);
        assert_eq!(live.prepared("lama?"), None);
        knowledge.prepare(vec!["brp biaya konsultasi?".into()]).await;
        assert!(!live.prepared.contains_key("lama?"), "dropped by the next preparation");
    }

    #[tokio::test]
    async fn the_business_synonyms_widen_questions_are_no_document_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        std::fs::create_dir_all(&settings.dir).unwrap();
        std::fs::write(settings.dir.join("toko.md"), "# Toko\n\nStok bahan pokok datang tiap Senin.").unwrap();
        let knowledge = KnowledgeBase::open(&settings).unwrap();
        knowledge.refresh().await.unwrap();
        assert!(knowledge.search("sembako").await.is_empty());

        std::fs::write(settings.dir.join("synonyms.txt"), "# ours\nsembako, bahan pokok\n").unwrap();
        let report = knowledge.refresh().await.unwrap();
        assert_eq!(report.files, 1, "the synonyms file is not a document: {report}");
        assert_eq!(knowledge.search("sembako").await[0].file, "toko.md");

        let reopened = KnowledgeBase::open(&settings).unwrap();
        assert_eq!(reopened.refresh_if_stale().await.unwrap(), None);
        assert_eq!(reopened.search("sembako").await[0].file, "toko.md");
        std::fs::write(settings.dir.join("synonyms.txt"), "sembako, beras\n").unwrap();
        assert!(reopened.refresh_if_stale().await.unwrap().is_some(), "a changed synonyms file makes the index stale");
    }
}
