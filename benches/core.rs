//! Benchmarks for the core loop, on loopback only, bounded in count and time.
//! Run: `cargo bench --bench core` (results go to stdout; BENCHMARKS.md keeps the latest).

use serde_json::json;
use server::{runtime, settings, start_server, text_webhook, SECRET};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{live_bytes, percentile};
use wa_ai_bridge::buffer::{Debouncer, Hooks};
use wa_ai_bridge::config::Settings;

#[path = "support/load.rs"]
mod load;
#[path = "support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

const PHONES: u64 = 5000;

/// Signed webhook POSTs from `connections` concurrent keep-alive clients.
fn bench_ingest(connections: usize, requests: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = start_server(settings(dir.path(), &[]));
    let client_rt = runtime(2, "client");
    let signed = load::sign_all(
        SECRET,
        (0..requests).map(|id| text_webhook(id % PHONES, id, "halo kak, mau tanya syarat bikin KTP apa aja?")),
    );
    let url = format!("http://127.0.0.1:{port}/webhook/whatsapp");
    let outcome = load::post_all(&client_rt, &url, &signed, connections, Duration::from_secs(60));
    report_ingest("ingest  ", connections, "signed webhooks", &outcome);
    server.shutdown_background();
    client_rt.shutdown_background();
}

fn report_ingest(label: &str, connections: usize, what: &str, outcome: &load::Outcome) {
    println!(
        "{label} {connections} connections, {} {what} in {:.2} s: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        outcome.acknowledged(),
        outcome.elapsed.as_secs_f64(),
        outcome.per_second(),
        outcome.percentile_ms(0.50),
        outcome.percentile_ms(0.99),
        outcome.max_ms(),
    );
    assert_eq!((outcome.errors, outcome.unsent), (0, 0), "every webhook sent and answered 200");
}

/// Fonnte's webhook, form-encoded as its integrations post it, to
/// `/webhook/fonnte/{secret}`: the same load as [`bench_ingest`], so the two
/// rows compare the cost of reading forms against reading and verifying
/// signed JSON.
fn bench_ingest_fonnte(connections: usize, requests: u64) {
    let dir = tempfile::tempdir().unwrap();
    let secret = "bench-fonnte-secret-0123456789abcdef";
    let fonnte = [
        ("META_ACCESS_TOKEN", String::new()),
        ("FONNTE_TOKEN", "bench-device-token".to_owned()),
        ("FONNTE_WEBHOOK_SECRET", secret.to_owned()),
        ("FONNTE_API_URL", "http://127.0.0.1:9".to_owned()),
    ];
    let (server, port) = start_server(settings(dir.path(), &fonnte));
    let client_rt = runtime(2, "client");
    let form = || ("content-type", "application/x-www-form-urlencoded".to_owned());
    let bodies: load::Bodies = Arc::new(
        (0..requests)
            .map(|id| {
                let body = serde_urlencoded::to_string([
                    ("device", "6282227097005".to_owned()),
                    ("sender", server::phone(id % PHONES)),
                    ("message", "halo kak, mau tanya syarat bikin KTP apa aja?".to_owned()),
                    ("name", "Budi".to_owned()),
                    // No inboxid: the id is a hash of the fields, Fonnte's usual case.
                    ("timestamp", format!("{}", 1_733_000_000 + id)),
                ]);
                (body.unwrap(), form())
            })
            .collect(),
    );
    let url = format!("http://127.0.0.1:{port}/webhook/fonnte/{secret}");
    let outcome = load::post_all(&client_rt, &url, &bodies, connections, Duration::from_secs(60));
    report_ingest("fonnte  ", connections, "form webhooks", &outcome);
    server.shutdown_background();
    client_rt.shutdown_background();
}

