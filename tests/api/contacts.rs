//! Contacts and consent from outside: a customer's STOP opts them out with
//! one confirmation and no LLM call, START takes them back, every change is
//! in the consent log, and the admin lists, saves, imports and exports
//! contacts without ever undoing a customer's own opt-out.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use wa_ai_bridge::domain::{AccountName, PhoneNumber};
use wa_ai_bridge::store::{Consent, Store};

on_both_backends!(
    stop_opts_out_once_without_the_llm_and_start_opts_back_in,
    a_stop_while_a_person_has_the_conversation_still_opts_out,
    the_admin_saves_lists_and_changes_consent_with_a_note,
    an_import_reports_each_bad_line_and_never_undoes_a_customers_opt_out,
    an_export_reads_back_unchanged_and_never_runs_as_a_formula,
    contacts_need_the_admin_token,
);

const PERSON: &str = "6281234567789";
const SEND_TOKEN: &str = "send-scope-token-0123456789";

async fn consent_of(app: &TestApp, phone: &str) -> Consent {
    let store = Store::connect(&app.database.url).await.unwrap();
    let consent = store.consent_of(&AccountName::default(), &PhoneNumber::parse(phone).unwrap()).await.unwrap();
    store.close().await;
    consent
}

async fn log_rows(app: &TestApp, phone: &str) -> Vec<(String, String, String)> {
    let pool = app.pool().await;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT old_state, new_state, source FROM consent_log WHERE phone = $1 ORDER BY id")
            .bind(phone)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

fn body(text: &Value) -> &str {
    text["text"]["body"].as_str().unwrap()
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = app.client.request(method, format!("{}{path}", app.address));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn post_json(app: &TestApp, path: &str, payload: Value) -> (u16, Value) {
    let response = send(app, reqwest::Method::POST, path, Some(ADMIN_TOKEN)).await.json(&payload).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn import(app: &TestApp, csv: &str) -> (u16, Value) {
    let response = send(app, reqwest::Method::POST, "/api/admin/contacts/import", Some(ADMIN_TOKEN))
        .await
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn export(app: &TestApp) -> String {
    let response = app.get("/api/admin/contacts/export", Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    response.text().await.unwrap()
}

async fn stop_opts_out_once_without_the_llm_and_start_opts_back_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;

    app.say(PERSON, "wamid.stop.1", "Stop!!").await;
    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], PERSON);
    assert!(body(&sent[0]).contains("tidak akan menerima pesan promosi") && body(&sent[0]).contains("*MULAI*"));
    assert!(app.llm_requests().await.is_empty(), "answered without the LLM");
    assert_eq!(consent_of(&app, PERSON).await, Consent::OptedOut);
    let opted_out = ("unknown".to_owned(), "opted_out".to_owned(), "customer:phrase".to_owned());
    assert_eq!(log_rows(&app, PERSON).await, std::slice::from_ref(&opted_out));
    assert!(app.metric("wa_consent_changes_total{state=\"opted_out\",source=\"customer\"}").await >= 1.0);

    // A repeated STOP is settled without a second confirmation.
    app.say(PERSON, "wamid.stop.2", "STOP").await;
    wait_until(|| async {
        app.count("SELECT COUNT(*) FROM turns WHERE reply_kind = 'opt_out' AND status = 'answered'").await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.sent_texts().await.len(), 1);
    assert_eq!(log_rows(&app, PERSON).await.len(), 1);
    assert!(app.llm_requests().await.is_empty());

    // "stop" inside a question is a question for the bot.
    app.say(PERSON, "wamid.q.1", "stop dulu ya, saya mau tanya jadwal dokter gigi").await;
    let sent = app.wait_for_texts(2).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(body(&sent[1]), "Halo kak!");
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(consent_of(&app, PERSON).await, Consent::OptedOut);

    // START takes promotions back, confirmed once.
    app.say(PERSON, "wamid.start.1", "start").await;
    let sent = app.wait_for_texts(3).await;
    assert_eq!(sent.len(), 3);
    assert!(body(&sent[2]).contains("akan menerima info dan promosi"), "{}", body(&sent[2]));
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(consent_of(&app, PERSON).await, Consent::OptedIn);
    let opted_in = ("opted_out".to_owned(), "opted_in".to_owned(), "customer:phrase".to_owned());
    assert_eq!(log_rows(&app, PERSON).await, [opted_out, opted_in]);

    // From someone who did not opt out, "mulai" is a message for the bot.
    app.say(PERSON, "wamid.start.2", "Mulai").await;
    let sent = app.wait_for_texts(4).await;
    assert_eq!(body(&sent[3]), "Halo kak!");
    assert_eq!(app.llm_requests().await.len(), 2);
    assert_eq!(log_rows(&app, PERSON).await.len(), 2);

    // Other ways of saying it, from other people.
    for (n, (person, text)) in
        [("6281300000001", "berhenti."), ("6281300000002", "UnSubscribe ya kak")].iter().enumerate()
    {
        app.say(person, &format!("wamid.other.{n}"), text).await;
        let sent = app.wait_for_texts(5 + n).await;
        assert_eq!(sent.len(), 5 + n);
        assert!(body(&sent[4 + n]).contains("tidak akan menerima pesan promosi"));
        assert_eq!(consent_of(&app, person).await, Consent::OptedOut, "{text}");
    }
    assert_eq!(app.llm_requests().await.len(), 2);
}

async fn a_stop_while_a_person_has_the_conversation_still_opts_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    app.say(PERSON, "wamid.hi.1", "halo").await;
    app.wait_for_texts(1).await;
    let user_id = app.count(&format!("SELECT id FROM users WHERE username = 'whatsapp_{PERSON}'")).await;
    let (status, _) = post_json(&app, &format!("/api/admin/conversations/{user_id}/pause"), json!({})).await;
    assert_eq!(status, 200);

    app.say(PERSON, "wamid.stop.1", "stop").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'held'").await == 1 }).await;
    assert_eq!(consent_of(&app, PERSON).await, Consent::OptedOut);
    assert_eq!(
        log_rows(&app, PERSON).await,
        [("unknown".to_owned(), "opted_out".to_owned(), "customer:phrase".to_owned())]
    );
    // The bot stays silent while a person has the conversation: the agent sees the STOP.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.sent_texts().await.len(), 1);
    assert_eq!(app.llm_requests().await.len(), 1);
}

async fn the_admin_saves_lists_and_changes_consent_with_a_note(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, saved) = post_json(
        &app,
        "/api/admin/contacts",
        json!({ "number": "0812-1111-2222", "name": " Bu Sari ", "tags": ["VIP", "pasien gigi"], "consent": "opted_in" }),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["outcome"], "created");
    let contact = &saved["contact"];
    assert_eq!(contact["number"], "6281211112222");
    assert_eq!(contact["name"], "Bu Sari");
    assert_eq!(contact["tags"], json!(["pasien-gigi", "vip"]));
    assert_eq!(
        (contact["consent"].clone(), contact["consentSource"].clone()),
        (json!("opted_in"), json!("admin:admin"))
    );
    let id = contact["id"].as_i64().unwrap();

    let (status, again) = post_json(&app, "/api/admin/contacts", json!({ "number": "6281211112222" })).await;
    assert_eq!((status, again["outcome"].clone()), (200, json!("unchanged")));
    let (_, renamed) =
        post_json(&app, "/api/admin/contacts", json!({ "number": "+62 812 1111 2222", "name": "Sari" })).await;
    assert_eq!(
        (renamed["outcome"].clone(), renamed["contact"]["tags"].clone()),
        (json!("updated"), json!(["pasien-gigi", "vip"]))
    );
    post_json(
        &app,
        "/api/admin/contacts",
        json!({ "number": "0813 2222 3333", "name": "Budi", "tags": "pasien-umum" }),
    )
    .await;

    // Bad input: a clear 400, and nothing stored.
    for (payload, says) in [
        (json!({ "number": "0212345678", "name": "Kantor" }), "number:"),
        (json!({ "number": "0814 1234 5678", "tags": ["a/b"] }), "tag"),
        (json!({ "number": "0814 1234 5678", "consent": "maybe" }), "consent"),
        (json!({ "nomor": "0814 1234 5678" }), "number"),
    ] {
        let (status, refused) = post_json(&app, "/api/admin/contacts", payload).await;
        assert_eq!(status, 400, "{refused}");
        assert!(refused["error"].as_str().unwrap().contains(says), "{refused}");
    }
    let (status, refused) =
        post_json(&app, "/api/admin/contacts?account=nope", json!({ "number": "0814 1234 5678" })).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(app.count("SELECT COUNT(*) FROM contacts").await, 2);

    let listed = app.admin_json("/api/admin/contacts?q=sar").await;
    assert_eq!((listed["total"].clone(), listed["contacts"][0]["id"].clone()), (json!(1), json!(id)));
    let listed = app.admin_json("/api/admin/contacts?q=0813").await;
    assert_eq!(listed["contacts"][0]["name"], "Budi");
    let listed = app.admin_json("/api/admin/contacts?tag=VIP").await;
    assert_eq!(listed["total"], 1);
    let listed = app.admin_json("/api/admin/contacts?consent=unknown").await;
    assert_eq!((listed["total"].clone(), listed["contacts"][0]["name"].clone()), (json!(1), json!("Budi")));
    let listed = app.admin_json("/api/admin/contacts?limit=1&offset=1").await;
    assert_eq!((listed["total"].clone(), listed["contacts"][0]["name"].clone()), (json!(2), json!("Sari")));
    assert_eq!(app.get("/api/admin/contacts?consent=maybe", Some(ADMIN_TOKEN)).await.status(), 400);

    let path = format!("/api/admin/contacts/{id}/consent");
    let (status, changed) =
        post_json(&app, &path, json!({ "state": "opted_out", "note": "minta lewat telepon" })).await;
    assert_eq!(
        (status, changed["changed"].clone(), changed["consent"].clone()),
        (200, json!(true), json!("opted_out"))
    );
    let (_, same) = post_json(&app, &path, json!({ "state": "opted_out" })).await;
    assert_eq!(same["changed"], false);
    let (status, _) = post_json(&app, &path, json!({ "state": "unknown" })).await;
    assert_eq!(status, 400);
    let (status, _) = post_json(&app, "/api/admin/contacts/999999/consent", json!({ "state": "opted_in" })).await;
    assert_eq!(status, 404);
    let shown = app.admin_json(&format!("/api/admin/contacts/{id}")).await;
    let log: Vec<(Value, Value, Value, Value)> = shown["consentLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].clone(), c["to"].clone(), c["source"].clone(), c["note"].clone()))
        .collect();
    assert_eq!(
        log,
        [
            (json!("unknown"), json!("opted_in"), json!("admin:admin"), Value::Null),
            (json!("opted_in"), json!("opted_out"), json!("admin:admin"), json!("minta lewat telepon")),
        ]
    );

    // What campaigns will read.
    let store = Store::connect(&app.database.url).await.unwrap();
    let vip = store.contacts_with_tag(&AccountName::default(), "VIP").await.unwrap();
    assert_eq!(vip.iter().map(|c| c.phone.expose()).collect::<Vec<_>>(), ["6281211112222"]);
    assert_eq!(vip[0].consent, Consent::OptedOut);
    assert!(store.contacts_with_tag(&AccountName::default(), "nobody").await.unwrap().is_empty());
    store.close().await;
}

async fn an_import_reports_each_bad_line_and_never_undoes_a_customers_opt_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    app.say(PERSON, "wamid.stop.1", "berhenti").await;
    app.wait_for_texts(1).await;
    assert_eq!(consent_of(&app, PERSON).await, Consent::OptedOut);

    let csv = "\u{feff}Nomor,Nama,Tags,Opt-in\r\n\
               0812-3456-7789,\"Santoso, Budi\",\"pelanggan,20mbps\",ya\r\n\
               0212345678,Kantor,,\r\n\
               0813 1111 2222,\"Ani \"\"Nia\"\"\",pelanggan,opted_in\r\n\
               \r\n\
               0814 5555 6666,Dodi,a/b,\r\n\
               0815 7777 8888,Eka,,mungkin\r\n\
               0816 1234 5678,,,tidak\r\n";
    let (status, result) = import(&app, csv).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!((result["created"].clone(), result["updated"].clone()), (json!(2), json!(1)), "{result}");
    let lines: Vec<i64> = result["errors"].as_array().unwrap().iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [3, 6, 7], "{result}");
    assert_eq!(result["keptOptOut"], json!([{ "line": 2, "number": PERSON }]));

    // The customer's own word stands; the rest of their line was applied.
    assert_eq!(consent_of(&app, PERSON).await, Consent::OptedOut);
    let budi = app.admin_json(&format!("/api/admin/contacts?q={PERSON}")).await;
    assert_eq!(budi["contacts"][0]["name"], "Santoso, Budi");
    assert_eq!(budi["contacts"][0]["tags"], json!(["20mbps", "pelanggan"]));
    assert_eq!(consent_of(&app, "6281311112222").await, Consent::OptedIn);
    assert_eq!(consent_of(&app, "6281612345678").await, Consent::OptedOut);
    let ani = app.admin_json("/api/admin/contacts?q=ani").await;
    assert_eq!(ani["contacts"][0]["name"], "Ani \"Nia\"");
    assert_eq!(
        log_rows(&app, "6281311112222").await,
        [("unknown".to_owned(), "opted_in".to_owned(), "import".to_owned())]
    );
    assert_eq!(log_rows(&app, PERSON).await.len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM contacts").await, 3);

    // A file that cannot be read changes nothing.
    let (status, refused) = import(&app, "nama,tags\nSari,vip\n").await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = import(&app, "nomor,nama\n0817 1234 5678,\"open\n").await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("line 2"), "{refused}");
    assert_eq!(app.count("SELECT COUNT(*) FROM contacts").await, 3);
}

