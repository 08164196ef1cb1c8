//! The catalog: which collections and indexes exist, and which WiredTiger tables hold them.
//!
//! Persisted in `table:_catalog` (key = namespace, value = BSON); held in memory as immutable
//! `Arc<Collection>` snapshots. A DDL change builds a new snapshot and swaps it in, so a reader
//! holding an old `Arc` sees a consistent index list. State that must outlive a swap (the
//! RecordId counter, the per-collection DDL lock) lives in `CollShared`.

use super::wt::{Key, Session};
use super::{StoreError, StoreResult, CATALOG_TABLE};
use crate::query::matcher::Matcher;
use bson::{doc, Bson, Document};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Per-collection state shared by every catalog snapshot of the collection.
#[derive(Debug)]
pub struct CollShared {
    /// The next RecordId to hand out; RecordIds grow with insertion order.
    pub next_rid: AtomicI64,
    /// Writers hold it shared for the length of their transaction; DDL that changes the index
    /// list or drops the collection holds it exclusively.
    pub ddl: RwLock<()>,
    pub dropped: AtomicBool,
    /// Size and count of a capped collection; held for the whole of each write to it, so
    /// capped writes are serialised (as in mongod) and eviction sees exact totals.
    pub capped: Mutex<CappedState>,
}

#[derive(Debug, Default)]
pub struct CappedState {
    pub loaded: bool,
    pub bytes: i64,
    pub count: i64,
}

#[derive(Debug)]
pub struct IndexMeta {
    pub name: String,
    /// The key pattern as the user gave it, e.g. `{a: 1, b: -1}`.
    pub key: Document,
    /// (dotted path, descending) per key field.
    pub fields: Vec<(String, bool)>,
    pub unique: bool,
    pub sparse: bool,
    pub partial: Option<Arc<Matcher>>,
    /// WiredTiger table name without the `table:` prefix.
    pub ident: String,
    /// The full spec as listIndexes shows it (`v`, `key`, `name`, options).
    pub spec: Document,
    /// Some document produced more than one key (an array in an indexed field). Once set it
    /// stays set (persisted in the catalog): range bounds may then not be intersected.
    pub multikey: AtomicBool,
    /// For a wildcard index, the paths at which some document had an array (persisted too):
    /// only predicates on or under them lose the intersection of range bounds.
    pub multikey_paths: Mutex<BTreeSet<String>>,
    /// Bumped whenever the multikey state changes, so a writer knows to persist the catalog.
    pub multikey_version: AtomicU64,
    /// What kind of keys the index holds.
    pub kind: IndexKind,
    /// Strings are indexed by their sort key under this collation (none: binary).
    pub collation: Option<Arc<crate::query::collation::Collation>>,
    /// Every entry of a single-valued document carries the key fields' original BSON values
    /// (see `index::typed_values`), so a query may be answered from the index alone. Indexes
    /// built before entries carried them (catalog rows without `typedKeys`) never are.
    pub typed: bool,
}

#[derive(Debug, Clone)]
pub enum IndexKind {
    /// Ordered keys of the field values.
    Btree,
    /// The field at this position of `fields` holds the hash of the value (`"hashed"`).
    Hashed(usize),
    /// A `$**` index: keys are (path, value) for every leaf.
    Wildcard(super::wildcard::WildcardSpec),
    /// A 2d / 2dsphere index. It holds no entries: it validates the documents it covers and
    /// marks the field for `$near`/`$geoNear`, whose queries scan the collection.
    Geo,
}

impl IndexMeta {
    pub fn is_multikey(&self) -> bool {
        self.multikey.load(Ordering::Relaxed)
    }

    /// Records that documents had arrays at `paths` (wildcard indexes).
    pub fn note_multikey_paths(&self, paths: &[String]) {
        let mut known = self.multikey_paths.lock();
        let mut grew = false;
        for p in paths {
            grew |= known.insert(p.clone());
        }
        if grew || (!paths.is_empty() && !self.is_multikey()) {
            self.multikey.store(true, Ordering::Relaxed);
            self.multikey_version.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether `path` may hold several values in one document: for a wildcard index, when an
    /// array was seen at it or above it.
    pub fn path_is_multikey(&self, path: &str) -> bool {
        if !matches!(self.kind, IndexKind::Wildcard(_)) {
            return self.is_multikey();
        }
        let under = |p: &String| {
            path == p || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'.'))
        };
        self.multikey_paths.lock().iter().any(under)
    }

