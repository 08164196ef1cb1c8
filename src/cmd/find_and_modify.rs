//! findAndModify: update (or upsert) or remove one document and return it.

use super::write::{self, delete_by_rid, run_update, UpdateStmt};
use super::{args, session, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::multiplan;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use bson::{doc, Bson, Document};
use std::sync::atomic::Ordering;

pub fn find_and_modify(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    super::views::refuse_write(ctx, &req.db, &coll_name)?;
    let vars = crate::agg::let_constants(req.body.get("let"))?;
    let query = crate::agg::bind_filter(&args::opt_doc(req, "query")?.cloned().unwrap_or_default(), &vars);
    let sort = args::opt_doc(req, "sort")?.cloned().filter(|s| !s.is_empty());
    let remove = args::opt_bool(req, "remove")?.unwrap_or(false);
    let return_new = args::opt_bool(req, "new")?.unwrap_or(false);
    let upsert = args::opt_bool(req, "upsert")?.unwrap_or(false);
    let fields = args::opt_doc(req, "fields")?
        .filter(|f| !f.is_empty())
        .map(|f| Projection::parse_with_query(f, Some(&query)))
        .transpose()?;
    let bound_update = req.body.get("update").map(|u| match u {
        Bson::Array(_) => crate::agg::bind_expr(u, &vars),
        other => other.clone(),
    });
    let update = bound_update.as_ref().filter(|u| !matches!(u, Bson::Null));
    let durable = args::journal_required(ctx, req)?;
    let fail = |m: &str| Err(MongoError::new(ErrorCode::FailedToParse, m.to_string()));
    if remove {
        if update.is_some() {
            return fail("Cannot specify both an update and remove=true");
        }
        if upsert {
            return fail("Cannot specify both upsert=true and remove=true ");
        }
        if return_new {
            return fail(
                "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document",
            );
        }
    } else if update.is_none() {
        return fail("Either an update or remove=true must be specified");
    }
    let project = |d: Option<Document>| -> Result<Bson> {
        match (d, &fields) {
            (Some(d), Some(p)) if p.needs_position() => {
                let pos = Matcher::parse(&query)?.matches_with_details(&d).1;
                Ok(Bson::Document(p.apply_with_position(&d, pos)?))
            }
            (Some(d), Some(p)) => Ok(Bson::Document(p.apply(&d)?)),
            (Some(d), None) => Ok(Bson::Document(d)),
            (None, _) => Ok(Bson::Null),
        }
    };
    // A retried findAndModify gives back the reply of its first execution.
    let sid = match req.body.get("stmtId") {
        Some(Bson::Int32(n)) => *n,
        _ => 0,
    };
    if let Some(mut prev) = session::retried(ctx, sid) {
        if !prev.contains_key("lastErrorObject") {
            prev = reply_from_row(&prev, remove);
        }
        prev.insert("retriedStmtId", sid);
        return Ok(prev);
    }
    // The write stores a row with its document; the complete reply replaces it afterwards.
    let slot = session::slot(ctx, sid);
    session::before_statement(ctx)?;
    let _collation = crate::query::collation::enter_for(
        req.body.get("collation"),
        ctx.shared.store.catalog.get(&format!("{}.{}", req.db, coll_name)).as_deref(),
    )?;
    let reply = if remove {
        let matcher = Matcher::parse(&query)?;
        let ns = format!("{}.{}", req.db, coll_name);
        let mut removed = None;
        if let Some(coll) = ctx.shared.store.catalog.get(&ns) {
            let hint = req.body.get("hint").filter(|h| !matches!(h, Bson::Null));
            let plan = multiplan::choose_plan(ctx.store, &coll, &query, sort.as_ref(), hint)?;
            let sort_spec = sort
                .as_ref()
                .filter(|s| !s.is_empty() && !plan.sort_provided)
                .map(SortSpec::parse)
                .transpose()?;
            let mut exec = Exec::new(
                coll.clone(),
                plan.access,
                ExecOptions {
                    filter: Some(Matcher::parse(&query)?),
                    sort: sort_spec,
                    projection: None,
                    skip: 0,
                    limit: None,
                    allow_disk_use: true,
                },
            );
            while let Some((rid, _)) = exec.next_match(ctx.store)? {
                if let Some(d) = delete_by_rid(ctx, &coll, rid, &matcher, slot)? {
                    removed = Some(d);
                    break;
                }
            }
        }
        ctx.shared.stats.delete.fetch_add(removed.is_some() as u64, Ordering::Relaxed);
        let n = removed.is_some() as i32;
        doc! { "lastErrorObject": { "n": n }, "value": project(removed)? }
    } else {
        let mut u = doc! { "q": query.clone(), "upsert": upsert, "multi": false };
        if let Some(up) = update {
            u.insert("u", up.clone());
        }
        if let Some(af) = req.body.get("arrayFilters") {
            u.insert("arrayFilters", af.clone());
        }
        if let Some(h) = req.body.get("hint") {
            u.insert("hint", h.clone());
        }
        if let Some(c) = req.body.get("collation") {
            u.insert("collation", c.clone());
        }
        let mut stmt: UpdateStmt = write::parse_update_stmt(&u)?;
        stmt.bypass = args::opt_bool(req, "bypassDocumentValidation")?.unwrap_or(false);
        stmt.history = slot;
        let r = run_update(ctx, &req.db, &coll_name, &stmt, sort.as_ref())?;
        ctx.shared.stats.update.fetch_add(1, Ordering::Relaxed);
        let mut leo = doc! { "n": (r.matched + r.upserted.is_some() as usize) as i32, "updatedExisting": r.matched > 0 };
        if let Some(id) = &r.upserted {
            leo.insert("upserted", id.clone());
        }
        let value = if return_new { r.after } else { r.before };
        doc! { "lastErrorObject": leo, "value": project(value)? }
    };
    session::record(ctx, sid, reply.clone());
    if durable {
        ctx.store.flush_journal()?;
    }
    Ok(reply)
}

/// A retry's reply from a history row that only its write stored (the server stopped before
/// the complete reply was saved): the counts are exact, the document is not known.
fn reply_from_row(row: &Document, remove: bool) -> Document {
    let n = row.get_i32("n").unwrap_or(0);
    let mut leo = doc! { "n": n };
    if !remove {
        leo.insert("updatedExisting", n > 0 && !row.contains_key("upserted"));
        if let Some(id) = row.get("upserted") {
            leo.insert("upserted", id.clone());
        }
    }
    doc! { "lastErrorObject": leo, "value": Bson::Null }
}
