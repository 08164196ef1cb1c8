//! The compiled pipeline and its pull-based execution.
//!
//! A [`Pipeline`] is parsed once: a list of compiled stages ([`StageSpec`]). Running it chains
//! one [`Stream`] per stage on top of a source stream (a collection scan, a list of documents
//! or, for `$facet`, a buffer); each `next()` pulls documents through the chain, so only the
//! blocking stages ($sort, $group, $bucket, $facet, $sample) hold documents in memory.

use super::expr::{Ctx, Expr, Parser};
use super::stages;
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::multiplan;
use crate::store::StoreSession;
use bson::{Bson, DateTime, Document};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// mongod's per-stage memory limit without allowDiskUse.
pub const STAGE_MEMORY_LIMIT: usize = 100 * 1024 * 1024;
/// With allowDiskUse we do not spill yet; this bounds what one stage may hold.
pub const STAGE_MEMORY_LIMIT_DISK_USE: usize = 1024 * 1024 * 1024;
/// Deepest nesting of sub-pipelines ($lookup, $facet, $unionWith).
pub const MAX_PIPELINE_DEPTH: usize = 20;

/// What a running stage can reach.
pub struct Rt<'a> {
    pub ss: &'a mut StoreSession,
    /// Values of the pipeline-level variables (slots 0..n).
    pub vars: &'a [Bson],
    pub now: DateTime,
    pub allow_disk_use: bool,
    /// `maxTimeMS`: when the work of this batch must stop.
    pub deadline: Option<Instant>,
}

impl Rt<'_> {
    /// mongod's MaxTimeMSExpired once the deadline has passed.
    pub fn check_deadline(&self) -> Result<()> {
        crate::ops::check_interrupt()?;
        match self.deadline {
            Some(d) if Instant::now() > d => {
                Err(MongoError::new(ErrorCode::MaxTimeMSExpired, "operation exceeded time limit"))
            }
            _ => Ok(()),
        }
    }

    pub fn memory_limit(&self) -> usize {
        if self.allow_disk_use {
            STAGE_MEMORY_LIMIT_DISK_USE
        } else {
            STAGE_MEMORY_LIMIT
        }
    }

    /// An expression context for one document.
    pub fn ctx<'d>(&self, doc: &'d Document) -> Ctx<'d> {
        Ctx::new(doc, self.vars, self.now)
    }
}

/// A running stage: documents are pulled one at a time.
pub trait Stream: Send {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>>;
}

/// A compiled stage.
pub trait StageSpec: Send + Sync {
    fn name(&self) -> &'static str;
    /// A running instance reading from `input`.
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream>;
    /// The compiled `$match` filter when this stage is one (for pushing it into the scan).
    fn as_match(&self) -> Option<&Document> {
        None
    }
    /// A `$limit` following a `$sort` (for the top-k sort).
    fn as_limit(&self) -> Option<u64> {
        None
    }
    /// For `$sort`: the same sort keeping only the first `n` documents.
    fn with_limit(&self, _n: u64) -> Option<Arc<dyn StageSpec>> {
        None
    }
}

/// What parsing a pipeline needs to know.
#[derive(Clone)]
pub struct ParseCtx {
    pub db: String,
    /// Pipeline-level variable names (the command's `let`, a `$lookup`'s `let`).
    pub vars: Vec<String>,
    pub depth: usize,
    /// Inside `$facet` or `$lookup`: no `$out`/`$merge`.
    pub nested: bool,
}

impl ParseCtx {
    pub fn parser(&self) -> Parser {
        Parser::with_vars(self.vars.clone())
    }

    pub fn sub(&self, extra_vars: &[String]) -> Result<ParseCtx> {
        if self.depth + 1 > MAX_PIPELINE_DEPTH {
            return Err(MongoError::new(
                ErrorCode::MaxSubPipelineDepthExceeded,
                format!("Maximum number of nested sub-pipelines exceeded. Limit is {MAX_PIPELINE_DEPTH}"),
            ));
        }
        let mut vars = self.vars.clone();
        vars.extend(extra_vars.iter().cloned());
        Ok(ParseCtx { db: self.db.clone(), vars, depth: self.depth + 1, nested: true })
    }
}

/// A parsed pipeline.
pub struct Pipeline {
    pub stages: Vec<Arc<dyn StageSpec>>,
    /// A leading `$documents` stage's array expression.
    pub documents: Option<Expr>,
    /// The only top-level fields the pipeline reads from its input (`None`: any).
    pub input_fields: Option<Vec<String>>,
}

