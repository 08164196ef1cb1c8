//! The durable half of the retryable-write history (mongod keeps it in
//! `config.transactions`): one row per executed statement in `table:txn_history`, keyed by
//! `lsid (16 bytes) ++ stmtId (4 bytes, sign bit flipped, big-endian)`, valued by the BSON
//! `{txnNumber, result}`. A statement that changes one document writes its row inside that
//! document's WiredTiger transaction (`Slot::put`), so after a crash the row exists exactly
//! when the write does and a retry is never applied twice. At start-up the rows of each
//! session's highest txnNumber are loaded back into the session registry; the rows of expired
//! sessions are removed with them.

use crate::sessions::{SessionId, SessionRegistry};
use crate::store::wt::{Key, Session};
use crate::store::{scan, txn::encode, Store, StoreResult, StoreSession, Txn};
use bson::{doc, Document};
use std::collections::HashMap;
use std::sync::Arc;

pub const TABLE: &str = "table:txn_history";
const KEY_LEN: usize = 20;

fn key(lsid: SessionId, stmt: i32) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..16].copy_from_slice(&lsid.0);
    // Flipping the sign bit keeps negative statement ids ordered before positive ones.
    k[16..].copy_from_slice(&((stmt as u32) ^ 0x8000_0000).to_be_bytes());
    k
}

fn parse_key(k: &[u8]) -> Option<(SessionId, i32)> {
    let lsid: [u8; 16] = k.get(..16)?.try_into().ok()?;
    let stmt: [u8; 4] = k.get(16..KEY_LEN)?.try_into().ok()?;
    Some((SessionId(lsid), (u32::from_be_bytes(stmt) ^ 0x8000_0000) as i32))
}

/// One statement of a retryable write whose result may be stored with its write.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub lsid: SessionId,
    pub txn_number: i64,
    pub stmt: i32,
}

impl Slot {
    /// Stores `result` in the writing transaction `t`.
    pub fn put(&self, t: &Txn<'_>, result: &Document) -> StoreResult<()> {
        put(t.s, self.lsid, self.txn_number, self.stmt, result)
    }
}

/// Stores the same `result` for every slot (an insert batch) through one cursor.
pub fn put_all(t: &Txn<'_>, slots: &[Slot], result: &Document) -> StoreResult<()> {
    let Some(first) = slots.first() else { return Ok(()) };
    let mut cur = t.s.open_cursor(TABLE, None)?;
    let value = encode(&doc! { "txnNumber": first.txn_number, "result": result })?;
    for s in slots {
        cur.insert(Key::Bytes(&key(s.lsid, s.stmt)), &value)?;
    }
    Ok(())
}

pub fn put(s: &Session, lsid: SessionId, txn_number: i64, stmt: i32, result: &Document) -> StoreResult<()> {
    let mut cur = s.open_cursor(TABLE, None)?;
    let value = encode(&doc! { "txnNumber": txn_number, "result": result })?;
    cur.insert(Key::Bytes(&key(lsid, stmt)), &value)?;
    Ok(())
}

/// Creates the table if needed and loads every session's latest history into `sessions`;
/// returns how many statements were restored.
pub fn open(store: &Arc<Store>, sessions: &SessionRegistry) -> StoreResult<usize> {
    let ss = store.session()?;
    ss.wt.create(TABLE, "key_format=u,value_format=u")?;
    let mut latest: HashMap<SessionId, (i64, HashMap<i32, Document>)> = HashMap::new();
    {
        let mut cur = ss.wt.open_cursor(TABLE, None)?;
        while cur.next()? {
            let Some((lsid, stmt)) = parse_key(cur.key_bytes()?) else { continue };
            let row = scan::parse_record(cur.value()?)?;
            let (Ok(txn), Ok(result)) = (row.get_i64("txnNumber"), row.get_document("result")) else {
                continue;
            };
            let e = latest.entry(lsid).or_insert_with(|| (txn, HashMap::new()));
            if txn > e.0 {
                *e = (txn, HashMap::new());
            }
            if txn == e.0 {
                e.1.insert(stmt, result.clone());
            }
        }
    }
    let mut n = 0;
    for (lsid, (txn, statements)) in latest {
        n += statements.len();
        sessions.restore(lsid, txn, statements);
    }
    Ok(n)
}

/// Removes the history of these sessions (expired ones).
pub fn forget(ss: &mut StoreSession, ids: &[SessionId]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    ss.write(false, |t| {
        let mut cur = t.s.open_cursor(TABLE, None)?;
        for id in ids {
            let (lo, hi) = (key(*id, i32::MIN), key(*id, i32::MAX));
            cur.set_bounds(Some((Key::Bytes(&lo), true)), Some((Key::Bytes(&hi), true)))?;
            let mut doomed = Vec::new();
            while cur.next()? {
                doomed.push(cur.key_bytes()?.to_vec());
            }
            cur.clear_bounds()?;
            for k in &doomed {
                cur.remove(Key::Bytes(k))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_statement() {
        let id = SessionId::random();
        for s in [i32::MIN, -1, 0, 1, 7, i32::MAX] {
            assert_eq!(parse_key(&key(id, s)), Some((id, s)));
        }
        assert!(key(id, -1) < key(id, 0));
        assert!(key(id, 1) < key(id, 300));
        assert_eq!(parse_key(&[1, 2, 3]), None);
    }

    #[test]
    fn rows_survive_reopening_and_only_the_latest_txn_number_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            storage: crate::config::Storage::Path(dir.path().to_path_buf()),
            ..crate::Config::default()
        };
        let (a, b) = (SessionId::random(), SessionId::random());
        {
            let store = Store::open(&config).unwrap();
            let reg = SessionRegistry::default();
            assert_eq!(open(&store, &reg).unwrap(), 0);
            let mut ss = store.session().unwrap();
            ss.write(false, |t| {
                put(t.s, a, 1, 0, &doc! { "n": 1 })?;
                put(t.s, a, 2, 1, &doc! { "n": 2 })?;
                put(t.s, b, 5, 0, &doc! {})
            })
            .unwrap();
            forget(&mut ss, &[b]).unwrap();
            drop(ss);
            store.shutdown();
        }
        let store = Store::open(&config).unwrap();
        let reg = SessionRegistry::default();
        assert_eq!(open(&store, &reg).unwrap(), 1);
        let st = reg.state(a);
        let st = st.lock();
        assert_eq!(st.txn_number, Some(2));
        assert_eq!(st.statements.get(&1), Some(&doc! { "n": 2 }));
        assert!(!reg.contains(b));
        drop(st);
        store.shutdown();
    }
}
