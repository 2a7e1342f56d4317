//! Logs through `tracing`: human by default, JSON with `--log-format json`. Human logs
//! are coloured only when stderr is a terminal (a pipe or a file gets plain text).

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::LogFormat;
use crate::traces::Export;

/// Installs the global subscriber. Spans (with their correlation ids) are printed with
/// every event inside them; the filter applies to the logs. With `export`, spans at
/// `info` and above also go to OpenTelemetry, whatever the log filter (a service logging
/// only warnings is still traced).
pub fn init(format: LogFormat, filter: &str, export: Option<&Export>) -> Result<(), String> {
    let targets: Targets = filter
        .parse()
        .map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
    let logs = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_span_events(FmtSpan::NONE)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(targets))
        .with(export.map(|e| e.layer().with_filter(LevelFilter::INFO)))
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}
