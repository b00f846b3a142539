//! A database written before the outbox (migrations 0001–0003) is brought up
//! to date with its replies intact: sent parts stay sent, failed ones become
//! failed messages an operator can retry, nothing is queued to go out again.

use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use sqlx::AnyPool;
use wa_ai_bridge::store::{Audience, SendState, Store};

on_both_backends!(replies_stored_before_the_outbox_keep_their_state);

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
