//! The endpoint over a real Unix socket: permissions, stale and live sockets, shutdown, and
//! (as root) directories and peers of another user.
#![cfg(unix)]

mod common;

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::{Harness, TestService, within};
use futures::FutureExt;
use opconnect_ipc::frame;
use opconnect_ipc::{Client, ClientError, ServeError, Server};
use serde_json::json;
use tokio::sync::oneshot;

#[tokio::test]
async fn socket_is_0600_in_a_0700_directory() {
    let h = Harness::start().await;
    let dir = h.path.parent().unwrap();
    assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o700);
    let meta = std::fs::symlink_metadata(&h.path).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    assert_eq!(meta.mode() & 0o777, 0o600);
    h.stop().await;

    // An existing directory with loose permissions is tightened.
    let tmp = tempfile::tempdir().unwrap();
    let loose = tmp.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = Server::bind(&loose.join("agent.sock")).unwrap();
    assert_eq!(std::fs::metadata(&loose).unwrap().mode() & 0o777, 0o700);
    drop(server);
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("agent.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    assert!(matches!(
        Client::connect(&path).await,
        Err(ClientError::NotRunning)
    ));
    let server = Server::bind(&path).unwrap();
    let service = TestService::new(4);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service, stopped.map(drop)));
    let mut c = within(Client::connect(&path)).await.unwrap();
    assert_eq!(c.call("echo", json!([1])).await.unwrap(), json!([1]));
    stop.send(()).unwrap();
    within(task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_second_bind_on_a_live_socket_is_refused() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let err = Server::bind(&h.path).unwrap_err();
    assert!(matches!(err, ServeError::AlreadyRunning { .. }), "{err:?}");
    assert!(err.to_string().contains(&*h.path.to_string_lossy()), "{err}");
    // The refused attempt left the live agent alone.
    assert!(h.path.exists());
    assert_eq!(c.call("echo", json!([1])).await.unwrap(), json!([1]));
    assert_eq!(
        within(Client::connect(&h.path))
            .await
            .unwrap()
            .call("echo", json!([2]))
            .await
            .unwrap(),
        json!([2])
    );
    h.stop().await;
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("agent.sock");
    std::fs::write(&path, b"precious").unwrap();
    let err = Server::bind(&path).unwrap_err();
    assert!(matches!(err, ServeError::NotASocket { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn bind_needs_no_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("agent.sock");
    let server = Server::bind(&path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let service = TestService::new(4);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(service, stopped.map(drop)));
        let mut c = within(Client::connect(&path)).await.unwrap();
        assert_eq!(c.call("echo", json!(["x"])).await.unwrap(), json!(["x"]));
        stop.send(()).unwrap();
        within(task).await.unwrap().unwrap();
    });
}

#[tokio::test]
async fn client_reports_not_running() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Client::connect(&tmp.path().join("none.sock")).await,
        Err(ClientError::NotRunning)
    ));
}

#[tokio::test]
async fn shutdown_closes_clients_and_removes_the_socket() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    c.subscribe(&[]).await.unwrap();
    let path = h.path.clone();
    let _dir = h.stop().await;
    assert!(path.parent().unwrap().exists());
    assert!(!path.exists(), "socket file left behind");
    assert!(matches!(within(c.next_event()).await, Err(ClientError::Closed)));
    assert!(matches!(
        Client::connect(&path).await,
        Err(ClientError::NotRunning)
    ));
}

fn is_root() -> bool {
    let root = opconnect_ipc::endpoint::current_euid() == 0;
    if !root {
        eprintln!("skipped: needs root to create files and processes of another uid");
    }
    root
}

/// uid/gid of `nobody`, which the root-only tests impersonate.
const NOBODY: u32 = 65534;

#[tokio::test]
async fn a_directory_of_another_user_is_refused() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = Server::bind(&dir.join("agent.sock")).unwrap_err();
    assert!(
        matches!(err, ServeError::ForeignDirectory { owner: NOBODY, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&*dir.to_string_lossy()), "{err}");
}

const PEER_HELPER: &str = "OPCONNECT_IPC_TEST_PEER_SOCKET";

/// Runs in a child process as `nobody`: exit 0 when the agent closes on us without a word.
fn peer_helper(path: &Path) -> ! {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(path) else {
        std::process::exit(2)
    };
    let _ = s.write_all(&frame::encode(br#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#).unwrap());
    let mut buf = [0u8; 64];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match s.read(&mut buf) {
        Ok(0) => std::process::exit(0),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => std::process::exit(0),
        _ => std::process::exit(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_uid_is_refused() {
    if let Some(path) = std::env::var_os(PEER_HELPER) {
        peer_helper(Path::new(&path));
    }
    if !is_root() {
        return;
    }
    let h = Harness::start().await;
    // Open the file-system fences so that only the peer-credential check is left.
    for p in [h.dir.path(), h.path.parent().unwrap()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = tokio::process::Command::new(exe)
        .args(["--exact", "a_peer_of_another_uid_is_refused", "--nocapture"])
        .env(PEER_HELPER, &h.path)
        .uid(NOBODY)
        .gid(NOBODY)
        .status();
    let status = within(status).await.unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the other user's connection was not refused"
    );
    // Our own user is still served.
    assert_eq!(
        h.client().await.call("echo", json!([1])).await.unwrap(),
        json!([1])
    );
    h.stop().await;
}

#[tokio::test]
async fn a_symlinked_socket_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = Server::bind(&link.join("agent.sock")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(!real.join("agent.sock").exists());
}

#[tokio::test]
async fn the_client_refuses_a_socket_it_does_not_own() {
    let tmp = tempfile::tempdir().unwrap();
    // Not a socket at all (a symlink to one is not one either).
    let file = tmp.path().join("file.sock");
    std::fs::write(&file, b"").unwrap();
    let err = Client::connect(&file).await.unwrap_err();
    assert!(err.to_string().contains("is not a socket"), "{err}");
    if !is_root() {
        return;
    }
    // Someone else's socket: refused before a byte is sent.
    let theirs = tmp.path().join("theirs.sock");
    let listener = std::os::unix::net::UnixListener::bind(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = Client::connect(&theirs).await.unwrap_err();
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "no connection was made");
}
