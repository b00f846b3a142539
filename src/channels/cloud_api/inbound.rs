//! Reads the body of a WhatsApp Cloud API webhook into domain values.
//!
//! Meta adds fields and message types without notice, and one POST can mix
//! several people, messages and statuses. The body is therefore walked as
//! loose JSON: whatever does not fit is counted in `ignored` instead of
//! failing. An error would fail the whole POST, and Meta would redeliver it
//! (failing again each time) while the readable messages in it went
//! unanswered.

use crate::channels::loose::{array, integer, non_blank, number};
use crate::domain::{
    clean_text, Attachment, AttachmentSource, Bsuid, DeliveryStatus, Echo, InboundMessage, MessageContent, PersonRef,
    PhoneNumber, StatusUpdate, WaMessageId,
};
use crate::templates::TemplateUpdate;
use serde_json::{Map, Value};

/// Everything one webhook POST carries that the bot acts on.
#[derive(Debug, Default, PartialEq)]
pub struct WebhookBatch {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    /// What the business sent from the WhatsApp Business app (coexistence).
    pub echoes: Vec<Echo>,
    /// Entries we understood but do not act on (account updates, templates, calls, unknown fields ...), and
    /// messages/statuses dropped because an id or sender failed validation; counted, never an error.
    pub ignored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses the raw body (already signature-checked) of a WhatsApp Cloud API webhook.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    let mut all = WebhookBatch::default();
    for (_, batch) in parse_webhook_by_number(body)? {
        all.messages.extend(batch.messages);
        all.statuses.extend(batch.statuses);
        all.echoes.extend(batch.echoes);
        all.ignored += batch.ignored;
    }
    Ok(all)
}

/// Parses the body into one batch per business number it speaks for
/// (`metadata.phone_number_id`, in order of appearance): one app may
/// carry several numbers, and each answers its own people.
pub fn parse_webhook_by_number(body: &[u8]) -> Result<Vec<(Option<String>, WebhookBatch)>, PayloadError> {
    // Reading into a map rather than a `Value` makes `[]` or `"x"` a JSON
    // error, the only shape of body this module refuses.
    let root = Value::Object(serde_json::from_slice::<Map<String, Value>>(body)?);
    let mut batches: Vec<(Option<String>, WebhookBatch)> = Vec::new();
    for entry in array(&root["entry"]) {
        for change in array(&entry["changes"]) {
            let number = non_blank(&change["value"]["metadata"]["phone_number_id"]);
            let at = match batches.iter().position(|(seen, _)| *seen == number) {
                Some(at) => at,
                None => {
                    batches.push((number, WebhookBatch::default()));
                    batches.len() - 1
                }
            };
            batches[at].1.add_change(change);
        }
    }
    Ok(batches)
}

/// Edits and revokes refer back to a message that already became a turn
/// (`edit.original_message_id`, `revoke.original_message_id`) and carry a
/// fresh message id, so taking them as new messages would make the bot
/// answer the same question twice, or answer a message its sender withdrew.
const CORRECTIONS: [&str; 2] = ["edit", "revoke"];

/// Changes about the business's message templates.
const TEMPLATE_FIELDS: [&str; 2] = ["message_template_status_update", "template_category_update"];

/// What the body says of the business's templates (approved, rejected,
/// paused, recategorised). Entries that do not name a template are skipped:
/// the next refresh of the list catches up with them.
pub fn template_updates(body: &[u8]) -> Vec<TemplateUpdate> {
    let Ok(root) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let mut updates = Vec::new();
    for entry in array(&root["entry"]) {
        for change in array(&entry["changes"]) {
            if !TEMPLATE_FIELDS.contains(&change["field"].as_str().unwrap_or_default()) {
                continue;
            }
            let value = &change["value"];
            let (Some(name), Some(language)) =
                (non_blank(&value["message_template_name"]), non_blank(&value["message_template_language"]))
            else {
                continue;
            };
            let reason = non_blank(&value["rejection_info"]["reason"])
                .or_else(|| non_blank(&value["reason"]))
                .filter(|reason| reason != "NONE");
            updates.push(TemplateUpdate {
                business_account_id: non_blank(&entry["id"]),
                meta_id: integer(&value["message_template_id"]).map(|id| id.to_string()),
                name,
                language,
                status: non_blank(&value["event"]).map(|s| s.to_ascii_uppercase()),
                category: non_blank(&value["new_category"]).or_else(|| non_blank(&value["message_template_category"])),
                reason,
            });
        }
    }
    updates
}

/// What a submitted WhatsApp Flow counts as: its answers are JSON meant for
/// the app that built the form, not words for the model.
const FORM_REPLY: &str = "[formulir]";

impl WebhookBatch {
    fn add_change(&mut self, change: &Value) {
        let value = &change["value"];
        if change["field"] == "smb_message_echoes" {
            return self.add_echoes(value);
        }
        if TEMPLATE_FIELDS.contains(&change["field"].as_str().unwrap_or_default()) {
            return; // read by `template_updates`
        }
        // Account and call updates are not customers talking.
        if change["field"] != "messages" {
            self.ignored += 1;
            return;
        }
        let (messages, statuses) = (array(&value["messages"]), array(&value["statuses"]));
        if messages.is_empty() && statuses.is_empty() {
            // e.g. a change with only an `errors` array: nothing to act on,
            // but it should not vanish from the counts.
            self.ignored += 1;
            return;
        }
        let contacts: Vec<Contact> = array(&value["contacts"]).iter().map(Contact::read).collect();
        let messages = messages.iter().map(|message| inbound_message(message, &contacts));
        self.ignored += keep(messages, &mut self.messages);
        self.ignored += keep(statuses.iter().map(status_update), &mut self.statuses);
    }

