//! The mirror's side of a streamed first pull (issue 22): the batches `dav::stream` reads are
//! parsed into item records and written on two blocking threads, so that reading the answer,
//! parsing its items and committing LMDB transactions overlap on both cores instead of taking
//! turns on the async task. The writer is the slowest stage (random hrefs touch pages all over
//! the tree), and one parser keeps it fed. It commits whole batches, grouped up to
//! [`TXN_ITEMS`] items or [`TXN_BYTES`] of bodies per transaction and sorted by href: each commit
//! has a fixed cost (its page copies and syncs), and sorted puts land on the leaf the previous
//! put made dirty. The budget is fixed, not a share of the collection: LMDB keeps the dirty pages
//! of its largest transaction for reuse, so memory stays the same for any size (benchmark 7:
//! 1,000 items per transaction cut the writes of 50,000 events from 1.4–2.0 s to 1.1 s for 7 MB
//! more resident; 2,000 to 0.8–0.9 s for 17 MB more, and the pull gained no more).
//!
//! ```text
//!   dav::stream (async task) ──batch──► channel (IN_FLIGHT) ──► parser thread
//!        ▲                                                     ItemRecord::parsed
//!        │                                                          │ channel (1 batch)
//!        └──── written count (progress, `added`) ◄──── writer thread: apply_dav_items,
//!                                                       one transaction per group of batches
//! ```
//! Memory: at most IN_FLIGHT batches queued, one being parsed, one parsed waiting and one
//! transaction's budget being written, whatever the speed of the server or of the disk (a full
//! channel holds the reading back). A failed write stops the writer; the parser's next hand-over
//! fails, it stops, the reader's next send fails and the pull ends: [`Pipeline::finish`] returns
//! the write's error, naming the collection. Each transaction holds whole batches, so the mirror
//! holds whole batches only; a collection without its record is listed and completed by the
//! next round.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::dav::sync::Fetched;
use crate::error::ServiceError;
use crate::store::Store;
use crate::store::records::ItemRecord;

/// Batches read but not yet parsed: enough for the reader not to wait on a parse that is
/// about to end, few enough that memory stays a few batches (`dav::stream::BATCH`).
pub const IN_FLIGHT: usize = 2;

/// The items one transaction of the writer gathers, in whole batches (see the module's notes).
pub const TXN_ITEMS: usize = 1000;

/// The bodies' bytes one transaction gathers: a batch of large items (contacts with photos)
/// is a transaction of its own, as `dav::stream` already cut it at `BATCH_BYTES`.
pub const TXN_BYTES: usize = crate::dav::stream::BATCH_BYTES;

/// The threads of a running first pull of one collection.
pub struct Pipeline {
    writer: JoinHandle<Result<(), String>>,
    collection: String,
}

/// Where the reader sends its batches: dropping it ends the pipeline once everything sent is
/// written.
pub type Batches = mpsc::Sender<Vec<Fetched>>;
/// The count of each batch written, in order.
pub type Written = mpsc::UnboundedReceiver<usize>;

impl Pipeline {
    /// Starts the parser and writer threads for `collection` of `account`.
    pub fn start(
        store: Store,
        account: &str,
        collection: &str,
        calendar: bool,
    ) -> (Batches, Written, Pipeline) {
        let (batches, mut read) = mpsc::channel::<Vec<Fetched>>(IN_FLIGHT);
        let (parsed_tx, parsed) = std::sync::mpsc::sync_channel::<Vec<ItemRecord>>(1);
        let (written_tx, written) = mpsc::unbounded_channel();
        let span = tracing::Span::current();
        let owned = collection.to_owned();
        tokio::task::spawn_blocking({
            let span = span.clone();
            move || {
                let _entered = span.enter();
                let mut busy = Duration::ZERO;
                while let Some(batch) = read.blocking_recv() {
                    let began = Instant::now();
                    let records = records(&owned, batch, calendar);
                    busy += began.elapsed();
                    if parsed_tx.send(records).is_err() {
                        // The writer failed: dropping `read` tells the reader.
                        break;
                    }
                }
                tracing::info!(parse_s = busy.as_secs_f64(), "first pull: items parsed");
            }
        });
        let (account, owned) = (account.to_owned(), collection.to_owned());
        let writer = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut busy = Duration::ZERO;
            for put in transactions(parsed.into_iter()) {
                let began = Instant::now();
                store
                    .apply_dav_items(&account, &owned, &put, &[])
                    .map_err(|e| e.to_string())?;
                busy += began.elapsed();
                // The receiver may be gone (the pull was abandoned): the items are written anyway.
                let _ = written_tx.send(put.len());
            }
            tracing::info!(write_s = busy.as_secs_f64(), "first pull: items written");
            Ok(())
        });
        let pipeline = Pipeline {
            writer,
            collection: collection.to_owned(),
        };
        (batches, written, pipeline)
    }

    /// Waits until everything sent is written; [`Batches`] must be dropped first, or this waits
    /// for ever. The error names the collection.
    pub async fn finish(self) -> Result<(), ServiceError> {
        let failed = |e: String| {
            ServiceError::Config(format!(
                "the local mirror, writing the first pull of {}: {e}",
                self.collection
            ))
        };
        match self.writer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed(e)),
            Err(e) => Err(failed(format!("the writer thread ended: {e}"))),
        }
    }
}

