//! Claiming turns: when quiet windows end, the people's waiting messages
//! become turns owned by this process, in one transaction per batch. Only
//! one process can win a person's claim; the rest of the turn's life is in
//! `turns`.

use super::contacts::{consent_in, Consent};
use super::handoff::end_expired;
use super::turns::{combine, load_history, MEDIA_COLUMNS};
use super::usage::recent_turns;
use super::{bind_ids, Backend, Claim, ClaimWindow, ClaimedTurn, Params, Store, StoreError, TurnMessage};
use crate::contacts::ChangeSource;
use crate::domain::HOUR_MS;
use crate::domain::{AccountName, Recipient};
use crate::handoff::{holds, Mode};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Silence after which a person's next turn starts a new session.
const SESSION_GAP_MS: i64 = 24 * 60 * 60 * 1000;

/// People per claim transaction: the pipeline's whole batch, so a thousand
/// windows ending together are claimed in one transaction. No statement
/// binds more than three values per person, well under the databases'
/// bind-parameter limits.
const CLAIM_CHUNK: usize = 1000;

impl Store {
    /// Claims the turns of every person in `user_ids` whose quiet window is
    /// over, in one transaction of a few set-based statements: when a
    /// thousand windows end together, their LLM requests must not queue
    /// behind a thousand separate transactions. `opt_out` gives the opt-out
    /// phrase a turn's text is, if any: a held turn (a person of the business
    /// has the conversation, the bot stays silent) that is one opts its
    /// WhatsApp number out in the claim's transaction, unconfirmed, since
    /// the bot says nothing while paused.
    pub async fn claim_turns(
        &self,
        user_ids: &[i64],
        owner: &str,
        now: i64,
        window: &ClaimWindow,
        opt_out: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Vec<(i64, Claim)>, StoreError> {
        let mut claims: Vec<(i64, Claim)> = Vec::new();
        for chunk in user_ids.chunks(CLAIM_CHUNK) {
            let mut tx = self.write_tx().await?;
            claims.extend(claim_chunk(&mut tx, self.backend, chunk, owner, now, window, opt_out).await?);
            tx.commit().await?;
        }
        Ok(claims)
    }

    /// What each of `user_ids` has said since their last reply, combined as
    /// [`ClaimedTurn::user_text`] will combine it once the turn is claimed.
    /// People with nothing readable waiting are left out.
    pub async fn waiting_texts(&self, user_ids: &[i64]) -> Result<Vec<String>, StoreError> {
        let mut texts = Vec::new();
        for chunk in user_ids.chunks(CLAIM_CHUNK) {
            let sql = format!(
                "SELECT user_id, body FROM inbound_messages WHERE turn_id IS NULL AND wants_reply AND user_id IN ({}) \
                 ORDER BY user_id, sent_at_secs, id",
                Params::new(self.backend).list(chunk.len())
            );
            let rows = bind_ids(sqlx::query(&sql), chunk).fetch_all(&self.reader).await?;
            let mut said: Vec<(i64, Option<String>)> = Vec::with_capacity(rows.len());
            for row in rows {
                said.push((row.try_get("user_id")?, row.try_get("body")?));
            }
            for person in said.chunk_by(|a, b| a.0 == b.0) {
                let text = combine(person.iter().map(|(_, body)| body.as_deref()));
                if !text.is_empty() {
                    texts.push(text);
                }
            }
        }
        Ok(texts)
    }
}

async fn claim_chunk(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    owner: &str,
    now: i64,
    window: &ClaimWindow,
    opt_out: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Vec<(i64, Claim)>, StoreError> {
    // Locks the people's rows on PostgreSQL, so claims for one person are
    // serialised across replicas. SQLite's `BEGIN IMMEDIATE` already made
    // this transaction the only writer.
    if backend == Backend::Postgres {
        let mut p = Params::new(backend);
        let lock_sql = format!("UPDATE users SET last_claim_at = {} WHERE id IN ({})", p.one(), p.list(user_ids.len()));
        bind_ids(sqlx::query(&lock_sql).bind(now), user_ids).execute(&mut **tx).await?;
    }
    let mut waiting = read_waiting(tx, backend, user_ids, now).await?;
    let mut claims = Vec::with_capacity(user_ids.len());
    let (mut due, mut held, mut expired) = (Vec::new(), Vec::new(), Vec::new());
    for &user_id in user_ids {
        let claim = match waiting.get(&user_id) {
            None => Claim::Nothing,
            Some(person) if person.busy => Claim::Busy,
            Some(person) => {
                let due_at = (person.last_at + window.quiet_ms).min(person.first_at + window.max_wait_ms);
                if due_at > now {
                    Claim::NotYet { due_at }
                } else {
                    match person.mode {
                        Held::Paused => held.push(user_id),
                        Held::Expired => {
                            expired.push(user_id);
                            due.push(user_id);
                        }
                        Held::No => due.push(user_id),
                    }
                    continue;
                }
            }
        };
        claims.push((user_id, claim));
    }
    if due.is_empty() && held.is_empty() {
        return Ok(claims);
    }
    end_expired(tx, backend, &expired, now).await?;
    let claimed: Vec<i64> = due.iter().chain(&held).copied().collect();
    continue_sessions(tx, backend, &claimed, &waiting, now).await?;
    // One id prefix for the batch: every turn id is `<prefix>-<user id>`,
    // which the statements below compute in SQL for all people at once.
    let prefix = uuid::Uuid::new_v4().to_string();
    create_turns(tx, backend, &prefix, &due, owner, TurnStart::Answering { lease_until: now + window.lease_ms }, now)
        .await?;
    create_turns(tx, backend, &prefix, &held, owner, TurnStart::Held, now).await?;
    let mut messages = attach_messages(tx, backend, &prefix, &claimed).await?;
    for user_id in held {
        let turn_id = format!("{prefix}-{user_id}");
        let said = messages.remove(&user_id).unwrap_or_default();
        let text = combine(said.iter().map(|m| m.body.as_deref()));
        let phrase = opt_out(&text);
        // Kept on the turn, where the bot's history reads the person's side
        // of the conversation once it is back.
        sqlx::query("UPDATE turns SET user_text = $1 WHERE id = $2")
            .bind(Some(text).filter(|text| !text.is_empty()))
            .bind(&turn_id)
            .execute(&mut **tx)
            .await?;
        let mut opted_out = false;
        if let (Some(phrase), Some(person)) = (phrase, waiting.get(&user_id)) {
            if let Some(Recipient::Phone(phone)) = &person.recipient {
                let source = ChangeSource::customer();
                opted_out =
                    consent_in(tx, &person.account, phone, Consent::OptedOut, &source, Some(&phrase), now).await?;
            }
        }
        claims.push((user_id, Claim::Held { turn_id, messages: said.len(), opted_out }));
    }
    if due.is_empty() {
        return Ok(claims);
    }
    let mut history = load_history(tx, backend, &due, window.history_turns).await?;
    let mut recent = recent_turns(tx, backend, &due, now - HOUR_MS).await?;
    for user_id in due {
        let Some(person) = waiting.remove(&user_id) else { continue };
        let turn = ClaimedTurn {
            id: format!("{prefix}-{user_id}"),
            token: owner.to_owned(),
            user_id,
            recipient: person.recipient,
            account: person.account,
            messages: messages.remove(&user_id).unwrap_or_default(),
            last_message_at: person.last_at,
            reply: None,
            history: history.remove(&user_id).unwrap_or_default(),
            recent: recent.remove(&user_id).unwrap_or_default(),
        };
        claims.push((user_id, Claim::Claimed(turn)));
    }
    Ok(claims)
}

/// What the claim needs to know about a person with messages waiting.
struct Waiting {
    first_at: i64,
    last_at: i64,
    /// A reply to them is still being written.
    busy: bool,
    /// Their session, unless it ended with a long silence.
    recent_session: Option<i64>,
    recipient: Option<Recipient>,
    account: AccountName,
    mode: Held,
}

/// Whether a person's turn is held for a human.
enum Held {
    No,
    Paused,
    /// Their pause has run out: the bot answers, and their row says so.
    Expired,
}

/// Everything the claim decides on, for all of `user_ids` in one query.
async fn read_waiting(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_ids: &[i64],
    now: i64,
) -> Result<HashMap<i64, Waiting>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "SELECT i.user_id, MIN(i.received_at) AS first_at, MAX(i.received_at) AS last_at, \
           CAST(CASE WHEN EXISTS (SELECT 1 FROM turns t WHERE t.user_id = i.user_id AND t.status = 'answering' \
             AND t.lease_until > {}) THEN 1 ELSE 0 END AS BIGINT) AS busy, \
           (SELECT MAX(s.id) FROM sessions s WHERE s.user_id = i.user_id AND s.last_activity_at > {}) AS session_id, \
           u.channel, u.account, u.phone, u.bsuid, u.address, u.mode, u.paused_until \
         FROM inbound_messages i JOIN users u ON u.id = i.user_id \
         WHERE i.turn_id IS NULL AND i.wants_reply AND i.user_id IN ({}) GROUP BY i.user_id, u.id",
        p.one(),
        p.one(),
        p.list(user_ids.len())
    );
    let query = sqlx::query(&sql).bind(now).bind(now - SESSION_GAP_MS);
    let mut waiting = HashMap::with_capacity(user_ids.len());
    for row in bind_ids(query, user_ids).fetch_all(&mut **tx).await? {
        let (mode, until): (String, Option<i64>) = (row.try_get("mode")?, row.try_get("paused_until")?);
        let mode = match (holds(&mode, until, now), mode == Mode::Human.as_str()) {
            (true, _) => Held::Paused,
            (false, true) => Held::Expired,
            (false, false) => Held::No,
        };
        let person = Waiting {
            mode,
            first_at: row.try_get("first_at")?,
            last_at: row.try_get("last_at")?,
            busy: row.try_get::<i64, _>("busy")? != 0,
            recent_session: row.try_get("session_id")?,
            recipient: super::people::recipient_from_row(&row)?,
            account: super::people::account_from_row(&row)?,
        };
        waiting.insert(row.try_get::<i64, _>("user_id")?, person);
    }
    Ok(waiting)
}

