//! The oplog: every write appends an entry in mongod's shape, in the same WiredTiger
//! transaction as the write itself. Change streams (issue 5) read this table.

pub mod stream;

use crate::store::wt::Session;
use crate::store::{StoreResult, OPLOG_TABLE};
use bson::{doc, Bson, Document, Timestamp};
use parking_lot::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out strictly increasing cluster timestamps (seconds, increment) and tracks which of
/// them belong to transactions that have not finished yet, so oplog readers never move past
/// a timestamp that may still commit (commits can finish out of timestamp order).
pub struct OplogClock {
    state: Mutex<ClockState>,
}

struct ClockState {
    last: u64,
    in_flight: std::collections::BTreeSet<u64>,
}

pub fn pack(ts: Timestamp) -> i64 {
    (((ts.time as u64) << 32) | ts.increment as u64) as i64
}

pub fn unpack(v: i64) -> Timestamp {
    let v = v as u64;
    Timestamp { time: (v >> 32) as u32, increment: v as u32 }
}

fn now_secs() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

impl OplogClock {
    pub fn new(last: Option<Timestamp>) -> Self {
        OplogClock {
            state: Mutex::new(ClockState {
                last: last.map(pack).unwrap_or(0) as u64,
                in_flight: std::collections::BTreeSet::new(),
            }),
        }
    }

    /// A new timestamp, in flight until `release`d by its transaction's end.
    pub fn next(&self) -> Timestamp {
        let mut st = self.state.lock();
        let secs = now_secs() as u64;
        let cur = st.last;
        let next = if secs > cur >> 32 { (secs << 32) | 1 } else { cur + 1 };
        st.last = next;
        st.in_flight.insert(next);
        unpack(next as i64)
    }

    /// The transaction holding these timestamps committed or rolled back.
    pub fn release(&self, ts: &[i64]) {
        if ts.is_empty() {
            return;
        }
        let mut st = self.state.lock();
        for t in ts {
            st.in_flight.remove(&(*t as u64));
        }
    }

    /// Every oplog entry at or below this timestamp is committed or will never exist.
    pub fn visible(&self) -> i64 {
        let st = self.state.lock();
        match st.in_flight.iter().next() {
            Some(first) => (*first - 1) as i64,
            None => st.last as i64,
        }
    }

    /// The newest timestamp handed out (or a current one if none was yet).
    pub fn last(&self) -> Timestamp {
        let v = self.state.lock().last;
        if v == 0 {
            Timestamp { time: now_secs(), increment: 0 }
        } else {
            unpack(v as i64)
        }
    }
}

/// The timestamp of the newest oplog entry on disk, so the clock never goes backwards.
pub fn last_timestamp(session: &Session) -> StoreResult<Option<Timestamp>> {
    let mut cur = session.open_cursor(OPLOG_TABLE, None)?;
    if cur.prev()? {
        Ok(Some(unpack(cur.key_int()?)))
    } else {
        Ok(None)
    }
}

/// Builds one oplog entry in mongod's field order.
pub fn entry(
    op: &str,
    ns: &str,
    ui: Option<bson::Uuid>,
    o: Document,
    o2: Option<Document>,
    ts: Timestamp,
) -> Document {
    let mut d = doc! { "op": op, "ns": ns };
    if let Some(ui) = ui {
        d.insert("ui", ui);
    }
    d.insert("o", o);
    if let Some(o2) = o2 {
        d.insert("o2", o2);
    }
    d.insert("ts", ts);
    d.insert("t", 1i64);
    d.insert("v", 2i64);
    d.insert("wall", bson::DateTime::now());
    d
}

/// A `$v: 2` update description from `old` to `new`, in mongod's diff shape: `u` updated,
/// `i` inserted, `d` deleted fields, `s<field>` a nested diff of a sub-document or array
/// (arrays: `a: true`, `u<index>` changed or appended elements, `l` the new length when the
/// array shrank).
pub fn update_diff(old: &Document, new: &Document) -> Document {
    doc! { "$v": 2, "diff": doc_diff(old, new) }
}

fn doc_diff(old: &Document, new: &Document) -> Document {
    let mut updated = Document::new();
    let mut inserted = Document::new();
    let mut deleted = Document::new();
    let mut nested = Document::new();
    for k in old.keys() {
        if !new.contains_key(k) {
            deleted.insert(k.clone(), false);
        }
    }
    for (k, v) in new {
        match (old.get(k), v) {
            (Some(ov), v) if ov == v => {}
            (Some(Bson::Document(od)), Bson::Document(nd)) => {
                nested.insert(format!("s{k}"), doc_diff(od, nd));
            }
            (Some(Bson::Array(oa)), Bson::Array(na)) => {
                nested.insert(format!("s{k}"), array_diff(oa, na));
            }
            (Some(_), v) => {
                updated.insert(k.clone(), v.clone());
            }
            (None, v) => {
                inserted.insert(k.clone(), v.clone());
            }
        }
    }
    let mut diff = Document::new();
    if !deleted.is_empty() {
        diff.insert("d", deleted);
    }
    if !updated.is_empty() {
        diff.insert("u", updated);
    }
    if !inserted.is_empty() {
        diff.insert("i", inserted);
    }
    diff.extend(nested);
    diff
}

