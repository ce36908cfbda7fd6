//! The Sieve script opconnect owns for out-of-office: a vacation action (RFC 5230) limited to a
//! period with `currentdate` (RFC 5260 §5) and `relational` (RFC 5231), followed by an `include`
//! (RFC 6609) of the script the user had active, so their own rules keep running untouched.
//!
//! ```text
//!  # opconnect out-of-office …                       ← marker: this script is ours
//!  # opconnect-state: {"enabled":true,…}             ← what ooo.get reads back
//!  require ["vacation", "date", "relational", "include"];
//!  # opconnect vacation begin
//!  if allof (currentdate … "ge" …, currentdate … "le" …) { vacation …; }
//!  # opconnect vacation end
//!  include :personal "roundcube";                    ← the user's script, never edited
//! ```
//!
//! The user's script stays a separate script on the server, byte for byte; we only change which
//! script is active. Pure: no I/O.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The name of our script on the server.
pub const SCRIPT_NAME: &str = "opconnect";

/// First line of every script we write; a script without it is not ours and is never overwritten.
const MARKER: &str = "# opconnect out-of-office (written by opconnect; change it through Outlook)";
/// The line carrying the settings as JSON, so reading back does not depend on parsing Sieve.
const STATE_PREFIX: &str = "# opconnect-state: ";

/// Days between two replies to the same sender (RFC 5230 §4.1: the default is 7; Outlook
/// answers once per sender and day-ish, and 1 is the minimum servers must accept).
const DAYS: u32 = 1;

/// The out-of-office settings (INTERFACE §4 `ooo.get` / `ooo.set`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vacation {
    pub enabled: bool,
    pub subject: String,
    pub body: String,
    #[serde(with = "opt_time", default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(with = "opt_time", default)]
    pub end: Option<DateTime<Utc>>,
}

/// Times in the state line as RFC 3339 strings.
mod opt_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::format_time(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.and_then(|t| super::parse_time(&t)))
    }
}

/// Our script as read back: the settings and the user's script it includes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurScript {
    #[serde(flatten)]
    pub vacation: Vacation,
    /// The user's previously active script, run after the vacation block.
    pub include: Option<String>,
}

/// Sieve extensions a script needs (RFC 5228 §3.2 `require`).
pub fn required_extensions(script: &OurScript) -> Vec<&'static str> {
    let mut ext = Vec::new();
    if script.vacation.enabled {
        ext.push("vacation");
        if script.vacation.start.is_some() || script.vacation.end.is_some() {
            ext.extend(["date", "relational"]);
        }
    }
    if script.include.is_some() {
        ext.push("include");
    }
    ext
}

/// Writes the whole script. `addresses` are the user's own addresses (RFC 5230 §4.5 `:addresses`).
pub fn render(script: &OurScript, addresses: &[String]) -> String {
    let v = &script.vacation;
    let mut out = String::new();
    out.push_str(MARKER);
    out.push_str("\r\n");
    out.push_str(STATE_PREFIX);
    out.push_str(&serde_json::to_string(script).unwrap_or_default());
    out.push_str("\r\n");
    let ext = required_extensions(script);
    if !ext.is_empty() {
        let list: Vec<String> = ext.iter().map(|e| quote(e)).collect();
        out.push_str(&format!("require [{}];\r\n", list.join(", ")));
    }
    out.push_str("# opconnect vacation begin\r\n");
    if v.enabled {
        let mut action = format!("vacation :days {DAYS}");
        if !addresses.is_empty() {
            let list: Vec<String> = addresses.iter().map(|a| quote(a)).collect();
            action.push_str(&format!(" :addresses [{}]", list.join(", ")));
        }
        // A header cannot hold line breaks (RFC 5322 §2.2); the subject is one line.
        let subject = v.subject.replace(['\r', '\n'], " ");
        if !subject.trim().is_empty() {
            action.push_str(&format!(" :subject {}", quote(&subject)));
        }
        action.push_str(&format!(" {};", quote(&v.body)));
        let mut tests = Vec::new();
        if let Some(start) = v.start {
            tests.push(date_test("ge", start));
        }
        if let Some(end) = v.end {
            tests.push(date_test("le", end));
        }
        if tests.is_empty() {
            out.push_str(&action);
            out.push_str("\r\n");
        } else {
            out.push_str(&format!(
                "if allof ({}) {{\r\n  {action}\r\n}}\r\n",
                tests.join(", ")
            ));
        }
    }
    out.push_str("# opconnect vacation end\r\n");
    if let Some(name) = &script.include {
        out.push_str(&format!("include :personal {};\r\n", quote(name)));
    }
    out
}

