//! The gateway under load, watched from outside: the send API's latency
//! (request to queued) at a steady 500 requests a second, then a campaign
//! of 10,000 recipients at 200 messages a second against a fake Graph API
//! that notes when each message arrived. Every recipient must get exactly
//! one message; the figures are the achieved rate, its spread over the
//! seconds of the run, and peak memory.
//!
//! `cargo bench --bench gateway` (about two minutes). Loopback only,
//! bounded in count and time.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use server::{runtime, settings, start_server, GRAPH_MESSAGES};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::percentile;
use wa_ai_bridge::domain::now_ms;

// Shared with the other benches; this one needs only part of each.
#[allow(dead_code)]
#[path = "support/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "support/mod.rs"]
mod support;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

const ADMIN: &str = "bench-admin-token-0123456789";
const TEMPLATES: &str = "/v23.0/556677889900/message_templates";
const API_RATE: u64 = 500;
const API_SECONDS: u64 = 10;
const RECIPIENTS: u64 = 10_000;
const CAMPAIGN_RATE: u64 = 200;
/// Campaign numbers start here, apart from the send API's.
const CAMPAIGN_FIRST: u64 = 10_000_000;
const LIMIT: Duration = Duration::from_secs(150);

/// Each recipient's arrivals at the fake Graph, in wall-clock ms.
#[derive(Default)]
struct Graph {
    sends: Mutex<HashMap<String, Vec<i64>>>,
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let graph = Arc::new(Graph::default());
    let fakes_rt = runtime(1, "fakes");
    let graph_url = fakes_rt.block_on(fake_graph(Arc::clone(&graph)));
    let settings = settings(
        dir.path(),
        &[
            ("WHATSAPP_GRAPH_BASE", graph_url),
            ("META_BUSINESS_ACCOUNT_ID", "556677889900".into()),
            ("ADMIN_API_TOKEN", ADMIN.into()),
            ("SEND_RATE_PER_SECOND", CAMPAIGN_RATE.to_string()),
            ("SEND_HOURS", "always".into()),
        ],
    );
    let (server_rt, port) = start_server(settings);
    let base = format!("http://127.0.0.1:{port}");
    let client_rt = runtime(1, "client");
    client_rt.block_on(wait_for_templates(&base));

    let latencies = client_rt.block_on(send_api(&base));
    let api_sends = API_RATE * API_SECONDS;
    wait_for(&graph, |sends| sends.len() as u64 >= api_sends);
    report_api(&latencies);

