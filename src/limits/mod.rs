//! What one person can cost, whatever channel they write on: turns the LLM
//! answers per hour, characters per turn and of history in each prompt,
//! and a daily token budget for everyone together. The LLM's concurrency
//! cap is the `FairQueue` inside `LlmClient`.

mod budget;
mod fair_queue;

pub use budget::BudgetStatus;
pub use fair_queue::{FairQueue, Permit};

use crate::config::LimitSettings;
use crate::domain::{HistoryTurn, HOUR_MS};
use crate::store::{RecentTurns, Store};
use budget::DailyBudget;

pub struct Limits {
    settings: LimitSettings,
    budget: DailyBudget,
}

/// Whether a person's turn may go to the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the hourly limit for the first time since their last answer:
    /// tell them, and when a turn is free again.
    Notify {
        minutes_to_wait: i64,
    },
    /// Over the limit and already told: say nothing.
    Silent,
}

impl Limits {
    pub fn new(settings: LimitSettings, store: Store) -> Self {
        Self { settings, budget: DailyBudget::new(settings.daily_token_budget, store) }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Whether a person whose last hour of turns (counted in the database
    /// when their turn was claimed) is `recent` may be answered by the LLM.
    /// "Told once" is the newest refused turn being newer than the newest
    /// answer, so it holds across restarts and replicas.
    pub fn admit(&self, recent: &RecentTurns, now: i64) -> Admission {
        let admission = admission(recent, self.settings.turns_per_hour, now);
        if admission != Admission::Allowed {
            metrics::counter!("wa_limits_total", "limit" => "turns_per_hour").increment(1);
        }
        admission
    }

    /// Whether [`Limits::admit`] would let the LLM answer, without counting
    /// anything: what a turn's files cost to read is only spent on turns the
    /// LLM may answer.
    pub fn would_admit(&self, recent: &RecentTurns, now: i64) -> bool {
        admission(recent, self.settings.turns_per_hour, now) == Admission::Allowed
    }

    /// The turn as the LLM may see it, and whether it was cut.
    pub fn cut_turn(&self, text: String) -> (String, bool) {
        match cut_at_word(&text, self.settings.turn_chars) {
            Some(head) => {
                metrics::counter!("wa_limits_total", "limit" => "turn_chars").increment(1);
                (head.to_owned(), true)
            }
            None => (text, false),
        }
    }

    /// The newest history turns that fit `CONVERSATION_HISTORY_CHARS`; the
    /// newest one is cut to fit rather than dropped when it alone is longer.
    pub fn bound_history(&self, history: &[HistoryTurn]) -> Vec<HistoryTurn> {
        let bounded = within_chars(history, self.settings.history_chars);
        if bounded.len() < history.len() || bounded.last() != history.last() {
            metrics::counter!("wa_limits_total", "limit" => "history_chars").increment(1);
        }
        bounded
    }

    pub async fn budget_exhausted(&self, now: i64) -> bool {
        let exhausted = self.budget.exhausted(now).await;
        if exhausted {
            metrics::counter!("wa_limits_total", "limit" => "daily_budget").increment(1);
        }
        exhausted
    }

    pub async fn spent(&self, tokens: i64) {
        self.budget.spent(tokens).await;
    }

    pub async fn budget_status(&self, now: i64) -> BudgetStatus {
        self.budget.status(now).await
    }
}

fn admission(recent: &RecentTurns, turns_per_hour: u32, now: i64) -> Admission {
    if recent.answered < turns_per_hour {
        return Admission::Allowed;
    }
    if recent.told {
        return Admission::Silent;
    }
    let frees_at = recent.first_answered_at + HOUR_MS;
    Admission::Notify { minutes_to_wait: ((frees_at - now).max(1) + 59_999) / 60_000 }
}

fn within_chars(history: &[HistoryTurn], max_chars: usize) -> Vec<HistoryTurn> {
    let mut kept = Vec::new();
    let mut left = max_chars;
    for turn in history.iter().rev() {
        let size = turn.user.chars().count() + turn.assistant.chars().count();
        if size <= left {
            left -= size;
            kept.push(turn.clone());
            continue;
        }
        if kept.is_empty() {
            // The reply keeps at least half the room: it is what the next
            // answer most likely refers to.
            let assistant = cut_at_word(&turn.assistant, left / 2).unwrap_or(&turn.assistant);
            let user = cut_at_word(&turn.user, left - assistant.chars().count()).unwrap_or(&turn.user);
            if !user.is_empty() && !assistant.is_empty() {
                kept.push(HistoryTurn { user: user.to_owned(), assistant: assistant.to_owned() });
            }
        }
        break;
    }
    kept.reverse();
    kept
}

/// The start of `text` within `max_chars` characters, ending at a word end
/// when one is in the second half; `None` when it fits whole.
fn cut_at_word(text: &str, max_chars: usize) -> Option<&str> {
    let (cut, _) = text.char_indices().nth(max_chars)?;
    let head = &text[..cut];
    let word_end = head.rfind(char::is_whitespace).filter(|&at| at >= cut / 2).unwrap_or(cut);
    Some(head[..word_end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(user: &str, assistant: &str) -> HistoryTurn {
        HistoryTurn { user: user.into(), assistant: assistant.into() }
    }

    fn size(history: &[HistoryTurn]) -> usize {
        history.iter().map(|t| t.user.chars().count() + t.assistant.chars().count()).sum()
    }

    #[test]
    fn past_the_limit_a_person_is_told_once_when_a_turn_frees() {
        let minute = 60_000;
        let now = 10 * HOUR_MS;
        let mut recent = RecentTurns { first_answered_at: now - 50 * minute - 1, answered: 2, told: false };
        assert_eq!(admission(&recent, 3, now), Admission::Allowed);
        assert_eq!(admission(&recent, 2, now), Admission::Notify { minutes_to_wait: 10 });
        recent.told = true;
        assert_eq!(admission(&recent, 2, now), Admission::Silent);
    }

    #[test]
    fn turns_are_cut_at_a_word_end_and_short_ones_are_left_alone() {
        assert_eq!(cut_at_word("halo kak mau tanya", 11), Some("halo kak"));
        assert_eq!(cut_at_word("halo", 4), None);
        assert_eq!(cut_at_word(&"é".repeat(10), 4), Some("éééé"), "characters, not bytes, without a space");
    }

    #[test]
    fn the_oldest_history_goes_first() {
        let history = [turn("satu", "1111"), turn("dua", "2222"), turn("tiga", "3333")];
        assert_eq!(within_chars(&history, 16), history[1..]);
        assert_eq!(within_chars(&history, 100), history);
        assert!(within_chars(&history, 0).is_empty());
    }

    #[test]
    fn one_history_turn_longer_than_the_bound_is_cut_to_fit() {
        let long = turn(&"kata ".repeat(2000), &"jawab ".repeat(2000));
        let bounded = within_chars(&[turn("lama", "lama"), long], 1000);
        assert_eq!(bounded.len(), 1);
        assert!(size(&bounded) <= 1000, "{}", size(&bounded));
        assert!(bounded[0].assistant.chars().count() >= 450 && bounded[0].user.chars().count() >= 450);
    }
}
