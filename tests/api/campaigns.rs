//! Campaigns seen from outside: every recipient checked before anything is
//! stored; messages paced at the configured rate; Meta's pair limit and
//! its "too many messages" answers respected; pause, resume, cancel and a
//! crash mid-campaign leave nobody written to twice and nobody skipped;
//! schedule, hours and holidays followed on a clock the test controls.

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wa_ai_bridge::campaigns::{Runner, RunnerParts};
use wa_ai_bridge::store::Store;
use wa_ai_bridge::templates::Templates;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_backends!(
    a_campaign_is_checked_whole_then_paced_to_everyone_once,
    pause_resume_cancel_and_a_crash_leave_nobody_twice_or_skipped,
    the_pair_limit_and_metas_throttling_slow_a_campaign,
    schedule_hours_and_holidays_follow_the_clock,
    a_marketing_campaign_by_tag_leaves_out_whoever_wrote_stop,
);

fn tagihan() -> Value {
    json!({
        "id": "1001", "name": "tagihan", "language": "id", "status": "APPROVED", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Halo {{1}}, tagihan {{2}} sebesar Rp{{3}}."}],
    })
}

/// `count` customers with numbers 62812000XXXXX, each with their bill.
fn customers(count: usize, from: usize) -> Vec<Value> {
    (from..from + count)
        .map(|n| json!({ "to": format!("0812{:07}", n), "name": format!("Pelanggan {n}"), "body": [format!("Pelanggan {n}"), "Mei 2026", n * 1000] }))
        .collect()
}

/// The Graph sends of templates, each with when it arrived and, under
/// `"wamid"`, the id Graph answered with.
type Arrivals = Arc<Mutex<Vec<(Instant, Value)>>>;

/// Graph accepts every send and notes when each template arrived; the
/// first `refusals` template sends are refused with 130429.
async fn recorded_graph(app: &TestApp, refusals: usize) -> Arrivals {
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    let refused = Arc::new(Mutex::new(0usize));
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(move |request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let wamid = format!("wamid.c.{}", uuid::Uuid::new_v4().simple());
            if body["type"] == "template" {
                let mut refused = refused.lock().unwrap();
                if *refused < refusals {
                    *refused += 1;
                    return ResponseTemplate::new(400).set_body_json(json!({"error": {
                        "code": 130429, "message": "Rate limit hit", "type": "OAuthException"}}));
                }
                let mut noted = body.clone();
                noted["wamid"] = json!(wamid);
                seen.lock().unwrap().push((Instant::now(), noted));
            }
            ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "id": wamid }] }))
        })
        .with_priority(1)
        .mount(&app.graph)
        .await;
    arrivals
}

fn recipients_of(arrivals: &Arrivals) -> Vec<String> {
    arrivals.lock().unwrap().iter().map(|(_, body)| body["to"].as_str().unwrap().to_owned()).collect()
}

/// What Meta does after every send: a "sent" status for each message that
/// reached it, including one whose answer a crash cut off.
async fn meta_reports_sent(app: &TestApp, arrivals: &Arrivals) {
    let now = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string();
    let statuses: Vec<Value> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| json!({"id": body["wamid"], "status": "sent", "timestamp": now, "recipient_id": body["to"]}))
        .collect();
    let webhook = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID },
            "statuses": statuses,
        }}]}],
    });
    assert_eq!(app.post_webhook(&webhook.to_string()).await.status(), 200);
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    get(app, &format!("/api/campaigns/{id}"), ADMIN_TOKEN).await.1
}

async fn wait_for_sent(arrivals: &Arrivals, count: usize) {
    for _ in 0..600 {
        if arrivals.lock().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} of {count} sent in 30 s", arrivals.lock().unwrap().len());
}

fn assert_everyone_once(arrivals: &Arrivals, expected: usize) {
    let mut to = recipients_of(arrivals);
    let sent = to.len();
    to.sort();
    to.dedup();
    assert_eq!((sent, to.len()), (expected, expected), "each recipient exactly once");
}

const CLINIC: &str = "clinic-token-0123456789abcdef";

