//! From positioned glyphs to lines of text. A PDF has no spaces to trust:
//! many writers place every word (or every glyph) on its own, so a space is
//! wherever the next glyph starts clearly after the previous one ended, and
//! a line ends where the baseline moves.

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

/// A gap wider than this share of the font size is a space between words.
/// Kerning stays under it; the word spaces of tightly justified lines
/// shrink to little more than a tenth of an em.
const SPACE_GAP: f64 = 0.11;
/// A gap wider than this many font sizes separates table cells (or text
/// set in columns on one baseline): no sentence has a space this wide.
const CELL_GAP: f64 = 2.5;
/// What stands between two table cells in the text: searchable words stay
/// apart and a reader still sees the columns.
pub(crate) const CELL_SEPARATOR: &str = " | ";
/// Baselines closer than this share of the larger font size are one line
/// (superscripts and subscripts included); lines of text are at least a
/// whole font size apart.
const SAME_BASELINE: f64 = 0.5;

/// One glyph as drawn: baseline origin, where its advance ends, and the
/// font size, all in page space (points, y upwards).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glyph {
    pub x: f64,
    pub y: f64,
    pub end: f64,
    pub size: f64,
    pub text: String,
}

/// A line of text with its baseline and the font size most of its letters
/// are set in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub text: String,
    pub y: f64,
    pub size: f64,
}

/// Collects the glyphs of one page from pdf-extract's content-stream
/// interpreter. Whitespace glyphs are not kept: they only mark that a space
/// follows, which [`lines`] also infers from the gap.
#[derive(Default)]
pub(crate) struct GlyphCollector {
    pub glyphs: Vec<Glyph>,
    space_pending: bool,
}

