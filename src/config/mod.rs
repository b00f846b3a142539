//! Settings, read once at start-up. Every problem is collected and reported
//! together, so an operator fixes a `.env` in one pass instead of one
//! restart per typo. Missing credentials are not problems: the parts that
//! need them stay off and `missing_credentials` says which.

mod accounts;
mod gateway;
mod providers;
mod tokens;
mod wa_outbox;

pub use accounts::Account;
pub use gateway::{GatewaySettings, DEFAULT_SEND_HOURS};
pub use providers::{FonnteSettings, WahaSettings, WhatsAppProvider, DEFAULT_FONNTE_API_URL};
pub use tokens::{ApiToken, Scope};
pub use wa_outbox::WaOutboxSettings;

use crate::channels::web::TrustedProxies;
use crate::handoff::{Actor, BusinessHours};
use secrecy::SecretString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_OPENROUTER_URL: &str = "https://openrouter.ai/api/v1/chat/completions";
pub const DEFAULT_MODEL: &str = "google/gemini-2.0-flash-exp:free";
/// OpenRouter's Whisper.
pub const DEFAULT_TRANSCRIBE_MODEL: &str = "openai/whisper-1";

/// What WhatsApp customers send that the bot can use or an operator would
/// want to see: voice notes and audio, photos, PDFs and text documents,
/// short videos (kept for the admin page; the model is told one came).
const DEFAULT_MEDIA_TYPES: [&str; 9] = [
    "audio/*",
    "image/jpeg",
    "image/png",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "video/mp4",
];

/// Model families on OpenRouter that accept images: `LLM_VISION` defaults
/// to on for them (the default model is one).
fn sees_images(model: &str) -> bool {
    let model = model.to_ascii_lowercase();
    [
        "google/gemini",
        "google/gemma-3",
        "openai/gpt-4o",
        "openai/gpt-4.1",
        "openai/gpt-5",
        "anthropic/claude",
        "x-ai/grok-4",
    ]
    .iter()
    .any(|family| model.starts_with(family))
        || model.contains("vision")
        || model.contains("-vl")
}
/// Measured on the shipped `knowledge/` with `wa-ai-bridge search`: questions
/// the documents answer scored 13.1 to 31.2, unrelated ones 3.9 to 11.0 or
/// found nothing (README, "Unanswered questions").
const DEFAULT_MIN_SCORE: f32 = 12.0;

#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    /// Every interface by default (what a container needs); a loopback
    /// address keeps the server on this machine.
    pub bind_address: IpAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub prompts_dir: PathBuf,
    pub whatsapp: WhatsAppSettings,
    pub fonnte: FonnteSettings,
    pub waha: WahaSettings,
    /// Every WhatsApp number, the default account (the settings above)
    /// first when it is configured; never empty.
    pub accounts: Vec<Account>,
    pub llm: LlmSettings,
    pub buffer: BufferSettings,
    pub knowledge: KnowledgeSettings,
    pub history_turns: usize,
    /// Unset means the server makes one up at start-up and keeps it in
    /// `DATA_DIR/admin-token` (see `startup`).
    pub admin_token: Option<SecretString>,
    /// People who answer customers from the admin page (`ADMIN_AGENTS`),
    /// each with a token of their own; the admin token acts as "admin".
    pub agents: Vec<Agent>,
    /// Applications' tokens (`API_TOKENS_FILE`), each with its scopes.
    pub api_tokens: Vec<ApiToken>,
    /// Where to tell the team that a customer asked for a person; `None`
    /// without `HANDOFF_NOTIFY_URL`.
    pub notify: Option<NotifySettings>,
    /// The web chat at `/` and its API; an operator who only wants
    /// WhatsApp turns it off.
    pub web_chat_enabled: bool,
    /// Messages into the web chat per minute, from all visitors together.
    pub web_chat_messages_per_minute: u32,
    pub web_chat_limits: WebChatLimits,
    /// Hosts (with their subdomains) whose links the web chat makes
    /// clickable; links elsewhere are shown as plain text.
    pub web_chat_link_domains: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed about who a client is.
    pub trusted_proxies: TrustedProxies,
    pub retention: RetentionSettings,
    pub outbox: OutboxSettings,
    pub limits: LimitSettings,
    pub handoff: HandoffSettings,
    pub media: MediaSettings,
    pub gateway: GatewaySettings,
}

/// The name an agent's messages carry, and the token that proves it.
#[derive(Debug, Clone)]
pub struct Agent {
    pub name: Actor,
    pub token: SecretString,
}

/// Shortest agent token accepted: long enough that guessing one over HTTP
/// is hopeless.
pub const MIN_AGENT_TOKEN_CHARS: usize = 16;
/// Names the server itself writes into transcripts and handoff events.
const RESERVED_AGENT_NAMES: [&str; 4] = ["admin", "customer", "phone", crate::handoff::EXPIRY];

/// `HANDOFF_NOTIFY_URL`: a signed POST for every customer who asks for a
/// person, retried a bounded number of times.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub url: String,
    /// Signs each body (HMAC-SHA256), so the receiver knows it is ours.
    pub secret: SecretString,
    /// How long one attempt waits for the receiver.
    pub attempt_timeout: Duration,
    /// The wait before the first retry; it doubles after each. Not read from
    /// the environment: tests shorten it.
    pub first_retry: Duration,
}

/// What one visitor of the web chat may take, besides everyone's share.
#[derive(Debug, Clone, Copy)]
pub struct WebChatLimits {
    pub conversation_messages_per_minute: u32,
    pub address_messages_per_hour: u32,
    pub address_conversations_per_hour: u32,
    pub max_streams: usize,
    pub streams_per_address: usize,
}

