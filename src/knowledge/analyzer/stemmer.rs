//! Rule-based Indonesian stemmer in the Nazief–Adriani / ECS (Enhanced Confix Stripping) tradition.
//!
//! Those algorithms check a root-word dictionary after every step and backtrack when the
//! result is not a word. We have no such dictionary, so stemming runs in two passes:
//!
//! 1. a search over the ECS analyses (suffix restoration, both readings of an ambiguous nasal
//!    prefix) that stops at the first candidate found in a small hand-written list of roots
//!    ([`ROOTS`]): roots that look affixed, and roots whose nasal prefix is ambiguous;
//! 2. otherwise a greedy pass that always takes the default reading. It strips the same way
//!    whether a root stands alone or inside a derived word, so "pesan", "pesanan" and
//!    "pemesanan" meet at one stem even when that stem is not the dictionary root.
//!
//! Documents and queries share this code, so consistency matters more than linguistic
//! accuracy: what counts is that forms of one word meet and different words stay apart.

use std::collections::HashSet;
use std::ops::ControlFlow::{self, Break, Continue};

/// Longer tokens are left alone; the analyzer drops tokens of 40 bytes and more anyway.
const MAX_WORD: usize = 48;
/// Shorter results are not trusted as roots ("laku" must not become "la").
const MIN_STEM: usize = 3;
/// Indonesian stacks at most three derivational prefixes ("di-per-tanggungjawab-kan").
const MAX_PREFIXES: usize = 3;

const PARTICLES: [&str; 4] = ["lah", "kah", "tah", "pun"];
const POSSESSIVES: [&str; 3] = ["nya", "ku", "mu"];

/// Roots the rules would mangle, or whose nasal prefix cannot be undone by rule alone
/// ("mengirim" could be "irim" or "kirim"; "meminta" could be "pinta" or "minta"), by reason.
/// Colloquial roots come from the informal table instead (see [`Stemmer::new`]).
const ROOTS: [&str; 10] = [
    LOOK_SUFFIXED,
    END_BEFORE_I,
    LOANS_IN_I,
    K_ROOTS,
    E_ROOTS,
    M_ROOTS,
    N_ROOTS,
    R_ROOTS,
    LOOK_PREFIXED,
    COLLOQUIAL_TARGETS,
];

/// Roots that end like a suffix, particle or possessive, or in -k before -an ("beri", "makan",
/// "masalah", "laku", "tindakan").
const LOOK_SUFFIXED: &str =
    "badan bagi bangku beli berani beri berkah biaya buku bulan bumi bunyi cari cetak cuci depan didik \
    diri gaji ganti gerak gigi hari hati henti hutan ilmu istilah jalan janji jari jumlah kaji kali \
    karyawan kendali kiri kopi kunci laku langgan langkah lari lawan layan makan mandi masak \
    masalah masuk mati mentah mimpi muntah nikah nyanyi pagi peduli pekan pemerintah pergi \
    perintah puji punya rekan roti rugi rujuk saran sedekah sekolah seni simpan tahan tali taman \
    tamu tangan tanya tari tarik tekan teman temu teriak tindak tinggi tolak tumpuk tusuk uji";

/// Roots in a vowel or "s" that take the -i suffix ("dibiayai", "membatasi", "diketahui"),
/// which the greedy pass leaves on.
const END_BEFORE_I: &str =
    "awas baru batas dana hias kuasa mulai nama nilai pakai selesai sesuai setuju suka tahu tugas warna";

/// Loans in -i the greedy pass would cut ("ekonomi", "teknologi").
const LOANS_IN_I: &str = "direktori ekonomi energi industri kategori materi memori strategi teknologi teori";

/// Roots in k- after meng-/peng- (the default reading there is a vowel root), and ke- words
/// that are roots ("kelas", "keluar").
const K_ROOTS: &str =
    "kabar kait kalah kata kelas kelola keluar keluarga keluh kembali kembang kenal kepala kerja kesan ketik \
    kira kirim koleksi komentar kompilasi komunikasi koneksi konfigurasi konfirmasi konsumsi kontrol \
    konversi koordinasi kosong kuat kumpul kunjung kurang kutip";

/// Roots in e- after meng-/peng- (the default reading there is a root in ke-).
const E_ROOTS: &str = "edar edit eja eksekusi ekspor ekstrak eliminasi emban enkripsi erti evaluasi";

