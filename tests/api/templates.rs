//! Message templates seen from an application and an admin: the list read
//! from the business account and kept fresh by Meta's webhooks, a send
//! checked against its template before anything is queued and sent in the
//! `components` shape Meta documents, outside the 24-hour window; new
//! templates checked and submitted; and templates of a provider without
//! Meta's (Fonnte) kept here and sent as text.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both_backends!(
    templates_are_listed_checked_and_sent_outside_the_window,
    templates_are_submitted_after_checking_and_kept_here_for_fonnte,
);

const BILLING: &str = "billing-token-0123456789abcdef";
const PERSON: &str = "6281234567789";

fn tagihan() -> Value {
    json!({
        "id": "1001", "name": "tagihan", "language": "id", "status": "APPROVED", "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "DOCUMENT"},
            {"type": "BODY", "text": "Halo {{1}}, tagihan {{2}} sebesar Rp{{3}} jatuh tempo {{4}}."},
            {"type": "FOOTER", "text": "PT Net Cicalengka"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Bayar", "url": "https://bayar.example/{{1}}"}]},
        ],
    })
}

/// Two pages of templates, as Graph pages them.
async fn business_account_lists(graph: &MockServer) {
    let promo = json!({
        "id": "1002", "name": "promo", "language": "id", "status": "APPROVED", "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [{"type": "BODY", "text": "Halo {{nama}}, ada promo {{paket}} untuk Anda."}],
    });
    let pending = json!({
        "id": "1003", "name": "pengingat", "language": "id", "status": "PENDING", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Pengingat: {{1}} besok."}],
    });
    Mock::given(method("GET"))
        .and(path(TEMPLATES_PATH))
        .and(header("authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [tagihan(), promo],
            "paging": {"cursors": {"before": "b0", "after": "c1"}, "next": "https://graph.facebook.com/next"},
        })))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path(TEMPLATES_PATH))
        .and(query_param("after", "c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [pending], "paging": {"cursors": {"before": "c1", "after": "c2"}},
        })))
        .mount(graph)
        .await;
}

fn template_sends(sent: &[Value]) -> Vec<Value> {
    sent.iter().filter(|body| body["type"] == "template").cloned().collect()
}

async fn graph_sends(app: &TestApp) -> Vec<Value> {
    template_sends(&requests_to(&app.graph, SEND_PATH).await)
}

async fn list_reads(app: &TestApp) -> usize {
    let requests = app.graph.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == TEMPLATES_PATH && r.method.as_str() == "GET").count()
}

fn status_update(event: &str, name: &str, reason: Option<&str>) -> String {
    let mut body: Value = serde_json::from_str(&fixture("template_status_update__approved.json")).unwrap();
    body["entry"][0]["id"] = json!(WABA);
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["event"] = json!(event);
    value["message_template_name"] = json!(name);
    value["message_template_language"] = json!("id");
    value["message_template_id"] = json!(0);
    value["reason"] = json!(reason.unwrap_or("NONE"));
    body.to_string()
}

