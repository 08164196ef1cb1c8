//! `currentOp`, `killOp` and the `$currentOp` stage: the operations in progress on every
//! connection (`crate::ops`), in mongod's shape.

use super::{Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};
use std::time::Instant;

/// The `$currentOp` options mongod takes (all booleans).
pub struct Options {
    pub idle_connections: bool,
    pub idle_sessions: bool,
    pub idle_cursors: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { idle_connections: false, idle_sessions: true, idle_cursors: false }
    }
}

pub fn parse_options(spec: &Bson) -> Result<Options> {
    let Bson::Document(d) = spec else {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            format!(
                "$currentOp options must be specified in an object, but found: {}",
                crate::query::util::type_name(spec)
            ),
        ));
    };
    let mut o = Options::default();
    for (k, v) in d {
        match k.as_str() {
            "allUsers" | "idleConnections" | "idleCursors" | "idleSessions" | "localOps" | "backtrace"
            | "truncateOps" | "targetAllNodes" => {
                let Bson::Boolean(b) = v else {
                    return Err(MongoError::new(
                        ErrorCode::FailedToParse,
                        format!(
                            "The '{k}' parameter of the $currentOp stage must be a boolean value, but found: {}",
                            crate::query::util::type_name(v)
                        ),
                    ));
                };
                match k.as_str() {
                    "idleConnections" => o.idle_connections = *b,
                    "idleSessions" => o.idle_sessions = *b,
                    "idleCursors" => o.idle_cursors = *b,
                    _ => {}
                }
            }
            other => {
                return Err(MongoError::new(
                    ErrorCode::FailedToParse,
                    format!("Unrecognized option '{other}' in $currentOp stage."),
                ))
            }
        }
    }
    Ok(o)
}

/// The documents `$currentOp` produces: every active operation, and idle connections when
/// asked.
pub fn documents(ctx: &Ctx, opts: &Options) -> Vec<Document> {
    let now = Instant::now();
    let mut out: Vec<Document> = ctx
        .shared
        .ops
        .connections()
        .iter()
        .map(|s| crate::ops::describe(s, &ctx.shared.me, now))
        .filter(|d| opts.idle_connections || d.get_bool("active").unwrap_or(false))
        .collect();
    if opts.idle_sessions {
        out.extend(idle_sessions(ctx, now));
    }
    if opts.idle_cursors {
        out.extend(idle_cursors(ctx));
    }
    out
}

/// Open cursors between getMores, as mongod's `idleCursor`s.
fn idle_cursors(ctx: &Ctx) -> Vec<Document> {
    let wall_now = bson::DateTime::now().timestamp_millis();
    ctx.shared
        .cursors
        .idle()
        .into_iter()
        .map(|c| {
            let last = wall_now - i64::try_from(c.idle.as_millis()).unwrap_or(0);
            let mut d = doc! { "type": "idleCursor", "host": ctx.shared.me.clone(), "ns": c.ns };
            if let Some(l) = c.lsid {
                d.insert("lsid", l.to_lsid());
            }
            d.insert(
                "cursor",
                doc! {
                    "cursorId": c.id,
                    "lastAccessDate": bson::DateTime::from_millis(last),
                    "noCursorTimeout": c.no_timeout,
                    "tailable": c.tailable,
                    "awaitData": c.await_data,
                },
            );
            d
        })
        .collect()
}

