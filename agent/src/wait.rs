//! `opconnect sync [ACCOUNT] --wait`: asks for a round, then follows it through the agent's
//! `sync.progress`, `synced` and `sync.failed` events until every service of the account(s) has
//! finished it. A terminal gets one progress bar per service (indicatif, on stderr); a pipe gets
//! plain lines; `--json` gets one JSON object per line and nothing else on stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use opconnect_actors::progress;
use opconnect_ipc::{Client, ClientError};
use serde_json::{Value, json};

use crate::commands::{EXIT_FAILED, Failure};

/// How the round is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Bars,
    Lines,
    Json,
}

impl Display {
    pub fn choose(json: bool) -> Display {
        if json {
            Display::Json
        } else if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            Display::Bars
        } else {
            Display::Lines
        }
    }
}

/// How a service's round ended.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Running,
    Synced,
    Failed(String),
}

/// One service the command waits for.
struct Waited {
    outcome: Outcome,
    bar: Option<ProgressBar>,
}

/// The services of the round and how each is shown.
struct Round {
    display: Display,
    bars: Option<MultiProgress>,
    services: BTreeMap<(String, String), Waited>,
}

impl Round {
    fn new(display: Display, keys: Vec<(String, String)>) -> Round {
        let bars = (display == Display::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        // The figures are in the message ("messages 500 of 20,000 (INBOX)"), so a bar whose
        // total is not known yet is drawn empty rather than full.
        let style = ProgressStyle::with_template("{prefix:<20} [{bar:30}] {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
        let services = keys
            .into_iter()
            .map(|key| {
                let bar = bars.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(1).with_style(style.clone()));
                    bar.set_prefix(format!("{} {}", key.0, key.1));
                    bar.set_message("waiting for the round");
                    bar
                });
                (
                    key,
                    Waited {
                        outcome: Outcome::Running,
                        bar,
                    },
                )
            })
            .collect();
        Round {
            display,
            bars,
            services,
        }
    }

    fn finished(&self) -> bool {
        self.services.values().all(|w| w.outcome != Outcome::Running)
    }

    /// Takes in one event; returns whether it concerned the round.
    fn observe(&mut self, topic: &str, data: &serde_json::Map<String, Value>) {
        let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let key = (s("account"), s("service"));
        let Some(waited) = self.services.get_mut(&key) else {
            return;
        };
        if waited.outcome != Outcome::Running {
            return;
        }
        let line = match topic {
            progress::TOPIC => {
                let step = progress::step(&Value::Object(data.clone()));
                if let Some(bar) = &waited.bar {
                    bar.set_length(data.get("total").and_then(Value::as_u64).unwrap_or(0));
                    bar.set_position(data.get("done").and_then(Value::as_u64).unwrap_or(0));
                    bar.set_message(step.clone());
                }
                step
            }
            "synced" => {
                waited.outcome = Outcome::Synced;
                if let Some(bar) = &waited.bar {
                    bar.finish_with_message("synced");
                }
                "synced".to_owned()
            }
            progress::FAILED => {
                let error = s("error");
                waited.outcome = Outcome::Failed(error.clone());
                if let Some(bar) = &waited.bar {
                    bar.abandon_with_message(format!("failed: {error}"));
                }
                format!("failed: {error}")
            }
            _ => return,
        };
        match self.display {
            Display::Bars => {}
            Display::Lines => println!("{} {}: {line}", key.0, key.1),
            Display::Json => {
                let mut event = data.clone();
                event.insert("topic".into(), topic.into());
                println!("{}", Value::Object(event));
            }
        }
        let _ = std::io::stdout().flush();
    }

    /// The end: exit 0 when every service synced, else the failures.
    fn result(&self) -> Result<(), Failure> {
        if let Some(bars) = &self.bars {
            let _ = bars.clear();
        }
        let failed: Vec<String> = self
            .services
            .iter()
            .filter_map(|((account, service), w)| match &w.outcome {
                Outcome::Failed(e) => Some(format!("{account} {service}: {e}")),
                _ => None,
            })
            .collect();
        match self.display {
            Display::Json => println!(
                "{}",
                json!({"topic": "done", "ok": failed.is_empty(), "failed": failed})
            ),
            Display::Lines | Display::Bars => {
                if failed.is_empty() {
                    println!("sync done ({} services)", self.services.len());
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Failure {
                code: EXIT_FAILED,
                message: format!("sync failed: {}", failed.join("; ")),
            })
        }
    }
}

