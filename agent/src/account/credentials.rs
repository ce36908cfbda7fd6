//! Getting the password for `account add` (command, stdin, or a no-echo prompt) and keeping it in
//! the OS credential store under (`opconnect`, account name). The password is held in a
//! [`Secret`] and never printed (invariant 7).

use std::io::{BufRead, IsTerminal};

use opconnect_actors::account::{Secret, SecretSource};

use crate::secrets::{CommandSecret, KEYRING_SERVICE};

/// Where `account add` got the password, and so what it keeps.
pub enum Password {
    /// `--password-command`: the command goes into the config; nothing is stored.
    Command { command: String, secret: Secret },
    /// Typed or piped: the password goes into the OS credential store.
    Typed(Secret),
}

impl Password {
    pub fn secret(&self) -> &Secret {
        match self {
            Password::Command { secret, .. } | Password::Typed(secret) => secret,
        }
    }
}

/// `--password-command`, else `--password-stdin`, else a prompt when stdin is a terminal.
pub fn obtain(account: &str, email: &str, command: Option<&str>, stdin: bool) -> Result<Password, String> {
    if let Some(command) = command {
        let secret = CommandSecret::new(account, command).password().map_err(|e| e.0)?;
        return Ok(Password::Command {
            command: command.to_owned(),
            secret,
        });
    }
    let typed = if stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Password for {email}: "))
            .map_err(|e| format!("reading the password: {e}"))?
    } else {
        return Err(
            "no password: stdin is not a terminal; use --password-stdin or --password-command".into(),
        );
    };
    if typed.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(Password::Typed(Secret::new(typed)))
}

fn entry(account: &str) -> Result<keyring_core::Entry, String> {
    keyring_core::Entry::new(KEYRING_SERVICE, account).map_err(|e| store_error(account, e))
}

fn store_error(account: &str, e: keyring_core::Error) -> String {
    match e {
        keyring_core::Error::NoDefaultStore => format!(
            "account \"{account}\": no OS credential store is available on this machine \
             (on Linux: a Secret Service such as GNOME Keyring or KeePassXC); \
             use --password-command instead"
        ),
        other => format!(
            "account \"{account}\": the OS credential store failed: {other}; use --password-command instead"
        ),
    }
}

/// Fails early, before any network work, when the store cannot hold a password.
pub fn check_store(account: &str) -> Result<(), String> {
    match entry(account)?.get_password() {
        Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(()),
        Err(e) => Err(store_error(account, e)),
    }
}

/// Puts the password into the store (replacing an older one of that account name).
pub fn save(account: &str, secret: &Secret) -> Result<(), String> {
    entry(account)?
        .set_password(secret.expose())
        .map_err(|e| store_error(account, e))
}

/// Deletes the stored password; `Ok(false)` when there was none.
pub fn delete(account: &str) -> Result<bool, String> {
    match entry(account)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(store_error(account, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // nextest runs each test in its own process: the default store is not shared.
    #[test]
    fn the_password_lands_in_the_store_and_leaves_it() {
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        check_store("work").unwrap();
        save("work", &Secret::new("pw-1")).unwrap();
        let stored = keyring_core::Entry::new(KEYRING_SERVICE, "work")
            .unwrap()
            .get_password()
            .unwrap();
        assert_eq!(stored, "pw-1");
        assert!(delete("work").unwrap());
        assert!(!delete("work").unwrap());
    }

    #[test]
    fn without_a_store_the_message_says_what_to_do() {
        keyring_core::unset_default_store();
        let e = check_store("work").unwrap_err();
        assert!(
            e.contains("no OS credential store") && e.contains("--password-command"),
            "{e}"
        );
        assert!(
            save("work", &Secret::new("s3cret"))
                .unwrap_err()
                .contains("--password-command")
        );
    }

    #[test]
    fn a_command_supplies_the_password_and_is_kept() {
        match obtain("work", "a@b.c", Some("printf 'pw\\n'"), false).unwrap() {
            Password::Command { command, secret } => {
                assert_eq!(command, "printf 'pw\\n'");
                assert_eq!(secret.expose(), "pw");
            }
            Password::Typed(_) => panic!("a command is not typed"),
        }
    }
}
