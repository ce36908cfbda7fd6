//! Editing the config file (INTERFACE §3) without losing the user's comments or formatting:
//! toml_edit keeps every byte it was not asked to change. Each edit is checked with the same
//! loader the agent uses before it is written, and written atomically (temp file + rename).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::config::Config;

/// The config file as a document, ready to be edited.
pub struct ConfigFile {
    path: PathBuf,
    doc: DocumentMut,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty document (the first `account add` creates it).
    pub fn open(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
        };
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end())
        })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            doc,
        })
    }

    /// The file as the agent would read it now.
    pub fn config(&self) -> anyhow::Result<Config> {
        Ok(Config::parse(&self.path, &self.doc.to_string())?)
    }

    fn accounts(&self) -> Option<&ArrayOfTables> {
        self.doc.get("account").and_then(Item::as_array_of_tables)
    }

    pub fn has_account(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.accounts()?
            .iter()
            .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
    }

    /// Appends an `[[account]]` table with `fields` in the given order.
    pub fn add_account(&mut self, fields: &[(&str, String)]) -> anyhow::Result<()> {
        let mut table = Table::new();
        for (key, v) in fields {
            table.insert(key, value(v.as_str()));
        }
        match self.doc.get_mut("account") {
            None => {
                let mut array = ArrayOfTables::new();
                array.push(table);
                self.doc.insert("account", Item::ArrayOfTables(array));
            }
            Some(Item::ArrayOfTables(array)) => array.push(table),
            Some(_) => bail!(
                "{}: `account` is not written as [[account]] tables; edit the file by hand",
                self.path.display()
            ),
        }
        Ok(())
    }

    /// Writes `tls_pins = { "host" = "AB:CD:…" }` into the account named `name` (a list where a
    /// host shows several certificates, e.g. one per service).
    pub fn set_pins(&mut self, name: &str, pins: &[(String, Vec<String>)]) -> anyhow::Result<()> {
        let index = self
            .position(name)
            .with_context(|| format!("no account named \"{name}\""))?;
        let Some(Item::ArrayOfTables(array)) = self.doc.get_mut("account") else {
            bail!("{}: no [[account]] tables", self.path.display());
        };
        let table = array.get_mut(index).context("the account table")?;
        let mut inline = toml_edit::InlineTable::new();
        for (host, fingerprints) in pins {
            let v: toml_edit::Value = match fingerprints.as_slice() {
                [one] => one.as_str().into(),
                many => many
                    .iter()
                    .map(String::as_str)
                    .collect::<toml_edit::Array>()
                    .into(),
            };
            inline.insert(host, v);
        }
        table.insert("tls_pins", value(inline));
        Ok(())
    }

    /// Removes the account named `name`; false if there is none. Comments written above that
    /// table go with it; everything else stays as it was.
    pub fn remove_account(&mut self, name: &str) -> bool {
        let Some(index) = self.position(name) else {
            return false;
        };
        if let Some(Item::ArrayOfTables(array)) = self.doc.get_mut("account") {
            array.remove(index);
            if array.is_empty() {
                self.doc.remove("account");
            }
        }
        true
    }

    pub fn to_text(&self) -> String {
        self.doc.to_string()
    }

    /// Checks the edited text with the agent's own loader, then replaces the file atomically
    /// (mode 0600 on Unix: the file names servers and users).
    pub fn save(&self) -> anyhow::Result<()> {
        let text = self.to_text();
        Config::parse(&self.path, &text).context("the edited configuration would not load")?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("config.toml"),
            std::process::id()
        ));
        std::fs::write(&tmp, &text).with_context(|| format!("{}", tmp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o600);
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        }
        std::fs::rename(&tmp, &self.path).with_context(|| format!("{}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_FILE: &str = r#"# My opconnect settings — hand-written.
[agent]
noop_interval = "20s"   # keep it snappy
  # indented comment stays

# The home account
[[account]]
name = "home"
email = "me@example.org"
imap = "imaps://imap.example.org"   # trailing comment
"#;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn add_then_remove_keeps_every_other_byte() {
        let (_dir, path) = file(USER_FILE);
        let mut f = ConfigFile::open(&path).unwrap();
        assert!(f.has_account("home") && !f.has_account("work"));
        f.add_account(&[
            ("name", "work".into()),
            ("email", "alice@example.test".into()),
            ("imap", "imap://localhost:1143".into()),
        ])
        .unwrap();
        f.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(USER_FILE), "{text}");
        assert!(text.contains("[[account]]\nname = \"work\"\n"), "{text}");
        assert_eq!(f.config().unwrap().accounts.len(), 2);

        let mut f = ConfigFile::open(&path).unwrap();
        assert!(f.remove_account("work"));
        assert!(!f.remove_account("work"));
        f.save().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), USER_FILE);
    }

    #[test]
    fn a_comment_at_the_end_survives() {
        let text = "[agent]\nnoop_interval = \"2s\"\n\n# accounts follow\n";
        let (_dir, path) = file(text);
        let mut f = ConfigFile::open(&path).unwrap();
        f.add_account(&[
            ("name", "w".into()),
            ("email", "a@b.c".into()),
            ("imap", "imaps://x".into()),
        ])
        .unwrap();
        let added = f.to_text();
        assert!(added.contains("# accounts follow"), "{added}");
        assert!(added.contains("[[account]]\nname = \"w\""), "{added}");
        f.remove_account("w");
        assert_eq!(f.to_text(), text);
    }

    #[test]
    fn the_first_account_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let mut f = ConfigFile::open(&path).unwrap();
        f.add_account(&[
            ("name", "work".into()),
            ("email", "a@b.c".into()),
            ("caldav", "https://dav.b.c/".into()),
        ])
        .unwrap();
        f.save().unwrap();
        let c = ConfigFile::open(&path).unwrap().config().unwrap();
        assert_eq!(c.accounts[0].spec.name, "work");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn an_edit_the_agent_would_refuse_is_not_written() {
        let (_dir, path) = file(USER_FILE);
        let mut f = ConfigFile::open(&path).unwrap();
        f.add_account(&[("name", "bad".into()), ("email", "a@b.c".into())])
            .unwrap();
        let e = f.save().unwrap_err();
        assert!(format!("{e:#}").contains("no server configured"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), USER_FILE);
    }
}
