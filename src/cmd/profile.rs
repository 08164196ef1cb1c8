//! The database profiler: the `profile` command sets a database's level (0 off, 1 slow
//! operations, 2 all), and each profiled operation is written to `<db>.system.profile`, a
//! 1 MiB capped collection created on first use, as mongod does.

use super::{args, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::matcher::Matcher;
use crate::server::Shared;
use crate::store::StoreSession;
use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// mongod's default `slowms`.
const DEFAULT_SLOW_MS: i64 = 100;
/// Size of the capped `system.profile` collection mongod creates.
const PROFILE_COLLECTION_BYTES: i64 = 1024 * 1024;
const PROFILE_COLL: &str = "system.profile";

#[derive(Clone)]
struct Settings {
    level: i32,
    slow_ms: i64,
    sample_rate: f64,
    filter: Option<(Document, Arc<Matcher>)>,
}

/// Per-database profiler settings. `any` lets the command path skip the lock when no
/// database is profiled, which is nearly always.
#[derive(Default)]
pub struct Profiler {
    any: AtomicBool,
    dbs: Mutex<HashMap<String, Settings>>,
}

impl Profiler {
    fn settings(&self, db: &str) -> Option<Settings> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        self.dbs.lock().get(db).cloned()
    }
}

fn default_settings() -> Settings {
    Settings { level: 0, slow_ms: DEFAULT_SLOW_MS, sample_rate: 1.0, filter: None }
}

/// `profile`: reports the previous settings (`was`, `slowms`, `sampleRate`) and applies the
/// new ones; level -1 only reports.
pub fn profile(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    args::check_db_name(&req.db)?;
    let level = match req.body.get("profile") {
        Some(Bson::Int32(n)) => *n as i64,
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(d)) if d.fract() == 0.0 => *d as i64,
        _ => return Err(MongoError::type_mismatch("'profile' must be a number")),
    };
    if !(-1..=2).contains(&level) {
        return Err(MongoError::bad_value(format!("Invalid profiling level: {level}")));
    }
    let profiler = &ctx.shared.profiler;
    let mut dbs = profiler.dbs.lock();
    let old = dbs.get(&req.db).cloned().unwrap_or_else(default_settings);
    let mut new = old.clone();
    if level >= 0 {
        new.level = level as i32;
    }
    if let Some(v) = req.body.get("slowms") {
        new.slow_ms = match v {
            Bson::Int32(n) => *n as i64,
            Bson::Int64(n) => *n,
            Bson::Double(d) => *d as i64,
            _ => return Err(MongoError::type_mismatch("'slowms' must be a number")),
        };
    }
    if let Some(v) = req.body.get("sampleRate") {
        let rate = match v {
            Bson::Int32(n) => *n as f64,
            Bson::Int64(n) => *n as f64,
            Bson::Double(d) => *d,
            _ => return Err(MongoError::type_mismatch("'sampleRate' must be a number")),
        };
        if !(0.0..=1.0).contains(&rate) {
            return Err(MongoError::bad_value("'sampleRate' must be between 0.0 and 1.0 inclusive"));
        }
        new.sample_rate = rate;
    }
    match req.body.get("filter") {
        None => {}
        Some(Bson::String(s)) if s == "unset" => new.filter = None,
        Some(Bson::Document(f)) => new.filter = Some((f.clone(), Arc::new(Matcher::parse(f)?))),
        Some(_) => {
            return Err(MongoError::new(
                ErrorCode::TypeMismatch,
                "'filter' must be an object or the string 'unset'",
            ))
        }
    }
    let mut reply = doc! { "was": old.level, "slowms": old.slow_ms as i32, "sampleRate": old.sample_rate };
    if let Some((f, _)) = &old.filter {
        reply.insert("filter", f.clone());
    }
    dbs.insert(req.db.clone(), new);
    let any = dbs.values().any(|s| s.level > 0);
    profiler.any.store(any, Ordering::Relaxed);
    Ok(reply)
}

/// What a command needs kept for its profile entry: the settings and the command itself.
pub struct Pending {
    settings: Settings,
    body: Document,
    started: Instant,
}

