//! Reads one WAHA webhook event into domain values.
//!
//! WAHA posts one event per request: `{ event, session, payload, me, ... }`.
//! As with the Cloud API, the payload is walked as loose JSON, because its
//! fields differ between WAHA's engines (WEBJS, NOWEB, GOWS) and versions:
//! whatever does not fit is counted in `ignored`, and only a body that is
//! not a JSON object is an error.

use crate::channels::loose::{array, non_blank, number};
use crate::domain::{
    clean_text, Attachment, AttachmentSource, DeliveryStatus, Echo, InboundMessage, MessageContent, PersonRef,
    PhoneNumber, StatusUpdate, WaMessageId,
};
use serde_json::{Map, Value};

/// Everything one event carries that the bridge acts on.
#[derive(Debug, Default, PartialEq)]
pub struct WahaEvent {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    /// Messages the business's own number sent (`fromMe`): through us, or
    /// typed by a person on the phone.
    pub own: Vec<OwnMessage>,
    /// A `session.status` event: WAHA's new state of the session.
    pub session_status: Option<String>,
    /// Events and messages understood but not acted on (other sessions,
    /// groups, channels, unknown events); counted, never an error.
    pub ignored: usize,
}

/// A message sent from the business's number, seen in `message.any`.
#[derive(Debug, PartialEq)]
pub struct OwnMessage {
    pub echo: Echo,
    /// WAHA says it was sent through its API (`source: "api"`): by us.
    /// Older WAHA versions do not say, and then the outbox decides.
    pub via_api: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("body is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the bridge takes from WAHA: the session it talks through, and
/// whether messages written in groups are answered.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub session: &'a str,
    pub groups: bool,
}

/// Parses the raw body (already HMAC-checked) of a WAHA webhook.
pub fn parse_event(body: &[u8], scope: &Scope<'_>) -> Result<WahaEvent, EventError> {
    let root = Value::Object(serde_json::from_slice::<Map<String, Value>>(body)?);
    let mut event = WahaEvent::default();
    // Another session on the same WAHA is another number: not ours to answer.
    if root["session"].as_str() != Some(scope.session) {
        event.ignored += 1;
        return Ok(event);
    }
    let payload = &root["payload"];
    match root["event"].as_str().unwrap_or_default() {
        // `message` and `message.any` carry the same customer message; the
        // message id makes the second a duplicate in the store.
        "message" | "message.any" => event.add_message(payload, scope),
        "message.ack" => match ack(payload, &root) {
            Some(status) => event.statuses.push(status),
            None => event.ignored += 1,
        },
        "session.status" => match non_blank(&payload["status"]) {
            Some(status) => event.session_status = Some(status),
            None => event.ignored += 1,
        },
        _ => event.ignored += 1,
    }
    Ok(event)
}

/// WhatsApp's own bookkeeping that arrives as messages in WEBJS
/// (`_data.type`): never something a person wrote.
const NOTICES: [&str; 6] = ["e2e_notification", "notification_template", "gp2", "protocol", "revoked", "call_log"];

impl WahaEvent {
    fn add_message(&mut self, payload: &Value, scope: &Scope<'_>) {
        let from_me = payload["fromMe"].as_bool().unwrap_or(false);
        // The chat is the other side: where a message came from, or where
        // one of ours went.
        let chat = if from_me { &payload["to"] } else { &payload["from"] };
        let Some(person) = person_of(chat, &payload["participant"], scope) else {
            self.ignored += 1;
            return;
        };
        let (Some(id), Some(content)) = (message_id(&payload["id"]), content(payload)) else {
            self.ignored += 1;
            return;
        };
        let sent_at = seconds(&payload["timestamp"]);
        if from_me {
            let via_api = payload["source"].as_str() == Some("api");
            self.own.push(OwnMessage { echo: Echo { id, to: person, sent_at, content }, via_api });
            return;
        }
        let mut from = person;
        from.profile_name =
            non_blank(&payload["_data"]["notifyName"]).or_else(|| non_blank(&payload["_data"]["pushName"]));
        let reply_to = message_id(&payload["replyTo"]["id"]).or_else(|| message_id(&payload["replyTo"]));
        self.messages.push(InboundMessage { id, from, sent_at, content, reply_to });
    }
}

/// The person behind a chat id. `628…@c.us` is a phone number. A group
/// (`…@g.us`) counts only with `WAHA_GROUPS`, as its `participant`, who is
/// then answered in a private chat. Hidden ids (`@lid`), WhatsApp Channels
/// (`@newsletter`) and status updates (`status@broadcast`) carry no number
/// we could answer, so they are left out.
fn person_of(chat: &Value, participant: &Value, scope: &Scope<'_>) -> Option<PersonRef> {
    let chat = chat.as_str()?;
    let phone = match chat.rsplit_once('@')? {
        (_, "g.us") if scope.groups => phone_of(participant.as_str()?)?,
        (number, "c.us" | "s.whatsapp.net") => PhoneNumber::parse(number).ok()?,
        _ => return None,
    };
    PersonRef::new(Some(phone), None).ok()
}

fn phone_of(chat_id: &str) -> Option<PhoneNumber> {
    match chat_id.rsplit_once('@')? {
        (number, "c.us" | "s.whatsapp.net") => PhoneNumber::parse(number).ok(),
        _ => None,
    }
}

/// A message's content; `None` for WhatsApp's notices, which are not messages.
fn content(payload: &Value) -> Option<MessageContent> {
    let raw_type = payload["_data"]["type"].as_str().unwrap_or_default();
    if NOTICES.contains(&raw_type) {
        return None;
    }
    let body = non_blank(&payload["body"]);
    if payload["hasMedia"].as_bool() == Some(true) {
        let media = &payload["media"];
        let mime = non_blank(&media["mimetype"]).filter(|mime| mime.len() <= 128);
        return Some(MessageContent::Media {
            kind: media_kind(raw_type, mime.as_deref()).to_owned(),
            caption: body,
            attachment: attachment(media, mime),
        });
    }
    let location = &payload["location"];
    if let (Some(latitude), Some(longitude)) = (number(&location["latitude"]), number(&location["longitude"])) {
        return Some(MessageContent::Location {
            name: non_blank(&location["description"]).or_else(|| non_blank(&location["name"])),
            address: non_blank(&location["address"]),
            latitude,
            longitude,
        });
    }
    let cards: Vec<String> = array(&payload["vCards"]).iter().filter_map(|card| card_name(card.as_str()?)).collect();
    if !cards.is_empty() {
        return Some(MessageContent::Contacts(cards));
    }
    Some(match body {
        Some(text) => MessageContent::Text(text),
        None => {
            MessageContent::Unsupported { kind: clean_text(if raw_type.is_empty() { "unknown" } else { raw_type }) }
        }
    })
}

/// The kind the rest of the bridge knows (image, video, audio, document,
/// sticker), from WEBJS's type when there is one, else from the MIME type.
fn media_kind(raw_type: &str, mime: Option<&str>) -> &'static str {
    match raw_type {
        "image" => return "image",
        "video" | "gif" => return "video",
        "ptt" | "audio" => return "audio",
        "sticker" => return "sticker",
        "document" => return "document",
        _ => {}
    }
    match mime.and_then(|mime| mime.split('/').next()) {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "document",
    }
}

