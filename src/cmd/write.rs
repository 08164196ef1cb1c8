//! insert, update and delete. Each statement's document changes go through the store's write
//! path (record + indexes + oplog in one transaction, retried on conflicts); `j: true` (or the
//! replica set's default majority) flushes the journal once before the reply.

use super::{args, session, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::net::wire::MAX_BSON_OBJECT_SIZE;
use crate::oplog;
use crate::query::exec::{bson_size, Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::multiplan;
use crate::query::update::{self, UpdateSpec};
use crate::retry_history::Slot;
use crate::store::{Collection, StoreError};
use bson::{doc, oid::ObjectId, Bson, Document};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const MAX_BATCH: usize = 100_000;
/// Documents inserted per transaction when a batch has no errors.
const INSERT_GROUP: usize = 64;

fn check_batch_len(n: usize) -> Result<()> {
    if n == 0 || n > MAX_BATCH {
        return Err(MongoError::new(
            ErrorCode::InvalidLength,
            format!("Write batch sizes must be between 1 and {MAX_BATCH}. Got {n} operations."),
        ));
    }
    Ok(())
}

/// Gives a document its `_id` (first, as mongod does) and checks what mongod checks.
pub fn prepare_insert(mut d: Document) -> Result<Document> {
    match d.get("_id") {
        None => {
            let mut with_id = doc! { "_id": ObjectId::new() };
            with_id.extend(d);
            d = with_id;
        }
        Some(Bson::Array(_)) => {
            return Err(MongoError::new(ErrorCode::InvalidIdField, "The '_id' value cannot be of type array"))
        }
        Some(Bson::RegularExpression(_)) => {
            return Err(MongoError::new(ErrorCode::InvalidIdField, "can't use a regex for _id"))
        }
        Some(Bson::Undefined) => {
            return Err(MongoError::new(ErrorCode::InvalidIdField, "can't use a undefined for _id"))
        }
        Some(id) => {
            if let Bson::Document(d) = id {
                check_id_storage(d)?;
            }
            // mongod stores _id as the first field.
            if d.keys().next().map(String::as_str) != Some("_id") {
                let id = d.remove("_id").unwrap_or(Bson::Null);
                let mut with_id = doc! { "_id": id };
                with_id.extend(d);
                d = with_id;
            }
        }
    }
    let size = bson_size(&d);
    if size > MAX_BSON_OBJECT_SIZE {
        return Err(MongoError::new(
            ErrorCode::BSONObjectTooLarge,
            format!("object to insert too large. size in bytes: {size}, max size: {MAX_BSON_OBJECT_SIZE}"),
        ));
    }
    Ok(d)
}

/// `_id` sub-documents may not hold `$`-prefixed fields (they could not be queried).
fn check_id_storage(d: &Document) -> Result<()> {
    for (k, v) in d {
        if k.starts_with('$') {
            return Err(MongoError::new(
                ErrorCode::DollarPrefixedFieldName,
                format!("_id fields may not contain '$'-prefixed fields: {k} is not valid for storage."),
            ));
        }
        if let Bson::Document(sub) = v {
            check_id_storage(sub)?;
        }
    }
    Ok(())
}

/// Document validation (the collection's `validator`), as mongod applies it: skipped when
/// bypassed or `validationLevel: "off"`; with `"moderate"` an update of a document that
/// already failed validation is allowed; `validationAction: "warn"` only logs.
pub fn validate_document(
    coll: &Collection,
    doc: &Document,
    old: Option<&Document>,
    bypass: bool,
) -> Result<()> {
    super::timeseries::check_measurement(coll, doc)?;
    let Some(v) = &coll.validator else {
        return Ok(());
    };
    let level = coll.options.get_str("validationLevel").unwrap_or("strict");
    if bypass || level == "off" {
        return Ok(());
    }
    if level == "moderate" && old.is_some_and(|o| !v.matches(o)) {
        return Ok(());
    }
    if v.matches(doc) {
        return Ok(());
    }
    if coll.options.get_str("validationAction").unwrap_or("error") == "warn" {
        log::warn!("Document would fail validation: collection {}", coll.ns);
        return Ok(());
    }
    // A validator that is one `$jsonSchema` reports that operator, as mongod's details do.
    let schema_only =
        coll.options.get_document("validator").is_ok_and(|v| v.len() == 1 && v.contains_key("$jsonSchema"));
    let operator = if schema_only { "$jsonSchema" } else { "$and" };
    Err(MongoError::new(ErrorCode::DocumentValidationFailure, "Document failed validation").with_info(doc! {
        "errInfo": {
            "failingDocumentId": doc.get("_id").cloned().unwrap_or(Bson::Null),
            "details": { "operatorName": operator, "schemaRulesNotSatisfied": [] },
        }
    }))
}

struct WriteOutcome {
    n: usize,
    errors: Vec<Document>,
}

/// Inserts one document; `saved` is a retryable statement's history row, stored with it.
fn insert_one(
    ctx: &mut Ctx,
    db: &str,
    coll: &str,
    d: &Document,
    bypass: bool,
    saved: Option<(Slot, &Document)>,
) -> Result<()> {
    ctx.store
        .write_collection(db, coll, true, false, |t, c| {
            validate_document(c, d, None, bypass)?;
            t.insert(c, d)?;
            if let Some((slot, result)) = &saved {
                slot.put(t, result)?;
            }
            Ok(())
        })
        .map(|_| ())
        .map_err(MongoError::from)
}

/// One document of an insert batch.
enum InsertItem {
    Ready(Document),
    Invalid(MongoError),
    /// Already inserted by an earlier attempt of this retryable write.
    Done,
}

pub fn insert(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll = args::collection(req)?;
    super::views::refuse_write(ctx, &req.db, &coll)?;
    let docs = req.documents("documents")?;
    check_batch_len(docs.len())?;
    let ordered = args::opt_bool(req, "ordered")?.unwrap_or(true);
    let durable = args::journal_required(ctx, req)?;
    let bypass = args::opt_bool(req, "bypassDocumentValidation")?.unwrap_or(false);
    let mut out = WriteOutcome { n: 0, errors: Vec::new() };
    let mut items = Vec::with_capacity(docs.len());
    for (i, d) in docs.into_iter().enumerate() {
        items.push(if session::retried(ctx, session::stmt_id(req, i)).is_some() {
            InsertItem::Done
        } else {
            match prepare_insert(d) {
                Ok(d) => InsertItem::Ready(d),
                Err(e) => InsertItem::Invalid(e),
            }
        });
    }
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            InsertItem::Done => {
                out.n += 1;
                i += 1;
                continue;
            }
            InsertItem::Invalid(e) => {
                out.errors.push(e.to_write_error(i));
                if ordered {
                    return finish_insert(ctx, durable, out);
                }
                i += 1;
                continue;
            }
            InsertItem::Ready(_) => {}
        }
        // A run of valid documents goes in as one transaction; on any error the run is
        // redone one by one to find which document failed. Under a fail point that acts on
        // each statement of a retryable write, statements go one by one.
        let per_statement = ctx.conn.retry.is_some() && ctx.shared.failpoints.any_active();
        if per_statement {
            if let Err(e) = session::before_statement(ctx) {
                out.errors.push(e.to_write_error(i));
                if ordered {
                    return finish_insert(ctx, durable, out);
                }
                i += 1;
                continue;
            }
        }
        let limit = items.len().min(i + if per_statement { 1 } else { INSERT_GROUP });
        let end = (i..limit).find(|j| !matches!(items[*j], InsertItem::Ready(_))).unwrap_or(limit);
        let group: Vec<&Document> = items[i..end]
            .iter()
            .filter_map(|it| match it {
                InsertItem::Ready(d) => Some(d),
                _ => None,
            })
            .collect();
        // Each statement's history row goes in with its document.
        let slots: Vec<Slot> =
            (i..end).filter_map(|k| session::slot(ctx, session::stmt_id(req, k))).collect();
        let empty = Document::new();
        let grouped = ctx.store.write_collection(&req.db, &coll, true, false, |t, c| {
            for d in &group {
                validate_document(c, d, None, bypass)?;
                t.insert(c, d)?;
            }
            crate::retry_history::put_all(t, &slots, &empty)
        });
        match grouped {
            Ok(_) => {
                out.n += group.len();
                for k in i..end {
                    session::record_saved(ctx, session::stmt_id(req, k), Document::new());
                }
            }
            Err(StoreError::Engine(e)) => return Err(StoreError::Engine(e).into()),
            Err(_) => {
                for (k, d) in group.iter().enumerate() {
                    let sid = session::stmt_id(req, i + k);
                    let slot = session::slot(ctx, sid);
                    match insert_one(ctx, &req.db, &coll, d, bypass, slot.map(|s| (s, &empty))) {
                        Ok(()) => {
                            out.n += 1;
                            session::record_saved(ctx, sid, Document::new());
                        }
                        Err(e) => {
                            out.errors.push(e.to_write_error(i + k));
                            if ordered {
                                return finish_insert(ctx, durable, out);
                            }
                        }
                    }
                }
            }
        }
        i = end;
    }
    finish_insert(ctx, durable, out)
}

