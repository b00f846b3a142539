//! Text analysis for Indonesian business documents and the informal WhatsApp questions asked
//! about them. Both sides go through the same chain, so "brp biaya nya" meets "Berapa biayanya":
//!
//! words -> drop tokens of 40+ bytes -> lowercase -> ASCII folding -> informal spellings
//! (informal.tsv) -> stop words (stopwords.txt) -> stemming (stemmer.rs)

mod stemmer;

use std::collections::HashMap;
use std::str::CharIndices;
use std::sync::LazyLock;

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, StopWordFilter, TextAnalyzer, Token, TokenFilter, TokenStream,
    Tokenizer,
};

use stemmer::Stemmer;

/// Name under which to register [`indonesian`]: `index.tokenizers().register(INDONESIAN, indonesian())`.
pub const INDONESIAN: &str = "indonesian";

/// Tokens this long are identifiers, hashes or glued PDF text, not words worth indexing.
const MAX_TOKEN_BYTES: usize = 40;

/// The full analysis chain, for documents and queries alike.
pub fn indonesian() -> TextAnalyzer {
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(InformalSpelling)
        .filter(StopWordFilter::remove(stop_words().map(str::to_owned)))
        .filter(Stemming)
        .build()
}

/// The words of `text` as the analyzer reads them (spellings, stems), but with every word kept:
/// for matching phrases such as the handoff list, where "sama" and "ke" are what matters.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut analyzer = TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(InformalSpelling)
        .filter(Stemming)
        .build();
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    stream.process(&mut |token| words.push(token.text.clone()));
    words
}

/// Whether a lowercase word, or the root it stems to, is in the stemmer's dictionary: the
/// extraction test's way to tell a long real word from words glued together.
#[doc(hidden)]
pub fn is_dictionary_word(word: &str) -> bool {
    STEMMER.knows(word)
}

type InformalTable = HashMap<&'static str, Box<[&'static str]>>;

static INFORMAL: LazyLock<InformalTable> = LazyLock::new(|| parse_informal(include_str!("informal.tsv")));

/// Informal spellings of single content words ("bikin" -> "buat"), which may also turn up as
/// stems ("dibikin"). Spellings of stop words stay out: as stems they would only resurrect
/// the stop word ("penuh" must not end as "tuh" -> "itu").
static COLLOQUIAL_ROOTS: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    let stop: Vec<&str> = stop_words().collect();
    INFORMAL
        .iter()
        .filter_map(|(informal, formal)| match formal[..] {
            [word] if !stop.contains(&word) => Some((*informal, word)),
            _ => None,
        })
        .collect()
});

/// Stops early at colloquial roots, so "dibikin" becomes "bikin" (then "buat"), not "bik".
/// Three-letter spellings are left out: stripping real words reaches them too easily
/// ("rekannya" -> "rek", an informal "rekening").
static STEMMER: LazyLock<Stemmer> =
    LazyLock::new(|| Stemmer::new(COLLOQUIAL_ROOTS.keys().copied().filter(|informal| informal.len() > 3)));

fn parse_informal(table: &'static str) -> InformalTable {
    data_lines(table)
        .filter_map(|line| line.split_once('\t'))
        .map(|(informal, formal)| (informal.trim(), formal.split_whitespace().collect::<Box<[_]>>()))
        .filter(|(informal, formal)| !informal.is_empty() && !formal.is_empty())
        .collect()
}

fn stop_words() -> impl Iterator<Item = &'static str> {
    data_lines(include_str!("stopwords.txt")).map(str::trim)
}

fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
}

/// Splits on anything that is not a letter or digit, like tantivy's `SimpleTokenizer`, but
/// keeps words whole across characters that PDF extraction and phones put inside them: soft
/// hyphens, zero-width joiners, combining accents, and apostrophes ("Jum'at", "ré\u{ad}sumé").
#[derive(Clone, Default)]
struct WordTokenizer {
    token: Token,
}

