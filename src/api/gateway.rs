//! The send API: applications (a clinic's registration desk, a billing
//! system) send WhatsApp messages through the outbox with a token of the
//! `send` scope (or the admin token).
//!
//! - `POST /api/messages`: `{"to": "0812…", "text": "…", "account": "…",
//!   "idempotency_key": "…"}` (or the `X-Idempotency-Key` header), or a file
//!   by address: `{"type": "document", "url": "https://…", "caption": "…",
//!   "filename": "Tagihan.pdf"}` (image, document, video, audio), or the file
//!   itself in a multipart form (`send_form`), kept until it is sent. The same
//!   key within a day answers with the first message's id and sends
//!   nothing; the same key with another text or number is 409. An approved
//!   template: `{"type": "template", "template": {"name": "tagihan",
//!   "language": "id", "body": ["Budi", "Rp150.000"]}}` (see
//!   `templates::TemplateArgs`), checked against the template before it is
//!   queued, and allowed outside the 24-hour window.
//! - `POST /api/whatsapp/send`: `{"to", "text"}` answered as
//!   `{ok, status, json}`, the shape existing gateway clients read.
//! - `GET /api/messages/{id}` and `POST /api/messages/{id}/retry`.

use super::admin::Sender;
use super::send_form::{self, FilePart};
use super::AppState;
use crate::channels::format::{split_for_whatsapp, MAX_MESSAGE_CHARS};
use crate::domain::{
    clean_text, indonesian_number, max_upload_bytes, now_ms, AccountName, MediaError, MediaKind, NumberError,
    OutboundMedia, UploadedFile,
};
use crate::store::{AppMessage, AppMessageView, AppSend, Consent, RetryOutcome, SendState, StoreError};
use crate::templates::{TemplateArgs, TemplateError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest text sent at once: four WhatsApp messages.
const MAX_TEXT_CHARS: usize = 4 * MAX_MESSAGE_CHARS;
const MAX_KEY_CHARS: usize = 128;
/// WhatsApp's limit on a file's caption.
const MAX_CAPTION_CHARS: usize = 1024;
/// The largest request: the largest upload (documents', video's and
/// audio's limit) and the form around it.
pub const MAX_BODY_BYTES: usize = max_upload_bytes(MediaKind::Document) + 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the body must be JSON such as {{\"to\": \"081234567890\", \"text\": \"Halo\"}}: {0}")]
    Body(String),
    #[error("the form must hold to, type and file (a multipart form, one file): {0}")]
    Form(String),
    #[error("the request is larger than {} bytes: upload a smaller file, or send a larger one by url", MAX_BODY_BYTES)]
    BodyTooLarge,
    #[error("to: {0}")]
    Number(#[from] NumberError),
    #[error("text is empty")]
    EmptyText,
    #[error("{0}")]
    Shape(&'static str),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("caption is longer than {MAX_CAPTION_CHARS} characters")]
    CaptionTooLong,
    #[error("text is longer than {MAX_TEXT_CHARS} characters")]
    TooLong,
    #[error("the idempotency key must be 1 to {MAX_KEY_CHARS} letters, digits, '-', '_', '.' or ':'")]
    Key,
    #[error("no WhatsApp account is named {0:?}")]
    UnknownAccount(String),
    #[error(
        "outside WhatsApp's 24-hour customer-service window: {}; the Cloud API refuses free-form text then \
         (error 131047), so nothing was queued. Send an approved template instead",
        if .0.is_some() { "the customer last wrote more than 24 hours ago" } else { "the customer has not written to this number" }
    )]
    OutsideWindow(Option<i64>),
    #[error("this idempotency key was used in the last 24 hours for another text or number; nothing was queued")]
    KeyReused,
    #[error("no message of the send API has this id")]
    NotFound,
    #[error("no campaign of this token has this id")]
    NoCampaign,
    #[error("this customer opted out of marketing messages (they wrote STOP); nothing was queued")]
    OptedOut,
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GatewayError {
    /// The `code` of the error body and the `outcome` label of
    /// `wa_api_messages_total`.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BodyTooLarge | GatewayError::Media(MediaError::TooLarge { .. }) => "too_large",
            GatewayError::Body(_)
            | GatewayError::Form(_)
            | GatewayError::EmptyText
            | GatewayError::TooLong
            | GatewayError::Key
            | GatewayError::Shape(_)
            | GatewayError::Media(_)
            | GatewayError::CaptionTooLong => "invalid",
            GatewayError::Number(_) => "invalid_number",
            GatewayError::UnknownAccount(_) => "unknown_account",
            GatewayError::OutsideWindow(_) => "outside_window",
            GatewayError::KeyReused => "key_reused",
            GatewayError::NotFound | GatewayError::NoCampaign => "not_found",
            GatewayError::OptedOut => "opted_out",
            GatewayError::Template(error) => match error {
                TemplateError::Unknown(_) => "unknown_template",
                TemplateError::Language { .. } => "template_language",
                TemplateError::NotApproved { .. } => "template_not_approved",
                TemplateError::Invalid(_) => "invalid_parameters",
                TemplateError::NoBusinessAccount => "templates_unavailable",
                TemplateError::Graph(_) => "graph_error",
                TemplateError::Store(_) => "store_error",
            },
            GatewayError::Store(_) => "store_error",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    to: String,
    /// `text` (the default), `image`, `document`, `video`, `audio` or
    /// `template` (the default when `template` is given).
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    url: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    template: Option<TemplateArgs>,
    account: Option<String>,
    #[serde(alias = "idempotencyKey")]
    idempotency_key: Option<String>,
    /// The file of a multipart form.
    #[serde(skip)]
    upload: Option<FilePart>,
}

/// A request checked before anything is stored.
struct Checked {
    message: (crate::domain::PhoneNumber, AccountName),
    content: Content,
    key: Option<String>,
}

enum Content {
    /// Words in as many parts as they take, or a file with its caption.
    Ready(Vec<String>, Option<OutboundMedia>),
    /// Checked against the account's template when it is queued.
    Template(TemplateArgs),
}

/// What a request sends.
fn content(request: Request) -> Result<Content, GatewayError> {
    let default = if request.template.is_some() { "template" } else { "text" };
    let kind = request.kind.as_deref().unwrap_or(default);
    if kind == "template" {
        if request.text.is_some() || request.url.is_some() || request.caption.is_some() || request.filename.is_some() {
            return Err(GatewayError::Shape("a template's values go in template: body, header, buttons, media"));
        }
        let args = request.template.ok_or(GatewayError::Shape("a template send needs template: {name, ...}"))?;
        return Ok(Content::Template(args));
    }
    if request.template.is_some() {
        return Err(GatewayError::Shape("template belongs to type template"));
    }
    if kind == "text" {
        if request.url.is_some() || request.caption.is_some() || request.filename.is_some() {
            return Err(GatewayError::Shape("url, caption and filename belong to a file: give its type"));
        }
        let text = clean_text(request.text.as_deref().unwrap_or_default()).trim().to_owned();
        if text.is_empty() {
            return Err(GatewayError::EmptyText);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(GatewayError::TooLong);
        }
        // What the application wrote goes out as written: it formats for
        // WhatsApp itself.
        return Ok(Content::Ready(split_for_whatsapp(&text, MAX_MESSAGE_CHARS), None));
    }
    let kind = MediaKind::parse(kind)
        .ok_or(GatewayError::Shape("type must be text, image, document, video, audio or template"))?;
    if request.text.is_some() {
        return Err(GatewayError::Shape("a file's words go in caption, not text"));
    }
    if request.filename.is_some() && kind != MediaKind::Document {
        return Err(GatewayError::Shape("only a document has a filename"));
    }
    let media = match (request.url.as_deref(), request.upload) {
        (Some(url), None) => OutboundMedia::new(kind, url, request.filename.as_deref())?,
        (None, Some(upload)) => {
            // A document keeps the name it was uploaded with unless told
            // another; a photo's name is never shown.
            let given = request.filename.as_deref().or(upload.filename.as_deref());
            let file = UploadedFile::check(kind, upload.contents, upload.mime.as_deref(), given)?;
            let filename = if kind == MediaKind::Document { given } else { None };
            OutboundMedia::uploaded(kind, file, filename)?
        }
        (Some(_), Some(_)) => return Err(GatewayError::Shape("a file goes by url or uploaded, not both")),
        (None, None) => return Err(GatewayError::Shape("a file needs its url, or the file itself in a form")),
    };
    let caption = clean_text(request.caption.as_deref().unwrap_or_default()).trim().to_owned();
    if caption.chars().count() > MAX_CAPTION_CHARS {
        return Err(GatewayError::CaptionTooLong);
    }
    Ok(Content::Ready(vec![caption], Some(media)))
}

/// The request, a JSON body or a multipart form with a file, checked.
async fn read(state: &AppState, request: axum::extract::Request) -> Result<Checked, GatewayError> {
    let headers = request.headers().clone();
    let form = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/"));
    let parsed = if form {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|rejection| GatewayError::Form(rejection.body_text()))?;
        let form = send_form::read(multipart).await?;
        let mut parsed: Request = serde_json::from_value(Value::Object(form.fields))
            .map_err(|error| GatewayError::Form(error.to_string()))?;
        parsed.upload = form.file;
        parsed
    } else {
        let body = Bytes::from_request(request, state).await.map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => GatewayError::BodyTooLarge,
            _ => GatewayError::Body(rejection.body_text()),
        })?;
        serde_json::from_slice(&body).map_err(|error| GatewayError::Body(error.to_string()))?
    };
    check(state, &headers, parsed)
}

