//! Scripted fake servers for the hostile-input tests: an HTTP/1.1 server that records every
//! request (method, path, Host, Authorization) and answers from a closure, including bodies far
//! larger than memory should hold; a TCP server that runs a script per connection (an IMAP
//! greeting followed by a line that never ends); and a reader of a process's resident memory.
//!
//! ```text
//!   FakeHttp::start("127.0.0.1", |req, port| Reply) ─► one thread per connection,
//!        Connection: close after each answer; `seen()` lists what arrived
//!   FakeTcp::start(|stream| script) ─► one thread per connection
//! ```
//! Real servers are used everywhere else; these only play the broken or hostile server.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// What the fake answers.
pub enum Reply {
    /// A status, extra headers and a body sent with Content-Length.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// A status and `len` bytes of `fill`, close-delimited (no Content-Length: only the
    /// client's own cap stops it).
    Endless {
        status: u16,
        prefix: Vec<u8>,
        fill: u8,
        len: u64,
    },
}

impl Reply {
    pub fn status(code: u16) -> Reply {
        Reply::Full(code, Vec::new(), Vec::new())
    }

    pub fn multistatus(body: &str) -> Reply {
        Reply::Full(
            207,
            vec![("Content-Type".into(), "application/xml; charset=utf-8".into())],
            body.as_bytes().to_vec(),
        )
    }

    pub fn unauthorized() -> Reply {
        Reply::Full(
            401,
            vec![("WWW-Authenticate".into(), "Basic realm=\"fake\"".into())],
            Vec::new(),
        )
    }

    pub fn redirect(code: u16, location: &str) -> Reply {
        Reply::Full(code, vec![("Location".into(), location.into())], Vec::new())
    }

    pub fn options() -> Reply {
        Reply::Full(
            200,
            vec![("DAV".into(), "1, 2, 3, calendar-access, addressbook".into())],
            Vec::new(),
        )
    }
}

type Handler = dyn Fn(&Seen, u16) -> Reply + Send + Sync;

/// A recording HTTP server on `ip`:0.
pub struct FakeHttp {
    pub port: u16,
    pub ip: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    pub fn start(ip: &str, handler: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind((ip, 0)).expect("bind the fake HTTP server");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, handler) = (seen2.clone(), handler.clone());
                thread::spawn(move || {
                    let _ = serve(stream, port, &seen, &*handler);
                });
            }
        });
        FakeHttp {
            port,
            ip: ip.to_owned(),
            seen,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}/", self.ip, self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect((self.ip.as_str(), self.port));
    }
}

fn serve(stream: TcpStream, port: u16, seen: &Mutex<Vec<Seen>>, handler: &Handler) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let (mut host, mut authorization, mut length) = (String::new(), None, 0usize);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            let value = value.trim().to_owned();
            match name.to_ascii_lowercase().as_str() {
                "host" => host = value,
                "authorization" => authorization = Some(value),
                "content-length" => length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request = Seen {
        method,
        path,
        host,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(request.clone());
    let mut out = stream;
    match handler(&request, port) {
        Reply::Full(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            out.write_all(&body)?;
        }
        Reply::Endless {
            status,
            prefix,
            fill,
            len,
        } => {
            let head =
                format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Type: application/xml\r\n\r\n");
            out.write_all(head.as_bytes())?;
            out.write_all(&prefix)?;
            let chunk = vec![fill; 1 << 20];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                out.write_all(&chunk[..n])?;
                left -= n as u64;
            }
        }
    }
    out.flush()
}

/// A TCP server on 127.0.0.1:0 that runs `script` on each connection in its own thread.
pub struct FakeTcp {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeTcp {
    pub fn start(script: impl Fn(TcpStream) + Send + Sync + 'static) -> FakeTcp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake TCP server");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let script = Arc::new(script);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let script = script.clone();
                thread::spawn(move || script(stream));
            }
        });
        FakeTcp { port, stop }
    }
}

impl Drop for FakeTcp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Resident memory of process `pid` in MiB (`VmRSS` of /proc/PID/status), and its peak (`VmHWM`).
pub fn rss_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A multistatus with one response `href` carrying `prop` (already XML) with 200.
pub fn one_prop(href: &str, prop: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>{href}</d:href><d:propstat><d:prop>{prop}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#
    )
}

/// An empty multistatus.
pub const EMPTY_MULTISTATUS: &str =
    r#"<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"/>"#;