fn finish_insert(ctx: &mut Ctx, durable: bool, out: WriteOutcome) -> Result<Document> {
    ctx.shared.stats.insert.fetch_add(out.n as u64, Ordering::Relaxed);
    if durable {
        ctx.store.flush_journal()?;
    }
    let mut reply = doc! { "n": out.n as i32 };
    if !out.errors.is_empty() {
        reply.insert("writeErrors", out.errors);
    }
    session::append_retried(ctx, &mut reply);
    Ok(reply)
}

/// One parsed update statement.
pub struct UpdateStmt {
    pub filter: Document,
    pub matcher: Matcher,
    pub spec: UpdateSpec,
    pub upsert: bool,
    pub multi: bool,
    pub hint: Option<Bson>,
    /// The statement's `collation` argument.
    pub collation: Option<Bson>,
    /// bypassDocumentValidation of the command.
    pub bypass: bool,
    /// A single-document retryable statement's history row, stored with its write (the
    /// result the update command reports).
    pub history: Option<Slot>,
}

/// Fields an update statement may carry (7.0; `sort` arrived in 8.0).
const UPDATE_STMT_FIELDS: &[&str] =
    &["q", "u", "c", "upsert", "multi", "arrayFilters", "hint", "collation", "upsertSupplied", "sampleId"];
