//! The aggregation pipeline: the expression language (`expr/`, one file per operator family),
//! the compiled pipeline and its pull-based execution (`pipeline.rs`), and the stages
//! (`stages/`, one file per family).
//!
//! Pipelines are parsed once into compiled stages; running one chains a stream per stage over
//! a collection scan that pulls from the store in batches, so only blocking stages ($sort,
//! $group, $bucket, $facet, $sample) hold documents, each bounded at 100 MB unless
//! allowDiskUse. A leading `$match` goes to the query planner so it can use an index.

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
        let mut rt = Rt { ss, vars: &vars, now, allow_disk_use };
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
