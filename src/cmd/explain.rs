//! explain for find, count, distinct, update, delete, findAndModify and aggregate: the plan
//! the planner picks, as mongod's stage tree (`queryPlanner`), and with `executionStats` /
//! `allPlansExecution` the counts from running its read part (writes are not applied).

use super::handshake::SERVER_VERSION;
use super::{args, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Access, Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::multiplan;
use crate::query::planner::{self, Plan};
use crate::query::sort::SortSpec;
use bson::{doc, Bson, Document};
use std::time::Instant;

/// What explain needs from the explained command.
struct Explained {
    coll: String,
    filter: Document,
    sort: Option<Document>,
    projection: Option<Document>,
    /// The projection is count's or distinct's own reading, shown only when it covers.
    implied_projection: bool,
    skip: u64,
    limit: Option<u64>,
    hint: Option<Bson>,
}

impl Explained {
    fn new(coll: String, filter: Document, hint: Option<Bson>) -> Explained {
        Explained {
            coll,
            filter,
            sort: None,
            projection: None,
            implied_projection: false,
            skip: 0,
            limit: None,
            hint,
        }
    }
}

fn doc_field(d: &Document, k: &str) -> Result<Option<Document>> {
    match d.get(k) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(x)) => Ok(Some(x.clone())),
        Some(_) => Err(MongoError::type_mismatch(format!(
            "BSON field '{k}' is the wrong type, expected type 'object'"
        ))),
    }
}

fn num_field(d: &Document, k: &str) -> Option<u64> {
    match d.get(k) {
        Some(Bson::Int32(n)) if *n > 0 => Some(*n as u64),
        Some(Bson::Int64(n)) if *n > 0 => Some(*n as u64),
        Some(Bson::Double(n)) if *n >= 1.0 => Some(*n as u64),
        _ => None,
    }
}

fn parse_inner(name: &str, inner: &Document) -> Result<Explained> {
    let coll = match inner.get(name) {
        Some(Bson::String(s)) => s.clone(),
        _ => {
            return Err(MongoError::new(
                ErrorCode::InvalidNamespace,
                "explained command needs a collection name",
            ))
        }
    };
    let hint = inner.get("hint").filter(|h| !matches!(h, Bson::Null)).cloned();
    let mut e = Explained::new(coll, Document::new(), hint);
    match name {
        "find" => {
            e.filter = doc_field(inner, "filter")?.unwrap_or_default();
            e.sort = doc_field(inner, "sort")?;
            e.projection = doc_field(inner, "projection")?;
            e.skip = num_field(inner, "skip").unwrap_or(0);
            e.limit = num_field(inner, "limit");
        }
        "count" | "distinct" => {
            e.filter = doc_field(inner, "query")?.unwrap_or_default();
            e.skip = num_field(inner, "skip").unwrap_or(0);
            e.limit = num_field(inner, "limit");
            // They read only the filter's fields (and distinct's key), as they plan.
            let key = match inner.get("key") {
                Some(Bson::String(k)) if name == "distinct" => Some(k.as_str()),
                _ => None,
            };
            e.projection = crate::query::covered::reading(&e.filter, &key.into_iter().collect::<Vec<_>>());
            e.implied_projection = true;
        }
        "findAndModify" => {
            e.filter = doc_field(inner, "query")?.unwrap_or_default();
            e.sort = doc_field(inner, "sort")?;
            e.limit = Some(1);
        }
        "update" | "delete" => {
            let array = if name == "update" { "updates" } else { "deletes" };
            let first = match inner.get(array) {
                Some(Bson::Array(a)) => a.first().and_then(Bson::as_document).cloned(),
                _ => None,
            }
            .ok_or_else(|| {
                MongoError::bad_value(format!("explain of {name} needs one statement in '{array}'"))
            })?;
            e.filter = doc_field(&first, "q")?.unwrap_or_default();
            e.hint = first.get("hint").filter(|h| !matches!(h, Bson::Null)).cloned();
            let single = match name {
                "update" => !matches!(first.get("multi"), Some(Bson::Boolean(true))),
                _ => matches!(
                    first.get("limit"),
                    Some(Bson::Int32(1)) | Some(Bson::Int64(1)) | Some(Bson::Double(_))
                ),
            };
            if single {
                e.limit = Some(1);
            }
        }
        other => {
            return Err(MongoError::new(
                ErrorCode::IllegalOperation,
                format!("Explain for the {other} command is not supported yet"),
            ))
        }
    }
    Ok(e)
}

