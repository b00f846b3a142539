//! Several WhatsApp numbers in one server (CHANNELS_FILE): each webhook
//! finds its account, each reply leaves through the number the person
//! wrote to, and one phone writing to two numbers is two conversations,
//! each answered from its account's own documents and system prompt.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::collections::HashMap;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

on_both_backends!(
    one_phone_writing_to_three_numbers_is_three_conversations_answered_by_each,
    a_device_out_of_quota_holds_up_only_its_own_number,
    an_agent_may_write_on_fonnte_a_day_later_but_not_on_the_cloud_api,
);

const PERSON: &str = "6281234567789";
const OUTLET_NUMBER_ID: &str = "2233445566778";
const OUTLET_SEND_PATH: &str = "/v23.0/2233445566778/messages";
const BILLING_TOKEN: &str = "billing-device-token";
const BILLING_SECRET: &str = "billing-webhook-secret";
const BILLING_PROMPT: &str = "Kamu asisten penagihan ISP Jaya Net.";
const BILLING_DOCUMENT: &str = "Tagihan internet Jaya Net dibayar paling lambat tanggal 20 setiap bulan.";

/// The default account is the Cloud API number of the environment; the
/// file adds a second Cloud API number of the same app and a Fonnte device
/// with its own documents and system prompt.
fn channels_file(dir: &std::path::Path, graph: &MockServer, fonnte: &MockServer) -> String {
    let knowledge = dir.join("knowledge-billing");
    std::fs::create_dir_all(&knowledge).unwrap();
    std::fs::write(knowledge.join("tagihan.md"), format!("# Tagihan\n\n{BILLING_DOCUMENT}\n")).unwrap();
    let prompt = dir.join("billing-system.md");
    std::fs::write(&prompt, BILLING_PROMPT).unwrap();
    let file = dir.join("channels.toml");
    let toml = format!(
        r#"
[[account]]
name = "outlet2"
kind = "cloud_api"
settings = {{ META_PHONE_NUMBER_ID = "{OUTLET_NUMBER_ID}", WHATSAPP_GRAPH_BASE = "{graph}" }}
secrets = {{ META_ACCESS_TOKEN = "OUTLET_TOKEN", META_APP_SECRET = "OUTLET_APP_SECRET" }}

[[account]]
name = "billing"
kind = "fonnte"
knowledge = "{knowledge}"
system_prompt = "{prompt}"
settings = {{ FONNTE_API_URL = "{fonnte}" }}
secrets = {{ FONNTE_TOKEN = "BILLING_TOKEN", FONNTE_WEBHOOK_SECRET = "BILLING_SECRET" }}
"#,
        graph = graph.uri(),
        knowledge = knowledge.display(),
        prompt = prompt.display(),
        fonnte = fonnte.uri(),
    );
    std::fs::write(&file, toml).unwrap();
    file.display().to_string()
}

/// Cloud API changes for two numbers of the same app in one POST.
fn two_numbers_webhook() -> String {
    let change = |number_id: &str, id: &str, text: &str| {
        json!({ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": number_id },
            "contacts": [{ "profile": { "name": "Budi" }, "wa_id": PERSON }],
            "messages": [{ "from": PERSON, "id": id, "timestamp": "1700000000", "type": "text",
                           "text": { "body": text } }],
        }})
    };
    json!({ "object": "whatsapp_business_account", "entry": [
        { "id": "1", "changes": [change(PHONE_NUMBER_ID, "wamid.main.1", "jam buka toko pusat?")] },
        { "id": "1", "changes": [change(OUTLET_NUMBER_ID, "wamid.outlet.1", "jam buka cabang?")] },
        { "id": "1", "changes": [change("9999999999", "wamid.stranger.1", "nomor orang lain")] },
    ]})
    .to_string()
}

async fn fonnte_accepts_sends(fonnte: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(header("authorization", BILLING_TOKEN))
        .respond_with(|_: &Request| {
            ResponseTemplate::new(200).set_body_json(json!({ "status": true, "id": ["90001"], "process": "pending" }))
        })
        .mount(fonnte)
        .await;
}

/// The outlet's number answers with its own id; the default one's mock
/// (on the same fake Graph) has the default id.
async fn graph_accepts_outlet_sends(graph: &MockServer) {
    Mock::given(method("POST"))
        .and(path(OUTLET_SEND_PATH))
        .and(header("authorization", "Bearer outlet-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": "wamid.outlet.out" }] })))
        .mount(graph)
        .await;
}

/// The LLM answers each conversation by what its system prompt says, so a
/// reply shows which account's prompt framed it.
async fn llm_names_its_prompt(llm: &MockServer) {
    Mock::given(method("POST"))
        .and(path(LLM_PATH))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let system = body["messages"][0]["content"].as_str().unwrap_or_default();
            let answer = if system.contains(BILLING_PROMPT) { "Jawaban penagihan" } else { "Jawaban toko" };
            ResponseTemplate::new(200).set_body_json(completion(answer))
        })
        .mount(llm)
        .await;
}

