//! The oplog: every write appends an entry in mongod's shape, in the same WiredTiger
//! transaction as the write itself. Change streams (issue 5) read this table.

use crate::store::wt::Session;
use crate::store::{StoreResult, OPLOG_TABLE};
use bson::{doc, Bson, Document, Timestamp};
use parking_lot::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out strictly increasing cluster timestamps (seconds, increment).
pub struct OplogClock {
    last: Mutex<u64>,
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
        OplogClock { last: Mutex::new(last.map(pack).unwrap_or(0) as u64) }
    }

    pub fn next(&self) -> Timestamp {
        let mut last = self.last.lock();
        let secs = now_secs() as u64;
        let cur = *last;
        let next = if secs > cur >> 32 { (secs << 32) | 1 } else { cur + 1 };
        *last = next;
        unpack(next as i64)
    }

    /// The newest timestamp handed out (or a current one if none was yet).
    pub fn last(&self) -> Timestamp {
        let v = *self.last.lock();
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

/// A `$v: 2` update description of the top-level changes from `old` to `new`.
pub fn update_diff(old: &Document, new: &Document) -> Document {
    let mut updated = Document::new();
    let mut inserted = Document::new();
    let mut deleted = Document::new();
    for (k, v) in new {
        match old.get(k) {
            Some(ov) if ov == v => {}
            Some(_) => {
                updated.insert(k.clone(), v.clone());
            }
            None => {
                inserted.insert(k.clone(), v.clone());
            }
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            deleted.insert(k.clone(), false);
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
    doc! { "$v": 2, "diff": diff }
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
            for k in old {
                cur.remove(crate::store::wt::Key::Int(k))?;
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