    fn add_echoes(&mut self, value: &Value) {
        let echoes = array(&value["message_echoes"]);
        if echoes.is_empty() {
            self.ignored += 1;
            return;
        }
        let contacts: Vec<Contact> = array(&value["contacts"]).iter().map(Contact::read).collect();
        self.ignored += keep(echoes.iter().map(|e| echo(e, &contacts)), &mut self.echoes);
    }
}

/// Appends what was read and returns how many items were dropped.
fn keep<T>(read: impl Iterator<Item = Option<T>>, into: &mut Vec<T>) -> usize {
    let mut dropped = 0;
    for item in read {
        match item {
            Some(value) => into.push(value),
            None => dropped += 1,
        }
    }
    dropped
}

fn inbound_message(message: &Value, contacts: &[Contact]) -> Option<InboundMessage> {
    let content = content(message)?;
    Some(InboundMessage {
        id: message_id(&message["id"])?,
        from: person(Ids::of_sender(message), contacts)?,
        sent_at: unix_seconds(&message["timestamp"]),
        content,
        reply_to: message_id(&message["context"]["id"]),
    })
}

/// An echo is addressed `to` the customer (`from` is the business's own
/// number). Edits and revokes of earlier echoes are not new messages.
fn echo(echo: &Value, contacts: &[Contact]) -> Option<Echo> {
    let content = content(echo)?;
    let to = Ids { phone: phone(&echo["to"]), bsuid: bsuid(&echo["to_user_id"]) };
    Some(Echo {
        id: message_id(&echo["id"])?,
        to: person(to, contacts)?,
        sent_at: unix_seconds(&echo["timestamp"]),
        content,
    })
}

/// A message's content; `None` for corrections, which are not messages.
fn content(message: &Value) -> Option<MessageContent> {
    let kind = message["type"].as_str().unwrap_or("unknown");
    if CORRECTIONS.contains(&kind) {
        return None;
    }
    // The type names the field holding the body: `"type": "image"` goes
    // with `"image": {...}`.
    Some(
        readable_content(kind, &message[kind])
            .unwrap_or_else(|| MessageContent::Unsupported { kind: clean_text(kind) }),
    )
}

/// `None` when the type is unknown or its body is missing or malformed; the
/// caller then keeps the message as `Unsupported`, so that the person who
/// sent it is still heard rather than silently dropped.
fn readable_content(kind: &str, body: &Value) -> Option<MessageContent> {
    match kind {
        "contacts" => Some(MessageContent::Contacts(body.as_array()?.iter().filter_map(card_name).collect())),
        _ if !body.is_object() => None,
        "text" => body["body"].as_str().map(|text| MessageContent::Text(clean_text(text))),
        "image" | "video" | "document" | "audio" | "sticker" => Some(MessageContent::Media {
            kind: kind.to_owned(),
            caption: non_blank(&body["caption"]),
            attachment: attachment(body),
        }),
        "location" => Some(MessageContent::Location {
            name: non_blank(&body["name"]),
            address: non_blank(&body["address"]),
            latitude: number(&body["latitude"])?,
            longitude: number(&body["longitude"])?,
        }),
        "interactive" => interactive_title(body).map(|title| MessageContent::Reply { title }),
        // A template's quick-reply button: `payload` is the developer's id,
        // used only when the button had no text.
        "button" => non_blank(&body["text"])
            .or_else(|| non_blank(&body["payload"]))
            .map(|title| MessageContent::Reply { title }),
        // An empty emoji is how WhatsApp reports a removed reaction.
        "reaction" => Some(MessageContent::Reaction { emoji: non_blank(&body["emoji"]) }),
        "order" => Some(MessageContent::Order { items: array(&body["product_items"]).len() }),
        "system" => non_blank(&body["body"]).or_else(|| non_blank(&body["type"])).map(MessageContent::System),
        _ => None,
    }
}

fn interactive_title(interactive: &Value) -> Option<String> {
    match interactive["type"].as_str()? {
        choice @ ("button_reply" | "list_reply") => {
            let chosen = &interactive[choice];
            // Titles are optional in what WhatsApp sends back; the id still
            // says which option was picked.
            non_blank(&chosen["title"]).or_else(|| non_blank(&chosen["id"]))
        }
        "nfm_reply" => Some(FORM_REPLY.to_owned()),
        _ => None,
    }
}

/// Longest media id taken from a webhook; Meta's are about 16 digits. The
/// id becomes part of a Graph API path, so it is also kept to characters a
/// path segment can hold as they are.
const MAX_MEDIA_ID: usize = 128;

