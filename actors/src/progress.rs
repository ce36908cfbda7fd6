//! Progress of long sync rounds: the `sync.progress` event (an opconnect topic beyond INTERFACE
//! §4), rate-limited, and the board the hub keeps of it so that `status` can say what each
//! service is doing now.
//!
//! ```text
//!  child ── Tracker::update(done, total) ──► sync.progress {account, service, what, done, total,
//!                                             eta_s?, folder?|collection?}   (≤ 4 a second)
//!  hub ◄── sync.progress / synced / sync.failed ── Board ──► status: services.X.activity
//! ```
//!
//! A sequence (one `what` of one folder or collection) is *long* once its total reaches
//! [`LONG_TOTAL`] or it has run for [`LONG_AFTER`]; only long sequences emit, so a round that
//! brings one new message stays quiet. A long sequence emits its first step, then at most one
//! step per [`MIN_GAP`], and always its last (`done == total`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::events::{AgentEvent, EventBus};

/// The event topic.
pub const TOPIC: &str = "sync.progress";
/// The topic of a round that ended in an error (the service then waits to retry).
pub const FAILED: &str = "sync.failed";
/// A sequence with at least this many steps is long from its start.
pub const LONG_TOTAL: u64 = 200;
/// … and any sequence that has run this long is long too.
pub const LONG_AFTER: Duration = Duration::from_secs(1);
/// At most one event per sequence in this interval (the final one excepted).
pub const MIN_GAP: Duration = Duration::from_millis(250);

/// Counts one sequence of a round and emits its `sync.progress` events.
pub struct Tracker {
    bus: EventBus,
    account: String,
    service: &'static str,
    what: &'static str,
    name: Option<(&'static str, String)>,
    started: Instant,
    last_emit: Option<Instant>,
    done: u64,
    total: u64,
    emitted_done: Option<u64>,
}

impl Tracker {
    /// `what` is the unit counted: `folders`, `messages`, `collections`, `items`, `operations`.
    pub fn new(bus: EventBus, account: &str, service: &'static str, what: &'static str) -> Self {
        Tracker {
            bus,
            account: account.to_owned(),
            service,
            what,
            name: None,
            started: Instant::now(),
            last_emit: None,
            done: 0,
            total: 0,
            emitted_done: None,
        }
    }

    /// Names what is counted in, e.g. `("folder", "INBOX")` or `("collection", href)`.
    pub fn named(mut self, key: &'static str, value: &str) -> Self {
        self.name = Some((key, value.to_owned()));
        self
    }

    /// Sets the total (steps done so far are kept).
    pub fn total(&mut self, total: u64) {
        self.update(self.done, total);
    }

    /// `n` more steps are done.
    pub fn advance(&mut self, n: u64) {
        self.update(self.done + n, self.total);
    }

    pub fn update(&mut self, done: u64, total: u64) {
        self.update_at(done, total, Instant::now());
    }

    /// The sequence ended (perhaps short of its total: an item the server no longer had): a
    /// sequence that emitted anything emits its last state.
    pub fn finish(&mut self) {
        if self.emitted_done.is_some() && self.emitted_done != Some(self.done) {
            self.total = self.total.max(self.done);
            self.emit(Instant::now());
        }
    }

    fn update_at(&mut self, done: u64, total: u64, now: Instant) {
        // Never backwards: subscribers draw bars from these.
        self.done = done.max(self.done);
        self.total = total.max(self.done);
        if self.should_emit(now) {
            self.emit(now);
        }
    }

    fn should_emit(&self, now: Instant) -> bool {
        let long = self.total >= LONG_TOTAL || now.duration_since(self.started) >= LONG_AFTER;
        if !long || self.total == 0 || self.emitted_done == Some(self.done) {
            return false;
        }
        let last = self.done >= self.total;
        last || self.last_emit.is_none_or(|at| now.duration_since(at) >= MIN_GAP)
    }

    /// Seconds left at the pace so far, once there is a pace to go by.
    fn eta(&self, now: Instant) -> Option<u64> {
        let elapsed = now.duration_since(self.started);
        // Folders and collections differ too much in size for their count to tell the pace.
        let uneven = matches!(self.what, "folders" | "collections");
        if uneven || self.done == 0 || self.done >= self.total || elapsed < LONG_AFTER {
            return None;
        }
        let left = elapsed.as_secs_f64() * (self.total - self.done) as f64 / self.done as f64;
        Some(left.ceil() as u64)
    }

