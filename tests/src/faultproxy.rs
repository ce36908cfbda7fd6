//! A fault-injection TCP proxy between the agent and a real server (Dovecot, Postfix, Radicale):
//! it forwards bytes both ways until the client sends a chosen text, then misbehaves as asked.
//!
//! ```text
//!   agent ──▶ 127.0.0.1:proxy ──▶ server            rules: (trigger, fault, how many times)
//!             client→server pump: looks for the trigger text (case-insensitive, across chunks)
//!             server→client pump: obeys the connection's fault once triggered
//! ```
//!
//! Faults: `Drop` (close both sides), `Stall` (nothing more flows either way: "accept and never
//! answer" when the trigger is `Connect`), `LoseAnswer` (the server gets the command but its answer
//! never comes back: the lost acknowledgement), `HalfOpen` (stop reading from the client and never
//! answer, so its writes pile up), `Trickle` (answers at a few bytes per second), `Reset` (a TCP
//! RST in the middle of the answer), `Delay` (answers held back for a while, then forwarded).
//! Plaintext only: the trigger is matched on what the client sends.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// When a rule takes effect on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// As soon as the connection is accepted (before the server's greeting).
    Connect,
    /// When the client sends this text (case-insensitive), e.g. `" LSUB "`, `"DATA\r\n"`,
    /// `"\r\n.\r\n"` (the end of an SMTP message) or `"PUT /"`.
    Sends(String),
}

/// What the proxy does once triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close both connections; the triggering bytes are not forwarded.
    Drop,
    /// Nothing more flows either way; both connections stay open.
    Stall,
    /// The triggering bytes (and what follows) reach the server; nothing comes back.
    LoseAnswer,
    /// The client's bytes stay unread in the proxy's socket buffer; nothing comes back.
    HalfOpen,
    /// The server's answers arrive at this many bytes per second.
    Trickle { bytes_per_second: usize },
    /// The server gets the request; its answer is cut after a few bytes by a TCP reset.
    Reset,
    /// The server's answers are held back this long, then forwarded.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    trigger: Trigger,
    fault: Fault,
    /// How many more connections this rule may hit.
    remaining: usize,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    fired: AtomicUsize,
    accepted: AtomicUsize,
    stop: AtomicBool,
}

