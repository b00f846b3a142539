//! Benchmarks for the core loop, on loopback only, bounded in count and time.
//! Run: `cargo bench --bench core` (results go to stdout; README keeps the latest).

use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{live_bytes, percentile};
use wa_ai_bridge::buffer::Debouncer;
use wa_ai_bridge::config::Settings;
use wa_ai_bridge::startup::Application;
use wa_ai_bridge::webhook::sign;

#[path = "support/mod.rs"]
mod support;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

const SECRET: &str = "bench-secret";
const PHONES: u64 = 5000;

fn settings(data_dir: &std::path::Path, extra: &[(&str, String)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("PORT", "0".to_string()),
        ("DATA_DIR", data_dir.display().to_string()),
        // No documents: the knowledge base has its own benchmarks.
        ("KNOWLEDGE_DIR", data_dir.join("no-documents").display().to_string()),
        ("PROMPTS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/prompts").to_string()),
        ("META_APP_SECRET", SECRET.to_string()),
        ("META_ACCESS_TOKEN", "token".to_string()),
        ("META_PHONE_NUMBER_ID", "1122334455667".to_string()),
        ("OPENROUTER_API_KEY", "key".to_string()),
        ("MESSAGE_BUFFER_SECONDS", "600".to_string()),
        ("MESSAGE_BUFFER_MAX_SECONDS", "600".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Settings::from_lookup(|key| env.get(key).cloned()).expect("bench settings")
}

/// Runs the server on its own runtime, as a separate process would.
fn start_server(settings: Settings) -> (tokio::runtime::Runtime, u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(Application::build(settings)).expect("server starts");
    let port = app.port();
    runtime.spawn(app.run_until(std::future::pending()));
    (runtime, port)
}

fn text_webhook(phone: u64, id: u64) -> String {
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550001111", "phone_number_id": "1122334455667" },
        "contacts": [{ "profile": { "name": "Budi" }, "wa_id": format!("62812{phone:08}") }],
        "messages": [{ "from": format!("62812{phone:08}"), "id": format!("wamid.bench.{id}"), "timestamp": "1700000000",
            "type": "text", "text": { "body": "halo kak, mau tanya syarat bikin KTP apa aja?" } }] } }] }] })
    .to_string()
}

