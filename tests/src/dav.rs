//! The WebDAV requests every private DAV server of the harness answers the same way (Radicale,
//! Cyrus): collections, items, members, as a given test user over plain HTTP on loopback.
//! Each server keeps its own methods, which delegate here with its port and paths.

use anyhow::{Result, bail};

use crate::http::{HttpRequest, HttpResponse};
use crate::password_of;

/// PROPFIND for what the tests look at (RFC 4918 §9.1).
const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:displayname/><D:getetag/></D:prop></D:propfind>"#;

/// A DAV server's HTTP port.
#[derive(Debug, Clone, Copy)]
pub struct DavHttp(pub u16);

impl DavHttp {
    pub fn send(self, request: &HttpRequest<'_>) -> Result<HttpResponse> {
        request.send(self.0)
    }

    /// PROPFIND `path` with the given Depth; asks for resourcetype, displayname and getetag.
    /// An XML Content-Type is sent, as Cyrus insists on it.
    pub fn propfind(self, user: &str, password: &str, path: &str, depth: u8) -> Result<HttpResponse> {
        let depth = depth.to_string();
        self.send(
            &HttpRequest::new("PROPFIND", path)
                .auth(user, password)
                .header("Depth", &depth)
                .header("Content-Type", "application/xml; charset=utf-8")
                .body(PROPFIND_BODY.as_bytes()),
        )
    }

    /// MKCALENDAR at `path` supporting `components` (RFC 4791 §5.3.1); returns the path.
    pub fn mkcalendar(
        self,
        user: &str,
        path: String,
        display_name: &str,
        components: &[&str],
    ) -> Result<String> {
        let comps: String = components
            .iter()
            .map(|c| format!("<C:comp name=\"{c}\"/>"))
            .collect();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>{}</D:displayname>
    <C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"#,
            xml_escape(display_name)
        );
        let r = self.as_user(user, "MKCALENDAR", &path, "application/xml", body.as_bytes())?;
        expect_status(&r, &[201], "MKCALENDAR", &path)?;
        Ok(path)
    }

    /// Extended MKCOL of an address book at `path` (RFC 5689, RFC 6352 §6.3.1); returns the path.
    pub fn mkaddressbook(self, user: &str, path: String, display_name: &str) -> Result<String> {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>
    <D:displayname>{}</D:displayname>
  </D:prop></D:set>
</D:mkcol>"#,
            xml_escape(display_name)
        );
        let r = self.as_user(user, "MKCOL", &path, "application/xml", body.as_bytes())?;
        expect_status(&r, &[201], "MKCOL", &path)?;
        Ok(path)
    }

    /// PUTs an item at `href` as `user`; returns its ETag. Creates or overwrites unconditionally.
    pub fn put(self, user: &str, href: &str, content_type: &str, body: &[u8]) -> Result<String> {
        let r = self.as_user(user, "PUT", href, content_type, body)?;
        expect_status(&r, &[201, 204], "PUT", href)?;
        Ok(r.header("ETag").unwrap_or_default().to_string())
    }

    /// PUTs an iCalendar object into `calendar` as `<uid>.ics`; returns `(href, etag)`.
    pub fn put_event(self, user: &str, calendar: &str, uid: &str, ics: &str) -> Result<(String, String)> {
        let href = format!("{calendar}{uid}.ics");
        let etag = self.put(user, &href, "text/calendar; charset=utf-8", ics.as_bytes())?;
        Ok((href, etag))
    }

    /// PUTs a vCard into `book` as `<uid>.vcf`; returns `(href, etag)`.
    pub fn put_contact(self, user: &str, book: &str, uid: &str, vcf: &str) -> Result<(String, String)> {
        let href = format!("{book}{uid}.vcf");
        let etag = self.put(user, &href, "text/vcard; charset=utf-8", vcf.as_bytes())?;
        Ok((href, etag))
    }

    pub fn get(self, user: &str, href: &str) -> Result<HttpResponse> {
        self.send(&HttpRequest::new("GET", href).auth(user, password_of(user)))
    }

    pub fn delete(self, user: &str, href: &str) -> Result<()> {
        let r = self.send(&HttpRequest::new("DELETE", href).auth(user, password_of(user)))?;
        expect_status(&r, &[200, 204], "DELETE", href)
    }

    /// The member hrefs of `collection` (PROPFIND Depth 1), without the collection itself.
    pub fn members(self, user: &str, collection: &str) -> Result<Vec<String>> {
        let r = self.propfind(user, password_of(user), collection, 1)?;
        expect_status(&r, &[207], "PROPFIND", collection)?;
        Ok(hrefs(&r.text())
            .into_iter()
            .filter(|h| h.trim_end_matches('/') != collection.trim_end_matches('/'))
            .collect())
    }

    fn as_user(
        self,
        user: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse> {
        self.send(
            &HttpRequest::new(method, path)
                .auth(user, password_of(user))
                .header("Content-Type", content_type)
                .body(body),
        )
    }
}

/// The item requests every DAV server of the harness answers the same way, given its `http()`:
/// `radicale.put_event(..)`, `cyrus.members(..)`, `davical.get(..)`.
pub trait DavServer {
    fn http(&self) -> DavHttp;

    /// PUTs an item at `href` as `user`; returns its ETag. Creates or overwrites unconditionally.
    fn put(&self, user: &str, href: &str, content_type: &str, body: &[u8]) -> Result<String> {
        self.http().put(user, href, content_type, body)
    }

    /// PUTs an iCalendar object into `calendar` (a path ending in `/`) as `<uid>.ics`; returns
    /// `(href, etag)`.
    fn put_event(&self, user: &str, calendar: &str, uid: &str, ics: &str) -> Result<(String, String)> {
        self.http().put_event(user, calendar, uid, ics)
    }

    /// PUTs a vCard into `book` (a path ending in `/`) as `<uid>.vcf`; returns `(href, etag)`.
    fn put_contact(&self, user: &str, book: &str, uid: &str, vcf: &str) -> Result<(String, String)> {
        self.http().put_contact(user, book, uid, vcf)
    }

    /// GETs `href` as `user`.
    fn get(&self, user: &str, href: &str) -> Result<HttpResponse> {
        self.http().get(user, href)
    }

    /// DELETEs `href` as `user`.
    fn delete(&self, user: &str, href: &str) -> Result<()> {
        self.http().delete(user, href)
    }

    /// The member hrefs of `collection` (PROPFIND Depth 1), without the collection itself.
    fn members(&self, user: &str, collection: &str) -> Result<Vec<String>> {
        self.http().members(user, collection)
    }
}

/// Every `<…href>…</…href>` value in a multistatus body, in order (namespace prefix ignored).
pub fn hrefs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("href>") {
        let after = &rest[start + 5..];
        let Some(end) = after.find("</") else { break };
        let value = after[..end].trim();
        if !value.is_empty() && !value.contains('<') {
            out.push(value.to_string());
        }
        rest = &after[end..];
    }
    out
}

pub(crate) fn expect_status(r: &HttpResponse, ok: &[u16], method: &str, path: &str) -> Result<()> {
    if !ok.contains(&r.status) {
        bail!("{method} {path} answered {}: {}", r.status, r.text());
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
