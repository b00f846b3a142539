//! Messages applications send through the send API: queued in the outbox
//! like every other message, exactly once per idempotency key for a day,
//! with the token that asked recorded as their author.

use super::outbox::{attach, insert_parts, NewParts, SendState, FILE_JOIN, MEDIA_COLUMNS};
use super::people::{upsert_person, PeopleCache};
use super::{Store, StoreError};
use crate::domain::{AccountName, OutboundMedia, PersonRef, PhoneNumber, HOUR_MS};
use crate::handoff::window::ReplyWindow;
use sqlx::Row;

/// How long an idempotency key finds the message it first sent.
pub const KEY_LIFETIME_MS: i64 = 24 * HOUR_MS;

/// A message an application asked to send.
pub struct AppMessage<'a> {
    pub account: &'a AccountName,
    pub to: &'a PhoneNumber,
    /// The token's name.
    pub author: &'a str,
    /// The application's key; keys of different tokens never meet.
    pub key: &'a str,
    /// The text, or a file's caption (one part, maybe empty).
    pub parts: &'a [String],
    pub media: Option<&'a OutboundMedia>,
    /// Graph's `template` object of an approved template, which reaches a
    /// customer outside the 24-hour window; `parts` holds its text.
    pub template: Option<&'a serde_json::Value>,
    pub give_up_at: i64,
}

/// What became of an application's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSend {
    /// Queued now; the message's id (its first part's).
    Queued(i64),
    /// The key sent the same message before: its id, nothing new.
    Repeated(i64),
    /// The key sent something else (another text or number) before.
    KeyReused,
    /// The Cloud API would refuse free-form text now (131047).
    OutsideWindow(ReplyWindow),
}

/// One part of an application's message and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPart {
    pub id: i64,
    pub state: SendState,
    pub wa_message_id: Option<String>,
    pub attempts: i64,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// Every status the provider reported: (status, Unix seconds, error code).
    pub statuses: Vec<(String, i64, Option<i64>)>,
}

/// An application's message as `GET /api/messages/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMessageView {
    pub id: i64,
    pub to: PhoneNumber,
    pub account: AccountName,
    pub author: String,
    pub media: Option<OutboundMedia>,
    /// The template's name and language, for a template message.
    pub template: Option<(String, String)>,
    pub created_at: i64,
    pub parts: Vec<SentPart>,
}

impl Store {
    /// Queues an application's message to `to` on `account`, creating the
    /// person on first contact. Nothing is queued outside the 24-hour
    /// window of an account that has one (templates aside), nor twice
    /// for one key.
    pub async fn queue_app_message(&self, message: &AppMessage<'_>, now: i64) -> Result<AppSend, StoreError> {
        let key = stored_key(message.author, message.key);
        let mut tx = self.write_tx().await?;
        if let Some(earlier) = self.earlier_app_message(&mut tx, message, &key, now).await? {
            return Ok(earlier);
        }
        let person = PersonRef::of_phone(message.to.clone(), message.account.clone());
        let user_id = upsert_person(&mut tx, &mut PeopleCache::default(), &person, now).await?;
        let window = self.window_of(&mut tx, user_id).await?.unwrap_or(ReplyWindow::Until(None));
        if message.template.is_none() && !window.open_at(now) {
            return Ok(AppSend::OutsideWindow(window));
        }
        let parts = NewParts {
            user_id,
            origin: "api",
            turn_id: None,
            author: Some(message.author),
            idempotency_key: Some(&key),
            parts: message.parts,
            give_up_at: message.give_up_at,
        };
        let ids = insert_parts(&mut tx, self.backend, &parts, now).await?;
        let Some(first) = ids.first().copied().filter(|_| ids.len() == message.parts.len()) else {
            // The same key committed beside this request, for this person.
            tx.rollback().await?;
            let mut tx = self.write_tx().await?;
            return Ok(self.earlier_app_message(&mut tx, message, &key, now).await?.unwrap_or(AppSend::KeyReused));
        };
        attach(&mut tx, first, message.media, message.template, now).await?;
        tx.commit().await?;
        self.conversations_changed();
        Ok(AppSend::Queued(first))
    }

