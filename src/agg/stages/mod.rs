//! Stage parsing (one dispatch table) and the simple streaming stages: `$match`, `$skip`,
//! `$limit`, `$count`, `$replaceRoot`/`$replaceWith`, `$unwind`, `$sample`, `$redact`-free.
//! Families live in their own files: projection, group, sort, join (lookup/unionWith/facet)
//! and output ($out/$merge).

mod bucket_auto;
pub mod fill;
pub mod granularity;
pub mod group;
mod group_spill;
pub mod join;
pub mod output;
pub mod project;
pub mod recursive;
pub mod sort;
pub mod window;

use super::expr::{err, truthy, Expr};
use super::pipeline::{ParseCtx, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::matcher::Matcher;
use crate::query::util::{type_name, value_to_string};
use bson::{doc, Bson, Document};
use std::sync::Arc;

/// Every stage name mongod knows (whether or not this server runs it).
pub const STAGE_NAMES: &[&str] = &[
    "$addFields",
    "$bucket",
    "$bucketAuto",
    "$changeStream",
    "$changeStreamSplitLargeEvent",
    "$collStats",
    "$count",
    "$currentOp",
    "$densify",
    "$documents",
    "$facet",
    "$fill",
    "$geoNear",
    "$graphLookup",
    "$group",
    "$indexStats",
    "$limit",
    "$listLocalSessions",
    "$listSampledQueries",
    "$listSearchIndexes",
    "$listSessions",
    "$lookup",
    "$match",
    "$merge",
    "$out",
    "$planCacheStats",
    "$project",
    "$querySettings",
    "$queryStats",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
    "$search",
    "$searchMeta",
    "$set",
    "$setWindowFields",
    "$shardedDataDistribution",
    "$skip",
    "$sort",
    "$sortByCount",
    "$unionWith",
    "$unset",
    "$unwind",
    "$vectorSearch",
];

/// Parses one stage (some stages expand into several).
pub fn parse_stage(name: &str, spec: &Bson, pc: &ParseCtx) -> Result<Vec<Arc<dyn StageSpec>>> {
    let one = |s: Arc<dyn StageSpec>| Ok(vec![s]);
    match name {
        "$match" => one(Arc::new(MatchSpec::parse(spec, pc)?)),
        "$skip" => one(Arc::new(Skip(whole(spec, "$skip")?))),
        "$limit" => {
            let n = whole(spec, "$limit")?;
            if n == 0 {
                return Err(err(15958, "the limit must be positive"));
            }
            one(Arc::new(Limit(n)))
        }
        "$count" => one(Arc::new(parse_count(spec)?)),
        "$replaceRoot" => {
            let Bson::Document(d) = spec else {
                return Err(err(
                    40229,
                    format!(
                        "expected an object as specification for $replaceRoot stage, got {}",
                        type_name(spec)
                    ),
                ));
            };
            for k in d.keys() {
                if k != "newRoot" {
                    return Err(err(40415, format!("BSON field '$replaceRoot.{k}' is an unknown field.")));
                }
            }
            let root = d.get("newRoot").ok_or_else(|| {
                err(40414, "BSON field '$replaceRoot.newRoot' is missing but a required field")
            })?;
            one(Arc::new(ReplaceRoot { expr: pc.parser().parse(root)?, stage: "$replaceRoot" }))
        }
        "$replaceWith" => {
            one(Arc::new(ReplaceRoot { expr: pc.parser().parse(spec)?, stage: "$replaceWith" }))
        }
        "$unwind" => one(Arc::new(Unwind::parse(spec)?)),
        "$sample" => one(Arc::new(sort::Sample::parse(spec)?)),
        "$project" => one(Arc::new(project::parse_project(spec, pc)?)),
        "$addFields" | "$set" => one(Arc::new(project::parse_add_fields(name, spec, pc)?)),
        "$unset" => one(Arc::new(project::parse_unset(spec)?)),
        "$group" => one(Arc::new(group::GroupSpec::parse(spec, pc)?)),
        "$sortByCount" => group::parse_sort_by_count(spec, pc),
        "$bucket" => group::parse_bucket(spec, pc),
        "$bucketAuto" => group::parse_bucket_auto(spec, pc),
        "$sort" => one(Arc::new(sort::SortStage::parse(spec)?)),
        "$lookup" => one(Arc::new(join::Lookup::parse(spec, pc)?)),
        "$unionWith" => one(Arc::new(join::UnionWith::parse(spec, pc)?)),
        "$facet" => one(Arc::new(join::Facet::parse(spec, pc)?)),
        "$redact" => one(Arc::new(recursive::Redact::parse(spec, pc)?)),
        "$graphLookup" => one(Arc::new(recursive::GraphLookup::parse(spec, pc)?)),
        "$out" => one(Arc::new(output::Out::parse(spec, pc)?)),
        "$merge" => one(Arc::new(output::Merge::parse(spec, pc)?)),
        "$listSearchIndexes" | "$search" | "$searchMeta" | "$vectorSearch" => Err(MongoError::new(
            ErrorCode::CommandNotSupported,
            "Search index commands are only supported with Atlas.",
        )),
        "$setWindowFields" => one(Arc::new(window::SetWindowFields::parse(spec, pc)?)),
        "$densify" => one(Arc::new(fill::Densify::parse(spec)?)),
        "$fill" => fill::parse_fill(spec, pc),
        // The command layer turns a leading one into its documents (cmd/stats_stages.rs).
        "$collStats" | "$indexStats" | "$currentOp" | "$planCacheStats" => {
            Err(err(40602, format!("{name} is only valid as the first stage in a pipeline")))
        }
        // The command layer turns a leading one into its documents (cmd/geo.rs).
        "$geoNear" => Err(crate::cmd::geo::not_first()),
        "$listSessions" | "$listLocalSessions" | "$changeStream" => {
            Err(MongoError::new(ErrorCode::NotImplemented, format!("the {name} stage is not supported yet")))
        }
        other => Err(MongoError::new(
            ErrorCode::Location40324,
            format!("Unrecognized pipeline stage name: '{other}'"),
        )),
    }
}

fn whole(v: &Bson, stage: &str) -> Result<u64> {
    let (code_type, code_neg) = if stage == "$skip" { (15972, 15956) } else { (15957, 15958) };
    let n = match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => v,
        other => {
            return Err(err(
                code_type,
                format!("Argument to {stage} must be a number, got {}", type_name(other)),
            ));
        }
    };
    let Some(i) = crate::query::util::exact_i64(n) else {
        return Err(err(
            code_type,
            format!(
                "invalid argument to {stage} stage: Cannot represent as a 64-bit integer: {}",
                value_to_string(n)
            ),
        ));
    };
    if i < 0 {
        return Err(err(
            code_neg,
            if stage == "$skip" {
                format!("invalid argument to $skip stage: Expected a non-negative number in: $skip: {i}")
            } else {
                format!("invalid argument to $limit stage: Expected a non-negative number in: $limit: {i}")
            },
        ));
    }
    Ok(i as u64)
}

