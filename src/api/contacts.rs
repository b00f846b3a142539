//! The admin's contacts, behind the admin token (agents' tokens too; every
//! consent change is logged with the name):
//! - `GET /api/admin/contacts?q=&tag=&consent=&limit=&offset=`: a page, and
//!   how many match;
//! - `POST /api/admin/contacts`: `{"number", "name", "tags", "consent"}`
//!   creates or updates one (absent fields stay as they are);
//! - `POST /api/admin/contacts/import`: a CSV body (see `contacts::import`);
//! - `GET /api/admin/contacts/export?q=&tag=&consent=`: the contacts (all,
//!   or those the filters choose) as CSV, which an import reads back;
//! - `GET /api/admin/contacts/{id}`: one, with its consent log;
//! - `POST /api/admin/contacts/{id}/consent`: `{"state", "note"}`.
//!
//! Each takes `?account=` (the default account when omitted). Numbers are
//! shown in full: the admin page is where they are managed.

use super::admin::Admin;
use super::AppState;
use crate::contacts::import::{self, ImportError, LineError, COLUMNS};
use crate::contacts::{contact_name, counted, csv, ChangeSource, ContactError, Tag};
use crate::domain::{indonesian_number, now_ms, AccountName, NumberError};
use crate::store::{Consent, ConsentChange, Contact, ContactQuery, ContactRow, SaveOutcome, Saved, StoreError};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Rows saved per transaction by an import: big enough to be quick, small
/// enough not to hold SQLite's one writer for long.
const IMPORT_BATCH: usize = 500;
/// Most contacts one export writes.
const MAX_EXPORT: i64 = 100_000;
/// Longest note on a consent change, in characters.
const MAX_NOTE_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ContactsApiError {
    #[error("no WhatsApp account is named {0:?}")]
    UnknownAccount(String),
    #[error("no such contact")]
    NotFound,
    #[error("number: {0}")]
    Number(#[from] NumberError),
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error("consent must be one of unknown, opted_in, opted_out")]
    Consent,
    #[error("state must be opted_in or opted_out")]
    State,
    #[error("a note is at most {MAX_NOTE_CHARS} characters")]
    Note,
    #[error("the file is not UTF-8 text: save it as \"CSV UTF-8\"")]
    NotUtf8,
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("more than {MAX_EXPORT} contacts: export them a tag or a consent at a time")]
    TooMany,
    #[error("{0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
pub struct Account {
    account: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    account: Option<String>,
    q: Option<String>,
    tag: Option<String>,
    consent: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    number: String,
    name: Option<String>,
    /// A list, or one string with `,` between tags.
    tags: Option<TagsField>,
    consent: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum TagsField {
    List(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    state: String,
    note: Option<String>,
}

/// The account `?account=` names, by its label; the default one without it.
fn account(state: &AppState, label: Option<&str>) -> Result<AccountName, ContactsApiError> {
    let Some(label) = label.filter(|label| !label.is_empty()) else {
        return Ok(state.settings.accounts[0].name.clone());
    };
    AccountName::from_label(label)
        .ok()
        .filter(|name| state.settings.accounts.iter().any(|account| account.name == *name))
        .ok_or_else(|| ContactsApiError::UnknownAccount(label.to_owned()))
}

fn view(contact: &Contact) -> Value {
    json!({
        "id": contact.id,
        "account": contact.account.label(),
        "number": contact.phone.expose(),
        "name": contact.name,
        "tags": contact.tags,
        "consent": contact.consent.as_str(),
        "consentSource": contact.consent_source,
        "consentAt": contact.consent_at,
        "createdAt": contact.created_at,
        "updatedAt": contact.updated_at,
    })
}

fn log_view(change: &ConsentChange) -> Value {
    json!({
        "from": change.old.as_str(),
        "to": change.new.as_str(),
        "source": change.source,
        "note": change.note,
        "at": change.at,
    })
}

fn outcome_name(outcome: SaveOutcome) -> &'static str {
    match outcome {
        SaveOutcome::Created => "created",
        SaveOutcome::Updated => "updated",
        SaveOutcome::Unchanged => "unchanged",
    }
}

/// Counts the consents `saved` changed, which committed.
fn count_changes(saved: &[Saved], source: &ChangeSource) {
    for to in saved.iter().filter_map(|saved| saved.consent_changed) {
        counted(to, source);
    }
}

/// The filters of `query` on the account it names, for a page of `limit`
/// from `offset`.
fn filters(state: &AppState, query: ListQuery, limit: i64, offset: i64) -> Result<ContactQuery, ContactsApiError> {
    let account = account(state, query.account.as_deref())?;
    let tag = query.tag.as_deref().filter(|t| !t.trim().is_empty()).map(Tag::parse).transpose()?;
    let consent = match query.consent.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(Consent::parse(raw).ok_or(ContactsApiError::Consent)?),
        None => None,
    };
    Ok(ContactQuery { account, search: query.q, tag, consent, limit, offset })
}

pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ContactsApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let offset = query.offset.unwrap_or(0).max(0);
    let page = state.store.contacts(&filters(&state, query, limit, offset)?).await?;
    Ok(Json(json!({
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "contacts": page.contacts.iter().map(view).collect::<Vec<_>>(),
    })))
}

