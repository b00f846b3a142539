//! Lists of phrases in a data file a business edits (`prompts/*_phrases.txt`,
//! whose headers explain the format), matched against a turn's text after
//! the knowledge analyzer's normalisation, before the LLM is asked anything.
//! The handoff phrases ("let me talk to a person") and the opt-out and
//! opt-in phrases are such lists: one format, one matcher.

use crate::knowledge::analyzer::words;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Expansions of one line beyond this are refused: a typo in a list should
/// not make every turn compare against millions of phrases.
const MAX_PER_LINE: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Phrases {
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

impl Phrases {
    /// Reads `dir/file_name`; a missing, empty or broken file gives
    /// `built_in` (the shipped file), and the returned note says why.
    pub fn load(dir: &Path, file_name: &str, built_in: &str) -> (Self, Option<String>) {
        let path = dir.join(file_name);
        let problem = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => match Self::parse(&text) {
                Ok(phrases) => return (phrases, None),
                Err(problem) => problem,
            },
            _ => "not found or empty".to_owned(),
        };
        (Self::built_in(built_in), Some(format!("{}: {problem}; using the built-in list", path.display())))
    }

    /// A shipped list (each has a unit test that checks it parses).
    pub fn built_in(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|_| Self { phrases: Vec::new(), skip: HashSet::new() })
    }

    pub(crate) fn parse(text: &str) -> Result<Self, String> {
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

    /// The phrase of the list (in its normalised words) that `text` says,
    /// if any.
    pub fn find_in(&self, text: &str) -> Option<String> {
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

    /// Every phrase of the list, in its normalised words, so a test can
    /// check that each one of a shipped list is recognised.
    #[cfg(test)]
    pub fn examples(&self) -> impl Iterator<Item = String> + '_ {
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

    #[test]
    fn a_whole_message_phrase_needs_the_whole_message() {
        let phrases = Phrases::parse("skip: dong\n= admin\n").unwrap();
        assert!(phrases.find_in("Admin dong!").is_some());
        assert!(phrases.find_in("dong admin").is_some());
        assert!(phrases.find_in("admin fee").is_none());
    }

    #[test]
    fn skipped_words_only_stand_between_words() {
        let phrases = Phrases::parse("skip: dong\nngomong sama admin\n").unwrap();
        assert!(phrases.find_in("ngomong dong sama dong admin").is_some());
        assert!(phrases.find_in("ngomong sama kamu admin").is_none());
    }

    #[test]
    fn a_broken_file_falls_back_to_the_built_in_list() {
        let built_in = "operator dong\nngomong sama admin\n";
        let dir = tempfile::tempdir().unwrap();
        let (phrases, note) = Phrases::load(dir.path(), "list.txt", built_in);
        assert!(note.unwrap().contains("not found"));
        assert!(phrases.find_in("mau ngomong sama admin").is_some());
        std::fs::write(dir.path().join("list.txt"), "ngomong sama @nobody\n").unwrap();
        let (phrases, note) = Phrases::load(dir.path(), "list.txt", built_in);
        assert!(note.unwrap().contains("line 1: @nobody is not defined"));
        assert!(phrases.find_in("operator dong").is_some());
        std::fs::write(dir.path().join("list.txt"), "minta pak_kepala\n").unwrap();
        let (phrases, note) = Phrases::load(dir.path(), "list.txt", built_in);
        assert_eq!(note, None);
        assert!(phrases.find_in("saya minta pak kepala").is_some());
        assert!(phrases.find_in("operator dong").is_none());
    }
}
