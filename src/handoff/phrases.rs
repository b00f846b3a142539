//! The phrases that mean "let me talk to a person"
//! (`prompts/handoff_phrases.txt`). Phrases, not keywords: "admin" alone is
//! also a fee.

use crate::phrases::Phrases;
use std::path::Path;

pub const FILE_NAME: &str = "handoff_phrases.txt";
const BUILT_IN: &str = include_str!("../../prompts/handoff_phrases.txt");

#[derive(Debug, Clone)]
pub struct HandoffPhrases(Phrases);

impl HandoffPhrases {
    /// Reads `dir/handoff_phrases.txt`; a missing, empty or broken file
    /// gives the built-in list, and the returned note says why.
    pub fn load(dir: &Path) -> (Self, Option<String>) {
        let (phrases, note) = Phrases::load(dir, FILE_NAME, BUILT_IN);
        (Self(phrases), note)
    }

    /// The shipped list (a unit test checks that it parses).
    pub fn builtin() -> Self {
        Self(Phrases::built_in(BUILT_IN))
    }

    /// The phrase (in its normalised words) that `text` asks for a person
    /// with, if any.
    pub fn asked_for_person(&self, text: &str) -> Option<String> {
        self.0.find_in(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> HandoffPhrases {
        HandoffPhrases(Phrases::parse(BUILT_IN).expect("the shipped list parses"))
    }

    #[test]
    fn every_phrase_of_the_shipped_list_asks_for_a_person() {
        let phrases = shipped();
        let examples: Vec<String> = phrases.0.examples().collect();
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
}
