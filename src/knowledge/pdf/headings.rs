//! Which paragraphs are section headings, and at what level. The outline,
//! where the file has one, names them; otherwise a heading is a short
//! paragraph set larger than the body text, or one whose section number
//! continues the numbering of the headings before it. A numbered list item
//! in body text ("4. Menjalankan ...") is neither.

use super::layout::{Line, CELL_SEPARATOR};
use super::outline::Entry;
use super::paragraphs::Paragraph;
use crate::knowledge::document::Block;

/// Longer than this, a paragraph is text, whatever its size.
const MAX_HEADING_CHARS: usize = 120;
const MAX_HEADING_LINES: usize = 3;
/// Larger than the body text by this factor is a heading size.
const HEADING_SIZE_RATIO: f64 = 1.12;
/// Heading sizes below the largest few share the deepest level.
const MAX_SIZE_LEVELS: usize = 4;
/// Heading sizes within this factor of the largest size of a level share
/// that level: designers set long chapter titles a little smaller to fit
/// the line, which must not make them subsections of the chapter before.
const SAME_LEVEL_RATIO: f64 = 0.7;

/// The size most letters of the document are set in.
pub(crate) fn body_size(pages: &[Vec<Line>]) -> f64 {
    let mut letters: Vec<(f64, usize)> = Vec::new();
    for line in pages.iter().flatten() {
        let size = round(line.size);
        let count = line.text.chars().filter(|c| c.is_alphanumeric()).count();
        match letters.iter_mut().find(|(s, _)| *s == size) {
            Some((_, n)) => *n += count,
            None => letters.push((size, count)),
        }
    }
    letters.into_iter().max_by_key(|(_, n)| *n).map_or(0.0, |(size, _)| size)
}

/// Half-point steps: sizes that differ less are one size.
fn round(size: f64) -> f64 {
    (size * 2.0).round() / 2.0
}

/// The blocks of every page, headings marked.
pub(crate) fn blocks(pages: Vec<Vec<Paragraph>>, outline: &[Entry], body_size: f64) -> Vec<Vec<Block>> {
    if outline.is_empty() {
        by_appearance(pages, body_size)
    } else {
        by_outline(pages, outline, body_size)
    }
}

