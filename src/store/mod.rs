//! Storage: one WiredTiger connection per process, a catalog of collections and indexes, record
//! tables keyed by RecordId, index tables keyed by the order-preserving key encoding, and the
//! oplog table — all written together in one WiredTiger transaction per write.

pub mod catalog;
pub mod ddl;
pub mod error;
pub mod hashed;
pub mod history;
pub mod index;
pub mod keystring;
pub mod recovery;
pub mod scan;
pub mod txn;
pub mod wildcard;
pub mod wt;

use crate::config::{Config, Storage};
use crate::oplog::OplogClock;
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use catalog::{Catalog, Collection, IndexMeta};
pub use error::StoreError;
pub use txn::Txn;
use wt::{Connection, Session};

pub type StoreResult<T> = Result<T, StoreError>;

/// Table holding one row per collection: key = namespace, value = BSON metadata.
pub const CATALOG_TABLE: &str = "table:_catalog";
/// The oplog: key = timestamp as i64 (seconds << 32 | increment), value = BSON entry.
pub const OPLOG_TABLE: &str = "table:oplog";
/// Pre-images of updates and deletes in collections with `changeStreamPreAndPostImages`:
/// key = the timestamp of the oplog entry (as `OPLOG_TABLE`), value = the BSON document before
/// the change. Written in the write's transaction, pruned with the oplog.
pub const PREIMAGES_TABLE: &str = "table:preimages";

/// The namespace under which clients read the oplog.
pub const OPLOG_NS: &str = "local.oplog.rs";

/// Config of record tables (documents by RecordId) and index tables. They are not journaled:
/// WiredTiger ignores commit timestamps on logged tables, and reads at a past cluster time need
/// them. Their durability is the oplog's (journaled): recovery re-applies the entries after
/// the last checkpoint's stable timestamp (`recovery.rs`), as mongod does.
pub const RECORD_TABLE_CONFIG: &str = "key_format=q,value_format=u,block_compressor=zstd,log=(enabled=false)";
pub const INDEX_TABLE_CONFIG: &str = "key_format=u,value_format=u,block_compressor=zstd,log=(enabled=false)";

/// The process-wide store. Cheap to share (`Arc<Store>`); each client thread opens its own
/// `StoreSession`.
pub struct Store {
    conn: Arc<Connection>,
    pub path: PathBuf,
    pub catalog: Catalog,
    pub clock: OplogClock,
    /// The history kept for reads at a past cluster time (WiredTiger's oldest/stable).
    pub history: history::History,
    /// Identifiers of tables that could not be dropped yet (a cursor still had them open).
    pending_drops: Mutex<Vec<String>>,
    pub group_commit: GroupCommit,
    /// `local.oplog.rs`: the oplog table seen as a read-only capped collection.
    oplog_view: Arc<Collection>,
    background: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    /// `internalQueryMaxBlockingSortMemoryUsageBytes` (setParameter): what a blocking sort
    /// may hold in memory before it fails or, with allowDiskUse, spills to disk.
    pub sort_memory_limit: AtomicUsize,
    /// The other query parameters of `setParameter` (stage memory limits, allowDiskUse default).
    pub knobs: crate::query::knobs::QueryKnobs,
    // Declared last so the directory outlives the connection.
    _temp: Option<tempfile::TempDir>,
}