fn check(state: &AppState, headers: &HeaderMap, request: Request) -> Result<Checked, GatewayError> {
    let to = indonesian_number(&request.to)?;
    let account = named_account(state, request.account.as_deref())?;
    let header = headers.get("x-idempotency-key").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let key = request.idempotency_key.clone().or(header);
    let key_ok = |key: &str| {
        (1..=MAX_KEY_CHARS).contains(&key.len())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    };
    if key.as_deref().is_some_and(|key| !key_ok(key)) {
        return Err(GatewayError::Key);
    }
    Ok(Checked { message: (to, account), content: content(request)?, key })
}

/// The account `label` names; the default one without a label.
pub(super) fn named_account(state: &AppState, label: Option<&str>) -> Result<AccountName, GatewayError> {
    match label {
        None => Ok(state.settings.accounts[0].name.clone()),
        Some(label) => AccountName::from_label(label)
            .ok()
            .filter(|name| state.settings.accounts.iter().any(|account| account.name == *name))
            .ok_or_else(|| GatewayError::UnknownAccount(label.to_owned())),
    }
}

/// Queues the message; `(new, id)`.
async fn queue(state: &AppState, sender: &Sender, checked: Checked) -> Result<(bool, i64), GatewayError> {
    let now = now_ms();
    let (to, account) = &checked.message;
    // Without a key of the application's, one of ours still ties the parts
    // of a long text together.
    let key = checked.key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (parts, media, template) = match checked.content {
        Content::Ready(parts, media) => (parts, media, None),
        Content::Template(args) => {
            let template = state.templates.find(account, &args.name, args.language.as_deref()).await?;
            if template.is_marketing() && state.store.consent_of(account, to).await? == Consent::OptedOut {
                return Err(GatewayError::OptedOut);
            }
            let filled = crate::templates::fill(&template, &args).map_err(TemplateError::Invalid)?;
            // Meta's templates go out as templates; a provider without
            // them sends the words (the same words Meta would render).
            let payload = state.templates.from_meta(account).then_some(filled.payload);
            (vec![filled.text], filled.media, payload)
        }
    };
    let message = AppMessage {
        account,
        to,
        author: &sender.name,
        key: &key,
        parts: &parts,
        media: media.as_ref(),
        template: template.as_ref(),
        give_up_at: now + state.outbox.retry_for().as_millis() as i64,
    };
    let queued = match state.store.queue_app_message(&message, now).await? {
        AppSend::Queued(id) => {
            state.outbox.wake();
            tracing::info!(to = %to, account = %account, token = %sender.name, message = id, "application message queued");
            (true, id)
        }
        AppSend::Repeated(id) => (false, id),
        AppSend::KeyReused => return Err(GatewayError::KeyReused),
        AppSend::OutsideWindow(window) => return Err(GatewayError::OutsideWindow(window.open_until())),
    };
    count(if queued.0 { "queued" } else { "repeated" });
    Ok(queued)
}

