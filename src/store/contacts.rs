//! Contacts per account, their tags, and their consent to promotional
//! messages with every change in `consent_log` (migration 0021). A consent
//! changes only together with its log row, in one transaction.

use super::{Params, Store, StoreError};
use crate::contacts::{ChangeSource, Tag};
use crate::domain::{AccountName, PhoneNumber};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Whether a contact agreed to promotional messages (marketing templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consent {
    /// Never said either way: no marketing template until they opt in.
    Unknown,
    OptedIn,
    /// Said no (themselves, or someone for them): never a marketing template.
    OptedOut,
}

impl Consent {
    pub const ALL: [Consent; 3] = [Self::Unknown, Self::OptedIn, Self::OptedOut];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::OptedIn => "opted_in",
            Self::OptedOut => "opted_out",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|consent| consent.as_str() == raw)
    }

    fn from_stored(stored: &str) -> Result<Self, sqlx::Error> {
        Self::parse(stored).ok_or_else(|| sqlx::Error::Decode(format!("unknown consent {stored:?}").into()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: i64,
    pub account: AccountName,
    pub phone: PhoneNumber,
    pub name: Option<String>,
    /// Sorted.
    pub tags: Vec<String>,
    pub consent: Consent,
    /// Who set the consent last (see [`ChangeSource`]).
    pub consent_source: Option<String>,
    pub consent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A contact to create or update. `None` leaves what is stored as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    /// Replaces the contact's tags.
    pub tags: Option<Vec<Tag>>,
    pub consent: Option<Consent>,
}

/// What saving one [`ContactRow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub contact_id: i64,
    pub outcome: SaveOutcome,
    /// The consent it changed to, when it changed one.
    pub consent_changed: Option<Consent>,
    /// The row would have opted in someone who opted out themselves: their
    /// own word stands, and the consent was left as it is.
    pub kept_own_opt_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Created,
    Updated,
    Unchanged,
}

/// What [`Store::contacts`] lists.
#[derive(Debug, Clone, Default)]
pub struct ContactQuery {
    pub account: AccountName,
    /// Part of the name, or of the number (written as `08…` too).
    pub search: Option<String>,
    pub tag: Option<Tag>,
    pub consent: Option<Consent>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone)]
pub struct ContactPage {
    /// How many match, beyond this page too.
    pub total: i64,
    pub contacts: Vec<Contact>,
}

/// One row of the consent log.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentChange {
    pub old: Consent,
    pub new: Consent,
    pub source: String,
    pub note: Option<String>,
    pub at: i64,
}

const CONTACT_COLUMNS: &str =
    "c.id, c.account, c.phone, c.name, c.consent, c.consent_source, c.consent_at, c.created_at, c.updated_at";