#[derive(Debug, Clone)]
pub struct WhatsAppSettings {
    pub app_secret: Option<SecretString>,
    pub access_token: Option<SecretString>,
    pub phone_number_id: Option<String>,
    pub verify_token: Option<SecretString>,
    pub app_id: Option<String>,
    pub business_account_id: Option<String>,
    pub graph_base: String,
    pub graph_version: String,
    /// `WHATSAPP_AUTH_HEADER`: a Cloud-API-compatible provider (360dialog's
    /// `D360-API-KEY`) takes the access token as-is in this header instead
    /// of `Authorization: Bearer`, and addresses `{graph_base}/messages`
    /// and `{graph_base}/{media id}` without version or number id.
    pub auth_header: Option<reqwest::header::HeaderName>,
    /// `WHATSAPP_WEBHOOK_SECRET`: opens `/webhook/whatsapp/{secret}` for
    /// compatible providers that do not sign what they forward.
    pub webhook_secret: Option<SecretString>,
    /// Who carries the number: the Cloud API unless Fonnte or WAHA is set.
    pub provider: WhatsAppProvider,
    /// How long one send waits for the Graph API. Past it the message may
    /// or may not have gone out (see `OutboxSettings::ambiguous_wait`).
    pub send_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub api_key: Option<SecretString>,
    /// The API base derived from `OPENROUTER_URL` (async-openai appends
    /// `/chat/completions` itself).
    pub api_base: String,
    pub model: String,
    pub fallback_models: Vec<String>,
    pub timeout: Duration,
    pub max_retries: usize,
    pub max_backoff: Duration,
    pub site_url: String,
    pub app_title: String,
    /// `max_tokens` of every request: the longest answer we pay for.
    pub max_tokens: u32,
    /// LLM requests in flight at once in this process; more wait their
    /// turn, one person at a time (see `limits::FairQueue`).
    pub max_concurrent: usize,
    /// Whether the model sees photos (`LLM_VISION`, or a `VISION_MODEL`).
    pub vision: bool,
    /// `VISION_MODEL`: the model for turns with photos, when the main one
    /// cannot see.
    pub vision_model: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct BufferSettings {
    pub quiet: Duration,
    pub max_wait: Duration,
    /// How long a claimed turn stays its owner's without a heartbeat; the
    /// owner renews it every third of this, so it bounds how long a person
    /// waits after their answerer crashed, not how long an answer may take.
    pub turn_lease: Duration,
    /// How long a stopping server waits for answers in flight before
    /// handing their turns back.
    pub shutdown_grace: Duration,
}

/// How the outbox retries what could not be sent.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// How long after it was queued a message is still worth sending;
    /// after that it is `dead`. Inside WhatsApp's 24-hour window by default.
    pub retry_for: Duration,
    /// After a send that got no answer, how long to wait for a status
    /// webhook proving it went out before sending it again.
    pub ambiguous_wait: Duration,
}

#[derive(Debug, Clone)]
pub struct KnowledgeSettings {
    /// Where admins put their documents (searched recursively).
    pub dir: PathBuf,
    /// Where the index, its manifest and the extraction cache live.
    pub index_dir: PathBuf,
    pub top_k: usize,
    /// Upper bound on the passage text put into one prompt, so a long
    /// document cannot crowd out the conversation or blow the model's window.
    pub max_context_chars: usize,
    pub file_timeout: Duration,
    /// A turn whose best passage scores below this (BM25) counts as one
    /// the documents could not answer.
    pub min_score: f32,
    /// Dense retrieval beside BM25; `None` without `EMBEDDINGS_MODEL`.
    pub embeddings: Option<EmbeddingSettings>,
}

#[derive(Debug, Clone)]
pub struct EmbeddingSettings {
    pub model: String,
    /// The full `/embeddings` URL: OpenRouter's unless `EMBEDDINGS_URL`
    /// names another OpenAI-compatible one.
    pub url: String,
    pub api_key: Option<SecretString>,
    /// Per request, at index time and for each question.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// Delete finished conversations once a day.
    pub cleanup: bool,
    /// How old a conversation must be before the daily cleanup deletes it.
    pub cleanup_after_days: u32,
    /// Not read from the environment: about a minute after start, out of
    /// the way of start-up work; tests shorten it.
    pub first_cleanup_after: Duration,
    /// Keep message bodies after the reply is sent (without them the bot
    /// has no memory of earlier turns).
    pub chat_logging: bool,
}

/// What customers send besides text: how much is fetched, kept and read.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// `MEDIA_MAX_BYTES`: larger files are refused, by their stated size
    /// and by the bytes counted while they arrive.
    pub max_bytes: u64,
    /// `MEDIA_DOWNLOAD_TIMEOUT_SECONDS`: one whole download.
    pub download_timeout: Duration,
    /// `MEDIA_ALLOWED_TYPES`: MIME types fetched at all (`image/*` allows
    /// the whole type).
    pub allowed_types: Vec<String>,
    /// `MEDIA_RETENTION_DAYS`: files are deleted this long after they
    /// arrived, even when the conversation is kept; transcripts and
    /// documents' text stay with the conversation.
    pub retention_days: u32,
    /// `MEDIA_PER_TURN_MAX`: files one turn fetches and shows the model.
    pub per_turn_max: usize,
    /// `MEDIA_DOC_MAX_CHARS`: characters of a customer's document that join
    /// the turn.
    pub doc_max_chars: usize,
    /// `IMAGE_MAX_SIDE`: photos are scaled down to this many pixels on
    /// their longer side before the model sees them.
    pub image_max_side: u32,
    /// Where voice notes are transcribed; `None` leaves them unread.
    pub transcribe: Option<TranscribeSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscribeApi {
    /// OpenRouter's `/audio/transcriptions`: JSON with base64 audio.
    OpenRouter,
    /// OpenAI's `/audio/transcriptions` shape (multipart upload), which
    /// self-hosted Whisper servers, Groq and OpenAI itself speak.
    OpenAiCompatible,
}

#[derive(Debug, Clone)]
pub struct TranscribeSettings {
    pub api: TranscribeApi,
    /// The API base; `/audio/transcriptions` is appended.
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    /// `TRANSCRIBE_LANGUAGE`, `id` unless set: a hint that keeps informal
    /// Indonesian from being heard as Malay or English.
    pub language: String,
    pub timeout: Duration,
}

/// What one person can cost, on every channel.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// A person's turns answered by the LLM in the last hour.
    pub turns_per_hour: u32,
    /// Characters of one turn that reach the LLM; the rest is dropped.
    pub turn_chars: usize,
    /// Characters of earlier turns that go into one prompt.
    pub history_chars: usize,
    /// Tokens all replicas may spend since midnight UTC; `None` is no cap.
    pub daily_token_budget: Option<i64>,
}

