//! vCard editing shared by the contact and distribution-list field sets: the card's dialect
//! (RFC 2426 version 3, RFC 6350 version 4), Apple's group labels, dates, categories, and a set
//! of line edits applied to the server's bytes so that every line not edited stays as it was.
//!
//! ```text
//!   body ──Card::parse──► Doc + VCARD component + dialect
//!   Edits { replace line i / remove line i / insert before END } ──apply──► new body
//!   (a removed `item1.` line takes its orphaned Apple X-ABLabel / X-ABADR lines with it)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::formats::item::PatchError;
use crate::formats::lines::{Component, Doc, Line, escape_text, split_escaped};

/// The vCard version a card is written in; new lines follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RFC 2426 (and 2.1 cards, whose line syntax is read the same way).
    V3,
    /// RFC 6350.
    V4,
}

impl Version {
    /// `"3.0"` → V3, `"4.0"` → V4; anything else is refused.
    pub fn parse(text: &str) -> Option<Version> {
        match text.trim() {
            "3.0" | "3" => Some(Version::V3),
            "4.0" | "4" => Some(Version::V4),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V3 => "3.0",
            Version::V4 => "4.0",
        }
    }

    /// A TYPE list in this dialect: upper case in version 3 (RFC 2426 examples), lower case in
    /// version 4 (RFC 6350 §5.6).
    pub fn types(self, types: &str) -> String {
        match self {
            Version::V3 => types.to_ascii_uppercase(),
            Version::V4 => types.to_ascii_lowercase(),
        }
    }
}

/// A book's group dialect names its version: Apple's groups live in version 3 books.
impl From<crate::formats::group::Dialect> for Version {
    fn from(dialect: crate::formats::group::Dialect) -> Version {
        match dialect {
            crate::formats::group::Dialect::Apple => Version::V3,
            crate::formats::group::Dialect::Kind => Version::V4,
        }
    }
}

/// One vCard, parsed into content lines, with its own lines' names and Apple labels indexed once.
pub struct Card {
    pub doc: Doc,
    pub comp: Component,
    pub version: Version,
    own: Vec<usize>,
    /// Property name per line of `doc` (upper case, without group), for the card's own lines.
    names: Vec<String>,
    /// Group (lower case) → its Apple label, normalized by [`apple_label`].
    labels: HashMap<String, String>,
}

impl Card {
    /// The first VCARD of `body`.
    pub fn parse(body: &str) -> Result<Card, String> {
        let doc = Doc::parse(body);
        let comp = *doc
            .components_named("VCARD")
            .first()
            .ok_or("not a vCard: no BEGIN:VCARD … END:VCARD")?;
        let own = doc.own_lines(comp);
        let mut names = vec![String::new(); doc.lines.len()];
        let mut labels = HashMap::new();
        for &i in &own {
            let line = &doc.lines[i];
            names[i] = line.name();
            if names[i] == "X-ABLABEL"
                && let Some(group) = line.group()
            {
                labels
                    .entry(group.to_ascii_lowercase())
                    .or_insert_with(|| apple_label(line.value()));
            }
        }
        let version = own
            .iter()
            .find(|&&i| names[i] == "VERSION")
            .and_then(|&i| Version::parse(doc.lines[i].value()))
            .unwrap_or(Version::V3);
        Ok(Card {
            doc,
            comp,
            version,
            own,
            names,
            labels,
        })
    }

    /// Indices of the card's own lines.
    pub fn own(&self) -> &[usize] {
        &self.own
    }

    pub fn line(&self, i: usize) -> &Line {
        &self.doc.lines[i]
    }

    /// Line `i`'s head (group, name, parameters) to write a new value after; a line whose
    /// parameters never close a quote has no value to replace, and gets its bare name back.
    pub fn head(&self, i: usize) -> &str {
        let line = self.line(i);
        let head = line.head();
        if head.len() < line.unfolded.len() {
            head
        } else {
            &head[..head.find([';', ':']).unwrap_or(head.len())]
        }
    }

