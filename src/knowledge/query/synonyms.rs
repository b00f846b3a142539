//! Vocabulary, not spelling: "password" in a question should also find
//! *kata sandi* in a document. Groups of interchangeable terms are read
//! through the same analyzer as documents, so they meet the index's terms
//! whatever the spelling, affixes or case.

use std::collections::HashMap;
use tantivy::tokenizer::TextAnalyzer;

/// The groups shipped with the server (`query/synonyms.txt`).
pub(crate) const BUILT_IN: &str = include_str!("synonyms.txt");

/// A term of a group as analyzed words: one for "folder", two for "kata
/// sandi" ("kata", "sandi").
type Phrase = Vec<String>;

#[derive(Debug, Default, Clone)]
pub(crate) struct Synonyms {
    groups: Vec<Vec<Phrase>>,
    /// Groups and members by the first word of the member, to find the
    /// members a question contains without scanning every group.
    by_first_word: HashMap<String, Vec<(usize, usize)>>,
}

/// A member of a group found in a question, and what else to look for.
#[derive(Debug, PartialEq)]
pub(crate) struct Match<'a> {
    /// Where in the question's words the member starts and how long it is.
    pub start: usize,
    pub len: usize,
    pub alternatives: Vec<&'a [String]>,
}

impl Synonyms {
    /// Parses groups, one a line, members separated by commas; `#` starts
    /// a comment line. Members that analyze to nothing (stop words only)
    /// are dropped, and so are groups left with fewer than two members.
    pub(crate) fn parse<'t>(texts: impl IntoIterator<Item = &'t str>, analyzer: &TextAnalyzer) -> Self {
        let mut synonyms = Self::default();
        let mut analyzer = analyzer.clone();
        for line in texts.into_iter().flat_map(str::lines) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut group: Vec<Phrase> = Vec::new();
            for member in line.split(',') {
                let mut words = Vec::new();
                analyzer.token_stream(member).process(&mut |token| words.push(token.text.clone()));
                if !words.is_empty() && !group.contains(&words) {
                    group.push(words);
                }
            }
            if group.len() >= 2 {
                synonyms.add(group);
            }
        }
        synonyms
    }

    fn add(&mut self, group: Vec<Phrase>) {
        let index = self.groups.len();
        for (member, words) in group.iter().enumerate() {
            self.by_first_word.entry(words[0].clone()).or_default().push((index, member));
        }
        self.groups.push(group);
    }

    #[cfg(test)]
    fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Every member of every group that occurs in `words` (a question's
    /// analyzed words, in order), with the other members of its group.
    pub(crate) fn find<'s>(&'s self, words: &[String]) -> Vec<Match<'s>> {
        let mut found = Vec::new();
        for start in 0..words.len() {
            let Some(candidates) = self.by_first_word.get(&words[start]) else { continue };
            for &(group, member) in candidates {
                let phrase = &self.groups[group][member];
                if words[start..].starts_with(phrase) {
                    let alternatives = self.groups[group]
                        .iter()
                        .enumerate()
                        .filter(|(other, _)| *other != member)
                        .map(|(_, words)| words.as_slice())
                        .collect();
                    found.push(Match { start, len: phrase.len(), alternatives });
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::analyzer::indonesian;

    fn words(text: &str) -> Vec<String> {
        let mut analyzer = indonesian();
        let mut words = Vec::new();
        analyzer.token_stream(text).process(&mut |token| words.push(token.text.clone()));
        words
    }

    #[test]
    fn members_are_found_through_the_analyzer_with_the_rest_of_their_group() {
        let synonyms = Synonyms::parse(["# comment\nkata sandi, Password, passwd\nmap, direktori"], &indonesian());
        assert_eq!(synonyms.groups(), 2);
        let question = words("gmn cara ganti passwordnya di map home");
        let found = synonyms.find(&question);
        let alternatives: Vec<Vec<String>> =
            found.iter().flat_map(|m| m.alternatives.iter().map(|a| a.to_vec())).collect();
        assert!(alternatives.contains(&words("kata sandi")), "{found:?}");
        assert!(alternatives.contains(&words("direktori")), "{found:?}");
        assert!(!alternatives.contains(&words("map")), "a member is not its own alternative");

        let back = synonyms.find(&words("lupa kata sandi akun"));
        assert!(back.iter().any(|m| (m.start, m.len, m.alternatives.len()) == (1, 2, 2)), "{back:?}");
    }

    #[test]
    fn members_of_stop_words_only_and_lonely_groups_are_dropped() {
        let synonyms = Synonyms::parse(["yang, dan\nsatu\n\n  ,  , biaya, tarif,"], &indonesian());
        assert_eq!(synonyms.groups(), 1);
        assert!(synonyms.find(&words("yang dan")).is_empty());
    }

    #[test]
    fn every_built_in_group_keeps_two_members_through_the_analyzer() {
        let analyzer = indonesian();
        let lines = BUILT_IN.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let lost: Vec<&str> = lines.filter(|line| Synonyms::parse([*line], &analyzer).groups() != 1).collect();
        assert!(lost.is_empty(), "groups the analyzer already unifies or empties: {lost:?}");
    }
}
