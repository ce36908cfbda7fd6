//! Logging through tracing: to stderr and to a daily-rotated file in the data dir.
//! `OPCONNECT_LOG` (or `RUST_LOG`) sets the filter, e.g. `opconnect=debug`.
//!
//! Whatever the filter, libraries that log the bytes they put on the wire are capped at `info`
//! (invariant 7): async-imap's `encode: input` carries `LOGIN "alice" "password"` at trace,
//! lettre's `Wrote:` carries `AUTH PLAIN` at debug. Their events above `info` are dropped before
//! any layer sees them.

use std::path::Path;

use tracing::{Level, Metadata};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::prelude::*;

/// Log targets (crate paths, also of `log` records bridged to tracing) that write protocol
/// traffic, credentials included, at debug or trace.
const WIRE_TARGETS: &[&str] = &["async_imap", "imap_proto", "lettre", "h2"];

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
        .finish()
        .with(no_wire_traffic())
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

/// Drops events of [`WIRE_TARGETS`] above `info`, whatever `OPCONNECT_LOG` asks for.
pub fn no_wire_traffic() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(allowed as fn(&Metadata<'_>) -> bool)
}

fn allowed(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::INFO || !is_wire_target(meta.target())
}

fn is_wire_target(target: &str) -> bool {
    WIRE_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_targets_and_only_they_are_capped() {
        assert!(is_wire_target("async_imap"));
        assert!(is_wire_target("async_imap::imap_stream"));
        assert!(is_wire_target(
            "lettre::transport::smtp::client::async_connection"
        ));
        assert!(!is_wire_target("async_imapx"));
        assert!(!is_wire_target("opconnect_actors::imap"));
    }
}
