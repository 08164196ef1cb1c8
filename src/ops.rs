//! The operations in progress, for `currentOp`/`$currentOp` and `killOp`, and the
//! per-collection latency counters of `$collStats: {latencyStats}`.
//!
//! Every connection owns one [`ConnSlot`] in the registry; only its own thread writes the
//! slot's current operation (a mutex nobody else holds except a `currentOp` reading it), so
//! running a command never contends with other connections. The running operation is also
//! the thread's [`CURRENT`], which the executors poll where they check `maxTimeMS` to stop a
//! killed operation with 11601 Interrupted.

use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, DateTime, Document};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

/// One operation being run.
pub struct CurOp {
    pub opid: u32,
    pub started: Instant,
    /// mongod's `op`: command, query, getmore, insert, update, remove.
    pub op: &'static str,
    pub ns: String,
    pub command: Document,
    pub killed: AtomicBool,
}

/// A connection as `currentOp` shows it.
pub struct ConnSlot {
    pub id: i64,
    pub peer: Option<SocketAddr>,
    /// The client metadata of the connection's first hello.
    pub metadata: OnceLock<Document>,
    pub current: Mutex<Option<Arc<CurOp>>>,
}

impl ConnSlot {
    pub fn app_name(&self) -> Option<&str> {
        self.metadata.get()?.get_document("application").ok()?.get_str("name").ok()
    }
}

/// Reads, writes and other commands on one collection: operations and total micros.
#[derive(Default)]
pub struct Latency {
    pub reads: (AtomicU64, AtomicU64),
    pub writes: (AtomicU64, AtomicU64),
    pub commands: (AtomicU64, AtomicU64),
    pub transactions: (AtomicU64, AtomicU64),
}

#[derive(Default)]
pub struct OpRegistry {
    conns: Mutex<HashMap<i64, Arc<ConnSlot>>>,
    next_opid: AtomicU32,
    latency: RwLock<HashMap<String, Arc<Latency>>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<CurOp>>> = const { RefCell::new(None) };
}

/// Whether this thread's operation was killed.
pub fn interrupted() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|op| op.killed.load(Ordering::Relaxed)))
}

/// 11601 Interrupted once this thread's operation was killed.
pub fn check_interrupt() -> Result<()> {
    if interrupted() {
        return Err(MongoError::new(ErrorCode::Interrupted, "operation was interrupted"));
    }
    Ok(())
}

/// Sleeps up to `d`, waking early (with 11601) when the operation is killed.
pub fn interruptible_sleep(d: std::time::Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check_interrupt()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(std::time::Duration::from_millis(10)));
    }
}

/// Ends the operation when dropped.
pub struct OpGuard {
    slot: Option<Arc<ConnSlot>>,
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
        if let Some(s) = &self.slot {
            if let Ok(mut cur) = s.current.lock() {
                *cur = None;
            }
        }
    }
}

impl OpRegistry {
    pub fn connect(&self, id: i64, peer: Option<SocketAddr>) -> Arc<ConnSlot> {
        let slot = Arc::new(ConnSlot { id, peer, metadata: OnceLock::new(), current: Mutex::new(None) });
        if let Ok(mut m) = self.conns.lock() {
            m.insert(id, slot.clone());
        }
        slot
    }

    pub fn disconnect(&self, id: i64) {
        if let Ok(mut m) = self.conns.lock() {
            m.remove(&id);
        }
    }

    /// Publishes the command `slot`'s connection starts running.
    pub fn begin(
        &self,
        slot: Option<&Arc<ConnSlot>>,
        op: &'static str,
        ns: String,
        command: Document,
    ) -> OpGuard {
        let opid = self.next_opid.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let cur = Arc::new(CurOp {
            opid,
            started: Instant::now(),
            op,
            ns,
            command,
            killed: AtomicBool::new(false),
        });
        CURRENT.with(|c| *c.borrow_mut() = Some(cur.clone()));
        if let Some(s) = slot {
            if let Ok(mut c) = s.current.lock() {
                *c = Some(cur);
            }
        }
        OpGuard { slot: slot.cloned() }
    }

    /// Every connection, in connection order.
    pub fn connections(&self) -> Vec<Arc<ConnSlot>> {
        let mut v: Vec<Arc<ConnSlot>> = match self.conns.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by_key(|s| s.id);
        v
    }