const DELETE_STMT_FIELDS: &[&str] = &["q", "limit", "hint", "collation", "sampleId"];

fn check_stmt_fields(cmd: &str, array: &str, stmt: &Document, known: &[&str]) -> Result<()> {
    match stmt.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(MongoError::new(
            ErrorCode::Location40415,
            format!("BSON field '{cmd}.{array}.{k}' is an unknown field."),
        )),
        None => Ok(()),
    }
}

pub fn parse_update_stmt(u: &Document) -> Result<UpdateStmt> {
    check_stmt_fields("update", "updates", u, UPDATE_STMT_FIELDS)?;
    let filter = match u.get("q") {
        Some(Bson::Document(q)) => q.clone(),
        Some(_) => {
            return Err(MongoError::type_mismatch(
                "BSON field 'update.updates.q' is the wrong type, expected type 'object'",
            ))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'update.updates.q' is missing but a required field",
            ))
        }
    };
    let array_filters: Option<Vec<Document>> = match u.get("arrayFilters") {
        None | Some(Bson::Null) => None,
        Some(Bson::Array(a)) => Some(
            a.iter()
                .map(|f| {
                    f.as_document()
                        .cloned()
                        .ok_or_else(|| MongoError::type_mismatch("arrayFilters must be objects"))
                })
                .collect::<Result<_>>()?,
        ),
        Some(_) => {
            return Err(MongoError::type_mismatch(
                "BSON field 'update.updates.arrayFilters' is the wrong type, expected type 'array'",
            ))
        }
    };
    let spec = match u.get("u") {
        Some(Bson::Document(d)) => update::parse_update(d, array_filters.as_deref())?,
        Some(Bson::Array(stages)) => {
            if array_filters.as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(MongoError::new(
                    ErrorCode::FailedToParse,
                    "arrayFilters may not be specified for pipeline-style updates",
                ));
            }
            UpdateSpec::Pipeline(Box::new(crate::agg::update::UpdatePipeline::parse(stages)?))
        }
        Some(_) => {
            return Err(MongoError::new(
                ErrorCode::FailedToParse,
                "Update argument must be either an object or an array",
            ))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'update.updates.u' is missing but a required field",
            ))
        }
    };
    let flag = |k: &str| -> Result<bool> {
        match u.get(k) {
            None | Some(Bson::Null) => Ok(false),
            Some(Bson::Boolean(b)) => Ok(*b),
            Some(Bson::Int32(n)) => Ok(*n != 0),
            Some(Bson::Int64(n)) => Ok(*n != 0),
            Some(Bson::Double(n)) => Ok(*n != 0.0),
            Some(_) => Err(MongoError::type_mismatch(format!(
                "BSON field 'update.updates.{k}' is the wrong type, expected type 'bool'"
            ))),
        }
    };
    let upsert = flag("upsert")?;
    let multi = flag("multi")?;
    if multi && matches!(spec, UpdateSpec::Replacement(_)) {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            "multi update is not supported for replacement-style update",
        ));
    }
    let matcher = Matcher::parse(&filter)?;
    let hint = u.get("hint").filter(|h| !matches!(h, Bson::Null)).cloned();
    let collation = u.get("collation").cloned();
    Ok(UpdateStmt { filter, matcher, spec, upsert, multi, hint, collation, bypass: false, history: None })
}

