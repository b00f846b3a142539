//! Human handoff: who answers a person, the bot or someone of the business.
//! The mode is data (`users.mode` and the pause fields), read in the same
//! transaction that claims a turn and in the one that queues its reply, so
//! a pause holds across crashes, restarts and replicas, and a pause that
//! commits while the LLM is thinking wins over the bot's reply.

pub mod notify;
mod phrases;
pub mod window;

pub use crate::domain::BusinessHours;
pub use phrases::HandoffPhrases;

use crate::config::HandoffSettings;
use notify::{HandoffRequested, Notifier};
use std::sync::Arc;
use std::time::Duration;

/// The handoff's settings and phrases, and the one place every pause that
/// committed is reported (counted, logged, and where notifications start).
#[derive(Clone)]
pub struct Handoffs {
    inner: Arc<Inner>,
}

struct Inner {
    settings: HandoffSettings,
    phrases: HandoffPhrases,
    notifier: Notifier,
}

impl Handoffs {
    /// Without notifications (see [`Handoffs::notifying`]).
    pub fn new(settings: HandoffSettings, phrases: HandoffPhrases) -> Self {
        Self::notifying(settings, phrases, Notifier::off())
    }

    /// With `HANDOFF_NOTIFY_URL`'s notifications, when it is set.
    pub fn notifying(settings: HandoffSettings, phrases: HandoffPhrases, notifier: Notifier) -> Self {
        Self { inner: Arc::new(Inner { settings, phrases, notifier }) }
    }

    pub fn settings(&self) -> &HandoffSettings {
        &self.inner.settings
    }

    /// A pause from `now` for `HANDOFF_PAUSE_HOURS`.
    pub fn pause(&self, reason: PauseReason, by: Actor, now: i64) -> Pause {
        Pause::new(reason, by, now, self.inner.settings.pause_for)
    }

    /// When `text` starts with the resume command (`HANDOFF_RESUME_COMMAND`,
    /// in any case, then a space or nothing), the words after it; `None`
    /// when it does not.
    pub fn after_resume_command<'t>(&self, text: &'t str) -> Option<&'t str> {
        after_command(text, &self.inner.settings.resume_command)
    }

    /// The phrase with which `text` asks for a person, if it does.
    pub fn asked_for_person(&self, text: &str) -> Option<String> {
        self.inner.phrases.asked_for_person(text)
    }

    /// Called once a customer's request for a person committed its pause:
    /// the team hears of it at `HANDOFF_NOTIFY_URL`, if set.
    pub fn person_requested(&self, request: &HandoffRequested) {
        self.inner.notifier.handoff_requested(request);
    }

    /// The handoff reply from its template (`prompts/handoff.md`): lines
    /// starting with `[buka]` are kept while the business is open (or has
    /// no hours set), those with `[tutup]` while it is closed; `{jam}`
    /// becomes the business hours and `{buka_lagi}` when it opens next.
    pub fn reply(&self, template: &str, now: i64) -> String {
        let hours = &self.inner.settings.business_hours;
        let open = hours.is_open(now);
        let kept: Vec<&str> = template
            .lines()
            .filter_map(|line| match (line.strip_prefix("[buka]"), line.strip_prefix("[tutup]")) {
                (Some(line), _) => open.then_some(line.trim_start()),
                (_, Some(line)) => (!open).then_some(line.trim_start()),
                _ => Some(line),
            })
            .collect();
        kept.join("\n")
            .trim()
            .replace("{jam}", &hours.describe())
            .replace("{buka_lagi}", &hours.next_opening(now).unwrap_or_default())
    }

    /// Called after every pause committed. Counts and logs the ones that
    /// handed a conversation from the bot to a person.
    pub fn paused(&self, user_id: i64, pause: &Pause, outcome: &PauseOutcome) {
        if outcome.cancelled > 0 {
            tracing::info!(conversation = user_id, cancelled = outcome.cancelled, "bot replies not sent: paused");
        }
        if !outcome.changed {
            return;
        }
        metrics::counter!("wa_handoffs_total", "reason" => pause.reason.as_str()).increment(1);
        tracing::info!(
            conversation = user_id,
            reason = pause.reason.as_str(),
            by = pause.by.as_str(),
            until = pause.until,
            "bot paused: a person of the business has the conversation"
        );
    }

    /// Called after every resume committed.
    pub fn resumed(&self, user_id: i64, by: &Actor, outcome: &ResumeOutcome) {
        if outcome.changed {
            tracing::info!(conversation = user_id, by = by.as_str(), "bot resumed");
        }
    }
}

