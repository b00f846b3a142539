//! Tables of contents (and lists of tables or figures): every heading's
//! words once more, next to a page number. Indexed, they would outrank the
//! sections themselves and cite the wrong page, so such pages are left out
//! and stray leader lines elsewhere are dropped.

use super::layout::Line;

/// A page is a contents page when at least this many of its lines are
/// entries...
const MIN_ENTRIES: usize = 5;
/// ...and they are at least this share of its lines with words.
const MIN_ENTRY_SHARE: f64 = 0.4;

pub(crate) fn is_contents_page(lines: &[Line]) -> bool {
    let worded: Vec<&str> =
        lines.iter().map(|line| line.text.as_str()).filter(|t| t.chars().any(char::is_alphabetic)).collect();
    let titled = worded.iter().any(|text| is_contents_title(text));
    let entries = worded.iter().filter(|text| is_entry(text, titled)).count();
    entries >= MIN_ENTRIES && entries as f64 >= MIN_ENTRY_SHARE * worded.len() as f64
}

/// "7.1 Lingkungan desktop GUI . . . . 123": dot leaders between a title
/// and a page number.
pub(crate) fn is_leader_line(text: &str) -> bool {
    text.contains(". . . .") || text.contains("....")
}

fn is_contents_title(text: &str) -> bool {
    let lower = text.trim().to_lowercase();
    ["daftar isi", "isi", "contents", "table of contents", "daftar tabel", "daftar gambar"].contains(&lower.as_str())
}

/// An entry: words, then a page number at the end. Without leaders, only
/// on a page titled as contents, where the number alone says it.
fn is_entry(text: &str, titled: bool) -> bool {
    let Some((head, number)) = text.trim().rsplit_once([' ', '.', '|']) else { return false };
    let is_page_number = !number.is_empty() && number.len() <= 4 && number.chars().all(|c| c.is_ascii_digit());
    is_page_number && head.chars().any(char::is_alphabetic) && (titled || is_leader_line(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(texts: &[&str]) -> Vec<Line> {
        texts.iter().map(|t| Line { text: (*t).into(), y: 0.0, size: 10.0 }).collect()
    }

    #[test]
    fn pages_of_leader_entries_or_titled_contents_are_contents() {
        let leaders: Vec<String> = (1..=8).map(|n| format!("6.{n} Bagian {n} . . . . . . . . 10{n}")).collect();
        let mut lines: Vec<&str> = leaders.iter().map(String::as_str).collect();
        lines.push("6 Aplikasi jaringan 109");
        assert!(is_contents_page(&page(&lines)));
        let titled = ["Daftar Isi", "Pendahuluan 1", "Latar Belakang 2", "Tujuan 3", "Sasaran 4", "Penutup 9"];
        assert!(is_contents_page(&page(&titled)));
    }

    #[test]
    fn numbered_text_is_not_contents() {
        let body = [
            "Tarif layanan mulai 1 Januari 2025",
            "Biaya pendaftaran Rp 50.000",
            "Jumlah peserta 30",
            "Lama pelatihan dalam hari 5",
            "Ruang kelas nomor 12",
            "Dibuka oleh camat pukul 8",
        ];
        assert!(!is_contents_page(&page(&body)), "numbers at line ends without leaders or a contents title");
        assert!(is_leader_line("7.1 Lingkungan desktop GUI . . . . 123"));
        assert!(!is_leader_line("Versi 1.2. Rilis baru."));
    }
}
