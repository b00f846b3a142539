//! Running headers and footers: the document title, chapter name or page
//! number printed at the top or bottom of every page. Repeated on every
//! page they would outweigh the text in search and cut sentences that run
//! over a page in two, so lines at a page's edge that recur at the edges of
//! other pages are dropped.

use super::layout::Line;
use std::collections::HashMap;

/// Lines this close to a page's top or bottom (counted in lines) are where
/// running heads live.
const EDGE_LINES: usize = 2;
/// A line at the edge of this many pages is running text. Three and not
/// more, so that the heads of short chapters are caught too.
const MIN_PAGES: usize = 3;

/// Removes the running lines from every page.
pub(crate) fn remove_running_lines(pages: &mut [Vec<Line>], body_size: f64) {
    if pages.len() <= MIN_PAGES {
        return;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for page in pages.iter() {
        let mut shapes: Vec<String> = edge_lines(page, body_size).map(|i| shape(&page[i].text)).collect();
        shapes.sort();
        shapes.dedup();
        for shape in shapes {
            *seen.entry(shape).or_default() += 1;
        }
    }
    for page in pages.iter_mut() {
        let running: Vec<usize> = edge_lines(page, body_size)
            .filter(|i| seen.get(&shape(&page[*i].text)).is_some_and(|n| *n >= MIN_PAGES))
            .collect();
        let mut index = 0;
        page.retain(|_| {
            index += 1;
            !running.contains(&(index - 1))
        });
    }
}

/// The top and bottom lines of a page by position (drawing order says
/// nothing: footers are often drawn first). Lines larger than the body
/// text are headings, never running heads, even when every chapter opens
/// with the same "Bab N" at the top.
fn edge_lines(page: &[Line], body_size: f64) -> impl Iterator<Item = usize> + '_ {
    let mut heights: Vec<f64> = page.iter().map(|line| line.y).collect();
    heights.sort_by(|a, b| b.total_cmp(a));
    heights.dedup_by(|a, b| (*a - *b).abs() < 1.0);
    let top = heights.get(EDGE_LINES.min(heights.len()).saturating_sub(1)).copied();
    let bottom = heights.len().checked_sub(EDGE_LINES).and_then(|i| heights.get(i)).copied();
    page.iter().enumerate().filter_map(move |(i, line)| {
        let at_edge = top.is_some_and(|t| line.y >= t - 0.5) || bottom.is_some_and(|b| line.y <= b + 0.5);
        (at_edge && line.size <= body_size + 0.5).then_some(i)
    })
}

/// Lowercase, digit runs and roman page numbers as one '#' and no spaces:
/// "Hal. 12 / 238", "hal. 13/238" and "Hal. xvi / 238" are the same
/// running line.
fn shape(text: &str) -> String {
    let mut shape = String::new();
    for word in text.split_whitespace() {
        let roman = word.len() <= 7 && word.chars().all(|c| "ivxlcdm".contains(c));
        if roman {
            shape.push('#');
            continue;
        }
        for c in word.chars() {
            if c.is_ascii_digit() {
                if !shape.ends_with('#') {
                    shape.push('#');
                }
            } else {
                shape.extend(c.to_lowercase());
            }
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, y: f64) -> Line {
        Line { text: text.into(), y, size: 10.0 }
    }

    #[test]
    fn heads_and_page_numbers_repeated_at_the_edges_are_dropped() {
        let names = ["satu", "dua", "tiga", "empat", "lima"];
        let mut pages: Vec<Vec<Line>> = (1..=5)
            .map(|n| {
                vec![
                    line(&format!("{n} / 238"), 20.0),
                    line("Referensi Debian", 800.0),
                    line(&format!("Isi halaman {}.", names[n - 1]), 700.0),
                    line("Isi yang sama di tengah.", 600.0),
                    line(&format!("Penutup {}", "ya".repeat(n)), 500.0),
                ]
            })
            .collect();
        // The same sentence in the middle of the page is content.
        remove_running_lines(&mut pages, 10.0);
        let third: Vec<&str> = pages[2].iter().map(|l| l.text.as_str()).collect();
        assert_eq!(third, ["Isi halaman tiga.", "Isi yang sama di tengah.", "Penutup yayaya"]);
    }

    #[test]
    fn page_numbers_in_digits_or_roman_numerals_are_alike() {
        assert_eq!(shape("Referensi Debian | xvi"), shape("Referensi Debian | 12"));
        assert_eq!(shape("Hal. 12 / 238"), shape("hal. 13/238"));
        assert_ne!(shape("Bab 6"), shape("Bab 6 Aplikasi"));
    }

    #[test]
    fn large_chapter_openings_are_not_running_heads() {
        let mut pages: Vec<Vec<Line>> = (1..=5)
            .map(|n| {
                let text = format!("Isi {}.", "x".repeat(n));
                vec![Line { size: 20.0, ..line(&format!("Bab {n}"), 800.0) }, line(&text, 700.0)]
            })
            .collect();
        remove_running_lines(&mut pages, 10.0);
        assert!(pages.iter().all(|page| page.len() == 2));
    }
}