/// Continues each person's session, or starts one after a long silence.
/// A person's newest session is then the one their turn belongs to.
async fn continue_sessions(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    due: &[i64],
    waiting: &HashMap<i64, Waiting>,
    now: i64,
) -> Result<(), StoreError> {
    let (mut recent, mut new) = (Vec::new(), Vec::new());
    for &user_id in due {
        match waiting.get(&user_id).and_then(|person| person.recent_session) {
            Some(session_id) => recent.push(session_id),
            None => new.push(user_id),
        }
    }
    if !recent.is_empty() {
        let mut p = Params::new(backend);
        let touch_sql =
            format!("UPDATE sessions SET last_activity_at = {} WHERE id IN ({})", p.one(), p.list(recent.len()));
        bind_ids(sqlx::query(&touch_sql).bind(now), &recent).execute(&mut **tx).await?;
    }
    if !new.is_empty() {
        let mut p = Params::new(backend);
        let values: Vec<String> = new.iter().map(|_| format!("({})", p.list(3))).collect();
        let insert_sql =
            format!("INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES {}", values.join(", "));
        let insert_query = new.iter().fold(sqlx::query(&insert_sql), |q, id| q.bind(id).bind(now).bind(now));
        insert_query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// How a claimed turn starts.
enum TurnStart {
    /// Owned by the claimer until `lease_until`, to be answered.
    Answering { lease_until: i64 },
    /// Settled at once: its messages are consumed and nobody is answered.
    Held,
}

/// One turn per person of `people`, owned by `owner`.
async fn create_turns(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    prefix: &str,
    people: &[i64],
    owner: &str,
    start: TurnStart,
    now: i64,
) -> Result<(), StoreError> {
    if people.is_empty() {
        return Ok(());
    }
    let (status, lease_until, answered_at) = match start {
        TurnStart::Answering { lease_until } => ("answering", lease_until, None),
        TurnStart::Held => ("held", now, Some(now)),
    };
    let mut p = Params::new(backend);
    let sql = format!(
        "INSERT INTO turns (id, user_id, session_id, owner, lease_until, created_at, answered_at, status, \
           last_message_at) \
         SELECT {} || '-' || i.user_id, i.user_id, (SELECT MAX(s.id) FROM sessions s WHERE s.user_id = i.user_id), \
           {}, {}, {}, {}, {}, MAX(i.received_at) \
         FROM inbound_messages i WHERE i.turn_id IS NULL AND i.wants_reply AND i.user_id IN ({}) GROUP BY i.user_id",
        p.one(),
        p.one(),
        p.one(),
        p.one(),
        p.one(),
        p.one(),
        p.list(people.len())
    );
    let query = sqlx::query(&sql).bind(prefix).bind(owner).bind(lease_until).bind(now).bind(answered_at).bind(status);
    bind_ids(query, people).execute(&mut **tx).await?;
    Ok(())
}

/// Moves each due person's waiting messages into their new turn and
/// returns them per person, in the order they were sent.
async fn attach_messages(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    prefix: &str,
    due: &[i64],
) -> Result<HashMap<i64, Vec<TurnMessage>>, StoreError> {
    let mut p = Params::new(backend);
    let sql = format!(
        "UPDATE inbound_messages SET turn_id = {} || '-' || user_id \
         WHERE turn_id IS NULL AND wants_reply AND user_id IN ({}) \
         RETURNING user_id, sent_at_secs, id, wa_message_id, kind, body, reply_to, {MEDIA_COLUMNS}",
        p.one(),
        p.list(due.len())
    );
    let mut attached: Vec<(i64, i64, i64, TurnMessage)> = Vec::new();
    for row in bind_ids(sqlx::query(&sql).bind(prefix), due).fetch_all(&mut **tx).await? {
        let message = TurnMessage::from_row(&row)?;
        attached.push((row.try_get("user_id")?, row.try_get("sent_at_secs")?, row.try_get("id")?, message));
    }
    attached.sort_unstable_by_key(|&(user_id, sent_at, id, _)| (user_id, sent_at, id));
    let mut messages: HashMap<i64, Vec<TurnMessage>> = HashMap::with_capacity(due.len());
    for (user_id, _, _, message) in attached {
        messages.entry(user_id).or_default().push(message);
    }
    Ok(messages)
}
