//! The aggregation pipeline. Until the aggregation issue lands this runs only the stages
//! drivers' helpers and simple tools send ($match, $sort, $skip, $limit, $project, $count and
//! a `$group` by a constant or a field path with simple accumulators), materialising the
//! result; any other stage gets mongod's unrecognised-stage error.

pub mod expr;

use crate::cmd::Ctx;
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Exec, ExecOptions};
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

/// The value of a `$field.path` reference (arrays are not traversed), or the constant itself.
fn operand(d: &Document, arg: &Bson) -> Bson {
    match arg {
        Bson::String(p) if p.starts_with('$') => {
            let mut cur: Option<&Bson> = None;
            for (i, part) in p[1..].split('.').enumerate() {
                cur = if i == 0 {
                    d.get(part)
                } else {
                    match cur {
                        Some(Bson::Document(sub)) => sub.get(part),
                        _ => None,
                    }
                };
            }
            cur.cloned().unwrap_or(Bson::Null)
        }
        other => other.clone(),
    }
}

/// Running state of one accumulator.
enum Acc {
    Sum { int: i64, float: f64, is_float: bool },
    Avg { total: f64, n: u64 },
    Min(Option<Bson>),
    Max(Option<Bson>),
    First(Option<Bson>),
    Last(Bson),
    Push(Vec<Bson>),
}

impl Acc {
    fn new(op: &str) -> Result<Acc> {
        Ok(match op {
            "$sum" | "$count" => Acc::Sum { int: 0, float: 0.0, is_float: false },
            "$avg" => Acc::Avg { total: 0.0, n: 0 },
            "$min" => Acc::Min(None),
            "$max" => Acc::Max(None),
            "$first" => Acc::First(None),
            "$last" => Acc::Last(Bson::Null),
            "$push" => Acc::Push(Vec::new()),
            other => {
                return Err(MongoError::new(
                    ErrorCode::NotImplemented,
                    format!("accumulator {other} arrives with the aggregation issue"),
                ))
            }
        })
    }

    fn add(&mut self, v: Bson) {
        use crate::query::compare::compare_bson;
        match self {
            Acc::Sum { int, float, is_float } => match v {
                Bson::Int32(n) => *int = int.saturating_add(n as i64),
                Bson::Int64(n) => *int = int.saturating_add(n),
                Bson::Double(f) => {
                    *is_float = true;
                    *float += f;
                }
                _ => {}
            },
            Acc::Avg { total, n } => match v {
                Bson::Int32(x) => {
                    *total += x as f64;
                    *n += 1;
                }
                Bson::Int64(x) => {
                    *total += x as f64;
                    *n += 1;
                }
                Bson::Double(x) => {
                    *total += x;
                    *n += 1;
                }
                _ => {}
            },
            Acc::Min(cur) => {
                if !matches!(v, Bson::Null | Bson::Undefined)
                    && cur.as_ref().is_none_or(|c| compare_bson(&v, c).is_lt())
                {
                    *cur = Some(v);
                }
            }
            Acc::Max(cur) => {
                if !matches!(v, Bson::Null | Bson::Undefined)
                    && cur.as_ref().is_none_or(|c| compare_bson(&v, c).is_gt())
                {
                    *cur = Some(v);
                }
            }
            Acc::First(cur) => {
                if cur.is_none() {
                    *cur = Some(v);
                }
            }
            Acc::Last(cur) => *cur = v,
            Acc::Push(list) => list.push(v),
        }
    }

    fn finish(self) -> Bson {
        match self {
            Acc::Sum { int, float, is_float } => {
                if is_float {
                    Bson::Double(float + int as f64)
                } else if let Ok(small) = i32::try_from(int) {
                    Bson::Int32(small)
                } else {
                    Bson::Int64(int)
                }
            }
            Acc::Avg { total, n } => {
                if n == 0 {
                    Bson::Null
                } else {
                    Bson::Double(total / n as f64)
                }
            }
            Acc::Min(v) | Acc::Max(v) | Acc::First(v) => v.unwrap_or(Bson::Null),
            Acc::Last(v) => v,
            Acc::Push(list) => Bson::Array(list),
        }
    }
}

/// `$group` by a constant or a field path with simple accumulators ($sum, $count, $avg,
/// $min, $max, $first, $last, $push); groups come out in first-seen order.
fn group(docs: Vec<Document>, spec: &Document) -> Result<Vec<Document>> {
    let id = spec.get("_id").cloned().ok_or_else(|| {
        MongoError::new(ErrorCode::Location15955, "a group specification must include an _id")
    })?;
    if matches!(id, Bson::Document(_)) {
        return Err(MongoError::new(
            ErrorCode::NotImplemented,
            "$group by an object arrives with the aggregation issue",
        ));
    }
    let mut accs: Vec<(String, String, Bson)> = Vec::new();
    for (name, acc) in spec.iter().filter(|(k, _)| *k != "_id") {
        let Bson::Document(acc) = acc else {
            return Err(MongoError::new(
                ErrorCode::Location40234,
                format!("The field '{name}' must be an accumulator object"),
            ));
        };
        let Some((op, arg)) = acc.iter().next().filter(|_| acc.len() == 1) else {
            return Err(MongoError::new(
                ErrorCode::Location40234,
                format!("The field '{name}' must specify one accumulator"),
            ));
        };
        Acc::new(op)?;
        let arg = if op == "$count" { Bson::Int32(1) } else { arg.clone() };
        accs.push((name.clone(), op.clone(), arg));
    }
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut groups: std::collections::HashMap<Vec<u8>, (Bson, Vec<Acc>)> = std::collections::HashMap::new();
    for d in &docs {
        let key = operand(d, &id);
        let k = crate::store::keystring::encode_key(&[(&key, false)]);
        if !groups.contains_key(&k) {
            let fresh = accs.iter().map(|(_, op, _)| Acc::new(op)).collect::<Result<Vec<_>>>()?;
            order.push(k.clone());
            groups.insert(k.clone(), (key, fresh));
        }
        if let Some((_, state)) = groups.get_mut(&k) {
            for ((_, _, arg), acc) in accs.iter().zip(state.iter_mut()) {
                acc.add(operand(d, arg));
            }
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for k in order {
        if let Some((key, state)) = groups.remove(&k) {
            let mut g = doc! { "_id": key };
            for ((name, _, _), acc) in accs.iter().zip(state) {
                g.insert(name.clone(), acc.finish());
            }
            out.push(g);
        }
    }
    Ok(out)
}