pub async fn save(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<Account>,
    body: Result<Json<ContactBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ContactsApiError> {
    let account = account(&state, query.account.as_deref())?;
    let Json(body) = body.map_err(|rejection| ContactsApiError::Body(rejection.body_text()))?;
    let tags = match body.tags {
        Some(TagsField::List(tags)) => Some(Tag::list(&tags.join(","))?),
        Some(TagsField::Text(tags)) => Some(Tag::list(&tags)?),
        None => None,
    };
    let consent = match body.consent.as_deref() {
        Some(raw) => Some(Consent::parse(raw).ok_or(ContactsApiError::Consent)?),
        None => None,
    };
    let row = ContactRow {
        phone: indonesian_number(&body.number)?,
        name: body.name.as_deref().map(contact_name).transpose()?.flatten(),
        tags,
        // Unknown is what nobody said: it is never set over a stated one.
        consent: consent.filter(|consent| *consent != Consent::Unknown),
    };
    let source = ChangeSource::admin(admin.agent.as_str());
    let saved = state.store.save_contacts(&account, std::slice::from_ref(&row), &source, now_ms()).await?;
    count_changes(&saved, &source);
    let saved = saved[0];
    let (contact, _) = state.store.contact(saved.contact_id).await?.ok_or(ContactsApiError::NotFound)?;
    let mut answer = json!({ "outcome": outcome_name(saved.outcome), "contact": view(&contact) });
    if saved.kept_own_opt_out {
        answer["consentKept"] = json!(
            "the customer opted out themselves; to opt them in, change the consent with a note saying how they agreed"
        );
    }
    Ok(Json(answer))
}

pub async fn import(
    admin: Admin,
    State(state): State<AppState>,
    Query(query): Query<Account>,
    body: Bytes,
) -> Result<Json<Value>, ContactsApiError> {
    let account = account(&state, query.account.as_deref())?;
    let text = std::str::from_utf8(&body).map_err(|_| ContactsApiError::NotUtf8)?;
    let read = import::read(text)?;
    let source = ChangeSource::import();
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    let mut kept = Vec::new();
    let now = now_ms();
    for batch in read.rows.chunks(IMPORT_BATCH) {
        let rows: Vec<ContactRow> = batch.iter().map(|line| line.row.clone()).collect();
        let saved = state.store.save_contacts(&account, &rows, &source, now).await?;
        count_changes(&saved, &source);
        for (line, saved) in batch.iter().zip(&saved) {
            match saved.outcome {
                SaveOutcome::Created => created += 1,
                SaveOutcome::Updated => updated += 1,
                SaveOutcome::Unchanged => unchanged += 1,
            }
            if saved.kept_own_opt_out {
                kept.push(json!({ "line": line.line, "number": line.row.phone.expose() }));
            }
        }
    }
    let errors: Vec<Value> = read
        .errors
        .iter()
        .map(|(line, error): &(usize, LineError)| json!({ "line": line, "error": error.to_string() }))
        .collect();
    tracing::info!(account = %account, by = admin.agent.as_str(), created, updated, unchanged, refused = errors.len(), "contacts imported");
    Ok(Json(json!({
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "errors": errors,
        "keptOptOut": kept,
    })))
}

pub async fn export(
    _: Admin,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ContactsApiError> {
    let filters = filters(&state, query, MAX_EXPORT, 0)?;
    let account = filters.account.clone();
    let page = state.store.contacts(&filters).await?;
    if page.total > MAX_EXPORT {
        // Half a file would read as all of it.
        return Err(ContactsApiError::TooMany);
    }
    // The byte order mark makes Excel read the file as UTF-8.
    let mut text = String::from("\u{feff}");
    text.push_str(&csv::line(COLUMNS));
    for contact in &page.contacts {
        let consent_at = contact.consent_at.map(|at| at.to_string()).unwrap_or_default();
        text.push_str(&csv::line([
            contact.phone.expose(),
            contact.name.as_deref().unwrap_or_default(),
            &contact.tags.join(","),
            contact.consent.as_str(),
            contact.consent_source.as_deref().unwrap_or_default(),
            &consent_at,
        ]));
    }
    let disposition = format!("attachment; filename=\"contacts-{}.csv\"", account.label());
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        text,
    ))
}

pub async fn show(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ContactsApiError> {
    let (contact, log) = state.store.contact(id).await?.ok_or(ContactsApiError::NotFound)?;
    let mut answer = view(&contact);
    answer["consentLog"] = json!(log.iter().map(log_view).collect::<Vec<_>>());
    Ok(Json(answer))
}

pub async fn set_consent(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Result<Json<ConsentBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ContactsApiError> {
    let Json(body) = body.map_err(|rejection| ContactsApiError::Body(rejection.body_text()))?;
    let to = match Consent::parse(&body.state) {
        Some(to @ (Consent::OptedIn | Consent::OptedOut)) => to,
        _ => return Err(ContactsApiError::State),
    };
    let note = body.note.as_deref().map(str::trim).filter(|note| !note.is_empty());
    if note.is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS) {
        return Err(ContactsApiError::Note);
    }
    let source = ChangeSource::admin(admin.agent.as_str());
    let changed = state.store.set_consent(id, to, &source, note, now_ms()).await?.ok_or(ContactsApiError::NotFound)?;
    if changed {
        counted(to, &source);
    }
    let (contact, log) = state.store.contact(id).await?.ok_or(ContactsApiError::NotFound)?;
    let mut answer = view(&contact);
    answer["changed"] = json!(changed);
    answer["consentLog"] = json!(log.iter().map(log_view).collect::<Vec<_>>());
    Ok(Json(answer))
}
