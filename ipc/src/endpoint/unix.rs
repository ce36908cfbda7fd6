//! Unix endpoint: a file-path socket (never the abstract namespace, which has no permission
//! check), mode 0600, in a 0700 directory we own, guarded by a lock file against a second agent.
//!
//! ```text
//!  bind:  prepare dir ─▶ lock agent.sock.lock ─▶ old agent.sock? ─ answers ─▶ AlreadyRunning
//!                          │ held: AlreadyRunning        │ refused: stale, remove it
//!                          ▼                              ▼
//!                        listen(agent.sock, 0600)  ◀──────┘
//!  accept: peer euid == our euid, else warn and drop
//!  client: lstat(agent.sock) is a socket owned by our euid, else refuse before connecting
//! ```

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use interprocess::local_socket::traits::StreamCommon;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerNonblockingMode, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use interprocess::os::unix::uds_local_socket::Listener as SyncListener;
use interprocess::os::unix::uds_local_socket::tokio::{Listener as TokioListener, Stream};

use crate::server::ServeError;

/// INTERFACE §4: the socket's directory is 0700.
const DIR_MODE: u32 = 0o700;
/// INTERFACE §4: the socket is 0600. Connecting needs write permission on it, so only we can.
const SOCKET_MODE: u32 = 0o600;
/// `sizeof(sockaddr_un.sun_path)` minus the terminating NUL: 108 on Linux, 104 on the BSDs
/// and macOS. A longer path cannot be bound at all; say so plainly.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SUN_PATH_MAX: usize = 107;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SUN_PATH_MAX: usize = 103;

/// Before connecting: `path`, if it exists, must be a socket (not a symbolic link) owned by us,
/// or someone else's program would receive our requests.
pub fn check_socket_owner(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        // Nothing there: connecting says "not running".
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a socket; refusing to connect", path.display()),
        ));
    }
    let uid = current_euid();
    if meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by this user (uid {uid}); refusing to connect",
                path.display(),
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// The effective uid of this process.
#[allow(unsafe_code)]
pub fn current_euid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory of ours and "shall always be
    // successful" (POSIX.1-2017).
    unsafe { libc::geteuid() }
}

