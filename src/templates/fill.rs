//! Filling a template for one send: the application's values checked
//! against the template before anything is queued, then shaped the way
//! Graph takes them (`components` with their `parameters`), and rendered to
//! the text the customer will read, for the transcript, the bot's history
//! and providers that have no templates.

use super::model::{placeholders, substitute, ButtonKind, Header, Shape, Template};
use crate::domain::{MediaKind, OutboundMedia};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Meta refuses a parameter longer than this, or one with a line break, a
/// tab or more than four spaces in a row (error 132018).
const MAX_PARAMETER_CHARS: usize = 1024;
const MAX_HEADER_PARAMETER_CHARS: usize = 60;
const MAX_COUPON_CHARS: usize = 15;

/// The values of a template send, as the send API takes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateArgs {
    pub name: String,
    /// The template's language code (`id`, `en_US`); may be left out when
    /// the template exists in one language.
    pub language: Option<String>,
    /// Values of the header's placeholders.
    #[serde(default)]
    pub header: Option<Values>,
    /// Values of the body's placeholders: a list in order, or by name.
    #[serde(default)]
    pub body: Option<Values>,
    /// One entry per button in the template's order: a URL button's
    /// suffix, a copy-code button's code, a quick reply's payload; `null`
    /// for a button that takes nothing.
    #[serde(default)]
    pub buttons: Vec<Option<Scalar>>,
    /// The file of an image, video or document header.
    #[serde(default)]
    pub media: Option<HeaderFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Values {
    List(Vec<Scalar>),
    Named(BTreeMap<String, Scalar>),
}

/// A value: text, or a number or yes/no an application sends as it is.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.trim().to_owned(),
            Scalar::Number(number) => number.to_string(),
            Scalar::Bool(yes) => yes.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderFile {
    pub url: String,
    pub filename: Option<String>,
}

/// A template filled for one send.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    /// Graph's `template` object: name, language, components.
    pub payload: Value,
    /// What the customer reads.
    pub text: String,
    /// The header's file, which providers without templates send with the
    /// text as its caption.
    pub media: Option<OutboundMedia>,
}

/// Fills `template` with `args`, or lists everything wrong with them.
pub fn fill(template: &Template, args: &TemplateArgs) -> Result<Filled, Vec<String>> {
    let shape = template.shape();
    let mut problems = Vec::new();
    let mut components = Vec::new();
    let mut lines = Vec::new();

    let mut media = None;
    match &shape.header {
        Some(Header::Text(text)) => {
            let values = take_values("header", text, args.header.as_ref(), &mut problems);
            check_lengths("header", &values, MAX_HEADER_PARAMETER_CHARS, &mut problems);
            if !values.is_empty() {
                components.push(json!({ "type": "header", "parameters": parameters(&values, shape.named) }));
            }
            lines.push(format!("*{}*", render(text, &values)));
        }
        Some(Header::Media(kind)) => {
            if args.header.is_some() {
                problems.push("header: a file header takes its file in media, not values".into());
            }
            match &args.media {
                None => {
                    problems.push(format!("media: the header is {} {}: give its url", article(*kind), kind.as_str()))
                }
                Some(file) => match OutboundMedia::new(*kind, &file.url, file.filename.as_deref()) {
                    Ok(file) => {
                        let mut object = json!({ "link": file.url() });
                        if let Some(name) = file.filename().filter(|_| *kind == MediaKind::Document) {
                            object["filename"] = json!(name);
                        }
                        let kind = kind.as_str();
                        components.push(json!({ "type": "header", "parameters": [{ "type": kind, kind: object }] }));
                        media = Some(file);
                    }
                    Err(error) => problems.push(format!("media: {error}")),
                },
            }
        }
        Some(Header::Other(format)) => {
            problems.push(format!("the template's {format} header cannot be filled through the send API"));
        }
        None => {
            if args.header.is_some() {
                problems.push("header: the template has no header".into());
            }
        }
    }
    if args.media.is_some() && !matches!(shape.header, Some(Header::Media(_))) {
        problems.push("media: the template's header is not a file".into());
    }

    let values = take_values("body", &shape.body, args.body.as_ref(), &mut problems);
    check_lengths("body", &values, MAX_PARAMETER_CHARS, &mut problems);
    if !values.is_empty() {
        components.push(json!({ "type": "body", "parameters": parameters(&values, shape.named) }));
    }
    lines.push(render(&shape.body, &values));
    if let Some(footer) = &shape.footer {
        lines.push(format!("_{footer}_"));
    }
    fill_buttons(&shape, &args.buttons, &mut components, &mut lines, &mut problems);

    if !problems.is_empty() {
        return Err(problems);
    }
    let mut payload = json!({ "name": template.name, "language": { "code": template.language } });
    if !components.is_empty() {
        payload["components"] = Value::Array(components);
    }
    Ok(Filled { payload, text: lines.join("\n\n"), media })
}

