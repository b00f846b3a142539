//! Finding the documents under `KNOWLEDGE_DIR` and turning each into text
//! pages. PDF parsing is the one place where a file from outside can burn
//! CPU or panic inside a dependency, so it runs on a blocking thread, behind
//! `catch_unwind`, with a time limit.

use super::pdf;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A document found on disk, before extraction.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Path relative to the knowledge directory, with `/` separators: the
    /// name admins see in reports and the key of the manifest.
    pub rel: String,
    pub path: PathBuf,
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Pdf,
    Markdown,
    Text,
    /// Office and web formats an admin may reasonably drop in: reported as
    /// skipped so they know why the bot ignores them.
    Unsupported,
}

/// A document's text, page by page, as headings and paragraphs. Markdown
/// and text files are one page without a number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Extracted {
    pub title: String,
    pub paged: bool,
    pub pages: Vec<Vec<Block>>,
}

impl Extracted {
    pub fn has_text(&self) -> bool {
        self.pages.iter().flatten().any(|block| !block.text().trim().is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Block {
    /// Level 1 is a chapter ("#", "Bab 3"), 2 a section ("##", "3.1"), and
    /// so on.
    Heading {
        level: usize,
        text: String,
    },
    Paragraph(String),
}

impl Block {
    pub fn text(&self) -> &str {
        match self {
            Block::Heading { text, .. } | Block::Paragraph(text) => text,
        }
    }
}

/// Walks `dir` recursively, in a stable order. Hidden entries and files of
/// other kinds (images, licence notes) are left out silently; directory
/// symlinks are not followed, so a link loop cannot trap the walk.
pub(crate) fn discover(dir: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if !(kind.is_file() || kind.is_symlink() && path.is_file()) {
                continue;
            }
            let Some(format) = format_of(&name) else { continue };
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            found.push(SourceFile { rel, path, format });
        }
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(found)
}

fn format_of(name: &str) -> Option<Format> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "pdf" => Some(Format::Pdf),
        "md" | "markdown" => Some(Format::Markdown),
        "txt" => Some(Format::Text),
        "doc" | "docx" | "odt" | "rtf" | "xls" | "xlsx" | "ods" | "ppt" | "pptx" | "html" | "htm" | "epub" => {
            Some(Format::Unsupported)
        }
        _ => None,
    }
}

/// Turns a file's bytes into pages, or says in words an admin understands
/// why the file cannot be used.
pub(crate) async fn extract(file: &SourceFile, bytes: Vec<u8>, limit: Duration) -> Result<Extracted, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let fallback_title = title_from_file_name(&file.rel);
    match file.format {
        Format::Unsupported => Err("this format is not supported; save it as PDF, Markdown or text".into()),
        Format::Markdown | Format::Text => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let title = markdown_title(&text).unwrap_or(fallback_title);
            require_text(Extracted { title, paged: false, pages: vec![markdown_blocks(&text)] })
        }
        Format::Pdf => {
            let pages = pdf_pages(bytes, limit).await?;
            if pages.is_empty() {
                return Err("the PDF has no pages (damaged or looping page tree)".into());
            }
            require_text(Extracted { title: fallback_title, paged: true, pages })
        }
    }
}

fn require_text(document: Extracted) -> Result<Extracted, String> {
    if !document.has_text() {
        Err("no text found (a scan without OCR?); export it with a text layer".into())
    } else {
        Ok(document)
    }
}

async fn pdf_pages(bytes: Vec<u8>, limit: Duration) -> Result<Vec<Vec<Block>>, String> {
    let parse = tokio::task::spawn_blocking(move || std::panic::catch_unwind(|| pdf::read(&bytes)));
    // A parse that overruns keeps its thread until it ends on its own (a
    // thread cannot be killed), but the index build goes on without it.
    match tokio::time::timeout(limit, parse).await {
        Err(_) => Err(format!("reading the PDF took longer than {} s", limit.as_secs_f64())),
        Ok(Err(_)) | Ok(Ok(Err(_))) => Err("the PDF reader crashed on this file (damaged PDF?)".into()),
        Ok(Ok(Ok(Err(error)))) => Err(error.to_string()),
        Ok(Ok(Ok(Ok(pages)))) => Ok(pages),
    }
}

/// A customer's document as plain text, read by the same guarded reader as
/// the business's own documents; the error says why in words.
pub async fn read_customer_document(bytes: Vec<u8>, is_pdf: bool, limit: Duration) -> Result<String, String> {
    if bytes.is_empty() {
        return Err("berkas kosong".into());
    }
    let blocks: Vec<Block> = if is_pdf {
        pdf_pages(bytes, limit).await?.into_iter().flatten().collect()
    } else {
        markdown_blocks(&String::from_utf8_lossy(&bytes))
    };
    let text = blocks.iter().map(Block::text).filter(|t| !t.trim().is_empty()).collect::<Vec<_>>().join("\n");
    if text.trim().is_empty() {
        return Err("tidak ada teks (hasil pindai tanpa OCR?)".into());
    }
    Ok(text)
}

