//! Turns an LLM's Markdown answer into text that WhatsApp renders nicely, and splits long
//! answers into messages that fit WhatsApp's size limit.
//!
//! WhatsApp only knows `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ```` ``` ```` blocks,
//! `- ` / `1. ` lists and `> ` quotes. Everything else Markdown can express is flattened into
//! plain lines so the customer never sees raw Markdown syntax:
//! headings become bold lines, links become `text (url)`, table rows become `a | b` lines and
//! horizontal rules become a `———` line (a visible separator keeps the author's intent of
//! "new section", which a mere blank line would lose).

use std::ops::Range;

/// WhatsApp refuses text messages longer than this.
pub const MAX_MESSAGE_CHARS: usize = 4096;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Converts an LLM's Markdown answer into WhatsApp's own formatting.
pub fn markdown_to_whatsapp(markdown: &str) -> String {
    let mut renderer = Renderer::new(markdown);
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    for (event, range) in Parser::new_ext(markdown, options).into_offset_iter() {
        renderer.event(event, range);
    }
    normalize(&renderer.out)
}

/// Splits a (converted) message into parts of at most `max_chars` characters (Unicode scalar
/// values, not bytes), preferring paragraph boundaries, then line boundaries, then sentence ends
/// (". ", "! ", "? ", also after closing quotes/brackets), then word boundaries, and only as a
/// last resort a hard cut (never inside a UTF-8 character, never producing an empty part).
/// Parts are trimmed, kept in order, and joining them with blank lines loses no words. Text of
/// at most `max_chars` chars comes back as one part (trimmed); empty/whitespace-only input gives
/// an empty Vec. A `max_chars` of zero is treated as one, since no non-empty part fits in zero.
pub fn split_for_whatsapp(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(limit) = rest.char_indices().nth(max_chars).map(|(at, _)| at) else {
            parts.push(rest.to_string());
            break;
        };
        let cut = best_break(rest, limit).unwrap_or_else(|| hard_cut(rest, limit));
        let (part, next) = rest.split_at(cut);
        parts.push(part.trim_end().to_string());
        rest = next.trim_start();
    }
    parts
}

/// How much blank space must precede the next piece of output.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Line,
    Blank,
}

/// Block containers contribute a prefix to every line written inside them.
enum Container {
    Quote,
    List {
        next_number: Option<u64>,
    },
    /// The marker is written on the item's first line only; later lines get an indent instead.
    Item {
        marker: Option<String>,
    },
}

enum Style {
    /// A WhatsApp marker. `open_at` is the output position of the opening marker, or `None`
    /// after a line break closed it (WhatsApp formatting cannot span lines) and no text has
    /// reopened it yet.
    Marker { marker: char, open_at: Option<usize> },
    /// Intraword emphasis such as `5*3*2`: WhatsApp would not format it, so converting the
    /// delimiters would only trade one stray symbol for another. The source is kept instead.
    Literal { close: String },
    /// WhatsApp cannot nest a marker inside itself; the outer one already covers this text.
    Nested,
}

struct OpenLink {
    url: String,
    text_at: usize,
}

struct Renderer<'a> {
    source: &'a str,
    out: String,
    gap: Gap,
    at_line_start: bool,
    containers: Vec<Container>,
    styles: Vec<Style>,
    links: Vec<OpenLink>,
    table_cell: usize,
    row_text_at: usize,
    in_table_head: bool,
    html_block: Option<String>,
}