fn texts_sent_to(requests: &[Request], send_path: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.url.path() == send_path)
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|body| body["type"] == "text")
        .map(|body| body["text"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A server with the three numbers, its fake Graph accepting both Cloud
/// API numbers' sends; the fake Fonnte answers as each test mounts.
struct ThreeNumbers {
    app: TestApp,
    graph: MockServer,
    fonnte: MockServer,
    _files: tempfile::TempDir,
}

async fn three_numbers(backend: Backend) -> ThreeNumbers {
    let (fonnte, files) = (MockServer::start().await, tempfile::tempdir().unwrap());
    let graph = MockServer::start().await;
    graph_accepts_sends(&graph).await;
    graph_accepts_outlet_sends(&graph).await;
    let file = channels_file(files.path(), &graph, &fonnte);
    let graph_uri = graph.uri();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("CHANNELS_FILE", file.as_str()),
            ("WHATSAPP_GRAPH_BASE", graph_uri.as_str()),
            ("OUTLET_TOKEN", "outlet-token"),
            ("OUTLET_APP_SECRET", APP_SECRET),
            ("BILLING_TOKEN", BILLING_TOKEN),
            ("BILLING_SECRET", BILLING_SECRET),
        ],
    )
    .await;
    llm_names_its_prompt(&app.llm).await;
    ThreeNumbers { app, graph, fonnte, _files: files }
}

/// Posts a Fonnte message from `PERSON` at `/webhook/fonnte/{secret}`.
async fn to_fonnte(app: &TestApp, secret: &str, timestamp: i64, text: &str) -> reqwest::StatusCode {
    let message = json!({ "device": "6282227097005", "sender": PERSON, "message": text, "name": "Budi",
                          "timestamp": timestamp });
    let response = app
        .client
        .post(format!("{}/webhook/fonnte/{secret}", app.address))
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .unwrap();
    response.status()
}

async fn fonnte_sends(fonnte: &MockServer) -> Vec<HashMap<String, String>> {
    fonnte
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/send")
        .map(|r| serde_urlencoded::from_bytes(&r.body).unwrap_or_default())
        .collect()
}