impl Store {
    /// The consent of `phone` on `account`: `Unknown` for someone who is no
    /// contact. Marketing templates go only to `OptedIn`.
    pub async fn consent_of(&self, account: &AccountName, phone: &PhoneNumber) -> Result<Consent, StoreError> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT consent FROM contacts WHERE account = $1 AND phone = $2")
                .bind(account.as_stored())
                .bind(phone.expose())
                .fetch_optional(&self.reader)
                .await?;
        Ok(match stored {
            Some(stored) => Consent::from_stored(&stored)?,
            None => Consent::Unknown,
        })
    }

    /// Every contact of `account` with `tag` (in any case), by number.
    /// Consent is the caller's to check.
    pub async fn contacts_with_tag(&self, account: &AccountName, tag: &str) -> Result<Vec<Contact>, StoreError> {
        let Ok(tag) = Tag::parse(tag) else {
            // No contact can carry a tag that does not parse.
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c JOIN contact_tags t ON t.contact_id = c.id \
             WHERE t.account = $1 AND t.tag = $2 ORDER BY c.phone"
        );
        let rows = sqlx::query(&sql).bind(account.as_stored()).bind(tag.as_str()).fetch_all(&self.reader).await?;
        self.with_tags(rows).await
    }

    /// One page of `query.account`'s contacts, by name then number.
    pub async fn contacts(&self, query: &ContactQuery) -> Result<ContactPage, StoreError> {
        let mut p = Params::new(self.backend);
        let mut conditions = vec![format!("c.account = {}", p.one())];
        let mut values: Vec<String> = vec![query.account.as_stored().to_owned()];
        if let Some(search) = query.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let (name, number) = (p.one(), p.one());
            conditions.push(format!("(LOWER(c.name) LIKE {name} ESCAPE '\\' OR c.phone LIKE {number} ESCAPE '\\')"));
            values.push(format!("%{}%", like_escaped(&search.to_lowercase())));
            values.push(format!("%{}%", like_escaped(&number_part(search))));
        }
        if let Some(tag) = &query.tag {
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = {})",
                p.one()
            ));
            values.push(tag.as_str().to_owned());
        }
        if let Some(consent) = query.consent {
            conditions.push(format!("c.consent = {}", p.one()));
            values.push(consent.as_str().to_owned());
        }
        let filter = conditions.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM contacts c WHERE {filter}");
        let total: i64 = values
            .iter()
            .fold(sqlx::query_scalar(&count_sql), |q, v| q.bind(v.clone()))
            .fetch_one(&self.reader)
            .await?;
        let (limit, offset) = (p.one(), p.one());
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE {filter} \
             ORDER BY c.name IS NULL, LOWER(c.name), c.phone LIMIT {limit} OFFSET {offset}"
        );
        let rows = values
            .iter()
            .fold(sqlx::query(&sql), |q, v| q.bind(v.clone()))
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.reader)
            .await?;
        Ok(ContactPage { total, contacts: self.with_tags(rows).await? })
    }

    /// A contact and its consent log, oldest change first.
    pub async fn contact(&self, id: i64) -> Result<Option<(Contact, Vec<ConsentChange>)>, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = $1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.reader).await? else {
            return Ok(None);
        };
        let contact = self.with_tags(vec![row]).await?.remove(0);
        let log = sqlx::query(
            "SELECT old_state, new_state, source, note, at FROM consent_log WHERE contact_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(ConsentChange {
                old: Consent::from_stored(&row.try_get::<String, _>("old_state")?)?,
                new: Consent::from_stored(&row.try_get::<String, _>("new_state")?)?,
                source: row.try_get("source")?,
                note: row.try_get("note")?,
                at: row.try_get("at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some((contact, log)))
    }

    /// Creates or updates each row on `account`, in one transaction (the
    /// caller sizes the batch). A consent a row changes is logged with
    /// `source`, except that no row opts in someone who opted out
    /// themselves ([`Saved::kept_own_opt_out`]).
    pub async fn save_contacts(
        &self,
        account: &AccountName,
        rows: &[ContactRow],
        source: &ChangeSource,
        now: i64,
    ) -> Result<Vec<Saved>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut saved = Vec::with_capacity(rows.len());
        for row in rows {
            saved.push(save_in(&mut tx, account, row, source, now).await?);
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// Sets contact `id`'s consent, logged with `source` and `note`. `None`
    /// for no such contact; `Some(false)` when it already was `to`.
    pub async fn set_consent(
        &self,
        id: i64,
        to: Consent,
        source: &ChangeSource,
        note: Option<&str>,
        now: i64,
    ) -> Result<Option<bool>, StoreError> {
        let mut tx = self.write_tx().await?;
        // Locks the row, as `locked` does.
        let Some(row) =
            sqlx::query("UPDATE contacts SET updated_at = updated_at WHERE id = $1 RETURNING account, phone, consent")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let current = Consent::from_stored(&row.try_get::<String, _>("consent")?)?;
        let (account, phone): (String, String) = (row.try_get("account")?, row.try_get("phone")?);
        let changed = current != to;
        if changed {
            log_change(&mut tx, id, (&account, &phone), (current, to), source, note, now).await?;
        }
        tx.commit().await?;
        Ok(Some(changed))
    }

    /// Reads the tags of `rows`' contacts and builds them.
    async fn with_tags(&self, rows: Vec<AnyRow>) -> Result<Vec<Contact>, StoreError> {
        let mut contacts = rows.iter().map(contact_from_row).collect::<Result<Vec<_>, sqlx::Error>>()?;
        let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
        for ids in contacts.iter().map(|c| c.id).collect::<Vec<_>>().chunks(500) {
            let sql = format!(
                "SELECT contact_id, tag FROM contact_tags WHERE contact_id IN ({}) ORDER BY tag",
                Params::new(self.backend).list(ids.len())
            );
            for row in super::bind_ids(sqlx::query(&sql), ids).fetch_all(&self.reader).await? {
                tags.entry(row.try_get("contact_id")?).or_default().push(row.try_get("tag")?);
            }
        }
        for contact in &mut contacts {
            contact.tags = tags.remove(&contact.id).unwrap_or_default();
        }
        Ok(contacts)
    }
}

/// Sets the consent of `phone` on `account` inside `tx`, creating the
/// contact if needed; the log row goes in the same transaction. `true` when
/// the consent changed.
pub(super) async fn consent_in(
    tx: &mut Transaction<'_, Any>,
    account: &AccountName,
    phone: &PhoneNumber,
    to: Consent,
    source: &ChangeSource,
    note: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let stored = locked_or_created(tx, account, phone, None, now).await?;
    let changed = stored.consent != to;
    if changed {
        log_change(tx, stored.id, (account.as_stored(), phone.expose()), (stored.consent, to), source, note, now)
            .await?;
    }
    Ok(changed)
}

async fn save_in(
    tx: &mut Transaction<'_, Any>,
    account: &AccountName,
    row: &ContactRow,
    source: &ChangeSource,
    now: i64,
) -> Result<Saved, StoreError> {
    let stored = locked_or_created(tx, account, &row.phone, row.name.as_deref(), now).await?;
    let (id, current) = (stored.id, stored.consent);
    let own_opt_out =
        current == Consent::OptedOut && stored.consent_source.as_deref().is_some_and(ChangeSource::is_customer);
    let mut outcome = if stored.created { SaveOutcome::Created } else { SaveOutcome::Unchanged };
    if !stored.created && row.name.is_some() && row.name != stored.name {
        sqlx::query("UPDATE contacts SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(&row.name)
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        outcome = SaveOutcome::Updated;
    }
    if let Some(tags) = &row.tags {
        if replace_tags(tx, id, account, tags, now).await? && outcome == SaveOutcome::Unchanged {
            outcome = SaveOutcome::Updated;
        }
    }
    let mut saved = Saved { contact_id: id, outcome, consent_changed: None, kept_own_opt_out: false };
    match row.consent {
        Some(Consent::OptedIn) if own_opt_out => saved.kept_own_opt_out = true,
        Some(to) if to != current => {
            log_change(tx, id, (account.as_stored(), row.phone.expose()), (current, to), source, None, now).await?;
            saved.consent_changed = Some(to);
            if saved.outcome == SaveOutcome::Unchanged {
                saved.outcome = SaveOutcome::Updated;
            }
        }
        _ => {}
    }
    Ok(saved)
}

/// A contact's row as a change reads it.
struct Stored {
    id: i64,
    name: Option<String>,
    consent: Consent,
    consent_source: Option<String>,
    /// Made just now (with the name given).
    created: bool,
}

/// The contact of `phone` on `account`, its row locked until `tx` ends, so
/// on PostgreSQL two changes of one consent (an admin's and the customer's
/// STOP, on two replicas) take turns and each logs the state it replaced.
/// Created when missing; if another transaction creates it first, this one
/// waits for it and takes its row.
async fn locked_or_created(
    tx: &mut Transaction<'_, Any>,
    account: &AccountName,
    phone: &PhoneNumber,
    name: Option<&str>,
    now: i64,
) -> Result<Stored, StoreError> {
    if let Some(stored) = locked(tx, account, phone).await? {
        return Ok(stored);
    }
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO contacts (account, phone, name, consent, created_at, updated_at) \
         VALUES ($1, $2, $3, 'unknown', $4, $4) ON CONFLICT (account, phone) DO NOTHING RETURNING id",
    )
    .bind(account.as_stored())
    .bind(phone.expose())
    .bind(name)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    match created {
        Some(id) => Ok(Stored {
            id,
            name: name.map(str::to_owned),
            consent: Consent::Unknown,
            consent_source: None,
            created: true,
        }),
        None => locked(tx, account, phone).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound)),
    }
}

