//! Wires the stages together and runs the HTTP server.

mod admin_token;
mod banner;

pub use admin_token::AdminAccess;

use crate::api::{router, AppState, InboxFeed};
use crate::campaigns::{Runner, RunnerParts};
use crate::channels::cloud_api::{CloudApi, MediaDownloader};
use crate::channels::fonnte::{Fonnte, FonnteMedia};
use crate::channels::waha::{Waha, WahaError, WahaMedia};
use crate::channels::web::WebChat;
use crate::channels::{Channel, Channels};
use crate::config::{Account, KnowledgeSettings, Settings, WhatsAppProvider};
use crate::contacts::ConsentPhrases;
use crate::domain::now_ms;
use crate::domain::AccountName;
use crate::handoff::notify::Notifier;
use crate::handoff::{HandoffPhrases, Handoffs};
use crate::incidents::{IncidentKind, Incidents};
use crate::knowledge::{KnowledgeBase, KnowledgeError};
use crate::llm::LlmClient;
use crate::media::{MediaFetch, MediaFiles, MediaReader, ReaderParts, Transcriber};
use crate::outbox::{Outbox, OutboxParts};
use crate::pipeline::{Grounding, Parts, Pipeline};
use crate::prompt::Prompts;
use crate::store::{Store, StoreError};
use crate::templates::Templates;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How often a replica looks for work another one left behind, at most:
/// with a short lease it looks every third of it, so a person whose
/// answerer crashed waits at most a lease and a third.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address} (BIND_ADDRESS, PORT): {source}")]
    Bind { address: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    #[error("cannot build an HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("WAHA: {0}")]
    Waha(#[from] WahaError),
    #[error("WhatsApp provider {0} is not available yet")]
    Provider(&'static str),
    #[error("cannot create the media folder {path}: {source}")]
    MediaDir { path: String, source: std::io::Error },
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    admin_access: AdminAccess,
}

impl Application {
    pub async fn build(mut settings: Settings) -> Result<Self, StartupError> {
        let admin_access = admin_token::provide(&mut settings);
        let store = Store::connect(&settings.database_url).await?;
        store.set_accounts_without_window(
            settings.accounts.iter().filter(|a| a.provider != WhatsAppProvider::CloudApi).map(|a| a.name.clone()),
        );
        let (prompts, mut notes) = Prompts::load(&settings.prompts_dir);
        let (phrases, phrases_note) = HandoffPhrases::load(&settings.prompts_dir);
        notes.extend(phrases_note);
        let (consent_phrases, consent_notes) = ConsentPhrases::load(&settings.prompts_dir);
        notes.extend(consent_notes);
        notes.extend(settings.unsigned_webhooks().map(String::from));
        for note in notes {
            tracing::warn!("{note}");
        }
        let knowledge = KnowledgeBase::open(&settings.knowledge)?;
        let account_knowledge = account_knowledge(&settings)?;
        let webchat = WebChat::for_store(&settings, &store).await;
        let incidents = Incidents::default();
        let mut waha = BTreeMap::new();
        for account in settings.accounts.iter().filter(|a| a.provider == WhatsAppProvider::Waha) {
            if let Some(session) = Waha::new(&account.waha)? {
                waha.insert(account.name.clone(), Arc::new(session));
            }
        }
        let whatsapp = settings
            .accounts
            .iter()
            .map(|account| Ok((account.name.clone(), whatsapp_channel(account, &waha)?)))
            .collect::<Result<Vec<_>, StartupError>>()?;
        let channels = Channels::new(whatsapp, Arc::new(webchat.clone()));
        let outbox = Outbox::start(OutboxParts {
            store: store.clone(),
            channels: channels.clone(),
            incidents: incidents.clone(),
            settings: settings.outbox,
            send_timeout: settings.accounts.iter().map(send_timeout).max().unwrap_or(settings.whatsapp.send_timeout),
            chat_logging: settings.retention.chat_logging,
        });
        let grounding = Grounding { retriever: Arc::new(knowledge.clone()), prompts };
        let account_grounding = settings
            .accounts
            .iter()
            .filter_map(|account| own_grounding(account, &grounding, &account_knowledge))
            .collect();
        let media = Arc::new(media_reader(&settings, &store)?);
        let pipeline = Pipeline::start(Parts {
            store: store.clone(),
            channels: channels.clone(),
            incidents: incidents.clone(),
            llm: LlmClient::new(&settings.llm)?,
            grounding,
            account_grounding,
            history_turns: settings.history_turns,
            min_score: settings.knowledge.min_score,
            keep_unanswered: settings.retention.chat_logging,
            buffer: settings.buffer,
            outbox: outbox.clone(),
            media,
            limits: settings.limits,
            consent_phrases,
            handoffs: Handoffs::notifying(
                settings.handoff.clone(),
                phrases,
                Notifier::new(settings.notify.as_ref(), store.clone())?,
            ),
        });
        let address = std::net::SocketAddr::new(settings.bind_address, settings.port);
        let listener = TcpListener::bind(address).await.map_err(|source| StartupError::Bind { address, source })?;
        let inbox = InboxFeed::start(store.clone());
        let templates = Templates::new(store.clone(), &settings);
        let state = AppState {
            settings: Arc::new(settings),
            store,
            channels,
            pipeline,
            outbox,
            knowledge,
            account_knowledge,
            webchat,
            incidents,
            inbox,
            stopping: CancellationToken::new(),
            started: std::time::Instant::now(),
            waha,
            templates,
        };
        Ok(Self { listener, state, admin_access })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// The block printed at start-up: where to go, and what is missing.
    pub fn banner(&self) -> String {
        banner::render(&self.state.settings, self.port(), &self.admin_access)
    }

    /// Serves until `shutdown` resolves, then lets answers in flight finish
    /// and hands the rest back for the next start's recovery.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let pipeline = self.state.pipeline.clone();
        // A short lease is only useful if someone looks for expired ones soon.
        let interval = RECOVERY_INTERVAL.min(self.state.settings.buffer.turn_lease / 3);
        tokio::spawn(async move {
            loop {
                match pipeline.recover().await {
                    Ok(0) => {}
                    Ok(resumed) => tracing::info!(resumed, "resumed conversations from the database"),
                    Err(error) => tracing::error!(%error, "recovery scan failed"),
                }
                tokio::time::sleep(interval).await;
            }
        });
        crate::housekeeping::start_cleanup(
            self.state.store.clone(),
            self.state.settings.retention,
            self.state.pipeline.media().files().clone(),
            self.state.settings.media.retention_days,
        );
        let accounts = self.state.account_knowledge.iter().map(|(_, base)| base.clone());
        let (bases, incidents) = (
            std::iter::once(self.state.knowledge.clone()).chain(accounts).collect::<Vec<_>>(),
            self.state.incidents.clone(),
        );
        // Webhooks are served while this runs; replies wait for it only if
        // there is no earlier index to answer from.
        tokio::spawn(async move {
            for knowledge in bases {
                if let Err(error) = knowledge.refresh_if_stale().await {
                    tracing::error!(%error, "a knowledge index could not be built at start-up");
                    incidents.record(IncidentKind::Knowledge, error.to_string(), now_ms());
                }
            }
        });
        let templates = self.state.templates.clone();
        tokio::spawn(async move { templates.refresh_all().await });
        let outbox = self.state.outbox.clone();
        Runner::new(RunnerParts {
            store: self.state.store.clone(),
            templates: self.state.templates.clone(),
            settings: self.state.settings.gateway.clone(),
            retry_for: self.state.outbox.retry_for(),
            wake: Arc::new(move || outbox.wake()),
        })
        .start(self.state.stopping.clone());
        crate::wa_outbox::start(&self.state);
        let (pipeline, outbox) = (self.state.pipeline.clone(), self.state.outbox.clone());
        let grace = self.state.settings.buffer.shutdown_grace;
        let stopping = self.state.stopping.clone();
        // Open chat windows are endless responses: they are closed first,
        // or the graceful shutdown would wait for them forever.
        let shutdown = async move {
            shutdown.await;
            stopping.cancel();
        };
        // The peer's address is what the web chat's per-visitor limits count.
        let app = router(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await?;
        // Replies queued while answers finish still go out, then the sender
        // stops; what it did not take stays queued for the next process.
        pipeline.shutdown().await;
        outbox.shutdown(grace).await;
        Ok(())
    }
}

/// The provider that carries one account's number.
fn whatsapp_channel(
    account: &Account,
    waha: &BTreeMap<AccountName, Arc<Waha>>,
) -> Result<Arc<dyn Channel>, StartupError> {
    Ok(match account.provider {
        WhatsAppProvider::CloudApi => Arc::new(CloudApi::new(&account.whatsapp)?),
        WhatsAppProvider::Fonnte => Arc::new(Fonnte::new(&account.fonnte)?),
        WhatsAppProvider::Waha => waha.get(&account.name).cloned().ok_or(StartupError::Provider("waha"))?,
    })
}

fn send_timeout(account: &Account) -> Duration {
    match account.provider {
        WhatsAppProvider::CloudApi => account.whatsapp.send_timeout,
        WhatsAppProvider::Fonnte => account.fonnte.send_timeout,
        WhatsAppProvider::Waha => account.waha.send_timeout,
    }
}

/// An index of its own for each account with its own documents, kept
/// beside the default one.
fn account_knowledge(settings: &Settings) -> Result<Vec<(AccountName, KnowledgeBase)>, StartupError> {
    let mut bases = Vec::new();
    for account in &settings.accounts {
        let Some(dir) = &account.knowledge_dir else { continue };
        let own = KnowledgeSettings {
            dir: dir.clone(),
            index_dir: settings.knowledge.index_dir.join(format!("account-{}", account.name.label())),
            ..settings.knowledge.clone()
        };
        bases.push((account.name.clone(), KnowledgeBase::open(&own)?));
    }
    Ok(bases)
}

/// The documents and prompts of an account that has its own; `None` for
/// one that answers like the default account.
fn own_grounding(
    account: &Account,
    default: &Grounding,
    bases: &[(AccountName, KnowledgeBase)],
) -> Option<(AccountName, Grounding)> {
    let base = bases.iter().find(|(name, _)| *name == account.name).map(|(_, base)| base.clone());
    if base.is_none() && account.system_prompt.is_none() {
        return None;
    }
    let mut grounding = default.clone();
    if let Some(base) = base {
        grounding.retriever = Arc::new(base);
    }
    if let Some(path) = &account.system_prompt {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => grounding.prompts.system = text.trim().to_owned(),
            _ => tracing::warn!(
                account = %account.name,
                path = %path.display(),
                "the account's system prompt is unreadable or empty; it uses prompts/system.md"
            ),
        }
    }
    Some((account.name.clone(), grounding))
}

/// Each account's files are downloaded with its own credentials; voice
/// notes are transcribed only where a transcription service is set.
fn media_reader(settings: &Settings, store: &Store) -> Result<MediaReader, StartupError> {
    let dir = settings.data_dir.join("media");
    let files = MediaFiles::open(dir.clone())
        .map_err(|source| StartupError::MediaDir { path: dir.display().to_string(), source })?;
    let mut fetch = HashMap::new();
    for account in &settings.accounts {
        if let Some(fetcher) = media_fetch(account)? {
            fetch.insert(account.name.clone(), fetcher);
        }
    }
    Ok(MediaReader::new(ReaderParts {
        store: store.clone(),
        files,
        fetch,
        transcriber: settings.media.transcribe.clone().map(Transcriber::new).transpose()?,
        settings: settings.media.clone(),
        vision: settings.llm.vision,
    }))
}

fn media_fetch(account: &Account) -> Result<Option<Arc<dyn MediaFetch>>, StartupError> {
    Ok(match account.provider {
        WhatsAppProvider::CloudApi => match account.whatsapp.access_token {
            Some(_) => Some(Arc::new(MediaDownloader::new(&account.whatsapp)?)),
            None => None,
        },
        // Fonnte's attachment URLs are public: no token needed to fetch.
        WhatsAppProvider::Fonnte => Some(Arc::new(FonnteMedia::new(&account.fonnte)?)),
        WhatsAppProvider::Waha => WahaMedia::new(&account.waha)?.map(|waha| Arc::new(waha) as Arc<dyn MediaFetch>),
    })
}