    pub fn uri(&self) -> String {
        format!("table:{}", self.ident)
    }

    pub fn is_id(&self) -> bool {
        self.name == "_id_"
    }

    pub fn from_spec(spec: Document, ident: String) -> StoreResult<IndexMeta> {
        let key = spec.get_document("key").map_err(|_| bad_catalog("index without key"))?.clone();
        let name = spec.get_str("name").map_err(|_| bad_catalog("index without name"))?.to_string();
        let fields = key.iter().map(|(k, v)| (k.clone(), direction_is_descending(v))).collect();
        let partial = match spec.get_document("partialFilterExpression") {
            Ok(f) => Some(Arc::new(Matcher::parse(f).map_err(StoreError::Mongo)?)),
            Err(_) => None,
        };
        let kind = if let Some(field) = super::wildcard::WildcardSpec::wildcard_field(&key) {
            let proj = spec.get_document("wildcardProjection").ok();
            IndexKind::Wildcard(super::wildcard::WildcardSpec::new(field, proj).map_err(|m| bad_catalog(&m))?)
        } else if key.values().any(|v| matches!(v, Bson::String(s) if s == "2d" || s == "2dsphere")) {
            IndexKind::Geo
        } else if let Some(pos) = key.values().position(|v| matches!(v, Bson::String(s) if s == "hashed")) {
            IndexKind::Hashed(pos)
        } else {
            IndexKind::Btree
        };
        let collation = match spec.get_document("collation") {
            Ok(c) => crate::query::collation::Collation::parse(c).map_err(StoreError::Mongo)?.map(Arc::new),
            Err(_) => None,
        };
        Ok(IndexMeta {
            kind,
            collation,
            unique: spec.get_bool("unique").unwrap_or(false) || name == "_id_",
            sparse: spec.get_bool("sparse").unwrap_or(false),
            name,
            key,
            fields,
            partial,
            ident,
            spec,
            multikey: AtomicBool::new(false),
            multikey_paths: Mutex::new(BTreeSet::new()),
            multikey_version: AtomicU64::new(0),
            typed: true,
        })
    }

    /// The same index table under a changed spec (collMod): keeps what the table's entries
    /// say (multikey paths, typed values).
    pub fn respec(&self, spec: Document) -> StoreResult<IndexMeta> {
        let mut meta = IndexMeta::from_spec(spec, self.ident.clone())?;
        meta.multikey.store(self.is_multikey(), Ordering::Relaxed);
        *meta.multikey_paths.lock() = self.multikey_paths.lock().clone();
        meta.typed = self.typed;
        Ok(meta)
    }

    /// Whether the index can answer queries from its entries alone: an ordinary (btree) index
    /// whose entries carry typed values and whose documents never held arrays in its fields.
    pub fn can_cover(&self) -> bool {
        self.typed && matches!(self.kind, IndexKind::Btree) && !self.is_multikey()
    }
}

/// A negative number means descending; anything else (1, "hashed", "text") ascending.
pub fn direction_is_descending(v: &Bson) -> bool {
    match v {
        Bson::Int32(n) => *n < 0,
        Bson::Int64(n) => *n < 0,
        Bson::Double(n) => *n < 0.0,
        Bson::Decimal128(d) => d.to_string().starts_with('-'),
        _ => false,
    }
}

#[derive(Debug)]
pub struct Collection {
    pub db: String,
    pub name: String,
    pub ns: String,
    pub uuid: bson::Uuid,
    /// Record table name without the `table:` prefix.
    pub ident: String,
    pub options: Document,
    pub indexes: Vec<Arc<IndexMeta>>,
    pub shared: Arc<CollShared>,
    /// The compiled `validator` option, if any.
    pub validator: Option<Arc<Matcher>>,
}

/// Compiles a collection's `validator` option (validated when it was set).
pub fn compile_validator(options: &Document) -> Option<Arc<Matcher>> {
    match options.get("validator") {
        Some(Bson::Document(v)) if !v.is_empty() => Matcher::parse(v).ok().map(Arc::new),
        _ => None,
    }
}