    support::reset_peak();
    let created = Instant::now();
    client_rt.block_on(create_campaign(&base));
    let creation = created.elapsed();
    let peak_rss = Arc::new(Mutex::new(0_u64));
    let sampler = {
        let peak_rss = Arc::clone(&peak_rss);
        let graph = Arc::clone(&graph);
        std::thread::spawn(move || {
            let until = Instant::now() + LIMIT;
            while campaign_sends(&graph.sends.lock().unwrap()) < RECIPIENTS && Instant::now() < until {
                let mut peak = peak_rss.lock().unwrap();
                *peak = (*peak).max(rss_kb());
                drop(peak);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    sampler.join().unwrap();
    // A second message to anyone would show in this time.
    std::thread::sleep(Duration::from_secs(3));
    let sends = graph.sends.lock().unwrap();
    report_campaign(&sends, creation, *peak_rss.lock().unwrap());
    server_rt.shutdown_background();
    fakes_rt.shutdown_background();
    client_rt.shutdown_background();
}

async fn fake_graph(graph: Arc<Graph>) -> String {
    let template = json!({ "data": [{
        "id": "1", "name": "tagihan", "language": "id", "status": "APPROVED", "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "Halo {{1}}, tagihan Anda Rp{{2}}." }],
    }] });
    let app = Router::new().route(TEMPLATES, get(move || async move { Json(template) })).route(
        GRAPH_MESSAGES,
        post(move |Json(body): Json<Value>| async move {
            let to = body["to"].as_str().unwrap_or_default().to_owned();
            graph.sends.lock().unwrap().entry(to).or_default().push(now_ms());
            Json(json!({ "messages": [{ "id": format!("wamid.{}", uuid::Uuid::new_v4().simple()) }] }))
        }),
    );
    server::serve(app).await
}

async fn wait_for_templates(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let list: Value =
            client.get(format!("{base}/api/templates")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        if list["templates"].as_array().is_some_and(|t| !t.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the template list was not read");
}

fn number(n: u64) -> String {
    format!("0812{n:08}")
}

/// `API_RATE` template sends a second for `API_SECONDS`, each started at
/// its planned moment whatever the earlier ones are doing (open loop).
async fn send_api(base: &str) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let url = format!("{base}/api/messages");
    let start = tokio::time::Instant::now();
    let every = Duration::from_secs(1) / API_RATE as u32;
    let mut requests = Vec::new();
    for n in 0..API_RATE * API_SECONDS {
        tokio::time::sleep_until(start + every * n as u32).await;
        let body = json!({
            "to": number(n), "idempotency_key": format!("bench-{n}"),
            "template": { "name": "tagihan", "body": [format!("Pelanggan {n}"), "150.000"] },
        });
        let request = client.post(&url).bearer_auth(ADMIN).json(&body).send();
        requests.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = request.await.expect("server answers");
            let latency = sent.elapsed();
            assert_eq!(response.status(), 202, "queued");
            latency
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        latencies.push(request.await.unwrap());
    }
    latencies
}

fn report_api(latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    println!(
        "send API: {} template sends at {API_RATE}/s: request to queued p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         (goal p50 < 5 ms, p99 < 20 ms)",
        sorted.len(),
        percentile(&sorted, 0.50).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
        sorted.last().unwrap().as_secs_f64() * 1e3,
    );
}

async fn create_campaign(base: &str) {
    let recipients: Vec<Value> = (CAMPAIGN_FIRST..CAMPAIGN_FIRST + RECIPIENTS)
        .map(|n| json!({ "to": number(n), "body": [format!("Pelanggan {n}"), n % 500_000] }))
        .collect();
    let body = json!({
        "name": "bench", "template": { "name": "tagihan" }, "recipients": recipients, "hours": "always",
        "rate_per_second": CAMPAIGN_RATE,
    });
    let response = reqwest::Client::new()
        .post(format!("{base}/api/campaigns"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
}

fn campaign_sends(sends: &HashMap<String, Vec<i64>>) -> u64 {
    sends.iter().filter(|(to, _)| is_campaign(to)).map(|(_, times)| times.len() as u64).sum()
}

fn is_campaign(to: &str) -> bool {
    to.strip_prefix("62812").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= CAMPAIGN_FIRST)
}

fn wait_for(graph: &Graph, done: impl Fn(&HashMap<String, Vec<i64>>) -> bool) {
    let until = Instant::now() + LIMIT;
    while !done(&graph.sends.lock().unwrap()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report_campaign(sends: &HashMap<String, Vec<i64>>, creation: Duration, peak_rss_kb: u64) {
    let campaign: Vec<(&String, &Vec<i64>)> = sends.iter().filter(|(to, _)| is_campaign(to)).collect();
    let twice = campaign.iter().filter(|(_, times)| times.len() > 1).count();
    let mut times: Vec<i64> = campaign.iter().flat_map(|(_, times)| times.iter().copied()).collect();
    times.sort_unstable();
    let (first, last) = (times[0], *times.last().unwrap());
    let rate = (times.len() - 1) as f64 / ((last - first) as f64 / 1000.0);
    // Whole seconds from the first arrival; the last, partial one is left out.
    let mut per_second: Vec<u64> = vec![0; ((last - first) / 1000 + 1) as usize];
    for at in &times {
        per_second[((at - first) / 1000) as usize] += 1;
    }
    per_second.pop();
    let mean = per_second.iter().sum::<u64>() as f64 / per_second.len() as f64;
    let (min, max) = (per_second.iter().min().unwrap(), per_second.iter().max().unwrap());
    let deviation =
        (per_second.iter().map(|n| (*n as f64 - mean).powi(2)).sum::<f64>() / per_second.len() as f64).sqrt();
    println!(
        "campaign: {RECIPIENTS} recipients at {CAMPAIGN_RATE}/s: created in {:.2} s; {} received, {} twice, {} missing; \
         achieved {rate:.1}/s ({:.3}× the rate) over {:.1} s",
        creation.as_secs_f64(),
        times.len(),
        twice,
        RECIPIENTS as usize - campaign.len(),
        rate / CAMPAIGN_RATE as f64,
        (last - first) as f64 / 1000.0,
    );
    println!(
        "          per second: mean {mean:.1}, min {min}, max {max}, standard deviation {deviation:.1} ({:.1} %)",
        deviation / mean * 100.0
    );
    println!(
        "          peak RSS {} MB (VmRSS sampled every 200 ms, whole process: server, fake Graph and client), \
         peak live heap {} MB",
        peak_rss_kb / 1024,
        support::peak_bytes() >> 20
    );
    assert_eq!((twice, campaign.len()), (0, RECIPIENTS as usize), "everyone exactly once");
}

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
