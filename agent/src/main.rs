//! `opconnect`: the agent (`run`) and the commands that talk to it (INTERFACE §2).

mod account;
mod api;
mod commands;
mod config;
mod desktop;
mod logging;
mod paths;
mod report;
mod run;
mod secrets;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::Failure;
use crate::paths::Paths;

#[derive(Parser)]
#[command(
    name = "opconnect",
    version,
    about = "Connects Outlook to mail and groupware servers over open protocols"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "OPCONNECT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory: store, journal and logs.
    #[arg(long, global = true, env = "OPCONNECT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// IPC endpoint (Unix socket path or Windows pipe name).
    #[arg(long, global = true, env = "OPCONNECT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the agent.
    Run {
        /// No tray icon; for servers, services and tests.
        #[arg(long)]
        headless: bool,
    },
    /// Accounts, their state, pending operations and conflicts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop all network activity (of one account, or all).
    Pause { account: Option<String> },
    /// Resume after a pause.
    Resume { account: Option<String> },
    /// Sync now, and retry failed connections at once.
    Sync {
        account: Option<String>,
        /// Wait for the round to finish, showing its progress; exit 1 if a service failed.
        #[arg(long)]
        wait: bool,
        /// With --wait: one JSON object per line on stdout (progress, then the outcome).
        #[arg(long, requires = "wait")]
        json: bool,
    },
    /// Send one raw IPC request and print the JSON result.
    Call {
        method: String,
        #[arg(value_name = "PARAMS_JSON")]
        params: Option<String>,
    },
    /// Print each event as one JSON line.
    Watch { topics: Vec<String> },
    /// Unresolved conflicts; `conflicts resolve ID --keep server|local|both`.
    Conflicts {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<ConflictsAction>,
    },
    /// Probe the servers and print what they support (works without the agent).
    Report {
        account: Option<String>,
        #[arg(long, default_value = "table", value_parser = report::FORMATS)]
        format: String,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add, list, test and remove accounts (works without the agent).
    Account {
        #[command(subcommand)]
        command: account::AccountCommand,
    },
    /// Start the agent at login: on, off, or status (works without the agent).
    Autostart {
        #[arg(value_parser = ["on", "off", "status"])]
        action: String,
    },
}

#[derive(Subcommand)]
enum ConflictsAction {
    /// Keep the server's version, yours, or both (yours as a copy under a new UID).
    Resolve {
        id: u64,
        #[arg(long, value_parser = ["server", "local", "both"])]
        keep: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = global_flags(&cli);
    let paths = Paths::resolve(cli.config, cli.data_dir, cli.socket);
    // One rustls crypto provider for the whole process (reqwest, IMAP, SMTP share it).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let result = match &cli.command {
        Command::Run { headless } => run::run(&paths, *headless, flags).map_err(|e| Failure {
            code: commands::EXIT_FAILED,
            message: format!("{e:#}"),
        }),
        Command::Autostart { action } => {
            logging::init_client();
            commands::autostart(action, &flags)
        }
        Command::Account { command } => {
            logging::init_client();
            account::run(&paths, command)
        }
        Command::Report {
            account,
            format,
            output,
        } => {
            logging::init_client();
            report::command(&paths, account.as_deref(), format, output.as_deref())
        }
        other => {
            logging::init_client();
            client_command(&paths, other)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

/// The locations given by flag or environment, as flags for `run` (the start-at-login entry must
/// start the same agent). Relative paths are made absolute: autostart runs from another directory.
fn global_flags(cli: &Cli) -> Vec<String> {
    let mut flags = Vec::new();
    for (flag, value) in [
        ("--config", &cli.config),
        ("--data-dir", &cli.data_dir),
        ("--socket", &cli.socket),
    ] {
        if let Some(path) = value {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            flags.push(flag.to_owned());
            flags.push(path.display().to_string());
        }
    }
    flags
}

fn client_command(paths: &Paths, command: &Command) -> Result<(), Failure> {
    let socket = &paths.socket;
    match command {
        Command::Status { json } => commands::status(socket, *json),
        Command::Pause { account } => commands::control(socket, "pause", account.as_deref()),
        Command::Resume { account } => commands::control(socket, "resume", account.as_deref()),
        Command::Sync {
            account, wait: false, ..
        } => commands::control(socket, "sync", account.as_deref()),
        Command::Sync { account, json, .. } => wait::sync_and_wait(socket, account.as_deref(), *json),
        Command::Call { method, params } => commands::raw_call(socket, method, params.as_deref()),
        Command::Watch { topics } => commands::watch(socket, topics),
        Command::Conflicts { json, action: None } => commands::conflicts(socket, *json),
        Command::Conflicts {
            action: Some(ConflictsAction::Resolve { id, keep }),
            ..
        } => commands::resolve(socket, *id, keep),
        Command::Run { .. }
        | Command::Account { .. }
        | Command::Report { .. }
        | Command::Autostart { .. } => {
            unreachable!("handled in main")
        }
    }
}