async fn a_campaign_is_checked_whole_then_paced_to_everyone_once(backend: Backend) {
    let tokens = tokens_file(&[("klinik", CLINIC)]);
    let tokens_path = tokens.path().display().to_string();
    let overrides = [("SEND_RATE_PER_SECOND", "100"), ("API_TOKENS_FILE", tokens_path.as_str())];
    let app = spawn_with_templates(backend, &overrides, json!([tagihan()])).await;
    let arrivals = recorded_graph(&app, 0).await;

    // One wrong line refuses the whole campaign, with every problem listed, and stores nothing.
    let mut people = customers(5, 0);
    people[1]["to"] = json!("0212345");
    people[3]["body"] = json!(["Budi"]);
    let bad = json!({"name": "Tagihan Mei", "template": {"name": "tagihan"}, "recipients": people, "hours": "always"});
    let (status, refused) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), bad).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["problems"],
        json!([
            "recipients[1]: to: an Indonesian number starts with 08, 8, +62 or 62 (or give another country's code after '+')",
            "recipients[3]: body: missing {{2}}",
            "recipients[3]: body: missing {{3}}",
        ]),
        "{refused}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM campaign_recipients").await, 0);
    let too_fast =
        json!({"name": "x", "template": {"name": "tagihan"}, "recipients": customers(1, 0), "rate_per_second": 500});
    assert_eq!(post(&app, "/api/campaigns", Some(ADMIN_TOKEN), too_fast).await.0, 400);

    // 500 customers (one listed twice) at 100 a second.
    let mut people = customers(500, 0);
    people.push(people[7].clone());
    let request = json!({
        "name": "Tagihan Mei", "template": {"name": "tagihan", "language": "id"}, "recipients": people,
        "hours": "always", "rate_per_second": 100, "idempotency_key": "tagihan-2026-05",
    });
    let (status, created) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), request.clone()).await;
    assert_eq!(
        (status, created["total"].clone(), created["duplicatesDropped"].clone()),
        (201, json!(500), json!(1)),
        "{created}"
    );
    let id = created["id"].as_i64().unwrap();
    let (status, again) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), request).await;
    assert_eq!((status, again["id"].as_i64()), (200, Some(id)), "the same key makes no second campaign");
    // Another application's token neither sees nor stops it.
    let (status, hidden) = get(&app, &format!("/api/campaigns/{id}"), CLINIC).await;
    assert_eq!((status, hidden["error"].clone()), (404, json!("no campaign of this token has this id")));
    assert_eq!(get(&app, "/api/campaigns", CLINIC).await.1["campaigns"], json!([]));
    assert_eq!(post(&app, &format!("/api/campaigns/{id}/cancel"), Some(CLINIC), json!({})).await.0, 404);

    wait_for_sent(&arrivals, 500).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_everyone_once(&arrivals, 500);
    let times: Vec<Instant> = arrivals.lock().unwrap().iter().map(|(at, _)| *at).collect();
    let span = times.last().unwrap().duration_since(times[0]).as_secs_f64();
    let rate = 499.0 / span;
    assert!((90.0..=110.0).contains(&rate), "{rate:.1} messages a second, asked for 100");
    let first = arrivals.lock().unwrap().iter().find(|(_, body)| body["to"] == "628120000000").unwrap().1.clone();
    assert_eq!(first["template"]["components"][0]["parameters"][0], json!({"type": "text", "text": "Pelanggan 0"}));

    wait_until(|| async { campaign(&app, id).await["state"] == "done" }).await;
    wait_until(|| async { campaign(&app, id).await["counts"]["sent"] == 500 }).await;
    let (_, page) = get(&app, &format!("/api/campaigns/{id}/recipients?limit=2"), ADMIN_TOKEN).await;
    assert_eq!(page["recipients"][0]["to"], "628120000000");
    assert_eq!(page["recipients"][0]["status"], "sent");
    assert!(page["recipients"][0]["providerMessageId"].as_str().unwrap().starts_with("wamid.c."));
    assert!(page["next"].as_i64().is_some());
}

