//! Logging through tracing: to stderr and to a daily-rotated file in the data dir.
//! `OPCONNECT_LOG` (or `RUST_LOG`) sets the filter, e.g. `opconnect=debug`.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Rotated files kept: a week of history is enough for a support request.
const KEEP_FILES: usize = 7;

/// Sets up logging for `opconnect run`; keep the guard alive so the file writer flushes on exit.
pub fn init_agent(log_dir: &Path) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(log_dir)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("opconnect")
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(log_dir)?;
    let (file, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr.and(file))
        .with_ansi(false)
        .init();
    Ok(guard)
}

/// Client commands log warnings and errors to stderr only.
pub fn init_client() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}

fn filter() -> EnvFilter {
    std::env::var("OPCONNECT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(EnvFilter::new)
        .unwrap_or_else(|_| EnvFilter::new("info"))
}
