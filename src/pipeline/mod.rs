//! From "this person went quiet" to "the reply is on its way": claim the
//! turn, retrieve passages, ask the LLM, and settle the turn by queuing its
//! reply in the outbox, which sends it. Exactly-once comes from the store:
//! the claim, and a turn settled under its attempt's token only once.

mod clock;

use crate::buffer::{Debouncer, Hooks};
use crate::channels::format::{markdown_to_whatsapp, split_for_whatsapp, MAX_MESSAGE_CHARS};
use crate::channels::{Channel, Channels};
use crate::config::{BufferSettings, LimitSettings};
use crate::contacts::{Asked, ChangeSource, ConsentPhrases};
use crate::domain::{now_ms, AccountName, Recipient};
use crate::domain::{InboundMessage, Source, StatusUpdate};
use crate::handoff::notify::HandoffRequested;
use crate::handoff::{Actor, Handoffs, Pause, PauseReason};
use crate::incidents::{IncidentKind, Incidents};
use crate::knowledge::{unique_sources, Passage, Retriever};
use crate::limits::{Admission, Limits};
use crate::llm::{ChatMessage, LlmClient, LlmError, Role};
use crate::media::{MediaReader, MediaUsage, TurnInput};
use crate::outbox::Outbox;
use crate::prompt::{strip_marker, Prompts};
use crate::store::{
    Answered, Claim, ClaimWindow, ClaimedTurn, Consent, IngestOutcome, LlmUsage, NewUnanswered, QueuedReply,
    ReplyRecord, Store, StoreError, TurnConsent,
};
use crate::unanswered::{top_score, Reason};
use dashmap::DashSet;
use std::collections::HashMap;
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
    /// What the default account's answers stand on.
    grounding: Grounding,
    /// Accounts with documents or a system prompt of their own.
    account_grounding: HashMap<AccountName, Grounding>,
    outbox: Outbox,
    media: Arc<MediaReader>,
    /// Every attempt's token starts with this, so a stopping process can
    /// hand back all of its turns at once.
    process: String,
    window: ClaimWindow,
    /// Answers in flight, so a stopping server can let them finish.
    answering: TaskTracker,
    /// Turns this process is answering, so recovery never takes over its
    /// own live work (a lease can lapse while the database stalls).
    in_flight: DashSet<String>,
    stopping: AtomicBool,
    shutdown_grace: Duration,
    limits: Limits,
    handoffs: Handoffs,
    /// `prompts/opt_out_phrases.txt` and `prompts/opt_in_phrases.txt`.
    consent_phrases: ConsentPhrases,
    /// `KNOWLEDGE_MIN_SCORE`.
    min_score: f32,
    /// `ENABLE_CHAT_LOGGING`: without it no customer's words are kept, the
    /// unanswered questions included.
    keep_unanswered: bool,
}

/// A reply and how it came about, for the turn's log line.
struct Composed {
    reply: String,
    /// `llm`, `offline`, `fallback`, `unreadable`, `limited` (over
    /// `MAX_TURNS_PER_HOUR`), `handoff` (the person asked for a human),
    /// `opt_out` or `opt_in` (they asked for promotional messages to stop
    /// or to start again), or
    /// `resumed` (saved by an earlier version that saved replies before
    /// sending them).
    kind: &'static str,
    passages: usize,
    usage: LlmUsage,
    sources: Vec<Source>,
    /// The pause that goes with the reply (the handoff reply's).
    pause: Option<Pause>,
    /// The consent the person's own words set, with their phrase (the
    /// reply confirms it, and goes out only if it changed).
    consent: Option<(Consent, String)>,
    /// Why the documents did not answer the turn, with the best passage's
    /// score, when they did not.
    unanswered: Option<(Reason, Option<f32>)>,
    media: MediaUsage,
}

/// What an account's answers stand on: the documents searched and the
/// prompts that frame them.
#[derive(Clone)]
pub struct Grounding {
    pub retriever: Arc<dyn Retriever>,
    pub prompts: Prompts,
}

