//! getMore and killCursors, and the cursor reply shape shared by every cursor command.

use super::{args, Ctx, Request};
use crate::cursors::{ClientCursor, CursorSource};
use crate::error::{ErrorCode, MongoError, Result};
use crate::net::wire::MAX_BSON_OBJECT_SIZE;
use crate::query::exec::Batch;
use bson::{doc, Bson, Document};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// mongod's default size of a first batch.
pub const DEFAULT_FIRST_BATCH: usize = 101;
/// Room left in a 16 MiB reply for the reply's own fields.
pub const BATCH_BYTES: usize = MAX_BSON_OBJECT_SIZE - 64 * 1024;

pub fn cursor_reply(ns: &str, id: i64, batch: Vec<Document>, first: bool) -> Document {
    let key = if first { "firstBatch" } else { "nextBatch" };
    doc! { "cursor": { key: batch, "id": id, "ns": ns } }
}

/// A cursor reply for a batch that may be stored BSON: raw documents wait on the connection
/// and are spliced into the encoded reply (see `net::splice`).
pub fn batch_reply(ctx: &mut Ctx, ns: &str, id: i64, batch: Batch, first: bool) -> Document {
    match batch {
        Batch::Docs(docs) => cursor_reply(ns, id, docs, first),
        Batch::Raw(raw) => {
            ctx.conn.raw_batch = Some(raw);
            cursor_reply(ns, id, Vec::new(), first)
        }
    }
}

/// Next batch from any cursor source.
pub fn next_batch(ctx: &mut Ctx, source: &mut CursorSource, max_docs: usize) -> Result<(Batch, bool)> {
    match source {
        CursorSource::Exec(exec) => {
            let batch = exec.next_batch(ctx.store, max_docs, BATCH_BYTES)?;
            // mongod stops a full batch without looking further, so it learns of the end only
            // on the next getMore (which drivers count): only a short batch or a met limit
            // closes the cursor.
            let done = exec.limit_reached() || (exec.is_exhausted() && batch.len() < max_docs);
            Ok((batch, done))
        }
        CursorSource::ChangeStream(cs) => {
            let batch = cs.next_batch(ctx.store, max_docs)?;
            Ok((Batch::Docs(batch), cs.is_finished()))
        }
        CursorSource::Pipeline(p) => {
            let (batch, done) = p.next_batch(ctx.store, max_docs, BATCH_BYTES)?;
            let done = done && batch.len() < max_docs;
            Ok((Batch::Docs(batch), done))
        }
        CursorSource::Buffered(docs) => {
            let mut out = Vec::new();
            let mut bytes = 0;
            while out.len() < max_docs {
                let Some(d) = docs.front() else { break };
                let size = crate::query::exec::bson_size(d);
                if !out.is_empty() && bytes + size > BATCH_BYTES {
                    break;
                }
                bytes += size;
                if let Some(d) = docs.pop_front() {
                    out.push(d);
                }
            }
            Ok((Batch::Docs(out), docs.is_empty()))
        }
    }
}

/// `cursor.batchSize` of aggregate / listCollections / listIndexes.
pub fn cursor_batch_size(req: &Request) -> Result<Option<usize>> {
    match req.body.get("cursor") {
        None => Ok(None),
        Some(Bson::Document(c)) => match c.get("batchSize") {
            None => Ok(None),
            Some(Bson::Int32(n)) if *n >= 0 => Ok(Some(*n as usize)),
            Some(Bson::Int64(n)) if *n >= 0 => Ok(Some(*n as usize)),
            Some(Bson::Double(n)) if *n >= 0.0 => Ok(Some(*n as usize)),
            Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => {
                Err(MongoError::new(ErrorCode::Location51024, "BSON field 'batchSize' value must be >= 0"))
            }
            Some(_) => Err(MongoError::type_mismatch("BSON field 'cursor.batchSize' is the wrong type")),
        },
        Some(_) => Err(MongoError::type_mismatch(format!(
            "BSON field '{}.cursor' is the wrong type, expected type 'object'",
            req.name
        ))),
    }
}

/// Starts a cursor over `source`: returns the first batch and registers the rest.
pub fn open_cursor(
    ctx: &mut Ctx,
    ns: String,
    source: CursorSource,
    first_batch: usize,
    later_batch: Option<usize>,
    single_batch: bool,
) -> Result<Document> {
    open_cursor_full(ctx, ns, source, first_batch, later_batch, single_batch, None, false)
}