async fn templates_are_listed_checked_and_sent_outside_the_window(backend: Backend) {
    let tokens = tokens_file(&[("billing", BILLING)]);
    let tokens_path = tokens.path().display().to_string();
    let graph = MockServer::start().await;
    business_account_lists(&graph).await;
    graph_accepts_sends(&graph).await;
    let graph_base = graph.uri();
    let overrides = [
        ("META_BUSINESS_ACCOUNT_ID", WABA),
        ("API_TOKENS_FILE", tokens_path.as_str()),
        ("WHATSAPP_GRAPH_BASE", graph_base.as_str()),
    ];
    let mut app = TestApp::spawn_with(backend, &overrides).await;
    app.graph = graph;
    llm_answers(&app.llm, "Baik kak, tagihan bisa dibayar lewat tautan itu.").await;

    // Read at start, both pages, with Meta's token; an application may read the list.
    wait_until(|| async {
        get(&app, "/api/templates", BILLING).await.1["templates"].as_array().map(Vec::len) == Some(3)
    })
    .await;
    let (_, list) = get(&app, "/api/templates", BILLING).await;
    assert_eq!(list["source"], "meta");
    assert!(list["syncedAt"].as_i64().unwrap() > 0, "{list}");
    let (status, one) = get(&app, "/api/templates/tagihan", BILLING).await;
    assert_eq!(status, 200);
    let listed = &one["templates"][0];
    assert_eq!((listed["status"].clone(), listed["category"].clone()), (json!("APPROVED"), json!("UTILITY")));
    assert_eq!(listed["body"]["parameters"], json!(["1", "2", "3", "4"]));
    assert_eq!(listed["header"]["type"], "document");
    assert_eq!(get(&app, "/api/templates/nope", BILLING).await.0, 400);

    // Missing values: every problem listed, nothing queued, nothing sent.
    let incomplete = json!({
        "to": "0812-3456-7789",
        "template": {"name": "tagihan", "body": ["Budi", "Mei 2026"]},
        "idempotency_key": "inv-7",
    });
    let (status, refused) = post(&app, "/api/messages", Some(BILLING), incomplete).await;
    assert_eq!((status, refused["code"].clone()), (400, json!("invalid_parameters")), "{refused}");
    assert_eq!(
        refused["problems"],
        json!([
            "media: the header is a document: give its url",
            "body: missing {{3}}",
            "body: missing {{4}}",
            "buttons[0] (Bayar): missing the address suffix",
        ])
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 0);

    // The customer has never written: a template still goes, in Meta's shape, once per key, even when the same
    // request arrives twice at once.
    let send = json!({
        "to": "0812-3456-7789",
        "template": {
            "name": "tagihan", "language": "id",
            "body": ["Budi", "Mei 2026", "150.000", "10 Juni 2026"],
            "media": {"url": "https://files.example/INV-7.pdf", "filename": "INV-7.pdf"},
            "buttons": ["inv-7"],
        },
        "idempotency_key": "inv-7",
    });
    let (first, second) = tokio::join!(
        post(&app, "/api/messages", Some(BILLING), send.clone()),
        post(&app, "/api/messages", Some(BILLING), send.clone())
    );
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 202], "{first:?} {second:?}");
    assert_eq!(first.1["message"]["id"], second.1["message"]["id"]);
    let id = first.1["message"]["id"].as_i64().unwrap();
    assert_eq!(first.1["message"]["template"], json!({"name": "tagihan", "language": "id"}));
    wait_until(|| async { graph_sends(&app).await.len() == 1 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent = graph_sends(&app).await;
    assert_eq!(sent.len(), 1, "one key, one Graph call");
    assert_eq!(
        sent[0],
        json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": PERSON, "type": "template",
            "template": {
                "name": "tagihan", "language": {"code": "id"},
                "components": [
                    {"type": "header", "parameters": [{"type": "document",
                        "document": {"link": "https://files.example/INV-7.pdf", "filename": "INV-7.pdf"}}]},
                    {"type": "body", "parameters": [
                        {"type": "text", "text": "Budi"}, {"type": "text", "text": "Mei 2026"},
                        {"type": "text", "text": "150.000"}, {"type": "text", "text": "10 Juni 2026"}]},
                    {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "inv-7"}]},
                ],
            },
        })
    );
    wait_until(|| async { get(&app, &format!("/api/messages/{id}"), BILLING).await.1["state"] == "sent" }).await;

    // The customer answers the bill: the bot knows what it said.
    app.say(PERSON, "wamid.customer.1", "ini bayarnya kemana ya?").await;
    wait_until(|| async { !app.llm_requests().await.is_empty() }).await;
    let asked = app.llm_requests().await[0].to_string();
    assert!(asked.contains("Halo Budi, tagihan Mei 2026 sebesar Rp150.000 jatuh tempo 10 Juni 2026."), "{asked}");

    // Named values; a template not approved yet is refused until Meta approves it by webhook.
    let promo = json!({"to": PERSON, "template": {"name": "promo", "body": {"nama": "Budi", "paket": "50 Mbps"}}});
    assert_eq!(post(&app, "/api/messages", Some(BILLING), promo).await.0, 202);
    let reminder = json!({"to": PERSON, "template": {"name": "pengingat", "body": ["Kunjungan teknisi"]}});
    let (status, refused) = post(&app, "/api/messages", Some(BILLING), reminder.clone()).await;
    assert_eq!((status, refused["code"].clone()), (422, json!("template_not_approved")), "{refused}");
    assert_eq!(app.post_webhook(&status_update("APPROVED", "pengingat", None)).await.status(), 200);
    assert_eq!(get(&app, "/api/templates/pengingat", BILLING).await.1["templates"][0]["status"], "APPROVED");
    assert_eq!(post(&app, "/api/messages", Some(BILLING), reminder).await.0, 202);
    let rejected = status_update("PAUSED", "tagihan", Some("Kualitas rendah"));
    assert_eq!(app.post_webhook(&rejected).await.status(), 200);
    let again = json!({"to": PERSON, "template": send["template"].clone()});
    let (status, refused) = post(&app, "/api/messages", Some(BILLING), again).await;
    assert_eq!(status, 422);
    assert!(refused["error"].as_str().unwrap().contains("PAUSED, not APPROVED: Kualitas rendah"), "{refused}");
    wait_until(|| async { graph_sends(&app).await.len() == 3 }).await;

    // A name the cache lacks is looked up once, not once per request.
    let reads = list_reads(&app).await;
    let unknown = json!({"to": PERSON, "template": {"name": "belum_ada"}});
    let (status, refused) = post(&app, "/api/messages", Some(BILLING), unknown.clone()).await;
    assert_eq!((status, refused["code"].clone()), (400, json!("unknown_template")));
    assert_eq!(post(&app, "/api/messages", Some(BILLING), unknown).await.0, 400);
    assert_eq!(list_reads(&app).await, reads + 2, "one refresh (two pages) for both requests");

    // Admins refresh and submit; an application's token may not.
    assert_eq!(post(&app, "/api/templates/refresh", Some(BILLING), json!({})).await.0, 403);
    let (status, refreshed) = post(&app, "/api/templates/refresh", Some(ADMIN_TOKEN), json!({})).await;
    assert_eq!((status, refreshed["templates"].clone()), (200, json!(3)));
    assert!(app.metric("wa_api_messages_total{outcome=\"invalid_parameters\"}").await >= 1.0);
}