    /// The property name of own line `i` (upper case, without group).
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The first own line named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.own.iter().copied().find(|&i| self.names[i] == name)
    }

    /// Every own line named `name`, in order.
    pub fn find_all(&self, name: &str) -> Vec<usize> {
        self.own
            .iter()
            .copied()
            .filter(|&i| self.names[i] == name)
            .collect()
    }

    /// The unescaped, trimmed value of line `i`, if not empty.
    pub fn text(&self, i: Option<usize>) -> Option<String> {
        let text = crate::formats::lines::unescape_text(self.line(i?).value());
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// The Apple label of line `i`'s group (`item1.X-ABLabel:_$!<Anniversary>!$_`), normalized to
    /// lower case without Apple's `_$!<…>!$_` wrapping.
    pub fn label(&self, i: usize) -> Option<String> {
        let group = self.line(i).group()?.to_ascii_lowercase();
        self.labels.get(&group).cloned()
    }

    /// TYPE values of line `i`, lower case, plus `pref` for a version 4 PREF parameter and the
    /// Apple label's words (RFC 6350 §5.3, §5.6; RFC 2426 §4).
    pub fn kinds(&self, i: usize) -> Vec<String> {
        let line = self.line(i);
        let mut kinds = line.types();
        if line.param("PREF").is_some() {
            kinds.push("pref".into());
        }
        if let Some(label) = self.label(i) {
            kinds.extend(label.split([' ', '-', '_']).map(str::to_owned));
            // Apple's compound fax labels (`_$!<HomeFAX>!$_`, `_$!<OtherFAX>!$_`).
            if let Some(kind) = label.strip_suffix("fax") {
                kinds.push("fax".into());
                kinds.push(kind.to_owned());
            }
        }
        kinds
    }

    /// How preferred line `i` is: the version 4 PREF value (1 most), 1 for a version 3
    /// `TYPE=pref`, else 100 (RFC 6350 §5.3).
    pub fn preference(&self, i: usize) -> u32 {
        let line = self.line(i);
        if let Some(pref) = line.param("PREF") {
            return pref.trim().parse().unwrap_or(1);
        }
        if line.types().iter().any(|t| t == "pref") {
            1
        } else {
            100
        }
    }
}

/// `_$!<HomePage>!$_` → `homepage`; a custom label is lower-cased as it is.
pub fn apple_label(raw: &str) -> String {
    let text = crate::formats::lines::unescape_text(raw);
    let text = text.trim();
    let inner = text
        .strip_prefix("_$!<")
        .and_then(|t| t.strip_suffix(">!$_"))
        .unwrap_or(text);
    inner.to_ascii_lowercase()
}

/// Edits to a card's own lines; everything not named here is written back as received.
#[derive(Debug, Default)]
pub struct Edits {
    /// Line index → new unfolded content, or `None` to remove the line.
    pub replace: BTreeMap<usize, Option<String>>,
    /// New lines (unfolded), written before END:VCARD in this order.
    pub insert: Vec<String>,
}

impl Edits {
    pub fn set(&mut self, i: usize, content: String) {
        self.replace.insert(i, Some(content));
    }

    pub fn remove(&mut self, i: usize) {
        self.replace.insert(i, None);
    }

