//! Webhook ingest against a peer, measured in the same run: the same signed
//! webhooks, over the same keep-alive connections, to this server and to a
//! pywa + FastAPI app under uvicorn (`benches/peer/pywa_app.py`) that also
//! stores each message in SQLite before it answers 200, and to the same app
//! storing nothing. The two sides take turns (ours, a peer, ours, the next
//! peer, …, twice over), so drift on the machine shows in our rows, and each
//! peer row is compared with our run just before it. After each run the
//! stored rows are counted: every acknowledged webhook must be stored.
//!
//! `cargo bench --bench peer`, with the peer's packages from
//! `benches/peer/requirements.txt` importable by `python3`, or by the Python
//! that `PEER_PYTHON` names. Without them only our server is measured.
//! Loopback only, bounded in count and time.

use serde_json::Value;
use server::{phone, runtime, settings, start_server, SECRET};
use sqlx::Connection;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/load.rs"]
mod load;
// Shared with the benches that run fakes and ask questions, which this
// one does not.
#[allow(dead_code)]
#[path = "support/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "support/mod.rs"]
mod support;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

const REQUESTS: u64 = 30_000;
const PHONES: u64 = 5_000;
const CONNECTIONS: usize = 64;
const ROUNDS: usize = 2;
/// A run stops sending after this long; what was not sent is reported.
const RUN_LIMIT: Duration = Duration::from_secs(90);
const PHONE_NUMBER_ID: &str = "1122334455667";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/message__text.json");
const PEER_APP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer");
const INSTALL: &str = "python3 -m venv .venv-peer && .venv-peer/bin/pip install -r benches/peer/requirements.txt, \
                       then PEER_PYTHON=.venv-peer/bin/python3 cargo bench --bench peer";

#[derive(Clone, Copy)]
enum Side {
    Ours,
    Pywa { workers: usize, storing: bool },
}

impl Side {
    fn name(self) -> String {
        match self {
            Side::Ours => "ours: axum, SQLite".into(),
            Side::Pywa { workers, storing } => {
                let storage = if storing { "SQLite" } else { "no storage" };
                let workers = if workers == 1 { "1 worker".into() } else { format!("{workers} workers") };
                format!("pywa + FastAPI, {storage}, {workers}")
            }
        }
    }
}

struct Row {
    round: usize,
    side: Side,
    outcome: load::Outcome,
    /// Rows in the side's database after the run; `None` when it stores nothing.
    stored: Option<u64>,
    /// Our run just before, for a peer's row.
    ours: Option<(f64, f64)>,
}

fn main() {
    // Timing only: the counting allocator's atomics would slow our side.
    support::stop_counting();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let python = std::env::var("PEER_PYTHON").unwrap_or_else(|_| "python3".into());
    let peers: Vec<Side> = match peer_versions(&python) {
        Ok(versions) => {
            println!("peer     {versions}");
            let mut workers = vec![1];
            if cores > 1 {
                workers.push(cores);
            }
            [true, false]
                .into_iter()
                .flat_map(|storing| workers.iter().map(move |&workers| Side::Pywa { workers, storing }))
                .collect()
        }
        Err(problem) => {
            println!("peer     not measured: {problem}\n         to install it: {INSTALL}");
            Vec::new()
        }
    };
    println!(
        "peer     {REQUESTS} signed webhooks (message__text.json, unique ids, {PHONES} phones), \
         {CONNECTIONS} keep-alive connections, loopback, {cores} cores; load average before: {}",
        load_average()
    );
    let signed = load::sign_all(SECRET, bodies());
    let client_rt = runtime(2, "client");
    let mut rows = Vec::new();
    for round in 1..=ROUNDS {
        let pairs: Vec<Option<Side>> =
            if peers.is_empty() { vec![None] } else { peers.iter().copied().map(Some).collect() };
        for peer in pairs {
            let (outcome, stored) = run(Side::Ours, &python, &signed, &client_rt);
            let ours = (outcome.per_second(), outcome.percentile_ms(0.99));
            rows.push(Row { round, side: Side::Ours, outcome, stored, ours: None });
            if let Some(peer) = peer {
                let (outcome, stored) = run(peer, &python, &signed, &client_rt);
                rows.push(Row { round, side: peer, outcome, stored, ours: Some(ours) });
            }
        }
    }
    println!("peer     load average after: {}", load_average());
    report(&rows);
    for row in &rows {
        if let Some(stored) = row.stored {
            assert_eq!(stored, row.outcome.acknowledged(), "{}: every acknowledged webhook stored", row.side.name());
        }
    }
    client_rt.shutdown_background();
}

/// The fixture as Meta sends it, once per request with its own message id,
/// from one of `PHONES` people (each with a business-scoped id of their own).
fn bodies() -> impl Iterator<Item = String> {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("JSON");
    (0..REQUESTS).map(move |n| {
        let person = n % PHONES;
        let mut body = fixture.clone();
        let value = &mut body["entry"][0]["changes"][0]["value"];
        value["contacts"][0]["wa_id"] = phone(person).into();
        value["contacts"][0]["user_id"] = format!("US.{}", 1_000_000_000 + person).into();
        value["messages"][0]["from"] = phone(person).into();
        value["messages"][0]["id"] = format!("wamid.peer.{n}").into();
        body.to_string()
    })
}