/// Signed webhook POSTs from `connections` concurrent keep-alive clients.
fn bench_ingest(connections: usize, requests: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = start_server(settings(dir.path(), &[]));
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Bodies are built and signed up front so the load generator spends
    // its share of the two cores on sending, not on JSON and HMAC.
    let signed: Arc<Vec<(String, String)>> = Arc::new(
        (0..requests)
            .map(|id| {
                let body = text_webhook(id % PHONES, id);
                let signature = sign(SECRET.as_bytes(), body.as_bytes());
                (body, signature)
            })
            .collect(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let url = format!("http://127.0.0.1:{port}/webhook/whatsapp");
    let started = Instant::now();
    let latencies: Vec<Duration> = client_rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let workers = (0..connections).map(|_| {
            let (next, url, signed) = (Arc::clone(&next), url.clone(), Arc::clone(&signed));
            tokio::spawn(async move {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
                let mut latencies = Vec::new();
                loop {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= requests || Instant::now() > deadline {
                        return latencies;
                    }
                    let (body, signature) = signed[id as usize].clone();
                    let sent = Instant::now();
                    let response = client.post(&url).header("x-hub-signature-256", signature).body(body).send().await;
                    assert_eq!(response.expect("server answers").status(), 200);
                    latencies.push(sent.elapsed());
                }
            })
        });
        let mut all = Vec::new();
        for worker in workers.collect::<Vec<_>>() {
            all.extend(worker.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed();
    let mut sorted = latencies;
    sorted.sort();
    println!(
        "ingest   {connections} connections, {} signed webhooks in {:.2} s: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        sorted.len(),
        elapsed.as_secs_f64(),
        sorted.len() as f64 / elapsed.as_secs_f64(),
        percentile(&sorted, 0.50).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
    );
    server.shutdown_background();
    client_rt.shutdown_background();
}

/// Memory held per pending conversation: a window in the debouncer and
/// its sleeping timer task.
fn bench_pending_memory(conversations: i64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let debouncer = Debouncer::new(Duration::from_secs(600), Duration::from_secs(600), Arc::new(|_| {}));
        debouncer.message_arrived(-1);
        tokio::task::yield_now().await;
        let before = live_bytes();
        for user_id in 0..conversations {
            debouncer.message_arrived(user_id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = live_bytes();
        println!(
            "memory   {conversations} pending conversations: {:.0} bytes each (heap, window + timer task)",
            (after - before) as f64 / conversations as f64
        );
        assert_eq!(debouncer.len(), conversations as usize + 1);
    });
    runtime.shutdown_background();
}

fn main() {
    let filter = std::env::args().nth(1).filter(|arg| !arg.starts_with("--"));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    // Memory first: the other benches leave runtimes freeing memory in
    // the background, which would disturb the live-bytes count.
    if wanted("memory") {
        bench_pending_memory(10_000);
    }
    if wanted("ingest") {
        bench_ingest(64, 60_000);
    }
    if wanted("deadline") {
        deadline::bench(1_000);
    }
}

/// Many people whose quiet windows end at the same moment: how long after
/// the deadline does each one's LLM request leave?
mod deadline {
    use super::*;
    use axum::routing::post;
    use axum::{Json, Router};
    use std::sync::Mutex;
    use wa_ai_bridge::domain::{InboundMessage, MessageContent, PersonRef, PhoneNumber, WaMessageId};
    use wa_ai_bridge::store::{now_ms, Store};

    const QUIET_MS: i64 = 2_000;

    /// Fake OpenRouter and Graph API on loopback, two hosts as in
    /// production; the LLM side records the wall-clock millisecond each
    /// request arrives.
    async fn fakes(arrivals: Arc<Mutex<Vec<i64>>>) -> (String, String) {
        let llm = Router::new().route(
                "/api/v1/chat/completions",
                post(move || {
                    arrivals.lock().unwrap().push(now_ms());
                    async {
                        // A real model takes seconds; answering at once would
                        // make replies compete with the claims being measured.
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        Json(json!({ "model": "m", "choices": [{ "message": { "role": "assistant", "content": "Halo kak!" } }] }))
                    }
                }),
        );
        let graph = Router::new().route(
            "/v23.0/1122334455667/messages",
            post(|| async { Json(json!({ "messages": [{ "id": "wamid.out" }] })) }),
        );
        (serve(llm).await, serve(graph).await)
    }

    async fn serve(app: Router) -> String {
        // A backlog above the burst: tokio's default of 1024 can drop a SYN
        // of a thousand simultaneous connects, adding a 1 s retransmit.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    pub fn bench(people: u64) {
        let dir = tempfile::tempdir().unwrap();
        let fakes_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (llm, graph) = fakes_rt.block_on(fakes(Arc::clone(&arrivals)));
        let settings = settings(
            dir.path(),
            &[
                ("MESSAGE_BUFFER_SECONDS", (QUIET_MS as f64 / 1000.0).to_string()),
                ("OPENROUTER_URL", format!("{llm}/api/v1/chat/completions")),
                ("WHATSAPP_GRAPH_BASE", graph),
            ],
        );
        let seed_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let deadline = seed_rt.block_on(async {
            let store = Store::connect(&settings.database_url).await.unwrap();
            let messages: Vec<InboundMessage> = (0..people)
                .map(|n| InboundMessage {
                    id: WaMessageId::parse(&format!("wamid.deadline.{n}")).unwrap(),
                    from: PersonRef::new(Some(PhoneNumber::parse(&format!("62813{n:08}")).unwrap()), None).unwrap(),
                    sent_at: 1_700_000_000,
                    content: MessageContent::Text("jam buka kapan?".into()),
                })
                .collect();
            store.ingest(messages, Vec::new(), now_ms()).await.unwrap();
            // Every message arrived at the same millisecond, so every window
            // ends at one deadline, shortly after the server starts.
            let arrived_at = now_ms() - QUIET_MS + 1_500;
            sqlx::query("UPDATE inbound_messages SET received_at = $1")
                .bind(arrived_at)
                .execute(store.pool())
                .await
                .unwrap();
            store.close().await;
            arrived_at + QUIET_MS
        });
        let (server, _port) = start_server(settings);
        let until = Instant::now() + Duration::from_secs(30);
        while arrivals.lock().unwrap().len() < people as usize && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut lateness: Vec<Duration> =
            arrivals.lock().unwrap().iter().map(|at| Duration::from_millis((at - deadline).max(0) as u64)).collect();
        lateness.sort();
        assert_eq!(lateness.len(), people as usize, "every person reached the LLM");
        println!(
            "deadline {people} conversations due at once: LLM request after the deadline p50 {} ms, p99 {} ms, max {} ms",
            percentile(&lateness, 0.50).as_millis(),
            percentile(&lateness, 0.99).as_millis(),
            lateness.last().unwrap().as_millis(),
        );
        server.shutdown_background();
        fakes_rt.shutdown_background();
    }
}
