//! The agent inbox (admin or agent token): the list, its live stream for
//! the admin page, and marking a conversation as read.
//!
//! The stream works across replicas without any channel between them: one
//! task per process reads a cheap marker from the database every second
//! (and looks at once when this process stored something an agent would
//! see), reads the inbox again when it moved, and hands the result to every
//! open stream of the process, each of which sends its page only the rows
//! that changed.

use super::admin::Admin;
use super::AppState;
use crate::domain::now_ms;
use crate::handoff::PauseReason;
use crate::store::{InboxCounts, InboxEntry, InboxMarker, Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::stream::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Conversations an inbox lists at most.
const LISTED: i64 = 200;
/// Open inbox streams per process; each holds a connection. Agents are few,
/// so this only stops a runaway page or script.
pub const MAX_STREAMS: usize = 64;
/// How often the marker is read while someone watches.
const POLL: Duration = Duration::from_secs(1);
/// The inbox is read again this often even when the marker stood still:
/// what other replicas change without a new row (delivery statuses, reads)
/// and pauses running out move nothing the marker sees. This process's own
/// changes show at once.
const REFRESH: Duration = Duration::from_secs(15);
/// After reading, changes are gathered this long, so a burst of webhooks
/// costs one read, not one each.
const SETTLE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("too many open inbox streams; retry in a few seconds")]
    Busy,
    #[error("no such conversation")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The inbox as last read, shared by every open stream of the process.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    rows: Vec<(i64, Arc<Value>)>,
    counts: InboxCounts,
}

impl Snapshot {
    fn new(entries: &[InboxEntry], counts: InboxCounts) -> Self {
        Self { rows: entries.iter().map(|entry| (entry.user_id, Arc::new(view(entry)))).collect(), counts }
    }
}

type Latest = Arc<watch::Sender<Option<Arc<Snapshot>>>>;

/// This process's live inbox.
#[derive(Clone)]
pub struct InboxFeed {
    latest: Latest,
    /// A stream opened and wants a fresh snapshot now.
    joined: Arc<Notify>,
    slots: Arc<Semaphore>,
}

impl InboxFeed {
    /// Starts the task that follows the database; it reads nothing while no
    /// stream is open.
    pub fn start(store: Store) -> Self {
        let feed = Self {
            latest: Arc::new(watch::Sender::new(None)),
            joined: Arc::new(Notify::new()),
            slots: Arc::new(Semaphore::new(MAX_STREAMS)),
        };
        tokio::spawn(follow(store, Arc::clone(&feed.latest), Arc::clone(&feed.joined)));
        feed
    }

    /// Inbox streams open in this process.
    pub fn open_streams(&self) -> usize {
        MAX_STREAMS - self.slots.available_permits()
    }
}

async fn follow(store: Store, latest: Latest, joined: Arc<Notify>) {
    let mut local = store.conversation_changes();
    let mut seen: Option<InboxMarker> = None;
    let mut read_at: Option<Instant> = None;
    let mut failing = false;
    loop {
        let prompted = tokio::select! {
            _ = tokio::time::sleep(POLL) => false,
            changed = local.changed() => {
                if changed.is_err() {
                    return;
                }
                true
            }
            _ = joined.notified() => true,
        };
        if latest.receiver_count() == 0 {
            // Nobody watches: nothing is read, and the next stream waits for
            // a fresh snapshot instead of being shown an old one.
            seen = None;
            latest.send_if_modified(|current| current.take().is_some());
            continue;
        }
        let due = prompted || read_at.is_none_or(|at| at.elapsed() >= REFRESH);
        match look(&store, &latest, due, &mut seen).await {
            Ok(true) => read_at = Some(Instant::now()),
            Ok(false) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "the inbox cannot be read; open inboxes show the last one read");
                }
                failing = true;
                continue;
            }
        }
        failing = false;
        tokio::time::sleep(SETTLE).await;
    }
}

/// Reads the inbox if `due` or the marker moved, and publishes it if it
/// differs from the last one. `Ok(true)` when it was read.
async fn look(store: &Store, latest: &Latest, due: bool, seen: &mut Option<InboxMarker>) -> Result<bool, StoreError> {
    // Read before the inbox: whatever lands in between shows in this read
    // and moves the marker once more, which costs one more read, not a miss.
    let marker = store.inbox_marker().await?;
    if !due && *seen == Some(marker) {
        return Ok(false);
    }
    let now = now_ms();
    let snapshot = Snapshot::new(&store.inbox(now, LISTED).await?, store.inbox_counts(now).await?);
    *seen = Some(marker);
    latest.send_if_modified(|current| {
        if current.as_deref() == Some(&snapshot) {
            return false;
        }
        *current = Some(Arc::new(snapshot));
        true
    });
    Ok(true)
}

