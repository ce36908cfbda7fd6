//! The status report's probes (INTERFACE §5): each configured service is probed concurrently,
//! read-only, within a time limit; a probe that fails is recorded with its reason and never fails
//! the report. `matrix` turns the facts into the feature cells.
//!
//! ```text
//!              ┌─ imap::probe    ─┐
//!   run(spec) ─┼─ dav::probe ×2  ─┼─► Probes ──► matrix::features ──► [Feature]
//!              └─ sieve::probe   ─┘   (each Outcome: NotConfigured | Failed{error} | Ok{facts})
//! ```

pub mod dav;
pub mod facts;
pub mod imap;
pub mod matrix;
pub mod sieve;

#[cfg(test)]
mod matrix_tests;

use std::time::Duration;

use crate::account::{AccountSpec, Secret};
use crate::dav::discovery::DavService;
use crate::error::ServiceError;

pub use facts::{Outcome, Probes};
pub use matrix::{DELIVERED, Feature, MatrixOptions, Status, features};

/// Probes every service `spec` has. `password` is `Err(reason)` when it could not be had: the
/// services that need a login then fail with that reason, ManageSieve (no login) still runs.
pub async fn run(spec: &AccountSpec, password: Result<Secret, String>, limit: Duration) -> Probes {
    let tls = match spec.tls() {
        Ok(t) => t,
        Err(e) => {
            let e = e.to_string();
            return Probes {
                imap: failed_if(&spec.imap, &e),
                caldav: failed_if(&spec.caldav, &e),
                carddav: failed_if(&spec.carddav, &e),
                sieve: failed_if(&spec.sieve, &e),
            };
        }
    };
    let user = spec.username.as_str();
    let imap = async {
        let Some(ep) = &spec.imap else {
            return Outcome::NotConfigured;
        };
        let pw = match &password {
            Ok(p) => p,
            Err(why) => return Outcome::Failed { error: why.clone() },
        };
        timed(limit, imap::probe(ep, tls.clone(), user, pw, limit)).await
    };
    let dav = |endpoint: &Option<crate::net::endpoint::Endpoint>, service| {
        let (endpoint, tls, password) = (endpoint.clone(), tls.clone(), password.clone());
        let gal = match service {
            DavService::CardDav => spec.gal.as_ref().map(|g| g.url.clone()),
            DavService::CalDav => None,
        };
        async move {
            let Some(ep) = endpoint else {
                return Outcome::NotConfigured;
            };
            let pw = match password {
                Ok(p) => p,
                Err(why) => return Outcome::Failed { error: why },
            };
            timed(
                limit,
                dav::probe(&ep, tls, user, &pw, service, gal.as_ref(), limit),
            )
            .await
        }
    };
    let sieve = async {
        match &spec.sieve {
            None => Outcome::NotConfigured,
            Some(ep) => timed(limit, sieve::probe(ep, tls.clone())).await,
        }
    };
    let (imap, caldav, carddav, sieve) = tokio::join!(
        imap,
        dav(&spec.caldav, DavService::CalDav),
        dav(&spec.carddav, DavService::CardDav),
        sieve
    );
    Probes {
        imap,
        caldav,
        carddav,
        sieve,
    }
}

fn failed_if<T, E>(service: &Option<E>, error: &str) -> Outcome<T> {
    match service {
        None => Outcome::NotConfigured,
        Some(_) => Outcome::Failed {
            error: error.to_owned(),
        },
    }
}

/// One probe within `limit`; its error becomes the outcome's reason.
async fn timed<T>(limit: Duration, work: impl Future<Output = Result<T, ServiceError>>) -> Outcome<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(facts)) => Outcome::Ok { facts },
        Ok(Err(e)) => Outcome::Failed { error: e.to_string() },
        Err(_) => Outcome::Failed {
            error: format!("no answer within {}", humantime::format_duration(limit)),
        },
    }
}
