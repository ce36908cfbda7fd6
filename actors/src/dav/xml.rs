//! WebDAV XML: request bodies and a namespace-aware `207 Multi-Status` parser (RFC 4918 §13, §14.16).
//!
//! The parser keeps, per response and propstat, each property's namespace, local name, text,
//! the hrefs inside it and the names of its child elements: enough for principals, home sets,
//! resource types, component sets, privileges, etags and sync tokens.
//!
//! A server controls the body, so the parser's memory stays proportional to it: each namespace
//! string is stored once and shared ([`Ns`]) instead of copied per element, elements nest at most
//! [`MAX_DEPTH`] deep, a body holds at most [`MAX_PROPS`] properties, and a property keeps at most
//! [`MAX_NAMES`] child names, descendant names and `name` attributes (real ones hold a few dozen).

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

pub const NS_DAV: &str = "DAV:";
pub const NS_CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub const NS_CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";

/// PROPFIND for the authenticated user's principal (RFC 5397 §3).
pub const PROPFIND_CURRENT_USER_PRINCIPAL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/></d:prop></d:propfind>"#;

/// Elements nest no deeper than this (a multistatus property sits at depth 5; privileges at 8).
pub const MAX_DEPTH: usize = 64;
/// Properties kept per body: a sync listing of 100,000 items has a few hundred thousand.
pub const MAX_PROPS: usize = 2_000_000;
/// Child names, descendant names and `name` attributes kept per property; more are ignored.
pub const MAX_NAMES: usize = 4096;

/// An XML namespace name, shared between the elements that use it.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Ns(Arc<str>);

impl Ns {
    pub fn new(name: &str) -> Ns {
        Ns(Arc::from(name))
    }
}

impl Deref for Ns {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Ns {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Ns {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// `(namespace, local name)` of an element.
pub type Name = (Ns, String);

/// One property inside a propstat.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prop {
    pub ns: Ns,
    pub name: String,
    /// Concatenated text directly or deeper inside the property, trimmed.
    pub text: String,
    /// The same text untouched: no trimming and no end-of-line normalization, so that
    /// `calendar-data` and `address-data` keep the server's bytes (invariant 3).
    pub raw: String,
    /// Every `DAV:href` inside the property, in order.
    pub hrefs: Vec<String>,
    /// `(namespace, local name)` of each direct child element.
    pub children: Vec<Name>,
    /// `(namespace, local name)` of every element at any depth inside the property, in order
    /// (privileges sit two levels down, RFC 3744 §5.4).
    pub descendants: Vec<Name>,
    /// The `name` attribute of every element inside the property (`<C:comp name="VTODO"/>`,
    /// RFC 4791 §5.2.3).
    pub names: Vec<String>,
    /// The status of the propstat that carried it (200, 404, …).
    pub status: u16,
}

/// One `DAV:response`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DavResponse {
    pub href: String,
    /// A response-level status (RFC 4918 §14.24), as sync-collection uses for removed members.
    pub status: Option<u16>,
    pub props: Vec<Prop>,
}

impl DavResponse {
    /// The property `ns:name` if the server returned it with 200.
    pub fn prop(&self, ns: &str, name: &str) -> Option<&Prop> {
        self.props
            .iter()
            .find(|p| p.status == 200 && p.ns == ns && p.name == name)
    }
}

/// A parsed multistatus body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Multistatus {
    pub responses: Vec<DavResponse>,
    /// RFC 6578 §6.2: the new sync token of a sync-collection report.
    pub sync_token: Option<String>,
}

/// Why a body could not be read; the caller records it as a protocol error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed multistatus: {0}")]
pub struct XmlError(pub String);

/// Parses `207 Multi-Status` bodies. Unknown elements are skipped; a body that is not XML, or
/// whose root is not `DAV:multistatus`, is an error.
pub fn parse_multistatus(body: &[u8]) -> Result<Multistatus, XmlError> {
    let mut reader = NsReader::from_reader(body);
    // Whitespace matters inside calendar-data; each value is trimmed where it is used.
    reader.config_mut().trim_text(false);
    let mut out = Multistatus::default();
    let mut builder = Builder::new(usize::MAX);
    let mut buf = Vec::new();
    loop {
        let position = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| XmlError(format!("after byte {position}: {e}")))?;
        match builder.feed(ns, event)? {
            Fed::Response(r) => out.responses.push(r),
            Fed::End => break,
            Fed::More => {}
        }
        buf.clear();
    }
    out.sync_token = builder.finish()?;
    Ok(out)
}

/// What one event completed.
pub enum Fed {
    More,
    /// A whole `DAV:response`, ready to use (a streaming reader hands it on at once).
    Response(DavResponse),
    /// The end of the body.
    End,
}

