//! find, and the subset of aggregate that drivers' helpers (countDocuments) rely on until the
//! aggregation issue lands.

use super::cursor::{self, open_cursor, DEFAULT_FIRST_BATCH};
use super::{args, Ctx, Request};
use crate::cursors::CursorSource;
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::planner;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use bson::{Bson, Document};
use std::sync::atomic::Ordering;

const FIND_FIELDS: &[&str] = &[
    "find",
    "filter",
    "projection",
    "sort",
    "hint",
    "skip",
    "limit",
    "batchSize",
    "singleBatch",
    "comment",
    "maxTimeMS",
    "readConcern",
    "max",
    "min",
    "returnKey",
    "showRecordId",
    "tailable",
    "oplogReplay",
    "noCursorTimeout",
    "awaitData",
    "allowPartialResults",
    "collation",
    "allowDiskUse",
    "let",
    "readOnce",
    "term",
    "includeQueryStatsMetrics",
];

pub fn check_known_fields(req: &Request, known: &[&str]) -> Result<()> {
    for k in req.body.keys() {
        if !known.contains(&k.as_str()) && !super::catalog::GENERIC_FIELDS.contains(&k.as_str()) {
            return Err(MongoError::new(
                ErrorCode::Location40415,
                format!("BSON field '{}.{k}' is an unknown field.", req.name),
            ));
        }
    }
    Ok(())
}

fn non_negative(req: &Request, field: &str) -> Result<Option<i64>> {
    match args::opt_i64(req, field)? {
        Some(n) if n < 0 => Err(MongoError::new(
            ErrorCode::Location51024,
            format!("BSON field '{field}' value must be >= 0, actual value '{n}'"),
        )),
        other => Ok(other),
    }
}

pub fn find(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    ctx.shared.stats.query.fetch_add(1, Ordering::Relaxed);
    let coll_name = args::collection(req)?;
    check_known_fields(req, FIND_FIELDS)?;
    let filter = args::opt_doc(req, "filter")?.cloned().unwrap_or_default();
    let sort = args::opt_doc(req, "sort")?.cloned();
    let projection = args::opt_doc(req, "projection")?.cloned();
    let skip = non_negative(req, "skip")?.unwrap_or(0) as u64;
    let limit = non_negative(req, "limit")?.filter(|l| *l > 0).map(|l| l as u64);
    let batch_size = non_negative(req, "batchSize")?.map(|b| b as usize);
    let single_batch = args::opt_bool(req, "singleBatch")?.unwrap_or(false);
    let allow_disk_use = args::opt_bool(req, "allowDiskUse")?.unwrap_or(false);
    let hint = match req.body.get("hint") {
        None | Some(Bson::Null) => None,
        Some(h @ (Bson::String(_) | Bson::Document(_))) => Some(h.clone()),
        Some(_) => return Err(MongoError::bad_value("hint must be either a string or nested object")),
    };
    let tailable = args::opt_bool(req, "tailable")?.unwrap_or(false);
    let await_data = args::opt_bool(req, "awaitData")?.unwrap_or(false);
    if await_data && !tailable {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            "Cannot set 'awaitData' without also setting 'tailable'",
        ));
    }
    if tailable && sort.as_ref().is_some_and(|s| !s.is_empty() && s.get("$natural").is_none()) {
        return Err(MongoError::bad_value("cannot use tailable option with a sort other than {$natural: 1}"));
    }
    let matcher = Matcher::parse(&filter)?;
    let sort_spec = sort.as_ref().filter(|s| !s.contains_key("$natural")).map(SortSpec::parse).transpose()?;
    let projection = projection
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(|p| Projection::parse_with_query(p, Some(&filter)))
        .transpose()?;
    let ns = format!("{}.{}", req.db, coll_name);
    let Some(coll) = ctx.shared.store.collection(&ns) else {
        if let Some(h) = &hint {
            if !matches!(h, Bson::Document(d) if d.contains_key("$natural")) {
                return Err(MongoError::bad_value("hint provided does not correspond to an existing index"));
            }
        }
        return Ok(cursor::cursor_reply(&ns, 0, Vec::new(), true));
    };
    if tailable && !coll.is_capped() {
        return Err(MongoError::bad_value(format!(
            "error processing query: ns={ns} tailable cursor requested on non capped collection"
        )));
    }
    let mut plan = planner::plan_with_sort(&coll, &filter, sort.as_ref(), hint.as_ref())?;
    if tailable {
        // A tailable cursor follows insertion order from where it stopped.
        plan = planner::Plan {
            access: crate::query::exec::Access::CollScan { forward: true },
            sort_provided: true,
        };
    }
    let exec = Exec::new(
        coll,
        plan.access,
        ExecOptions {
            filter: if filter.is_empty() { None } else { Some(matcher) },
            // An index scan in sort order makes the blocking sort unnecessary.
            sort: if plan.sort_provided { None } else { sort_spec },
            projection,
            skip,
            limit,
            allow_disk_use,
        },
    );
    let first = match (batch_size, limit) {
        (Some(b), Some(l)) => b.min(l as usize),
        (Some(b), None) => b,
        (None, Some(l)) => (l as usize).min(DEFAULT_FIRST_BATCH),
        (None, None) => DEFAULT_FIRST_BATCH,
    };
    cursor::open_cursor_with(
        ctx,
        ns,
        CursorSource::Exec(Box::new(exec)),
        first,
        // find's batchSize shapes the first batch only; each getMore brings its own.
        None,
        single_batch,
        tailable.then_some(await_data),
    )
}

