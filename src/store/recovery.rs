//! Startup recovery of the record and index tables. They are not journaled (WiredTiger ignores
//! commit timestamps on logged tables), so after a crash they come back as of the last
//! checkpoint's stable timestamp; the oplog (journaled, complete) then re-applies every entry
//! after it, each at its own timestamp, as mongod's replication recovery does. A clean
//! shutdown checkpoints at the newest timestamp, leaving nothing to replay.

use super::scan;
use super::wt::Key;
use super::{Collection, Store, StoreResult, StoreSession, OPLOG_TABLE};
use crate::oplog;
use bson::{Bson, Document};
use std::collections::HashMap;
use std::sync::Arc;

/// Entries read per batch.
const BATCH: usize = 1000;

/// Re-applies the oplog entries newer than what the checkpoint holds; returns how many.
pub(super) fn replay_oplog(store: &Arc<Store>) -> StoreResult<u64> {
    let recovered = store.conn.query_timestamp("get=recovery")?;
    let mut ss = store.session()?;
    let mut by_uuid: HashMap<bson::Uuid, Arc<Collection>> = HashMap::new();
    for db in store.catalog.databases() {
        for c in store.catalog.list(&db) {
            by_uuid.insert(c.uuid, c);
        }
    }
    let mut after = i64::try_from(recovered).unwrap_or(i64::MAX);
    let mut applied = 0u64;
    let mut rebuild: HashMap<bson::Uuid, Arc<Collection>> = HashMap::new();
    loop {
        let mut batch: Vec<(i64, Document)> = Vec::new();
        {
            let mut cur = ss.wt.open_cursor(OPLOG_TABLE, None)?;
            let mut more = match cur.search_near(Key::Int(after))? {
                None => false,
                Some(o) if o.is_gt() => true,
                Some(_) => cur.next()?,
            };
            while more && batch.len() < BATCH {
                let key = cur.key_int()?;
                if key > after {
                    batch.push((key, scan::parse_record(cur.value()?)?));
                }
                more = cur.next()?;
            }
        }
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        for (key, entry) in &batch {
            let Some(Bson::Binary(ui)) = entry.get("ui") else { continue };
            let Ok(bytes) = <[u8; 16]>::try_from(ui.bytes.as_slice()) else { continue };
            let uuid = bson::Uuid::from_bytes(bytes);
            let Some(coll) = by_uuid.get(&uuid) else { continue };
            if entry.get_str("op") == Ok("c") {
                // An index built after the checkpoint is rebuilt whole below.
                if entry.get_document("o").is_ok_and(|o| o.contains_key("createIndexes")) {
                    rebuild.insert(uuid, coll.clone());
                }
                continue;
            }
            match apply(&mut ss, coll, oplog::unpack(*key), entry) {
                Ok(()) => applied += 1,
                Err(e) => log::warn!("recovery: skipping oplog entry {key} on {}: {e}", coll.ns),
            }
        }
    }
    // A fresh session (the replay's cached cursors would keep the index tables busy) and a
    // checkpoint of what was re-applied (a dirty table cannot be dropped).
    drop(ss);
    let mut ss = store.session()?;
    if applied > 0 || !rebuild.is_empty() {
        ss.checkpoint()?;
    }
    for coll in rebuild.values() {
        for idx in coll.indexes.iter().filter(|i| !i.is_id()) {
            clear_index(&ss, idx)?;
            ss.build_index(coll, idx)?;
        }
    }
    if !rebuild.is_empty() {
        // The rebuilt entries carry no timestamp and are not journaled, and the next recovery
        // starts after this point: only a checkpoint keeps them.
        ss.checkpoint()?;
    }
    if applied > 0 {
        log::info!("recovery: re-applied {applied} oplog entries after timestamp {recovered:#x}");
    }
    Ok(applied)
}

/// Empties an index by recreating its table: its entries carry commit timestamps, and
/// WiredTiger refuses untimestamped changes to keys that had them.
fn clear_index(ss: &StoreSession, idx: &super::IndexMeta) -> StoreResult<()> {
    ss.wt.reset()?;
    ss.wt.drop_uri(&idx.uri(), "")?;
    ss.create_table(&idx.uri(), super::INDEX_TABLE_CONFIG)
}

fn id_of(d: Option<&Document>) -> Option<Bson> {
    d.and_then(|d| d.get("_id")).cloned()
}

/// Applies one insert, update or delete entry to the collection's current state.
fn apply(ss: &mut StoreSession, coll: &Collection, ts: bson::Timestamp, entry: &Document) -> StoreResult<()> {
    let o = entry.get_document("o").ok();
    ss.replay(ts, |t| match entry.get_str("op") {
        Ok("i") => {
            let Some(doc) = o else { return Ok(()) };
            let Some(id) = id_of(Some(doc)) else { return Ok(()) };
            match t.find_by_id(coll, &id)? {
                Some((rid, old)) => t.update(coll, rid, &old, doc, Document::new()),
                None => t.insert(coll, doc).map(|_| ()),
            }
        }
        Ok("u") => {
            let (Some(o), Some(id)) = (o, id_of(entry.get_document("o2").ok())) else { return Ok(()) };
            let Some((rid, old)) = t.find_by_id(coll, &id)? else { return Ok(()) };
            let new = match o.get_document("diff") {
                Ok(diff) if o.contains_key("$v") => oplog::apply_diff(&old, diff),
                _ => {
                    let mut doc = o.clone();
                    if !doc.contains_key("_id") {
                        doc.insert("_id", id);
                    }
                    Some(doc)
                }
            };
            match new {
                Some(new) => t.update(coll, rid, &old, &new, Document::new()),
                None => Ok(()),
            }
        }
        Ok("d") => {
            let Some(id) = id_of(o) else { return Ok(()) };
            match t.find_by_id(coll, &id)? {
                Some((rid, old)) => t.delete(coll, rid, &old),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    })
}