    /// Replaces line `i` when there is one, else inserts `fresh`.
    pub fn put(&mut self, existing: Option<usize>, replaced: impl FnOnce(usize) -> String, fresh: String) {
        match existing {
            Some(i) => self.set(i, replaced(i)),
            None => self.insert.push(fresh),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.replace.is_empty() && self.insert.is_empty()
    }

    /// The card's text with the edits applied. A removed line that belonged to a group
    /// (`item1.`) takes the group's Apple helper lines (X-ABLabel, X-ABADR) along when nothing
    /// else of the group is left.
    pub fn apply(mut self, card: &Card) -> String {
        let own = card.own();
        let removed_groups: BTreeSet<String> = self
            .replace
            .iter()
            .filter(|(_, v)| v.is_none())
            .filter_map(|(&i, _)| card.line(i).group().map(str::to_ascii_lowercase))
            .collect();
        for group in removed_groups {
            let members: Vec<usize> = own
                .iter()
                .copied()
                .filter(|&j| card.line(j).group().map(str::to_ascii_lowercase).as_deref() == Some(&group))
                .collect();
            let helper = |j: usize| card.name(j).starts_with("X-AB");
            let survivors = members
                .iter()
                .any(|&j| !helper(j) && !matches!(self.replace.get(&j), Some(None)));
            if !survivors {
                for j in members {
                    self.replace.insert(j, None);
                }
            }
        }
        let mut out = String::new();
        for (i, line) in card.doc.lines.iter().enumerate() {
            if i == card.comp.end {
                for content in &self.insert {
                    out.push_str(&card.doc.new_line(content).raw);
                }
            }
            match self.replace.get(&i) {
                None => out.push_str(&line.raw),
                Some(None) => {}
                Some(Some(content)) if *content == line.unfolded => out.push_str(&line.raw),
                Some(Some(content)) => out.push_str(&card.doc.new_line(content).raw),
            }
        }
        out
    }
}

/// A content line from a head (`item1.TEL;TYPE=work`) and a raw value.
pub fn with_value(head: &str, value: &str) -> String {
    format!("{head}:{value}")
}

/// Line `i`'s head with parameter `name` replaced by `value` (removed when `None`); other
/// parameters stay as written. Quoted where RFC 6350 §3.3 requires it.
pub fn set_param(head: &str, name: &str, value: Option<&str>) -> String {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in head.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut out = parts.remove(0);
    for part in parts {
        let key = part.split('=').next().unwrap_or("");
        if !key.trim().eq_ignore_ascii_case(name) {
            out.push(';');
            out.push_str(&part);
        }
    }
    if let Some(value) = value {
        let value = value.replace('"', "'");
        if value.contains([';', ':', ',']) || value.contains(' ') {
            out.push_str(&format!(";{name}=\"{value}\""));
        } else {
            out.push_str(&format!(";{name}={value}"));
        }
    }
    out
}

/// A date value as `YYYY-MM-DD`: `19900517`, `1990-05-17`, a date-time (its date part), and the
/// year-less `--0517` / `--05-17` (RFC 6350 §4.3.1), which read with Apple's placeholder year 1604.
pub fn read_date(value: &str) -> Option<String> {
    let value = value.trim();
    let date = value.split('T').next().unwrap_or("");
    let digits: String = date.chars().filter(char::is_ascii_digit).collect();
    let (y, m, d) = if let Some(rest) = date.strip_prefix("--") {
        let md: String = rest.chars().filter(char::is_ascii_digit).collect();
        if md.len() != 4 {
            return None;
        }
        ("1604".to_owned(), md[..2].to_owned(), md[2..].to_owned())
    } else if digits.len() == 8 {
        (
            digits[..4].to_owned(),
            digits[4..6].to_owned(),
            digits[6..].to_owned(),
        )
    } else {
        return None;
    };
    let text = format!("{y}-{m}-{d}");
    chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()?;
    Some(text)
}

/// Checks a field's `YYYY-MM-DD`.
pub fn valid_date(text: &str) -> bool {
    text.len() == 10 && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// The value (and extra parameter) of a date in the card's dialect: version 4 writes the basic
/// form and `--MMDD` for Apple's year 1604; version 3 writes `YYYY-MM-DD` (or the basic form when
/// the line it replaces used it) and marks year 1604 with `X-APPLE-OMIT-YEAR`.
pub fn write_date(version: Version, date: &str, basic: bool) -> (Option<&'static str>, String) {
    let (y, md) = date.split_at(4);
    let compact = date.replace('-', "");
    match version {
        Version::V4 if y == "1604" => (None, format!("--{}", md.replace('-', ""))),
        Version::V4 => (None, compact),
        Version::V3 => {
            let param = (y == "1604").then_some("X-APPLE-OMIT-YEAR=1604");
            (param, if basic { compact } else { date.to_owned() })
        }
    }
}

/// Outlook's Categories (`"A, B"`) from every CATEGORIES line (RFC 6350 §6.7.1).
pub fn read_categories(card: &Card, lines: &[usize]) -> Option<String> {
    let names: Vec<String> = lines
        .iter()
        .flat_map(|&i| split_escaped(card.line(i).value(), ','))
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Outlook's form of a Categories string: names trimmed, empty ones dropped.
pub fn normalize_categories(text: &str) -> Option<String> {
    let names: Vec<&str> = text.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// A CATEGORIES value from Outlook's form.
pub fn write_categories(text: &str) -> String {
    text.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(escape_text)
        .collect::<Vec<_>>()
        .join(",")
}

/// Sets CATEGORIES: the first line gets the new value, the others go.
pub fn edit_categories(card: &Card, lines: &[usize], value: Option<&str>, edits: &mut Edits) {
    let value = value.map(write_categories).filter(|v| !v.is_empty());
    for (k, &i) in lines.iter().enumerate() {
        match (&value, k) {
            (Some(v), 0) => edits.set(i, with_value(card.head(i), v)),
            _ => edits.remove(i),
        }
    }
    if lines.is_empty()
        && let Some(v) = value
    {
        edits.insert.push(format!("CATEGORIES:{v}"));
    }
}

/// Sets a single TEXT property (FN, NOTE, TITLE …): replace its value keeping its head, remove
/// it, or add it.
pub fn edit_text(card: &Card, line: Option<usize>, name: &str, value: Option<&str>, edits: &mut Edits) {
    match (line, value) {
        (Some(i), Some(v)) => edits.set(i, with_value(card.head(i), &escape_text(v))),
        (Some(i), None) => edits.remove(i),
        (None, Some(v)) => edits.insert.push(format!("{name}:{}", escape_text(v))),
        (None, None) => {}
    }
}

/// REV (RFC 6350 §6.7.4, RFC 2426 §3.6.4) set to `now`, in the dialect's usual form.
pub fn edit_rev(card: &Card, now: chrono::DateTime<chrono::Utc>, edits: &mut Edits) {
    let stamp = match card.version {
        Version::V4 => now.format("%Y%m%dT%H%M%SZ").to_string(),
        Version::V3 => now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let line = card.find("REV");
    edits.put(line, |i| with_value(card.head(i), &stamp), format!("REV:{stamp}"));
}

/// The skeleton a new card starts from; the field set is then applied as a patch.
pub fn skeleton(version: Version, uid: &str, extra: &[&str]) -> String {
    let mut out = format!(
        "BEGIN:VCARD\r\nVERSION:{}\r\nPRODID:-//opconnect//item model//EN\r\nUID:{}\r\n",
        version.as_str(),
        escape_text(uid)
    );
    for line in extra {
        out.push_str(&crate::formats::lines::fold(line, "\r\n"));
    }
    out.push_str("END:VCARD\r\n");
    out
}

/// Field-set values as the patch functions take them: a string, or `None` for null/empty.
pub fn string_change(field: &str, value: &serde_json::Value) -> Result<Option<String>, PatchError> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s.replace("\r\n", "\n"))),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(PatchError::field(field, "expected a string or null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_both_dialects() {
        assert_eq!(read_date("19900517").as_deref(), Some("1990-05-17"));
        assert_eq!(read_date("1990-05-17T00:00:00Z").as_deref(), Some("1990-05-17"));
        assert_eq!(read_date("--0517").as_deref(), Some("1604-05-17"));
        assert_eq!(read_date("circa 1800"), None);
        assert_eq!(
            write_date(Version::V4, "1604-05-17", false),
            (None, "--0517".into())
        );
        assert_eq!(
            write_date(Version::V4, "1990-05-17", false),
            (None, "19900517".into())
        );
        assert_eq!(
            write_date(Version::V3, "1604-05-17", false),
            (Some("X-APPLE-OMIT-YEAR=1604"), "1604-05-17".into())
        );
    }

    #[test]
    fn params_are_replaced_and_others_kept() {
        assert_eq!(
            set_param("item1.EMAIL;type=INTERNET;X-CN=\"a;b\"", "x-cn", Some("Ada L")),
            "item1.EMAIL;type=INTERNET;x-cn=\"Ada L\""
        );
        assert_eq!(set_param("EMAIL;X-CN=a", "X-CN", None), "EMAIL");
        assert_eq!(apple_label("_$!<HomePage>!$_"), "homepage");
    }

    #[test]
    fn a_removed_group_line_takes_its_label() {
        let card = Card::parse(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nitem1.TEL:1\r\nitem1.X-ABLabel:x\r\nitem2.URL:u\r\nitem2.X-ABLabel:y\r\nEND:VCARD\r\n",
        )
        .unwrap();
        let mut edits = Edits::default();
        edits.remove(2);
        edits.insert.push("NOTE:n".into());
        assert_eq!(
            edits.apply(&card),
            "BEGIN:VCARD\r\nVERSION:3.0\r\nitem2.URL:u\r\nitem2.X-ABLabel:y\r\nNOTE:n\r\nEND:VCARD\r\n"
        );
    }
}
