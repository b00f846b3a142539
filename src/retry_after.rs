//! The `Retry-After` header, as OpenRouter and the Graph API send it.

use std::time::Duration;

/// Whole seconds or an HTTP date; a date in the past means "now".
pub fn parse(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_http_dates() {
        assert_eq!(parse(" 30 "), Some(Duration::from_secs(30)));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
        let wait = parse(&soon).unwrap();
        assert!(wait <= Duration::from_secs(3) && wait >= Duration::from_secs(1), "{wait:?}");
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("soon"), None);
    }
}
