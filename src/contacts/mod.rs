//! The business's contacts and their consent to promotional messages: the
//! opt-out and opt-in phrases a customer writes (checked before the LLM is
//! asked), who changed a consent and how that is counted, and the CSV the
//! admin page imports and exports. The rows themselves are the store's
//! (`store::contacts`).

pub mod csv;
pub mod import;

use crate::phrases::Phrases;
use crate::store::Consent;
use std::path::Path;

pub const OPT_OUT_FILE: &str = "opt_out_phrases.txt";
pub const OPT_IN_FILE: &str = "opt_in_phrases.txt";
const OPT_OUT_BUILT_IN: &str = include_str!("../../prompts/opt_out_phrases.txt");
const OPT_IN_BUILT_IN: &str = include_str!("../../prompts/opt_in_phrases.txt");

/// Longest tag, in characters: tags are typed and shown as chips.
pub const MAX_TAG_CHARS: usize = 32;
/// Longest contact name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most tags one contact may carry.
pub const MAX_TAGS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("a tag is 1 to {MAX_TAG_CHARS} letters, digits, '-' or '_' (got {0:?})")]
    Tag(String),
    #[error("a contact has at most {MAX_TAGS} tags")]
    TooManyTags,
    #[error("a name is at most {MAX_NAME_CHARS} characters on one line")]
    Name,
}

/// A label campaigns select contacts by: lower case letters (any script),
/// digits, `-` and `_`, so it reads the same in a URL, a CSV cell and a
/// chip on the page. Spaces become `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Self, ContactError> {
        let tag: String = raw.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("-");
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_');
        if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS || !tag.chars().all(allowed) {
            return Err(ContactError::Tag(raw.trim().to_owned()));
        }
        Ok(Self(tag))
    }

    /// Tags written in one cell or field: separated by `,` or `;`; repeats
    /// are dropped.
    pub fn list(raw: &str) -> Result<Vec<Self>, ContactError> {
        let mut tags: Vec<Self> =
            raw.split([',', ';']).filter(|t| !t.trim().is_empty()).map(Self::parse).collect::<Result<_, _>>()?;
        tags.sort();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(ContactError::TooManyTags);
        }
        Ok(tags)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact's name as typed: trimmed, one line; empty is no name.
pub fn contact_name(raw: &str) -> Result<Option<String>, ContactError> {
    let name = raw.trim();
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ContactError::Name);
    }
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

/// Who changed a consent, as the consent log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSource(String);

impl ChangeSource {
    /// The customer wrote an opt-out or opt-in phrase.
    pub fn customer() -> Self {
        Self("customer:phrase".to_owned())
    }

    /// Someone on the admin page (the admin token or an agent, by name).
    pub fn admin(name: &str) -> Self {
        Self(format!("admin:{name}"))
    }

    /// A CSV import.
    pub fn import() -> Self {
        Self("import".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind alone (`customer`, `admin`, `import`, `api`): a metric label
    /// with a bounded set of values.
    pub fn kind(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }

    /// Whether a stored source says the customer decided themselves: such
    /// an opt-out is never undone by an import.
    pub fn is_customer(stored: &str) -> bool {
        stored.starts_with("customer")
    }
}

/// Counts a consent change that committed.
pub fn counted(to: Consent, source: &ChangeSource) {
    metrics::counter!("wa_consent_changes_total", "state" => to.as_str(), "source" => source.kind().to_owned())
        .increment(1);
}

/// What a customer's turn says about promotional messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Stop them: the phrase, in its normalised words.
    OptOut(String),
    /// Send them again.
    OptIn(String),
}

/// The opt-out and opt-in phrases (`prompts/opt_out_phrases.txt` and
/// `prompts/opt_in_phrases.txt`).
#[derive(Debug, Clone)]
pub struct ConsentPhrases {
    opt_out: Phrases,
    opt_in: Phrases,
}

impl ConsentPhrases {
    /// Reads both files from `dir`; a missing, empty or broken one gives
    /// its built-in list, and the notes say why.
    pub fn load(dir: &Path) -> (Self, Vec<String>) {
        let (opt_out, out_note) = Phrases::load(dir, OPT_OUT_FILE, OPT_OUT_BUILT_IN);
        let (opt_in, in_note) = Phrases::load(dir, OPT_IN_FILE, OPT_IN_BUILT_IN);
        (Self { opt_out, opt_in }, out_note.into_iter().chain(in_note).collect())
    }

