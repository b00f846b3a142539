//! From "this person went quiet" to "the reply is on its way": claim the
//! turn, retrieve passages, ask the LLM, send the reply in parts, record
//! everything. Exactly-once comes from the store's claim and lease; this
//! module only has to resume where an earlier owner stopped.

mod clock;

use crate::buffer::{Debouncer, Hooks};
use crate::channel::{Channel, Channels};
use crate::config::{BufferSettings, LimitSettings};
use crate::domain::{InboundMessage, Source, StatusUpdate};
use crate::incidents::{IncidentKind, Incidents};
use crate::knowledge::{unique_sources, Passage, Retriever};
use crate::limits::{Admission, Limits};
use crate::llm::{ChatMessage, LlmClient, LlmError, Role};
use crate::prompt::Prompts;
use crate::store::{
    now_ms, Claim, ClaimWindow, ClaimedTurn, IngestOutcome, LlmUsage, Recipient, ReplyRecord, Store, StoreError,
};
use crate::whatsapp::{markdown_to_whatsapp, split_for_whatsapp, MAX_MESSAGE_CHARS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

pub use clock::instant_at;

/// How soon to look again when a reply to the same person is in flight.
const BUSY_RETRY: Duration = Duration::from_secs(1);
const STORE_RETRY: Duration = Duration::from_secs(3);
/// How long after a turn is claimed the typing indicator is sent.
const TYPING_DELAY: Duration = Duration::from_millis(500);
/// How long before a deadline the person's passages are searched for, so
/// that when many windows end together only the claim and the LLM request
/// are left to do. At most half the quiet window: earlier, too many people
/// would still be typing.
const PREPARE_LEAD: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    debouncer: Debouncer,
    channels: Channels,
    incidents: Incidents,
    llm: LlmClient,
    retriever: Arc<dyn Retriever>,
    prompts: Prompts,
    owner: String,
    window: ClaimWindow,
    /// Answers in flight, so a stopping server can let them finish.
    answering: TaskTracker,
    stopping: AtomicBool,
    shutdown_grace: Duration,
    chat_logging: bool,
    limits: Limits,
}

/// A reply and how it came about, for the turn's log line.
struct Composed {
    reply: String,
    /// `llm`, `offline`, `fallback`, `unreadable`, `limited` (over
    /// `MAX_TURNS_PER_HOUR`), or `resumed` (saved by an earlier owner).
    kind: &'static str,
    passages: usize,
    usage: LlmUsage,
    sources: Vec<Source>,
}

pub struct Parts {
    pub store: Store,
    pub channels: Channels,
    pub incidents: Incidents,
    pub llm: LlmClient,
    pub retriever: Arc<dyn Retriever>,
    pub prompts: Prompts,
    pub history_turns: usize,
    pub buffer: BufferSettings,
    /// Keep message bodies once the turn is finished.
    pub chat_logging: bool,
    pub limits: LimitSettings,
}

impl Pipeline {
    /// Builds the pipeline and its debouncer; due people are answered on
    /// their own tasks.
    pub fn start(parts: Parts) -> Self {
        let (due_tx, mut due_rx) = mpsc::unbounded_channel::<Vec<i64>>();
        let (near_tx, mut near_rx) = mpsc::unbounded_channel::<Vec<i64>>();
        let hooks = Hooks {
            lead: PREPARE_LEAD.min(parts.buffer.quiet / 2),
            on_near: Arc::new(move |user_ids| {
                let _ = near_tx.send(user_ids);
            }),
            on_due: Arc::new(move |user_ids| {
                let _ = due_tx.send(user_ids);
            }),
        };
        let debouncer = Debouncer::new(parts.buffer.quiet, parts.buffer.max_wait, hooks);
        let window = ClaimWindow {
            quiet_ms: parts.buffer.quiet.as_millis() as i64,
            max_wait_ms: parts.buffer.max_wait.as_millis() as i64,
            lease_ms: parts.buffer.turn_lease.as_millis() as i64,
            history_turns: parts.history_turns,
        };
        let pipeline = Self {
            inner: Arc::new(Inner {
                debouncer,
                channels: parts.channels,
                incidents: parts.incidents,
                llm: parts.llm,
                retriever: parts.retriever,
                prompts: parts.prompts,
                owner: format!("wa-ai-bridge-{}", uuid::Uuid::new_v4()),
                window,
                answering: TaskTracker::new(),
                stopping: AtomicBool::new(false),
                shutdown_grace: parts.buffer.shutdown_grace,
                chat_logging: parts.chat_logging,
                limits: Limits::new(parts.limits, parts.store.clone()),
                store: parts.store,
            }),
        };
        let dispatcher = pipeline.clone();
        tokio::spawn(async move {
            // People who came due while the last batch was claimed are
            // claimed together in the next: one claim for all of them, so
            // their answers do not compete with claims still to come.
            while let Some(mut due) = queued_together(&mut due_rx).await {
                due.sort_unstable();
                due.dedup();
                dispatcher.on_due(&due).await;
            }
        });
        let preparer = pipeline.clone();
        tokio::spawn(async move {
            while let Some(near) = queued_together(&mut near_rx).await {
                preparer.prepare(&near).await;
            }
        });
        pipeline
    }

