//! The phrases that mean "let me talk to a person" (`prompts/handoff_phrases.txt`,
//! whose header explains the format), matched against a turn's text after
//! the knowledge analyzer's normalisation, before the LLM is asked anything.
//! Phrases, not keywords: "admin" alone is also a fee.

use crate::knowledge::analyzer::words;
use std::collections::{HashMap, HashSet};
use std::path::Path;

pub const FILE_NAME: &str = "handoff_phrases.txt";
const BUILT_IN: &str = include_str!("../../prompts/handoff_phrases.txt");

/// Expansions of one line beyond this are refused: a typo in a list should
/// not make every turn compare against millions of phrases.
const MAX_PER_LINE: usize = 10_000;

#[derive(Debug, Clone)]
pub struct HandoffPhrases {
    phrases: Vec<Phrase>,
    /// Words that may stand between the words of a phrase.
    skip: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Phrase {
    words: Vec<String>,
    /// Only when it is everything the person wrote (skipped words aside).
    whole: bool,
}

impl HandoffPhrases {
    /// Reads `dir/handoff_phrases.txt`; a missing, empty or broken file
    /// gives the built-in list, and the returned note says why.
    pub fn load(dir: &Path) -> (Self, Option<String>) {
        let path = dir.join(FILE_NAME);
        let problem = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => match Self::parse(&text) {
                Ok(phrases) => return (phrases, None),
                Err(problem) => problem,
            },
            _ => "not found or empty".to_owned(),
        };
        (Self::builtin(), Some(format!("{}: {problem}; using the built-in handoff phrases", path.display())))
    }

    /// The shipped list (a unit test checks that it parses).
    pub fn builtin() -> Self {
        Self::parse(BUILT_IN).unwrap_or_else(|_| Self { phrases: Vec::new(), skip: HashSet::new() })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut sets: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
        let mut skip = HashSet::new();
        let mut phrases = Vec::new();
        for (number, line) in text.lines().enumerate().map(|(n, line)| (n + 1, line.trim())) {
            let at_line = |problem: String| format!("line {number}: {problem}");
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(words_to_skip) = line.strip_prefix("skip:") {
                skip.extend(words(words_to_skip));
            } else if let Some((name, choices)) = line.strip_prefix('@').and_then(|set| set.split_once('=')) {
                sets.insert(name.trim(), choices_of(choices.trim(), &sets).map_err(at_line)?);
            } else {
                let (whole, slots) = match line.strip_prefix('=') {
                    Some(rest) => (true, rest),
                    None => (false, line),
                };
                let slots: Vec<Vec<Vec<String>>> = slots
                    .split_whitespace()
                    .map(|slot| choices_of(slot, &sets))
                    .collect::<Result<_, _>>()
                    .map_err(at_line)?;
                let count = slots.iter().try_fold(1_usize, |count, slot| count.checked_mul(slot.len()));
                if count.is_none_or(|count| count > MAX_PER_LINE) {
                    return Err(at_line(format!("more than {MAX_PER_LINE} phrases")));
                }
                phrases.extend(expand(&slots).into_iter().map(|words| Phrase { words, whole }));
            }
        }
        if phrases.is_empty() {
            return Err("no phrases".to_owned());
        }
        let mut seen = HashSet::new();
        phrases.retain(|phrase| seen.insert(phrase.clone()));
        Ok(Self { phrases, skip })
    }

    /// The phrase (in its normalised words) that `text` asks for a person
    /// with, if any.
    pub fn asked_for_person(&self, text: &str) -> Option<String> {
        let said = words(text);
        let kept: Vec<&String> = said.iter().filter(|word| !self.skip.contains(*word)).collect();
        self.phrases
            .iter()
            .find(|phrase| {
                if phrase.whole {
                    let phrase_kept = phrase.words.iter().filter(|word| !self.skip.contains(*word));
                    phrase_kept.eq(kept.iter().copied())
                } else {
                    (0..said.len()).any(|start| self.follows(&phrase.words, &said[start..]))
                }
            })
            .map(|phrase| phrase.words.join(" "))
    }

    /// Whether `said` starts with `phrase`, skipped words allowed between
    /// (not before) its words.
    fn follows(&self, phrase: &[String], said: &[String]) -> bool {
        let mut said = said.iter();
        phrase.iter().enumerate().all(|(index, word)| loop {
            match said.next() {
                Some(next) if next == word => break true,
                Some(next) if index > 0 && self.skip.contains(next) => continue,
                _ => break false,
            }
        })
    }

    #[cfg(test)]
    fn examples(&self) -> impl Iterator<Item = String> + '_ {
        self.phrases.iter().map(|phrase| phrase.words.join(" "))
    }
}