/// One run of the whole load against `side`, started afresh on an empty
/// database; returns what the load saw and how many messages were stored.
fn run(
    side: Side,
    python: &str,
    signed: &load::Bodies,
    client_rt: &tokio::runtime::Runtime,
) -> (load::Outcome, Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    match side {
        Side::Ours => {
            let settings = settings(dir.path(), &[]);
            let database = settings.database_url.clone();
            let (server, port) = start_server(settings);
            let url = format!("http://127.0.0.1:{port}/webhook/whatsapp");
            let outcome = load::post_all(client_rt, &url, signed, CONNECTIONS, RUN_LIMIT);
            let stored = client_rt.block_on(count_rows(&database, "inbound_messages"));
            server.shutdown_background();
            (outcome, Some(stored))
        }
        Side::Pywa { workers, storing } => {
            let database = storing.then(|| dir.path().join("peer.db"));
            let peer = Peer::start(python, workers, database.as_deref(), dir.path(), client_rt);
            let outcome = load::post_all(client_rt, &peer.webhook_url(), signed, CONNECTIONS, RUN_LIMIT);
            drop(peer);
            let stored = database
                .map(|path| client_rt.block_on(count_rows(&format!("sqlite://{}", path.display()), "messages")));
            (outcome, stored)
        }
    }
}

async fn count_rows(database_url: &str, table: &str) -> u64 {
    let mut connection = sqlx::SqliteConnection::connect(database_url).await.expect("database opens");
    let count: i64 =
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut connection).await.expect("count");
    count as u64
}

/// The peer's packages and their versions, or why they cannot be imported.
fn peer_versions(python: &str) -> Result<String, String> {
    let probe = "import sys, pywa, fastapi, uvicorn, importlib.util as u; \
                 print(f'Python {sys.version.split()[0]}, pywa {pywa.__version__}, FastAPI {fastapi.__version__}, \
                 uvicorn {uvicorn.__version__}', *(m for m in ('uvloop', 'httptools') if u.find_spec(m)), sep=', ')";
    let output = Command::new(python)
        .args(["-c", probe])
        .output()
        .map_err(|error| format!("{python} does not run ({error})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{python} cannot import pywa, fastapi and uvicorn ({})",
            stderr.lines().last().unwrap_or("")
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The pywa app under uvicorn, in a process group of its own so that its
/// workers end with it.
struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    fn start(
        python: &str,
        workers: usize,
        database: Option<&Path>,
        dir: &Path,
        client_rt: &tokio::runtime::Runtime,
    ) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let log = dir.join("peer.log");
        let mut command = Command::new(python);
        command
            .args(["-m", "uvicorn", "pywa_app:app", "--app-dir", PEER_APP_DIR, "--host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--workers", &workers.to_string()])
            .args(["--no-access-log", "--log-level", "warning"])
            .env("PEER_APP_SECRET", SECRET)
            .env("PEER_PHONE_ID", PHONE_NUMBER_ID)
            .env_remove("PEER_DATABASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0);
        if let Some(database) = database {
            command.env("PEER_DATABASE", database);
        }
        let mut peer = Peer { child: command.spawn().expect("uvicorn starts"), port };
        peer.wait_ready(workers, &log, client_rt);
        peer
    }

    fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/webhook/whatsapp", self.port)
    }

    /// Until every worker has answered on a connection of its own, so the
    /// load's connections can land on any of them.
    fn wait_ready(&mut self, workers: usize, log: &Path, client_rt: &tokio::runtime::Runtime) {
        let url = format!("http://127.0.0.1:{}/ready", self.port);
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let mut seen = HashSet::new();
        while seen.len() < workers {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("the peer exited ({status}) before it was ready:\n{log}");
            }
            assert!(Instant::now() < until, "the peer's {workers} workers were not all ready within 30 s");
            let answer = client_rt.block_on(async { client.get(&url).send().await?.text().await });
            match answer {
                Ok(pid) => {
                    seen.insert(pid);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for Peer {
    /// SIGTERM to the group, uvicorn's graceful stop; SIGKILL if it lingers.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill").args([name, "--", &group]).stderr(Stdio::null()).status();
        };
        signal("-TERM");
        let until = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("-KILL");
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|avg| avg.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A Markdown table, as BENCHMARKS.md keeps it.
fn report(rows: &[Row]) {
    println!("\n| round | server | req/s | p50 ms | p99 ms | max ms | errors | stored | ours ÷ this, req/s | this ÷ ours, p99 |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let outcome = &row.outcome;
        let stored = row.stored.map_or("—".into(), |n| n.to_string());
        let errors = match outcome.unsent {
            0 => outcome.errors.to_string(),
            unsent => format!("{} ({unsent} unsent after {} s)", outcome.errors, RUN_LIMIT.as_secs()),
        };
        let (throughput, p99) = row.ours.map_or(("".into(), "".into()), |(rate, p99)| {
            (format!("{:.1}×", rate / outcome.per_second()), format!("{:.1}×", outcome.percentile_ms(0.99) / p99))
        });
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {errors} | {stored} | {throughput} | {p99} |",
            row.round,
            row.side.name(),
            outcome.per_second(),
            outcome.percentile_ms(0.50),
            outcome.percentile_ms(0.99),
            outcome.max_ms(),
        );
    }
}
