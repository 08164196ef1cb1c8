//! Stages that read other data: `$lookup` (localField/foreignField through the planner, so an
//! index on the foreign field is used; `let` + `pipeline`; both combined), `$unionWith` and
//! `$facet`.

use crate::agg::expr::{err, validate_var_name, Expr};
use crate::agg::pipeline::{drain, Buffer, CollSource, ParseCtx, Pipeline, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::util::type_name;
use bson::{doc, Bson, Document};
use std::collections::VecDeque;
use std::sync::Arc;

/// Largest array a `$lookup` may attach to one document (mongod's 16 MB document limit plus
/// some room).
const LOOKUP_BYTES: usize = 16 * 1024 * 1024 + 16 * 1024;

fn failed(msg: impl Into<String>) -> MongoError {
    MongoError::new(ErrorCode::FailedToParse, msg)
}

/// `from` / `coll`: a name in this database or `{db, coll}`.
fn namespace(v: &Bson, db: &str, stage: &str) -> Result<String> {
    match v {
        Bson::String(s) if !s.is_empty() => Ok(format!("{db}.{s}")),
        Bson::Document(d) => match (d.get("db"), d.get("coll")) {
            (Some(Bson::String(odb)), Some(Bson::String(c))) => Ok(format!("{odb}.{c}")),
            _ => Err(failed(format!("{stage} 'from' must have 'db' and 'coll' strings"))),
        },
        other => Err(MongoError::new(
            ErrorCode::FailedToParse,
            format!("{stage} 'from' field must be a string or object, but found {}", type_name(other)),
        )),
    }
}

pub struct Lookup {
    from: Option<String>,
    local: Option<(Vec<String>, String)>,
    lets: Vec<Expr>,
    pipeline: Option<Pipeline>,
    as_field: String,
}

impl Lookup {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<Lookup> {
        let Bson::Document(d) = spec else {
            return Err(failed("the $lookup specification must be an Object"));
        };
        let (mut from, mut local, mut foreign, mut lets, mut pipeline, mut as_field) =
            (None, None, None, None, None, None);
        for (k, v) in d {
            match (k.as_str(), v) {
                ("from", v) => from = Some(namespace(v, &pc.db, "$lookup")?),
                ("localField", Bson::String(s)) => local = Some(s.clone()),
                ("foreignField", Bson::String(s)) => foreign = Some(s.clone()),
                ("as", Bson::String(s)) => as_field = Some(s.clone()),
                ("let", Bson::Document(l)) => lets = Some(l.clone()),
                ("pipeline", Bson::Array(p)) => pipeline = Some(p.clone()),
                ("localField" | "foreignField" | "as", other) => {
                    return Err(failed(format!(
                        "$lookup argument '{k}' must be a string, is type {}",
                        type_name(other)
                    )))
                }
                ("let", other) => {
                    return Err(failed(format!(
                        "$lookup argument 'let' must be an object, is type {}",
                        type_name(other)
                    )))
                }
                ("pipeline", other) => {
                    return Err(failed(format!(
                        "$lookup argument 'pipeline' must be an array, is type {}",
                        type_name(other)
                    )))
                }
                (other, _) => return Err(failed(format!("unknown argument to $lookup: {other}"))),
            }
        }
        let as_field = as_field.ok_or_else(|| failed("must specify 'as' field for a $lookup"))?;
        if as_field.is_empty() || as_field.starts_with('$') {
            return Err(err(16410, "FieldPath field names may not start with '$'."));
        }
        if local.is_some() != foreign.is_some() {
            return Err(failed(
                "$lookup requires both or neither of 'localField' and 'foreignField' to be specified",
            ));
        }
        if local.is_none() && pipeline.is_none() {
            return Err(failed(
                "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified",
            ));
        }
        let starts_with_documents = pipeline
            .as_ref()
            .and_then(|p| p.first())
            .is_some_and(|s| matches!(s, Bson::Document(d) if d.contains_key("$documents")));
        if from.is_none() && !starts_with_documents {
            return Err(failed("must specify 'from' field for a $lookup"));
        }
        let mut p = pc.parser();
        let mut names = Vec::new();
        let mut let_exprs = Vec::new();
        for (k, v) in lets.iter().flatten() {
            validate_var_name(k, false)?;
            names.push(k.clone());
            let_exprs.push(p.parse(v)?);
        }
        let pipeline = match pipeline {
            Some(stages) => Some(Pipeline::parse(&stages, &pc.sub(&names)?)?),
            None => None,
        };
        let local = match (local, foreign) {
            (Some(l), Some(f)) => Some((crate::agg::expr::parse_field_path(&l)?, f)),
            _ => None,
        };
        Ok(Lookup { from, local, lets: let_exprs, pipeline, as_field })
    }
}

impl StageSpec for Lookup {
    fn name(&self) -> &'static str {
        "$lookup"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(LookupRun { spec: self, input })
    }
}

