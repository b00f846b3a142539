//! Voice notes, photos and documents: fetched from a fake Graph API (id ->
//! URL -> bytes, the bearer token checked), transcribed by a fake
//! transcription endpoint, and read into the one turn the model answers.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both_backends!(
    a_burst_of_text_voice_note_and_photo_is_one_request_in_the_order_sent,
    a_redelivered_voice_note_is_downloaded_and_transcribed_once,
    a_crash_after_the_download_resumes_without_downloading_again,
    every_failed_download_or_transcription_is_a_note_and_an_answer,
    customer_documents_are_read_as_theirs_and_hostile_ones_become_notes,
    a_reply_quotes_the_message_it_answers,
    a_turn_reads_at_most_media_per_turn_max_files,
    the_web_chat_takes_a_photo_through_the_same_path,
    expired_media_files_are_deleted_and_the_transcript_stays,
    photos_go_to_the_vision_model_or_become_a_note_without_vision,
    a_person_over_the_hourly_limit_costs_no_transcription,
);

const PERSON: &str = "6281234567789";
const VOICE: &[u8] = b"OggS\0\x02 a short voice note in opus";
const TRANSCRIPTION_PATH: &str = "/api/v1/audio/transcriptions";

/// The Graph API knows `id`: its metadata points at a URL on the same fake
/// server, and both answer only with the access token.
async fn serve_media(graph: &MockServer, id: &str, mime: &str, bytes: &[u8]) {
    serve_media_with(graph, id, mime, bytes.len(), ResponseTemplate::new(200).set_body_bytes(bytes.to_vec())).await;
}