    /// Marks the operation `opid` killed; whether it was running.
    pub fn kill(&self, opid: u32) -> bool {
        for s in self.connections() {
            let cur = s.current.lock().ok().and_then(|c| c.clone());
            if let Some(op) = cur.filter(|op| op.opid == opid) {
                op.killed.store(true, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    /// Counts one operation of `kind` ("reads", "writes", "commands") on `ns`.
    pub fn record_latency(&self, ns: &str, kind: &str, micros: u64) {
        let found = self.latency.read().ok().and_then(|m| m.get(ns).cloned());
        let l = match found {
            Some(l) => l,
            None => match self.latency.write() {
                Ok(mut m) => m.entry(ns.to_string()).or_default().clone(),
                Err(_) => return,
            },
        };
        let (ops, lat) = match kind {
            "reads" => &l.reads,
            "writes" => &l.writes,
            "transactions" => &l.transactions,
            _ => &l.commands,
        };
        ops.fetch_add(1, Ordering::Relaxed);
        lat.fetch_add(micros, Ordering::Relaxed);
    }

    /// `latencyStats` of `$collStats` for `ns`.
    pub fn latency_stats(&self, ns: &str) -> Document {
        let l = self.latency.read().ok().and_then(|m| m.get(ns).cloned()).unwrap_or_default();
        let one = |p: &(AtomicU64, AtomicU64)| {
            let n = |a: &AtomicU64| i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
            bson::doc! { "latency": n(&p.1), "ops": n(&p.0) }
        };
        bson::doc! {
            "reads": one(&l.reads), "writes": one(&l.writes),
            "commands": one(&l.commands), "transactions": one(&l.transactions),
        }
    }

    /// Forgets a dropped collection's counters.
    pub fn forget(&self, ns: &str) {
        if let Ok(mut m) = self.latency.write() {
            m.remove(ns);
        }
    }
}

/// mongod's `op` for a command name.
pub fn op_kind(command: &str) -> &'static str {
    match command {
        "find" => "query",
        "getMore" => "getmore",
        "insert" => "insert",
        "update" => "update",
        "delete" => "remove",
        _ => "command",
    }
}

/// The latency class of a command on a collection (`None`: not counted).
pub fn latency_kind(command: &str) -> Option<&'static str> {
    Some(match command {
        "find" | "getMore" | "aggregate" | "count" | "distinct" => "reads",
        "insert" | "update" | "delete" | "findAndModify" => "writes",
        "createIndexes" | "dropIndexes" | "collMod" | "listIndexes" | "collStats" | "validate" | "create" => {
            "commands"
        }
        _ => return None,
    })
}

/// One in-progress operation (or idle connection) in mongod's `currentOp` shape.
pub fn describe(slot: &ConnSlot, host: &str, now: Instant) -> Document {
    let cur = slot.current.lock().ok().and_then(|c| c.clone());
    let mut d = bson::doc! {
        "type": "op",
        "host": host,
        "desc": format!("conn{}", slot.id),
        "connectionId": slot.id,
    };
    if let Some(p) = slot.peer {
        d.insert("client", p.to_string());
    }
    if let Some(app) = slot.app_name() {
        d.insert("appName", app);
    }
    if let Some(m) = slot.metadata.get() {
        d.insert("clientMetadata", m.clone());
    }
    d.insert("active", cur.is_some());
    d.insert("currentOpTime", DateTime::now().try_to_rfc3339_string().unwrap_or_default());
    let Some(op) = cur else { return d };
    let micros = now.saturating_duration_since(op.started).as_micros();
    d.insert("threaded", true);
    d.insert("opid", i64::from(op.opid));
    if let Some(l) = op.command.get("lsid") {
        d.insert("lsid", l.clone());
    }
    d.insert("secs_running", i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX));
    d.insert("microsecs_running", i64::try_from(micros).unwrap_or(i64::MAX));
    d.insert("op", op.op);
    d.insert("ns", op.ns.clone());
    d.insert("redacted", false);
    d.insert("command", op.command.clone());
    if let (Ok(n), Some(false)) =
        (op.command.get_i64("txnNumber"), op.command.get("autocommit").and_then(Bson::as_bool))
    {
        d.insert("transaction", bson::doc! { "parameters": { "txnNumber": n, "autocommit": false } });
    }
    d.insert("numYields", 0i32);
    d.insert("locks", Document::new());
    d.insert("waitingForLock", false);
    d.insert("lockStats", Document::new());
    d.insert("waitingForFlowControl", false);
    d.insert("flowControlStats", Document::new());
    if op.killed.load(Ordering::Relaxed) {
        d.insert("killPending", true);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_interrupts_the_operation_at_its_next_check() {
        let reg = OpRegistry::default();
        let slot = reg.connect(7, None);
        let guard = reg.begin(Some(&slot), "command", "db.c".into(), bson::doc! { "aggregate": "c" });
        let d = describe(&slot, "h:1", Instant::now());
        assert_eq!(d.get_str("desc"), Ok("conn7"));
        assert_eq!(d.get_bool("active"), Ok(true));
        let opid = u32::try_from(d.get_i64("opid").unwrap()).unwrap();
        assert!(check_interrupt().is_ok());
        assert!(!reg.kill(opid + 1000));
        assert!(reg.kill(opid));
        assert_eq!(check_interrupt().unwrap_err().code, ErrorCode::Interrupted);
        // A pipeline stops at its first deadline check.
        let store = crate::store::Store::open(&crate::config::Config::default()).unwrap();
        let mut ss = store.session().unwrap();
        let docs: Vec<Bson> = (0..10).map(|i| Bson::Document(bson::doc! { "a": i })).collect();
        let stages = [
            bson::bson!({ "$documents": docs }),
            bson::bson!({ "$setWindowFields": { "partitionBy": "$a", "output": { "n": { "$count": {} } } } }),
        ];
        let err = crate::agg::run_all(&mut ss, "db", None, &stages, false).unwrap_err();
        assert_eq!(err.code, ErrorCode::Interrupted);
        drop(guard);
        assert!(check_interrupt().is_ok());
        assert_eq!(describe(&slot, "h:1", Instant::now()).get_bool("active"), Ok(false));
        drop(ss);
        store.shutdown();
    }
}