impl<'a> Renderer<'a> {
    fn new(source: &'a str) -> Self {
        Renderer {
            source,
            out: String::with_capacity(source.len()),
            gap: Gap::None,
            at_line_start: true,
            containers: Vec::new(),
            styles: Vec::new(),
            links: Vec::new(),
            table_cell: 0,
            row_text_at: 0,
            in_table_head: false,
            html_block: None,
        }
    }

    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.write_text(&text),
            Event::Code(code) => {
                self.write("`");
                self.out.push_str(&code);
                self.out.push('`');
            }
            Event::Html(html) => {
                if let Some(buffer) = self.html_block.as_mut() {
                    buffer.push_str(&html);
                }
            }
            // Inline tags arrive one by one with their inner text as ordinary text events,
            // so dropping every tag but `<br>` keeps the text.
            Event::InlineHtml(tag) if is_line_break_tag(&tag) => self.line_break(),
            // A source line wrap right after an explicit break would double the newline.
            Event::SoftBreak if !self.at_line_start => self.line_break(),
            Event::HardBreak => self.line_break(),
            Event::Rule => {
                self.start_block();
                self.write("———");
                self.end_block();
            }
            // Other inline HTML and redundant soft breaks are dropped; footnotes, math, task
            // lists and metadata never come because their parser options are off.
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        match tag {
            Tag::Paragraph | Tag::Table(_) => self.start_block(),
            Tag::Heading { .. } => {
                self.start_block();
                self.open_style('*', None);
            }
            Tag::BlockQuote(_) => {
                self.start_block();
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(_) => {
                self.start_block();
                self.write("```");
                self.line_break();
            }
            Tag::HtmlBlock => {
                self.start_block();
                self.html_block = Some(String::new());
            }
            Tag::List(next_number) => {
                self.start_block();
                self.containers.push(Container::List { next_number });
            }
            Tag::Item => {
                self.gap = self.gap.max(Gap::Line);
                let marker = self.next_item_marker();
                self.containers.push(Container::Item { marker: Some(marker) });
            }
            Tag::TableHead => {
                self.start_row();
                self.in_table_head = true;
            }
            Tag::TableRow => self.start_row(),
            Tag::TableCell => {
                self.begin_content();
                if self.table_cell == 0 {
                    self.row_text_at = self.out.len();
                } else if self.out.len() == self.row_text_at {
                    // Empty leading cells must not leave the row starting with a space.
                    self.out.push_str("| ");
                } else {
                    self.out.push_str(" | ");
                }
                if self.in_table_head {
                    self.open_style('*', None);
                }
            }
            Tag::Emphasis => {
                let literal = self.literal_delimiters(&range, 1);
                self.open_style('_', literal);
            }
            Tag::Strong => {
                let literal = self.literal_delimiters(&range, 2);
                self.open_style('*', literal);
            }
            Tag::Strikethrough => {
                // GFM accepts both `~x~` and `~~x~~`.
                let tildes = self.source.get(range.start..).map_or(1, |s| s.chars().take_while(|&c| c == '~').count());
                let literal = self.literal_delimiters(&range, tildes.clamp(1, 2));
                self.open_style('~', literal);
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                // Flush pending separators first so `text_at` points at the link text itself.
                self.begin_content();
                self.links.push(OpenLink { url: dest_url.to_string(), text_at: self.out.len() });
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::Table => self.end_block(),
            TagEnd::Heading(_) => {
                self.close_style();
                self.end_block();
            }
            TagEnd::BlockQuote(_) | TagEnd::List(_) => {
                self.containers.pop();
                self.end_block();
            }
            TagEnd::CodeBlock => {
                if !self.at_line_start {
                    self.line_break();
                }
                self.write("```");
                self.end_block();
            }
            TagEnd::HtmlBlock => {
                let html = self.html_block.take().unwrap_or_default();
                self.write_html(&html);
                self.end_block();
            }
            TagEnd::Item => {
                // An empty item still shows its marker, so numbering and structure stay visible.
                if let Some(Container::Item { marker: Some(_) }) = self.containers.last() {
                    self.begin_content();
                }
                self.containers.pop();
                self.gap = self.gap.max(Gap::Line);
            }
            TagEnd::TableHead | TagEnd::TableRow => self.in_table_head = false,
            TagEnd::TableCell => {
                if self.in_table_head {
                    self.close_style();
                }
                self.table_cell += 1;
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => self.close_style(),
            TagEnd::Link | TagEnd::Image => self.close_link(),
            _ => {}
        }
    }

    fn start_block(&mut self) {
        self.gap = self.gap.max(Gap::Line);
    }

    /// Inside list items blocks stay on consecutive lines: WhatsApp lists read best compact.
    fn end_block(&mut self) {
        let gap = match self.containers.last() {
            Some(Container::Item { .. } | Container::List { .. }) => Gap::Line,
            _ => Gap::Blank,
        };
        self.gap = self.gap.max(gap);
    }

    fn start_row(&mut self) {
        self.gap = self.gap.max(Gap::Line);
        self.table_cell = 0;
    }

    fn next_item_marker(&mut self) -> String {
        let list = self.containers.iter_mut().rev().find_map(|c| match c {
            Container::List { next_number } => Some(next_number),
            _ => None,
        });
        match list {
            Some(Some(number)) => {
                let marker = format!("{number}. ");
                *number = number.saturating_add(1);
                marker
            }
            _ => "- ".to_string(),
        }
    }

    /// Everything visible goes through here, so separators, line prefixes and styles
    /// interrupted by a line break are written lazily, only once there is something to show.
    fn begin_content(&mut self) {
        let wanted = match std::mem::replace(&mut self.gap, Gap::None) {
            Gap::None => 0,
            Gap::Line => 1,
            Gap::Blank => 2,
        };
        if !self.out.is_empty() && wanted > 0 {
            let present = self.out.bytes().rev().take_while(|&b| b == b'\n').count();
            for _ in present..wanted {
                self.out.push('\n');
            }
            self.at_line_start = true;
        }
        if self.at_line_start {
            self.write_prefix();
            self.at_line_start = false;
        }
        for style in &mut self.styles {
            if let Style::Marker { marker, open_at: open_at @ None } = style {
                *open_at = Some(self.out.len());
                self.out.push(*marker);
            }
        }
    }

    fn write_prefix(&mut self) {
        for container in &mut self.containers {
            match container {
                Container::Quote => self.out.push_str("> "),
                Container::List { .. } => {}
                Container::Item { marker } => match marker.take() {
                    Some(marker) => self.out.push_str(&marker),
                    None => self.out.push_str("  "),
                },
            }
        }
    }

    fn write(&mut self, text: &str) {
        self.begin_content();
        self.out.push_str(text);
    }

    fn write_text(&mut self, text: &str) {
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                self.line_break();
            }
            if !line.is_empty() {
                self.write(line);
            }
        }
    }

