//! Reads at a past cluster time. Every committed write carries its oplog entry's timestamp as
//! its WiredTiger commit timestamp (`Txn::next_ts`), so a read transaction given a read
//! timestamp sees the data exactly as of that cluster time. WiredTiger keeps the history for
//! `minSnapshotHistoryWindowInSeconds` behind the all-committed point: the journal flusher
//! moves the `oldest_timestamp` (reads below it fail with SnapshotTooOld) and the
//! `stable_timestamp` (which must stay at or above it; all our tables are logged, so
//! checkpoints and recovery ignore it and no acknowledged write depends on it).

use super::wt::Connection;
use super::{Store, StoreError, StoreResult};
use crate::error::{ErrorCode, MongoError};
use crate::oplog::{self, OplogClock};
use bson::Timestamp;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// mongod's default `minSnapshotHistoryWindowInSeconds`.
pub const DEFAULT_WINDOW_SECS: u64 = 300;

/// How long a read at a cluster time waits for the writes at or before it to finish.
const VISIBILITY_WAIT: Duration = Duration::from_secs(30);

/// The history WiredTiger keeps for reads at a past cluster time.
pub struct History {
    /// `minSnapshotHistoryWindowInSeconds` (setParameter).
    pub window_secs: AtomicU64,
    /// The oldest and stable timestamps last given to WiredTiger (0: none yet).
    oldest: AtomicU64,
    stable: AtomicU64,
    /// Orders the flusher's and setParameter's moves (both must stay monotonic).
    moving: Mutex<()>,
}

impl History {
    /// Starts from what recovery left in WiredTiger (the last checkpoint's timestamps).
    pub fn open(conn: &Connection) -> StoreResult<History> {
        Ok(History {
            window_secs: AtomicU64::new(DEFAULT_WINDOW_SECS),
            oldest: AtomicU64::new(conn.query_timestamp("get=oldest_timestamp")?),
            stable: AtomicU64::new(conn.query_timestamp("get=stable_timestamp")?),
            moving: Mutex::new(()),
        })
    }

    /// The oldest readable timestamp (0: everything is).
    pub fn oldest(&self) -> u64 {
        self.oldest.load(Ordering::Acquire)
    }

    /// Moves the stable timestamp to the all-committed point and the oldest timestamp to the
    /// window behind it. Cheap when nothing changed (no WiredTiger call).
    pub fn advance(&self, conn: &Connection, clock: &OplogClock) -> StoreResult<()> {
        let _moving = self.moving.lock();
        let (old_oldest, old_stable) = (self.oldest(), self.stable.load(Ordering::Acquire));
        // Every timestamp still in flight is above `visible`, so later commits stay after it.
        let stable = (clock.visible().max(0) as u64).max(old_stable);
        if stable == 0 {
            return Ok(());
        }
        let window = self.window_secs.load(Ordering::Relaxed);
        // `window` seconds before the stable timestamp, same increment (as mongod counts it).
        let behind = (((stable >> 32).saturating_sub(window) << 32) | (stable & 0xffff_ffff)).min(stable);
        let oldest = behind.max(old_oldest);
        if (oldest, stable) == (old_oldest, old_stable) {
            return Ok(());
        }
        conn.set_timestamp(&format!("oldest_timestamp={oldest:x},stable_timestamp={stable:x}"))?;
        self.stable.store(stable, Ordering::Release);
        self.oldest.store(oldest, Ordering::Release);
        Ok(())
    }

    /// Fails with SnapshotTooOld when history at `ts` is gone.
    pub fn check(&self, ts: u64) -> StoreResult<()> {
        if ts < self.oldest() {
            return Err(too_old(ts));
        }
        Ok(())
    }
}

/// mongod's error for a read below the oldest timestamp.
pub fn too_old(ts: u64) -> StoreError {
    let t = oplog::unpack(ts as i64);
    StoreError::Mongo(MongoError::new(
        ErrorCode::SnapshotTooOld,
        format!(
            "Read timestamp Timestamp({}, {}) is older than the oldest available timestamp.",
            t.time, t.increment
        ),
    ))
}

