//! find, and the subset of aggregate that drivers' helpers (countDocuments) rely on until the
//! aggregation issue lands.

use super::cursor::{self, open_cursor, DEFAULT_FIRST_BATCH};
use super::{args, Ctx, Request};
use crate::cursors::CursorSource;
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use crate::query::{multiplan, planner};
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
    let ns = format!("{}.{}", req.db, coll_name);
    let _collation = crate::query::collation::enter_for(
        req.body.get("collation"),
        ctx.shared.store.collection(&ns).as_deref(),
    )?;
    let vars = crate::agg::let_constants(req.body.get("let"))?;
    let filter = crate::agg::bind_filter(&args::opt_doc(req, "filter")?.cloned().unwrap_or_default(), &vars);
    let sort = args::opt_doc(req, "sort")?.cloned();
    let projection = args::opt_doc(req, "projection")?.cloned();
    let skip = non_negative(req, "skip")?.unwrap_or(0) as u64;
    let limit = non_negative(req, "limit")?.filter(|l| *l > 0).map(|l| l as u64);
    let batch_size = non_negative(req, "batchSize")?.map(|b| b as usize);
    let single_batch = args::opt_bool(req, "singleBatch")?.unwrap_or(false);
    let allow_disk_use = ctx.shared.store.knobs.allow_disk_use(args::opt_bool(req, "allowDiskUse")?);
    let hint = match req.body.get("hint") {
        None | Some(Bson::Null) => None,
        Some(h @ (Bson::String(_) | Bson::Document(_))) => Some(h.clone()),
        Some(_) => return Err(MongoError::bad_value("hint must be either a string or nested object")),
    };
    let max_time = max_time_ms(req)?;
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
    if let Some((near, rest)) = crate::query::ops_geo::take_near(&filter)? {
        return super::geo::find_near(ctx, req, &ns, near, rest);
    }
    let matcher = Matcher::parse(&filter)?;
    let sort_spec = sort.as_ref().filter(|s| !s.contains_key("$natural")).map(SortSpec::parse).transpose()?;
    let projection = projection
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(|p| Projection::parse_with_query(p, Some(&filter)))
        .transpose()?;
    let Some(coll) = ctx.shared.store.collection(&ns) else {
        if super::views::definition(ctx, &req.db, &coll_name)?.is_some() {
            return find_on_view(ctx, req, &coll_name, filter, sort, skip, limit, batch_size);
        }
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
    let (min, max) = (args::opt_doc(req, "min")?, args::opt_doc(req, "max")?);
    if (min.is_some() || max.is_some()) && hint.is_none() {
        return Err(MongoError::bad_value(
            "When using min()/max() a hint of which index to use must be provided",
        ));
    }
    let mut plan = if tailable {
        planner::plan_with_sort(&coll, &filter, sort.as_ref(), hint.as_ref())?
    } else {
        // Several usable indexes: the plan cache or a trial run picks one.
        let shape = multiplan::Shape {
            filter: &filter,
            sort: sort.as_ref(),
            projection: args::opt_doc(req, "projection")?,
        };
        multiplan::choose(ctx.store, &coll, &shape, hint.as_ref(), true)?.plan
    };
    planner::apply_min_max(&mut plan, min, max)?;
    let return_key = args::opt_bool(req, "returnKey")?.unwrap_or(false);
    if let (true, crate::query::exec::Access::IndexScan { covered, .. }) = (return_key, &mut plan.access) {
        // returnKey shows the key made from the document itself.
        *covered = false;
    }
    if tailable {
        // A tailable cursor follows insertion order from where it stopped.
        plan = planner::Plan {
            access: crate::query::exec::Access::CollScan { forward: true },
            sort_provided: true,
        };
    }
    // Collations make string equality looser or stricter than the index's keys: re-check.
    let collated =
        req.body.get("collation").is_some() || coll.id_index().is_some_and(|i| i.collation.is_some());
    // min/max replace the scan's bounds, so the filter must then be applied.
    let bounded = min.is_some() || max.is_some();
    let exact = filter.is_empty()
        || (!collated && id_lookup_is_exact(&plan.access, &filter))
        || (!bounded && req.body.get("collation").is_none() && index_scan_is_exact(&plan.access, &filter));
    let mut exec = Exec::new(
        coll,
        plan.access,
        ExecOptions {
            filter: if exact { None } else { Some(matcher) },
            // An index scan in sort order makes the blocking sort unnecessary.
            sort: if plan.sort_provided { None } else { sort_spec },
            projection,
            skip,
            limit,
            allow_disk_use,
        },
    );
    exec.time_left = max_time;
    exec.raw_output = true;
    exec.return_key = return_key;
    exec.show_record_id = args::opt_bool(req, "showRecordId")?.unwrap_or(false);
    let first = match (batch_size, limit) {
        (Some(b), Some(l)) => b.min(l as usize),
        (Some(b), None) => b,
        (None, Some(l)) => (l as usize).min(DEFAULT_FIRST_BATCH),
        (None, None) => DEFAULT_FIRST_BATCH,
    };
    let no_timeout = args::opt_bool(req, "noCursorTimeout")?.unwrap_or(false);
    cursor::open_cursor_full(
        ctx,
        ns,
        CursorSource::Exec(Box::new(exec)),
        first,
        // find's batchSize shapes the first batch only; each getMore brings its own.
        None,
        single_batch,
        tailable.then_some(await_data),
        no_timeout,
    )
}