/// The state of one multistatus parse, fed event by event, so that a whole body
/// ([`parse_multistatus`]) and a body read as it arrives (`dav::stream`) share one reading.
pub struct Builder {
    /// The element path as (namespace, local name).
    path: Vec<Name>,
    names: Interner,
    props_kept: usize,
    response: DavResponse,
    propstat_props: Vec<Prop>,
    propstat_status: u16,
    current: Option<Prop>,
    saw_root: bool,
    sync_token: Option<String>,
    /// Text bytes kept for the response being read, and the most one response may keep.
    item_bytes: usize,
    max_item: usize,
}

impl Builder {
    /// A parse in which one response may keep at most `max_item` bytes of text.
    pub fn new(max_item: usize) -> Builder {
        Builder {
            path: Vec::new(),
            names: Interner::default(),
            props_kept: 0,
            response: DavResponse::default(),
            propstat_props: Vec::new(),
            propstat_status: 200,
            current: None,
            saw_root: false,
            sync_token: None,
            item_bytes: 0,
            max_item,
        }
    }

    /// Takes the next event of the body.
    pub fn feed(&mut self, ns: ResolveResult<'_>, event: Event<'_>) -> Result<Fed, XmlError> {
        match event {
            Event::Start(start) => {
                let name = (self.names.ns(&ns), local(&start));
                if self.path.len() >= MAX_DEPTH {
                    return Err(XmlError(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                note_name_attr(&self.path, &mut self.current, &start);
                if self.path.is_empty() {
                    if !is_root(&name) {
                        return Err(XmlError(format!("root element is {{{}}}{}", name.0, name.1)));
                    }
                    self.saw_root = true;
                }
                open(&mut self.path, &mut self.current, name, &mut self.props_kept)?;
            }
            Event::Empty(start) => {
                let name = (self.names.ns(&ns), local(&start));
                note_name_attr(&self.path, &mut self.current, &start);
                // `<d:multistatus xmlns:d="DAV:"/>`: a listing with nothing in it.
                if self.path.is_empty() && is_root(&name) {
                    self.saw_root = true;
                }
                open(&mut self.path, &mut self.current, name, &mut self.props_kept)?;
                close(&mut self.path, &mut self.current, &mut self.propstat_props);
            }
            Event::Text(text) => self.text(&text)?,
            Event::CData(data) => self.text(&data)?,
            Event::GeneralRef(entity) => {
                // quick-xml reports `&amp;` and `&#38;` as separate events (XML 1.0 §4.1, §4.6).
                let text = match entity.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = entity.xml10_content();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError(format!("unknown entity &{name};")))?
                            .to_owned()
                    }
                    Err(e) => return Err(XmlError(format!("bad character reference: {e}"))),
                };
                self.text(&text)?;
            }
            Event::End(end) => {
                let name = (self.names.ns(&ns), end.local_name().as_ref().to_owned());
                let is = |n: &str| name.0 == NS_DAV && name.1 == n;
                let mut done = None;
                if is("propstat") {
                    for mut p in self.propstat_props.drain(..) {
                        p.status = self.propstat_status;
                        self.response.props.push(p);
                    }
                    self.propstat_status = 200;
                } else if is("response") && self.path.len() == 2 {
                    let mut r = std::mem::take(&mut self.response);
                    r.href = r.href.trim().to_owned();
                    self.item_bytes = 0;
                    done = Some(r);
                }
                close(&mut self.path, &mut self.current, &mut self.propstat_props);
                if let Some(r) = done {
                    return Ok(Fed::Response(r));
                }
            }
            Event::Eof => {
                if let Some(open) = self.path.last() {
                    return Err(XmlError(format!("truncated inside <{}>", open.1)));
                }
                return Ok(Fed::End);
            }
            _ => {}
        }
        Ok(Fed::More)
    }

    fn text(&mut self, text: &str) -> Result<(), XmlError> {
        self.item_bytes = self.item_bytes.saturating_add(text.len());
        if self.item_bytes > self.max_item {
            return Err(XmlError(format!(
                "one response is larger than {} bytes",
                self.max_item
            )));
        }
        on_text(
            &self.path,
            &mut self.current,
            &mut self.response,
            &mut self.propstat_status,
            &mut self.sync_token,
            text,
        );
        Ok(())
    }

    /// The body's sync token (RFC 6578 §6.2), once it has ended; an error without a root.
    pub fn finish(self) -> Result<Option<String>, XmlError> {
        if !self.saw_root {
            return Err(XmlError("no DAV:multistatus element".into()));
        }
        Ok(self.sync_token)
    }
}

