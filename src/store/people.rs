use super::StoreError;
use crate::domain::{AccountName, Bsuid, ChannelKind, ConversationKey, PersonRef, PhoneNumber, Recipient};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Beyond this many identities the cache starts over, bounding memory.
const CACHE_LIMIT: usize = 100_000;

/// Remembers which user an identity belongs to, so a known person costs
/// the webhook writer no query. Entries learned inside a transaction only
/// become known when it commits.
#[derive(Default)]
pub(super) struct PeopleCache {
    known: HashMap<String, Known>,
    staged: HashMap<String, Known>,
}

#[derive(Clone)]
struct Known {
    user_id: i64,
    profile_name: Option<String>,
    /// When this person's last webhook arrived (Unix ms).
    last_seen: i64,
}

impl PeopleCache {
    pub(super) fn commit(&mut self) {
        if self.known.len() + self.staged.len() > CACHE_LIMIT {
            self.known.clear();
        }
        self.known.extend(self.staged.drain());
    }

    pub(super) fn clear(&mut self) {
        self.known.clear();
        self.staged.clear();
    }

    /// Forgets people not seen since `idle_since`, returning how many
    /// identities were dropped. Besides freeing memory, this keeps the cache
    /// from naming a user the daily cleanup has deleted: a user is only
    /// deleted when nothing of theirs is younger than the retention period,
    /// which is at least a day.
    pub(super) fn prune(&mut self, idle_since: i64) -> usize {
        let before = self.known.len();
        self.known.retain(|_, known| known.last_seen >= idle_since);
        before - self.known.len()
    }

    fn get(&self, key: &str) -> Option<&Known> {
        self.staged.get(key).or_else(|| self.known.get(key))
    }

    /// The user id when every identity of `person` is already linked to the
    /// same user with the same profile name: nothing to write. A hit counts
    /// as seeing the person at `now`.
    fn lookup(&mut self, person: &PersonRef, now: i64) -> Option<i64> {
        let mut user = None;
        for key in identity_keys(person) {
            let known = self.get(&key)?;
            let same_name = person.profile_name.is_none() || person.profile_name == known.profile_name;
            if !same_name || user.is_some_and(|id| id != known.user_id) {
                return None;
            }
            user = Some(known.user_id);
        }
        for key in identity_keys(person) {
            if let Some(known) = self.staged.get_mut(&key).or_else(|| self.known.get_mut(&key)) {
                known.last_seen = known.last_seen.max(now);
            }
        }
        user
    }

    fn stage(&mut self, person: &PersonRef, user_id: i64, now: i64) {
        let known = Known { user_id, profile_name: person.profile_name.clone(), last_seen: now };
        for key in identity_keys(person) {
            self.staged.insert(key, known.clone());
        }
    }
}

fn identity_keys(person: &PersonRef) -> impl Iterator<Item = String> + '_ {
    let channel = person.channel().as_str();
    let account = person.account().as_stored();
    let phone = person.phone().map(move |p| format!("{channel}:{account}:p:{}", p.expose()));
    let bsuid = person.bsuid().map(move |b| format!("{channel}:{account}:b:{}", b.expose()));
    let conversation = person.conversation().map(move |c| format!("{channel}::c:{}", c.expose()));
    phone.into_iter().chain(bsuid).chain(conversation)
}

