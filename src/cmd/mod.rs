//! Commands: one registry table (`registry.rs`), one file per command family.
//!
//! Each handler parses the request body (with mongod's validation errors, in mongod's order)
//! and executes it. Cross-cutting work — lookup, generic reply fields (`ok`, `$clusterTime`,
//! `operationTime`), error shape — happens once, in `dispatch`.

pub mod admin;
pub mod args;
pub mod auth;
pub mod catalog;
pub mod change_stream;
pub mod count;
pub mod current_op;
pub mod cursor;
pub mod explain;
pub mod failpoint;
pub mod find;
pub mod find_and_modify;
pub mod format;
pub mod geo;
pub mod handshake;
pub mod index;
pub mod plan_cache_stats;
pub mod profile;
pub mod registry;
pub mod roles;
pub mod session;
pub mod stats_stages;
pub mod timeseries;
pub mod transaction;
pub mod users;
pub mod views;
pub mod write;

use crate::error::{ErrorCode, MongoError, Result};
use crate::server::Shared;
use crate::sessions;
use crate::store::StoreSession;
use bson::{doc, Bson, Document};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one connection remembers between commands.
pub struct ConnState {
    pub id: i64,
    pub peer: Option<SocketAddr>,
    /// The server address the client connected to (authenticationRestrictions' serverAddress).
    pub local: Option<SocketAddr>,
    pub client_metadata: Option<Document>,
    /// The logical session of the command being run (cursors it opens belong to it).
    pub lsid: Option<sessions::SessionId>,
    /// The checked-out history of the retryable write being run.
    pub retry: Option<session::RetryCtx>,
    /// Set by a fail point: close the connection instead of replying.
    pub close_requested: bool,
    /// The reply's cursor batch as stored BSON, spliced in when the reply is encoded
    /// (`net::splice`); the connection takes it after every command.
    pub raw_batch: Option<Vec<Vec<u8>>>,
    /// Authenticated users and an unfinished SASL conversation.
    pub auth: crate::auth::ConnAuth,
    /// This connection's entry in the operations registry (`None` outside a served socket).
    pub slot: Option<std::sync::Arc<crate::ops::ConnSlot>>,
}

impl ConnState {
    pub fn new(id: i64, peer: Option<SocketAddr>) -> Self {
        ConnState {
            id,
            peer,
            local: None,
            client_metadata: None,
            lsid: None,
            retry: None,
            close_requested: false,
            raw_batch: None,
            auth: Default::default(),
            slot: None,
        }
    }
}

/// One command as received: its database, name, body and OP_MSG document sequences.
pub struct Request {
    pub db: String,
    pub name: String,
    pub body: Document,
    pub sequences: Vec<(String, Vec<Document>)>,
}

impl Request {
    pub fn from_op_msg(body: Document, sequences: Vec<(String, Vec<Document>)>) -> Result<Request> {
        let name = body.keys().next().cloned().unwrap_or_default();
        let db = match body.get("$db") {
            Some(Bson::String(db)) => db.clone(),
            Some(_) => {
                return Err(MongoError::new(
                    ErrorCode::TypeMismatch,
                    "BSON field '$db' is the wrong type, expected type 'string'",
                ))
            }
            None => {
                return Err(MongoError::new(
                    ErrorCode::Location40571,
                    "OP_MSG requests require a $db argument",
                ))
            }
        };
        Ok(Request { db, name, body, sequences })
    }

    /// The documents of an array field, given either in the body or as a document sequence.
    pub fn documents(&self, field: &str) -> Result<Vec<Document>> {
        let from_seq = self.sequences.iter().find(|(id, _)| id == field);
        match (self.body.get(field), from_seq) {
            (Some(_), Some(_)) => {
                Err(MongoError::bad_value(format!("Duplicate field {field} in body and document sequence")))
            }
            (None, Some((_, docs))) => Ok(docs.clone()),
            (Some(Bson::Array(a)), None) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Bson::Document(d) => Ok(d.clone()),
                    other => Err(MongoError::type_mismatch(format!(
                        "BSON field '{}.{field}.{i}' is the wrong type '{}', expected type 'object'",
                        self.name,
                        format::type_name(other)
                    ))),
                })
                .collect(),
            (Some(other), None) => Err(MongoError::type_mismatch(format!(
                "BSON field '{}.{field}' is the wrong type '{}', expected type 'array'",
                self.name,
                format::type_name(other)
            ))),
            (None, None) => Err(MongoError::new(
                ErrorCode::Location40414,
                format!("BSON field '{}.{field}' is missing but a required field", self.name),
            )),
        }
    }
}

