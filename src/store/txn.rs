//! The write path: one document change = record + every index entry + one oplog entry, all in
//! the caller's WiredTiger transaction (see `StoreSession::write`).

use super::catalog::{Catalog, Collection};
use super::index::{self, key_difference};
use super::keystring;
use super::wt::{Key, Session};
use super::{scan, Store, StoreError, StoreResult, OPLOG_TABLE, PREIMAGES_TABLE};
use crate::oplog;
use bson::{Bson, Document, Timestamp};

pub struct Txn<'a> {
    pub s: &'a Session,
    pub store: &'a Store,
    /// Timestamp of the last oplog entry this transaction wrote.
    pub last_ts: Option<Timestamp>,
    /// Change in stored bytes and documents made by this transaction (capped bookkeeping).
    pub size_delta: i64,
    pub count_delta: i64,
    /// Oplog timestamps this transaction took; released when it ends (see `OplogClock`).
    pub in_flight: Vec<i64>,
    /// Fields every oplog entry of a multi-document transaction carries (lsid, txnNumber).
    pub tag: Option<&'a Document>,
    /// Inside a multi-document transaction: the oplog keys it wrote, re-stamped at commit.
    pub logged: Option<&'a mut Vec<i64>>,
    /// Each change takes its oplog timestamp as its WiredTiger commit timestamp (off inside a
    /// multi-document transaction, which gets one at commit).
    pub timestamped: bool,
    /// Recovery: every change takes this timestamp and its oplog entry already exists.
    pub replay: Option<Timestamp>,
}

