//! Knowledge-base benchmarks: query latency over 10,000 passages, indexing
//! throughput in pages per second (against pdf-extract's plain text in the
//! same run), and peak heap while indexing 500+ pages.
//!
//! `cargo bench --bench knowledge` (needs the documents in `knowledge/`).

use std::path::Path;
use std::time::{Duration, Instant};
use support::{peak_bytes, percentile, reset_peak};
use wa_ai_bridge::knowledge::{load_passages, Analyzer, Chunk, PassageIndex};

#[path = "support/mod.rs"]
mod support;

#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;

const PDF: &str = "referensi-debian.id.pdf";
const LIMIT: Duration = Duration::from_secs(300);

fn knowledge_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge"))
}

/// A directory holding `copies` copies of the sample PDF.
fn pdf_copies(copies: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(knowledge_dir().join(PDF)).expect("sample PDF");
    for n in 0..copies {
        std::fs::write(dir.path().join(format!("salinan-{n}.pdf")), &bytes).expect("copy");
    }
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Real passages repeated until there are `wanted`, each copy marked so no
/// two are identical.
fn passages(wanted: usize) -> Vec<Chunk> {
    let (real, _) = runtime().block_on(load_passages(knowledge_dir(), LIMIT)).expect("documents");
    (0..wanted)
        .map(|n| {
            let mut chunk = real[n % real.len()].clone();
            chunk.text.push_str(&format!(" salinan{}", n / real.len()));
            chunk
        })
        .collect()
}

fn bench_query_latency() {
    let chunks = passages(10_000);
    let questions = support::evaluation_questions();
    for analyzer in [Analyzer::Indonesian, Analyzer::Standard] {
        let index = PassageIndex::build_in_memory(&chunks, analyzer).expect("index");
        for q in &questions {
            index.search(q, 4).expect("warm-up");
        }
        let mut timings = Vec::new();
        for _ in 0..30 {
            for q in &questions {
                let started = Instant::now();
                let found = index.search(q, 4).expect("search");
                timings.push(started.elapsed());
                std::hint::black_box(found);
            }
        }
        timings.sort();
        println!(
            "query {analyzer:?}: {} passages, {} queries, p50 {:?}, p99 {:?}, max {:?}",
            index.passage_count(),
            timings.len(),
            percentile(&timings, 0.50),
            percentile(&timings, 0.99),
            timings[timings.len() - 1]
        );
    }
}

fn bench_indexing_throughput() {
    // pdf-extract's own plain text, the reader before glyph layout: the
    // price of reading the layout is the ratio of the two, in one run.
    let bytes = std::fs::read(knowledge_dir().join(PDF)).expect("sample PDF");
    let started = Instant::now();
    let plain = pdf_extract::extract_text_from_mem_by_pages(&bytes).expect("plain text");
    let plain_rate = plain.len() as f64 / started.elapsed().as_secs_f64();

    let dir = pdf_copies(1);
    let started = Instant::now();
    let (chunks, report) = runtime().block_on(load_passages(dir.path(), LIMIT)).expect("extract");
    let extracted = started.elapsed();
    let index = PassageIndex::build_in_memory(&chunks, Analyzer::Indonesian).expect("index");
    let total = started.elapsed();
    let pages = report.pages as f64;
    println!(
        "indexing: {} pages, {} passages; extract+chunk {:.0} pages/s, analyze+index {:.0} pages/s, end to end {:.0} pages/s",
        report.pages,
        index.passage_count(),
        pages / extracted.as_secs_f64(),
        pages / (total - extracted).as_secs_f64(),
        pages / total.as_secs_f64()
    );
    println!(
        "extraction: glyph layout {:.0} pages/s (with chunking), pdf-extract plain text {plain_rate:.0} pages/s, ratio {:.2}",
        pages / extracted.as_secs_f64(),
        (pages / extracted.as_secs_f64()) / plain_rate
    );
}

fn bench_indexing_memory() {
    let dir = pdf_copies(2);
    let runtime = runtime();
    reset_peak();
    let before = support::live_bytes();
    let (chunks, report) = runtime.block_on(load_passages(dir.path(), LIMIT)).expect("extract");
    let index = PassageIndex::build_in_memory(&chunks, Analyzer::Indonesian).expect("index");
    let peak = peak_bytes() - before;
    println!(
        "memory: indexing {} pages ({} passages) peaks at {:.1} MiB of heap above the start",
        report.pages,
        chunks.len(),
        peak as f64 / (1024.0 * 1024.0)
    );
    std::hint::black_box(index);
}

fn main() {
    let filter = std::env::args().nth(1).filter(|arg| !arg.starts_with("--"));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    // Memory first, before other benches leave caches and runtimes behind.
    if wanted("memory") {
        bench_indexing_memory();
    }
    if wanted("throughput") {
        bench_indexing_throughput();
    }
    if wanted("query") {
        bench_query_latency();
    }
}