/// What one update statement did.
#[derive(Default)]
pub struct UpdateResult {
    pub matched: usize,
    pub modified: usize,
    pub upserted: Option<Bson>,
    /// Pre- and post-images of the last document touched (for findAndModify).
    pub before: Option<Document>,
    pub after: Option<Document>,
}

fn check_update_result(old: &Document, new: &Document) -> Result<()> {
    if old.get("_id") != new.get("_id") && new.get("_id").is_some() {
        return Err(MongoError::new(
            ErrorCode::ImmutableField,
            "Performing an update on the path '_id' would modify the immutable field '_id'",
        ));
    }
    let size = bson_size(new);
    if size > MAX_BSON_OBJECT_SIZE {
        return Err(MongoError::new(
            ErrorCode::BSONObjectTooLarge,
            format!("Resulting document after update is larger than {MAX_BSON_OBJECT_SIZE}"),
        ));
    }
    Ok(())
}

/// Applies the update to one document by RecordId inside a write transaction, re-reading it
/// first so a concurrent change is not overwritten. Returns (pre, post, modified) or None
/// when the document is gone or no longer matches.
fn update_by_rid(
    ctx: &mut Ctx,
    coll: &Arc<Collection>,
    rid: i64,
    stmt: &UpdateStmt,
) -> Result<Option<(Document, Document, bool)>> {
    let mut failure: Option<MongoError> = None;
    let r = ctx.store.write_collection(&coll.db, &coll.name, false, false, |t, c| {
        failure = None;
        let Some(old) = t.get(c, rid)? else {
            return Ok(None);
        };
        let (matched, pos) = stmt.matcher.matches_with_details(&old);
        if !matched {
            return Ok(None);
        }
        let (mut new, changed) = match update::apply_update(&stmt.spec, &old, false, pos) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                return Ok(None);
            }
        };
        if let UpdateSpec::Replacement(_) = stmt.spec {
            // A replacement keeps the original _id, first.
            if new.get("_id").is_none() {
                let mut with_id = doc! { "_id": old.get("_id").cloned().unwrap_or(Bson::Null) };
                with_id.extend(new);
                new = with_id;
            }
        }
        if let Err(e) = check_update_result(&old, &new).and_then(|_| {
            if changed {
                validate_document(c, &new, Some(&old), stmt.bypass)
            } else {
                Ok(())
            }
        }) {
            failure = Some(e);
            return Ok(None);
        }
        if changed {
            let o = match stmt.spec {
                UpdateSpec::Replacement(_) => new.clone(),
                _ => oplog::update_diff(&old, &new),
            };
            t.update(c, rid, &old, &new, o)?;
        }
        if let Some(h) = &stmt.history {
            h.put(t, &doc! { "n": 1, "nModified": changed as i32 })?;
        }
        Ok(Some((old, new, changed)))
    });
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(r?.flatten())
}

