//! Open client cursors, by id. A cursor holds an executor positioned between batches; it is
//! not tied to the connection that opened it (drivers may send getMore on another one).

use crate::query::exec::Exec;
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
}

pub type CursorRef = Arc<Mutex<ClientCursor>>;

#[derive(Default)]
pub struct CursorManager {
    map: Mutex<HashMap<i64, CursorRef>>,
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
    ) -> i64 {
        let mut map = self.map.lock();
        let id = loop {
            let id = (rand::random::<u64>() >> 2) as i64;
            if id != 0 && !map.contains_key(&id) {
                break id;
            }
        };
        let c = ClientCursor { id, ns, source, batch_size, last_used: Instant::now(), no_timeout, conn_id };
        map.insert(id, Arc::new(Mutex::new(c)));
        id
    }

    pub fn get(&self, id: i64) -> Option<CursorRef> {
        self.map.lock().get(&id).cloned()
    }

    pub fn remove(&self, id: i64) -> Option<CursorRef> {
        self.map.lock().remove(&id)
    }

    /// Drops every cursor on a namespace (its collection is being dropped or renamed).
    pub fn kill_namespace(&self, ns: &str) {
        self.map.lock().retain(|_, c| c.try_lock().is_none_or(|c| c.ns != ns));
    }

    /// Cursors idle longer than the timeout; returns how many were removed.
    pub fn reap(&self, now: Instant) -> usize {
        let mut map = self.map.lock();
        let before = map.len();
        map.retain(|_, c| match c.try_lock() {
            Some(c) => c.no_timeout || now.duration_since(c.last_used) < CURSOR_TIMEOUT,
            None => true,
        });
        before - map.len()
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
