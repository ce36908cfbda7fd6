//! The status report (INTERFACE §2 `opconnect report`, §4 `report {account}`, §5): probe the
//! account's servers directly (no agent needed), build the feature matrix, and render it as a
//! terminal table, JSON or a self-contained HTML page.
//!
//! ```text
//!   config ─► password (command / credential store) ─► probe::run (concurrent, time-limited)
//!          ─► probe::features ─► Report ─┬─ table::render (colour on a TTY only)
//!                                        ├─ to_json (INTERFACE §5 shape)
//!                                        └─ html::render (no scripts, no external assets)
//! ```

mod html;
mod table;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opconnect_actors::Settings;
use opconnect_actors::probe::{self, Feature, MatrixOptions, Probes};
use opconnect_actors::store::Store;
use opconnect_ipc::RpcError;
use serde_json::{Map, Value, json};

use crate::commands::{EXIT_FAILED, EXIT_USAGE, Failure};
use crate::config::{AccountConfig, Config};
use crate::paths::Paths;
use crate::secrets;

/// A probe may take this long at most, whatever `connect_timeout` says: a report is interactive.
const PROBE_LIMIT: Duration = Duration::from_secs(15);

/// The output formats of `--format`.
pub const FORMATS: [&str; 3] = ["table", "json", "html"];

/// One account's report.
pub struct Report {
    pub account: String,
    pub email: String,
    /// RFC 3339, UTC.
    pub generated: String,
    pub features: Vec<Feature>,
    pub probes: Probes,
    pub elapsed: Duration,
    /// What the mirror knows that a probe cannot (see [`sync_facts`]); `None` without a mirror.
    pub sync: Option<Value>,
    /// The provider recognised and what the user must do (see [`provider_facts`]).
    pub provider: Option<Value>,
    /// A proxy that wants a login or refused one, and what to do (see [`proxy_facts`]).
    pub proxy: Option<Value>,
}

/// Probes `account` and builds its report. Never fails: what could not be learned is in the cells.
pub async fn build(account: &AccountConfig, settings: &Settings) -> Report {
    let started = std::time::Instant::now();
    let source = secrets::source_for(account);
    // A password command or the credential store may block: keep it off the async threads.
    let password = tokio::task::spawn_blocking(move || source.password().map_err(|e| e.0))
        .await
        .unwrap_or_else(|e| Err(format!("reading the password failed: {e}")));
    let limit = settings.connect_timeout.min(PROBE_LIMIT);
    let probes = probe::run(&account.spec, password, limit).await;
    let options = MatrixOptions {
        noop_interval: settings.noop_interval,
        smtp: account.spec.smtp.is_some(),
    };
    Report {
        account: account.spec.name.clone(),
        email: account.spec.email.clone(),
        generated: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        features: probe::features(&probes, &options),
        probes,
        elapsed: started.elapsed(),
        sync: None,
        provider: None,
        proxy: None,
    }
    .with_provider(account)
}

impl Report {
    fn with_provider(mut self, account: &AccountConfig) -> Report {
        self.provider = provider_facts(account, &self.probes);
        self.proxy = proxy_facts(account, &self.probes);
        self
    }
}

/// `{name, action?}`: the provider recognised by the address's domain or the servers' URLs
/// (formats::providers), and, when a server refused the password and the provider wants app
/// passwords, where to make one.
pub fn provider_facts(account: &AccountConfig, probes: &Probes) -> Option<Value> {
    use opconnect_actors::formats::providers;
    let spec = &account.spec;
    let domain = spec.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let provider = providers::by_domain(domain).or_else(|| {
        [&spec.imap, &spec.smtp, &spec.caldav, &spec.carddav, &spec.sieve]
            .into_iter()
            .flatten()
            .find_map(|e| providers::by_url(e.url.as_str()))
    })?;
    let refused = probe_errors(probes)
        .iter()
        .any(|e| e.starts_with("authentication failed"));
    let mut out = json!({"name": provider.name});
    if refused && let Some(hint) = provider.app_password {
        out["action"] = json!(hint);
    }
    Some(out)
}