struct LookupRun {
    spec: Arc<Lookup>,
    input: Box<dyn Stream>,
}

impl Stream for LookupRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        let Some(mut d) = self.input.next(rt)? else { return Ok(None) };
        let spec = &self.spec;
        let mut vars = rt.vars.to_vec();
        {
            let mut c = rt.ctx(&d);
            for e in &spec.lets {
                vars.push(e.value(&mut c)?);
            }
        }
        let filter = match &spec.local {
            Some((path, foreign)) => {
                let vals = match crate::agg::expr::get_path(&d, path) {
                    None => vec![Bson::Null],
                    Some(Bson::Array(a)) => {
                        if a.is_empty() {
                            vec![Bson::Null]
                        } else {
                            a
                        }
                    }
                    Some(v) => vec![v],
                };
                // Regexes would match as patterns inside $in; mongod compares them by value.
                let vals: Vec<Bson> =
                    vals.into_iter().filter(|v| !matches!(v, Bson::RegularExpression(_))).collect();
                doc! { foreign.clone(): { "$in": vals } }
            }
            None => Document::new(),
        };
        let mut sub = Rt {
            ss: &mut *rt.ss,
            vars: &vars,
            now: rt.now,
            allow_disk_use: rt.allow_disk_use,
            deadline: rt.deadline,
        };
        let mut stream: Box<dyn Stream> = match &spec.pipeline {
            Some(p) => p.start_on_filtered(spec.from.as_deref(), filter, &mut sub)?,
            None => Box::new(CollSource::new(spec.from.as_deref().unwrap_or(""), filter)?),
        };
        let what =
            format!("{} matching pipeline's $lookup stage", spec.from.as_deref().unwrap_or("$documents"));
        let found = drain(stream.as_mut(), &mut sub, LOOKUP_BYTES, &what)?;
        crate::query::path::set_path(
            &mut d,
            &spec.as_field,
            Bson::Array(found.into_iter().map(Bson::Document).collect()),
        )?;
        Ok(Some(d))
    }
}

pub struct UnionWith {
    from: String,
    pipeline: Option<Pipeline>,
}

impl UnionWith {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<UnionWith> {
        match spec {
            Bson::String(s) => Ok(UnionWith { from: format!("{}.{s}", pc.db), pipeline: None }),
            Bson::Document(d) => {
                let mut from = None;
                let mut pipeline = None;
                for (k, v) in d {
                    match (k.as_str(), v) {
                        ("coll", v) => from = Some(namespace(v, &pc.db, "$unionWith")?),
                        ("pipeline", Bson::Array(p)) => pipeline = Some(Pipeline::parse(p, &pc.sub(&[])?)?),
                        ("pipeline", other) => {
                            return Err(MongoError::type_mismatch(format!(
                            "BSON field '$unionWith.pipeline' is the wrong type '{}', expected type 'array'",
                            type_name(other)
                        )))
                        }
                        (other, _) => {
                            return Err(MongoError::new(
                                ErrorCode::Location40415,
                                format!("BSON field '$unionWith.{other}' is an unknown field."),
                            ))
                        }
                    }
                }
                let from = match from {
                    Some(f) => f,
                    None if pipeline.as_ref().is_some_and(|p| p.documents.is_some()) => String::new(),
                    None => {
                        return Err(MongoError::new(
                            ErrorCode::Location40414,
                            "BSON field '$unionWith.coll' is missing but a required field",
                        ))
                    }
                };
                Ok(UnionWith { from, pipeline })
            }
            other => Err(err(
                ErrorCode::FailedToParse.code(),
                format!(
                    "the $unionWith stage specification must be an object or string, but found {}",
                    type_name(other)
                ),
            )),
        }
    }
}

