//! Key layout of the store: `account NUL part NUL part …`, integers big-endian so they sort.

/// `account` followed by the separator: the prefix of every key of that account.
pub fn account_prefix(account: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 1);
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key
}

/// `account NUL part`.
pub fn with_str(account: &str, part: &str) -> Vec<u8> {
    let mut key = account_prefix(account);
    key.extend_from_slice(part.as_bytes());
    key
}

/// `account NUL id` with `id` big-endian, so iteration follows id order.
pub fn with_u64(account: &str, id: u64) -> Vec<u8> {
    let mut key = account_prefix(account);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `account NUL folder NUL uid` with `uid` big-endian (RFC 3501 §2.3.1.1: UIDs ascend).
pub fn message(account: &str, folder: &str, uid: u32) -> Vec<u8> {
    let mut key = folder_prefix(account, folder);
    key.extend_from_slice(&uid.to_be_bytes());
    key
}

/// `account NUL folder NUL`: the prefix of every message of a folder.
pub fn folder_prefix(account: &str, folder: &str) -> Vec<u8> {
    let mut key = with_str(account, folder);
    key.push(0);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_by_uid_within_a_folder() {
        let a = message("work", "INBOX", 9);
        let b = message("work", "INBOX", 10);
        let c = message("work", "INBOX.x", 1);
        assert!(a < b);
        assert!(a.starts_with(&folder_prefix("work", "INBOX")));
        assert!(!c.starts_with(&folder_prefix("work", "INBOX")));
    }
}
