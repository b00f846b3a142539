//! Reads one Fonnte webhook body into what the bot acts on.
//!
//! Fonnte posts one event per request: an incoming message (its "webhook"
//! URL) or a status change of a message we sent (its "webhook status" URL,
//! which may point here too). Its documentation shows JSON bodies; older
//! integrations and some proxies send the same fields form-encoded, so both
//! are read into one flat map of fields before anything is interpreted.
//! Every value may arrive as a string or a number, and every field may be
//! missing: Fonnte adds fields by package and by date.

use crate::domain::{
    clean_text, Attachment, AttachmentSource, DeliveryStatus, InboundMessage, MessageContent, PersonRef, PhoneNumber,
    StatusUpdate, WaMessageId,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What one webhook POST carries.
#[derive(Debug, PartialEq)]
pub enum FonnteEvent {
    Message(Box<InboundMessage>),
    Status(StatusUpdate),
    /// Understood and deliberately not acted on, with the reason (a label
    /// for metrics): group chats, the device's own messages, connection
    /// events, statuses that say nothing yet.
    Ignored(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("body is not form-encoded: {0}")]
    Form(#[from] serde_urlencoded::de::Error),
    #[error("body has none of Fonnte's fields (sender, id, device)")]
    NotFonnte,
    #[error("sender is not a phone number")]
    Sender,
}

/// Longest attachment URL taken: Fonnte's are well under this; a longer
/// one is not worth fetching.
const MAX_URL_CHARS: usize = 2048;

/// Parses a webhook body. `received_at` (Unix seconds) stands in for a
/// timestamp Fonnte did not send.
pub fn parse_webhook(body: &[u8], content_type: Option<&str>, received_at: i64) -> Result<FonnteEvent, PayloadError> {
    let fields = Fields::read(body, content_type)?;
    if fields.text("sender").is_some() {
        return message(&fields, received_at);
    }
    if fields.text("id").is_some() && ["state", "status", "stateid"].iter().any(|key| fields.text(key).is_some()) {
        return Ok(status(&fields, received_at));
    }
    if fields.text("device").is_some() {
        // A connection event ("webhook connect") or something newer.
        return Ok(FonnteEvent::Ignored("event"));
    }
    Err(PayloadError::NotFonnte)
}

fn message(fields: &Fields, received_at: i64) -> Result<FonnteEvent, PayloadError> {
    let raw_sender = fields.text("sender").unwrap_or_default();
    let (sender, server) = raw_sender.split_once('@').unwrap_or((&raw_sender, ""));
    let in_group = server == "g.us" || fields.flag("isgroup") || fields.text("member").is_some();
    if in_group {
        return Ok(FonnteEvent::Ignored("group"));
    }
    let device = fields.text("device").map(|d| digits(&d)).unwrap_or_default();
    // Fonnte forwards what the device's own number writes (its "quick",
    // self-chat messages): the business talking, never a customer. `device`
    // is the number the owner typed when adding the device, normally the
    // WhatsApp number itself; where it is not, `quick` still marks them.
    if fields.flag("quick") || (!device.is_empty() && digits(sender) == device) {
        return Ok(FonnteEvent::Ignored("own_message"));
    }
    let phone = PhoneNumber::parse(sender).map_err(|_| PayloadError::Sender)?;
    let mut from = PersonRef::new(Some(phone), None).map_err(|_| PayloadError::Sender)?;
    from.profile_name = fields.text("name").or_else(|| fields.text("pushname")).map(|name| clean_text(&name));
    let sent_at = fields.text("timestamp").and_then(|t| unix_seconds(&t));
    Ok(FonnteEvent::Message(Box::new(InboundMessage {
        id: message_id(fields, &device, sender, sent_at, received_at)?,
        from,
        sent_at: sent_at.unwrap_or(received_at),
        content: content(fields),
        reply_to: None,
    })))
}

/// Fonnte's own id for the message when it sent one (`inboxid`); otherwise
/// a hash of what identifies this message, so that a redelivery of the same
/// body is the same id. Without a timestamp the minute it arrived stands in:
/// a redelivery within it is recognised, and the same words sent twice in
/// one minute count once, which loses nothing the bot would answer.
fn message_id(
    fields: &Fields,
    device: &str,
    sender: &str,
    sent_at: Option<i64>,
    received_at: i64,
) -> Result<WaMessageId, PayloadError> {
    let fonnte_id = fields.text("inboxid").and_then(|id| WaMessageId::parse(&format!("fonnte:{device}:{id}")).ok());
    if let Some(id) = fonnte_id {
        return Ok(id);
    }
    let when = sent_at.map_or_else(|| format!("m{}", received_at / 60), |t| t.to_string());
    let mut hash = Sha256::new();
    for part in [device, sender, &when] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for key in ["message", "text", "url", "location"] {
        hash.update(fields.text(key).unwrap_or_default().as_bytes());
        hash.update([0]);
    }
    WaMessageId::parse(&format!("fonnte:h:{}", &hex::encode(hash.finalize())[..40]))
        .map_err(|_| PayloadError::NotFonnte)
}

/// A file wins (its words are the caption), then a shared location, then
/// words, then a tapped button's text.
fn content(fields: &Fields) -> MessageContent {
    let words = fields.text("message").map(|m| clean_text(&m)).filter(|m| !m.trim().is_empty());
    if let Some(url) = fields.text("url") {
        let extension = fields
            .text("extension")
            .or_else(|| fields.text("filename").and_then(|f| f.rsplit_once('.').map(|(_, ext)| ext.to_owned())))
            .map(|ext| ext.trim_start_matches('.').to_ascii_lowercase());
        let (kind, mime) = kind_and_mime(fields.text("type").as_deref(), extension.as_deref());
        let usable = url.len() <= MAX_URL_CHARS && (url.starts_with("https://") || url.starts_with("http://"));
        return MessageContent::Media {
            kind: kind.to_owned(),
            caption: words,
            attachment: usable.then(|| Attachment {
                source: AttachmentSource::Provider(url),
                mime: mime.map(str::to_owned),
                file_name: fields.text("filename").map(|name| clean_text(&name)),
            }),
        };
    }
    if let Some((latitude, longitude)) = fields.text("location").as_deref().and_then(coordinates) {
        return MessageContent::Location { name: None, address: words, latitude, longitude };
    }
    if let Some(words) = words {
        return MessageContent::Text(words);
    }
    if let Some(button) = fields.text("text") {
        return MessageContent::Reply { title: clean_text(&button) };
    }
    if fields.text("pollname").is_some() {
        return MessageContent::Unsupported { kind: "poll".into() };
    }
    MessageContent::Unsupported { kind: fields.text("type").map_or_else(|| "unknown".into(), |t| clean_text(&t)) }
}

/// The media kind the bot reads a file as, and its MIME type when the
/// extension tells. Fonnte gives an extension (and sometimes a `type`), not
/// a MIME type.
pub(super) fn kind_and_mime(kind: Option<&str>, extension: Option<&str>) -> (&'static str, Option<&'static str>) {
    let by_extension = match extension.unwrap_or_default() {
        "jpg" | "jpeg" => ("image", Some("image/jpeg")),
        "png" => ("image", Some("image/png")),
        "webp" => ("sticker", Some("image/webp")),
        "gif" => ("image", Some("image/gif")),
        "mp4" => ("video", Some("video/mp4")),
        "3gp" => ("video", Some("video/3gpp")),
        "ogg" | "oga" | "opus" => ("audio", Some("audio/ogg")),
        "mp3" => ("audio", Some("audio/mpeg")),
        "m4a" => ("audio", Some("audio/mp4")),
        "aac" => ("audio", Some("audio/aac")),
        "amr" => ("audio", Some("audio/amr")),
        "pdf" => ("document", Some("application/pdf")),
        "txt" => ("document", Some("text/plain")),
        "doc" => ("document", Some("application/msword")),
        "docx" => ("document", Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")),
        "xls" => ("document", Some("application/vnd.ms-excel")),
        "xlsx" => ("document", Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
        _ => ("document", None),
    };
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("image") => ("image", by_extension.1),
        Some("video") => ("video", by_extension.1),
        Some("audio") | Some("ptt") | Some("voice") => ("audio", by_extension.1),
        Some("sticker") => ("sticker", by_extension.1),
        Some("document") | Some("file") => ("document", by_extension.1),
        _ => by_extension,
    }
}

/// Fonnte's location is "latitude,longitude".
fn coordinates(raw: &str) -> Option<(f64, f64)> {
    let (lat, long) = raw.split_once(',')?;
    let (lat, long): (f64, f64) = (lat.trim().parse().ok()?, long.trim().parse().ok()?);
    let valid = lat.is_finite() && long.is_finite() && lat.abs() <= 90.0 && long.abs() <= 180.0;
    valid.then_some((lat, long))
}

/// A status change of a message we sent. `state` is WhatsApp's
/// acknowledgement of the message (sent, delivered, read); `status` is
/// Fonnte's own processing state, which only matters when it failed.
fn status(fields: &Fields, received_at: i64) -> FonnteEvent {
    let Some(id) = fields.text("id").and_then(|id| WaMessageId::parse(&format!("fonnte:{id}")).ok()) else {
        return FonnteEvent::Ignored("status_without_id");
    };
    let state = fields.text("state").map(|s| s.to_ascii_lowercase());
    let processing = fields.text("status").map(|s| s.to_ascii_lowercase());
    let acknowledged = match state.as_deref() {
        Some("read") => Some(DeliveryStatus::Read),
        Some("played") => Some(DeliveryStatus::Played),
        Some("delivered" | "received" | "delivery_ack") => Some(DeliveryStatus::Delivered),
        Some("sent" | "server" | "server_ack") => Some(DeliveryStatus::Sent),
        _ => None,
    };
    let failed = matches!(processing.as_deref(), Some("invalid" | "expired" | "url unreachable" | "failed" | "error"));
    let (status, error_title) = match (acknowledged, failed) {
        (_, true) => (DeliveryStatus::Failed, processing.map(|p| format!("Fonnte: {p}"))),
        (Some(status), false) => (status, None),
        (None, false) if processing.as_deref() == Some("sent") => (DeliveryStatus::Sent, None),
        // pending, waiting, processing: not out yet, nothing to record.
        (None, false) => return FonnteEvent::Ignored("status_in_progress"),
    };
    FonnteEvent::Status(StatusUpdate {
        message_id: id,
        status,
        timestamp: fields.text("timestamp").and_then(|t| unix_seconds(&t)).unwrap_or(received_at),
        error_code: None,
        error_title,
        recipient: fields.text("target").map(|t| digits(&t)).filter(|t| !t.is_empty()),
    })
}

/// The body's fields, whatever the encoding.
struct Fields(Map<String, Value>);

impl Fields {
    fn read(body: &[u8], content_type: Option<&str>) -> Result<Self, PayloadError> {
        let declared_json = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("json"));
        let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if declared_json || looks_json {
            // Reading into a map makes `[]` or `"x"` a JSON error.
            return Ok(Self(serde_json::from_slice::<Map<String, Value>>(body)?));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)?;
        Ok(Self(pairs.into_iter().map(|(key, value)| (key, Value::String(value))).collect()))
    }

    /// A field as trimmed, non-empty text; numbers and booleans as written.
    fn text(&self, key: &str) -> Option<String> {
        let text = match self.0.get(key)? {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.text(key).as_deref(), Some("true" | "1"))
    }
}

fn digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

/// Unix seconds from seconds or milliseconds.
fn unix_seconds(raw: &str) -> Option<i64> {
    let value: i64 = raw.trim().parse().ok()?;
    let seconds = if value > 100_000_000_000 { value / 1000 } else { value };
    (seconds > 0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_733_000_000;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/fonnte/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    fn parse_json(name: &str) -> FonnteEvent {
        parse_webhook(&fixture(name), Some("application/json"), NOW).unwrap()
    }

    fn only_message(event: FonnteEvent) -> InboundMessage {
        match event {
            FonnteEvent::Message(message) => *message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn a_text_message_has_its_sender_name_words_and_a_stable_id() {
        let message = only_message(parse_json("message_text.json"));
        assert_eq!(message.from.phone().unwrap().expose(), "6281234567789");
        assert_eq!(message.from.profile_name.as_deref(), Some("Budi"));
        assert_eq!(message.content, MessageContent::Text("halo kak, jam buka kapan?".into()));
        assert_eq!(message.sent_at, 1_733_000_000);
        assert!(message.id.as_str().starts_with("fonnte:"), "{}", message.id);
        let again = only_message(parse_json("message_text.json"));
        assert_eq!(again.id, message.id, "a redelivery is the same message");
    }

    #[test]
    fn the_same_fields_form_encoded_are_the_same_message() {
        let json = only_message(parse_json("message_text.json"));
        let form = b"device=6282227097005&sender=6281234567789&message=halo+kak%2C+jam+buka+kapan%3F&name=Budi&timestamp=1733000000";
        let form = only_message(parse_webhook(form, Some("application/x-www-form-urlencoded"), NOW).unwrap());
        assert_eq!(form.id, json.id);
        assert_eq!(form.content, json.content);
    }

    #[test]
    fn without_fonntes_id_different_words_or_times_are_different_messages() {
        let body = |text: &str, timestamp: &str| {
            format!(
                r#"{{"device":"6282227097005","sender":"6281234567789","message":"{text}","timestamp":{timestamp}}}"#
            )
        };
        let id = |body: String| only_message(parse_webhook(body.as_bytes(), None, NOW).unwrap()).id;
        assert_ne!(id(body("halo", "1733000000")), id(body("halo", "1733000001")));
        assert_ne!(id(body("halo", "1733000000")), id(body("hai", "1733000000")));
        // No timestamp: the minute of arrival stands in.
        let bare = r#"{"device":"6282227097005","sender":"6281234567789","message":"halo"}"#;
        let at = |now: i64| only_message(parse_webhook(bare.as_bytes(), None, now).unwrap()).id;
        assert_eq!(at(NOW - NOW % 60), at(NOW - NOW % 60 + 59));
        assert_ne!(at(NOW), at(NOW + 120));
    }

    #[test]
    fn fonntes_inbox_id_is_the_message_id_when_present() {
        let message = only_message(parse_json("message_inboxid.json"));
        assert_eq!(message.id.as_str(), "fonnte:6282227097005:98765");
    }

    #[test]
    fn a_photo_keeps_its_url_file_name_type_and_caption() {
        let message = only_message(parse_json("message_image.json"));
        let MessageContent::Media { kind, caption, attachment } = message.content else { panic!("not media") };
        assert_eq!(kind, "image");
        assert_eq!(caption.as_deref(), Some("ini KTP saya"));
        let attachment = attachment.unwrap();
        assert_eq!(attachment.source, AttachmentSource::Provider("https://api.fonnte.com/files/ktp-budi.jpg".into()));
        assert_eq!(attachment.mime.as_deref(), Some("image/jpeg"));
        assert_eq!(attachment.file_name.as_deref(), Some("ktp-budi.jpg"));
    }

    #[test]
    fn a_voice_note_and_a_document_are_read_by_their_extension() {
        let MessageContent::Media { kind, attachment, .. } = only_message(parse_json("message_audio.json")).content
        else {
            panic!("not media")
        };
        assert_eq!((kind.as_str(), attachment.unwrap().mime.as_deref()), ("audio", Some("audio/ogg")));
        let MessageContent::Media { kind, attachment, .. } = only_message(parse_json("message_document.json")).content
        else {
            panic!("not media")
        };
        assert_eq!((kind.as_str(), attachment.unwrap().mime.as_deref()), ("document", Some("application/pdf")));
    }

    #[test]
    fn a_location_is_read_from_latitude_comma_longitude() {
        let message = only_message(parse_json("message_location.json"));
        let MessageContent::Location { latitude, longitude, .. } = message.content else { panic!("not a location") };
        assert_eq!((latitude, longitude), (-6.914744, 107.60981));
    }

    #[test]
    fn a_button_reply_counts_by_its_text() {
        let message = only_message(parse_json("message_button.json"));
        assert_eq!(message.content, MessageContent::Reply { title: "Cek status".into() });
    }

    #[test]
    fn groups_and_the_devices_own_messages_are_ignored() {
        assert_eq!(parse_json("message_group.json"), FonnteEvent::Ignored("group"));
        assert_eq!(parse_json("message_self.json"), FonnteEvent::Ignored("own_message"));
        let quick = br#"{"device":"6282227097005","sender":"6281234567789","message":"tes","quick":true}"#;
        assert_eq!(parse_webhook(quick, None, NOW).unwrap(), FonnteEvent::Ignored("own_message"));
    }

    #[test]
    fn statuses_map_to_delivery_statuses_of_our_sends() {
        let FonnteEvent::Status(read) = parse_json("status_read.json") else { panic!("not a status") };
        assert_eq!(read.message_id.as_str(), "fonnte:80367170");
        assert_eq!(read.status, DeliveryStatus::Read);
        let FonnteEvent::Status(failed) = parse_json("status_invalid.json") else { panic!("not a status") };
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(failed.error_title.as_deref(), Some("Fonnte: invalid"));
        let pending = br#"{"device":"6282227097005","id":"80367171","status":"pending","state":""}"#;
        assert_eq!(parse_webhook(pending, None, NOW).unwrap(), FonnteEvent::Ignored("status_in_progress"));
    }

    #[test]
    fn a_connection_event_is_acknowledged_and_ignored() {
        assert_eq!(parse_json("connect.json"), FonnteEvent::Ignored("event"));
    }

    #[test]
    fn malformed_bodies_and_bad_senders_are_errors() {
        assert!(matches!(parse_webhook(b"{\"sender\": ", None, NOW), Err(PayloadError::Json(_))));
        assert!(matches!(parse_webhook(b"[1,2]", Some("application/json"), NOW), Err(PayloadError::Json(_))));
        assert!(matches!(parse_webhook(b"", None, NOW), Err(PayloadError::NotFonnte)));
        assert!(matches!(parse_webhook(b"hello=world", None, NOW), Err(PayloadError::NotFonnte)));
        let bad_sender = br#"{"device":"6282227097005","sender":"not-a-number","message":"x"}"#;
        assert!(matches!(parse_webhook(bad_sender, None, NOW), Err(PayloadError::Sender)));
    }

    #[test]
    fn controls_in_text_are_cleaned_and_unknown_types_are_kept_as_unsupported() {
        let body = br#"{"device":"6282227097005","sender":"6281234567789","message":"a\u0000b"}"#;
        assert_eq!(only_message(parse_webhook(body, None, NOW).unwrap()).content, MessageContent::Text("ab".into()));
        let empty = br#"{"device":"6282227097005","sender":"6281234567789","message":"","type":"vcard"}"#;
        let content = only_message(parse_webhook(empty, None, NOW).unwrap()).content;
        assert_eq!(content, MessageContent::Unsupported { kind: "vcard".into() });
    }
}