impl Pipeline {
    pub fn parse(stages: &[Bson], pc: &ParseCtx) -> Result<Pipeline> {
        let mut out: Vec<Arc<dyn StageSpec>> = Vec::with_capacity(stages.len());
        let mut documents = None;
        for (i, s) in stages.iter().enumerate() {
            let Bson::Document(d) = s else {
                return Err(MongoError::new(
                    ErrorCode::TypeMismatch,
                    "Each element of the 'pipeline' array must be an object",
                ));
            };
            if d.len() != 1 {
                return Err(MongoError::new(
                    ErrorCode::Location40323,
                    "A pipeline stage specification object must contain exactly one field.",
                ));
            }
            let Some((name, spec)) = d.iter().next() else { continue };
            let last = i + 1 == stages.len();
            if name == "$documents" {
                if i != 0 {
                    return Err(super::expr::err(
                        40602,
                        "$documents is only valid as the first stage in a pipeline",
                    ));
                }
                documents = Some(pc.parser().parse(spec)?);
                continue;
            }
            if matches!(name.as_str(), "$out" | "$merge") {
                if pc.nested {
                    return Err(super::expr::err(
                        if name == "$out" { 31319 } else { 31320 },
                        format!("{name} is not allowed within a $lookup or $facet pipeline"),
                    ));
                }
                if !last {
                    return Err(super::expr::err(
                        40601,
                        format!("{name} can only be the final stage in the pipeline"),
                    ));
                }
            }
            out.extend(stages::parse_stage(name, spec, pc)?);
        }
        // $sort followed by $limit: a top-k sort (the $limit stays, it costs nothing).
        for i in 0..out.len().saturating_sub(1) {
            if let Some(n) = out[i + 1].as_limit() {
                if let Some(topk) = out[i].with_limit(n) {
                    out[i] = topk;
                }
            }
        }
        Ok(Pipeline { stages: out, documents, input_fields: super::deps::input_fields(stages) })
    }

    /// Chains the stages on top of `source`.
    pub fn start(&self, source: Box<dyn Stream>) -> Box<dyn Stream> {
        let mut s = source;
        for st in &self.stages {
            s = st.clone().start(s);
        }
        s
    }

    /// Runs the pipeline over a collection (`None` for no input), pushing a leading `$match`
    /// into the scan so the planner can use an index.
    pub fn start_on(&self, ns: Option<&str>, rt: &mut Rt) -> Result<Box<dyn Stream>> {
        self.start_on_filtered(ns, Document::new(), rt)
    }

    /// `start_on` with an extra filter on the collection (a `$lookup`'s foreign-field match).
    pub fn start_on_filtered(
        &self,
        ns: Option<&str>,
        extra: Document,
        rt: &mut Rt,
    ) -> Result<Box<dyn Stream>> {
        if let Some(docs) = &self.documents {
            let v = docs.value(&mut rt.ctx(&Document::new()))?;
            let Bson::Array(items) = v else {
                return Err(super::expr::err(5858203, "error with $documents: expected an array"));
            };
            let mut buf = VecDeque::with_capacity(items.len());
            for it in items {
                match it {
                    Bson::Document(d) => buf.push_back(d),
                    _ => return Err(super::expr::err(40228, "$documents: each element must be an object")),
                }
            }
            return Ok(self.start(Box::new(Buffer(buf))));
        }
        let Some(ns) = ns else {
            return Ok(self.start(Box::new(Buffer(VecDeque::new()))));
        };
        // An extra filter reads fields the pipeline's own analysis does not know of.
        let fields = if extra.is_empty() { self.input_fields.clone() } else { None };
        let (filter, skip) = match self.stages.first().and_then(|s| s.as_match()) {
            Some(f) => (merge_filters(extra, f), 1),
            None => (extra, 0),
        };
        let mut source = CollSource::new(ns, filter)?;
        source.fields = fields;
        let mut s: Box<dyn Stream> = Box::new(source);
        for st in self.stages.iter().skip(skip) {
            s = st.clone().start(s);
        }
        Ok(s)
    }
}

/// Both filters: one document when their fields differ (so the planner sees every
/// equality), else an `$and`.
fn merge_filters(mut a: Document, b: &Document) -> Document {
    if a.is_empty() {
        return b.clone();
    }
    if b.keys().any(|k| a.contains_key(k) || k.starts_with('$')) || a.keys().any(|k| k.starts_with('$')) {
        return bson::doc! { "$and": [a, b.clone()] };
    }
    for (k, v) in b {
        a.insert(k.clone(), v.clone());
    }
    a
}

/// Documents already in memory.
pub struct Buffer(pub VecDeque<Document>);

impl Stream for Buffer {
    fn next(&mut self, _rt: &mut Rt) -> Result<Option<Document>> {
        Ok(self.0.pop_front())
    }
}

/// A collection scan with an optional filter (through the planner, so indexes are used).
pub struct CollSource {
    ns: String,
    filter: Document,
    exec: Option<Exec>,
    done: bool,
    pulled: u64,
    /// Parse only these top-level fields of each document (see `deps`).
    pub fields: Option<Vec<String>>,
}

