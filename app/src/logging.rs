//! tracing setup: pretty for people, JSON for log shippers. `POSTERN_LOG`
//! (or `RUST_LOG`) takes an env-filter directive such as `postern=debug`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// html5ever logs a warning per markup error ("foster parenting not
/// implemented"), so one hostile message could write thousands of lines;
/// the bounds in `scan::htmlbound` are what matter, and they are reported.
const DEFAULT_FILTER: &str = "info,html5ever=error";

/// Installs the global subscriber. Safe to call more than once.
pub fn init(format: LogFormat) {
    let filter = std::env::var("POSTERN_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