/// What a handler gets: the shared server state, this thread's storage session and the
/// connection's state.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub store: &'a mut StoreSession,
    pub conn: &'a mut ConnState,
}

/// Runs one command and returns the complete reply document. When a fail point closes the
/// connection, `conn.close_requested` is set and the reply must not be sent.
pub fn dispatch(
    shared: &Arc<Shared>,
    store: &mut StoreSession,
    conn: &mut ConnState,
    req: Request,
) -> Document {
    let profiled = profile::begin(shared, &req, &req.name);
    let Some(pending) = profiled else {
        return dispatch_command(shared, store, conn, req);
    };
    let (db, name) = (req.db.clone(), req.name.clone());
    let reply = dispatch_command(shared, store, conn, req);
    profile::finish(shared, store, conn, &db, &name, pending, &reply);
    reply
}

fn dispatch_command(
    shared: &Arc<Shared>,
    store: &mut StoreSession,
    conn: &mut ConnState,
    req: Request,
) -> Document {
    shared.stats.command.fetch_add(1, Ordering::Relaxed);
    conn.raw_batch = None;
    let spec = registry::lookup(&req.name)
        .or_else(|| shared.config.enable_test_commands.then(|| registry::lookup_test(&req.name)).flatten());
    let Some(spec) = spec else {
        let err = MongoError::new(ErrorCode::CommandNotFound, format!("no such command: '{}'", req.name));
        return error_reply(shared, &err);
    };
    // The operation is visible to currentOp (and killable) from here to its reply.
    if let (Some(slot), Some(m)) = (&conn.slot, &conn.client_metadata) {
        if slot.metadata.get().is_none() {
            let _ = slot.metadata.set(m.clone());
        }
    }
    let target = match (spec.name, req.body.iter().next()) {
        ("getMore", _) => req.body.get_str("collection").ok(),
        (_, Some((_, Bson::String(c)))) => Some(c.as_str()),
        _ => None,
    };
    let ns = match target {
        Some(c) => format!("{}.{c}", req.db),
        None => format!("{}.$cmd", req.db),
    };
    let latency = target.and(crate::ops::latency_kind(spec.name));
    let started = std::time::Instant::now();
    let guard =
        shared.ops.begin(conn.slot.as_ref(), crate::ops::op_kind(spec.name), ns.clone(), req.body.clone());
    let reply = run_command(shared, store, conn, req, spec);
    drop(guard);
    if let Some(kind) = latency {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        shared.ops.record_latency(&ns, kind, micros);
    }
    // A dropped collection's counters go with it, as mongod's.
    if spec.name == "drop" {
        shared.ops.forget(&ns);
    }
    reply
}