struct WordStream<'a> {
    chars: CharIndices<'a>,
    token: &'a mut Token,
    next_position: usize,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream { chars: text.char_indices(), token: &mut self.token, next_position: 0 }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        let Some((from, first)) = self.chars.find(|(_, c)| c.is_alphanumeric()) else {
            return false;
        };
        self.token.text.push(first);
        let mut to = from + first.len_utf8();
        let mut ahead = self.chars.clone();
        while let Some((at, c)) = ahead.next() {
            if c.is_alphanumeric() {
                self.token.text.push(c);
            } else if !(is_invisible_in_word(c) || is_apostrophe_between_letters(c, &ahead)) {
                break;
            }
            to = at + c.len_utf8();
            self.chars = ahead.clone();
        }
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.next_position;
        self.next_position += 1;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

fn is_invisible_in_word(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{300}'..='\u{36f}')
}

fn is_apostrophe_between_letters(c: char, ahead: &CharIndices) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2bc}') && ahead.clone().next().is_some_and(|(_, next)| next.is_alphanumeric())
}

/// Rewrites informal spellings into formal words. One token may become several ("dmn" ->
/// "di mana"); the extra words take the following positions and shift the rest, so phrase
/// queries still line up. Works on its own copy of each token, so it does not depend on how
/// the tokenizer numbers positions.
#[derive(Clone)]
struct InformalSpelling;

#[derive(Clone)]
struct InformalSpellingFilter<T> {
    inner: T,
    token: Token,
}

struct InformalSpellingStream<'a, T> {
    tail: T,
    token: &'a mut Token,
    pending: &'static [&'static str],
    shift: usize,
}

impl TokenFilter for InformalSpelling {
    type Tokenizer<T: Tokenizer> = InformalSpellingFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> InformalSpellingFilter<T> {
        InformalSpellingFilter { inner, token: Token::default() }
    }
}

impl<T: Tokenizer> Tokenizer for InformalSpellingFilter<T> {
    type TokenStream<'a> = InformalSpellingStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        InformalSpellingStream { tail: self.inner.token_stream(text), token: &mut self.token, pending: &[], shift: 0 }
    }
}

impl<T: TokenStream> TokenStream for InformalSpellingStream<'_, T> {
    fn advance(&mut self) -> bool {
        if let Some((word, rest)) = self.pending.split_first() {
            self.pending = rest;
            self.shift += 1;
            self.token.position += 1;
            replace_text(&mut self.token.text, word);
            return true;
        }
        if !self.tail.advance() {
            return false;
        }
        copy_token(self.tail.token(), self.token, self.shift);
        tidy_spelling(&mut self.token.text);
        if let Some((first, rest)) = INFORMAL.get(self.token.text.as_str()).and_then(|words| words.split_first()) {
            replace_text(&mut self.token.text, first);
            self.pending = rest;
        }
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

fn copy_token(source: &Token, target: &mut Token, shift: usize) {
    target.offset_from = source.offset_from;
    target.offset_to = source.offset_to;
    target.position = source.position + shift;
    target.position_length = source.position_length;
    replace_text(&mut target.text, &source.text);
}

fn replace_text(text: &mut String, new: &str) {
    text.clear();
    text.push_str(new);
}

/// Reduplication written with a 2 ("tiba2", "sore2") keeps one copy, and letters stretched
/// for emphasis ("yaaa", "bangeeet") shrink back, so both find their table entry or stop word.
fn tidy_spelling(text: &mut String) {
    let bytes = text.as_bytes();
    if let [letters @ .., b'2'] = bytes {
        if letters.len() >= 3 && letters.iter().all(u8::is_ascii_alphabetic) {
            text.pop();
        }
    }
    if text.as_bytes().windows(3).any(|w| w[0] == w[1] && w[1] == w[2] && w[0].is_ascii_alphabetic()) {
        *text = collapse_stretched_letters(text);
    }
}

fn collapse_stretched_letters(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let mut run = 1;
        while chars.next_if_eq(&c).is_some() {
            run += 1;
        }
        let keep = if run >= 3 && c.is_ascii_alphabetic() { 1 } else { run };
        collapsed.extend(std::iter::repeat_n(c, keep));
    }
    collapsed
}

