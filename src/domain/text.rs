/// The one rule for every string a person (or Meta) hands us before it is
/// stored: control characters other than tab and newline are removed, and a
/// carriage return becomes a newline. PostgreSQL refuses a NUL in a text
/// value, which would fail the whole webhook's transaction on every
/// redelivery while SQLite stored it; the other controls are invisible in
/// a transcript and only reach the model as noise. Cleaning here means both
/// backends store the same text.
pub fn clean_text(raw: &str) -> String {
    if !raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return raw.to_owned();
    }
    let mut clean = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => clean.push('\n'),
            '\n' | '\t' => clean.push(c),
            _ if c.is_control() => {}
            _ => clean.push(c),
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_other_controls_are_removed() {
        assert_eq!(clean_text("syarat\u{0}KTP\u{7}\u{1b}[31m apa\u{7f}\u{85}"), "syaratKTP[31m apa");
    }

    #[test]
    fn tabs_and_line_breaks_survive_and_carriage_returns_become_newlines() {
        assert_eq!(clean_text("a\tb\r\nc\rd\ne"), "a\tb\nc\nd\ne");
        assert_eq!(clean_text("halo kak 👋"), "halo kak 👋");
    }
}