fn article(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "an",
        _ => "a",
    }
}

/// The values of `text`'s placeholders in order, `(placeholder, value)`;
/// every missing, unknown or surplus value is a problem.
fn take_values(part: &str, text: &str, given: Option<&Values>, problems: &mut Vec<String>) -> Vec<(String, String)> {
    let wanted = placeholders(text);
    let mut values = Vec::with_capacity(wanted.len());
    match given {
        None => problems.extend(wanted.iter().map(|name| format!("{part}: missing {{{{{name}}}}}"))),
        Some(Values::List(list)) => {
            if list.len() > wanted.len() {
                problems.push(format!("{part}: {} values given, the template has {}", list.len(), wanted.len()));
            }
            for (at, name) in wanted.iter().enumerate() {
                match list.get(at) {
                    Some(value) => values.push((name.clone(), value.text())),
                    None => problems.push(format!("{part}: missing {{{{{name}}}}}")),
                }
            }
        }
        Some(Values::Named(map)) => {
            for name in map.keys().filter(|key| !wanted.contains(key)) {
                problems.push(format!("{part}: the template has no {{{{{name}}}}}"));
            }
            for name in &wanted {
                match map.get(name) {
                    Some(value) => values.push((name.clone(), value.text())),
                    None => problems.push(format!("{part}: missing {{{{{name}}}}}")),
                }
            }
        }
    }
    values
}

fn check_lengths(part: &str, values: &[(String, String)], max_chars: usize, problems: &mut Vec<String>) {
    for (name, value) in values {
        if let Some(problem) = parameter_problem(value, max_chars) {
            problems.push(format!("{part}: {{{{{name}}}}} {problem}"));
        }
    }
}

/// Why Meta would refuse `value` as a parameter.
fn parameter_problem(value: &str, max_chars: usize) -> Option<String> {
    if value.is_empty() {
        Some("is empty".into())
    } else if value.chars().count() > max_chars {
        Some(format!("is longer than {max_chars} characters"))
    } else if value.contains(['\n', '\r', '\t']) || value.contains("     ") {
        Some("has a line break, a tab or more than four spaces in a row (WhatsApp refuses them)".into())
    } else {
        None
    }
}

fn parameters(values: &[(String, String)], named: bool) -> Value {
    values
        .iter()
        .map(|(name, value)| {
            let mut parameter = Map::new();
            parameter.insert("type".into(), json!("text"));
            if named {
                parameter.insert("parameter_name".into(), json!(name));
            }
            parameter.insert("text".into(), json!(value));
            Value::Object(parameter)
        })
        .collect()
}

fn render(text: &str, values: &[(String, String)]) -> String {
    substitute(text, |name| values.iter().find(|(wanted, _)| wanted == name).map(|(_, value)| value.clone()))
}