impl Store {
    /// Opens (creating if needed) the store described by `config`, runs WiredTiger recovery,
    /// loads the catalog and starts the journal flusher.
    pub fn open(config: &Config) -> StoreResult<Arc<Store>> {
        let (path, temp) = match &config.storage {
            Storage::Path(p) => {
                std::fs::create_dir_all(p).map_err(|e| StoreError::Io(e.to_string()))?;
                (p.clone(), None)
            }
            Storage::Ephemeral => {
                let t = tempfile::Builder::new()
                    .prefix("secantusdb-")
                    .tempdir()
                    .map_err(|e| StoreError::Io(e.to_string()))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // zstd level 3 (zstd's own default) instead of WiredTiger's 6: most of the ratio at a
        // fraction of the CPU that reconciliation spends compressing pages.
        let wt_config = format!(
            "create,cache_size={}M,session_max={},\
             log=(enabled=true,file_max=100MB,remove=true),\
             transaction_sync=(enabled=false),\
             checkpoint=(wait={}),\
             eviction=(threads_min=1,threads_max=2),\
             builtin_extension_config={{zstd={{compression_level=3}}}}",
            config.cache_size_mb.max(16),
            config.max_connections + 200,
            config.checkpoint_secs.max(1),
        );
        let conn = Connection::open(&path, &wt_config)?;
        let session = conn.open_session()?;
        session.create(CATALOG_TABLE, "key_format=u,value_format=u")?;
        session.create(OPLOG_TABLE, "key_format=q,value_format=u,block_compressor=zstd")?;
        session.create(PREIMAGES_TABLE, "key_format=q,value_format=u,block_compressor=zstd")?;
        let catalog = Catalog::load(&session)?;
        let history = history::History::open(&conn)?;
        // New commit timestamps must follow everything recovered, even an emptied oplog's.
        let recovered =
            conn.query_timestamp("get=recovery")?.max(conn.query_timestamp("get=stable_timestamp")?);
        let last = crate::oplog::last_timestamp(&session)?.map_or(0, |t| crate::oplog::pack(t) as u64);
        let clock = OplogClock::new(
            Some(last.max(recovered)).filter(|t| *t > 0).map(|t| crate::oplog::unpack(t as i64)),
        );
        drop(session);
        let store = Arc::new(Store {
            conn,
            path,
            catalog,
            clock,
            history,
            pending_drops: Mutex::new(Vec::new()),
            group_commit: GroupCommit::default(),
            oplog_view: Arc::new(Collection {
                db: "local".into(),
                name: "oplog.rs".into(),
                ns: OPLOG_NS.into(),
                uuid: bson::Uuid::from_bytes([0x0b; 16]),
                ident: "oplog".into(),
                options: bson::doc! { "capped": true, "size": 1i64 << 30 },
                indexes: Vec::new(),
                shared: catalog::new_shared(),
                validator: None,
            }),
            background: Mutex::new(None),
            sort_memory_limit: AtomicUsize::new(crate::query::spill::DEFAULT_MEMORY_LIMIT),
            knobs: Default::default(),
            _temp: temp,
        });
        store.drop_orphan_tables()?;
        recovery::replay_oplog(&store)?;
        store.start_flusher(Duration::from_millis(config.journal_flush_ms.max(1)))?;
        Ok(store)
    }

    pub fn session(self: &Arc<Self>) -> StoreResult<StoreSession> {
        Ok(StoreSession {
            store: self.clone(),
            wt: self.conn.open_session()?,
            multi: None,
            multi_id: 0,
            multi_oplog: Vec::new(),
        })
    }

    /// A collection for `ns`: the catalog's, or the read-only view of the oplog.
    pub fn collection(&self, ns: &str) -> Option<Arc<Collection>> {
        if ns == OPLOG_NS {
            return Some(self.oplog_view.clone());
        }
        self.catalog.get(ns)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Group commit: writes that did not ask for `j: true` reach the disk within one period.
    fn start_flusher(self: &Arc<Self>, period: Duration) -> StoreResult<()> {
        let session = self.conn.open_session()?;
        let weak = Arc::downgrade(self);
        let (tx, rx) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("journal-flusher".into())
            .spawn(move || loop {
                match rx.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => {
                        let Some(store) = weak.upgrade() else { return };
                        if let Err(e) = store.group_commit.make_durable(&session) {
                            log::warn!("journal flush failed: {e}");
                        }
                        store.retry_pending_drops(&session);
                        if let Err(e) = store.history.advance(&store.conn, &store.clock) {
                            log::warn!("moving the snapshot history window failed: {e}");
                        }
                    }
                    _ => {
                        let _ = session.log_flush("sync=on");
                        return;
                    }
                }
            })
            .map_err(|e| StoreError::Io(e.to_string()))?;
        *self.background.lock() = Some((tx, handle));
        Ok(())
    }

    /// Moves the snapshot history window now (the flusher does it every period).
    pub fn advance_history(&self) -> StoreResult<()> {
        self.history.advance(&self.conn, &self.clock)
    }

    /// Remembers a table to drop once no cursor holds it.
    pub(crate) fn drop_later(&self, uri: String) {
        self.pending_drops.lock().push(uri);
    }

    fn retry_pending_drops(&self, session: &Session) {
        let mut pending = self.pending_drops.lock();
        if pending.is_empty() {
            return;
        }
        pending.retain(|uri| match session.drop_uri(uri, "") {
            Ok(()) => false,
            Err(e) if e.is_busy() => true,
            Err(e) => {
                log::warn!("dropping {uri}: {e}");
                false
            }
        });
    }

    /// Tables left by a crash between creating a table and recording it in the catalog.
    fn drop_orphan_tables(&self) -> StoreResult<()> {
        let session = self.conn.open_session()?;
        let known = self.catalog.all_idents();
        let mut orphans = Vec::new();
        {
            let mut cur = session.open_cursor("metadata:", None)?;
            while cur.next()? {
                let key = cur.key_bytes()?;
                let key = String::from_utf8_lossy(key.strip_suffix(&[0]).unwrap_or(key)).into_owned();
                if let Some(name) = key.strip_prefix("table:") {
                    let ours = name.starts_with("coll-") || name.starts_with("index-");
                    if ours && !known.contains(name) {
                        orphans.push(key.clone());
                    }
                }
            }
        }
        for uri in orphans {
            log::info!("dropping orphan table {uri}");
            if let Err(e) = session.drop_uri(&uri, "") {
                log::warn!("dropping orphan {uri}: {e}");
            }
        }
        Ok(())
    }

    /// Flushes the journal, checkpoints and closes WiredTiger. Callers first end every
    /// client session; afterwards the store must not be used.
    pub fn shutdown(&self) {
        if let Some((tx, handle)) = self.background.lock().take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
        if let Ok(session) = self.conn.open_session() {
            self.retry_pending_drops(&session);
            // Every write has finished: the last checkpoint holds them all (nothing to replay).
            if let Err(e) = self.advance_history() {
                log::warn!("moving the stable timestamp failed: {e}");
            }
            if let Err(e) = session.checkpoint("") {
                log::warn!("final checkpoint failed: {e}");
            }
        }
        if let Err(e) = self.conn.close("") {
            log::warn!("closing WiredTiger: {e}");
        }
    }

    /// Bytes on disk of one table (its `.wt` file).
    pub fn table_file_size(&self, ident: &str) -> u64 {
        std::fs::metadata(self.path.join(format!("{ident}.wt"))).map(|m| m.len()).unwrap_or(0)
    }
}

/// One client thread's handle on the store: owns a WiredTiger session. A session that
/// belongs to a multi-document transaction (`begin_multi`) keeps one WiredTiger transaction
/// open across calls and may move between connection threads (never used by two at once).
pub struct StoreSession {
    pub store: Arc<Store>,
    pub wt: Session,
    /// Set while a multi-document transaction is open: the fields (`lsid`, `txnNumber`) its
    /// oplog entries carry.
    multi: Option<bson::Document>,
    /// The open transaction's id (its view of the catalog).
    multi_id: u64,
    /// The oplog keys the open transaction wrote, in order.
    multi_oplog: Vec<i64>,
}

/// Ids of multi-document transactions (0 means none).
static NEXT_MULTI_ID: AtomicU64 = AtomicU64::new(1);

impl Drop for StoreSession {
    fn drop(&mut self) {
        self.abort_multi();
    }
}

impl StoreSession {
    /// Opens the WiredTiger transaction of a multi-document transaction: from now on `write`
    /// and `read` run inside it. It reads as of `read_ts` (a snapshot read concern's cluster
    /// time), else from a snapshot taken at its first read or write.
    pub fn begin_multi(&mut self, oplog_tag: bson::Document, read_ts: Option<u64>) -> StoreResult<()> {
        if self.multi.is_some() {
            let _ = self.wt.rollback_transaction("");
            self.multi = None;
        }
        self.begin_read(read_ts)?;
        self.multi = Some(oplog_tag);
        self.multi_oplog.clear();
        self.multi_id = NEXT_MULTI_ID.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The open transaction's id (0 outside one): statements run with
    /// `catalog::enter_view(id)` see the collections it created.
    pub fn multi_id(&self) -> u64 {
        if self.multi.is_some() {
            self.multi_id
        } else {
            0
        }
    }

    /// Creates a table: on a session of its own inside a transaction (WiredTiger schema
    /// changes are not transactional).
    pub(crate) fn create_table(&self, uri: &str, config: &str) -> StoreResult<()> {
        if self.multi.is_some() {
            self.store.conn.open_session()?.create(uri, config)?;
        } else {
            self.wt.create(uri, config)?;
        }
        Ok(())
    }

    /// The collections the transaction created are gone: their tables are dropped once free.
    fn discard_created(&self) {
        for c in self.store.catalog.discard(self.multi_id) {
            self.store.drop_later(c.uri());
            for i in &c.indexes {
                self.store.drop_later(i.uri());
            }
        }
    }

    /// Deletes oplog entries (and their pre-images) past the retention limits; returns how
    /// many. Run by the reaper.
    pub fn prune_oplog(&mut self, retention_secs: u64, max_entries: u64) -> StoreResult<u64> {
        // Recovery replays the entries after the last checkpoint: those must stay. When the
        // limits want some of them gone, a checkpoint first makes them unnecessary.
        let Some(cutoff) = crate::oplog::prune_cutoff(&self.wt, retention_secs, max_entries)? else {
            return Ok(0);
        };
        let mut kept = self.store.conn.query_timestamp("get=last_checkpoint")? as i64;
        if cutoff > kept + 1 {
            self.checkpoint()?;
            kept = self.store.conn.query_timestamp("get=last_checkpoint")? as i64;
        }
        crate::oplog::prune_before(&self.wt, cutoff.min(kept + 1))
    }

    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Commits the multi-document transaction; `durable` waits for the journal (group
    /// commit). On failure the transaction is gone (WiredTiger rolls it back).
    pub fn commit_multi(&mut self, durable: bool) -> StoreResult<()> {
        if self.multi.take().is_none() {
            return Ok(());
        }
        let mut stamped = Vec::new();
        let restamped = self.restamp_oplog(&mut stamped).and_then(|_| match stamped.first() {
            // One commit timestamp for the whole transaction, its first entry's (the later
            // entries' timestamps are above it), as mongod gives one to a transaction.
            Some(first) => Ok(self.wt.set_commit_timestamp(*first as u64)?),
            None => Ok(()),
        });
        let result = restamped.and_then(|_| Ok(self.wt.commit_transaction("")?));
        if let Err(e) = result {
            // Needed when re-stamping failed; harmless when the failed commit already ended
            // the transaction.
            let _ = self.wt.rollback_transaction("");
            self.store.clock.release(&stamped);
            self.discard_created();
            return Err(e);
        }
        // Only now may oplog readers move past the commit's timestamps.
        self.store.clock.release(&stamped);
        self.store.catalog.publish(self.multi_id);
        self.store.group_commit.committed();
        if durable {
            self.flush_journal()?;
        }
        Ok(())
    }

    /// Moves the transaction's oplog entries to fresh timestamps just before it commits, so
    /// that oplog order follows commit order (a reader never sees a transaction's entries
    /// appear behind entries it has already read).
    fn restamp_oplog(&mut self, stamped: &mut Vec<i64>) -> StoreResult<()> {
        let keys = std::mem::take(&mut self.multi_oplog);
        if keys.is_empty() {
            return Ok(());
        }
        let mut cur = self.wt.open_cursor(OPLOG_TABLE, None)?;
        let mut pre = self.wt.open_cursor(PREIMAGES_TABLE, None)?;
        for key in keys {
            if !cur.search(wt::Key::Int(key))? {
                continue;
            }
            let mut entry = scan::parse_record(cur.value()?)?;
            cur.remove(wt::Key::Int(key))?;
            let ts = self.store.clock.next();
            stamped.push(crate::oplog::pack(ts));
            entry.insert("ts", ts);
            cur.insert(wt::Key::Int(crate::oplog::pack(ts)), &crate::oplog::to_bytes(&entry)?)?;
            // A pre-image is keyed by its entry's timestamp, so it moves with it.
            if pre.search(wt::Key::Int(key))? {
                let image = pre.value()?.to_vec();
                pre.remove(wt::Key::Int(key))?;
                pre.insert(wt::Key::Int(crate::oplog::pack(ts)), &image)?;
            }
        }
        Ok(())
    }

    /// Rolls the multi-document transaction back (records, index entries, oplog entries).
    pub fn abort_multi(&mut self) {
        if self.multi.take().is_some() {
            let _ = self.wt.rollback_transaction("");
            self.discard_created();
        }
    }

    /// Runs `f` in one WiredTiger transaction and commits it, retrying on write conflicts as
    /// mongod does (the client never sees them). `durable` makes the commit wait for the
    /// journal to reach the disk (`j: true`). Inside a multi-document transaction `f` runs
    /// once in it, and a write conflict is returned (the transaction must then be aborted).
    pub fn write<T>(
        &mut self,
        durable: bool,
        mut f: impl FnMut(&mut Txn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        if let Some(tag) = &self.multi {
            let mut txn = Txn::new(&self.wt, &self.store);
            txn.tag = Some(tag);
            txn.logged = Some(&mut self.multi_oplog);
            let r = f(&mut txn);
            // These entries are re-stamped at commit (and their first timestamps never become
            // visible), so readers need not wait for them.
            let placeholders = std::mem::take(&mut txn.in_flight);
            drop(txn);
            self.store.clock.release(&placeholders);
            return r;
        }
        let mut attempt = 0u32;
        loop {
            self.wt.begin_transaction("isolation=snapshot")?;
            let mut txn = Txn::new(&self.wt, &self.store);
            txn.timestamped = true;
            let result = f(&mut txn);
            let taken = std::mem::take(&mut txn.in_flight);
            let result = match result {
                Ok(v) => {
                    let commit = if durable { "sync=on" } else { "" };
                    let committed = self.wt.commit_transaction(commit);
                    // Only now may oplog readers move past these timestamps.
                    self.store.clock.release(&taken);
                    match committed {
                        Ok(()) => {
                            self.store.group_commit.committed();
                            return Ok(v);
                        }
                        Err(e) => Err(StoreError::from(e)),
                    }
                }
                Err(e) => {
                    let _ = self.wt.rollback_transaction("");
                    self.store.clock.release(&taken);
                    Err(e)
                }
            };
            match result {
                Err(StoreError::WriteConflict) if attempt < 10_000 => {
                    attempt += 1;
                    // Back off a little more each time so two writers stop colliding.
                    let micros = (1u64 << attempt.min(10)).min(20_000);
                    std::thread::sleep(Duration::from_micros(rand::random::<u64>() % micros + 1));
                }
                other => return other,
            }
        }
    }

    /// Runs `f` in one transaction whose changes carry the timestamp `ts` and write no oplog
    /// entry (recovery re-applying an entry of the oplog).
    pub(crate) fn replay(
        &mut self,
        ts: bson::Timestamp,
        f: impl FnOnce(&mut Txn<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.wt.begin_transaction("isolation=snapshot")?;
        let mut txn = Txn::new(&self.wt, &self.store);
        txn.timestamped = true;
        txn.replay = Some(ts);
        match f(&mut txn) {
            Ok(()) => Ok(self.wt.commit_transaction("")?),
            Err(e) => {
                let _ = self.wt.rollback_transaction("");
                Err(e)
            }
        }
    }

    /// Runs `f` inside a snapshot read transaction: every read it makes sees one point in time.
    pub fn read<T>(&mut self, f: impl FnOnce(&Txn<'_>) -> StoreResult<T>) -> StoreResult<T> {
        if self.multi.is_some() {
            return f(&Txn::new(&self.wt, &self.store));
        }
        self.begin_read(history::read_at())?;
        let txn = Txn::new(&self.wt, &self.store);
        let r = f(&txn);
        let _ = self.wt.rollback_transaction("");
        r
    }

    /// Begins a snapshot transaction, reading as of `read_ts` when given.
    fn begin_read(&mut self, read_ts: Option<u64>) -> StoreResult<()> {
        self.wt.begin_transaction("isolation=snapshot")?;
        let Some(ts) = read_ts else { return Ok(()) };
        let set = self.store.history.check(ts).and_then(|_| Ok(self.wt.set_read_timestamp(ts)?));
        if let Err(e) = set {
            let _ = self.wt.rollback_transaction("");
            // WiredTiger refuses a read timestamp below its oldest: the window moved on.
            return Err(if self.store.history.oldest() > ts { history::too_old(ts) } else { e });
        }
        Ok(())
    }

    /// Takes a WiredTiger checkpoint now.
    pub fn checkpoint(&self) -> StoreResult<()> {
        // Checkpoints hold the record and index tables as of the stable timestamp.
        self.store.advance_history()?;
        Ok(self.wt.checkpoint("")?)
    }

    /// Returns once every transaction this session (or anyone) committed so far is in the
    /// journal on disk (`j: true`).
    pub fn flush_journal(&self) -> StoreResult<()> {
        self.store.group_commit.make_durable(&self.wt)
    }
}

/// Group commit: merges concurrent journal syncs. Each commit bumps a counter; a writer that
/// needs durability waits until a sync that started after its commit has finished, and only
/// one sync runs at a time, so N concurrent `j: true` writers cost about one fsync, not N.
#[derive(Default)]
pub struct GroupCommit {
    commits: AtomicU64,
    state: Mutex<GroupState>,
    done: Condvar,
    /// The commit notifier: each awaitData getMore waiting for the next commit leaves a
    /// one-shot crossbeam channel here; a commit publishes its number on all of them.
    waiters: Mutex<Vec<crossbeam_channel::Sender<u64>>>,
}

#[derive(Default)]
struct GroupState {
    /// Every commit numbered up to this is on disk.
    durable: u64,
    syncing: bool,
}

impl GroupCommit {
    /// Called after each successful commit; wakes awaitData getMores.
    pub fn committed(&self) {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        let mut waiters = self.waiters.lock();
        for tx in waiters.drain(..) {
            // A waiter that already timed out dropped its receiver; nothing to do.
            let _ = tx.try_send(n);
        }
    }

    /// How many commits have happened (a watermark for `wait_for_commit_after`).
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Waits until a commit after watermark `seen`, or `timeout`; true if one happened.
    pub fn wait_for_commit_after(&self, seen: u64, timeout: Duration) -> bool {
        let (tx, rx) = crossbeam_channel::bounded(1);
        {
            // Checked under the lock `committed` takes, so a commit cannot slip between the
            // check and the registration.
            let mut waiters = self.waiters.lock();
            if self.commits.load(Ordering::SeqCst) > seen {
                return true;
            }
            // Waiters that timed out leave their sender behind until the next commit; on an
            // idle server keep the list bounded (a live waiter woken early just looks again).
            if waiters.len() >= 1024 {
                for t in waiters.drain(..) {
                    let _ = t.try_send(seen);
                }
            }
            waiters.push(tx);
        }
        rx.recv_timeout(timeout).is_ok() || self.commits.load(Ordering::SeqCst) > seen
    }

    /// Waits until every commit made before this call is on disk, syncing the journal
    /// through `session` unless another thread's sync already covers it.
    pub fn make_durable(&self, session: &Session) -> StoreResult<()> {
        let upto = self.commits.load(Ordering::SeqCst);
        let mut st = self.state.lock();
        loop {
            if st.durable >= upto {
                return Ok(());
            }
            if st.syncing {
                self.done.wait(&mut st);
                continue;
            }
            st.syncing = true;
            // Everything committed before this read is covered by the sync below.
            let target = self.commits.load(Ordering::SeqCst);
            drop(st);
            let r = session.log_flush("sync=on");
            st = self.state.lock();
            st.syncing = false;
            if r.is_ok() {
                st.durable = st.durable.max(target);
            }
            self.done.notify_all();
            r?;
        }
    }
}