async fn serve_media_with(graph: &MockServer, id: &str, mime: &str, stated_size: usize, file: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("/v23.0/{id}")))
        .and(header("authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/cdn/{id}", graph.uri()),
            "mime_type": mime,
            "file_size": stated_size,
            "id": id,
        })))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/cdn/{id}")))
        .and(header("authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .respond_with(file.insert_header("content-type", mime))
        .mount(graph)
        .await;
}

async fn downloads_of(graph: &MockServer, id: &str) -> usize {
    graph.received_requests().await.unwrap_or_default().iter().filter(|r| r.url.path() == format!("/cdn/{id}")).count()
}

async fn transcription_says(llm: &MockServer, text: &str) {
    Mock::given(method("POST"))
        .and(path(TRANSCRIPTION_PATH))
        .and(header("authorization", format!("Bearer {OPENROUTER_KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "text": text, "usage": { "seconds": 4.5 } })))
        .mount(llm)
        .await;
}

async fn transcriptions(app: &TestApp) -> Vec<Value> {
    requests_to(&app.llm, TRANSCRIPTION_PATH).await
}

fn message(id: &str, at: u64, kind: &str, body: Value) -> Value {
    json!({ "from": PERSON, "id": id, "timestamp": at.to_string(), "type": kind, kind: body })
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let photo = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(photo).write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A one-page PDF that prints `text` in Helvetica, with a correct xref.
fn tiny_pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{object}\nendobj\n", n + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        pdf.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    pdf.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    pdf
}

/// The content of the last user message of an LLM request: a string, or
/// the parts.
fn user_content(request: &Value) -> Value {
    request["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "user").unwrap()["content"].clone()
}

async fn media_row(app: &TestApp, id: &str) -> (Option<String>, Option<String>, Option<String>) {
    let pool = app.pool().await;
    let row: (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as("SELECT media_outcome, media_text, media_file FROM inbound_messages WHERE wa_message_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    row
}

async fn a_burst_of_text_voice_note_and_photo_is_one_request_in_the_order_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Pendaftaran gratis kak.").await;
    transcription_says(&app.llm, "berapa biaya daftarnya").await;
    serve_media(&app.graph, "voice-1", "audio/ogg; codecs=opus", VOICE).await;
    serve_media(&app.graph, "photo-1", "image/png", &png(2000, 1000)).await;
    let burst = json!([
        message("wamid.burst.1", 1_700_000_000, "text", json!({ "body": "halo kak" })),
        message(
            "wamid.burst.2",
            1_700_000_001,
            "audio",
            json!({ "id": "voice-1", "mime_type": "audio/ogg; codecs=opus", "voice": true })
        ),
        message(
            "wamid.burst.3",
            1_700_000_002,
            "image",
            json!({ "id": "photo-1", "mime_type": "image/png", "caption": "ini KTP saya" })
        ),
    ]);
    assert_eq!(app.post_webhook(&messages_webhook(burst, PERSON)).await.status(), 200);

    assert_eq!(app.wait_for_texts(1).await.len(), 1, "one reply for the whole burst");
    let requests = app.llm_requests().await;
    assert_eq!(requests.len(), 1);
    let parts = user_content(&requests[0]);
    assert_eq!(parts[0], json!({ "type": "text", "text": "halo kak\n[pesan suara] berapa biaya daftarnya\n[gambar]" }));
    assert_eq!(parts[1]["type"], "image_url");
    let url = parts[1]["image_url"]["url"].as_str().unwrap();
    let jpeg = base64_decode(url.strip_prefix("data:image/jpeg;base64,").expect("a JPEG data URL"));
    let shown = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((shown.width(), shown.height()), (1568, 784), "scaled to IMAGE_MAX_SIDE");
    assert_eq!(parts[2], json!({ "type": "text", "text": "ini KTP saya" }));
    assert_eq!(parts.as_array().unwrap().len(), 3);

    let spoken = transcriptions(&app).await;
    assert_eq!(spoken.len(), 1);
    assert_eq!(
        (spoken[0]["language"].as_str(), spoken[0]["input_audio"]["format"].as_str()),
        (Some("id"), Some("ogg"))
    );
    assert_eq!(base64_decode(spoken[0]["input_audio"]["data"].as_str().unwrap()), VOICE);
    let (outcome, transcript, file) = media_row(&app, "wamid.burst.2").await;
    assert_eq!((outcome.as_deref(), transcript.as_deref()), (Some("read"), Some("berapa biaya daftarnya")));
    assert_eq!(file.as_deref(), Some(sha256_hex(VOICE).as_str()), "stored under its SHA-256");
    let turn_text = "SELECT COUNT(*) FROM turns WHERE user_text = \
        'halo kak\n[pesan suara] berapa biaya daftarnya\n[gambar]\nini KTP saya'";
    assert_eq!(app.count(turn_text).await, 1, "the turn keeps the transcript");

    // The admin page plays the voice note from the stored file, behind the token.
    let conversation = app.admin_json("/api/admin/conversations/1").await;
    let voice =
        conversation["messages"].as_array().unwrap().iter().find(|m| m["id"] == "wamid.burst.2").unwrap().clone();
    assert_eq!(voice["media"]["text"], "berapa biaya daftarnya");
    let url = voice["media"]["url"].as_str().unwrap();
    assert_eq!(app.get(url, None).await.status(), 401);
    let played = app.get(url, Some(ADMIN_TOKEN)).await;
    assert_eq!(played.status(), 200);
    assert_eq!(played.headers()["content-type"], "audio/ogg");
    assert_eq!(played.bytes().await.unwrap().as_ref(), VOICE);
    assert!(app.metric("wa_media_total{kind=\"audio\",outcome=\"read\"}").await >= 1.0);
    let stats = app.admin_json("/api/whatsapp/stats").await;
    assert_eq!(stats["media"]["files"]["audio"]["read"], 1, "{stats}");
    assert_eq!(stats["media"]["transcribedSeconds"], 4.5);
}

async fn a_redelivered_voice_note_is_downloaded_and_transcribed_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Siap kak.").await;
    transcription_says(&app.llm, "jam buka kapan").await;
    serve_media(&app.graph, "voice-2", "audio/ogg", VOICE).await;
    let voice = messages_webhook(
        json!([message("wamid.again.1", 1_700_000_000, "audio", json!({ "id": "voice-2", "mime_type": "audio/ogg" }))]),
        PERSON,
    );
    assert_eq!(app.post_webhook(&voice).await.status(), 200);
    assert_eq!(app.post_webhook(&voice).await.status(), 200);
    assert_eq!(app.wait_for_texts(1).await.len(), 1);
    // Meta redelivers after the answer too.
    assert_eq!(app.post_webhook(&voice).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.sent_texts().await.len(), 1);
    assert_eq!(downloads_of(&app.graph, "voice-2").await, 1);
    assert_eq!(transcriptions(&app).await.len(), 1);
}

async fn a_crash_after_the_download_resumes_without_downloading_again(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("TURN_LEASE_SECONDS", "3")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers_after(&app.llm, "too late", Duration::from_secs(60)).await;
    transcription_says(&app.llm, "syarat daftar apa saja").await;
    serve_media(&app.graph, "voice-3", "audio/ogg", VOICE).await;
    let voice =
        json!([message("wamid.crash.1", 1_700_000_000, "audio", json!({ "id": "voice-3", "mime_type": "audio/ogg" }))]);
    assert_eq!(app.post_webhook(&messages_webhook(voice, PERSON)).await.status(), 200);
    // Downloaded, transcribed and stored; the model is still thinking.
    wait_until(|| async { !app.llm_requests().await.is_empty() }).await;
    assert_eq!(media_row(&app, "wamid.crash.1").await.0.as_deref(), Some("read"));
    app.crash();
    app.llm.reset().await;
    llm_answers(&app.llm, "Syaratnya KTP kak.").await;
    app.restart().await;

    let sent = app.wait_for_texts(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["text"]["body"], "Syaratnya KTP kak.");
    assert_eq!(downloads_of(&app.graph, "voice-3").await, 1, "the file was not downloaded again");
    assert!(transcriptions(&app).await.is_empty(), "nor transcribed again (the fake was reset at the crash)");
    assert_eq!(last_user_message(&app.llm_requests().await[0]), "[pesan suara] syarat daftar apa saja");
}

async fn every_failed_download_or_transcription_is_a_note_and_an_answer(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("MEDIA_MAX_BYTES", "1000000"), ("MEDIA_DOWNLOAD_TIMEOUT_SECONDS", "1")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Maaf kak, boleh diketik saja?").await;
    transcription_says(&app.llm, "unused").await;
    let unheard: &[u8] = b"OggS this one the transcriber fails on";
    Mock::given(method("POST"))
        .and(path(TRANSCRIPTION_PATH))
        .and(body_string_contains(base64_encode(unheard)))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "error": { "message": "provider down" } })))
        .with_priority(1)
        .mount(&app.llm)
        .await;
    let big = vec![b'x'; 2_000_000];
    // Stated as 50 MB: refused before a byte moves.
    serve_media(&app.graph, "stated-big", "application/pdf", b"%PDF").await;
    Mock::given(method("GET"))
        .and(path("/v23.0/stated-big"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/cdn/stated-big", app.graph.uri()), "mime_type": "application/pdf", "file_size": 50_000_000 })))
        .with_priority(1)
        .mount(&app.graph)
        .await;
    // No size in the metadata: the Content-Length tells.
    Mock::given(method("GET"))
        .and(path("/v23.0/served-big"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/cdn/served-big", app.graph.uri()), "mime_type": "image/jpeg" })))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/cdn/served-big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(big))
        .mount(&app.graph)
        .await;
    serve_media(&app.graph, "program", "application/x-msdownload", b"MZ").await;
    serve_media_with(
        &app.graph,
        "hangs",
        "image/jpeg",
        10,
        ResponseTemplate::new(200).set_body_bytes(b"0123456789".to_vec()).set_delay(Duration::from_secs(30)),
    )
    .await;
    serve_media_with(&app.graph, "gone", "image/jpeg", 10, ResponseTemplate::new(404)).await;
    serve_media(&app.graph, "unheard", "audio/ogg", unheard).await;

    let cases = [
        (
            "6281100000001",
            "document",
            "stated-big",
            "application/pdf",
            "[dokumen tidak bisa diunduh: berkas terlalu besar]",
            "too_large",
        ),
        (
            "6281100000002",
            "image",
            "served-big",
            "image/jpeg",
            "[gambar tidak bisa diunduh: berkas terlalu besar]",
            "too_large",
        ),
        (
            "6281100000003",
            "document",
            "program",
            "application/x-msdownload",
            "[dokumen tidak bisa dibuka: jenis berkas tidak didukung]",
            "refused_type",
        ),
        ("6281100000004", "image", "hangs", "image/jpeg", "[gambar tidak bisa diunduh]", "timed_out"),
        ("6281100000005", "image", "gone", "image/jpeg", "[gambar tidak bisa diunduh]", "not_found"),
        (
            "6281100000006",
            "audio",
            "unheard",
            "audio/ogg",
            "[pesan suara tidak bisa didengarkan saat ini]",
            "transcription_failed",
        ),
    ];
    for (n, (person, kind, media_id, mime, _, _)) in cases.iter().enumerate() {
        let messages = json!([
            { "from": person, "id": format!("wamid.fail.{n}.text"), "timestamp": "1700000000", "type": "text",
              "text": { "body": format!("kasus {n}") } },
            { "from": person, "id": format!("wamid.fail.{n}.file"), "timestamp": "1700000001", "type": kind,
              *kind: { "id": media_id, "mime_type": mime } },
        ]);
        assert_eq!(app.post_webhook(&messages_webhook(messages, person)).await.status(), 200);
    }
    assert_eq!(app.wait_for_texts(cases.len()).await.len(), cases.len(), "everyone is answered, once");
    let asked: Vec<String> = app.llm_requests().await.iter().map(last_user_message).collect();
    for (n, (_, _, _, _, note, outcome)) in cases.iter().enumerate() {
        let expected = format!("kasus {n}\n{note}");
        assert!(asked.contains(&expected), "{expected:?} not among {asked:?}");
        assert_eq!(media_row(&app, &format!("wamid.fail.{n}.file")).await.0.as_deref(), Some(*outcome));
    }
    assert_eq!(downloads_of(&app.graph, "stated-big").await, 0, "refused by its stated size");
    let leftovers = std::fs::read_dir(app.data.path().join("media")).unwrap().count();
    assert_eq!(leftovers, 1, "only the voice note that was downloaded is kept");
}

async fn customer_documents_are_read_as_theirs_and_hostile_ones_become_notes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Sudah kami terima kak.").await;
    serve_media(&app.graph, "form", "application/pdf", &tiny_pdf("Nama pemohon Sari Wulandari")).await;
    serve_media(&app.graph, "notes", "text/plain", "Catatan: pesanan nomor 42".as_bytes()).await;
    let hostile_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/knowledge/hostile");
    let mut hostile: Vec<String> = std::fs::read_dir(hostile_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".pdf"))
        .collect();
    hostile.sort();
    for name in &hostile {
        serve_media(
            &app.graph,
            &name.replace('.', "-"),
            "application/pdf",
            &std::fs::read(format!("{hostile_dir}/{name}")).unwrap(),
        )
        .await;
    }
    let document = |person: &str, id: String, media_id: &str, name: &str, mime: &str| {
        json!([{ "from": person, "id": id, "timestamp": "1700000000", "type": "document",
                 "document": { "id": media_id, "mime_type": mime, "filename": name } }])
    };
    let good = [
        ("6281200000001", "form", "formulir.pdf", "application/pdf"),
        ("6281200000002", "notes", "catatan.txt", "text/plain"),
    ];
    for (person, media_id, name, mime) in good {
        let body = messages_webhook(document(person, format!("wamid.doc.{media_id}"), media_id, name, mime), person);
        assert_eq!(app.post_webhook(&body).await.status(), 200);
    }
    for (n, name) in hostile.iter().enumerate() {
        let person = format!("62813000000{n:02}");
        let body = document(&person, format!("wamid.hostile.{n}"), &name.replace('.', "-"), name, "application/pdf");
        assert_eq!(app.post_webhook(&messages_webhook(body, &person)).await.status(), 200);
    }
    let everyone = good.len() + hostile.len();
    assert_eq!(app.wait_for_texts(everyone).await.len(), everyone, "one answer each, no crash");
    let requests = app.llm_requests().await;
    let asked: Vec<String> = requests.iter().map(last_user_message).collect();
    let form = asked.iter().find(|text| text.contains("formulir.pdf")).unwrap();
    assert!(form.starts_with("[dokumen dari pelanggan: formulir.pdf"), "{form}");
    assert!(form.contains("Nama pemohon Sari Wulandari"), "{form}");
    assert!(
        asked.iter().any(|text| text.contains("<<<DOKUMEN PELANGGAN\nCatatan: pesanan nomor 42\n>>>")),
        "{asked:?}"
    );
    for request in &requests {
        let system = request["messages"][0]["content"].as_str().unwrap();
        assert!(!system.contains("Sari Wulandari"), "a customer's document is never a knowledge passage");
    }
    for name in &hostile {
        let note = format!("[dokumen {name} tidak bisa dibaca");
        assert!(asked.iter().any(|text| text.starts_with(&note)), "{note} not among {asked:?}");
    }
    let stored = "SELECT COUNT(*) FROM turns WHERE user_text = '[dokumen: formulir.pdf]'";
    assert_eq!(app.count(stored).await, 1, "the transcript names the document, its text stays with the message");
}

async fn a_reply_quotes_the_message_it_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Buka jam 8 kak.").await;
    app.say(PERSON, "wamid.quote.1", "jam buka kapan?").await;
    app.wait_for_texts(1).await;
    let pool = app.pool().await;
    let ours: String =
        sqlx::query_scalar("SELECT wa_message_id FROM outbound_messages").fetch_one(&pool).await.unwrap();
    pool.close().await;
    let reply = json!([{ "from": PERSON, "id": "wamid.quote.2", "timestamp": "1700000100", "type": "text",
        "context": { "from": "15550001111", "id": ours }, "text": { "body": "kalau sabtu?" } }]);
    assert_eq!(app.post_webhook(&messages_webhook(reply, PERSON)).await.status(), 200);
    app.wait_for_texts(2).await;
    let asked = last_user_message(&app.llm_requests().await[1]);
    assert_eq!(asked, "[membalas pesan: \"Buka jam 8 kak.\"]\nkalau sabtu?");
}

async fn a_turn_reads_at_most_media_per_turn_max_files(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MEDIA_PER_TURN_MAX", "1")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Terima kasih kak.").await;
    serve_media(&app.graph, "first", "image/png", &png(40, 30)).await;
    serve_media(&app.graph, "second", "image/png", &png(30, 40)).await;
    let photos = json!([
        message("wamid.many.1", 1_700_000_000, "image", json!({ "id": "first", "mime_type": "image/png" })),
        message("wamid.many.2", 1_700_000_001, "image", json!({ "id": "second", "mime_type": "image/png" })),
    ]);
    assert_eq!(app.post_webhook(&messages_webhook(photos, PERSON)).await.status(), 200);
    app.wait_for_texts(1).await;
    let parts = user_content(&app.llm_requests().await[0]);
    let images = parts.as_array().unwrap().iter().filter(|part| part["type"] == "image_url").count();
    assert_eq!(images, 1);
    assert_eq!(
        parts.as_array().unwrap().last().unwrap()["text"],
        "[gambar tidak dibaca: terlalu banyak berkas sekaligus]"
    );
    assert_eq!(downloads_of(&app.graph, "second").await, 0);
}

async fn the_web_chat_takes_a_photo_through_the_same_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    llm_answers(&app.llm, "Struknya sudah kami lihat kak.").await;
    let secret = crate::webchat::start_conversation(&app, None).await;
    let upload = |bytes: Vec<u8>, secret: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/api/chat/media?clientId=photo-1&caption=ini%20struknya", app.address))
            .body(bytes);
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        request.send()
    };
    assert_eq!(upload(png(10, 10), None).await.unwrap().status(), 401);
    assert_eq!(upload(b"<svg onload=alert(1)>".to_vec(), Some(&secret)).await.unwrap().status(), 415);
    assert_eq!(upload(vec![0xFF; 6 * 1024 * 1024], Some(&secret)).await.unwrap().status(), 413);
    assert_eq!(upload(png(300, 200), Some(&secret)).await.unwrap().status(), 202);
    wait_until(|| async { app.count("SELECT COUNT(*) FROM turns WHERE status = 'answered'").await == 1 }).await;
    let parts = user_content(&app.llm_requests().await[0]);
    assert_eq!(parts[0], json!({ "type": "text", "text": "[gambar]" }));
    assert!(parts[1]["image_url"]["url"].as_str().unwrap().starts_with("data:image/jpeg;base64,"));
    assert_eq!(parts[2], json!({ "type": "text", "text": "ini struknya" }));
    let history = crate::webchat::history(&app, &secret).await;
    assert_eq!(history[0]["kind"], "image");
}

