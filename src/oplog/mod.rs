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
