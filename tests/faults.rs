//! The promise under faults, with the real binary as a child process: every
//! acknowledged message is answered exactly once, and no part of a reply is
//! sent twice, while the process is killed with SIGKILL, Meta redelivers,
//! the Graph API or the LLM misbehave, or PostgreSQL drops connections.
//! Each scenario runs on SQLite and, with `TEST_DATABASE_URL`, on a fresh
//! PostgreSQL database. Random moments come from `FAULTS_SEED` (printed).

#[path = "faults/support.rs"]
mod support;

use rand::seq::SliceRandom;
use rand::Rng;
use std::time::{Duration, Instant};
use support::*;
use tokio::task::JoinSet;

/// Sends every (person, message) webhook at its moment after `start`,
/// each resent until acknowledged.
fn send_spread(scene: &Scene, messages: Vec<(usize, usize)>, over: Duration) -> JoinSet<usize> {
    let start = tokio::time::Instant::now();
    let step = over / messages.len() as u32;
    let mut senders = JoinSet::new();
    for (i, (person, message)) in messages.into_iter().enumerate() {
        let (client, port) = (scene.client.clone(), scene.port);
        senders.spawn(async move {
            tokio::time::sleep_until(start + step * i as u32).await;
            deliver(&client, port, &message_webhook(person, message)).await
        });
    }
    senders
}

fn everyone(people: usize, messages: usize) -> Vec<(usize, usize)> {
    (0..messages).flat_map(|m| (0..people).map(move |p| (p, m))).collect()
}

async fn kill9_under_load(postgres: bool) {
    const PEOPLE: usize = 40;
    let mut rng = seeded_rng("kill9_under_load");
    // A quarter of the answers are long enough to go out in two parts.
    let llm = FakeLlm::start((300, 800), 4, vec![]).await;
    let Some(mut scene) = Scene::new(postgres, llm, &[]).await else { return };
    scene.start().await;
    let moments = [rng.random_range(200..1500), rng.random_range(2000..4000), rng.random_range(4500..8000)];
    eprintln!("SIGKILL at {moments:?} ms after the first webhook");
    let began = Instant::now();
    let mut senders = send_spread(&scene, everyone(PEOPLE, 2), Duration::from_secs(3));
    let mut restarts = Vec::new();
    for moment in moments {
        tokio::time::sleep_until((began + Duration::from_millis(moment)).into()).await;
        scene.kill();
        eprintln!(
            "killed at {} ms: {} parts sent, {} LLM requests so far",
            began.elapsed().as_millis(),
            scene.graph.accepted_count(),
            scene.llm.requests()
        );
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        let restarted = Instant::now();
        let healthy = scene.start().await;
        restarts.push((restarted, healthy));
    }
    let mut resent = 0;
    while let Some(tries) = senders.join_next().await {
        resent += tries.unwrap() - 1;
    }
    eprintln!("webhooks resent after a refusal or a lost connection: {resent}");
    scene.wait_for_answers(PEOPLE, 2, Duration::from_secs(100)).await;
    let sent = scene.graph.accepted_at();
    for (i, (restarted, healthy)) in restarts.iter().enumerate() {
        let next = sent.iter().filter(|at| *at >= restarted).min().map(|at| at.duration_since(*restarted));
        eprintln!("restart {}: healthy after {healthy:?}, first part sent after {next:?}", i + 1);
    }
    let last = sent.iter().max().map(|at| at.duration_since(began));
    eprintln!("last part sent {last:?} after the first webhook");
    scene.kill();
    scene.assert_exactly_once(PEOPLE, 2).await;
}

async fn meta_redelivers(postgres: bool) {
    const PEOPLE: usize = 20;
    let mut rng = seeded_rng("meta_redelivers");
    let llm = FakeLlm::start((50, 200), 0, vec![]).await;
    let Some(mut scene) = Scene::new(postgres, llm, &[]).await else { return };
    scene.start().await;
    let mut twice: Vec<(usize, usize)> = everyone(PEOPLE, 2).into_iter().flat_map(|m| [m, m]).collect();
    twice.shuffle(&mut rng);
    let mut senders = send_spread(&scene, twice.clone(), Duration::from_secs(1));
    while senders.join_next().await.is_some() {}
    scene.wait_for_answers(PEOPLE, 2, Duration::from_secs(30)).await;
    let before = scene.graph.accepted_count();

    scene.kill();
    scene.start().await;
    twice.shuffle(&mut rng);
    let mut senders = send_spread(&scene, twice, Duration::from_secs(1));
    while senders.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scene.graph.accepted_count(), before, "a redelivery after the restart was answered again");
    scene.kill();
    scene.assert_exactly_once(PEOPLE, 2).await;
}

