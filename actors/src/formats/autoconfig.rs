//! Thunderbird's autoconfig file (`config-v1.1.xml`, the "clientConfig" format served at
//! `https://autoconfig.DOMAIN/mail/config-v1.1.xml` and `https://DOMAIN/.well-known/autoconfig/
//! mail/config-v1.1.xml`) read into discovery candidates. Pure; the fetch is in
//! `discovery::autoconfig`.
//!
//! ```text
//!   <clientConfig><emailProvider id> <displayName>
//!       <incomingServer type="imap"> hostname port socketType (SSL | STARTTLS | plain)
//!       <outgoingServer type="smtp"> …
//!   <calendar type="caldav"><serverURL> · <addressBook type="carddav"><serverURL>
//! ```

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::formats::discovery::{Candidate, Service};

/// The largest file read; real ones are a few kilobytes.
pub const AUTOCONFIG_MAX: usize = 64 * 1024;
/// Where autoconfig candidates rank: after SRV (whose ranks start at 0) and before guesses (1000).
const RANK: u32 = 500;

/// What an autoconfig file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Autoconfig {
    /// `<displayName>`, else the `emailProvider` id.
    pub provider: Option<String>,
    pub candidates: Vec<Candidate>,
}

#[derive(Default)]
struct Server {
    kind: String,
    hostname: String,
    port: String,
    socket: String,
    url: String,
}

/// Reads `xml` for `email`: `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%` are
/// replaced in host names and URLs. Unknown elements and server types (POP3, EWS) are skipped.
pub fn parse(xml: &str, email: &str, source: &str) -> Result<Autoconfig, String> {
    if xml.len() > AUTOCONFIG_MAX {
        return Err(format!("the autoconfig file is over {AUTOCONFIG_MAX} bytes"));
    }
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let fill = |s: &str| {
        s.trim()
            .replace("%EMAILADDRESS%", email)
            .replace("%EMAILLOCALPART%", local)
            .replace("%EMAILDOMAIN%", domain)
    };
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = Autoconfig::default();
    let (mut id, mut display) = (None::<String>, None::<String>);
    let mut display_done = false;
    let mut server: Option<Server> = None;
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|e| format!("autoconfig XML: {e}"))? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if path.is_empty() {
                    if name != "clientConfig" {
                        return Err(format!("not an autoconfig file (root element <{name}>)"));
                    }
                    seen_root = true;
                }
                let attr = |key: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == key)
                        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                        .map(|v| v.into_owned())
                };
                match name.as_str() {
                    "emailProvider" => id = attr("id"),
                    "incomingServer" | "outgoingServer" | "calendar" | "addressBook" => {
                        server = Some(Server {
                            kind: attr("type").unwrap_or_default().to_ascii_lowercase(),
                            ..Server::default()
                        });
                    }
                    _ => {}
                }
                path.push(name);
                if path.len() > 16 {
                    return Err("autoconfig XML nested too deep".into());
                }
            }
            event @ (Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)) => {
                let text = match event {
                    Event::Text(t) => t.to_string(),
                    Event::CData(t) => t.to_string(),
                    Event::GeneralRef(r) => match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                            .unwrap_or_default()
                            .to_owned(),
                    },
                    _ => String::new(),
                };
                let leaf = path.last().map(String::as_str).unwrap_or("");
                let parent = path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| path.get(i))
                    .map(String::as_str);
                match (parent, leaf, server.as_mut()) {
                    (Some("emailProvider"), "displayName", _) if !display_done => {
                        display.get_or_insert_with(String::new).push_str(&text)
                    }
                    (_, "hostname", Some(s)) => s.hostname.push_str(&text),
                    (_, "port", Some(s)) => s.port.push_str(&text),
                    (_, "socketType", Some(s)) => s.socket.push_str(&text),
                    (_, "serverURL", Some(s)) => s.url.push_str(&text),
                    _ => {}
                }
            }
            Event::End(e) => {
                let name = e.local_name().as_ref().to_owned();
                display_done |= name == "displayName" && display.is_some();
                if let Some(s) = server.as_mut()
                    && matches!(
                        name.as_str(),
                        "incomingServer" | "outgoingServer" | "calendar" | "addressBook"
                    )
                {
                    s.hostname = fill(&s.hostname);
                    s.url = fill(&s.url);
                }
                if matches!(
                    name.as_str(),
                    "incomingServer" | "outgoingServer" | "calendar" | "addressBook"
                ) && let Some(s) = server.take()
                    && let Some(c) = candidate(&s, source, out.candidates.len())
                    && !out
                        .candidates
                        .iter()
                        .any(|o| o.url == c.url && o.service == c.service)
                {
                    out.candidates.push(c);
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err("not an autoconfig file (no <clientConfig>)".into());
    }
    out.provider = display.map(|d| fill(&d)).filter(|d| !d.is_empty()).or(id);
    Ok(out)
}