async fn pause_resume_cancel_and_a_crash_leave_nobody_twice_or_skipped(backend: Backend) {
    // A send cut off by the crash is settled by Meta's status within
    // seconds (its lease is the send timeout plus 10 s), not resent.
    let overrides =
        [("SEND_RATE_PER_SECOND", "20"), ("WHATSAPP_SEND_TIMEOUT_SECONDS", "5"), ("SEND_AMBIGUOUS_WAIT_SECONDS", "1")];
    let mut app = spawn_with_templates(backend, &overrides, json!([tagihan()])).await;
    let arrivals = recorded_graph(&app, 0).await;
    let request =
        json!({"name": "Tagihan", "template": {"name": "tagihan"}, "recipients": customers(80, 0), "hours": "always"});
    let (status, created) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), request).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();

    wait_for_sent(&arrivals, 10).await;
    let (status, paused) = post(&app, &format!("/api/campaigns/{id}/pause"), Some(ADMIN_TOKEN), json!({})).await;
    assert_eq!((status, paused["state"].clone()), (200, json!("paused")));
    // What was released before the pause still goes out; nothing after it.
    wait_until(|| async { app.count("SELECT COUNT(*) FROM outbound_messages WHERE state <> 'sent'").await == 0 }).await;
    let at_pause = arrivals.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(arrivals.lock().unwrap().len(), at_pause, "nothing goes out while paused");
    let (_, resumed) = post(&app, &format!("/api/campaigns/{id}/resume"), Some(ADMIN_TOKEN), json!({})).await;
    assert_eq!(resumed["state"], "running");

    // A crash in the middle: the next process carries on where this one stopped.
    wait_for_sent(&arrivals, at_pause + 15).await;
    app.crash();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.restart().await;
    meta_reports_sent(&app, &arrivals).await;
    wait_for_sent(&arrivals, 80).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_everyone_once(&arrivals, 80);
    wait_until(|| async { campaign(&app, id).await["counts"]["sent"] == 80 }).await;
    assert_eq!(campaign(&app, id).await["state"], "done");

    // The report as CSV: a header and a line each.
    let csv = app.get(&format!("/api/campaigns/{id}/recipients?format=csv"), Some(ADMIN_TOKEN)).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 81);
    assert!(csv.lines().nth(1).unwrap().starts_with("628120000000,Pelanggan 0,sent,,,wamid.c."), "{csv}");

    // A campaign cancelled before its time sends nothing; another token cannot see or touch it.
    let later = json!({"name": "Besok", "template": {"name": "tagihan"}, "recipients": customers(5, 100),
        "hours": "always", "schedule_at": "2099-01-01 09:00"});
    let (_, scheduled) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), later).await;
    let later_id = scheduled["id"].as_i64().unwrap();
    assert_eq!(scheduled["state"], "scheduled");
    let (_, cancelled) = post(&app, &format!("/api/campaigns/{later_id}/cancel"), Some(ADMIN_TOKEN), json!({})).await;
    assert_eq!((cancelled["state"].clone(), cancelled["counts"]["cancelled"].clone()), (json!("cancelled"), json!(5)));
    let (_, resumed) = post(&app, &format!("/api/campaigns/{later_id}/resume"), Some(ADMIN_TOKEN), json!({})).await;
    assert_eq!(resumed["state"], "cancelled", "a cancelled campaign stays cancelled");
    assert_eq!(post(&app, &format!("/api/campaigns/{later_id}/pause"), None, json!({})).await.0, 401);
}