/// The writer's transactions: whole batches gathered while under [`TXN_ITEMS`] and
/// [`TXN_BYTES`], each sorted by href. Waits for the next batch rather than committing what
/// has queued, so the grouping does not depend on the speed of the stages.
fn transactions(mut parsed: impl Iterator<Item = Vec<ItemRecord>>) -> impl Iterator<Item = Vec<ItemRecord>> {
    std::iter::from_fn(move || {
        let mut put = parsed.next()?;
        let mut bytes: usize = put.iter().map(|item| item.body.len()).sum();
        while put.len() < TXN_ITEMS && bytes < TXN_BYTES {
            let Some(more) = parsed.next() else { break };
            bytes += more.iter().map(|item| item.body.len()).sum::<usize>();
            put.extend(more);
        }
        put.sort_unstable_by(|a, b| a.href.cmp(&b.href));
        Some(put)
    })
}

/// The mirror records of one batch, in its order.
fn records(collection: &str, batch: Vec<Fetched>, calendar: bool) -> Vec<ItemRecord> {
    batch
        .into_iter()
        .map(|f| record(collection, f, calendar))
        .collect()
}

/// The mirror record of one fetched item: its bytes as sent, and its fields or its error.
pub fn record(collection: &str, f: Fetched, calendar: bool) -> ItemRecord {
    let record = ItemRecord::parsed(collection, &f.href, f.etag, f.body.unwrap_or_default(), calendar);
    if let Some(error) = &record.error {
        tracing::warn!(href = %record.href, %error, "item kept with its error (invariant 4)");
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAL: &str = "/a/cal/";

    fn event(i: usize, pad: usize) -> Fetched {
        Fetched {
            href: format!("{CAL}{i:05}.ics"),
            etag: Some(format!("\"{i}\"")),
            body: Some(format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:u{i}\r\n\
                 DTSTAMP:20260101T000000Z\r\nDTSTART:20260101T100000Z\r\nSUMMARY:{}\r\n\
                 END:VEVENT\r\nEND:VCALENDAR\r\n",
                "x".repeat(pad)
            )),
        }
    }

    #[tokio::test]
    async fn batches_are_parsed_in_order_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (batches, mut written, pipeline) = Pipeline::start(store.clone(), "a", CAL, true);
        let mut first: Vec<Fetched> = (0..300).map(|i| event(i, 10)).collect();
        first[7].body = Some("not iCalendar".into());
        batches.send(first).await.unwrap();
        batches.send(vec![event(300, 10)]).await.unwrap();
        drop(batches);
        pipeline.finish().await.unwrap();
        let mut counts = Vec::new();
        while let Some(n) = written.recv().await {
            counts.push(n);
        }
        // One count per transaction: the two batches may have shared one.
        assert_eq!(counts.iter().sum::<usize>(), 301);
        let items = store.dav_items_of("a", CAL).unwrap();
        assert_eq!(items.len(), 301);
        assert_eq!(items[0].event.as_ref().unwrap().uid, "u0");
        assert!(items[7].error.is_some() && items[7].body == "not iCalendar");
        assert_eq!(items[300].etag.as_deref(), Some("\"300\""));
    }

    #[test]
    fn transactions_gather_whole_batches_under_the_budget_sorted_by_href() {
        let batch = |from: usize, n: usize, pad: usize| -> Vec<ItemRecord> {
            // Descending hrefs: the server's order is not the tree's.
            (from..from + n)
                .rev()
                .map(|i| record(CAL, event(i, pad), true))
                .collect()
        };
        let small: Vec<_> = (0..5).map(|b| batch(b * 300, 300, 10)).collect();
        let sizes: Vec<usize> = transactions(small.into_iter()).map(|t| t.len()).collect();
        // 300, 600, 900 are under TXN_ITEMS: a fourth batch joins, the fifth is alone.
        assert_eq!(sizes, vec![1200, 300]);
        let first = transactions((0..2).map(|b| batch(b * 300, 300, 10)))
            .next()
            .unwrap();
        assert!(first.windows(2).all(|w| w[0].href < w[1].href));
        // Large bodies: the byte budget closes the transaction first.
        let big = (0..4).map(|b| batch(b * 2, 2, TXN_BYTES / 4));
        let sizes: Vec<usize> = transactions(big).map(|t| t.len()).collect();
        assert_eq!(sizes, vec![4, 4]);
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_reader_and_names_the_collection() {
        let dir = tempfile::tempdir().unwrap();
        // A full map behaves like a full disk: a write fails midway.
        // Large enough for a transaction or two (TXN_ITEMS of these items), not for all.
        let store = Store::open_sized(dir.path(), 16 << 20).unwrap();
        let (batches, _written, pipeline) = Pipeline::start(store.clone(), "a", CAL, true);
        let mut sent = 0;
        while sent < 1000 {
            let batch: Vec<Fetched> = (0..20).map(|i| event(sent * 20 + i, 2000)).collect();
            if batches.send(batch).await.is_err() {
                break;
            }
            sent += 1;
        }
        assert!(sent < 1000, "the reader must hear that the writer stopped");
        drop(batches);
        let e = pipeline.finish().await.unwrap_err();
        assert!(e.to_string().contains(CAL), "{e}");
        // Whole batches only: each transaction held whole batches.
        let stored = store.dav_etags("a", CAL).unwrap().len();
        assert!(stored > 0 && stored.is_multiple_of(20), "{stored} items stored");
    }
}
