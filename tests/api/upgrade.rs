//! A database written before the outbox (migrations 0001–0003) is brought up
//! to date with its replies intact: sent parts stay sent, failed ones become
//! failed messages an operator can retry, nothing is queued to go out again.
//! One written before accounts (0001–0013) keeps its people, under the same
//! ids, in the default account, with everything that refers to them.

use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use sqlx::AnyPool;
use wa_ai_bridge::store::{Audience, SendState, Store};

on_both_backends!(
    replies_stored_before_the_outbox_keep_their_state,
    people_from_before_accounts_keep_their_conversations
);

const OLD_ROWS: [&str; 5] = [
    "INSERT INTO users (channel, username, phone, created_at) VALUES ('whatsapp', 'whatsapp_6281234567789', \
     '6281234567789', 1000)",
    "INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES (1, 1000, 4000)",
    "INSERT INTO turns (id, user_id, session_id, status, owner, lease_until, created_at, last_message_at, \
       answered_at, reply_text, reply_kind) VALUES \
     ('t1', 1, 1, 'answered', 'old', 0, 1000, 1000, 2000, 'Halo panjang', 'llm'), \
     ('t2', 1, 1, 'failed', 'old', 0, 3000, 3000, 4000, 'Maaf', 'llm')",
    "INSERT INTO outbound_messages (turn_id, part_index, body, wa_message_id, status, status_rank, created_at, \
       updated_at) VALUES ('t1', 0, 'Halo', 'wamid.a', 'delivered', 2, 2000, 2000), \
     ('t1', 1, 'panjang', 'wamid.b', 'read', 3, 2001, 2001)",
    "INSERT INTO outbound_messages (turn_id, part_index, body, wa_message_id, status, status_rank, error_code, \
       error_title, created_at, updated_at) VALUES ('t2', 0, 'Maaf', NULL, 'failed', 4, 131047, 'Re-engagement', \
       4000, 4000)",
];

async fn replies_stored_before_the_outbox_keep_their_state(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&database.url).await.unwrap();
    let mut before_outbox = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    before_outbox.migrations = before_outbox.migrations.iter().filter(|m| m.version < 4).cloned().collect();
    before_outbox.run(&pool).await.unwrap();
    for sql in OLD_ROWS {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }

    let store = Store::connect(&database.url).await.expect("the newer migrations apply");
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    let sent = "SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent' AND user_id = 1 AND channel = 'whatsapp' \
                AND origin = 'bot' AND turn_id = 't1'";
    assert_eq!(count(sent).await, 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM outbound_messages WHERE final_part AND turn_id = 't1' AND part_index = 1").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id = 'wamid.b' AND status = 'read'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM outbound_messages WHERE state IN ('queued', 'sending', 'failed_retryable')").await,
        0,
        "nothing goes out again"
    );
    let undelivered = store.undelivered(10).await.unwrap();
    assert_eq!(undelivered.len(), 1);
    assert_eq!((undelivered[0].state, undelivered[0].error_code), (SendState::FailedPermanent, Some(131047)));
    let transcript = store.transcript(1, 10, Audience::Staff).await.unwrap().expect("the person is still there");
    assert_eq!(transcript.entries.len(), 3);
    store.close().await;
    pool.close().await;
}

/// Person 4 wrote and was deleted (cleanup), so the highest id ever given is
/// above the highest id left.
const PEOPLE_BEFORE_ACCOUNTS: [&str; 11] = [
    "INSERT INTO users (channel, username, phone, created_at) VALUES ('whatsapp', 'whatsapp_628111', '628111', 1000)",
    "INSERT INTO users (channel, username, bsuid, created_at, mode, waiting_since) VALUES \
     ('whatsapp', 'whatsapp_ID.bs1', 'ID.bs1', 1001, 'human', 5000)",
    "INSERT INTO users (channel, username, address, created_at) VALUES ('web', 'web_abc', 'abc', 1002)",
    "INSERT INTO users (channel, username, phone, created_at) VALUES ('whatsapp', 'whatsapp_628999', '628999', 1003)",
    "DELETE FROM users WHERE id = 4",
    "INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES (1, 1000, 4000), (2, 1001, 5000), \
     (3, 1002, 6000)",
    "INSERT INTO turns (id, user_id, session_id, status, owner, lease_until, created_at, last_message_at) VALUES \
     ('t1', 1, 1, 'answered', 'old', 0, 2000, 2000), ('t3', 3, 3, 'answered', 'old', 0, 6000, 6000)",
    "INSERT INTO inbound_messages (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at, \
       turn_id) VALUES ('wamid.in1', 1, 'text', 'Halo', TRUE, 2, 2000, 't1'), \
     ('wamid.in2', 2, 'text', 'Tolong', TRUE, 5, 5000, NULL)",
    "INSERT INTO outbound_messages (user_id, channel, origin, turn_id, part_index, final_part, body, state, \
       next_attempt_at, give_up_at, status, status_rank, created_at, updated_at) VALUES \
     (1, 'whatsapp', 'bot', 't1', 0, TRUE, 'Halo juga', 'sent', 2000, 2000, 'read', 3, 2000, 2000), \
     (3, 'web', 'bot', 't3', 0, TRUE, 'Ya', 'sent', 6000, 6000, 'sent', 1, 6000, 6000)",
    "INSERT INTO handoff_events (user_id, at, action, reason, actor) VALUES \
     (2, 5000, 'pause', 'customer_asked', 'customer')",
    "INSERT INTO unanswered_questions (user_id, turn_id, question, reason, asked_at) VALUES \
     (3, 't3', 'Jam buka?', 'no_passages', 6000)",
];