async fn the_pair_limit_and_metas_throttling_slow_a_campaign(backend: Backend) {
    let app = spawn_with_templates(backend, &[("SEND_RATE_PER_SECOND", "20")], json!([tagihan()])).await;
    let arrivals = recorded_graph(&app, 3).await;
    // The same customer in two campaigns made at once: the second message waits 6 s after the first.
    let mut first = customers(60, 0);
    first.insert(0, json!({"to": "081299999999", "body": ["Sari", "Mei", 1]}));
    let second = vec![json!({"to": "081299999999", "body": ["Sari", "Juni", 2]})];
    for (name, people) in [("Mei", first), ("Juni", second)] {
        let request = json!({"name": name, "template": {"name": "tagihan"}, "recipients": people, "hours": "always"});
        assert_eq!(post(&app, "/api/campaigns", Some(ADMIN_TOKEN), request).await.0, 201);
    }
    wait_for_sent(&arrivals, 62).await;
    let to_sari: Vec<Instant> =
        arrivals.lock().unwrap().iter().filter(|(_, body)| body["to"] == "6281299999999").map(|(at, _)| *at).collect();
    assert_eq!(to_sari.len(), 2);
    let gap = to_sari[1].duration_since(to_sari[0]);
    assert!(gap >= Duration::from_millis(5_900), "Meta's pair limit: {gap:?} between two messages to one person");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut to = recipients_of(&arrivals);
    to.sort();
    to.dedup();
    assert_eq!((arrivals.lock().unwrap().len(), to.len()), (62, 61), "Sari twice (two campaigns), everyone else once");

    // Meta said 130429 three times to the first campaign: it slowed down, and still reached everyone once.
    let (_, list) = get(&app, "/api/campaigns", ADMIN_TOKEN).await;
    let mei = list["campaigns"].as_array().unwrap().iter().find(|c| c["name"] == "Mei").unwrap().clone();
    assert!(mei["rate"]["slowdowns"].as_i64().unwrap() >= 1, "{mei}");
    assert!(mei["rate"]["current"].as_f64().unwrap() < 20.0, "{mei}");
}

/// A runner of the test's own, on the app's database, ticked on a clock the test sets.
async fn runner_on(app: &TestApp) -> Runner {
    let settings = app.settings();
    let store = Store::connect(&settings.database_url).await.unwrap();
    Runner::new(RunnerParts {
        templates: Templates::new(store.clone(), &settings),
        store,
        settings: settings.gateway.clone(),
        retry_for: Duration::from_secs(3600),
        wake: Arc::new(|| {}),
    })
}

async fn schedule_hours_and_holidays_follow_the_clock(backend: Backend) {
    let app = spawn_with_templates(backend, &[("SEND_RATE_PER_SECOND", "10")], json!([tagihan()])).await;
    // Far in the future, so the server's own runner never finds it due; this test's runner does.
    let request = json!({
        "name": "Januari", "template": {"name": "tagihan"}, "recipients": customers(40, 0),
        "schedule_at": "2030-01-07 09:00", "hours": "Mon-Fri 08:00-17:00 Asia/Jakarta",
        "holidays": ["2030-01-08"], "rate_per_second": 4,
    });
    let (status, created) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), request).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    // 2030-01-07 is a Monday; 09:00 in Jakarta is 02:00 UTC.
    let monday_9 = 1_893_981_600_000_i64;
    assert_eq!(created["scheduleAt"], monday_9);
    let released = || async { app.count("SELECT COUNT(*) FROM campaign_recipients WHERE state = 'released'").await };
    let runner = runner_on(&app).await;
    let run = |from: i64, seconds: i64| {
        let runner = runner.clone();
        async move {
            for step in 0..=seconds * 10 {
                runner.tick(from + step * 100).await.unwrap();
            }
        }
    };

    run(monday_9 - 60_000, 59).await;
    assert_eq!(released().await, 0, "not before schedule_at");
    run(monday_9, 2).await;
    assert_eq!(released().await, 8, "4 a second for 2 seconds");
    let hour = 3_600_000;
    run(monday_9 + 8 * hour, 3).await;
    assert_eq!(released().await, 8, "17:00: the hours are over");
    run(monday_9 + 23 * hour, 3).await;
    assert_eq!(released().await, 8, "Tuesday 08:00 is a holiday");
    let wednesday_8 = monday_9 + 47 * hour;
    run(wednesday_8 - 10_000, 9).await;
    assert_eq!(released().await, 8, "Wednesday before 08:00");
    run(wednesday_8, 2).await;
    assert_eq!(released().await, 16);

    // Paused, nothing; a new runner (another process, or after a restart) carries on, nobody twice.
    post(&app, &format!("/api/campaigns/{id}/pause"), Some(ADMIN_TOKEN), json!({})).await;
    run(wednesday_8 + 10_000, 2).await;
    assert_eq!(released().await, 16);
    post(&app, &format!("/api/campaigns/{id}/resume"), Some(ADMIN_TOKEN), json!({})).await;
    let another = runner_on(&app).await;
    for step in 0..=100 {
        another.tick(wednesday_8 + 20_000 + step * 100).await.unwrap();
    }
    assert_eq!(released().await, 40, "the rest, 4 a second for 10 seconds");
    let queued =
        "SELECT COUNT(DISTINCT idempotency_key) FROM outbound_messages WHERE idempotency_key LIKE 'campaign:%'";
    assert_eq!(app.count(queued).await, 40);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbound_messages").await, 40, "one message each");
    let (_, view) = get(&app, &format!("/api/campaigns/{id}"), ADMIN_TOKEN).await;
    assert_eq!((view["state"].clone(), view["counts"]["pending"].clone()), (json!("done"), json!(0)));
}

