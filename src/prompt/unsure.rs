//! The prompt contract's "I do not know" marker: `system.md` asks the model
//! to put [`MARKER`] in a reply the documents do not support. The marker
//! is for us, never for the customer, so it is taken out of every reply
//! wherever it stands and however the model spelled it.

/// As `prompts/system.md` spells it.
pub const MARKER: &str = "[TIDAK_TAHU]";

/// `reply` without any marker, and whether there was one.
pub fn strip_marker(reply: &str) -> (String, bool) {
    let mut kept = String::with_capacity(reply.len());
    let mut found = false;
    let mut rest = reply;
    while let Some(open) = rest.find(['[', '\\']) {
        match marker_at(&rest[open..]) {
            Some(length) => {
                kept.push_str(&rest[..open]);
                rest = &rest[open + length..];
                found = true;
            }
            None => {
                let next = open + rest[open..].chars().next().map_or(1, char::len_utf8);
                kept.push_str(&rest[..next]);
                rest = &rest[next..];
            }
        }
    }
    kept.push_str(rest);
    if !found {
        return (reply.to_owned(), false);
    }
    (tidy(&kept), true)
}

/// The length of a marker at the start of `text`: brackets around
/// "tidak tahu" in any case, joined by spaces, `_` or `-`, and the
/// backslashes a model writing Markdown may put before them.
fn marker_at(text: &str) -> Option<usize> {
    let body = text.strip_prefix('\\').unwrap_or(text);
    let inner_start = body.strip_prefix('[')?;
    let close = inner_start.find(']')?;
    let inner = inner_start[..close].trim_end_matches('\\');
    let letters: String = inner.chars().filter(|c| !(c.is_whitespace() || matches!(c, '_' | '-' | '\\'))).collect();
    if !letters.eq_ignore_ascii_case("tidaktahu") {
        return None;
    }
    Some(text.len() - body.len() + 1 + close + 1)
}

/// Spaces a marker left at line ends, and blank lines at either end.
fn tidy(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_goes_wherever_and_however_it_is_written() {
        let cases = [
            ("[TIDAK_TAHU] Maaf kak, belum ada infonya.", "Maaf kak, belum ada infonya."),
            ("Maaf kak, belum ada infonya. [TIDAK_TAHU]", "Maaf kak, belum ada infonya."),
            ("Maaf kak [tidak tahu] belum ada infonya.", "Maaf kak belum ada infonya."),
            ("Maaf kak.\n\n[ Tidak-Tahu ]", "Maaf kak."),
            ("\\[TIDAK\\_TAHU\\] Maaf kak.", "Maaf kak."),
            ("[TIDAK_TAHU][TIDAK_TAHU]", ""),
        ];
        for (reply, expected) in cases {
            assert_eq!(strip_marker(reply), (expected.to_owned(), true), "{reply:?}");
        }
    }

    #[test]
    fn replies_without_the_marker_are_left_alone() {
        for reply in ["Biayanya Rp 75.000 kak [Panduan, hlm. 2].", "Ini [tidak] tahu-tahu", "a [b", "é\\[x"] {
            assert_eq!(strip_marker(reply), (reply.to_owned(), false));
        }
    }
}
