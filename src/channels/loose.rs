//! Reading a provider's JSON loosely. Providers add fields, switch a
//! number to a string between versions and leave things out; a field that
//! does not fit is `None`, never an error that would fail (and get
//! redelivered with) the whole webhook.

use crate::domain::clean_text;
use serde_json::Value;

pub fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Every string read from a webhook goes through here, cleaned as message
/// bodies are (see `domain::clean_text`).
pub fn non_blank(value: &Value) -> Option<String> {
    let text = clean_text(value.as_str()?);
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A whole number written as a JSON number or as a string ("1700000000").
pub fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.trim().parse().ok())
}

/// A finite number written as a JSON number or as a string ("51.5074").
pub fn number(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| value.as_str()?.trim().parse().ok()).filter(|n: &f64| n.is_finite())
}