/// The `error` of each server probe that failed (IMAP, CalDAV, CardDAV, ManageSieve).
fn probe_errors(probes: &Probes) -> Vec<String> {
    [
        serde_json::to_value(&probes.imap),
        serde_json::to_value(&probes.caldav),
        serde_json::to_value(&probes.carddav),
        serde_json::to_value(&probes.sieve),
    ]
    .into_iter()
    .flatten()
    .filter_map(|v| v["error"].as_str().map(str::to_owned))
    .collect()
}

/// `{proxy, action}` when a probe's connection failed at the proxy's login (net/tunnel.rs:
/// a 407, or a SOCKS5 login refused or wanted): which proxy, and what the user must do. The
/// proxy is named by URL and user, never with its password.
pub fn proxy_facts(account: &AccountConfig, probes: &Probes) -> Option<Value> {
    let spec = &account.spec;
    let error = probe_errors(probes)
        .into_iter()
        .find(|e| e.contains("the proxy wants a login") || e.contains("the proxy refused the login"))?;
    let explicit = [&spec.imap, &spec.smtp, &spec.caldav, &spec.carddav, &spec.sieve]
        .into_iter()
        .flatten()
        .find_map(|e| e.proxy.as_ref());
    let (named, where_) = match explicit {
        Some(p) => (p.named(), "the account's `proxy`"),
        None => (
            "the proxy of the *_PROXY variables".to_owned(),
            "the *_PROXY variable",
        ),
    };
    let action = if error.contains("refused the login") || explicit.is_some_and(|p| p.login.is_some()) {
        format!("the proxy {named} refused the login: check the user name and password in {where_}")
    } else {
        format!(
            "the proxy {named} wants a login: give it in {where_} as `http://USER:PASSWORD@host:port` \
             (or `socks5://USER:PASSWORD@host:port`)"
        )
    };
    let named = explicit.map_or_else(|| "*_PROXY".to_owned(), |p| p.named());
    Some(json!({"proxy": named, "action": action}))
}

/// What the mirror of `account` knows that a probe cannot: the collections whose sync-token
/// was caught leaving changes out (README "Sync tokens that lie"), synced by listings since.
pub fn sync_facts(store: &Store, account: &str) -> Value {
    let collections = store
        .dav_collections_of(account, &["calendar", "tasks", "addressbook"])
        .unwrap_or_default();
    let untrusted: Vec<Value> = collections
        .iter()
        .filter_map(|c| {
            let since = c.token_untrusted_since.as_ref()?;
            Some(json!({
                "collection": c.href,
                "name": c.name,
                "since": since,
                "detail": "the server's sync-collection left out changes; synced by ctag and etag listings instead",
            }))
        })
        .collect();
    // Which change marker polls each collection (`dav::marker`, README "Change markers").
    let markers: Vec<Value> = collections
        .iter()
        .filter(|c| !c.directory)
        .map(|c| {
            let marker = opconnect_actors::dav::marker::Marker::of(c);
            json!({"collection": c.href, "name": c.name, "marker": marker.as_str()})
        })
        .collect();
    json!({"untrusted_tokens": untrusted, "markers": markers})
}

/// [`sync_facts`] from the data dir's mirror, when there is one (the agent may be running: the
/// store allows readers beside it).
fn sync_facts_at(paths: &Paths, account: &str) -> Option<Value> {
    if !paths.data_dir.join("store").is_dir() {
        return None;
    }
    let store = Store::open(&paths.data_dir).ok()?;
    Some(sync_facts(&store, account))
}

/// INTERFACE §5: `{account, generated, features: {KEY: {status, via, detail}}, servers}`.
pub fn to_json(r: &Report) -> Value {
    let mut features = Map::new();
    for f in &r.features {
        features.insert(
            f.key.to_owned(),
            json!({"status": f.status.as_str(), "via": f.via, "detail": f.detail}),
        );
    }
    let server = |v: Result<Value, serde_json::Error>| {
        v.unwrap_or_else(|e| json!({"state": "failed", "error": e.to_string()}))
    };
    let mut out = json!({
        "account": r.account,
        "generated": r.generated,
        "features": features,
        "servers": {
            "imap": server(serde_json::to_value(&r.probes.imap)),
            "caldav": server(serde_json::to_value(&r.probes.caldav)),
            "carddav": server(serde_json::to_value(&r.probes.carddav)),
            "sieve": server(serde_json::to_value(&r.probes.sieve)),
        },
        "elapsed_ms": r.elapsed.as_millis() as u64,
    });
    if let Some(sync) = &r.sync {
        out["sync"] = sync.clone();
    }
    if let Some(provider) = &r.provider {
        out["provider"] = provider.clone();
    }
    if let Some(proxy) = &r.proxy {
        out["proxy"] = proxy.clone();
    }
    out
}

