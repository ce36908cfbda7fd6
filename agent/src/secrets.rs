//! Where passwords come from: the account's `password_command`, else the OS credential store
//! (keyring-core with the platform's native store). Neither the password nor the command's
//! output ever reaches a log or an error message (invariant 7).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;

use opconnect_actors::account::{Secret, SecretError, SecretSource, SharedSecretSource};

use crate::config::AccountConfig;

/// The service name under which opconnect keeps passwords in the OS credential store.
pub const KEYRING_SERVICE: &str = "opconnect";

/// Runs a shell command and takes the first line of its standard output.
#[derive(Debug)]
pub struct CommandSecret {
    account: String,
    command: String,
    timeout: std::time::Duration,
}

impl CommandSecret {
    pub fn new(account: &str, command: &str) -> Self {
        CommandSecret {
            account: account.to_owned(),
            command: command.to_owned(),
            timeout: password_timeout(),
        }
    }
}

impl SecretSource for CommandSecret {
    fn password(&self) -> Result<Secret, SecretError> {
        let fail =
            |why: String| SecretError(format!("password_command of account \"{}\" {why}", self.account));
        let mut command = shell(&self.command);
        #[cfg(unix)]
        {
            // Its own process group, so that a command that hangs is stopped with its children.
            use std::os::unix::process::CommandExt as _;
            command.process_group(0);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("could not start: {e}")))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = String::new();
            let read = stdout.read_to_string(&mut out).map(|_| out);
            let _ = tx.send(read);
        });
        let limit = self.timeout;
        let out = match rx.recv_timeout(limit) {
            Ok(read) => read.map_err(|e| fail(format!("gave unreadable output: {e}")))?,
            Err(_) => {
                stop(&mut child);
                return Err(fail(format!(
                    "did not finish within {}s and was stopped (does it wait for input, such as a \
                     passphrase prompt?)",
                    limit.as_secs()
                )));
            }
        };
        let status = child.wait().map_err(|e| fail(format!("failed: {e}")))?;
        if !status.success() {
            return Err(fail(format!("exited with {status}")));
        }
        let first = out.lines().next().unwrap_or("").trim_end_matches('\r');
        if first.is_empty() {
            return Err(fail("printed nothing".into()));
        }
        Ok(Secret::new(first))
    }
}

