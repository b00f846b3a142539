//! Logs and metrics. Logs are human-readable by default, JSON with
//! `LOG_FORMAT=json`; metrics are exposed in Prometheus text format.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Logs to stdout; `RUST_LOG` overrides `default_filter`.
pub fn init_logs(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colour codes only help a person at a terminal; in files and log
    // collectors they are noise.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(colour);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The process-wide metrics recorder, installed on first use (several
/// servers in one test process share it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )
            .and_then(|builder| {
                // A search takes about a millisecond; the general buckets would
                // put every one in the first.
                builder.set_buckets_for_metric(
                    Matcher::Full("wa_knowledge_retrieval_seconds".into()),
                    &[0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25],
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then our
        // handle renders nothing, which is visible on /metrics.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
