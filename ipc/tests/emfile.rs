//! The accept loop when the process is out of file descriptors: it backs off and says so once
//! per burst, instead of a warning every 100 ms, and serves again when descriptors are back.
//! Alone in its test binary: it lowers this process's RLIMIT_NOFILE.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, within};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[allow(unsafe_code)]
fn set_nofile(soft: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let old = lim.rlim_cur;
        lim.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_backs_off_and_is_logged_once() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .init();
    let h = Harness::start().await;
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let old = set_nofile(open + 4);
    let mut held = Vec::new();
    for _ in 0..32 {
        match std::os::unix::net::UnixStream::connect(&h.path) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    // Connections wait in the backlog that the server cannot accept: a burst of EMFILE.
    tokio::time::sleep(Duration::from_secs(3)).await;
    set_nofile(old);
    drop(held);
    let mut c = within(opconnect_ipc::Client::connect(&h.path)).await.unwrap();
    let answer = within(c.call("echo", json!([1]))).await.unwrap();
    assert_eq!(answer, json!([1]));
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    let warnings = text.matches("accepting an IPC connection failed").count();
    assert_eq!(warnings, 1, "one warning per burst:\n{text}");
    assert!(text.contains("works again"), "{text}");
    h.stop().await;
}
