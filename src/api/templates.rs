//! The message templates of each number:
//!
//! - `GET /api/templates` (`?account=`): the cached list with each
//!   template's status, category, what a send must fill, and when the list
//!   was last read from Meta;
//! - `GET /api/templates/{name}`: one template in each of its languages;
//! - `POST /api/templates/refresh`: reads the list from Meta now (admin);
//! - `POST /api/templates`: submits a new template for Meta's review (admin),
//!   or keeps it here for a number whose provider has no templates.
//!
//! Applications with a `send` token may read the list: they need it to
//! fill a send.

use super::admin::{Admin, Sender};
use super::gateway::{named_account, GatewayError};
use super::AppState;
use crate::templates::{placeholders, Header, NewTemplate, Template, TemplateError, TemplateList};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct Which {
    account: Option<String>,
}

pub async fn list(
    _sender: Sender,
    State(state): State<AppState>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, GatewayError> {
    let account = named_account(&state, which.account.as_deref())?;
    let list = state.templates.list(&account).await?;
    Ok(Json(list_json(&account, &list, |_| true)))
}

pub async fn show(
    _sender: Sender,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, GatewayError> {
    let account = named_account(&state, which.account.as_deref())?;
    let list = state.templates.list(&account).await?;
    if !list.templates.iter().any(|template| template.name == name) {
        return Err(TemplateError::Unknown(name).into());
    }
    Ok(Json(list_json(&account, &list, |template| template.name == name)))
}

pub async fn refresh(
    _admin: Admin,
    State(state): State<AppState>,
    Query(which): Query<Which>,
) -> Result<Json<Value>, GatewayError> {
    let account = named_account(&state, which.account.as_deref())?;
    if !state.templates.from_meta(&account) {
        return Ok(Json(json!({ "refreshed": false, "reason": "this number's templates are kept here" })));
    }
    let count = state.templates.refresh(&account).await?;
    Ok(Json(json!({ "refreshed": true, "templates": count })))
}

pub async fn submit(
    _admin: Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    let new: NewTemplate = serde_json::from_slice(&body).map_err(|error| GatewayError::Body(error.to_string()))?;
    let account = named_account(&state, new.account.as_deref())?;
    let template = state.templates.submit(&account, &new).await?;
    tracing::info!(account = %account, template = %template.name, status = %template.status, "template submitted");
    Ok((StatusCode::CREATED, Json(template_json(&template))))
}

fn list_json(account: &crate::domain::AccountName, list: &TemplateList, keep: impl Fn(&Template) -> bool) -> Value {
    json!({
        "account": account.label(),
        "source": if list.from_meta { "meta" } else { "local" },
        "syncedAt": list.sync.synced_at,
        "syncError": list.sync.error,
        "templates": list.templates.iter().filter(|t| keep(t)).map(template_json).collect::<Vec<_>>(),
    })
}

/// A template with what a send must give for it.
fn template_json(template: &Template) -> Value {
    let shape = template.shape();
    let header = match &shape.header {
        Some(Header::Text(text)) => json!({ "type": "text", "text": text, "parameters": placeholders(text) }),
        Some(Header::Media(kind)) => json!({ "type": kind.as_str() }),
        Some(Header::Other(format)) => json!({ "type": format }),
        None => Value::Null,
    };
    json!({
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "category": template.category,
        "id": template.meta_id,
        "reason": template.reason,
        "parameterFormat": if shape.named { "named" } else { "positional" },
        "header": header,
        "body": { "text": shape.body, "parameters": placeholders(&shape.body) },
        "footer": shape.footer,
        "buttons": shape.buttons.iter().map(|button| json!({
            "type": button.kind.sub_type(), "text": button.text, "target": button.target,
        })).collect::<Vec<_>>(),
    })
}
