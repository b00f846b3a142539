//! The fuzz targets' checks (`wa_ai_bridge::fuzzing`) run in CI on stable:
//! over every seed in `fuzz/corpus/<target>/`, then over deterministic
//! mutations of those seeds. A failing case is written to the temp dir and
//! named in the panic, so it can be replayed with `cargo fuzz run`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use wa_ai_bridge::fuzzing;

/// How many mutated inputs each target gets after its seeds: a few seconds
/// in a debug build for all of them together.
const MUTATIONS: usize = 2_000;

/// The webhook parser is fast and its seeds are mostly JSON that edits
/// break, so it gets more tries for the same time.
const WEBHOOK_MUTATIONS: usize = 10_000;

/// PDF extraction is slower by orders of magnitude than the other checks.
const PDF_MUTATIONS: usize = 300;

#[test]
fn webhook_payload_corpus() {
    run("webhook_payload", fuzzing::webhook_payload, WEBHOOK_MUTATIONS);
}

#[test]
fn whatsapp_format_corpus() {
    run("whatsapp_format", fuzzing::whatsapp_format, MUTATIONS);
}

#[test]
fn analyzer_corpus() {
    run("analyzer", fuzzing::analyzer, MUTATIONS);
}

#[test]
fn pdf_corpus() {
    fuzzing::quiet_caught_pdf_panics();
    run("pdf", fuzzing::pdf, PDF_MUTATIONS);
}

struct Seed {
    name: String,
    bytes: Vec<u8>,
}

fn seeds(target: &str) -> Vec<Seed> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut seeds: Vec<Seed> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .map(|path| Seed {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&path).unwrap(),
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(seeds.len() >= 5, "too few seeds in {}", dir.display());
    seeds
}

fn run(target: &str, check: fn(&[u8]), mutations: usize) {
    let seeds = seeds(target);
    for seed in &seeds {
        check_one(target, check, &seed.bytes, &seed.name);
    }
    // Seeded by the target's name: every run, here or elsewhere, tries the
    // same inputs, so a failure reproduces.
    let mut random =
        Random(target.bytes().fold(0x9e37_79b9_7f4a_7c15, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)));
    for case in 0..mutations {
        let seed = &seeds[random.below(seeds.len())];
        let other = &seeds[random.below(seeds.len())];
        let input = mutate(&seed.bytes, &other.bytes, &mut random);
        check_one(target, check, &input, &format!("mutation {case} of {}", seed.name));
    }
}

fn check_one(target: &str, check: fn(&[u8]), input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
        let saved = std::env::temp_dir().join(format!("fuzz-corpus-{target}-failure"));
        std::fs::write(&saved, input).unwrap();
        panic!("{target}: {what} breaks an invariant; input saved to {}", saved.display());
    }
}

/// One to four byte-level edits of the kinds libFuzzer makes, so the test
/// reaches near the seeds what the fuzzer would reach first.
fn mutate(seed: &[u8], other: &[u8], random: &mut Random) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..1 + random.below(4) {
        let at = random.below(input.len() + 1);
        match random.below(8) {
            0 if at < input.len() => input[at] ^= 1 << random.below(8),
            1 => input.insert(at, interesting_byte(random)),
            2 if at < input.len() => {
                input.remove(at);
            }
            3 => input.truncate(at),
            4 => {
                // Splicing: the head of this input, the tail of another seed.
                let from = random.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            5 | 6 => {
                // A word or number swapped for one of another seed or an edge
                // value: it keeps JSON and PDF syntax intact where byte edits
                // mostly break it, so the parsers' later stages get reached.
                let word = if random.below(2) == 0 {
                    let from = word_around(other, random.below(other.len() + 1));
                    other[from].to_vec()
                } else {
                    EDGE_WORDS[random.below(EDGE_WORDS.len())].to_vec()
                };
                input.splice(word_around(&input, at), word);
            }
            _ => {
                // A repeated stretch, as in a long or nested document.
                let end = (at + 1 + random.below(64)).min(input.len());
                let stretch = input[at.min(end)..end].to_vec();
                for _ in 0..1 + random.below(8) {
                    input.splice(at..at, stretch.iter().copied());
                }
            }
        }
    }
    input
}

const EDGE_WORDS: &[&[u8]] = &[
    b"",
    b"0",
    b"-1",
    b"4294967296",
    b"9223372036854775807",
    b"99999999999999999999",
    b"1e309",
    b"NaN",
    b"null",
    b"true",
    b"62812345678901234567",
    &[b'x'; 300],
];

/// The run of ASCII letters and digits around `at` (empty between two).
fn word_around(bytes: &[u8], at: usize) -> std::ops::Range<usize> {
    let in_word = |b: &u8| b.is_ascii_alphanumeric();
    let start = at - bytes[..at].iter().rev().take_while(|b| in_word(b)).count();
    let end = at + bytes[at..].iter().take_while(|b| in_word(b)).count();
    start..end
}

/// Structure characters of the inputs (JSON, Markdown, PDF), multi-byte
/// UTF-8 starts and whitespace, more often than an arbitrary byte.
fn interesting_byte(random: &mut Random) -> u8 {
    const INTERESTING: &[u8] = b"{}[]\":,0\\*_~`#>|-\n \t/()<>%\xc3\xa9\xe2\x80\xf0\x9f\xad\xff\x00";
    if random.below(2) == 0 {
        INTERESTING[random.below(INTERESTING.len())]
    } else {
        random.below(256) as u8
    }
}

/// xorshift64*: small, seedable and good enough to pick edits.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % n.max(1)
    }
}
