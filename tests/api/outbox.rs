//! The outbox from outside: outages outlast the old retry budget, a send
//! that got no answer is not repeated blindly, dead messages wait for an
//! operator, a failed part holds the rest, and an attempt that lost its
//! lease sends nothing.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PHONE: &str = "6281234567789";

on_both_backends!(
    an_outage_longer_than_the_old_retries_still_delivers_once,
    a_send_that_got_no_answer_is_not_repeated_when_its_status_arrives,
    a_send_that_got_no_answer_and_no_status_is_sent_again_after_the_wait,
    a_message_that_keeps_failing_dies_and_an_operator_retry_sends_it_once,
    a_part_refused_for_good_holds_the_rest_of_the_reply_back,
    an_operator_follows_a_retried_message_until_it_is_sent,
    an_attempt_that_lost_its_lease_sends_nothing,
);

/// Graph refuses the next `times` text sends with 503 and `Retry-After: 1`.
async fn graph_down_for(graph: &MockServer, times: u64) {
    graph_refuses_for(graph, 503, 2, 1, times).await;
}

/// Graph refuses the next `times` text sends with `status`, Graph error
/// `code` and `Retry-After: retry_after` seconds.
async fn graph_refuses_for(graph: &MockServer, status: u16, code: i64, retry_after: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_partial_json(json!({ "type": "text" })))
        .respond_with(
            ResponseTemplate::new(status)
                .insert_header("retry-after", retry_after.to_string().as_str())
                .set_body_json(json!({ "error": { "code": code, "message": format!("Graph error {code}") } })),
        )
        .up_to_n_times(times)
        .with_priority(1)
        .mount(graph)
        .await;
}

/// Graph accepts the next text send with `id`, but only after `delay`.
async fn graph_answers_late(graph: &MockServer, id: &str, delay: Duration) {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_partial_json(json!({ "type": "text" })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": id }] })).set_delay(delay))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(graph)
        .await;
}

fn bodies(sent: &[Value]) -> Vec<&str> {
    sent.iter().map(|s| s["text"]["body"].as_str().unwrap_or_default()).collect()
}

async fn an_outage_longer_than_the_old_retries_still_delivers_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    // Seven refusals: before the outbox, the fifth was the last attempt and
    // the reply was lost for good.
    graph_down_for(&app.graph, 7).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PHONE, "wamid.outage.1", "halo").await;
    let sent = wait_longer_for_texts(&app, 8).await;
    assert_eq!(sent.len(), 8, "seven refused attempts, one accepted, none after");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent' AND attempts = 8").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

async fn a_send_that_got_no_answer_is_not_repeated_when_its_status_arrives(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("WHATSAPP_SEND_TIMEOUT_SECONDS", "1"), ("SEND_AMBIGUOUS_WAIT_SECONDS", "3")])
            .await;
    llm_answers(&app.llm, "Halo kak!").await;
    // Graph takes the message but answers after our time limit.
    graph_answers_late(&app.graph, "wamid.slow.out", Duration::from_secs(2)).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PHONE, "wamid.slow.in", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE ambiguous").await == 1 }).await;
    // WhatsApp says it went out: the message is ours after all.
    let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let status = status_webhook("wamid.slow.out", "sent", None).replace("1700000100", &now_secs.to_string());
    assert_eq!(app.post_webhook(&status).await.status(), 200);
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent'").await == 1 }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "sent once, never again");
    let sql = "SELECT COUNT(*) FROM outbound_messages WHERE wa_message_id = 'wamid.slow.out' AND status = 'sent'";
    assert_eq!(app.count(sql).await, 1, "the status found its message");
    assert!(app.metric("wa_sends_ambiguous_total{resolution=\"status_seen\"}").await >= 1.0);
}

async fn a_send_that_got_no_answer_and_no_status_is_sent_again_after_the_wait(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("WHATSAPP_SEND_TIMEOUT_SECONDS", "1"), ("SEND_AMBIGUOUS_WAIT_SECONDS", "2")])
            .await;
    llm_answers(&app.llm, "Halo kak!").await;
    graph_answers_late(&app.graph, "wamid.lost.out", Duration::from_secs(3)).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PHONE, "wamid.lost.in", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE ambiguous").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "not resent before the wait is over");
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2, "resent once after the wait");
    let sql = "SELECT COUNT(*) FROM outbound_messages WHERE state = 'sent' AND attempts = 2 AND NOT ambiguous";
    assert_eq!(app.count(sql).await, 1);
    assert!(app.metric("wa_sends_ambiguous_total{resolution=\"resent\"}").await >= 1.0);
}

