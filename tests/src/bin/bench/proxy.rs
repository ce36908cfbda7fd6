//! A counting TCP proxy on 127.0.0.1: every tool under test talks to a server through one, so
//! requests and bytes are counted the same way for opconnect, vdirsyncer and mbsync.
//!
//! ```text
//!   client ──▶ 127.0.0.1:PROXY ──▶ 127.0.0.1:SERVER
//!              │ up:   bytes, and requests framed as HTTP/1.1 (RFC 9112 §6) or IMAP commands
//!              │       (RFC 3501 §2.2.1, literals passed over)
//!              └ down: bytes
//! ```
//!
//! A request is counted when its head (HTTP) or its first line (IMAP) has arrived, so the count
//! is exact whatever the body size or how the bytes are split across reads. Under TLS the
//! stream cannot be framed ([`Framing::Opaque`]): bytes and connections only.
//!
//! With a [`Link`] the proxy also plays a long, narrow line (the `link` benchmark): each
//! direction is a queue that serializes bytes at the line's rate and delivers them one-way
//! delay later; a new connection waits one round trip first (the TCP handshake).
//!
//! ```text
//!   read at t ─▶ sent from max(t, end of previous) for len/rate ─▶ written delay later
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How the client's byte stream is cut into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// HTTP/1.1 requests: head, then a Content-Length or chunked body.
    Http,
    /// IMAP commands: a tagged line, possibly continued after literals.
    Imap,
    /// Encrypted (TLS): bytes and connections are counted, requests cannot be.
    Opaque,
}

/// The line between the client and the server: a one-way delay each direction and a rate cap
/// per direction. The default is loopback as it is (no delay, no cap).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Link {
    /// Round-trip time; half of it is added each way.
    pub rtt: Duration,
    /// Bits per second each way; `None`: as fast as loopback goes.
    pub bits_per_second: Option<u64>,
}

impl Link {
    /// `rtt_ms` round trip and `mbit` Mbit/s (0: uncapped).
    pub fn new(rtt_ms: u64, mbit: f64) -> Link {
        Link {
            rtt: Duration::from_millis(rtt_ms),
            bits_per_second: (mbit > 0.0).then_some((mbit * 1_000_000.0) as u64),
        }
    }

    fn is_loopback(&self) -> bool {
        self.rtt.is_zero() && self.bits_per_second.is_none()
    }

    /// How long `len` bytes occupy the line.
    fn serialization(&self, len: usize) -> Duration {
        match self.bits_per_second {
            Some(bps) => Duration::from_secs_f64(len as f64 * 8.0 / bps as f64),
            None => Duration::ZERO,
        }
    }

    /// `50 ms RTT, 20 Mbit/s` for a report line.
    pub fn describe(&self) -> String {
        let rate = match self.bits_per_second {
            Some(b) => format!("{} Mbit/s", b as f64 / 1e6),
            None => "uncapped".into(),
        };
        format!("{} ms RTT, {rate}", self.rtt.as_millis())
    }
}

/// What went through the proxy since the last [`CountingProxy::take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub connections: u64,
    pub requests: u64,
    /// Client to server.
    pub bytes_up: u64,
    /// Server to client.
    pub bytes_down: u64,
    /// Requests by HTTP method or IMAP command name (`UID FETCH`, …).
    pub methods: BTreeMap<String, u64>,
}

impl Counters {
    pub fn bytes(&self) -> u64 {
        self.bytes_up + self.bytes_down
    }