pub fn encode(doc: &Document) -> StoreResult<Vec<u8>> {
    let mut v = Vec::new();
    doc.to_writer(&mut v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(v)
}

impl<'a> Txn<'a> {
    pub fn new(s: &'a Session, store: &'a Store) -> Self {
        Txn {
            s,
            store,
            last_ts: None,
            size_delta: 0,
            count_delta: 0,
            in_flight: Vec::new(),
            tag: None,
            logged: None,
            timestamped: false,
            replay: None,
        }
    }

    /// A fresh cluster timestamp for the next change. It becomes the commit timestamp of what
    /// the transaction writes from now on, so a read at that cluster time sees the change.
    fn next_ts(&mut self) -> StoreResult<Timestamp> {
        if let Some(ts) = self.replay {
            self.s.set_commit_timestamp(oplog::pack(ts) as u64)?;
            return Ok(ts);
        }
        let ts = self.store.clock.next();
        let packed = oplog::pack(ts);
        self.in_flight.push(packed);
        if self.timestamped {
            self.s.set_commit_timestamp(packed as u64)?;
        }
        Ok(ts)
    }

    /// Appends an oplog entry built by `make` from a fresh timestamp.
    pub fn log(&mut self, make: impl FnOnce(Timestamp) -> Document) -> StoreResult<()> {
        let ts = self.next_ts()?;
        self.log_at(ts, make)
    }

    /// Appends an oplog entry at `ts` (taken by `next_ts` before the change was made).
    fn log_at(&mut self, ts: Timestamp, make: impl FnOnce(Timestamp) -> Document) -> StoreResult<()> {
        if self.replay.is_some() {
            self.last_ts = Some(ts);
            return Ok(());
        }
        let mut entry = make(ts);
        if let Some(tag) = self.tag {
            for (k, v) in tag {
                entry.insert(k.clone(), v.clone());
            }
        }
        let mut cur = self.s.open_cursor(OPLOG_TABLE, None)?;
        cur.insert(Key::Int(oplog::pack(ts)), &oplog::to_bytes(&entry)?)?;
        self.last_ts = Some(ts);
        if let Some(keys) = self.logged.as_mut() {
            keys.push(oplog::pack(ts));
        }
        Ok(())
    }

    /// Inserts a document (which already has its `_id`); returns its RecordId.
    pub fn insert(&mut self, coll: &Collection, doc: &Document) -> StoreResult<i64> {
        let ts = self.next_ts()?;
        let bytes = encode(doc)?;
        let rid = coll.alloc_rid();
        let mut newly_multikey = false;
        for idx in &coll.indexes {
            let was = (idx.is_multikey(), idx.multikey_version.load(std::sync::atomic::Ordering::Relaxed));
            let keys = index::keys_for(idx, doc)?;
            newly_multikey |=
                was != (idx.is_multikey(), idx.multikey_version.load(std::sync::atomic::Ordering::Relaxed));
            index::insert_keys(self.s, &coll.ns, idx, &keys, rid)?;
        }
        if newly_multikey {
            Catalog::persist(self.s, coll)?;
        }
        {
            let mut cur = self.s.open_cursor(&coll.uri(), None)?;
            cur.insert(Key::Int(rid), &bytes)?;
        }
        self.size_delta += bytes.len() as i64;
        self.count_delta += 1;
        let ns = coll.ns.clone();
        let uuid = coll.uuid;
        self.log_at(ts, |ts| oplog::entry("i", &ns, Some(uuid), doc.clone(), Some(oplog::id_doc(doc)), ts))?;
        Ok(rid)
    }

    /// Replaces the document at `rid`; `oplog_o` is the entry's `o` (a `$v: 2` diff or the
    /// replacement document).
    pub fn update(
        &mut self,
        coll: &Collection,
        rid: i64,
        old: &Document,
        new: &Document,
        oplog_o: Document,
    ) -> StoreResult<()> {
        let ts = self.next_ts()?;
        let bytes = encode(new)?;
        let mut newly_multikey = false;
        for idx in &coll.indexes {
            let was = (idx.is_multikey(), idx.multikey_version.load(std::sync::atomic::Ordering::Relaxed));
            let old_keys = index::keys_for(idx, old)?;
            let new_keys = index::keys_for(idx, new)?;
            newly_multikey |=
                was != (idx.is_multikey(), idx.multikey_version.load(std::sync::atomic::Ordering::Relaxed));
            index::remove_keys(self.s, idx, &key_difference(&old_keys, &new_keys), rid)?;
            index::insert_keys(self.s, &coll.ns, idx, &key_difference(&new_keys, &old_keys), rid)?;
            index::rewrite_values(self.s, idx, &old_keys, &new_keys, rid)?;
        }
        if newly_multikey {
            Catalog::persist(self.s, coll)?;
        }
        {
            let mut cur = self.s.open_cursor(&coll.uri(), None)?;
            cur.update(Key::Int(rid), &bytes)?;
        }
        if coll.is_capped() {
            self.size_delta += bytes.len() as i64 - encode(old)?.len() as i64;
        }
        let ns = coll.ns.clone();
        let uuid = coll.uuid;
        self.log_at(ts, |ts| oplog::entry("u", &ns, Some(uuid), oplog_o, Some(oplog::id_doc(old)), ts))?;
        self.keep_pre_image(coll, old)
    }

    /// Stores `old` under the timestamp of the oplog entry just written, when the collection
    /// has `changeStreamPreAndPostImages` (same transaction, so image and entry go together).
    fn keep_pre_image(&mut self, coll: &Collection, old: &Document) -> StoreResult<()> {
        if !coll.records_pre_images() || self.replay.is_some() {
            return Ok(());
        }
        let Some(ts) = self.last_ts else { return Ok(()) };
        let mut cur = self.s.open_cursor(PREIMAGES_TABLE, None)?;
        cur.insert(Key::Int(oplog::pack(ts)), &encode(old)?)?;
        Ok(())
    }

    pub fn delete(&mut self, coll: &Collection, rid: i64, old: &Document) -> StoreResult<()> {
        let ts = self.next_ts()?;
        self.remove_record(coll, rid, old)?;
        let ns = coll.ns.clone();
        let uuid = coll.uuid;
        self.log_at(ts, |ts| oplog::entry("d", &ns, Some(uuid), oplog::id_doc(old), None, ts))?;
        self.keep_pre_image(coll, old)
    }

    /// Removes a record and its index entries (no oplog entry).
    fn remove_record(&mut self, coll: &Collection, rid: i64, old: &Document) -> StoreResult<()> {
        for idx in &coll.indexes {
            let keys = index::keys_for(idx, old)?;
            index::remove_keys(self.s, idx, &keys, rid)?;
        }
        {
            let mut cur = self.s.open_cursor(&coll.uri(), None)?;
            cur.remove(Key::Int(rid))?;
        }
        if coll.is_capped() {
            self.size_delta -= encode(old)?.len() as i64;
        }
        self.count_delta -= 1;
        Ok(())
    }

    /// Evicts the oldest documents of a capped collection until it fits `size` bytes and
    /// `max` documents again (always keeping the newest). As in mongod these deletions are
    /// not oplog entries.
    pub fn evict_capped(
        &mut self,
        coll: &Collection,
        base_bytes: i64,
        base_count: i64,
        size: i64,
        max: Option<i64>,
    ) -> StoreResult<()> {
        loop {
            let bytes = base_bytes + self.size_delta;
            let count = base_count + self.count_delta;
            let over = bytes > size || max.is_some_and(|m| count > m);
            if !over || count <= 1 {
                return Ok(());
            }
            let mut oldest: Option<(i64, Document)> = None;
            scan::scan_records(self.s, coll, None, true, |rid, raw| {
                oldest = Some((rid, scan::parse_record(raw)?));
                Ok(false)
            })?;
            let Some((rid, doc)) = oldest else { return Ok(()) };
            self.remove_record(coll, rid, &doc)?;
        }
    }

    pub fn get(&self, coll: &Collection, rid: i64) -> StoreResult<Option<Document>> {
        scan::fetch(self.s, coll, rid)
    }

    /// Looks a document up through the `_id` index.
    pub fn find_by_id(&self, coll: &Collection, id: &Bson) -> StoreResult<Option<(i64, Document)>> {
        let Some(rid) = self.rid_by_id(coll, id)? else { return Ok(None) };
        Ok(self.get(coll, rid)?.map(|d| (rid, d)))
    }

    /// The RecordId of the document with this `_id`, through the `_id` index.
    pub fn rid_by_id(&self, coll: &Collection, id: &Bson) -> StoreResult<Option<i64>> {
        let Some(idx) = coll.id_index() else {
            return Ok(None);
        };
        // A collated `_id` index holds strings by their collation keys.
        let collated = idx.collation.as_ref().map(|c| c.index_value(id));
        let key = keystring::encode_key(&[(collated.as_ref().unwrap_or(id), false)]);
        let mut cur = self.s.open_cursor(&idx.uri(), None)?;
        if !cur.search(Key::Bytes(&key))? {
            return Ok(None);
        }
        match index::rid_from_bytes(cur.value()?) {
            Some(r) => Ok(Some(r)),
            None => Err(StoreError::Corrupt("bad _id index entry".into())),
        }
    }
}
