//! TTL indexes: documents whose indexed date is older than `expireAfterSeconds` are deleted
//! by the reaper thread, through the normal write path (so the oplog records each delete).
//! As mongod: single-field indexes only; a document expires by the earliest date it holds
//! in the field (an array of dates); documents without a date there never expire.

use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::planner;
use crate::store::{Collection, IndexMeta, Store, StoreResult, StoreSession};
use bson::{doc, Bson, Document};
use std::sync::Arc;

/// Most documents one pass deletes from one index, so a pass never runs unbounded.
const MAX_DELETES_PER_PASS: usize = 50_000;

fn expire_after(idx: &IndexMeta) -> Option<i64> {
    if idx.fields.len() != 1 {
        return None;
    }
    match idx.spec.get("expireAfterSeconds")? {
        Bson::Int32(n) => Some(*n as i64),
        Bson::Int64(n) => Some(*n),
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}

/// One pass over every TTL index; returns how many documents were deleted.
pub fn run_pass(ss: &mut StoreSession, store: &Arc<Store>) -> StoreResult<u64> {
    let mut deleted = 0;
    for db in store.catalog.databases() {
        for coll in store.catalog.list(&db) {
            for idx in coll.indexes.iter().filter(|i| !i.spec.get_bool("hidden").unwrap_or(false)) {
                if let Some(secs) = expire_after(idx) {
                    deleted += expire_index(ss, &coll, idx, secs)?;
                }
            }
        }
    }
    Ok(deleted)
}

fn expire_index(
    ss: &mut StoreSession,
    coll: &Arc<Collection>,
    idx: &IndexMeta,
    secs: i64,
) -> StoreResult<u64> {
    let cutoff =
        bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis().saturating_sub(secs * 1000));
    let Some((field, _)) = idx.fields.first() else { return Ok(0) };
    let filter: Document = doc! { field.clone(): { "$lt": cutoff } };
    let Ok(matcher) = Matcher::parse(&filter) else { return Ok(0) };
    let Ok(access) = planner::plan(coll, &filter, None, Some(&Bson::String(idx.name.clone()))) else {
        return Ok(0);
    };
    // Collect first, then delete: the scan keeps its own snapshot-free position.
    let mut exec = Exec::new(
        coll.clone(),
        access,
        ExecOptions {
            filter: Some(matcher),
            sort: None,
            projection: None,
            skip: 0,
            limit: None,
            allow_disk_use: false,
        },
    );
    let mut rids = Vec::new();
    while let Some((rid, _)) = exec.next_match(ss).map_err(crate::store::StoreError::Mongo)? {
        rids.push(rid);
        if rids.len() >= MAX_DELETES_PER_PASS {
            break;
        }
    }
    let Ok(recheck) = Matcher::parse(&filter) else { return Ok(0) };
    let mut n = 0;
    for rid in rids {
        let gone = ss.write_collection(&coll.db, &coll.name, false, false, |t, c| {
            let Some(d) = t.get(c, rid)? else { return Ok(false) };
            if !recheck.matches(&d) {
                return Ok(false);
            }
            t.delete(c, rid, &d)?;
            Ok(true)
        })?;
        if gone == Some(true) {
            n += 1;
        }
    }
    if n > 0 {
        log::debug!("TTL: deleted {n} documents from {} by index {}", coll.ns, idx.name);
    }
    Ok(n)
}
