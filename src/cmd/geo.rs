//! Queries sorted by distance: `find` with `$near`/`$nearSphere`, and the `$geoNear`
//! aggregation stage. Both need a 2d/2dsphere index on the field (as mongod does), but since
//! geo indexes hold no entries (see `IndexKind::Geo`), they scan the collection with the rest
//! of the filter, compute each document's distance and sort. A leading `$geoNear` is replaced
//! by a `$documents` stage holding its output (as `stats_stages` does for `$collStats`).

use super::cursor::{self, DEFAULT_FIRST_BATCH};
use super::{args, Ctx, Request};
use crate::cursors::CursorSource;
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{bson_size, Access, Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::ops_geo::Near;
use crate::query::projection::Projection;
use crate::query::util::{bad_value, located, number_as_f64, type_name};
use crate::store::catalog::{Collection, IndexKind};
use bson::{doc, Bson, Document};
use std::collections::VecDeque;

/// Most bytes of documents one distance sort holds in memory.
const MAX_SORT_BYTES: usize = 100 * 1024 * 1024;

fn no_index() -> MongoError {
    MongoError::new(
        ErrorCode::NoQueryExecutionPlans,
        "error processing query: planner returned error :: caused by :: unable to find index for $geoNear query",
    )
}

/// The geo fields of the collection's usable indexes: (field, "2d" | "2dsphere").
fn geo_fields(coll: &Collection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for idx in coll.indexes.iter().filter(|i| matches!(i.kind, IndexKind::Geo)) {
        if idx.spec.get_bool("hidden").unwrap_or(false) {
            continue;
        }
        for (field, kind) in &idx.key {
            if let Bson::String(k) = kind {
                if k == "2d" || k == "2dsphere" {
                    out.push((field.clone(), k.clone()));
                }
            }
        }
    }
    out
}

/// Whether an index can answer `near`: a 2dsphere index for a GeoJSON point, either kind
/// for a legacy pair.
fn has_index(coll: &Collection, near: &Near) -> bool {
    geo_fields(coll).iter().any(|(f, k)| f == &near.field && (k == "2dsphere" || !near.geojson))
}

/// Documents matching `filter` within range of `near`, nearest first, with their distance
/// and the location that gave it.
fn nearest(
    ctx: &mut Ctx,
    coll: std::sync::Arc<Collection>,
    near: &Near,
    filter: &Document,
) -> Result<Vec<(f64, Bson, Document)>> {
    let matcher = if filter.is_empty() { None } else { Some(Matcher::parse(filter)?) };
    let opts = ExecOptions {
        filter: matcher,
        sort: None,
        projection: None,
        skip: 0,
        limit: None,
        allow_disk_use: false,
    };
    let mut exec = Exec::new(coll, Access::CollScan { forward: true }, opts);
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some((_, doc)) = exec.next_match(ctx.store)? {
        let Some((d, loc)) = near.distance(&doc) else { continue };
        if !near.in_range(d) {
            continue;
        }
        bytes += bson_size(&doc);
        if bytes > MAX_SORT_BYTES {
            return Err(MongoError::new(
                ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                "geo near sort exceeded the memory limit of 104857600 bytes",
            ));
        }
        out.push((d * near.multiplier, loc, doc));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

/// `find` whose filter has a top-level `$near`/`$nearSphere`.
pub fn find_near(ctx: &mut Ctx, req: &Request, ns: &str, near: Near, rest: Document) -> Result<Document> {
    let skip = args::opt_i64(req, "skip")?.unwrap_or(0).max(0) as usize;
    let limit = args::opt_i64(req, "limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let batch_size = args::opt_i64(req, "batchSize")?.filter(|b| *b >= 0).map(|b| b as usize);
    let single_batch = args::opt_bool(req, "singleBatch")?.unwrap_or(false);
    let projection = args::opt_doc(req, "projection")?
        .filter(|p| !p.is_empty())
        .map(|p| Projection::parse_with_query(p, Some(&rest)))
        .transpose()?;
    let Some(coll) = ctx.shared.store.collection(ns) else {
        // A find on a view runs as an aggregate's $match, where $near is refused.
        if super::views::definition(ctx, &req.db, &args::collection(req)?)?.is_some() {
            return Err(crate::query::ops_geo::near_not_allowed());
        }
        return Ok(cursor::cursor_reply(ns, 0, Vec::new(), true));
    };
    if !has_index(&coll, &near) {
        return Err(no_index());
    }
    let sort = args::opt_doc(req, "sort")?
        .filter(|s| !s.is_empty() && !s.contains_key("$natural"))
        .map(crate::query::sort::SortSpec::parse)
        .transpose()?;
    let mut found: Vec<Document> = nearest(ctx, coll, &near, &rest)?.into_iter().map(|(_, _, d)| d).collect();
    if let Some(s) = sort {
        // An explicit sort reorders the results; ties stay nearest first (a stable sort).
        s.sort_documents(&mut found);
    }
    let mut docs = VecDeque::new();
    for doc in found.into_iter().skip(skip).take(limit.unwrap_or(usize::MAX)) {
        docs.push_back(match &projection {
            Some(p) => p.apply(&doc)?,
            None => doc,
        });
    }
    let first = match (batch_size, limit) {
        (Some(b), Some(l)) => b.min(l),
        (Some(b), None) => b,
        (None, Some(l)) => l.min(DEFAULT_FIRST_BATCH),
        (None, None) => DEFAULT_FIRST_BATCH,
    };
    cursor::open_cursor(ctx, ns.to_string(), CursorSource::Buffered(docs), first, None, single_batch)
}

/// The count command with a top-level `$near`/`$nearSphere`: the documents within range.
pub fn count_near(
    ctx: &mut Ctx,
    ns: &str,
    near: Near,
    rest: Document,
    skip: u64,
    limit: Option<u64>,
) -> Result<Document> {
    let Some(coll) = ctx.shared.store.collection(ns) else {
        return Ok(doc! {"n": 0});
    };
    if !has_index(&coll, &near) {
        return Err(no_index());
    }
    let found = nearest(ctx, coll, &near, &rest)?.len() as u64;
    let n = found.saturating_sub(skip).min(limit.unwrap_or(u64::MAX));
    Ok(doc! {"n": super::catalog::num(n)})
}

/// A parsed `$geoNear` stage.
struct GeoNearSpec {
    near: Bson,
    spherical: bool,
    distance_field: String,
    min: Option<f64>,
    max: Option<f64>,
    query: Document,
    include_locs: Option<String>,
    multiplier: f64,
    key: Option<String>,
}

fn non_negative(name: &str, v: &Bson) -> Result<f64> {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => match number_as_f64(v) {
            Some(d) if d >= 0.0 => Ok(d),
            _ => Err(bad_value(format!("{name} must be nonnegative"))),
        },
        other => {
            Err(MongoError::type_mismatch(format!("{name} must be a number, but got {}", type_name(other))))
        }
    }
}

fn parse_spec(spec: &Bson) -> Result<GeoNearSpec> {
    let Bson::Document(d) = spec else {
        return Err(located(
            10065,
            ErrorCode::FailedToParse,
            "invalid parameter: object expected for $geoNear",
        ));
    };
    let mut out = GeoNearSpec {
        near: Bson::Null,
        spherical: false,
        distance_field: String::new(),
        min: None,
        max: None,
        query: Document::new(),
        include_locs: None,
        multiplier: 1.0,
        key: None,
    };
    for (k, v) in d {
        match (k.as_str(), v) {
            ("near", v) => out.near = v.clone(),
            ("distanceField", Bson::String(s)) => out.distance_field = s.clone(),
            ("distanceField", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "distanceField must be of type string but found {}",
                    type_name(other)
                )))
            }
            ("spherical", v) => out.spherical = crate::query::util::true_value(v),
            ("maxDistance", v) => out.max = Some(non_negative("maxDistance", v)?),
            ("minDistance", v) => out.min = Some(non_negative("minDistance", v)?),
            ("query", Bson::Document(q)) => out.query = q.clone(),
            ("query", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "query must be an object, but got {}",
                    type_name(other)
                )))
            }
            ("includeLocs", Bson::String(s)) => out.include_locs = Some(s.clone()),
            ("includeLocs", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "includeLocs must be of type string but found {}",
                    type_name(other)
                )))
            }
            ("distanceMultiplier", v) => out.multiplier = non_negative("distanceMultiplier", v)?,
            ("key", Bson::String(s)) if !s.is_empty() => out.key = Some(s.clone()),
            ("key", Bson::String(_)) => {
                return Err(bad_value("$geoNear parameter 'key' cannot be the empty string"))
            }
            ("key", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "Expected \"key\" field to be a string, got {}",
                    type_name(other)
                )))
            }
            // Accepted and ignored by mongod since 2.6.
            ("uniqueDocs", _) => {}
            (other, _) => return Err(bad_value(format!("Unknown argument to $geoNear: {other}"))),
        }
    }
    if matches!(out.near, Bson::Null) {
        return Err(bad_value("$geoNear requires a 'near' option as an Array"));
    }
    if out.distance_field.is_empty() {
        return Err(located(
            16606,
            ErrorCode::FailedToParse,
            "$geoNear requires a 'distanceField' option as a String",
        ));
    }
    Ok(out)
}