/// One conversation as the inbox shows it. Numbers are masked; the web
/// chat's label is masked when stored.
fn view(entry: &InboxEntry) -> Value {
    let pause = entry.mode.pause.as_ref();
    json!({
        "id": entry.user_id,
        "person": entry.person.masked(),
        "name": entry.profile_name,
        "channel": entry.person.channel().as_str(),
        "account": entry.account.label(),
        "group": entry.group.as_str(),
        "mode": entry.mode.mode.as_str(),
        "pauseReason": pause.and_then(|p| p.reason).map(PauseReason::as_str),
        "pausedBy": pause.and_then(|p| p.by.as_deref()),
        "pausedAt": pause.and_then(|p| p.at),
        "pausedUntil": pause.and_then(|p| p.until),
        "waitingSince": entry.mode.waiting_since,
        "unread": entry.unread,
        "lastMessage": entry.last.as_ref().map(|last| json!({
            "from": last.from,
            "text": last.preview,
            "at": last.at,
            "status": last.status,
        })),
        "lastActivity": entry.last_activity(),
        "windowOpenUntil": entry.window_open_until,
    })
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

/// `GET /api/admin/inbox?limit=200`: waiting for a person (longest waiting
/// first), then paused, then the rest (most recent activity first).
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Query(limit): Query<Limit>,
) -> Result<Json<Value>, InboxError> {
    let now = now_ms();
    let entries = state.store.inbox(now, limit.limit.unwrap_or(LISTED).clamp(1, LISTED)).await?;
    let counts = state.store.inbox_counts(now).await?;
    Ok(Json(json!({
        "conversations": entries.iter().map(view).collect::<Vec<_>>(),
        "waiting": counts.waiting,
        "paused": counts.paused,
        "serverTime": now,
    })))
}

/// One open stream: what its page was last sent.
struct Follower {
    updates: watch::Receiver<Option<Arc<Snapshot>>>,
    shown: HashMap<i64, Arc<Value>>,
    order: Vec<i64>,
    counts: Option<InboxCounts>,
    stopping: tokio_util::sync::CancellationToken,
    _slot: OwnedSemaphorePermit,
}

impl Follower {
    /// The `inbox` event that brings the page from what it shows to
    /// `snapshot`: the order of every listed conversation and the rows that
    /// changed (all of them the first time). `None` when nothing changed.
    fn catch_up(&mut self, snapshot: &Snapshot) -> Option<Event> {
        let order: Vec<i64> = snapshot.rows.iter().map(|(id, _)| *id).collect();
        let changed: Vec<&Value> = snapshot
            .rows
            .iter()
            .filter(|(id, row)| self.shown.get(id) != Some(row))
            .map(|(_, row)| row.as_ref())
            .collect();
        if changed.is_empty() && order == self.order && self.counts == Some(snapshot.counts) {
            return None;
        }
        let data = json!({
            "order": order,
            "rows": changed,
            "waiting": snapshot.counts.waiting,
            "paused": snapshot.counts.paused,
            "serverTime": now_ms(),
        });
        self.shown = snapshot.rows.iter().cloned().collect();
        self.order = order;
        self.counts = Some(snapshot.counts);
        Some(Event::default().event("inbox").data(data.to_string()))
    }
}

/// `GET /api/admin/inbox/events`: Server-Sent Events, an `inbox` event
/// with the whole list first, then one whenever it changed.
pub async fn events(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, InboxError> {
    let slot = Arc::clone(&state.inbox.slots).try_acquire_owned().map_err(|_| InboxError::Busy)?;
    let follower = Follower {
        updates: state.inbox.latest.subscribe(),
        shown: HashMap::new(),
        order: Vec::new(),
        counts: None,
        stopping: state.stopping.clone(),
        _slot: slot,
    };
    state.inbox.joined.notify_one();
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        loop {
            let snapshot = follower.updates.borrow_and_update().clone();
            if let Some(event) = snapshot.and_then(|snapshot| follower.catch_up(&snapshot)) {
                return Some((Ok(event), follower));
            }
            tokio::select! {
                _ = follower.stopping.cancelled() => return None,
                changed = follower.updates.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    });
    // A first byte at once, so a buffering proxy passes the stream on and
    // the page knows it is connected.
    let connected = futures::stream::once(std::future::ready(Ok(Event::default().comment("connected"))));
    Ok(Sse::new(connected.chain(stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    /// The time of the newest customer message the agent was shown; later
    /// ones stay unread. Now when absent.
    up_to: Option<i64>,
}

/// `POST /api/admin/conversations/{id}/read`: an agent opened it.
pub async fn read(
    _: Admin,
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    body: Option<Json<Seen>>,
) -> Result<Json<Value>, InboxError> {
    let now = now_ms();
    let up_to = body.and_then(|Json(seen)| seen.up_to).map_or(now, |at| at.clamp(0, now));
    if !state.store.mark_seen(user_id, up_to).await? {
        return Err(InboxError::NotFound);
    }
    Ok(Json(json!({ "id": user_id, "seenAt": up_to })))
}
