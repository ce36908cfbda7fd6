//! Out-of-office over a ManageSieve session: read our script back, or write it and switch the
//! active script, without ever touching the user's own scripts.
//!
//! ```text
//!  enable:   user's active "roundcube" ─► PUTSCRIPT "opconnect" (vacation + include "roundcube")
//!                                          SETACTIVE "opconnect"
//!  disable:  PUTSCRIPT "opconnect" (settings kept, no vacation) ─► SETACTIVE "roundcube" (or "")
//! ```
//!
//! The user's script is only ever included (RFC 6609 §3.2), so their rules run byte for byte as
//! they wrote them; switching back on disable leaves the account as it was before opconnect.

use chrono::{DateTime, Utc};

use super::client::SieveClient;
use super::script::{self, OurScript, SCRIPT_NAME, Vacation};
use crate::error::ServiceError;

/// What `ooo.set` asks for; `None` subject or body keeps the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub enabled: bool,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Where things stand on the server before a change.
struct Current {
    /// Our script's settings, if we wrote one.
    ours: Option<OurScript>,
    /// The active script's name, if any.
    active: Option<String>,
}

async fn current(client: &mut SieveClient) -> Result<Current, ServiceError> {
    require(client, "vacation")?;
    let scripts = client.list_scripts().await?;
    let active = scripts.iter().find(|s| s.active).map(|s| s.name.clone());
    let ours = if scripts.iter().any(|s| s.name == SCRIPT_NAME) {
        let text = client.get_script(SCRIPT_NAME).await?;
        if !script::is_ours(&text) {
            return Err(ServiceError::Config(format!(
                "the server holds a Sieve script named \"{SCRIPT_NAME}\" that opconnect did not write; \
                 rename it so opconnect can manage out-of-office"
            )));
        }
        // A damaged state line loses only our settings, never a rule of the user.
        Some(script::read(&text).unwrap_or_default())
    } else {
        None
    };
    Ok(Current { ours, active })
}

/// `ooo.get`: our settings; enabled only while our script is the active one.
pub async fn get(client: &mut SieveClient) -> Result<Vacation, ServiceError> {
    let now = current(client).await?;
    let mut vacation = now.ours.map(|o| o.vacation).unwrap_or_default();
    vacation.enabled &= now.active.as_deref() == Some(SCRIPT_NAME);
    Ok(vacation)
}

/// `ooo.set`: writes our script and activates it (enable) or re-activates the user's (disable).
/// `addresses` are the account's own addresses for `:addresses` (RFC 5230 §4.5).
pub async fn set(client: &mut SieveClient, change: Change, addresses: &[String]) -> Result<(), ServiceError> {
    if change.enabled && (change.start.is_some() || change.end.is_some()) {
        require(client, "date")?;
        require(client, "relational")?;
    }
    if let (Some(start), Some(end)) = (change.start, change.end)
        && end < start
    {
        return Err(ServiceError::Config(
            "the out-of-office end is before its start".into(),
        ));
    }
    let now = current(client).await?;
    let previous = now.ours.clone().unwrap_or_default();
    // The user's own script: the one active now, or the one ours already includes.
    let original = match now.active.as_deref() {
        Some(SCRIPT_NAME) => previous.include.clone(),
        other => other.map(str::to_owned),
    };
    let has_include = client.capabilities.has_extension("include");
    if change.enabled && original.is_some() && !has_include {
        return Err(ServiceError::Unsupported(format!(
            "the server's Sieve has no `include` (RFC 6609), so out-of-office would stop your active script \"{}\" from running",
            original.as_deref().unwrap_or_default()
        )));
    }
    let ours = OurScript {
        vacation: Vacation {
            enabled: change.enabled,
            subject: change.subject.unwrap_or(previous.vacation.subject),
            body: change.body.unwrap_or(previous.vacation.body),
            start: change.start,
            end: change.end,
        },
        include: original.clone().filter(|_| has_include),
    };
    client
        .put_script(SCRIPT_NAME, &script::render(&ours, addresses))
        .await?;
    if change.enabled {
        if now.active.as_deref() != Some(SCRIPT_NAME) {
            client.set_active(SCRIPT_NAME).await?;
        }
    } else if now.active.as_deref() == Some(SCRIPT_NAME) {
        // Back to how the account was before opconnect: the user's script, or none.
        client.set_active(original.as_deref().unwrap_or("")).await?;
    }
    Ok(())
}

/// A Sieve extension the server must have, else `Unsupported` (code 2 on the IPC).
fn require(client: &SieveClient, extension: &str) -> Result<(), ServiceError> {
    if client.capabilities.has_extension(extension) {
        Ok(())
    } else {
        Err(ServiceError::Unsupported(format!(
            "the server's Sieve has no `{extension}` extension"
        )))
    }
}

#[cfg(test)]
mod tests {
    //! Against a scripted ManageSieve server on 127.0.0.1:0 that keeps scripts in memory.
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;
    use crate::account::Secret;
    use crate::net::endpoint::{Protocol, parse};

    #[derive(Default)]
    struct Server {
        scripts: BTreeMap<String, String>,
        active: Option<String>,
    }

    type Shared = Arc<Mutex<Server>>;

