//! A message template as the business account describes it (Graph's
//! `message_templates` object), read into the parts a send must fill.
//! Graph adds fields and component types without notice, so the JSON is
//! read loosely and kept whole: what is not understood here is still
//! listed to the admin as Graph gave it.

use crate::domain::MediaKind;
use serde_json::Value;

/// A template of one account in one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub language: String,
    /// APPROVED, PENDING, REJECTED, PAUSED, DISABLED ... as Meta says.
    pub status: String,
    /// MARKETING, UTILITY or AUTHENTICATION.
    pub category: String,
    /// Meta's id; `None` for a template kept here for a provider without
    /// Meta's review.
    pub meta_id: Option<String>,
    /// Why Meta rejected or paused it.
    pub reason: Option<String>,
    /// Graph's JSON of the template.
    pub definition: Value,
}

impl Template {
    /// Reads one element of Graph's `data` array; `None` without a name or
    /// a language.
    pub fn from_graph(value: &Value) -> Option<Self> {
        let text = |key: &str| value[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let reason = text("rejected_reason").filter(|reason| reason != "NONE");
        Some(Self {
            name: text("name")?,
            language: text("language")?,
            status: text("status").unwrap_or_else(|| "PENDING".into()).to_ascii_uppercase(),
            category: text("category").unwrap_or_else(|| "UTILITY".into()).to_ascii_uppercase(),
            meta_id: text("id").or_else(|| value["id"].as_i64().map(|id| id.to_string())),
            reason,
            definition: value.clone(),
        })
    }

    pub fn is_approved(&self) -> bool {
        self.status == "APPROVED"
    }

    pub fn is_marketing(&self) -> bool {
        self.category == "MARKETING"
    }

    /// What a send has to fill, read from the components.
    pub fn shape(&self) -> Shape {
        Shape::of(&self.definition)
    }
}

/// The fillable parts of a template.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    /// `{{name}}` placeholders rather than `{{1}}`.
    pub named: bool,
    pub header: Option<Header>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<Button>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Header {
    Text(String),
    /// An image, video or document given with each send.
    Media(MediaKind),
    /// A location header (given with each send; not supported by the send
    /// API, which says so).
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub kind: ButtonKind,
    pub text: String,
    /// A URL button's address, maybe ending in `{{1}}`; a phone button's number.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonKind {
    QuickReply,
    Url,
    PhoneNumber,
    CopyCode,
    /// Flows, one-time passwords, catalogues: sent without parameters.
    Other,
}

impl ButtonKind {
    /// Graph's `sub_type` of a button component in a send.
    pub fn sub_type(self) -> &'static str {
        match self {
            ButtonKind::QuickReply => "quick_reply",
            ButtonKind::Url => "url",
            ButtonKind::PhoneNumber => "phone_number",
            ButtonKind::CopyCode => "copy_code",
            ButtonKind::Other => "other",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw.to_ascii_uppercase().as_str() {
            "QUICK_REPLY" => ButtonKind::QuickReply,
            "URL" => ButtonKind::Url,
            "PHONE_NUMBER" => ButtonKind::PhoneNumber,
            "COPY_CODE" => ButtonKind::CopyCode,
            _ => ButtonKind::Other,
        }
    }
}

impl Shape {
    pub fn of(definition: &Value) -> Self {
        let mut shape = Shape {
            named: definition["parameter_format"].as_str().is_some_and(|f| f.eq_ignore_ascii_case("named")),
            ..Shape::default()
        };
        let empty = Vec::new();
        for component in definition["components"].as_array().unwrap_or(&empty) {
            let text = component["text"].as_str().unwrap_or_default().to_owned();
            match component["type"].as_str().unwrap_or_default().to_ascii_uppercase().as_str() {
                "HEADER" => {
                    let format = component["format"].as_str().unwrap_or("TEXT").to_ascii_lowercase();
                    shape.header = Some(match (format.as_str(), MediaKind::parse(&format)) {
                        ("text", _) => Header::Text(text),
                        (_, Some(kind)) if kind != MediaKind::Audio => Header::Media(kind),
                        _ => Header::Other(format),
                    });
                }
                "BODY" => shape.body = text,
                "FOOTER" => shape.footer = Some(text),
                "BUTTONS" => {
                    shape.buttons = component["buttons"]
                        .as_array()
                        .unwrap_or(&empty)
                        .iter()
                        .map(|button| Button {
                            kind: ButtonKind::parse(button["type"].as_str().unwrap_or_default()),
                            text: button["text"].as_str().unwrap_or_default().to_owned(),
                            target: button["url"].as_str().or(button["phone_number"].as_str()).map(str::to_owned),
                        })
                        .collect();
                }
                _ => {}
            }
        }
        shape
    }
}

/// The placeholders of `text` (`1` for `{{1}}`, `nama` for `{{nama}}`) in
/// the order they first appear, each once.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty() && !found.iter().any(|seen| seen == name) {
            found.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    found
}

/// `text` with each placeholder replaced by its value (`value_of` gives
/// `None` to leave one as it is).
pub fn substitute(text: &str, value_of: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        match value_of(after[..end].trim()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What a `message_template_status_update` or `template_category_update`
/// webhook says of one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUpdate {
    /// The business account it belongs to (the entry's id).
    pub business_account_id: Option<String>,
    pub meta_id: Option<String>,
    pub name: String,
    pub language: String,
    /// The new status (APPROVED, REJECTED, PAUSED ...), if it changed.
    pub status: Option<String>,
    pub category: Option<String>,
    /// Why, in Meta's words.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_in_order_once_each() {
        assert_eq!(placeholders("Halo {{1}}, tagihan {{2}} ({{1}})"), ["1", "2"]);
        assert_eq!(placeholders("Halo {{ nama }} {{periode}}"), ["nama", "periode"]);
        assert_eq!(placeholders("no {{ end"), Vec::<String>::new());
        assert_eq!(substitute("Halo {{1}}, {{2}}!", |n| (n == "1").then(|| "Budi".into())), "Halo Budi, {{2}}!");
    }

    #[test]
    fn reads_graph_components() {
        let template = Template::from_graph(&json!({
            "name": "tagihan", "language": "id", "status": "APPROVED", "category": "UTILITY", "id": "99",
            "parameter_format": "NAMED",
            "components": [
                {"type": "HEADER", "format": "DOCUMENT"},
                {"type": "BODY", "text": "Halo {{nama}}"},
                {"type": "FOOTER", "text": "Terima kasih"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Bayar", "url": "https://bayar.example/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Sudah bayar"},
                ]},
            ],
        }))
        .unwrap();
        let shape = template.shape();
        assert!(shape.named && template.is_approved() && !template.is_marketing());
        assert_eq!(shape.header, Some(Header::Media(MediaKind::Document)));
        assert_eq!((shape.body.as_str(), shape.footer.as_deref()), ("Halo {{nama}}", Some("Terima kasih")));
        assert_eq!(shape.buttons[0].kind, ButtonKind::Url);
        assert_eq!(shape.buttons[1].kind, ButtonKind::QuickReply);
        assert!(Template::from_graph(&json!({"language": "id"})).is_none());
    }
}
