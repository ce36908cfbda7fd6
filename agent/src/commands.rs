//! The client commands: `status`, `pause`, `resume`, `sync`, `call` and `watch` talk to a running
//! agent over IPC. Exit codes follow INTERFACE §2: 1 failed, 2 usage, 3 agent not running.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use opconnect_ipc::{Client, ClientError};
use serde_json::{Value, json};

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_RUNNING: u8 = 3;

/// A command's failure, carrying its exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn exit(self) -> ExitCode {
        eprintln!("opconnect: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotRunning => Failure {
                code: EXIT_NOT_RUNNING,
                message: "the agent is not running (start it with `opconnect run`)".into(),
            },
            ClientError::Rpc(e) => Failure {
                code: EXIT_FAILED,
                message: e.message,
            },
            other => Failure {
                code: EXIT_FAILED,
                message: other.to_string(),
            },
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One request, one answer.
pub fn call(socket: &Path, method: &str, params: Value) -> Result<Value, Failure> {
    runtime().block_on(async {
        let mut client = Client::connect(socket).await?;
        Ok(client.call(method, params).await?)
    })
}

/// `opconnect call METHOD [PARAMS_JSON]`: prints the result as JSON.
pub fn raw_call(socket: &Path, method: &str, params: Option<&str>) -> Result<(), Failure> {
    let params = match params {
        None => json!({}),
        Some(text) => serde_json::from_str(text).map_err(|e| Failure {
            code: EXIT_USAGE,
            message: format!("PARAMS_JSON is not valid JSON: {e}"),
        })?,
    };
    let result = call(socket, method, params)?;
    println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
    Ok(())
}

/// `pause`, `resume`, `sync` with an optional account.
pub fn control(socket: &Path, method: &str, account: Option<&str>) -> Result<(), Failure> {
    let params = match account {
        Some(a) => json!({"account": a}),
        None => json!({}),
    };
    call(socket, method, params)?;
    Ok(())
}

/// `opconnect status [--json]`.
pub fn status(socket: &Path, as_json: bool) -> Result<(), Failure> {
    let status = call(socket, "status", json!({}))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        print!("{}", render_status(&status));
    }
    Ok(())
}

/// A human-readable status: one line per account, one per service.
pub fn render_status(status: &Value) -> String {
    let mut out = String::new();
    if status["paused"].as_bool() == Some(true) {
        out.push_str("sync is paused for all accounts\n");
    }
    let accounts = status["accounts"].as_array().cloned().unwrap_or_default();
    if accounts.is_empty() {
        out.push_str("no accounts configured\n");
    }
    for account in accounts {
        let s = |k: &str| account[k].as_str().unwrap_or("").to_owned();
        out.push_str(&format!(
            "{:<16} {:<10} pending {:<4} conflicts {:<4}{}\n",
            s("name"),
            s("state"),
            account["pending_ops"],
            account["conflicts"],
            account["last_sync"]
                .as_str()
                .map(|t| format!(" last sync {t}"))
                .unwrap_or_default()
        ));
        if let Some(error) = account["error"].as_str() {
            out.push_str(&format!("  error: {error}\n"));
        }
        if let Some(services) = account["services"].as_object() {
            for (name, service) in services {
                out.push_str(&format!(
                    "  {:<8} {}{}{}\n",
                    name,
                    service["state"].as_str().unwrap_or(""),
                    service["error"]
                        .as_str()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default(),
                    doing(&service["activity"]),
                ));
                if let (Some(message), Some(at)) = (
                    service["last_error"]["message"].as_str(),
                    service["last_error"]["at"].as_str(),
                ) {
                    out.push_str(&format!("           last error {at}: {message}\n"));
                }
            }
        }
    }
    out
}

/// ", syncing messages 4,500 of 20,000 (INBOX)" from a service's `activity`; nothing when idle.
fn doing(activity: &Value) -> String {
    let Ok(activity) = serde_json::from_value::<ActivityView>(activity.clone()) else {
        return String::new();
    };
    let described = opconnect_actors::progress::describe(&opconnect_actors::progress::Activity {
        doing: match activity.doing.as_str() {
            "syncing" => "syncing",
            "replaying" => "replaying",
            "waiting" => "waiting",
            "idle" => "idle",
            _ => return String::new(),
        },
        progress: activity.progress,
        until: activity.until,
    });
    format!(", {described}")
}

#[derive(serde::Deserialize)]
struct ActivityView {
    doing: String,
    #[serde(default)]
    progress: Vec<Value>,
    until: Option<String>,
}