fn candidate(s: &Server, source: &str, index: usize) -> Option<Candidate> {
    let host_port = || {
        let host = s.hostname.trim();
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return None;
        }
        let port: u16 = s.port.trim().parse().ok()?;
        Some(format!("{host}:{port}"))
    };
    let tls = s.socket.trim().eq_ignore_ascii_case("SSL");
    let (service, url) = match s.kind.as_str() {
        "imap" => (
            Service::Imap,
            format!("{}://{}", if tls { "imaps" } else { "imap" }, host_port()?),
        ),
        "smtp" => (
            Service::Smtp,
            format!("{}://{}", if tls { "smtps" } else { "smtp" }, host_port()?),
        ),
        // http:// is kept for the endpoint rules to judge (loopback only).
        "caldav" if s.url.starts_with("https://") || s.url.starts_with("http://") => {
            (Service::CalDav, s.url.clone())
        }
        "carddav" if s.url.starts_with("https://") || s.url.starts_with("http://") => {
            (Service::CardDav, s.url.clone())
        }
        _ => return None,
    };
    Some(Candidate {
        service,
        url,
        source: source.to_owned(),
        rank: RANK + index as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the files in Thunderbird's ISPDB (autoconfig.thunderbird.net/v1.1/).
    const FASTMAIL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="fastmail.com">
    <domain>fastmail.com</domain>
    <displayName>Fastmail</displayName>
    <incomingServer type="imap">
      <hostname>imap.fastmail.com</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.fastmail.com</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname><port>587</port><socketType>STARTTLS</socketType>
    </outgoingServer>
  </emailProvider>
  <addressBook type="carddav"><serverURL>https://carddav.fastmail.com/dav/addressbooks/user/%EMAILADDRESS%/</serverURL></addressBook>
  <calendar type="caldav"><serverURL>https://caldav.fastmail.com/dav/calendars/user/%EMAILADDRESS%/</serverURL></calendar>
</clientConfig>"#;

    #[test]
    fn a_provider_file_reads() {
        let a = parse(FASTMAIL, "alice@example.org", "autoconfig").unwrap();
        assert_eq!(a.provider.as_deref(), Some("Fastmail"));
        let urls: Vec<(Service, &str)> = a.candidates.iter().map(|c| (c.service, c.url.as_str())).collect();
        assert_eq!(
            urls,
            vec![
                (Service::Imap, "imaps://imap.fastmail.com:993"),
                (Service::Smtp, "smtp://smtp.example.org:587"),
                (
                    Service::CardDav,
                    "https://carddav.fastmail.com/dav/addressbooks/user/alice@example.org/"
                ),
                (
                    Service::CalDav,
                    "https://caldav.fastmail.com/dav/calendars/user/alice@example.org/"
                ),
            ]
        );
        assert!(a.candidates.iter().all(|c| c.rank >= 500 && c.rank < 1000));
    }

    #[test]
    fn candidates_pass_the_endpoint_rules() {
        use crate::net::endpoint::{self, Protocol};
        let a = parse(FASTMAIL, "alice@example.org", "autoconfig").unwrap();
        for c in a.candidates {
            let proto = match c.service {
                Service::Imap => Protocol::Imap,
                Service::Smtp => Protocol::Smtp,
                Service::Sieve => Protocol::Sieve,
                Service::CalDav | Service::CardDav => Protocol::Dav,
            };
            endpoint::parse(proto, &c.url).unwrap();
        }
    }

    #[test]
    fn other_documents_are_refused() {
        assert!(
            parse("<html><body>404</body></html>", "a@b.c", "x")
                .unwrap_err()
                .contains("<html>")
        );
        assert!(parse("not xml at all", "a@b.c", "x").is_err());
        assert!(
            parse(&"x".repeat(AUTOCONFIG_MAX + 1), "a@b.c", "x")
                .unwrap_err()
                .contains("over")
        );
        let odd = r#"<clientConfig><emailProvider id="e"><incomingServer type="imap"><hostname>a/b</hostname><port>x</port></incomingServer></emailProvider></clientConfig>"#;
        let a = parse(odd, "a@b.c", "x").unwrap();
        assert!(a.candidates.is_empty());
        assert_eq!(a.provider.as_deref(), Some("e"));
    }
}
