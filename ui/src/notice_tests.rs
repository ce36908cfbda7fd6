//! Notification rules: what is told, what is told once, and the rate limit.

use super::*;
use serde_json::json;

fn data(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn conflict(id: u64) -> Map<String, Value> {
    data(json!({"account": "alice", "id": id, "summary": "Team meeting", "href": "/c/x.ics"}))
}

#[test]
fn a_conflict_is_told_with_its_three_choices() {
    let now = Instant::now();
    let mut policy = Policy::new(now);
    let notice = policy.on_event("conflict", &conflict(7), now).expect("a notice");
    assert_eq!(notice.summary, "Conflict in alice");
    assert!(notice.body.contains("“Team meeting”"), "{}", notice.body);
    assert_eq!(notice.conflict, Some(7));
    assert_eq!(
        notice.actions(),
        [
            ("local", "Keep mine"),
            ("server", "Keep server's"),
            ("both", "Keep both")
        ]
    );
    assert_eq!(
        policy.on_event("mail.new", &data(json!({"account": "alice"})), now),
        None
    );
    assert_eq!(
        policy.on_event("conflict", &data(json!({"account": "alice"})), now),
        None,
        "no id"
    );
}

#[test]
fn an_authentication_failure_is_told_once_until_the_account_is_back() {
    let now = Instant::now();
    let mut policy = Policy::new(now);
    let failed = data(json!({"account": "work", "state": "error", "error": "authentication failed"}));
    let notice = policy.on_event("state", &failed, now).expect("told");
    assert!(notice.urgent);
    assert_eq!(notice.summary, "work cannot connect");
    assert!(
        notice.body.starts_with("authentication failed."),
        "{}",
        notice.body
    );
    assert_eq!(notice.actions(), []);
    // The retries report the failure again, with another message or via connecting.
    let other = data(json!({"account": "work", "state": "error", "error": "authentication failed (2)"}));
    assert_eq!(policy.on_event("state", &other, now), None);
    let connecting = data(json!({"account": "work", "state": "connecting"}));
    assert_eq!(policy.on_event("state", &connecting, now), None);
    assert_eq!(
        policy.on_event("state", &failed, now),
        None,
        "still the same failure"
    );
    // Back online, then failing again: a new failure, told again (later, with a token).
    let later = now + REFILL * 10;
    let online = data(json!({"account": "work", "state": "online"}));
    assert_eq!(policy.on_event("state", &online, later), None);
    assert!(policy.on_event("state", &failed, later).is_some());
    // Another account's failure is its own.
    let home = data(json!({"account": "home", "state": "error", "error": "certificate"}));
    assert!(policy.on_event("state", &home, later).is_some());
}

#[test]
fn a_failed_operation_is_told_once_however_often_it_is_retried() {
    let now = Instant::now();
    let mut policy = Policy::new(now);
    let failed = data(json!({"account": "a", "op": 3, "error": "NO [CANNOT] refused", "final": false}));
    let notice = policy.on_event("op.failed", &failed, now).expect("told");
    assert_eq!(notice.summary, "A change in a was refused");
    assert!(
        notice.body.ends_with("It will be tried again."),
        "{}",
        notice.body
    );
    assert_eq!(policy.on_event("op.failed", &failed, now), None);
    let last = data(json!({"account": "a", "op": 4, "error": "gone", "final": true}));
    let notice = policy.on_event("op.failed", &last, now).expect("another op");
    assert!(
        notice.body.contains("set aside; nothing is lost"),
        "{}",
        notice.body
    );
}

#[test]
fn a_burst_shows_three_then_one_summary_when_the_limit_allows() {
    let start = Instant::now();
    let mut policy = Policy::new(start);
    let shown = (0..50)
        .filter_map(|i| policy.on_event("conflict", &conflict(i), start))
        .count();
    assert_eq!(shown, BURST as usize);
    assert_eq!(policy.tick(start + Duration::from_secs(1)), None, "no token yet");
    let summary = policy
        .tick(start + REFILL)
        .expect("a summary once a token is back");
    assert_eq!(summary.summary, "opconnect: 47 more notifications");
    assert_eq!(summary.conflict, None);
    assert_eq!(
        policy.tick(start + REFILL * 5),
        None,
        "nothing more was held back"
    );
    // After a quiet spell the whole burst is available again, and no more than that.
    let later = start + REFILL * 20;
    let shown = (100..110)
        .filter_map(|i| policy.on_event("conflict", &conflict(i), later))
        .count();
    assert_eq!(shown, BURST as usize);
}
