//! What the benchmark binaries share: an allocator that counts heap bytes
//! (exact, unlike a noisy RSS), percentiles and the evaluation questions.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;
use tikv_jemallocator::Jemalloc;

pub struct CountingAllocator;
static COUNTING: AtomicBool = AtomicBool::new(true);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

// Every method is passed on to jemalloc, the binary's allocator, so the
// code measured allocates as it does in production: the trait's default
// `realloc` would copy every growing buffer instead of letting the
// allocator extend it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { Jemalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { Jemalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = unsafe { Jemalloc.realloc(ptr, layout, new_size) };
        if !grown.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        grown
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }
}

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        let live = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
    }
}

/// Turns the counting off for good, so timing runs do not pay for two
/// contended atomics on every allocation; the counts are stale afterwards.
#[allow(dead_code)]
pub fn stop_counting() {
    COUNTING.store(false, Ordering::Relaxed);
}

pub fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from the current live bytes.
#[allow(dead_code)]
pub fn reset_peak() {
    PEAK_BYTES.store(live_bytes(), Ordering::Relaxed);
}

#[allow(dead_code)]
pub fn peak_bytes() -> isize {
    PEAK_BYTES.load(Ordering::Relaxed)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The retrieval evaluation's questions: informal Indonesian, as people
/// write, each answered somewhere in the shipped documents.
pub fn evaluation_questions() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/retrieval/questions.jsonl");
    std::fs::read_to_string(path)
        .expect("question set")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|q| q["question"].as_str().map(String::from))
        .collect()
}
