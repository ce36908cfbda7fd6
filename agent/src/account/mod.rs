//! `opconnect account add | list | remove | test` (INTERFACE §2): set an account up from an email
//! address, check it, and take it away again. These commands work without a running agent.
//!
//! ```text
//!  add:    password ─► discovery (SRV, TXT, guesses; each candidate logged in to) ─► OS store
//!                                                                     └─► config (toml_edit)
//!  test:   config + password source ─► log in to every service, one line each with timing
//!  remove: config entry ─► credential ─► (asked) the account's mirror in the store
//! ```

mod credentials;
mod edit;
mod trust;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use clap::{Args, Subcommand};
use opconnect_actors::discovery::{self, Attempt, Discovery, Login, Options};
use opconnect_actors::formats::discovery::Service;
use opconnect_actors::net::tls::{Fingerprint, Pins, Witness};
use opconnect_actors::store::Store;

use crate::commands::{EXIT_FAILED, EXIT_USAGE, Failure};
use crate::config::{AccountConfig, Config};
use crate::paths::Paths;
use crate::secrets;
use credentials::Password;
use edit::ConfigFile;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Set up an account from its email address; discovery fills in the servers not given.
    Add(Box<AddArgs>),
    /// The configured accounts and their servers.
    List,
    /// Remove an account: its config entry, its stored password and (asked) its local mirror.
    Remove {
        name: String,
        /// Also delete the account's mirror without asking (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Log in to every server of an account; one line per service with result and timing.
    Test { name: String },
}