thread_local! {
    /// The read timestamp of the statement running on this thread (`ReadAt`).
    static READ_AT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// While alive, `StoreSession::read` on this thread reads as of this timestamp (a snapshot
/// read's `atClusterTime`). Cursors keep it for their getMores.
pub struct ReadAt {
    prev: Option<u64>,
}

impl ReadAt {
    pub fn enter(ts: Option<u64>) -> ReadAt {
        ReadAt { prev: READ_AT.with(|r| r.replace(ts)) }
    }
}

impl Drop for ReadAt {
    fn drop(&mut self) {
        READ_AT.with(|r| r.set(self.prev));
    }
}

/// The read timestamp in effect on this thread.
pub fn read_at() -> Option<u64> {
    READ_AT.with(Cell::get)
}

fn show(t: Timestamp) -> String {
    format!("{{ ts: Timestamp({}, {}) }}", t.time, t.increment)
}

impl Store {
    /// The timestamp a `readConcern: {level: "snapshot"}` read uses: `at` (its
    /// `atClusterTime`: not after the current cluster time, not before the kept history, and
    /// waited for until every write at or before it has committed), else the all-committed
    /// point, as mongod picks it. `None` before anything was ever written.
    pub fn snapshot_timestamp(&self, at: Option<Timestamp>) -> StoreResult<Option<u64>> {
        let Some(at) = at else {
            let visible = self.clock.visible();
            return Ok((visible > 0).then_some(visible as u64));
        };
        let current = self.clock.last();
        let ts = oplog::pack(at) as u64;
        if ts > oplog::pack(current) as u64 {
            return Err(StoreError::Mongo(MongoError::new(
                ErrorCode::InvalidOptions,
                format!(
                    "readConcern atClusterTime value must not be greater than the current clusterTime. \
                     Requested clusterTime: {}; current clusterTime: {}",
                    show(at),
                    show(current)
                ),
            )));
        }
        if ts == 0 {
            return Err(too_old(ts));
        }
        self.history.check(ts)?;
        self.wait_visible(ts)?;
        Ok(Some(ts))
    }

    /// Waits until every write with a timestamp at or before `ts` has committed or rolled
    /// back (timestamps are handed out before commit, so commits finish out of order).
    fn wait_visible(&self, ts: u64) -> StoreResult<()> {
        let deadline = Instant::now() + VISIBILITY_WAIT;
        loop {
            let seen = self.group_commit.commit_count();
            if self.clock.visible() as u64 >= ts {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Mongo(MongoError::new(
                    ErrorCode::ExceededTimeLimit,
                    "timed out waiting for writes before the read timestamp to commit",
                )));
            }
            // A rollback does not count as a commit: look again after a short while.
            self.group_commit.wait_for_commit_after(seen, Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn reads_never_pass_a_timestamp_still_in_flight() {
        let store = Store::open(&Config::default()).unwrap();
        // A writer took a timestamp and has not committed; a later one has.
        let hole = store.clock.next();
        let later = store.clock.next();
        store.clock.release(&[oplog::pack(later)]);
        let all_committed = store.snapshot_timestamp(None).unwrap().unwrap();
        assert!(all_committed < oplog::pack(hole) as u64, "the default read time stops before the hole");

        let released = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, released) = (store.clone(), released.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                released.store(true, Ordering::SeqCst);
                store.clock.release(&[oplog::pack(hole)]);
                store.group_commit.committed();
            })
        };
        // Reading at the later time waits for the hole to close.
        let ts = store.snapshot_timestamp(Some(later)).unwrap();
        assert_eq!(ts, Some(oplog::pack(later) as u64));
        assert!(released.load(Ordering::SeqCst));
        writer.join().unwrap();

        let future = Timestamp { time: later.time + 10, increment: 0 };
        assert!(store.snapshot_timestamp(Some(future)).is_err());
        store.shutdown();
    }
}
