//! One tracing set-up: lines on stdout (human-readable, or JSON for container
//! platforms that collect stdout), JSON lines in `LOG_DIR`.
//!
//! The file writer is non-blocking; the returned guard flushes it when dropped, so
//! `serve` keeps it until shutdown has finished.

use tracing_appender::{non_blocking::WorkerGuard, rolling};
use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// How stdout lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact, coloured on a terminal: for people.
    Text,
    /// One JSON object per line: for log collectors reading a container's stdout.
    Json,
}

/// Where log lines go.
pub struct LogTargets<'a> {
    pub level: &'a str,
    pub dir: &'a str,
    /// Daily files kept in `dir`; older ones are deleted at each rotation.
    pub max_files: usize,
    /// Lines on stdout in this format; `None` in tests, where they would interleave.
    pub stdout: Option<LogFormat>,
}

/// Installs the global subscriber. The file rotates daily as `app.log.YYYY-MM-DD`, and
/// only the newest `max_files` are kept, so logs cannot fill the disk they share with
/// uploads and the database.
pub fn init(targets: &LogTargets<'_>) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(targets.dir)?;
    let appender = rolling::Builder::new()
        .rotation(rolling::Rotation::DAILY)
        .filename_prefix("app.log")
        .max_log_files(targets.max_files)
        .build(targets.dir)?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let file = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer);
    let stdout = targets.stdout.map(|format| match format {
        LogFormat::Text => {
            let colours = std::io::IsTerminal::is_terminal(&std::io::stdout());
            fmt::layer().compact().with_ansi(colours).boxed()
        }
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    });
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