impl Collection {
    pub fn uri(&self) -> String {
        format!("table:{}", self.ident)
    }

    pub fn index(&self, name: &str) -> Option<&Arc<IndexMeta>> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// A time-series collection: no `_id` index, measurements checked on write.
    pub fn is_timeseries(&self) -> bool {
        self.options.contains_key("timeseries")
    }

    pub fn id_index(&self) -> Option<&Arc<IndexMeta>> {
        self.indexes.iter().find(|i| i.is_id())
    }

    /// Whether updates and deletes keep the document's pre-image for change streams.
    pub fn records_pre_images(&self) -> bool {
        matches!(
            self.options.get("changeStreamPreAndPostImages"),
            Some(Bson::Document(d)) if matches!(d.get("enabled"), Some(Bson::Boolean(true)))
        )
    }

    pub fn is_capped(&self) -> bool {
        matches!(self.options.get("capped"), Some(Bson::Boolean(true)))
    }

    /// (size in bytes, max documents) of a capped collection.
    pub fn capped_limits(&self) -> Option<(i64, Option<i64>)> {
        if !matches!(self.options.get("capped"), Some(Bson::Boolean(true))) {
            return None;
        }
        let num = |k: &str| match self.options.get(k) {
            Some(Bson::Int32(n)) => Some(*n as i64),
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Double(n)) => Some(*n as i64),
            _ => None,
        };
        let size = num("size").unwrap_or(4096).max(4096);
        Some((size, num("max").filter(|m| *m > 0)))
    }

    pub fn alloc_rid(&self) -> i64 {
        self.shared.next_rid.fetch_add(1, Ordering::SeqCst)
    }

    /// The catalog row for this collection.
    pub fn to_catalog_doc(&self) -> Document {
        let indexes: Vec<Bson> = self
            .indexes
            .iter()
            .map(|i| {
                Bson::Document(doc! {
                    "spec": i.spec.clone(),
                    "ident": i.ident.clone(),
                    "multikey": i.is_multikey(),
                    "multikeyPaths": i.multikey_paths.lock().iter().cloned().collect::<Vec<String>>(),
                    "typedKeys": i.typed,
                })
            })
            .collect();
        doc! {
            "ns": self.ns.clone(),
            "db": self.db.clone(),
            "name": self.name.clone(),
            "uuid": self.uuid,
            "ident": self.ident.clone(),
            "options": self.options.clone(),
            "indexes": indexes,
        }
    }

    /// A new snapshot with a different index list (same shared state).
    pub fn with_indexes(&self, indexes: Vec<Arc<IndexMeta>>) -> Collection {
        Collection {
            db: self.db.clone(),
            name: self.name.clone(),
            ns: self.ns.clone(),
            uuid: self.uuid,
            ident: self.ident.clone(),
            options: self.options.clone(),
            indexes,
            shared: self.shared.clone(),
            validator: self.validator.clone(),
        }
    }

    /// A new snapshot with different options (same tables, indexes and shared state).
    pub fn with_options(&self, options: Document) -> Collection {
        Collection {
            validator: compile_validator(&options),
            options,
            ..self.with_indexes(self.indexes.clone())
        }
    }

    fn from_catalog_doc(d: &Document, next_rid: i64) -> StoreResult<Collection> {
        let s =
            |k: &str| -> StoreResult<String> { d.get_str(k).map(str::to_string).map_err(|_| bad_catalog(k)) };
        let uuid = match d.get("uuid") {
            Some(Bson::Binary(b)) => {
                bson::Uuid::from_bytes(b.bytes.as_slice().try_into().map_err(|_| bad_catalog("uuid"))?)
            }
            _ => return Err(bad_catalog("uuid")),
        };
        let mut indexes = Vec::new();
        for i in d.get_array("indexes").map_err(|_| bad_catalog("indexes"))? {
            let i = i.as_document().ok_or_else(|| bad_catalog("index"))?;
            let spec = i.get_document("spec").map_err(|_| bad_catalog("index spec"))?.clone();
            let ident = i.get_str("ident").map_err(|_| bad_catalog("index ident"))?.to_string();
            let mut meta = IndexMeta::from_spec(spec, ident)?;
            meta.typed = i.get_bool("typedKeys").unwrap_or(false);
            meta.multikey.store(i.get_bool("multikey").unwrap_or(false), Ordering::Relaxed);
            if let Ok(paths) = i.get_array("multikeyPaths") {
                meta.multikey_paths
                    .lock()
                    .extend(paths.iter().filter_map(|p| p.as_str().map(str::to_string)));
            }
            indexes.push(Arc::new(meta));
        }
        Ok(Collection {
            db: s("db")?,
            name: s("name")?,
            ns: s("ns")?,
            uuid,
            ident: s("ident")?,
            validator: compile_validator(&d.get_document("options").cloned().unwrap_or_default()),
            options: d.get_document("options").cloned().unwrap_or_default(),
            indexes,
            shared: Arc::new(CollShared {
                next_rid: AtomicI64::new(next_rid),
                ddl: RwLock::new(()),
                dropped: AtomicBool::new(false),
                capped: Mutex::new(CappedState::default()),
            }),
        })
    }
}