/// Runs one update statement (`sort` orders the candidates, for findAndModify).
pub fn run_update(
    ctx: &mut Ctx,
    db: &str,
    coll_name: &str,
    stmt: &UpdateStmt,
    sort: Option<&Document>,
) -> Result<UpdateResult> {
    let ns = format!("{db}.{coll_name}");
    let mut res = UpdateResult::default();
    let _collation = crate::query::collation::enter_for(
        stmt.collation.as_ref(),
        ctx.shared.store.catalog.get(&ns).as_deref(),
    )?;
    if let Some(coll) = ctx.shared.store.catalog.get(&ns) {
        let plan = multiplan::choose_plan(ctx.store, &coll, &stmt.filter, sort, stmt.hint.as_ref())?;
        let sort_spec = sort
            .filter(|s| !s.is_empty() && !plan.sort_provided)
            .map(crate::query::sort::SortSpec::parse)
            .transpose()?;
        let mut exec = Exec::new(
            coll.clone(),
            plan.access,
            ExecOptions {
                filter: Some(Matcher::parse(&stmt.filter)?),
                sort: sort_spec,
                projection: None,
                skip: 0,
                limit: None,
                allow_disk_use: true,
            },
        );
        // A multi-update through an index may meet a document again under its new key (the
        // Halloween problem): each RecordId is updated once, as in mongod.
        let mut updated = std::collections::HashSet::new();
        while let Some((rid, _)) = exec.next_match(ctx.store)? {
            if stmt.multi && !updated.insert(rid) {
                continue;
            }
            if let Some((old, new, changed)) = update_by_rid(ctx, &coll, rid, stmt)? {
                res.matched += 1;
                if changed {
                    res.modified += 1;
                }
                res.before = Some(old);
                res.after = Some(new);
                if !stmt.multi {
                    break;
                }
            }
        }
    }
    if res.matched == 0 && stmt.upsert {
        let new = upsert_document(stmt)?;
        let id = new.get("_id").cloned().unwrap_or(Bson::Null);
        let saved = doc! { "n": 1, "nModified": 0, "upserted": id.clone() };
        insert_one(ctx, db, coll_name, &new, stmt.bypass, stmt.history.map(|h| (h, &saved)))?;
        res.upserted = Some(id);
        res.after = Some(new);
    }
    Ok(res)
}

fn upsert_document(stmt: &UpdateStmt) -> Result<Document> {
    let new = match &stmt.spec {
        UpdateSpec::Replacement(r) => {
            let mut d = r.clone();
            if d.get("_id").is_none() {
                if let Ok(seed) = update::upsert_seed(&stmt.filter) {
                    if let Some(id) = seed.get("_id") {
                        let mut with_id = doc! { "_id": id.clone() };
                        with_id.extend(d);
                        d = with_id;
                    }
                }
            }
            d
        }
        spec => {
            let seed = update::upsert_seed(&stmt.filter)?;
            update::apply_update(spec, &seed, true, None)?.0
        }
    };
    prepare_insert(new)
}

