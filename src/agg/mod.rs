//! The aggregation pipeline: the expression language (`expr/`, one file per operator family),
//! the compiled pipeline and its pull-based execution (`pipeline.rs`), and the stages
//! (`stages/`, one file per family).
//!
//! Pipelines are parsed once into compiled stages; running one chains a stream per stage over
//! a collection scan that pulls from the store in batches, so only blocking stages ($sort,
//! $group, $bucket, $facet, $sample) hold documents, each bounded at 100 MB unless
//! allowDiskUse. A leading `$match` goes to the query planner so it can use an index.

pub mod deps;
pub mod expr;
pub mod pipeline;
pub mod stages;
pub mod update;

pub use pipeline::{ParseCtx, Pipeline, PipelineCursor, Rt};

use crate::error::Result;
use crate::store::StoreSession;
use bson::{Bson, DateTime, Document};

/// A pipeline ready to run: compiled stages and the values of the command's `let` variables.
pub struct Prepared {
    pub pipeline: Pipeline,
    pub vars: Vec<Bson>,
    pub now: DateTime,
}

/// Parses `stages` for database `db`; `let_vars` are the command's `let` (constant
/// expressions, evaluated once).
pub fn prepare(db: &str, stages: &[Bson], let_vars: Option<&Document>) -> Result<Prepared> {
    let now = DateTime::now();
    let mut names = Vec::new();
    let mut vars = Vec::new();
    if let Some(l) = let_vars {
        let empty = Document::new();
        for (k, v) in l {
            expr::validate_var_name(k, false)?;
            // Earlier `let` variables are visible to later ones.
            let mut p = expr::Parser::with_vars(names.clone());
            let e = p.parse(v)?;
            let mut c = expr::Ctx::new(&empty, &vars, now);
            vars.push(e.value(&mut c)?);
            names.push(k.clone());
        }
    }
    let pc = ParseCtx { db: db.to_string(), vars: names, depth: 0, nested: false };
    let pipeline = Pipeline::parse(stages, &pc)?;
    Ok(Prepared { pipeline, vars, now })
}

/// A command's `let` variables (find, update, delete, findAndModify) as constants: each
/// value is an expression evaluated once, with earlier variables in scope.
pub fn let_constants(let_doc: Option<&Bson>) -> Result<Vec<(String, Bson)>> {
    let l = match let_doc {
        None | Some(Bson::Null) => return Ok(Vec::new()),
        Some(Bson::Document(d)) => d,
        Some(_) => {
            return Err(crate::error::MongoError::type_mismatch(
                "BSON field 'let' is the wrong type, expected type 'object'",
            ))
        }
    };
    let now = DateTime::now();
    let empty = Document::new();
    let mut names: Vec<String> = Vec::new();
    let mut out: Vec<(String, Bson)> = Vec::new();
    for (k, v) in l {
        expr::validate_var_name(k, false)?;
        let values: Vec<Bson> = out.iter().map(|(_, v)| v.clone()).collect();
        let e = expr::Parser::with_vars(names.clone()).parse(v)?;
        let val = e.value(&mut expr::Ctx::new(&empty, &values, now))?;
        names.push(k.clone());
        out.push((k.clone(), val));
    }
    Ok(out)
}

/// Replaces `$$name` references to `vars` in an expression by `{$literal: value}`, so code that
/// compiles expressions without variables in scope (query `$expr`, update pipelines) sees
/// the command's `let`.
pub fn bind_expr(v: &Bson, vars: &[(String, Bson)]) -> Bson {
    if vars.is_empty() {
        return v.clone();
    }
    match v {
        Bson::String(s) if s.starts_with("$$") => {
            let rest = &s[2..];
            let (name, path) = match rest.split_once('.') {
                Some((n, p)) => (n, Some(p)),
                None => (rest, None),
            };
            match vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, val)) => {
                    let val = match path {
                        None => Some(val.clone()),
                        Some(p) => expr::walk(val, &p.split('.').map(str::to_owned).collect::<Vec<_>>()),
                    };
                    match val {
                        Some(x) => Bson::Document(bson::doc! { "$literal": x }),
                        None => Bson::String("$$REMOVE".into()),
                    }
                }
                None => v.clone(),
            }
        }
        Bson::Document(d) if d.contains_key("$literal") => v.clone(),
        Bson::Document(d) => Bson::Document(d.iter().map(|(k, x)| (k.clone(), bind_expr(x, vars))).collect()),
        Bson::Array(a) => Bson::Array(a.iter().map(|x| bind_expr(x, vars)).collect()),
        other => other.clone(),
    }
}

/// `bind_expr` over the `$expr` clauses of a query filter (top level and inside
/// `$and`/`$or`/`$nor`); other values are literal query values and stay as they are.
pub fn bind_filter(filter: &Document, vars: &[(String, Bson)]) -> Document {
    if vars.is_empty() {
        return filter.clone();
    }
    filter
        .iter()
        .map(|(k, v)| {
            let nv = match (k.as_str(), v) {
                ("$expr", e) => bind_expr(e, vars),
                ("$and" | "$or" | "$nor", Bson::Array(a)) => Bson::Array(
                    a.iter()
                        .map(|x| match x {
                            Bson::Document(d) => Bson::Document(bind_filter(d, vars)),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                _ => v.clone(),
            };
            (k.clone(), nv)
        })
        .collect()
}

/// An update or delete statement with the command's `let` bound in `q` and in a pipeline `u`.
pub fn bind_statement(stmt: &Document, vars: &[(String, Bson)]) -> Document {
    if vars.is_empty() {
        return stmt.clone();
    }
    let mut out = stmt.clone();
    if let Some(Bson::Document(q)) = stmt.get("q") {
        out.insert("q", bind_filter(q, vars));
    }
    if let Some(u @ Bson::Array(_)) = stmt.get("u") {
        out.insert("u", bind_expr(u, vars));
    }
    out
}

/// Starts a prepared pipeline over the collection `ns` (`None`: no input, as for
/// `aggregate: 1`).
pub fn open(
    ss: &mut StoreSession,
    prepared: Prepared,
    ns: Option<&str>,
    allow_disk_use: bool,
) -> Result<PipelineCursor> {
    let Prepared { pipeline, vars, now } = prepared;
    let stream = {
        let mut rt = Rt { ss, vars: &vars, now, allow_disk_use, deadline: None };
        pipeline.start_on(ns, &mut rt)?
    };
    Ok(PipelineCursor::new(stream, vars, now, allow_disk_use))
}

/// Runs a pipeline to completion (tests, and callers that need every result).
pub fn run_all(
    ss: &mut StoreSession,
    db: &str,
    ns: Option<&str>,
    stages: &[Bson],
    allow_disk_use: bool,
) -> Result<Vec<Document>> {
    let prepared = prepare(db, stages, None)?;
    let mut cursor = open(ss, prepared, ns, allow_disk_use)?;
    let mut out = Vec::new();
    loop {
        let (batch, done) = cursor.next_batch(ss, 1024, usize::MAX)?;
        out.extend(batch);
        if done {
            return Ok(out);
        }
    }
}
