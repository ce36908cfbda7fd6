//! A minimal blocking HTTP/1.1 client (RFC 9112) over `std::net::TcpStream`, enough for WebDAV
//! provisioning and probing of a private server: one request per connection (`Connection: close`),
//! Basic auth (RFC 7617), Content-Length or chunked bodies.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;

/// A server that does not answer within this time is considered broken.
const TIMEOUT: Duration = Duration::from_secs(15);

/// One HTTP request to 127.0.0.1.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Absolute path, e.g. `/alice/calendar/`.
    pub path: &'a str,
    /// Basic credentials.
    pub auth: Option<(&'a str, &'a str)>,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl<'a> HttpRequest<'a> {
    pub fn new(method: &'a str, path: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            method,
            path,
            auth: None,
            headers: Vec::new(),
            body: b"",
        }
    }

    pub fn auth(mut self, user: &'a str, password: &'a str) -> Self {
        self.auth = Some((user, password));
        self
    }

    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Sends the request to 127.0.0.1:`port` and reads the whole response.
    pub fn send(&self, port: u16) -> Result<HttpResponse> {
        self.send_within(port, TIMEOUT)
    }

    /// [`HttpRequest::send`] with another limit on connecting and on each read and write (the
    /// bench's one-request floor on a large collection takes longer than the default).
    pub fn send_within(&self, port: u16, timeout: Duration) -> Result<HttpResponse> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to http://127.0.0.1:{port}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             Content-Length: {}\r\nUser-Agent: opconnect-tests\r\n",
            self.method,
            self.path,
            self.body.len()
        );
        if let Some((user, password)) = self.auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            head.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(self.body)?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .with_context(|| format!("reading the answer to {} {}", self.method, self.path))?;
        HttpResponse::parse(&raw)
    }
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names as sent; look them up with [`HttpResponse::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses a raw response as read until the server closed the connection.
    pub fn parse(raw: &[u8]) -> Result<HttpResponse> {
        let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            bail!(
                "incomplete HTTP response ({} bytes): {:?}",
                raw.len(),
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            );
        };
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let rest = &raw[split + 4..];
        response.body = if response
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            dechunk(rest)?
        } else if let Some(len) = response.header("Content-Length") {
            let len: usize = len.parse().context("bad Content-Length")?;
            rest[..len.min(rest.len())].to_vec()
        } else {
            rest.to_vec()
        };
        Ok(response)
    }
}

/// Decodes a chunked body (RFC 9112 §7.1); trailers are ignored.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            bail!("truncated chunked body");
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).context("bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            bail!("truncated chunk");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked() {
        let r = HttpResponse::parse(b"HTTP/1.1 207 Multi-Status\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status, r.text().as_str()), (207, "abc"));
        let r = HttpResponse::parse(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.text(), "abcde");
        assert_eq!(r.header("TRANSFER-ENCODING"), Some("chunked"));
    }
}