/// A heading's text on one line: the number and title of a heading are
/// often set apart like table cells. A title drawn twice (a shadow or an
/// outline effect over the text) is kept once.
fn heading_text(paragraph: &Paragraph) -> String {
    let text = paragraph.text.replace(CELL_SEPARATOR, " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    let (first, second) = words.split_at(words.len() / 2);
    if first.len() == second.len() && first == second {
        first.join(" ")
    } else {
        words.join(" ")
    }
}

fn may_be_heading(paragraph: &Paragraph, body_size: f64) -> bool {
    let text = paragraph.text.trim();
    paragraph.lines <= MAX_HEADING_LINES
        && text.chars().count() <= MAX_HEADING_CHARS
        && text.chars().any(char::is_alphabetic)
        && !text.ends_with(['.', ',', ';', ':'])
        && paragraph.size >= body_size - 0.25
}

/// Letters and digits only, lowercase: how a title is compared with the
/// text the page prints for it.
fn key(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Headings are the paragraphs that print an outline entry's title (maybe
/// after its number: "Bab 6" or "6.3.5" before the outline's words) on the
/// page the entry points to, or the page after it.
fn by_outline(pages: Vec<Vec<Paragraph>>, outline: &[Entry], body_size: f64) -> Vec<Vec<Block>> {
    let mut waiting: Vec<&Entry> = Vec::new();
    let mut result = Vec::with_capacity(pages.len());
    for (index, page) in pages.into_iter().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        // Entries of earlier pages that did not show up there may be on
        // this one (a destination set just above a page break).
        waiting.retain(|entry| entry.page + 1 >= number);
        waiting.extend(outline.iter().filter(|entry| entry.page == number));
        let mut blocks = Vec::with_capacity(page.len());
        for paragraph in page {
            let found = may_be_heading(&paragraph, body_size)
                .then(|| waiting.iter().position(|entry| prints_title(&paragraph, &entry.title)))
                .flatten();
            match found {
                Some(at) => {
                    let entry = waiting.remove(at);
                    let (level, text) = with_label(&mut blocks, entry.level, heading_text(&paragraph));
                    blocks.push(Block::Heading { level, text });
                }
                None => blocks.push(Block::Paragraph(paragraph.text)),
            }
        }
        result.push(blocks);
    }
    result
}

fn prints_title(paragraph: &Paragraph, title: &str) -> bool {
    let (printed, title) = (key(&paragraph.text), key(title));
    if title.is_empty() {
        return false;
    }
    printed == title || printed.strip_suffix(&title).is_some_and(is_label)
}

/// What may precede a title: "bab6", "6.3.5" (as "635"), "a", "lampiranb".
fn is_label(prefix: &str) -> bool {
    prefix.chars().count() <= 12 && (prefix.chars().any(|c| c.is_ascii_digit()) || prefix.chars().count() <= 1)
}

/// Without an outline: size first, then numbering.
fn by_appearance(pages: Vec<Vec<Paragraph>>, body_size: f64) -> Vec<Vec<Block>> {
    let is_large = |p: &Paragraph| may_be_heading(p, body_size) && p.size >= body_size * HEADING_SIZE_RATIO;
    let levels = size_levels(pages.iter().flatten().filter(|p| is_large(p)).map(|p| p.size));
    let size_level = |size: f64| levels.iter().filter(|start| **start >= round(size)).count().clamp(1, MAX_SIZE_LEVELS);
    let mut open: Vec<u32> = Vec::new();
    let mut result = Vec::with_capacity(pages.len());
    for page in pages {
        let mut blocks = Vec::with_capacity(page.len());
        for paragraph in page {
            let text = heading_text(&paragraph);
            let number = section_number(&text);
            let level = if is_large(&paragraph) {
                Some(number.as_ref().map_or_else(|| size_level(paragraph.size), Vec::len))
            } else if may_be_heading(&paragraph, body_size) && paragraph.lines == 1 {
                number.as_ref().filter(|n| continues_numbering(&open, n)).map(Vec::len)
            } else {
                None
            };
            match level {
                Some(level) => {
                    if let Some(number) = number {
                        open = number;
                    }
                    let (level, text) = with_label(&mut blocks, level, text);
                    blocks.push(Block::Heading { level, text });
                }
                None => blocks.push(Block::Paragraph(paragraph.text)),
            }
        }
        result.push(blocks);
    }
    result
}

/// The largest size of each heading level, largest first: a size opens a
/// new level when it is clearly smaller than the largest of the level above.
fn size_levels(sizes: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut sizes: Vec<f64> = sizes.map(round).collect();
    sizes.sort_by(|a, b| b.total_cmp(a));
    let mut starts: Vec<f64> = Vec::new();
    for size in sizes {
        if starts.last().is_none_or(|start| size < start * SAME_LEVEL_RATIO) {
            starts.push(size);
        }
    }
    starts
}

/// "Bab 6" printed on a line of its own above the chapter title belongs to
/// the title: it is taken off the page's blocks and put before it, and the
/// title takes its level if the label was read as a heading already.
fn with_label(blocks: &mut Vec<Block>, level: usize, title: String) -> (usize, String) {
    let Some(label) = blocks.last().filter(|block| is_chapter_label(block.text())) else {
        return (level, title);
    };
    let level = match label {
        Block::Heading { level: label_level, .. } => level.min(*label_level),
        Block::Paragraph(_) => level,
    };
    let text = format!("{} {title}", label.text().trim());
    blocks.pop();
    (level, text)
}

fn is_chapter_label(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let labels = ["bab", "chapter", "lampiran", "appendix", "bagian", "part"];
    words.len() == 2 && labels.iter().any(|label| words[0].eq_ignore_ascii_case(label))
}

/// "1.2.6 Stempel waktu" -> [1, 2, 6]; "BAB II Tujuan" -> [2]. The words
/// after the number must start with a letter ("12 orang" is a count).
fn section_number(text: &str) -> Option<Vec<u32>> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    let second = words.next()?;
    if first.eq_ignore_ascii_case("bab") || first.eq_ignore_ascii_case("chapter") {
        let value = second.parse().ok().or_else(|| roman(second))?;
        return Some(vec![value]);
    }
    second.chars().next().filter(|c| c.is_alphabetic())?;
    first.trim_end_matches('.').split('.').map(|part| part.parse::<u32>().ok().filter(|_| part.len() <= 3)).collect()
}

fn roman(text: &str) -> Option<u32> {
    let value = |c| match c {
        'I' => Some(1),
        'V' => Some(5),
        'X' => Some(10),
        'L' => Some(50),
        _ => None,
    };
    let digits: Vec<u32> = text.trim_end_matches(['.', ':']).chars().map(value).collect::<Option<_>>()?;
    let mut total = 0;
    for (i, digit) in digits.iter().enumerate() {
        if digits.get(i + 1).is_some_and(|next| next > digit) {
            total -= *digit as i64;
        } else {
            total += *digit as i64;
        }
    }
    u32::try_from(total).ok().filter(|total| *total > 0)
}