fn array_diff(old: &[Bson], new: &[Bson]) -> Document {
    let mut d = doc! { "a": true };
    if new.len() < old.len() {
        d.insert("l", new.len() as i32);
    }
    for (i, v) in new.iter().enumerate() {
        match old.get(i) {
            Some(ov) if ov == v => {}
            Some(Bson::Document(od)) if matches!(v, Bson::Document(_)) => {
                if let Bson::Document(nd) = v {
                    d.insert(format!("s{i}"), doc_diff(od, nd));
                }
            }
            _ => {
                d.insert(format!("u{i}"), v.clone());
            }
        }
    }
    d
}

pub fn to_bytes(d: &Document) -> StoreResult<Vec<u8>> {
    crate::store::txn::encode(d)
}

pub fn id_doc(doc: &Document) -> Document {
    match doc.get("_id") {
        Some(id) => doc! { "_id": id.clone() },
        None => doc! { "_id": Bson::Null },
    }
}

/// Catalog-table key holding the newest pruned oplog timestamp.
const PRUNED_KEY: &[u8] = b"$oplogPrunedThrough";

/// The newest oplog timestamp pruned so far (0 if none).
pub fn pruned_through(session: &Session) -> StoreResult<i64> {
    let mut cur = session.open_cursor(crate::store::CATALOG_TABLE, None)?;
    if cur.search(crate::store::wt::Key::Bytes(PRUNED_KEY))? {
        let v = cur.value()?;
        Ok(v.get(..8).and_then(|b| b.try_into().ok()).map(i64::from_be_bytes).unwrap_or(0))
    } else {
        Ok(0)
    }
}

/// Entries removed per transaction while pruning.
const PRUNE_BATCH: usize = 1000;

/// Removes oplog entries older than `retention_secs`, oldest first, in small transactions so
/// writers are never held up. Returns how many were removed.
pub fn prune(session: &Session, retention_secs: u64) -> StoreResult<u64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let cutoff = now.saturating_sub(retention_secs).min(u32::MAX as u64) as u32;
    let limit = pack(Timestamp { time: cutoff, increment: 0 });
    let mut removed = 0u64;
    loop {
        session.begin_transaction("")?;
        let mut n = 0;
        let r: StoreResult<()> = (|| {
            let mut cur = session.open_cursor(OPLOG_TABLE, None)?;
            let mut old = Vec::new();
            while n < PRUNE_BATCH && cur.next()? {
                let k = cur.key_int()?;
                if k >= limit {
                    break;
                }
                old.push(k);
                n += 1;
            }
            let newest = old.last().copied();
            for k in old {
                cur.remove(crate::store::wt::Key::Int(k))?;
            }
            if let Some(k) = newest {
                // Remember how far history is gone, for change streams' ChangeStreamHistoryLost.
                let mut meta = session.open_cursor(crate::store::CATALOG_TABLE, None)?;
                meta.insert(crate::store::wt::Key::Bytes(PRUNED_KEY), &k.to_be_bytes())?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => session.commit_transaction("")?,
            Err(e) => {
                let _ = session.rollback_transaction("");
                return Err(e);
            }
        }
        removed += n as u64;
        if n < PRUNE_BATCH {
            return Ok(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::wt::Key;
    use crate::store::Store;

    #[test]
    fn prune_removes_only_entries_past_retention() {
        let store = Store::open(&Config::default()).unwrap();
        let ss = store.session().unwrap();
        let now = now_secs();
        let ages = [7200u32, 3700, 3500, 10, 0];
        {
            let mut cur = ss.wt.open_cursor(OPLOG_TABLE, None).unwrap();
            for (i, age) in ages.iter().enumerate() {
                let ts = Timestamp { time: now - age, increment: i as u32 + 1 };
                cur.insert(Key::Int(pack(ts)), &to_bytes(&doc! {"ts": ts}).unwrap()).unwrap();
            }
        }
        assert_eq!(prune(&ss.wt, 3600).unwrap(), 2);
        let mut left = Vec::new();
        let mut cur = ss.wt.open_cursor(OPLOG_TABLE, None).unwrap();
        while cur.next().unwrap() {
            left.push(now - unpack(cur.key_int().unwrap()).time);
        }
        assert_eq!(left, vec![3500, 10, 0]);
    }

    #[test]
    fn clock_is_strictly_increasing() {
        let c = OplogClock::new(Some(Timestamp { time: now_secs() + 5, increment: 9 }));
        let a = c.next();
        let b = c.next();
        assert!(pack(b) > pack(a));
        assert_eq!(a.increment, 10);
    }
}