/// Roots in m- after mem-/pem- (the default reading there is p-).
const M_ROOTS: &str =
    "maaf main maju maklum malu manfaat marah menang merah merek migrasi milik minta minum modifikasi \
    mohon monitor motivasi muat muda mudah muncul mungkin murni";

/// Roots in n- and ny- after men-/meny- (the default readings there are t- and s-).
const N_ROOTS: &str = "nginx nomor nonaktif normal notifikasi nyala nyaman nyamuk nyata nyawa nyeri nyonya";

/// Roots in r- after ber-/per-/ter- (the default reading there drops the "r").
const R_ROOTS: &str =
    "ragam rajin rakit rangkum rantau rasa rawat rekam rekrut rencana ribut rinci ringan ringkas rintis \
    rokok ruang rumah runding rupa rusak";

/// Roots that begin like a prefix ("berkas", "pesan", "sehat", "menit").
const LOOK_PREFIXED: &str =
    "beranda berita berkas bersih debian menit pecah pegang pelan pelihara pemilu pendek pengaruh penjara \
    penting penuh perahu peran perang periksa perilaku perkara perlu permisi persalinan persen pertama \
    pesan pesawat pesta sebab sebar sebut sedia sehat sejarah selamat selasa seleksi selenggara selidik senang \
    senin seragam serah serta setia setor sewa terang teras terbang terbit terima terjemah terminal \
    ternak tertib";

/// Targets of colloquial ny-/n-/m- and of the -in suffix ("nyari", "nanya", "mikir", "daftarin"),
/// reachable only through a known root.
const COLLOQUIAL_TARGETS: &str =
    "ajar ambil atur bantu bayar buka cabut cair catat cicil coba daftar hapus isi jelas pasang pikir \
    pilih pinjam sambung sampai santai suruh susah susul tabung tambah tanam tulis tunggu tunjuk tutup \
    ubah urus";

/// A stem, described relative to the word it came from: the letter a nasal prefix replaced
/// ("t" in "menulis" -> "tulis") followed by `word[start..end]`. Kept this way so that
/// candidates cost no allocation and the token text can be rewritten in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stem {
    head: &'static str,
    start: usize,
    end: usize,
}

impl Stem {
    fn whole(word: &str) -> Self {
        Stem { head: "", start: 0, end: word.len() }
    }

    /// Rewrites `word`, the text this stem was computed from, into the stem.
    /// Returns whether anything changed.
    pub(super) fn apply(self, word: &mut String) -> bool {
        if self == Stem::whole(word) {
            return false;
        }
        word.truncate(self.end);
        word.replace_range(..self.start, self.head);
        true
    }

    fn body<'w>(&self, word: &'w str) -> &'w [u8] {
        &word.as_bytes()[self.start..self.end]
    }

    fn without_last(self, n: usize) -> Self {
        Stem { end: self.end - n, ..self }
    }

    fn after(self, prefix: Prefix) -> Self {
        // A prefix always covers the restored letter of the previous step plus at least one
        // letter of the word, so `start` only moves forward.
        Stem { head: prefix.restore, start: self.start + prefix.len - self.head.len(), end: self.end }
    }

    /// At least MIN_STEM letters and a vowel: anything shorter is not trusted as a root.
    fn is_plausible(self, word: &str) -> bool {
        let body = self.body(word);
        self.head.len() + body.len() >= MIN_STEM && body.iter().copied().any(is_vowel)
    }
}

/// The text of a candidate, assembled on the stack (head + body) for lookups and matching.
struct Spelled {
    buf: [u8; MAX_WORD],
    len: usize,
}