/// As `open_cursor`; `tailable` = Some(await_data) keeps the cursor open at the end, and
/// `no_timeout` exempts it from the idle timeout.
#[allow(clippy::too_many_arguments)]
pub fn open_cursor_full(
    ctx: &mut Ctx,
    ns: String,
    mut source: CursorSource,
    first_batch: usize,
    later_batch: Option<usize>,
    single_batch: bool,
    tailable: Option<bool>,
    no_timeout: bool,
) -> Result<Document> {
    let (batch, exhausted) = next_batch(ctx, &mut source, first_batch)?;
    let id = if (exhausted && tailable.is_none()) || single_batch {
        0
    } else {
        let id = ctx.shared.cursors.register(
            ns.clone(),
            source,
            later_batch,
            no_timeout,
            ctx.conn.id,
            ctx.conn.lsid,
        );
        ctx.shared.cursors.set_owners(id, ctx.conn.auth.users.clone(), ctx.conn.auth.checked.clone());
        if let (Some(await_data), Some(c)) = (tailable, ctx.shared.cursors.get(id)) {
            let mut c = c.lock();
            c.tailable = true;
            c.await_data = await_data;
        }
        id
    };
    Ok(batch_reply(ctx, &ns, id, batch, true))
}

/// A catalog listing as a cursor (`listCollections`, `listIndexes`).
pub fn single_batch_cursor(
    ctx: &mut Ctx,
    req: &Request,
    ns: String,
    docs: Vec<Document>,
) -> Result<Document> {
    let bs = cursor_batch_size(req)?;
    open_cursor(ctx, ns, CursorSource::Buffered(docs.into()), bs.unwrap_or(usize::MAX), None, false)
}

/// mongod's default wait of an awaitData getMore without maxTimeMS.
const DEFAULT_AWAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A getMore on a tailable cursor: whatever arrived since the last batch; with awaitData,
/// waits (up to maxTimeMS) for a commit when nothing has. Tailable cursors stay open.
fn tail(ctx: &mut Ctx, req: &Request, c: &mut ClientCursor, max_docs: usize) -> Result<(Batch, bool)> {
    let wait = match args::opt_i64(req, "maxTimeMS")? {
        Some(ms) if ms > 0 => std::time::Duration::from_millis(ms as u64),
        _ => DEFAULT_AWAIT,
    };
    let deadline = Instant::now() + wait;
    loop {
        let seen = ctx.shared.store.group_commit.commit_count();
        if let CursorSource::Exec(exec) = &mut c.source {
            exec.rearm();
        }
        let (batch, exhausted) = next_batch(ctx, &mut c.source, max_docs)?;
        // Only a change stream ends (after an invalidate); other tailable cursors stay open.
        let ended = exhausted && matches!(c.source, CursorSource::ChangeStream(_));
        let now = Instant::now();
        if !batch.is_empty() || ended || !c.await_data || now >= deadline {
            return Ok((batch, ended));
        }
        if !ctx.shared.store.group_commit.wait_for_commit_after(seen, deadline - now) {
            return Ok((Batch::Docs(Vec::new()), false));
        }
    }
}

/// A cursor opened in a session may only be continued in that session (mongod's
/// validateLSID, with or without `--auth`).
fn check_session(ctx: &Ctx, id: i64, owner: &crate::cursors::Owner) -> Result<()> {
    let Some(created) = owner.lsid else { return Ok(()) };
    let shown = crate::auth::session_display(created, &owner.users);
    match ctx.conn.lsid {
        None => Err(MongoError::new(
            ErrorCode::Location50737,
            format!(
                "Cannot run getMore on cursor {id}, which was created in session {shown}, without an lsid"
            ),
        )),
        Some(now) if now != created => Err(MongoError::new(
            ErrorCode::Location50738,
            format!(
                "Cannot run getMore on cursor {id}, which was created in session {shown}, in session {}",
                crate::auth::session_display(now, &ctx.conn.auth.users)
            ),
        )),
        Some(_) => Ok(()),
    }
}