    /// `PROPFIND 2, REPORT 7` for a report line.
    pub fn methods_line(&self) -> String {
        self.methods
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A running proxy; dropping it stops accepting (open connections end with their peers).
pub struct CountingProxy {
    port: u16,
    counters: Arc<Mutex<Counters>>,
    stop: Arc<AtomicBool>,
}

impl CountingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`target`.
    pub fn start(target: u16, framing: Framing) -> Result<CountingProxy> {
        CountingProxy::start_with(target, framing, Link::default())
    }

    /// [`CountingProxy::start`] over `link`.
    pub fn start_with(target: u16, framing: Framing, link: Link) -> Result<CountingProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the proxy")?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Mutex::new(Counters::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let counters = c.clone();
                thread::spawn(move || {
                    if let Err(e) = relay(client, target, framing, link, counters) {
                        eprintln!("bench proxy: {e:#}");
                    }
                });
            }
        });
        Ok(CountingProxy { port, counters, stop })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `https://127.0.0.1:PORT/` (the server behind speaks TLS; its certificate names 127.0.0.1).
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    /// `imap://127.0.0.1:PORT`.
    pub fn imap_url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.port)
    }

    /// The counts so far, and a fresh start.
    pub fn take(&self) -> Counters {
        std::mem::take(&mut *self.counters.lock().expect("proxy counters"))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn relay(
    client: TcpStream,
    target: u16,
    framing: Framing,
    link: Link,
    counters: Arc<Mutex<Counters>>,
) -> Result<()> {
    // SYN, SYN-ACK: the client's first bytes leave one round trip after it connected.
    thread::sleep(link.rtt);
    let server = TcpStream::connect((Ipv4Addr::LOCALHOST, target))
        .with_context(|| format!("proxy: connecting to 127.0.0.1:{target}"))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    counters.lock().expect("proxy counters").connections += 1;
    let (client_r, server_w) = (client.try_clone()?, server.try_clone()?);
    let down_counters = counters.clone();
    let down = thread::spawn(move || pump(server, client, &down_counters, Direction::Down, link));
    pump(
        client_r,
        server_w,
        &counters,
        Direction::Up(Framer::new(framing)),
        link,
    );
    let _ = down.join();
    Ok(())
}

/// Which way bytes go; the client's way is framed into requests.
enum Direction {
    Up(Framer),
    Down,
}

/// Copies `from` to `to` until either side closes, counting bytes, and requests when framed;
/// over a [`Link`] the writes are delayed and paced by a second thread ([`deliver`]).
fn pump(from: TcpStream, to: TcpStream, counters: &Mutex<Counters>, mut direction: Direction, link: Link) {
    if link.is_loopback() {
        let mut to = to;
        read_loop(from, counters, &mut direction, |bytes, _| {
            to.write_all(bytes).is_ok()
        });
        let _ = to.shutdown(Shutdown::Write);
        return;
    }
    // Bounded: a sender far ahead of the line is held back, as by a full socket buffer.
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(64);
    let writer = thread::spawn(move || deliver(rx, to, link));
    read_loop(from, counters, &mut direction, |bytes, at| {
        tx.send((at, bytes.to_vec())).is_ok()
    });
    drop(tx);
    let _ = writer.join();
}

/// Writes what arrives on `rx` as the line would deliver it (see the module docs).
fn deliver(rx: mpsc::Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, link: Link) {
    let one_way = link.rtt / 2;
    let mut line_free = Instant::now();
    'chunks: for (read_at, bytes) in rx {
        // Pieces of 16 KiB keep the pacing smooth at low rates.
        for piece in bytes.chunks(16 * 1024) {
            let start = line_free.max(read_at);
            line_free = start + link.serialization(piece.len());
            let arrive = line_free + one_way;
            let now = Instant::now();
            if arrive > now {
                thread::sleep(arrive - now);
            }
            if to.write_all(piece).is_err() {
                break 'chunks;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads `from` until it closes, counting; hands each read to `forward` with the time it was
/// read, until that returns false.
fn read_loop(
    mut from: TcpStream,
    counters: &Mutex<Counters>,
    direction: &mut Direction,
    mut forward: impl FnMut(&[u8], Instant) -> bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = Instant::now();
        {
            let mut c = counters.lock().expect("proxy counters");
            match direction {
                Direction::Up(f) => {
                    c.bytes_up += n as u64;
                    for name in f.feed(&buf[..n]) {
                        if name != "DONE" {
                            c.requests += 1;
                        }
                        *c.methods.entry(name).or_default() += 1;
                    }
                }
                Direction::Down => c.bytes_down += n as u64,
            }
        }
        if !forward(&buf[..n], at) {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Read);
}

/// Where the framer is in the client's stream.
#[derive(Debug)]
enum State {
    /// Collecting a line (IMAP) or a request head (HTTP).
    Head,
    /// Passing over this many body or literal bytes (counted, not framed).
    Body(u64),
    /// HTTP chunked body: collecting a chunk-size line.
    ChunkSize,
    /// HTTP chunked body: passing over a chunk and its CRLF, then another size line.
    ChunkData(u64),
    /// HTTP chunked body: collecting trailer lines until an empty one.
    Trailer,
}

/// Cuts a client byte stream into requests (see the module docs).
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    state: State,
    pending: Vec<u8>,
    /// IMAP: the current command continues after a literal (its name was already counted).
    continued: bool,
}

impl Framer {
    pub fn new(framing: Framing) -> Framer {
        Framer {
            framing,
            state: State::Head,
            pending: Vec::new(),
            continued: false,
        }
    }

    /// Consumes bytes; returns the names of the requests that started in them.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut started = Vec::new();
        if self.framing == Framing::Opaque {
            return started;
        }
        while !bytes.is_empty() {
            match self.state {
                State::Body(n) | State::ChunkData(n) => {
                    let take = (n as usize).min(bytes.len());
                    bytes = &bytes[take..];
                    let left = n - take as u64;
                    self.state = match (&self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::Head | State::ChunkSize | State::Trailer => {
                    let end = if matches!(self.state, State::Head) && self.framing == Framing::Http {
                        b"\r\n\r\n".as_slice()
                    } else {
                        b"\n".as_slice()
                    };
                    let before = self.pending.len().saturating_sub(end.len() - 1);
                    self.pending.extend_from_slice(bytes);
                    let Some(at) = find(&self.pending[before..], end).map(|i| before + i + end.len()) else {
                        return started;
                    };
                    let used = at - (self.pending.len() - bytes.len());
                    bytes = &bytes[used..];
                    let unit: Vec<u8> = self.pending.drain(..).take(at).collect();
                    if let Some(name) = self.complete(&unit) {
                        started.push(name);
                    }
                }
            }
        }
        started
    }

    /// A complete head or line; returns a request name when one starts here.
    fn complete(&mut self, unit: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(unit);
        match (&self.state, self.framing) {
            (State::Head, Framing::Http) => {
                let mut lines = text.split("\r\n");
                let method = lines.next()?.split(' ').next()?.to_owned();
                let mut length = 0u64;
                let mut chunked = false;
                for line in lines {
                    let Some((name, value)) = line.split_once(':') else {
                        continue;
                    };
                    let value = value.trim();
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.parse().unwrap_or(0);
                    } else if name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = value.to_ascii_lowercase().contains("chunked");
                    }
                }
                self.state = if chunked {
                    State::ChunkSize
                } else if length > 0 {
                    State::Body(length)
                } else {
                    State::Head
                };
                Some(method)
            }
            (State::Head, Framing::Imap) => {
                let line = text.trim_end_matches(['\r', '\n']);
                let name = if self.continued {
                    None
                } else {
                    imap_command_name(line)
                };
                // RFC 3501 §4.3 / RFC 7888: a line ending in {N} or {N+} is followed by N bytes.
                match literal_length(line) {
                    Some(n) => {
                        self.continued = true;
                        self.state = if n > 0 { State::Body(n) } else { State::Head };
                    }
                    None => self.continued = false,
                }
                name
            }
            (State::ChunkSize, _) => {
                let size = text.trim().split(';').next().unwrap_or("0");
                let size = u64::from_str_radix(size.trim(), 16).unwrap_or(0);
                // Each chunk is followed by CRLF (RFC 9112 §7.1).
                self.state = if size == 0 {
                    State::Trailer
                } else {
                    State::ChunkData(size + 2)
                };
                None
            }
            (State::Trailer, _) => {
                if text.trim().is_empty() {
                    self.state = State::Head;
                }
                None
            }
            (State::Body(_) | State::ChunkData(_), _) | (_, Framing::Opaque) => None,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `a1 UID FETCH …` → `UID FETCH`; `DONE` (ends IDLE) → `DONE`; an empty line → nothing.
fn imap_command_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first.eq_ignore_ascii_case("DONE") {
        return Some("DONE".into());
    }
    let command = words.next().unwrap_or("?").to_ascii_uppercase();
    if command == "UID" {
        let sub = words.next().unwrap_or("?").to_ascii_uppercase();
        return Some(format!("UID {sub}"));
    }
    Some(command)
}

fn literal_length(line: &str) -> Option<u64> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` cut at every `step` bytes; returns the request names.
    fn names(framing: Framing, stream: &[u8], step: usize) -> Vec<String> {
        let mut f = Framer::new(framing);
        stream.chunks(step).flat_map(|c| f.feed(c)).collect()
    }

    #[test]
    fn http_requests_are_counted_whatever_the_split() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"PROPFIND /a/ HTTP/1.1\r\nContent-Length: 5\r\nDepth: 1\r\n\r\nhello");
        stream.extend_from_slice(b"REPORT /a/ HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        stream.extend_from_slice(b"4\r\nGET \r\n3;x=y\r\nPUT\r\n0\r\n\r\n");
        stream.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.extend_from_slice(b"PUT /c HTTP/1.1\r\nContent-Length: 21\r\n\r\nGET /x HTTP/1.1\r\n\r\n\r\n");
        for step in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(
                names(Framing::Http, &stream, step),
                ["PROPFIND", "REPORT", "GET", "PUT"],
                "step {step}"
            );
        }
    }

    #[test]
    fn imap_commands_pass_over_literals() {
        let stream = b"a1 LOGIN alice pw\r\na2 APPEND INBOX (\\Seen) {12+}\r\na3 NOOP\r\nx\r\n\r\n\
                       a4 uid fetch 1:* (FLAGS)\r\na5 IDLE\r\nDONE\r\na6 APPEND X {0}\r\n\r\n";
        for step in [1, 5, 4096] {
            assert_eq!(
                names(Framing::Imap, stream, step),
                ["LOGIN", "APPEND", "UID FETCH", "IDLE", "DONE", "APPEND"],
                "step {step}"
            );
        }
    }

    #[test]
    fn proxy_counts_a_real_exchange() -> Result<()> {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let target = server.local_addr()?.port();
        thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 18];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let proxy = CountingProxy::start(target, Framing::Http)?;
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port()))?;
        c.write_all(b"GET / HTTP/1.1\r\n\r\n")?;
        let mut back = [0u8; 18];
        c.read_exact(&mut back)?;
        let counts = proxy.take();
        assert_eq!((counts.requests, counts.bytes_up, counts.bytes_down), (1, 18, 18));
        assert_eq!(counts.methods_line(), "GET 1");
        assert_eq!(proxy.take().requests, 0);
        Ok(())
    }

    /// An echo server behind a 100 ms, 8 Mbit/s link: connect + one exchange costs two round
    /// trips and each way's transfer, and the bytes are counted unframed.
    #[test]
    fn a_link_delays_and_paces() -> Result<()> {
        const SIZE: usize = 200_000;
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let target = server.local_addr()?.port();
        thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = vec![0u8; SIZE];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let link = Link::new(100, 8.0);
        assert_eq!(link.describe(), "100 ms RTT, 8 Mbit/s");
        let proxy = CountingProxy::start_with(target, Framing::Opaque, link)?;
        let began = Instant::now();
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port()))?;
        c.write_all(&vec![7u8; SIZE])?;
        let mut back = vec![0u8; SIZE];
        c.read_exact(&mut back)?;
        let took = began.elapsed();
        // 200 ms of round trips + 2 × 200 ms on the line (200 kB at 1 MB/s each way).
        assert!(took >= Duration::from_millis(580), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        let counts = proxy.take();
        assert_eq!(
            (
                counts.connections,
                counts.requests,
                counts.bytes_up,
                counts.bytes_down
            ),
            (1, 0, SIZE as u64, SIZE as u64)
        );
        Ok(())
    }
}