pub fn count(outcome: &'static str) {
    metrics::counter!("wa_api_messages_total", "outcome" => outcome).increment(1);
}

/// `POST /api/messages`: 202 with the new message's id, or 200 with the
/// first one's for a key used before.
pub async fn create(
    sender: Sender,
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    let checked = read(&state, request).await?;
    let (new, id) = queue(&state, &sender, checked).await?;
    let view = state.store.app_message(id).await?.ok_or(GatewayError::NotFound)?;
    let status = if new { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(json!({ "duplicate": !new, "message": view_json(&view) }))))
}

/// `POST /api/whatsapp/send`: `{ok, status, json}`, whatever happened, with
/// the same HTTP status as `status`.
pub async fn send_compatible(
    sender: Sender,
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> (StatusCode, Json<Value>) {
    let sent = match read(&state, request).await {
        Ok(checked) => queue(&state, &sender, checked).await,
        Err(error) => Err(error),
    };
    match sent {
        Ok((new, id)) => {
            let status = if new { StatusCode::ACCEPTED } else { StatusCode::OK };
            let json = json!({ "id": id, "state": "queued", "duplicate": !new });
            (status, Json(json!({ "ok": true, "status": status.as_u16(), "json": json })))
        }
        Err(error) => {
            let (status, body) = super::error::gateway_refusal(error);
            (status, Json(json!({ "ok": false, "status": status.as_u16(), "json": body })))
        }
    }
}

/// `GET /api/messages/{id}`: its state, the provider's id and every status
/// with its time. An application sees only its own messages.
pub async fn show(
    sender: Sender,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, GatewayError> {
    let view = own_message(&state, &sender, id).await?;
    Ok(Json(view_json(&view)))
}

/// `POST /api/messages/{id}/retry`: a failed or dead message goes out
/// again; anything else is left as it is, so a retry twice sends once.
pub async fn retry(
    sender: Sender,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, GatewayError> {
    let view = own_message(&state, &sender, id).await?;
    let retry_for = state.outbox.retry_for().as_millis() as i64;
    let outcome = state.store.retry_send(view.id, now_ms(), retry_for).await?.ok_or(GatewayError::NotFound)?;
    if outcome == RetryOutcome::Requeued {
        state.outbox.wake();
        count("retried");
    }
    let view = state.store.app_message(view.id).await?.ok_or(GatewayError::NotFound)?;
    Ok(Json(json!({ "retried": outcome == RetryOutcome::Requeued, "message": view_json(&view) })))
}

async fn own_message(state: &AppState, sender: &Sender, id: i64) -> Result<AppMessageView, GatewayError> {
    let view = state.store.app_message(id).await?.ok_or(GatewayError::NotFound)?;
    // The admin token sees every application's; a token only its own.
    if sender.name != "admin" && view.author != sender.name {
        return Err(GatewayError::NotFound);
    }
    Ok(view)
}

/// A message is as far as its least advanced part: sent once every part is.
fn overall(view: &AppMessageView) -> SendState {
    const WORST_FIRST: [SendState; 7] = [
        SendState::Dead,
        SendState::FailedPermanent,
        SendState::Cancelled,
        SendState::FailedRetryable,
        SendState::Sending,
        SendState::Queued,
        SendState::Sent,
    ];
    WORST_FIRST
        .into_iter()
        .find(|state| view.parts.iter().any(|part| part.state == *state))
        .unwrap_or(SendState::Queued)
}

/// The message as applications read it: the number masked, as anywhere
/// outside the database.
fn view_json(view: &AppMessageView) -> Value {
    json!({
        "id": view.id,
        "to": view.to.masked(),
        "account": view.account.label(),
        "token": view.author,
        "media": view.media.as_ref().map(|media| json!({
            "type": media.kind().as_str(), "url": media.url(), "filename": media.filename(),
            "upload": media.upload().map(|file| json!({ "sha256": file.sha256, "mime": file.mime, "size": file.size })),
        })),
        "template": view.template.as_ref().map(|(name, language)| json!({ "name": name, "language": language })),
        "createdAt": view.created_at,
        "state": overall(view).as_str(),
        "parts": view.parts.iter().map(|part| json!({
            "id": part.id,
            "state": part.state.as_str(),
            "providerMessageId": part.wa_message_id,
            "attempts": part.attempts,
            "errorCode": part.error_code,
            "error": part.error_title,
            "statuses": part.statuses.iter().map(|(status, at, code)| json!({
                "status": status, "at": at, "errorCode": code,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