fn promo() -> Value {
    json!({
        "id": "1002", "name": "promo", "language": "id", "status": "APPROVED", "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [{"type": "BODY", "text": "Halo {{nama}}, ada promo {{paket}} bulan ini."}],
    })
}

async fn a_marketing_campaign_by_tag_leaves_out_whoever_wrote_stop(backend: Backend) {
    let app = spawn_with_templates(backend, &[("SEND_RATE_PER_SECOND", "20")], json!([promo()])).await;
    llm_answers(&app.llm, "Halo kak!").await;
    let arrivals = recorded_graph(&app, 0).await;
    for contact in [
        json!({"number": "0812-0000-0001", "name": "Sari", "tags": ["pelanggan"]}),
        json!({"number": "0812-0000-0002", "tags": ["pelanggan"]}),
        json!({"number": "0812-0000-0003", "name": "Budi", "tags": ["pelanggan"]}),
        json!({"number": "0812-0000-0004", "name": "Dewi", "tags": ["pelanggan"]}),
        json!({"number": "0812-0000-0005", "name": "Lain", "tags": ["pemasok"]}),
    ] {
        assert_eq!(post(&app, "/api/admin/contacts", Some(ADMIN_TOKEN), contact).await.0, 200);
    }
    // Budi writes STOP: told once, and no marketing template reaches him any more.
    app.say("6281200000003", "wamid.budi.1", "STOP").await;
    wait_until(|| async { app.sent_texts().await.len() == 1 }).await;
    let to_budi =
        json!({"to": "081200000003", "template": {"name": "promo", "body": {"nama": "Budi", "paket": "Gratis"}}});
    let (status, refused) = post(&app, "/api/messages", Some(ADMIN_TOKEN), to_budi).await;
    assert_eq!((status, refused["code"].clone()), (422, json!("opted_out")), "{refused}");

    // By tag, everyone but Budi; Dewi writes STOP after the campaign was made and before her turn.
    let request = json!({
        "name": "Promo Juni", "template": {"name": "promo"}, "tag": "pelanggan", "hours": "always",
        "values": {"body": {"nama": "{nama}", "paket": "50 Mbps"}}, "schedule_at": now_ms() + 3_000,
    });
    let (status, created) = post(&app, "/api/campaigns", Some(ADMIN_TOKEN), request).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["total"].clone(), created["optedOutLeftOut"].clone()), (json!(3), json!(1)));
    app.say("6281200000004", "wamid.dewi.1", "berhenti").await;
    wait_until(|| async { app.sent_texts().await.len() == 2 }).await;
    wait_for_sent(&arrivals, 2).await;
    let id = created["id"].as_i64().unwrap();
    wait_until(|| async { campaign(&app, id).await["state"] == "done" }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texts: Vec<(String, Value)> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            (
                body["to"].as_str().unwrap().to_owned(),
                body["template"]["components"][0]["parameters"][0]["text"].clone(),
            )
        })
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&("6281200000001".into(), json!("Sari"))), "{texts:?}");
    assert!(texts.contains(&("6281200000002".into(), json!("Bapak/Ibu"))), "a contact without a name: {texts:?}");
    let (_, report) = get(&app, &format!("/api/campaigns/{id}/recipients"), ADMIN_TOKEN).await;
    let dewi = report["recipients"].as_array().unwrap().iter().find(|r| r["to"] == "6281200000004").unwrap().clone();
    assert_eq!(
        (dewi["status"].clone(), dewi["reason"].clone()),
        (json!("skipped"), json!("opted out of marketing messages"))
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