/// Called before a command runs: `Some` when its database is profiled.
pub fn begin(shared: &Shared, req: &Request, command: &str) -> Option<Pending> {
    let settings = shared.profiler.settings(&req.db)?;
    if settings.level == 0 || command == "profile" {
        return None;
    }
    // Operations on the profile collection itself are not profiled.
    if req.body.values().next().and_then(Bson::as_str) == Some(PROFILE_COLL) {
        return None;
    }
    Some(Pending { settings, body: req.body.clone(), started: Instant::now() })
}

/// mongod's `op` for a command.
fn op_name(command: &str) -> &'static str {
    match command {
        "find" => "query",
        "insert" => "insert",
        "update" => "update",
        "delete" => "remove",
        "getMore" => "getmore",
        _ => "command",
    }
}

/// Writes the profile entry of a finished command (level 2, or level 1 and slow).
pub fn finish(
    shared: &Shared,
    store: &mut StoreSession,
    conn: &super::ConnState,
    db: &str,
    command: &str,
    pending: Pending,
    reply: &Document,
) {
    let millis = pending.started.elapsed().as_millis() as i64;
    let s = &pending.settings;
    if s.level == 1 && millis < s.slow_ms {
        return;
    }
    if s.sample_rate < 1.0 && rand::random::<f64>() >= s.sample_rate {
        return;
    }
    // Writes here would join a running multi-document transaction.
    if store.multi_id() != 0 {
        return;
    }
    let coll = match pending.body.values().next() {
        Some(Bson::String(c)) if command != "getMore" => c.clone(),
        _ => match pending.body.get("collection") {
            Some(Bson::String(c)) => c.clone(),
            _ => "$cmd".to_string(),
        },
    };
    let mut entry = doc! {
        "op": op_name(command),
        "ns": format!("{db}.{coll}"),
        "command": pending.body,
    };
    if let Ok(cursor) = reply.get_document("cursor") {
        let n = cursor.get_array("firstBatch").or_else(|_| cursor.get_array("nextBatch")).map_or(0, Vec::len);
        entry.insert("nreturned", n as i32);
        if let Ok(id) = cursor.get_i64("id") {
            if id != 0 {
                entry.insert("cursorid", id);
            }
        }
    }
    if let Ok(n) = reply.get_i32("n") {
        entry.insert("ninserted", n);
    }
    entry.insert("ok", if reply.get_f64("ok").unwrap_or(1.0) == 1.0 { 1.0 } else { 0.0 });
    if let Ok(code) = reply.get_i32("code") {
        entry.insert("errCode", code);
        entry.insert("errMsg", reply.get_str("errmsg").unwrap_or_default());
    }
    entry.insert("responseLength", crate::query::exec::bson_size(reply) as i32);
    entry.insert("protocol", "op_msg");
    entry.insert("millis", millis as i32);
    entry.insert("ts", bson::DateTime::now());
    if let Some(peer) = conn.peer {
        entry.insert("client", peer.ip().to_string());
    }
    if let Some(app) = super::failpoint::app_name(conn) {
        entry.insert("appName", app.to_string());
    }
    entry.insert("allUsers", Vec::<Bson>::new());
    entry.insert("user", "");
    if let Some((_, f)) = &s.filter {
        if !f.matches(&entry) {
            return;
        }
    }
    entry.insert("_id", bson::oid::ObjectId::new());
    let options = doc! { "capped": true, "size": PROFILE_COLLECTION_BYTES };
    if shared.store.catalog.get(&format!("{db}.{PROFILE_COLL}")).is_none() {
        match store.create_collection(db, PROFILE_COLL, options) {
            Ok(_) | Err(crate::store::StoreError::NamespaceExists(_)) => {}
            Err(e) => {
                log::warn!("profiler: cannot create {db}.{PROFILE_COLL}: {e}");
                return;
            }
        }
    }
    let written =
        store.write_collection(db, PROFILE_COLL, false, false, |t, c| t.insert(c, &entry).map(|_| ()));
    if let Err(e) = written {
        log::warn!("profiler: cannot write to {db}.{PROFILE_COLL}: {e}");
    }
}
