//! The business account's message templates on Graph: the list
//! (`GET /{waba}/message_templates`, page by page) and a new template
//! submitted for review (`POST /{waba}/message_templates`).

use super::auth::{api_root, is_compatible_provider, Credentials};
use crate::config::WhatsAppSettings;
use serde_json::Value;

/// More pages than this is a loop in Graph's cursors, not a business.
const MAX_PAGES: usize = 50;
const FIELDS: &str = "id,name,language,status,category,components,parameter_format,rejected_reason";

#[derive(Debug, thiserror::Error)]
pub enum TemplateApiError {
    #[error("Graph API could not be reached: {0}")]
    Unreachable(String),
    #[error("Graph API refused (HTTP {status}, code {code:?}): {message}")]
    Refused { status: u16, code: Option<i64>, message: String },
}

pub struct TemplateApi {
    http: reqwest::Client,
    url: String,
    credentials: Credentials,
}

impl TemplateApi {
    /// `None` without `META_BUSINESS_ACCOUNT_ID` and a token, or for a
    /// compatible provider (their template APIs are their own).
    pub fn new(settings: &WhatsAppSettings) -> Option<Self> {
        if is_compatible_provider(settings) {
            return None;
        }
        let account = settings.business_account_id.as_ref()?;
        Some(Self {
            http: reqwest::Client::builder().timeout(settings.send_timeout).build().ok()?,
            url: format!("{}/{account}/message_templates", api_root(settings)),
            credentials: Credentials::new(settings)?,
        })
    }

    /// Every template of the business account, as Graph describes each.
    pub async fn list(&self) -> Result<Vec<Value>, TemplateApiError> {
        let mut templates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("fields", FIELDS.to_owned()), ("limit", "100".to_owned())];
            query.extend(after.take().map(|cursor| ("after", cursor)));
            let page = self.call(self.credentials.apply(self.http.get(&self.url)).query(&query)).await?;
            templates.extend(page["data"].as_array().cloned().unwrap_or_default());
            // Following Graph's own `next` address would send our token
            // wherever a forged answer pointed: only its cursor is used.
            match (page["paging"]["next"].as_str(), page["paging"]["cursors"]["after"].as_str()) {
                (Some(_), Some(cursor)) => after = Some(cursor.to_owned()),
                _ => return Ok(templates),
            }
        }
        Ok(templates)
    }

    /// Submits `body` for review; Graph answers `{id, status, category}`.
    pub async fn submit(&self, body: &Value) -> Result<Value, TemplateApiError> {
        self.call(self.credentials.apply(self.http.post(&self.url)).json(body)).await
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, TemplateApiError> {
        let response =
            request.send().await.map_err(|error| TemplateApiError::Unreachable(error.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|error| TemplateApiError::Unreachable(error.to_string()))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() && json.is_object() {
            return Ok(json);
        }
        // Meta's `error_user_msg` says what is wrong with a submitted
        // template in words an admin can act on; `message` is generic.
        let error = &json["error"];
        let message = error["error_user_msg"].as_str().or(error["message"].as_str()).map_or_else(
            || format!("unreadable answer: {}", text.chars().take(200).collect::<String>()),
            str::to_owned,
        );
        Err(TemplateApiError::Refused { status: status.as_u16(), code: error["code"].as_i64(), message })
    }
}
