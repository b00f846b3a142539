use clap::{Parser, Subcommand};
use std::process::ExitCode;
use wa_ai_bridge::cli;
use wa_ai_bridge::config::Settings;
use wa_ai_bridge::startup::Application;

/// When many quiet windows end together, the task that builds a request
/// allocates it on one worker and the HTTP/2 connection frees it on
/// another. glibc's malloc takes the first worker's heap lock for each such
/// free, so the two workers took turns instead of answering side by side;
/// jemalloc queues them in a per-thread cache. Measured with `perf`, the
/// deadline bench's p99 fell from 83–89 ms to 57–70 ms.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Answer WhatsApp customers with an LLM grounded in your own documents.
/// Settings come from the environment and `.env` (see `.env.example`).
#[derive(Parser)]
#[command(name = "wa-ai-bridge", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP on PORT (what runs without a subcommand).
    Serve,
    /// Build the knowledge index from KNOWLEDGE_DIR and print the report.
    Index {
        /// Print the report as JSON, as POST /api/whatsapp/refresh-kb does.
        #[arg(long)]
        json: bool,
    },
    /// Chat with the bot from this terminal, through the same pipeline as
    /// WhatsApp (starts a server here if none answers on PORT).
    Chat {
        /// A phone number to label the conversation with (it does not
        /// identify it: each run is a new conversation).
        #[arg(long)]
        phone: Option<String>,
        /// A server to talk to (default: the one on PORT, or a new one).
        #[arg(long)]
        url: Option<String>,
    },
    /// Show the passages a question would put in the prompt, with scores and sources.
    Search {
        question: String,
        /// How many passages to show (default KB_TOP_K).
        #[arg(short = 'k', long)]
        top: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Serve => serve(settings).await,
        Command::Index { json } => {
            wa_ai_bridge::telemetry::init_logs("error");
            cli::index(&settings, json).await
        }
        Command::Chat { phone, url } => {
            wa_ai_bridge::telemetry::init_logs("error");
            cli::chat::run(settings, url, phone.as_deref()).await
        }
        Command::Search { question, top } => {
            wa_ai_bridge::telemetry::init_logs("error");
            cli::search(&settings, &question, top).await
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    wa_ai_bridge::telemetry::init_logs("info,sqlx=warn");
    let missing: Vec<&str> = settings.missing_credentials().iter().filter_map(|m| m.split(':').next()).collect();
    if !missing.is_empty() {
        tracing::warn!(missing = %missing.join(", "), "not fully configured; see the block below");
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = app.port(), "wa-ai-bridge listening");
    println!("{}", app.banner());
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or(());
    tracing::info!("shutting down");
}