    fn write_html(&mut self, html: &str) {
        let text = strip_html_tags(html);
        let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
        if let Some(first) = lines.next() {
            self.write(first);
        }
        for line in lines {
            self.line_break();
            self.write(line);
        }
    }

    fn line_break(&mut self) {
        for index in (0..self.styles.len()).rev() {
            if let Some(Style::Marker { marker, open_at }) = self.styles.get_mut(index) {
                if let Some(at) = open_at.take() {
                    let marker = *marker;
                    self.wrap_since(at, marker);
                }
            }
        }
        self.out.push('\n');
        self.at_line_start = true;
    }

    fn open_style(&mut self, marker: char, literal: Option<(String, String)>) {
        self.begin_content();
        let already_open = self.styles.iter().any(|s| matches!(s, Style::Marker { marker: m, .. } if *m == marker));
        let style = match literal {
            Some((open, close)) => {
                self.out.push_str(&open);
                Style::Literal { close }
            }
            None if already_open => Style::Nested,
            None => {
                let open_at = Some(self.out.len());
                self.out.push(marker);
                Style::Marker { marker, open_at }
            }
        };
        self.styles.push(style);
    }

    fn close_style(&mut self) {
        match self.styles.pop() {
            Some(Style::Marker { marker, open_at: Some(at) }) => self.wrap_since(at, marker),
            Some(Style::Literal { close }) => self.write(&close),
            _ => {}
        }
    }

    /// Closes the marker opened at `at`. WhatsApp ignores markers that touch whitespace or
    /// enclose nothing, so surrounding whitespace is moved outside and empty spans lose
    /// their markers.
    fn wrap_since(&mut self, at: usize, marker: char) {
        if !self.out.get(at..).is_some_and(|tail| tail.starts_with(marker)) {
            return;
        }
        let inner = self.out.split_off(at + marker.len_utf8());
        self.out.truncate(at);
        let content = inner.trim();
        if content.is_empty() {
            self.out.push_str(&inner);
            return;
        }
        let leading = &inner[..inner.len() - inner.trim_start().len()];
        let trailing = &inner[inner.trim_end().len()..];
        self.out.push_str(leading);
        self.out.push(marker);
        self.out.push_str(content);
        self.out.push(marker);
        self.out.push_str(trailing);
    }

    fn close_link(&mut self) {
        let Some(link) = self.links.pop() else {
            return;
        };
        let text = self.out.get(link.text_at..).unwrap_or_default().trim();
        if link.url.is_empty() || text == link.url {
            return;
        }
        if text.is_empty() {
            self.write(&link.url);
        } else {
            self.write(" (");
            self.out.push_str(&link.url);
            self.out.push(')');
        }
    }

    /// Returns the source delimiters when the span touches a letter or digit on either side,
    /// i.e. when WhatsApp would not treat a marker there as formatting.
    fn literal_delimiters(&self, range: &Range<usize>, len: usize) -> Option<(String, String)> {
        let before = self.source.get(..range.start)?.chars().next_back();
        let after = self.source.get(range.end..)?.chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return None;
        }
        let open = self.source.get(range.start..range.start.checked_add(len)?)?;
        let close = self.source.get(range.end.checked_sub(len)?..range.end)?;
        Some((open.to_string(), close.to_string()))
    }
}

fn is_line_break_tag(tag: &str) -> bool {
    let inner = tag.strip_prefix('<').unwrap_or(tag);
    let name = inner.split(|c: char| c.is_whitespace() || c == '/' || c == '>').next().unwrap_or_default();
    name.eq_ignore_ascii_case("br")
}

/// Raw HTML blocks are not parsed by Markdown, so their tags are removed by hand. A `<` that
/// does not start a tag (as in "harga < 5") is ordinary text and stays.
fn strip_html_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let candidate = &rest[open..];
        let tag_end = candidate.find('>').filter(|&close| {
            candidate[1..close].chars().next().is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'))
        });
        match tag_end {
            Some(close) => {
                if is_line_break_tag(&candidate[..=close]) {
                    text.push('\n');
                }
                rest = &candidate[close + 1..];
            }
            None => {
                text.push('<');
                rest = &candidate[1..];
            }
        }
    }
    text.push_str(rest);
    text
}

