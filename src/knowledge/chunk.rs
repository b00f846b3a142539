//! Cutting documents into passages: big enough to hold an answer with its
//! context, small enough that four of them fit a prompt. Passages never
//! cross a page (so each cites one page) and start afresh at a heading (so
//! each belongs to one section); consecutive passages share a little text so
//! an answer that straddles a cut is still whole in one of them.

use super::document::{Block, Extracted};

const TARGET_WORDS: usize = 180;
const MAX_WORDS: usize = 300;
const OVERLAP_WORDS: usize = 40;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub file: String,
    pub title: String,
    pub page: Option<u32>,
    pub heading: Option<String>,
    pub text: String,
}

/// A section introduction shorter than this stays with its first
/// subsection instead of becoming a passage of its own: alone it is too
/// thin to be found, and the subsection loses the context it gives.
const MIN_INTRO_WORDS: usize = 50;

pub(crate) fn chunk_document(file: &str, document: &Extracted) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut place = Place { file, title: &document.title, page: None, trail: Vec::new() };
    for (index, page) in document.pages.iter().enumerate() {
        place.page = document.paged.then(|| u32::try_from(index + 1).unwrap_or(u32::MAX));
        let mut builder = Builder::default();
        for block in page {
            match block {
                Block::Heading { level, text } => {
                    let opens_a_subsection = place.trail.last().is_some_and(|(parent, _)| level > parent);
                    if !(opens_a_subsection && builder.fresh < MIN_INTRO_WORDS) {
                        builder.flush(&mut chunks, &place, false);
                    }
                    place.enter(*level, text.clone());
                }
                Block::Paragraph(text) => {
                    for piece in split_long(text) {
                        builder.push(piece, &mut chunks, &place);
                    }
                }
            }
        }
        builder.flush(&mut chunks, &place, false);
    }
    chunks
}

/// Where the text being cut comes from: what every chunk made now records.
struct Place<'a> {
    file: &'a str,
    title: &'a str,
    page: Option<u32>,
    /// The open headings, outermost first, with their levels.
    trail: Vec<(usize, String)>,
}

impl Place<'_> {
    fn enter(&mut self, level: usize, heading: String) {
        while self.trail.last().is_some_and(|(open, _)| *open >= level) {
            self.trail.pop();
        }
        self.trail.push((level, heading));
    }

    /// "7. Daftar Harga › 7.1 Konsultasi": a subsection's passages carry
    /// the words of the sections around it.
    fn heading(&self) -> Option<String> {
        let names: Vec<&str> = self.trail.iter().map(|(_, name)| name.as_str()).collect();
        (!names.is_empty()).then(|| names.join(" › "))
    }
}

/// Paragraphs of one chunk in the making. `fresh` counts the words that are
/// not overlap from the previous chunk: a chunk of overlap alone is not
/// worth emitting.
#[derive(Default)]
struct Builder {
    paragraphs: Vec<String>,
    words: usize,
    fresh: usize,
}

impl Builder {
    fn push(&mut self, paragraph: String, out: &mut Vec<Chunk>, place: &Place) {
        let words = word_count(&paragraph);
        if self.words + words > MAX_WORDS {
            self.flush(out, place, true);
        }
        self.paragraphs.push(paragraph);
        self.words += words;
        self.fresh += words;
        if self.words >= TARGET_WORDS {
            self.flush(out, place, true);
        }
    }

    /// Emits the chunk; with `carry`, the next one starts with the tail of
    /// this one.
    fn flush(&mut self, out: &mut Vec<Chunk>, place: &Place, carry: bool) {
        if self.fresh == 0 {
            *self = Self::default();
            return;
        }
        let text = self.paragraphs.join("\n\n");
        let tail = if carry { overlap_tail(&self.paragraphs) } else { None };
        out.push(Chunk {
            file: place.file.to_owned(),
            title: place.title.to_owned(),
            page: place.page,
            heading: place.heading(),
            text,
        });
        *self = Self::default();
        if let Some(tail) = tail {
            self.words = word_count(&tail);
            self.paragraphs.push(tail);
        }
    }
}

/// The last whole paragraph if it is short, else the last sentences of it
/// that fit in the overlap, else its last words.
fn overlap_tail(paragraphs: &[String]) -> Option<String> {
    let last = paragraphs.last()?;
    if word_count(last) <= OVERLAP_WORDS {
        return Some(last.clone());
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut words = 0;
    for sentence in sentences(last).rev() {
        words += word_count(sentence);
        if words > OVERLAP_WORDS {
            break;
        }
        kept.push(sentence);
    }
    if kept.is_empty() {
        let words: Vec<&str> = last.split_whitespace().collect();
        return Some(words[words.len().saturating_sub(OVERLAP_WORDS)..].join(" "));
    }
    kept.reverse();
    Some(kept.concat().trim().to_owned())
}

/// Sentences with their trailing space kept, so concatenating them gives
/// back the text.
fn sentences(text: &str) -> impl DoubleEndedIterator<Item = &str> {
    let mut cuts = vec![0];
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'?' | b'!' | b'\n') && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace) {
            cuts.push(i + 2);
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    let pieces: Vec<&str> = cuts.windows(2).map(|w| &text[w[0]..w[1]]).filter(|s| !s.trim().is_empty()).collect();
    pieces.into_iter()
}