async fn templates_are_submitted_after_checking_and_kept_here_for_fonnte(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let (fonnte, channels) = fonnte_account(&files, "tagihan", "901").await;
    let [token, hook] = FONNTE_SECRETS;
    let overrides = [("CHANNELS_FILE", channels.as_str()), token, hook, ("META_BUSINESS_ACCOUNT_ID", WABA)];
    let app = TestApp::spawn_with(backend, &overrides).await;
    Mock::given(method("GET"))
        .and(path(TEMPLATES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [] })))
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(TEMPLATES_PATH))
        .respond_with(|request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            if body["name"] == "ditolak" {
                return ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "code": 100, "message": "Invalid parameter",
                    "error_user_msg": "Nama template ini sudah dipakai dalam bahasa tersebut."}}));
            }
            ResponseTemplate::new(200).set_body_json(json!({"id": "9001", "status": "PENDING", "category": "UTILITY"}))
        })
        .mount(&app.graph)
        .await;

    let template = json!({
        "name": "tagihan_bulanan", "language": "id", "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "Yth. {{1}}, tagihan periode {{2}} sebesar Rp{{3}}. Terima kasih.",
             "example": {"body_text": [["Budi", "Mei 2026", "150.000"]]}},
            {"type": "FOOTER", "text": "Balas STOP untuk berhenti"},
        ],
    });
    // Mistakes Meta would reject days later are reported now, all together, and nothing is submitted.
    let mut wrong = template.clone();
    wrong["name"] = json!("Tagihan Bulanan");
    wrong["components"][0]["example"] = json!({});
    let (status, refused) = post(&app, "/api/templates", Some(ADMIN_TOKEN), wrong).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["problems"].as_array().unwrap().len(), 2, "{refused}");
    let submissions = || async {
        let requests = app.graph.received_requests().await.unwrap_or_default();
        requests.iter().filter(|r| r.url.path() == TEMPLATES_PATH && r.method.as_str() == "POST").count()
    };
    assert_eq!(submissions().await, 0);

    // To Meta's review, exactly as given; cached as Meta answered.
    let (status, submitted) = post(&app, "/api/templates", Some(ADMIN_TOKEN), template.clone()).await;
    assert_eq!((status, submitted["status"].clone(), submitted["id"].clone()), (201, json!("PENDING"), json!("9001")));
    let sent: Vec<Value> = app
        .graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == TEMPLATES_PATH)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        sent,
        [json!({"name": "tagihan_bulanan", "language": "id", "category": "UTILITY",
        "components": template["components"]})]
    );
    let mut refused_by_meta = template.clone();
    refused_by_meta["name"] = json!("ditolak");
    let (status, refused) = post(&app, "/api/templates", Some(ADMIN_TOKEN), refused_by_meta).await;
    assert_eq!(status, 502);
    assert!(refused["error"].as_str().unwrap().contains("Nama template ini sudah dipakai"), "{refused}");

    // A Fonnte number has no Meta templates: kept here, usable at once, sent as the text it renders to.
    let mut local = template.clone();
    local["account"] = json!("tagihan");
    let (status, kept) = post(&app, "/api/templates", Some(ADMIN_TOKEN), local).await;
    assert_eq!((status, kept["status"].clone()), (201, json!("APPROVED")));
    assert_eq!(submissions().await, 2, "nothing more went to Meta");
    assert_eq!(get(&app, "/api/templates?account=tagihan", ADMIN_TOKEN).await.1["source"], "local");
    let send = json!({
        "to": "081234567789", "account": "tagihan",
        "template": {"name": "tagihan_bulanan", "body": ["Budi", "Mei 2026", "150.000"]},
    });
    let (status, queued) = post(&app, "/api/messages", Some(ADMIN_TOKEN), send).await;
    assert_eq!(status, 202, "{queued}");
    wait_until(|| async { !fonnte.received_requests().await.unwrap_or_default().is_empty() }).await;
    let to_fonnte = fonnte.received_requests().await.unwrap();
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_bytes(&to_fonnte[0].body).unwrap();
    assert_eq!(
        form["message"],
        "Yth. Budi, tagihan periode Mei 2026 sebesar Rp150.000. Terima kasih.\n\n_Balas STOP untuk berhenti_"
    );
    assert_eq!(form["target"], PERSON);
}
