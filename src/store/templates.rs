//! Each account's message templates, cached from the business account so a
//! send is checked without a Graph call, and shared by every replica.

use super::{Store, StoreError};
use crate::domain::AccountName;
use crate::templates::{Template, TemplateUpdate};
use sqlx::Row;

/// When an account's list was last read from Graph.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateSync {
    pub synced_at: Option<i64>,
    /// Why the last try failed, if it did.
    pub error: Option<String>,
    pub tried_at: Option<i64>,
}

const UPSERT: &str = "INSERT INTO message_templates \
       (account, name, language, meta_id, status, category, definition, reason, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (account, name, language) DO UPDATE SET meta_id = excluded.meta_id, status = excluded.status, \
       category = excluded.category, definition = excluded.definition, reason = excluded.reason, \
       updated_at = excluded.updated_at";

impl Store {
    /// Replaces `account`'s templates with the list Graph gave.
    pub async fn replace_templates(
        &self,
        account: &AccountName,
        templates: &[Template],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM message_templates WHERE account = $1")
            .bind(account.as_stored())
            .execute(&mut *tx)
            .await?;
        for template in templates {
            bind_template(sqlx::query(UPSERT), account, template, now).execute(&mut *tx).await?;
        }
        record_sync(&mut tx, account, None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Notes that reading `account`'s list failed, keeping the list it had.
    pub async fn template_sync_failed(&self, account: &AccountName, error: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        record_sync(&mut tx, account, Some(error), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds or replaces one template (submitted, or kept here for a
    /// provider without Meta's templates).
    pub async fn save_template(&self, account: &AccountName, template: &Template, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        bind_template(sqlx::query(UPSERT), account, template, now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies a status or category webhook to the template it names (by
    /// Meta's id, else by name and language); `false` if none is cached.
    pub async fn update_template(
        &self,
        account: &AccountName,
        update: &TemplateUpdate,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE message_templates SET status = COALESCE($1, status), category = COALESCE($2, category), \
               reason = CASE WHEN $1 IS NULL THEN reason ELSE $3 END, updated_at = $4 \
             WHERE account = $5 AND ((meta_id IS NOT NULL AND meta_id = $6) OR (name = $7 AND language = $8))",
        )
        .bind(update.status.as_deref())
        .bind(update.category.as_deref())
        .bind(update.reason.as_deref())
        .bind(now)
        .bind(account.as_stored())
        .bind(update.meta_id.as_deref())
        .bind(&update.name)
        .bind(&update.language)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// `account`'s templates by name and language.
    pub async fn templates(&self, account: &AccountName) -> Result<Vec<Template>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, language, meta_id, status, category, definition, reason FROM message_templates \
             WHERE account = $1 ORDER BY name, language",
        )
        .bind(account.as_stored())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    pub async fn template_sync(&self, account: &AccountName) -> Result<TemplateSync, StoreError> {
        let row = sqlx::query("SELECT synced_at, error, tried_at FROM template_syncs WHERE account = $1")
            .bind(account.as_stored())
            .fetch_optional(&self.reader)
            .await?;
        Ok(match row {
            Some(row) => TemplateSync {
                synced_at: row.try_get("synced_at")?,
                error: row.try_get("error")?,
                tried_at: Some(row.try_get("tried_at")?),
            },
            None => TemplateSync::default(),
        })
    }
}

fn bind_template<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    account: &AccountName,
    template: &Template,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(account.as_stored().to_owned())
        .bind(template.name.clone())
        .bind(template.language.clone())
        .bind(template.meta_id.clone())
        .bind(template.status.clone())
        .bind(template.category.clone())
        .bind(template.definition.to_string())
        .bind(template.reason.clone())
        .bind(now)
}

async fn record_sync(
    tx: &mut sqlx::AnyConnection,
    account: &AccountName,
    error: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO template_syncs (account, synced_at, error, tried_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account) DO UPDATE SET synced_at = COALESCE(excluded.synced_at, template_syncs.synced_at), \
           error = excluded.error, tried_at = excluded.tried_at",
    )
    .bind(account.as_stored())
    .bind(error.is_none().then_some(now))
    .bind(error)
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

fn template_from_row(row: &sqlx::any::AnyRow) -> Result<Template, StoreError> {
    let definition: String = row.try_get("definition")?;
    Ok(Template {
        name: row.try_get("name")?,
        language: row.try_get("language")?,
        meta_id: row.try_get("meta_id")?,
        status: row.try_get("status")?,
        category: row.try_get("category")?,
        reason: row.try_get("reason")?,
        definition: serde_json::from_str(&definition).unwrap_or_default(),
    })
}