/// Longest media URL taken from an event; WAHA's are well under this.
const MAX_MEDIA_URL: usize = 2048;

/// Where WAHA keeps the file: `media.url`, fetched later with the API key
/// (see `media.rs`). `None` when WAHA could not download it either.
fn attachment(media: &Value, mime: Option<String>) -> Option<Attachment> {
    let url = media["url"].as_str()?.trim();
    let usable = !url.is_empty()
        && url.len() <= MAX_MEDIA_URL
        && (url.starts_with("http://") || url.starts_with("https://"))
        && !url.chars().any(char::is_control);
    if !usable || !media["error"].is_null() {
        return None;
    }
    Some(Attachment {
        source: AttachmentSource::Provider(url.to_owned()),
        mime,
        file_name: non_blank(&media["filename"]).map(|name| name.chars().take(200).collect()),
    })
}

/// A vCard as "name (numbers)", from its `FN` and `TEL` lines.
fn card_name(vcard: &str) -> Option<String> {
    let field = |line: &str, key: &str| -> Option<String> {
        let (name, value) = line.split_once(':')?;
        let name = name.split(';').next()?.trim();
        name.eq_ignore_ascii_case(key).then(|| clean_text(value.trim())).filter(|v| !v.is_empty())
    };
    let lines: Vec<&str> = vcard.lines().collect();
    let name = lines.iter().find_map(|line| field(line, "FN"));
    let numbers: Vec<String> = lines.iter().filter_map(|line| field(line, "TEL")).collect();
    match (name, numbers.is_empty()) {
        (Some(name), true) => Some(name),
        (Some(name), false) => Some(format!("{name} ({})", numbers.join(", "))),
        (None, false) => Some(numbers.join(", ")),
        (None, true) => None,
    }
}

