//! Campaigns through the send API (a `send` token or the admin token):
//!
//! - `POST /api/campaigns`: a template, its language, recipients with
//!   their values, `schedule_at`, `hours`, `holidays`, `rate_per_second`
//!   and `idempotency_key`; every recipient is checked before anything is
//!   stored (400 with the list of problems);
//! - `GET /api/campaigns` and `GET /api/campaigns/{id}`: state, pace and
//!   counts per stage (pending, queued, sent, delivered, read, failed …);
//! - `GET /api/campaigns/{id}/recipients`: the per-recipient report, as
//!   JSON pages (`after`, `limit`) or the whole of it as CSV (`format=csv`);
//! - `POST /api/campaigns/{id}/pause`, `/resume`, `/cancel`.
//!
//! A token sees only its own campaigns; the admin token sees every one. The
//! report gives numbers whole: the billing team acts on it (calls those
//! whose message failed), and it is the list the caller sent.

use super::admin::Sender;
use super::gateway::{named_account, GatewayError};
use super::AppState;
use crate::campaigns::{self, CampaignRequest, Moment};
use crate::domain::now_ms;
use crate::store::{CampaignAction, CampaignCreated, CampaignView, Consent, NewCampaign, RecipientReport};
use crate::templates::TemplateError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

const REPORT_PAGE: i64 = 1_000;
/// Room for `campaigns::MAX_RECIPIENTS` people with their values: a
/// provider's whole customer list in one request.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub async fn create(
    sender: Sender,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    let request: CampaignRequest =
        serde_json::from_slice(&body).map_err(|error| GatewayError::Body(error.to_string()))?;
    let account = named_account(&state, request.account.as_deref())?;
    let template = state.templates.find(&account, &request.template.name, request.template.language.as_deref()).await?;
    let mut problems = Vec::new();
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        problems.push("name: 1 to 200 characters".to_owned());
    }
    let default_hours = &state.settings.gateway.send_hours;
    let hours = campaigns::hours(request.hours.as_deref(), default_hours).map_err(|p| problems.push(p)).ok();
    let holidays = campaigns::holidays(&request.holidays).map_err(|p| problems.push(p)).ok();
    let zone = hours.as_ref().map_or(default_hours, |(_, hours)| hours);
    let now = now_ms();
    let schedule_at = match &request.schedule_at {
        None => now,
        Some(Moment::Millis(at)) => *at,
        Some(Moment::Written(text)) => zone.moment(text).unwrap_or_else(|problem| {
            problems.push(format!("schedule_at: {problem}"));
            now
        }),
    };
    let max_rate = state.settings.gateway.send_rate_per_second;
    let rate = request.rate_per_second.unwrap_or(max_rate);
    if !(rate.is_finite() && rate > 0.0 && rate <= max_rate) {
        problems.push(format!("rate_per_second: above 0 and at most SEND_RATE_PER_SECOND ({max_rate})"));
    }
    let key = request.idempotency_key.as_deref().map(str::trim).filter(|key| !key.is_empty());
    if key.is_some_and(|key| key.len() > 128) {
        problems.push("idempotency_key: at most 128 characters".into());
    }
    let as_template = state.templates.from_meta(&account);
    let mut left_out = 0;
    let recipients = match (&request.tag, request.values.as_ref()) {
        (None, None) => request.recipients,
        (Some(tag), values) if request.recipients.is_empty() => {
            let mut contacts = state.store.contacts_with_tag(&account, tag).await?;
            if template.is_marketing() {
                let before = contacts.len();
                contacts.retain(|contact| contact.consent != Consent::OptedOut);
                left_out = before - contacts.len();
            }
            campaigns::from_contacts(&contacts, &values.cloned().unwrap_or_default())
        }
        _ => {
            problems.push("give recipients, or a tag with the values every contact gets, not both".into());
            Vec::new()
        }
    };
    let planned = campaigns::plan(&template, &recipients, as_template).map_err(|p| problems.extend(p)).ok();
    let (Some((hours, _)), Some(holidays), Some(planned), true) = (hours, holidays, planned, problems.is_empty())
    else {
        return Err(TemplateError::Invalid(problems).into());
    };
    let campaign = NewCampaign {
        account: &account,
        name,
        template_name: &template.name,
        template_language: &template.language,
        author: &sender.name,
        key,
        schedule_at,
        hours: &hours,
        holidays: &holidays,
        rate_per_second: rate,
        recipients: &planned.recipients,
    };
    let (status, id) = match state.store.create_campaign(&campaign, now).await? {
        CampaignCreated::New(id) => {
            tracing::info!(campaign = id, recipients = planned.recipients.len(), token = %sender.name, "campaign created");
            (StatusCode::CREATED, id)
        }
        CampaignCreated::Repeated(id) => (StatusCode::OK, id),
        CampaignCreated::KeyReused => return Err(GatewayError::KeyReused),
    };
    let view = own_campaign(&state, &sender, id).await?;
    let mut body = view_json(&view);
    body["duplicatesDropped"] = json!(planned.duplicates);
    body["optedOutLeftOut"] = json!(left_out);
    Ok((status, Json(body)))
}