async fn an_export_reads_back_unchanged_and_never_runs_as_a_formula(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let csv = "number,name,tags,consent\n\
               081211112222,\"=HYPERLINK(\"\"http://x\"\")\",vip,opted_in\n\
               081322223333,\"Sari, S.Kep\",\"a,b\",\n\
               081433334444,,,opted_out\n";
    let (status, result) = import(&app, csv).await;
    assert_eq!((status, result["created"].clone()), (200, json!(3)), "{result}");
    let exported = export(&app).await;
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines[0], "\u{feff}number,name,tags,consent,consent_source,consent_at");
    assert!(lines.contains(&"6281322223333,\"Sari, S.Kep\",\"a,b\",unknown,,"), "{exported}");
    assert!(
        lines.iter().any(|l| l.starts_with("6281211112222,\"'=HYPERLINK(\"\"http://x\"\")\",vip,opted_in,import,")),
        "{exported}"
    );

    let (status, again) = import(&app, &exported).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["created"].clone(), again["updated"].clone(), again["unchanged"].clone()),
        (json!(0), json!(0), json!(3)),
        "{again}"
    );
    assert_eq!(again["errors"], json!([]));
    let listed = app.admin_json("/api/admin/contacts?tag=vip").await;
    assert_eq!(listed["contacts"][0]["name"], "=HYPERLINK(\"http://x\")");
    assert_eq!(export(&app).await, exported);
    let response = app.get("/api/admin/contacts/export?consent=opted_out", Some(ADMIN_TOKEN)).await;
    let opted_out = response.text().await.unwrap();
    assert_eq!(opted_out.lines().count(), 2, "{opted_out}");
    assert!(opted_out.contains("6281433334444,,,opted_out,import,"), "{opted_out}");
}

async fn contacts_need_the_admin_token(backend: Backend) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let digest = hex::encode(Sha256::digest(SEND_TOKEN.as_bytes()));
    std::fs::write(file.path(), format!("[[token]]\nname = \"billing\"\nscopes = [\"send\"]\nsha256 = \"{digest}\"\n"))
        .unwrap();
    let path = file.path().display().to_string();
    let app = TestApp::spawn_with(backend, &[("API_TOKENS_FILE", path.as_str())]).await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/admin/contacts"),
        (reqwest::Method::POST, "/api/admin/contacts"),
        (reqwest::Method::POST, "/api/admin/contacts/import"),
        (reqwest::Method::GET, "/api/admin/contacts/export"),
        (reqwest::Method::GET, "/api/admin/contacts/1"),
        (reqwest::Method::POST, "/api/admin/contacts/1/consent"),
    ] {
        let anonymous = send(&app, method.clone(), path, None).await.send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{method} {path}");
        let sender = send(&app, method.clone(), path, Some(SEND_TOKEN)).await.send().await.unwrap();
        assert_eq!(sender.status(), 403, "{method} {path}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM contacts").await, 0);
}