async fn expired_media_files_are_deleted_and_the_transcript_stays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Siap kak.").await;
    transcription_says(&app.llm, "alamat kantornya dimana").await;
    serve_media(&app.graph, "voice-old", "audio/ogg", VOICE).await;
    let voice =
        json!([message("wamid.old.1", 1_700_000_000, "audio", json!({ "id": "voice-old", "mime_type": "audio/ogg" }))]);
    assert_eq!(app.post_webhook(&messages_webhook(voice, PERSON)).await.status(), 200);
    app.wait_for_texts(1).await;
    let media_dir = app.data.path().join("media");
    let file = media_dir.join(sha256_hex(VOICE));
    assert!(file.exists());

    let store = wa_ai_bridge::store::Store::connect(&app.database.url).await.unwrap();
    let files = wa_ai_bridge::media::MediaFiles::open(media_dir).unwrap();
    let kept = wa_ai_bridge::housekeeping::sweep_media(&store, &files, 30, Duration::ZERO).await;
    assert_eq!((kept, file.exists()), (0, true), "a recent file stays");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let removed = wa_ai_bridge::housekeeping::sweep_media(&store, &files, 0, Duration::ZERO).await;
    assert_eq!((removed, file.exists()), (1, false));
    let (outcome, transcript, stored) = media_row(&app, "wamid.old.1").await;
    assert_eq!(
        (outcome.as_deref(), transcript.as_deref(), stored),
        (Some("read"), Some("alamat kantornya dimana"), None)
    );
    assert_eq!(app.get("/api/admin/media/wamid.old.1", Some(ADMIN_TOKEN)).await.status(), 404);
}