/// A paragraph longer than a chunk is cut at sentence ends, or at words
/// when a "sentence" is itself too long (tables, code).
fn split_long(paragraph: &str) -> Vec<String> {
    if word_count(paragraph) <= MAX_WORDS {
        return vec![paragraph.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    for sentence in sentences(paragraph) {
        for part in split_words(sentence) {
            if word_count(&current) + word_count(&part) > TARGET_WORDS && !current.trim().is_empty() {
                pieces.push(current.trim().to_owned());
                current.clear();
            }
            current.push_str(&part);
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current.trim().to_owned());
    }
    pieces
}

fn split_words(sentence: &str) -> Vec<String> {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    if words.len() <= TARGET_WORDS {
        return vec![sentence.to_owned()];
    }
    words.chunks(TARGET_WORDS).map(|group| group.join(" ") + " ").collect()
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::document::markdown_blocks;

    fn pdf(pages: &[&str]) -> Extracted {
        Extracted { title: "Panduan".into(), paged: true, pages: pages.iter().map(|p| markdown_blocks(p)).collect() }
    }

    fn words(n: usize, word: &str) -> String {
        vec![word; n].join(" ") + "."
    }

    #[test]
    fn passages_remember_file_page_and_heading() {
        let doc = pdf(&["## 1.2 Biaya layanan\n\nBiaya pendaftaran Rp 50.000.", "Jam buka 08.00."]);
        let chunks = chunk_document("panduan.pdf", &doc);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].heading.as_deref(), Some("1.2 Biaya layanan"));
        assert_eq!((chunks[0].page, chunks[1].page), (Some(1), Some(2)));
        assert_eq!(chunks[1].heading.as_deref(), Some("1.2 Biaya layanan"), "the section goes on over the page");
        assert_eq!(chunks[0].text, "Biaya pendaftaran Rp 50.000.");
        assert_eq!((chunks[1].file.as_str(), chunks[1].title.as_str()), ("panduan.pdf", "Panduan"));
    }

    #[test]
    fn long_pages_become_several_overlapping_passages_of_bounded_size() {
        let paragraphs: Vec<String> = (0..12).map(|i| words(60, &format!("kata{i}"))).collect();
        let chunks = chunk_document("a.pdf", &pdf(&[&paragraphs.join("\n\n")]));
        assert!(chunks.len() >= 4, "{}", chunks.len());
        for pair in chunks.windows(2) {
            assert!(word_count(&pair[0].text) <= MAX_WORDS);
            let last_paragraph = pair[0].text.rsplit("\n\n").next().unwrap();
            let shared = last_paragraph.split_whitespace().rev().take(5).all(|w| pair[1].text.contains(w));
            assert!(shared, "consecutive passages overlap");
        }
        let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert!((0..12).all(|i| all.contains(&format!("kata{i}"))), "nothing is lost");
    }

    #[test]
    fn one_huge_paragraph_is_cut_at_sentences() {
        let sentence = format!("{} ", words(50, "isi"));
        let chunks = chunk_document("a.pdf", &pdf(&[&sentence.repeat(20)]));
        assert!(chunks.len() >= 4);
        assert!(chunks.iter().all(|c| word_count(&c.text) <= MAX_WORDS && c.text.ends_with('.')));
    }

    #[test]
    fn markdown_sections_carry_their_heading_path_and_short_intros_join_their_first_subsection() {
        let text = "# Klinik\n\nSelamat datang.\n\n## Jam buka\n\nSenin 08.00.\n\n## Biaya\n\nKonsultasi Rp75.000.\n\n\
                    ### Gigi\n\nTambal Rp100.000.\n\n# Lain\n\nParkir gratis.";
        let doc = Extracted { title: "Klinik".into(), paged: false, pages: vec![markdown_blocks(text)] };
        let chunks = chunk_document("k.md", &doc);
        let sections: Vec<_> = chunks.iter().map(|c| (c.heading.as_deref().unwrap(), c.text.as_str())).collect();
        assert_eq!(
            sections,
            [
                ("Klinik › Jam buka", "Selamat datang.\n\nSenin 08.00."),
                ("Klinik › Biaya › Gigi", "Konsultasi Rp75.000.\n\nTambal Rp100.000."),
                ("Lain", "Parkir gratis."),
            ]
        );
        assert!(chunks.iter().all(|c| c.page.is_none()));
    }

    #[test]
    fn sentences_are_recognised() {
        let parts: Vec<&str> = sentences("Satu. Dua? Tiga 1.5 kg! Empat").collect();
        assert_eq!(parts, ["Satu. ", "Dua? ", "Tiga 1.5 kg! ", "Empat"]);
    }
}