async fn locked(
    tx: &mut Transaction<'_, Any>,
    account: &AccountName,
    phone: &PhoneNumber,
) -> Result<Option<Stored>, StoreError> {
    // A write that changes nothing: PostgreSQL's row lock, which SQLite's
    // one writer (`BEGIN IMMEDIATE`) already gives.
    let Some(row) = sqlx::query(
        "UPDATE contacts SET updated_at = updated_at WHERE account = $1 AND phone = $2 \
         RETURNING id, name, consent, consent_source",
    )
    .bind(account.as_stored())
    .bind(phone.expose())
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Stored {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        consent: Consent::from_stored(&row.try_get::<String, _>("consent")?)?,
        consent_source: row.try_get("consent_source")?,
        created: false,
    }))
}

/// Makes `tags` the contact's tags; `true` when they were different.
async fn replace_tags(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    account: &AccountName,
    tags: &[Tag],
    now: i64,
) -> Result<bool, StoreError> {
    let mut stored: Vec<String> =
        sqlx::query_scalar("SELECT tag FROM contact_tags WHERE contact_id = $1").bind(id).fetch_all(&mut **tx).await?;
    stored.sort();
    let wanted: Vec<&str> = tags.iter().map(Tag::as_str).collect();
    if stored.iter().map(String::as_str).eq(wanted.iter().copied()) {
        return Ok(false);
    }
    sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1").bind(id).execute(&mut **tx).await?;
    for tag in &wanted {
        sqlx::query("INSERT INTO contact_tags (contact_id, account, tag) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(account.as_stored())
            .bind(*tag)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE contacts SET updated_at = $1 WHERE id = $2").bind(now).bind(id).execute(&mut **tx).await?;
    Ok(true)
}

/// Changes a consent and logs it (the caller checked that it changes).
async fn log_change(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    (account, phone): (&str, &str),
    (old, new): (Consent, Consent),
    source: &ChangeSource,
    note: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE contacts SET consent = $1, consent_source = $2, consent_at = $3, updated_at = $3 WHERE id = $4",
    )
    .bind(new.as_str())
    .bind(source.as_str())
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO consent_log (contact_id, account, phone, old_state, new_state, source, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(account)
    .bind(phone)
    .bind(old.as_str())
    .bind(new.as_str())
    .bind(source.as_str())
    .bind(note)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn contact_from_row(row: &AnyRow) -> Result<Contact, sqlx::Error> {
    let phone: String = row.try_get("phone")?;
    Ok(Contact {
        id: row.try_get("id")?,
        account: super::people::account_from_row(row)?,
        phone: PhoneNumber::parse(&phone).map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
        name: row.try_get("name")?,
        tags: Vec::new(),
        consent: Consent::from_stored(&row.try_get::<String, _>("consent")?)?,
        consent_source: row.try_get("consent_source")?,
        consent_at: row.try_get("consent_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// `%` and `_` match themselves in a search.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A search as the number it may be part of: digits only, and `08…` as it
/// is stored (`628…`).
fn number_part(search: &str) -> String {
    let digits: String = search.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('0') {
        Some(rest) if !digits.is_empty() && search.trim_start().starts_with('0') => format!("62{rest}"),
        _ if digits.is_empty() => search.to_owned(),
        _ => digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_finds_numbers_as_people_write_them() {
        assert_eq!(number_part("0812-34"), "62812 34".replace(' ', ""));
        assert_eq!(number_part("812 34"), "81234");
        assert_eq!(number_part("Sari"), "Sari");
        assert_eq!(like_escaped("50%_a\\"), "50\\%\\_a\\\\");
    }

    #[test]
    fn consents_read_back() {
        for consent in Consent::ALL {
            assert_eq!(Consent::parse(consent.as_str()), Some(consent));
        }
        assert_eq!(Consent::parse("yes"), None);
    }
}