/// `opconnect report [ACCOUNT] [--format F] [--output FILE]`; without ACCOUNT, every account.
pub fn command(
    paths: &Paths,
    account: Option<&str>,
    format: &str,
    output: Option<&Path>,
) -> Result<(), Failure> {
    let fail = |message: String| Failure {
        code: EXIT_FAILED,
        message,
    };
    let config = Config::load(&paths.config).map_err(|e| fail(e.0))?;
    let chosen: Vec<&AccountConfig> = match account {
        Some(name) => vec![
            config
                .accounts
                .iter()
                .find(|a| a.spec.name == name)
                .ok_or_else(|| Failure {
                    code: EXIT_USAGE,
                    message: format!("no account named \"{name}\" in {}", paths.config.display()),
                })?,
        ],
        None => config.accounts.iter().collect(),
    };
    if chosen.is_empty() {
        return Err(fail(format!(
            "no accounts configured ({})",
            paths.config.display()
        )));
    }
    if chosen.iter().any(|a| a.password_command.is_none()) {
        secrets::init_credential_store();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(format!("tokio runtime: {e}")))?;
    let settings = &config.settings;
    let mut reports = runtime.block_on(futures::future::join_all(
        chosen.iter().map(|a| build(a, settings)),
    ));
    for r in &mut reports {
        r.sync = sync_facts_at(paths, &r.account);
    }
    let colour =
        output.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = render(&reports, format, colour);
    match output {
        Some(file) => std::fs::write(file, text).map_err(|e| fail(format!("{}: {e}", file.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| fail(format!("stdout: {e}")))
        }
    }
}

/// The reports in `format`; JSON is one object for one account, an array for several.
pub fn render(reports: &[Report], format: &str, colour: bool) -> String {
    match format {
        "json" => {
            let value = match reports {
                [one] => to_json(one),
                many => Value::Array(many.iter().map(to_json).collect()),
            };
            serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
        }
        "html" => html::render(reports),
        _ => reports
            .iter()
            .map(|r| table::render(r, colour))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The accounts the running agent was configured with, for the IPC method.
static ACCOUNTS: OnceLock<(Vec<AccountConfig>, Settings)> = OnceLock::new();

/// Called once by `run` with the loaded configuration.
pub fn register(config: &Config) {
    let _ = ACCOUNTS.set((config.accounts.clone(), config.settings.clone()));
}

/// The HTML page for every configured account, probed concurrently (the tray's "Status report…").
pub async fn html_for_all() -> Result<String, String> {
    let (accounts, settings) = ACCOUNTS
        .get()
        .ok_or("the report is not available before the agent has started")?;
    let reports = futures::future::join_all(accounts.iter().map(|a| build(a, settings))).await;
    Ok(html::render(&reports))
}

/// IPC `report {account}` → the JSON of INTERFACE §5, with the mirror's `sync` facts.
pub async fn ipc(params: &Value, store: &Store) -> Result<Value, RpcError> {
    let name = crate::api::required_string(params, "account")?;
    let (accounts, settings) = ACCOUNTS
        .get()
        .ok_or_else(|| RpcError::internal("the report is not available before the agent has started"))?;
    let account = accounts
        .iter()
        .find(|a| a.spec.name == name)
        .ok_or_else(|| RpcError::unknown_account(&name))?
        .clone();
    let settings = settings.clone();
    // Its own task, so that a slow probe never holds up the IPC connection's other calls.
    let mut report = tokio::spawn(async move { build(&account, &settings).await })
        .await
        .map_err(|e| RpcError::internal(format!("report stopped: {e}")))?;
    report.sync = Some(sync_facts(store, &name));
    Ok(to_json(&report))
}

#[cfg(test)]
pub(crate) mod tests;