/// Creates `dir` (mode 0700) or checks an existing one: it must be a directory owned by us,
/// and not a symbolic link (checked with lstat: a link would hand the socket to whoever owns its
/// target); group or other permission bits on it are removed.
pub fn prepare_socket_dir(dir: &Path) -> Result<(), ServeError> {
    let dir_err = |source: io::Error| ServeError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(dir_err)?;
    let meta = fs::symlink_metadata(dir).map_err(dir_err)?;
    if meta.file_type().is_symlink() {
        return Err(dir_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link; the socket directory must be a real directory",
        )));
    }
    if !meta.is_dir() {
        return Err(dir_err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let uid = current_euid();
    if meta.uid() != uid {
        return Err(ServeError::ForeignDirectory {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(dir_err)?;
        tracing::info!(dir = %dir.display(), old_mode = format!("{:o}", meta.mode() & 0o7777), "tightened socket directory to 0700");
    }
    Ok(())
}

/// The socket is bound and ours; nothing is accepted until [`Bound::listen`].
/// Needs no async runtime, so the agent can bind before it starts one.
#[derive(Debug)]
pub(crate) struct Bound {
    // Field order is drop order: the listener removes the socket file while we still hold the lock.
    listener: SyncListener,
    lock: File,
    path: PathBuf,
}

impl Bound {
    pub(crate) fn bind(path: &Path) -> Result<Self, ServeError> {
        let len = path.as_os_str().len();
        if len > SUN_PATH_MAX {
            return Err(ServeError::PathTooLong {
                path: path.to_path_buf(),
                len,
                max: SUN_PATH_MAX,
            });
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        prepare_socket_dir(dir)?;
        let lock = take_lock(path)?;
        remove_stale(path)?;
        let listener = create_listener(path)?;
        tracing::debug!(path = %path.display(), "IPC socket bound");
        Ok(Self {
            listener,
            lock,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Registers the socket with the current tokio runtime.
    pub(crate) fn listen(self) -> Result<Listening, ServeError> {
        let Self { listener, lock, path } = self;
        match TokioListener::try_from(listener) {
            Ok(listener) => Ok(Listening {
                listener,
                _lock: lock,
            }),
            Err(source) => Err(ServeError::Bind { path, source }),
        }
    }
}

/// Accepting connections; dropping it removes the socket file.
pub(crate) struct Listening {
    listener: TokioListener,
    _lock: File,
}

impl Listening {
    /// The next connection, or `None` when its peer was refused (another user).
    pub(crate) async fn accept(&self) -> io::Result<Option<Stream>> {
        let stream = self.listener.accept().await?;
        Ok(check_peer(&stream).then_some(stream))
    }
}

/// `agent.sock.lock` beside the socket, held (flock) for as long as the agent serves: two agents
/// starting at once cannot both decide the socket is stale and replace each other's.
fn take_lock(path: &Path) -> Result<File, ServeError> {
    let mut lock_path = OsString::from(path.as_os_str());
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(SOCKET_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(|source| ServeError::Bind {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(ServeError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Err(TryLockError::Error(source)) => Err(ServeError::Bind {
            path: lock_path,
            source,
        }),
    }
}

/// A socket file nobody listens on is left by an agent that crashed: remove it. One that
/// answers belongs to a live agent; anything that is not a socket is not ours to delete.
fn remove_stale(path: &Path) -> Result<(), ServeError> {
    let bind_err = |source: io::Error| ServeError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(bind_err(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServeError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServeError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            fs::remove_file(path).map_err(bind_err)?;
            tracing::info!(path = %path.display(), "removed a stale IPC socket (nothing was listening)");
            Ok(())
        }
        Err(e) => Err(bind_err(e)),
    }
}

fn create_listener(path: &Path) -> Result<SyncListener, ServeError> {
    let bind_err = |source: io::Error| ServeError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let create = |with_mode: bool| -> io::Result<SyncListener> {
        let name = path.to_fs_name::<GenericFilePath>()?;
        let mut opts = ListenerOptions::new()
            .name(name)
            .nonblocking(ListenerNonblockingMode::Both)
            .reclaim_name(true)
            .try_overwrite(false);
        if with_mode {
            opts = opts.mode(SOCKET_MODE as libc::mode_t);
        }
        opts.create_sync_as::<SyncListener>()
    };
    let listener = match create(true) {
        Ok(listener) => listener,
        // Some systems cannot set the mode before bind(); the 0700 directory closes that window.
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            let listener = create(false).map_err(bind_err)?;
            fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE)).map_err(bind_err)?;
            listener
        }
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(ServeError::AlreadyRunning {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(bind_err(e)),
    };
    Ok(listener)
}

fn check_peer(stream: &Stream) -> bool {
    let ours = current_euid();
    match stream.peer_creds() {
        Ok(creds) => {
            let allowed = peer_allowed(ours, creds.euid());
            if !allowed {
                tracing::warn!(
                    peer_uid = ?creds.euid(),
                    peer_pid = ?creds.pid(),
                    our_uid = ours,
                    "refused an IPC connection from another user"
                );
            }
            allowed
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused an IPC connection: the peer's credentials are unreadable");
            false
        }
    }
}

/// Only a peer running as our own effective uid may talk to the agent (INTERFACE §4); a peer
/// whose uid is unknown is refused too.
fn peer_allowed(ours: u32, peer: Option<u32>) -> bool {
    peer == Some(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_uid_is_allowed() {
        assert!(peer_allowed(1000, Some(1000)));
        assert!(!peer_allowed(1000, Some(0)));
        assert!(!peer_allowed(0, Some(1000)));
        assert!(!peer_allowed(1000, None));
    }

    #[test]
    fn creates_and_tightens_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare_socket_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        prepare_socket_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn refuses_a_file_where_the_directory_should_be() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        let err = prepare_socket_dir(&file).unwrap_err();
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }

    #[test]
    fn refuses_an_overlong_path() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(200)));
        assert!(matches!(Bound::bind(&long), Err(ServeError::PathTooLong { .. })));
    }
}