/// A `message.ack` of one of our messages. PENDING (0) is the clock icon:
/// not yet anywhere, so nothing to record.
fn ack(payload: &Value, root: &Value) -> Option<StatusUpdate> {
    if payload["fromMe"].as_bool() == Some(false) {
        // The ack of a message a customer sent us: our own read receipt.
        return None;
    }
    let by_name = payload["ackName"].as_str().and_then(|name| match name {
        "ERROR" => Some(-1),
        "PENDING" => Some(0),
        "SERVER" => Some(1),
        "DEVICE" => Some(2),
        "READ" => Some(3),
        "PLAYED" => Some(4),
        _ => None,
    });
    let status = match by_name.or_else(|| payload["ack"].as_i64())? {
        -1 => DeliveryStatus::Failed,
        1 => DeliveryStatus::Sent,
        2 => DeliveryStatus::Delivered,
        3 => DeliveryStatus::Read,
        4 => DeliveryStatus::Played,
        _ => return None,
    };
    let failed = status == DeliveryStatus::Failed;
    // The event's time is in milliseconds; the ack payload has none of its own.
    let timestamp = payload["timestamp"]
        .as_f64()
        .map(|secs| secs as i64)
        .or_else(|| root["timestamp"].as_i64().map(|ms| ms / 1000))
        .unwrap_or(0);
    Some(StatusUpdate {
        message_id: message_id(&payload["id"])?,
        status,
        timestamp,
        error_code: None,
        error_title: failed.then(|| "WhatsApp reported the message as not sent (ack ERROR)".to_owned()),
        recipient: phone_of(payload["to"].as_str().unwrap_or_default()).map(|phone| phone.expose().to_owned()),
    })
}

/// Unix seconds; reactions and some engines write fractions.
fn seconds(value: &Value) -> i64 {
    number(value).map(|secs| secs as i64).unwrap_or(0)
}