impl Spelled {
    fn new(word: &str, stem: Stem) -> Self {
        let (head, body) = (stem.head.as_bytes(), stem.body(word));
        let mut buf = [0; MAX_WORD];
        buf[..head.len()].copy_from_slice(head);
        buf[head.len()..head.len() + body.len()].copy_from_slice(body);
        Spelled { buf, len: head.len() + body.len() }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII words are stemmed, so this never falls back.
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Di,
    Ke,
    Se,
    Be,
    Te,
    Me,
    /// pe-, per-
    Pe,
    /// pem-, pen-, peng-, peny-: nouns that never take -kan
    PeN,
    /// WhatsApp nasal prefixes: ng-, nge-, ny- ("ngadu", "ngecek", "nyari").
    Colloquial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suffix {
    None,
    I,
    Kan,
    An,
    /// Colloquial "-in" ("daftarin"), standing for -kan/-i.
    In,
}

#[derive(Debug, Clone, Copy)]
struct Prefix {
    family: Family,
    /// Bytes of the candidate text the prefix covers.
    len: usize,
    /// Root letter the nasal swallowed, put back in front of the remainder.
    restore: &'static str,
    /// Taken only when it leads to a known root: colloquial n-/m- would otherwise eat
    /// real roots ("nasi", "minum").
    needs_known: bool,
}

impl Prefix {
    fn new(family: Family, len: usize, restore: &'static str) -> Self {
        Prefix { family, len, restore, needs_known: false }
    }
}

/// Which of the two stemming passes runs (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Search,
    Greedy,
}

enum Step {
    Stripped(Stem),
    /// No prefix here.
    Kept,
    /// A prefix is there but this analysis may not remove it (remainder too short, or a
    /// prefix-suffix pair Indonesian does not form): try the analysis with fewer suffixes.
    Blocked,
}

pub(super) struct Stemmer {
    known: HashSet<&'static str>,
}

impl Stemmer {
    /// `colloquial_roots` extend [`ROOTS`] with informal spellings the analyzer maps to
    /// formal words afterwards, so "dibikin" stops at "bikin" instead of losing its "-in".
    pub(super) fn new(colloquial_roots: impl IntoIterator<Item = &'static str>) -> Self {
        Stemmer { known: ROOTS.iter().flat_map(|group| group.split_whitespace()).chain(colloquial_roots).collect() }
    }

    /// Stems a lowercase word. Words with digits, non-ASCII letters, or of fewer than four
    /// letters come back unchanged.
    pub(super) fn stem(&self, word: &str) -> Stem {
        let whole = Stem::whole(word);
        let stemmable = (4..=MAX_WORD).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_lowercase());
        if !stemmable || self.known.contains(word) {
            return whole;
        }
        self.find_known(word).unwrap_or_else(|| self.reduce(word, whole, 0, true))
    }

    /// Whether the lowercase `word`, or the root it stems to, is in the dictionary.
    pub(super) fn knows(&self, word: &str) -> bool {
        let mut root = word.to_owned();
        self.stem(word).apply(&mut root);
        self.known.contains(root.as_str())
    }

    fn find_known(&self, word: &str) -> Option<Stem> {
        let mut visit = |candidate, suffix| match self.find_known_root(word, candidate, suffix, 0, None) {
            Some(stem) => Break(stem),
            None => Continue(()),
        };
        for_each_analysis(word, Stem::whole(word), true, Pass::Search, &mut visit).break_value()
    }

    /// Depth-first over prefix readings, every reading of an ambiguous nasal included.
    fn find_known_root(
        &self,
        word: &str,
        candidate: Stem,
        suffix: Suffix,
        depth: usize,
        outer: Option<Family>,
    ) -> Option<Stem> {
        let text = Spelled::new(word, candidate);
        if candidate.is_plausible(word) && self.known.contains(text.as_str()) {
            return Some(candidate);
        }
        if depth == MAX_PREFIXES {
            return None;
        }
        prefix_options(text.bytes())
            .into_iter()
            .flatten()
            .filter(|prefix| may_search(prefix.family, suffix, depth, outer))
            .map(|prefix| (prefix.family, candidate.after(prefix)))
            .filter(|(_, next)| is_root_shaped(word, *next))
            .find_map(|(family, next)| self.find_known_root(word, next, suffix, depth + 1, Some(family)))
    }

    /// The greedy pass: suffixes first (most stripped analysis first, as ECS does), then the
    /// default reading of one prefix, then the same again on the remainder, which therefore
    /// ends where the bare root would.
    fn reduce(&self, word: &str, candidate: Stem, depth: usize, inflection: bool) -> Stem {
        let mut first_blocked = None;
        let mut visit = |analysis, suffix| match default_prefix(word, analysis, suffix, depth) {
            Step::Stripped(next) => Break(self.reduce(word, next, depth + 1, false)),
            Step::Kept => Break(self.settle(word, analysis, suffix, depth)),
            Step::Blocked => {
                first_blocked.get_or_insert((analysis, suffix));
                Continue(())
            }
        };
        match for_each_analysis(word, candidate, inflection, Pass::Greedy, &mut visit) {
            Break(stem) => stem,
            // Every reading kept a prefix-like start ("kertasnya"): it belongs to the root.
            Continue(()) => {
                first_blocked.map_or(candidate, |(analysis, suffix)| self.settle(word, analysis, suffix, depth))
            }
        }
    }

