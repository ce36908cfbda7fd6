//! A scripted front for a real DAV server whose sync-collection answers lie (issue 21): it
//! forwards every HTTP request to the server, and from REPORT sync-collection answers to a
//! request that carried a token it drops each member whose href contains a chosen text, as
//! Zimbra leaves changes out. Everything else (PROPFIND etag listings, multigets, PUTs) passes
//! unchanged. Plain HTTP on 127.0.0.1 only.
//!
//! ```text
//!   agent ──HTTP/1.1 keep-alive──▶ front ──one connection per request──▶ Radicale
//!                                   └─ REPORT sync-collection with a token: <response>s whose
//!                                      href contains `hide` are cut out of the 207 answer
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub struct LyingDav {
    port: u16,
    dropped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl LyingDav {
    /// Listens on 127.0.0.1 and forwards to `upstream_port`, hiding hrefs that contain `hide`.
    pub fn start(upstream_port: u16, hide: &str) -> Result<LyingDav> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let dropped = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s, hide) = (dropped.clone(), stop.clone(), hide.to_owned());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (d, hide) = (d.clone(), hide.clone());
                thread::spawn(move || {
                    let _ = serve(conn, upstream_port, &hide, &d);
                });
            }
        });
        Ok(LyingDav { port, dropped, stop })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// How many members the front has cut out of sync-collection answers so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for LyingDav {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One HTTP message: the head's lines and the body.
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one message; `None` at a clean end of the connection. Bodies by Content-Length or
/// chunked (RFC 9112 §6–7); a response without either runs to the end of the connection.
fn read_message(r: &mut BufReader<TcpStream>, response: bool) -> Result<Option<Message>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            bail!("connection closed inside a head");
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut body = Vec::new();
    if let Some(n) = header(&head, "Content-Length") {
        body.resize(n.parse().context("Content-Length")?, 0);
        r.read_exact(&mut body)?;
    } else if header(&head, "Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if response {
        r.read_to_end(&mut body)?;
    }
    Ok(Some(Message { head, body }))
}

fn write_message(w: &mut TcpStream, m: &Message, extra: &[&str]) -> Result<()> {
    let mut out = String::new();
    out.push_str(&m.head[0]);
    out.push_str("\r\n");
    for line in m.head.iter().skip(1) {
        let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        // Accept-Encoding too: the server then answers uncompressed, and the front can read
        // what it rewrites (the agent asks for gzip on REPORT, see dav/client.rs).
        if [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "accept-encoding",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", m.body.len()));
    w.write_all(out.as_bytes())?;
    w.write_all(&m.body)?;
    w.flush()?;
    Ok(())
}

fn serve(client: TcpStream, upstream_port: u16, hide: &str, dropped: &AtomicUsize) -> Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    while let Some(request) = read_message(&mut reader, false)? {
        let text = String::from_utf8_lossy(&request.body);
        let lie = request.head[0].starts_with("REPORT ")
            && text.contains("sync-collection")
            && !text.contains("<d:sync-token></d:sync-token>")
            && !text.contains("<sync-token/>");
        let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
        upstream.set_read_timeout(Some(Duration::from_secs(60)))?;
        write_message(&mut upstream, &request, &["Connection: close"])?;
        let mut up = BufReader::new(upstream);
        let mut answer = read_message(&mut up, true)?.context("no answer upstream")?;
        if lie {
            let (body, n) = cut_members(&String::from_utf8_lossy(&answer.body), hide);
            dropped.fetch_add(n, Ordering::SeqCst);
            answer.body = body.into_bytes();
        }
        write_message(&mut writer, &answer, &[])?;
    }
    Ok(())
}

/// Removes every `<…response>…</…response>` element whose text contains `hide`.
pub fn cut_members(xml: &str, hide: &str) -> (String, usize) {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    let mut cut = 0;
    loop {
        let Some(open) = find_tag(rest, "response", false) else {
            out.push_str(rest);
            return (out, cut);
        };
        let Some(close_at) = find_tag(&rest[open..], "response", true) else {
            out.push_str(rest);
            return (out, cut);
        };
        let close = open + close_at;
        let end = close + rest[close..].find('>').map_or(rest.len() - close, |i| i + 1);
        out.push_str(&rest[..open]);
        let member = &rest[open..end];
        if member.contains(hide) {
            cut += 1;
        } else {
            out.push_str(member);
        }
        rest = &rest[end..];
    }
}

/// The position of the next `<response` / `<x:response` (or the closing form) tag.
fn find_tag(text: &str, local: &str, closing: bool) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find('<') {
        let at = from + i;
        let mut name = &text[at + 1..];
        if closing {
            let Some(n) = name.strip_prefix('/') else {
                from = at + 1;
                continue;
            };
            name = n;
        }
        let name = name.split(['>', ' ', '/', '\n', '\t', '\r']).next().unwrap_or("");
        let local_name = name.rsplit(':').next().unwrap_or(name);
        if local_name == local && !name.starts_with('/') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_cut() {
        let xml = r#"<multistatus xmlns="DAV:"><response><href>/a/ok.ics</href></response><response><href>/a/lost-1.ics</href></response><sync-token>t</sync-token></multistatus>"#;
        let (out, n) = cut_members(xml, "lost");
        assert_eq!(n, 1);
        assert_eq!(
            out,
            r#"<multistatus xmlns="DAV:"><response><href>/a/ok.ics</href></response><sync-token>t</sync-token></multistatus>"#
        );
        let (out, n) = cut_members("<d:response><d:href>x-lost</d:href></d:response>", "lost");
        assert_eq!((out.as_str(), n), ("", 1));
    }
}
