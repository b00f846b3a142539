//! Message templates: what a business may send a customer who has not
//! written in the last 24 hours. On the Cloud API they live in the
//! business account and Meta reviews them; the list is cached in the
//! database, refreshed at start, on demand, when a send names one the cache
//! does not know, and on Meta's status webhooks. A number carried by a
//! provider without templates (Fonnte, WAHA) keeps its templates here, and
//! a template send goes out there as the text it renders to.

mod fill;
mod model;
mod submit;

pub use fill::{fill, Filled, HeaderFile, Scalar, TemplateArgs, Values};
pub use model::{placeholders, Header, Template, TemplateUpdate};
pub use submit::NewTemplate;

use crate::channels::cloud_api::{TemplateApi, TemplateApiError};
use crate::config::{Settings, WhatsAppProvider};
use crate::domain::{now_ms, AccountName};
use crate::store::{Store, StoreError, TemplateSync};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A send naming a template the cache lacks asks Graph at most this often
/// per account: a typo repeated by an application must not become a Graph
/// call per request.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template named {0:?} on this number; refresh the list if it was just created")]
    Unknown(String),
    #[error("template {name:?} exists in {languages}: give its language")]
    Language { name: String, languages: String },
    #[error("template {name:?} ({language}) is {status}, not APPROVED{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    NotApproved { name: String, language: String, status: String, reason: Option<String> },
    #[error("the values do not fit the template: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("META_BUSINESS_ACCOUNT_ID is not set for this number, so its templates cannot be read or submitted")]
    NoBusinessAccount,
    #[error(transparent)]
    Graph(#[from] TemplateApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An account's templates and where they come from.
pub struct TemplateList {
    pub templates: Vec<Template>,
    /// `false` for a number whose templates are kept here.
    pub from_meta: bool,
    pub sync: TemplateSync,
}

#[derive(Clone)]
pub struct Templates {
    store: Store,
    apis: Arc<BTreeMap<AccountName, TemplateApi>>,
    /// Accounts whose provider takes Meta's templates but without a
    /// business account id configured: their templates cannot be listed.
    unlisted: Arc<Vec<AccountName>>,
    last_refresh: Arc<DashMap<AccountName, Instant>>,
}

impl Templates {
    pub fn new(store: Store, settings: &Settings) -> Self {
        let mut apis = BTreeMap::new();
        let mut unlisted = Vec::new();
        for account in settings.accounts.iter().filter(|a| a.provider == WhatsAppProvider::CloudApi) {
            match TemplateApi::new(&account.whatsapp) {
                Some(api) => {
                    apis.insert(account.name.clone(), api);
                }
                None => unlisted.push(account.name.clone()),
            }
        }
        Self { store, apis: Arc::new(apis), unlisted: Arc::new(unlisted), last_refresh: Arc::default() }
    }

    /// Whether `account`'s templates are Meta's (sent as templates) rather
    /// than kept here (sent as text).
    pub fn from_meta(&self, account: &AccountName) -> bool {
        self.apis.contains_key(account) || self.unlisted.contains(account)
    }

    /// Reads every account's list from Graph; failures are recorded and
    /// logged, the cached list stays.
    pub async fn refresh_all(&self) {
        for account in self.apis.keys() {
            if let Err(error) = self.refresh(account).await {
                tracing::warn!(account = %account, %error, "could not read the message templates");
            }
        }
    }

    /// Reads `account`'s list from Graph into the cache; the number of
    /// templates. Accounts without Graph templates have nothing to read.
    pub async fn refresh(&self, account: &AccountName) -> Result<usize, TemplateError> {
        let Some(api) = self.apis.get(account) else { return Ok(0) };
        let listed = match api.list().await {
            Ok(listed) => listed,
            Err(error) => {
                self.store.template_sync_failed(account, &error.to_string(), now_ms()).await?;
                metrics::counter!("wa_template_syncs_total", "outcome" => "failed").increment(1);
                return Err(error.into());
            }
        };
        let templates: Vec<Template> = listed.iter().filter_map(Template::from_graph).collect();
        self.store.replace_templates(account, &templates, now_ms()).await?;
        metrics::counter!("wa_template_syncs_total", "outcome" => "ok").increment(1);
        tracing::info!(account = %account, templates = templates.len(), "message templates read from the business account");
        Ok(templates.len())
    }

    pub async fn list(&self, account: &AccountName) -> Result<TemplateList, TemplateError> {
        Ok(TemplateList {
            templates: self.store.templates(account).await?,
            from_meta: self.from_meta(account),
            sync: self.store.template_sync(account).await?,
        })
    }

    /// The template a send names, approved and in one language; the cache
    /// is refreshed once if it does not know the name.
    pub async fn find(
        &self,
        account: &AccountName,
        name: &str,
        language: Option<&str>,
    ) -> Result<Template, TemplateError> {
        if self.unlisted.contains(account) {
            return Err(TemplateError::NoBusinessAccount);
        }
        let mut found = self.named(account, name).await?;
        if found.is_empty() && self.claim_unplanned_refresh(account) {
            // Not fatal: a template that cannot be found is reported as such.
            if let Err(error) = self.refresh(account).await {
                tracing::warn!(account = %account, %error, "could not refresh the message templates");
            }
            found = self.named(account, name).await?;
        }
        let template = match (language, found.as_slice()) {
            (_, []) => return Err(TemplateError::Unknown(name.to_owned())),
            (None, [only]) => only.clone(),
            (None, several) => {
                let languages = several.iter().map(|t| t.language.as_str()).collect::<Vec<_>>().join(", ");
                return Err(TemplateError::Language { name: name.to_owned(), languages });
            }
            (Some(language), all) => match all.iter().find(|t| t.language == language) {
                Some(template) => template.clone(),
                None => {
                    let languages = all.iter().map(|t| t.language.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(TemplateError::Language { name: name.to_owned(), languages });
                }
            },
        };
        if !template.is_approved() {
            return Err(TemplateError::NotApproved {
                name: template.name,
                language: template.language,
                status: template.status,
                reason: template.reason,
            });
        }
        Ok(template)
    }

    async fn named(&self, account: &AccountName, name: &str) -> Result<Vec<Template>, TemplateError> {
        Ok(self.store.templates(account).await?.into_iter().filter(|t| t.name == name).collect())
    }

    /// Whether a refresh nobody planned (a send or webhook naming a
    /// template the cache lacks) may run now; if so, the next must wait.
    fn claim_unplanned_refresh(&self, account: &AccountName) -> bool {
        match self.last_refresh.entry(account.clone()) {
            Entry::Occupied(last) if last.get().elapsed() < REFRESH_AT_MOST_EVERY => false,
            Entry::Occupied(mut last) => {
                last.insert(Instant::now());
                true
            }
            Entry::Vacant(none) => {
                none.insert(Instant::now());
                true
            }
        }
    }

    /// Submits a template: to Meta's review for a Cloud API number (cached
    /// as Meta answers, usually PENDING), or kept here, ready to use, for a
    /// number whose provider has no templates.
    pub async fn submit(&self, account: &AccountName, new: &NewTemplate) -> Result<Template, TemplateError> {
        let mut body = new.checked().map_err(TemplateError::Invalid)?;
        let template = match self.apis.get(account) {
            Some(api) => {
                let answer = api.submit(&body).await?;
                body["id"] = answer["id"].clone();
                body["status"] = answer["status"].as_str().map_or("PENDING".into(), Into::into);
                if let Some(category) = answer["category"].as_str() {
                    body["category"] = category.into();
                }
                Template::from_graph(&body)
            }
            None if self.unlisted.contains(account) => return Err(TemplateError::NoBusinessAccount),
            None => {
                body["status"] = "APPROVED".into();
                Template::from_graph(&body)
            }
        };
        let template = template.ok_or_else(|| TemplateError::Invalid(vec!["name and language are required".into()]))?;
        self.store.save_template(account, &template, now_ms()).await?;
        metrics::counter!("wa_templates_submitted_total").increment(1);
        Ok(template)
    }

    /// Applies Meta's status webhooks to `account`'s cache before the
    /// webhook is acknowledged; a template the cache does not know yet is
    /// read with the next refresh, started here.
    pub async fn updated(&self, account: &AccountName, updates: &[TemplateUpdate]) -> Result<(), StoreError> {
        let mut unknown = false;
        for update in updates {
            unknown |= !self.store.update_template(account, update, now_ms()).await?;
            tracing::info!(
                account = %account, template = %update.name, language = %update.language,
                status = update.status.as_deref().unwrap_or("-"), category = update.category.as_deref().unwrap_or("-"),
                "template update from Meta"
            );
        }
        if unknown && self.claim_unplanned_refresh(account) {
            let (templates, account) = (self.clone(), account.clone());
            tokio::spawn(async move {
                if let Err(error) = templates.refresh(&account).await {
                    tracing::warn!(account = %account, %error, "could not refresh the message templates");
                }
            });
        }
        Ok(())
    }
}