/// One [`Ns`] per distinct namespace of a body (the unbound one is empty).
#[derive(Default)]
struct Interner {
    seen: HashMap<String, Ns>,
}

impl Interner {
    fn ns(&mut self, ns: &ResolveResult<'_>) -> Ns {
        let name: &str = match ns {
            ResolveResult::Bound(n) => n.as_ref(),
            _ => "",
        };
        if let Some(found) = self.seen.get(name) {
            return found.clone();
        }
        let made = Ns::new(name);
        self.seen.insert(name.to_owned(), made.clone());
        made
    }
}

fn local(start: &quick_xml::events::BytesStart<'_>) -> String {
    start.local_name().as_ref().to_owned()
}

fn is_root(name: &Name) -> bool {
    name.0 == NS_DAV && name.1 == "multistatus"
}

/// Depth of a property element: multistatus / response / propstat / prop / <property>.
const PROP_DEPTH: usize = 5;

fn open(
    path: &mut Vec<Name>,
    current: &mut Option<Prop>,
    name: Name,
    props_kept: &mut usize,
) -> Result<(), XmlError> {
    let in_prop =
        path.len() == PROP_DEPTH - 1 && path.last().is_some_and(|(ns, n)| *ns == NS_DAV && n == "prop");
    if in_prop {
        *props_kept += 1;
        if *props_kept > MAX_PROPS {
            return Err(XmlError(format!("more than {MAX_PROPS} properties")));
        }
        *current = Some(Prop {
            ns: name.0.clone(),
            name: name.1.clone(),
            ..Prop::default()
        });
    } else if path.len() >= PROP_DEPTH
        && let Some(prop) = current.as_mut()
    {
        if path.len() == PROP_DEPTH && prop.children.len() < MAX_NAMES {
            prop.children.push(name.clone());
        }
        if prop.descendants.len() < MAX_NAMES {
            prop.descendants.push(name.clone());
        }
    }
    path.push(name);
    Ok(())
}

fn note_name_attr(path: &[Name], current: &mut Option<Prop>, start: &quick_xml::events::BytesStart<'_>) {
    if path.len() < PROP_DEPTH {
        return;
    }
    let Some(prop) = current.as_mut() else { return };
    for attr in start.attributes().flatten() {
        if attr.key.local_name().as_ref() == "name"
            && prop.names.len() < MAX_NAMES
            && let Ok(value) = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        {
            prop.names.push(value.into_owned());
        }
    }
}

fn close(path: &mut Vec<Name>, current: &mut Option<Prop>, props: &mut Vec<Prop>) {
    if path.len() == PROP_DEPTH
        && let Some(mut prop) = current.take()
    {
        prop.text = prop.raw.trim().to_owned();
        props.push(prop);
    }
    path.pop();
}

fn on_text(
    path: &[Name],
    current: &mut Option<Prop>,
    response: &mut DavResponse,
    propstat_status: &mut u16,
    sync_token: &mut Option<String>,
    text: &str,
) {
    let Some((ns, local)) = path.last() else { return };
    let dav = *ns == NS_DAV;
    match path.len() {
        2 if dav && local == "sync-token" => {
            let token = sync_token.get_or_insert_with(String::new);
            token.push_str(text.trim());
        }
        3 if dav && local == "href" => response.href.push_str(text),
        3 if dav && local == "status" && !text.trim().is_empty() => response.status = parse_status(text),
        4 if dav && local == "status" && !text.trim().is_empty() => {
            *propstat_status = parse_status(text).unwrap_or(0)
        }
        n if n > PROP_DEPTH - 1 => {
            if let Some(prop) = current.as_mut() {
                if dav && local == "href" {
                    if !text.trim().is_empty() {
                        prop.hrefs.push(text.trim().to_owned());
                    }
                } else {
                    prop.raw.push_str(text);
                }
            }
        }
        _ => {}
    }
}

/// True when an error body (RFC 4918 §16) names precondition `name`, e.g. `valid-sync-token`.
pub fn names_precondition(body: &[u8], name: &str) -> bool {
    let mut reader = NsReader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_resolved_event_into(&mut buf) {
            Ok((_, Event::Start(e) | Event::Empty(e))) if e.local_name().as_ref() == name => {
                return true;
            }
            Ok((_, Event::Eof)) | Err(_) => return false,
            _ => {}
        }
        buf.clear();
    }
}

