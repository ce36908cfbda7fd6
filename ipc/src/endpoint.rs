//! Where the agent listens (INTERFACE §1, §4) and how the endpoint is made private to the user.
//!
//! ```text
//!  Unix:    $XDG_RUNTIME_DIR/opconnect/agent.sock   (fallback: <data dir>/agent.sock)
//!           directory 0700, owned by us  ─┐
//!           socket 0600                   ├─ three fences; the last one, the peer's
//!           peer euid == our euid        ─┘  credentials, is checked on every accept
//!  Windows: \\.\pipe\opconnect-<user>, DACL "only the current user"
//! ```
//!
//! The platform details live in `endpoint/unix.rs` and `endpoint/windows.rs`; both offer the
//! same crate-private `Bound` (the endpoint is ours, nothing is accepted yet) and `Listening`.

use std::path::{Path, PathBuf};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::Bound;
#[cfg(unix)]
pub use unix::{check_socket_owner, current_euid, prepare_socket_dir};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::Bound;
#[cfg(windows)]
pub use windows::current_user_sid;

/// File name of the socket inside its directory.
pub const SOCKET_FILE: &str = "agent.sock";

/// Directory created under `$XDG_RUNTIME_DIR` for the socket.
pub const RUNTIME_SUBDIR: &str = "opconnect";

/// The endpoint used when neither `--socket` nor `OPCONNECT_SOCKET` is given (INTERFACE §1).
///
/// Unix: `$XDG_RUNTIME_DIR/opconnect/agent.sock` when that variable holds an absolute path,
/// otherwise `<data_dir>/agent.sock`. Windows: `\\.\pipe\opconnect-<user>`.
pub fn default_socket_path(data_dir: &Path) -> PathBuf {
    #[cfg(windows)]
    {
        let _ = data_dir;
        pipe_path_for_user(std::env::var("USERNAME").ok().as_deref())
    }
    #[cfg(not(windows))]
    {
        socket_path_from(std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from), data_dir)
    }
}

/// [`default_socket_path`] with the environment passed in, for tests.
pub fn socket_path_from(xdg_runtime_dir: Option<PathBuf>, data_dir: &Path) -> PathBuf {
    match xdg_runtime_dir {
        // The XDG Base Directory spec: a relative path in these variables is invalid; ignore it.
        Some(dir) if dir.is_absolute() => dir.join(RUNTIME_SUBDIR).join(SOCKET_FILE),
        _ => data_dir.join(SOCKET_FILE),
    }
}

/// `\\.\pipe\opconnect-<user>`; characters a pipe name cannot hold become `_`.
pub fn pipe_path_for_user(user: Option<&str>) -> PathBuf {
    let user: String = user
        .filter(|u| !u.is_empty())
        .unwrap_or("user")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!(r"\\.\pipe\opconnect-{user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_runtime_dir_wins_when_absolute() {
        let data = Path::new("/home/a/.local/share/opconnect");
        assert_eq!(
            socket_path_from(Some("/run/user/1000".into()), data),
            Path::new("/run/user/1000/opconnect/agent.sock")
        );
        assert_eq!(socket_path_from(None, data), data.join("agent.sock"));
        assert_eq!(
            socket_path_from(Some("relative".into()), data),
            data.join("agent.sock")
        );
        assert_eq!(socket_path_from(Some("".into()), data), data.join("agent.sock"));
    }

    #[test]
    fn pipe_names() {
        assert_eq!(
            pipe_path_for_user(Some("alice")),
            PathBuf::from(r"\\.\pipe\opconnect-alice")
        );
        assert_eq!(
            pipe_path_for_user(Some(r"DOM\bob x")),
            PathBuf::from(r"\\.\pipe\opconnect-DOM_bob_x")
        );
        assert_eq!(
            pipe_path_for_user(None),
            PathBuf::from(r"\\.\pipe\opconnect-user")
        );
        assert_eq!(
            pipe_path_for_user(Some("")),
            PathBuf::from(r"\\.\pipe\opconnect-user")
        );
    }
}
