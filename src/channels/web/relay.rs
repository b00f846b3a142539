//! How a chat event reaches the windows it belongs to. In one process it is
//! handed over directly. With several replicas on PostgreSQL, the replica
//! that answers a turn is often not the one the browser is connected to, so
//! events travel through `NOTIFY` and every replica passes the ones for its
//! own open windows on.

use super::ChatEvent;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::AnyPool;
use std::time::Duration;

const CHANNEL: &str = "wa_web_chat";
/// PostgreSQL refuses notification payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

#[derive(Serialize, Deserialize)]
struct Notice {
    to: String,
    event: ChatEvent,
}

#[derive(Clone)]
pub(super) enum Relay {
    Local,
    Postgres(AnyPool),
}

/// Sends `event` for the window of `to` to every replica; `Err` only when
/// the database refused it (the reply is stored all the same and shows when
/// the window reloads its history).
pub(super) async fn notify(pool: &AnyPool, to: &str, event: ChatEvent) -> Result<(), sqlx::Error> {
    for event in fit(event) {
        let payload = serde_json::to_string(&Notice { to: to.to_owned(), event }).unwrap_or_default();
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(pool).await?;
    }
    Ok(())
}

/// Listens for every replica's events and hands each to `deliver`, for as
/// long as the process runs; reconnects after losing the database. Returns
/// once listening, so no event sent after start-up is missed.
pub(super) async fn listen(database_url: &str, deliver: impl Fn(&str, ChatEvent) + Send + 'static) {
    let url = database_url.to_owned();
    let mut listener = connect(&url).await;
    tokio::spawn(async move {
        loop {
            let Some(active) = listener.as_mut() else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                listener = connect(&url).await;
                continue;
            };
            match active.recv().await {
                Ok(notification) => match serde_json::from_str::<Notice>(notification.payload()) {
                    Ok(notice) => deliver(&notice.to, notice.event),
                    Err(error) => tracing::warn!(%error, "unreadable web chat notification"),
                },
                Err(error) => {
                    tracing::warn!(%error, "web chat notifications interrupted; reconnecting");
                    listener = None;
                }
            }
        }
    });
}

async fn connect(url: &str) -> Option<PgListener> {
    let result = async {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    }
    .await;
    result.inspect_err(|error| tracing::warn!(%error, "cannot listen for web chat notifications")).ok()
}

/// Splits a message too long for one notification into several, each a
/// bubble of its own; other events are small.
fn fit(event: ChatEvent) -> Vec<ChatEvent> {
    let size = serde_json::to_string(&event).map_or(0, |json| json.len());
    match event {
        ChatEvent::Message { id, text, at, turn_id } if size > MAX_PAYLOAD && text.chars().count() > 1 => {
            let middle = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(at, _)| at);
            let cut = text[..middle].rfind(char::is_whitespace).filter(|&at| at > 0).unwrap_or(middle);
            let (first, second) = text.split_at(cut);
            let half = |n: u8, text: &str| ChatEvent::Message {
                id: format!("{id}-{n}"),
                text: text.trim().to_owned(),
                at,
                turn_id: turn_id.clone(),
            };
            let mut parts = fit(half(1, first));
            parts.extend(fit(half(2, second)));
            parts
        }
        event => vec![event],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_split_to_fit_a_notification() {
        let text = "kata ".repeat(1000) + &"é".repeat(3000);
        let event = ChatEvent::Message { id: "m".into(), text: text.clone(), at: 1, turn_id: "t".into() };
        let parts = fit(event);
        assert!(parts.len() >= 2);
        let mut rejoined = Vec::new();
        for part in &parts {
            assert!(serde_json::to_string(part).unwrap().len() <= MAX_PAYLOAD);
            let ChatEvent::Message { text, turn_id, .. } = part else { panic!("a message") };
            assert_eq!(turn_id, "t");
            rejoined.push(text.clone());
        }
        assert_eq!(
            rejoined.join(" ").split_whitespace().collect::<String>(),
            text.split_whitespace().collect::<String>()
        );
        assert_eq!(fit(ChatEvent::Typing), vec![ChatEvent::Typing]);
    }
}
