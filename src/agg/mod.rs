//! The aggregation pipeline. Until the aggregation issue lands this runs only the stages
//! drivers' own helpers send ($match, $sort, $skip, $limit, $project, $count and a `$group`
//! that counts or sums), materialising the result; any other stage gets mongod's
//! unrecognised-stage error.

use crate::cmd::Ctx;
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Access, Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::planner;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use bson::{doc, Bson, Document};

/// Runs a pipeline of single-field stage documents over one collection.
pub fn run_basic(ctx: &mut Ctx, ns: &str, stages: &[Document]) -> Result<Vec<Document>> {
    // A leading $match goes to the planner so it can use an index.
    let (filter, rest) = match stages.first().and_then(|s| s.get_document("$match").ok()) {
        Some(f) => (f.clone(), &stages[1..]),
        None => (Document::new(), stages),
    };
    let mut docs: Vec<Document> = Vec::new();
    if let Some(coll) = ctx.shared.store.catalog.get(ns) {
        let access = planner::plan(&coll, &filter, None, None)?;
        let matcher = if filter.is_empty() { None } else { Some(Matcher::parse(&filter)?) };
        let mut exec = Exec::new(
            coll,
            access,
            ExecOptions {
                filter: matcher,
                sort: None,
                projection: None,
                skip: 0,
                limit: None,
                allow_disk_use: false,
            },
        );
        while let Some((_, d)) = exec.next_match(ctx.store)? {
            docs.push(d);
        }
    } else {
        Matcher::parse(&filter)?;
    }
    let _ = Access::CollScan { forward: true };
    for stage in rest {
        let Some((name, spec)) = stage.iter().next() else {
            continue;
        };
        docs = match (name.as_str(), spec) {
            ("$match", Bson::Document(f)) => {
                let m = Matcher::parse(f)?;
                docs.into_iter().filter(|d| m.matches(d)).collect()
            }
            ("$sort", Bson::Document(s)) => {
                let s = SortSpec::parse(s)?;
                docs.sort_by(|a, b| s.compare(a, b));
                docs
            }
            ("$skip", v) => {
                let n = whole(v, "$skip")?;
                docs.into_iter().skip(n).collect()
            }
            ("$limit", v) => {
                let n = whole(v, "$limit")?;
                if n == 0 {
                    return Err(MongoError::new(ErrorCode::Location15958, "the limit must be positive"));
                }
                docs.into_iter().take(n).collect()
            }
            ("$project", Bson::Document(p)) => {
                let p = Projection::parse(p)?;
                docs.iter().map(|d| p.apply(d)).collect::<Result<_>>()?
            }
            ("$count", Bson::String(field)) => {
                if docs.is_empty() {
                    Vec::new()
                } else {
                    vec![doc! { field.clone(): docs.len() as i32 }]
                }
            }
            ("$group", Bson::Document(g)) => group(docs, g)?,
            ("$listSearchIndexes", _) => {
                return Err(MongoError::new(
                    ErrorCode::CommandNotSupported,
                    "Search index commands are only supported with Atlas.",
                ))
            }
            (other, _) => {
                return Err(MongoError::new(
                    ErrorCode::Location40324,
                    format!("Unrecognized pipeline stage name: '{other}'"),
                ))
            }
        };
    }
    Ok(docs)
}

fn whole(v: &Bson, stage: &str) -> Result<usize> {
    match v {
        Bson::Int32(n) if *n >= 0 => Ok(*n as usize),
        Bson::Int64(n) if *n >= 0 => Ok(*n as usize),
        Bson::Double(n) if *n >= 0.0 && n.fract() == 0.0 => Ok(*n as usize),
        _ => Err(MongoError::bad_value(format!(
            "invalid argument to {stage} stage: expected a non-negative whole number"
        ))),
    }
}

/// `$group` with a constant `_id` (or `null`) and `$sum` accumulators of constants or
/// top-level fields: the shape countDocuments and simple totals use.
fn group(docs: Vec<Document>, spec: &Document) -> Result<Vec<Document>> {
    let id = spec.get("_id").cloned().ok_or_else(|| {
        MongoError::new(ErrorCode::Location15955, "a group specification must include an _id")
    })?;
    if matches!(&id, Bson::String(s) if s.starts_with('$')) || matches!(id, Bson::Document(_)) {
        return Err(MongoError::new(
            ErrorCode::NotImplemented,
            "$group by field arrives with the aggregation issue",
        ));
    }
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = doc! { "_id": id };
    for (name, acc) in spec.iter().filter(|(k, _)| *k != "_id") {
        let Some(Bson::Document(acc)) = Some(acc) else {
            return Err(MongoError::new(
                ErrorCode::Location40234,
                format!("The field '{name}' must be an accumulator object"),
            ));
        };
        let Some(arg) = acc.get("$sum") else {
            return Err(MongoError::new(
                ErrorCode::NotImplemented,
                "only $sum is available until the aggregation issue",
            ));
        };
        let mut total_i: i64 = 0;
        let mut total_f: f64 = 0.0;
        let mut float = false;
        for d in &docs {
            let v = match arg {
                Bson::String(p) if p.starts_with('$') => d.get(&p[1..]).cloned().unwrap_or(Bson::Null),
                other => other.clone(),
            };
            match v {
                Bson::Int32(n) => total_i = total_i.saturating_add(n as i64),
                Bson::Int64(n) => total_i = total_i.saturating_add(n),
                Bson::Double(f) => {
                    float = true;
                    total_f += f;
                }
                _ => {}
            }
        }
        let v = if float {
            Bson::Double(total_f + total_i as f64)
        } else if total_i >= i32::MIN as i64 && total_i <= i32::MAX as i64 {
            Bson::Int32(total_i as i32)
        } else {
            Bson::Int64(total_i)
        };
        out.insert(name.clone(), v);
    }
    Ok(vec![out])
}
