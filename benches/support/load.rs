//! The load of the webhook ingest benches: bodies (signed, or form-encoded
//! for Fonnte) posted over keep-alive connections to any server, each
//! answer timed from outside.

use crate::support::percentile;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_ai_bridge::channels::cloud_api::sign;

/// Webhook bodies with the header that makes each acceptable, built up
/// front so the load generator spends its share of the cores on sending,
/// not on encoding and HMAC.
pub type Bodies = Arc<Vec<(String, (&'static str, String))>>;

/// Cloud API bodies with their `X-Hub-Signature-256`.
pub fn sign_all(secret: &str, bodies: impl Iterator<Item = String>) -> Bodies {
    Arc::new(
        bodies
            .map(|body| {
                let signature = sign(secret.as_bytes(), body.as_bytes());
                (body, ("x-hub-signature-256", signature))
            })
            .collect(),
    )
}

/// What one run of the load saw.
pub struct Outcome {
    pub elapsed: Duration,
    /// Of the requests answered 200, sorted.
    latencies: Vec<Duration>,
    /// Answered with another status, or not answered at all.
    pub errors: u64,
    /// Not sent because the time limit came first.
    pub unsent: u64,
}

impl Outcome {
    pub fn acknowledged(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        percentile(&self.latencies, p).as_secs_f64() * 1e3
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1e3)
    }
}

/// Posts every body once to `url` from `connections` clients of one
/// keep-alive connection each, until all are sent or `limit` has passed.
pub fn post_all(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    bodies: &Bodies,
    connections: usize,
    limit: Duration,
) -> Outcome {
    let total = bodies.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let (mut latencies, errors) = runtime.block_on(async {
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                let (next, url, bodies) = (Arc::clone(&next), url.to_owned(), Arc::clone(bodies));
                tokio::spawn(async move {
                    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    while Instant::now() < deadline {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let Some((body, (name, value))) = bodies.get(id as usize).cloned() else { break };
                        let sent = Instant::now();
                        let response = client.post(&url).header(name, value).body(body).send().await;
                        // Read to the end, or the connection is not kept.
                        let answered = match response {
                            Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        if answered {
                            latencies.push(sent.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let (mut all, mut errors) = (Vec::new(), 0);
        for worker in workers {
            let (latencies, failed) = worker.await.unwrap();
            all.extend(latencies);
            errors += failed;
        }
        (all, errors)
    });
    let elapsed = started.elapsed();
    latencies.sort();
    let unsent = total - latencies.len() as u64 - errors;
    Outcome { elapsed, latencies, errors, unsent }
}