/// `HTTP/1.1 200 OK` → 200 (RFC 4918 §14.28).
pub fn parse_status(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RADICALE_PRINCIPAL: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:"><response><href>/</href><propstat><prop><current-user-principal><href>/alice/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;

    #[test]
    fn reads_a_principal() {
        let ms = parse_multistatus(RADICALE_PRINCIPAL.as_bytes()).unwrap();
        assert_eq!(ms.responses.len(), 1);
        let r = &ms.responses[0];
        assert_eq!(r.href, "/");
        let p = r.prop(NS_DAV, "current-user-principal").unwrap();
        assert_eq!(p.hrefs, vec!["/alice/"]);
    }

    #[test]
    fn keeps_status_children_and_prefixes_apart() {
        let body = r#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
          <D:response><D:href>/cal/</D:href>
            <D:propstat><D:prop>
              <D:resourcetype><D:collection/><C:calendar/></D:resourcetype>
              <D:displayname>Work &amp; more</D:displayname>
              <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
            </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
            <D:propstat><D:prop><D:getctag/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
          </D:response>
          <D:response><D:href>/cal/gone.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>
          <D:sync-token>http://example.org/sync/42</D:sync-token>
        </D:multistatus>"#;
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        assert_eq!(ms.responses.len(), 2);
        let cal = &ms.responses[0];
        let rt = cal.prop(NS_DAV, "resourcetype").unwrap();
        assert!(rt.children.contains(&(Ns::new(NS_CALDAV), "calendar".to_owned())));
        assert_eq!(cal.prop(NS_DAV, "displayname").unwrap().text, "Work & more");
        let comps = cal.prop(NS_CALDAV, "supported-calendar-component-set").unwrap();
        assert_eq!(comps.names, vec!["VEVENT"]);
        assert!(
            cal.prop(NS_DAV, "getctag").is_none(),
            "404 props are not returned as found"
        );
        assert_eq!(ms.responses[1].status, Some(404));
        assert_eq!(ms.sync_token.as_deref(), Some("http://example.org/sync/42"));
    }

    #[test]
    fn keeps_calendar_data_verbatim() {
        let body = "<d:multistatus xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\"><d:response>\
            <d:href>/a/c/1.ics</d:href><d:propstat><d:prop><d:getetag>\"e1\"</d:getetag>\
            <c:calendar-data>BEGIN:VCALENDAR\r\nSUMMARY:R&amp;D\r\n  two spaces&#13;\nEND:VCALENDAR\r\n</c:calendar-data>\
            </d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>";
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let data = ms.responses[0].prop(NS_CALDAV, "calendar-data").unwrap();
        assert_eq!(
            data.raw,
            "BEGIN:VCALENDAR\r\nSUMMARY:R&D\r\n  two spaces\r\nEND:VCALENDAR\r\n"
        );
        assert_eq!(ms.responses[0].prop(NS_DAV, "getetag").unwrap().text, "\"e1\"");
    }

    #[test]
    fn refuses_what_is_not_a_multistatus() {
        assert!(parse_multistatus(b"<html><body>Login</body></html>").is_err());
        assert!(parse_multistatus(b"").is_err());
        assert!(parse_multistatus(b"<multistatus xmlns='DAV:'><response>").is_err());
        assert!(parse_multistatus(&[0xff, 0xfe, 0x00]).is_err());
    }

    /// The shape that took 604 KB to 859 MB: one long namespace, many small elements inside a
    /// property. The namespace is stored once, and a property keeps a bounded number of names.
    #[test]
    fn a_long_namespace_is_shared_and_names_are_capped() {
        let ns = "urn:x:".repeat(2000);
        let many = "<x:a/>".repeat(MAX_NAMES + 500);
        let body = format!(
            r#"<d:multistatus xmlns:d="DAV:" xmlns:x="{ns}"><d:response><d:href>/a</d:href><d:propstat><d:prop><x:p>{many}</x:p></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#
        );
        let ms = parse_multistatus(body.as_bytes()).unwrap();
        let p = &ms.responses[0].props[0];
        assert_eq!(p.ns, ns.as_str());
        assert_eq!(p.descendants.len(), MAX_NAMES);
        assert_eq!(p.children.len(), MAX_NAMES);
        assert!(p.descendants.iter().all(|(n, _)| Arc::ptr_eq(&n.0, &p.ns.0)));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let body = format!(
            "<multistatus xmlns='DAV:'>{}{}</multistatus>",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        let e = parse_multistatus(body.as_bytes()).unwrap_err();
        assert!(e.0.contains("nested deeper"), "{e}");
        assert!(
            parse_multistatus(b"<multistatus xmlns='DAV:'/>")
                .unwrap()
                .responses
                .is_empty()
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_multistatus(&bytes);
        }

        #[test]
        fn arbitrary_text_inside_a_valid_shell_never_panics(inner in ".{0,200}") {
            let body = format!("<multistatus xmlns='DAV:'><response><href>{inner}</href></response></multistatus>");
            let _ = parse_multistatus(body.as_bytes());
        }
    }
}