/// Sessions holding an open transaction between statements, as mongod's `idleSession`s.
fn idle_sessions(ctx: &Ctx, now: Instant) -> Vec<Document> {
    let uid = bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: ring::digest::digest(&ring::digest::SHA256, b"").as_ref().to_vec(),
    };
    let wall_now = bson::DateTime::now().timestamp_millis();
    let lifetime_ms =
        i64::try_from(ctx.shared.config.transaction_lifetime_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut list = ctx.shared.sessions.idle_transactions();
    list.sort_by_key(|(_, _, started)| *started);
    list.into_iter()
        .map(|(id, txn, started)| {
            let open = now.saturating_duration_since(started);
            let start_ms = wall_now - i64::try_from(open.as_millis()).unwrap_or(0);
            let iso = |ms: i64| bson::DateTime::from_millis(ms).try_to_rfc3339_string().unwrap_or_default();
            doc! {
                "type": "idleSession",
                "host": ctx.shared.me.clone(),
                "desc": "inactive transaction",
                "lsid": { "id": id.to_bson(), "uid": uid.clone() },
                "transaction": {
                    "parameters": { "txnNumber": txn, "autocommit": false },
                    "startWallClockTime": iso(start_ms),
                    "timeOpenMicros": i64::try_from(open.as_micros()).unwrap_or(i64::MAX),
                    "expiryTime": iso(start_ms.saturating_add(lifetime_ms)),
                },
                "waitingForLock": false,
                "active": false,
                "locks": {},
                "lockStats": {},
            }
        })
        .collect()
}

/// A leading `$currentOp` becomes its documents; it needs `{aggregate: 1}` on admin.
pub fn rewrite(ctx: &Ctx, req: &Request, pipeline: &mut [Bson]) -> Result<()> {
    let Some(Bson::Document(first)) = pipeline.first() else { return Ok(()) };
    let Some(spec) = first.get("$currentOp") else { return Ok(()) };
    if req.db != "admin"
        || !matches!(req.body.get("aggregate"), Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)))
    {
        return Err(MongoError::new(
            ErrorCode::InvalidNamespace,
            "$currentOp must be run against the 'admin' database with {aggregate: 1}",
        ));
    }
    let opts = parse_options(spec)?;
    let docs: Vec<Bson> = documents(ctx, &opts).into_iter().map(Bson::Document).collect();
    pipeline[0] = Bson::Document(doc! { "$documents": { "$literal": docs } });
    Ok(())
}

/// currentOp: `$currentOp` (idle connections with `$all`) filtered by the other fields.
pub fn current_op(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    admin_only(req, "currentOp")?;
    let mut filter = Document::new();
    let mut opts = Options::default();
    for (k, v) in &req.body {
        match k.as_str() {
            "currentOp"
            | "$ownOps"
            | "lsid"
            | "comment"
            | "$readPreference"
            | "$clusterTime"
            | "$db"
            | "apiVersion"
            | "apiStrict"
            | "apiDeprecationErrors" => {}
            "$all" => opts.idle_connections = v.as_bool().unwrap_or(false),
            _ => {
                filter.insert(k.clone(), v.clone());
            }
        }
    }
    let m = crate::query::matcher::Matcher::parse(&filter)?;
    let inprog: Vec<Bson> =
        documents(ctx, &opts).into_iter().filter(|d| m.matches(d)).map(Bson::Document).collect();
    Ok(doc! { "inprog": inprog, "ok": 1.0 })
}

/// killOp: marks the operation killed; it stops with 11601 at its next interrupt check.
pub fn kill_op(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    admin_only(req, "killOp")?;
    let op = req
        .body
        .get("op")
        .ok_or_else(|| MongoError::new(ErrorCode::NoSuchKey, "Did not provide \"op\" field"))?;
    let opid = crate::query::util::exact_i64(op)
        .filter(|_| crate::query::util::is_number(op))
        .ok_or_else(|| MongoError::type_mismatch("killOp: the 'op' field must be a number"))?;
    if let Ok(id) = u32::try_from(opid) {
        if ctx.shared.ops.kill(id) {
            log::info!("going to kill op {id}");
        }
    }
    Ok(doc! { "info": "attempting to kill op", "ok": 1.0 })
}

fn admin_only(req: &Request, name: &str) -> Result<()> {
    if req.db != "admin" {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            format!("{name} may only be run against the admin database."),
        ));
    }
    Ok(())
}