pub async fn list(sender: Sender, State(state): State<AppState>) -> Result<Json<Value>, GatewayError> {
    let views = state.store.campaigns(100).await?;
    let own = views.iter().filter(|view| sees(&sender, view)).map(view_json).collect::<Vec<_>>();
    Ok(Json(json!({ "campaigns": own })))
}

pub async fn show(
    sender: Sender,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, GatewayError> {
    Ok(Json(view_json(&own_campaign(&state, &sender, id).await?)))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    after: Option<i64>,
    limit: Option<i64>,
    format: Option<String>,
}

pub async fn report(
    sender: Sender,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, GatewayError> {
    let view = own_campaign(&state, &sender, id).await?;
    if query.format.as_deref() == Some("csv") {
        let mut csv = String::from("number,name,status,error_code,error,message_id,released_at,updated_at\n");
        let mut after = 0;
        loop {
            let page = state.store.campaign_report(view.id, after, REPORT_PAGE).await?;
            for row in &page {
                csv.push_str(&csv_line(row));
            }
            match page.last() {
                Some(last) if page.len() as i64 == REPORT_PAGE => after = last.id,
                _ => break,
            }
        }
        let disposition = format!("attachment; filename=\"campaign-{}.csv\"", view.id);
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
            csv,
        )
            .into_response());
    }
    let limit = query.limit.unwrap_or(100).clamp(1, REPORT_PAGE);
    let page = state.store.campaign_report(view.id, query.after.unwrap_or(0), limit).await?;
    let next = (page.len() as i64 == limit).then(|| page.last().map(|row| row.id)).flatten();
    let recipients: Vec<Value> = page
        .iter()
        .map(|row| {
            json!({
                "id": row.id, "to": row.phone, "name": row.name, "status": row.stage,
                "reason": row.reason, "errorCode": row.error_code, "error": row.error_title,
                "providerMessageId": row.wa_message_id, "releasedAt": row.released_at, "updatedAt": row.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "recipients": recipients, "next": next })).into_response())
}

pub async fn act(
    sender: Sender,
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Json<Value>, GatewayError> {
    let action = match action.as_str() {
        "pause" => CampaignAction::Pause,
        "resume" => CampaignAction::Resume,
        "cancel" => CampaignAction::Cancel,
        _ => return Err(GatewayError::Shape("the actions are pause, resume and cancel")),
    };
    let view = own_campaign(&state, &sender, id).await?;
    state.store.act_on_campaign(view.id, action, now_ms()).await?;
    tracing::info!(campaign = id, ?action, token = %sender.name, "campaign action");
    Ok(Json(view_json(&own_campaign(&state, &sender, id).await?)))
}

fn sees(sender: &Sender, view: &CampaignView) -> bool {
    sender.name == "admin" || view.author == sender.name
}

async fn own_campaign(state: &AppState, sender: &Sender, id: i64) -> Result<CampaignView, GatewayError> {
    match state.store.campaign(id).await? {
        Some(view) if sees(sender, &view) => Ok(view),
        _ => Err(GatewayError::NoCampaign),
    }
}

/// One CSV line; cells a spreadsheet would run as a formula are quoted
/// with a leading apostrophe.
fn csv_line(row: &RecipientReport) -> String {
    let cells = [
        row.phone.clone(),
        row.name.clone().unwrap_or_default(),
        row.stage.to_owned(),
        row.error_code.map(|code| code.to_string()).unwrap_or_default(),
        row.error_title.clone().or_else(|| row.reason.clone()).unwrap_or_default(),
        row.wa_message_id.clone().unwrap_or_default(),
        row.released_at.map(|at| at.to_string()).unwrap_or_default(),
        row.updated_at.map(|at| at.to_string()).unwrap_or_default(),
    ];
    let quoted: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
    format!("{}\n", quoted.join(","))
}

fn csv_cell(cell: &str) -> String {
    let cell = if cell.starts_with(['=', '+', '-', '@']) { format!("'{cell}") } else { cell.to_owned() };
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

fn view_json(view: &CampaignView) -> Value {
    let counts: serde_json::Map<String, Value> =
        view.counts.iter().map(|(stage, count)| ((*stage).to_owned(), json!(count))).collect();
    let done = view.total - view.counts.iter().find(|(stage, _)| *stage == "pending").map_or(0, |(_, n)| *n);
    json!({
        "id": view.id,
        "name": view.name,
        "account": view.account.label(),
        "template": { "name": view.template_name, "language": view.template_language },
        "token": view.author,
        "state": view.state.as_str(),
        "scheduleAt": view.schedule_at,
        "hours": if view.hours.is_empty() { "always" } else { view.hours.as_str() },
        "holidays": view.holidays,
        "rate": { "configured": view.rate_per_second, "current": view.current_rate_per_second, "slowdowns": view.slowdowns },
        "note": view.note,
        "createdAt": view.created_at,
        "startedAt": view.started_at,
        "finishedAt": view.finished_at,
        "total": view.total,
        "released": done,
        "counts": counts,
    })
}