    /// After a derivational suffix came off, the root may itself end like one
    /// ("layanan" -> "layan" -> "lay"); stripping it here too makes "layan" and "pelayanan" agree.
    fn settle(&self, word: &str, analysis: Stem, suffix: Suffix, depth: usize) -> Stem {
        match suffix {
            Suffix::None => analysis,
            _ => self.reduce(word, analysis, depth, false),
        }
    }
}

/// Calls `visit` with every suffix analysis of `candidate`, most stripped first: particle,
/// then possessive, then derivational suffix, each optional.
fn for_each_analysis<B>(
    word: &str,
    candidate: Stem,
    inflection: bool,
    pass: Pass,
    visit: &mut impl FnMut(Stem, Suffix) -> ControlFlow<B>,
) -> ControlFlow<B> {
    for after_particle in inflectional(word, candidate, inflection, &PARTICLES).into_iter().flatten() {
        for after_possessive in inflectional(word, after_particle, inflection, &POSSESSIVES).into_iter().flatten() {
            for (analysis, suffix) in derivational(word, after_possessive, pass).into_iter().flatten() {
                visit(analysis, suffix)?;
            }
        }
    }
    Continue(())
}

fn inflectional(word: &str, candidate: Stem, enabled: bool, endings: &[&str]) -> [Option<Stem>; 2] {
    let stripped = endings
        .iter()
        .find(|ending| enabled && candidate.body(word).ends_with(ending.as_bytes()))
        .map(|ending| candidate.without_last(ending.len()))
        .filter(|short| short.is_plausible(word));
    [stripped, Some(candidate)]
}

fn derivational(word: &str, candidate: Stem, pass: Pass) -> [Option<(Stem, Suffix)>; 3] {
    let body = candidate.body(word);
    let strip = |n, suffix| Some((candidate.without_last(n), suffix)).filter(|(short, _)| short.is_plausible(word));
    let unstripped = Some((candidate, Suffix::None));
    match pass {
        // ECS: the "k" may belong to the root ("masukan"). When both readings are known roots,
        // root + -an is the likelier ("tarikan": "tarik", not "tari").
        _ if body.ends_with(b"kan") && pass == Pass::Search => {
            [strip(2, Suffix::An), strip(3, Suffix::Kan), unstripped]
        }
        _ if body.ends_with(b"kan") => [strip(3, Suffix::Kan), strip(2, Suffix::An), unstripped],
        _ if body.ends_with(b"an") => [strip(2, Suffix::An), unstripped, None],
        _ if body.ends_with(b"in") => [strip(2, Suffix::In), unstripped, None],
        // The search only accepts known roots, so it can afford -i anywhere ("dibiayai").
        Pass::Search if body.ends_with(b"i") => [strip(1, Suffix::I), unstripped, None],
        Pass::Greedy if i_is_suffix(body) => [strip(1, Suffix::I), unstripped, None],
        _ => [unstripped, None, None],
    }
}

/// Without a dictionary, -i is taken as a suffix only after a consonant other than "s" or
/// after "u" ("hubungi", "diketahui"). Roots in -ai and loans in -si are far more common
/// than -i verbs built on roots ending in "a" or "s", which [`ROOTS`] covers.
fn i_is_suffix(body: &[u8]) -> bool {
    match body {
        [.., before, b'i'] => *before == b'u' || (!is_vowel(*before) && *before != b's'),
        _ => false,
    }
}

fn default_prefix(word: &str, candidate: Stem, suffix: Suffix, depth: usize) -> Step {
    if depth == MAX_PREFIXES {
        return Step::Kept;
    }
    let text = Spelled::new(word, candidate);
    let Some(prefix) = prefix_options(text.bytes()).into_iter().flatten().find(|prefix| !prefix.needs_known) else {
        // Colloquial -in is only trusted next to a colloquial prefix ("ngabisin", not "mesin").
        return if suffix == Suffix::In { Step::Blocked } else { Step::Kept };
    };
    let next = candidate.after(prefix);
    let in_ok = suffix != Suffix::In || prefix.family == Family::Colloquial;
    if in_ok && !forbidden_pair(prefix.family, suffix) && is_root_shaped(word, next) {
        Step::Stripped(next)
    } else {
        Step::Blocked
    }
}