/// find on a view: the same query as an aggregate over the view (mongod rewrites it so too).
#[allow(clippy::too_many_arguments)]
fn find_on_view(
    ctx: &mut Ctx,
    req: &Request,
    view: &str,
    filter: Document,
    sort: Option<Document>,
    skip: u64,
    limit: Option<u64>,
    batch_size: Option<usize>,
) -> Result<Document> {
    let mut pipeline = vec![Bson::Document(bson::doc! {"$match": filter})];
    if let Some(s) = sort.filter(|s| !s.is_empty()) {
        pipeline.push(Bson::Document(bson::doc! {"$sort": s}));
    }
    if skip > 0 {
        pipeline.push(Bson::Document(bson::doc! {"$skip": skip as i64}));
    }
    if let Some(l) = limit {
        pipeline.push(Bson::Document(bson::doc! {"$limit": l as i64}));
    }
    if let Some(Bson::Document(p)) = req.body.get("projection") {
        if !p.is_empty() {
            pipeline.push(Bson::Document(bson::doc! {"$project": p.clone()}));
        }
    }
    let mut cursor = bson::doc! {};
    if let Some(b) = batch_size {
        cursor.insert("batchSize", b as i64);
    }
    let mut body = bson::doc! {"aggregate": view, "pipeline": pipeline, "cursor": cursor};
    for k in ["let", "maxTimeMS", "allowDiskUse", "lsid", "$db", "txnNumber", "readConcern", "collation"] {
        if let Some(v) = req.body.get(k) {
            body.insert(k, v.clone());
        }
    }
    let agg = Request { db: req.db.clone(), name: "aggregate".into(), body, sequences: Vec::new() };
    aggregate(ctx, &agg)
}

const AGGREGATE_FIELDS: &[&str] = &[
    "aggregate",
    "pipeline",
    "cursor",
    "explain",
    "allowDiskUse",
    "maxTimeMS",
    "bypassDocumentValidation",
    "readConcern",
    "collation",
    "hint",
    "comment",
    "let",
    "fromMongos",
    "needsMerge",
    "isMapReduceCommand",
    "includeQueryStatsMetrics",
    "writeConcern",
];

/// Stages that run without a collection (`aggregate: 1`).
const COLLECTIONLESS_STAGES: &[&str] =
    &["$documents", "$currentOp", "$listLocalSessions", "$changeStream", "$listSessions", "$queryStats"];

