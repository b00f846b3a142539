//! Lines into paragraphs: a line continues the paragraph above it when it
//! is set in the same size just one line spacing below. A change of size
//! (a heading) or a wider gap starts a new one. "Below" may be either way
//! in y: pdf-extract leaves some writers' page transforms (Canva's, which
//! flips the page) out of the positions it reports, so only the distance
//! between baselines is trusted.

use super::hyphen::{append_line, Vocabulary};
use super::layout::Line;

/// The widest baseline step, in font sizes, inside one paragraph: single
/// and one-and-a-half spacing are in, the blank line between paragraphs is
/// out.
const MAX_LINE_STEP: f64 = 1.75;
/// Sizes closer than this (points) are the same size.
const SIZE_TOLERANCE: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Paragraph {
    pub text: String,
    pub size: f64,
    pub lines: usize,
}

pub(crate) fn paragraphs(lines: &[Line], vocabulary: &Vocabulary) -> Vec<Paragraph> {
    let mut paragraphs: Vec<Paragraph> = Vec::new();
    let mut previous: Option<&Line> = None;
    for line in lines {
        let continues = previous.is_some_and(|above| {
            let step = (above.y - line.y).abs();
            (above.size - line.size).abs() < SIZE_TOLERANCE && step > 0.0 && step <= MAX_LINE_STEP * line.size
        });
        match paragraphs.last_mut() {
            Some(paragraph) if continues => {
                append_line(&mut paragraph.text, &line.text, vocabulary);
                paragraph.lines += 1;
            }
            _ => paragraphs.push(Paragraph { text: line.text.clone(), size: line.size, lines: 1 }),
        }
        previous = Some(line);
    }
    paragraphs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, y: f64, size: f64) -> Line {
        Line { text: text.into(), y, size }
    }

    #[test]
    fn spacing_and_size_decide_where_paragraphs_end() {
        let lines = [
            line("1.2 Biaya", 700.0, 14.0),
            line("Biaya pendaftaran", 680.0, 10.0),
            line("Rp 50.000.", 668.0, 10.0),
            line("Jam buka 08.00.", 640.0, 10.0),
        ];
        let found: Vec<(String, usize)> =
            paragraphs(&lines, &Vocabulary::of(&[])).into_iter().map(|p| (p.text, p.lines)).collect();
        assert_eq!(
            found,
            [("1.2 Biaya".into(), 1), ("Biaya pendaftaran\nRp 50.000.".into(), 2), ("Jam buka 08.00.".into(), 1)]
        );
        // The same page with y growing downwards reads the same.
        let flipped: Vec<Line> = lines.iter().map(|l| Line { y: 1000.0 - l.y, ..l.clone() }).collect();
        let again: Vec<(String, usize)> =
            paragraphs(&flipped, &Vocabulary::of(&[])).into_iter().map(|p| (p.text, p.lines)).collect();
        assert_eq!(again, found);
    }
}
