use super::StoreError;
use crate::domain::{Bsuid, PersonRef, PhoneNumber};
use sqlx::{Any, Row, Transaction};

/// Where a reply goes: the phone number when we know it, otherwise the
/// business-scoped user id (people who hide their number behind a username).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Phone(PhoneNumber),
    Bsuid(Bsuid),
}

impl Recipient {
    pub fn masked(&self) -> String {
        match self {
            Recipient::Phone(phone) => phone.masked(),
            Recipient::Bsuid(bsuid) => bsuid.masked(),
        }
    }

    pub(super) fn from_columns(phone: Option<String>, bsuid: Option<String>) -> Option<Self> {
        let phone = phone.and_then(|p| PhoneNumber::parse(&p).ok()).map(Recipient::Phone);
        phone.or_else(|| bsuid.and_then(|b| Bsuid::parse(&b).ok()).map(Recipient::Bsuid))
    }
}

/// Finds the user a webhook's sender is, creating them on first contact and
/// linking a phone number and a BSUID when a payload carries both.
pub(super) async fn upsert_person(
    tx: &mut Transaction<'_, Any>,
    person: &PersonRef,
    now: i64,
) -> Result<i64, StoreError> {
    let phone = person.phone().map(|p| p.expose().to_owned());
    let bsuid = person.bsuid().map(|b| b.expose().to_owned());
    if let Some(id) = link_existing(tx, person, &phone, &bsuid, now).await? {
        return Ok(id);
    }
    let username = format!("whatsapp_{}", phone.as_deref().or(bsuid.as_deref()).unwrap_or_default());
    // Two webhooks about the same new person may race; the loser of the
    // insert finds the winner's row on the second look.
    let inserted = sqlx::query(
        "INSERT INTO users (channel, username, phone, bsuid, parent_bsuid, profile_name, created_at, last_seen_at) \
         VALUES ('whatsapp', $1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(&phone)
    .bind(&bsuid)
    .bind(person.parent_bsuid.as_ref().map(|b| b.expose().to_owned()))
    .bind(&person.profile_name)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    match inserted {
        Some(row) => Ok(row.try_get("id")?),
        None => {
            link_existing(tx, person, &phone, &bsuid, now).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
        }
    }
}

async fn link_existing(
    tx: &mut Transaction<'_, Any>,
    person: &PersonRef,
    phone: &Option<String>,
    bsuid: &Option<String>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let found = sqlx::query("SELECT id FROM users WHERE phone = $1 OR bsuid = $2 ORDER BY id LIMIT 1")
        .bind(phone)
        .bind(bsuid)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = found else { return Ok(None) };
    let id: i64 = row.try_get("id")?;
    // Only fill gaps, and only with an identity no other row holds: if the
    // phone and the BSUID were first seen as two separate people, both rows
    // stay as they are rather than failing the webhook on a unique key.
    sqlx::query(
        "UPDATE users SET \
         phone = COALESCE(phone, (SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM users WHERE phone = $1))), \
         bsuid = COALESCE(bsuid, (SELECT $2 WHERE NOT EXISTS (SELECT 1 FROM users WHERE bsuid = $2))), \
         parent_bsuid = COALESCE($3, parent_bsuid), profile_name = COALESCE($4, profile_name), \
         last_seen_at = $5 WHERE id = $6",
    )
    .bind(phone)
    .bind(bsuid)
    .bind(person.parent_bsuid.as_ref().map(|b| b.expose().to_owned()))
    .bind(&person.profile_name)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(Some(id))
}
