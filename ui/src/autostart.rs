//! Start at login, through auto-launch: an XDG autostart entry on Linux
//! (`~/.config/autostart/opconnect.desktop`), the Run key on Windows, a LaunchAgent on macOS.
//! Used by `opconnect autostart on|off|status` and the tray's "Start at login" item.
//!
//! On Linux the Debian package also installs a system-wide entry in `/etc/xdg/autostart`. Per the
//! XDG Autostart spec a user's file of the same name overrides it, so "off" leaves a user file with
//! `Hidden=true` where a system entry exists, and "on" replaces that with a full entry.

use std::path::{Path, PathBuf};

use auto_launch::{AutoLaunch, AutoLaunchBuilder};

/// The entry's name (the desktop file's stem, the Run value, the LaunchAgent label's last part).
const APP_NAME: &str = "opconnect";

/// What the caller does next: fix the installation (`Program`), or report the system's refusal.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("start at login needs the program's absolute path, and {} is not usable: {reason}", path.display())]
    Program { path: PathBuf, reason: String },
    #[error("start at login: {0}")]
    System(String),
}

/// The start-at-login entry for this program, started as `PROGRAM run ARGS…`.
pub struct Autostart {
    inner: AutoLaunch,
}

impl Autostart {
    /// `program` is the agent's absolute path; `args` follow `run` (e.g. `--config FILE`).
    pub fn new(program: &Path, args: &[String]) -> Result<Autostart, AutostartError> {
        let bad = |reason: &str| AutostartError::Program {
            path: program.to_owned(),
            reason: reason.to_owned(),
        };
        if !program.is_absolute() {
            return Err(bad("it is not absolute"));
        }
        if !program.is_file() {
            return Err(bad("it does not exist"));
        }
        let path = program.to_str().ok_or_else(|| bad("the path is not UTF-8"))?;
        // The XDG Exec line is split at spaces by auto-launch's writer, unquoted.
        if cfg!(target_os = "linux") && path.contains(char::is_whitespace) {
            return Err(bad(
                "the path contains a space, which an XDG autostart Exec line cannot carry unquoted",
            ));
        }
        let mut all = vec!["run".to_owned()];
        all.extend(args.iter().cloned());
        let inner = AutoLaunchBuilder::new()
            .set_app_name(APP_NAME)
            .set_app_path(path)
            .set_args(&all)
            .set_linux_launch_mode(auto_launch::LinuxLaunchMode::XdgAutostart)
            .set_macos_launch_mode(auto_launch::MacOSLaunchMode::LaunchAgent)
            .build()
            .map_err(|e| AutostartError::System(e.to_string()))?;
        Ok(Autostart { inner })
    }

    /// The running program's own entry.
    pub fn for_current_exe(args: &[String]) -> Result<Autostart, AutostartError> {
        let exe = std::env::current_exe().map_err(|e| AutostartError::System(format!("current_exe: {e}")))?;
        Autostart::new(&exe, args)
    }

    pub fn enable(&self) -> Result<(), AutostartError> {
        self.inner
            .enable()
            .map_err(|e| AutostartError::System(e.to_string()))
    }

    pub fn disable(&self) -> Result<(), AutostartError> {
        let system = |e: auto_launch::Error| AutostartError::System(e.to_string());
        if self.inner.is_enabled().map_err(system)? {
            self.inner.disable().map_err(system)?;
        }
        #[cfg(target_os = "linux")]
        if xdg::system_entry().is_some() {
            xdg::hide_system_entry().map_err(|e| AutostartError::System(e.to_string()))?;
        }
        Ok(())
    }

    pub fn is_enabled(&self) -> Result<bool, AutostartError> {
        #[cfg(target_os = "linux")]
        {
            Ok(xdg::enabled())
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.inner
                .is_enabled()
                .map_err(|e| AutostartError::System(e.to_string()))
        }
    }

    /// Where the entry lives, for messages: the XDG file on Linux.
    pub fn location() -> String {
        #[cfg(target_os = "linux")]
        {
            xdg::user_entry().display().to_string()
        }
        #[cfg(target_os = "macos")]
        {
            format!("~/Library/LaunchAgents/{APP_NAME}.plist")
        }
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        {
            format!(r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\{APP_NAME}")
        }
    }
}

/// The XDG Autostart spec's rules for the user's entry over a system-wide one.
#[cfg(target_os = "linux")]
mod xdg {
    use std::path::PathBuf;

    use super::APP_NAME;

    /// Where auto-launch writes: `~/.config/autostart/` (it does not read XDG_CONFIG_HOME).
    pub fn user_entry() -> PathBuf {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".config/autostart").join(format!("{APP_NAME}.desktop"))
    }

    /// The first system-wide entry along `$XDG_CONFIG_DIRS` (default `/etc/xdg`).
    pub fn system_entry() -> Option<PathBuf> {
        let dirs = std::env::var("XDG_CONFIG_DIRS")
            .ok()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/etc/xdg".into());
        dirs.split(':')
            .map(|d| {
                PathBuf::from(d)
                    .join("autostart")
                    .join(format!("{APP_NAME}.desktop"))
            })
            .find(|p| p.is_file())
    }

    /// `Hidden=true` in an entry's `[Desktop Entry]` group means "deleted".
    fn hidden(text: &str) -> bool {
        text.lines().any(|l| {
            l.split_once('=')
                .is_some_and(|(k, v)| k.trim() == "Hidden" && v.trim().eq_ignore_ascii_case("true"))
        })
    }

    /// The user's entry decides when it exists; otherwise a system entry does.
    pub fn enabled() -> bool {
        match std::fs::read_to_string(user_entry()) {
            Ok(text) => !hidden(&text),
            Err(_) => system_entry().is_some_and(|p| std::fs::read_to_string(p).is_ok_and(|t| !hidden(&t))),
        }
    }

    /// Overrides the system entry for this user only.
    pub fn hide_system_entry() -> std::io::Result<()> {
        let path = user_entry();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(
            path,
            format!("[Desktop Entry]\nType=Application\nName={APP_NAME}\nHidden=true\n"),
        )
    }

    #[cfg(test)]
    #[test]
    fn hidden_is_read_from_the_key_not_from_text() {
        assert!(hidden("[Desktop Entry]\nHidden=true\n"));
        assert!(hidden("[Desktop Entry]\nHidden = True\n"));
        assert!(!hidden("[Desktop Entry]\nHidden=false\n"));
        assert!(!hidden(
            "[Desktop Entry]\nComment=Hidden=true is not a key here\n"
        ));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_relative_missing_or_spaced_program_is_refused_by_name() {
        let err = Autostart::new(Path::new("opconnect"), &[])
            .err()
            .expect("relative");
        assert!(
            err.to_string()
                .contains("opconnect is not usable: it is not absolute"),
            "{err}"
        );
        let err = Autostart::new(Path::new("/nonexistent/opconnect"), &[])
            .err()
            .expect("missing");
        assert!(err.to_string().contains("it does not exist"), "{err}");
        let dir = std::env::temp_dir().join("opconnect autostart test");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("opconnect"), "").unwrap();
        let err = Autostart::new(&dir.join("opconnect"), &[]).err().expect("space");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.to_string().contains("contains a space"), "{err}");
    }
}
