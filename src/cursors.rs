//! Open client cursors, by id. A cursor holds an executor positioned between batches; it is
//! not tied to the connection that opened it (drivers may send getMore on another one).

use crate::auth::roles::Resource;
use crate::auth::users::Name;
use crate::query::exec::Exec;
use crate::sessions::SessionId;
use bson::Document;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// mongod's default cursorTimeoutMillis.
pub const CURSOR_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a cursor's documents come from.
pub enum CursorSource {
    /// A positioned executor over a collection.
    Exec(Box<Exec>),
    /// Results already computed (catalog listings).
    Buffered(VecDeque<Document>),
    /// A change stream reading the oplog.
    ChangeStream(Box<crate::oplog::stream::ChangeStream>),
    /// An aggregation pipeline pulled between getMores.
    Pipeline(Box<crate::agg::PipelineCursor>),
}

pub struct ClientCursor {
    pub id: i64,
    pub ns: String,
    pub source: CursorSource,
    pub batch_size: Option<usize>,
    pub last_used: Instant,
    pub no_timeout: bool,
    pub conn_id: i64,
    /// The logical session that opened the cursor: it dies with the session.
    pub lsid: Option<SessionId>,
    /// Tailable cursors (capped collections) stay open at the end of the data; awaitData
    /// ones make getMore wait for new documents.
    pub tailable: bool,
    pub await_data: bool,
    /// The collation of the statement that opened the cursor; getMores run under it.
    pub collation: Option<Arc<crate::query::collation::Collation>>,
    /// The read timestamp of a snapshot read (`atClusterTime`); getMores read at it too.
    pub read_at: Option<u64>,
}

pub type CursorRef = Arc<Mutex<ClientCursor>>;

/// A cursor between getMores, as `$currentOp` lists it.
pub struct IdleCursor {
    pub id: i64,
    pub ns: String,
    pub lsid: Option<SessionId>,
    pub idle: std::time::Duration,
    pub no_timeout: bool,
    pub tailable: bool,
    pub await_data: bool,
}

/// A registered cursor with its owning session and users kept outside the cursor's own lock,
/// so the owner can be read while a getMore holds the cursor.
struct Slot {
    lsid: Option<SessionId>,
    /// The users authenticated on the connection that opened the cursor (mongod associates
    /// each cursor with them; with `--auth` only they may continue or kill it).
    owners: Vec<Name>,
    /// The privileges the opening command was authorized by.
    privileges: Vec<(Resource, String)>,
    cursor: CursorRef,
}

/// Who a cursor belongs to.
#[derive(Debug, Clone)]
pub struct Owner {
    pub ns: Option<String>,
    pub lsid: Option<SessionId>,
    pub users: Vec<Name>,
    pub privileges: Vec<(Resource, String)>,
}

#[derive(Default)]
pub struct CursorManager {
    map: Mutex<HashMap<i64, Slot>>,
}

impl CursorManager {
    /// Registers a cursor and returns its id (positive, random, never 0).
    pub fn register(
        &self,
        ns: String,
        source: CursorSource,
        batch_size: Option<usize>,
        no_timeout: bool,
        conn_id: i64,
        lsid: Option<SessionId>,
    ) -> i64 {
        let mut map = self.map.lock();
        let id = loop {
            let id = (rand::random::<u64>() >> 2) as i64;
            if id != 0 && !map.contains_key(&id) {
                break id;
            }
        };
        let c = ClientCursor {
            id,
            ns,
            source,
            batch_size,
            last_used: Instant::now(),
            no_timeout,
            conn_id,
            lsid,
            tailable: false,
            await_data: false,
            collation: crate::query::collation::active(),
            read_at: crate::store::history::read_at(),
        };
        map.insert(
            id,
            Slot { lsid, owners: Vec::new(), privileges: Vec::new(), cursor: Arc::new(Mutex::new(c)) },
        );
        id
    }

    /// Records the users that opened cursor `id` and the privileges that let them.
    pub fn set_owners(&self, id: i64, users: Vec<Name>, privileges: Vec<(Resource, String)>) {
        if let Some(s) = self.map.lock().get_mut(&id) {
            s.owners = users;
            s.privileges = privileges;
        }
    }

    /// The session and users of cursor `id`, and its namespace unless a getMore holds it.
    pub fn owner(&self, id: i64) -> Option<Owner> {
        let map = self.map.lock();
        let s = map.get(&id)?;
        let ns = s.cursor.try_lock().map(|c| c.ns.clone());
        Some(Owner { ns, lsid: s.lsid, users: s.owners.clone(), privileges: s.privileges.clone() })
    }

    pub fn get(&self, id: i64) -> Option<CursorRef> {
        self.map.lock().get(&id).map(|s| s.cursor.clone())
    }

    pub fn remove(&self, id: i64) -> Option<CursorRef> {
        self.map.lock().remove(&id).map(|s| s.cursor)
    }

    /// Drops every cursor on a namespace (its collection is being dropped or renamed).
    /// Change streams survive: they report the drop and then invalidate themselves.
    pub fn kill_namespace(&self, ns: &str) {
        self.map.lock().retain(|_, s| {
            s.cursor
                .try_lock()
                .is_none_or(|c| c.ns != ns || matches!(c.source, CursorSource::ChangeStream(_)))
        });
    }

    /// Drops every cursor opened under one of `ids` (the sessions were ended, killed or
    /// expired); returns how many.
    pub fn kill_sessions(&self, ids: &[SessionId]) -> usize {
        if ids.is_empty() {
            return 0;
        }
        let mut map = self.map.lock();
        let before = map.len();
        map.retain(|_, s| !s.lsid.is_some_and(|o| ids.contains(&o)));
        before - map.len()
    }

    /// Cursors idle longer than the timeout; returns how many were removed.
    pub fn reap(&self, now: Instant) -> usize {
        let mut map = self.map.lock();
        let before = map.len();
        map.retain(|_, s| match s.cursor.try_lock() {
            Some(c) => c.no_timeout || now.duration_since(c.last_used) < CURSOR_TIMEOUT,
            None => true,
        });
        before - map.len()
    }

    /// When the next idle cursor expires if nothing uses it; `None` with no cursor that can
    /// expire. A cursor busy in a getMore counts as used now.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.map
            .lock()
            .values()
            .filter_map(|s| match s.cursor.try_lock() {
                Some(c) if c.no_timeout => None,
                Some(c) => Some(c.last_used + CURSOR_TIMEOUT),
                None => Some(now + CURSOR_TIMEOUT),
            })
            .min()
    }

    /// The cursors no getMore is running on (`$currentOp` with `idleCursors`), oldest use
    /// first: id, namespace, session, idle time, noCursorTimeout, tailable, awaitData.
    pub fn idle(&self) -> Vec<IdleCursor> {
        let cursors: Vec<CursorRef> = self.map.lock().values().map(|s| s.cursor.clone()).collect();
        let now = Instant::now();
        let mut out: Vec<IdleCursor> = cursors
            .iter()
            .filter_map(|c| {
                let c = c.try_lock()?;
                Some(IdleCursor {
                    id: c.id,
                    ns: c.ns.clone(),
                    lsid: c.lsid,
                    idle: now.saturating_duration_since(c.last_used),
                    no_timeout: c.no_timeout,
                    tailable: c.tailable,
                    await_data: c.await_data,
                })
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.idle));
        out
    }

    /// Cursors survive their connection (drivers reuse them from a pool); nothing to do
    /// until sessions own cursors.
    pub fn connection_closed(&self, _conn_id: i64) {}

    pub fn clear(&self) {
        self.map.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