/// When the bot steps back for a person of the business.
#[derive(Debug, Clone)]
pub struct HandoffSettings {
    /// How long a pause lasts (`HANDOFF_PAUSE_HOURS`); `None` until someone
    /// resumes the bot.
    pub pause_for: Option<Duration>,
    /// When people of the business answer, for the handoff reply.
    pub business_hours: BusinessHours,
    /// Typed at the start of an agent's reply, resumes the bot instead of
    /// being sent.
    pub resume_command: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Settings {
    /// Reads the process environment (after `.env`, whose values never
    /// override real environment variables).
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests can pass a map instead of
    /// mutating the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut reader = Reader { lookup: &lookup, problems: Vec::new() };
        let settings = reader.settings();
        reader.wa_outbox_account(&settings);
        if reader.problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError { problems: reader.problems })
        }
    }

    /// Webhooks anyone who can reach the server could forge, said once at
    /// start-up.
    pub fn unsigned_webhooks(&self) -> Option<&'static str> {
        let unsigned =
            |account: &Account| account.provider == WhatsAppProvider::Waha && account.waha.webhook_hmac_key.is_none();
        self.accounts.iter().any(unsigned).then_some(
            "WAHA_WEBHOOK_HMAC_KEY is not set: events at POST /webhook/waha are taken without checking who sent \
             them; set it and the same key as the session webhook's hmac.key unless only WAHA can reach this server",
        )
    }

    /// Human-readable list of what is not configured and what it unlocks,
    /// for the start-up log. Names settings, never values.
    pub fn missing_credentials(&self) -> Vec<&'static str> {
        let wa = &self.whatsapp;
        let mut missing = Vec::new();
        // Accounts from CHANNELS_FILE were checked when it was read; the
        // environment's account is only there when set up or alone.
        let environment = self.accounts.first().is_some_and(|account| account.name.is_default());
        match wa.provider {
            _ if !environment => {}
            WhatsAppProvider::CloudApi => {
                let compatible = wa.auth_header.is_some();
                if wa.app_secret.is_none() && !(compatible && wa.webhook_secret.is_some()) {
                    missing.push(
                        "META_APP_SECRET: webhook signatures cannot be checked, POST /webhook/whatsapp answers 503",
                    );
                }
                if wa.verify_token.is_none() && !compatible {
                    missing.push("META_WEBHOOK_VERIFY_TOKEN: Meta's webhook verification handshake is refused");
                }
                if wa.access_token.is_none() {
                    missing.push("META_ACCESS_TOKEN: replies cannot be sent to WhatsApp");
                }
                if wa.phone_number_id.is_none() && !compatible {
                    missing.push("META_PHONE_NUMBER_ID: replies cannot be sent to WhatsApp");
                }
            }
            WhatsAppProvider::Fonnte if self.fonnte.webhook_secret.is_none() => {
                missing.push("FONNTE_WEBHOOK_SECRET: POST /webhook/fonnte/{secret} answers 404, nothing comes in")
            }
            // WAHA on a private network may do without a key: advice at
            // start-up (`unsigned_webhooks`), not a reason to be unready.
            WhatsAppProvider::Fonnte | WhatsAppProvider::Waha => {}
        }
        if self.llm.api_key.is_none() {
            missing.push("OPENROUTER_API_KEY: no LLM; answers are passages quoted from your documents");
        }
        missing
    }
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn settings(&mut self) -> Settings {
        let data_dir = PathBuf::from(self.text("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = self
            .text("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("wa-ai-bridge.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            self.problems.push("DATABASE_URL must start with sqlite:, postgres:// or postgresql://".into());
        }
        let quiet = self.seconds("MESSAGE_BUFFER_SECONDS", 15.0);
        let max_wait = self.seconds("MESSAGE_BUFFER_MAX_SECONDS", 60.0);
        if max_wait < quiet {
            self.problems.push("MESSAGE_BUFFER_MAX_SECONDS must not be less than MESSAGE_BUFFER_SECONDS".into());
        }
        let admin_token = self.secret(&["ADMIN_API_TOKEN"]);
        let llm = self.llm();
        let (whatsapp, fonnte, waha) = (self.whatsapp(), self.fonnte(), self.waha());
        Settings {
            port: self.number("PORT", 3000),
            bind_address: self.ip("BIND_ADDRESS", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            knowledge: self.knowledge(&data_dir),
            data_dir,
            database_url,
            prompts_dir: PathBuf::from(self.text("PROMPTS_DIR").unwrap_or_else(|| "prompts".into())),
            accounts: self.accounts(&whatsapp, &fonnte, &waha),
            whatsapp,
            fonnte,
            waha,
            media: self.media(&llm),
            llm,
            buffer: BufferSettings {
                quiet,
                max_wait,
                turn_lease: self.seconds("TURN_LEASE_SECONDS", 30.0),
                shutdown_grace: self.seconds("SHUTDOWN_GRACE_SECONDS", 10.0),
            },
            history_turns: self.number("CONVERSATION_HISTORY_TURNS", 10),
            agents: self.agents(admin_token.as_ref()),
            api_tokens: self.api_tokens(),
            admin_token,
            notify: self.notify(),
            web_chat_enabled: self.flag("WEB_CHAT_ENABLED", true),
            web_chat_messages_per_minute: self.web_chat_rate(),
            web_chat_limits: self.web_chat_limits(),
            web_chat_link_domains: self.link_domains(),
            trusted_proxies: self.trusted_proxies(),
            retention: self.retention(),
            outbox: self.outbox(),
            limits: self.limits(),
            handoff: self.handoff(),
            gateway: self.gateway(),
        }
    }

    /// `ADMIN_AGENTS="Sari:token1,Budi:token2"`. Problems name the agent or
    /// the entry's position, never a token.
    fn agents(&mut self, admin_token: Option<&SecretString>) -> Vec<Agent> {
        use secrecy::ExposeSecret;
        let list = self.text("ADMIN_AGENTS").unwrap_or_default();
        let mut agents: Vec<Agent> = Vec::new();
        for (index, entry) in list.split(',').map(str::trim).enumerate().filter(|(_, e)| !e.is_empty()) {
            let position = index + 1;
            let Some((name, token)) = entry.split_once(':').map(|(n, t)| (n.trim(), t.trim())) else {
                self.problems.push(format!("ADMIN_AGENTS entry {position} must look like Name:token"));
                continue;
            };
            let Ok(actor) = Actor::new(name) else {
                self.problems.push(format!(
                    "ADMIN_AGENTS entry {position} needs a name of 1 to {} characters before ':'",
                    crate::handoff::MAX_ACTOR_CHARS
                ));
                continue;
            };
            if RESERVED_AGENT_NAMES.iter().any(|reserved| name.eq_ignore_ascii_case(reserved)) {
                self.problems.push(format!(
                    "ADMIN_AGENTS: {name:?} is a name the server uses itself ({}); pick another",
                    RESERVED_AGENT_NAMES.join(", ")
                ));
            }
            if token.chars().count() < MIN_AGENT_TOKEN_CHARS {
                self.problems.push(format!(
                    "ADMIN_AGENTS: the token of {name} is shorter than {MIN_AGENT_TOKEN_CHARS} characters"
                ));
            }
            if let Some(twin) = agents.iter().find(|a| a.token.expose_secret() == token) {
                self.problems.push(format!("ADMIN_AGENTS: {} and {name} have the same token", twin.name.as_str()));
            }
            if admin_token.is_some_and(|admin| admin.expose_secret() == token) {
                self.problems.push(format!("ADMIN_AGENTS: the token of {name} is ADMIN_API_TOKEN"));
            }
            agents.push(Agent { name: actor, token: SecretString::from(token) });
        }
        agents
    }

    fn notify(&mut self) -> Option<NotifySettings> {
        let secret = self.secret(&["HANDOFF_NOTIFY_SECRET"]);
        let Some(url) = self.text("HANDOFF_NOTIFY_URL") else {
            if secret.is_some() {
                self.problems.push("HANDOFF_NOTIFY_SECRET is set but HANDOFF_NOTIFY_URL is not".into());
            }
            return None;
        };
        // Not echoed: a receiver's URL often carries its own secret (Slack's
        // incoming webhooks do).
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.problems.push("HANDOFF_NOTIFY_URL must be an http(s) URL".into());
        }
        let Some(secret) = secret else {
            self.problems.push("HANDOFF_NOTIFY_URL needs HANDOFF_NOTIFY_SECRET, which signs every notification".into());
            return None;
        };
        Some(NotifySettings {
            url,
            secret,
            attempt_timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(8),
        })
    }

    fn handoff(&mut self) -> HandoffSettings {
        let raw = self.text("HANDOFF_PAUSE_HOURS");
        let pause_for = match raw.as_deref().map_or(Ok(12.0), str::parse::<f64>) {
            Ok(0.0) => None,
            Ok(hours) if hours.is_finite() && hours > 0.0 && hours <= 24.0 * 365.0 => {
                Some(Duration::from_secs_f64(hours * 3600.0))
            }
            _ => {
                self.problems.push(format!(
                    "HANDOFF_PAUSE_HOURS must be a number of hours from 0 (until resumed) to 8760, got {raw:?}"
                ));
                None
            }
        };
        let business_hours =
            BusinessHours::parse(&self.text("BUSINESS_HOURS").unwrap_or_default()).unwrap_or_else(|problem| {
                self.problems.push(format!("BUSINESS_HOURS {problem}"));
                BusinessHours::default()
            });
        let resume_command = self.text("HANDOFF_RESUME_COMMAND").unwrap_or_else(|| "#bot".into());
        if resume_command.chars().count() > 32 || resume_command.contains(char::is_whitespace) {
            self.problems.push(format!("HANDOFF_RESUME_COMMAND must be one word such as #bot, got {resume_command:?}"));
        }
        HandoffSettings { pause_for, business_hours, resume_command }
    }

    fn limits(&mut self) -> LimitSettings {
        LimitSettings {
            turns_per_hour: self.at_least_one("MAX_TURNS_PER_HOUR", 30),
            turn_chars: self.at_least_one("MAX_TURN_CHARS", 4000),
            history_chars: self.number("CONVERSATION_HISTORY_CHARS", 6000),
            daily_token_budget: self
                .text("LLM_DAILY_TOKEN_BUDGET")
                .map(|_| self.at_least_one("LLM_DAILY_TOKEN_BUDGET", 1)),
        }
    }

    fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(&mut self, key: &str, default: T) -> T {
        let value = self.number(key, default);
        if value < T::from(1) {
            self.problems.push(format!("{key} must be at least 1"));
        }
        value
    }

    fn outbox(&mut self) -> OutboxSettings {
        let raw = self.text("SEND_RETRY_HOURS");
        let hours = raw.as_deref().map_or(Ok(23.0), str::parse::<f64>);
        let retry_for = match hours {
            Ok(hours) if hours.is_finite() && hours > 0.0 && hours <= 24.0 * 30.0 => {
                Duration::from_secs_f64(hours * 3600.0)
            }
            _ => {
                self.problems.push(format!("SEND_RETRY_HOURS must be a number of hours above 0, got {raw:?}"));
                Duration::from_secs(23 * 3600)
            }
        };
        OutboxSettings { retry_for, ambiguous_wait: self.seconds("SEND_AMBIGUOUS_WAIT_SECONDS", 60.0) }
    }

    fn web_chat_rate(&mut self) -> u32 {
        let per_minute = self.number("WEB_CHAT_MESSAGES_PER_MINUTE", 60);
        if per_minute == 0 {
            self.problems.push("WEB_CHAT_MESSAGES_PER_MINUTE must be at least 1".into());
        }
        per_minute
    }

    fn web_chat_limits(&mut self) -> WebChatLimits {
        WebChatLimits {
            conversation_messages_per_minute: self.at_least_one("WEB_CHAT_VISITOR_MESSAGES_PER_MINUTE", 10),
            address_messages_per_hour: self.at_least_one("WEB_CHAT_ADDRESS_MESSAGES_PER_HOUR", 120),
            address_conversations_per_hour: self.at_least_one("WEB_CHAT_CONVERSATIONS_PER_HOUR", 10),
            max_streams: self.at_least_one("WEB_CHAT_MAX_STREAMS", 500),
            streams_per_address: self.at_least_one("WEB_CHAT_STREAMS_PER_ADDRESS", 4),
        }
    }

    fn link_domains(&mut self) -> Vec<String> {
        let list = self.text("WEB_CHAT_LINK_DOMAINS").unwrap_or_default();
        let domains: Vec<String> =
            list.split(',').map(|d| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty()).collect();
        let bad: Vec<&str> = domains
            .iter()
            .filter(|d| {
                !d.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            })
            .map(String::as_str)
            .collect();
        if !bad.is_empty() {
            self.problems
                .push(format!("WEB_CHAT_LINK_DOMAINS must list host names like example.com, got {}", bad.join(", ")));
        }
        domains
    }

    fn trusted_proxies(&mut self) -> TrustedProxies {
        TrustedProxies::parse(&self.text("TRUSTED_PROXIES").unwrap_or_default()).unwrap_or_else(|problem| {
            self.problems.push(problem);
            TrustedProxies::default()
        })
    }

    fn retention(&mut self) -> RetentionSettings {
        let cleanup_after_days = self.number("CLEANUP_OLD_SESSIONS_DAYS", 30);
        if cleanup_after_days == 0 {
            self.problems.push("CLEANUP_OLD_SESSIONS_DAYS must be at least 1".into());
        }
        RetentionSettings {
            cleanup: self.flag("ENABLE_CLEANUP", false),
            cleanup_after_days,
            first_cleanup_after: Duration::from_secs(60),
            chat_logging: self.flag("ENABLE_CHAT_LOGGING", true),
        }
    }

    fn media(&mut self, llm: &LlmSettings) -> MediaSettings {
        let allowed_types = self
            .text("MEDIA_ALLOWED_TYPES")
            .map(|list| list.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect())
            .unwrap_or_else(|| DEFAULT_MEDIA_TYPES.iter().map(|t| (*t).to_owned()).collect());
        let image_max_side = self.number("IMAGE_MAX_SIDE", 1568);
        if !(64..=8192).contains(&image_max_side) {
            self.problems.push(format!("IMAGE_MAX_SIDE must be between 64 and 8192, got {image_max_side}"));
        }
        MediaSettings {
            max_bytes: self.at_least_one("MEDIA_MAX_BYTES", 16 * 1024 * 1024),
            download_timeout: self.seconds("MEDIA_DOWNLOAD_TIMEOUT_SECONDS", 30.0),
            allowed_types,
            retention_days: self.at_least_one("MEDIA_RETENTION_DAYS", 30),
            per_turn_max: self.number("MEDIA_PER_TURN_MAX", 5),
            doc_max_chars: self.at_least_one("MEDIA_DOC_MAX_CHARS", 8000),
            image_max_side,
            transcribe: self.transcribe(llm),
        }
    }

    /// A Whisper-class endpoint of the business's own (`TRANSCRIBE_API_URL`)
    /// wins; otherwise OpenRouter's, with the LLM's key. Neither: voice notes
    /// stay unread.
    fn transcribe(&mut self, llm: &LlmSettings) -> Option<TranscribeSettings> {
        if !self.flag("TRANSCRIBE_ENABLED", true) {
            return None;
        }
        let timeout = self.seconds("TRANSCRIBE_TIMEOUT_SECONDS", 60.0);
        let language = self.text("TRANSCRIBE_LANGUAGE").unwrap_or_else(|| "id".into());
        let model = self.text("TRANSCRIBE_MODEL");
        if self.text("TRANSCRIBE_API_URL").is_some() {
            return Some(TranscribeSettings {
                api: TranscribeApi::OpenAiCompatible,
                base_url: self.url("TRANSCRIBE_API_URL", ""),
                api_key: self.secret(&["TRANSCRIBE_API_KEY"]),
                model: model.unwrap_or_else(|| "whisper-1".into()),
                language,
                timeout,
            });
        }
        Some(TranscribeSettings {
            api: TranscribeApi::OpenRouter,
            base_url: llm.api_base.clone(),
            api_key: Some(llm.api_key.clone()?),
            model: model.unwrap_or_else(|| DEFAULT_TRANSCRIBE_MODEL.into()),
            language,
            timeout,
        })
    }

    fn whatsapp(&mut self) -> WhatsAppSettings {
        let graph_base = self.url("WHATSAPP_GRAPH_BASE", "https://graph.facebook.com");
        let graph_version = self.text("WHATSAPP_GRAPH_VERSION").unwrap_or_else(|| "v23.0".into());
        if !graph_version.starts_with('v') {
            self.problems.push(format!("WHATSAPP_GRAPH_VERSION must look like v23.0, got {graph_version:?}"));
        }
        let auth_header = self.text("WHATSAPP_AUTH_HEADER").and_then(|name| {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .inspect_err(|_| {
                    self.problems.push(format!("WHATSAPP_AUTH_HEADER must be a header name, got {name:?}"))
                })
                .ok()
        });
        let access_token = self.secret(&["META_ACCESS_TOKEN", "WHATSAPP_TOKEN"]);
        let provider =
            self.provider(access_token.is_some(), self.text("FONNTE_TOKEN").is_some(), self.text("WAHA_URL").is_some());
        WhatsAppSettings {
            app_secret: self.secret(&["META_APP_SECRET", "WHATSAPP_APP_SECRET"]),
            access_token,
            auth_header,
            webhook_secret: self.secret(&["WHATSAPP_WEBHOOK_SECRET"]),
            provider,
            phone_number_id: self.first(&["META_PHONE_NUMBER_ID", "WHATSAPP_PHONE_NUMBER_ID"]),
            verify_token: self.secret(&["META_WEBHOOK_VERIFY_TOKEN", "WHATSAPP_VERIFY_TOKEN"]),
            app_id: self.text("META_APP_ID"),
            business_account_id: self.text("META_BUSINESS_ACCOUNT_ID"),
            graph_base,
            graph_version,
            send_timeout: self.seconds("WHATSAPP_SEND_TIMEOUT_SECONDS", 20.0),
        }
    }

    fn llm(&mut self) -> LlmSettings {
        let url = self.url("OPENROUTER_URL", DEFAULT_OPENROUTER_URL);
        let api_base = url.trim_end_matches("/chat/completions").to_owned();
        let fallback_models = self
            .text("OPENROUTER_FALLBACK_MODELS")
            .map(|list| list.split(',').map(str::trim).filter(|m| !m.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        let model = self.text("OPENROUTER_MODEL").unwrap_or_else(|| DEFAULT_MODEL.into());
        let vision_model = self.text("VISION_MODEL");
        LlmSettings {
            api_key: self.secret(&["OPENROUTER_API_KEY"]),
            api_base,
            fallback_models,
            timeout: self.seconds("LLM_TIMEOUT_SECONDS", 30.0),
            max_retries: self.number("LLM_MAX_RETRIES", 2),
            max_backoff: self.seconds("LLM_MAX_BACKOFF_SECONDS", 8.0),
            site_url: self.text("OPENROUTER_SITE_URL").unwrap_or_else(|| "https://github.com/wa-ai-bridge".into()),
            app_title: self.text("OPENROUTER_APP_TITLE").unwrap_or_else(|| "wa-ai-bridge".into()),
            max_tokens: self.at_least_one("LLM_MAX_TOKENS", 1024),
            max_concurrent: self.at_least_one("LLM_MAX_CONCURRENT", 1024),
            vision: vision_model.is_some() || self.flag("LLM_VISION", sees_images(&model)),
            vision_model,
            model,
        }
    }

    fn knowledge(&mut self, data_dir: &std::path::Path) -> KnowledgeSettings {
        let top_k = self.number("KB_TOP_K", 4);
        if top_k == 0 {
            self.problems.push("KB_TOP_K must be at least 1".into());
        }
        KnowledgeSettings {
            dir: PathBuf::from(self.text("KNOWLEDGE_DIR").unwrap_or_else(|| "knowledge".into())),
            index_dir: data_dir.join("knowledge-index"),
            top_k,
            max_context_chars: self.number("KB_MAX_CONTEXT_CHARS", 6000),
            file_timeout: self.seconds("KB_FILE_TIMEOUT_SECONDS", 60.0),
            embeddings: self.embeddings(),
            min_score: self.score("KNOWLEDGE_MIN_SCORE", DEFAULT_MIN_SCORE),
        }
    }

    fn embeddings(&mut self) -> Option<EmbeddingSettings> {
        let model = self.text("EMBEDDINGS_MODEL")?;
        let chat = self.text("OPENROUTER_URL").unwrap_or_else(|| DEFAULT_OPENROUTER_URL.into());
        let beside_chat = format!("{}/embeddings", chat.trim_end_matches('/').trim_end_matches("/chat/completions"));
        Some(EmbeddingSettings {
            model,
            url: self.url("EMBEDDINGS_URL", &beside_chat),
            api_key: self.secret(&["EMBEDDINGS_API_KEY", "OPENROUTER_API_KEY"]),
            timeout: self.seconds("EMBEDDINGS_TIMEOUT_SECONDS", 10.0),
        })
    }

    /// A set, non-blank value; surrounding whitespace is a common `.env` slip.
    fn text(&self, key: &str) -> Option<String> {
        (self.lookup)(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn first(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|key| self.text(key))
    }

    fn secret(&self, keys: &[&str]) -> Option<SecretString> {
        self.first(keys).map(SecretString::from)
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str, default: T) -> T {
        match self.text(key) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.problems.push(format!("{key} must be a whole number, got {raw:?}"));
                default
            }),
        }
    }

    fn ip(&mut self, key: &str, default: IpAddr) -> IpAddr {
        let Some(raw) = self.text(key) else { return default };
        raw.parse().unwrap_or_else(|_| {
            self.problems.push(format!("{key} must be an IP address such as 0.0.0.0, 127.0.0.1 or ::1, got {raw:?}"));
            default
        })
    }

    fn flag(&mut self, key: &str, default: bool) -> bool {
        let Some(raw) = self.text(key) else { return default };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                self.problems.push(format!("{key} must be true, false, 1 or 0, got {raw:?}"));
                default
            }
        }
    }

    fn score(&mut self, key: &str, default: f32) -> f32 {
        let Some(raw) = self.text(key) else { return default };
        match raw.parse::<f32>() {
            Ok(score) if score.is_finite() && score >= 0.0 => score,
            _ => {
                self.problems.push(format!("{key} must be a number of 0 or more, got {raw:?}"));
                default
            }
        }
    }

    fn seconds(&mut self, key: &str, default: f64) -> Duration {
        let raw = self.text(key);
        let value = raw.as_deref().map_or(Ok(default), str::parse::<f64>);
        match value {
            Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 86_400.0 => Duration::from_secs_f64(secs),
            _ => {
                self.problems.push(format!("{key} must be a number of seconds above 0, got {raw:?}"));
                Duration::from_secs_f64(default)
            }
        }
    }

    fn url(&mut self, key: &str, default: &str) -> String {
        let url = self.text(key).unwrap_or_else(|| default.into());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.problems.push(format!("{key} must be an http(s) URL, got {url:?}"));
        }
        url.trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn starts_with_nothing_configured() {
        let settings = read(&[]).unwrap();
        assert_eq!(settings.port, 3000);
        assert_eq!(settings.buffer.quiet, Duration::from_secs(15));
        assert_eq!(settings.buffer.max_wait, Duration::from_secs(60));
        assert_eq!(settings.llm.api_base, "https://openrouter.ai/api/v1");
        assert!(settings.database_url.starts_with("sqlite://"));
        assert_eq!(settings.missing_credentials().len(), 5);
        assert!(settings.web_chat_enabled);
        assert_eq!(settings.buffer.turn_lease, Duration::from_secs(30));
        assert_eq!(settings.outbox.retry_for, Duration::from_secs(23 * 3600));
        assert_eq!(settings.outbox.ambiguous_wait, Duration::from_secs(60));
    }

    #[test]
    fn send_retry_hours_may_be_fractional_but_not_zero() {
        let settings = read(&[("SEND_RETRY_HOURS", "0.5")]).unwrap();
        assert_eq!(settings.outbox.retry_for, Duration::from_secs(1800));
        for bad in ["0", "-1", "a day", "1000"] {
            let err = read(&[("SEND_RETRY_HOURS", bad)]).unwrap_err();
            assert!(err.to_string().contains("SEND_RETRY_HOURS"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_provider_is_the_one_whose_credentials_are_set_and_only_one_may_be() {
        assert_eq!(read(&[]).unwrap().whatsapp.provider, WhatsAppProvider::CloudApi);
        let fonnte = read(&[("FONNTE_TOKEN", "tok"), ("FONNTE_WEBHOOK_SECRET", "s")]).unwrap();
        assert_eq!(fonnte.whatsapp.provider, WhatsAppProvider::Fonnte);
        assert_eq!(fonnte.fonnte.api_url, DEFAULT_FONNTE_API_URL);
        let waha = read(&[("WAHA_URL", "http://localhost:3001/")]).unwrap();
        assert_eq!(waha.whatsapp.provider, WhatsAppProvider::Waha);
        assert_eq!((waha.waha.url.as_deref(), waha.waha.session.as_str()), (Some("http://localhost:3001"), "default"));
        let both = read(&[("META_ACCESS_TOKEN", "a"), ("WAHA_URL", "http://w"), ("FONNTE_ALLOWED_IPS", "1.2.3.4, x")])
            .unwrap_err();
        assert_eq!(both.problems.len(), 2, "{both}");
        assert!(both.problems[0].contains("META_ACCESS_TOKEN, WAHA_URL"), "{both}");
        assert!(both.problems[1].contains("\"x\""), "{both}");
        let bad = read(&[("WHATSAPP_AUTH_HEADER", "not a header"), ("WAHA_SESSION", "../x")]).unwrap_err();
        assert_eq!(bad.problems.len(), 2, "{bad}");
    }

    #[test]
    fn whatsapp_aliases_are_accepted_and_meta_names_win() {
        let settings = read(&[
            ("WHATSAPP_TOKEN", "alias-token"),
            ("WHATSAPP_PHONE_NUMBER_ID", "123"),
            ("META_PHONE_NUMBER_ID", "456"),
        ])
        .unwrap();
        assert_eq!(settings.whatsapp.access_token.unwrap().expose_secret(), "alias-token");
        assert_eq!(settings.whatsapp.phone_number_id.as_deref(), Some("456"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = read(&[
            ("PORT", "eighty"),
            ("MESSAGE_BUFFER_SECONDS", "-1"),
            ("OPENROUTER_URL", "ftp://x"),
            ("DATABASE_URL", "mysql://x"),
            ("WEB_CHAT_ENABLED", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
        assert!(err.to_string().contains("PORT"));
    }

    #[test]
    fn embeddings_are_off_until_a_model_is_named_and_default_to_beside_the_chat_endpoint() {
        assert!(read(&[]).unwrap().knowledge.embeddings.is_none());
        let settings = read(&[
            ("EMBEDDINGS_MODEL", "openai/text-embedding-3-small"),
            ("OPENROUTER_URL", "http://127.0.0.1:9/api/v1/chat/completions"),
            ("OPENROUTER_API_KEY", "sk-or-1"),
        ])
        .unwrap();
        let embeddings = settings.knowledge.embeddings.unwrap();
        assert_eq!(embeddings.url, "http://127.0.0.1:9/api/v1/embeddings");
        assert_eq!(embeddings.api_key.unwrap().expose_secret(), "sk-or-1");
        let other =
            read(&[("EMBEDDINGS_MODEL", "m"), ("EMBEDDINGS_URL", "http://127.0.0.1:8/v1/embeddings/")]).unwrap();
        assert_eq!(other.knowledge.embeddings.unwrap().url, "http://127.0.0.1:8/v1/embeddings");
        let err = read(&[("EMBEDDINGS_MODEL", "m"), ("EMBEDDINGS_URL", "file:///x")]).unwrap_err();
        assert!(err.to_string().contains("EMBEDDINGS_URL"), "{err}");
    }

    #[test]
    fn bind_address_defaults_to_every_interface_and_takes_ipv4_or_ipv6() {
        assert_eq!(read(&[]).unwrap().bind_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        for (raw, expected) in [("127.0.0.1", "127.0.0.1"), (" ::1 ", "::1"), ("::", "::")] {
            assert_eq!(read(&[("BIND_ADDRESS", raw)]).unwrap().bind_address.to_string(), expected, "{raw}");
        }
        for raw in ["localhost", "[::1]", "127.0.0.1:3000", "0.0.0"] {
            let err = read(&[("BIND_ADDRESS", raw), ("PORT", "eighty")]).unwrap_err();
            assert_eq!(err.problems.len(), 2, "{err}");
            assert!(err.to_string().contains("BIND_ADDRESS"), "{err}");
        }
    }

    #[test]
    fn fractional_buffer_seconds_and_fallback_list() {
        let settings =
            read(&[("MESSAGE_BUFFER_SECONDS", "0.5"), ("OPENROUTER_FALLBACK_MODELS", " a/b , c/d ,,")]).unwrap();
        assert_eq!(settings.buffer.quiet, Duration::from_millis(500));
        assert_eq!(settings.llm.fallback_models, vec!["a/b", "c/d"]);
    }

    #[test]
    fn retention_defaults_keep_everything() {
        let retention = read(&[]).unwrap().retention;
        assert!(!retention.cleanup);
        assert_eq!(retention.cleanup_after_days, 30);
        assert!(retention.chat_logging);
    }

    #[test]
    fn retention_flags_accept_true_false_one_and_zero() {
        let retention =
            read(&[("ENABLE_CLEANUP", "TRUE"), ("CLEANUP_OLD_SESSIONS_DAYS", "7"), ("ENABLE_CHAT_LOGGING", "0")])
                .unwrap()
                .retention;
        assert!(retention.cleanup);
        assert_eq!(retention.cleanup_after_days, 7);
        assert!(!retention.chat_logging);
        assert!(read(&[("ENABLE_CLEANUP", "1"), ("ENABLE_CHAT_LOGGING", "false")]).unwrap().retention.cleanup);
    }

    #[test]
    fn bad_retention_values_are_reported_with_the_rest() {
        let err = read(&[
            ("ENABLE_CLEANUP", "yes"),
            ("CLEANUP_OLD_SESSIONS_DAYS", "0"),
            ("ENABLE_CHAT_LOGGING", "off"),
            ("PORT", "eighty"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        for key in ["ENABLE_CLEANUP", "CLEANUP_OLD_SESSIONS_DAYS", "ENABLE_CHAT_LOGGING"] {
            assert!(err.to_string().contains(key), "{key} in {err}");
        }
        for days in ["-3", "1.5", "thirty"] {
            let err = read(&[("CLEANUP_OLD_SESSIONS_DAYS", days)]).unwrap_err();
            assert!(err.to_string().contains("CLEANUP_OLD_SESSIONS_DAYS"), "{err}");
        }
    }

    #[test]
    fn limits_have_defaults_and_zero_is_refused() {
        let settings = read(&[]).unwrap();
        assert_eq!((settings.llm.max_tokens, settings.llm.max_concurrent), (1024, 1024));
        let limits = settings.limits;
        assert_eq!((limits.turns_per_hour, limits.turn_chars, limits.history_chars), (30, 4000, 6000));
        assert_eq!(limits.daily_token_budget, None);
        assert_eq!(read(&[("LLM_DAILY_TOKEN_BUDGET", "50000")]).unwrap().limits.daily_token_budget, Some(50_000));
        let err = read(&[
            ("MAX_TURNS_PER_HOUR", "0"),
            ("MAX_TURN_CHARS", "0"),
            ("LLM_MAX_TOKENS", "0"),
            ("LLM_MAX_CONCURRENT", "0"),
            ("LLM_DAILY_TOKEN_BUDGET", "lots"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
    }

    #[test]
    fn web_chat_visitor_settings_are_checked_with_the_rest() {
        let settings =
            read(&[("WEB_CHAT_LINK_DOMAINS", " Example.com, docs.klinik.id "), ("TRUSTED_PROXIES", "10.0.0.1")])
                .unwrap();
        assert_eq!(settings.web_chat_link_domains, ["example.com", "docs.klinik.id"]);
        assert_eq!(settings.web_chat_limits.conversation_messages_per_minute, 10);
        assert_eq!(settings.web_chat_limits.max_streams, 500);
        let err = read(&[
            ("WEB_CHAT_LINK_DOMAINS", "https://example.com"),
            ("TRUSTED_PROXIES", "10.0.0.1, proxy"),
            ("WEB_CHAT_MAX_STREAMS", "0"),
            ("WEB_CHAT_CONVERSATIONS_PER_HOUR", "many"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        for key in
            ["WEB_CHAT_LINK_DOMAINS", "TRUSTED_PROXIES", "WEB_CHAT_MAX_STREAMS", "WEB_CHAT_CONVERSATIONS_PER_HOUR"]
        {
            assert!(err.to_string().contains(key), "{key} in {err}");
        }
    }

    #[test]
    fn agents_are_named_tokens_and_every_problem_names_no_token() {
        let agents = read(&[("ADMIN_AGENTS", " Sari:sari-token-0123456789 , Budi Santoso : budi-token-0123456789,")])
            .unwrap()
            .agents;
        let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Sari", "Budi Santoso"]);
        assert_eq!(agents[1].token.expose_secret(), "budi-token-0123456789");
        assert!(read(&[]).unwrap().agents.is_empty());

        let err = read(&[
            ("ADMIN_API_TOKEN", "the-admin-token-0123456789"),
            (
                "ADMIN_AGENTS",
                "no-colon-here, :nameless-token-0123456789, Sari:tiny-tok, Budi:same-token-0123456789, \
                 Ani:same-token-0123456789, Phone:phone-token-0123456789, Dewi:the-admin-token-0123456789",
            ),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 6, "{err}");
        let text = err.to_string();
        for expected in
            ["entry 1", "entry 2", "Sari is shorter", "Budi and Ani", "\"Phone\"", "Dewi is ADMIN_API_TOKEN"]
        {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        for token in ["tiny-tok", "same-token", "the-admin-token", "nameless-token"] {
            assert!(!text.contains(token), "{token} leaked into {text}");
        }
    }

    #[test]
    fn notifications_need_a_url_and_a_secret_together() {
        assert!(read(&[]).unwrap().notify.is_none());
        let notify = read(&[
            ("HANDOFF_NOTIFY_URL", "https://hooks.example.com/wa/"),
            ("HANDOFF_NOTIFY_SECRET", "notify-secret-0123456789"),
        ])
        .unwrap()
        .notify
        .unwrap();
        assert_eq!(notify.url, "https://hooks.example.com/wa/", "kept as written");
        assert_eq!(notify.secret.expose_secret(), "notify-secret-0123456789");
        for pairs in [
            &[("HANDOFF_NOTIFY_URL", "https://hooks.example.com/wa")][..],
            &[("HANDOFF_NOTIFY_SECRET", "notify-secret-0123456789")],
            &[("HANDOFF_NOTIFY_URL", "hooks.example.com/T0/secret-path"), ("HANDOFF_NOTIFY_SECRET", "s")],
        ] {
            let err = read(pairs).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
            assert!(!err.to_string().contains("secret-path"), "the URL is not echoed: {err}");
        }
    }

    #[test]
    fn handoff_settings_have_defaults_and_are_checked_with_the_rest() {
        let handoff = read(&[]).unwrap().handoff;
        assert_eq!(handoff.pause_for, Some(Duration::from_secs(12 * 3600)));
        assert!(handoff.business_hours.is_open(0));
        assert_eq!(handoff.resume_command, "#bot");
        let handoff = read(&[
            ("HANDOFF_PAUSE_HOURS", "0.0005"),
            ("BUSINESS_HOURS", "Mon-Fri 08:00-17:00 Asia/Jakarta"),
            ("HANDOFF_RESUME_COMMAND", "/bot"),
        ])
        .unwrap()
        .handoff;
        assert_eq!(handoff.pause_for, Some(Duration::from_millis(1800)));
        assert_eq!(handoff.business_hours.describe(), "Senin–Jumat 08.00–17.00 WIB");
        assert_eq!(handoff.resume_command, "/bot");
        assert_eq!(read(&[("HANDOFF_PAUSE_HOURS", "0")]).unwrap().handoff.pause_for, None);
        let err = read(&[
            ("HANDOFF_PAUSE_HOURS", "-1"),
            ("BUSINESS_HOURS", "Mon-Fri 08:00-17:00 Europe/Berlin"),
            ("HANDOFF_RESUME_COMMAND", "hey bot"),
            ("PORT", "eighty"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        for key in ["HANDOFF_PAUSE_HOURS", "BUSINESS_HOURS", "HANDOFF_RESUME_COMMAND"] {
            assert!(err.to_string().contains(key), "{key} in {err}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings = read(&[
            ("META_APP_SECRET", "s3cr3t-value"),
            ("OPENROUTER_API_KEY", "sk-or-123"),
            ("ADMIN_AGENTS", "Sari:sari-token-0123456789"),
            ("HANDOFF_NOTIFY_URL", "https://hooks.example.com/wa"),
            ("HANDOFF_NOTIFY_SECRET", "notify-secret-0123456789"),
        ])
        .unwrap();
        let debug = format!("{settings:?}");
        for secret in ["s3cr3t-value", "sk-or-123", "sari-token", "notify-secret"] {
            assert!(!debug.contains(secret), "{secret}");
        }
    }

    #[test]
    fn media_defaults_and_where_voice_notes_go() {
        let settings = read(&[]).unwrap();
        let media = &settings.media;
        assert_eq!((media.max_bytes, media.per_turn_max, media.doc_max_chars), (16 * 1024 * 1024, 5, 8000));
        assert_eq!((media.image_max_side, media.retention_days), (1568, 30));
        assert!(media.transcribe.is_none(), "no key, no transcription");
        assert!(settings.llm.vision, "the default model sees images");

        let with_key = read(&[("OPENROUTER_API_KEY", "sk-or-1")]).unwrap().media.transcribe.unwrap();
        assert_eq!((with_key.api, with_key.model.as_str()), (TranscribeApi::OpenRouter, DEFAULT_TRANSCRIBE_MODEL));
        assert_eq!((with_key.base_url.as_str(), with_key.language.as_str()), ("https://openrouter.ai/api/v1", "id"));

        let own = read(&[("OPENROUTER_API_KEY", "sk-or-1"), ("TRANSCRIBE_API_URL", "http://127.0.0.1:8000/v1/")])
            .unwrap()
            .media
            .transcribe
            .unwrap();
        assert_eq!(
            (own.api, own.base_url.as_str(), own.model.as_str()),
            (TranscribeApi::OpenAiCompatible, "http://127.0.0.1:8000/v1", "whisper-1")
        );
        assert!(own.api_key.is_none(), "a local Whisper server needs no key");
        let off = read(&[("OPENROUTER_API_KEY", "sk-or-1"), ("TRANSCRIBE_ENABLED", "false")]).unwrap();
        assert!(off.media.transcribe.is_none());
    }

    #[test]
    fn vision_follows_the_model_unless_told() {
        let text_only = read(&[("OPENROUTER_MODEL", "mistralai/mistral-7b-instruct")]).unwrap().llm;
        assert!(!text_only.vision);
        let told = read(&[("OPENROUTER_MODEL", "mistralai/mistral-7b-instruct"), ("LLM_VISION", "true")]).unwrap().llm;
        assert!(told.vision);
        let separate = read(&[
            ("OPENROUTER_MODEL", "mistralai/mistral-7b-instruct"),
            ("VISION_MODEL", "qwen/qwen2.5-vl-72b-instruct"),
        ])
        .unwrap()
        .llm;
        assert!(separate.vision);
        assert_eq!(separate.vision_model.as_deref(), Some("qwen/qwen2.5-vl-72b-instruct"));
        assert!(!read(&[("LLM_VISION", "false")]).unwrap().llm.vision);
    }

    #[test]
    fn bad_media_values_are_reported_with_the_rest() {
        let err = read(&[
            ("MEDIA_MAX_BYTES", "0"),
            ("IMAGE_MAX_SIDE", "10"),
            ("TRANSCRIBE_API_URL", "ftp://x"),
            ("LLM_VISION", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
    }
}
