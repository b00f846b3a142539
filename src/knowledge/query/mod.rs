//! From a question to the query run on the index. A question is never
//! parsed as query syntax: its words go through the documents' analyzer and
//! become plain lookups, so nothing a person types can change what the
//! query means. Three kinds of clause add up to a passage's score:
//!
//! - each word of the question (BM25 over heading and text together, see
//!   `index`),
//! - the other members of every synonym group the question touches, with
//!   less weight than the person's own words,
//! - neighbouring question words that stand close together in the passage,
//!   so "kata sandi root" prefers the passage where those words make one
//!   phrase over one that mentions each somewhere.

mod synonyms;

pub(crate) use synonyms::{Synonyms, BUILT_IN};

use std::collections::HashSet;
use tantivy::query::{BooleanQuery, BoostQuery, DisjunctionMaxQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;

/// Another word for what the person asked is weaker evidence than their
/// own word.
const SYNONYM_WEIGHT: f32 = 0.4;
const PROXIMITY_WEIGHT: f32 = 0.4;
/// How many other words may stand between two neighbouring question words
/// for them to count as close.
const PROXIMITY_SLOP: u32 = 2;

/// A question's analyzed words with their positions (stop words leave gaps).
#[derive(Debug)]
pub(crate) struct Words(Vec<(usize, String)>);

impl Words {
    pub(crate) fn of(question: &str, analyzer: &TextAnalyzer) -> Self {
        let mut analyzer = analyzer.clone();
        let mut words = Vec::new();
        analyzer.token_stream(question).process(&mut |token| words.push((token.position, token.text.clone())));
        Self(words)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn texts(&self) -> Vec<String> {
        self.0.iter().map(|(_, text)| text.clone()).collect()
    }
}

/// The query for `words` over `field`, which must be indexed with positions.
pub(crate) fn build(field: Field, words: &Words, synonyms: &Synonyms) -> BooleanQuery {
    let term = |text: &str| Term::from_field_text(field, text);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut own: HashSet<&str> = HashSet::new();
    for (_, text) in &words.0 {
        if own.insert(text) {
            clauses.push((Occur::Should, Box::new(TermQuery::new(term(text), IndexRecordOption::WithFreqs))));
        }
    }

    // Within a group the best-matching alternative counts, not their sum:
    // a passage that happens to use three words for "password" is not
    // three times as relevant.
    let texts = words.texts();
    let mut seen: HashSet<&[String]> = HashSet::new();
    for found in synonyms.find(&texts) {
        let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
        for alternative in found.alternatives {
            if alternative.iter().all(|w| own.contains(w.as_str())) || !seen.insert(alternative) {
                continue;
            }
            alternatives.push(match alternative {
                [single] => Box::new(TermQuery::new(term(single), IndexRecordOption::WithFreqs)),
                several => Box::new(PhraseQuery::new(several.iter().map(|w| term(w)).collect())),
            });
        }
        if !alternatives.is_empty() {
            let best = DisjunctionMaxQuery::new(alternatives);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(best), SYNONYM_WEIGHT))));
        }
    }

    for pair in words.0.windows(2) {
        let ((first_at, first), (second_at, second)) = (&pair[0], &pair[1]);
        if first == second {
            continue;
        }
        let gap = second_at.saturating_sub(*first_at).max(1);
        let phrase = PhraseQuery::new_with_offset_and_slop(vec![(0, term(first)), (gap, term(second))], PROXIMITY_SLOP);
        clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(phrase), PROXIMITY_WEIGHT))));
    }
    BooleanQuery::new(clauses)
}