fn bad_catalog(what: &str) -> StoreError {
    StoreError::Corrupt(format!("catalog entry: bad or missing {what}"))
}

thread_local! {
    /// The multi-document transaction whose statement this thread is running (0: none): its
    /// uncommitted collections are visible to it, and only to it.
    static VIEW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Sets this thread's transaction view for the life of the guard.
pub struct ViewGuard(u64);

impl Drop for ViewGuard {
    fn drop(&mut self) {
        VIEW.with(|v| v.set(self.0));
    }
}

/// Makes the collections created by transaction `owner` visible on this thread until the
/// guard drops.
pub fn enter_view(owner: u64) -> ViewGuard {
    ViewGuard(VIEW.with(|v| v.replace(owner)))
}

fn current_view() -> u64 {
    VIEW.with(|v| v.get())
}

/// The in-memory catalog.
pub struct Catalog {
    colls: RwLock<HashMap<String, Arc<Collection>>>,
    /// Collections created inside a multi-document transaction, by namespace, with the
    /// transaction's id: published on commit, discarded on abort.
    pending: RwLock<HashMap<String, (u64, Arc<Collection>)>>,
    next_ident: AtomicU64,
    /// Serialises DDL (create, drop, rename, index changes) across the process.
    pub ddl_mutex: Mutex<()>,
}

impl Catalog {
    pub fn load(session: &Session) -> StoreResult<Catalog> {
        let mut rows = Vec::new();
        {
            let mut cur = session.open_cursor(CATALOG_TABLE, None)?;
            while cur.next()? {
                // Keys starting with '$' are server metadata, not collections.
                if cur.key_bytes()?.first() == Some(&b'$') {
                    continue;
                }
                let v = cur.value()?;
                let d = super::scan::parse_record(v)?;
                rows.push(d);
            }
        }
        let mut colls = HashMap::new();
        let mut max_ident = 0u64;
        for d in rows {
            let ident = d.get_str("ident").map_err(|_| bad_catalog("ident"))?;
            // Resume RecordIds after the largest one on disk.
            let mut next_rid = 1;
            {
                let mut cur = session.open_cursor(&format!("table:{ident}"), None)?;
                if cur.prev()? {
                    next_rid = cur.key_int()? + 1;
                }
            }
            let c = Collection::from_catalog_doc(&d, next_rid)?;
            for id in std::iter::once(&c.ident).chain(c.indexes.iter().map(|i| &i.ident)) {
                if let Some(n) = id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()) {
                    max_ident = max_ident.max(n);
                }
            }
            colls.insert(c.ns.clone(), Arc::new(c));
        }
        Ok(Catalog {
            colls: RwLock::new(colls),
            pending: RwLock::new(HashMap::new()),
            next_ident: AtomicU64::new(max_ident + 1),
            ddl_mutex: Mutex::new(()),
        })
    }

    /// The collection as this thread sees it: committed ones, plus those its transaction
    /// created.
    pub fn get(&self, ns: &str) -> Option<Arc<Collection>> {
        if let Some(c) = self.colls.read().get(ns) {
            return Some(c.clone());
        }
        let view = current_view();
        if view == 0 {
            return None;
        }
        self.pending.read().get(ns).filter(|(o, _)| *o == view).map(|(_, c)| c.clone())
    }

    /// Whether `ns` exists outside any transaction.
    pub fn get_committed(&self, ns: &str) -> Option<Arc<Collection>> {
        self.colls.read().get(ns).cloned()
    }

    pub(crate) fn add_pending(&self, owner: u64, c: Arc<Collection>) {
        self.pending.write().insert(c.ns.clone(), (owner, c));
    }

    /// Makes the collections of a committed transaction visible to all.
    pub(crate) fn publish(&self, owner: u64) {
        let mut pending = self.pending.write();
        let mine: Vec<String> =
            pending.iter().filter(|(_, (o, _))| *o == owner).map(|(k, _)| k.clone()).collect();
        let mut colls = self.colls.write();
        for ns in mine {
            if let Some((_, c)) = pending.remove(&ns) {
                colls.insert(ns, c);
            }
        }
    }

    /// Forgets the collections of an aborted transaction; returns them (their tables are to
    /// be dropped).
    pub(crate) fn discard(&self, owner: u64) -> Vec<Arc<Collection>> {
        let mut pending = self.pending.write();
        let mine: Vec<String> =
            pending.iter().filter(|(_, (o, _))| *o == owner).map(|(k, _)| k.clone()).collect();
        mine.into_iter().filter_map(|ns| pending.remove(&ns).map(|(_, c)| c)).collect()
    }

    /// Collections of one database, sorted by name.
    pub fn list(&self, db: &str) -> Vec<Arc<Collection>> {
        let mut v: Vec<_> = self.colls.read().values().filter(|c| c.db == db).cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Names of databases that hold at least one collection.
    pub fn databases(&self) -> BTreeSet<String> {
        self.colls.read().values().map(|c| c.db.clone()).collect()
    }

    pub fn all_idents(&self) -> HashSet<String> {
        let mut s = HashSet::new();
        for c in self.colls.read().values() {
            s.insert(c.ident.clone());
            for i in &c.indexes {
                s.insert(i.ident.clone());
            }
        }
        s
    }

    pub fn new_ident(&self, kind: &str) -> String {
        format!("{kind}-{}", self.next_ident.fetch_add(1, Ordering::SeqCst))
    }

    /// Installs a new version of a collection (in the transaction's pending set when this
    /// thread's transaction created it).
    pub(crate) fn install(&self, c: Arc<Collection>) {
        let view = current_view();
        if view != 0 {
            let mut pending = self.pending.write();
            if let Some(entry) = pending.get_mut(&c.ns).filter(|(o, _)| *o == view) {
                entry.1 = c;
                return;
            }
        }
        self.colls.write().insert(c.ns.clone(), c);
    }

    pub(crate) fn remove(&self, ns: &str) -> Option<Arc<Collection>> {
        self.colls.write().remove(ns)
    }

    /// Writes (or rewrites) a collection's catalog row inside the caller's transaction.
    pub(crate) fn persist(session: &Session, c: &Collection) -> StoreResult<()> {
        let bytes = super::txn::encode(&c.to_catalog_doc())?;
        let mut cur = session.open_cursor(CATALOG_TABLE, None)?;
        cur.insert(Key::Bytes(c.ns.as_bytes()), &bytes)?;
        Ok(())
    }

    /// Whether the transaction's snapshot holds a catalog row for `ns`.
    pub(crate) fn exists_on_disk(session: &Session, ns: &str) -> StoreResult<bool> {
        let mut cur = session.open_cursor(CATALOG_TABLE, None)?;
        Ok(cur.search(Key::Bytes(ns.as_bytes()))?)
    }

    pub(crate) fn unpersist(session: &Session, ns: &str) -> StoreResult<()> {
        let mut cur = session.open_cursor(CATALOG_TABLE, None)?;
        if cur.search(Key::Bytes(ns.as_bytes()))? {
            cur.remove(Key::Bytes(ns.as_bytes()))?;
        }
        Ok(())
    }
}

pub fn new_shared() -> Arc<CollShared> {
    Arc::new(CollShared {
        next_rid: AtomicI64::new(1),
        ddl: RwLock::new(()),
        dropped: AtomicBool::new(false),
        capped: Mutex::new(CappedState::default()),
    })
}
