//! Content-line unfolding on bytes (RFC 5545 §3.1, RFC 6350 §3.2): a fold may split a UTF-8
//! character, so lines are joined before the text is decoded.

/// Removes every line break followed by one space or tab (`CRLF SP`, and the bare `LF SP` some
/// servers write). Everything else is kept as it is.
pub fn unfold(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let fold_len = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'\r', Some(b'\n'), Some(b' ' | b'\t')) => 3,
            (b'\n', Some(b' ' | b'\t'), _) => 2,
            _ => 0,
        };
        if fold_len > 0 {
            i += fold_len;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// Unfolds and decodes; invalid UTF-8 after unfolding is the item's error (invariant 4).
pub fn unfold_to_string(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(unfold(bytes)).map_err(|e| format!("not UTF-8 after unfolding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_a_fold_inside_a_utf8_character() {
        // "ü" is C3 BC; a server folded between the two bytes.
        let folded = b"SUMMARY:Gr\xc3\r\n \xbcn\r\nEND:VEVENT\r\n";
        assert_eq!(
            unfold_to_string(folded).unwrap(),
            "SUMMARY:Grün\r\nEND:VEVENT\r\n"
        );
        assert_eq!(unfold(b"A:b\n\tc\n"), b"A:bc\n");
        assert_eq!(unfold(b"A:b\r\nC:d"), b"A:b\r\nC:d");
    }

    proptest::proptest! {
        #[test]
        fn unfolding_never_grows_and_keeps_unfolded_text(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let out = unfold(&bytes);
            proptest::prop_assert!(out.len() <= bytes.len());
            if !bytes.windows(2).any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t')) {
                proptest::prop_assert_eq!(out, bytes);
            }
        }
    }
}
