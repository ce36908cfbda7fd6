//! Events the engine emits; the agent forwards them to IPC subscribers, the tray and the notifier.

use serde_json::{Map, Value};

/// One event: a topic from INTERFACE §4 (`state`, `mail.new`, …) and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentEvent {
    pub topic: String,
    pub data: Map<String, Value>,
}

impl AgentEvent {
    /// Builds an event from a JSON object; anything but an object becomes `{"value": …}`.
    pub fn new(topic: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("value".into(), other);
                map
            }
        };
        AgentEvent {
            topic: topic.to_owned(),
            data,
        }
    }
}

/// The engine's event bus: lagging receivers lose old events, never block the engine.
pub type EventBus = tokio::sync::broadcast::Sender<AgentEvent>;

/// A bus with room for bursts (a full folder sync emits one event per folder).
pub fn event_bus() -> EventBus {
    tokio::sync::broadcast::channel(1024).0
}