/// Trailing spaces and runs of blank lines are noise in a chat bubble.
fn normalize(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() && lines.last().is_none_or(|last| last.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_string()
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum BreakKind {
    Word,
    Sentence,
    Line,
    Paragraph,
}

/// Characters that may follow a sentence's final punctuation, e.g. `."` or `!)`.
const SENTENCE_CLOSERS: [char; 11] = ['"', '\'', '”', '’', '»', ')', ']', '}', '*', '_', '~'];

/// Finds the best place to end the next part: the start of the strongest whitespace run that
/// begins within the first `limit` bytes, taking the latest one among equals to fill parts.
fn best_break(text: &str, limit: usize) -> Option<usize> {
    let mut best: Option<(BreakKind, usize)> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if start > limit {
            break;
        }
        if !c.is_whitespace() {
            continue;
        }
        let mut newlines = usize::from(c == '\n');
        while let Some(&(_, next)) = chars.peek() {
            if !next.is_whitespace() {
                break;
            }
            newlines += usize::from(next == '\n');
            chars.next();
        }
        if start == 0 {
            continue;
        }
        let kind = match newlines {
            0 if ends_sentence(&text[..start]) => BreakKind::Sentence,
            0 => BreakKind::Word,
            1 => BreakKind::Line,
            _ => BreakKind::Paragraph,
        };
        if best.is_none_or(|(best_kind, _)| kind >= best_kind) {
            best = Some((kind, start));
        }
    }
    best.map(|(_, at)| at)
}

fn ends_sentence(before: &str) -> bool {
    let stripped = before.trim_end_matches(SENTENCE_CLOSERS);
    stripped.ends_with(['.', '!', '?']) && !ends_with_list_number(stripped)
}

/// "2. " at the start of a line numbers a list item; cutting there would orphan the number.
fn ends_with_list_number(text: &str) -> bool {
    let head = text.trim_end_matches(|c: char| !c.is_whitespace());
    let word = &text[head.len()..];
    let is_number =
        word.strip_suffix('.').is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()));
    let indent = head.trim_end_matches([' ', '\t']);
    is_number && (indent.is_empty() || indent.ends_with('\n'))
}

/// Cuts at `limit` but backs off so that combining marks, variation selectors, skin tones
/// and zero-width joiners stay with the character they modify, unless the whole part is
/// one such cluster.
fn hard_cut(text: &str, limit: usize) -> usize {
    let mut cut = limit;
    while let Some(previous) = text[..cut].chars().next_back() {
        let next = text[cut..].chars().next();
        if previous == '\u{200D}' || next.is_some_and(continues_cluster) {
            cut -= previous.len_utf8();
        } else {
            break;
        }
    }
    if cut == 0 {
        limit
    } else {
        cut
    }
}

