//! The invariants the fuzz targets in `fuzz/` check, as plain functions: the
//! cargo-fuzz targets (nightly) and `tests/fuzz_corpus.rs` (stable, in CI)
//! run the very same bodies. Each takes raw bytes and panics when an
//! invariant breaks, which is how libFuzzer and the test both see a failure.

use std::sync::LazyLock;
use std::time::Duration;

use tantivy::tokenizer::TokenStream;

use crate::channels::cloud_api::parse_webhook;
use crate::channels::format::{markdown_to_whatsapp, split_for_whatsapp, MAX_MESSAGE_CHARS};
use crate::domain::{Bsuid, DeliveryStatus, PersonRef, PhoneNumber, WaMessageId};
use crate::knowledge::analyzer::indonesian;
use crate::knowledge::document::{extract, Format, SourceFile};

/// The webhook parser never panics, and whatever it accepts is made of
/// values that validate again: nothing reaches the database unchecked.
pub fn webhook_payload(data: &[u8]) {
    let Ok(batch) = parse_webhook(data) else { return };
    for message in &batch.messages {
        assert_eq!(WaMessageId::parse(message.id.as_str()).ok().as_ref(), Some(&message.id));
        assert_person_revalidates(&message.from);
    }
    for status in &batch.statuses {
        assert_eq!(WaMessageId::parse(status.message_id.as_str()).ok().as_ref(), Some(&status.message_id));
        assert_eq!(DeliveryStatus::parse(status.status.as_str()), Some(status.status));
    }
}

fn assert_person_revalidates(person: &PersonRef) {
    let phone = person.phone().map(|phone| PhoneNumber::parse(phone.expose()).expect("phone revalidates"));
    let bsuid = person.bsuid().map(|bsuid| Bsuid::parse(bsuid.expose()).expect("BSUID revalidates"));
    assert_eq!((phone.as_ref(), bsuid.as_ref()), (person.phone(), person.bsuid()));
    PersonRef::new(phone, bsuid).expect("a person has a phone or a BSUID");
    if let Some(parent) = &person.parent_bsuid {
        assert_eq!(Bsuid::parse(parent.expose()).ok().as_ref(), Some(parent));
    }
}

/// Markdown becomes WhatsApp text that is split into parts WhatsApp takes:
/// checked at the real limit, and at a small one derived from the input so
/// that short inputs reach every kind of break as well.
pub fn whatsapp_format(data: &[u8]) {
    let converted = markdown_to_whatsapp(&String::from_utf8_lossy(data));
    assert_split_keeps_promises(&converted, MAX_MESSAGE_CHARS);
    assert_split_keeps_promises(&converted, 1 + data.len() % 97);
}

/// What `split_for_whatsapp` promises: non-empty trimmed parts within the
/// limit that, in order, hold every non-whitespace character of the text.
fn assert_split_keeps_promises(text: &str, max_chars: usize) {
    let parts = split_for_whatsapp(text, max_chars);
    for part in &parts {
        assert!(!part.is_empty(), "empty part of {text:?}");
        assert!(part.chars().count() <= max_chars, "part over {max_chars} chars: {part:?}");
        assert_eq!(part.trim(), part, "untrimmed part");
    }
    let visible = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert_eq!(visible(&parts.concat()), visible(text), "split at {max_chars} lost or moved characters");
}

/// The analyzer never panics on any text, and its tokens are non-empty and
/// point at whole characters inside the text, in increasing positions.
pub fn analyzer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut analyzer = indonesian();
    let mut stream = analyzer.token_stream(&text);
    let mut last_position = None;
    while stream.advance() {
        let token = stream.token();
        assert!(!token.text.is_empty(), "empty token in {text:?}");
        assert!(token.offset_from <= token.offset_to && token.offset_to <= text.len(), "{token:?} outside {text:?}");
        assert!(text.is_char_boundary(token.offset_from) && text.is_char_boundary(token.offset_to), "{token:?}");
        assert!(last_position < Some(token.position), "{token:?} does not advance in {text:?}");
        last_position = Some(token.position);
    }
}

/// Name of the threads that read PDFs here: a panic on them is one the
/// reader catches, which [`quiet_caught_pdf_panics`] keeps out of the way.
const PDF_READER: &str = "fuzz-pdf-reader";

/// Generous for the small inputs fuzzed, so that only a real hang hits it.
const PDF_TIME_LIMIT: Duration = Duration::from_secs(10);

static PDF_RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread().thread_name(PDF_READER).enable_time().build().expect("runtime")
});

/// Reading a PDF never panics out and never hangs the caller: it gives
/// pages with text, or one of the reasons an admin is shown.
pub fn pdf(data: &[u8]) {
    let file = SourceFile { rel: "fuzz.pdf".into(), path: "fuzz.pdf".into(), format: Format::Pdf };
    match PDF_RUNTIME.block_on(extract(&file, data.to_vec(), PDF_TIME_LIMIT)) {
        Ok(document) => {
            assert!(document.paged && !document.title.is_empty());
            assert!(document.has_text(), "accepted without text");
        }
        Err(reason) => {
            let clear = ["the file is empty", "the PDF ", "reading the PDF took longer", "no text found"];
            assert!(clear.iter().any(|start| reason.starts_with(start)), "unclear reason: {reason:?}");
        }
    }
}

/// Panics inside the PDF library are caught by the reader (that is the
/// behaviour checked); this keeps them from printing, or from aborting
/// under libFuzzer, whose hook aborts on any panic. Panics anywhere else
/// still reach the previous hook.
pub fn quiet_caught_pdf_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(PDF_READER) {
            previous(info);
        }
    }));
}