/// Where to fetch a media message's file: `None` for a body without a
/// usable id, which then counts by its caption alone.
fn attachment(body: &Value) -> Option<Attachment> {
    let id = body["id"].as_str()?.trim();
    let path_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if id.is_empty() || id.len() > MAX_MEDIA_ID || !id.chars().all(path_safe) {
        return None;
    }
    Some(Attachment {
        source: AttachmentSource::Provider(id.to_owned()),
        mime: non_blank(&body["mime_type"]).filter(|mime| mime.len() <= 128),
        file_name: non_blank(&body["filename"]).map(|name| name.chars().take(200).collect()),
    })
}

/// A shared contact card as "name (numbers)"; people often save contacts
/// with only a first or last name, and then `formatted_name` may be
/// missing. A card with neither name nor number is left out.
fn card_name(card: &Value) -> Option<String> {
    let name = &card["name"];
    let name = non_blank(&name["formatted_name"]).or_else(|| {
        let parts: Vec<String> = [&name["first_name"], &name["last_name"]].into_iter().filter_map(non_blank).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let numbers: Vec<String> = array(&card["phones"]).iter().filter_map(|phone| non_blank(&phone["phone"])).collect();
    match (name, numbers.is_empty()) {
        (Some(name), true) => Some(name),
        (Some(name), false) => Some(format!("{name} ({})", numbers.join(", "))),
        (None, false) => Some(numbers.join(", ")),
        (None, true) => None,
    }
}

fn status_update(status: &Value) -> Option<StatusUpdate> {
    let first_error = &status["errors"][0];
    Some(StatusUpdate {
        message_id: message_id(&status["id"])?,
        status: DeliveryStatus::parse(status["status"].as_str()?)?,
        timestamp: unix_seconds(&status["timestamp"]),
        error_code: integer(&first_error["code"]),
        error_title: non_blank(&first_error["title"]),
        recipient: non_blank(&status["recipient_id"])
            .or_else(|| non_blank(&status["recipient_user_id"]))
            .filter(|id| id.len() <= 128),
    })
}

/// A person's identifiers as one source states them. Each is validated on
/// its own, so a malformed phone number does not discard a good BSUID.
struct Ids {
    phone: Option<PhoneNumber>,
    bsuid: Option<Bsuid>,
}

impl Ids {
    fn of_sender(message: &Value) -> Self {
        let from = message["from"].as_str().unwrap_or_default();
        Self {
            phone: PhoneNumber::parse(from).ok(),
            // For people who hide their number behind a username, `from` may
            // hold the BSUID; the two formats cannot be mistaken for each other.
            bsuid: bsuid(&message["from_user_id"]).or_else(|| Bsuid::parse(from).ok()),
        }
    }

    /// For each identifier both sides state: whether they are equal.
    fn agreements(&self, other: &Ids) -> impl Iterator<Item = bool> {
        [same(&self.phone, &other.phone), same(&self.bsuid, &other.bsuid)].into_iter().flatten()
    }
}

fn same<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> Option<bool> {
    Some(a.as_ref()? == b.as_ref()?)
}

/// One `value.contacts[]` entry: WhatsApp's profile of a sender in the change.
struct Contact {
    ids: Ids,
    parent_bsuid: Option<Bsuid>,
    profile_name: Option<String>,
}

impl Contact {
    fn read(contact: &Value) -> Self {
        Self {
            ids: Ids { phone: phone(&contact["wa_id"]), bsuid: bsuid(&contact["user_id"]) },
            parent_bsuid: bsuid(&contact["parent_user_id"]),
            profile_name: non_blank(&contact["profile"]["name"]),
        }
    }
}

/// What the message says about the customer wins; the matching contact
/// fills in what the message leaves out (the BSUID, the parent id, the name).
fn person(stated: Ids, contacts: &[Contact]) -> Option<PersonRef> {
    let contact = contact_of(&stated, contacts);
    let phone = stated.phone.or_else(|| contact?.ids.phone.clone());
    let bsuid = stated.bsuid.or_else(|| contact?.ids.bsuid.clone());
    let mut person = PersonRef::new(phone, bsuid).ok()?;
    if let Some(contact) = contact {
        person.parent_bsuid = contact.parent_bsuid.clone();
        person.profile_name = contact.profile_name.clone();
    }
    Some(person)
}

fn contact_of<'a>(sender: &Ids, contacts: &'a [Contact]) -> Option<&'a Contact> {
    let shares_an_id = |contact: &&Contact| sender.agreements(&contact.ids).any(|equal| equal);
    contacts.iter().find(shares_an_id).or_else(|| match contacts {
        // A lone contact is taken to be the sender, unless its identifiers
        // name someone else: then it would lend them a stranger's name.
        [only] if sender.agreements(&only.ids).all(|equal| equal) => Some(only),
        _ => None,
    })
}

fn unix_seconds(value: &Value) -> i64 {
    integer(value).unwrap_or(0)
}

fn message_id(value: &Value) -> Option<WaMessageId> {
    WaMessageId::parse(value.as_str()?).ok()
}

fn phone(value: &Value) -> Option<PhoneNumber> {
    PhoneNumber::parse(value.as_str()?).ok()
}