    /// What `text` asks about promotional messages, if anything. An opt-in
    /// counts only for someone who opted out (the caller knows): for anyone
    /// else "mulai" is an ordinary message.
    pub fn asked(&self, text: &str) -> Option<Asked> {
        match self.opt_out.find_in(text) {
            Some(phrase) => Some(Asked::OptOut(phrase)),
            None => self.opt_in.find_in(text).map(Asked::OptIn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> ConsentPhrases {
        ConsentPhrases {
            opt_out: Phrases::parse(OPT_OUT_BUILT_IN).expect("the shipped opt-out list parses"),
            opt_in: Phrases::parse(OPT_IN_BUILT_IN).expect("the shipped opt-in list parses"),
        }
    }

    fn opts_out(phrases: &ConsentPhrases, text: &str) -> bool {
        matches!(phrases.asked(text), Some(Asked::OptOut(_)))
    }

    #[test]
    fn every_shipped_phrase_is_recognised() {
        let phrases = shipped();
        for example in phrases.opt_out.examples() {
            assert!(opts_out(&phrases, &example), "{example:?}");
        }
        for example in phrases.opt_in.examples() {
            assert!(matches!(phrases.asked(&example), Some(Asked::OptIn(_))), "{example:?}");
        }
    }

    #[test]
    fn informal_opt_outs_are_recognised() {
        let phrases = shipped();
        for text in [
            "STOP",
            "stop",
            "Stop.",
            "STOP!!!",
            " stop dong kak ",
            "berhenti",
            "Berhenti!",
            "unsubscribe",
            "UNSUBSCRIBE please",
            "stop promo",
            "berhenti berlangganan",
            "tolong jangan kirim promo lagi ya",
            "gak mau terima promo lagi",
            "min, stop kirim iklan",
        ] {
            assert!(opts_out(&phrases, text), "{text:?}");
        }
    }

    #[test]
    fn a_stop_inside_a_question_is_a_question() {
        let phrases = shipped();
        for text in [
            "stop dulu ya, saya mau tanya jadwal dokter",
            "kenapa internet saya stop terus?",
            "berhenti langganan internet caranya gimana?",
            "kalau berhenti bayar apa diputus?",
            "bus stop terdekat di mana",
            "promo apa hari ini",
            "mulai jam berapa kliniknya?",
            "start paket 20 mbps berapa",
        ] {
            assert_eq!(phrases.asked(text), None, "{text:?}");
        }
    }

    #[test]
    fn informal_opt_ins_are_recognised() {
        let phrases = shipped();
        for text in ["START", "mulai", "Mulai lagi dong", "langganan lagi", "mau terima promo lagi"] {
            assert!(matches!(phrases.asked(text), Some(Asked::OptIn(_))), "{text:?}");
        }
    }

    #[test]
    fn tags_read_the_same_everywhere() {
        assert_eq!(Tag::parse(" Pasien Gigi ").unwrap().as_str(), "pasien-gigi");
        assert_eq!(
            Tag::list("vip; Paket-20mbps,vip,,").unwrap().iter().map(Tag::as_str).collect::<Vec<_>>(),
            ["paket-20mbps", "vip"]
        );
        for bad in ["", "a/b", "=cmd()", &"x".repeat(MAX_TAG_CHARS + 1)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
        let many = (0..=MAX_TAGS).map(|n| format!("t{n}")).collect::<Vec<_>>().join(",");
        assert_eq!(Tag::list(&many), Err(ContactError::TooManyTags));
    }

    #[test]
    fn names_are_one_line() {
        assert_eq!(contact_name("  Bu Sari ").unwrap().as_deref(), Some("Bu Sari"));
        assert_eq!(contact_name("  ").unwrap(), None);
        assert!(contact_name("Sari\nBudi").is_err());
        assert!(contact_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn sources_keep_who_and_count_by_kind() {
        assert_eq!(ChangeSource::admin("Sari").as_str(), "admin:Sari");
        assert_eq!(ChangeSource::admin("Sari").kind(), "admin");
        assert_eq!(ChangeSource::customer().kind(), "customer");
        assert_eq!(ChangeSource::import().kind(), "import");
        assert!(ChangeSource::is_customer(ChangeSource::customer().as_str()));
        assert!(!ChangeSource::is_customer("admin:customer"));
    }
}