pub struct Parts {
    pub store: Store,
    pub channels: Channels,
    pub incidents: Incidents,
    pub llm: LlmClient,
    pub grounding: Grounding,
    pub account_grounding: HashMap<AccountName, Grounding>,
    pub history_turns: usize,
    pub buffer: BufferSettings,
    pub outbox: Outbox,
    pub media: Arc<MediaReader>,
    pub limits: LimitSettings,
    pub handoffs: Handoffs,
    pub consent_phrases: ConsentPhrases,
    pub min_score: f32,
    pub keep_unanswered: bool,
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
                grounding: parts.grounding,
                account_grounding: parts.account_grounding,
                outbox: parts.outbox,
                media: parts.media,
                process: format!("wa-ai-bridge-{}", uuid::Uuid::new_v4()),
                window,
                answering: TaskTracker::new(),
                in_flight: DashSet::new(),
                stopping: AtomicBool::new(false),
                shutdown_grace: parts.buffer.shutdown_grace,
                limits: Limits::new(parts.limits, parts.store.clone()),
                handoffs: parts.handoffs,
                consent_phrases: parts.consent_phrases,
                min_score: parts.min_score,
                keep_unanswered: parts.keep_unanswered,
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

    pub fn handoffs(&self) -> &Handoffs {
        &self.inner.handoffs
    }

