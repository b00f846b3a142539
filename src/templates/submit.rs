//! A new template checked before it goes to Meta's review: the mistakes
//! Meta rejects a template for (days later, by webhook) are reported at
//! once, all together, with nothing submitted.

use super::model::placeholders;
use serde::Deserialize;
use serde_json::{json, Value};

const MAX_NAME_CHARS: usize = 512;
const MAX_BODY_CHARS: usize = 1024;
const MAX_HEADER_CHARS: usize = 60;
const MAX_FOOTER_CHARS: usize = 60;
const MAX_BUTTONS: usize = 10;

/// `POST /api/templates`: Meta's own shape, so its documentation applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    #[serde(default)]
    pub parameter_format: Option<String>,
    pub components: Vec<Value>,
    /// Which number's business account (the default one when left out).
    #[serde(default)]
    pub account: Option<String>,
}

impl NewTemplate {
    /// The body Graph takes, or every problem found.
    pub fn checked(&self) -> Result<Value, Vec<String>> {
        let mut problems = Vec::new();
        let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if self.name.is_empty() || self.name.len() > MAX_NAME_CHARS || !self.name.chars().all(name_ok) {
            problems.push(format!("name: 1 to {MAX_NAME_CHARS} lowercase letters, digits and '_'"));
        }
        if !language_ok(&self.language) {
            problems.push("language: a code such as id, en or en_US".into());
        }
        let category = self.category.to_ascii_uppercase();
        if !["MARKETING", "UTILITY", "AUTHENTICATION"].contains(&category.as_str()) {
            problems.push("category: MARKETING, UTILITY or AUTHENTICATION".into());
        }
        let mut seen = Vec::new();
        let mut bodies = 0;
        for (at, component) in self.components.iter().enumerate() {
            let kind = component["type"].as_str().unwrap_or_default().to_ascii_uppercase();
            let text = component["text"].as_str().unwrap_or_default();
            let place = format!("components[{at}] ({})", if kind.is_empty() { "no type" } else { &kind });
            match kind.as_str() {
                "BODY" => {
                    bodies += 1;
                    check_text(&place, text, MAX_BODY_CHARS, component, "body_text", &mut problems);
                }
                "HEADER" => match component["format"].as_str().unwrap_or("TEXT").to_ascii_uppercase().as_str() {
                    "TEXT" => {
                        check_text(&place, text, MAX_HEADER_CHARS, component, "header_text", &mut problems);
                        if placeholders(text).len() > 1 {
                            problems.push(format!("{place}: a header has at most one placeholder"));
                        }
                    }
                    "IMAGE" | "VIDEO" | "DOCUMENT" => {
                        if component["example"]["header_handle"].as_array().is_none_or(Vec::is_empty) {
                            problems.push(format!(
                                "{place}: a file header needs example.header_handle (a sample uploaded to Meta)"
                            ));
                        }
                    }
                    "LOCATION" => {}
                    other => problems
                        .push(format!("{place}: format {other:?} is not TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION")),
                },
                "FOOTER" => {
                    if text.is_empty() || text.chars().count() > MAX_FOOTER_CHARS || !placeholders(text).is_empty() {
                        problems.push(format!("{place}: 1 to {MAX_FOOTER_CHARS} characters without placeholders"));
                    }
                }
                "BUTTONS" => {
                    let count = component["buttons"].as_array().map_or(0, Vec::len);
                    if !(1..=MAX_BUTTONS).contains(&count) {
                        problems.push(format!("{place}: 1 to {MAX_BUTTONS} buttons"));
                    }
                }
                _ => problems.push(format!("{place}: type must be HEADER, BODY, FOOTER or BUTTONS")),
            }
            if seen.contains(&kind) {
                problems.push(format!("{place}: only one {kind} component"));
            }
            seen.push(kind);
        }
        if bodies == 0 {
            problems.push("components: a BODY with the message's text is required".into());
        }
        let named = self.uses_named_placeholders();
        match self.parameter_format.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None => {}
            Some("NAMED") if named != Some(false) => {}
            Some("POSITIONAL") if named != Some(true) => {}
            Some(other) => problems.push(format!(
                "parameter_format: {other:?} does not match the placeholders ({{{{1}}}} is POSITIONAL, {{{{name}}}} NAMED)"
            )),
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut body = json!({
            "name": self.name, "language": self.language, "category": category, "components": self.components,
        });
        if named == Some(true) {
            body["parameter_format"] = json!("NAMED");
        }
        Ok(body)
    }

    /// `Some(true)` for `{{name}}` placeholders, `Some(false)` for `{{1}}`,
    /// `None` without any.
    fn uses_named_placeholders(&self) -> Option<bool> {
        let all: Vec<String> =
            self.components.iter().flat_map(|c| placeholders(c["text"].as_str().unwrap_or_default())).collect();
        all.first().map(|first| !first.chars().all(|c| c.is_ascii_digit()))
    }
}