#[derive(Args)]
pub struct AddArgs {
    /// The account's name on the CLI and over IPC (letters, digits, - _ .).
    name: String,
    #[arg(long)]
    email: String,
    #[arg(long, value_name = "URL")]
    imap: Option<String>,
    #[arg(long, value_name = "URL")]
    smtp: Option<String>,
    #[arg(long, value_name = "URL")]
    caldav: Option<String>,
    #[arg(long, value_name = "URL")]
    carddav: Option<String>,
    #[arg(long, value_name = "URL")]
    sieve: Option<String>,
    /// The login name, if it is not the email address.
    #[arg(long)]
    username: Option<String>,
    /// An extra trust anchor (PEM) for a self-hosted server; written to the config as `tls_ca`.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// Trust the server certificate with this SHA-256 fingerprint (a self-signed one), as shown
    /// by a run without it; written to the config as `tls_pins` for the host that showed it.
    #[arg(long = "trust-fingerprint", value_name = "SHA256")]
    trust_fingerprint: Vec<String>,
    /// A command printing the password; it goes into the config instead of the password.
    #[arg(long, value_name = "CMD", conflicts_with = "password_stdin")]
    password_command: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

pub fn run(paths: &Paths, command: &AccountCommand) -> Result<(), Failure> {
    match command {
        AccountCommand::Add(args) => add(paths, args),
        AccountCommand::List => list(paths),
        AccountCommand::Remove { name, yes } => remove(paths, name, *yes),
        AccountCommand::Test { name } => test(paths, name),
    }
}

fn failed(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_FAILED,
        message: message.into(),
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `account add NAME --email ADDR [URLs] [--username U] [--password-command CMD | --password-stdin]`.
fn add(paths: &Paths, args: &AddArgs) -> Result<(), Failure> {
    let name_ok = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(usage(format!(
            "account name `{}`: use letters, digits, '-', '_' or '.' only",
            args.name
        )));
    }
    if opconnect_actors::formats::discovery::email_domain(&args.email).is_none() {
        return Err(usage(format!("`{}` is not an email address", args.email)));
    }
    let mut file = ConfigFile::open(&paths.config).map_err(|e| failed(format!("{e:#}")))?;
    let config = file.config().map_err(|e| failed(format!("{e:#}")))?;
    if file.has_account(&args.name) {
        return Err(failed(format!(
            "{}: an account named \"{}\" already exists (remove it first with `opconnect account remove {}`)",
            paths.config.display(),
            args.name,
            args.name
        )));
    }
    let given = given_urls(args)?;
    let tls_ca = match &args.tls_ca {
        Some(path) => Some(
            std::fs::canonicalize(path)
                .ok()
                .filter(|p| p.is_file())
                .ok_or_else(|| usage(format!("--tls-ca: {} is not a readable file", path.display())))?,
        ),
        None => None,
    };
    if args.password_command.is_none() {
        secrets::init_credential_store();
        credentials::check_store(&args.name).map_err(failed)?;
    }
    let password = credentials::obtain(
        &args.name,
        &args.email,
        args.password_command.as_deref(),
        args.password_stdin,
    )
    .map_err(failed)?;
    let username = args.username.clone().unwrap_or_else(|| args.email.clone());
    let mut pins = Pins::default();
    for text in &args.trust_fingerprint {
        pins.pin_anywhere(
            text.parse::<Fingerprint>()
                .map_err(|e| usage(format!("--trust-fingerprint: {e}")))?,
        );
    }
    let mut options = Options {
        dns: config.dns,
        timeout: config.settings.connect_timeout.min(discovery::PROBE_TIMEOUT),
        tls_ca: tls_ca.clone(),
        tls_pins: pins,
        witness: Some(Witness::default()),
        login: Some(Login {
            username: username.clone(),
            password: password.secret().clone(),
        }),
    };
    let interactive = std::io::stdin().is_terminal() && !args.password_stdin;
    let found = loop {
        println!("Looking for the servers of {} …", args.email);
        let found = runtime()
            .block_on(discovery::discover(&args.email, &given, &Service::ALL, &options))
            .map_err(|e| failed(e.to_string()))?;
        print_discovery(&found);
        let witness = options.witness.clone().unwrap_or_default();
        let refused = trust::refused(&witness);
        if refused.is_empty() {
            break found;
        }
        // Never trusted silently: each certificate is shown, then asked about or named.
        let mut trusted = false;
        for p in &refused {
            trust::show(p);
            if interactive && trust::ask(p) {
                options.tls_pins.pin(&p.host, p.fingerprint);
                trusted = true;
            }
        }
        if trusted {
            options.witness = Some(Witness::default());
            continue;
        }
        if !found.found.is_empty() && given.keys().all(|s| found.found.contains_key(s)) {
            break found;
        }
        let p = &refused[0];
        return Err(failed(format!(
            "the certificate of {} is not trusted (shown above); if it is the server's, run again with \
             --trust-fingerprint {} (nothing was written)",
            p.host, p.fingerprint
        )));
    };
    // What the user trusted: pins that let a certificate through, and the answers given.
    let mut to_pin = trust::used(&options.witness.clone().unwrap_or_default());
    for (host, list) in options.tls_pins.hosts() {
        let entry = to_pin.entry(host.clone()).or_default();
        for f in list {
            if !entry.contains(f) {
                entry.push(*f);
            }
        }
    }
    let refused = found.auth_failures();
    if !refused.is_empty() {
        let services: Vec<String> = refused.iter().map(|a| a.service.to_string()).collect();
        let hint = found
            .app_password
            .as_deref()
            .map(|h| format!(". {h}"))
            .unwrap_or_default();
        return Err(failed(format!(
            "the password was refused by {} (nothing was written){hint}",
            services.join(", ")
        )));
    }
    if let Some(missing) = given.keys().find(|s| !found.found.contains_key(s)) {
        return Err(failed(format!(
            "the {missing} server given on the command line did not work (nothing was written)"
        )));
    }
    if found.found.is_empty() {
        return Err(failed(format!(
            "no server found for {}; give the URLs with --imap, --caldav, … (nothing was written)",
            args.email
        )));
    }

    let mut fields: Vec<(&str, String)> = vec![("name", args.name.clone()), ("email", args.email.clone())];
    if let Some(u) = &args.username {
        fields.push(("username", u.clone()));
    }
    if let Password::Command { command, .. } = &password {
        fields.push(("password_command", command.clone()));
    }
    for service in Service::ALL {
        if let Some(url) = found.found.get(&service) {
            fields.push((service.key(), url.clone()));
        }
    }
    if let Some(ca) = &tls_ca {
        fields.push(("tls_ca", ca.display().to_string()));
    }
    file.add_account(&fields).map_err(|e| failed(format!("{e:#}")))?;
    if !to_pin.is_empty() {
        let pins: Vec<(String, Vec<String>)> = to_pin
            .iter()
            .map(|(h, fs)| (h.clone(), fs.iter().map(ToString::to_string).collect()))
            .collect();
        for (host, fs) in &pins {
            for f in fs {
                println!("Trusting the certificate of {host} (SHA-256 {f}): tls_pins in the config.");
            }
        }
        file.set_pins(&args.name, &pins)
            .map_err(|e| failed(format!("{e:#}")))?;
    }
    if let Password::Typed(secret) = &password {
        credentials::save(&args.name, secret).map_err(failed)?;
    }
    if let Err(e) = file.save() {
        if matches!(password, Password::Typed(_)) {
            let _ = credentials::delete(&args.name);
        }
        return Err(failed(format!("{e:#}")));
    }
    let kept = match password {
        Password::Command { .. } => "the password command is in the config",
        Password::Typed(_) => "the password is in the OS credential store",
    };
    println!(
        "Added account \"{}\" to {} ({kept}). Restart the agent to start syncing it.",
        args.name,
        paths.config.display()
    );
    Ok(())
}

fn given_urls(args: &AddArgs) -> Result<BTreeMap<Service, String>, Failure> {
    let mut given = BTreeMap::new();
    for (service, url) in [
        (Service::Imap, &args.imap),
        (Service::Smtp, &args.smtp),
        (Service::CalDav, &args.caldav),
        (Service::CardDav, &args.carddav),
        (Service::Sieve, &args.sieve),
    ] {
        if let Some(url) = url {
            opconnect_actors::net::endpoint::parse(discovery::protocol(service), url)
                .map_err(|e| usage(format!("--{service}: {e}")))?;
            given.insert(service, url.clone());
        }
    }
    Ok(given)
}

fn print_discovery(d: &Discovery) {
    for a in &d.tried {
        println!("  {}", attempt_line(a));
    }
    for e in &d.dns_errors {
        println!("  dns: {e}");
    }
    for e in &d.autoconfig {
        println!("  {e}");
    }
    if let Some(p) = &d.provider {
        println!("Provider: {p}");
    }
    println!("Chosen (in {} ms):", d.elapsed_ms);
    for service in Service::ALL {
        match d.found.get(&service) {
            Some(url) => println!("  {:<8} {url}", service.key()),
            None => println!("  {:<8} (none found)", service.key()),
        }
    }
}

fn attempt_line(a: &Attempt) -> String {
    format!(
        "{:<8} {:<4} {:>5} ms  {}  [{}]  {}",
        a.service.key(),
        if a.ok { "ok" } else { "FAIL" },
        a.ms,
        a.url,
        a.source,
        a.detail
    )
}

/// `account list`: straight from the config file, no agent needed.
fn list(paths: &Paths) -> Result<(), Failure> {
    if !paths.config.exists() {
        println!(
            "no accounts configured ({} does not exist)",
            paths.config.display()
        );
        return Ok(());
    }
    let config = Config::load(&paths.config).map_err(|e| failed(e.0))?;
    if config.accounts.is_empty() {
        println!("no accounts configured ({})", paths.config.display());
    }
    for a in &config.accounts {
        let password = if a.password_command.is_some() {
            "password_command"
        } else {
            "OS credential store"
        };
        println!("{:<16} {}  (password: {password})", a.spec.name, a.spec.email);
        for (service, url) in services(a) {
            println!("  {:<8} {url}", service.key());
        }
    }
    Ok(())
}

fn services(a: &AccountConfig) -> Vec<(Service, String)> {
    let s = &a.spec;
    [
        (Service::Imap, &s.imap),
        (Service::Smtp, &s.smtp),
        (Service::CalDav, &s.caldav),
        (Service::CardDav, &s.carddav),
        (Service::Sieve, &s.sieve),
    ]
    .into_iter()
    .filter_map(|(service, e)| e.as_ref().map(|e| (service, e.url.to_string())))
    .collect()
}

/// `account test NAME`: logs in to each configured service; exit 1 if any fails.
fn test(paths: &Paths, name: &str) -> Result<(), Failure> {
    let config = Config::load(&paths.config).map_err(|e| failed(e.0))?;
    let account = config
        .accounts
        .iter()
        .find(|a| a.spec.name == name)
        .ok_or_else(|| {
            failed(format!(
                "no account named \"{name}\" in {}",
                paths.config.display()
            ))
        })?;
    if account.password_command.is_none() {
        secrets::init_credential_store();
    }
    let password = secrets::source_for(account).password().map_err(|e| failed(e.0))?;
    let login = Login {
        username: account.spec.username.clone(),
        password,
    };
    let tls = account.spec.tls().map_err(|e| failed(e.to_string()))?;
    let timeout = config.settings.connect_timeout;
    let began = Instant::now();
    let results = runtime().block_on(futures::future::join_all(services(account).into_iter().map(
        |(service, url)| {
            let (tls, login) = (tls.clone(), &login);
            async move {
                let started = Instant::now();
                let result = match opconnect_actors::net::endpoint::parse(discovery::protocol(service), &url)
                {
                    Ok(ep) => discovery::probe::probe(service, &ep, tls, Some(login), timeout).await,
                    Err(e) => Err(opconnect_actors::ServiceError::Config(e.to_string())),
                };
                (service, url, result, started.elapsed())
            }
        },
    )));
    let mut failures = 0;
    for (service, url, result, elapsed) in &results {
        let (word, detail) = match result {
            Ok(d) => ("ok", d.clone()),
            Err(e) => {
                failures += 1;
                ("FAILED", e.to_string())
            }
        };
        println!(
            "{:<8} {:<6} {:>6} ms  {url}  {detail}",
            service.key(),
            word,
            elapsed.as_millis()
        );
    }
    println!(
        "{} service(s) in {} ms",
        results.len(),
        began.elapsed().as_millis()
    );
    if failures > 0 {
        return Err(failed(format!(
            "{failures} of {} service(s) failed",
            results.len()
        )));
    }
    Ok(())
}

/// `account remove NAME [--yes]`.
fn remove(paths: &Paths, name: &str, yes: bool) -> Result<(), Failure> {
    let mut file = ConfigFile::open(&paths.config).map_err(|e| failed(format!("{e:#}")))?;
    let config = file.config().map_err(|e| failed(format!("{e:#}")))?;
    let account = config
        .accounts
        .iter()
        .find(|a| a.spec.name == name)
        .ok_or_else(|| {
            failed(format!(
                "no account named \"{name}\" in {}",
                paths.config.display()
            ))
        })?;
    let uses_store = account.password_command.is_none();

    // The mirror is in use while the agent runs; ask it to stop first rather than race it.
    let store_dir = paths.data_dir.join("store");
    let mirror = if store_dir.exists() {
        if agent_is_running(paths) {
            return Err(failed(
                "the agent is running and holds this account's mirror; stop it first, then remove the account",
            ));
        }
        let store = Store::open(&paths.data_dir).map_err(|e| failed(e.to_string()))?;
        let records = store.account_records(name).map_err(|e| failed(e.to_string()))?;
        Some((store, records))
    } else {
        None
    };

    // Asked before anything changes, so a "no" leaves nothing half done.
    let delete_mirror = match &mirror {
        Some((_, records)) if records.total() > 0 => {
            yes || confirm(&format!(
                "Delete the local mirror of \"{name}\" ({} messages, {} calendar/contact items, {} pending operations)?",
                records.messages, records.items, records.journal
            ))
        }
        _ => false,
    };
    file.remove_account(name);
    file.save().map_err(|e| failed(format!("{e:#}")))?;
    println!("Removed account \"{name}\" from {}", paths.config.display());
    if uses_store {
        secrets::init_credential_store();
        match credentials::delete(name) {
            Ok(true) => println!("Deleted its password from the OS credential store"),
            Ok(false) => println!("No password of it was in the OS credential store"),
            Err(e) => eprintln!("opconnect: {e}"),
        }
    }
    if let Some((store, records)) = mirror
        && records.total() > 0
    {
        if delete_mirror {
            store.remove_account(name).map_err(|e| failed(e.to_string()))?;
            println!("Deleted its local mirror ({} records)", records.total());
        } else {
            println!(
                "Kept its local mirror ({} records; --yes deletes it)",
                records.total()
            );
        }
    }
    Ok(())
}

/// A yes/no question on the terminal; anything but y/yes (or no terminal) is no.
fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn agent_is_running(paths: &Paths) -> bool {
    crate::commands::call(&paths.socket, "hello", serde_json::json!({})).is_ok()
}
