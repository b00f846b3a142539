//! `/ready`, `/api/whatsapp/status` and `/metrics` read the database and
//! answer anyone.
//! A few run at once; the rest are turned away at once (503, retry in a
//! second) instead of queueing, so a flood of them costs neither the
//! database connections nor the memory that webhooks need.

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Twice the SQLite read connections: enough for every monitor polling
/// at once, few enough that a flood is refused before it queues.
const AT_ONCE: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("too many status requests at once; retry in a second")]
pub struct Overloaded;

/// `routes`, sharing one bound on how many of them run at once.
pub fn bounded<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.route_layer(middleware::from_fn_with_state(Arc::new(Semaphore::new(AT_ONCE)), admit))
}

async fn admit(State(slots): State<Arc<Semaphore>>, request: Request, next: Next) -> Result<Response, Overloaded> {
    let _slot = slots.try_acquire().map_err(|_| Overloaded)?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;
    use tower::ServiceExt;

    #[tokio::test]
    async fn requests_beyond_the_bound_are_refused_at_once_and_admitted_again_later() {
        let (entered, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let (inside, held) = (entered.clone(), release.clone());
        let slow = move || {
            let (inside, held) = (inside.clone(), held.clone());
            async move {
                inside.fetch_add(1, Ordering::SeqCst);
                held.notified().await;
            }
        };
        let app = bounded(Router::new().route("/slow", get(slow)));
        let call = || app.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap());
        let running: Vec<_> = (0..AT_ONCE).map(|_| tokio::spawn(call())).collect();
        while entered.load(Ordering::SeqCst) < AT_ONCE {
            tokio::task::yield_now().await;
        }
        let refused = call().await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["retry-after"], "1");
        release.notify_waiters();
        for request in running {
            assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        release.notify_one();
        assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    }
}