/// WAHA's id is a string (`false_628…@c.us_3EB0…`); some engines pass
/// WEBJS's object with `_serialized` through.
pub(super) fn message_id(value: &Value) -> Option<WaMessageId> {
    let raw = value.as_str().or_else(|| value["_serialized"].as_str())?;
    WaMessageId::parse(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/waha");
    const SCOPE: Scope<'static> = Scope { session: "default", groups: false };

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{FIXTURES}/{name}.json");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse(name: &str) -> WahaEvent {
        parse_event(&fixture(name), &SCOPE).unwrap()
    }

    fn only_message(name: &str) -> InboundMessage {
        let event = parse(name);
        assert_eq!((event.statuses.len(), event.own.len(), event.ignored), (0, 0, 0), "{event:?}");
        let [message] = <[InboundMessage; 1]>::try_from(event.messages).unwrap();
        message
    }

    fn phone(number: &str) -> PersonRef {
        PersonRef::new(Some(PhoneNumber::parse(number).unwrap()), None).unwrap()
    }

    #[test]
    fn every_event_fixture_parses_into_one_thing() {
        let mut count = 0;
        for entry in std::fs::read_dir(FIXTURES).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if !(name.starts_with("message") || name.starts_with("session_status")) {
                continue;
            }
            let event = parse_event(&std::fs::read(&path).unwrap(), &SCOPE).unwrap();
            let seen = event.messages.len()
                + event.statuses.len()
                + event.own.len()
                + event.ignored
                + usize::from(event.session_status.is_some());
            assert_eq!(seen, 1, "{name}: {event:?}");
            count += 1;
        }
        assert!(count >= 15, "fixtures missing from {FIXTURES}");
    }

    #[test]
    fn a_text_message_carries_id_sender_name_time_and_body() {
        let message = only_message("message__text");
        let mut from = phone("6281234567789");
        from.profile_name = Some("Budi".into());
        let expected = InboundMessage {
            id: WaMessageId::parse("false_6281234567789@c.us_3EB0A1B2C3D4E5F60718").unwrap(),
            from,
            sent_at: 1733360000,
            content: MessageContent::Text("halo kak, jam buka kapan?".into()),
            reply_to: None,
        };
        assert_eq!(message, expected);
        assert_eq!(only_message("message_any__text"), expected, "message.any carries the same message");
    }

    #[test]
    fn media_keeps_kind_caption_url_and_type() {
        let photo = only_message("message__image").content;
        let MessageContent::Media { kind, caption, attachment: Some(file) } = photo else { panic!("{photo:?}") };
        assert_eq!((kind.as_str(), caption.as_deref()), ("image", Some("foto KTP saya")));
        assert_eq!(
            file.source,
            AttachmentSource::Provider(
                "http://localhost:3000/api/files/default/false_6281234567789@c.us_3EB0IMAGE000000000001.jpeg".into()
            )
        );
        assert_eq!(file.mime.as_deref(), Some("image/jpeg"));
        let voice = only_message("message__voice").content;
        assert_eq!(voice.kind(), "audio");
        assert_eq!(voice.attachment().unwrap().mime.as_deref(), Some("audio/ogg; codecs=opus"));
    }

    #[test]
    fn media_waha_could_not_download_has_no_file() {
        let mut body: Value = serde_json::from_slice(&fixture("message__image")).unwrap();
        body["payload"]["media"]["error"] = serde_json::json!({ "message": "download failed" });
        let event = parse_event(body.to_string().as_bytes(), &SCOPE).unwrap();
        assert_eq!(event.messages[0].content.attachment(), None);
        body["payload"]["media"] = serde_json::json!({ "url": "file:///etc/passwd", "mimetype": "image/jpeg" });
        let event = parse_event(body.to_string().as_bytes(), &SCOPE).unwrap();
        assert_eq!(event.messages[0].content.attachment(), None);
    }

    #[test]
    fn locations_contacts_and_replies_are_read() {
        let MessageContent::Location { name, latitude, longitude, .. } = only_message("message__location").content
        else {
            panic!()
        };
        assert_eq!((name.as_deref(), latitude, longitude), (Some("Kantor Camat"), -6.9147, 107.6098));
        assert_eq!(
            only_message("message__vcard").content,
            MessageContent::Contacts(vec!["Sari Wulandari (+62 857-1234-5678)".into()])
        );
        let reply = only_message("message__reply");
        assert_eq!(reply.reply_to.unwrap().as_str(), "true_6281234567789@c.us_3EB0C0FFEE0000000001");
    }

    #[test]
    fn own_messages_are_echoes_to_the_customer_marked_by_their_source() {
        let event = parse("message_any__from_phone");
        assert!(event.messages.is_empty());
        let [own] = <[OwnMessage; 1]>::try_from(event.own).unwrap();
        assert!(!own.via_api);
        assert_eq!(own.echo.to, phone("6281234567789"));
        assert_eq!(own.echo.id.as_str(), "true_6281234567789@c.us_3EB0FFEE00112233AABB");
        assert_eq!(own.echo.text(), "Halo kak Budi, saya Sari dari toko. Besok kami buka jam 8.");
        assert!(parse("message_any__from_api").own[0].via_api);
    }

    #[test]
    fn groups_count_only_when_enabled_and_then_as_their_participant() {
        assert_eq!(parse("message__group").ignored, 1);
        let event = parse_event(&fixture("message__group"), &Scope { session: "default", groups: true }).unwrap();
        assert_eq!(event.messages[0].from.phone().unwrap().expose(), "6281234567789");
    }

    #[test]
    fn hidden_ids_channels_and_status_updates_are_ignored() {
        for name in ["message__lid", "message__newsletter", "message__status_broadcast"] {
            let event = parse(name);
            assert_eq!((event.messages.len(), event.ignored), (0, 1), "{name}");
        }
    }

    #[test]
    fn other_sessions_and_unknown_events_are_ignored() {
        let other = parse_event(&fixture("message__text"), &Scope { session: "sales", groups: false }).unwrap();
        assert_eq!((other.messages.len(), other.ignored), (0, 1));
        let unknown = parse_event(br#"{"event":"presence.update","session":"default","payload":{}}"#, &SCOPE).unwrap();
        assert_eq!(unknown.ignored, 1);
        let no_id = parse_event(
            br#"{"event":"message","session":"default","payload":{"from":"6281234567789@c.us","body":"x"}}"#,
            &SCOPE,
        )
        .unwrap();
        assert_eq!((no_id.messages.len(), no_id.ignored), (0, 1));
    }

    #[test]
    fn acks_become_delivery_statuses_of_our_messages() {
        let event = parse("message_ack__read");
        let expected = StatusUpdate {
            message_id: WaMessageId::parse("true_6281234567789@c.us_3EB0C0FFEE0000000001").unwrap(),
            status: DeliveryStatus::Read,
            timestamp: 1733360300,
            error_code: None,
            error_title: None,
            recipient: Some("6281234567789".into()),
        };
        assert_eq!(event.statuses, [expected]);
        let failed = &parse("message_ack__error").statuses[0];
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert!(failed.error_title.is_some());
        let ack = |name: &str, number: i64| {
            let body = format!(
                r#"{{"event":"message.ack","session":"default","timestamp":1733360300000,
                "payload":{{"id":"true_1@c.us_A","to":"6281234567789@c.us","fromMe":true,"ack":{number},"ackName":"{name}"}}}}"#
            );
            parse_event(body.as_bytes(), &SCOPE).unwrap().statuses.first().map(|s| s.status)
        };
        assert_eq!(ack("SERVER", 1), Some(DeliveryStatus::Sent));
        assert_eq!(ack("DEVICE", 2), Some(DeliveryStatus::Delivered));
        assert_eq!(ack("PLAYED", 4), Some(DeliveryStatus::Played));
        assert_eq!(ack("PENDING", 0), None);
        assert_eq!(ack("SOMETHING_NEW", 2), Some(DeliveryStatus::Delivered), "the number when the name is new");
    }

    #[test]
    fn session_status_events_say_the_new_state() {
        assert_eq!(parse("session_status__scan_qr_code").session_status.as_deref(), Some("SCAN_QR_CODE"));
        assert_eq!(parse("session_status__working").session_status.as_deref(), Some("WORKING"));
    }

    #[test]
    fn only_bodies_that_are_not_a_json_object_are_errors() {
        for body in [&b"not json"[..], b"[]", b"\"x\"", b"{"] {
            assert!(parse_event(body, &SCOPE).is_err(), "{body:?}");
        }
        assert_eq!(parse_event(b"{}", &SCOPE).unwrap().ignored, 1);
    }
}
