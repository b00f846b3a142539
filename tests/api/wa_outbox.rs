//! The old gateway's `wa_outbox` table in a real MariaDB: rows waiting as
//! `ANTRIAN` go out once (even with two replicas polling), are marked
//! `Terproses` with our message id or `Gagal` with the reason, wait out
//! holidays in `wa_libur`, and reach people who never wrote as the
//! configured template on the Cloud API and as text through Fonnte.
//! Skipped with a notice when no MariaDB answers at TEST_MARIADB_URL
//! (default mysql://root@127.0.0.1:3306); `.ci/run` starts it.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::Row;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both_backends!(
    rows_go_out_once_and_are_marked,
    two_replicas_take_each_row_once,
    holidays_and_hours_hold_rows_back,
    people_who_never_wrote_get_the_template_or_a_reason,
    fonnte_sends_text_to_anyone,
    an_unreachable_database_leaves_the_server_serving,
);

const PERSON: &str = "6281234567789";
const WABA: &str = "556677889900";
const TEMPLATES_PATH: &str = "/v23.0/556677889900/message_templates";
/// Every hour of every day, so no test depends on when it runs.
const ALWAYS: &str = "Mon-Sun 00:00-24:00 Asia/Jakarta";

/// A database of its own on the MariaDB server, with the old gateway's
/// tables; dropped by `remove`.
struct Legacy {
    pool: MySqlPool,
    server: String,
    name: String,
}

impl Legacy {
    async fn new(test: &str) -> Option<Self> {
        let server = std::env::var("TEST_MARIADB_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
        let options = MySqlPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(3));
        let Ok(admin) = options.connect(&format!("{server}/test")).await else {
            eprintln!("no MariaDB answers at {server} (TEST_MARIADB_URL): skipping {test}");
            return None;
        };
        let name = format!("wa_outbox_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create database");
        admin.close().await;
        let pool = MySqlPoolOptions::new().connect(&format!("{server}/{name}")).await.expect("connect");
        // The schema README documents, as the old gateway's applications have it.
        for create in [
            "CREATE TABLE IF NOT EXISTS wa_outbox (
               id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
               nowa VARCHAR(30) NOT NULL,
               pesan TEXT NOT NULL,
               type VARCHAR(10) NOT NULL DEFAULT 'TEXT',
               file VARCHAR(500) NULL,
               status VARCHAR(20) NOT NULL DEFAULT 'ANTRIAN',
               response TEXT NULL,
               created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
               KEY wa_outbox_status (status, id)
             )",
            "CREATE TABLE IF NOT EXISTS wa_libur (
               id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
               tanggal DATE NOT NULL,
               keterangan VARCHAR(100) NULL
             )",
        ] {
            sqlx::query(create).execute(&pool).await.expect("create table");
        }
        Some(Self { pool, server, name })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    async fn insert(&self, nowa: &str, pesan: &str, kind: &str, file: Option<&str>) -> i64 {
        let done = sqlx::query("INSERT INTO wa_outbox (nowa, pesan, type, file) VALUES (?, ?, ?, ?)")
            .bind(nowa)
            .bind(pesan)
            .bind(kind)
            .bind(file)
            .execute(&self.pool)
            .await
            .expect("insert row");
        done.last_insert_id() as i64
    }

    /// `(status, response)` of row `id`; the response as JSON.
    async fn row(&self, id: i64) -> (String, Value) {
        let row = sqlx::query("SELECT status, response FROM wa_outbox WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("row");
        let response: Option<String> = row.get("response");
        (row.get("status"), response.map_or(Value::Null, |text| serde_json::from_str(&text).expect("JSON response")))
    }

    async fn waiting(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'ANTRIAN'")
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    async fn wait_for_status(&self, id: i64) -> (String, Value) {
        wait_until(|| async { self.row(id).await.0 != "ANTRIAN" }).await;
        self.row(id).await
    }

    async fn remove(self) {
        sqlx::query(&format!("DROP DATABASE {}", self.name)).execute(&self.pool).await.expect("drop database");
        self.pool.close().await;
    }
}

fn overrides<'a>(legacy: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all =
        vec![("WA_OUTBOX_DATABASE_URL", legacy), ("WA_OUTBOX_HOURS", ALWAYS), ("WA_OUTBOX_POLL_SECONDS", "0.2")];
    all.extend_from_slice(more);
    all
}