fn continues_cluster(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{200D}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\u{E0020}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wa(markdown: &str) -> String {
        markdown_to_whatsapp(markdown)
    }

    // ---- conversion -------------------------------------------------------------------

    #[test]
    fn bold_becomes_single_asterisks() {
        assert_eq!(wa("**tebal** dan __juga tebal__"), "*tebal* dan *juga tebal*");
    }

    #[test]
    fn italic_becomes_underscores() {
        assert_eq!(wa("*miring* dan _juga miring_"), "_miring_ dan _juga miring_");
    }

    #[test]
    fn strikethrough_becomes_single_tilde() {
        assert_eq!(wa("~~Rp 70.000~~ Rp 50.000"), "~Rp 70.000~ Rp 50.000");
        assert_eq!(wa("~coret~"), "~coret~");
    }

    #[test]
    fn nested_bold_and_italic_stay_valid() {
        assert_eq!(wa("*miring **tebal** miring*"), "_miring *tebal* miring_");
        assert_eq!(wa("**tebal *miring* tebal**"), "*tebal _miring_ tebal*");
        assert_eq!(wa("***keduanya***"), "_*keduanya*_");
    }

    #[test]
    fn same_marker_is_not_nested() {
        assert_eq!(wa("# Judul **penting**"), "*Judul penting*");
        assert_eq!(wa("*a *b* c*"), "_a b c_");
    }

    #[test]
    fn formatting_does_not_span_lines() {
        assert_eq!(wa("**baris satu\nbaris dua**"), "*baris satu*\n*baris dua*");
    }

    #[test]
    fn headings_of_every_level_become_bold_lines() {
        for level in 1..=6 {
            let markdown = format!("{} Judul\nIsi paragraf.", "#".repeat(level));
            assert_eq!(wa(&markdown), "*Judul*\n\nIsi paragraf.");
        }
        assert_eq!(wa("Judul\n=====\n\nIsi"), "*Judul*\n\nIsi");
        assert_eq!(wa("Sub\n---\nIsi"), "*Sub*\n\nIsi");
        assert_eq!(wa("## Harga *promo*"), "*Harga _promo_*");
    }

    #[test]
    fn links_show_text_and_url() {
        assert_eq!(wa("Kunjungi [toko kami](https://x.y/toko)."), "Kunjungi toko kami (https://x.y/toko).");
        assert_eq!(wa("Situs: <https://x.y>"), "Situs: https://x.y");
        assert_eq!(wa("[https://x.y](https://x.y)"), "https://x.y");
        assert_eq!(wa("<cs@toko.id>"), "cs@toko.id");
        assert_eq!(wa("[](https://x.y)"), "https://x.y");
        assert_eq!(wa("[tanpa url]()"), "tanpa url");
        assert_eq!(wa("**[Promo](https://x.y)**"), "*Promo (https://x.y)*");
    }

    #[test]
    fn images_show_alt_text_and_url() {
        assert_eq!(wa("![Peta lokasi](https://x.y/peta.png)"), "Peta lokasi (https://x.y/peta.png)");
        assert_eq!(wa("![](https://x.y/a.png)"), "https://x.y/a.png");
    }

    #[test]
    fn unordered_lists_use_dashes_and_two_space_nesting() {
        assert_eq!(wa("* satu\n* dua\n  + tiga\n    - empat\n* lima"), "- satu\n- dua\n  - tiga\n    - empat\n- lima");
    }

    #[test]
    fn ordered_lists_keep_numbering_from_start() {
        assert_eq!(wa("1. a\n1. b\n1. c"), "1. a\n2. b\n3. c");
        assert_eq!(wa("3. tiga\n4. empat"), "3. tiga\n4. empat");
        assert_eq!(
            wa("1. utama\n   1. sub satu\n   2. sub dua\n2. kedua"),
            "1. utama\n  1. sub satu\n  2. sub dua\n2. kedua"
        );
        assert_eq!(wa("1. a\n   - b"), "1. a\n  - b");
    }

    #[test]
    fn loose_lists_are_rendered_compact() {
        assert_eq!(wa("- a\n\n- b\n\n  lanjutan b\n\nSetelah"), "- a\n- b\n  lanjutan b\n\nSetelah");
    }

    #[test]
    fn list_after_paragraph_is_separated_by_one_blank_line() {
        assert_eq!(wa("Langkah:\n1. Pesan\n2. Bayar"), "Langkah:\n\n1. Pesan\n2. Bayar");
        assert_eq!(wa("Langkah:\n\n- a\n\nSelesai."), "Langkah:\n\n- a\n\nSelesai.");
    }

    #[test]
    fn code_blocks_are_fenced_without_language() {
        assert_eq!(
            wa("Contoh:\n\n```rust\nfn main() {\n    cetak();\n}\n```\n\nSelesai"),
            "Contoh:\n\n```\nfn main() {\n    cetak();\n}\n```\n\nSelesai"
        );
        assert_eq!(wa("    kode terindentasi"), "```\nkode terindentasi\n```");
        assert_eq!(wa("```\n```"), "```\n```");
    }

    #[test]
    fn inline_code_is_kept() {
        assert_eq!(wa("Ketik `STATUS 123` lalu kirim"), "Ketik `STATUS 123` lalu kirim");
    }

    #[test]
    fn block_quotes_prefix_every_line() {
        assert_eq!(wa("> satu\n> dua"), "> satu\n> dua");
        assert_eq!(wa("> satu\n>\n> dua"), "> satu\n\n> dua");
        assert_eq!(wa("> - a\n> - b"), "> - a\n> - b");
        assert_eq!(wa("> **Catatan:** bawa KTP"), "> *Catatan:* bawa KTP");
        assert_eq!(wa("> luar\n>> dalam"), "> luar\n\n> > dalam");
    }

    #[test]
    fn tables_become_rows_with_bold_header() {
        let markdown = "| Produk | Harga |\n|---|---:|\n| Kopi | Rp 15.000 |\n| **Teh** | Rp 10.000 |";
        assert_eq!(wa(markdown), "*Produk* | *Harga*\nKopi | Rp 15.000\n*Teh* | Rp 10.000");
        assert_eq!(wa("Daftar:\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\nAkhir"), "Daftar:\n\n*A* | *B*\n1 | 2\n\nAkhir");
        assert_eq!(wa("| a | |\n|-|-|\n| | b |"), "*a* |\n| b");
    }

    #[test]
    fn horizontal_rules_become_a_dash_line() {
        assert_eq!(wa("atas\n\n---\n\nbawah"), "atas\n\n———\n\nbawah");
        assert_eq!(wa("***"), "———");
    }

    #[test]
    fn html_tags_are_dropped_and_br_breaks_lines() {
        assert_eq!(wa("Halo <b>kak</b>!"), "Halo kak!");
        assert_eq!(wa("baris 1<br>baris 2<br/>baris 3"), "baris 1\nbaris 2\nbaris 3");
        assert_eq!(wa("baris 1<br>\nbaris 2"), "baris 1\nbaris 2");
        assert_eq!(wa("- a<br>\n- b"), "- a\n- b");
        assert_eq!(wa("<div>\nIsi <span>blok</span><BR />lagi\n</div>"), "Isi blok\nlagi");
        assert_eq!(wa("<!-- komentar -->\n\nTeks"), "Teks");
        assert_eq!(wa("<div>\nharga < 5\n</div>"), "harga < 5");
    }

    #[test]
    fn paragraphs_are_separated_by_exactly_one_blank_line() {
        assert_eq!(wa("satu  \n\n\n\n\ndua   "), "satu\n\ndua");
        assert_eq!(wa("\n\n  satu\n\n"), "satu");
        let output = wa("a\n\n```\nx\n\n\n\ny\n```\n\n\n> q");
        assert_eq!(output, "a\n\n```\nx\n\ny\n```\n\n> q");
    }

    #[test]
    fn plain_text_is_unchanged() {
        for text in [
            "Halo kak, terima kasih sudah menghubungi kami 🙏",
            "Jam buka 08:00-15:00, harga mulai Rp 50.000.\nAlamat: Jl. Merdeka No. 5, Bandung.",
            "Stok tinggal 3 pcs 😊👍\n\nSilakan transfer ke BCA 123-456-789 a.n. Toko Maju.",
            "Total 5 * 3 = 15 dan 2 * 4 = 8",
            "Hitung 5*3*2 dulu ya",
            "Kode nama_file_baru tetap aman",
            "Ongkir ~Rp 10.000 untuk Jawa ~ Bali",
            "Balas 1 untuk ya, 2 untuk tidak",
        ] {
            assert_eq!(wa(text), text);
        }
        assert_eq!(wa("  Halo kak  \n"), "Halo kak");
    }

    #[test]
    fn intraword_bold_keeps_source_delimiters() {
        assert_eq!(wa("**Total**nya Rp 50.000"), "**Total**nya Rp 50.000");
    }

    #[test]
    fn soft_and_hard_breaks_become_newlines() {
        assert_eq!(wa("baris satu\nbaris dua"), "baris satu\nbaris dua");
        assert_eq!(wa("baris satu  \nbaris dua"), "baris satu\nbaris dua");
        assert_eq!(wa("baris satu\\\nbaris dua"), "baris satu\nbaris dua");
        assert_eq!(wa("- item\n  lanjut"), "- item\n  lanjut");
        // CommonMark's lazy continuation: an unindented line still belongs to the item.
        assert_eq!(wa("1. Pesan\nCatatan"), "1. Pesan\n  Catatan");
    }

    #[test]
    fn realistic_indonesian_answer() {
        let markdown = "\
## Cara Pemesanan

Untuk memesan **Paket Hemat**, ikuti langkah berikut:

1. Buka menu *Pesan* di aplikasi.
2. Pilih paket dan jumlah.
3. Lakukan pembayaran:
   - Transfer bank
   - QRIS

### Catatan
Harga mulai **Rp 50.000**. Jam operasional 08:00-15:00 WIB 😊

Info lengkap: [situs kami](https://contoh.co.id/paket).
";
        let expected = "\
*Cara Pemesanan*

Untuk memesan *Paket Hemat*, ikuti langkah berikut:

1. Buka menu _Pesan_ di aplikasi.
2. Pilih paket dan jumlah.
3. Lakukan pembayaran:
  - Transfer bank
  - QRIS

*Catatan*

Harga mulai *Rp 50.000*. Jam operasional 08:00-15:00 WIB 😊

Info lengkap: situs kami (https://contoh.co.id/paket).";
        assert_eq!(wa(markdown), expected);
    }

    fn assert_clean(output: &str) {
        assert_eq!(output, output.trim(), "not trimmed: {output:?}");
        assert!(!output.contains("\n\n\n"), "double blank line: {output:?}");
        for line in output.lines() {
            assert_eq!(line, line.trim_end(), "trailing space: {output:?}");
        }
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let deep_list: String = (0..200).map(|depth| format!("{}- level {depth}\n", "  ".repeat(depth))).collect();
        let deep_quote = format!("{} dalam", ">".repeat(300));
        let odd = [
            "",
            " ",
            "\n\n\n",
            "**",
            "**tidak ditutup",
            "*",
            "_",
            "~~",
            "`",
            "```",
            "```\nkode tanpa penutup",
            "[",
            "[teks](",
            "![",
            "<",
            "<br",
            "<div>",
            "|",
            "| a |\n|---|",
            "#",
            "- ",
            "1.",
            ">",
            "**<b></b>**",
            "*<br>*",
            "**a<br>**",
            "- [x](y)\n  > **z\n  > w**",
            "\u{0}\u{feff}\r\n\r\n",
            "é😀\u{200D}🔥",
            deep_list.as_str(),
            deep_quote.as_str(),
        ];
        for input in odd {
            assert_clean(&wa(input));
        }
        assert_eq!(wa(""), "");
        assert_eq!(wa("**tidak ditutup"), "**tidak ditutup");
        assert_eq!(wa("*"), "-");
        assert_eq!(wa("1.\n2. dua"), "1.\n2. dua");
        assert_eq!(wa("**<b></b>**"), "");
        assert_eq!(wa("**a<br>**"), "*a*");
        assert!(wa(&deep_list).ends_with("- level 199"));
    }

    /// xorshift64: deterministic, dependency-free randomness for the property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn random_markdown_never_panics_and_stays_clean() {
        let tokens = [
            " kak ",
            "Rp 50.000",
            " 08:00 ",
            "é",
            "😀",
            "**",
            "*",
            "_",
            "__",
            "~",
            "~~",
            "`",
            "```",
            "# ",
            "## ",
            "- ",
            "* ",
            "1. ",
            "> ",
            "\n",
            "\n\n",
            "  \n",
            " ",
            "[",
            "](",
            ")",
            "![",
            "<",
            ">",
            "<br>",
            "<b>",
            "</b>",
            "|",
            "---",
            "\\",
            "&amp;",
            "\t",
            "    ",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2000 {
            let length = rng.below(40);
            let input: String = (0..length).map(|_| rng.pick(&tokens)).collect();
            let output = wa(&input);
            assert_clean(&output);
            // Fence info strings are dropped on purpose, so words there may vanish.
            if input.contains("```") || input.contains("~~~") {
                continue;
            }
            for word in ["kak", "08:00", "😀"] {
                assert_eq!(
                    output.matches(word).count(),
                    input.matches(word).count(),
                    "{word} lost in {input:?} -> {output:?}"
                );
            }
        }
    }

    // ---- splitting --------------------------------------------------------------------

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    fn assert_valid_split(text: &str, parts: &[String], max_chars: usize) {
        for part in parts {
            assert!(!part.is_empty(), "empty part in {parts:?}");
            assert_eq!(part, part.trim(), "untrimmed part {part:?}");
            assert!(part.chars().count() <= max_chars.max(1), "part too long: {part:?}");
        }
        let joined = parts.join("\n\n");
        let visible = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        assert_eq!(visible(&joined), visible(text));
    }

    #[test]
    fn short_text_is_one_trimmed_part() {
        assert_eq!(split_for_whatsapp("  Halo kak!  \n", 4096), vec!["Halo kak!"]);
        assert_eq!(split_for_whatsapp("abc", 3), vec!["abc"]);
    }

    #[test]
    fn empty_input_gives_no_parts() {
        assert!(split_for_whatsapp("", 10).is_empty());
        assert!(split_for_whatsapp(" \n\t\n ", 10).is_empty());
    }

    #[test]
    fn long_answer_splits_at_paragraphs() {
        let paragraph = "Terima kasih sudah menghubungi kami. Pesanan Anda sedang kami proses \
                         dan akan dikirim besok pagi pukul 08:00. Total pembayaran Rp 50.000 \
                         sudah kami terima dengan baik 🙏.";
        let mut text = String::new();
        let mut index = 0;
        while text.chars().count() < 6000 {
            text.push_str(&format!("{index}. {paragraph}\n\n"));
            index += 1;
        }
        let parts = split_for_whatsapp(&text, 4096);
        assert!(parts.len() >= 2, "{}", parts.len());
        assert_valid_split(&text, &parts, 4096);
        assert_eq!(words(&parts.join("\n\n")), words(&text));
        for part in &parts {
            assert!(part.ends_with("🙏."), "not cut at a paragraph: {part:?}");
        }
    }

    #[test]
    fn huge_paragraph_splits_at_sentence_ends() {
        let sentences = [
            "Pesanan sudah kami terima.",
            "Apakah ada yang bisa dibantu lagi?",
            "Terima kasih banyak!",
            "Dia bilang \"besok saja.\"",
            "(Ongkir gratis untuk Jakarta.)",
        ];
        let text: Vec<&str> = sentences.iter().cycle().take(200).copied().collect();
        let text = text.join(" ");
        let parts = split_for_whatsapp(&text, 300);
        assert!(parts.len() > 10);
        assert_valid_split(&text, &parts, 300);
        assert_eq!(words(&parts.join("\n\n")), words(&text));
        for part in &parts {
            assert!(sentences.iter().any(|s| part.ends_with(s)), "not cut at a sentence end: {part:?}");
        }
    }

    #[test]
    fn text_without_spaces_is_cut_hard_on_char_boundaries() {
        let text = "é".repeat(10);
        assert_eq!(split_for_whatsapp(&text, 4), vec!["éééé", "éééé", "éé"]);
        let emoji = "😀a".repeat(5);
        assert_eq!(split_for_whatsapp(&emoji, 3), vec!["😀a😀", "a😀a", "😀a😀", "a"]);
    }

    #[test]
    fn hard_cut_keeps_modifiers_with_their_character() {
        let combining = "ee\u{301}e";
        assert_eq!(split_for_whatsapp(combining, 2), vec!["e", "e\u{301}", "e"]);
        let family = "ab👨\u{200D}👩";
        assert_eq!(split_for_whatsapp(family, 4), vec!["ab", "👨\u{200D}👩"]);
        let lone = "\u{301}\u{301}\u{301}";
        assert_eq!(split_for_whatsapp(lone, 2), vec!["\u{301}\u{301}", "\u{301}"]);
    }

    #[test]
    fn split_prefers_paragraph_then_line_then_sentence_then_word() {
        assert_eq!(split_for_whatsapp("aa bb.\ncc\n\ndd ee", 12), vec!["aa bb.\ncc", "dd ee"]);
        assert_eq!(split_for_whatsapp("aa. bb\ncc dd ee", 12), vec!["aa. bb", "cc dd ee"]);
        assert_eq!(split_for_whatsapp("aa bb. cc dd ee", 12), vec!["aa bb.", "cc dd ee"]);
        assert_eq!(split_for_whatsapp("aa bb cc dd ee", 12), vec!["aa bb cc dd", "ee"]);
    }

    #[test]
    fn split_recognises_closing_quotes_and_brackets() {
        assert_eq!(split_for_whatsapp("Kata dia \"siap!\" lalu pergi", 20), vec!["Kata dia \"siap!\"", "lalu pergi"]);
        assert_eq!(split_for_whatsapp("(Sudah dibayar?) Cek lagi", 18), vec!["(Sudah dibayar?)", "Cek lagi"]);
        assert_eq!(split_for_whatsapp("Harga Rp 50.000 per pcs ya", 17), vec!["Harga Rp 50.000", "per pcs ya"]);
    }

    #[test]
    fn split_does_not_orphan_list_numbers() {
        assert_eq!(split_for_whatsapp("1. Buka aplikasi lalu pesan", 12), vec!["1. Buka", "aplikasi", "lalu pesan"]);
    }

    #[test]
    fn split_uses_whitespace_right_after_a_full_part() {
        assert_eq!(split_for_whatsapp("abcd\n\nefgh", 4), vec!["abcd", "efgh"]);
        assert_eq!(split_for_whatsapp("abcd efgh", 4), vec!["abcd", "efgh"]);
    }

    #[test]
    fn zero_limit_is_treated_as_one() {
        assert_eq!(split_for_whatsapp("ab c", 0), vec!["a", "b", "c"]);
    }

    #[test]
    fn random_splits_keep_invariants() {
        let tokens = [
            "kak",
            "pesanan",
            "Rp 50.000",
            "é",
            "😀",
            "👨\u{200D}👩",
            "e\u{301}",
            "panjangsekalitanpaspasi",
            " ",
            " ",
            " ",
            "\n",
            "\n\n",
            "\n \n",
            ". ",
            "! ",
            "? ",
            "\" ",
            ") ",
            "1. ",
            "\t",
            "\u{a0}",
        ];
        let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
        for _ in 0..3000 {
            let length = rng.below(60);
            let text: String = (0..length).map(|_| rng.pick(&tokens)).collect();
            let max_chars = rng.below(40);
            let parts = split_for_whatsapp(&text, max_chars);
            assert_valid_split(&text, &parts, max_chars);
            let trimmed = text.trim();
            if trimmed.is_empty() {
                assert!(parts.is_empty());
            } else if trimmed.chars().count() <= max_chars.max(1) {
                assert_eq!(parts, vec![trimmed.to_string()]);
            }
            let longest_word = words(&text).iter().map(|w| w.chars().count()).max();
            if longest_word.is_none_or(|longest| longest <= max_chars) {
                assert_eq!(words(&parts.join("\n\n")), words(&text), "{text:?} / {max_chars}");
            }
        }
    }
}