fn bsuid(value: &Value) -> Option<Bsuid> {
    Bsuid::parse(value.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks");
    const FIRST_MESSAGE: &str = "/entry/0/changes/0/value/messages/0";
    const FIRST_CONTACT: &str = "/entry/0/changes/0/value/contacts/0";

    fn fixture(name: &str) -> Value {
        let path = format!("{FIXTURES}/{name}.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    /// A fixture with one part replaced, for shapes the fixtures lack.
    fn fixture_with(name: &str, pointer: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let mut body = fixture(name);
        edit(body.pointer_mut(pointer).unwrap_or_else(|| panic!("{name} has no {pointer}")));
        body
    }

    fn parse(body: &Value) -> WebhookBatch {
        parse_webhook(body.to_string().as_bytes()).unwrap()
    }

    fn only_message(body: &Value) -> InboundMessage {
        let batch = parse(body);
        assert_eq!((batch.statuses.len(), batch.ignored), (0, 0), "{batch:?}");
        let [message] = <[InboundMessage; 1]>::try_from(batch.messages).unwrap();
        message
    }

    fn content_of(name: &str) -> MessageContent {
        only_message(&fixture(name)).content
    }

    fn only_status(name: &str) -> StatusUpdate {
        let batch = parse(&fixture(name));
        assert_eq!((batch.messages.len(), batch.ignored), (0, 0), "{batch:?}");
        let [status] = <[StatusUpdate; 1]>::try_from(batch.statuses).unwrap();
        status
    }

    fn person(phone: Option<&str>, bsuid: Option<&str>) -> PersonRef {
        let phone = phone.map(|p| PhoneNumber::parse(p).unwrap());
        let bsuid = bsuid.map(|b| Bsuid::parse(b).unwrap());
        PersonRef::new(phone, bsuid).unwrap()
    }

    /// The sender every pywa message fixture shares.
    fn test_name() -> PersonRef {
        let mut test_name = person(Some("972987654321"), Some("US.13491208655302741918"));
        test_name.parent_bsuid = Some(Bsuid::parse("US.ENT.11815799212886844830").unwrap());
        test_name.profile_name = Some("Test Name".into());
        test_name
    }

    fn media(kind: &str, caption: Option<&str>) -> MessageContent {
        MessageContent::Media { kind: kind.into(), caption: caption.map(Into::into), attachment: None }
    }

    /// The content with its file reference dropped, for the tests about
    /// kinds and captions.
    fn without_file(content: MessageContent) -> MessageContent {
        match content {
            MessageContent::Media { kind, caption, .. } => MessageContent::Media { kind, caption, attachment: None },
            other => other,
        }
    }

    fn reply(title: &str) -> MessageContent {
        MessageContent::Reply { title: title.into() }
    }

    fn unsupported(kind: &str) -> MessageContent {
        MessageContent::Unsupported { kind: kind.into() }
    }

    #[test]
    fn every_fixture_parses_and_accounts_for_what_it_carries() {
        let mut paths: Vec<_> = std::fs::read_dir(FIXTURES)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        assert!(paths.len() >= 70, "fixtures missing from {FIXTURES}");
        for path in paths {
            let body = std::fs::read(&path).unwrap();
            let batch = parse_webhook(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let seen = batch.messages.len()
                + batch.statuses.len()
                + batch.echoes.len()
                + batch.ignored
                + template_updates(&body).len();
            assert_eq!(seen, 1, "{}: {batch:?}", path.display());
        }
    }

    #[test]
    fn text_message_carries_id_sender_time_and_body() {
        let message = only_message(&fixture("message__text"));
        let expected = InboundMessage {
            id: WaMessageId::parse("wamid.xyzxyz").unwrap(),
            from: test_name(),
            sent_at: 1697043223,
            content: MessageContent::Text("Body Text".into()),
            reply_to: None,
        };
        assert_eq!(message, expected);
        assert_eq!(message.from.phone().unwrap().expose(), "972987654321");
        assert_eq!(message.from.bsuid().unwrap().expose(), "US.13491208655302741918");
    }

    #[test]
    fn media_keeps_its_kind_and_caption() {
        let cases = [
            ("message__image", media("image", None)),
            ("message__media_with_url", media("image", None)),
            ("message__video", media("video", Some("caption"))),
            ("message__document", media("document", Some("caption"))),
            ("message__audio", media("audio", None)),
            ("message__voice", media("audio", None)),
            ("message__static_sticker", media("sticker", None)),
            ("message__animated_sticker", media("sticker", None)),
        ];
        for (name, expected) in cases {
            assert_eq!(without_file(content_of(name)), expected, "{name}");
        }
    }

    #[test]
    fn media_carries_its_id_type_and_file_name() {
        let voice = content_of("message__audio");
        let file = voice.attachment().unwrap();
        assert_eq!(file.source, AttachmentSource::Provider("1234567890987654321".into()));
        assert_eq!(file.mime.as_deref(), Some("audio/ogg; codecs=opus"));
        let document = content_of("message__document");
        assert_eq!(document.attachment().unwrap().file_name.as_deref(), Some("filename.pdf"));
        for hostile in ["../../me", "", "a/b", "1?x=1"] {
            let body = fixture_with("message__image", FIRST_MESSAGE, |m| m["image"]["id"] = json!(hostile));
            assert_eq!(only_message(&body).content.attachment(), None, "{hostile:?}");
        }
    }

    #[test]
    fn a_reply_names_the_message_it_answers() {
        assert_eq!(
            only_message(&fixture("message__reply")).reply_to,
            Some(WaMessageId::parse("wamid.xyzxyz==").unwrap())
        );
        assert_eq!(only_message(&fixture("message__text")).reply_to, None);
        // A forwarded message has a context without an id.
        assert_eq!(only_message(&fixture("message__forwarded")).reply_to, None);
    }

    #[test]
    fn image_caption_is_trimmed_and_blank_captions_dropped() {
        let captioned =
            |caption: &str| fixture_with("message__image", FIRST_MESSAGE, |m| m["image"]["caption"] = json!(caption));
        assert_eq!(without_file(only_message(&captioned(" KTP saya ")).content), media("image", Some("KTP saya")));
        assert_eq!(without_file(only_message(&captioned("  ")).content), media("image", None));
    }

    #[test]
    fn control_characters_are_stripped_from_every_string() {
        let body = fixture_with("message__image", FIRST_MESSAGE, |m| m["image"]["caption"] = json!("KTP\u{0} saya"));
        assert_eq!(without_file(only_message(&body).content), media("image", Some("KTP saya")));
        let mut text = fixture_with("message__text", FIRST_MESSAGE, |m| m["text"]["body"] = json!("a\u{0}b\r\nc"));
        text.pointer_mut(FIRST_CONTACT).unwrap()["profile"]["name"] = json!("Test\u{0} Name");
        let message = only_message(&text);
        assert_eq!(message.content, MessageContent::Text("ab\nc".into()));
        assert_eq!(message.from, test_name());
        let odd_type = fixture_with("message__text", FIRST_MESSAGE, |m| m["type"] = json!("x\u{0}y"));
        assert_eq!(only_message(&odd_type).content, unsupported("xy"));
    }

    #[test]
    fn locations_keep_place_and_coordinates() {
        let chosen = MessageContent::Location {
            name: Some("Facebook HQ".into()),
            address: Some("1 Hacker Way, Menlo Park, CA 94025".into()),
            latitude: 37.4611978,
            longitude: -122.2164385,
        };
        assert_eq!(content_of("message__chosen_location"), chosen);
        let current = MessageContent::Location { name: None, address: None, latitude: 12.25089, longitude: 43.90539 };
        assert_eq!(content_of("message__current_location"), current);
    }

    #[test]
    fn shared_contacts_become_names_and_numbers() {
        let cards = ["Chandler Bing (+1 555-555-5555)", "Monica (+1 666-666-6666)", "Rachel Green (+1 777-777-7777)"];
        assert_eq!(content_of("message__contacts"), MessageContent::Contacts(cards.map(String::from).to_vec()));

        let body = fixture_with("message__contacts", FIRST_MESSAGE, |m| {
            m["contacts"][0]["name"]["formatted_name"].take();
            m["contacts"][1]["name"] = json!({"last_name": "Geller"});
            m["contacts"][2]["name"] = json!({});
            m["contacts"][2]["phones"] = json!([]);
        });
        let names = ["Chandler Bing (+1 555-555-5555)", "Geller (+1 666-666-6666)"].map(String::from).to_vec();
        assert_eq!(only_message(&body).content, MessageContent::Contacts(names));
    }

    #[test]
    fn buttons_list_rows_and_quick_replies_count_by_title() {
        for name in [
            "callback_button__button",
            "callback_button__quick_reply",
            "callback_button__quick_reply_without_context",
            "callback_selection__callback",
            "callback_selection__description",
        ] {
            assert_eq!(content_of(name), reply("title"), "{name}");
        }
        let message = only_message(&fixture("callback_selection__callback"));
        assert_eq!(message.id.as_str(), "wamid.zyzxyz");
        assert_eq!(message.sent_at, 1698266905);
    }

    #[test]
    fn untitled_replies_fall_back_to_the_id_or_payload() {
        let button = fixture_with("callback_button__button", FIRST_MESSAGE, |m| {
            m["interactive"]["button_reply"]["title"] = json!("");
        });
        assert_eq!(only_message(&button).content, reply("callback_data"));
        let quick = fixture_with("callback_button__quick_reply", FIRST_MESSAGE, |m| {
            m["button"]["text"].take();
        });
        assert_eq!(only_message(&quick).content, reply("callback_data"));
    }

    #[test]
    fn submitted_flows_are_a_form_reply() {
        for name in ["flow_completion__completion", "flow_completion__without_flow_token"] {
            assert_eq!(content_of(name), reply(FORM_REPLY), "{name}");
        }
    }

    #[test]
    fn reactions_keep_the_emoji_and_unreactions_have_none() {
        assert_eq!(content_of("message__reaction"), MessageContent::Reaction { emoji: Some("😮".into()) });
        for name in ["message__unreaction_empty", "message__unreaction_no_emoji"] {
            assert_eq!(content_of(name), MessageContent::Reaction { emoji: None }, "{name}");
        }
    }

    #[test]
    fn orders_count_their_items() {
        assert_eq!(content_of("message__order"), MessageContent::Order { items: 3 });
    }

    #[test]
    fn system_notices_keep_their_text() {
        let identity = only_message(&fixture("system__identity_change"));
        assert_eq!(identity.content, MessageContent::System("User identity changed".into()));
        assert_eq!(identity.from.profile_name.as_deref(), Some("User A"));

        // System messages come without a contacts array.
        let number_change = only_message(&fixture("system__phone_number_change"));
        let text = "User A changed from 972987654321 to 972912345678";
        assert_eq!(number_change.content, MessageContent::System(text.into()));
        assert_eq!(number_change.from, person(Some("972987654321"), None));
        assert_eq!(number_change.sent_at, 1753851315);

        let typed_only = fixture_with("system__phone_number_change", FIRST_MESSAGE, |m| {
            m["system"]["body"].take();
        });
        let content = only_message(&typed_only).content;
        assert_eq!(content, MessageContent::System("user_changed_number".into()));
    }

    #[test]
    fn unreadable_messages_are_kept_as_unsupported() {
        for (name, kind) in [
            ("message__unsupported", "unsupported"),
            ("message__unsupported_with_type", "unsupported"),
            ("message__interactive_message_with_err", "interactive"),
            ("call_permission_update__accept", "interactive"),
        ] {
            assert_eq!(content_of(name), unsupported(kind), "{name}");
        }
        let with_err = only_message(&fixture("message__interactive_message_with_err"));
        assert_eq!(with_err.id.as_str(), "wamid.wegrchytvwcggt=");
        assert_eq!(with_err.from, test_name());
    }

    #[test]
    fn unknown_types_and_missing_bodies_are_unsupported() {
        let cases: [(Value, Value, &str); 7] = [
            (json!("request_welcome"), json!({}), "request_welcome"),
            (Value::Null, json!({}), "unknown"),
            (json!(7), json!({}), "unknown"),
            (json!("text"), Value::Null, "text"),
            (json!("text"), json!("body as a bare string"), "text"),
            (json!("image"), json!("caption as a bare string"), "image"),
            (json!("reaction"), Value::Null, "reaction"),
        ];
        for (kind_field, body, kind) in cases {
            let message = fixture_with("message__text", FIRST_MESSAGE, |m| {
                if let Some(field) = kind_field.as_str() {
                    m[field] = body.clone();
                }
                m["type"] = kind_field.clone();
            });
            assert_eq!(only_message(&message).content, unsupported(kind), "{kind_field}: {body}");
        }
        let no_coordinates = fixture_with("message__current_location", FIRST_MESSAGE, |m| {
            m["location"]["latitude"].take();
        });
        assert_eq!(only_message(&no_coordinates).content, unsupported("location"));
    }

    #[test]
    fn edits_and_revokes_are_ignored_not_new_turns() {
        for name in ["edited_message__image", "deleted_message__revoke"] {
            assert_eq!(parse(&fixture(name)), WebhookBatch { ignored: 1, ..Default::default() }, "{name}");
        }
    }

    #[test]
    fn statuses_carry_id_state_time_and_error() {
        let plain = |status, timestamp| StatusUpdate {
            message_id: WaMessageId::parse("wamid.xyzxyz").unwrap(),
            status,
            timestamp,
            error_code: None,
            error_title: None,
            recipient: Some("972987654321".into()),
        };
        let cases = [
            ("message_status__sent", plain(DeliveryStatus::Sent, 1698266945)),
            ("message_status__with_tracker", plain(DeliveryStatus::Sent, 1698266945)),
            ("message_status__delivered", plain(DeliveryStatus::Delivered, 1698266945)),
            ("message_status__read", plain(DeliveryStatus::Read, 1689380458)),
            ("message_status__played", plain(DeliveryStatus::Played, 1689380458)),
            (
                "message_status__failed",
                StatusUpdate {
                    error_code: Some(130472),
                    error_title: Some("User's number is part of an experiment".into()),
                    ..plain(DeliveryStatus::Failed, 1689380458)
                },
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(only_status(name), expected, "{name}");
        }
    }

    #[test]
    fn unknown_statuses_and_bad_ids_are_ignored() {
        for (field, value) in [("status", json!("deleted")), ("status", json!(3)), ("id", json!(""))] {
            let body = fixture_with("message_status__sent", "/entry/0/changes/0/value/statuses/0", |s| {
                s[field] = value.clone()
            });
            assert_eq!(parse(&body), WebhookBatch { ignored: 1, ..Default::default() }, "{field}");
        }
    }

    #[test]
    fn every_entry_change_message_and_status_is_read() {
        let text = fixture("message__text");
        let mut second = text["entry"][0]["changes"][0]["value"]["messages"][0].clone();
        second["id"] = json!("wamid.second");
        second["text"]["body"] = json!("Second");
        let mut stranger = second.clone();
        stranger["id"] = json!("wamid.stranger");
        stranger["from"] = json!("6281234567789");
        let mut entry = text["entry"][0].clone();
        entry["changes"][0]["value"]["messages"] = json!([second, stranger]);
        let status = fixture("message_status__read")["entry"][0]["changes"][0].clone();
        let account = fixture("account_update__account_deleted")["entry"][0]["changes"][0].clone();
        entry["changes"].as_array_mut().unwrap().extend([status, account]);
        let body = json!({"entry": [text["entry"][0].clone(), entry]});

        let batch = parse(&body);
        let ids: Vec<&str> = batch.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["wamid.xyzxyz", "wamid.second", "wamid.stranger"]);
        assert_eq!(batch.messages[1].content, MessageContent::Text("Second".into()));
        assert_eq!(batch.messages[1].from, test_name());
        // The change's only contact is someone else: the stranger must not
        // inherit their BSUID or name.
        assert_eq!(batch.messages[2].from, person(Some("6281234567789"), None));
        assert_eq!(batch.statuses.len(), 1);
        assert_eq!(batch.statuses[0].status, DeliveryStatus::Read);
        assert_eq!(batch.ignored, 1);
    }

    #[test]
    fn each_message_gets_the_contact_that_names_its_sender() {
        let mut body = fixture("message__text");
        let value = &mut body["entry"][0]["changes"][0]["value"];
        let mut by_phone = value["messages"][0].clone();
        by_phone["from"] = json!("6281234567789");
        let by_bsuid = json!({"from_user_id": "ID.42", "id": "wamid.b", "type": "text", "text": {"body": "b"}});
        value["messages"] = json!([by_bsuid, by_phone]);
        value["contacts"] = json!([
            {"wa_id": "6281234567789", "profile": {"name": "Sari"}},
            {"user_id": "ID.42", "profile": {"name": "Budi"}},
        ]);

        let from: Vec<_> = parse(&body).messages.into_iter().map(|m| m.from).collect();
        let mut budi = person(None, Some("ID.42"));
        budi.profile_name = Some("Budi".into());
        let mut sari = person(Some("6281234567789"), None);
        sari.profile_name = Some("Sari".into());
        assert_eq!(from, [budi, sari]);
    }

    #[test]
    fn username_users_are_known_by_their_bsuid_alone() {
        let mut body = fixture("message__text");
        let value = &mut body["entry"][0]["changes"][0]["value"];
        value["contacts"][0] = json!({
            "profile": {"name": " Maria ", "username": "@maria.lopez"},
            "user_id": "US.13491208655302741918",
            "parent_user_id": "US.ENT.11815799212886844830",
        });
        let message = &mut value["messages"][0];
        message.as_object_mut().unwrap().remove("from");
        message["from_user_id"] = json!("US.13491208655302741918");

        let mut maria = person(None, Some("US.13491208655302741918"));
        maria.parent_bsuid = Some(Bsuid::parse("US.ENT.11815799212886844830").unwrap());
        maria.profile_name = Some("Maria".into());
        assert_eq!(only_message(&body).from, maria);
    }

    #[test]
    fn a_bsuid_in_from_is_taken_as_a_bsuid() {
        let mut body = fixture_with("message__text", FIRST_MESSAGE, |m| m["from"] = json!("US.13491208655302741918"));
        assert_eq!(only_message(&body).from, test_name());
        body.pointer_mut("/entry/0/changes/0/value").unwrap()["contacts"].take();
        assert_eq!(only_message(&body).from, person(None, Some("US.13491208655302741918")));
    }

    #[test]
    fn messages_without_id_or_sender_are_dropped() {
        let cases: [(&str, &str, Value); 4] = [
            (FIRST_MESSAGE, "id", Value::Null),
            (FIRST_MESSAGE, "id", json!("wamid.\u{7}")),
            (FIRST_MESSAGE, "id", json!(12345)),
            (FIRST_CONTACT, "wa_id", json!("not a number")),
        ];
        for (pointer, field, value) in cases {
            let mut body = fixture_with("message__text", pointer, |part| part[field] = value.clone());
            if pointer == FIRST_CONTACT {
                let message = body.pointer_mut(FIRST_MESSAGE).unwrap();
                message["from"] = json!("<WHATSAPP_USER_PHONE_NUMBER>");
                body.pointer_mut(FIRST_CONTACT).unwrap()["user_id"].take();
            }
            assert_eq!(parse(&body), WebhookBatch { ignored: 1, ..Default::default() }, "{field} = {value}");
        }
    }

    #[test]
    fn changes_we_do_not_act_on_are_counted_as_ignored() {
        for name in [
            "account_update__account_deleted",
            "template_quality_update__yellow",
            "call_status__call_status",
            "user_marketing_preferences__signup",
        ] {
            assert_eq!(parse(&fixture(name)), WebhookBatch { ignored: 1, ..Default::default() }, "{name}");
        }
        let errors_only = fixture_with("message__interactive_message_with_err", "/entry/0/changes/0/value", |v| {
            v["messages"].take();
        });
        assert_eq!(parse(&errors_only), WebhookBatch { ignored: 1, ..Default::default() });
    }

    #[test]
    fn template_reviews_and_recategorisations_are_read() {
        let rejected = fixture("template_status_update__rejected");
        assert_eq!(parse(&rejected), WebhookBatch::default(), "acted on, so not ignored");
        let [update] =
            <[TemplateUpdate; 1]>::try_from(template_updates(&serde_json::to_vec(&rejected).unwrap())).unwrap();
        assert_eq!(update.business_account_id.as_deref(), Some("102290129340398"));
        assert_eq!((update.name.as_str(), update.language.as_str()), ("abandoned_cart", "en"));
        assert_eq!((update.status.as_deref(), update.meta_id.as_deref()), (Some("REJECTED"), Some("1689556908129835")));
        assert!(update.reason.unwrap().starts_with("Your template has parameters placed next to each other"));
        let recategorised = serde_json::to_vec(&fixture("template_category_update__marketing")).unwrap();
        let [update] = <[TemplateUpdate; 1]>::try_from(template_updates(&recategorised)).unwrap();
        assert_eq!((update.status, update.category.as_deref()), (None, Some("MARKETING")));
        assert!(template_updates(&serde_json::to_vec(&fixture("message__text")).unwrap()).is_empty());
    }

    #[test]
    fn echoes_are_messages_the_business_sent_to_the_customer() {
        let batch = parse(&fixture("smb_message_echoes__text"));
        assert_eq!((batch.messages.len(), batch.statuses.len(), batch.ignored), (0, 0, 0), "{batch:?}");
        let [echo] = <[Echo; 1]>::try_from(batch.echoes).unwrap();
        assert_eq!(echo.to, person(Some("6281234567789"), Some("ID.13491208655302741918")), "`to` is the customer");
        assert_eq!(echo.sent_at, 1739321024);
        let expected = "Halo kak Budi, saya Sari dari toko. Pesanannya sudah kami kirim ya.";
        assert_eq!(echo.content, MessageContent::Text(expected.into()));

        let photo = fixture_with("smb_message_echoes__text", "/entry/0/changes/0/value/message_echoes/0", |e| {
            e["type"] = json!("image");
            e["image"] = json!({ "id": "1234", "mime_type": "image/jpeg" });
        });
        assert_eq!(without_file(parse(&photo).echoes[0].content.clone()), media("image", None));
    }

    #[test]
    fn an_echo_without_its_customer_takes_them_from_the_contact() {
        let batch = parse(&fixture("outgoing_message__text"));
        let [echo] = <[Echo; 1]>::try_from(batch.echoes).unwrap();
        assert_eq!((echo.to, echo.content), (test_name(), MessageContent::Text("Test message".into())));
    }

    #[test]
    fn corrections_and_empty_echo_changes_are_ignored() {
        for name in ["outgoing_message__edit", "outgoing_message__delete"] {
            assert_eq!(parse(&fixture(name)), WebhookBatch { ignored: 1, ..Default::default() }, "{name}");
        }
        let nothing = fixture_with("smb_message_echoes__text", "/entry/0/changes/0/value", |v| {
            v["message_echoes"] = json!([]);
        });
        assert_eq!(parse(&nothing), WebhookBatch { ignored: 1, ..Default::default() });
        let nobody = fixture_with("smb_message_echoes__text", "/entry/0/changes/0/value/message_echoes/0", |e| {
            e["to"] = json!("<WHATSAPP_USER_PHONE_NUMBER>");
            e["to_user_id"].take();
        });
        assert_eq!(parse(&nobody), WebhookBatch { ignored: 1, ..Default::default() });
    }

    #[test]
    fn numbers_and_strings_are_accepted_either_way() {
        let body = fixture_with("message__current_location", FIRST_MESSAGE, |m| {
            m["timestamp"] = json!(1697044557);
            m["location"]["latitude"] = json!("12.25089");
        });
        let message = only_message(&body);
        assert_eq!(message.sent_at, 1697044557);
        let expected = MessageContent::Location { name: None, address: None, latitude: 12.25089, longitude: 43.90539 };
        assert_eq!(message.content, expected);

        let not_a_place = fixture_with("message__current_location", FIRST_MESSAGE, |m| {
            m["location"]["longitude"] = json!("NaN");
        });
        assert_eq!(only_message(&not_a_place).content, unsupported("location"));

        let garbled = fixture_with("message__text", FIRST_MESSAGE, |m| m["timestamp"] = json!("soon"));
        assert_eq!(only_message(&garbled).sent_at, 0);
        let failed = fixture_with("message_status__failed", "/entry/0/changes/0/value/statuses/0", |s| {
            s["errors"][0]["code"] = json!("130472");
        });
        assert_eq!(parse(&failed).statuses[0].error_code, Some(130472));
    }

    #[test]
    fn odd_shapes_parse_into_what_can_be_read() {
        let odd = [
            json!({"entry": 5}),
            json!({"entry": [1, null, {"changes": "x"}, {"changes": [7, {"field": 3}]}]}),
            json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": "x", "statuses": {}}}]}]}),
            json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [1, "x", {}]}}]}]}),
        ];
        let ignored: Vec<usize> = odd.iter().map(|body| parse(body).ignored).collect();
        assert_eq!(ignored, [0, 2, 1, 3]);
        assert!(odd.iter().all(|body| {
            let batch = parse(body);
            batch.messages.is_empty() && batch.statuses.is_empty()
        }));
    }

    #[test]
    fn only_bodies_that_are_not_a_json_object_are_errors() {
        for body in ["", "{", "not json", "[]", "\"x\"", "1", "null", "{\"entry\": [}"] {
            assert!(matches!(parse_webhook(body.as_bytes()), Err(PayloadError::Json(_))), "{body}");
        }
        assert_eq!(parse_webhook(b"{}").unwrap(), WebhookBatch::default());
        assert_eq!(parse_webhook(b"{\"object\": 1, \"x\": []}").unwrap(), WebhookBatch::default());
    }
}