fn after_command<'t>(text: &'t str, command: &str) -> Option<&'t str> {
    let text = text.trim_start();
    let head = text.get(..command.len())?;
    let rest = &text[command.len()..];
    let whole_word = rest.is_empty() || rest.starts_with(char::is_whitespace);
    (head.eq_ignore_ascii_case(command) && whole_word).then(|| rest.trim())
}

/// Who answers a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bot,
    /// Paused: a person of the business answers; the bot stays silent.
    Human,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bot => "bot",
            Mode::Human => "human",
        }
    }
}

/// Why the bot stepped back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseReason {
    /// An agent answered from the admin page.
    AgentReply,
    /// The business answered from the WhatsApp Business app.
    PhoneReply,
    /// The person asked for a human.
    CustomerAsked,
    /// An operator pressed Pause.
    Admin,
}

impl PauseReason {
    pub const ALL: [PauseReason; 4] = [Self::AgentReply, Self::PhoneReply, Self::CustomerAsked, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentReply => "agent_reply",
            Self::PhoneReply => "phone_reply",
            Self::CustomerAsked => "customer_asked",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == raw)
    }
}

/// Who paused or resumed a conversation: an agent's name, or one of the
/// fixed names below. Shown in transcripts, so it is one short line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

/// Longest name an actor may have, in characters.
pub const MAX_ACTOR_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    #[error("a name must be 1 to {MAX_ACTOR_CHARS} characters on one line")]
    ActorName,
}

impl Actor {
    pub fn new(name: &str) -> Result<Self, HandoffError> {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_ACTOR_CHARS || name.chars().any(char::is_control) {
            return Err(HandoffError::ActorName);
        }
        Ok(Self(name.to_owned()))
    }

    /// The person themselves (they asked for a human).
    pub fn customer() -> Self {
        Self("customer".to_owned())
    }

    /// The admin token, or the WhatsApp Business app.
    pub fn admin() -> Self {
        Self("admin".to_owned())
    }

    pub fn phone() -> Self {
        Self("phone".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an expired pause is resumed by in the audit trail.
pub const EXPIRY: &str = "expiry";

/// A pause about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub reason: PauseReason,
    pub by: Actor,
    /// Unix ms; `None` holds until someone resumes the bot.
    pub until: Option<i64>,
}

impl Pause {
    /// A pause from `now` for `length` (`None`: until resumed by hand).
    pub fn new(reason: PauseReason, by: Actor, now: i64, length: Option<Duration>) -> Self {
        let until = length.map(|length| now.saturating_add(i64::try_from(length.as_millis()).unwrap_or(i64::MAX)));
        Self { reason, by, until }
    }
}

/// A conversation's mode as stored, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMode {
    /// In effect at the moment it was read: a pause past its end reads as
    /// `Bot`, even before the next claim writes it back.
    pub mode: Mode,
    /// The pause in effect, when `mode` is `Human`.
    pub pause: Option<PauseState>,
    /// The person asked for a human at this moment (Unix ms) and nobody has
    /// answered since.
    pub waiting_since: Option<i64>,
    /// When an agent last opened the conversation.
    pub agent_seen_at: Option<i64>,
}

/// A pause in effect, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseState {
    pub reason: Option<PauseReason>,
    pub by: Option<String>,
    pub at: Option<i64>,
    pub until: Option<i64>,
}

/// Whether a pause stored with `mode` and `until` holds at `now`.
pub fn holds(mode: &str, until: Option<i64>, now: i64) -> bool {
    mode == Mode::Human.as_str() && until.is_none_or(|until| until > now)
}