/// Prefix-suffix pairs that do not form a confix (Nazief–Adriani), plus peN-…-kan, which
/// only occurs as peN- + root in -k + -an ("pendidikan").
fn forbidden_pair(family: Family, suffix: Suffix) -> bool {
    use Family::{Be, Di, Ke, Me, PeN, Se, Te};
    matches!((family, suffix), (Be | Ke | Se, Suffix::I) | (Ke | Se | PeN, Suffix::Kan) | (Di | Me | Te, Suffix::An))
}

/// The search is stricter than the greedy pass, because there a wrong reading could reach
/// an unrelated known root: di-, meN- and colloquial prefixes only come first, a family
/// does not repeat, and -in only goes with di- or a colloquial prefix.
fn may_search(family: Family, suffix: Suffix, depth: usize, outer: Option<Family>) -> bool {
    let outermost_only = matches!(family, Family::Di | Family::Me | Family::Colloquial);
    let pair_ok = depth > 0 || !forbidden_pair(family, suffix);
    let in_ok = suffix != Suffix::In || matches!(family, Family::Di | Family::Colloquial);
    (depth == 0 || !outermost_only) && outer != Some(family) && pair_ok && in_ok
}

/// What may remain after a prefix: a plausible stem that starts like an Indonesian word
/// ("september" is not "se-" + "ptember").
fn is_root_shaped(word: &str, stem: Stem) -> bool {
    let text = Spelled::new(word, stem);
    let onset_ok = match text.bytes() {
        [first, ..] if is_vowel(*first) => true,
        [_, second, ..] if is_vowel(*second) => true,
        [a, b, ..] => CLUSTERS.contains(&[*a, *b]),
        _ => false,
    };
    onset_ok && stem.is_plausible(word)
}

const CLUSTERS: [[u8; 2]; 23] = [
    *b"bl", *b"br", *b"dr", *b"dw", *b"fl", *b"fr", *b"gl", *b"gr", *b"kh", *b"kl", *b"kr", *b"ng", *b"ny", *b"pl",
    *b"pr", *b"sk", *b"sl", *b"sp", *b"sr", *b"st", *b"sw", *b"sy", *b"tr",
];

/// Readings of the prefix `text` starts with, default first (ECS rules; the restored letter
/// is the one the nasal replaced).
fn prefix_options(text: &[u8]) -> [Option<Prefix>; 3] {
    match text {
        [b'd', b'i', ..] => one(Family::Di, 2, ""),
        [b'k', b'e', ..] => one(Family::Ke, 2, ""),
        [b's', b'e', ..] => one(Family::Se, 2, ""),
        [b'b', b'e', rest @ ..] => be_options(rest),
        [b't', b'e', b'r', rest @ ..] => r_options(Family::Te, rest),
        [b'm', b'e', rest @ ..] => nasal_options(Family::Me, rest),
        [b'p', b'e', rest @ ..] => pe_options(rest),
        _ => colloquial_options(text),
    }
}

fn be_options(rest: &[u8]) -> [Option<Prefix>; 3] {
    match rest {
        [b'l', b'a', b'j', b'a', b'r', ..] => one(Family::Be, 3, ""),
        [b'r', after @ ..] => r_options(Family::Be, after),
        // be- before a syllable in -er: "bekerja", "beserta"
        [c, b'e', b'r', ..] if !is_vowel(*c) => one(Family::Be, 2, ""),
        _ => NONE,
    }
}

/// ber-/ter-/per- before a vowel also read as be-/te-/pe- + a root in r- ("berupa").
fn r_options(family: Family, after_r: &[u8]) -> [Option<Prefix>; 3] {
    match after_r {
        [v, ..] if is_vowel(*v) => [option(family, 3, ""), option(family, 2, ""), None],
        _ => one(family, 3, ""),
    }
}

fn pe_options(rest: &[u8]) -> [Option<Prefix>; 3] {
    match rest {
        [b'r', after @ ..] => r_options(Family::Pe, after),
        [b'l', b'a', b'j', b'a', b'r', ..] => one(Family::Pe, 3, ""),
        [b'l' | b'w' | b'y', v, ..] if is_vowel(*v) => one(Family::Pe, 2, ""),
        [b'm' | b'n', ..] => nasal_options(Family::PeN, rest),
        [c, ..] if !is_vowel(*c) && !matches!(c, b'l' | b'w' | b'y') => one(Family::Pe, 2, ""),
        _ => NONE,
    }
}