fn run_command(
    shared: &Arc<Shared>,
    store: &mut StoreSession,
    conn: &mut ConnState,
    req: Request,
    spec: &'static registry::CommandSpec,
) -> Document {
    if let Err(e) = check_api_version(&req, spec.name).and_then(|_| check_read_concern(&req, spec.name)) {
        return error_reply(shared, &e);
    }
    if let Err(e) = crate::auth::check(shared, store, conn, spec.name, spec.pre_auth, &req) {
        return error_reply(shared, &e);
    }
    if let Some(e) = oplog_write(&req, spec.name) {
        return error_reply(shared, &e);
    }
    let info = match session::SessionInfo::parse(shared, spec.name, &req) {
        Ok(i) => i,
        Err(e) => return error_reply(shared, &e),
    };
    if let Some(id) = info.lsid {
        if !shared.sessions.touch(id, &conn.auth.users) {
            let err = MongoError::new(
                ErrorCode::TooManyLogicalSessions,
                "Unable to add session into the cache because the number of active sessions is too high",
            );
            return error_reply(shared, &err);
        }
    }
    let retryable = info.txn_number.is_some() && !info.in_txn;
    if let Some(e) = failpoint::max_time_always_times_out(shared, &req.body) {
        return error_reply(shared, &e);
    }
    let before = std::time::Instant::now();
    match failpoint::before_command(shared, conn, spec.name, spec.aliases, retryable, &req.body) {
        // Time a fail point blocked the command counts against its maxTimeMS, as in mongod.
        failpoint::Before::Run if failpoint::max_time_used(&req.body, before.elapsed()) => {
            let err = MongoError::new(ErrorCode::MaxTimeMSExpired, "operation exceeded time limit");
            return error_reply(shared, &err);
        }
        failpoint::Before::Run => {}
        failpoint::Before::Close => {
            conn.close_requested = true;
            return Document::new();
        }
        failpoint::Before::Fail(mut reply) => {
            if info.in_txn && !reply.contains_key("errorLabels") {
                let code = reply.get_i32("code").unwrap_or(0);
                if transaction::is_transient(code) {
                    reply.insert("errorLabels", vec![transaction::TRANSIENT]);
                } else if spec.name == "commitTransaction" && transaction::is_unknown_commit(code) {
                    reply.insert("errorLabels", vec![transaction::UNKNOWN_COMMIT]);
                }
            }
            append_cluster_time(shared, &mut reply);
            return reply;
        }
    }
    // A snapshot read outside a transaction reads as of one cluster time and reports it.
    // A cursor reads at its own snapshot: getMore/killCursors only repeat the readConcern.
    let continues_cursor = matches!(spec.name, "getMore" | "killCursors");
    let snapshot = match if continues_cursor { Ok(None) } else { snapshot_read(shared, &req) } {
        Ok(s) => s,
        Err(e) => return error_reply(shared, &e),
    };
    let read_at = crate::store::history::ReadAt::enter(snapshot.and_then(|s| s.1));
    conn.lsid = info.lsid;
    let mut ctx = Ctx { shared, store, conn };
    let result = match (info.lsid, info.txn_number) {
        (Some(lsid), Some(txn)) if info.in_txn => {
            transaction::run(&mut ctx, &req, spec, lsid, txn, info.start_transaction)
        }
        (Some(lsid), Some(txn)) => session::run_retryable(&mut ctx, &req, lsid, txn, spec.handler),
        _ => (spec.handler)(&mut ctx, &req),
    };
    ctx.conn.lsid = None;
    drop(read_at);
    let takes_wc = WRITE_CONCERN_COMMANDS.contains(&spec.name);
    match result {
        Ok(mut reply) => {
            if spec.name == "listDatabases" {
                if let Err(e) =
                    crate::auth::filter_list_databases(shared, ctx.store, ctx.conn, &req, &mut reply)
                {
                    return error_reply(shared, &e);
                }
            }
            if takes_wc {
                if let Some(wce) = args::write_concern_error(shared, &req.body) {
                    reply.insert("writeConcernError", wce);
                }
            }
            failpoint::after_command(shared, ctx.conn, spec.name, spec.aliases, takes_wc, &mut reply);
            if let Some((at, _)) = snapshot.filter(|_| spec.name != "explain") {
                match reply.get_document_mut("cursor") {
                    Ok(cursor) => {
                        cursor.insert("atClusterTime", at);
                    }
                    Err(_) => {
                        reply.insert("atClusterTime", at);
                    }
                }
            }
            if retryable && !reply.contains_key("errorLabels") {
                let wce_code =
                    reply.get_document("writeConcernError").ok().and_then(|w| w.get_i32("code").ok());
                if wce_code.is_some_and(crate::error::is_retryable_write_code) {
                    reply.insert("errorLabels", vec!["RetryableWriteError"]);
                }
            }
            finish(shared, reply)
        }
        Err(mut e) => {
            if retryable && crate::error::is_retryable_write_code(e.code.code()) {
                e.labels.push("RetryableWriteError".to_string());
            }
            if info.in_txn
                && spec.name == "commitTransaction"
                && transaction::is_unknown_commit(e.code.code())
                && e.labels.is_empty()
            {
                e.labels.push(transaction::UNKNOWN_COMMIT.to_string());
            }
            let mut reply = error_reply(shared, &e);
            // mongod waits for the write concern after a failed write too, and reports it.
            if takes_wc && !info.in_txn {
                if let Some(wce) = args::write_concern_error(shared, &req.body) {
                    reply.insert("writeConcernError", wce);
                }
            }
            reply
        }
    }
}

