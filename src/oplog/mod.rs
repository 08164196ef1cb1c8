//! The oplog: every write appends an entry in mongod's shape, in the same WiredTiger
//! transaction as the write itself. Change streams (issue 5) read this table.

pub mod stream;

use crate::store::wt::Session;
use crate::store::{StoreResult, OPLOG_TABLE, PREIMAGES_TABLE};
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
            Some(Bson::Array(oa)) if matches!(v, Bson::Array(_)) => {
                if let Bson::Array(na) = v {
                    d.insert(format!("s{i}"), array_diff(oa, na));
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

/// The pre-image stored with the oplog entry at `ts`, if its collection kept one.
pub fn pre_image(session: &Session, ts: i64) -> StoreResult<Option<Document>> {
    let mut cur = session.open_cursor(PREIMAGES_TABLE, None)?;
    if !cur.search(crate::store::wt::Key::Int(ts))? {
        return Ok(None);
    }
    Ok(Some(crate::store::scan::parse_record(cur.value()?)?))
}

/// Applies a `$v: 2` diff (`update_diff`'s `diff`) to `doc`: the post-image of an update from
/// its pre-image. `None` when the diff does not fit the document.
pub fn apply_diff(doc: &Document, diff: &Document) -> Option<Document> {
    let mut out = doc.clone();
    for (k, v) in diff {
        match (k.as_str(), v) {
            ("d", Bson::Document(fields)) => {
                for f in fields.keys() {
                    out.remove(f);
                }
            }
            ("u" | "i", Bson::Document(fields)) => {
                for (f, fv) in fields {
                    out.insert(f.clone(), fv.clone());
                }
            }
            (k, Bson::Document(sub)) if k.starts_with('s') => {
                let field = &k[1..];
                let next = match out.get(field)? {
                    Bson::Document(d) => Bson::Document(apply_diff(d, sub)?),
                    Bson::Array(a) => Bson::Array(apply_array_diff(a, sub)?),
                    _ => return None,
                };
                out.insert(field.to_string(), next);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn apply_array_diff(arr: &[Bson], diff: &Document) -> Option<Vec<Bson>> {
    let mut out = arr.to_vec();
    if let Some(l) = diff.get("l") {
        let n = match l {
            Bson::Int32(n) => usize::try_from(*n).ok()?,
            Bson::Int64(n) => usize::try_from(*n).ok()?,
            _ => return None,
        };
        out.truncate(n);
    }
    for (k, v) in diff {
        if k == "a" || k == "l" {
            continue;
        }
        let i: usize = k.get(1..)?.parse().ok()?;
        // Appends are contiguous in our diffs; anything further is a malformed entry.
        if i > out.len() {
            return None;
        }
        let value = match (k.as_bytes().first()?, v) {
            (b'u', v) => v.clone(),
            (b's', Bson::Document(sub)) => match out.get(i)? {
                Bson::Document(d) => Bson::Document(apply_diff(d, sub)?),
                Bson::Array(a) => Bson::Array(apply_array_diff(a, sub)?),
                _ => return None,
            },
            _ => return None,
        };
        match out.get_mut(i) {
            Some(slot) => *slot = value,
            None => out.push(value),
        }
    }
    Some(out)
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
    prune_bounded(session, retention_secs, 0)
}

/// The key of the `max_entries`-th newest oplog entry: everything older is beyond the count
/// limit. `None` when there is no limit (0) or the oplog holds no more than that.
fn count_cutoff(session: &Session, max_entries: u64) -> StoreResult<Option<i64>> {
    if max_entries == 0 {
        return Ok(None);
    }
    let mut cur = session.open_cursor(OPLOG_TABLE, None)?;
    let mut n = 0u64;
    // Walks back over keys only; bounded by the limit, not by the oplog's size.
    while cur.prev()? {
        n += 1;
        if n == max_entries {
            return Ok(Some(cur.key_int()?));
        }
    }
    Ok(None)
}

/// `prune`, also removing the oldest entries beyond the newest `max_entries` (0: no count
/// limit), with their pre-images.
pub fn prune_bounded(session: &Session, retention_secs: u64, max_entries: u64) -> StoreResult<u64> {
    match prune_cutoff(session, retention_secs, max_entries)? {
        Some(limit) => prune_before(session, limit),
        None => Ok(0),
    }
}

/// The key below which entries are past the retention limits, when the oldest entry is.
pub fn prune_cutoff(session: &Session, retention_secs: u64, max_entries: u64) -> StoreResult<Option<i64>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let cutoff = now.saturating_sub(retention_secs).min(u32::MAX as u64) as u32;
    let mut limit = pack(Timestamp { time: cutoff, increment: 0 });
    if let Some(k) = count_cutoff(session, max_entries)? {
        limit = limit.max(k);
    }
    let mut cur = session.open_cursor(OPLOG_TABLE, None)?;
    Ok((cur.next()? && cur.key_int()? < limit).then_some(limit))
}

/// Removes the entries with keys below `limit` (and their pre-images), in small transactions.
pub fn prune_before(session: &Session, limit: i64) -> StoreResult<u64> {
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
            if let Some(newest) = newest {
                // Pre-images share their entry's key and go with it.
                let mut pre = session.open_cursor(PREIMAGES_TABLE, None)?;
                let mut gone = Vec::new();
                while pre.next()? {
                    let k = pre.key_int()?;
                    if k > newest {
                        break;
                    }
                    gone.push(k);
                }
                for k in gone {
                    pre.remove(crate::store::wt::Key::Int(k))?;
                }
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
            let mut pre = ss.wt.open_cursor(PREIMAGES_TABLE, None).unwrap();
            for (i, age) in ages.iter().enumerate() {
                let ts = Timestamp { time: now - age, increment: i as u32 + 1 };
                cur.insert(Key::Int(pack(ts)), &to_bytes(&doc! {"ts": ts}).unwrap()).unwrap();
                // Every other entry has a pre-image.
                if i % 2 == 1 || i == 0 {
                    pre.insert(Key::Int(pack(ts)), &to_bytes(&doc! {"_id": i as i32}).unwrap()).unwrap();
                }
            }
        }
        assert_eq!(prune(&ss.wt, 3600).unwrap(), 2);
        let keys = |table: &str| {
            let mut cur = ss.wt.open_cursor(table, None).unwrap();
            let mut left = Vec::new();
            while cur.next().unwrap() {
                left.push(now - unpack(cur.key_int().unwrap()).time);
            }
            left
        };
        assert_eq!(keys(OPLOG_TABLE), vec![3500, 10, 0]);
        // Images go with their entries.
        assert_eq!(keys(PREIMAGES_TABLE), vec![10]);
        drop(ss);
        // Stops the flusher before the temporary directory goes away.
        store.shutdown();
    }

    #[test]
    fn prune_keeps_at_most_max_entries() {
        let store = Store::open(&Config::default()).unwrap();
        let ss = store.session().unwrap();
        let now = now_secs();
        let keys: Vec<i64> = (1..=10u32).map(|i| pack(Timestamp { time: now, increment: i })).collect();
        {
            let mut cur = ss.wt.open_cursor(OPLOG_TABLE, None).unwrap();
            let mut pre = ss.wt.open_cursor(PREIMAGES_TABLE, None).unwrap();
            for k in &keys {
                cur.insert(Key::Int(*k), &to_bytes(&doc! {"k": *k}).unwrap()).unwrap();
                pre.insert(Key::Int(*k), &to_bytes(&doc! {"_id": *k}).unwrap()).unwrap();
            }
        }
        let left = |table: &str| {
            let mut cur = ss.wt.open_cursor(table, None).unwrap();
            let mut v = Vec::new();
            while cur.next().unwrap() {
                v.push(cur.key_int().unwrap());
            }
            v
        };
        // No count limit and young entries: nothing goes.
        assert_eq!(prune_bounded(&ss.wt, 3600, 0).unwrap(), 0);
        assert_eq!(prune_bounded(&ss.wt, 3600, 20).unwrap(), 0);
        assert_eq!(pruned_through(&ss.wt).unwrap(), 0);
        assert_eq!(prune_bounded(&ss.wt, 3600, 4).unwrap(), 6);
        assert_eq!(left(OPLOG_TABLE), keys[6..].to_vec());
        assert_eq!(left(PREIMAGES_TABLE), keys[6..].to_vec());
        assert_eq!(pruned_through(&ss.wt).unwrap(), keys[5]);
        // Already within the limit: a second pass removes nothing.
        assert_eq!(prune_bounded(&ss.wt, 3600, 4).unwrap(), 0);
        assert_eq!(prune_bounded(&ss.wt, 3600, 1).unwrap(), 3);
        assert_eq!(left(OPLOG_TABLE), vec![keys[9]]);
        assert_eq!(pruned_through(&ss.wt).unwrap(), keys[8]);
        drop(ss);
        store.shutdown();
    }

    #[test]
    fn applying_a_diff_gives_the_new_document() {
        let old =
            doc! { "_id": 1, "a": 1, "b": { "c": 1, "d": 2 }, "arr": [1, { "x": 1 }, [1, 2]], "gone": 1 };
        let new = doc! { "_id": 1, "a": 2, "b": { "c": 5 }, "arr": [1, { "x": 2 }, [3]], "n": [7] };
        let d = update_diff(&old, &new);
        let diff = d.get_document("diff").unwrap();
        assert_eq!(apply_diff(&old, diff), Some(new.clone()));
        let grown = doc! { "_id": 1, "a": 2, "b": { "c": 5 }, "arr": [1, { "x": 2 }, [3], 5], "n": [7] };
        let d = update_diff(&new, &grown);
        assert_eq!(apply_diff(&new, d.get_document("diff").unwrap()), Some(grown));
        assert_eq!(apply_diff(&doc! {}, &doc! { "sx": { "u": {} } }), None);
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
