//! One tracing set-up: human-readable lines on stdout, JSON lines in `LOG_DIR`.
//!
//! The file writer is non-blocking; the returned guard flushes it when dropped, so
//! `serve` keeps it until shutdown has finished.

use tracing_appender::{non_blocking::WorkerGuard, rolling};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Where log lines go.
pub struct LogTargets<'a> {
    pub level: &'a str,
    pub dir: &'a str,
    /// Human-readable lines on stdout (off in tests, where they would interleave).
    pub stdout: bool,
}

/// Installs the global subscriber. The file rotates daily as `app.log.YYYY-MM-DD`.
pub fn init(targets: &LogTargets<'_>) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(targets.dir)?;
    let appender = rolling::Builder::new()
        .rotation(rolling::Rotation::DAILY)
        .filename_prefix("app.log")
        .build(targets.dir)?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let file = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer);
    let colours = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let stdout = targets
        .stdout
        .then(|| fmt::layer().compact().with_ansi(colours));
    tracing_subscriber::registry()
        .with(EnvFilter::try_new(targets.level)?)
        .with(file)
        .with(stdout)
        .try_init()?;
    // Panics (a handler's, a background task's) reach the JSON log too, with the span
    // that was current (request id included), not only the terminal.
    let terminal = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
        terminal(info);
    }));
    Ok(guard)
}