    fn event(&self, now: Instant) -> Value {
        let mut data = json!({
            "account": self.account,
            "service": self.service,
            "what": self.what,
            "done": self.done,
            "total": self.total,
        });
        if let Some(eta) = self.eta(now) {
            data["eta_s"] = eta.into();
        }
        if let Some((key, value)) = &self.name {
            data[*key] = value.clone().into();
        }
        data
    }

    fn emit(&mut self, now: Instant) {
        self.last_emit = Some(now);
        self.emitted_done = Some(self.done);
        let _ = self.bus.send(AgentEvent::new(TOPIC, self.event(now)));
    }
}

/// What one service is doing now, as `status` shows it (`services.X.activity`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// `idle`, `connecting`, `syncing`, `replaying`, `waiting` (to retry) or `paused`.
    pub doing: &'static str,
    /// The running sequences of a `syncing` or `replaying` round, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Value>,
    /// When a `waiting` service tries again (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// The running sequences per account and service, fed from the event bus.
#[derive(Debug, Default)]
pub struct Board {
    running: BTreeMap<(String, String), BTreeMap<(String, String), Value>>,
}

impl Board {
    /// Takes note of `sync.progress`, `synced` and `sync.failed`; other topics are ignored.
    pub fn observe(&mut self, event: &AgentEvent) {
        let field = |k: &str| event.data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let key = (field("account"), field("service"));
        match event.topic.as_str() {
            TOPIC => {
                let seq = (field("what"), field("folder") + &field("collection"));
                let done = event.data.get("done").and_then(Value::as_u64).unwrap_or(0);
                let total = event.data.get("total").and_then(Value::as_u64).unwrap_or(0);
                let running = self.running.entry(key).or_default();
                if done >= total {
                    running.remove(&seq);
                } else {
                    running.insert(seq, Value::Object(event.data.clone()));
                }
            }
            "synced" | FAILED => {
                self.running.remove(&key);
            }
            _ => {}
        }
    }

    /// The activity of one service in `state` (with `retry_at` when it waits to retry).
    pub fn activity(
        &self,
        account: &str,
        service: &str,
        state: crate::status::State,
        retry_at: Option<&str>,
    ) -> Activity {
        use crate::status::State;
        let progress: Vec<Value> = self
            .running
            .get(&(account.to_owned(), service.to_owned()))
            .map(|seqs| {
                let mut v: Vec<Value> = seqs
                    .values()
                    .map(|e| {
                        let mut e = e.clone();
                        if let Some(map) = e.as_object_mut() {
                            map.remove("account");
                            map.remove("service");
                        }
                        e
                    })
                    .collect();
                // Outermost first: folders/collections, then what is inside them.
                v.sort_by_key(|e| rank(e["what"].as_str().unwrap_or("")));
                v
            })
            .unwrap_or_default();
        let doing = match state {
            State::Paused => "paused",
            State::Offline | State::Error if retry_at.is_some() => "waiting",
            State::Offline | State::Error => "idle",
            State::Connecting => "connecting",
            State::Online if progress.iter().any(|p| p["what"] == "operations") => "replaying",
            State::Online if !progress.is_empty() => "syncing",
            State::Online => "idle",
        };
        let progress = if matches!(doing, "syncing" | "replaying") {
            progress
        } else {
            Vec::new()
        };
        Activity {
            doing,
            progress,
            until: retry_at.filter(|_| doing == "waiting").map(str::to_owned),
        }
    }
}

fn rank(what: &str) -> u8 {
    match what {
        "operations" => 0,
        "folders" | "collections" => 1,
        _ => 2,
    }
}

/// One line for people: "syncing messages 4,500 of 20,000 (INBOX, about 12 s left)".
pub fn describe(activity: &Activity) -> String {
    let mut out = activity.doing.to_owned();
    if let Some(until) = &activity.until {
        out.push_str(&format!(" to retry until {until}"));
    }
    for (i, p) in activity.progress.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(&step(p));
    }
    out
}

/// One sequence for people: "messages 4,500 of 20,000 (INBOX, about 12 s left)".
pub fn step(p: &Value) -> String {
    let mut out = format!(
        "{} {} of {}",
        p["what"].as_str().unwrap_or("items"),
        grouped(p["done"].as_u64().unwrap_or(0)),
        grouped(p["total"].as_u64().unwrap_or(0))
    );
    let mut notes = Vec::new();
    if let Some(name) = p["folder"].as_str().or(p["collection"].as_str()) {
        notes.push(name.to_owned());
    }
    if let Some(eta) = p["eta_s"].as_u64() {
        notes.push(format!("about {eta} s left"));
    }
    if !notes.is_empty() {
        out.push_str(&format!(" ({})", notes.join(", ")));
    }
    out
}

