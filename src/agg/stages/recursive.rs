//! Stages that walk structures: `$redact` (descending into sub-documents) and `$graphLookup`
//! (a breadth-first search over another collection, one planner query per level so an index
//! on `connectToField` is used).

use crate::agg::expr::{err, Ctx, Expr, REDACT_DESCEND, REDACT_KEEP, REDACT_PRUNE};
use crate::agg::pipeline::{drain, CollSource, ParseCtx, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::util::type_name;
use bson::{doc, Bson, Document};
use std::collections::HashSet;
use std::sync::Arc;

pub struct Redact(Expr);

impl Redact {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<Redact> {
        Ok(Redact(pc.parser().parse(spec)?))
    }
}

impl StageSpec for Redact {
    fn name(&self) -> &'static str {
        "$redact"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(RedactRun { spec: self, input })
    }
}

struct RedactRun {
    spec: Arc<Redact>,
    input: Box<dyn Stream>,
}

/// The redacted document, `None` when pruned.
fn redact(e: &Expr, root: &Document, current: &Document, rt: &Rt, depth: usize) -> Result<Option<Document>> {
    if depth > 150 {
        return Err(MongoError::new(ErrorCode::BadValue, "$redact: document nested too deeply"));
    }
    let mut c = Ctx::new(root, rt.vars, rt.now);
    c.current = current;
    let verdict = e.eval(&mut c)?;
    match verdict {
        Some(Bson::String(s)) if s == REDACT_KEEP => Ok(Some(current.clone())),
        Some(Bson::String(s)) if s == REDACT_PRUNE => Ok(None),
        Some(Bson::String(s)) if s == REDACT_DESCEND => {
            let mut out = Document::new();
            for (k, v) in current {
                match v {
                    Bson::Document(sub) => {
                        if let Some(r) = redact(e, root, sub, rt, depth + 1)? {
                            out.insert(k.clone(), r);
                        }
                    }
                    Bson::Array(a) => {
                        out.insert(k.clone(), redact_array(e, root, a, rt, depth + 1)?);
                    }
                    other => {
                        out.insert(k.clone(), other.clone());
                    }
                }
            }
            Ok(Some(out))
        }
        other => Err(err(
            17053,
            format!(
                "$redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and $$PRUNE, but returned {}",
                other.as_ref().map_or("MISSING".to_string(), crate::query::util::value_to_string)
            ),
        )),
    }
}

fn redact_array(e: &Expr, root: &Document, a: &[Bson], rt: &Rt, depth: usize) -> Result<Bson> {
    let mut out = Vec::with_capacity(a.len());
    for x in a {
        match x {
            Bson::Document(sub) => {
                if let Some(r) = redact(e, root, sub, rt, depth + 1)? {
                    out.push(Bson::Document(r));
                }
            }
            Bson::Array(inner) => out.push(redact_array(e, root, inner, rt, depth + 1)?),
            other => out.push(other.clone()),
        }
    }
    Ok(Bson::Array(out))
}

impl Stream for RedactRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        while let Some(d) = self.input.next(rt)? {
            if let Some(r) = redact(&self.spec.0, &d, &d, rt, 0)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}

pub struct GraphLookup {
    from: String,
    start_with: Expr,
    connect_from: String,
    connect_to: String,
    as_field: String,
    max_depth: Option<i64>,
    depth_field: Option<String>,
    restrict: Option<Document>,
}