/// The stage that finds documents.
fn access_stage(access: &Access, filter: &Document) -> Document {
    if let Access::SortMerge(branches, sort) = access {
        let inputs: Vec<Document> = branches.iter().map(index_stage).collect();
        let pattern: Document = sort
            .fields
            .iter()
            .map(|f| (f.path.clone(), Bson::Int32(if f.ascending { 1 } else { -1 })))
            .collect();
        let mut fetch = doc! { "stage": "FETCH" };
        if !filter.is_empty() {
            fetch.insert("filter", filter.clone());
        }
        fetch.insert(
            "inputStage",
            doc! { "stage": "SORT_MERGE", "sortPattern": pattern, "inputStages": inputs },
        );
        return fetch;
    }
    if let Access::Or(branches) = access {
        // mongod's shape: the union of index scans under one FETCH that applies the filter.
        let inputs: Vec<Document> = branches.iter().map(index_stage).collect();
        let mut fetch = doc! { "stage": "FETCH" };
        if !filter.is_empty() {
            fetch.insert("filter", filter.clone());
        }
        fetch.insert("inputStage", doc! { "stage": "OR", "inputStages": inputs });
        return fetch;
    }
    let mut stage = match access {
        Access::Or(_) | Access::SortMerge(..) => Document::new(),
        Access::CollScan { forward } => {
            doc! { "stage": "COLLSCAN", "direction": if *forward { "forward" } else { "backward" } }
        }
        Access::IdLookup(_) => doc! { "stage": "IDHACK" },
        Access::IndexScan { index, forward, bounds, covered, .. } => {
            let ixscan = doc! {
                "stage": "IXSCAN",
                "keyPattern": planner::explain_key_pattern(index, bounds),
                "indexName": index.name.clone(),
                "isMultiKey": index.is_multikey(),
                "isUnique": index.unique,
                "isSparse": index.sparse,
                "isPartial": index.partial.is_some(),
                "indexVersion": 2,
                "direction": if *forward { "forward" } else { "backward" },
                "indexBounds": bounds.clone(),
            };
            if *covered {
                // Answered from the index entries: no FETCH.
                return ixscan;
            }
            let mut fetch = doc! { "stage": "FETCH" };
            if !filter.is_empty() {
                fetch.insert("filter", filter.clone());
            }
            fetch.insert("inputStage", ixscan);
            return fetch;
        }
    };
    if !filter.is_empty() && matches!(access, Access::CollScan { .. }) {
        stage.insert("filter", filter.clone());
    }
    stage
}

/// A union branch's scan without the FETCH above it (the union's FETCH applies the filter).
fn index_stage(access: &Access) -> Document {
    let s = access_stage(access, &Document::new());
    match (s.get_str("stage"), s.get_document("inputStage")) {
        (Ok("FETCH"), Ok(ix)) => ix.clone(),
        _ => s,
    }
}

fn wrap(stage: &str, fields: Document, input: Document) -> Document {
    let mut d = doc! { "stage": stage };
    d.extend(fields);
    d.insert("inputStage", input);
    d
}

/// A plan's whole stage tree: the access stage under SORT, SKIP, LIMIT and PROJECTION as the
/// command needs them; EOF without a collection.
fn stage_tree(plan: Option<&Plan>, e: &Explained) -> Document {
    let mut stage = match plan {
        Some(p) => access_stage(&p.access, &e.filter),
        None => doc! { "stage": "EOF" },
    };
    let needs_sort = plan.is_some_and(|p| !p.sort_provided) && e.sort.as_ref().is_some_and(|s| !s.is_empty());
    if needs_sort {
        let sort = e.sort.clone().unwrap_or_default();
        let mut f = doc! { "sortPattern": sort, "memLimit": crate::query::spill::DEFAULT_MEMORY_LIMIT as i64, "type": "simple" };
        if let Some(l) = e.limit {
            f.insert("limitAmount", (l + e.skip) as i64);
        }
        stage = wrap("SORT", f, stage);
    }
    if e.skip > 0 {
        stage = wrap("SKIP", doc! { "skipAmount": e.skip as i64 }, stage);
    }
    if let (Some(l), false) = (e.limit, needs_sort) {
        stage = wrap("LIMIT", doc! { "limitAmount": l as i64 }, stage);
    }
    let covered = plan.is_some_and(crate::query::covered::is_covered);
    if let Some(p) = e.projection.as_ref().filter(|p| !p.is_empty() && (covered || !e.implied_projection)) {
        let name = if covered { "PROJECTION_COVERED" } else { "PROJECTION_DEFAULT" };
        stage = wrap(name, doc! { "transformBy": p.clone() }, stage);
    }
    stage
}

