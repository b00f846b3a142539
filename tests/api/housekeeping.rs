//! What is kept, and for how long: the daily cleanup (`ENABLE_CLEANUP`) and
//! forgetting message bodies once answered (`ENABLE_CHAT_LOGGING=false`).

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::json;
use std::time::Duration;

on_both_backends!(
    the_cleanup_deletes_old_conversations_and_keeps_recent_and_unfinished_ones,
    without_chat_logging_the_words_are_gone_once_the_reply_is_sent,
    with_chat_logging_the_words_are_kept,
);

const DAY_MS: i64 = 86_400_000;
const OLD: &str = "6281111111111";
const RETURNING: &str = "6282222222222";
const UNFINISHED: &str = "6283333333333";

async fn execute(app: &TestApp, sql: &str, binds: &[i64]) {
    let pool = app.pool().await;
    let query = binds.iter().fold(sqlx::query(sql), |query, value| query.bind(*value));
    query.execute(&pool).await.expect("statement runs");
    pool.close().await;
}

async fn insert(app: &TestApp, sql: &str, binds: &[i64]) -> i64 {
    let pool = app.pool().await;
    let query = binds.iter().fold(sqlx::query_scalar(sql), |query, value| query.bind(*value));
    let id = query.fetch_one(&pool).await.expect("insert returns the id");
    pool.close().await;
    id
}

async fn last_outbound_wamid(app: &TestApp) -> String {
    let sql = "SELECT wa_message_id FROM outbound_messages ORDER BY id DESC LIMIT 1";
    sqlx::query_scalar(sql).fetch_one(&app.pool().await).await.unwrap()
}

async fn post_status(app: &TestApp, wamid: &str, status: &str) {
    assert_eq!(app.post_webhook(&status_webhook(wamid, status, None)).await.status(), 200);
}

/// Everything stored so far happened 40 days earlier.
async fn move_everything_back_40_days(app: &TestApp) {
    for sql in [
        "UPDATE users SET created_at = created_at - $1",
        "UPDATE sessions SET started_at = started_at - $1, last_activity_at = last_activity_at - $1",
        "UPDATE inbound_messages SET received_at = received_at - $1",
        "UPDATE turns SET created_at = created_at - $1, last_message_at = last_message_at - $1, \
         answered_at = answered_at - $1",
        "UPDATE outbound_messages SET created_at = created_at - $1, updated_at = updated_at - $1",
        "UPDATE delivery_statuses SET received_at = received_at - $1",
        "UPDATE unanswered_questions SET asked_at = asked_at - $1",
    ] {
        execute(app, sql, &[40 * DAY_MS]).await;
    }
}

/// A person whose turn was claimed 40 days ago by a replica that still
/// holds the lease, with one more message waiting behind it. Returns the
/// person's user id.
async fn insert_unfinished_conversation(app: &TestApp) -> i64 {
    let now = wa_ai_bridge::domain::now_ms();
    let old = now - 40 * DAY_MS;
    let user = insert(
        app,
        &format!(
            "INSERT INTO users (channel, username, phone, created_at) \
             VALUES ('whatsapp', 'whatsapp_{UNFINISHED}', '{UNFINISHED}', $1) RETURNING id"
        ),
        &[old],
    )
    .await;
    let session = insert(
        app,
        "INSERT INTO sessions (user_id, started_at, last_activity_at) VALUES ($1, $2, $2) RETURNING id",
        &[user, old],
    )
    .await;
    execute(
        app,
        "INSERT INTO turns (id, user_id, session_id, status, owner, lease_until, created_at, last_message_at) \
         VALUES ('turn-in-flight', $1, $2, 'answering', 'another-replica', $3, $4, $4)",
        &[user, session, now + 3_600_000, old],
    )
    .await;
    execute(
        app,
        "INSERT INTO inbound_messages (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at, turn_id) \
         VALUES ('wamid.unfinished.1', $1, 'text', 'halo', TRUE, 0, $2, 'turn-in-flight'), \
                ('wamid.unfinished.2', $1, 'text', 'masih di sana?', TRUE, 0, $2, NULL)",
        &[user, old],
    )
    .await;
    user
}

/// `count` reactions from `user`, 40 days old: more than one page of the
/// cleanup's walk through a table.
async fn insert_old_reactions(app: &TestApp, user: i64, count: i64) {
    execute(
        app,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO inbound_messages (wa_message_id, user_id, kind, body, wants_reply, sent_at_secs, received_at) \
         SELECT 'wamid.reaction.' || i, $2, 'reaction', NULL, FALSE, 0, $3 FROM n",
        &[count, user, wa_ai_bridge::domain::now_ms() - 40 * DAY_MS],
    )
    .await;
}