/// `a|b_c|@set`: each choice as its normalised words.
fn choices_of(slot: &str, sets: &HashMap<&str, Vec<Vec<String>>>) -> Result<Vec<Vec<String>>, String> {
    let mut choices = Vec::new();
    for choice in slot.split('|') {
        if let Some(name) = choice.strip_prefix('@') {
            choices.extend(sets.get(name).ok_or_else(|| format!("@{name} is not defined above"))?.iter().cloned());
            continue;
        }
        let normalised = words(&choice.replace('_', " "));
        if normalised.is_empty() {
            return Err(format!("{choice:?} has no words"));
        }
        choices.push(normalised);
    }
    Ok(choices)
}

/// Every phrase a line of slots stands for.
fn expand(slots: &[Vec<Vec<String>>]) -> Vec<Vec<String>> {
    slots.iter().fold(vec![Vec::new()], |phrases, choices| {
        phrases
            .iter()
            .flat_map(|start| choices.iter().map(move |choice| [start.as_slice(), choice.as_slice()].concat()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> HandoffPhrases {
        HandoffPhrases::parse(BUILT_IN).expect("the shipped list parses")
    }

    #[test]
    fn every_phrase_of_the_shipped_list_asks_for_a_person() {
        let phrases = shipped();
        let examples: Vec<String> = phrases.examples().collect();
        assert!(examples.len() >= 300, "{}", examples.len());
        for example in &examples {
            assert!(phrases.asked_for_person(example).is_some(), "{example:?}");
        }
    }

    #[test]
    fn informal_requests_for_a_person_are_recognised() {
        let phrases = shipped();
        for request in [
            "mau ngomong sama admin",
            "bisa sama CS aja?",
            "operator dong",
            "orang asli ga sih ini",
            "sambungkan ke customer service",
            "mau bicara dengan manusia",
            "minta nomor admin",
            "Halo kak, mau ngomong dong sama adminnya",
            "pengen ngobrol sm orang aja",
            "tolong hubungkan dengan petugas",
            "disambungin ke cs dong kak",
            "gmn cara menghubungi customer service?",
            "boleh minta no wa admin?",
            "gak mau ngomong sama bot",
            "panggilin admin nya dong",
            "ini manusia beneran bukan?",
            "admin??",
            "CS dong",
            "ada admin?",
            "saya mau komplain ke cs",
            "dibantu sama petugas aja",
            "I want to talk to a real person",
            "can I speak with an agent please",
            "connect me to a human",
        ] {
            assert!(phrases.asked_for_person(request).is_some(), "{request:?}");
        }
    }

    #[test]
    fn near_misses_are_questions_for_the_bot() {
        let phrases = shipped();
        for question in [
            "admin fee-nya brp",
            "biaya admin berapa",
            "cs nya buka jam berapa?",
            "biaya admin dong",
            "no admin fee?",
            "ada biaya admin ga?",
            "jam operasional cs kapan",
            "operator seluler apa yang bagus",
            "ini bot ya?",
            "ngomong-ngomong harga paketnya berapa",
            "orang tua saya mau daftar",
            "sudah transfer ke admin kak",
            "minta nomor rekening buat bayar",
            "halo admin",
            "admin, jadwal dokter gigi hari sabtu?",
        ] {
            assert_eq!(phrases.asked_for_person(question), None, "{question:?}");
        }
    }

    #[test]
    fn a_whole_message_phrase_needs_the_whole_message() {
        let phrases = HandoffPhrases::parse("skip: dong\n= admin\n").unwrap();
        assert!(phrases.asked_for_person("Admin dong!").is_some());
        assert!(phrases.asked_for_person("dong admin").is_some());
        assert!(phrases.asked_for_person("admin fee").is_none());
    }

    #[test]
    fn skipped_words_only_stand_between_words() {
        let phrases = HandoffPhrases::parse("skip: dong\nngomong sama admin\n").unwrap();
        assert!(phrases.asked_for_person("ngomong dong sama dong admin").is_some());
        assert!(phrases.asked_for_person("ngomong sama kamu admin").is_none());
    }

    #[test]
    fn a_broken_file_falls_back_to_the_built_in_list() {
        let dir = tempfile::tempdir().unwrap();
        let (phrases, note) = HandoffPhrases::load(dir.path());
        assert!(note.unwrap().contains("not found"));
        assert!(phrases.asked_for_person("mau ngomong sama admin").is_some());
        std::fs::write(dir.path().join(FILE_NAME), "ngomong sama @nobody\n").unwrap();
        let (phrases, note) = HandoffPhrases::load(dir.path());
        assert!(note.unwrap().contains("line 1: @nobody is not defined"));
        assert!(phrases.asked_for_person("operator dong").is_some());
        std::fs::write(dir.path().join(FILE_NAME), "minta pak_kepala\n").unwrap();
        let (phrases, note) = HandoffPhrases::load(dir.path());
        assert_eq!(note, None);
        assert!(phrases.asked_for_person("saya minta pak kepala").is_some());
        assert!(phrases.asked_for_person("operator dong").is_none());
    }
}