impl OutputDev for GlyphCollector {
    fn begin_page(&mut self, _: u32, _: &MediaBox, _: Option<(f64, f64, f64, f64)>) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        // The text rendering matrix maps glyph space to the page: its scale
        // turns the font size and the advance into points.
        let scale = (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
        let size = font_size * scale;
        let advance = (width * font_size + spacing) * trm.m11.abs();
        let values = [trm.m31, trm.m32, size, advance];
        if values.iter().any(|v| !v.is_finite()) || size <= 0.0 {
            return Ok(());
        }
        if text.trim().is_empty() {
            self.space_pending = true;
            return Ok(());
        }
        let mut text = text.to_owned();
        if std::mem::take(&mut self.space_pending) {
            text.insert(0, ' ');
        }
        self.glyphs.push(Glyph { x: trm.m31, y: trm.m32, end: trm.m31 + advance, size, text });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Groups glyphs, in drawing order, into lines. A glyph continues the line
/// when it sits on the same baseline and does not jump back left; the gap
/// before it decides between nothing, a space and a cell separator.
pub(crate) fn lines(glyphs: &[Glyph]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut current: Option<LineBuilder> = None;
    for glyph in glyphs {
        match current.as_mut() {
            Some(line) if line.continues_with(glyph) => line.push(glyph),
            _ => {
                lines.extend(current.take().and_then(LineBuilder::finish));
                current = Some(LineBuilder::start(glyph));
            }
        }
    }
    lines.extend(current.and_then(LineBuilder::finish));
    lines
}

struct LineBuilder {
    text: String,
    /// Where the last glyph's advance ended.
    x1: f64,
    y: f64,
    size: f64,
    /// Letters set in each font size, to find the line's main size.
    sizes: Vec<(f64, usize)>,
}

impl LineBuilder {
    fn start(glyph: &Glyph) -> Self {
        let mut line = Self { text: String::new(), x1: glyph.end, y: glyph.y, size: glyph.size, sizes: Vec::new() };
        line.append(glyph, glyph.text.trim_start());
        line
    }

    fn continues_with(&self, glyph: &Glyph) -> bool {
        let size = self.size.max(glyph.size);
        (glyph.y - self.y).abs() < SAME_BASELINE * size && glyph.x > self.x1 - size
    }

    fn push(&mut self, glyph: &Glyph) {
        let gap = glyph.x - self.x1;
        let size = self.size.max(glyph.size);
        let text = glyph.text.trim_start();
        if gap > CELL_GAP * size {
            self.text.push_str(CELL_SEPARATOR);
        } else if gap > SPACE_GAP * size || text.len() < glyph.text.len() {
            self.text.push(' ');
        }
        self.append(glyph, text);
    }

    fn append(&mut self, glyph: &Glyph, text: &str) {
        self.text.push_str(text);
        self.x1 = self.x1.max(glyph.end);
        let letters = text.chars().count();
        match self.sizes.iter_mut().find(|(size, _)| (size - glyph.size).abs() < 0.1) {
            Some((_, count)) => *count += letters,
            None => self.sizes.push((glyph.size, letters)),
        }
        // The baseline of the line is that of its main size, not of a
        // superscript that happened to come first.
        if self.main_size() == glyph.size {
            self.y = glyph.y;
        }
        self.size = self.main_size();
    }

    fn main_size(&self) -> f64 {
        self.sizes.iter().max_by_key(|(_, count)| *count).map_or(self.size, |(size, _)| *size)
    }

    fn finish(self) -> Option<Line> {
        let text = self.text.trim().to_owned();
        (!text.is_empty()).then_some(Line { text, y: self.y, size: self.size })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A word set glyph by glyph from `x`, each letter half an em wide.
    pub(crate) fn word(text: &str, x: f64, y: f64, size: f64) -> Vec<Glyph> {
        let width = size / 2.0;
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                let x = x + i as f64 * width;
                Glyph { x, y, end: x + width, size, text: c.to_string() }
            })
            .collect()
    }

    fn text_of(words: &[Vec<Glyph>]) -> Vec<String> {
        lines(&words.concat()).into_iter().map(|line| line.text).collect()
    }

    #[test]
    fn gaps_become_spaces_and_kerning_does_not() {
        // "kata" ends at 20; a quarter-em gap is a space, a tenth is kerning.
        let spaced = [word("kata", 0.0, 700.0, 10.0), word("baru", 22.5, 700.0, 10.0)];
        assert_eq!(text_of(&spaced), ["kata baru"]);
        let kerned = [word("kata", 0.0, 700.0, 10.0), word("baru", 21.0, 700.0, 10.0)];
        assert_eq!(text_of(&kerned), ["katabaru"]);
    }

    #[test]
    fn a_space_glyph_counts_even_without_a_gap() {
        let mut glyphs = word("a", 0.0, 700.0, 10.0);
        glyphs.extend(word("b", 5.0, 700.0, 10.0).into_iter().map(|g| Glyph { text: " b".into(), ..g }));
        assert_eq!(lines(&glyphs)[0].text, "a b");
    }

    #[test]
    fn a_wide_gap_separates_table_cells() {
        let row = [word("Biaya", 0.0, 700.0, 10.0), word("Rp50.000", 200.0, 700.0, 10.0)];
        assert_eq!(text_of(&row), ["Biaya | Rp50.000"]);
    }

    #[test]
    fn a_new_baseline_or_a_jump_back_starts_a_line() {
        let words = [
            word("satu", 0.0, 700.0, 10.0),
            word("dua", 0.0, 688.0, 10.0),
            word("tiga", 30.0, 688.0, 10.0),
            // Same baseline, but back at the left margin: a second column's
            // line drawn after the first.
            word("empat", 0.0, 688.0, 10.0),
        ];
        assert_eq!(text_of(&words), ["satu", "dua tiga", "empat"]);
    }

    #[test]
    fn superscripts_stay_on_their_line_which_keeps_its_main_size() {
        let words = [word("catatan", 0.0, 700.0, 10.0), word("1", 35.5, 704.0, 6.0), word("lagi", 40.0, 700.0, 10.0)];
        let lines = lines(&words.concat());
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].size, lines[0].y), (10.0, 700.0));
    }
}