async fn photos_go_to_the_vision_model_or_become_a_note_without_vision(backend: Backend) {
    let photo = json!([message(
        "wamid.vision.1",
        1_700_000_000,
        "image",
        json!({ "id": "receipt", "mime_type": "image/png", "caption": "struk" })
    )]);
    let seeing = TestApp::spawn_with(
        backend,
        &[("VISION_MODEL", "qwen/qwen2.5-vl-72b-instruct"), ("OPENROUTER_FALLBACK_MODELS", "x/text-only")],
    )
    .await;
    graph_accepts_sends(&seeing.graph).await;
    llm_answers(&seeing.llm, "Terlihat kak.").await;
    serve_media(&seeing.graph, "receipt", "image/png", &png(64, 64)).await;
    assert_eq!(seeing.post_webhook(&messages_webhook(photo.clone(), PERSON)).await.status(), 200);
    seeing.wait_for_texts(1).await;
    let asked = &seeing.llm_requests().await[0];
    assert_eq!(asked["model"], "qwen/qwen2.5-vl-72b-instruct", "a turn with a photo goes to the vision model");
    assert!(asked.get("models").is_none(), "alone: the text-only fallbacks could not see it");
    assert_eq!(user_content(asked)[1]["type"], "image_url");

    let blind = TestApp::spawn_with(backend, &[("LLM_VISION", "false")]).await;
    graph_accepts_sends(&blind.graph).await;
    llm_answers(&blind.llm, "Maaf kak.").await;
    serve_media(&blind.graph, "receipt", "image/png", &png(64, 64)).await;
    assert_eq!(blind.post_webhook(&messages_webhook(photo, PERSON)).await.status(), 200);
    blind.wait_for_texts(1).await;
    let asked = last_user_message(&blind.llm_requests().await[0]);
    assert_eq!(asked, "[gambar; bot tidak dapat melihat gambar, hanya keterangannya]\nstruk");
}

async fn a_person_over_the_hourly_limit_costs_no_transcription(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MAX_TURNS_PER_HOUR", "1")]).await;
    graph_accepts_sends(&app.graph).await;
    llm_answers(&app.llm, "Halo kak!").await;
    transcription_says(&app.llm, "unused").await;
    serve_media(&app.graph, "voice-limited", "audio/ogg", VOICE).await;
    app.say(PERSON, "wamid.limited.1", "halo").await;
    app.wait_for_texts(1).await;
    let voice = json!([message(
        "wamid.limited.2",
        1_700_000_100,
        "audio",
        json!({ "id": "voice-limited", "mime_type": "audio/ogg" })
    )]);
    assert_eq!(app.post_webhook(&messages_webhook(voice, PERSON)).await.status(), 200);
    let sent = app.wait_for_texts(2).await;
    let told = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/limit_reached.md")).unwrap();
    let first_line = told.lines().next().unwrap();
    assert!(sent[1]["text"]["body"].as_str().unwrap().starts_with(first_line.split('{').next().unwrap()), "{sent:?}");
    assert!(transcriptions(&app).await.is_empty(), "no transcription for a turn the LLM will not answer");
    assert_eq!(app.llm_requests().await.len(), 1);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