/// The proxy; it stops accepting when dropped (open connections are closed by their threads).
pub struct FaultProxy {
    port: u16,
    upstream: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16) -> Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("fault proxy: bind")?;
        let port = listener.local_addr()?.port();
        let upstream: SocketAddr = ([127, 0, 0, 1], upstream_port).into();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        thread::Builder::new()
            .name(format!("faultproxy-{port}"))
            .spawn(move || {
                for client in listener.incoming() {
                    if accepting.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    accepting.accepted.fetch_add(1, Ordering::Relaxed);
                    let shared = accepting.clone();
                    let _ = thread::Builder::new()
                        .name("faultproxy-conn".into())
                        .spawn(move || connection(client, upstream, shared));
                }
            })?;
        Ok(FaultProxy {
            port,
            upstream,
            shared,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `scheme://127.0.0.1:PORT` plus `path` (e.g. `"imap"`, `""` or `"http"`, `"/"`).
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Adds a rule that hits the next `times` connections that meet `trigger`.
    pub fn inject(&self, trigger: Trigger, fault: Fault, times: usize) {
        self.shared.rules.lock().unwrap().push(Rule {
            trigger,
            fault,
            remaining: times,
        });
    }

    /// Removes every rule not yet spent (connections already misbehaving stay so).
    pub fn heal(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// How many times a rule took effect.
    pub fn fired(&self) -> usize {
        self.shared.fired.load(Ordering::Relaxed)
    }

    /// How many connections the proxy accepted.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Waits until a rule took effect `n` times in all.
    pub fn wait_fired(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.fired() < n {
            anyhow::ensure!(
                Instant::now() < deadline,
                "fault proxy: fired {} of {n} times within {timeout:?}",
                self.fired()
            );
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What a connection is doing; set by the client pump, obeyed by both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Faulty(Fault, Option<Instant>),
}

/// Takes the first rule with `trigger` that is not spent.
fn take_rule(shared: &Shared, matches: impl Fn(&Trigger) -> bool) -> Option<Fault> {
    let mut rules = shared.rules.lock().unwrap();
    let rule = rules
        .iter_mut()
        .find(|r| r.remaining > 0 && matches(&r.trigger))?;
    rule.remaining -= 1;
    shared.fired.fetch_add(1, Ordering::Relaxed);
    Some(rule.fault)
}

fn connection(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    if let Some(fault) = take_rule(&shared, |t| *t == Trigger::Connect) {
        // Accept and never answer (or close at once): the server is not even contacted.
        if fault == Fault::Drop {
            let _ = client.shutdown(Shutdown::Both);
        } else {
            hold_open(&client, &shared);
        }
        return;
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = server.set_nodelay(true);
    let mode = Arc::new(Mutex::new(Mode::Forward));
    let (Ok(client_r), Ok(server_w), Ok(server_r), Ok(client_w)) = (
        client.try_clone(),
        server.try_clone(),
        server.try_clone(),
        client.try_clone(),
    ) else {
        return;
    };
    let answers_mode = mode.clone();
    let answers_shared = shared.clone();
    let answers = thread::spawn(move || answers_pump(server_r, client_w, answers_mode, answers_shared));
    requests_pump(client_r, server_w, mode, &shared);
    let _ = answers.join();
}

/// Keeps the client's connection open, reading nothing, until the proxy stops or the client leaves.
fn hold_open(client: &TcpStream, shared: &Shared) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    let mut probe = [0u8; 1];
    while !shared.stop.load(Ordering::Relaxed) {
        match client.peek(&mut probe) {
            Ok(0) => return,
            Ok(_) => thread::sleep(Duration::from_millis(200)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn requests_pump(mut client: TcpStream, mut server: TcpStream, mode: Arc<Mutex<Mode>>, shared: &Shared) {
    // The tail of what was seen, so that a trigger split across two reads is still found.
    let mut window: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let current = *mode.lock().unwrap();
        match current {
            Mode::Faulty(Fault::Stall | Fault::HalfOpen, _) => {
                // Read nothing more (HalfOpen: the client's writes pile up); wait for the end.
                if client_gone(&client) {
                    break;
                }
                thread::sleep(Duration::from_millis(200));
                continue;
            }
            Mode::Faulty(Fault::Drop, _) => break,
            // The answers pump cut the answer: let go of the socket without a FIN (see `reset`).
            Mode::Faulty(Fault::Reset, None) => return,
            _ => {}
        }
        let n = match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if current == Mode::Forward {
            window.extend_from_slice(chunk);
            let text = String::from_utf8_lossy(&window).to_ascii_lowercase();
            let fault = take_rule(shared, |t| match t {
                Trigger::Sends(needle) => text.contains(&needle.to_ascii_lowercase()),
                Trigger::Connect => false,
            });
            let keep = window.len().saturating_sub(256);
            window.drain(..keep);
            if let Some(fault) = fault {
                *mode.lock().unwrap() = Mode::Faulty(fault, Some(Instant::now()));
                match fault {
                    Fault::Drop => {
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = server.shutdown(Shutdown::Both);
                        break;
                    }
                    // The triggering command never reaches the server.
                    Fault::Stall | Fault::HalfOpen => continue,
                    _ => {}
                }
            }
        }
        if server.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
    // Tell the answers pump the client is gone when nothing else will.
    let mut m = mode.lock().unwrap();
    if matches!(
        *m,
        Mode::Faulty(Fault::Stall | Fault::HalfOpen | Fault::LoseAnswer, _)
    ) {
        *m = Mode::Faulty(Fault::Drop, None);
    }
}

fn client_gone(client: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    let _ = client.set_nonblocking(true);
    let gone = matches!(client.peek(&mut probe), Ok(0))
        || matches!(client.peek(&mut probe), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock);
    let _ = client.set_nonblocking(false);
    gone
}

fn answers_pump(mut server: TcpStream, mut client: TcpStream, mode: Arc<Mutex<Mode>>, shared: Arc<Shared>) {
    let mut buf = [0u8; 16 * 1024];
    let _ = server.set_read_timeout(Some(Duration::from_millis(200)));
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let current = *mode.lock().unwrap();
        match current {
            Mode::Faulty(Fault::Drop, _) => break,
            Mode::Faulty(Fault::Stall | Fault::HalfOpen, _) => {
                thread::sleep(Duration::from_millis(200));
                continue;
            }
            _ => {}
        }
        let n = match server.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        let chunk = &buf[..n];
        let sent = match *mode.lock().unwrap() {
            Mode::Forward => client.write_all(chunk).is_ok(),
            Mode::Faulty(Fault::LoseAnswer, _) => true,
            Mode::Faulty(Fault::Trickle { bytes_per_second }, _) => {
                let step = (bytes_per_second / 10).max(1);
                chunk.chunks(step).all(|part| {
                    thread::sleep(Duration::from_millis(100));
                    client.write_all(part).is_ok()
                })
            }
            Mode::Faulty(Fault::Reset, _) => {
                let _ = client.write_all(&chunk[..chunk.len().min(8)]);
                reset(&client);
                *mode.lock().unwrap() = Mode::Faulty(Fault::Reset, None);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
            Mode::Faulty(Fault::Delay(d), Some(since)) => {
                if let Some(left) = d.checked_sub(since.elapsed()) {
                    thread::sleep(left);
                }
                client.write_all(chunk).is_ok()
            }
            Mode::Faulty(..) => true,
        };
        if !sent {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// Makes the close of `stream` a TCP RST instead of a FIN (SO_LINGER with a zero timeout); the
/// reset goes out when the last descriptor of the socket is closed.
#[allow(unsafe_code)]
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid socket with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