/// `currentdate :zone "+0000" :value "ge" "iso8601" "2026-01-02T03:04:05"` (RFC 5260 §5, §4.2).
/// The server's iso8601 value carries a zone suffix after the seconds; comparing with the prefix
/// only keeps the ASCII comparison (RFC 5231 §4) right whatever suffix the server writes.
fn date_test(op: &str, at: DateTime<Utc>) -> String {
    let stamp = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    format!(
        "currentdate :zone \"+0000\" :value {} \"iso8601\" {}",
        quote(op),
        quote(&stamp)
    )
}

/// A Sieve quoted string (RFC 5228 §2.4.2): `"` and `\` escaped; line breaks may stay inside.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// True when `script` is one we wrote (its first line is our marker).
pub fn is_ours(script: &str) -> bool {
    script.lines().next().map(str::trim_end) == Some(MARKER)
}

/// Reads our settings back; `None` when the script is not ours or its state line is damaged.
pub fn read(script: &str) -> Option<OurScript> {
    if !is_ours(script) {
        return None;
    }
    let state = script
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(STATE_PREFIX))?;
    serde_json::from_str(state).ok()
}

/// An `ooo.set` time: RFC 3339 (`2026-07-01T09:00:00+02:00`) or a plain date (`2026-07-01`,
/// midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

/// A time as `ooo.get` answers it (RFC 3339, UTC).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> OurScript {
        OurScript {
            vacation: Vacation {
                enabled: true,
                subject: "Away \"until\" Monday".into(),
                body: "I am away.\nBack on 3 July \\o/".into(),
                start: parse_time("2026-07-01"),
                end: parse_time("2026-07-03T18:00:00+02:00"),
            },
            include: Some("roundcube".into()),
        }
    }

    #[test]
    fn renders_vacation_with_period_and_include() {
        let text = render(&sample(), &["alice@example.org".into()]);
        assert!(is_ours(&text));
        assert!(text.contains("require [\"vacation\", \"date\", \"relational\", \"include\"];"));
        assert!(text.contains(
            "if allof (currentdate :zone \"+0000\" :value \"ge\" \"iso8601\" \"2026-07-01T00:00:00\", \
             currentdate :zone \"+0000\" :value \"le\" \"iso8601\" \"2026-07-03T16:00:00\") {"
        ));
        assert!(text.contains(
            "vacation :days 1 :addresses [\"alice@example.org\"] :subject \"Away \\\"until\\\" Monday\" \
             \"I am away.\nBack on 3 July \\\\o/\";"
        ));
        assert!(text.ends_with("# opconnect vacation end\r\ninclude :personal \"roundcube\";\r\n"));
        assert_eq!(read(&text), Some(sample()));
    }

    #[test]
    fn disabled_script_only_includes() {
        let mut s = sample();
        s.vacation.enabled = false;
        let text = render(&s, &[]);
        assert!(!text.contains("vacation :days"));
        assert!(text.contains("require [\"include\"];"));
        assert_eq!(read(&text).unwrap().vacation.subject, "Away \"until\" Monday");
    }

    #[test]
    fn without_period_or_include_needs_vacation_only() {
        let s = OurScript {
            vacation: Vacation {
                enabled: true,
                subject: "a\r\nb".into(),
                body: "x".into(),
                ..Vacation::default()
            },
            include: None,
        };
        let text = render(&s, &[]);
        assert!(text.contains("require [\"vacation\"];\r\n# opconnect vacation begin\r\nvacation :days 1 :subject \"a  b\" \"x\";\r\n"));
        assert!(!text.contains("include :personal"));
    }

    #[test]
    fn foreign_scripts_are_not_ours() {
        assert!(!is_ours("require \"fileinto\";\r\nkeep;\r\n"));
        assert_eq!(read("# opconnect\r\nkeep;"), None);
        assert_eq!(read(&format!("{MARKER}\r\n{STATE_PREFIX}{{broken\r\n")), None);
    }

    #[test]
    fn times() {
        assert_eq!(
            format_time(parse_time("2026-07-03T18:00:00+02:00").unwrap()),
            "2026-07-03T16:00:00Z"
        );
        assert_eq!(
            format_time(parse_time("2026-07-01").unwrap()),
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(parse_time("July"), None);
    }

    proptest! {
        #[test]
        fn settings_round_trip(subject in "\\PC{0,40}", body in "(\\PC|\n){0,200}", enabled: bool,
                               include in proptest::option::of("[a-z\" ]{1,12}")) {
            let s = OurScript { vacation: Vacation { enabled, subject, body, start: None, end: None }, include };
            prop_assert_eq!(read(&render(&s, &[])), Some(s));
        }
    }
}
