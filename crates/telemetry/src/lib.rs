//! Telemetry for clawveil: the metric names and registry (the contract in
//! `shared/design/METRICS.md`), log setup (JSON lines or pretty), the per-request
//! access event, and the metrics listener (`/metrics`, `/healthz`, `/readyz`).
//!
//! Labels never carry user data: every label value comes from a fixed enum in the code
//! ([`FailReason`], [`ErrorClass`], …) or from the configuration (route names, models).

mod access;
mod jsonline;
mod linebuf;
mod logging;
mod metrics;
mod refusal;
mod server;

pub use access::{AccessEvent, BodyField, ErrorClass};
/// The JSON line format (installed by [`init_logging`]); public for measurements.
pub use jsonline::{rfc3339, JsonLines};
pub use logging::{
    filter_directives, init_logging, json_lines, stdout_is_terminal, LogError, LogGuard,
};
pub use metrics::{method_label, status_class, FailReason, Listener, Metrics};
/// A counter handle, resolved once from a labelled family (its label lookup
/// hashes the values on every call).
pub use prometheus::IntCounter;
pub use refusal::{Refusal, ALLOWED_METHODS};
pub use server::{serve_metrics, MetricsAccess, MetricsTokens, Readiness};