impl CollSource {
    pub fn new(ns: &str, filter: Document) -> Result<CollSource> {
        // Parse now so a bad filter fails before the first document.
        if !filter.is_empty() {
            Matcher::parse(&filter)?;
        }
        Ok(CollSource { ns: ns.to_string(), filter, exec: None, done: false, pulled: 0, fields: None })
    }
}

impl Stream for CollSource {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.done {
            return Ok(None);
        }
        self.pulled += 1;
        if self.pulled.is_multiple_of(256) {
            rt.check_deadline()?;
        }
        if self.exec.is_none() {
            let Some(coll) = rt.ss.store.catalog.get(&self.ns) else {
                self.done = true;
                return Ok(None);
            };
            // When the pipeline reads only some top-level fields, an index holding them all
            // answers without fetching documents (a covered plan), as in mongod.
            let projection = self.fields.as_deref().map(crate::query::covered::projection_of);
            let shape =
                multiplan::Shape { filter: &self.filter, sort: None, projection: projection.as_ref() };
            let access = multiplan::choose(rt.ss, &coll, &shape, None, true)?.plan.access;
            let filter = if self.filter.is_empty() { None } else { Some(Matcher::parse(&self.filter)?) };
            let mut exec = Exec::new(
                coll,
                access,
                ExecOptions {
                    filter,
                    sort: None,
                    projection: None,
                    skip: 0,
                    limit: None,
                    allow_disk_use: false,
                },
            );
            exec.fields = self.fields.clone();
            self.exec = Some(exec);
        }
        let Some(exec) = self.exec.as_mut() else { return Ok(None) };
        match exec.next_match(rt.ss)? {
            Some((_, d)) => Ok(Some(d)),
            None => {
                self.done = true;
                self.exec = None;
                Ok(None)
            }
        }
    }
}

/// A pipeline in progress, owned by a client cursor between getMores.
pub struct PipelineCursor {
    /// Processing time left under `maxTimeMS` (idle time between getMores does not count).
    pub time_left: Option<Duration>,
    stream: Box<dyn Stream>,
    vars: Vec<Bson>,
    now: DateTime,
    allow_disk_use: bool,
    peeked: Option<Document>,
    exhausted: bool,
}

impl PipelineCursor {
    pub fn new(
        stream: Box<dyn Stream>,
        vars: Vec<Bson>,
        now: DateTime,
        allow_disk_use: bool,
    ) -> PipelineCursor {
        PipelineCursor { time_left: None, stream, vars, now, allow_disk_use, peeked: None, exhausted: false }
    }

    /// Up to `max_docs` documents and about `max_bytes`; reports whether the pipeline is done.
    pub fn next_batch(
        &mut self,
        ss: &mut StoreSession,
        max_docs: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Document>, bool)> {
        let started = Instant::now();
        let deadline = self.time_left.map(|t| started + t);
        // The variables are lent to the stages for the batch and put back after.
        let vars = std::mem::take(&mut self.vars);
        let mut rt = Rt { ss, vars: &vars, now: self.now, allow_disk_use: self.allow_disk_use, deadline };
        let r = self.fill(&mut rt, max_docs, max_bytes);
        self.vars = vars;
        if let Some(t) = self.time_left.as_mut() {
            *t = t.saturating_sub(started.elapsed());
        }
        r
    }

    fn fill(&mut self, rt: &mut Rt, max_docs: usize, max_bytes: usize) -> Result<(Vec<Document>, bool)> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < max_docs {
            let d = match self.peeked.take() {
                Some(d) => d,
                None => match self.stream.next(rt)? {
                    Some(d) => d,
                    None => {
                        self.exhausted = true;
                        break;
                    }
                },
            };
            let size = crate::query::exec::bson_size(&d);
            if !out.is_empty() && bytes + size > max_bytes {
                self.peeked = Some(d);
                break;
            }
            bytes += size;
            out.push(d);
        }
        // Look one ahead so a cursor that has just been drained reports id 0 at once.
        if !self.exhausted && self.peeked.is_none() && out.len() == max_docs {
            match self.stream.next(rt)? {
                Some(d) => self.peeked = Some(d),
                None => self.exhausted = true,
            }
        }
        Ok((out, self.exhausted && self.peeked.is_none()))
    }
}

/// Pulls every document of a stream (for `$facet`, `$lookup` and tests).
pub fn drain(s: &mut dyn Stream, rt: &mut Rt, limit_bytes: usize, what: &str) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(d) = s.next(rt)? {
        bytes += crate::query::exec::bson_size(&d);
        if bytes > limit_bytes {
            return Err(super::expr::err(
                4568,
                format!("Total size of documents in {what} exceeds {limit_bytes} bytes"),
            ));
        }
        out.push(d);
    }
    Ok(out)
}