pub fn update(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll = args::collection(req)?;
    super::views::refuse_write(ctx, &req.db, &coll)?;
    let stmts = req.documents("updates")?;
    check_batch_len(stmts.len())?;
    // Unknown statement fields fail the whole command, as mongod's parser does, and so does
    // a pipeline update naming a stage that does not exist.
    for u in &stmts {
        check_stmt_fields("update", "updates", u, UPDATE_STMT_FIELDS)?;
        if let Some(Bson::Array(stages)) = u.get("u") {
            for name in stages.iter().filter_map(|s| s.as_document()).filter_map(|d| d.keys().next()) {
                if !crate::agg::stages::STAGE_NAMES.contains(&name.as_str()) {
                    return Err(MongoError::new(
                        ErrorCode::Location40324,
                        format!("Unrecognized pipeline stage name: '{name}'"),
                    ));
                }
            }
        }
    }
    let ordered = args::opt_bool(req, "ordered")?.unwrap_or(true);
    let durable = args::journal_required(ctx, req)?;
    let bypass = args::opt_bool(req, "bypassDocumentValidation")?.unwrap_or(false);
    let (mut n, mut modified) = (0usize, 0usize);
    let mut upserted = Vec::new();
    let mut errors = Vec::new();
    let vars = crate::agg::let_constants(req.body.get("let"))?;
    for (i, u) in stmts.iter().enumerate() {
        let sid = session::stmt_id(req, i);
        if let Some(prev) = session::retried(ctx, sid) {
            n += prev.get_i32("n").unwrap_or(0) as usize;
            modified += prev.get_i32("nModified").unwrap_or(0) as usize;
            if let Some(id) = prev.get("upserted") {
                upserted.push(doc! { "index": i as i32, "_id": id.clone() });
            }
            continue;
        }
        let u = &crate::agg::bind_statement(u, &vars);
        let r = parse_update_stmt(u).and_then(|mut s| {
            s.bypass = bypass;
            if !s.multi {
                s.history = session::slot(ctx, sid);
            }
            session::before_statement(ctx)?;
            let saved = s.history.is_some();
            run_update(ctx, &req.db, &coll, &s, None).map(|r| (r, saved))
        });
        match r {
            Ok((r, saved)) => {
                // A statement that wrote its document stored its row with it.
                let saved = saved && (r.matched > 0 || r.upserted.is_some());
                let mut rec = doc! { "n": (r.matched + r.upserted.is_some() as usize) as i32, "nModified": r.modified as i32 };
                n += r.matched;
                modified += r.modified;
                if let Some(id) = r.upserted {
                    n += 1;
                    rec.insert("upserted", id.clone());
                    upserted.push(doc! { "index": i as i32, "_id": id });
                }
                if saved {
                    session::record_saved(ctx, sid, rec);
                } else {
                    session::record(ctx, sid, rec);
                }
            }
            Err(e) => {
                errors.push(e.to_write_error(i));
                if ordered {
                    break;
                }
            }
        }
    }
    ctx.shared.stats.update.fetch_add(stmts.len() as u64, Ordering::Relaxed);
    if durable {
        ctx.store.flush_journal()?;
    }
    let mut reply = doc! { "n": n as i32, "nModified": modified as i32 };
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    session::append_retried(ctx, &mut reply);
    Ok(reply)
}

/// Whether a delete statement that removed `k` documents stored its history row with the
/// delete (single-document deletes inside a retryable write).
fn limit_one_saved(ctx: &Ctx, stmt: &Document, k: usize) -> bool {
    let one = matches!(stmt.get("limit"), Some(Bson::Int32(1) | Bson::Int64(1)))
        || matches!(stmt.get("limit"), Some(Bson::Double(f)) if *f == 1.0);
    one && k == 1 && ctx.conn.retry.is_some()
}

/// Deletes one document by RecordId if it still matches; returns it.
/// `history` is a single-document retryable statement's row (`{n: 1}`), stored with the delete.
pub fn delete_by_rid(
    ctx: &mut Ctx,
    coll: &Arc<Collection>,
    rid: i64,
    matcher: &Matcher,
    history: Option<Slot>,
) -> Result<Option<Document>> {
    let r = ctx.store.write_collection(&coll.db, &coll.name, false, false, |t, c| {
        let Some(old) = t.get(c, rid)? else {
            return Ok(None);
        };
        if !matcher.matches(&old) {
            return Ok(None);
        }
        t.delete(c, rid, &old)?;
        if let Some(h) = &history {
            h.put(t, &doc! { "n": 1 })?;
        }
        Ok(Some(old))
    })?;
    Ok(r.flatten())
}

