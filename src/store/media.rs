//! What reading a message's file learned, stored before it is used, so a
//! turn taken over after a crash resumes from the last step instead of
//! downloading or transcribing again.

use super::{Params, Store, StoreError};
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// One step of reading a message's file. `None` fields are left as they
/// are.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MediaStep<'a> {
    pub outcome: &'a str,
    pub file: Option<&'a str>,
    pub bytes: Option<i64>,
    /// The type the file turned out to have.
    pub mime: Option<&'a str>,
    pub text: Option<&'a str>,
    pub audio_ms: Option<i64>,
    pub chars: Option<i64>,
}

/// A stored file an admin may look at.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFileRef {
    pub file: String,
    pub mime: Option<String>,
    pub file_name: Option<String>,
}

/// The longest a quoted message is repeated in a turn.
const QUOTE_CHARS: usize = 300;

impl Store {
    pub async fn record_media(&self, wa_message_id: &str, step: &MediaStep<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbound_messages SET media_outcome = $1, media_file = COALESCE($2, media_file), \
               media_bytes = COALESCE($3, media_bytes), media_mime = COALESCE($4, media_mime), \
               media_text = COALESCE($5, media_text), audio_ms = COALESCE($6, audio_ms), \
               media_chars = COALESCE($7, media_chars) \
             WHERE wa_message_id = $8",
        )
        .bind(step.outcome)
        .bind(step.file)
        .bind(step.bytes)
        .bind(step.mime)
        .bind(step.text)
        .bind(step.audio_ms)
        .bind(step.chars)
        .bind(wa_message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The words of the messages these ids name, ours or the person's,
    /// shortened for quoting; ids we never stored are left out.
    pub async fn quoted_messages(&self, ids: &[&str]) -> Result<HashMap<String, String>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut p = Params::new(self.backend);
        let (inbound, outbound) = (p.list(ids.len()), p.list(ids.len()));
        let sql = format!(
            "SELECT wa_message_id, body FROM inbound_messages WHERE wa_message_id IN ({inbound}) AND body IS NOT NULL \
             UNION ALL \
             SELECT wa_message_id, body FROM outbound_messages WHERE wa_message_id IN ({outbound}) AND body IS NOT NULL"
        );
        let mut query = sqlx::query(&sql);
        for id in ids.iter().chain(ids) {
            query = query.bind(*id);
        }
        let mut quoted = HashMap::new();
        for row in query.fetch_all(&self.reader).await? {
            let body: String = row.try_get("body")?;
            let mut text: String = body.chars().take(QUOTE_CHARS).collect();
            if text.len() < body.len() {
                text.push('…');
            }
            quoted.insert(row.try_get("wa_message_id")?, text);
        }
        Ok(quoted)
    }

    /// The stored file of one message, for the admin transcript view.
    pub async fn media_file(&self, wa_message_id: &str) -> Result<Option<MediaFileRef>, StoreError> {
        let row = sqlx::query(
            "SELECT media_file, media_mime, media_name FROM inbound_messages \
             WHERE wa_message_id = $1 AND media_file IS NOT NULL",
        )
        .bind(wa_message_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            Ok(MediaFileRef {
                file: row.try_get("media_file")?,
                mime: row.try_get("media_mime")?,
                file_name: row.try_get("media_name")?,
            })
        })
        .transpose()
    }

    /// Which of these files a message still refers to.
    pub async fn media_in_use(&self, files: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut in_use = HashSet::new();
        for chunk in files.chunks(500) {
            let mut p = Params::new(self.backend);
            let sql = format!(
                "SELECT DISTINCT media_file FROM inbound_messages WHERE media_file IN ({})",
                p.list(chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for file in chunk {
                query = query.bind(file);
            }
            in_use.extend(query.fetch_all(&self.reader).await?);
        }
        Ok(in_use)
    }

    /// Lets go of files that arrived before `cutoff` (`MEDIA_RETENTION_DAYS`);
    /// what was read from them stays with the conversation.
    pub async fn expire_media(&self, cutoff: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE inbound_messages SET media_file = NULL WHERE media_file IS NOT NULL AND received_at < $1",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