impl StageSpec for UnionWith {
    fn name(&self) -> &'static str {
        "$unionWith"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(UnionRun { spec: self, input: Some(input), other: None })
    }
}

struct UnionRun {
    spec: Arc<UnionWith>,
    input: Option<Box<dyn Stream>>,
    other: Option<Box<dyn Stream>>,
}

impl Stream for UnionRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if let Some(input) = &mut self.input {
            if let Some(d) = input.next(rt)? {
                return Ok(Some(d));
            }
            self.input = None;
            let ns = if self.spec.from.is_empty() { None } else { Some(self.spec.from.as_str()) };
            self.other = Some(match &self.spec.pipeline {
                Some(p) => p.start_on(ns, rt)?,
                None => Box::new(CollSource::new(&self.spec.from, Document::new())?),
            });
        }
        match &mut self.other {
            Some(s) => s.next(rt),
            None => Ok(None),
        }
    }
}

pub struct Facet {
    facets: Vec<(String, Pipeline)>,
}

impl Facet {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<Facet> {
        let Bson::Document(d) = spec else {
            return Err(err(15947, "the $facet specification must be a non-empty object"));
        };
        if d.is_empty() {
            return Err(err(40169, "the $facet specification must be a non-empty object"));
        }
        let mut facets = Vec::new();
        for (k, v) in d {
            if k.is_empty() || k.starts_with('$') || k.contains('.') {
                return Err(err(
                    40352,
                    format!("FieldPath field names may not start with '$' or contain '.': {k}"),
                ));
            }
            let Bson::Array(stages) = v else {
                return Err(err(
                    40170,
                    format!("arguments to $facet must be arrays, {k} is type {}", type_name(v)),
                ));
            };
            if stages.is_empty() {
                return Err(err(40171, format!("sub-pipeline in $facet stage cannot be empty: {k}")));
            }
            for s in stages {
                if let Bson::Document(sd) = s {
                    if let Some(n) = sd.keys().next() {
                        if matches!(
                            n.as_str(),
                            "$facet" | "$out" | "$merge" | "$collStats" | "$indexStats" | "$documents"
                        ) {
                            return Err(err(
                                40600,
                                format!("{n} is not allowed to be used within a $facet stage"),
                            ));
                        }
                    }
                }
            }
            facets.push((k.clone(), Pipeline::parse(stages, &pc.sub(&[])?)?));
        }
        Ok(Facet { facets })
    }
}

impl StageSpec for Facet {
    fn name(&self) -> &'static str {
        "$facet"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(FacetRun { spec: self, input, done: false })
    }
}

struct FacetRun {
    spec: Arc<Facet>,
    input: Box<dyn Stream>,
    done: bool,
}

impl Stream for FacetRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let limit = rt.memory_limit();
        let docs = drain(self.input.as_mut(), rt, limit, "$facet input")?;
        let mut out = Document::new();
        let mut total = 0usize;
        for (name, p) in &self.spec.facets {
            let buf: VecDeque<Document> = docs.iter().cloned().collect();
            let mut s = p.start(Box::new(Buffer(buf)));
            let res = drain(s.as_mut(), rt, limit, "$facet")?;
            total += res.iter().map(crate::query::exec::bson_size).sum::<usize>();
            if total > LOOKUP_BYTES {
                return Err(err(4031700, format!("document constructed by $facet is {total} bytes, which exceeds the limit of 16777216 bytes")));
            }
            out.insert(name.clone(), Bson::Array(res.into_iter().map(Bson::Document).collect()));
        }
        Ok(Some(out))
    }
}
