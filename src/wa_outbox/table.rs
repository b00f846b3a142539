//! The old gateway's tables in its MySQL/MariaDB database, read as
//! defensively as a schema we did not design deserves: every column is cast
//! to what we need, so `INT` or `BIGINT UNSIGNED` ids, `VARCHAR` or `TEXT`
//! columns and `DATE` or text holidays all read the same.

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{MySql, Row, Transaction};
use std::collections::BTreeSet;
use std::time::Duration;

/// A row the old gateway would have sent.
pub const WAITING: &str = "ANTRIAN";
/// A row handed to the outbox (sent or being sent).
pub const TAKEN: &str = "Terproses";
/// A row that can never be sent as it is; the reason is in `response`.
pub const FAILED: &str = "Gagal";

/// MySQL's SQLSTATE for a table that does not exist.
const NO_SUCH_TABLE: &str = "42S02";

/// One row of `wa_outbox`, as written (checked in `notification`).
#[derive(Debug)]
pub struct LegacyRow {
    pub id: i64,
    pub nowa: Option<String>,
    pub pesan: Option<String>,
    pub kind: Option<String>,
    pub file: Option<String>,
}

/// Connects on first use, so a database that is down at start-up is a
/// logged, retried failure of the poller rather than of the server.
pub fn pool(url: &str) -> Result<MySqlPool, sqlx::Error> {
    // sqlx knows MariaDB by MySQL's scheme.
    let url = url.strip_prefix("mariadb://").map_or_else(|| url.to_owned(), |rest| format!("mysql://{rest}"));
    let options: MySqlConnectOptions = url.parse()?;
    Ok(MySqlPoolOptions::new().max_connections(2).acquire_timeout(Duration::from_secs(10)).connect_lazy_with(options))
}

/// The dates in `wa_libur` (`YYYY-MM-DD`); `None` when there is no such
/// table, which means no holidays.
pub async fn holidays(pool: &MySqlPool) -> Result<Option<BTreeSet<String>>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT DATE_FORMAT(tanggal, '%Y-%m-%d') AS tanggal FROM wa_libur WHERE tanggal IS NOT NULL")
            .fetch_all(pool)
            .await;
    let rows = match rows {
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some(NO_SUCH_TABLE) => return Ok(None),
        rows => rows?,
    };
    let mut dates = BTreeSet::new();
    for row in rows {
        // A text column holding something that is not a date reads as NULL.
        if let Some(date) = row.try_get::<Option<String>, _>("tanggal")? {
            dates.insert(date);
        }
    }
    Ok(Some(dates))
}

/// Starts the transaction that takes rows. Read committed: InnoDB then
/// takes no gap locks, so the applications inserting rows meanwhile never
/// wait for us.
pub async fn begin(pool: &MySqlPool) -> Result<Transaction<'static, MySql>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    // Applies to the connection's next transaction only.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *connection).await?;
    Transaction::begin(connection, None).await
}

/// Locks up to `batch` waiting rows, oldest first; rows another replica has
/// locked are skipped, so no row is taken twice at once.
pub async fn take(tx: &mut Transaction<'static, MySql>, batch: u32) -> Result<Vec<LegacyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT CAST(id AS SIGNED) AS id, CAST(nowa AS CHAR) AS nowa, CAST(pesan AS CHAR) AS pesan, \
           CAST(`type` AS CHAR) AS kind, CAST(`file` AS CHAR) AS file \
         FROM wa_outbox WHERE status = ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
    )
    .bind(WAITING)
    .bind(batch)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LegacyRow {
                id: row.try_get("id")?,
                nowa: row.try_get("nowa")?,
                pesan: row.try_get("pesan")?,
                kind: row.try_get("kind")?,
                file: row.try_get("file")?,
            })
        })
        .collect()
}

/// Records what became of a row; seen by others when `tx` commits.
pub async fn mark(
    tx: &mut Transaction<'static, MySql>,
    id: i64,
    status: &str,
    response: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE wa_outbox SET status = ?, response = ? WHERE id = ?")
        .bind(status)
        .bind(response)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