/// The field `$geoNear` runs on: `key`, or the only 2d index, or else the only 2dsphere one.
fn pick_field(coll: &Collection, spec: &GeoNearSpec) -> Result<String> {
    let fields = geo_fields(coll);
    if let Some(k) = &spec.key {
        if fields.iter().any(|(f, _)| f == k) {
            return Ok(k.clone());
        }
        return Err(no_index());
    }
    for kind in ["2d", "2dsphere"] {
        let of_kind: Vec<&String> = fields.iter().filter(|(_, k)| k == kind).map(|(f, _)| f).collect();
        match of_kind.as_slice() {
            [] => {}
            [only] => return Ok((*only).clone()),
            _ => {
                return Err(MongoError::new(
                    ErrorCode::IndexNotFound,
                    format!(
                        "There is more than one {kind} index on {}; unsure which to use for $geoNear",
                        coll.ns
                    ),
                ))
            }
        }
    }
    Err(MongoError::new(
        ErrorCode::IndexNotFound,
        "$geoNear requires a 2d or 2dsphere index, but none were found",
    ))
}

/// Replaces a leading `$geoNear` of `pipeline` (on collection `coll`) by its documents; one
/// anywhere else is refused when the stage is parsed.
pub fn rewrite_geo_near(ctx: &mut Ctx, db: &str, coll: &str, pipeline: &mut [Bson]) -> Result<()> {
    let Some(Bson::Document(first)) = pipeline.first() else { return Ok(()) };
    let Some(spec) = first.get("$geoNear") else { return Ok(()) };
    let spec = parse_spec(spec)?;
    let ns = format!("{db}.{coll}");
    let docs = match ctx.shared.store.collection(&ns) {
        None => Vec::new(),
        Some(c) => {
            let field = pick_field(&c, &spec)?;
            let mut near = Near::from_point(&field, &spec.near, spec.spherical)?;
            near.min = spec.min;
            near.max = spec.max;
            near.multiplier = spec.multiplier;
            if !has_index(&c, &near) {
                return Err(no_index());
            }
            let mut out = Vec::new();
            for (d, loc, mut doc) in nearest(ctx, c, &near, &spec.query)? {
                crate::query::path::set_path(&mut doc, &spec.distance_field, Bson::Double(d))?;
                if let Some(f) = &spec.include_locs {
                    crate::query::path::set_path(&mut doc, f, loc)?;
                }
                out.push(Bson::Document(doc));
            }
            out
        }
    };
    if let Some(slot) = pipeline.first_mut() {
        *slot = Bson::Document(doc! {"$documents": {"$literal": docs}});
    }
    Ok(())
}

/// The error for a `$geoNear` that is not the first stage.
pub fn not_first() -> MongoError {
    located(40603, ErrorCode::BadValue, "$geoNear was not the first stage in the pipeline.")
}
