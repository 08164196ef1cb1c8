//! Catalog changes: create / drop / rename collections, build and drop indexes.
//!
//! WiredTiger's `create` and `drop` are not transactional, so the order is: create tables, then
//! commit the catalog row (a crash in between leaves orphan tables that `Store::open` drops);
//! for drops: commit the catalog change, then drop the tables (or queue them while a cursor
//! still holds them).

use super::catalog::{new_shared, Catalog, CollShared, Collection, IndexMeta};
use super::index;
use super::scan;
use super::{StoreError, StoreResult, StoreSession, INDEX_TABLE_CONFIG, RECORD_TABLE_CONFIG};
use crate::oplog;
use bson::{doc, Document};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Documents per transaction while building an index over existing data.
const BUILD_BATCH: usize = 1000;

/// The `_id` index of a collection with these options: it takes the default collation.
pub fn id_index_spec(options: &Document) -> Document {
    let mut spec = doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" };
    if let Ok(c) = options.get_document("collation") {
        spec.insert("collation", c.clone());
    }
    spec
}

impl StoreSession {
    /// Creates a collection; `NamespaceExists` if it is there already.
    pub fn create_collection(
        &mut self,
        db: &str,
        name: &str,
        options: Document,
    ) -> StoreResult<Arc<Collection>> {
        let store = self.store.clone();
        let _ddl = store.catalog.ddl_mutex.lock();
        let ns = format!("{db}.{name}");
        if store.catalog.get(&ns).is_some() {
            return Err(StoreError::NamespaceExists(ns));
        }
        let ident = store.catalog.new_ident("coll");
        self.create_table(&format!("table:{ident}"), RECORD_TABLE_CONFIG)?;
        // A time-series collection has no `_id` index, only mongod's automatic one on
        // {metaField, timeField} when it has a metaField.
        let timeseries = options.contains_key("timeseries");
        let first_index = if timeseries {
            crate::cmd::timeseries::auto_index(&options)
        } else {
            Some(id_index_spec(&options))
        };
        let mut indexes = Vec::new();
        if let Some(spec) = first_index {
            let index_ident = store.catalog.new_ident("index");
            self.create_table(&format!("table:{index_ident}"), INDEX_TABLE_CONFIG)?;
            indexes.push(Arc::new(IndexMeta::from_spec(spec, index_ident)?));
        }
        let coll = Arc::new(Collection {
            db: db.to_string(),
            name: name.to_string(),
            ns: ns.clone(),
            uuid: bson::Uuid::new(),
            ident,
            validator: super::catalog::compile_validator(&options),
            options: options.clone(),
            indexes,
            shared: new_shared(),
        });
        let cmd_ns = format!("{db}.$cmd");
        self.write(true, |t| {
            // A transaction may have created (and committed) it since the check above.
            if Catalog::exists_on_disk(t.s, &ns)? {
                return Err(StoreError::NamespaceExists(ns.clone()));
            }
            Catalog::persist(t.s, &coll)?;
            let mut o = doc! { "create": name };
            for (k, v) in &options {
                o.insert(k.clone(), v.clone());
            }
            if !timeseries {
                o.insert("idIndex", id_index_spec(&options));
            }
            t.log(|ts| oplog::entry("c", &cmd_ns, Some(coll.uuid), o.clone(), None, ts))
        })?;
        match self.multi_id() {
            // Created inside a transaction: visible to it alone until it commits.
            0 => store.catalog.install(coll.clone()),
            owner => store.catalog.add_pending(owner, coll.clone()),
        }
        Ok(coll)
    }

    /// The collection, created with default options if it does not exist.
    pub fn ensure_collection(&mut self, db: &str, name: &str) -> StoreResult<Arc<Collection>> {
        let ns = format!("{db}.{name}");
        if let Some(c) = self.store.catalog.get(&ns) {
            return Ok(c);
        }
        match self.create_collection(db, name, Document::new()) {
            Err(StoreError::NamespaceExists(_)) => {
                self.store.catalog.get(&ns).ok_or(StoreError::NamespaceNotFound(ns))
            }
            other => other,
        }
    }