fn fill_buttons(
    shape: &Shape,
    given: &[Option<Scalar>],
    components: &mut Vec<Value>,
    lines: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    if given.len() > shape.buttons.len() {
        problems.push(format!(
            "buttons: {} values given, the template has {} buttons",
            given.len(),
            shape.buttons.len()
        ));
    }
    let mut replies = Vec::new();
    for (index, button) in shape.buttons.iter().enumerate() {
        let value = given.get(index).and_then(Option::as_ref).map(Scalar::text);
        let label = format!("buttons[{index}] ({})", button.text);
        let component = |parameter: Value| json!({ "type": "button", "sub_type": button.kind.sub_type(), "index": index.to_string(), "parameters": [parameter] });
        match button.kind {
            ButtonKind::Url => {
                let target = button.target.clone().unwrap_or_default();
                if placeholders(&target).is_empty() {
                    if value.is_some() {
                        problems.push(format!("{label}: its address is fixed and takes no value"));
                    }
                    lines.push(format!("{}: {target}", button.text));
                    continue;
                }
                match value {
                    Some(suffix) if parameter_problem(&suffix, 2000).is_none() && !suffix.contains(' ') => {
                        lines.push(format!("{}: {}", button.text, substitute(&target, |_| Some(suffix.clone()))));
                        components.push(component(json!({ "type": "text", "text": suffix })));
                    }
                    Some(_) => problems.push(format!("{label}: the address suffix must be one word without spaces")),
                    None => problems.push(format!("{label}: missing the address suffix")),
                }
            }
            ButtonKind::CopyCode => match value {
                Some(code) if parameter_problem(&code, MAX_COUPON_CHARS).is_none() => {
                    lines.push(format!("{}: {code}", button.text));
                    components.push(component(json!({ "type": "coupon_code", "coupon_code": code })));
                }
                Some(_) => problems.push(format!("{label}: the code must be 1 to {MAX_COUPON_CHARS} characters")),
                None => problems.push(format!("{label}: missing the code")),
            },
            ButtonKind::QuickReply => {
                replies.push(button.text.clone());
                if let Some(payload) = value {
                    components.push(component(json!({ "type": "payload", "payload": payload })));
                }
            }
            ButtonKind::PhoneNumber | ButtonKind::Other => {
                if value.is_some() {
                    problems.push(format!("{label}: this button takes no value"));
                }
                if let Some(target) = &button.target {
                    lines.push(format!("{}: {target}", button.text));
                }
            }
        }
    }
    if !replies.is_empty() {
        lines.push(replies.iter().map(|reply| format!("[{reply}]")).collect::<Vec<_>>().join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(definition: Value) -> Template {
        let mut definition = definition;
        definition["name"] = json!("tagihan");
        definition["language"] = json!("id");
        definition["status"] = json!("APPROVED");
        Template::from_graph(&definition).unwrap()
    }

    fn args(value: Value) -> TemplateArgs {
        let mut value = value;
        value["name"] = json!("tagihan");
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn positional_body_fills_in_graphs_shape() {
        let t = template(json!({"components": [{"type": "BODY", "text": "Halo {{1}}, tagihan {{2}} Rp{{3}}"}]}));
        let filled = fill(&t, &args(json!({"body": ["Budi", "Mei 2026", 150000]}))).unwrap();
        assert_eq!(
            filled.payload,
            json!({"name": "tagihan", "language": {"code": "id"}, "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Budi"}, {"type": "text", "text": "Mei 2026"}, {"type": "text", "text": "150000"},
            ]}]})
        );
        assert_eq!(filled.text, "Halo Budi, tagihan Mei 2026 Rp150000");
    }

    #[test]
    fn named_values_by_name_or_in_order() {
        let t = template(json!({"parameter_format": "NAMED", "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Tagihan {{periode}}"},
            {"type": "BODY", "text": "Halo {{nama}}"},
            {"type": "FOOTER", "text": "PT Net"},
        ]}));
        let by_name = fill(&t, &args(json!({"header": {"periode": "Mei"}, "body": {"nama": "Sari"}}))).unwrap();
        let in_order = fill(&t, &args(json!({"header": ["Mei"], "body": ["Sari"]}))).unwrap();
        assert_eq!(by_name, in_order);
        assert_eq!(
            by_name.payload["components"][1]["parameters"][0],
            json!({"type": "text", "parameter_name": "nama", "text": "Sari"})
        );
        assert_eq!(by_name.text, "*Tagihan Mei*\n\nHalo Sari\n\n_PT Net_");
    }

    #[test]
    fn every_problem_is_listed() {
        let t = template(json!({"components": [
            {"type": "HEADER", "format": "DOCUMENT"},
            {"type": "BODY", "text": "Halo {{1}}, {{2}}"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Bayar", "url": "https://x.example/{{1}}"}]},
        ]}));
        let problems = fill(&t, &args(json!({"body": ["a\nb"]}))).unwrap_err();
        assert_eq!(
            problems,
            [
                "media: the header is a document: give its url",
                "body: missing {{2}}",
                "body: {{1}} has a line break, a tab or more than four spaces in a row (WhatsApp refuses them)",
                "buttons[0] (Bayar): missing the address suffix",
            ]
        );
        let problems = fill(&t, &args(json!({"body": {"1": "a", "3": "c"}}))).unwrap_err();
        assert!(problems.contains(&"body: the template has no {{3}}".to_owned()), "{problems:?}");
        assert!(problems.contains(&"body: missing {{2}}".to_owned()), "{problems:?}");
    }

    #[test]
    fn file_header_and_buttons() {
        let t = template(json!({"components": [
            {"type": "HEADER", "format": "DOCUMENT"},
            {"type": "BODY", "text": "Tagihan terlampir"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Bayar", "url": "https://bayar.example/{{1}}"},
                {"type": "COPY_CODE", "text": "Salin kode"},
                {"type": "QUICK_REPLY", "text": "Sudah bayar"},
            ]},
        ]}));
        let filled = fill(
            &t,
            &args(json!({
                "media": {"url": "https://files.example/inv-7.pdf", "filename": "INV-7.pdf"},
                "buttons": ["inv-7", "KODE7", null],
            })),
        )
        .unwrap();
        assert_eq!(
            filled.payload["components"],
            json!([
                {"type": "header", "parameters": [{"type": "document", "document": {"link": "https://files.example/inv-7.pdf", "filename": "INV-7.pdf"}}]},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "inv-7"}]},
                {"type": "button", "sub_type": "copy_code", "index": "1", "parameters": [{"type": "coupon_code", "coupon_code": "KODE7"}]},
            ])
        );
        assert_eq!(
            filled.text,
            "Tagihan terlampir\n\nBayar: https://bayar.example/inv-7\n\nSalin kode: KODE7\n\n[Sudah bayar]"
        );
        assert_eq!(filled.media.unwrap().filename(), Some("INV-7.pdf"));
    }
}
