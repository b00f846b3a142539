//! Words broken at a line end ("kepega-" / "waian"). Typesetters hyphenate
//! by syllables, so the halves are rarely words of their own and the whole
//! word is found only if they are joined. A hyphen that belongs to the text
//! ("kata-kata", "ssh-agent") is kept, still without a space. The stemmer's
//! dictionary is small, so the document itself says which spelling is
//! right: the words it prints whole elsewhere.

use super::layout::Line;
use crate::knowledge::analyzer::is_dictionary_word;
use std::collections::HashSet;

/// The lowercase words a document prints, hyphenated compounds included.
pub(crate) struct Vocabulary(HashSet<String>);

impl Vocabulary {
    pub fn of(pages: &[Vec<Line>]) -> Self {
        let words = pages.iter().flatten().flat_map(|line| line.text.split_whitespace());
        let trimmed = words.map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase());
        Self(trimmed.filter(|word| !word.is_empty()).collect())
    }

    fn has(&self, word: &str) -> bool {
        self.0.contains(word)
    }
}

/// Appends `line` to a paragraph's text: on a new line, or joined to the
/// word the paragraph ends with when that word was broken by a hyphen.
pub(crate) fn append_line(paragraph: &mut String, line: &str, vocabulary: &Vocabulary) {
    if paragraph.is_empty() {
        paragraph.push_str(line);
        return;
    }
    let Some(head) = paragraph.strip_suffix('-') else {
        paragraph.push('\n');
        paragraph.push_str(line);
        return;
    };
    let left: String = trailing_letters(head);
    let right: String = line.chars().take_while(|c| c.is_alphabetic()).collect();
    let continues_a_word = !left.is_empty() && right.chars().next().is_some_and(char::is_lowercase);
    if !continues_a_word {
        paragraph.push('\n');
    } else if is_broken_word(&left.to_lowercase(), &right.to_lowercase(), vocabulary) {
        paragraph.pop();
    }
    paragraph.push_str(line);
}

fn trailing_letters(text: &str) -> String {
    let mut letters: Vec<char> = text.chars().rev().take_while(|c| c.is_alphabetic()).collect();
    letters.reverse();
    letters.into_iter().collect()
}

/// Whether the hyphen between `left` and `right` was put there only to
/// break the line. A reduplication ("kata-kata") or a compound the
/// document prints with its hyphen elsewhere keeps it; otherwise the
/// syllable break, by far the commoner case, is undone.
fn is_broken_word(left: &str, right: &str, vocabulary: &Vocabulary) -> bool {
    let joined = format!("{left}{right}");
    if left == right {
        return false;
    }
    if vocabulary.has(&joined) || is_dictionary_word(&joined) {
        return true;
    }
    !vocabulary.has(&format!("{left}-{right}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(lines: &[&str], elsewhere: &[&str]) -> String {
        let vocabulary = Vocabulary(elsewhere.iter().map(|w| (*w).to_owned()).collect());
        let mut paragraph = String::new();
        for line in lines {
            append_line(&mut paragraph, line, &vocabulary);
        }
        paragraph
    }

    #[test]
    fn syllable_breaks_are_joined_into_the_word() {
        let text = joined(&["aplikasi ini di-", "gunakan oleh pe-", "gawai"], &[]);
        assert_eq!(text, "aplikasi ini digunakan oleh pegawai");
    }

    #[test]
    fn hyphens_of_the_text_stay_without_a_space() {
        assert_eq!(joined(&["semua kata-", "kata"], &[]), "semua kata-kata");
        assert_eq!(joined(&["jalankan ssh-", "agent bash"], &["ssh-agent"]), "jalankan ssh-agent bash");
        assert_eq!(joined(&["jalankan ssh-", "agent bash"], &["ssh-agent", "sshagent"]), "jalankan sshagent bash");
    }

    #[test]
    fn other_lines_are_kept_as_lines() {
        assert_eq!(joined(&["Langkah -", "lanjut"], &[]), "Langkah -\nlanjut");
        assert_eq!(joined(&["jam 08.00-", "16.00"], &[]), "jam 08.00-\n16.00");
        assert_eq!(joined(&["Bedas Digital-", "Services"], &[]), "Bedas Digital-\nServices");
        assert_eq!(joined(&["satu", "dua"], &[]), "satu\ndua");
    }

    #[test]
    fn the_vocabulary_holds_the_words_a_document_prints() {
        let line = Line { text: "Jalankan \"ssh-agent\", lalu".into(), y: 0.0, size: 10.0 };
        let vocabulary = Vocabulary::of(&[vec![line]]);
        assert!(vocabulary.has("ssh-agent") && vocabulary.has("jalankan") && !vocabulary.has("lalu,"));
    }
}