/// Reads the `account` of a `users` row: which of the business's numbers
/// answers that person. A name no longer in the configuration still reads;
/// sending through it then fails as not configured, which an operator sees.
pub(super) fn account_from_row(row: &sqlx::any::AnyRow) -> Result<AccountName, sqlx::Error> {
    let stored: String = row.try_get("account")?;
    AccountName::from_stored(&stored).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// Reads `channel, phone, bsuid, address` of a `users` row: where a reply
/// to that person goes.
pub(super) fn recipient_from_row(row: &sqlx::any::AnyRow) -> Result<Option<Recipient>, sqlx::Error> {
    let channel: String = row.try_get("channel")?;
    let (phone, bsuid, address): (Option<String>, Option<String>, Option<String>) =
        (row.try_get("phone")?, row.try_get("bsuid")?, row.try_get("address")?);
    let parse_phone = |p: Option<String>| p.and_then(|p| PhoneNumber::parse(&p).ok());
    Ok(match ChannelKind::parse(&channel) {
        Some(ChannelKind::WhatsApp) => parse_phone(phone)
            .map(Recipient::Phone)
            .or_else(|| bsuid.and_then(|b| Bsuid::parse(&b).ok()).map(Recipient::Bsuid)),
        Some(ChannelKind::Web) => address.and_then(|a| ConversationKey::parse(&a).ok()).map(Recipient::Web),
        None => None,
    })
}

impl super::Store {
    /// The name a person gave themselves (WhatsApp profile, web chat label).
    pub async fn profile_name(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        let name = sqlx::query_scalar("SELECT profile_name FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(name.flatten())
    }

    /// Creates the person behind a new web chat conversation, before any
    /// message: a message is only accepted for a conversation that exists,
    /// so a visitor cannot make up keys to dodge the limit on new ones.
    /// `label` is what the visitor calls themselves, for the admin page.
    pub async fn start_web_conversation(
        &self,
        conversation: &ConversationKey,
        label: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (channel, username, address, profile_name, created_at) VALUES ('web', $1, $2, $3, $4)",
        )
        .bind(format!("web_{}", conversation.expose()))
        .bind(conversation.expose())
        .bind(label)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Finds the user a webhook's sender is, creating them on first contact and
/// linking a phone number and a BSUID when a payload carries both.
pub(super) async fn upsert_person(
    tx: &mut Transaction<'_, Any>,
    cache: &mut PeopleCache,
    person: &PersonRef,
    now: i64,
) -> Result<i64, StoreError> {
    if let Some(user_id) = cache.lookup(person, now) {
        return Ok(user_id);
    }
    let user_id = upsert_uncached(tx, person, now).await?;
    cache.stage(person, user_id, now);
    Ok(user_id)
}

async fn upsert_uncached(tx: &mut Transaction<'_, Any>, person: &PersonRef, now: i64) -> Result<i64, StoreError> {
    if person.channel() != ChannelKind::WhatsApp {
        return upsert_by_address(tx, person, now).await;
    }
    let phone = person.phone().map(|p| p.expose().to_owned());
    let bsuid = person.bsuid().map(|b| b.expose().to_owned());
    let account = person.account().as_stored();
    let identity = phone.as_deref().or(bsuid.as_deref()).unwrap_or_default();
    // The default account keeps the names rows had before accounts.
    let username = match person.account().is_default() {
        true => format!("whatsapp_{identity}"),
        false => format!("whatsapp_{identity}@{account}"),
    };
    // Inserting first makes a first contact one statement. Any identity
    // already on a row of this account (an earlier contact, a replica that
    // won a race) refuses the insert, and that row is linked instead.
    let inserted = sqlx::query(
        "INSERT INTO users (channel, account, username, phone, bsuid, parent_bsuid, profile_name, created_at) \
         VALUES ('whatsapp', $7, $1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(&phone)
    .bind(&bsuid)
    .bind(person.parent_bsuid.as_ref().map(|b| b.expose().to_owned()))
    .bind(&person.profile_name)
    .bind(now)
    .bind(account)
    .fetch_optional(&mut **tx)
    .await?;
    match inserted {
        Some(row) => Ok(row.try_get("id")?),
        None => link_existing(tx, person, &phone, &bsuid).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound)),
    }
}

/// Channels other than WhatsApp know a person by one address on that
/// channel; phone and BSUID columns stay WhatsApp's.
async fn upsert_by_address(tx: &mut Transaction<'_, Any>, person: &PersonRef, now: i64) -> Result<i64, StoreError> {
    let channel = person.channel().as_str();
    let address = person.conversation().map(|c| c.expose().to_owned()).unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO users (channel, username, address, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(channel)
    .bind(format!("{channel}_{address}"))
    .bind(&address)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = inserted {
        return Ok(row.try_get("id")?);
    }
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE channel = $1 AND address = $2")
        .bind(channel)
        .bind(&address)
        .fetch_one(&mut **tx)
        .await?)
}

async fn link_existing(
    tx: &mut Transaction<'_, Any>,
    person: &PersonRef,
    phone: &Option<String>,
    bsuid: &Option<String>,
) -> Result<Option<i64>, StoreError> {
    let account = person.account().as_stored();
    let found =
        sqlx::query("SELECT id FROM users WHERE account = $3 AND (phone = $1 OR bsuid = $2) ORDER BY id LIMIT 1")
            .bind(phone)
            .bind(bsuid)
            .bind(account)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(row) = found else { return Ok(None) };
    let id: i64 = row.try_get("id")?;
    // Only fill gaps, and only with an identity no other row holds: if the
    // phone and the BSUID were first seen as two separate people, both rows
    // stay as they are rather than failing the webhook on a unique key.
    sqlx::query(
        "UPDATE users SET \
         phone = COALESCE(phone, (SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM users WHERE account = $6 AND phone = $1))), \
         bsuid = COALESCE(bsuid, (SELECT $2 WHERE NOT EXISTS (SELECT 1 FROM users WHERE account = $6 AND bsuid = $2))), \
         parent_bsuid = COALESCE($3, parent_bsuid), profile_name = COALESCE($4, profile_name) \
         WHERE id = $5",
    )
    .bind(phone)
    .bind(bsuid)
    .bind(person.parent_bsuid.as_ref().map(|b| b.expose().to_owned()))
    .bind(&person.profile_name)
    .bind(id)
    .bind(account)
    .execute(&mut **tx)
    .await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * 60 * 1000;

    fn person(phone: &str) -> PersonRef {
        PersonRef::new(Some(PhoneNumber::parse(phone).unwrap()), None).unwrap()
    }

    fn cache_with(people: &[(&PersonRef, i64, i64)]) -> PeopleCache {
        let mut cache = PeopleCache::default();
        for (person, user_id, seen) in people {
            cache.stage(person, *user_id, *seen);
        }
        cache.commit();
        cache
    }

    #[test]
    fn people_idle_for_an_hour_are_forgotten_and_active_ones_kept() {
        let (quiet, chatty) = (person("6281111111111"), person("6282222222222"));
        let mut cache = cache_with(&[(&quiet, 1, 0), (&chatty, 2, 0)]);
        assert_eq!(cache.lookup(&chatty, 50 * 60 * 1000), Some(2), "a hit is a sighting");

        let now = HOUR + 1;
        assert_eq!(cache.prune(now - HOUR), 1);
        assert_eq!(cache.lookup(&quiet, now), None, "forgotten: the next webhook asks the database");
        assert_eq!(cache.lookup(&chatty, now), Some(2));
    }

    #[test]
    fn nobody_is_forgotten_within_the_hour() {
        let someone = person("6281111111111");
        let mut cache = cache_with(&[(&someone, 1, 10 * HOUR)]);
        assert_eq!(cache.prune(10 * HOUR), 0);
        assert_eq!(cache.lookup(&someone, 10 * HOUR), Some(1));
    }

    #[test]
    fn every_identity_of_a_person_is_forgotten_together() {
        let phone = PhoneNumber::parse("6281111111111").unwrap();
        let both = PersonRef::new(Some(phone), Some(Bsuid::parse("ID.123456").unwrap())).unwrap();
        let mut cache = cache_with(&[(&both, 1, 0)]);
        assert_eq!(cache.prune(HOUR), 2);
        assert!(cache.known.is_empty());
    }
}