/// What [`crate::store::Store::pause`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseOutcome {
    /// The bot was answering before: the mode changed (and was recorded).
    pub changed: bool,
    /// When the pause now ends (Unix ms); `None` until resumed by hand.
    pub until: Option<i64>,
    /// Parts of bot replies that were still waiting to be sent and now
    /// never will be.
    pub cancelled: u64,
}

/// What [`crate::store::Store::resume`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeOutcome {
    /// A pause was in effect and has ended.
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_names_are_one_short_line() {
        assert_eq!(Actor::new("  Sari ").unwrap().as_str(), "Sari");
        for bad in ["", "   ", "Sa\nri", &"x".repeat(MAX_ACTOR_CHARS + 1)] {
            assert_eq!(Actor::new(bad), Err(HandoffError::ActorName), "{bad:?}");
        }
        assert!(Actor::new(&"é".repeat(MAX_ACTOR_CHARS)).is_ok());
    }

    #[test]
    fn a_pause_ends_after_its_length_or_never() {
        let pause = Pause::new(PauseReason::Admin, Actor::admin(), 1_000, Some(Duration::from_secs(2)));
        assert_eq!(pause.until, Some(3_000));
        assert_eq!(Pause::new(PauseReason::Admin, Actor::admin(), 1_000, None).until, None);
        let long = Pause::new(PauseReason::Admin, Actor::admin(), 1_000, Some(Duration::MAX));
        assert_eq!(long.until, Some(i64::MAX));
    }

    #[test]
    fn a_pause_holds_until_it_ends() {
        assert!(holds("human", None, 5));
        assert!(holds("human", Some(6), 5));
        assert!(!holds("human", Some(5), 5));
        assert!(!holds("bot", None, 5));
    }

    fn handoffs(business_hours: &str) -> Handoffs {
        let settings = HandoffSettings {
            pause_for: Some(Duration::from_secs(3600)),
            business_hours: BusinessHours::parse(business_hours).unwrap(),
            resume_command: "#bot".to_owned(),
        };
        Handoffs::new(settings, HandoffPhrases::builtin())
    }

    #[test]
    fn the_reply_keeps_the_lines_for_open_or_closed() {
        let template =
            "Petugas akan membalas.\n\n[buka] Mohon ditunggu.\n[tutup]Jam kami {jam}; buka lagi {buka_lagi}.";
        // Monday 1 December 2025, 10:00 in Jakarta (03:00 UTC).
        let monday_ten = 1_764_558_000_000;
        let open = handoffs("Mon-Fri 08:00-17:00 Asia/Jakarta");
        assert_eq!(open.reply(template, monday_ten), "Petugas akan membalas.\n\nMohon ditunggu.");
        let closed = handoffs("Sat 08:00-12:00 Asia/Jakarta");
        assert_eq!(
            closed.reply(template, monday_ten),
            "Petugas akan membalas.\n\nJam kami Sabtu 08.00–12.00 WIB; buka lagi Sabtu pukul 08.00 WIB."
        );
        assert_eq!(handoffs("").reply(template, monday_ten), "Petugas akan membalas.\n\nMohon ditunggu.");
        let pause = open.pause(PauseReason::CustomerAsked, Actor::customer(), 1_000);
        assert_eq!(pause.until, Some(3_601_000));
    }

    #[test]
    fn the_resume_command_is_a_whole_first_word_in_any_case() {
        assert_eq!(after_command("#bot", "#bot"), Some(""));
        assert_eq!(after_command("  #Bot  ", "#bot"), Some(""), "phones capitalise the first letter");
        assert_eq!(after_command("#BOT Terima kasih kak\n", "#bot"), Some("Terima kasih kak"));
        assert_eq!(after_command("#bot\nlanjut ya", "#bot"), Some("lanjut ya"));
        for not in ["#botol", "pakai #bot", "bot", "#bo", "", "é#bot"] {
            assert_eq!(after_command(not, "#bot"), None, "{not:?}");
        }
    }

    #[test]
    fn reasons_read_back() {
        for reason in PauseReason::ALL {
            assert_eq!(PauseReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(PauseReason::parse("bored"), None);
    }
}