pub fn explain(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let inner = match req.body.get("explain") {
        Some(Bson::Document(d)) => d.clone(),
        _ => return Err(MongoError::type_mismatch("explain command requires a nested object")),
    };
    let verbosity = args::opt_str(req, "verbosity")?.unwrap_or("allPlansExecution").to_string();
    if !matches!(verbosity.as_str(), "queryPlanner" | "executionStats" | "allPlansExecution") {
        return Err(MongoError::bad_value(format!(
            "Enumeration value '{verbosity}' for field 'verbosity' is not a valid value."
        )));
    }
    let name = inner.keys().next().cloned().unwrap_or_default();
    if super::registry::lookup(&name).is_none() {
        return Err(MongoError::new(
            ErrorCode::CommandNotFound,
            format!("Explain failed due to unknown command: {name}"),
        ));
    }
    if name == "aggregate" {
        return explain_aggregate(ctx, req, &inner, &verbosity);
    }
    let e = parse_inner(&name, &inner)?;
    args::check_coll_name(&req.db, &e.coll)?;
    let ns = format!("{}.{}", req.db, e.coll);
    let coll = ctx.shared.store.catalog.get(&ns);
    // update and delete carry their collation in the statement.
    let stmt_collation = ["updates", "deletes"].iter().find_map(|k| match inner.get(*k) {
        Some(Bson::Array(a)) => a.first().and_then(|s| s.as_document()).and_then(|s| s.get("collation")),
        _ => None,
    });
    let _collation =
        crate::query::collation::enter_for(inner.get("collation").or(stmt_collation), coll.as_deref())?;
    let mut reply = explain_query(ctx, &ns, coll, &e, &verbosity)?;
    finish_reply(ctx, &req.db, inner, &mut reply);
    Ok(reply)
}

/// Adds the explained `command` and `serverInfo`, as every explain reply has them.
fn finish_reply(ctx: &Ctx, db: &str, mut command: Document, reply: &mut Document) {
    command.insert("$db", db.to_string());
    reply.insert("command", command);
    let port = ctx.shared.me.rsplit(':').next().and_then(|p| p.parse::<i32>().ok()).unwrap_or(0);
    reply.insert(
        "serverInfo",
        doc! { "host": ctx.shared.me.clone(), "port": port, "version": SERVER_VERSION, "gitVersion": "secantusdb" },
    );
}

