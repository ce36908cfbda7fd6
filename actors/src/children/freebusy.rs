//! Free/busy for the CalDAV child: through the user's scheduling outbox (RFC 6638 §5, a POST of a
//! VFREEBUSY request), else a free-busy-query REPORT (RFC 4791 §7.10) on the user's own calendars
//! for the user's own address, else "not supported". The outbox is a link from the server's
//! answer: it passes the credential rule ([`DavClient::named`]) before anything is posted to it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use url::Url;

use crate::children::AccountEnv;
use crate::dav::DavClient;
use crate::dav::client::{check_status, read_body};
use crate::dav::xml::NS_CALDAV;
use crate::error::ServiceError;
use crate::formats::freebusy::{self, Period};

/// Per attendee: the busy periods, or why the server could not say (a request-status).
pub type Answers = BTreeMap<String, Result<Vec<Period>, String>>;

/// Answers who is busy when, asking the server now.
pub async fn ask(
    env: &AccountEnv,
    client: &DavClient,
    principal: &Url,
    attendees: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Answers, ServiceError> {
    let (answered, ms) = client
        .propfind(principal, "0", freebusy::PROPFIND_SCHEDULING)
        .await?;
    let prop = |name: &str| ms.responses.iter().find_map(|r| r.prop(NS_CALDAV, name));
    let outbox = prop("schedule-outbox-URL")
        .and_then(|p| p.hrefs.first())
        .and_then(|h| answered.join(h).ok())
        .map(|outbox| client.named(&answered, outbox))
        .transpose()?;
    let own: Vec<String> = prop("calendar-user-address-set")
        .map(|p| p.hrefs.clone())
        .unwrap_or_default();
    let organizer = own
        .iter()
        .find(|a| a.to_ascii_lowercase().starts_with("mailto:"))
        .cloned()
        .unwrap_or_else(|| format!("mailto:{}", env.spec.email));
    if let Some(outbox) = outbox {
        return via_outbox(client, &outbox, &organizer, attendees, start, end).await;
    }
    via_query(env, client, &own, &organizer, attendees, start, end).await
}

async fn via_outbox(
    client: &DavClient,
    outbox: &Url,
    organizer: &str,
    attendees: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Answers, ServiceError> {
    let uid = format!("opconnect-fb-{}", Utc::now().timestamp_nanos_opt().unwrap_or(0));
    let body = freebusy::request(organizer, attendees, start, end, &uid);
    let (url, resp) = client
        .request(
            Method::POST,
            outbox,
            &[("Content-Type", "text/calendar; charset=utf-8")],
            Some(&body),
        )
        .await?;
    check_status(&url, resp.status(), resp.headers())?;
    let bytes = read_body(&url, resp).await?;
    let answers = freebusy::parse_schedule_response(&bytes)
        .map_err(|e| ServiceError::Protocol(format!("{url}: {e}")))?;
    let mut out = Answers::new();
    for answer in answers {
        let result = match (&answer.calendar_data, answer.status.starts_with("2.")) {
            (Some(ics), true) => freebusy::periods(ics),
            _ => Err(answer.status.clone()),
        };
        out.insert(answer.recipient, result);
    }
    Ok(out)
}

/// RFC 4791 §7.10 on every calendar of the user, for the user's own addresses only.
async fn via_query(
    env: &AccountEnv,
    client: &DavClient,
    own: &[String],
    organizer: &str,
    attendees: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Answers, ServiceError> {
    let is_own =
        |a: &String| a.eq_ignore_ascii_case(organizer) || own.iter().any(|o| o.eq_ignore_ascii_case(a));
    if !attendees.iter().any(is_own) {
        return Err(ServiceError::Unsupported(
            "the server has no scheduling outbox (RFC 6638), so only your own free/busy can be asked".into(),
        ));
    }
    let body = freebusy::query_body(start, end);
    let calendars = env
        .store
        .dav_collections_of(&env.spec.name, &["calendar"])
        .map_err(|e| ServiceError::Config(format!("the local mirror: {e}")))?;
    let mut busy = Vec::new();
    for calendar in calendars {
        // The calendar's host, which may not be the configured one (iCloud's partitions).
        let url = client.locate(&calendar.href)?;
        let method = Method::from_bytes(b"REPORT").expect("valid method");
        let (url, resp) = client
            .request(method, &url, &[("Depth", "1")], Some(&body))
            .await?;
        if matches!(resp.status().as_u16(), 403 | 404 | 405 | 501) {
            return Err(ServiceError::Unsupported(format!(
                "{url} does not answer free-busy-query ({})",
                resp.status()
            )));
        }
        check_status(&url, resp.status(), resp.headers())?;
        let text = String::from_utf8_lossy(&read_body(&url, resp).await?).into_owned();
        busy.extend(freebusy::periods(&text).map_err(|e| ServiceError::Protocol(format!("{url}: {e}")))?);
    }
    busy.sort_by_key(|p| p.start);
    Ok(attendees
        .iter()
        .map(|a| {
            let result = if is_own(a) {
                Ok(busy.clone())
            } else {
                Err("3.7;not visible without a scheduling outbox".into())
            };
            (a.clone(), result)
        })
        .collect())
}
