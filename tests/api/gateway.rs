//! The send API seen from an application: scoped tokens, numbers as
//! Indonesian systems write them, one message per idempotency key, the
//! 24-hour window checked before anything is queued, and the message's
//! fate (provider id, statuses, retry) read back.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

on_both_backends!(
    an_application_sends_once_per_key_and_follows_its_message,
    free_form_text_outside_the_window_is_refused_before_anything_is_queued,
    tokens_see_only_their_own_messages_and_a_failed_one_is_retried,
    files_go_by_address_through_each_provider,
    uploaded_files_are_kept_until_sent_through_each_provider,
);

const SIMRS: &str = "simrs-token-0123456789abcdef";
const BILLING: &str = "billing-token-0123456789abcdef";
const PERSON: &str = "6281234567789";

struct Gateway {
    app: TestApp,
    _tokens: tempfile::NamedTempFile,
}

/// A server with two applications' tokens (both `send`) besides the admin
/// token; Graph accepts sends and the person has written, so the window
/// is open.
async fn gateway(backend: Backend) -> Gateway {
    let file = tokens_file(&[("simrs", SIMRS), ("billing", BILLING)]);
    let path = file.path().display().to_string();
    let app = TestApp::spawn_with(backend, &[("API_TOKENS_FILE", path.as_str())]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    Gateway { app, _tokens: file }
}

async fn an_application_sends_once_per_key_and_follows_its_message(backend: Backend) {
    let Gateway { app, _tokens } = gateway(backend).await;
    customer_wrote(&app, PERSON).await;
    let text = "Hasil lab Anda sudah bisa diambil.";
    let body = json!({ "to": "0812-3456-7789", "text": text, "idempotency_key": "lab-1" });

    assert_eq!(post(&app, "/api/messages", None, body.clone()).await.0, 401);
    let (status, first) = post(&app, "/api/messages", Some(SIMRS), body.clone()).await;
    assert_eq!(status, 202, "{first}");
    let id = first["message"]["id"].as_i64().unwrap();
    assert_eq!((first["duplicate"].clone(), first["message"]["to"].clone()), (json!(false), json!("6281******789")));
    let (status, again) = post(&app, "/api/messages", Some(SIMRS), body.clone()).await;
    assert_eq!((status, again["message"]["id"].as_i64(), again["duplicate"].clone()), (200, Some(id), json!(true)));
    let other_text = json!({ "to": PERSON, "text": "Lain", "idempotency_key": "lab-1" });
    let (status, refused) = post(&app, "/api/messages", Some(SIMRS), other_text).await;
    assert_eq!((status, refused["code"].clone()), (409, json!("key_reused")));
    // The key is the application's own: another token's "lab-1" is another message.
    let (status, billing) = post(
        &app,
        "/api/messages",
        Some(BILLING),
        json!({ "to": PERSON, "text": "Tagihan", "idempotency_key": "lab-1" }),
    )
    .await;
    assert_eq!(status, 202, "{billing}");

    wait_until(|| async { texts_with(&app, text).await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(texts_with(&app, text).await, 1, "one key, one message");
    wait_until(|| async { get(&app, &format!("/api/messages/{id}"), SIMRS).await.1["state"] == "sent" }).await;
    let (_, sent) = get(&app, &format!("/api/messages/{id}"), SIMRS).await;
    let wamid = sent["parts"][0]["providerMessageId"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid.out."), "{sent}");
    assert_eq!(sent["token"], "simrs");
    assert_eq!(app.post_webhook(&status_webhook(&wamid, "delivered", None)).await.status(), 200);
    let (_, delivered) = get(&app, &format!("/api/messages/{id}"), SIMRS).await;
    assert_eq!(delivered["parts"][0]["statuses"][0]["status"], "delivered", "{delivered}");
    assert!(delivered["parts"][0]["statuses"][0]["at"].as_i64().unwrap() > 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api' AND author = 'simrs'").await, 1);

    // The staff see who sent it, and when the customer answers, the bot knows what they are answering.
    let conversation = app.count("SELECT id FROM users WHERE phone = '6281234567789'").await;
    let transcript = app.admin_json(&format!("/api/admin/conversations/{conversation}")).await;
    let from_app: Vec<&Value> =
        transcript["messages"].as_array().unwrap().iter().filter(|m| m["from"] == "app").collect();
    assert_eq!((from_app[0]["author"].clone(), from_app[0]["text"].clone()), (json!("simrs"), json!(text)));
    app.say(PERSON, "wamid.customer.2", "jam berapa bisa diambil?").await;
    wait_until(|| async { app.llm_requests().await.len() == 2 }).await;
    let asked = app.llm_requests().await[1].to_string();
    assert!(asked.contains(text), "the application's message is in the history: {asked}");

    // Numbers in any other shape are refused with the reason, and nothing is stored.
    for (to, reason) in
        [("0212345678", "starts with 08"), ("0812abc", "may only hold digits"), ("0812", "has 5 digits")]
    {
        let (status, refused) = post(&app, "/api/messages", Some(SIMRS), json!({ "to": to, "text": "x" })).await;
        assert_eq!((status, refused["code"].clone()), (400, json!("invalid_number")), "{to}");
        assert!(refused["error"].as_str().unwrap().contains(reason), "{to}: {refused}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api'").await, 2);

    // The shape existing gateway clients read.
    let (status, compatible) = post(
        &app,
        "/api/whatsapp/send",
        Some(SIMRS),
        json!({ "to": "6281234567789@c.us", "text": "Antrean Anda: A-12" }),
    )
    .await;
    assert_eq!((status, compatible["ok"].clone(), compatible["status"].clone()), (202, json!(true), json!(202)));
    assert!(compatible["json"]["id"].as_i64().is_some(), "{compatible}");
    let (status, refused) = post(&app, "/api/whatsapp/send", Some(SIMRS), json!({ "to": "12", "text": "x" })).await;
    assert_eq!((status, refused["ok"].clone(), refused["status"].clone()), (400, json!(false), json!(400)));
    assert!(refused["json"]["error"].as_str().unwrap().starts_with("to: "), "{refused}");

    // A token of the send scope is not an admin.
    let (status, _) = get(&app, "/api/admin/conversations", SIMRS).await;
    assert_eq!(status, 403);
    assert!(app.metric("wa_api_messages_total{outcome=\"queued\"}").await >= 3.0);
}

async fn free_form_text_outside_the_window_is_refused_before_anything_is_queued(backend: Backend) {
    let Gateway { app, _tokens } = gateway(backend).await;
    let (status, refused) =
        post(&app, "/api/messages", Some(SIMRS), json!({ "to": "085712345678", "text": "Pengingat kontrol besok" }))
            .await;
    assert_eq!((status, refused["code"].clone()), (422, json!("outside_window")), "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("131047") && error.contains("template"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.sent_texts().await.is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 0);
}

async fn tokens_see_only_their_own_messages_and_a_failed_one_is_retried(backend: Backend) {
    let Gateway { app, _tokens } = gateway(backend).await;
    customer_wrote(&app, PERSON).await;
    graph_refuses_texts(&app.graph, 400, 131026, Some(1)).await;
    let (status, queued) =
        post(&app, "/api/messages", Some(SIMRS), json!({ "to": PERSON, "text": "Jadwal dokter berubah" })).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["message"]["id"].as_i64().unwrap();
    let path = format!("/api/messages/{id}");
    wait_until(|| async { get(&app, &path, SIMRS).await.1["state"] == "failed_permanent" }).await;
    let (_, failed) = get(&app, &path, SIMRS).await;
    assert_eq!(failed["parts"][0]["errorCode"], 131026, "{failed}");

    assert_eq!(get(&app, &path, BILLING).await.0, 404, "another application's message");
    assert_eq!(post(&app, &format!("{path}/retry"), Some(BILLING), json!({})).await.0, 404);
    assert_eq!(get(&app, &path, ADMIN_TOKEN).await.0, 200, "the admin token sees every message");
    assert_eq!(get(&app, "/api/messages/999999", SIMRS).await.0, 404);

    let (status, retried) = post(&app, &format!("{path}/retry"), Some(SIMRS), json!({})).await;
    assert_eq!((status, retried["retried"].clone()), (200, json!(true)), "{retried}");
    wait_until(|| async { get(&app, &path, SIMRS).await.1["state"] == "sent" }).await;
    let (_, again) = post(&app, &format!("{path}/retry"), Some(SIMRS), json!({})).await;
    assert_eq!(again["retried"], false, "a sent message is not sent again");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts_with(&app, "Jadwal dokter berubah").await, 2, "the refused attempt and the retry");
}

/// One server with three numbers: the Cloud API (default), a Fonnte device
/// and a WAHA session, each sent a document by address.
/// The default Cloud API number, a Fonnte device ("billing") and a WAHA
/// session ("desk"), whose fakes accept every send; the person has written.
struct ThreeProviders {
    app: TestApp,
    fonnte: MockServer,
    waha: MockServer,
    _files: tempfile::TempDir,
}

async fn three_providers(backend: Backend) -> ThreeProviders {
    let (fonnte, waha, files) = (MockServer::start().await, MockServer::start().await, tempfile::tempdir().unwrap());
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(header("authorization", "fonnte-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": true, "id": ["777"] })))
        .mount(&fonnte)
        .await;
    let accepted =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/waha/send_text__webjs.json"));
    Mock::given(method("POST"))
        .and(path("/api/sendFile"))
        .and(header("x-api-key", "waha-key"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(accepted.unwrap(), "application/json"))
        .mount(&waha)
        .await;
    let channels = files.path().join("channels.toml");
    std::fs::write(
        &channels,
        format!(
            "[[account]]\nname = \"billing\"\nkind = \"fonnte\"\nsettings = {{ FONNTE_API_URL = \"{}\" }}\n\
             secrets = {{ FONNTE_TOKEN = \"T_FONNTE\", FONNTE_WEBHOOK_SECRET = \"T_HOOK\" }}\n\n\
             [[account]]\nname = \"desk\"\nkind = \"waha\"\nsettings = {{ WAHA_URL = \"{}\", WAHA_SESSION = \"desk\" }}\n\
             secrets = {{ WAHA_API_KEY = \"T_WAHA\" }}\n",
            fonnte.uri(),
            waha.uri()
        ),
    )
    .unwrap();
    let channels = channels.display().to_string();
    let overrides = [
        ("CHANNELS_FILE", channels.as_str()),
        ("T_FONNTE", "fonnte-token"),
        ("T_HOOK", "fonnte-hook"),
        ("T_WAHA", "waha-key"),
    ];
    let app = TestApp::spawn_with(backend, &overrides).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    customer_wrote(&app, PERSON).await;
    ThreeProviders { app, fonnte, waha, _files: files }
}

/// The JSON bodies WAHA got at `/api/sendFile`.
async fn files_to_waha(waha: &MockServer) -> Vec<Value> {
    waha.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r: &&Request| r.url.path() == "/api/sendFile")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn files_go_by_address_through_each_provider(backend: Backend) {
    let ThreeProviders { app, fonnte, waha, _files } = three_providers(backend).await;
    let bill = |account: &str| {
        json!({ "to": "081234567789", "type": "document", "url": "https://isp.example/tagihan/0042.pdf",
                "caption": "Tagihan November", "filename": "Tagihan-0042.pdf", "account": account })
    };

    let mut ids = Vec::new();
    for account in ["default", "billing", "desk"] {
        let (status, queued) = post(&app, "/api/messages", Some(ADMIN_TOKEN), bill(account)).await;
        assert_eq!(status, 202, "{account}: {queued}");
        assert_eq!(queued["message"]["media"]["filename"], "Tagihan-0042.pdf");
        ids.push(queued["message"]["id"].as_i64().unwrap());
    }
    for id in &ids {
        let path = format!("/api/messages/{id}");
        wait_until(|| async { get(&app, &path, ADMIN_TOKEN).await.1["state"] == "sent" }).await;
    }

    let to_graph = requests_to(&app.graph, SEND_PATH).await;
    let document: Vec<&Value> = to_graph.iter().filter(|body| body["type"] == "document").collect();
    assert_eq!(document.len(), 1, "{to_graph:?}");
    assert_eq!(
        document[0]["document"],
        json!({ "link": "https://isp.example/tagihan/0042.pdf", "caption": "Tagihan November", "filename": "Tagihan-0042.pdf" })
    );
    let to_fonnte = fonnte.received_requests().await.unwrap();
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_bytes(&to_fonnte[0].body).unwrap();
    assert_eq!(
        (form["target"].as_str(), form["url"].as_str(), form["filename"].as_str(), form["message"].as_str()),
        (PERSON, "https://isp.example/tagihan/0042.pdf", "Tagihan-0042.pdf", "Tagihan November")
    );
    assert_eq!(
        files_to_waha(&waha).await,
        [json!({ "session": "desk", "chatId": "6281234567789@c.us", "caption": "Tagihan November",
                 "file": { "url": "https://isp.example/tagihan/0042.pdf", "filename": "Tagihan-0042.pdf" } })]
    );

    // A file's fields are checked before anything is stored.
    for (body, reason) in [
        (json!({ "to": PERSON, "text": "x", "url": "https://a.example/b.jpg" }), "belong to a file"),
        (
            json!({ "to": PERSON, "type": "image", "url": "https://a.example/b.jpg", "filename": "b.jpg" }),
            "only a document",
        ),
        (json!({ "to": PERSON, "type": "image", "url": "file:///etc/passwd" }), "url must be"),
        (json!({ "to": PERSON, "type": "image" }), "needs its url"),
        (json!({ "to": PERSON, "type": "sticker", "url": "https://a.example/b.webp" }), "type must be"),
        (
            json!({ "to": PERSON, "type": "image", "url": "https://a.example/b.jpg", "caption": "x".repeat(1025) }),
            "caption",
        ),
    ] {
        let (status, refused) = post(&app, "/api/messages", Some(ADMIN_TOKEN), body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(refused["error"].as_str().unwrap().contains(reason), "{body}: {refused}");
    }
    let keyed = |url: &str| json!({ "to": PERSON, "type": "image", "url": url, "idempotency_key": "photo-1" });
    assert_eq!(post(&app, "/api/messages", Some(ADMIN_TOKEN), keyed("https://a.example/1.jpg")).await.0, 202);
    assert_eq!(post(&app, "/api/messages", Some(ADMIN_TOKEN), keyed("https://a.example/1.jpg")).await.0, 200);
    assert_eq!(
        post(&app, "/api/messages", Some(ADMIN_TOKEN), keyed("https://a.example/2.jpg")).await.0,
        409,
        "another file"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api'").await, 4);
}

const MEDIA_PATH: &str = "/v23.0/1122334455667/media";
/// The start of a PDF: enough for a bill, as far as every check goes.
const BILL_PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// `POST /api/messages` as a multipart form with `file` named `name`.
async fn upload(app: &TestApp, fields: &[(&str, &str)], file: Option<(&str, &str, Vec<u8>)>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    if let Some((name, mime, bytes)) = file {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap();
        form = form.part("file", part);
    }
    let response = app
        .client
        .post(format!("{}/api/messages", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

async fn uploaded_files_are_kept_until_sent_through_each_provider(backend: Backend) {
    let ThreeProviders { app, fonnte, waha, _files } = three_providers(backend).await;
    // Meta's /media fails once (the message waits and tries again), then
    // takes the file and names it.
    Mock::given(method("POST"))
        .and(path(MEDIA_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "error": { "code": 1, "message": "down" } })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(MEDIA_PATH))
        .and(header("authorization", "Bearer test-access-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "4490709327384033" })))
        .mount(&app.graph)
        .await;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(BILL_PDF))
    };

    let mut ids = Vec::new();
    for account in ["default", "billing", "desk"] {
        let key = format!("bill-{account}");
        let fields = [("to", "081234567789"), ("type", "document"), ("caption", "Tagihan November")];
        let fields = [&fields[..], &[("account", account), ("idempotency_key", &key)]].concat();
        let file = ("Tagihan-0042.pdf", "application/pdf", BILL_PDF.to_vec());
        let (status, queued) = upload(&app, &fields, Some(file)).await;
        assert_eq!(status, 202, "{account}: {queued}");
        let media = &queued["message"]["media"];
        assert_eq!(media["filename"], "Tagihan-0042.pdf", "the uploaded name is kept");
        assert_eq!(media["upload"], json!({ "sha256": sha256, "mime": "application/pdf", "size": BILL_PDF.len() }));
        ids.push(queued["message"]["id"].as_i64().unwrap());
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_files").await, 1, "one copy of a file however often sent");
    for id in &ids {
        let path = format!("/api/messages/{id}");
        wait_until(|| async { get(&app, &path, ADMIN_TOKEN).await.1["state"] == "sent" }).await;
    }

    // The Cloud API: the file to /media (again after the 500), then the
    // message naming Meta's id for it.
    let uploads = app.graph.received_requests().await.unwrap();
    let uploads: Vec<&Request> = uploads.iter().filter(|r| r.url.path() == MEDIA_PATH).collect();
    assert_eq!(uploads.len(), 2, "the failed upload was made again");
    let form = &uploads[1].body;
    for expected in
        [&b"name=\"messaging_product\"\r\n\r\nwhatsapp"[..], b"name=\"type\"\r\n\r\napplication/pdf", BILL_PDF]
    {
        assert!(holds(form, expected), "{}", String::from_utf8_lossy(form));
    }
    let to_graph = requests_to(&app.graph, SEND_PATH).await;
    let document: Vec<&Value> = to_graph.iter().filter(|body| body["type"] == "document").collect();
    assert_eq!(
        document.iter().map(|body| body["document"].clone()).collect::<Vec<_>>(),
        [json!({ "id": "4490709327384033", "caption": "Tagihan November", "filename": "Tagihan-0042.pdf" })],
        "sent once, after the upload went through"
    );
    // Fonnte: a multipart form with the file as `file`.
    let to_fonnte = fonnte.received_requests().await.unwrap();
    assert_eq!(to_fonnte.len(), 1);
    let content_type = to_fonnte[0].headers.get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("multipart/form-data"), "{content_type}");
    let form = &to_fonnte[0].body;
    for expected in [
        &format!("name=\"target\"\r\n\r\n{PERSON}").into_bytes()[..],
        b"name=\"message\"\r\n\r\nTagihan November",
        b"name=\"file\"; filename=\"Tagihan-0042.pdf\"",
        BILL_PDF,
    ] {
        assert!(holds(form, expected), "{}", String::from_utf8_lossy(form));
    }
    // WAHA: the bytes in the request, in base64.
    use base64::prelude::{Engine, BASE64_STANDARD};
    assert_eq!(
        files_to_waha(&waha).await,
        [json!({ "session": "desk", "chatId": "6281234567789@c.us", "caption": "Tagihan November",
                 "file": { "data": BASE64_STANDARD.encode(BILL_PDF), "mimetype": "application/pdf",
                           "filename": "Tagihan-0042.pdf" } })]
    );

    // The same key and file again: the first message, nothing new. The same
    // key with another file is refused.
    let fields = [("to", "081234567789"), ("type", "document"), ("caption", "Tagihan November")];
    let again = [&fields[..], &[("idempotency_key", "bill-default")]].concat();
    let (status, repeated) =
        upload(&app, &again, Some(("Tagihan-0042.pdf", "application/pdf", BILL_PDF.to_vec()))).await;
    assert_eq!(
        (status, repeated["duplicate"].clone(), repeated["message"]["id"].clone()),
        (200, json!(true), json!(ids[0]))
    );
    let other = [b"%PDF-1.4\n".as_slice(), b"another bill"].concat();
    assert_eq!(upload(&app, &again, Some(("Tagihan-0042.pdf", "application/pdf", other))).await.0, 409);

    // Bad uploads are refused with the reason, and store nothing.
    let photo = [("to", "081234567789"), ("type", "image")];
    let big_photo = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &vec![0; 5 * 1024 * 1024]].concat();
    for (fields, file, status, reason) in [
        (&photo[..], Some(("x.png", "image/png", BILL_PDF.to_vec())), 400, "JPEG or PNG"),
        (&photo[..], Some(("x.jpg", "image/jpeg", big_photo)), 413, "at most 5242880 bytes"),
        (&photo[..], None, 400, "needs its url, or the file"),
        (
            &[("to", "081234567789"), ("type", "document"), ("url", "https://a.example/b.pdf")][..],
            Some(("b.pdf", "application/pdf", BILL_PDF.to_vec())),
            400,
            "not both",
        ),
        (
            &[("to", "0212345"), ("type", "document")][..],
            Some(("b.pdf", "application/pdf", BILL_PDF.to_vec())),
            400,
            "to:",
        ),
        (
            &[("to", "081234567789"), ("type", "document"), ("colour", "red")][..],
            Some(("b.pdf", "application/pdf", BILL_PDF.to_vec())),
            400,
            "unknown field",
        ),
        (
            &[("to", "081234567789"), ("type", "document")][..],
            Some(("a.exe", "application/x-msdownload", b"MZ".to_vec())),
            400,
            "PDF, TXT",
        ),
    ] {
        let (got, refused) = upload(&app, fields, file).await;
        assert_eq!(got, status, "{fields:?}: {refused}");
        assert!(refused["error"].as_str().unwrap().contains(reason), "{fields:?}: {refused}");
        assert_eq!(refused["code"] == "too_large", status == 413, "{refused}");
    }
    // Past the request limit the server answers 413 without reading the
    // rest, and may close the connection before the client is done writing.
    let big_document = [b"%PDF-1.4\n".as_slice(), &vec![b' '; 17 * 1024 * 1024]].concat();
    let part = reqwest::multipart::Part::bytes(big_document).file_name("big.pdf").mime_str("application/pdf").unwrap();
    let form = reqwest::multipart::Form::new().text("to", PERSON).text("type", "document").part("file", part);
    let url = format!("{}/api/messages", app.address);
    match app.client.post(url).bearer_auth(ADMIN_TOKEN).multipart(form).send().await {
        Ok(response) => {
            assert_eq!(response.status().as_u16(), 413);
            assert_eq!(response.json::<Value>().await.unwrap()["code"], "too_large");
        }
        Err(cut_off) => assert!(cut_off.is_request(), "{cut_off}"),
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages WHERE origin = 'api'").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_files").await, 1);

    // A photo WAHA refuses for good keeps its bytes for a retry by hand.
    Mock::given(method("POST"))
        .and(path("/api/sendImage"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "statusCode": 400, "message": "bad image" })))
        .mount(&waha)
        .await;
    let photo = [("to", "081234567789"), ("type", "image"), ("account", "desk")];
    let (status, refused) = upload(&app, &photo, Some(("x.png", "image/png", b"\x89PNG\r\n\x1a\nfoto".to_vec()))).await;
    assert_eq!(status, 202, "{refused}");
    let path = format!("/api/messages/{}", refused["message"]["id"]);
    wait_until(|| async { get(&app, &path, ADMIN_TOKEN).await.1["state"] == "failed_permanent" }).await;

    // Once every message carrying it is sent, the cleanup drops its bytes;
    // the message still says what it carried.
    let store = wa_ai_bridge::store::Store::connect(&app.settings().database_url).await.unwrap();
    let (hour, now) = (3_600_000, wa_ai_bridge::domain::now_ms());
    assert_eq!(store.release_sent_files(now, hour).await.unwrap(), (0, 0), "too recent");
    assert_eq!(store.release_sent_files(now + 2 * hour, hour).await.unwrap(), (1, 0), "the bill, not the photo");
    let emptied = "SELECT COUNT(*) FROM outbound_files WHERE contents IS NULL AND mime = 'application/pdf'";
    assert_eq!(app.count(emptied).await, 1);
    assert_eq!(store.release_sent_files(now + 8 * 24 * hour, hour).await.unwrap(), (1, 0), "a week later, the photo");
    let (_, shown) = get(&app, &format!("/api/messages/{}", ids[1]), ADMIN_TOKEN).await;
    assert_eq!(shown["media"]["upload"]["sha256"], json!(sha256));
}