async fn graph_misbehaves(postgres: bool) {
    const PEOPLE: usize = 20;
    let llm = FakeLlm::start((0, 50), 0, vec![]).await;
    let Some(mut scene) = Scene::new(postgres, llm, &[]).await else { return };
    scene.start().await;
    let faults = vec![GraphFault::ServerError, GraphFault::Throttled, GraphFault::Hang, GraphFault::Garbage];
    scene.graph.misbehave(Duration::from_secs(5), faults);
    let mut senders = send_spread(&scene, everyone(PEOPLE, 1), Duration::from_millis(500));
    while senders.join_next().await.is_some() {}
    scene.wait_for_answers(PEOPLE, 1, Duration::from_secs(60)).await;
    let attempts = scene.graph.attempts();
    let most = attempts.values().copied().max().unwrap_or(0);
    eprintln!("attempts per person: {:?}", attempts.values().collect::<Vec<_>>());
    assert!(scene.alive_and_healthy().await);
    // Hung and garbled answers went out: their status webhooks settled them.
    let resolved = scene.metric("wa_sends_ambiguous_total", "resolution=\"status_seen\"").await;
    scene.kill();
    scene.assert_exactly_once(PEOPLE, 1).await;
    assert!(resolved >= 1.0, "no ambiguous send was settled by its status");
    // Backoff and channel-wide pauses: a handful of tries per message in
    // five seconds of faults, not a storm.
    assert!(most <= 6, "a message was tried {most} times");
}

async fn llm_misbehaves(postgres: bool) {
    const PEOPLE: usize = 12;
    let llm = FakeLlm::start((0, 0), 0, LLM_FAULTS.to_vec()).await;
    let env = [("LLM_TIMEOUT_SECONDS", "2"), ("LLM_MAX_RETRIES", "1"), ("LLM_MAX_BACKOFF_SECONDS", "1")];
    let Some(mut scene) = Scene::new(postgres, llm, &env).await else { return };
    scene.start().await;
    let mut senders = send_spread(&scene, everyone(PEOPLE, 1), Duration::from_millis(500));
    while senders.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(40);
    while scene.graph.accepted_count() < PEOPLE && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(scene.alive_and_healthy().await, "the server died:\n{}", scene.log(1));
    let errors = scene.metric("wa_llm_requests_total", "outcome=\"error\"").await;
    assert!(errors >= PEOPLE as f64, "LLM errors counted: {errors}");
    let replies = scene.graph.replies();
    for person in 0..PEOPLE {
        let got = replies.get(&phone(person)).cloned().unwrap_or_default();
        assert_eq!(got.len(), 1, "person {person} ({:?}) got {got:?}", LLM_FAULTS[person % LLM_FAULTS.len()]);
        assert!(got[0].starts_with("Mohon maaf kak"), "person {person} got {:?}", got[0]);
    }
    scene.kill();
    let db = &scene.database;
    assert_eq!(db.count("SELECT COUNT(*) FROM turns WHERE status = 'answering'").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM outbound_messages WHERE state <> 'sent'").await, 0);
}

async fn postgres_drops_connections() {
    const PEOPLE: usize = 30;
    let mut rng = seeded_rng("postgres_drops_connections");
    let llm = FakeLlm::start((100, 400), 4, vec![]).await;
    let Some(mut scene) = Scene::new(true, llm, &[]).await else { return };
    scene.start().await;
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
    let moments = [rng.random_range(200..1200), rng.random_range(1500..2800), rng.random_range(3000..4500)];
    eprintln!("connections terminated at {moments:?} ms after the first webhook");
    let began = Instant::now();
    let mut senders = send_spread(&scene, everyone(PEOPLE, 2), Duration::from_secs(3));
    for moment in moments {
        tokio::time::sleep_until((began + Duration::from_millis(moment)).into()).await;
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(scene.database.name())
        .fetch_all(&mut admin)
        .await
        .unwrap();
        eprintln!("terminated {} connections at {} ms", terminated.len(), began.elapsed().as_millis());
    }
    let mut resent = 0;
    while let Some(tries) = senders.join_next().await {
        resent += tries.unwrap() - 1;
    }
    eprintln!("webhooks refused and resent: {resent}");
    scene.wait_for_answers(PEOPLE, 2, Duration::from_secs(60)).await;
    assert!(scene.alive_and_healthy().await, "the server died:\n{}", scene.log(1));
    scene.kill();
    scene.assert_exactly_once(PEOPLE, 2).await;
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                super::$scenario(false).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                super::$scenario(true).await
            })*
        }
    };
}

on_both_backends!(kill9_under_load, meta_redelivers, graph_misbehaves, llm_misbehaves);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_terminated_mid_run() {
    postgres_drops_connections().await
}