    pub fn media(&self) -> &MediaReader {
        &self.inner.media
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
        if inner.stopping.load(Ordering::SeqCst) {
            // What is left is handed back at shutdown, not taken over.
            return Ok(0);
        }
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
        let reclaimed = inner
            .store
            .reclaim_expired(
                || self.attempt_token(),
                |turn_id| inner.in_flight.contains(turn_id),
                now,
                window.lease_ms,
                window.history_turns,
            )
            .await?;
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
        match inner.store.release_leases(&inner.process).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "handed unfinished turns back"),
            Err(error) => tracing::error!(%error, "could not hand turns back; they resume when their lease ends"),
        }
    }

    /// The documents and prompts that answer `turn`'s person: their
    /// account's own, or the default ones.
    fn grounding(&self, turn: &ClaimedTurn) -> &Grounding {
        self.inner.account_grounding.get(&turn.account).unwrap_or(&self.inner.grounding)
    }

    fn channel(&self, turn: &ClaimedTurn, recipient: &Recipient) -> Arc<dyn Channel> {
        self.inner.channels.to(recipient, &turn.account)
    }

    /// A new fencing token for one attempt at a turn.
    fn attempt_token(&self) -> String {
        format!("{}:{}", self.inner.process, uuid::Uuid::new_v4())
    }

    fn spawn_answer(&self, turn: ClaimedTurn) {
        let pipeline = self.clone();
        self.inner.in_flight.insert(turn.id.clone());
        let in_flight = InFlight { turns: self.clone(), turn_id: turn.id.clone() };
        self.inner.answering.spawn(async move {
            let _in_flight = in_flight;
            pipeline.answer(turn).await
        });
    }

    /// Retrieves ahead for people whose deadline is near. What they say
    /// from now on changes their text, and the answer retrieves again.
    async fn prepare(&self, user_ids: &[i64]) {
        match self.inner.store.waiting_texts(user_ids).await {
            Ok(texts) => self.inner.grounding.retriever.prepare(texts).await,
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
        let token = self.attempt_token();
        let opt_out = |text: &str| match inner.consent_phrases.asked(text) {
            Some(Asked::OptOut(phrase)) => Some(phrase),
            _ => None,
        };
        let claims = match inner.store.claim_turns(user_ids, &token, now, &inner.window, &opt_out).await {
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
                Claim::Held { turn_id, messages, opted_out } => {
                    metrics::counter!("wa_turns_total", "outcome" => "held").increment(1);
                    if opted_out {
                        crate::contacts::counted(Consent::OptedOut, &ChangeSource::customer());
                        tracing::info!(turn = %turn_id, "opted out while a person has the conversation");
                    }
                    tracing::info!(turn = %turn_id, messages, "held for a person of the business; the bot stays silent");
                }
            }
        }
    }

    async fn answer(&self, turn: ClaimedTurn) {
        let inner = &self.inner;
        let Some(recipient) = turn.recipient.clone() else {
            tracing::error!(turn = %turn.id, "person has neither a valid phone number nor a BSUID");
            let _ = inner.store.fail_turn(&turn.id, &turn.token, now_ms()).await;
            return;
        };
        // The heartbeat lives and dies with the answer: a panic or a return
        // drops both, and a lost lease stops the answer where it is.
        tokio::select! {
            _ = self.answer_owned(&turn, recipient) => {}
            _ = self.lease_lost(&turn) => {
                tracing::warn!(turn = %turn.id, "lost the turn's lease; another attempt answers it");
            }
        }
    }

    async fn answer_owned(&self, turn: &ClaimedTurn, recipient: Recipient) {
        let inner = &self.inner;
        let last_message = turn.messages.last().map(|m| m.wa_message_id.clone());
        let typing = last_message.as_ref().map(|id| self.show_typing_soon(turn, &recipient, id));
        let (user_text, composed) = match &turn.reply {
            Some(saved) => {
                let resumed = Composed {
                    reply: saved.text.clone(),
                    kind: "resumed",
                    passages: 0,
                    usage: LlmUsage::default(),
                    sources: saved.sources.clone(),
                    pause: None,
                    consent: None,
                    unanswered: None,
                    media: MediaUsage::default(),
                };
                (turn.user_text(), resumed)
            }
            None => self.compose(turn).await,
        };
        if let (Some(typing), Some(id)) = (typing, last_message) {
            // Answered before "typing…" went out: still show the blue ticks.
            if !typing.is_finished() {
                typing.abort();
                self.mark_read(turn, &recipient, id);
            }
        }
        let record = ReplyRecord {
            user_text: &user_text,
            reply: &composed.reply,
            kind: composed.kind,
            usage: composed.usage.clone(),
            sources: &composed.sources,
        };
        let parts = split_for_whatsapp(&markdown_to_whatsapp(&composed.reply), MAX_MESSAGE_CHARS);
        let now = now_ms();
        let give_up_at = now + inner.outbox.retry_for().as_millis() as i64;
        let queued =
            QueuedReply { turn_id: &turn.id, token: &turn.token, user_id: turn.user_id, parts: &parts, give_up_at };
        let consent = match (&composed.consent, &recipient) {
            (Some((to, phrase)), Recipient::Phone(phone)) => {
                Some(TurnConsent { account: &turn.account, phone, to: *to, phrase })
            }
            _ => None,
        };
        match inner.store.answer_turn(&record, &queued, composed.pause.as_ref(), consent.as_ref(), now).await {
            Ok(Answered::Queued { pause, consent_changed }) => {
                if let (true, Some(consent)) = (consent_changed, &consent) {
                    crate::contacts::counted(consent.to, &ChangeSource::customer());
                    tracing::info!(to = %recipient.masked(), consent = consent.to.as_str(), "the customer changed their consent");
                }
                if let (Some(outcome), Some(pause)) = (pause, &composed.pause) {
                    inner.handoffs.paused(turn.user_id, pause, &outcome);
                    if outcome.changed && pause.reason == PauseReason::CustomerAsked {
                        inner.handoffs.person_requested(&HandoffRequested {
                            conversation_id: turn.user_id,
                            channel: recipient.channel(),
                            masked_person: recipient.masked(),
                            text: user_text.clone(),
                            at: now,
                        });
                    }
                }
                inner.outbox.wake();
                if let Some((reason, top_score)) = composed.unanswered {
                    self.record_unanswered(turn, &user_text, reason, top_score, now).await;
                }
            }
            Ok(Answered::Draft) => {
                metrics::counter!("wa_turns_total", "outcome" => "draft").increment(1);
                tracing::info!(turn = %turn.id, "paused while the reply was written; kept as a draft, not sent");
                return;
            }
            Ok(Answered::Lost) => {
                tracing::warn!(turn = %turn.id, "another attempt settled this turn; dropping this reply");
                return;
            }
            Err(error) => {
                // The lease runs out; recovery answers the turn again.
                tracing::error!(turn = %turn.id, %error, "could not queue the reply");
                return;
            }
        }
        metrics::counter!("wa_turns_total", "outcome" => "answered").increment(1);
        tracing::info!(
            to = %recipient.masked(),
            messages = turn.messages.len(),
            passages = composed.passages,
            reply = composed.kind,
            parts = parts.len(),
            model = composed.usage.model.as_deref().unwrap_or("-"),
            files = composed.media.files,
            images = composed.media.images,
            audio_ms = composed.media.audio_ms,
            document_chars = composed.media.document_chars,
            llm_ms = composed.usage.latency_ms.unwrap_or(0),
            waited_ms = (now - turn.last_message_at).max(0),
            "turn"
        );
    }

    /// Keeps the turn for the admin's unanswered questions. Best effort: the
    /// reply is already on its way, and a lost row only hides one question.
    async fn record_unanswered(
        &self,
        turn: &ClaimedTurn,
        question: &str,
        reason: Reason,
        top_score: Option<f32>,
        now: i64,
    ) {
        let row = NewUnanswered {
            user_id: turn.user_id,
            turn_id: &turn.id,
            question,
            reason: reason.as_str(),
            top_score,
            asked_at: now,
        };
        metrics::counter!("wa_unanswered_questions_total", "reason" => reason.as_str()).increment(1);
        if !self.inner.keep_unanswered {
            return;
        }
        if let Err(error) = self.inner.store.record_unanswered(&row).await {
            tracing::warn!(turn = %turn.id, %error, "could not record an unanswered question");
        }
    }

    /// Renews the turn's lease every third of it while the answer is being
    /// written, so a slow LLM never lets another attempt start the same
    /// answer. Completes when the lease is lost: another attempt owns the
    /// turn, or it could not be renewed before it ran out.
    async fn lease_lost(&self, turn: &ClaimedTurn) {
        let inner = &self.inner;
        let lease = Duration::from_millis(inner.window.lease_ms.max(1) as u64);
        let mut held_until = tokio::time::Instant::now() + lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let renewing = inner.store.renew_lease(&turn.id, &turn.token, now_ms(), inner.window.lease_ms);
            match tokio::time::timeout_at(held_until, renewing).await {
                Ok(Ok(true)) => held_until = tokio::time::Instant::now() + lease,
                Ok(Ok(false)) => return,
                Ok(Err(error)) => tracing::warn!(turn = %turn.id, %error, "could not renew the lease"),
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= held_until {
                return;
            }
        }
    }

    /// Marks the last message read and shows "typing…" once the LLM request
    /// is on its way: when many windows end together, the LLM requests go
    /// out first. Aborted if the reply is ready sooner, so "typing…" never
    /// shows after the answer.
    fn show_typing_soon(
        &self,
        turn: &ClaimedTurn,
        recipient: &Recipient,
        message_id: &str,
    ) -> tokio::task::JoinHandle<()> {
        let channel = self.channel(turn, recipient);
        let (recipient, message_id) = (recipient.clone(), message_id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(TYPING_DELAY).await;
            if let Err(error) = channel.mark_read(&recipient, &message_id, true).await {
                tracing::warn!(%error, "typing indicator failed");
            }
        })
    }

    fn mark_read(&self, turn: &ClaimedTurn, recipient: &Recipient, message_id: String) {
        let channel = self.channel(turn, recipient);
        let recipient = recipient.clone();
        tokio::spawn(async move {
            if let Err(error) = channel.mark_read(&recipient, &message_id, false).await {
                tracing::warn!(%error, "read receipt failed");
            }
        });
    }

    /// Chooses the reply: the LLM's, or one the bot can give without it.
    /// Returns it with the person's text as it was answered (cut to
    /// `MAX_TURN_CHARS`).
    async fn compose(&self, turn: &ClaimedTurn) -> (String, Composed) {
        let inner = &self.inner;
        let grounding = self.grounding(turn);
        // Transcription is paid for: not for a person the LLM will not answer.
        let transcribe = inner.limits.would_admit(&turn.recent, now_ms());
        let input = inner.media.read_turn(&turn.account, &turn.id, &turn.messages, transcribe).await;
        let (user_text, cut) = inner.limits.cut_turn(input.text());
        let without_llm = |reply: String, kind| Composed {
            reply,
            kind,
            passages: 0,
            usage: LlmUsage::default(),
            sources: Vec::new(),
            pause: None,
            consent: None,
            unanswered: None,
            media: input.usage,
        };
        // A turn with nothing readable still meets the limits first: a
        // person over them is told so (once), not asked to write instead.
        let composed = if let Some((to, phrase)) = self.consent_asked(turn, &user_text).await {
            // Before everything else: someone out of questions, or waiting
            // for a person, may still stop promotions.
            tracing::info!(turn = %turn.id, phrase, consent = to.as_str(), "the person asked about promotions");
            let (reply, kind) = match to {
                Consent::OptedIn => (grounding.prompts.opt_in.clone(), "opt_in"),
                _ => (grounding.prompts.opt_out.clone(), "opt_out"),
            };
            Composed { consent: Some((to, phrase)), ..without_llm(reply, kind) }
        } else if let Some(phrase) = inner.handoffs.asked_for_person(&user_text) {
            // Before the limits too: someone out of questions for the bot
            // may still ask for a person.
            tracing::info!(turn = %turn.id, phrase, "the person asked for a human");
            let now = now_ms();
            Composed {
                pause: Some(inner.handoffs.pause(PauseReason::CustomerAsked, Actor::customer(), now)),
                ..without_llm(inner.handoffs.reply(&grounding.prompts.handoff, now), "handoff")
            }
        } else {
            match inner.limits.admit(&turn.recent, now_ms()) {
                Admission::Notify { minutes_to_wait } => without_llm(
                    grounding.prompts.limit_reached.replace("{menit}", &minutes_to_wait.to_string()),
                    "limited",
                ),
                // No parts to send: the person was told already.
                Admission::Silent => without_llm(String::new(), "limited"),
                Admission::Allowed if user_text.is_empty() => {
                    without_llm(grounding.prompts.unreadable.clone(), "unreadable")
                }
                Admission::Allowed => {
                    // Notes and documents would only blur the search: the
                    // person's own words (transcripts and captions too) are
                    // what it looks for.
                    let searched = if cut { user_text.clone() } else { input.searched() };
                    let passages = grounding.retriever.retrieve(&searched).await;
                    let media = input.usage;
                    Composed { media, ..self.answer_from(turn, &passages, &user_text, cut, input).await }
                }
            }
        };
        (user_text, composed)
    }

    /// The consent `text` sets for the turn's person, with the phrase: an
    /// opt-out phrase always, an opt-in phrase only from someone who opted
    /// out. Only a WhatsApp number has a consent; a web chat visitor's
    /// "stop" is a message like any other.
    async fn consent_asked(&self, turn: &ClaimedTurn, text: &str) -> Option<(Consent, String)> {
        let Some(Recipient::Phone(phone)) = &turn.recipient else {
            return None;
        };
        match self.inner.consent_phrases.asked(text)? {
            Asked::OptOut(phrase) => Some((Consent::OptedOut, phrase)),
            Asked::OptIn(phrase) => match self.inner.store.consent_of(&turn.account, phone).await {
                Ok(Consent::OptedOut) => Some((Consent::OptedIn, phrase)),
                Ok(_) => None,
                Err(error) => {
                    // Answered as a message; they can write it again.
                    tracing::warn!(turn = %turn.id, %error, "could not read a consent");
                    None
                }
            },
        }
    }

    /// The LLM's answer; without one (or once the day's tokens are spent),
    /// the passages themselves, and only when nothing relevant was found
    /// an apology. `cut` says the person's text was shortened to fit.
    async fn answer_from(
        &self,
        turn: &ClaimedTurn,
        passages: &[Passage],
        user_text: &str,
        cut: bool,
        mut input: TurnInput,
    ) -> Composed {
        let inner = &self.inner;
        let prompts = &self.grounding(turn).prompts;
        if inner.limits.budget_exhausted(now_ms()).await {
            return self.documents_answer(prompts, passages, "offline");
        }
        let history = inner.limits.bound_history(&turn.history);
        let mut chat = prompts.chat(&history, passages, user_text);
        if let Some(last) = chat.last_mut() {
            last.content = input.for_model(user_text, cut);
        }
        if cut {
            // Our words, so a system message, just before the person's.
            let note = ChatMessage::text(Role::System, prompts.turn_cut.clone());
            chat.insert(chat.len() - 1, note);
        }
        let error = match inner.llm.complete(turn.user_id, &chat).await {
            Ok(completion) => {
                count_llm_success(&completion);
                let tokens = completion.prompt_tokens.unwrap_or(0) + completion.completion_tokens.unwrap_or(0);
                inner.limits.spent(tokens.max(0)).await;
                let (reply, unsure) = strip_marker(&completion.text);
                let unanswered =
                    if unsure { Some(Reason::ModelUnsure) } else { Reason::of_retrieval(passages, inner.min_score) };
                let sources = if unsure { Vec::new() } else { unique_sources(passages) };
                let usage = LlmUsage {
                    model: Some(completion.model),
                    latency_ms: Some(completion.latency.as_millis() as i64),
                    prompt_tokens: completion.prompt_tokens,
                    completion_tokens: completion.completion_tokens,
                };
                return Composed {
                    // A reply of the marker alone says nothing to the customer.
                    reply: if unsure && reply.is_empty() { prompts.not_found.clone() } else { reply },
                    kind: "llm",
                    passages: passages.len(),
                    usage,
                    sources,
                    pause: None,
                    consent: None,
                    unanswered: unanswered.map(|reason| (reason, top_score(passages))),
                    media: MediaUsage::default(),
                };
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
        self.documents_answer(prompts, passages, kind)
    }

    /// The passages quoted as the answer, or an apology when none matched.
    fn documents_answer(&self, prompts: &Prompts, passages: &[Passage], kind: &'static str) -> Composed {
        let inner = &self.inner;
        let (reply, sources) = match prompts.offline_answer(passages) {
            Some(answer) => (answer.text, answer.sources),
            None if kind == "offline" => (prompts.not_found.clone(), Vec::new()),
            None => (prompts.llm_unavailable.clone(), Vec::new()),
        };
        metrics::counter!("wa_offline_answers_total", "found" => if sources.is_empty() { "no" } else { "yes" })
            .increment(1);
        let unanswered = Reason::of_retrieval(passages, inner.min_score).map(|reason| (reason, top_score(passages)));
        Composed {
            reply,
            kind,
            passages: passages.len(),
            usage: LlmUsage::default(),
            sources,
            pause: None,
            consent: None,
            unanswered,
            media: MediaUsage::default(),
        }
    }
}

/// Takes a turn off the in-flight list however its answer ends, panics
/// included.
struct InFlight {
    turns: Pipeline,
    turn_id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.turns.inner.in_flight.remove(&self.turn_id);
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