    /// Serves one connection; `sieve` is the SIEVE capability, the password is `pw`.
    async fn serve(sieve: &'static str, state: Shared) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("sieve://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (r, mut w) = tcp.into_split();
            let mut r = BufReader::new(r);
            let caps = format!(
                "\"IMPLEMENTATION\" \"fake\"\r\n\"SIEVE\" \"{sieve}\"\r\n\"SASL\" \"PLAIN\"\r\nOK \"hi\"\r\n"
            );
            w.write_all(caps.as_bytes()).await.unwrap();
            let mut line = String::new();
            while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                let name = line.split('"').nth(1).unwrap_or_default().to_owned();
                let answer = match line.split(' ').next().unwrap_or_default().trim() {
                    "AUTHENTICATE" if line.contains("AGFsaWNlAHB3") => "OK\r\n".to_owned(),
                    "AUTHENTICATE" => "NO \"Authentication failed.\"\r\n".to_owned(),
                    "LISTSCRIPTS" => {
                        let s = state.lock().unwrap();
                        let mut out = String::new();
                        for n in s.scripts.keys() {
                            let tag = if s.active.as_ref() == Some(n) {
                                " ACTIVE"
                            } else {
                                ""
                            };
                            out.push_str(&format!("\"{n}\"{tag}\r\n"));
                        }
                        out + "OK\r\n"
                    }
                    "GETSCRIPT" => match state.lock().unwrap().scripts.get(&name) {
                        Some(text) => format!("{{{}}}\r\n{text}\r\nOK\r\n", text.len()),
                        None => "NO (NONEXISTENT) \"no such script\"\r\n".to_owned(),
                    },
                    "PUTSCRIPT" => {
                        let size: usize = line
                            .split('{')
                            .nth(1)
                            .unwrap()
                            .split('+')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let mut body = vec![0; size + 2];
                        r.read_exact(&mut body).await.unwrap();
                        body.truncate(size);
                        let text = String::from_utf8(body).unwrap();
                        state.lock().unwrap().scripts.insert(name, text);
                        "OK\r\n".to_owned()
                    }
                    "SETACTIVE" => {
                        state.lock().unwrap().active = Some(name).filter(|n| !n.is_empty());
                        "OK\r\n".to_owned()
                    }
                    _ => "OK \"bye\"\r\n".to_owned(),
                };
                w.write_all(answer.as_bytes()).await.unwrap();
                line.clear();
            }
        });
        url
    }

    async fn client(url: &str, password: &str) -> Result<SieveClient, ServiceError> {
        let endpoint = parse(Protocol::Sieve, url).unwrap();
        let tls = crate::net::tls::client_config(None).unwrap();
        SieveClient::connect(
            &endpoint,
            tls,
            "alice",
            &Secret::new(password),
            std::time::Duration::from_secs(5),
        )
        .await
    }

    fn with_user_script() -> Shared {
        let mut s = Server::default();
        s.scripts.insert(
            "mine".into(),
            "require \"fileinto\";\r\nfileinto \"X\";\r\n".into(),
        );
        s.active = Some("mine".into());
        Arc::new(Mutex::new(s))
    }

    #[tokio::test]
    async fn enable_includes_the_users_script_and_disable_restores_it() {
        let state = with_user_script();
        for enabled in [true, true, false] {
            let url = serve("fileinto vacation include date relational", state.clone()).await;
            let mut c = client(&url, "pw").await.unwrap();
            let change = Change {
                enabled,
                subject: enabled.then(|| "Away".to_owned()),
                body: enabled.then(|| "Gone.".to_owned()),
                ..Change::default()
            };
            set(&mut c, change, &["alice@example.org".into()]).await.unwrap();
            let got = get(&mut c).await.unwrap();
            assert_eq!(
                (got.enabled, got.subject.as_str(), got.body.as_str()),
                (enabled, "Away", "Gone.")
            );
            c.logout().await;
        }
        let s = state.lock().unwrap();
        assert_eq!(s.active.as_deref(), Some("mine"));
        assert_eq!(s.scripts["mine"], "require \"fileinto\";\r\nfileinto \"X\";\r\n");
        assert!(s.scripts[SCRIPT_NAME].contains("include :personal \"mine\";"));
    }

    #[tokio::test]
    async fn refusals_are_typed() {
        let url = serve("fileinto", with_user_script()).await;
        let mut c = client(&url, "pw").await.unwrap();
        assert!(matches!(get(&mut c).await, Err(ServiceError::Unsupported(_))));

        let url = serve("vacation", with_user_script()).await;
        let mut c = client(&url, "pw").await.unwrap();
        let change = Change {
            enabled: true,
            ..Change::default()
        };
        // Without `include` the user's active script would stop running: refused, nothing written.
        assert!(matches!(
            set(&mut c, change, &[]).await,
            Err(ServiceError::Unsupported(_))
        ));

        let url = serve("vacation", with_user_script()).await;
        assert!(matches!(client(&url, "wrong").await, Err(ServiceError::Auth(_))));
    }

    #[tokio::test]
    async fn a_foreign_script_named_like_ours_is_left_alone() {
        let state = with_user_script();
        state
            .lock()
            .unwrap()
            .scripts
            .insert(SCRIPT_NAME.into(), "keep;\r\n".into());
        let url = serve("vacation include", state.clone()).await;
        let mut c = client(&url, "pw").await.unwrap();
        let change = Change {
            enabled: true,
            ..Change::default()
        };
        assert!(matches!(
            set(&mut c, change, &[]).await,
            Err(ServiceError::Config(_))
        ));
        assert_eq!(state.lock().unwrap().scripts[SCRIPT_NAME], "keep;\r\n");
    }
}