/// aggregate: until the aggregation issue, runs pipelines made of $match, $sort, $skip,
/// $limit, $project and $count (what drivers' countDocuments sends), and answers any other
/// stage with mongod's unknown-stage error.
pub fn aggregate(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_opt = match req.body.get("aggregate") {
        Some(Bson::String(_)) => Some(args::collection(req)?),
        Some(Bson::Int32(1)) | Some(Bson::Int64(1)) => None,
        Some(Bson::Double(d)) if *d == 1.0 => None,
        _ => return Err(MongoError::new(ErrorCode::InvalidNamespace, "aggregate needs a collection name")),
    };
    let pipeline = match req.body.get("pipeline") {
        Some(Bson::Array(a)) => a,
        Some(_) => return Err(MongoError::type_mismatch("'pipeline' option must be specified as an array")),
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'aggregate.pipeline' is missing but a required field",
            ))
        }
    };
    if req.body.get("cursor").is_none() && !matches!(req.body.get("explain"), Some(Bson::Boolean(true))) {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            "The 'cursor' option is required, except for aggregate with the explain argument",
        ));
    }
    let batch_size = cursor::cursor_batch_size(req)?;
    let stages: Vec<Document> = pipeline
        .iter()
        .map(|s| match s {
            Bson::Document(d) if d.len() == 1 => Ok(d.clone()),
            _ => Err(MongoError::new(
                ErrorCode::Location40323,
                "A pipeline stage specification object must contain exactly one field.",
            )),
        })
        .collect::<Result<_>>()?;
    if super::change_stream::is_change_stream(&stages) {
        return super::change_stream::aggregate(ctx, req, coll_opt, &stages, batch_size);
    }
    let Some(coll_name) = coll_opt else {
        return Err(MongoError::new(
            ErrorCode::NotImplemented,
            "collection-less aggregation arrives with the aggregation issue",
        ));
    };
    let ns = format!("{}.{}", req.db, coll_name);
    let docs = crate::agg::run_basic(ctx, &ns, &stages)?;
    let first = batch_size.unwrap_or(DEFAULT_FIRST_BATCH);
    open_cursor(ctx, ns, CursorSource::Buffered(docs.into()), first, None, false)
}