/// Commands that take a writeConcern; after they run, a concern one node cannot satisfy is
/// reported as mongod reports it (the write itself stands).
const WRITE_CONCERN_COMMANDS: &[&str] = &[
    "commitTransaction",
    "abortTransaction",
    "aggregate",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "create",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "renameCollection",
    "collMod",
];

fn finish(shared: &Shared, mut reply: Document) -> Document {
    if !reply.contains_key("ok") {
        reply.insert("ok", 1.0);
    }
    append_cluster_time(shared, &mut reply);
    reply
}

pub fn error_reply(shared: &Shared, err: &MongoError) -> Document {
    let mut reply = err.to_reply();
    append_cluster_time(shared, &mut reply);
    reply
}

/// Replica-set members gossip `$clusterTime` and report `operationTime` on every reply.
fn append_cluster_time(shared: &Shared, reply: &mut Document) {
    if !shared.is_replica_set() {
        return;
    }
    let ts = shared.store.clock.last();
    reply.insert(
        "$clusterTime",
        doc! {
            "clusterTime": ts,
            "signature": {
                "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
                "keyId": 0i64,
            },
        },
    );
    reply.insert("operationTime", ts);
}

/// Commands in the Stable API, version 1 (what `apiStrict: true` allows).
const API_V1: &[&str] = &[
    "abortTransaction",
    "aggregate",
    "authenticate",
    "bulkWrite",
    "collMod",
    "commitTransaction",
    "count",
    "create",
    "createIndexes",
    "delete",
    "drop",
    "dropDatabase",
    "dropIndexes",
    "endSessions",
    "explain",
    "find",
    "findAndModify",
    "getMore",
    "hello",
    "insert",
    "killCursors",
    "listCollections",
    "listDatabases",
    "listIndexes",
    "ping",
    "refreshSessions",
    "saslContinue",
    "saslStart",
    "update",
];

