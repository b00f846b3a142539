//! A CSV of contacts read into rows the store can save, line by line: a bad
//! line is reported with its number and reason and does not stop the others.
//! The header names the columns, in English or Indonesian, in any order.

use super::csv::{self, CsvError};
use super::{contact_name, ContactError, Tag};
use crate::domain::{indonesian_number, NumberError};
use crate::store::{Consent, ContactRow};

/// Lines one import may hold (a 1 MiB body holds about this many).
pub const MAX_LINES: usize = 20_000;

/// The columns of an export, which an import reads back.
pub const COLUMNS: [&str; 6] = ["number", "name", "tags", "consent", "consent_source", "consent_at"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error("the file is empty")]
    Empty,
    #[error(
        "the first line must name the columns, one of them the number (number, nomor, phone, no_hp, hp, whatsapp)"
    )]
    NoNumberColumn,
    #[error("at most {MAX_LINES} lines at once; split the file")]
    TooManyLines,
}

/// Why one line was not imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("number: {0}")]
    Number(#[from] NumberError),
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error("consent {0:?} is not one of opted_in, opted_out, unknown (or ya / tidak)")]
    Consent(String),
}

/// A line that reads as a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportLine {
    pub line: usize,
    pub row: ContactRow,
}

/// The readable lines and the others, each with its line number.
#[derive(Debug, Default)]
pub struct Read {
    pub rows: Vec<ImportLine>,
    pub errors: Vec<(usize, LineError)>,
}

/// Where each known column is, by the header's names.
struct Columns {
    number: usize,
    name: Option<usize>,
    tags: Option<usize>,
    consent: Option<usize>,
}

impl Columns {
    fn from_header(header: &[String]) -> Result<Self, ImportError> {
        let names: Vec<String> =
            header.iter().map(|name| name.trim().to_lowercase().replace([' ', '-', '.'], "_")).collect();
        let find = |wanted: &[&str]| names.iter().position(|name| wanted.contains(&name.as_str()));
        let number = find(&[
            "number",
            "nomor",
            "phone",
            "phone_number",
            "no",
            "no_hp",
            "nomor_hp",
            "hp",
            "whatsapp",
            "wa",
            "no_wa",
            "nomor_wa",
            "telepon",
        ])
        .ok_or(ImportError::NoNumberColumn)?;
        Ok(Self {
            number,
            name: find(&["name", "nama", "nama_lengkap"]),
            tags: find(&["tags", "tag", "label", "labels"]),
            consent: find(&["consent", "opt_in", "optin", "persetujuan", "izin_promosi"]),
        })
    }
}

/// Reads `text`: its first line is the header.
pub fn read(text: &str) -> Result<Read, ImportError> {
    let records = csv::parse(text)?;
    let (header, lines) = records.split_first().ok_or(ImportError::Empty)?;
    if lines.len() > MAX_LINES {
        return Err(ImportError::TooManyLines);
    }
    let columns = Columns::from_header(&header.fields)?;
    let mut read = Read::default();
    for record in lines {
        match row(&columns, &record.fields) {
            Ok(row) => read.rows.push(ImportLine { line: record.line, row }),
            Err(error) => read.errors.push((record.line, error)),
        }
    }
    Ok(read)
}

fn row(columns: &Columns, fields: &[String]) -> Result<ContactRow, LineError> {
    let cell = |index: Option<usize>| index.and_then(|i| fields.get(i)).map(|value| unguarded(value.trim()));
    let phone = indonesian_number(cell(Some(columns.number)).unwrap_or_default())?;
    let name = cell(columns.name).map(contact_name).transpose()?.flatten();
    // An empty cell leaves what is stored as it is.
    let tags = cell(columns.tags).filter(|tags| !tags.is_empty()).map(Tag::list).transpose()?;
    let consent = match cell(columns.consent) {
        None => None,
        Some(value) => consent(value)?,
    };
    Ok(ContactRow { phone, name, tags, consent })
}

/// What a consent cell says; `None` (keep) for an empty or `unknown` one.
fn consent(value: &str) -> Result<Option<Consent>, LineError> {
    match value.to_lowercase().replace(['-', ' '], "_").as_str() {
        "" | "unknown" => Ok(None),
        "opted_in" | "opt_in" | "ya" | "yes" | "y" | "1" | "true" | "setuju" => Ok(Some(Consent::OptedIn)),
        "opted_out" | "opt_out" | "tidak" | "no" | "n" | "0" | "false" | "menolak" => Ok(Some(Consent::OptedOut)),
        _ => Err(LineError::Consent(value.to_owned())),
    }
}

/// A cell the export guarded against formulas (`'=…`), as it was.
fn unguarded(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_lines_are_told_apart_by_line() {
        let text = "\u{feff}Nomor HP;Nama;Tags;Opt-in\n\
                    0812-3456-7890;\"Sari; S.Kep\";VIP, pasien gigi;ya\n\
                    0212345678;Kantor;;\n\
                    +62 813 1111 2222;;;\n\
                    0814 5555 6666;Budi;a/b;\n\
                    0815 7777 8888;Ani;;mungkin\n\
                    0816 1234 5678;'=HYPERLINK(1);;opted_out\n";
        let read = read(text).unwrap();
        let lines: Vec<usize> = read.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4, 7]);
        let sari = &read.rows[0].row;
        assert_eq!(sari.phone.expose(), "6281234567890");
        assert_eq!(sari.name.as_deref(), Some("Sari; S.Kep"));
        let tags: Vec<&str> = sari.tags.as_ref().unwrap().iter().map(Tag::as_str).collect();
        assert_eq!(tags, ["pasien-gigi", "vip"]);
        assert_eq!(sari.consent, Some(Consent::OptedIn));
        assert_eq!(
            read.rows[1].row,
            ContactRow { phone: indonesian_number("6281311112222").unwrap(), name: None, tags: None, consent: None }
        );
        assert_eq!(read.rows[2].row.name.as_deref(), Some("=HYPERLINK(1)"));
        assert_eq!(read.rows[2].row.consent, Some(Consent::OptedOut));
        let errors: Vec<(usize, String)> = read.errors.iter().map(|(line, e)| (*line, e.to_string())).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].0, 3);
        assert!(errors[0].1.starts_with("number:"), "{errors:?}");
        assert_eq!(errors[1].0, 5);
        assert!(errors[1].1.contains("tag"), "{errors:?}");
        assert_eq!(errors[2], (6, LineError::Consent("mungkin".into()).to_string()));
    }

    #[test]
    fn a_file_without_a_number_column_is_refused_whole() {
        assert!(matches!(read("nama,tags\nSari,vip\n"), Err(ImportError::NoNumberColumn)));
        assert!(matches!(read(""), Err(ImportError::Empty)));
        assert!(matches!(read("nomor\n\"0812\n"), Err(ImportError::Csv(_))));
    }
}