/// The services to wait for: every service of the account(s) named; a paused one is an error
/// (the agent does not sync it until `resume`).
fn services_of(status: &Value, account: Option<&str>) -> Result<Vec<(String, String)>, Failure> {
    let mut keys = Vec::new();
    let failed = |message: String| Failure {
        code: EXIT_FAILED,
        message,
    };
    if status["paused"] == true {
        return Err(failed("sync is paused (opconnect resume)".into()));
    }
    for a in status["accounts"].as_array().into_iter().flatten() {
        let name = a["name"].as_str().unwrap_or("");
        if account.is_some_and(|want| want != name) {
            continue;
        }
        if a["state"] == "paused" {
            return Err(failed(format!(
                "account {name} is paused (opconnect resume {name})"
            )));
        }
        for service in a["services"].as_object().into_iter().flatten().map(|(s, _)| s) {
            keys.push((name.to_owned(), service.clone()));
        }
    }
    Ok(keys)
}

/// Runs `sync {account?}` and waits for the round.
pub fn sync_and_wait(socket: &Path, account: Option<&str>, json_out: bool) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut client = Client::connect(socket).await?;
        let topics: Vec<String> = [progress::TOPIC, progress::FAILED, "synced"]
            .map(str::to_owned)
            .to_vec();
        client.subscribe(&topics).await?;
        let params = account.map_or_else(|| json!({}), |a| json!({"account": a}));
        // An unknown account is refused here, with the agent's message.
        client.call("sync", params).await?;
        let status = client.call("status", json!({})).await?;
        let mut round = Round::new(Display::choose(json_out), services_of(&status, account)?);
        while !round.finished() {
            // A quiet agent is asked now and then whether the account was paused meanwhile.
            match tokio::time::timeout(Duration::from_secs(5), client.next_event()).await {
                Ok(Ok(event)) => round.observe(&event.topic, &event.data),
                Ok(Err(ClientError::Closed)) => {
                    return Err(Failure {
                        code: EXIT_FAILED,
                        message: "the agent closed the connection before the round ended".into(),
                    });
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    let status = client.call("status", json!({})).await?;
                    services_of(&status, account)?;
                }
            }
        }
        round.result()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_round_ends_when_every_service_has_synced_or_failed() {
        let keys = vec![
            ("w".to_owned(), "imap".to_owned()),
            ("w".to_owned(), "caldav".to_owned()),
        ];
        let mut round = Round::new(Display::Lines, keys);
        round.observe(
            "sync.progress",
            &obj(json!({"account": "w", "service": "imap", "what": "messages", "done": 5, "total": 9})),
        );
        round.observe("synced", &obj(json!({"account": "other", "service": "imap"})));
        assert!(!round.finished());
        round.observe("synced", &obj(json!({"account": "w", "service": "imap"})));
        assert!(!round.finished());
        round.observe(
            "sync.failed",
            &obj(json!({"account": "w", "service": "caldav", "error": "refused"})),
        );
        assert!(round.finished());
        let failure = round.result().unwrap_err();
        assert_eq!(failure.message, "sync failed: w caldav: refused");
    }

    #[test]
    fn bars_take_the_same_events() {
        // The style's template is checked when the bars are made (stderr is no terminal here,
        // so nothing is drawn).
        let mut round = Round::new(Display::Bars, vec![("w".to_owned(), "imap".to_owned())]);
        round.observe(
            "sync.progress",
            &obj(json!({"account": "w", "service": "imap", "what": "messages", "done": 5, "total": 9})),
        );
        let bar = round.services.values().next().unwrap().bar.clone().unwrap();
        assert_eq!((bar.position(), bar.length()), (5, Some(9)));
        round.observe("synced", &obj(json!({"account": "w", "service": "imap"})));
        assert!(round.finished() && bar.is_finished());
        assert!(round.result().is_ok());
    }

    #[test]
    fn a_paused_account_is_no_round_to_wait_for() {
        let status = json!({"paused": false, "accounts": [
            {"name": "w", "state": "paused", "services": {"imap": {}}},
            {"name": "x", "state": "online", "services": {"imap": {}, "carddav": {}}}]});
        assert!(services_of(&status, Some("w")).is_err());
        assert_eq!(
            services_of(&status, Some("x")).ok().unwrap(),
            vec![
                ("x".to_owned(), "carddav".to_owned()),
                ("x".to_owned(), "imap".to_owned())
            ]
        );
    }
}