/// meN-/peN-: the nasal takes the shape of the root's first letter and swallows k, p, s, t.
fn nasal_options(family: Family, rest: &[u8]) -> [Option<Prefix>; 3] {
    let o = |len, restore| option(family, len, restore);
    match rest {
        [b'n', b'g', b'e', tail @ ..] if is_monosyllable(tail) => [o(5, ""), o(4, "k"), o(4, "")],
        [b'n', b'g', b'g' | b'h' | b'q' | b'k', ..] => [o(4, ""), None, None],
        // meng- + e-: roots in ke- are the commoner ("mengelola", "mengembangkan")
        [b'n', b'g', b'e', ..] => [o(4, "k"), o(4, ""), None],
        [b'n', b'g', v, ..] if is_vowel(*v) => [o(4, ""), o(4, "k"), None],
        [b'n', b'y', v, ..] if is_vowel(*v) => [o(4, "s"), o(2, ""), None],
        [b'n', b'c' | b'd' | b'j' | b'z', ..] => [o(3, ""), None, None],
        // men- keeps s- and tr- of loans ("mensosialisasikan", "mentransfer"); "pensiun" is a root
        [b'n', b's', ..] | [b'n', b't', b'r', ..] if family == Family::Me => [o(3, ""), None, None],
        [b'n', v, ..] if is_vowel(*v) => [o(3, "t"), o(2, ""), None],
        [b'm', b'b' | b'f' | b'v' | b'p', ..] => [o(3, ""), None, None],
        [b'm', v, ..] if is_vowel(*v) => [o(3, "p"), o(2, ""), None],
        [b'l' | b'r' | b'w' | b'y', v, ..] if family == Family::Me && is_vowel(*v) => [o(2, ""), None, None],
        _ => NONE,
    }
}

fn colloquial_options(text: &[u8]) -> [Option<Prefix>; 3] {
    let o = |len, restore| option(Family::Colloquial, len, restore);
    let known_only = |len, restore| Some(Prefix { needs_known: true, ..Prefix::new(Family::Colloquial, len, restore) });
    match text {
        [b'n', b'g', b'e', c, ..] if !is_vowel(*c) => [o(3, ""), o(2, ""), o(2, "k")],
        [b'n', b'g', v, ..] if is_vowel(*v) => [o(2, ""), o(2, "k"), None],
        [b'n', b'y', v, ..] if is_vowel(*v) => [o(2, "c"), o(2, "s"), None],
        [b'n', v, ..] if is_vowel(*v) => [known_only(1, "t"), None, None],
        [b'm', v, ..] if is_vowel(*v) => [known_only(1, "p"), None, None],
        _ => NONE,
    }
}

const NONE: [Option<Prefix>; 3] = [None, None, None];

fn option(family: Family, len: usize, restore: &'static str) -> Option<Prefix> {
    Some(Prefix::new(family, len, restore))
}

fn one(family: Family, len: usize, restore: &'static str) -> [Option<Prefix>; 3] {
    [option(family, len, restore), None, None]
}

/// "cek", "bom", "tes": menge-/penge- go before one-syllable roots.
fn is_monosyllable(text: &[u8]) -> bool {
    let mut after_vowel = false;
    let syllables = text
        .iter()
        .filter(|&&byte| {
            let starts = is_vowel(byte) && !after_vowel;
            after_vowel = is_vowel(byte);
            starts
        })
        .count();
    text.len() >= MIN_STEM && syllables == 1
}

