//! A campaign request checked whole before anything is stored: the
//! template approved, every recipient's number and values right, the
//! schedule and hours readable. One mistake refuses the campaign with the
//! list of all of them, so a billing run is never half-sent.

use crate::domain::{indonesian_number, BusinessHours, PhoneNumber};
use crate::store::{Contact, NewRecipient};
use crate::templates::{fill, HeaderFile, Scalar, Template, TemplateArgs, Values};
use serde::Deserialize;
use std::collections::HashSet;

/// More than this in one request is a file to split, not a campaign.
pub const MAX_RECIPIENTS: usize = 100_000;
/// Problems listed in a refusal: enough to fix a file by, not a megabyte.
const MAX_PROBLEMS: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignRequest {
    pub name: String,
    pub account: Option<String>,
    pub template: TemplateRef,
    #[serde(default)]
    pub recipients: Vec<RecipientRequest>,
    /// Instead of `recipients`: the contacts with this tag, each sent
    /// `values` with `{nama}` standing for their name.
    pub tag: Option<String>,
    pub values: Option<SharedValues>,
    /// Unix ms, or a time such as `2026-12-07 09:00` in the hours' zone.
    pub schedule_at: Option<Moment>,
    /// `BUSINESS_HOURS`-style: `Mon-Sat 08:00-20:00 Asia/Jakarta`; `SEND_HOURS`
    /// when left out; `always` for any time.
    pub hours: Option<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
    pub rate_per_second: Option<f64>,
    #[serde(alias = "idempotencyKey")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub name: String,
    pub language: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Moment {
    Millis(i64),
    Written(String),
}

/// One person and the values of their message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientRequest {
    pub to: String,
    pub name: Option<String>,
    pub header: Option<Values>,
    pub body: Option<Values>,
    #[serde(default)]
    pub buttons: Vec<Option<Scalar>>,
    pub media: Option<HeaderFile>,
}

/// The values every contact of a tag gets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedValues {
    pub header: Option<Values>,
    pub body: Option<Values>,
    #[serde(default)]
    pub buttons: Vec<Option<Scalar>>,
    pub media: Option<HeaderFile>,
}

/// How a contact without a name is addressed.
const NO_NAME: &str = "Bapak/Ibu";

/// One recipient per contact, `{nama}` (or `{name}`) in a value replaced
/// by the contact's name.
pub fn from_contacts(contacts: &[Contact], values: &SharedValues) -> Vec<RecipientRequest> {
    contacts
        .iter()
        .map(|contact| {
            let name = contact.name.as_deref().unwrap_or(NO_NAME);
            let personal = |value: &Scalar| match value {
                Scalar::Text(text) => Scalar::Text(text.replace("{nama}", name).replace("{name}", name)),
                other => other.clone(),
            };
            let values_for = |values: &Option<Values>| {
                values.as_ref().map(|values| match values {
                    Values::List(list) => Values::List(list.iter().map(personal).collect()),
                    Values::Named(map) => Values::Named(map.iter().map(|(k, v)| (k.clone(), personal(v))).collect()),
                })
            };
            RecipientRequest {
                to: contact.phone.expose().to_owned(),
                name: contact.name.clone(),
                header: values_for(&values.header),
                body: values_for(&values.body),
                buttons: values.buttons.iter().map(|button| button.as_ref().map(personal)).collect(),
                media: values.media.clone(),
            }
        })
        .collect()
}

/// The campaign's recipients, filled; duplicates of a number are dropped
/// (the first is kept) and counted.
pub struct Planned {
    pub recipients: Vec<NewRecipient>,
    pub duplicates: usize,
}

/// Fills every recipient's message from `template`; `as_template` keeps
/// Graph's payload (Meta's numbers), otherwise the text alone is sent.
pub fn plan(template: &Template, recipients: &[RecipientRequest], as_template: bool) -> Result<Planned, Vec<String>> {
    let mut problems = Vec::new();
    if recipients.is_empty() {
        problems.push("recipients: nobody to send to".to_owned());
    }
    if recipients.len() > MAX_RECIPIENTS {
        problems.push(format!("recipients: more than {MAX_RECIPIENTS}; split the list"));
        return Err(problems);
    }
    let mut seen: HashSet<PhoneNumber> = HashSet::with_capacity(recipients.len());
    let mut planned = Planned { recipients: Vec::with_capacity(recipients.len()), duplicates: 0 };
    for (at, recipient) in recipients.iter().enumerate() {
        let phone = match indonesian_number(&recipient.to) {
            Ok(phone) => phone,
            Err(error) => {
                problems.push(format!("recipients[{at}]: to: {error}"));
                continue;
            }
        };
        let args = TemplateArgs {
            name: template.name.clone(),
            language: Some(template.language.clone()),
            header: recipient.header.clone(),
            body: recipient.body.clone(),
            buttons: recipient.buttons.clone(),
            media: recipient.media.clone(),
        };
        match fill(template, &args) {
            Ok(filled) => {
                if !seen.insert(phone.clone()) {
                    planned.duplicates += 1;
                    continue;
                }
                planned.recipients.push(NewRecipient {
                    phone,
                    name: recipient.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned),
                    template: as_template.then_some(filled.payload),
                    text: filled.text,
                    media: filled.media,
                });
            }
            Err(wrong) => problems.extend(wrong.into_iter().map(|problem| format!("recipients[{at}]: {problem}"))),
        }
        if problems.len() >= MAX_PROBLEMS {
            problems.truncate(MAX_PROBLEMS);
            problems.push("… and possibly more: fix these first".into());
            break;
        }
    }
    if problems.is_empty() {
        Ok(planned)
    } else {
        Err(problems)
    }
}

/// The hours a campaign keeps: `SEND_HOURS` by default, `always` for none.
pub fn hours(raw: Option<&str>, default: &BusinessHours) -> Result<(String, BusinessHours), String> {
    match raw.map(str::trim) {
        None => Ok((default.source().to_owned(), default.clone())),
        Some(raw) if raw.eq_ignore_ascii_case("always") || raw.is_empty() => {
            Ok((String::new(), BusinessHours::default()))
        }
        Some(raw) => BusinessHours::parse(raw).map(|hours| (raw.to_owned(), hours)).map_err(|p| format!("hours: {p}")),
    }
}

/// Holidays as `YYYY-MM-DD`.
pub fn holidays(raw: &[String]) -> Result<Vec<String>, String> {
    let hours = BusinessHours::default();
    raw.iter()
        .map(|day| {
            let day = day.trim();
            match hours.moment(&format!("{day} 00:00")) {
                Ok(_) if day.len() == 10 => Ok(day.to_owned()),
                _ => Err(format!("holidays: {day:?} is not a date such as 2026-12-25")),
            }
        })
        .collect()
}