async fn rows_go_out_once_and_are_marked(backend: Backend) {
    let Some(legacy) = Legacy::new("rows_go_out_once_and_are_marked").await else { return };
    let url = legacy.url();
    let app = TestApp::spawn_with(backend, &overrides(&url, &[])).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    customer_wrote(&app, PERSON).await;

    let text = legacy.insert("0812-3456-7789", "Hasil lab Anda sudah bisa diambil.", "TEXT", None).await;
    let image = legacy.insert(PERSON, "Brosur", "IMAGE", Some("https://klinik.example/brosur.jpg")).await;
    let file = legacy.insert(PERSON, "Tagihan", "FILE", Some("https://isp.example/tagihan/0042.pdf")).await;
    let bad_number = legacy.insert("12345", "Halo", "TEXT", None).await;
    let bad_type = legacy.insert(PERSON, "Halo", "STICKER", None).await;
    let no_file = legacy.insert(PERSON, "Foto", "IMAGE", None).await;

    let (status, response) = legacy.wait_for_status(text).await;
    assert_eq!(
        (status.as_str(), &response["ok"], &response["sent_as"]),
        ("Terproses", &json!(true), &json!("message"))
    );
    let id = response["id"].as_i64().expect("our message id");
    let path = format!("/api/messages/{id}");
    wait_until(|| async { get(&app, &path, ADMIN_TOKEN).await.1["state"] == "sent" }).await;
    let (_, message) = get(&app, &path, ADMIN_TOKEN).await;
    assert_eq!((message["token"].clone(), message["to"].clone()), (json!("wa_outbox"), json!("6281******789")));
    // Our commit done, theirs lost (a crash between the two): the row is
    // taken again and finds its message; nothing more is sent.
    retake(&legacy, text).await;
    assert_eq!(legacy.wait_for_status(text).await.1["id"], response["id"]);

    for (id, reason) in [(bad_number, "nowa: "), (bad_type, "type must be"), (no_file, "need the file's address")] {
        let (status, response) = legacy.wait_for_status(id).await;
        assert_eq!((status.as_str(), &response["ok"]), ("Gagal", &json!(false)), "{response}");
        assert!(response["reason"].as_str().unwrap().contains(reason), "{response}");
    }
    for id in [image, file] {
        assert_eq!(legacy.wait_for_status(id).await.0, "Terproses");
    }
    wait_until(|| async {
        let sent = requests_to(&app.graph, SEND_PATH).await;
        sent.iter().any(|body| body["type"] == "image") && sent.iter().any(|body| body["type"] == "document")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    assert_eq!(texts_with(&app, "Hasil lab Anda sudah bisa diambil.").await, 1);
    let sent = requests_to(&app.graph, SEND_PATH).await;
    let files: Vec<(&Value, &Value)> = sent
        .iter()
        .filter(|body| body["type"] == "image" || body["type"] == "document")
        .map(|body| (&body["type"], &body[body["type"].as_str().unwrap()]))
        .collect();
    assert_eq!(
        files,
        [
            (&json!("image"), &json!({ "link": "https://klinik.example/brosur.jpg", "caption": "Brosur" })),
            (
                &json!("document"),
                &json!({ "link": "https://isp.example/tagihan/0042.pdf", "caption": "Tagihan", "filename": "0042.pdf" })
            ),
        ]
    );
    assert!(app.metric("wa_outbox_rows_total{outcome=\"failed\"}").await >= 3.0);
    legacy.remove().await;
}

async fn two_replicas_take_each_row_once(backend: Backend) {
    let Some(legacy) = Legacy::new("two_replicas_take_each_row_once").await else { return };
    let url = legacy.url();
    // One row a round: while rows wait, both replicas go round without
    // pausing and reach for the same oldest row at once, again and again.
    let app = TestApp::spawn_with(backend, &overrides(&url, &[("WA_OUTBOX_BATCH", "1")])).await;
    let replica = Server::start(app.settings()).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    customer_wrote(&app, PERSON).await;

    // One statement: both replicas find all fifty at once.
    let values = (1..=50).map(|n| format!("('{PERSON}', 'Pengumuman {n}', 'TEXT')")).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!("INSERT INTO wa_outbox (nowa, pesan, type) VALUES {values}"))
        .execute(&legacy.pool)
        .await
        .expect("insert rows");
    wait_until(|| async { legacy.waiting().await == 0 }).await;
    wait_until(|| async { app.sent_texts().await.len() >= 51 }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for n in 1..=50 {
        assert_eq!(texts_with(&app, &format!("Pengumuman {n}")).await, 1, "Pengumuman {n}");
    }
    let responses: Vec<Option<String>> =
        sqlx::query_scalar("SELECT response FROM wa_outbox WHERE status = 'Terproses'")
            .fetch_all(&legacy.pool)
            .await
            .unwrap();
    let mut ids: Vec<i64> = responses
        .iter()
        .map(|text| serde_json::from_str::<Value>(text.as_deref().unwrap()).unwrap()["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 50, "one message of ours per row");
    replica.stop().await;
    legacy.remove().await;
}

async fn holidays_and_hours_hold_rows_back(backend: Backend) {
    let Some(legacy) = Legacy::new("holidays_and_hours_hold_rows_back").await else { return };
    // Today, in Jakarta.
    sqlx::query(
        "INSERT INTO wa_libur (tanggal, keterangan) \
         VALUES (DATE(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', '+07:00')), 'Libur uji')",
    )
    .execute(&legacy.pool)
    .await
    .unwrap();
    let url = legacy.url();
    let mut app = TestApp::spawn_with(backend, &overrides(&url, &[])).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    customer_wrote(&app, PERSON).await;

    let row = legacy.insert(PERSON, "Jadwal kontrol besok.", "TEXT", None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(legacy.row(row).await.0, "ANTRIAN", "nothing goes out on a holiday");
    assert_eq!(texts_with(&app, "Jadwal kontrol besok.").await, 0);

    // The holiday called off: the row goes within a poll.
    sqlx::query("DELETE FROM wa_libur").execute(&legacy.pool).await.unwrap();
    assert_eq!(legacy.wait_for_status(row).await.0, "Terproses");
    wait_until(|| async { texts_with(&app, "Jadwal kontrol besok.").await == 1 }).await;

    // Hours that open only the day after tomorrow: a row waits for them.
    app.overrides.insert("WA_OUTBOX_HOURS".into(), format!("{} 00:00-24:00 UTC", weekday_after_tomorrow()));
    app.restart().await;
    let later = legacy.insert(PERSON, "Di luar jam kirim.", "TEXT", None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(legacy.row(later).await.0, "ANTRIAN", "nothing goes out outside the hours");
    assert_eq!(texts_with(&app, "Di luar jam kirim.").await, 0);
    legacy.remove().await;
}

/// The row as if our commit had happened and theirs had not.
async fn retake(legacy: &Legacy, id: i64) {
    sqlx::query("UPDATE wa_outbox SET status = 'ANTRIAN', response = NULL WHERE id = ?")
        .bind(id)
        .execute(&legacy.pool)
        .await
        .unwrap();
}

fn weekday_after_tomorrow() -> &'static str {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    // 1 January 1970 was a Thursday.
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][((days + 3 + 2) % 7) as usize]
}

fn notifikasi() -> Value {
    json!({
        "id": "2001", "name": "notifikasi", "language": "id", "status": "APPROVED", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Pemberitahuan: {{1}}"}],
    })
}

async fn business_account_lists(graph: &MockServer) {
    Mock::given(method("GET"))
        .and(path(TEMPLATES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [notifikasi()] })))
        .mount(graph)
        .await;
}

async fn people_who_never_wrote_get_the_template_or_a_reason(backend: Backend) {
    let Some(legacy) = Legacy::new("people_who_never_wrote_get_the_template_or_a_reason").await else { return };
    let url = legacy.url();
    let with_template = [("META_BUSINESS_ACCOUNT_ID", WABA), ("WA_OUTBOX_TEMPLATE", "notifikasi:id")];
    let mut app = TestApp::spawn_with(backend, &overrides(&url, &with_template)).await;
    graph_accepts_sends(&app.graph).await;
    business_account_lists(&app.graph).await;

    let row = legacy.insert(PERSON, "Tagihan November Rp150.000\njatuh tempo 10 Desember.", "TEXT", None).await;
    let (status, response) = legacy.wait_for_status(row).await;
    assert_eq!((status.as_str(), &response["sent_as"]), ("Terproses", &json!("template")), "{response}");
    wait_until(|| async { !requests_to(&app.graph, SEND_PATH).await.is_empty() }).await;
    let sent = requests_to(&app.graph, SEND_PATH).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["template"],
        json!({
            "name": "notifikasi", "language": {"code": "id"},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Tagihan November Rp150.000 jatuh tempo 10 Desember."},
            ]}],
        })
    );

    // Taken again after a lost commit: first as written (refused by the
    // key, which sent the template), then as the template, found.
    retake(&legacy, row).await;
    assert_eq!(legacy.wait_for_status(row).await.1["id"], response["id"]);

    // Without a template such a row cannot go: it fails with the reason.
    app.overrides.remove("WA_OUTBOX_TEMPLATE");
    app.restart().await;
    let refused = legacy.insert("6281299990000", "Pengingat jadwal.", "TEXT", None).await;
    let (status, response) = legacy.wait_for_status(refused).await;
    assert_eq!(status, "Gagal");
    assert!(response["reason"].as_str().unwrap().contains("WA_OUTBOX_TEMPLATE"), "{response}");
    assert_eq!(requests_to(&app.graph, SEND_PATH).await.len(), 1, "nothing more was sent");
    legacy.remove().await;
}