async fn people_from_before_accounts_keep_their_conversations(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&database.url).await.unwrap();
    let mut before_accounts = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    before_accounts.migrations = before_accounts.migrations.iter().filter(|m| m.version <= 13).cloned().collect();
    before_accounts.run(&pool).await.unwrap();
    for sql in PEOPLE_BEFORE_ACCOUNTS {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }

    let store = Store::connect(&database.url).await.expect("the newer migrations apply");
    let db = store.pool();
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await.unwrap() };
    let people = sqlx::query_as::<_, (i64, String, String)>("SELECT id, username, account FROM users ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap();
    let default_account = |id: i64, username: &str| (id, username.to_string(), String::new());
    assert_eq!(
        people,
        [default_account(1, "whatsapp_628111"), default_account(2, "whatsapp_ID.bs1"), default_account(3, "web_abc")],
        "everyone keeps their id, in the default account"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM users WHERE id = 2 AND bsuid = 'ID.bs1' AND phone IS NULL AND mode = 'human' \
               AND waiting_since = 5000"
        )
        .await,
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM users WHERE channel = 'web' AND address = 'abc' AND id = 3").await, 1);
    for (joined, expected) in [
        ("SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id", 3),
        (
            "SELECT COUNT(*) FROM turns t JOIN users u ON u.id = t.user_id JOIN sessions s ON s.id = t.session_id \
          AND s.user_id = u.id",
            2,
        ),
        ("SELECT COUNT(*) FROM inbound_messages m JOIN users u ON u.id = m.user_id", 2),
        ("SELECT COUNT(*) FROM outbound_messages m JOIN users u ON u.id = m.user_id", 2),
        ("SELECT COUNT(*) FROM handoff_events e JOIN users u ON u.id = e.user_id WHERE u.id = 2", 1),
        (
            "SELECT COUNT(*) FROM unanswered_questions q JOIN users u ON u.id = q.user_id WHERE u.username = 'web_abc'",
            1,
        ),
    ] {
        assert_eq!(count(joined).await, expected, "{joined}");
    }

    let insert = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await };
    let billing = insert(
        "INSERT INTO users (channel, username, phone, created_at, account) VALUES \
         ('whatsapp', 'billing:whatsapp_628111', '628111', 9000, 'billing') RETURNING id",
    )
    .await
    .expect("the same phone number is another person in another account");
    assert!(billing > 4, "ids are never given twice (got {billing})");
    let (same_account, other_account) = (false, true);
    for (sql, accepted, why) in [
        (
            "INSERT INTO users (channel, username, phone, created_at) VALUES \
             ('whatsapp', 'whatsapp_628111_again', '628111', 9000) RETURNING id",
            same_account,
            "one person per phone number in an account",
        ),
        (
            "INSERT INTO users (channel, username, bsuid, created_at, account) VALUES \
             ('whatsapp', 'billing:whatsapp_ID.bs1', 'ID.bs1', 9000, 'billing') RETURNING id",
            other_account,
            "the same BSUID is another person in another account",
        ),
        (
            "INSERT INTO users (channel, username, bsuid, created_at) VALUES \
             ('whatsapp', 'whatsapp_ID.bs1_again', 'ID.bs1', 9000) RETURNING id",
            same_account,
            "one person per BSUID in an account",
        ),
        (
            "INSERT INTO users (channel, username, bsuid, created_at, account) VALUES \
             ('whatsapp', 'billing:whatsapp_ID.bs1_again', 'ID.bs1', 9000, 'billing') RETURNING id",
            same_account,
            "one person per BSUID in the other account too",
        ),
        (
            "INSERT INTO users (channel, username, phone, created_at, account) VALUES \
             ('whatsapp', 'whatsapp_628111', '628222', 9000, 'billing') RETURNING id",
            false,
            "usernames stay unique across accounts",
        ),
    ] {
        let inserted = insert(sql).await;
        assert_eq!(inserted.is_ok(), accepted, "{why}: {inserted:?}");
    }

    if matches!(backend, Backend::Sqlite) {
        assert_eq!(count("PRAGMA foreign_keys").await, 1, "the store's connection still checks foreign keys");
        assert!(sqlx::query("PRAGMA foreign_key_check").fetch_all(db).await.unwrap().is_empty());
        let schema =
            count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions' AND sql LIKE '%REFERENCES users %'");
        assert_eq!(schema.await, 1, "sessions still refer to users");
    }
    sqlx::query("INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES (999, 1, 1)")
        .execute(db)
        .await
        .expect_err("a session of nobody is refused");
    store.close().await;
    pool.close().await;
}
