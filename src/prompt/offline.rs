//! Answers without an LLM: when no API key is set, or OpenRouter fails
//! after its retries, the best passages themselves are the answer,
//! introduced honestly and with their sources.

use super::Prompts;
use crate::domain::Source;
use crate::knowledge::{unique_sources, Passage};

/// Passages quoted at most: more reads like a document dump on a phone.
const MAX_QUOTED: usize = 2;
/// A passage scoring below this share of the best one is left out.
const RELATIVE_SCORE: f32 = 0.5;
/// Characters quoted per passage, before cutting at a sentence end.
const MAX_QUOTE_CHARS: usize = 700;

pub struct OfflineAnswer {
    pub text: String,
    pub sources: Vec<Source>,
}

impl Prompts {
    /// The passages as a WhatsApp answer (Markdown, like an LLM's), or
    /// `None` when nothing relevant was found.
    pub fn offline_answer(&self, passages: &[Passage]) -> Option<OfflineAnswer> {
        let best = passages.iter().map(|p| p.score).fold(f32::MIN, f32::max);
        let quoted: Vec<&Passage> =
            passages.iter().filter(|p| p.score >= best * RELATIVE_SCORE).take(MAX_QUOTED).collect();
        if quoted.is_empty() {
            return None;
        }
        let mut text = self.offline_intro.clone();
        for passage in &quoted {
            let title = passage.heading.as_deref().and_then(|h| h.rsplit(" › ").next()).unwrap_or(&passage.title);
            text.push_str(&format!(
                "\n\n**{}**\n{}\n\n_({})_",
                title.trim(),
                quote(&passage.text, MAX_QUOTE_CHARS),
                passage.citation()
            ));
        }
        text.push_str("\n\n");
        text.push_str(&self.offline_outro);
        Some(OfflineAnswer { text, sources: unique_sources(quoted) })
    }
}

/// At most `max` characters of `text`, ending at a sentence end when one
/// is in the second half, else at a word end with "…".
fn quote(text: &str, max: usize) -> String {
    let text = text.trim();
    let Some((cut, _)) = text.char_indices().nth(max) else { return text.to_owned() };
    let head = &text[..cut];
    let sentence_end = head.rfind(['.', '?', '!']).filter(|&at| at >= cut / 2);
    match sentence_end {
        Some(at) => head[..=at].to_owned(),
        None => format!("{}…", head[..head.rfind(char::is_whitespace).unwrap_or(cut)].trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(heading: Option<&str>, text: &str, score: f32) -> Passage {
        Passage {
            title: "Panduan Klinik".into(),
            file: "klinik.md".into(),
            page: Some(3),
            heading: heading.map(Into::into),
            text: text.into(),
            score,
        }
    }

    #[test]
    fn quotes_the_best_passages_with_their_sources() {
        let passages = [
            passage(Some("7. Harga › 7.1 Konsultasi"), "Konsultasi dokter umum Rp 75.000.", 10.0),
            passage(Some("7. Harga › 7.2 Gigi"), "Pembersihan karang gigi Rp 250.000.", 6.0),
            passage(None, "Jam buka klinik 08.00.", 4.0),
        ];
        let answer = Prompts::builtin().offline_answer(&passages).unwrap();
        assert!(answer.text.starts_with("Berikut informasi dari dokumen kami:"));
        assert!(answer
            .text
            .contains("**7.1 Konsultasi**\nKonsultasi dokter umum Rp 75.000.\n\n_(Panduan Klinik, hlm. 3)_"));
        assert!(answer.text.contains("7.2 Gigi"));
        assert!(!answer.text.contains("Jam buka"), "below half the best score: {}", answer.text);
        assert_eq!(answer.sources.len(), 2);
        assert_eq!(answer.sources[0].heading.as_deref(), Some("7. Harga › 7.1 Konsultasi"));
    }

    #[test]
    fn nothing_to_quote_is_none() {
        assert!(Prompts::builtin().offline_answer(&[]).is_none());
    }

    #[test]
    fn long_passages_end_at_a_sentence_or_a_word() {
        let sentences = "Kalimat pertama cukup panjang. ".repeat(40);
        let cut = quote(&sentences, 100);
        assert!(cut.ends_with("panjang.") && cut.chars().count() <= 100, "{cut}");
        let words = "kata ".repeat(100);
        let cut = quote(&words, 50);
        assert!(cut.ends_with("kata…") && cut.chars().count() <= 51, "{cut}");
        assert_eq!(quote("pendek", 50), "pendek");
    }
}