pub fn get_more(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    ctx.shared.stats.getmore.fetch_add(1, Ordering::Relaxed);
    let id = match req.body.get("getMore") {
        Some(Bson::Int64(n)) => *n,
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'getMore.getMore' is the wrong type '{}', expected type 'long'",
                super::format::type_name(v)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'getMore.getMore' is missing but a required field",
            ))
        }
    };
    let coll = match req.body.get("collection") {
        Some(Bson::String(s)) => s.clone(),
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'getMore.collection' is the wrong type '{}', expected type 'string'",
                super::format::type_name(v)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'getMore.collection' is missing but a required field",
            ))
        }
    };
    let batch_size = match args::opt_i64(req, "batchSize")? {
        Some(n) if n < 0 => {
            return Err(MongoError::new(
                ErrorCode::Location51024,
                format!("BSON field 'batchSize' value must be >= 0, actual value '{n}'"),
            ))
        }
        Some(0) | None => None,
        Some(n) => Some(n as usize),
    };
    let ns = format!("{}.{}", req.db, coll);
    let (Some(cursor), Some(owner)) = (ctx.shared.cursors.get(id), ctx.shared.cursors.owner(id)) else {
        return Err(MongoError::new(ErrorCode::CursorNotFound, format!("cursor id {id} not found")));
    };
    if !crate::auth::coauthorized(ctx.shared, ctx.conn, &owner.users) {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            format!("cursor id {id} was not created by the authenticated user"),
        ));
    }
    if !crate::auth::may_continue(ctx.shared, ctx.store, ctx.conn, &owner.privileges)? {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            format!("not authorized for getMore with cursor id {id}"),
        ));
    }
    let Some(mut c) = cursor.try_lock() else {
        return Err(MongoError::new(
            ErrorCode::OperationFailed,
            format!("Cursor already in use (namespace: '{ns}', id: {id})."),
        ));
    };
    let _collation = crate::query::collation::Scope::enter(c.collation.clone());
    let _read_at = crate::store::history::ReadAt::enter(c.read_at);
    if c.ns != ns {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            format!(
                "Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {}",
                c.ns
            ),
        ));
    }
    check_session(ctx, id, &owner)?;
    let c: &mut ClientCursor = &mut c;
    let is_stream = matches!(c.source, CursorSource::ChangeStream(_));
    if let Some(reply) = super::failpoint::get_more_after_checkout(ctx.shared, is_stream) {
        return Ok(reply);
    }
    if matches!(&c.source, CursorSource::Exec(e) if e.time_left.is_some()) {
        if let Some(e) = super::failpoint::max_time_expires(ctx.shared) {
            ctx.shared.cursors.remove(id);
            return Err(e);
        }
    }
    let max_docs = batch_size.or(c.batch_size).unwrap_or(usize::MAX);
    let result =
        if c.tailable { tail(ctx, req, c, max_docs) } else { next_batch(ctx, &mut c.source, max_docs) };
    c.last_used = Instant::now();
    let (batch, exhausted) = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.shared.cursors.remove(id);
            return Err(e);
        }
    };
    let resume_token = match &c.source {
        CursorSource::ChangeStream(cs) => Some(cs.resume_token()),
        _ => None,
    };
    let out_id = if exhausted {
        ctx.shared.cursors.remove(id);
        0
    } else {
        id
    };
    let mut reply = batch_reply(ctx, &ns, out_id, batch, false);
    if let (Some(t), Ok(cur)) = (resume_token, reply.get_document_mut("cursor")) {
        cur.insert("postBatchResumeToken", t);
    }
    Ok(reply)
}

pub fn kill_cursors(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    // Database and cluster change streams live on `$cmd.aggregate`, which is not a valid
    // collection name for writes but is for killCursors.
    let coll = match req.body.get("killCursors") {
        Some(Bson::String(s)) if s.starts_with("$cmd.") => s.clone(),
        _ => args::collection(req)?,
    };
    let ns = format!("{}.{}", req.db, coll);
    let ids = match req.body.get("cursors") {
        Some(Bson::Array(a)) => a,
        Some(_) => {
            return Err(MongoError::type_mismatch(
                "BSON field 'killCursors.cursors' is the wrong type, expected type 'array'",
            ))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'killCursors.cursors' is missing but a required field",
            ))
        }
    };
    let mut wanted = Vec::with_capacity(ids.len());
    for v in ids {
        let Bson::Int64(id) = v else {
            return Err(MongoError::type_mismatch(
                "BSON field 'killCursors.cursors' element is the wrong type, expected type 'long'",
            ));
        };
        wanted.push(*id);
    }
    // Every cursor is authorized before any is killed: one that belongs to another user
    // fails the whole command (mongod: its owner, or killAnyCursor on its namespace).
    for id in &wanted {
        if let Some(owner) = ctx.shared.cursors.owner(*id) {
            if !crate::auth::may_kill_cursor(ctx.shared, ctx.store, ctx.conn, &owner, &ns)? {
                return Err(MongoError::new(
                    ErrorCode::Unauthorized,
                    format!("not authorized to kill cursor on {}", owner.ns.as_deref().unwrap_or(&ns)),
                ));
            }
        }
    }
    let (mut killed, mut not_found) = (Vec::new(), Vec::new());
    for id in &wanted {
        let belongs = ctx.shared.cursors.get(*id).is_some_and(|c| c.try_lock().is_none_or(|c| c.ns == ns));
        if belongs && ctx.shared.cursors.remove(*id).is_some() {
            killed.push(Bson::Int64(*id));
        } else {
            not_found.push(Bson::Int64(*id));
        }
    }
    Ok(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
    })
}
