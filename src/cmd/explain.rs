//! explain for find, count, distinct, update, delete and findAndModify: the plan the planner
//! picks, as mongod's stage tree (`queryPlanner`), and with `executionStats` /
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
    let mut e = Explained {
        coll,
        filter: Document::new(),
        sort: None,
        projection: None,
        implied_projection: false,
        skip: 0,
        limit: None,
        hint,
    };
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
    if let Access::Or(branches) = access {
        // mongod's shape: the union of index scans under one FETCH that applies the filter.
        let inputs: Vec<Document> = branches
            .iter()
            .map(|b| {
                let s = access_stage(b, &Document::new());
                match (s.get_str("stage"), s.get_document("inputStage")) {
                    (Ok("FETCH"), Ok(ix)) => ix.clone(),
                    _ => s,
                }
            })
            .collect();
        let mut fetch = doc! { "stage": "FETCH" };
        if !filter.is_empty() {
            fetch.insert("filter", filter.clone());
        }
        fetch.insert("inputStage", doc! { "stage": "OR", "inputStages": inputs });
        return fetch;
    }
    let mut stage = match access {
        Access::Or(_) => Document::new(),
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

/// An aggregation's `$cursor` plans: the winning plan and the rejected ones of the choice
/// for its leading `$match` (with the projection its later stages allow, if any).
pub fn cursor_plans(
    choice: &multiplan::Choice,
    filter: &Document,
    projection: Option<&Document>,
) -> (Document, Vec<Bson>) {
    let e = Explained {
        coll: String::new(),
        filter: filter.clone(),
        sort: None,
        projection: projection.cloned(),
        implied_projection: false,
        skip: 0,
        limit: None,
        hint: None,
    };
    let winning = stage_tree(Some(&choice.plan), &e);
    let rejected =
        choice.trials.iter().skip(1).map(|t| Bson::Document(stage_tree(Some(&t.plan), &e))).collect();
    (winning, rejected)
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
    Matcher::parse(&e.filter)?;
    let shape =
        multiplan::Shape { filter: &e.filter, sort: e.sort.as_ref(), projection: e.projection.as_ref() };
    // explain always runs the trial and neither reads nor fills the plan cache (as mongod).
    let choice = match &coll {
        Some(c) => Some(multiplan::choose(ctx.store, c, &shape, e.hint.as_ref(), false)?),
        None => None,
    };
    let plan = choice.as_ref().map(|c| c.plan.clone());
    let stage = stage_tree(plan.as_ref(), &e);
    let trials = choice.map(|c| c.trials).unwrap_or_default();
    let rejected: Vec<Bson> =
        trials.iter().skip(1).map(|t| Bson::Document(stage_tree(Some(&t.plan), &e))).collect();
    let mut reply = doc! {
        "explainVersion": "1",
        "queryPlanner": {
            "namespace": ns.clone(),
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
                    let mut stages = stage_tree(Some(&t.plan), &e);
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
    let mut command = inner.clone();
    command.insert("$db", req.db.clone());
    reply.insert("command", command);
    let port = ctx.shared.me.rsplit(':').next().and_then(|p| p.parse::<i32>().ok()).unwrap_or(0);
    reply.insert(
        "serverInfo",
        doc! { "host": ctx.shared.me.clone(), "port": port, "version": SERVER_VERSION, "gitVersion": "secantusdb" },
    );
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
