//! `calendar.freebusy {account, attendees, start, end}` (INTERFACE §4): asks the CalDAV server
//! now, through the account's CalDAV child. Offline → code 4; no way to ask → code 2.

use actix::Addr;
use opconnect_actors::formats::ical;
use opconnect_actors::hub::Hub;
use opconnect_actors::status::ServiceKind;
use opconnect_actors::supervise::ChildCommand;
use opconnect_ipc::RpcError;
use serde_json::{Map, Value, json};

use crate::api::required_string;

pub async fn call(hub: &Addr<Hub>, params: &Value) -> Result<Value, RpcError> {
    let account = required_string(params, "account")?;
    let attendees: Vec<String> = params
        .get("attendees")
        .and_then(Value::as_array)
        .ok_or_else(|| RpcError::invalid_params("`attendees` must be an array of addresses"))?
        .iter()
        .map(|a| a.as_str().map(address))
        .collect::<Option<_>>()
        .filter(|list: &Vec<String>| !list.is_empty())
        .ok_or_else(|| RpcError::invalid_params("`attendees` must hold one or more addresses"))?;
    let bound = |key: &str| {
        let text = required_string(params, key)?;
        ical::parse_bound(&text).map_err(|e| RpcError::invalid_params(format!("`{key}`: {e}")))
    };
    let (start, end) = (bound("start")?, bound("end")?);
    if end <= start {
        return Err(RpcError::invalid_params("`end` must come after `start`"));
    }
    let answers = crate::api::ask(hub, account, ServiceKind::Caldav, |reply| {
        ChildCommand::FreeBusy {
            attendees,
            start,
            end,
            reply,
        }
    })
    .await?;
    let mut out = Map::new();
    for (attendee, result) in answers {
        let value = match result {
            Ok(periods) => periods
                .iter()
                .map(|p| json!({"start": p.start.to_rfc3339(), "end": p.end.to_rfc3339(), "type": p.kind}))
                .collect(),
            Err(status) => json!({"error": status}),
        };
        out.insert(attendee, value);
    }
    Ok(Value::Object(out))
}

/// `bob@example.org` → `mailto:bob@example.org` (RFC 6638 calendar user addresses).
fn address(text: &str) -> String {
    if text.contains(':') {
        text.to_owned()
    } else {
        format!("mailto:{text}")
    }
}
