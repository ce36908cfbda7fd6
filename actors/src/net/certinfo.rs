//! What a certificate says about itself, for `account add` to show before the user trusts it:
//! subject, issuer and validity read from its DER (RFC 5280 §4.1), no more. Bytes from a server
//! are untrusted: every length is checked and anything odd gives `None`, never a panic.

/// The parts of a certificate a person checks before pinning it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// As the certificate writes them (UTCTime or GeneralizedTime), e.g. `2026-12-03 13:00:00 UTC`.
    pub not_before: String,
    pub not_after: String,
}

/// One DER element: tag and contents; the rest of the input after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| acc << 8 | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads `der` (one X.509 certificate).
pub fn read(der: &[u8]) -> Option<CertInfo> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] EXPLICIT version
    }
    let (_, _, rest) = element(rest)?; // serialNumber
    let (_, _, rest) = element(rest)?; // signature AlgorithmIdentifier
    let (0x30, issuer, rest) = element(rest)? else {
        return None;
    };
    let (0x30, validity, rest) = element(rest)? else {
        return None;
    };
    let (0x30, subject, _) = element(rest)? else {
        return None;
    };
    let (t1, nb, after) = element(validity)?;
    let (t2, na, _) = element(after)?;
    Some(CertInfo {
        subject: name(subject)?,
        issuer: name(issuer)?,
        not_before: time(t1, nb)?,
        not_after: time(t2, na)?,
    })
}

/// A Name as `CN=…, O=…` (the attributes people recognise; others are skipped).
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (0x31, mut set, rest) = element(rdns)? else {
            return None;
        };
        rdns = rest;
        while !set.is_empty() {
            let (0x30, atv, more) = element(set)? else {
                return None;
            };
            set = more;
            let (0x06, oid, value) = element(atv)? else {
                return None;
            };
            let (vtag, v, _) = element(value)?;
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                _ => continue,
            };
            // UTF8String, PrintableString, IA5String, T61String: shown as text; others as `?`.
            let text = match vtag {
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(v).into_owned(),
                _ => "?".into(),
            };
            let text: String = text.chars().filter(|c| !c.is_control()).collect();
            parts.push(format!("{key}={text}"));
        }
    }
    Some(if parts.is_empty() {
        "(empty)".into()
    } else {
        parts.join(", ")
    })
}

/// UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time(tag: u8, v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let full = match tag {
        0x17 if s.len() == 13 => {
            let yy: u32 = s.get(0..2)?.parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 if s.len() == 15 => s.to_owned(),
        _ => return None,
    };
    if !full[..14].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_bytes_give_none() {
        assert_eq!(read(b""), None);
        assert_eq!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(read(&[0x30, 0x03, 0x30, 0x01]), None);
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = read(&junk);
        }
    }

    #[test]
    fn times_read_both_forms() {
        assert_eq!(
            time(0x17, b"261203130000Z").as_deref(),
            Some("2026-12-03 13:00:00 UTC")
        );
        assert_eq!(
            time(0x18, b"20261203130000Z").as_deref(),
            Some("2026-12-03 13:00:00 UTC")
        );
        assert_eq!(time(0x17, b"26120313000Z"), None);
    }
}