/// aggregate: parses the command here, runs the pipeline in `agg`, and returns its results
/// through a cursor that keeps pulling from the pipeline across getMores.
pub fn aggregate(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    check_known_fields(req, AGGREGATE_FIELDS)?;
    let pipeline = match req.body.get("pipeline") {
        Some(Bson::Array(a)) => a.clone(),
        Some(_) => return Err(MongoError::type_mismatch("'pipeline' option must be specified as an array")),
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'aggregate.pipeline' is missing but a required field",
            ))
        }
    };
    let first_stage = pipeline.first().and_then(|s| match s {
        Bson::Document(d) => d.keys().next().cloned(),
        _ => None,
    });
    let coll_name = match req.body.get("aggregate") {
        Some(Bson::String(_)) => Some(args::collection(req)?),
        Some(v @ (Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)))
            if crate::query::util::exact_i64(v) == Some(1) =>
        {
            if !first_stage.as_deref().is_some_and(|s| COLLECTIONLESS_STAGES.contains(&s)) {
                return Err(MongoError::new(
                    ErrorCode::InvalidNamespace,
                    format!(
                        "{{aggregate: 1}} is not valid for '{}'; a collection is required.",
                        first_stage.as_deref().unwrap_or("")
                    ),
                ));
            }
            None
        }
        Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => {
            return Err(MongoError::new(
                ErrorCode::FailedToParse,
                "Invalid command format: the 'aggregate' field must specify a collection name or 1",
            ))
        }
        _ => return Err(MongoError::new(ErrorCode::InvalidNamespace, "aggregate needs a collection name")),
    };
    let explain = args::opt_bool(req, "explain")?.unwrap_or(false);
    if req.body.get("cursor").is_none() && !explain {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            "The 'cursor' option is required, except for aggregate with the explain argument",
        ));
    }
    let batch_size = cursor::cursor_batch_size(req)?;
    if pipeline.iter().any(|s| matches!(s, Bson::Document(d) if d.contains_key("$changeStream"))) {
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
        check_change_stream_read_concern(req)?;
        return super::change_stream::aggregate(ctx, req, coll_name, &stages, batch_size);
    }
    let allow_disk_use = ctx.shared.store.knobs.allow_disk_use(args::opt_bool(req, "allowDiskUse")?);
    let let_vars = match req.body.get("let") {
        None => None,
        Some(Bson::Document(d)) => Some(d.clone()),
        Some(_) => {
            return Err(MongoError::type_mismatch(
                "BSON field 'aggregate.let' is the wrong type, expected type 'object'",
            ))
        }
    };
    let ns = match &coll_name {
        Some(c) => format!("{}.{}", req.db, c),
        None => format!("{}.$cmd.aggregate", req.db),
    };
    let mut pipeline = pipeline;
    super::current_op::rewrite(ctx, req, &mut pipeline)?;
    if first_stage.as_deref() == Some("$listLocalSessions") {
        pipeline[0] = Bson::Document(bson::doc! { "$documents": { "$literal": local_sessions(ctx) } });
    }
    // One node: the sessions collection holds exactly the sessions this server holds.
    let mut list_sessions = false;
    if first_stage.as_deref() == Some("$listSessions") {
        if req.db != "config" || coll_name.as_deref() != Some("system.sessions") {
            return Err(MongoError::new(
                ErrorCode::InvalidNamespace,
                "$listSessions may only be run against config.system.sessions",
            ));
        }
        pipeline[0] = Bson::Document(bson::doc! { "$documents": { "$literal": local_sessions(ctx) } });
        list_sessions = true;
    }
    let writes = pipeline.last().is_some_and(
        |s| matches!(s, Bson::Document(d) if d.contains_key("$out") || d.contains_key("$merge")),
    );
    let linearizable = matches!(req.body.get("readConcern"), Some(Bson::Document(rc)) if rc.get_str("level") == Ok("linearizable"));
    if writes && req.body.get("autocommit") == Some(&Bson::Boolean(false)) {
        let stage =
            if pipeline.last().is_some_and(|s| matches!(s, Bson::Document(d) if d.contains_key("$out"))) {
                "$out"
            } else {
                "$merge"
            };
        return Err(MongoError::new(
            ErrorCode::OperationNotSupportedInTransaction,
            format!("{stage} cannot be used in a transaction"),
        ));
    }
    if writes && linearizable {
        return Err(MongoError::new(
            ErrorCode::InvalidOptions,
            "readConcern level 'linearizable' is not supported with $out or $merge",
        ));
    }
    if let Some(c) = &coll_name {
        super::stats_stages::rewrite(ctx, &req.db, c, &mut pipeline)?;
        super::plan_cache_stats::rewrite(ctx, &req.db, c, &mut pipeline)?;
        super::geo::rewrite_geo_near(ctx, &req.db, c, &mut pipeline)?;
    }
    // A view: its resolved pipeline runs first, over the collection it is defined on.
    let mut source = ns.clone();
    let mut view = None;
    if let Some(c) =
        coll_name.as_deref().filter(|c| ctx.shared.store.catalog.get(&format!("{}.{c}", req.db)).is_none())
    {
        if let Some((base, mut stages)) = super::views::resolve(ctx, &req.db, c)? {
            source = format!("{}.{base}", req.db);
            stages.append(&mut pipeline);
            pipeline = stages;
            view = Some(c);
        }
    }
    let _collation = match view {
        Some(v) => super::views::collation_scope(ctx, &req.db, v, req.body.get("collation"))?,
        None => crate::query::collation::enter_for(
            req.body.get("collation"),
            coll_name.as_ref().and_then(|_| ctx.shared.store.collection(&source)).as_deref(),
        )?,
    };
    let prepared = crate::agg::prepare(&req.db, &pipeline, let_vars.as_ref())?;
    if explain {
        let hint = req.body.get("hint").filter(|h| !matches!(h, Bson::Null)).cloned();
        let mut command = req.body.clone();
        command.remove("$db");
        return super::explain::explain_pipeline(
            ctx,
            &req.db,
            &source,
            coll_name.is_some(),
            &pipeline,
            hint,
            "queryPlanner",
            command,
        );
    }
    let source_ns = coll_name.as_ref().filter(|_| !list_sessions).map(|_| source.as_str());
    let mut running = crate::agg::open(ctx.store, prepared, source_ns, allow_disk_use)?;
    running.time_left = max_time_ms(req)?;
    let first = batch_size.unwrap_or(DEFAULT_FIRST_BATCH);
    open_cursor(ctx, ns, CursorSource::Pipeline(Box::new(running)), first, None, false)
}