/// `$match`: a query filter; top-level `$expr` clauses are compiled with the pipeline's
/// variables in scope (a `$lookup` pipeline's `let`).
pub struct MatchSpec {
    /// The filter without its top-level `$expr` clauses (pushed into the scan when first).
    filter: Document,
    matcher: Option<Matcher>,
    exprs: Vec<Expr>,
}

impl MatchSpec {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<MatchSpec> {
        let Bson::Document(d) = spec else {
            return Err(err(15959, "the match filter must be an expression in an object"));
        };
        let mut filter = Document::new();
        let mut exprs = Vec::new();
        let mut parser = pc.parser();
        for (k, v) in d {
            match k.as_str() {
                "$expr" => exprs.push(parser.parse(v)?),
                "$and" => {
                    // Pull `$expr` out of a top-level $and too (the shape drivers and ODMs send).
                    let mut rest = Vec::new();
                    if let Bson::Array(items) = v {
                        for it in items {
                            match it {
                                Bson::Document(sub) if sub.len() == 1 && sub.contains_key("$expr") => {
                                    if let Some(e) = sub.get("$expr") {
                                        exprs.push(parser.parse(e)?);
                                    }
                                }
                                other => rest.push(other.clone()),
                            }
                        }
                        if !rest.is_empty() {
                            filter.insert("$and", rest);
                        }
                    } else {
                        filter.insert(k.clone(), v.clone());
                    }
                }
                _ => {
                    filter.insert(k.clone(), v.clone());
                }
            }
        }
        let matcher = if filter.is_empty() { None } else { Some(Matcher::parse(&filter)?) };
        Ok(MatchSpec { filter, matcher, exprs })
    }

