//! IMAP ACL (RFC 4314): GETACL, MYRIGHTS, SETACL and DELETEACL over the raw command path (the
//! IMAP library has none), their answers' parser, and which rights each write needs (§4).

use async_imap::Session;

use crate::error::ServiceError;
use crate::imap::connect::ImapConnection;
use crate::imap::raw;

/// One `identifier rights` pair of an ACL answer (RFC 4314 §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub identifier: String,
    pub rights: String,
}

/// `GETACL mailbox` → the folder's access list.
pub async fn get_acl(
    session: &mut Session<ImapConnection>,
    folder: &str,
) -> Result<Vec<AclEntry>, ServiceError> {
    let lines = raw::command(session, "acl1", &format!("GETACL {}", quote(folder))).await?;
    let line = lines
        .iter()
        .find(|l| starts_with_ci(l, "* ACL "))
        .ok_or_else(|| ServiceError::Protocol("GETACL gave no ACL line".into()))?;
    parse_acl(line).map_err(ServiceError::Protocol)
}

/// `MYRIGHTS mailbox` → the user's own rights there (RFC 4314 §3.5).
pub async fn my_rights(session: &mut Session<ImapConnection>, folder: &str) -> Result<String, ServiceError> {
    let lines = raw::command(session, "acl2", &format!("MYRIGHTS {}", quote(folder))).await?;
    let line = lines
        .iter()
        .find(|l| starts_with_ci(l, "* MYRIGHTS "))
        .ok_or_else(|| ServiceError::Protocol("MYRIGHTS gave no answer line".into()))?;
    let words = astrings(&line["* MYRIGHTS ".len()..]).map_err(ServiceError::Protocol)?;
    words
        .get(1)
        .cloned()
        .ok_or_else(|| ServiceError::Protocol(format!("malformed MYRIGHTS: {line}")))
}

/// `SETACL mailbox identifier rights`, or `DELETEACL` when `rights` is empty (§3.1, §3.2).
pub async fn set_acl(
    session: &mut Session<ImapConnection>,
    folder: &str,
    identifier: &str,
    rights: &str,
) -> Result<(), ServiceError> {
    let command = if rights.is_empty() {
        format!("DELETEACL {} {}", quote(folder), quote(identifier))
    } else {
        format!("SETACL {} {} {}", quote(folder), quote(identifier), quote(rights))
    };
    raw::command(session, "acl3", &command).await.map(|_| ())
}

/// Parses `* ACL mailbox (identifier rights)*`.
pub fn parse_acl(line: &str) -> Result<Vec<AclEntry>, String> {
    let rest = line
        .get("* ACL ".len()..)
        .filter(|_| starts_with_ci(line, "* ACL "))
        .ok_or("not an ACL line")?;
    let words = astrings(rest)?;
    if words.is_empty() || words.len() % 2 != 1 {
        return Err(format!("malformed ACL answer: {line}"));
    }
    Ok(words[1..]
        .chunks(2)
        .map(|pair| AclEntry {
            identifier: pair[0].clone(),
            rights: pair[1].clone(),
        })
        .collect())
}

/// Atoms and quoted strings, space-separated (RFC 3501 §4.3; literals do not occur here).
fn astrings(text: &str) -> Result<Vec<String>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' => i += 1,
            b'"' => {
                let mut word = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            word.push(*bytes.get(i + 1).ok_or("dangling escape")?);
                            i += 2;
                        }
                        Some(&b) => {
                            word.push(b);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push(String::from_utf8(word).map_err(|_| "not UTF-8".to_owned())?);
            }
            _ => {
                let start = i;
                while i < bytes.len() && bytes[i] != b' ' {
                    i += 1;
                }
                out.push(text[start..i].to_owned());
            }
        }
    }
    Ok(out)
}

/// A quoted string for a command argument (RFC 3501 §4.3).
pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Whether `rights` (a MYRIGHTS answer) allow every right in `needed` (RFC 4314 §2.1 letters:
/// s seen, w other flags, i insert, t delete flag, e expunge, k create, x delete mailbox).
pub fn allows(rights: &str, needed: &str) -> bool {
    needed.chars().all(|c| rights.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_acl_answers() {
        let acl = parse_acl(r#"* ACL "Team Folder" alice lrswipkxtecda "bob smith" lr anyone l"#).unwrap();
        assert_eq!(acl.len(), 3);
        assert_eq!(
            acl[1],
            AclEntry {
                identifier: "bob smith".into(),
                rights: "lr".into()
            }
        );
        assert_eq!(parse_acl("* ACL INBOX").unwrap(), vec![]);
        assert!(parse_acl("* ACL INBOX alice").is_err());
        assert!(parse_acl("* LIST").is_err());
        assert!(parse_acl(r#"* ACL "open"#).is_err());
    }

    #[test]
    fn rights_are_checked_letter_by_letter() {
        assert!(allows("lrswipkxtecda", "ste"));
        assert!(!allows("lr", "s"));
        assert!(allows("lr", ""));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in ".{0,120}") {
            let _ = parse_acl(&line);
            let _ = parse_acl(&format!("* ACL {line}"));
        }
    }
}