async fn the_cleanup_deletes_old_conversations_and_keeps_recent_and_unfinished_ones(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ENABLE_CLEANUP", "true"), ("CLEANUP_OLD_SESSIONS_DAYS", "30")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;

    // 40 days ago: one person who never came back, one who did, a reaction,
    // delivery statuses, and a status about a message sent by another tool.
    app.say(OLD, "wamid.old.1", "halo").await;
    app.wait_for_texts(1).await;
    let reaction = json!([{ "from": OLD, "id": "wamid.old.reaction", "timestamp": "1700000100", "type": "reaction",
        "reaction": { "message_id": "wamid.out.x", "emoji": "👍" } }]);
    assert_eq!(app.post_webhook(&messages_webhook(reaction, OLD)).await.status(), 200);
    let old_reply = last_outbound_wamid(&app).await;
    post_status(&app, &old_reply, "delivered").await;
    post_status(&app, &old_reply, "read").await;
    app.say(RETURNING, "wamid.old.2", "mau tanya").await;
    app.wait_for_texts(2).await;
    post_status(&app, "wamid.sent.elsewhere.old", "delivered").await;
    move_everything_back_40_days(&app).await;

    // Today: the returning person writes again, and another tool's status.
    app.say(RETURNING, "wamid.new.1", "saya kembali").await;
    app.wait_for_texts(3).await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 3 }).await;
    // Without documents every question counts as unanswered.
    wait_until(|| async { app.count("SELECT COUNT(*) FROM unanswered_questions").await == 3 }).await;
    post_status(&app, &last_outbound_wamid(&app).await, "delivered").await;
    post_status(&app, "wamid.sent.elsewhere.new", "delivered").await;
    let unfinished = insert_unfinished_conversation(&app).await;
    insert_old_reactions(&app, unfinished, 1200).await;

    // Two replicas clean at the same moment, soon after they start.
    let mut settings = app.settings();
    settings.retention.first_cleanup_after = Duration::from_millis(100);
    let _replicas = [Server::start(settings.clone()).await, Server::start(settings).await];
    wait_until(|| async { app.count("SELECT COUNT(*) FROM users").await == 2 }).await;
    wait_until(|| async { app.metric("wa_cleanup_deleted_total{table=\"users\"}").await >= 1.0 }).await;

    let phones = "SELECT COUNT(*) FROM users WHERE phone IN ('6282222222222', '6283333333333')";
    assert_eq!(app.count(phones).await, 2, "the person who never came back is gone");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE id = 'turn-in-flight' AND status = 'answering'").await, 1);
    let messages = "SELECT COUNT(*) FROM inbound_messages \
                    WHERE wa_message_id IN ('wamid.new.1', 'wamid.unfinished.1', 'wamid.unfinished.2')";
    assert_eq!(app.count(messages).await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE turn_id IS NULL AND wants_reply").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);
    let statuses = "SELECT COUNT(*) FROM delivery_statuses d WHERE d.wa_message_id = 'wamid.sent.elsewhere.new' \
                    OR EXISTS (SELECT 1 FROM outbound_messages o WHERE o.wa_message_id = d.wa_message_id)";
    assert_eq!(app.count(statuses).await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM delivery_statuses").await, 2);
    let sessions = "SELECT COUNT(*) FROM sessions s WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id)";
    assert_eq!(app.count(sessions).await, 2, "the returning person's new session and the unfinished one");
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
    let unanswered = "SELECT COUNT(*) FROM unanswered_questions WHERE question = 'saya kembali'";
    assert_eq!(app.count(unanswered).await, 1, "today's unanswered question stays");
    assert_eq!(app.count("SELECT COUNT(*) FROM unanswered_questions").await, 1, "old ones go with their conversation");
    let tables =
        ["turns", "outbound_messages", "delivery_statuses", "inbound_messages", "sessions", "unanswered_questions"];
    for table in tables {
        assert!(app.metric(&format!("wa_cleanup_deleted_total{{table=\"{table}\"}}")).await >= 1.0, "{table}");
    }
    assert_eq!(app.sent_texts().await.len(), 3, "cleaning sends nothing");
}

/// Two messages, one reply, delivered. Returns the reply's WhatsApp id.
async fn converse(app: &TestApp) -> String {
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281234567789", "wamid.log.1", "halo").await;
    app.say("6281234567789", "wamid.log.2", "mau tanya").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent[0]["text"]["body"], "Halo kak!");
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 1 }).await;
    let reply = last_outbound_wamid(app).await;
    post_status(app, &reply, "delivered").await;
    reply
}

async fn without_chat_logging_the_words_are_gone_once_the_reply_is_sent(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ENABLE_CHAT_LOGGING", "false")]).await;
    let reply = converse(&app).await;

    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE body IS NULL AND kind = 'text'").await, 2);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM turns WHERE user_text IS NULL AND reply_text IS NULL AND reply_kind = 'llm' \
             AND model = 'google/gemini-2.0-flash-exp:free' AND prompt_tokens = 120 AND completion_tokens = 30 \
             AND llm_latency_ms >= 0 AND answered_at >= last_message_at"
        )
        .await,
        1
    );
    let sql = format!(
        "SELECT COUNT(*) FROM outbound_messages WHERE body IS NULL AND wa_message_id = '{reply}' \
         AND status = 'delivered' AND turn_id IS NOT NULL"
    );
    assert_eq!(app.count(&sql).await, 1);
    // Unanswered (there are no documents), but its words are not kept there either.
    assert_eq!(app.count("SELECT COUNT(*) FROM unanswered_questions").await, 0);
    let stats = app.admin_json("/api/whatsapp/stats?days=7").await;
    assert_eq!((stats["messages"].clone(), stats["turnsAnswered"].clone()), (json!(2), json!(1)));
    assert_eq!((stats["tokens"].clone(), stats["deliveryRate"].clone()), (json!(150), json!(1.0)));

    // Nothing of the first turn is left to remember, and answering goes on.
    app.say("6281234567789", "wamid.log.3", "pertanyaan kedua").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2);
    let second = &app.llm_requests().await[1];
    assert_eq!(last_user_message(second), "pertanyaan kedua");
    assert_eq!(second["messages"].as_array().unwrap().len(), 2, "system and the turn, no history: {second}");
    wait_until(|| async { app.count("SELECT COUNT(*) FROM inbound_messages WHERE body IS NULL").await == 3 }).await;
}

async fn with_chat_logging_the_words_are_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    converse(&app).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE body IN ('halo', 'mau tanya')").await, 2);
    let turn = "SELECT COUNT(*) FROM turns WHERE user_text LIKE 'halo%mau tanya' AND reply_text = 'Halo kak!'";
    assert_eq!(app.count(turn).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE body = 'Halo kak!'").await, 1);
}