    async fn earlier_app_message(
        &self,
        connection: &mut sqlx::AnyConnection,
        message: &AppMessage<'_>,
        key: &str,
        now: i64,
    ) -> Result<Option<AppSend>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT o.id, o.body, {MEDIA_COLUMNS}, o.template, u.phone, u.account \
                 FROM outbound_messages o JOIN users u ON u.id = o.user_id {FILE_JOIN} \
                 WHERE o.idempotency_key = $1 AND o.origin = 'api' AND o.created_at > $2 ORDER BY o.part_index"
        ))
        .bind(key)
        .bind(now - KEY_LIFETIME_MS)
        .fetch_all(&mut *connection)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let same_person = first.try_get::<Option<String>, _>("phone")?.as_deref() == Some(message.to.expose())
            && first.try_get::<String, _>("account")? == message.account.as_stored();
        // Words dropped with chat logging off cannot be compared; the key
        // and the person still tell a retried request apart.
        let bodies: Vec<Option<String>> = rows.iter().map(|row| row.try_get("body")).collect::<Result<_, _>>()?;
        let same_words = bodies.len() == message.parts.len()
            && bodies.iter().zip(message.parts).all(|(body, part)| body.as_ref().is_none_or(|body| body == part));
        let same_file = super::outbox::media_from_row(first)?.as_ref() == message.media;
        let same_template = super::outbox::template_from_row(first)?.as_ref() == message.template;
        let same = same_person && same_words && same_file && same_template;
        Ok(Some(if same { AppSend::Repeated(first.try_get("id")?) } else { AppSend::KeyReused }))
    }

    /// An application's message by the id `queue_app_message` gave; `None`
    /// for any other row.
    pub async fn app_message(&self, id: i64) -> Result<Option<AppMessageView>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT o.id, o.state, o.wa_message_id, o.attempts, o.error_code, o.error_title, o.author, \
                   o.created_at, {MEDIA_COLUMNS}, o.template, u.phone, u.account \
                 FROM outbound_messages o JOIN users u ON u.id = o.user_id {FILE_JOIN} \
                 WHERE o.origin = 'api' AND o.user_id = (SELECT user_id FROM outbound_messages WHERE id = $1) \
                   AND o.idempotency_key = \
                     (SELECT idempotency_key FROM outbound_messages WHERE id = $1 AND part_index = 0) \
                 ORDER BY o.part_index"
        ))
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let Some(to) = first.try_get::<Option<String>, _>("phone")?.and_then(|p| PhoneNumber::parse(&p).ok()) else {
            return Ok(None);
        };
        let mut parts = Vec::with_capacity(rows.len());
        for row in &rows {
            let wa_message_id: Option<String> = row.try_get("wa_message_id")?;
            let statuses = match &wa_message_id {
                Some(wamid) => sqlx::query(
                    "SELECT status, occurred_secs, error_code FROM delivery_statuses WHERE wa_message_id = $1 \
                     ORDER BY occurred_secs, status_rank",
                )
                .bind(wamid)
                .fetch_all(&self.reader)
                .await?
                .iter()
                .map(|s| Ok((s.try_get("status")?, s.try_get("occurred_secs")?, s.try_get("error_code")?)))
                .collect::<Result<_, sqlx::Error>>()?,
                None => Vec::new(),
            };
            let state: String = row.try_get("state")?;
            parts.push(SentPart {
                id: row.try_get("id")?,
                state: SendState::parse(&state).unwrap_or(SendState::FailedPermanent),
                wa_message_id,
                attempts: row.try_get("attempts")?,
                error_code: row.try_get("error_code")?,
                error_title: row.try_get("error_title")?,
                statuses,
            });
        }
        Ok(Some(AppMessageView {
            id: parts[0].id,
            to,
            account: super::people::account_from_row(first)?,
            author: first.try_get::<Option<String>, _>("author")?.unwrap_or_default(),
            media: super::outbox::media_from_row(first)?,
            template: super::outbox::template_from_row(first)?.map(|template| {
                let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
                (text(&template["name"]), text(&template["language"]["code"]))
            }),
            created_at: first.try_get("created_at")?,
            parts,
        }))
    }
}

/// Keys are the application's own: two tokens may use the same one.
fn stored_key(author: &str, key: &str) -> String {
    format!("api:{author}:{key}")
}