/// How long a `password_command` may take: long enough to type a passphrase into a pinentry
/// prompt; `OPCONNECT_PASSWORD_TIMEOUT` (seconds) overrides it.
const PASSWORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn password_timeout() -> std::time::Duration {
    std::env::var("OPCONNECT_PASSWORD_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(std::time::Duration::from_secs)
        .unwrap_or(PASSWORD_TIMEOUT)
}

/// Stops a password command that hangs, with everything it started (its process group).
fn stop(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            // `--`: a negative pid names the process group, not an option.
            .args(["-KILL", "--"])
            .arg(format!("-{}", child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    cmd
}

#[cfg(windows)]
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("cmd");
    cmd.arg("/C").arg(command);
    cmd
}

/// The password kept in the OS credential store under (`opconnect`, account name).
#[derive(Debug)]
pub struct KeyringSecret {
    account: String,
}

impl SecretSource for KeyringSecret {
    fn password(&self) -> Result<Secret, SecretError> {
        let entry = keyring_core::Entry::new(KEYRING_SERVICE, &self.account).map_err(|e| self.explain(e))?;
        entry.get_password().map(Secret::new).map_err(|e| self.explain(e))
    }
}

impl KeyringSecret {
    fn explain(&self, err: keyring_core::Error) -> SecretError {
        let why = match err {
            keyring_core::Error::NoEntry => "has no password for it".to_owned(),
            keyring_core::Error::NoDefaultStore => "is not available on this machine".to_owned(),
            other => format!("failed: {other}"),
        };
        SecretError(format!(
            "account \"{}\": the OS credential store {why}; set password_command in the config or store the password there",
            self.account
        ))
    }
}

/// The password source of one account.
pub fn source_for(account: &AccountConfig) -> SharedSecretSource {
    match &account.password_command {
        Some(command) => Arc::new(CommandSecret::new(&account.spec.name, command)),
        None => Arc::new(KeyringSecret {
            account: account.spec.name.clone(),
        }),
    }
}

/// Installs the platform's credential store as keyring-core's default. Without one (a headless
/// Linux box with no Secret Service) accounts must use `password_command`.
pub fn init_credential_store() {
    #[cfg(target_os = "linux")]
    let store =
        zbus_secret_service_keyring_store::Store::new().map(|s| s as Arc<keyring_core::CredentialStore>);
    #[cfg(windows)]
    let store = windows_native_keyring_store::Store::new().map(|s| s as Arc<keyring_core::CredentialStore>);
    #[cfg(target_os = "macos")]
    let store =
        apple_native_keyring_store::keychain::Store::new().map(|s| s as Arc<keyring_core::CredentialStore>);
    #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
    let store: keyring_core::Result<Arc<keyring_core::CredentialStore>> =
        Err(keyring_core::Error::NoDefaultStore);
    match store {
        Ok(store) => keyring_core::set_default_store(store),
        Err(e) => tracing::warn!("no OS credential store ({e}); accounts need password_command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(command: &str) -> CommandSecret {
        CommandSecret {
            account: "work".into(),
            command: command.into(),
            timeout: PASSWORD_TIMEOUT,
        }
    }

    fn cmd_with_timeout(command: &str, secs: u64) -> CommandSecret {
        CommandSecret {
            timeout: std::time::Duration::from_secs(secs),
            ..cmd(command)
        }
    }

    #[test]
    fn takes_the_first_line() {
        let s = cmd("printf 's3cret\\nsecond line\\n'").password().unwrap();
        assert_eq!(s.expose(), "s3cret");
    }

    #[test]
    fn a_command_that_never_returns_times_out() {
        let began = std::time::Instant::now();
        let e = cmd_with_timeout("sleep 600; echo late", 1)
            .password()
            .unwrap_err();
        assert!(e.0.contains("did not finish within 1s"), "{}", e.0);
        // Stopped with what it started: no `sleep 600` is left.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let left = Command::new("pgrep").args(["-fx", "sleep 600"]).output().unwrap();
        assert!(
            !left.status.success(),
            "{}",
            String::from_utf8_lossy(&left.stdout)
        );
        assert!(began.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn failures_never_show_output() {
        let e = cmd("echo s3cret; exit 3").password().unwrap_err();
        assert!(
            e.0.contains("account \"work\"") && e.0.contains("exit"),
            "{}",
            e.0
        );
        assert!(!e.0.contains("s3cret"), "{}", e.0);
        let e = cmd("true").password().unwrap_err();
        assert!(e.0.contains("printed nothing"), "{}", e.0);
    }

    // nextest runs each test in its own process, so the global default store is not shared.
    #[test]
    fn keyring_without_a_store_explains_what_to_do() {
        keyring_core::unset_default_store();
        let e = KeyringSecret {
            account: "home".into(),
        }
        .password()
        .unwrap_err();
        assert!(
            e.0.contains("account \"home\"") && e.0.contains("password_command"),
            "{}",
            e.0
        );
    }

    #[test]
    fn keyring_reads_the_stored_password() {
        // keyring-core's mock store stands in for the OS store.
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let e = KeyringSecret {
            account: "home".into(),
        }
        .password()
        .unwrap_err();
        assert!(e.0.contains("has no password"), "{}", e.0);
        keyring_core::Entry::new(KEYRING_SERVICE, "home")
            .unwrap()
            .set_password("from-the-store")
            .unwrap();
        let s = KeyringSecret {
            account: "home".into(),
        }
        .password()
        .unwrap();
        assert_eq!(s.expose(), "from-the-store");
    }
}