async fn fonnte_sends_text_to_anyone(backend: Backend) {
    let Some(legacy) = Legacy::new("fonnte_sends_text_to_anyone").await else { return };
    let files = tempfile::tempdir().unwrap();
    let (fonnte, channels) = fonnte_account(&files, "billing", "777").await;
    let url = legacy.url();
    let [token, hook] = FONNTE_SECRETS;
    let more = [("CHANNELS_FILE", channels.as_str()), token, hook, ("WA_OUTBOX_ACCOUNT", "billing")];
    let app = TestApp::spawn_with(backend, &overrides(&url, &more)).await;

    // Nobody wrote to this number, and there is no template: Fonnte has no
    // 24-hour rule, so the row goes as text.
    let row = legacy.insert("081234567789", "Tagihan November\nRp150.000", "TEXT", None).await;
    assert_eq!(legacy.wait_for_status(row).await.0, "Terproses");
    wait_until(|| async { !fonnte.received_requests().await.unwrap().is_empty() }).await;
    let to_fonnte = fonnte.received_requests().await.unwrap();
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_bytes(&to_fonnte[0].body).unwrap();
    assert_eq!((form["target"].as_str(), form["message"].as_str()), (PERSON, "Tagihan November\nRp150.000"));
    assert!(requests_to(&app.graph, SEND_PATH).await.is_empty());
    legacy.remove().await;
}

async fn an_unreachable_database_leaves_the_server_serving(backend: Backend) {
    // Nothing listens on port 1; the password must never reach the logs.
    let more = [("WA_OUTBOX_POLL_SECONDS", "0.1")];
    let app = TestApp::spawn_with(backend, &overrides("mysql://gateway:hunter2@127.0.0.1:1/gateway", &more)).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;

    wait_until(|| async { app.metric("wa_outbox_errors_total").await >= 1.0 }).await;
    customer_wrote(&app, PERSON).await;
    let errors = app.admin_json("/api/admin/errors").await;
    let text = errors.to_string();
    assert!(text.contains("wa_outbox"), "{errors}");
    assert!(!text.contains("hunter2"), "{errors}");
}