async fn a_message_that_keeps_failing_dies_and_an_operator_retry_sends_it_once(backend: Backend) {
    // 0.001 hours: 3.6 seconds of retries.
    let app = TestApp::spawn_with(backend, &[("SEND_RETRY_HOURS", "0.001")]).await;
    llm_answers(&app.llm, "Halo kak!").await;
    graph_down_for(&app.graph, 1000).await;
    app.say(PHONE, "wamid.dead.in", "halo").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE state = 'dead'").await == 1 }).await;
    let attempts = app.sent_texts().await.len();
    assert!((2..=6).contains(&attempts), "retried about once a second until it died: {attempts}");
    assert_eq!(app.get("/api/admin/outbox", Some("wrong-token")).await.status(), 401);
    let listed = app.admin_json("/api/admin/outbox").await;
    let dead = &listed["messages"][0];
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["text"], "Halo kak!");
    assert_eq!(dead["person"], "6281******789", "masked even for operators");
    assert!(dead["error"].as_str().unwrap().contains("SEND_RETRY_HOURS"), "{dead}");
    let id = dead["id"].as_i64().unwrap();

    app.graph.reset().await;
    graph_accepts_sends(&app.graph).await;
    let retry = |id: i64| {
        let request = app.client.post(format!("{}/api/admin/outbox/{id}/retry", app.address));
        async move { request.bearer_auth(ADMIN_TOKEN).send().await.unwrap() }
    };
    let first: Value = retry(id).await.json().await.unwrap();
    assert_eq!(first["requeued"], true);
    let sent = app.wait_for_texts(1).await;
    assert_eq!(bodies(&sent), ["Halo kak!"]);
    let again: Value = retry(id).await.json().await.unwrap();
    assert_eq!((again["requeued"].clone(), again["state"].clone()), (json!(false), json!("sent")));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "a second press sends nothing");
    assert_eq!(retry(id + 1000).await.status(), 404);
    let unauthorised = app.client.post(format!("{}/api/admin/outbox/{id}/retry", app.address)).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

async fn a_part_refused_for_good_holds_the_rest_of_the_reply_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let paragraphs: Vec<String> =
        (1..=34).map(|n| format!("Paragraf {n}. {}", "Ini kalimat yang cukup panjang. ".repeat(5).trim())).collect();
    llm_answers(&app.llm, &paragraphs.join("\n\n")).await;
    graph_refuses_texts(&app.graph, 400, 131026, Some(1)).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PHONE, "wamid.held.in", "jelaskan semuanya").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'failed'").await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "the second part never went out alone");
    let held = "SELECT COUNT(*) FROM outbound_messages WHERE state = 'failed_permanent' AND part_index = 1 \
                AND error_title LIKE 'held back%'";
    assert_eq!(app.count(held).await, 1);
    let listed = app.admin_json("/api/admin/outbox").await;
    let first = listed["messages"].as_array().unwrap().iter().find(|m| m["errorCode"] == 131026).unwrap();
    let request = app.client.post(format!("{}/api/admin/outbox/{}/retry", app.address, first["id"]));
    assert_eq!(request.bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), 200);
    let sent = app.wait_for_texts(3).await;
    let sent = bodies(&sent);
    assert_eq!(sent.len(), 3);
    assert!(sent[1].starts_with("Paragraf 1.") && sent[2].ends_with(paragraphs.last().unwrap().as_str()), "in order");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

async fn an_operator_follows_a_retried_message_until_it_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Halo kak!").await;
    graph_refuses_texts(&app.graph, 400, 131026, Some(1)).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PHONE, "wamid.follow.in", "halo").await;
    let failed = "SELECT COUNT(*) FROM outbound_messages WHERE state = 'failed_permanent'";
    wait_until(|| async { app.count(failed).await == 1 }).await;
    let id = app.admin_json("/api/admin/outbox").await["messages"][0]["id"].as_i64().unwrap();
    let path = format!("/api/admin/outbox/{id}");
    let before = app.admin_json(&path).await;
    assert_eq!((before["state"].clone(), before["errorCode"].clone()), (json!("failed_permanent"), json!(131026)));
    assert_eq!(before["person"], "6281******789", "masked even for operators");

    let request = app.client.post(format!("{}{path}/retry", app.address));
    assert_eq!(request.bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), 200);
    wait_until(|| async { app.admin_json(&path).await["state"] == "sent" }).await;
    assert_eq!(bodies(&app.sent_texts().await), ["Halo kak!", "Halo kak!"], "refused once, then sent once");
    assert_eq!(app.get(&path, Some("wrong-token")).await.status(), 401);
    assert_eq!(app.get(&format!("/api/admin/outbox/{}", id + 1000), Some(ADMIN_TOKEN)).await.status(), 404);
}

async fn an_attempt_that_lost_its_lease_sends_nothing(backend: Backend) {
    // Recovery looks every half second; the model takes four, and the first
    // send is throttled for three more: long enough for a second attempt at
    // the turn, had one begun, to reach its own send meanwhile.
    let app = TestApp::spawn_with(backend, &[("TURN_LEASE_SECONDS", "1.5"), ("LLM_TIMEOUT_SECONDS", "10")]).await;
    graph_refuses_for(&app.graph, 429, 130429, 3, 1).await;
    graph_accepts_sends(&app.graph).await;
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion("Halo kak!")).set_delay(Duration::from_secs(4)),
        )
        .mount(&app.llm)
        .await;
    app.say(PHONE, "wamid.fence.in", "halo").await;
    wait_until(|| async { !app.llm_requests().await.is_empty() }).await;
    // A database that stalls past the lease, as seen by the recovery scan:
    // the lease keeps lapsing while the owner's answer is on its way.
    let pool = app.pool().await;
    for _ in 0..30 {
        sqlx::query("UPDATE turns SET lease_until = 0 WHERE status = 'answering'").execute(&pool).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
    let sent = wait_longer_for_texts(&app, 2).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(bodies(&sent), ["Halo kak!", "Halo kak!"], "the throttled attempt and its retry");
    assert_eq!(app.sent_texts().await.len(), 2, "one reply, however many attempts began");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

/// Like `TestApp::wait_for_texts`, for sends that wait out retries.
async fn wait_longer_for_texts(app: &TestApp, n: usize) -> Vec<Value> {
    let enough = async {
        while app.sent_texts().await.len() < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), enough).await.expect("texts sent within 30 s");
    app.wait_for_texts(n).await
}