pub fn delete(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    super::views::refuse_write(ctx, &req.db, &coll_name)?;
    let stmts = req.documents("deletes")?;
    check_batch_len(stmts.len())?;
    for d in &stmts {
        check_stmt_fields("delete", "deletes", d, DELETE_STMT_FIELDS)?;
    }
    let ordered = args::opt_bool(req, "ordered")?.unwrap_or(true);
    let durable = args::journal_required(ctx, req)?;
    let ns = format!("{}.{}", req.db, coll_name);
    let mut n = 0usize;
    let mut errors = Vec::new();
    let vars = crate::agg::let_constants(req.body.get("let"))?;
    for (i, d) in stmts.iter().enumerate() {
        let sid = session::stmt_id(req, i);
        if let Some(prev) = session::retried(ctx, sid) {
            n += prev.get_i32("n").unwrap_or(0) as usize;
            continue;
        }
        let d = &crate::agg::bind_statement(d, &vars);
        let r = (|| -> Result<usize> {
            check_stmt_fields("delete", "deletes", d, DELETE_STMT_FIELDS)?;
            let filter = match d.get("q") {
                Some(Bson::Document(q)) => q.clone(),
                Some(_) => {
                    return Err(MongoError::type_mismatch(
                        "BSON field 'delete.deletes.q' is the wrong type, expected type 'object'",
                    ))
                }
                None => {
                    return Err(MongoError::new(
                        ErrorCode::Location40414,
                        "BSON field 'delete.deletes.q' is missing but a required field",
                    ))
                }
            };
            let limit = match d.get("limit") {
                Some(Bson::Int32(n)) => *n as i64,
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Double(n)) => *n as i64,
                Some(_) => {
                    return Err(MongoError::type_mismatch(
                        "BSON field 'delete.deletes.limit' is the wrong type, expected type 'number'",
                    ))
                }
                None => {
                    return Err(MongoError::new(
                        ErrorCode::Location40414,
                        "BSON field 'delete.deletes.limit' is missing but a required field",
                    ))
                }
            };
            if limit != 0 && limit != 1 {
                return Err(MongoError::new(
                    ErrorCode::FailedToParse,
                    format!("The limit field in delete objects must be 0 or 1. Got {limit}"),
                ));
            }
            let _collation = crate::query::collation::enter_for(
                d.get("collation"),
                ctx.shared.store.catalog.get(&ns).as_deref(),
            )?;
            let matcher = Matcher::parse(&filter)?;
            session::before_statement(ctx)?;
            let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
                return Ok(0);
            };
            let hint = d.get("hint").filter(|h| !matches!(h, Bson::Null));
            let access = multiplan::choose_plan(ctx.store, &coll, &filter, None, hint)?.access;
            let mut exec = Exec::new(
                coll.clone(),
                access,
                ExecOptions {
                    filter: Some(Matcher::parse(&filter)?),
                    sort: None,
                    projection: None,
                    skip: 0,
                    limit: None,
                    allow_disk_use: false,
                },
            );
            let mut deleted = 0;
            while let Some((rid, _)) = exec.next_match(ctx.store)? {
                let slot = if limit == 1 { session::slot(ctx, sid) } else { None };
                if delete_by_rid(ctx, &coll, rid, &matcher, slot)?.is_some() {
                    deleted += 1;
                    if limit == 1 {
                        break;
                    }
                }
            }
            Ok(deleted)
        })();
        match r {
            Ok(k) => {
                n += k;
                // A single deleted document stored its row with the delete.
                if limit_one_saved(ctx, d, k) {
                    session::record_saved(ctx, sid, doc! { "n": k as i32 });
                } else {
                    session::record(ctx, sid, doc! { "n": k as i32 });
                }
            }
            Err(e) => {
                errors.push(e.to_write_error(i));
                if ordered {
                    break;
                }
            }
        }
    }
    ctx.shared.stats.delete.fetch_add(n as u64, Ordering::Relaxed);
    if durable {
        ctx.store.flush_journal()?;
    }
    let mut reply = doc! { "n": n as i32 };
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    session::append_retried(ctx, &mut reply);
    Ok(reply)
}