/// Memory held per pending conversation: a window in the debouncer and its
/// entry in the clock's queue.
fn bench_pending_memory(conversations: i64) {
    let runtime = runtime(2, "memory");
    runtime.block_on(async {
        let hooks = Hooks { lead: Duration::from_secs(1), on_near: Arc::new(|_| {}), on_due: Arc::new(|_| {}) };
        let debouncer = Debouncer::new(Duration::from_secs(600), Duration::from_secs(600), hooks);
        debouncer.message_arrived(-1);
        tokio::task::yield_now().await;
        let before = live_bytes();
        for user_id in 0..conversations {
            debouncer.message_arrived(user_id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = live_bytes();
        println!(
            "memory   {conversations} pending conversations: {:.0} bytes each (heap, window + clock entry)",
            (after - before) as f64 / conversations as f64
        );
        assert_eq!(debouncer.len(), conversations as usize + 1);
    });
    runtime.shutdown_background();
}

fn main() {
    let filter = std::env::args().nth(1).filter(|arg| !arg.starts_with("--"));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    // Before any thread exists: this sets `SSL_CERT_FILE`.
    let tls = wanted("deadline").then(tls::BenchTls::trusted_by_this_process);
    // Memory first: the other benches leave runtimes freeing memory in
    // the background, which would disturb the live-bytes count.
    if wanted("memory") {
        bench_pending_memory(10_000);
    }
    if wanted("ingest") {
        bench_ingest(64, 60_000);
        bench_ingest_fonnte(64, 60_000);
    }
    if let Some(tls) = tls {
        // Memory and allocation counting are done; the deadline runs measure
        // the server as it runs in production.
        support::stop_counting();
        use deadline::Transport::{Http1, Https2};
        deadline::bench(1_000, Https2, false, &tls);
        deadline::bench(1_000, Https2, true, &tls);
        deadline::floor(1_000, Https2, &tls);
        deadline::bench(1_000, Http1, false, &tls);
        deadline::floor(1_000, Http1, &tls);
    }
}

/// Many people whose quiet windows end at the same moment: how long after
/// the deadline does each one's LLM request arrive at the fake OpenRouter?
mod deadline {
    use super::*;
    use axum::body::Bytes;
    use axum::routing::post;
    use axum::{Json, Router};
    use server::{listen, serve, GRAPH_MESSAGES};
    use std::sync::Mutex;
    use tls::BenchTls;
    use wa_ai_bridge::domain::now_ms;
    use wa_ai_bridge::domain::{InboundMessage, MessageContent, PersonRef, PhoneNumber, WaMessageId};
    use wa_ai_bridge::knowledge::KnowledgeBase;
    use wa_ai_bridge::llm::CONNECTIONS;
    use wa_ai_bridge::store::Store;

    const QUIET_MS: i64 = 2_000;
    /// The text of the conversations due a second before the others. Their
    /// requests open the connections a running server already has, and the
    /// fake leaves them out of the figures.
    const WARM_UP: &str = "pemanasan koneksi";

    /// How the fake OpenRouter is reached.
    #[derive(Clone, Copy)]
    pub enum Transport {
        /// HTTPS, HTTP/2 chosen by ALPN: every request shares the warm
        /// connection, as with the real OpenRouter.
        Https2,
        /// Plain HTTP/1.1: one new connection per request in flight.
        Http1,
    }

    impl Transport {
        fn name(self) -> &'static str {
            match self {
                Transport::Https2 => "https+h2",
                Transport::Http1 => "http/1.1",
            }
        }
    }

    /// Fake OpenRouter and Graph API on loopback, two hosts as in
    /// production; the LLM side records the wall-clock millisecond each
    /// request arrives.
    async fn fakes(arrivals: Arc<Mutex<Vec<i64>>>, transport: Transport, tls: &BenchTls) -> (String, String) {
        let llm = Router::new().route(
            "/api/v1/chat/completions",
            post(move |body: Bytes| {
                // The person's words close the request; looking only there
                // keeps the fake's share of the cores small.
                let tail = &body[body.len().saturating_sub(128)..];
                if !tail.windows(WARM_UP.len()).any(|window| window == WARM_UP.as_bytes()) {
                    arrivals.lock().unwrap().push(now_ms());
                }
                async {
                    // A real model takes seconds; answering at once would
                    // make replies compete with the requests being measured.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Json(json!({ "model": "m", "choices": [{ "message": { "role": "assistant", "content": "Halo kak!" } }] }))
                }
            }),
        );
        let graph = Router::new()
            .route(GRAPH_MESSAGES, post(|| async { Json(json!({ "messages": [{ "id": unique_wamid() }] })) }));
        let llm = match transport {
            Transport::Https2 => tls.serve(llm, listen()).await,
            Transport::Http1 => serve(llm).await,
        };
        (llm, serve(graph).await)
    }

    fn person(n: u64, text: &str) -> InboundMessage {
        InboundMessage {
            id: WaMessageId::parse(&format!("wamid.deadline.{n}")).unwrap(),
            from: PersonRef::new(Some(PhoneNumber::parse(&format!("62813{n:08}")).unwrap()), None).unwrap(),
            sent_at: 1_700_000_000,
            content: MessageContent::Text(text.into()),
            reply_to: None,
        }
    }

    /// Indexes the shipped documents into the server's data directory, so
    /// the server starts with them loaded and every person's question is
    /// searched as in production.
    async fn index_documents(settings: &Settings) {
        let knowledge = KnowledgeBase::open(&settings.knowledge).unwrap();
        knowledge.refresh().await.unwrap();
    }

    /// Stores `people` conversations whose windows all end at one moment,
    /// shortly after the server will have started, and one warm-up per LLM
    /// connection a second earlier; each person asks one of the retrieval
    /// evaluation's questions. Returns that moment.
    async fn seed(database_url: &str, people: u64) -> i64 {
        let store = Store::connect(database_url).await.unwrap();
        let questions = support::evaluation_questions();
        let mut messages: Vec<InboundMessage> =
            (0..people).map(|n| person(n, &questions[n as usize % questions.len()])).collect();
        let warm_ups = people..people + CONNECTIONS as u64;
        messages.extend(warm_ups.map(|n| person(n, WARM_UP)));
        store.ingest(messages, Vec::new(), now_ms()).await.unwrap();
        let arrived_at = now_ms() - QUIET_MS + 1_500;
        sqlx::query("UPDATE inbound_messages SET received_at = CASE WHEN body = $1 THEN $2 ELSE $3 END")
            .bind(WARM_UP)
            .bind(arrived_at - 1_000)
            .bind(arrived_at)
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        arrived_at + QUIET_MS
    }

    /// The milliseconds from `from` to each recorded arrival, once `count`
    /// have arrived (or 30 s have passed).
    fn lateness(arrivals: &Mutex<Vec<i64>>, from: i64, count: usize) -> Vec<Duration> {
        let until = Instant::now() + Duration::from_secs(30);
        while arrivals.lock().unwrap().len() < count && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut lateness: Vec<Duration> =
            arrivals.lock().unwrap().iter().map(|at| Duration::from_millis((at - from).max(0) as u64)).collect();
        lateness.sort();
        assert_eq!(lateness.len(), count, "every request reached the fake LLM");
        lateness
    }

    fn report(what: &str, lateness: &[Duration]) {
        println!(
            "{what}: p50 {} ms, p99 {} ms, max {} ms",
            percentile(lateness, 0.50).as_millis(),
            percentile(lateness, 0.99).as_millis(),
            lateness.last().unwrap().as_millis(),
        );
    }

    /// `documents`: the shipped documents are indexed and searched for
    /// every person, as in production; without them only the core loop is
    /// measured (the search finds an empty index).
    pub fn bench(people: u64, transport: Transport, documents: bool, tls: &BenchTls) {
        let dir = tempfile::tempdir().unwrap();
        let fakes_rt = runtime(1, "fakes");
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (llm, graph) = fakes_rt.block_on(fakes(Arc::clone(&arrivals), transport, tls));
        let mut extra = vec![
            ("MESSAGE_BUFFER_SECONDS", (QUIET_MS as f64 / 1000.0).to_string()),
            ("OPENROUTER_URL", format!("{llm}/api/v1/chat/completions")),
            ("WHATSAPP_GRAPH_BASE", graph),
        ];
        if documents {
            extra.push(("KNOWLEDGE_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge").to_string()));
        }
        let settings = settings(dir.path(), &extra);
        let seed_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        if documents {
            seed_rt.block_on(index_documents(&settings));
        }
        let deadline = seed_rt.block_on(seed(&settings.database_url, people));
        let (server, _port) = start_server(settings);
        let lateness = lateness(&arrivals, deadline, people as usize);
        let knowledge = if documents { "shipped documents" } else { "no documents" };
        report(
            &format!(
                "deadline {} {knowledge:17} {people} conversations due at once, LLM request after the deadline",
                transport.name()
            ),
            &lateness,
        );
        server.shutdown_background();
        fakes_rt.shutdown_background();
    }

    /// The same burst from bare HTTP clients with no server around them,
    /// over as many connections as the server uses: what the transport alone
    /// costs on this machine.
    pub fn floor(requests: u64, transport: Transport, tls: &BenchTls) {
        let fakes_rt = runtime(1, "fakes");
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (llm, _graph) = fakes_rt.block_on(fakes(Arc::clone(&arrivals), transport, tls));
        let url = format!("{llm}/api/v1/chat/completions");
        let client_rt = runtime(2, "client");
        let clients: Vec<reqwest::Client> = (0..CONNECTIONS).map(|_| reqwest::Client::new()).collect();
        let start = client_rt.block_on(async {
            for client in &clients {
                tokio::spawn(client.post(&url).body(WARM_UP).send());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let start = now_ms();
            for client in clients.iter().cycle().take(requests as usize) {
                tokio::spawn(client.post(&url).body("{}").send());
            }
            start
        });
        let lateness = lateness(&arrivals, start, requests as usize);
        let what =
            format!("floor    {} {:17} {requests} requests from bare clients, after sending", transport.name(), "");
        report(&what, &lateness);
        client_rt.shutdown_background();
        fakes_rt.shutdown_background();
    }
}

/// A message id no other send of this run gets, as WhatsApp's are: the
/// outbox records each send by its id.
fn unique_wamid() -> String {
    static SENT: AtomicU64 = AtomicU64::new(0);
    format!("wamid.out.{}", SENT.fetch_add(1, Ordering::Relaxed))
}