impl GraphLookup {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<GraphLookup> {
        let Bson::Document(d) = spec else {
            return Err(err(
                40327,
                format!(
                    "the $graphLookup stage specification must be an object, but found {}",
                    type_name(spec)
                ),
            ));
        };
        let (mut from, mut start, mut cf, mut ct, mut as_f, mut max_depth, mut depth_field, mut restrict) =
            (None, None, None, None, None, None, None, None);
        let string = |k: &str, v: &Bson| -> Result<String> {
            match v {
                Bson::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(err(
                    40103,
                    format!("expected string as argument for {k}, found: {}", type_name(other)),
                )),
            }
        };
        let mut p = pc.parser();
        for (k, v) in d {
            match k.as_str() {
                "from" => from = Some(format!("{}.{}", pc.db, string(k, v)?)),
                "startWith" => start = Some(p.parse(v)?),
                "connectFromField" => cf = Some(string(k, v)?),
                "connectToField" => ct = Some(string(k, v)?),
                "as" => as_f = Some(string(k, v)?),
                "depthField" => depth_field = Some(string(k, v)?),
                "maxDepth" => {
                    let n = crate::query::util::exact_i64(v)
                        .filter(|_| crate::query::util::is_number(v))
                        .ok_or_else(|| {
                            err(40100, format!("maxDepth must be numeric, found type: {}", type_name(v)))
                        })?;
                    if n < 0 {
                        return Err(err(
                            40101,
                            format!("maxDepth requires a nonnegative argument, found: {n}"),
                        ));
                    }
                    max_depth = Some(n);
                }
                "restrictSearchWithMatch" => match v {
                    Bson::Document(m) => {
                        crate::query::matcher::Matcher::parse(m)?;
                        restrict = Some(m.clone());
                    }
                    other => {
                        return Err(err(
                            40185,
                            format!("restrictSearchWithMatch must be an object, found {}", type_name(other)),
                        ))
                    }
                },
                other => return Err(err(40104, format!("Unknown argument to $graphLookup: {other}"))),
            }
        }
        let missing = |what: &str| err(40105, format!("$graphLookup requires '{what}' to be specified"));
        Ok(GraphLookup {
            from: from.ok_or_else(|| missing("from"))?,
            start_with: start.ok_or_else(|| missing("startWith"))?,
            connect_from: cf.ok_or_else(|| missing("connectFromField"))?,
            connect_to: ct.ok_or_else(|| missing("connectToField"))?,
            as_field: as_f.ok_or_else(|| missing("as"))?,
            max_depth,
            depth_field,
            restrict,
        })
    }
}

impl StageSpec for GraphLookup {
    fn name(&self) -> &'static str {
        "$graphLookup"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(GraphRun { spec: self, input })
    }
}

struct GraphRun {
    spec: Arc<GraphLookup>,
    input: Box<dyn Stream>,
}

/// Values to search for: an array's elements, or the value itself (missing: nothing).
fn frontier_values(v: Option<Bson>) -> Vec<Bson> {
    match v {
        None => Vec::new(),
        Some(Bson::Array(a)) => a,
        Some(x) => vec![x],
    }
}

impl Stream for GraphRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        let Some(mut d) = self.input.next(rt)? else { return Ok(None) };
        let spec = self.spec.clone();
        let limit = rt.memory_limit();
        let mut frontier = frontier_values(spec.start_with.eval(&mut rt.ctx(&d))?);
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut queried: HashSet<Vec<u8>> = HashSet::new();
        let mut found: Vec<Bson> = Vec::new();
        let mut used = 0usize;
        let mut depth: i64 = 0;
        let from_parts: Vec<String> = spec.connect_from.split('.').map(str::to_owned).collect();
        while !frontier.is_empty() && spec.max_depth.is_none_or(|m| depth <= m) {
            let values: Vec<Bson> = frontier
                .drain(..)
                .filter(|v| queried.insert(crate::store::keystring::encode_key(&[(v, false)])))
                .filter(|v| !matches!(v, Bson::RegularExpression(_)))
                .collect();
            if values.is_empty() {
                break;
            }
            let mut filter = doc! { spec.connect_to.clone(): { "$in": values } };
            if let Some(r) = &spec.restrict {
                filter = doc! { "$and": [filter, r.clone()] };
            }
            let mut src = CollSource::new(&spec.from, filter)?;
            let docs = drain(&mut src, rt, limit, "$graphLookup")?;
            for mut fd in docs {
                let id = fd.get("_id").cloned().unwrap_or(Bson::Null);
                if !seen.insert(crate::store::keystring::encode_key(&[(&id, false)])) {
                    continue;
                }
                frontier.extend(frontier_values(crate::agg::expr::get_path(&fd, &from_parts)));
                if let Some(f) = &spec.depth_field {
                    crate::query::path::set_path(&mut fd, f, Bson::Int64(depth))?;
                }
                used += crate::query::exec::bson_size(&fd);
                if used > limit {
                    return Err(err(40099, "$graphLookup reached maximum memory consumption"));
                }
                found.push(Bson::Document(fd));
            }
            depth += 1;
        }
        crate::query::path::set_path(&mut d, &spec.as_field, Bson::Array(found))?;
        Ok(Some(d))
    }
}