/// The Stable API parameters, checked as mongod checks them before running a command.
fn check_api_version(req: &Request, name: &str) -> Result<()> {
    let strict = matches!(req.body.get("apiStrict"), Some(Bson::Boolean(true)));
    match req.body.get("apiVersion") {
        None => {
            if req.body.contains_key("apiStrict") || req.body.contains_key("apiDeprecationErrors") {
                return Err(MongoError::new(
                    ErrorCode::Location4886600,
                    "Provided apiStrict and/or apiDeprecationErrors without passing apiVersion",
                ));
            }
            return Ok(());
        }
        Some(Bson::String(v)) if v == "1" => {}
        Some(Bson::String(v)) => {
            return Err(MongoError::new(
                ErrorCode::APIVersionError,
                format!("API version must be \"1\", not \"{v}\""),
            ))
        }
        Some(other) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'apiVersion' is the wrong type '{}', expected type 'string'",
                format::type_name(other)
            )))
        }
    }
    if strict && !API_V1.contains(&name) {
        return Err(MongoError::new(
            ErrorCode::APIStrictError,
            format!(
                "Provided apiStrict:true, but the command {name} is not in API Version 1. Information on supported commands and migrations in API Version 1 can be found at https://dochub.mongodb.org/core/manual-versioned-api."
            ),
        ));
    }
    if strict && name == "aggregate" {
        if let Some(Bson::Array(stages)) = req.body.get("pipeline") {
            for st in stages {
                let Bson::Document(st) = st else { continue };
                let Some(stage) = st.keys().next() else { continue };
                if NOT_IN_API_V1_STAGES.contains(&stage.as_str()) {
                    return Err(MongoError::new(
                        ErrorCode::APIStrictError,
                        format!("{stage} is not allowed with 'apiStrict: true' in API Version 1"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Aggregation stages outside the Stable API (refused under `apiStrict: true`).
const NOT_IN_API_V1_STAGES: &[&str] = &[
    "$currentOp",
    "$indexStats",
    "$listLocalSessions",
    "$listSessions",
    "$planCacheStats",
    "$search",
    "$searchMeta",
    "$listSearchIndexes",
];

/// The commands that take `readConcern: {level: "snapshot"}` outside a transaction.
const SNAPSHOT_READS: &[&str] = &["find", "aggregate", "distinct", "explain"];

/// A snapshot read outside a transaction: the cluster time its reply names and the read
/// timestamp it uses (none before anything was written).
fn snapshot_read(shared: &Shared, req: &Request) -> Result<Option<(bson::Timestamp, Option<u64>)>> {
    let Some(Bson::Document(rc)) = req.body.get("readConcern") else { return Ok(None) };
    if rc.get_str("level") != Ok("snapshot") || req.body.get("autocommit") == Some(&Bson::Boolean(false)) {
        return Ok(None);
    }
    let ts = shared.store.snapshot_timestamp(at_cluster_time(rc)?)?;
    let reported = ts.map_or_else(|| shared.store.clock.last(), |t| crate::oplog::unpack(t as i64));
    Ok(Some((reported, ts)))
}

/// `readConcern.atClusterTime`, which must be a timestamp.
pub fn at_cluster_time(rc: &Document) -> Result<Option<bson::Timestamp>> {
    match rc.get("atClusterTime") {
        None => Ok(None),
        Some(Bson::Timestamp(t)) => Ok(Some(*t)),
        Some(other) => Err(MongoError::type_mismatch(format!(
            "BSON field 'readConcern.atClusterTime' is the wrong type '{}', expected type 'timestamp'",
            format::type_name(other)
        ))),
    }
}

/// `readConcern` must name a known level (a single node answers every level itself), and
/// `snapshot` outside a transaction only on the reads that support it.
fn check_read_concern(req: &Request, name: &str) -> Result<()> {
    let rc = match req.body.get("readConcern") {
        None => return Ok(()),
        Some(Bson::Document(d)) => d,
        Some(other) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'readConcern' is the wrong type '{}', expected type 'object'",
                format::type_name(other)
            )))
        }
    };
    let in_txn = req.body.get("autocommit") == Some(&Bson::Boolean(false));
    match rc.get("level") {
        None => Ok(()),
        // Drivers repeat a snapshot session's readConcern on the cursor's getMore/killCursors.
        Some(Bson::String(l))
            if l == "snapshot"
                && !in_txn
                && !SNAPSHOT_READS.contains(&name)
                && !matches!(name, "getMore" | "killCursors") =>
        {
            Err(MongoError::new(
                ErrorCode::InvalidOptions,
                format!("Command {name} does not support readConcern level 'snapshot' outside a transaction"),
            ))
        }
        Some(Bson::String(l))
            if matches!(l.as_str(), "local" | "majority" | "linearizable" | "available" | "snapshot") =>
        {
            Ok(())
        }
        Some(Bson::String(l)) => Err(MongoError::bad_value(format!(
            "Enumeration value '{l}' for field 'readConcern.level' is not a valid value."
        ))),
        Some(other) => Err(MongoError::type_mismatch(format!(
            "BSON field 'readConcern.level' is the wrong type '{}', expected type 'string'",
            format::type_name(other)
        ))),
    }
}

/// `local.oplog.rs` is read-only to clients.
fn oplog_write(req: &Request, name: &str) -> Option<MongoError> {
    let target = req.body.get(name).and_then(Bson::as_str);
    let renaming_oplog = name == "renameCollection" && target == Some(crate::store::OPLOG_NS);
    // aggregate takes a writeConcern for $out/$merge, but reading the oplog is allowed.
    let writes = WRITE_CONCERN_COMMANDS.contains(&name) && name != "aggregate";
    if (req.db == "local" && target == Some("oplog.rs") && writes) || renaming_oplog {
        return Some(MongoError::new(
            ErrorCode::Unauthorized,
            format!("not authorized on local to execute command {{ {name}: \"oplog.rs\" }}: the oplog is read-only"),
        ));
    }
    None
}