    pub fn debouncer(&self) -> &Debouncer {
        &self.inner.debouncer
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn llm(&self) -> &LlmClient {
        &self.inner.llm
    }

    /// Every channel's way in: stores what arrived and, once it is
    /// committed, restarts the quiet timers of the people who wrote.
    pub async fn accept(
        &self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
    ) -> Result<IngestOutcome, StoreError> {
        let outcome = self.inner.store.ingest(messages, statuses, now_ms()).await?;
        for &user_id in &outcome.waiting_users {
            self.inner.debouncer.message_arrived(user_id);
        }
        Ok(outcome)
    }

    /// Rebuilds quiet timers from the database and takes over turns whose
    /// owner died. Run at start-up and then periodically, so a replica that
    /// crashed is covered by the others.
    pub async fn recover(&self) -> Result<usize, crate::store::StoreError> {
        let inner = &self.inner;
        let now = now_ms();
        let pending = inner.store.pending_conversations().await?;
        for conversation in &pending {
            inner.debouncer.schedule(
                conversation.user_id,
                instant_at(conversation.first_at, now),
                instant_at(conversation.last_at, now),
            );
        }
        let window = &inner.window;
        let reclaimed = inner.store.reclaim_expired(&inner.owner, now, window.lease_ms, window.history_turns).await?;
        let count = pending.len() + reclaimed.len();
        for turn in reclaimed {
            self.spawn_answer(turn);
        }
        Ok(count)
    }

    /// Lets answers in flight finish (up to the grace period), then hands
    /// every unfinished turn back. Messages still waiting stay stored and
    /// are picked up by the next start's recovery.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.answering.close();
        if tokio::time::timeout(inner.shutdown_grace, inner.answering.wait()).await.is_err() {
            tracing::warn!(in_flight = inner.answering.len(), "answers still in flight at shutdown");
        }
        match inner.store.release_leases(&inner.owner).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "handed unfinished turns back"),
            Err(error) => tracing::error!(%error, "could not hand turns back; they resume when their lease ends"),
        }
    }

    fn channel(&self, recipient: &Recipient) -> &Arc<dyn Channel> {
        self.inner.channels.for_kind(recipient.channel())
    }

    fn spawn_answer(&self, turn: ClaimedTurn) {
        let pipeline = self.clone();
        self.inner.answering.spawn(async move { pipeline.answer(turn).await });
    }

    /// Retrieves ahead for people whose deadline is near. What they say
    /// from now on changes their text, and the answer retrieves again.
    async fn prepare(&self, user_ids: &[i64]) {
        match self.inner.store.waiting_texts(user_ids).await {
            Ok(texts) => self.inner.retriever.prepare(texts).await,
            Err(error) => {
                tracing::warn!(people = user_ids.len(), %error, "could not read ahead of a deadline");
                self.inner.incidents.record(
                    IncidentKind::Store,
                    format!("reading ahead of a deadline: {error}"),
                    now_ms(),
                );
            }
        }
    }

    async fn on_due(&self, user_ids: &[i64]) {
        let inner = &self.inner;
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let now = now_ms();
        let retry_in =
            |user_id, delay: Duration| inner.debouncer.retry_at(user_id, tokio::time::Instant::now() + delay);
        let claims = match inner.store.claim_turns(user_ids, &inner.owner, now, &inner.window).await {
            Ok(claims) => claims,
            Err(error) => {
                tracing::error!(people = user_ids.len(), %error, "could not claim turns; will retry");
                for &user_id in user_ids {
                    retry_in(user_id, STORE_RETRY);
                }
                return;
            }
        };
        for (user_id, claim) in claims {
            match claim {
                Claim::Claimed(turn) => self.spawn_answer(turn),
                Claim::NotYet { due_at } => inner.debouncer.retry_at(user_id, instant_at(due_at, now)),
                Claim::Busy => retry_in(user_id, BUSY_RETRY),
                Claim::Nothing => {}
            }
        }
    }

    async fn answer(&self, turn: ClaimedTurn) {
        let inner = &self.inner;
        let Some(recipient) = turn.recipient.clone() else {
            tracing::error!(turn = %turn.id, "person has neither a valid phone number nor a BSUID");
            let _ = inner.store.finish_turn(&turn.id, &inner.owner, "failed", now_ms(), inner.chat_logging).await;
            return;
        };
        let heartbeat = self.keep_lease(&turn.id);
        self.answer_owned(turn, recipient).await;
        heartbeat.abort();
    }

    async fn answer_owned(&self, turn: ClaimedTurn, recipient: Recipient) {
        let inner = &self.inner;
        let last_message = turn.messages.last().map(|m| m.wa_message_id.clone());
        let typing = last_message.as_ref().map(|id| self.show_typing_soon(&recipient, id));
        let composed = match &turn.reply {
            Some(saved) => Composed {
                reply: saved.text.clone(),
                kind: "resumed",
                passages: 0,
                usage: LlmUsage::default(),
                sources: saved.sources.clone(),
            },
            None => match self.compose(&turn).await {
                Ok(Some(composed)) => composed,
                Ok(None) => {
                    tracing::warn!(turn = %turn.id, "another process took this turn over; stopping");
                    return;
                }
                Err(error) => {
                    // The lease runs out; recovery retries the turn later.
                    tracing::error!(turn = %turn.id, %error, "could not save the reply");
                    return;
                }
            },
        };
        if let (Some(typing), Some(id)) = (typing, last_message) {
            // Answered before "typing…" went out: still show the blue ticks.
            if !typing.is_finished() {
                typing.abort();
                self.mark_read(&recipient, id);
            }
        }
        let Some(outcome) = self.send(&turn, &recipient, &composed.reply).await else { return };
        if outcome == "answered" {
            self.channel(&recipient).reply_complete(&recipient, &turn.id, &composed.sources).await;
        }
        let finished_at = now_ms();
        let finished = inner.store.finish_turn(&turn.id, &inner.owner, outcome, finished_at, inner.chat_logging).await;
        if let Err(error) = finished {
            tracing::error!(turn = %turn.id, %error, "could not mark the turn finished");
        }
        metrics::counter!("wa_turns_total", "outcome" => outcome).increment(1);
        let waited_ms = (finished_at - turn.last_message_at).max(0);
        metrics::histogram!("wa_time_to_reply_seconds").record(waited_ms as f64 / 1000.0);
        tracing::info!(
            to = %recipient.masked(),
            messages = turn.messages.len(),
            passages = composed.passages,
            reply = composed.kind,
            model = composed.usage.model.as_deref().unwrap_or("-"),
            llm_ms = composed.usage.latency_ms.unwrap_or(0),
            waited_ms,
            outcome,
            "turn"
        );
    }

    /// Renews the turn's lease while this process works on it, so a slow
    /// LLM never lets another process start the same answer.
    fn keep_lease(&self, turn_id: &str) -> tokio::task::JoinHandle<()> {
        let pipeline = self.clone();
        let turn_id = turn_id.to_owned();
        tokio::spawn(async move {
            let inner = &pipeline.inner;
            let every = Duration::from_millis((inner.window.lease_ms / 3).max(1) as u64);
            loop {
                tokio::time::sleep(every).await;
                match inner.store.renew_lease(&turn_id, &inner.owner, now_ms(), inner.window.lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(error) => tracing::warn!(turn = %turn_id, %error, "could not renew the lease"),
                }
            }
        })
    }

    /// Marks the last message read and shows "typing…" once the LLM request
    /// is on its way: when many windows end together, the LLM requests go
    /// out first. Aborted if the reply is ready sooner, so "typing…" never
    /// shows after the answer.
    fn show_typing_soon(&self, recipient: &Recipient, message_id: &str) -> tokio::task::JoinHandle<()> {
        let channel = Arc::clone(self.channel(recipient));
        let (recipient, message_id) = (recipient.clone(), message_id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(TYPING_DELAY).await;
            if let Err(error) = channel.mark_read(&recipient, &message_id, true).await {
                tracing::warn!(%error, "typing indicator failed");
            }
        })
    }

    fn mark_read(&self, recipient: &Recipient, message_id: String) {
        let channel = Arc::clone(self.channel(recipient));
        let recipient = recipient.clone();
        tokio::spawn(async move {
            if let Err(error) = channel.mark_read(&recipient, &message_id, false).await {
                tracing::warn!(%error, "read receipt failed");
            }
        });
    }

    /// Chooses the reply and stores it before anything is sent; `None` when
    /// another process owns the turn by now.
    async fn compose(&self, turn: &ClaimedTurn) -> Result<Option<Composed>, StoreError> {
        let inner = &self.inner;
        let (user_text, cut) = inner.limits.cut_turn(turn.user_text());
        let without_llm = |reply: String, kind| Composed {
            reply,
            kind,
            passages: 0,
            usage: LlmUsage::default(),
            sources: Vec::new(),
        };
        let composed = if user_text.is_empty() {
            without_llm(inner.prompts.unreadable.clone(), "unreadable")
        } else {
            match inner.limits.admit(&turn.recent, now_ms()) {
                Admission::Notify { minutes_to_wait } => {
                    without_llm(inner.prompts.limit_reached.replace("{menit}", &minutes_to_wait.to_string()), "limited")
                }
                // No parts to send: the person was told already.
                Admission::Silent => without_llm(String::new(), "limited"),
                Admission::Allowed => {
                    let passages = inner.retriever.retrieve(&user_text).await;
                    self.answer_from(turn, &passages, &user_text, cut).await
                }
            }
        };
        let record = ReplyRecord {
            user_text: &user_text,
            reply: &composed.reply,
            kind: composed.kind,
            usage: composed.usage.clone(),
            sources: &composed.sources,
        };
        let still_ours = inner.store.save_reply(&turn.id, &inner.owner, &record).await?;
        Ok(still_ours.then_some(composed))
    }

    /// The LLM's answer; without one (or once the day's tokens are spent),
    /// the passages themselves, and only when nothing relevant was found
    /// an apology. `cut` says the person's text was shortened to fit.
    async fn answer_from(&self, turn: &ClaimedTurn, passages: &[Passage], user_text: &str, cut: bool) -> Composed {
        let inner = &self.inner;
        if inner.limits.budget_exhausted(now_ms()).await {
            return self.documents_answer(passages, "offline");
        }
        let history = inner.limits.bound_history(&turn.history);
        let mut chat = inner.prompts.chat(&history, passages, user_text);
        if cut {
            // Our words, so a system message, just before the person's.
            let note = ChatMessage { role: Role::System, content: inner.prompts.turn_cut.clone() };
            chat.insert(chat.len() - 1, note);
        }
        let error = match inner.llm.complete(turn.user_id, &chat).await {
            Ok(completion) => {
                count_llm_success(&completion);
                let tokens = completion.prompt_tokens.unwrap_or(0) + completion.completion_tokens.unwrap_or(0);
                inner.limits.spent(tokens.max(0)).await;
                let sources = unique_sources(passages);
                let usage = LlmUsage {
                    model: Some(completion.model),
                    latency_ms: Some(completion.latency.as_millis() as i64),
                    prompt_tokens: completion.prompt_tokens,
                    completion_tokens: completion.completion_tokens,
                };
                return Composed { reply: completion.text, kind: "llm", passages: passages.len(), usage, sources };
            }
            Err(error) => error,
        };
        // Without a key there is no failure to report: answering from the
        // documents is how the bot is meant to work then.
        let kind = match error {
            LlmError::NotConfigured => "offline",
            error => {
                let model = inner.llm.primary_model().to_owned();
                metrics::counter!("wa_llm_requests_total", "outcome" => "error", "model" => model).increment(1);
                tracing::warn!(turn = %turn.id, %error, "LLM unavailable, answering without it");
                inner.incidents.record(IncidentKind::Llm, error.to_string(), now_ms());
                "fallback"
            }
        };
        self.documents_answer(passages, kind)
    }

    /// The passages quoted as the answer, or an apology when none matched.
    fn documents_answer(&self, passages: &[Passage], kind: &'static str) -> Composed {
        let inner = &self.inner;
        let (reply, sources) = match inner.prompts.offline_answer(passages) {
            Some(answer) => (answer.text, answer.sources),
            None if kind == "offline" => (inner.prompts.not_found.clone(), Vec::new()),
            None => (inner.prompts.llm_unavailable.clone(), Vec::new()),
        };
        metrics::counter!("wa_offline_answers_total", "found" => if sources.is_empty() { "no" } else { "yes" })
            .increment(1);
        Composed { reply, kind, passages: passages.len(), usage: LlmUsage::default(), sources }
    }

    /// Sends the parts not yet handled, in order. A part that fails for
    /// good stops the rest: later parts would read out of context. Each part
    /// first confirms this process still owns the turn; `None` when it does
    /// not (or the database cannot say), leaving the turn to its owner or to
    /// recovery.
    async fn send(&self, turn: &ClaimedTurn, recipient: &Recipient, reply: &str) -> Option<&'static str> {
        let inner = &self.inner;
        let parts = split_for_whatsapp(&markdown_to_whatsapp(reply), MAX_MESSAGE_CHARS);
        for (index, part) in parts.iter().enumerate() {
            let index = index as i64;
            if turn.done_parts.contains(&index) {
                continue;
            }
            match inner.store.renew_lease(&turn.id, &inner.owner, now_ms(), inner.window.lease_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(turn = %turn.id, "another process took this turn over; stopping");
                    return None;
                }
                Err(error) => {
                    tracing::error!(turn = %turn.id, %error, "cannot confirm the lease; leaving the turn to recovery");
                    return None;
                }
            }
            let sent = self.channel(recipient).send_text(recipient, &turn.id, part).await;
            count_send(&sent);
            let record = match &sent {
                Ok(id) => Ok(id.as_str()),
                Err(error) => Err((error.code(), error.title())),
            };
            let record = record.as_ref().map(|id| *id).map_err(|(code, title)| (*code, title.as_str()));
            if let Err(error) = inner.store.record_part(&turn.id, index, part, record, now_ms()).await {
                tracing::error!(turn = %turn.id, %error, "could not record a sent part");
            }
            if let Err(error) = sent {
                tracing::warn!(turn = %turn.id, to = %recipient.masked(), %error, "reply not delivered");
                inner.incidents.record(IncidentKind::Send, error.to_string(), now_ms());
                return Some("failed");
            }
        }
        Some("answered")
    }
}