/// The text of a PDF's lines as laid out (words apart, before running
/// heads and contents pages are dropped): for the extraction tests.
#[doc(hidden)]
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    pdf::plain_text(bytes).map_err(|error| error.to_string())
}

/// "layanan/panduan-layanan_2025.pdf" -> "Panduan Layanan 2025": a readable
/// name for citations when the document carries no title we can trust.
fn title_from_file_name(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let stem = name.split('.').next().unwrap_or(name);
    let words: Vec<String> = stem
        .split(['-', '_', ' '])
        .filter(|w| !w.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
        })
        .collect();
    if words.is_empty() {
        name.to_owned()
    } else {
        words.join(" ")
    }
}

fn markdown_title(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("# "))
        .map(|title| title.trim().to_owned())
        .filter(|title| !title.is_empty())
}

/// Headings ("## Jam buka") and the paragraphs between them (split at
/// blank lines) of a Markdown or text file.
pub(crate) fn markdown_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines: Vec<&str> = Vec::new();
    let finish = |lines: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !lines.is_empty() {
            blocks.push(Block::Paragraph(lines.join("\n")));
            lines.clear();
        }
    };
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            finish(&mut lines, &mut blocks);
        } else if let Some((level, title)) = markdown_heading(line.trim()) {
            finish(&mut lines, &mut blocks);
            blocks.push(Block::Heading { level, text: title });
        } else {
            lines.push(line);
        }
    }
    finish(&mut lines, &mut blocks);
    blocks
}

fn markdown_heading(line: &str) -> Option<(usize, String)> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    let rest = line.get(hashes..)?;
    (1..=6).contains(&hashes).then_some(())?;
    let title = rest.strip_prefix(' ')?.trim().trim_end_matches('#').trim();
    (!title.is_empty()).then(|| (hashes, title.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(rel: &str, format: Format) -> SourceFile {
        SourceFile { rel: rel.into(), path: PathBuf::from(rel), format }
    }

    #[test]
    fn titles_come_from_file_names_or_the_first_heading() {
        assert_eq!(title_from_file_name("a/panduan-layanan_2025.pdf"), "Panduan Layanan 2025");
        assert_eq!(title_from_file_name("referensi-debian.id.pdf"), "Referensi Debian");
        assert_eq!(markdown_title("intro\n# Klinik Sehat\n## Jam"), Some("Klinik Sehat".into()));
    }

    #[test]
    fn discovery_is_recursive_sorted_and_skips_hidden_and_unknown_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        for name in ["b.md", "a.PDF", "sub/c.txt", ".hidden.md", "logo.png", "sub/d.docx"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let found: Vec<_> = discover(dir.path()).unwrap().into_iter().map(|f| (f.rel, f.format)).collect();
        assert_eq!(
            found,
            [
                ("a.PDF".into(), Format::Pdf),
                ("b.md".into(), Format::Markdown),
                ("sub/c.txt".into(), Format::Text),
                ("sub/d.docx".into(), Format::Unsupported)
            ]
        );
    }

    #[tokio::test]
    async fn empty_blank_and_unsupported_files_are_refused_with_a_reason() {
        let limit = Duration::from_secs(5);
        let empty = extract(&source("a.pdf", Format::Pdf), Vec::new(), limit).await.unwrap_err();
        assert!(empty.contains("empty"));
        let blank = extract(&source("a.md", Format::Markdown), b"  \n\n ".to_vec(), limit).await.unwrap_err();
        assert!(blank.contains("no text"));
        let docx = extract(&source("a.docx", Format::Unsupported), b"PK".to_vec(), limit).await.unwrap_err();
        assert!(docx.contains("not supported"));
        let garbage = extract(&source("a.pdf", Format::Pdf), b"%PDF-1.4 nonsense".to_vec(), limit).await.unwrap_err();
        assert!(garbage.contains("PDF"), "{garbage}");
    }

    #[tokio::test]
    async fn markdown_keeps_its_text_as_one_unnumbered_page() {
        let doc = extract(&source("x.md", Format::Markdown), b"# Judul\n\nIsi.".to_vec(), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(doc.title, "Judul");
        assert!(!doc.paged);
        assert_eq!(doc.pages, [[Block::Heading { level: 1, text: "Judul".into() }, Block::Paragraph("Isi.".into())]]);
    }
}