    /// Runs a write against a collection while holding its DDL lock shared, so no index
    /// change or drop happens under it; creates the collection first if `create` is set.
    /// Returns None when the collection does not exist and `create` is false.
    pub fn write_collection<T>(
        &mut self,
        db: &str,
        name: &str,
        create: bool,
        durable: bool,
        mut f: impl FnMut(&mut super::Txn<'_>, &Collection) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let ns = format!("{db}.{name}");
        loop {
            let coll = match self.store.catalog.get(&ns) {
                Some(c) => c,
                None if create => self.ensure_collection(db, name)?,
                None => return Ok(None),
            };
            let shared = coll.shared.clone();
            let _guard = shared.ddl.read();
            let current = self.store.catalog.get(&ns);
            if shared.dropped.load(Ordering::SeqCst)
                || !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &coll))
            {
                continue;
            }
            if self.in_multi() && coll.is_capped() {
                return Err(StoreError::Mongo(crate::error::MongoError::new(
                    crate::error::ErrorCode::OperationNotSupportedInTransaction,
                    format!("Collection '{ns}' is a capped collection. Writes in transactions are not allowed on capped collections."),
                )));
            }
            let Some((size, max)) = coll.capped_limits() else {
                return self.write(durable, |t| f(t, &coll)).map(Some);
            };
            // Capped: serialise writers and evict the oldest documents in the same
            // transaction as the write that overflowed the collection.
            let mut state = coll.shared.capped.lock();
            if !state.loaded {
                let (n, bytes) = self.count_and_size(&coll)?;
                *state = super::catalog::CappedState { loaded: true, bytes: bytes as i64, count: n as i64 };
            }
            let (base_bytes, base_count) = (state.bytes, state.count);
            let (r, dbytes, dcount) = self.write(durable, |t| {
                let r = f(t, &coll)?;
                t.evict_capped(&coll, base_bytes, base_count, size, max)?;
                Ok((r, t.size_delta, t.count_delta))
            })?;
            state.bytes += dbytes;
            state.count += dcount;
            return Ok(Some(r));
        }
    }

    fn drop_tables(&mut self, uris: Vec<String>) {
        if self.in_multi() {
            // The open transaction may still hold cursors on them.
            for uri in uris {
                self.store.drop_later(uri);
            }
            return;
        }
        // Our own cached cursors would keep the tables busy.
        let _ = self.wt.reset();
        for uri in uris {
            match self.wt.drop_uri(&uri, "") {
                Ok(()) => {}
                Err(e) if e.is_busy() => self.store.drop_later(uri),
                Err(e) => log::warn!("dropping {uri}: {e}"),
            }
        }
    }

    /// Drops a collection; `NamespaceNotFound` if it does not exist.
    pub fn drop_collection(&mut self, db: &str, name: &str) -> StoreResult<()> {
        let store = self.store.clone();
        let _ddl = store.catalog.ddl_mutex.lock();
        let ns = format!("{db}.{name}");
        let coll = store.catalog.get(&ns).ok_or_else(|| StoreError::NamespaceNotFound(ns.clone()))?;
        let _excl = coll.shared.ddl.write();
        let cmd_ns = format!("{db}.$cmd");
        self.write(true, |t| {
            Catalog::unpersist(t.s, &ns)?;
            t.log(|ts| oplog::entry("c", &cmd_ns, Some(coll.uuid), doc! {"drop": name}, None, ts))
        })?;
        coll.shared.dropped.store(true, Ordering::SeqCst);
        store.catalog.remove(&ns);
        let mut uris = vec![coll.uri()];
        uris.extend(coll.indexes.iter().map(|i| i.uri()));
        self.drop_tables(uris);
        Ok(())
    }

    /// Renames `from` to `to` (both full namespaces), replacing `to` if `drop_target`.
    pub fn rename_collection(&mut self, from: &str, to: &str, drop_target: bool) -> StoreResult<()> {
        let store = self.store.clone();
        let (to_db, to_name) = to.split_once('.').ok_or_else(|| StoreError::NamespaceNotFound(to.into()))?;
        // The replaced collection's UUID goes into the rename's oplog entry, as mongod's.
        let mut dropped_uuid = None;
        if let Some(target) = store.catalog.get(to).filter(|_| drop_target) {
            self.drop_collection(to_db, to_name)?;
            dropped_uuid = Some(target.uuid);
        }
        let _ddl = store.catalog.ddl_mutex.lock();
        let coll = store.catalog.get(from).ok_or_else(|| StoreError::NamespaceNotFound(from.into()))?;
        if store.catalog.get(to).is_some() {
            return Err(StoreError::NamespaceExists(to.into()));
        }
        let _excl = coll.shared.ddl.write();
        let renamed = Arc::new(Collection {
            db: to_db.to_string(),
            name: to_name.to_string(),
            ns: to.to_string(),
            uuid: coll.uuid,
            ident: coll.ident.clone(),
            options: coll.options.clone(),
            validator: coll.validator.clone(),
            indexes: coll.indexes.clone(),
            shared: Arc::new(CollShared {
                next_rid: AtomicI64::new(coll.shared.next_rid.load(Ordering::SeqCst)),
                ddl: Default::default(),
                dropped: AtomicBool::new(false),
                capped: Default::default(),
            }),
        });
        let cmd_ns = format!("{}.$cmd", coll.db);
        self.write(true, |t| {
            Catalog::unpersist(t.s, from)?;
            Catalog::persist(t.s, &renamed)?;
            let mut o = doc! { "renameCollection": from, "to": to, "stayTemp": false };
            if let Some(uuid) = dropped_uuid {
                o.insert("dropTarget", uuid);
            }
            t.log(|ts| oplog::entry("c", &cmd_ns, Some(coll.uuid), o.clone(), None, ts))
        })?;
        coll.shared.dropped.store(true, Ordering::SeqCst);
        store.catalog.remove(from);
        store.catalog.install(renamed);
        Ok(())
    }

    /// Builds indexes from full specs (already validated, names unique) over existing data.
    pub fn create_indexes(&mut self, coll: &Arc<Collection>, specs: Vec<Document>) -> StoreResult<()> {
        let store = self.store.clone();
        let _ddl = store.catalog.ddl_mutex.lock();
        let coll =
            store.catalog.get(&coll.ns).ok_or_else(|| StoreError::NamespaceNotFound(coll.ns.clone()))?;
        let _excl = coll.shared.ddl.write();
        let mut built: Vec<Arc<IndexMeta>> = Vec::new();
        for spec in specs {
            let ident = store.catalog.new_ident("index");
            let meta = Arc::new(IndexMeta::from_spec(spec, ident)?);
            self.create_table(&meta.uri(), INDEX_TABLE_CONFIG)?;
            if let Err(e) = self.build_index(&coll, &meta) {
                let mut uris: Vec<String> = built.iter().map(|i| i.uri()).collect();
                uris.push(meta.uri());
                self.drop_tables(uris);
                return Err(e);
            }
            built.push(meta);
        }
        let mut indexes = coll.indexes.clone();
        indexes.extend(built.iter().cloned());
        let next = Arc::new(coll.with_indexes(indexes));
        let cmd_ns = format!("{}.$cmd", coll.db);
        self.write(true, |t| {
            Catalog::persist(t.s, &next)?;
            for i in &built {
                let mut o = doc! { "createIndexes": coll.name.clone() };
                for (k, v) in &i.spec {
                    o.insert(k.clone(), v.clone());
                }
                t.log(|ts| oplog::entry("c", &cmd_ns, Some(coll.uuid), o.clone(), None, ts))?;
            }
            Ok(())
        })?;
        store.catalog.install(next);
        Ok(())
    }

    /// Fills a new index from the collection's records, in batches of transactions; writers
    /// are held off by the caller's exclusive DDL lock.
    pub(super) fn build_index(&mut self, coll: &Collection, idx: &IndexMeta) -> StoreResult<()> {
        let mut after: Option<i64> = None;
        loop {
            let mut batch: Vec<(i64, Document)> = Vec::new();
            self.read(|t| {
                scan::scan_records(t.s, coll, after, true, |rid, bytes| {
                    batch.push((rid, scan::parse_record(bytes)?));
                    Ok(batch.len() < BUILD_BATCH)
                })
            })?;
            let Some((last, _)) = batch.last() else {
                return Ok(());
            };
            after = Some(*last);
            self.write(false, |t| {
                for (rid, doc) in &batch {
                    let keys = index::keys_for(idx, doc)?;
                    index::insert_keys(t.s, &coll.ns, idx, &keys, *rid)?;
                }
                Ok(())
            })?;
        }
    }

    /// Drops one index by name (the caller has resolved key patterns and `*`).
    pub fn drop_index(&mut self, coll: &Arc<Collection>, name: &str) -> StoreResult<()> {
        let store = self.store.clone();
        let _ddl = store.catalog.ddl_mutex.lock();
        let coll =
            store.catalog.get(&coll.ns).ok_or_else(|| StoreError::NamespaceNotFound(coll.ns.clone()))?;
        let _excl = coll.shared.ddl.write();
        let Some(idx) = coll.index(name).cloned() else {
            return Err(StoreError::IndexNotFound(name.to_string()));
        };
        let indexes: Vec<_> = coll.indexes.iter().filter(|i| i.name != name).cloned().collect();
        let next = Arc::new(coll.with_indexes(indexes));
        let cmd_ns = format!("{}.$cmd", coll.db);
        self.write(true, |t| {
            Catalog::persist(t.s, &next)?;
            let o = doc! { "dropIndexes": coll.name.clone(), "index": name, "o2": {"indexName": name} };
            t.log(|ts| oplog::entry("c", &cmd_ns, Some(coll.uuid), o.clone(), None, ts))
        })?;
        store.catalog.install(next);
        self.drop_tables(vec![idx.uri()]);
        Ok(())
    }

    /// collMod: replaces a collection's options and index list (same tables), logging
    /// `o` as the oplog entry.
    pub fn modify_collection(
        &mut self,
        ns: &str,
        o: Document,
        change: impl FnOnce(&Collection) -> StoreResult<Collection>,
    ) -> StoreResult<()> {
        let store = self.store.clone();
        let _ddl = store.catalog.ddl_mutex.lock();
        let coll = store.catalog.get(ns).ok_or_else(|| StoreError::NamespaceNotFound(ns.into()))?;
        let _excl = coll.shared.ddl.write();
        let next = Arc::new(change(&coll)?);
        let cmd_ns = format!("{}.$cmd", coll.db);
        self.write(true, |t| {
            Catalog::persist(t.s, &next)?;
            t.log(|ts| oplog::entry("c", &cmd_ns, Some(coll.uuid), o.clone(), None, ts))
        })?;
        store.catalog.install(next);
        Ok(())
    }

    /// Number of documents and their total BSON size (a full scan).
    pub fn count_and_size(&mut self, coll: &Collection) -> StoreResult<(u64, u64)> {
        self.read(|t| {
            let (mut n, mut size) = (0u64, 0u64);
            scan::scan_records(t.s, coll, None, true, |_, bytes| {
                n += 1;
                size += bytes.len() as u64;
                Ok(true)
            })?;
            Ok((n, size))
        })
    }
}
