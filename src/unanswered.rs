//! Questions the documents could not answer: why a turn counts as one, and
//! how the admin sees them, with the same question in other words counted
//! together so the most needed document shows first.

use crate::knowledge::analyzer;
use crate::knowledge::Passage;
use crate::store::UnansweredQuestion;
use std::collections::BTreeSet;

/// Two questions whose key terms overlap at least this much (Jaccard) are
/// the same question in other words: "brp biaya cabut gigi" and "biaya
/// cabut gigi berapa ya kak" share all of theirs.
const SIMILAR: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nothing in the documents matched.
    NoPassages,
    /// The best passage scored below `KNOWLEDGE_MIN_SCORE`.
    LowScore,
    /// The model wrote the prompt contract's "I do not know" marker.
    ModelUnsure,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoPassages => "no_passages",
            Reason::LowScore => "low_score",
            Reason::ModelUnsure => "model_unsure",
        }
    }

    /// Why retrieval alone says the documents lack the answer, if it does.
    pub fn of_retrieval(passages: &[Passage], min_score: f32) -> Option<Self> {
        match top_score(passages) {
            None => Some(Reason::NoPassages),
            Some(best) if best < min_score => Some(Reason::LowScore),
            Some(_) => None,
        }
    }
}

/// The best passage's score, for the record.
pub fn top_score(passages: &[Passage]) -> Option<f32> {
    passages.iter().map(|p| p.score).reduce(f32::max)
}

/// Questions asked in similar words.
#[derive(Debug, Clone)]
pub struct Group {
    /// Newest first; the first is the example shown.
    pub questions: Vec<UnansweredQuestion>,
    pub reasons: BTreeSet<String>,
    terms: BTreeSet<String>,
}

impl Group {
    pub fn latest(&self) -> &UnansweredQuestion {
        &self.questions[0]
    }

    pub fn ids(&self) -> Vec<i64> {
        self.questions.iter().map(|q| q.id).collect()
    }
}

/// Groups `questions` (newest first) by similar wording; the most asked
/// first, then the most recently asked. Each question joins the first
/// group whose newest wording is similar enough.
pub fn group(questions: Vec<UnansweredQuestion>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for question in questions {
        let terms = key_terms(&question.question);
        let similar = groups.iter_mut().find(|group| similar(&group.terms, &terms));
        match similar {
            Some(group) => {
                group.reasons.insert(question.reason.clone());
                group.questions.push(question);
            }
            None => groups.push(Group {
                reasons: BTreeSet::from([question.reason.clone()]),
                questions: vec![question],
                terms,
            }),
        }
    }
    groups
        .sort_by(|a, b| b.questions.len().cmp(&a.questions.len()).then(b.latest().asked_at.cmp(&a.latest().asked_at)));
    groups
}

/// The analyzer's terms (spellings normalised, stems, no stop words); a
/// question of stop words only keeps its lower-cased words, so "halo kak"
/// still groups with "Halo kak!".
fn key_terms(question: &str) -> BTreeSet<String> {
    let mut analyzer = analyzer::indonesian();
    let mut terms = BTreeSet::new();
    analyzer.token_stream(question).process(&mut |token| {
        terms.insert(token.text.clone());
    });
    if terms.is_empty() {
        terms.extend(analyzer::words(question));
    }
    terms
}

fn similar(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    if a.is_empty() || b.is_empty() {
        return a == b;
    }
    let shared = a.intersection(b).count();
    shared as f64 / (a.len() + b.len() - shared) as f64 >= SIMILAR
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(id: i64, question: &str, at: i64) -> UnansweredQuestion {
        UnansweredQuestion {
            id,
            user_id: id,
            person: None,
            question: question.into(),
            reason: "low_score".into(),
            top_score: None,
            asked_at: at,
        }
    }

    #[test]
    fn similar_wordings_group_and_the_most_asked_come_first() {
        let groups = group(vec![
            asked(4, "jam berapa apotek tutup?", 40),
            asked(3, "brp biaya cabut gigi", 30),
            asked(2, "Biaya cabut gigi berapa ya kak?", 20),
            asked(1, "ada parkir motor?", 10),
        ]);
        let ids: Vec<Vec<i64>> = groups.iter().map(Group::ids).collect();
        assert_eq!(ids, [vec![3, 2], vec![4], vec![1]]);
        assert_eq!(groups[0].latest().question, "brp biaya cabut gigi");
    }

    #[test]
    fn retrieval_reasons_follow_the_best_score() {
        let passage = |score| Passage {
            title: "T".into(),
            file: "t.md".into(),
            page: None,
            heading: None,
            text: "x".into(),
            score,
        };
        assert_eq!(Reason::of_retrieval(&[], 12.0), Some(Reason::NoPassages));
        assert_eq!(Reason::of_retrieval(&[passage(3.0), passage(11.9)], 12.0), Some(Reason::LowScore));
        assert_eq!(Reason::of_retrieval(&[passage(3.0), passage(12.5)], 12.0), None);
        assert_eq!(top_score(&[passage(3.0), passage(12.5)]), Some(12.5));
    }
}
