//! `wa-ai-bridge chat`: the web chat from a terminal, for servers without a
//! browser. It talks to a running server over the same HTTP API as the web
//! page, so every message goes through the same pipeline; with no server
//! listening it starts one in this process first, and stops it gracefully
//! on the way out so an answer in flight is handed back, not left to its
//! lease. Each run is a new conversation whose secret lives only in memory.

use crate::config::Settings;
use crate::domain::PhoneNumber;
use crate::startup::Application;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// After the last line is typed (or piped), how long to wait for the
/// answer beyond the quiet period before giving up.
const ANSWER_GRACE: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
enum ChatError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("cannot start a server: {0}")]
    Start(#[from] crate::startup::StartupError),
    #[error("invalid phone number: {0}")]
    Phone(#[from] crate::domain::DomainError),
}

#[derive(Deserialize)]
struct Started {
    secret: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatConfig {
    quiet_seconds: f64,
    llm: bool,
}

/// What the event stream tells the terminal.
enum Shown {
    Typing,
    Reply(String),
    Sources(Vec<String>),
    Lost,
}

/// Exits the process when done: a read of stdin cannot be cancelled, and
/// returning would wait for one more line.
pub async fn run(settings: Settings, url: Option<String>, phone: Option<&str>) -> ! {
    let code = match chat(settings, url, phone).await {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    };
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(code)
}

async fn chat(settings: Settings, url: Option<String>, phone: Option<&str>) -> Result<(), ChatError> {
    let label = phone.map(PhoneNumber::parse).transpose()?;
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).build()?;
    let (base, local) = match url {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => local_server(&http, settings).await?,
    };
    let talked = talk(&http, &base, label.as_ref()).await;
    if let Some(local) = local {
        local.stop().await;
    }
    talked
}

async fn talk(http: &reqwest::Client, base: &str, label: Option<&PhoneNumber>) -> Result<(), ChatError> {
    let config: ChatConfig = checked(http.get(format!("{base}/api/chat/config")).send().await?).await?.json().await?;
    let start = json!({ "phone": label.map(PhoneNumber::expose) });
    let request = http.post(format!("{base}/api/chat/conversations")).json(&start);
    let started: Started = checked(request.send().await?).await?.json().await?;
    let conversation = Conversation { http: http.clone(), base: base.to_owned(), secret: started.secret };
    let who = label.map_or_else(|| "tamu".to_owned(), PhoneNumber::masked);
    println!("Terhubung ke {base} sebagai {who}.");
    println!(
        "Ketik pesan lalu Enter; bot menjawab setelah Anda diam {} detik{}. Ctrl-D untuk keluar.\n",
        config.quiet_seconds,
        if config.llm { "" } else { " (mode tanpa AI: jawaban dari dokumen)" }
    );
    let (shown_tx, mut shown) = mpsc::unbounded_channel();
    tokio::spawn(follow_events(conversation.get("events"), shown_tx));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let mut waiting_for_answer = false;
    let mut input_open = true;
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            line = lines.next_line(), if input_open => match line {
                Ok(Some(line)) if !line.trim().is_empty() => {
                    conversation.send(&line).await?;
                    waiting_for_answer = true;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    input_open = false;
                    if !waiting_for_answer {
                        return Ok(());
                    }
                }
            },
            event = shown.recv() => match event {
                Some(Shown::Typing) => println!("  (bot sedang mengetik…)"),
                Some(Shown::Reply(text)) => println!("\nBot: {}\n", text.replace('\n', "\n     ")),
                Some(Shown::Sources(sources)) => {
                    if !sources.is_empty() {
                        println!("     Sumber: {}\n", sources.join("; "));
                    }
                    waiting_for_answer = false;
                    if !input_open {
                        return Ok(());
                    }
                }
                Some(Shown::Lost) | None => return Err(ChatError::Refused("the event stream closed".into())),
            },
            _ = tokio::time::sleep(Duration::from_secs_f64(config.quiet_seconds) + ANSWER_GRACE), if !input_open => {
                return Err(ChatError::Refused("no answer arrived".into()));
            }
        }
    }
}

/// The conversation this run started, and the secret that opens it.
struct Conversation {
    http: reqwest::Client,
    base: String,
    secret: String,
}

impl Conversation {
    fn get(&self, what: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}/api/chat/{what}", self.base)).bearer_auth(&self.secret)
    }

    async fn send(&self, text: &str) -> Result<(), ChatError> {
        let body = json!({ "text": text, "clientId": uuid::Uuid::new_v4().to_string() });
        let request = self.http.post(format!("{}/api/chat/messages", self.base)).bearer_auth(&self.secret);
        checked(request.json(&body).send().await?).await?;
        Ok(())
    }
}

/// A server started by this command, stopped as SIGTERM would stop it.
struct LocalServer {
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    async fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(Err(error)) = self.serving.await {
            eprintln!("error: the local server did not stop cleanly: {error}");
        }
    }
}

/// The server this machine runs on `PORT`, or one started here if none
/// answers there.
async fn local_server(http: &reqwest::Client, settings: Settings) -> Result<(String, Option<LocalServer>), ChatError> {
    let base = format!("http://127.0.0.1:{}", settings.port);
    if http.get(format!("{base}/health")).send().await.is_ok() {
        return Ok((base, None));
    }
    eprintln!("No server on port {}; starting one here (logs: errors only).", settings.port);
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok((base, Some(LocalServer { stop, serving })))
}

async fn checked(response: reqwest::Response) -> Result<reqwest::Response, ChatError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let body: Value = response.json().await.unwrap_or_default();
    Err(ChatError::Refused(body["error"].as_str().unwrap_or("unknown error").to_owned()))
}

/// Reads the Server-Sent Events stream and forwards what to show.
async fn follow_events(request: reqwest::RequestBuilder, shown: mpsc::UnboundedSender<Shown>) {
    let Ok(mut response) = request.send().await.and_then(reqwest::Response::error_for_status) else {
        let _ = shown.send(Shown::Lost);
        return;
    };
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(event) = parse_event(&block) {
                let _ = shown.send(event);
            }
        }
    }
    let _ = shown.send(Shown::Lost);
}

fn parse_event(block: &str) -> Option<Shown> {
    let name = block.lines().find_map(|line| line.strip_prefix("event:"))?.trim();
    let data: String = block.lines().filter_map(|line| line.strip_prefix("data:")).map(str::trim_start).collect();
    let data: Value = serde_json::from_str(&data).unwrap_or_default();
    match name {
        "typing" => Some(Shown::Typing),
        "message" => Some(Shown::Reply(data["text"].as_str().unwrap_or_default().to_owned())),
        "sources" => Some(Shown::Sources(
            data["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|source| source["citation"].as_str().map(str::to_owned))
                .fold(Vec::new(), |mut unique, citation| {
                    if !unique.contains(&citation) {
                        unique.push(citation);
                    }
                    unique
                }),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_sent_events() {
        assert!(matches!(parse_event("event: typing\ndata: {}\n\n"), Some(Shown::Typing)));
        let Some(Shown::Reply(text)) = parse_event("event: message\ndata: {\"text\":\"Halo\\nkak\"}\n\n") else {
            panic!("expected a reply")
        };
        assert_eq!(text, "Halo\nkak");
        let Some(Shown::Sources(sources)) =
            parse_event("event: sources\ndata: {\"sources\":[{\"citation\":\"Panduan, hlm. 2\"}]}\n\n")
        else {
            panic!("expected sources")
        };
        assert_eq!(sources, ["Panduan, hlm. 2"]);
        assert!(parse_event(": keep-alive\n\n").is_none());
    }
}