    pub fn matches(&self, rt: &Rt, d: &Document) -> Result<bool> {
        if let Some(m) = &self.matcher {
            if !m.matches(d) {
                return Ok(false);
            }
        }
        if !self.exprs.is_empty() {
            let mut c = rt.ctx(d);
            for e in &self.exprs {
                if !truthy(&e.eval(&mut c)?) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl StageSpec for MatchSpec {
    fn name(&self) -> &'static str {
        "$match"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(MatchRun { spec: self, input })
    }
    fn as_match(&self) -> Option<&Document> {
        if self.exprs.is_empty() {
            Some(&self.filter)
        } else {
            None
        }
    }
}

struct MatchRun {
    spec: Arc<MatchSpec>,
    input: Box<dyn Stream>,
}

impl Stream for MatchRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        while let Some(d) = self.input.next(rt)? {
            if self.spec.matches(rt, &d)? {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }
}

struct Skip(u64);

impl StageSpec for Skip {
    fn name(&self) -> &'static str {
        "$skip"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(SkipRun { left: self.0, input })
    }
}

struct SkipRun {
    left: u64,
    input: Box<dyn Stream>,
}

impl Stream for SkipRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        while self.left > 0 {
            if self.input.next(rt)?.is_none() {
                self.left = 0;
                return Ok(None);
            }
            self.left -= 1;
        }
        self.input.next(rt)
    }
}

pub struct Limit(pub u64);

impl StageSpec for Limit {
    fn name(&self) -> &'static str {
        "$limit"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(LimitRun { left: self.0, input })
    }
    fn as_limit(&self) -> Option<u64> {
        Some(self.0)
    }
}

struct LimitRun {
    left: u64,
    input: Box<dyn Stream>,
}

impl Stream for LimitRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.input.next(rt)
    }
}

struct Count(String);

fn parse_count(spec: &Bson) -> Result<Count> {
    let Bson::String(name) = spec else {
        return Err(err(40156, "the count field must be a non-empty string"));
    };
    if name.is_empty() {
        return Err(err(40157, "the count field must be a non-empty string"));
    }
    if name.starts_with('$') {
        return Err(err(40158, "the count field cannot be a $-prefixed path"));
    }
    if name.contains('.') {
        return Err(err(40160, "the count field cannot contain '.'"));
    }
    Ok(Count(name.clone()))
}

impl StageSpec for Count {
    fn name(&self) -> &'static str {
        "$count"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(CountRun { spec: self, input, done: false })
    }
}

struct CountRun {
    spec: Arc<Count>,
    input: Box<dyn Stream>,
    done: bool,
}

impl Stream for CountRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let mut n: i64 = 0;
        while self.input.next(rt)?.is_some() {
            n += 1;
        }
        if n == 0 {
            return Ok(None);
        }
        let v = i32::try_from(n).map(Bson::Int32).unwrap_or(Bson::Int64(n));
        Ok(Some(doc! { self.spec.0.clone(): v }))
    }
}

struct ReplaceRoot {
    expr: Expr,
    stage: &'static str,
}

impl StageSpec for ReplaceRoot {
    fn name(&self) -> &'static str {
        self.stage
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(ReplaceRootRun { spec: self, input })
    }
}

struct ReplaceRootRun {
    spec: Arc<ReplaceRoot>,
    input: Box<dyn Stream>,
}

impl Stream for ReplaceRootRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        let Some(d) = self.input.next(rt)? else { return Ok(None) };
        let v = self.spec.expr.eval(&mut rt.ctx(&d))?;
        match v {
            Some(Bson::Document(nd)) => Ok(Some(nd)),
            other => Err(err(
                40228,
                format!(
                    "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'. Input document: {}",
                    other.as_ref().map_or("MISSING".to_string(), value_to_string),
                    super::expr::type_of(&other),
                    crate::query::util::doc_to_string(&d)
                ),
            )),
        }
    }
}

struct Unwind {
    path: Vec<String>,
    dotted: String,
    index_field: Option<String>,
    preserve: bool,
}