/// An `_id` lookup answers `{_id: <plain value>}` exactly: the document needs no second look
/// (so it can go to the client without being parsed).
fn id_lookup_is_exact(access: &crate::query::exec::Access, filter: &Document) -> bool {
    matches!(access, crate::query::exec::Access::IdLookup(_))
        && filter.len() == 1
        && !matches!(
            filter.get("_id"),
            None | Some(Bson::Document(_) | Bson::Array(_) | Bson::RegularExpression(_))
        )
}

/// A scan of a single-valued (not multikey) index whose leading field is the filter's only
/// field, compared with plain numbers, dates, ObjectIds or booleans, returns exactly the
/// matching documents: the bounds keep to the value's type bracket as the comparison does.
fn index_scan_is_exact(access: &crate::query::exec::Access, filter: &Document) -> bool {
    let crate::query::exec::Access::IndexScan { index, .. } = access else { return false };
    let Some((field, cond)) = filter.iter().next() else { return false };
    let btree = matches!(index.kind, crate::store::catalog::IndexKind::Btree);
    if filter.len() != 1 || !btree || index.is_multikey() || index.partial.is_some() {
        return false;
    }
    if index.fields.first().map(|(f, _)| f) != Some(field) || field.starts_with('$') {
        return false;
    }
    let plain = |v: &Bson| match v {
        Bson::Double(d) => !d.is_nan(),
        Bson::Int32(_) | Bson::Int64(_) | Bson::DateTime(_) | Bson::ObjectId(_) | Bson::Boolean(_) => true,
        _ => false,
    };
    match cond {
        Bson::Document(ops) => {
            !ops.is_empty()
                && ops.iter().all(|(op, v)| match op.as_str() {
                    "$eq" | "$gt" | "$gte" | "$lt" | "$lte" => plain(v),
                    "$in" => matches!(v, Bson::Array(a) if a.iter().all(plain)),
                    _ => false,
                })
        }
        v => plain(v),
    }
}

/// `$listLocalSessions`: the sessions this server holds, as `{_id: {id, uid}, lastUse}`; `uid`
/// is the SHA-256 of the owning user's name (empty without authentication), as in mongod.
fn local_sessions(ctx: &Ctx) -> Vec<Bson> {
    let uid = bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: ring::digest::digest(&ring::digest::SHA256, b"").as_ref().to_vec(),
    };
    let now = bson::DateTime::now().timestamp_millis();
    let mut sessions = ctx.shared.sessions.list();
    sessions.sort_by_key(|(_, idle)| *idle);
    sessions
        .into_iter()
        .map(|(id, idle)| {
            let last = bson::DateTime::from_millis(now - idle.as_millis() as i64);
            Bson::Document(bson::doc! { "_id": { "id": id.to_bson(), "uid": uid.clone() }, "lastUse": last })
        })
        .collect()
}

/// `maxTimeMS` as a processing budget; 0 or absent means none.
fn max_time_ms(req: &Request) -> Result<Option<std::time::Duration>> {
    match args::opt_i64(req, "maxTimeMS")? {
        Some(n) if !(0..=i32::MAX as i64).contains(&n) => {
            Err(MongoError::bad_value(format!("{n} value for maxTimeMS is out of range [0, 2147483647]")))
        }
        Some(n) if n > 0 => Ok(Some(std::time::Duration::from_millis(n as u64))),
        _ => Ok(None),
    }
}

/// Change streams read majority-committed history: an explicit other level, or a
/// transaction, is refused as mongod refuses it.
fn check_change_stream_read_concern(req: &Request) -> Result<()> {
    let in_txn = req.body.get("autocommit") == Some(&Bson::Boolean(false));
    let level = match req.body.get("readConcern") {
        Some(Bson::Document(rc)) => rc.get_str("level").ok(),
        _ => None,
    };
    if !in_txn && level.is_none_or(|l| l == "majority") {
        return Ok(());
    }
    let current = level.map_or_else(|| "{}".to_string(), |l| format!("{{ level: \"{l}\" }}"));
    let why = format!(
        "$changeStream cannot run with a readConcern other than 'majority', or in a multi-document \
         transaction. Current readConcern: {{ readConcern: {current} }}"
    );
    if in_txn {
        return Err(MongoError::new(
            ErrorCode::OperationNotSupportedInTransaction,
            format!("Operation not permitted in transaction :: caused by :: {why}"),
        ));
    }
    Err(MongoError::new(ErrorCode::InvalidOptions, why))
}
