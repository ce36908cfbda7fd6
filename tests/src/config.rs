//! Agent configuration files for tests, rendered to the TOML of INTERFACE §3 from the private
//! servers' URLs: `config_for(&dovecot, &radicale, "alice")` is the usual one-liner.
//!
//! ```text
//!   [agent]     AgentSettings (short intervals so tests see changes quickly)
//!   [[account]] AccountSpec   (one per account: URLs, username, password_command, tls_ca)
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::dovecot::Dovecot;
use crate::radicale::Radicale;
use crate::{email_of, password_of};

/// The `[agent]` table.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub noop_interval: String,
    pub idle_renew: String,
    pub dav_poll_interval: String,
    pub conflict_policy: String,
    /// The agent's own keys beyond INTERFACE §3 (see agent/src/config.rs); `None` leaves them out.
    pub backoff_max: Option<String>,
    pub connect_timeout: Option<String>,
    /// IMAP connections per account (sync + listeners); `None` keeps the agent's default.
    pub imap_connections: Option<usize>,
}

impl Default for AgentSettings {
    /// Test-friendly: NOOP every 2 s and DAV polls every 3 s, so that changes and outages show
    /// within a few seconds instead of the production 20 s / 5 min; reconnect backoff capped at
    /// 5 s (production 5 min) so that a server that comes back is noticed within a test's patience.
    fn default() -> Self {
        AgentSettings {
            noop_interval: "2s".into(),
            idle_renew: "25m".into(),
            dav_poll_interval: "3s".into(),
            conflict_policy: "server-wins".into(),
            backoff_max: Some("5s".into()),
            connect_timeout: Some("5s".into()),
            imap_connections: None,
        }
    }
}

impl AgentSettings {
    pub fn to_toml(&self) -> String {
        let mut t = format!(
            "[agent]\nnoop_interval = {}\nidle_renew = {}\ndav_poll_interval = {}\nconflict_policy = {}\n",
            toml_string(&self.noop_interval),
            toml_string(&self.idle_renew),
            toml_string(&self.dav_poll_interval),
            toml_string(&self.conflict_policy),
        );
        for (key, value) in [
            ("backoff_max", &self.backoff_max),
            ("connect_timeout", &self.connect_timeout),
        ] {
            if let Some(v) = value {
                let _ = writeln!(t, "{key} = {}", toml_string(v));
            }
        }
        if let Some(n) = self.imap_connections {
            let _ = writeln!(t, "imap_connections = {n}");
        }
        t
    }
}

/// One `[[account]]` table. Services left `None` are absent from the account.
#[derive(Debug, Clone, Default)]
pub struct AccountSpec {
    pub name: String,
    pub email: String,
    pub username: Option<String>,
    pub password_command: Option<String>,
    pub imap: Option<String>,
    pub smtp: Option<String>,
    pub caldav: Option<String>,
    pub carddav: Option<String>,
    pub sieve: Option<String>,
    /// An address book searched as the global address list (the agent's `gal` key).
    pub gal: Option<String>,
    pub tls_ca: Option<PathBuf>,
}

impl AccountSpec {
    /// An account named after test user `user` (`alice` → name `alice`, `alice@localhost`),
    /// with the user's real password and no services yet.
    pub fn for_user(user: &str) -> AccountSpec {
        AccountSpec {
            name: user.to_string(),
            email: email_of(user),
            username: Some(user.to_string()),
            ..AccountSpec::default()
        }
        .password(password_of(user))
    }

    /// Renames the account (the name used on the CLI and over IPC).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// `password_command = "printf '%s\n' PASSWORD"`.
    pub fn password(mut self, password: &str) -> Self {
        self.password_command = Some(format!("printf '%s\\n' {}", shell_quote(password)));
        self
    }

    /// `password_command = "cat FILE"`.
    pub fn password_file(mut self, file: &Path) -> Self {
        self.password_command = Some(format!("cat {}", shell_quote(&file.to_string_lossy())));
        self
    }

    /// IMAP (plain loopback URL, or IMAPS with the CA when Dovecot runs with TLS).
    pub fn imap_from(mut self, dovecot: &Dovecot) -> Self {
        self.imap = Some(dovecot.imap_url());
        self
    }

    /// IMAPS plus `tls_ca`; Dovecot must have been started with `tls: true`.
    pub fn imaps_from(mut self, dovecot: &Dovecot) -> Self {
        self.imap = Some(dovecot.imaps_url());
        self.tls_ca = Some(dovecot.ca_pem());
        self
    }

    /// ManageSieve at Dovecot's sieve port.
    pub fn sieve_from(mut self, dovecot: &Dovecot) -> Self {
        self.sieve = Some(dovecot.sieve_url());
        self
    }

    /// CalDAV and CardDAV at Radicale's root (discovery finds the homes).
    pub fn dav_from(mut self, radicale: &Radicale) -> Self {
        self.caldav = Some(radicale.url());
        self.carddav = Some(radicale.url());
        self
    }

    pub fn to_toml(&self) -> String {
        let mut t = String::from("[[account]]\n");
        let mut field = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                let _ = writeln!(t, "{key} = {}", toml_string(v));
            }
        };
        field("name", Some(&self.name));
        field("email", Some(&self.email));
        field("username", self.username.as_deref());
        field("password_command", self.password_command.as_deref());
        field("imap", self.imap.as_deref());
        field("smtp", self.smtp.as_deref());
        field("caldav", self.caldav.as_deref());
        field("carddav", self.carddav.as_deref());
        field("sieve", self.sieve.as_deref());
        field("gal", self.gal.as_deref());
        let ca = self.tls_ca.as_ref().map(|p| p.to_string_lossy().into_owned());
        field("tls_ca", ca.as_deref());
        t
    }
}

/// A whole config file: `[agent]` and the accounts.
pub fn render_config(settings: &AgentSettings, accounts: &[AccountSpec]) -> String {
    let mut out = String::from("# Written by opconnect-tests.\n");
    out.push_str(&settings.to_toml());
    for account in accounts {
        out.push('\n');
        out.push_str(&account.to_toml());
    }
    out
}

/// The usual test config: one account named `user` with IMAP on Dovecot and CalDAV + CardDAV on
/// Radicale, the user's real password through `printf`, and the test [`AgentSettings`].
pub fn config_for(dovecot: &Dovecot, radicale: &Radicale, user: &str) -> String {
    let account = AccountSpec::for_user(user).imap_from(dovecot).dav_from(radicale);
    render_config(&AgentSettings::default(), &[account])
}

/// A TOML basic string (TOML 1.0 §String) with the required escapes.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A POSIX shell single-quoted word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_account() {
        let mut a = AccountSpec::for_user("alice").password("p\"w'x");
        a.imap = Some("imap://127.0.0.1:1143".into());
        let t = a.to_toml();
        assert!(t.contains("name = \"alice\"\n"), "{t}");
        assert!(t.contains("email = \"alice@localhost\"\n"), "{t}");
        assert!(
            t.contains(r#"password_command = "printf '%s\\n' 'p\"w'\\''x'""#),
            "{t}"
        );
        assert!(!t.contains("caldav"), "{t}");
    }
}