impl Unwind {
    fn parse(spec: &Bson) -> Result<Unwind> {
        let (path, index_field, preserve) = match spec {
            Bson::String(p) => (p.clone(), None, false),
            Bson::Document(d) => {
                let mut path = None;
                let mut index = None;
                let mut preserve = false;
                for (k, v) in d {
                    match (k.as_str(), v) {
                        ("path", Bson::String(p)) => path = Some(p.clone()),
                        ("path", other) => {
                            return Err(err(28808, format!("expected a string as the path for $unwind stage, got {}", type_name(other))))
                        }
                        ("includeArrayIndex", Bson::String(s)) => {
                            if s.is_empty() || s.starts_with('$') {
                                return Err(err(28822, format!("includeArrayIndex option to $unwind stage should not be prefixed with a '$': {s}")));
                            }
                            index = Some(s.clone());
                        }
                        ("includeArrayIndex", other) => {
                            return Err(err(28810, format!("expected a non-empty string for the includeArrayIndex option to $unwind stage, got {}", type_name(other))))
                        }
                        ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => preserve = *b,
                        ("preserveNullAndEmptyArrays", other) => {
                            return Err(err(28809, format!("expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got {}", type_name(other))))
                        }
                        (other, _) => return Err(err(28811, format!("unrecognized option to $unwind stage: {other}"))),
                    }
                }
                (path.ok_or_else(|| err(28812, "no path specified to $unwind stage"))?, index, preserve)
            }
            other => {
                return Err(err(
                    15981,
                    format!(
                        "expected either a string or an object as specification for $unwind stage, got {}",
                        type_name(other)
                    ),
                ))
            }
        };
        let Some(stripped) = path.strip_prefix('$') else {
            return Err(err(
                28818,
                format!("path option to $unwind stage should be prefixed with a '$': {path}"),
            ));
        };
        let parts = super::expr::parse_field_path(stripped)?;
        Ok(Unwind { path: parts, dotted: stripped.to_string(), index_field, preserve })
    }
}

impl StageSpec for Unwind {
    fn name(&self) -> &'static str {
        "$unwind"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(UnwindRun { spec: self, input, current: None, items: Vec::new().into_iter(), index: 0 })
    }
}

struct UnwindRun {
    spec: Arc<Unwind>,
    input: Box<dyn Stream>,
    current: Option<Document>,
    items: std::vec::IntoIter<Bson>,
    index: i64,
}

/// The value at a dotted path through documents only (as mongod's `$unwind` reads it).
fn get_nested<'a>(d: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let (first, rest) = path.split_first()?;
    let mut cur = d.get(first)?;
    for p in rest {
        match cur {
            Bson::Document(sub) => cur = sub.get(p)?,
            _ => return None,
        }
    }
    Some(cur)
}

impl Stream for UnwindRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        loop {
            if let Some(base) = &self.current {
                if let Some(item) = self.items.next() {
                    let mut d = base.clone();
                    crate::query::path::set_path(&mut d, &self.spec.dotted, item)?;
                    if let Some(f) = &self.spec.index_field {
                        crate::query::path::set_path(&mut d, f, Bson::Int64(self.index))?;
                    }
                    self.index += 1;
                    return Ok(Some(d));
                }
                self.current = None;
            }
            let Some(mut d) = self.input.next(rt)? else { return Ok(None) };
            match get_nested(&d, &self.spec.path) {
                Some(Bson::Array(a)) if !a.is_empty() => {
                    self.items = a.clone().into_iter();
                    self.index = 0;
                    self.current = Some(d);
                }
                Some(Bson::Array(_)) => {
                    if self.spec.preserve {
                        crate::query::path::unset_path(&mut d, &self.spec.dotted);
                        if let Some(f) = &self.spec.index_field {
                            crate::query::path::set_path(&mut d, f, Bson::Null)?;
                        }
                        return Ok(Some(d));
                    }
                }
                None | Some(Bson::Null) | Some(Bson::Undefined) => {
                    if self.spec.preserve {
                        if let Some(f) = &self.spec.index_field {
                            crate::query::path::set_path(&mut d, f, Bson::Null)?;
                        }
                        return Ok(Some(d));
                    }
                }
                Some(_) => {
                    if let Some(f) = &self.spec.index_field {
                        crate::query::path::set_path(&mut d, f, Bson::Null)?;
                    }
                    return Ok(Some(d));
                }
            }
        }
    }
}
