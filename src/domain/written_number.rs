use super::PhoneNumber;

/// Why a number an application sent is not one we can write to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the number is empty")]
    Empty,
    #[error("the number may only hold digits, spaces, '-', '.', '(' and ')', a leading '+' or a trailing @c.us")]
    Characters,
    #[error("an Indonesian number starts with 08, 8, +62 or 62 (or give another country's code after '+')")]
    Prefix,
    #[error("the number has {0} digits; a WhatsApp number has 8 to 15 with its country code")]
    Length(usize),
}

/// Reads a number the way Indonesian systems write them: `0812…`, `812…`,
/// `+62 812-…`, `62812…` and WAHA's `62812…@c.us` all become `62812…`.
/// Another country's number is taken with its `+` and code. Formatting
/// characters people type (spaces, dashes, dots, brackets) are dropped.
pub fn indonesian_number(raw: &str) -> Result<PhoneNumber, NumberError> {
    let raw = raw.trim();
    let raw = raw.strip_suffix("@c.us").or_else(|| raw.strip_suffix("@s.whatsapp.net")).unwrap_or(raw);
    if raw.is_empty() {
        return Err(NumberError::Empty);
    }
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if !rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')) {
        return Err(NumberError::Characters);
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let international = match (plus, digits.as_bytes()) {
        (true, _) => digits,
        (false, [b'6', b'2', ..]) => digits,
        (false, [b'0', b'8', ..]) => format!("62{}", &digits[1..]),
        (false, [b'8', ..]) => format!("62{digits}"),
        _ => return Err(NumberError::Prefix),
    };
    if !(8..=15).contains(&international.len()) {
        return Err(NumberError::Length(international.len()));
    }
    PhoneNumber::parse(&international).map_err(|_| NumberError::Length(international.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_indonesians_write_a_number_becomes_the_same_one() {
        for written in [
            "081234567789",
            "81234567789",
            "+6281234567789",
            "6281234567789",
            "6281234567789@c.us",
            "0812-3456-7789",
            " +62 812 3456 7789 ",
            "(0812) 3456.7789",
        ] {
            assert_eq!(indonesian_number(written).unwrap().expose(), "6281234567789", "{written}");
        }
        assert_eq!(indonesian_number("+60123456789").unwrap().expose(), "60123456789", "another country, with '+'");
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        assert_eq!(indonesian_number(" "), Err(NumberError::Empty));
        assert_eq!(indonesian_number("0812abc"), Err(NumberError::Characters));
        assert_eq!(indonesian_number("+62-812;drop"), Err(NumberError::Characters));
        assert_eq!(indonesian_number("0212345678"), Err(NumberError::Prefix), "a landline");
        assert_eq!(indonesian_number("60123456789"), Err(NumberError::Prefix), "another country needs its '+'");
        assert_eq!(indonesian_number("0812"), Err(NumberError::Length(5)));
        assert_eq!(indonesian_number("+62812345678901234"), Err(NumberError::Length(17)));
    }
}
