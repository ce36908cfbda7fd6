//! Windows endpoint: a named pipe whose DACL admits only the current user (INTERFACE §4).
//!
//! SDDL `D:P(A;;GA;;;<user SID>)`: a protected DACL (nothing inherited) with one entry granting
//! GENERIC_ALL to the user. Other users, and administrators too, have no entry and are denied.
//! interprocess creates the first instance with FILE_FLAG_FIRST_PIPE_INSTANCE (so a pipe that
//! already exists makes binding fail) and rejects remote clients (PIPE_REJECT_REMOTE_CLIENTS).
//!
//! Unlike Unix there is no stale state: a pipe vanishes with its last handle.
//!
//! Reviewed, not tested (no Windows machine here; issue 20): FILE_FLAG_FIRST_PIPE_INSTANCE is set
//! by interprocess 2.4 for the first instance (`create_instance.rs`, `open_mode(first)`), so a
//! name another user created first makes `bind` fail with access denied instead of serving them.
//! `listen` drops the claiming instance before creating the tokio one: in that gap another user
//! may take the name, and then `listen` fails the same way (a refusal to start, never a hijack).
//! The client does not yet check who serves a pipe it connects to (GetNamedPipeServerProcessId
//! and the owner's SID would): while no agent runs, a squatter could read a client's requests.

// The token query below has no safe wrapper in std or interprocess; it is kept to one function.
#![allow(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::ptr;

use interprocess::local_socket::tokio::{Listener as TokioListener, Stream};
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, Listener as SyncListener, ListenerOptions, ToFsName};
use interprocess::os::windows::local_socket::ListenerOptionsExt;
use interprocess::os::windows::security_descriptor::SecurityDescriptor;
use widestring::{U16CStr, U16CString};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{GetTokenInformation, TOKEN_QUERY, TOKEN_USER, TokenUser};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use crate::server::ServeError;

/// The current user's SID in string form (`S-1-5-21-…`).
pub fn current_user_sid() -> io::Result<String> {
    let mut raw: HANDLE = ptr::null_mut();
    // SAFETY: GetCurrentProcess() is a pseudo-handle; `raw` is a valid out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut raw) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = Token(raw);
    let mut len = 0u32;
    // SAFETY: a null buffer of length 0 only asks for the size, which is written to `len`;
    // the call "fails" with ERROR_INSUFFICIENT_BUFFER by design.
    unsafe { GetTokenInformation(token.0, TokenUser, ptr::null_mut(), 0, &mut len) };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64 elements keep the pointer-aligned TOKEN_USER at the start of the buffer aligned.
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` has room for `len` bytes.
    if unsafe { GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID points into `buf`.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` is valid while `buf` lives; `text` is a valid out-pointer.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `text` is a NUL-terminated UTF-16 string owned by us, freed with
    // LocalFree once copied.
    let sid_string = unsafe { U16CStr::from_ptr_str(text) }.to_string_lossy();
    // SAFETY: `text` came from ConvertSidToStringSidW and is freed exactly once.
    unsafe { LocalFree(text.cast()) };
    Ok(sid_string)
}

struct Token(HANDLE);

impl Drop for Token {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenProcessToken and is closed exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Listener options for `path` with the "current user only" security descriptor.
fn options(path: &Path) -> io::Result<ListenerOptions<'_>> {
    let sid = current_user_sid()?;
    let sddl = U16CString::from_str(format!("D:P(A;;GA;;;{sid})"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let sd = SecurityDescriptor::deserialize(&sddl)?;
    Ok(ListenerOptions::new()
        .name(path.to_fs_name::<GenericFilePath>()?)
        .security_descriptor(sd))
}

fn bind_error(path: &Path, source: io::Error) -> ServeError {
    // FILE_FLAG_FIRST_PIPE_INSTANCE on a name that exists fails with ERROR_ACCESS_DENIED.
    if source.kind() == io::ErrorKind::PermissionDenied {
        ServeError::AlreadyRunning {
            path: path.to_path_buf(),
        }
    } else {
        ServeError::Bind {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The pipe name is claimed by a first (synchronous) instance, which needs no runtime.
#[derive(Debug)]
pub(crate) struct Bound {
    claim: SyncListener,
    path: PathBuf,
}

impl Bound {
    pub(crate) fn bind(path: &Path) -> Result<Self, ServeError> {
        let claim = options(path)
            .and_then(|o| o.create_sync())
            .map_err(|e| bind_error(path, e))?;
        tracing::debug!(path = %path.display(), "IPC pipe created");
        Ok(Self {
            claim,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Swaps the claiming instance for a tokio listener (inside the runtime).
    pub(crate) fn listen(self) -> Result<Listening, ServeError> {
        let Self { claim, path } = self;
        drop(claim);
        let listener = options(&path)
            .and_then(|o| o.create_tokio())
            .map_err(|e| bind_error(&path, e))?;
        Ok(Listening { listener })
    }
}

pub(crate) struct Listening {
    listener: TokioListener,
}

impl Listening {
    /// The next connection. The pipe's DACL has already kept other users out.
    pub(crate) async fn accept(&self) -> io::Result<Option<Stream>> {
        self.listener.accept().await.map(Some)
    }
}
