use crate::helpers::*;
use crate::on_both_backends;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(
    a_crash_in_the_quiet_window_still_gets_exactly_one_reply,
    a_crash_after_the_deadline_is_answered_at_start,
    two_replicas_on_one_database_answer_a_turn_once,
    a_crash_while_the_llm_thinks_is_answered_once_after_the_lease,
    a_graceful_stop_hands_unfinished_turns_to_the_next_start_at_once,
);

async fn a_crash_in_the_quiet_window_still_gets_exactly_one_reply(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("MESSAGE_BUFFER_SECONDS", "1.5")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281234567789", "wamid.crash.1", "halo").await;
    app.say("6281234567789", "wamid.crash.2", "mau tanya jam buka").await;
    app.crash();
    assert!(app.sent_texts().await.is_empty());
    app.restart().await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 1);
    assert_eq!(last_user_message(&llm[0]), "halo\nmau tanya jam buka");
}

async fn a_crash_after_the_deadline_is_answered_at_start(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("MESSAGE_BUFFER_SECONDS", "0.5")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281234567789", "wamid.late.1", "halo").await;
    app.crash();
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.restart().await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    // Redelivery of the same message after the restart changes nothing.
    app.say("6281234567789", "wamid.late.1", "halo").await;
    assert_eq!(app.wait_for_texts(1).await.len(), 1);
}

async fn two_replicas_on_one_database_answer_a_turn_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MESSAGE_BUFFER_SECONDS", "1")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let replica = Server::start(app.settings()).await;
    let replica_address = format!("http://127.0.0.1:{}", replica.port);
    // A load balancer spreads one person's burst over both replicas.
    app.say("6281234567789", "wamid.rep.1", "halo").await;
    app.say_at(&replica_address, "6281234567789", "wamid.rep.2", "mau tanya").await;
    app.say("6281234567789", "wamid.rep.3", "biaya daftar berapa?").await;
    // Meta redelivers one of them to the other replica.
    app.say_at(&replica_address, "6281234567789", "wamid.rep.3", "biaya daftar berapa?").await;
    let sent = app.wait_for_texts(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.sent_texts().await.len(), 1, "{sent:?}");
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 1);
    assert_eq!(last_user_message(&llm[0]), "halo\nmau tanya\nbiaya daftar berapa?");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns").await, 1);
}

async fn a_crash_while_the_llm_thinks_is_answered_once_after_the_lease(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("TURN_LEASE_SECONDS", "1"), ("LLM_TIMEOUT_SECONDS", "10")]).await;
    graph_accepts_sends(&app.graph).await;
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion("Halo kak!")).set_delay(Duration::from_secs(2)),
        )
        .mount(&app.llm)
        .await;
    app.say("6281234567789", "wamid.lease.1", "halo").await;
    wait_until(|| async { !app.llm_requests().await.is_empty() }).await;
    // The owner dies while the model is thinking: the turn is claimed, unanswered.
    app.crash();
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answering'").await, 1);
    app.restart().await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["text"]["body"], "Halo kak!");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns").await, 1, "the same turn was resumed, not a new one");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}

async fn a_graceful_stop_hands_unfinished_turns_to_the_next_start_at_once(backend: Backend) {
    // A ten-minute lease: without the hand-back the restart would wait it out.
    let mut app =
        TestApp::spawn_with(backend, &[("TURN_LEASE_SECONDS", "600"), ("SHUTDOWN_GRACE_SECONDS", "0.3")]).await;
    graph_accepts_sends(&app.graph).await;
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion("Terlambat.")).set_delay(Duration::from_secs(4)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.llm)
        .await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say("6281234567789", "wamid.grace.1", "halo").await;
    wait_until(|| async { !app.llm_requests().await.is_empty() }).await;
    app.stop_gracefully().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answering' AND lease_until = 0").await, 1);
    app.restart().await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["text"]["body"], "Halo kak!");
    assert_eq!(app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await, 1);
}