fn language_ok(code: &str) -> bool {
    let (lang, region) = code.split_once('_').unwrap_or((code, ""));
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && (region.is_empty() || (region.len() == 2 && region.chars().all(|c| c.is_ascii_uppercase())))
}

/// A header's or body's text: its length, its placeholders well formed and
/// apart, not at either end, and an example value for each.
fn check_text(place: &str, text: &str, max: usize, component: &Value, example_key: &str, problems: &mut Vec<String>) {
    if text.trim().is_empty() || text.chars().count() > max {
        problems.push(format!("{place}: text of 1 to {max} characters"));
        return;
    }
    let names = placeholders(text);
    if names.is_empty() {
        return;
    }
    let positional = names.iter().all(|name| name.chars().all(|c| c.is_ascii_digit()));
    let named_ok = |name: &String| {
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if positional {
        let mut numbers: Vec<usize> = names.iter().filter_map(|name| name.parse().ok()).collect();
        numbers.sort_unstable();
        if numbers.iter().enumerate().any(|(at, n)| *n != at + 1) {
            problems.push(format!("{place}: positional placeholders must be {{{{1}}}}, {{{{2}}}}, … without gaps"));
        }
    } else if !names.iter().all(named_ok) {
        problems.push(format!(
            "{place}: placeholders are all numbers ({{{{1}}}}) or all lowercase names ({{{{nama_pelanggan}}}})"
        ));
    }
    let trimmed = text.trim();
    if trimmed.starts_with("{{") || trimmed.ends_with("}}") {
        problems.push(format!("{place}: Meta rejects a text that starts or ends with a placeholder"));
    }
    if text.contains("}}{{") || text.contains("}} {{") {
        problems.push(format!("{place}: Meta rejects placeholders next to each other; put words between them"));
    }
    let example = &component["example"];
    let given = if positional {
        example[example_key].as_array().and_then(|rows| rows.first()).map_or_else(
            || example[example_key].as_array().map_or(0, |values| values.iter().filter(|v| v.is_string()).count()),
            |row| row.as_array().map_or(usize::from(row.is_string()), Vec::len),
        )
    } else {
        example[format!("{example_key}_named_params")].as_array().map_or(0, Vec::len)
    };
    if given < names.len() {
        let key = if positional { example_key.to_owned() } else { format!("{example_key}_named_params") };
        problems.push(format!("{place}: Meta needs an example value for each placeholder in example.{key}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(components: Value) -> NewTemplate {
        serde_json::from_value(json!({
            "name": "tagihan_bulanan", "language": "id", "category": "utility", "components": components,
        }))
        .unwrap()
    }

    #[test]
    fn a_good_template_goes_as_meta_documents_it() {
        let template = new(json!([
            {"type": "BODY", "text": "Halo {{1}}, tagihan {{2}} sudah terbit.", "example": {"body_text": [["Budi", "Mei"]]}},
            {"type": "FOOTER", "text": "PT Net"},
        ]));
        let body = template.checked().unwrap();
        assert_eq!((body["category"].as_str(), body.get("parameter_format")), (Some("UTILITY"), None));
        let named = new(json!([{"type": "BODY", "text": "Halo {{nama}}, apa kabar?",
            "example": {"body_text_named_params": [{"param_name": "nama", "example": "Budi"}]}}]));
        assert_eq!(named.checked().unwrap()["parameter_format"], "NAMED");
    }

    #[test]
    fn every_mistake_meta_would_reject_is_listed() {
        let mut template = new(json!([
            {"type": "HEADER", "format": "TEXT", "text": "{{1}} dan {{2}}"},
            {"type": "BODY", "text": "{{1}}{{3}} selesai"},
            {"type": "FOOTER", "text": "Hubungi {{1}}"},
        ]));
        template.name = "Tagihan Bulanan".into();
        template.category = "PROMO".into();
        let problems = template.checked().unwrap_err();
        for expected in [
            "name: 1 to 512 lowercase letters, digits and '_'",
            "category: MARKETING, UTILITY or AUTHENTICATION",
            "components[0] (HEADER): a header has at most one placeholder",
            "components[1] (BODY): positional placeholders must be {{1}}, {{2}}, … without gaps",
            "components[1] (BODY): Meta rejects a text that starts or ends with a placeholder",
            "components[1] (BODY): Meta rejects placeholders next to each other; put words between them",
            "components[1] (BODY): Meta needs an example value for each placeholder in example.body_text",
            "components[2] (FOOTER): 1 to 60 characters without placeholders",
        ] {
            assert!(problems.iter().any(|p| p == expected), "{expected} not in {problems:#?}");
        }
        assert!(new(json!([])).checked().unwrap_err().iter().any(|p| p.contains("a BODY")));
    }
}
