//! Reading a PDF into pages of headings and paragraphs. pdf-extract
//! interprets the content streams; its glyphs, with their positions and
//! sizes, are laid out here ([`layout`]) into lines whose words are kept
//! apart by the gaps between them, then running heads ([`running`]) and
//! contents pages ([`toc`]) are dropped, lines are joined into paragraphs
//! ([`paragraphs`], [`hyphen`]) and headings found from the outline
//! ([`outline`]) or from type size and numbering ([`headings`]).

mod headings;
mod hyphen;
mod layout;
mod outline;
mod paragraphs;
mod running;
mod toc;

use super::document::Block;
use layout::{GlyphCollector, Line};
use pdf_extract::{Document, OutputError};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PdfError {
    #[error("the PDF is encrypted (password protected); save an unprotected copy")]
    Encrypted,
    #[error("the PDF cannot be read: {0}")]
    Unreadable(Box<OutputError>),
}

/// The pages of a PDF as blocks, in page order. A page whose content the
/// reader cannot interpret (or panics on) comes back empty, so one broken
/// page does not cost the rest of the document.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<Vec<Block>>, PdfError> {
    let doc = load(bytes)?;
    let mut pages: Vec<Vec<Line>> = doc.get_pages().into_keys().map(|number| page_lines(&doc, number)).collect();
    let body_size = headings::body_size(&pages);
    running::remove_running_lines(&mut pages, body_size);
    for lines in &mut pages {
        if toc::is_contents_page(lines) {
            lines.clear();
        }
        lines.retain(|line| !toc::is_leader_line(&line.text));
    }
    let vocabulary = hyphen::Vocabulary::of(&pages);
    let paragraphs = pages.iter().map(|lines| paragraphs::paragraphs(lines, &vocabulary)).collect();
    Ok(headings::blocks(paragraphs, &outline::read(&doc), body_size))
}

/// The lines of every page as laid out, before anything is dropped or
/// joined: the text whose words the extraction tests compare with other
/// readers.
pub(crate) fn plain_text(bytes: &[u8]) -> Result<String, PdfError> {
    let doc = load(bytes)?;
    let pages: Vec<String> = doc
        .get_pages()
        .into_keys()
        .map(|number| page_lines(&doc, number).into_iter().map(|line| line.text).collect::<Vec<_>>().join("\n"))
        .collect();
    Ok(pages.join("\n\n"))
}

fn load(bytes: &[u8]) -> Result<Document, PdfError> {
    let mut doc = Document::load_mem(bytes).map_err(|e| unreadable(e.into()))?;
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(PdfError::Encrypted);
    }
    Ok(doc)
}

fn unreadable(error: OutputError) -> PdfError {
    match &error {
        OutputError::PdfError(e) if is_about_encryption(&e.to_string()) => PdfError::Encrypted,
        _ => PdfError::Unreadable(Box::new(error)),
    }
}

fn is_about_encryption(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["decrypt", "password", "encrypt"].iter().any(|word| lower.contains(word))
}

fn page_lines(doc: &Document, number: u32) -> Vec<Line> {
    let mut collector = GlyphCollector::default();
    let drawn = catch_unwind(AssertUnwindSafe(|| pdf_extract::output_doc_page(doc, &mut collector, number)));
    match drawn {
        Ok(Ok(())) => layout::lines(&collector.glyphs),
        Ok(Err(_)) | Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/knowledge/hostile/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    #[test]
    fn hostile_files_give_a_reason() {
        assert!(matches!(read(&hostile("terenkripsi.pdf")), Err(PdfError::Encrypted)));
        assert!(matches!(read(&hostile("sampah.pdf")), Err(PdfError::Unreadable(_))));
        let blank = read(&hostile("tanpa-teks.pdf")).unwrap();
        assert!(blank.iter().all(Vec::is_empty), "{blank:?}");
    }
}
