//! The CSV of contacts, both ways: RFC 4180 fields (quotes, doubled quotes,
//! line breaks inside quotes, CRLF), with what spreadsheets add: a byte
//! order mark, and `;` between fields when Excel's locale writes decimals
//! with a comma (Indonesian Excel does). Small enough to own instead of a
//! dependency, and the line numbers reported are the file's own.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("line {0}: a quoted field is never closed")]
    UnclosedQuote(usize),
    #[error("line {0}: text after a closing quote (write \"\" for a quote inside a quoted field)")]
    AfterQuote(usize),
}

/// One record and the line of the file it starts on (1 is the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// The records of `text`, blank lines left out. The separator is the one
/// the first line uses most: `,` or `;`.
pub fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or_default();
    let separator = if first_line.matches(';').count() > first_line.matches(',').count() { ';' } else { ',' };
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') if field.is_empty() => {
                    loop {
                        match chars.next() {
                            None => return Err(CsvError::UnclosedQuote(start)),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some('\n' | '\r') => {}
                        Some(&c) if c == separator => {}
                        Some(_) => return Err(CsvError::AfterQuote(line)),
                    }
                }
                Some(c) if c == separator => fields.push(std::mem::take(&mut field)),
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(c) => field.push(c),
            }
        }
        if fields.iter().any(|field| !field.trim().is_empty()) {
            records.push(Record { line: start, fields });
        }
    }
    Ok(records)
}

/// One line of CSV (with its CRLF). A field is quoted when it holds a
/// separator, a quote or a line break; one that a spreadsheet would run as
/// a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return)
/// gets a leading `'`, so an exported name like `=HYPERLINK(…)` stays text.
pub fn line<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (index, field) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let guarded =
            if field.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{field}") } else { field.to_owned() };
        if guarded.contains([',', ';', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(records: &[Record]) -> Vec<(usize, Vec<&str>)> {
        records.iter().map(|r| (r.line, r.fields.iter().map(String::as_str).collect())).collect()
    }

    #[test]
    fn quotes_commas_line_breaks_and_a_bom() {
        let text =
            "\u{feff}nomor,nama,tags\r\n0812,\"Sari, S.Kep\",vip\r\n\r\n0813,\"Budi \"\"Bob\"\"\",\"a;\nb\"\n0814,,";
        let records = parse(text).unwrap();
        assert_eq!(
            fields(&records),
            [
                (1, vec!["nomor", "nama", "tags"]),
                (2, vec!["0812", "Sari, S.Kep", "vip"]),
                (4, vec!["0813", "Budi \"Bob\"", "a;\nb"]),
                (6, vec!["0814", "", ""]),
            ]
        );
    }

    #[test]
    fn semicolons_when_the_header_uses_them() {
        let records = parse("nomor;nama\n0812;Sari, S.Kep\n").unwrap();
        assert_eq!(fields(&records), [(1, vec!["nomor", "nama"]), (2, vec!["0812", "Sari, S.Kep"])]);
    }

    #[test]
    fn broken_quotes_say_where() {
        assert_eq!(parse("a,b\n1,\"open\n2,3\n"), Err(CsvError::UnclosedQuote(2)));
        assert_eq!(parse("a,b\n1,\"x\"y\n"), Err(CsvError::AfterQuote(2)));
    }

    #[test]
    fn written_lines_read_back_and_never_run_as_formulas() {
        let written = line(["62812", "Sari, \"S.Kep\"", "=HYPERLINK(\"x\")", "a\nb", "-1", "@me", "+62"]);
        assert!(written.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{written}");
        let read = parse(&written).unwrap();
        assert_eq!(
            fields(&read),
            [(1, vec!["62812", "Sari, \"S.Kep\"", "'=HYPERLINK(\"x\")", "a\nb", "'-1", "'@me", "'+62"])]
        );
    }
}