/// `explain: {aggregate: ...}`: the view (if any) resolved, then as `aggregate` with
/// `explain: true` at the verbosity asked.
fn explain_aggregate(ctx: &mut Ctx, req: &Request, inner: &Document, verbosity: &str) -> Result<Document> {
    let coll = match inner.get("aggregate") {
        Some(Bson::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut pipeline = match inner.get("pipeline") {
        Some(Bson::Array(a)) => a.clone(),
        _ => return Err(MongoError::type_mismatch("'pipeline' must be an array")),
    };
    let mut source = format!("{}.{}", req.db, coll.as_deref().unwrap_or("$cmd.aggregate"));
    if let Some(c) =
        coll.as_deref().filter(|c| ctx.shared.store.catalog.get(&format!("{}.{c}", req.db)).is_none())
    {
        if let Some((base, mut stages)) = super::views::resolve(ctx, &req.db, c)? {
            source = format!("{}.{base}", req.db);
            stages.append(&mut pipeline);
            pipeline = stages;
        }
    }
    let _collation = crate::query::collation::enter_for(
        inner.get("collation"),
        coll.as_ref().and_then(|_| ctx.shared.store.collection(&source)).as_deref(),
    )?;
    let hint = inner.get("hint").filter(|h| !matches!(h, Bson::Null)).cloned();
    explain_pipeline(ctx, &req.db, &source, coll.is_some(), &pipeline, hint, verbosity, inner.clone())
}

/// The explain of a pipeline over `ns`: what the query layer answers (the leading `$match`
/// stages, then a `$sort` and the `$skip`/`$limit` after it) explained as a find under a
/// `$cursor` stage, followed by the other stages. A pipeline the query layer answers whole
/// has the find's shape, as mongod shows it.
#[allow(clippy::too_many_arguments)]
pub fn explain_pipeline(
    ctx: &mut Ctx,
    db: &str,
    ns: &str,
    has_coll: bool,
    pipeline: &[Bson],
    hint: Option<Bson>,
    verbosity: &str,
    command: Document,
) -> Result<Document> {
    let stage_of = |b: &Bson| -> Option<(String, Bson)> {
        match b {
            Bson::Document(d) if d.len() == 1 => d.iter().next().map(|(k, v)| (k.clone(), v.clone())),
            _ => None,
        }
    };
    let mut filters = Vec::new();
    let mut at = 0;
    while let Some(("$match", Bson::Document(f))) =
        pipeline.get(at).and_then(stage_of).as_ref().map(|(k, v)| (k.as_str(), v))
    {
        filters.push(f.clone());
        at += 1;
    }
    let filter = match filters.len() {
        0 => Document::new(),
        1 => filters.pop().unwrap_or_default(),
        _ => doc! { "$and": filters },
    };
    let mut e = Explained::new(String::new(), filter, hint);
    if let Some(("$sort", Bson::Document(sort))) =
        pipeline.get(at).and_then(stage_of).as_ref().map(|(k, v)| (k.as_str(), v))
    {
        e.sort = Some(sort.clone());
        at += 1;
        if let Some(("$skip", n)) = pipeline.get(at).and_then(stage_of).as_ref().map(|(k, v)| (k.as_str(), v))
        {
            e.skip = crate::query::util::exact_i64(n).filter(|n| *n > 0).unwrap_or(0) as u64;
            at += 1;
        }
        if let Some(("$limit", n)) =
            pipeline.get(at).and_then(stage_of).as_ref().map(|(k, v)| (k.as_str(), v))
        {
            e.limit = crate::query::util::exact_i64(n).filter(|n| *n > 0).map(|n| n as u64);
            at += 1;
        }
    }
    let rest: Vec<Bson> = pipeline.iter().skip(at).cloned().collect();
    // Later stages that read only some fields: the query layer projects to them (and an
    // index holding them covers the query), as mongod's `$cursor` plan shows.
    if !rest.is_empty() {
        e.projection =
            crate::agg::deps::input_fields(pipeline).as_deref().map(crate::query::covered::projection_of);
    }
    let mut reply = if has_coll {
        let coll = ctx.shared.store.catalog.get(ns);
        let part = explain_query(ctx, ns, coll, &e, verbosity)?;
        if rest.is_empty() {
            part
        } else {
            let mut cursor = part;
            cursor.remove("explainVersion");
            let mut stages = vec![Bson::Document(doc! { "$cursor": cursor })];
            stages.extend(rest);
            doc! { "explainVersion": "1", "stages": stages }
        }
    } else {
        doc! { "explainVersion": "1", "stages": pipeline.to_vec() }
    };
    finish_reply(ctx, db, command, &mut reply);
    Ok(reply)
}

/// The query part of an explain: `explainVersion`, `queryPlanner` and, past the queryPlanner
/// verbosity, `executionStats` from running the read part.
fn explain_query(
    ctx: &mut Ctx,
    ns: &str,
    coll: Option<std::sync::Arc<crate::store::catalog::Collection>>,
    e: &Explained,
    verbosity: &str,
) -> Result<Document> {
    Matcher::parse(&e.filter)?;
    let shape =
        multiplan::Shape { filter: &e.filter, sort: e.sort.as_ref(), projection: e.projection.as_ref() };
    // explain always runs the trial and neither reads nor fills the plan cache (as mongod).
    let choice = match &coll {
        Some(c) => Some(multiplan::choose(ctx.store, c, &shape, e.hint.as_ref(), false)?),
        None => None,
    };
    let plan = choice.as_ref().map(|c| c.plan.clone());
    let stage = stage_tree(plan.as_ref(), e);
    let trials = choice.map(|c| c.trials).unwrap_or_default();
    let rejected: Vec<Bson> =
        trials.iter().skip(1).map(|t| Bson::Document(stage_tree(Some(&t.plan), e))).collect();
    let mut reply = doc! {
        "explainVersion": "1",
        "queryPlanner": {
            "namespace": ns,
            "indexFilterSet": false,
            "parsedQuery": e.filter.clone(),
            "maxIndexedOrSolutionsReached": false,
            "maxIndexedAndSolutionsReached": false,
            "maxScansToExplodeReached": false,
            "winningPlan": stage.clone(),
            "rejectedPlans": rejected,
        },
    };
    if let (Some(c), Ok(qp)) = (&coll, reply.get_document_mut("queryPlanner")) {
        // The same hashes as the plan cache's entries for this shape.
        let (query_hash, plan_cache_key) = multiplan::hashes(c, &shape);
        qp.insert("queryHash", query_hash);
        qp.insert("planCacheKey", plan_cache_key);
    }
    if verbosity != "queryPlanner" {
        let started = Instant::now();
        let mut stats = crate::query::exec::ExecStats::default();
        if let (Some(c), Some(plan)) = (coll, plan) {
            let sort =
                if plan.sort_provided { None } else { e.sort.as_ref().map(SortSpec::parse).transpose()? };
            let filter = if e.filter.is_empty() { None } else { Some(Matcher::parse(&e.filter)?) };
            let mut exec = Exec::new(
                c,
                plan.access,
                ExecOptions {
                    filter,
                    sort,
                    projection: None,
                    skip: e.skip,
                    limit: e.limit,
                    allow_disk_use: true,
                },
            );
            while exec.next_match(ctx.store)?.is_some() {}
            stats = exec.stats;
        }
        let mut exec_stages = stage;
        exec_stages.insert("nReturned", stats.returned as i64);
        let mut exec_stats = doc! {
            "executionSuccess": true,
            "nReturned": stats.returned as i64,
            "executionTimeMillis": started.elapsed().as_millis() as i64,
            "totalKeysExamined": stats.keys_examined as i64,
            "totalDocsExamined": stats.docs_examined as i64,
            "executionStages": exec_stages,
        };
        if verbosity == "allPlansExecution" {
            // One entry per candidate, with what its trial did.
            let all: Vec<Bson> = trials
                .iter()
                .map(|t| {
                    let mut stages = stage_tree(Some(&t.plan), e);
                    stages.insert("nReturned", t.stats.returned as i64);
                    Bson::Document(doc! {
                        "nReturned": t.stats.returned as i64,
                        "executionTimeMillisEstimate": 0_i64,
                        "totalKeysExamined": t.stats.keys_examined as i64,
                        "totalDocsExamined": t.stats.docs_examined as i64,
                        "executionStages": stages,
                    })
                })
                .collect();
            exec_stats.insert("allPlansExecution", all);
        }
        reply.insert("executionStats", exec_stats);
    }
    Ok(reply)
}

/// `planCacheClear`: forgets the collection's cached plans, or only those of the shape given
/// by `query` / `sort` / `projection` (and `collation`). A missing collection has none.
pub fn plan_cache_clear(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    let ns = format!("{}.{}", req.db, coll_name);
    let query = args::opt_doc(req, "query")?;
    let sort = args::opt_doc(req, "sort")?;
    let projection = args::opt_doc(req, "projection")?;
    if query.is_none() && (sort.is_some() || projection.is_some()) {
        return Err(MongoError::bad_value("required field query missing"));
    }
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        return Ok(doc! { "ok": 1.0 });
    };
    let _collation = crate::query::collation::enter_for(req.body.get("collation"), Some(&coll))?;
    match query {
        Some(filter) => {
            Matcher::parse(filter)?;
            let shape = multiplan::Shape { filter, sort, projection };
            multiplan::clear(&coll, Some(&shape));
        }
        None => multiplan::clear(&coll, None),
    }
    Ok(doc! { "ok": 1.0 })
}
