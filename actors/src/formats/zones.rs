//! Time-zone names as calendars write them: IANA names, Windows zone IDs (CLDR's windowsZones
//! table, through the `localzone` crate), Outlook's display names and the prefixed forms some
//! servers and clients invent (`/freeassociation.sourceforge.net/Europe/Berlin`, `posix/…`,
//! `custom_…`). RFC 5545 §3.2.19 lets a TZID be any text; §3.6.5 ties it to a VTIMEZONE, which
//! many writers leave out.

use std::str::FromStr;

use calcard::common::timezone::Tz;

/// Prefixes that wrap an IANA name (tzdata's `posix/` and `right/` trees, Evolution's and Lotus'
/// registries, Zimbra's `custom_`).
const PREFIXES: &[&str] = &["posix/", "right/", "custom_", "SystemV/"];

/// The zone `name` stands for, if it can be told from the name alone.
pub fn resolve(name: &str) -> Option<Tz> {
    let name = name.trim().trim_matches('"');
    if name.is_empty() {
        return None;
    }
    if let Some(iana) = iana_of_windows(name)
        && let Ok(tz) = chrono_tz::Tz::from_str(iana)
    {
        return Some(Tz::Tz(tz));
    }
    // calcard knows IANA names, `/registry/…/Area/City`, Outlook's display names and
    // the older Windows names.
    if let Ok(tz) = Tz::from_str(name) {
        return Some(tz);
    }
    let mut rest = name.trim_start_matches('/');
    loop {
        if let Ok(tz) = chrono_tz::Tz::from_str(rest) {
            return Some(Tz::Tz(tz));
        }
        if let Some(stripped) = PREFIXES.iter().find_map(|p| rest.strip_prefix(p)) {
            rest = stripped;
            continue;
        }
        // `/freeassociation.sourceforge.net/Tzfile/Europe/Berlin`: drop one leading segment.
        match rest.split_once('/') {
            Some((_, tail)) if tail.contains('/') || chrono_tz::Tz::from_str(tail).is_ok() => rest = tail,
            _ => return None,
        }
    }
}

/// The IANA name of a Windows zone ID (`W. Europe Standard Time` → `Europe/Berlin`), CLDR's
/// world-wide default (territory `001`).
pub fn iana_of_windows(windows_id: &str) -> Option<&'static str> {
    localzone::win_zone_to_iana(windows_id, Some("001"))
}

/// The Windows zone ID Outlook uses for an IANA zone (`Europe/Berlin` → `W. Europe Standard Time`).
pub fn windows_of_iana(iana: &str) -> Option<&'static str> {
    if let Some((windows, _)) = localzone::iana_to_win_zone(iana) {
        return Some(windows);
    }
    // CLDR lists current names; an old link (`Asia/Calcutta`) is found through its target.
    let canonical = chrono_tz::Tz::from_str(iana).ok()?;
    localzone::iana_to_win_zone(canonical.name()).map(|(w, _)| w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(tz: Option<Tz>) -> String {
        tz.and_then(|t| t.name().map(|n| n.into_owned()))
            .unwrap_or_default()
    }

    #[test]
    fn windows_ids_map_both_ways() {
        assert_eq!(iana_of_windows("W. Europe Standard Time"), Some("Europe/Berlin"));
        assert_eq!(windows_of_iana("Europe/Berlin"), Some("W. Europe Standard Time"));
        assert_eq!(windows_of_iana("America/New_York"), Some("Eastern Standard Time"));
        assert_eq!(windows_of_iana("Mars/Olympus"), None);
    }

    #[test]
    fn names_in_the_wild_resolve() {
        assert_eq!(name(resolve("Europe/Berlin")), "Europe/Berlin");
        assert_eq!(name(resolve("W. Europe Standard Time")), "Europe/Berlin");
        assert_eq!(
            name(resolve("/freeassociation.sourceforge.net/Europe/Berlin")),
            "Europe/Berlin"
        );
        assert_eq!(
            name(resolve("/freeassociation.sourceforge.net/Tzfile/Europe/Berlin")),
            "Europe/Berlin"
        );
        assert_eq!(name(resolve("posix/Europe/Vaduz")), "Europe/Vaduz");
        assert_eq!(name(resolve("custom_America/New_York")), "America/New_York");
        assert!(resolve("Central Europe").is_some());
        assert!(resolve("Mars/Olympus").is_none());
        assert!(resolve("").is_none());
    }
}