async fn one_phone_writing_to_three_numbers_is_three_conversations_answered_by_each(backend: Backend) {
    let ThreeNumbers { app, graph, fonnte, _files } = three_numbers(backend).await;
    fonnte_accepts_sends(&fonnte).await;

    assert_eq!(app.post_webhook(&two_numbers_webhook()).await.status(), 200);
    assert_eq!(to_fonnte(&app, "not-the-secret", 1_733_000_000, "kapan bayar tagihan internet?").await, 404);
    assert_eq!(to_fonnte(&app, BILLING_SECRET, 1_733_000_000, "kapan bayar tagihan internet?").await, 200);

    wait_until(|| async {
        let sent = graph.received_requests().await.unwrap_or_default();
        let fonnte_sent = fonnte.received_requests().await.unwrap_or_default();
        texts_sent_to(&sent, SEND_PATH).len() + texts_sent_to(&sent, OUTLET_SEND_PATH).len() >= 2
            && fonnte_sent.iter().any(|r| r.url.path() == "/send")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    let sent = graph.received_requests().await.unwrap_or_default();
    assert_eq!(texts_sent_to(&sent, SEND_PATH), ["Jawaban toko"], "the default number answers its person");
    assert_eq!(texts_sent_to(&sent, OUTLET_SEND_PATH), ["Jawaban toko"], "the outlet answers from its own number");
    let fonnte_sends = fonnte_sends(&fonnte).await;
    assert_eq!(fonnte_sends.len(), 1, "{fonnte_sends:?}");
    assert_eq!(
        (fonnte_sends[0]["target"].as_str(), fonnte_sends[0]["message"].as_str()),
        (PERSON, "Jawaban penagihan")
    );

    // Three people with one phone number, each with their own turn.
    let accounts = "SELECT COUNT(*) FROM users WHERE phone = '6281234567789' AND account IN ('', 'outlet2', 'billing')";
    assert_eq!(app.count(accounts).await, 3);
    assert_eq!(app.count("SELECT COUNT(DISTINCT user_id) FROM turns WHERE status = 'answered'").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_messages WHERE wa_message_id = 'wamid.stranger.1'").await, 0);

    // Each conversation saw only its own words, and the billing one its
    // own documents under its own system prompt.
    let llm = app.llm_requests().await;
    assert_eq!(llm.len(), 3);
    let by_question: HashMap<String, &Value> = llm.iter().map(|r| (last_user_message(r), r)).collect();
    let system = |question: &str| by_question[question]["messages"][0]["content"].as_str().unwrap().to_owned();
    assert!(system("kapan bayar tagihan internet?").contains(BILLING_DOCUMENT));
    assert!(system("kapan bayar tagihan internet?").starts_with(BILLING_PROMPT));
    assert!(!system("jam buka cabang?").contains(BILLING_PROMPT));
    assert!(!system("jam buka toko pusat?").contains(BILLING_DOCUMENT), "the default account has no such document");

    // The operator sees every number.
    let status = app.admin_json("/api/whatsapp/status").await;
    let listed: Vec<(&str, &str)> = status["whatsapp"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["provider"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("default", "cloud_api"), ("outlet2", "cloud_api"), ("billing", "fonnte")]);
    let stats = app.admin_json("/api/whatsapp/stats").await;
    for account in ["default", "outlet2", "billing"] {
        assert_eq!(stats["accounts"][account]["messages"], 1, "{account}: {stats}");
        assert_eq!(stats["accounts"][account]["turnsAnswered"], 1, "{account}: {stats}");
    }
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let inbound = |account: &str| {
        metrics.lines().any(|line| {
            line.starts_with("wa_inbound_messages_total{") && line.contains(&format!("account=\"{account}\""))
        })
    };
    assert!(inbound("outlet2") && inbound("billing") && inbound("default"), "{metrics}");
    let refreshed: Value = app.refresh_kb(Some(ADMIN_TOKEN)).await.json().await.unwrap();
    assert_eq!(refreshed["accounts"]["billing"]["files"], 1, "{refreshed}");
}

/// Fonnte says the billing device's quota is spent, which holds every send
/// of that device for a quarter of an hour; the default number's people
/// are answered meanwhile as if nothing happened.
async fn a_device_out_of_quota_holds_up_only_its_own_number(backend: Backend) {
    let ThreeNumbers { app, graph, fonnte, _files } = three_numbers(backend).await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": false, "reason": "quota exceeded" })))
        .mount(&fonnte)
        .await;

    assert_eq!(to_fonnte(&app, BILLING_SECRET, 1_733_000_000, "tagihan saya berapa?").await, 200);
    wait_until(|| async { fonnte_sends(&fonnte).await.len() == 1 }).await;
    app.say(PERSON, "wamid.main.after-quota", "jam buka toko pusat?").await;
    wait_until(|| async {
        texts_sent_to(&graph.received_requests().await.unwrap_or_default(), SEND_PATH) == ["Jawaban toko"]
    })
    .await;

    assert_eq!(fonnte_sends(&fonnte).await.len(), 1, "the billing device waits out its pause");
    let waiting = "SELECT COUNT(*) FROM outbound_messages o JOIN users u ON u.id = o.user_id \
                   WHERE u.account = 'billing' AND o.state = 'failed_retryable' AND o.error_title LIKE '%quota%'";
    assert_eq!(app.count(waiting).await, 1, "kept to be sent when the pause ends");
}

async fn write_as_admin(app: &TestApp, id: i64, text: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/admin/conversations/{id}/messages", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap()
}

/// WhatsApp's 24-hour window is the Cloud API's rule: a number linked
/// through Fonnte sends whatever the phone could, so its conversations
/// never close; the same person on the Cloud API number is refused.
async fn an_agent_may_write_on_fonnte_a_day_later_but_not_on_the_cloud_api(backend: Backend) {
    let ThreeNumbers { app, graph, fonnte, _files } = three_numbers(backend).await;
    fonnte_accepts_sends(&fonnte).await;
    assert_eq!(to_fonnte(&app, BILLING_SECRET, 1_733_000_000, "tagihan saya berapa?").await, 200);
    app.say(PERSON, "wamid.main.window", "jam buka toko pusat?").await;
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 2 }).await;
    let day_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        - 25 * 3600 * 1000;
    let pool = app.pool().await;
    sqlx::query("UPDATE inbound_messages SET received_at = $1").bind(day_ago).execute(&pool).await.unwrap();
    pool.close().await;
    let billing = app.count("SELECT id FROM users WHERE account = 'billing'").await;
    let main = app.count("SELECT id FROM users WHERE account = '' AND phone = '6281234567789'").await;

    let view = app.admin_json(&format!("/api/admin/conversations/{billing}")).await;
    assert_eq!(
        (view["canReply"].clone(), view["windowOpenUntil"].clone(), view["account"].clone()),
        (json!(true), Value::Null, json!("billing"))
    );
    assert_eq!(write_as_admin(&app, billing, "Tagihan bulan ini Rp150.000 ya kak.").await.status(), 201);
    wait_until(|| async {
        fonnte_sends(&fonnte)
            .await
            .iter()
            .any(|form| form.get("message").map(String::as_str) == Some("Tagihan bulan ini Rp150.000 ya kak."))
    })
    .await;

    let view = app.admin_json(&format!("/api/admin/conversations/{main}")).await;
    assert_eq!((view["canReply"].clone(), view["account"].clone()), (json!(false), json!("default")));
    assert_eq!(write_as_admin(&app, main, "Halo kak").await.status(), 409);
    let inbox = app.admin_json("/api/admin/inbox").await;
    let entry = |id: i64| inbox["conversations"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap();
    assert_eq!(
        (entry(billing)["account"].clone(), entry(billing)["windowOpenUntil"].clone()),
        (json!("billing"), Value::Null)
    );
    assert_eq!(entry(main)["account"], "default");
    assert_eq!(entry(main)["windowOpenUntil"], day_ago + 24 * 3600 * 1000);
    assert_eq!(texts_sent_to(&graph.received_requests().await.unwrap_or_default(), SEND_PATH), ["Jawaban toko"]);
}