/// `opconnect watch [TOPIC...]`: one JSON line per event until the agent goes away.
pub fn watch(socket: &Path, topics: &[String]) -> Result<(), Failure> {
    runtime().block_on(async {
        let mut client = Client::connect(socket).await?;
        client.subscribe(topics).await?;
        let stdout = std::io::stdout();
        loop {
            let event = match client.next_event().await {
                Ok(event) => event,
                Err(ClientError::Closed) => {
                    return Err(Failure {
                        code: EXIT_FAILED,
                        message: "the agent closed the connection".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let mut out = stdout.lock();
            let line = serde_json::to_string(&event).unwrap_or_default();
            // A closed pipe (`watch | head`) ends the command quietly.
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return Ok(());
            }
        }
    })
}

/// `opconnect conflicts [--json]`: one line per conflict with what each side holds.
pub fn conflicts(socket: &Path, as_json: bool) -> Result<(), Failure> {
    let list = call(socket, "conflicts.list", json!({}))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        return Ok(());
    }
    let items = list.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no conflicts");
    }
    for c in items {
        let side = |v: &Value| if v["deleted"] == true { "deleted" } else { "edited" };
        println!(
            "{:<6} {:<10} {:<9} {}  (yours: {}, server: {}, now in effect: {})",
            c["id"],
            c["account"].as_str().unwrap_or(""),
            c["kind"].as_str().unwrap_or(""),
            c["summary"].as_str().unwrap_or(""),
            side(&c["local"]),
            side(&c["server"]),
            c["server"]["applied"].as_str().unwrap_or("server"),
        );
    }
    Ok(())
}

/// `opconnect conflicts resolve ID --keep server|local|both`.
pub fn resolve(socket: &Path, id: u64, keep: &str) -> Result<(), Failure> {
    call(socket, "conflicts.resolve", json!({"id": id, "keep": keep}))?;
    println!("conflict {id} resolved: keeping {keep}");
    Ok(())
}

/// `opconnect autostart on|off|status`: the start-at-login entry, which runs `opconnect run` with
/// the same global flags.
pub fn autostart(action: &str, flags: &[String]) -> Result<(), Failure> {
    use opconnect_ui::autostart::Autostart;
    let failed = |e: opconnect_ui::autostart::AutostartError| Failure {
        code: EXIT_FAILED,
        message: e.to_string(),
    };
    let entry = Autostart::for_current_exe(flags).map_err(failed)?;
    match action {
        "on" => entry.enable().map_err(failed)?,
        "off" => entry.disable().map_err(failed)?,
        _ => {}
    }
    let on = entry.is_enabled().map_err(failed)?;
    println!("{} ({})", if on { "on" } else { "off" }, Autostart::location());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_renders_each_account_and_service() {
        let text = render_status(&json!({"paused": false, "accounts": [
            {"name": "work", "state": "error", "error": "imap: authentication failed", "pending_ops": 2, "conflicts": 0,
             "services": {"imap": {"state": "error", "error": "authentication failed"}, "caldav": {"state": "online"}}}
        ]}));
        assert!(
            text.contains("work") && text.contains("error") && text.contains("pending 2"),
            "{text}"
        );
        assert!(text.contains("  caldav   online"), "{text}");
        assert!(text.contains("  error: imap: authentication failed"), "{text}");
    }

    #[test]
    fn status_says_what_each_service_is_doing() {
        let text = render_status(&json!({"paused": false, "accounts": [
            {"name": "work", "state": "offline", "pending_ops": 0, "conflicts": 0, "services": {
                "imap": {"state": "online", "activity": {"doing": "syncing", "progress": [
                    {"what": "messages", "done": 4500, "total": 20000, "folder": "INBOX", "eta_s": 12}]}},
                "caldav": {"state": "offline", "error": "refused",
                           "activity": {"doing": "waiting", "until": "2026-12-03T14:00:00Z"},
                           "last_error": {"message": "refused", "at": "2026-12-03T13:59:00Z"}},
                "carddav": {"state": "online", "activity": {"doing": "idle"}}}}
        ]}));
        assert!(
            text.contains("  imap     online, syncing messages 4,500 of 20,000 (INBOX, about 12 s left)"),
            "{text}"
        );
        assert!(
            text.contains("  caldav   offline (refused), waiting to retry until 2026-12-03T14:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains("last error 2026-12-03T13:59:00Z: refused"),
            "{text}"
        );
        assert!(text.contains("  carddav  online, idle\n"), "{text}");
    }
}