/// A body-size numbered line is a heading only as a subsection of the
/// section open now: "2.3" or "2.1.4" under "2.1", never "4." (a list item)
/// nor "7.1" under "2".
fn continues_numbering(open: &[u32], number: &[u32]) -> bool {
    number.len() >= 2 && !open.is_empty() && open.starts_with(&number[..number.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paragraph(text: &str, size: f64) -> Paragraph {
        Paragraph { text: text.into(), size, lines: text.lines().count() }
    }

    fn headings(blocks: &[Vec<Block>]) -> Vec<(usize, &str)> {
        blocks
            .iter()
            .flatten()
            .filter_map(|block| match block {
                Block::Heading { level, text } => Some((*level, text.as_str())),
                Block::Paragraph(_) => None,
            })
            .collect()
    }

    #[test]
    fn sizes_and_numbers_give_levels_and_list_items_stay_text() {
        let page = vec![
            paragraph("PEDOMAN SDM", 24.0),
            paragraph("BAB II", 16.0),
            paragraph("Tujuan", 16.0),
            paragraph("Sasaran Mutu Sasaran Mutu", 13.0),
            paragraph("Isi bab yang cukup panjang untuk menjadi teks biasa di halaman ini.", 10.0),
            paragraph("2.1 | Sasaran", 10.0),
            paragraph("4. Menjalankan aplikasi", 10.0),
            paragraph("2.1.1 Rincian", 10.0),
            paragraph("7.1 Lain", 10.0),
            paragraph("Ringkasan", 13.0),
        ];
        let blocks = blocks(vec![page], &[], 10.0);
        assert_eq!(
            headings(&blocks),
            [
                (1, "PEDOMAN SDM"),
                (1, "BAB II Tujuan"),
                (2, "Sasaran Mutu"),
                (2, "2.1 Sasaran"),
                (3, "2.1.1 Rincian"),
                (2, "Ringkasan")
            ]
        );
    }

    #[test]
    fn nearby_heading_sizes_share_a_level() {
        let sizes = [208.4, 162.6, 145.9, 125.0, 83.3, 66.7, 83.3];
        assert_eq!(size_levels(sizes.into_iter()), [208.5, 125.0, 83.5]);
        let titles = [("Pendahuluan", 208.4), ("Strategi Transformasi dan Program", 162.6), ("Roadmap", 83.3)];
        let page: Vec<Paragraph> = titles.iter().map(|(text, size)| paragraph(text, *size)).collect();
        let blocks = blocks(vec![page], &[], 58.5);
        assert_eq!(headings(&blocks), [(1, "Pendahuluan"), (1, "Strategi Transformasi dan Program"), (2, "Roadmap")]);
    }

    #[test]
    fn with_an_outline_only_its_titles_are_headings_at_its_levels() {
        let outline = [
            Entry { level: 1, title: "Aplikasi jaringan".into(), page: 1 },
            Entry { level: 2, title: "6.3 Server SSH".into(), page: 1 },
            Entry { level: 3, title: "Menyiapkan ssh-agent".into(), page: 1 },
        ];
        let page = vec![
            paragraph("Bab 6", 24.0),
            paragraph("Aplikasi jaringan", 20.0),
            paragraph("12 Pemrograman", 14.0),
            paragraph("6.3 | Server SSH", 14.0),
            paragraph("Teks.", 10.0),
        ];
        let next = vec![paragraph("6.3.5 | Menyiapkan ssh-agent", 12.0), paragraph("Teks lagi.", 10.0)];
        let blocks = blocks(vec![page, next], &outline, 10.0);
        assert_eq!(
            headings(&blocks),
            [(1, "Bab 6 Aplikasi jaringan"), (2, "6.3 Server SSH"), (3, "6.3.5 Menyiapkan ssh-agent")]
        );
    }

    #[test]
    fn numbers_are_read_from_headings_only() {
        assert_eq!(section_number("1.2.6 Stempel waktu"), Some(vec![1, 2, 6]));
        assert_eq!(section_number("BAB IV Penutup"), Some(vec![4]));
        assert_eq!(section_number("12 orang"), Some(vec![12]));
        assert_eq!(section_number("2025 15 orang"), None);
        assert_eq!(section_number("Biaya layanan"), None);
    }
}
