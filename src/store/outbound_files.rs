//! Files applications upload through the send API, kept in the database
//! (any replica may send the message) once per content, until no message
//! waiting to go out needs them.

use super::outbox::UNSENT;
use super::{Store, StoreError};
use crate::domain::{UploadedFile, HOUR_MS};
use bytes::Bytes;
use sqlx::{Any, Transaction};

/// How long the file of a message that failed for good is kept for a
/// retry by hand (`POST /api/messages/{id}/retry`).
const FAILED_KEPT_MS: i64 = 7 * 24 * HOUR_MS;

/// Keeps `file`'s bytes for a message queued in `tx`. The same bytes
/// uploaded again are the same row; one emptied since gets them back. A
/// file given without its bytes is one kept already: only its time moves.
pub(super) async fn keep_file(tx: &mut Transaction<'_, Any>, file: &UploadedFile, now: i64) -> Result<(), StoreError> {
    let query = match &file.contents {
        Some(contents) => sqlx::query(
            "INSERT INTO outbound_files (sha256, touched_at, mime, size, contents) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sha256) DO UPDATE SET contents = excluded.contents, mime = excluded.mime, \
               touched_at = excluded.touched_at",
        )
        .bind(&file.sha256)
        .bind(now)
        .bind(&file.mime)
        .bind(file.size)
        .bind(contents.to_vec()),
        None => sqlx::query("UPDATE outbound_files SET touched_at = $2 WHERE sha256 = $1").bind(&file.sha256).bind(now),
    };
    query.execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// The bytes of an uploaded file, for an attempt to send it; `None`
    /// once they were dropped.
    pub async fn uploaded_contents(&self, sha256: &str) -> Result<Option<Bytes>, StoreError> {
        let contents: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT contents FROM outbound_files WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.reader)
                .await?;
        Ok(contents.flatten().map(Bytes::from))
    }

    /// Drops the bytes of files no message needs any more (every one
    /// carrying it is sent or cancelled, or failed for good more than
    /// `FAILED_KEPT_MS` ago), and forgets files no message refers to. A file
    /// queued in the last `grace_ms` is left alone, so one queued while this
    /// runs keeps its bytes. `(emptied, forgotten)`.
    pub async fn release_sent_files(&self, now: i64, grace_ms: i64) -> Result<(u64, u64), StoreError> {
        let mut tx = self.write_tx().await?;
        let emptied = sqlx::query(&format!(
            "UPDATE outbound_files SET contents = NULL WHERE contents IS NOT NULL AND touched_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM outbound_messages o WHERE o.media_file = outbound_files.sha256 \
                 AND (o.state IN {UNSENT} OR (o.state IN ('failed_permanent', 'dead') AND o.updated_at >= $2)))"
        ))
        .bind(now - grace_ms)
        .bind(now - FAILED_KEPT_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let forgotten = sqlx::query(
            "DELETE FROM outbound_files WHERE touched_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM outbound_messages o WHERE o.media_file = outbound_files.sha256)",
        )
        .bind(now - grace_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((emptied, forgotten))
    }
}