fn is_vowel(byte: u8) -> bool {
    matches!(byte, b'a' | b'e' | b'i' | b'o' | b'u')
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::new([]));

    fn stem(word: &str) -> String {
        let mut text = word.to_owned();
        STEMMER.stem(word).apply(&mut text);
        text
    }

    fn assert_stems(cases: &[(&str, &str)]) {
        let wrong: Vec<String> = cases
            .iter()
            .map(|(word, expected)| (word, expected, stem(word)))
            .filter(|(_, expected, got)| got != *expected)
            .map(|(word, expected, got)| format!("{word}: got {got}, expected {expected}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn inflectional_particles_and_possessives_come_off() {
        assert_stems(&[
            ("bukulah", "buku"),
            ("bukukah", "buku"),
            ("apatah", "apa"),
            ("siapapun", "siapa"),
            ("rumahku", "rumah"),
            ("rumahmu", "rumah"),
            ("biayanya", "biaya"),
            ("kernelnya", "kernel"),
            ("passwordnya", "password"),
            ("masalahnya", "masalah"),
            ("bukunyalah", "buku"),
        ]);
    }

    #[test]
    fn derivational_suffixes_come_off() {
        assert_stems(&[
            ("bantuan", "bantu"),
            ("jawaban", "jawab"),
            ("laporan", "lapor"),
            ("gunakan", "guna"),
            ("tunjukkan", "tunjuk"),
            ("hubungi", "hubung"),
            ("masukkan", "masuk"),
            ("kirimkan", "kirim"),
            ("tindakan", "tindak"),
            ("rujukan", "rujuk"),
        ]);
    }

    #[test]
    fn plain_prefixes_come_off() {
        assert_stems(&[
            ("dikirim", "kirim"),
            ("ketua", "tua"),
            ("sehari", "hari"),
            ("berjalan", "jalan"),
            ("belajar", "ajar"),
            ("bekerja", "kerja"),
            ("terdaftar", "daftar"),
            ("terakhir", "akhir"),
            ("perjalanan", "jalan"),
            ("pelajar", "ajar"),
            ("pekerja", "kerja"),
            ("pedagang", "dagang"),
            ("pelayanan", "layan"),
            ("merawat", "rawat"),
            ("melihat", "lihat"),
        ]);
    }

    #[test]
    fn nasal_prefixes_give_back_the_letter_they_swallowed() {
        assert_stems(&[
            ("menyapu", "sapu"),
            ("memukul", "pukul"),
            ("menulis", "tulis"),
            ("mengambil", "ambil"),
            ("mengkaji", "kaji"),
            ("membantu", "bantu"),
            ("mencari", "cari"),
            ("mendaftar", "daftar"),
            ("menggunakan", "guna"),
            ("menghubungi", "hubung"),
            ("mengirim", "kirim"),
            ("mengecek", "cek"),
            ("mengelola", "kelola"),
            ("meminta", "minta"),
            ("memiliki", "milik"),
            ("menikah", "nikah"),
            ("menyatakan", "nyata"),
            ("mentransfer", "transfer"),
            ("memproses", "proses"),
            ("pengiriman", "kirim"),
            ("pemakaian", "pakai"),
            ("penulis", "tulis"),
            ("penyakit", "sakit"),
            ("pengecekan", "cek"),
            ("pembayaran", "bayar"),
        ]);
    }

    #[test]
    fn confixes_and_stacked_prefixes_come_off() {
        assert_stems(&[
            ("pemberdayaan", "daya"),
            ("keberhasilan", "hasil"),
            ("perekonomian", "ekonomi"),
            ("pengembangan", "kembang"),
            ("menyelesaikan", "selesai"),
            ("dipertanggungjawabkan", "tanggungjawab"),
            ("kepemilikan", "milik"),
            ("memperbaiki", "baik"),
            ("mempelajari", "ajar"),
            ("diperlukan", "perlu"),
            ("keterlambatan", "lambat"),
            ("berkelanjutan", "lanjut"),
            ("kesehatan", "sehat"),
            ("pertanyaan", "tanya"),
            ("diketahui", "tahu"),
            ("pengetahuan", "tahu"),
            ("dibiayai", "biaya"),
            ("membatasi", "batas"),
        ]);
    }

    #[test]
    fn forbidden_prefix_suffix_pairs_leave_letters_to_the_root() {
        assert_stems(&[
            ("kebijakan", "bijak"),
            ("pendidikan", "didik"),
            ("penolakan", "tolak"),
            ("berhenti", "henti"),
            ("dipesan", "pesan"),
        ]);
    }

    #[test]
    fn roots_that_look_affixed_stay_whole() {
        assert_stems(&[
            ("berkas", "berkas"),
            ("beri", "beri"),
            ("minta", "minta"),
            ("makan", "makan"),
            ("pakai", "pakai"),
            ("tanya", "tanya"),
            ("perlu", "perlu"),
            ("sekolah", "sekolah"),
            ("masalah", "masalah"),
            ("pemerintah", "pemerintah"),
            ("perintah", "perintah"),
            ("kembali", "kembali"),
            ("pesan", "pesan"),
            ("september", "september"),
            ("kertas", "kertas"),
            ("kertasnya", "kertas"),
            ("debian", "debian"),
            ("terminal", "terminal"),
        ]);
    }

    #[test]
    fn short_foreign_and_non_ascii_words_are_left_alone() {
        assert_stems(&[
            ("di", "di"),
            ("kan", "kan"),
            ("meng", "meng"),
            ("ipv4", "ipv4"),
            ("linux", "linux"),
            ("install", "install"),
            ("installation", "installation"),
            ("instalasi", "instalasi"),
            ("informasi", "informasi"),
            ("kernel", "kernel"),
            ("keyboard", "keyboard"),
            ("résumé", "résumé"),
        ]);
    }

    #[test]
    fn colloquial_morphology_is_undone() {
        assert_stems(&[
            ("ngadu", "adu"),
            ("ngurus", "urus"),
            ("nyari", "cari"),
            ("ngecek", "cek"),
            ("ngelamar", "lamar"),
            ("ngerjain", "kerja"),
            ("nanya", "tanya"),
            ("nunggu", "tunggu"),
            ("mikir", "pikir"),
            ("daftarin", "daftar"),
            ("bayarin", "bayar"),
            ("bantuin", "bantu"),
            ("dimasukin", "masuk"),
            ("mesin", "mesin"),
            ("admin", "admin"),
            ("dijamin", "jamin"),
            ("nasi", "nasi"),
        ]);
    }

    #[test]
    fn forms_of_one_word_meet() {
        let families: &[&[&str]] = &[
            &["pesan", "pesanan", "pemesanan", "dipesan", "memesan", "pesannya"],
            &["layanan", "pelayanan", "melayani", "dilayani", "pelayan"],
            &["tangan", "penanganan", "menangani", "ditangani"],
            &["kirim", "dikirim", "mengirim", "kiriman", "pengiriman", "dikirimkan"],
            &["laku", "berlaku", "berlakunya", "dilakukan", "melakukan"],
            &["temu", "bertemu", "pertemuan", "menemukan", "ditemukan"],
            &["cari", "mencari", "pencarian", "dicari"],
            &["henti", "berhenti", "menghentikan", "pemberhentian"],
            &["rumah", "perumahan", "rumahnya"],
            &["gaji", "penggajian", "digaji"],
            &["pasti", "pastikan", "memastikan", "dipastikan"],
            &["langganan", "pelanggan", "berlangganan"],
        ];
        for family in families {
            let stems: Vec<String> = family.iter().map(|word| stem(word)).collect();
            assert!(stems.iter().all(|s| *s == stems[0]), "{family:?} -> {stems:?}");
        }
    }

    #[test]
    fn different_words_stay_apart() {
        let pairs = [
            ("perintah", "pemerintah"),
            ("salinan", "persalinan"),
            ("beri", "member"),
            ("kata", "pemerataan"),
            ("makan", "memakan"),
            ("menang", "tangan"),
            ("tujuan", "setuju"),
            ("ragam", "seragam"),
            ("bersih", "sih"),
        ];
        for (a, b) in pairs {
            if (a, b) == ("makan", "memakan") {
                assert_eq!(stem(a), stem(b));
            } else {
                assert_ne!(stem(a), stem(b), "{a} and {b}");
            }
        }
    }

    #[test]
    fn roots_are_lowercase_plausible_and_unique() {
        let mut seen = HashSet::new();
        for root in ROOTS.iter().flat_map(|group| group.split_whitespace()) {
            assert!(root.bytes().all(|b| b.is_ascii_lowercase()), "{root}");
            assert!(Stem::whole(root).is_plausible(root), "{root}");
            assert!(seen.insert(root), "duplicate {root}");
        }
    }

    #[test]
    fn odd_letter_strings_do_not_panic() {
        let pieces =
            ["me", "mem", "men", "meng", "menge", "meny", "pe", "pen", "peng", "per", "ber", "bel", "ter", "di"];
        let ends = ["", "i", "an", "kan", "in", "nya", "ku", "lah", "pun", "a", "e", "ng", "ny", "k", "r"];
        for first in pieces {
            for second in pieces.iter().chain(&ends) {
                for end in ends {
                    let word = format!("{first}{second}{end}");
                    let stemmed = stem(&word);
                    assert!(stemmed.len() <= word.len() + 1, "{word} -> {stemmed}");
                }
            }
        }
        assert_eq!(stem(&"a".repeat(100)), "a".repeat(100));
    }
}