/// Stems every token, then maps stems that are informal spellings ("benerin" -> "bener") to
/// the stem of their formal word ("benar"), like whole informal words before.
#[derive(Clone)]
struct Stemming;

#[derive(Clone)]
struct StemmingFilter<T>(T);

struct StemmingStream<T>(T);

impl TokenFilter for Stemming {
    type Tokenizer<T: Tokenizer> = StemmingFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> StemmingFilter<T> {
        StemmingFilter(inner)
    }
}

impl<T: Tokenizer> Tokenizer for StemmingFilter<T> {
    type TokenStream<'a> = StemmingStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        StemmingStream(self.0.token_stream(text))
    }
}

impl<T: TokenStream> TokenStream for StemmingStream<T> {
    fn advance(&mut self) -> bool {
        if !self.0.advance() {
            return false;
        }
        let text = &mut self.0.token_mut().text;
        if STEMMER.stem(text).apply(text) {
            if let Some(formal) = COLLOQUIAL_ROOTS.get(text.as_str()) {
                replace_text(text, formal);
                STEMMER.stem(text).apply(text);
            }
        }
        true
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn analyze(text: &str) -> Vec<Token> {
        let mut analyzer = indonesian();
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        stream.process(&mut |token| tokens.push(token.clone()));
        tokens
    }

    fn tokens(text: &str) -> Vec<String> {
        analyze(text).into_iter().map(|token| token.text).collect()
    }

    #[test]
    fn whatsapp_questions_meet_formal_documents() {
        assert_eq!(tokens("gmn cara perpanjang sim"), ["cara", "panjang", "sim"]);
        assert_eq!(tokens("Perpanjangan SIM"), ["panjang", "sim"]);
        assert_eq!(tokens("Brp biaya nya?"), ["biaya"]);
        assert_eq!(tokens("Berapa biayanya"), ["biaya"]);
        assert_eq!(tokens("sy udh daftar tp blm dpt nomor"), ["daftar", "dapat", "nomor"]);
        assert_eq!(tokens("Saya sudah mendaftar tetapi belum mendapatkan nomor"), ["daftar", "dapat", "nomor"]);
        assert_eq!(tokens("kalo mau ngadu soal pelayanan lewat apa"), ["adu", "soal", "layan"]);
        assert_eq!(tokens("Pengaduan tentang layanan"), ["adu", "layan"]);
        assert_eq!(tokens("chown tu buat apa ya"), ["chown"]);
    }

    #[test]
    fn colloquial_stems_map_to_formal_words() {
        assert_eq!(tokens("gmn benerinnya"), ["benar"]);
        assert_eq!(tokens("dibikin"), ["buat"]);
        assert_eq!(tokens("keliatan"), ["lihat"]);
        assert_eq!(tokens("bs dibatesin"), ["batas"]);
        assert_eq!(tokens("ngabisin kuota"), ["habis", "kuota"]);
        // "penuh" reads as pe- + "tuh", an informal "itu": stop words do not come back as stems
        assert_eq!(tokens("penuh"), ["penuh"]);
    }

    #[test]
    fn expansions_take_following_positions() {
        let analyzed = analyze("bawa ke rs cepat");
        let positions: Vec<(&str, usize)> = analyzed.iter().map(|t| (t.text.as_str(), t.position)).collect();
        assert_eq!(positions, [("bawa", 0), ("rumah", 2), ("sakit", 3), ("cepat", 4)]);
        assert_eq!((analyzed[1].offset_from, analyzed[1].offset_to), (8, 10));
        assert_eq!((analyzed[2].offset_from, analyzed[2].offset_to), (8, 10));
    }

    #[test]
    fn discourse_particles_and_question_words_are_stop_words() {
        assert!(tokens("tu tuh sih dong deh kok nih ya kak min gan lho").is_empty());
        assert!(tokens("apa siapa kapan dmn knp gimana brp").is_empty());
        assert!(tokens("what is the way to do it").contains(&"way".to_owned()));
        assert_eq!(
            tokens("biaya syarat daftar nomor jam hari dapat"),
            ["biaya", "syarat", "daftar", "nomor", "jam", "hari", "dapat"]
        );
    }

    #[test]
    fn english_words_stay_usable() {
        assert_eq!(tokens("the installation of Debian on Linux"), ["installation", "debian", "linux"]);
        assert_eq!(tokens("install"), ["install"]);
        assert_eq!(tokens("menginstall paket"), ["install", "paket"]);
    }

    #[test]
    fn words_survive_pdf_and_phone_artefacts() {
        assert_eq!(tokens("ré\u{ad}sumé"), ["resume"]);
        assert_eq!(tokens("RÉSUMÉ"), ["resume"]);
        assert_eq!(tokens("re\u{301}sume\u{301}"), ["resume"]);
        assert_eq!(tokens("hari Jum'at dan Jum\u{2019}at"), ["hari", "jumat", "jumat"]);
        assert_eq!(tokens("'kutip'"), ["kutip"]);
        assert_eq!(tokens("anak-anak tiba2 datang"), ["anak", "anak", "tiba", "datang"]);
        assert_eq!(tokens("mahal bangeeet yaaa"), ["mahal"]);
        assert_eq!(tokens("ttyS0 dan ipv4"), ["ttys0", "ipv4"]);
    }

    #[test]
    fn nothing_in_gives_nothing_out() {
        for text in ["", " ", "?!.,", "😀🙏", "ya", "\u{ad}\u{200d}", &"x".repeat(60)] {
            assert!(tokens(text).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn random_text_never_panics_and_tokens_stay_well_formed() {
        let alphabet: Vec<char> =
            "aeiou mngkrstdbpy'-2\u{ad}\u{301}\u{2019}éßÆ字😀\u{200b}\u{feff}MENG PE di ke nya kan"
                .chars()
                .chain(['\u{0}', '\u{10ffff}', 'İ', 'ﬁ'])
                .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..3000 {
            let text: String = (0..seed % 40)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let analyzed = analyze(&text);
            assert!(analyzed.windows(2).all(|w| w[0].position < w[1].position), "{text:?}");
            assert!(analyzed.iter().all(|t| !t.text.is_empty() && text.get(t.offset_from..t.offset_to).is_some()));
        }
    }

    #[test]
    fn informal_table_is_well_formed() {
        let lines: Vec<&str> = data_lines(include_str!("informal.tsv")).collect();
        let mut keys = HashSet::new();
        for line in &lines {
            let (informal, formal) = line.split_once('\t').unwrap_or_else(|| panic!("no tab: {line:?}"));
            assert!(informal.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{line:?}");
            assert!(formal.split(' ').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())), "{line:?}");
            assert_ne!(informal, formal, "pointless entry");
            assert!(keys.insert(informal), "duplicate {informal}");
        }
        assert_eq!(INFORMAL.len(), lines.len());
        assert!(lines.len() >= 150);
    }

    #[test]
    fn stop_words_are_unique_and_leave_content_alone() {
        let words: Vec<&str> = stop_words().collect();
        let unique: HashSet<&str> = words.iter().copied().collect();
        assert_eq!(unique.len(), words.len());
        assert!((200..=350).contains(&words.len()), "{}", words.len());
        for content in ["biaya", "syarat", "daftar", "nomor", "jam", "hari", "dapat", "cara", "harga", "jadwal"] {
            assert!(!unique.contains(content), "{content}");
        }
    }
}