/// The next batch of people, with every batch queued behind it.
async fn queued_together(batches: &mut mpsc::UnboundedReceiver<Vec<i64>>) -> Option<Vec<i64>> {
    let mut people = batches.recv().await?;
    while let Ok(more) = batches.try_recv() {
        people.extend(more);
    }
    Some(people)
}

fn count_llm_success(completion: &crate::llm::Completion) {
    metrics::counter!("wa_llm_requests_total", "outcome" => "ok", "model" => completion.model.clone()).increment(1);
    metrics::histogram!("wa_llm_latency_seconds").record(completion.latency.as_secs_f64());
    let tokens = [("prompt", completion.prompt_tokens), ("completion", completion.completion_tokens)];
    for (kind, count) in tokens {
        metrics::counter!("wa_llm_tokens_total", "kind" => kind).increment(count.unwrap_or(0).max(0) as u64);
    }
    if completion.cut_short {
        metrics::counter!("wa_limits_total", "limit" => "max_tokens").increment(1);
    }
}

fn count_send(sent: &Result<String, crate::channel::SendError>) {
    match sent {
        Ok(_) => metrics::counter!("wa_sends_total", "outcome" => "ok", "code" => "").increment(1),
        Err(error) => {
            let code = error.code().map(|c| c.to_string()).unwrap_or_default();
            metrics::counter!("wa_sends_total", "outcome" => "failed", "code" => code).increment(1)
        }
    }
}