/// 20000 → "20,000".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    fn tracker() -> (Tracker, tokio::sync::broadcast::Receiver<AgentEvent>) {
        let bus = crate::events::event_bus();
        let rx = bus.subscribe();
        (
            Tracker::new(bus, "work", "imap", "messages").named("folder", "INBOX"),
            rx,
        )
    }

    fn drain(rx: &mut tokio::sync::broadcast::Receiver<AgentEvent>) -> Vec<AgentEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn a_long_sequence_is_rate_limited_and_ends_on_its_total() {
        let (mut t, mut rx) = tracker();
        let start = t.started;
        // 20,000 steps of 10 over 10 s: one call every 5 ms.
        for i in 1..=2000u64 {
            t.update_at(i * 10, 20_000, start + Duration::from_millis(i * 5));
        }
        let events = drain(&mut rx);
        let dones: Vec<u64> = events.iter().map(|e| e.data["done"].as_u64().unwrap()).collect();
        assert!(dones.windows(2).all(|w| w[0] < w[1]), "{dones:?}");
        assert_eq!(*dones.last().unwrap(), 20_000);
        // 10 s at one per 250 ms, plus the first and the last.
        assert!(events.len() <= 42, "{} events", events.len());
        let e = &events[events.len() / 2];
        assert_eq!(e.topic, TOPIC);
        assert_eq!(e.data["folder"], "INBOX");
        assert_eq!(e.data["account"], "work");
        assert!(
            e.data["eta_s"].as_u64().is_some_and(|s| (3..=7).contains(&s)),
            "{e:?}"
        );
        assert!(events.last().unwrap().data.get("eta_s").is_none());
    }

    #[test]
    fn a_short_sequence_stays_quiet_unless_it_takes_long() {
        let (mut t, mut rx) = tracker();
        let start = t.started;
        t.update_at(1, 3, start);
        t.update_at(3, 3, start + Duration::from_millis(10));
        assert!(drain(&mut rx).is_empty());
        let (mut t, mut rx) = tracker();
        let start = t.started;
        t.update_at(1, 3, start + Duration::from_millis(1500));
        t.update_at(2, 3, start + Duration::from_millis(1600));
        t.update_at(3, 3, start + Duration::from_millis(1700));
        let dones: Vec<_> = drain(&mut rx).iter().map(|e| e.data["done"].clone()).collect();
        assert_eq!(dones, vec![json!(1), json!(3)]);
    }

    #[test]
    fn finish_reports_a_sequence_that_fell_short() {
        let (mut t, mut rx) = tracker();
        t.update(0, 500);
        t.advance(300);
        t.finish();
        let last = drain(&mut rx).pop().unwrap();
        assert_eq!(
            (last.data["done"].clone(), last.data["total"].clone()),
            (json!(300), json!(500))
        );
    }

    #[test]
    fn the_board_shows_running_sequences_until_the_round_ends() {
        let mut board = Board::default();
        let ev = |topic: &str, data: Value| AgentEvent::new(topic, data);
        board.observe(&ev(
            TOPIC,
            json!({"account": "w", "service": "imap", "what": "messages", "folder": "INBOX", "done": 10, "total": 100}),
        ));
        board.observe(&ev(
            TOPIC,
            json!({"account": "w", "service": "imap", "what": "folders", "done": 1, "total": 3}),
        ));
        let a = board.activity("w", "imap", State::Online, None);
        assert_eq!(a.doing, "syncing");
        assert_eq!(describe(&a), "syncing folders 1 of 3, messages 10 of 100 (INBOX)");
        assert_eq!(board.activity("w", "caldav", State::Online, None).doing, "idle");
        board.observe(&ev("synced", json!({"account": "w", "service": "imap"})));
        assert_eq!(board.activity("w", "imap", State::Online, None).doing, "idle");
        let waiting = board.activity("w", "imap", State::Offline, Some("2026-12-03T14:00:00Z"));
        assert_eq!(describe(&waiting), "waiting to retry until 2026-12-03T14:00:00Z");
        board.observe(&ev(
            TOPIC,
            json!({"account": "w", "service": "imap", "what": "operations", "done": 1, "total": 250}),
        ));
        assert_eq!(
            board.activity("w", "imap", State::Online, None).doing,
            "replaying"
        );
        assert_eq!(grouped(20_000), "20,000");
        assert_eq!(grouped(999), "999");
    }
}
