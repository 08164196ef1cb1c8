//! `$out` (into a temporary collection, then renamed over the target, keeping the target's
//! indexes) and `$merge` (per document through the store's write path).

use crate::agg::expr::{err, validate_var_name, Expr};
use crate::agg::pipeline::{Buffer, ParseCtx, Pipeline, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::planner;
use crate::query::util::type_name;
use bson::{oid::ObjectId, Bson, Document};
use std::collections::VecDeque;
use std::sync::Arc;

fn target(v: &Bson, db: &str, stage: &str, coll_key: &str) -> Result<(String, String)> {
    let (db, coll) = match v {
        Bson::String(s) => (db.to_string(), s.clone()),
        Bson::Document(d) => {
            let odb = match d.get("db") {
                Some(Bson::String(s)) => s.clone(),
                None => db.to_string(),
                Some(other) => {
                    return Err(MongoError::type_mismatch(format!(
                        "BSON field '{stage}.db' is the wrong type '{}', expected type 'string'",
                        type_name(other)
                    )))
                }
            };
            match d.get(coll_key) {
                Some(Bson::String(c)) => (odb, c.clone()),
                _ => {
                    return Err(MongoError::new(
                        ErrorCode::Location40414,
                        format!("BSON field '{stage}.{coll_key}' is missing but a required field"),
                    ))
                }
            }
        }
        other => {
            return Err(err(
                if stage == "$out" { 6031100 } else { 51178 },
                format!("{stage} only supports a string or object argument, but found {}", type_name(other)),
            ))
        }
    };
    if coll.is_empty() || coll.contains('$') || coll.starts_with("system.") || db.is_empty() {
        return Err(MongoError::new(
            ErrorCode::InvalidNamespace,
            format!("Invalid {stage} target namespace, '{db}.{coll}'"),
        ));
    }
    if format!("{db}.{coll}") == crate::store::OPLOG_NS {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            format!(
                "not authorized on {db} to execute command {{ {stage}: \"{coll}\" }}: the oplog is read-only"
            ),
        ));
    }
    Ok((db, coll))
}

/// `_id` first, generated when missing.
fn with_id(d: Document) -> Document {
    if d.contains_key("_id") {
        return d;
    }
    let mut out = Document::new();
    out.insert("_id", ObjectId::new());
    for (k, v) in d {
        out.insert(k, v);
    }
    out
}

pub struct Out {
    db: String,
    coll: String,
}

impl Out {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<Out> {
        let (db, coll) = target(spec, &pc.db, "$out", "coll")?;
        Ok(Out { db, coll })
    }
}

impl StageSpec for Out {
    fn name(&self) -> &'static str {
        "$out"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(OutRun { spec: self, input, done: false })
    }
}

struct OutRun {
    spec: Arc<Out>,
    input: Box<dyn Stream>,
    done: bool,
}

impl OutRun {
    fn run(&mut self, rt: &mut Rt) -> Result<()> {
        let (db, coll) = (&self.spec.db, &self.spec.coll);
        let target_ns = format!("{db}.{coll}");
        let tmp = format!("tmp.agg_out.{}", ObjectId::new().to_hex());
        let tmp_ns = format!("{db}.{tmp}");
        let existing = rt.ss.store.catalog.get(&target_ns);
        let options = existing.as_ref().map(|c| c.options.clone()).unwrap_or_default();
        let created = rt.ss.create_collection(db, &tmp, options)?;
        let result = (|| -> Result<()> {
            if let Some(old) = &existing {
                let specs: Vec<Document> =
                    old.indexes.iter().filter(|i| !i.is_id()).map(|i| i.spec.clone()).collect();
                if !specs.is_empty() {
                    rt.ss.create_indexes(&created, specs)?;
                }
            }
            while let Some(d) = self.input.next(rt)? {
                let d = with_id(d);
                rt.ss.write_collection(db, &tmp, false, false, |t, c| t.insert(c, &d).map(|_| ()))?;
            }
            rt.ss.rename_collection(&tmp_ns, &target_ns, true)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rt.ss.drop_collection(db, &tmp);
        }
        result
    }
}

impl Stream for OutRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if !self.done {
            self.done = true;
            self.run(rt)?;
        }
        Ok(None)
    }
}

enum WhenMatched {
    Replace,
    KeepExisting,
    Merge,
    Fail,
    Pipeline(Pipeline),
}

#[derive(PartialEq)]
enum WhenNotMatched {
    Insert,
    Discard,
    Fail,
}

pub struct Merge {
    db: String,
    coll: String,
    on: Vec<String>,
    lets: Vec<Expr>,
    matched: WhenMatched,
    not_matched: WhenNotMatched,
}

impl Merge {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<Merge> {
        let d = match spec {
            Bson::String(_) => {
                let (db, coll) = target(spec, &pc.db, "$merge", "coll")?;
                return Ok(Merge {
                    db,
                    coll,
                    on: vec!["_id".into()],
                    lets: Vec::new(),
                    matched: WhenMatched::Merge,
                    not_matched: WhenNotMatched::Insert,
                });
            }
            Bson::Document(d) => d,
            other => {
                return Err(err(
                    51182,
                    format!("$merge only supports a string or object argument, not {}", type_name(other)),
                ))
            }
        };
        let mut into = None;
        let mut on = vec!["_id".to_string()];
        let mut lets: Option<Document> = None;
        let mut matched_spec = None;
        let mut not_matched = WhenNotMatched::Insert;
        for (k, v) in d {
            match k.as_str() {
                "into" => into = Some(target(v, &pc.db, "$merge", "coll")?),
                "on" => {
                    on = match v {
                        Bson::String(s) => vec![s.clone()],
                        Bson::Array(a) if !a.is_empty() => a
                            .iter()
                            .map(|x| match x {
                                Bson::String(s) => Ok(s.clone()),
                                _ => Err(err(51134, "$merge 'on' array elements must be strings")),
                            })
                            .collect::<Result<_>>()?,
                        _ => {
                            return Err(err(
                                51186,
                                "$merge 'on' field  must be either a string or an array of strings",
                            ))
                        }
                    }
                }
                "let" => match v {
                    Bson::Document(l) => lets = Some(l.clone()),
                    _ => {
                        return Err(MongoError::type_mismatch(
                            "BSON field '$merge.let' is the wrong type, expected type 'object'",
                        ))
                    }
                },
                "whenMatched" => matched_spec = Some(v.clone()),
                "whenNotMatched" => {
                    not_matched = match v {
                        Bson::String(s) if s == "insert" => WhenNotMatched::Insert,
                        Bson::String(s) if s == "discard" => WhenNotMatched::Discard,
                        Bson::String(s) if s == "fail" => WhenNotMatched::Fail,
                        other => {
                            return Err(MongoError::bad_value(format!(
                            "Enumeration value '{}' for field '$merge.whenNotMatched' is not a valid value.",
                            crate::query::util::value_to_string(other)
                        )))
                        }
                    }
                }
                other => {
                    return Err(MongoError::new(
                        ErrorCode::Location40415,
                        format!("BSON field '$merge.{other}' is an unknown field."),
                    ))
                }
            }
        }
        let (db, coll) = into.ok_or_else(|| {
            MongoError::new(
                ErrorCode::Location40414,
                "BSON field '$merge.into' is missing but a required field",
            )
        })?;
        let mut p = pc.parser();
        let (names, lets): (Vec<String>, Vec<Expr>) = match lets {
            Some(l) => {
                let mut names = Vec::new();
                let mut exprs = Vec::new();
                for (k, v) in &l {
                    validate_var_name(k, false)?;
                    names.push(k.clone());
                    exprs.push(p.parse(v)?);
                }
                (names, exprs)
            }
            None => (vec!["new".to_string()], vec![Expr::Path(crate::agg::expr::VarRef::Root, Vec::new())]),
        };
        let matched = match matched_spec {
            None => WhenMatched::Merge,
            Some(Bson::String(s)) => match s.as_str() {
                "replace" => WhenMatched::Replace,
                "keepExisting" => WhenMatched::KeepExisting,
                "merge" => WhenMatched::Merge,
                "fail" => WhenMatched::Fail,
                other => {
                    return Err(MongoError::bad_value(format!(
                        "Enumeration value '{other}' for field '$merge.whenMatched' is not a valid value."
                    )))
                }
            },
            Some(Bson::Array(stages)) => {
                for s in &stages {
                    let ok = matches!(s, Bson::Document(d) if d.keys().next().is_some_and(|n| matches!(n.as_str(), "$addFields" | "$set" | "$project" | "$unset" | "$replaceRoot" | "$replaceWith")));
                    if !ok {
                        return Err(err(
                            ErrorCode::InvalidOptions.code(),
                            "$merge 'whenMatched' pipeline may only contain $addFields, $set, $project, $unset, $replaceRoot and $replaceWith",
                        ));
                    }
                }
                // Slots: the command's variables first, then this stage's (as at run time).
                let sub = ParseCtx {
                    db: pc.db.clone(),
                    vars: [pc.vars.clone(), names.clone()].concat(),
                    depth: pc.depth + 1,
                    nested: true,
                };
                WhenMatched::Pipeline(Pipeline::parse(&stages, &sub)?)
            }
            Some(other) => {
                return Err(MongoError::type_mismatch(format!(
                "BSON field '$merge.whenMatched' is the wrong type '{}', expected types '[string, array]'",
                type_name(&other)
            )))
            }
        };
        if !matches!(matched, WhenMatched::Pipeline(_)) && !names.is_empty() && d.contains_key("let") {
            return Err(err(51199, "Cannot use 'let' variables with 'whenMatched: merge' mode"));
        }
        Ok(Merge { db, coll, on, lets, matched, not_matched })
    }
}

impl StageSpec for Merge {
    fn name(&self) -> &'static str {
        "$merge"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(MergeRun { spec: self, input, done: false })
    }
}

struct MergeRun {
    spec: Arc<Merge>,
    input: Box<dyn Stream>,
    done: bool,
}

impl MergeRun {
    fn run(&mut self, rt: &mut Rt) -> Result<()> {
        let spec = self.spec.clone();
        let ns = format!("{}.{}", spec.db, spec.coll);
        let by_id = spec.on.len() == 1 && spec.on[0] == "_id";
        if !by_id {
            if let Some(c) = rt.ss.store.catalog.get(&ns) {
                let mut want: Vec<&str> = spec.on.iter().map(String::as_str).collect();
                want.sort_unstable();
                let ok = c.indexes.iter().any(|i| {
                    let mut keys: Vec<&str> = i.key.keys().map(String::as_str).collect();
                    keys.sort_unstable();
                    i.unique && i.partial.is_none() && keys == want
                });
                if !ok {
                    return Err(err(51183, "Cannot find index to verify that join fields will be unique"));
                }
            } else {
                return Err(err(51183, "Cannot find index to verify that join fields will be unique"));
            }
        }
        while let Some(d) = self.input.next(rt)? {
            let d = if by_id { with_id(d) } else { d };
            let mut key = Document::new();
            for f in &spec.on {
                match crate::query::path::get_path(&d, f) {
                    Some(v) if !matches!(v, Bson::Null | Bson::Undefined | Bson::Array(_)) => {
                        key.insert(f.clone(), v.clone());
                    }
                    _ => {
                        return Err(err(
                            51132,
                            format!("$merge write error: 'on' field '{f}' cannot be missing, null, undefined or an array"),
                        ))
                    }
                }
            }
            // Find the target document (its RecordId) before writing.
            let found: Option<(i64, Document)> = match rt.ss.store.catalog.get(&ns) {
                None => None,
                Some(coll) => {
                    let access = planner::plan(&coll, &key, None, None)?;
                    let mut exec = Exec::new(
                        coll,
                        access,
                        ExecOptions {
                            filter: Some(Matcher::parse(&key)?),
                            sort: None,
                            projection: None,
                            skip: 0,
                            limit: Some(1),
                            allow_disk_use: false,
                        },
                    );
                    exec.next_match(rt.ss)?
                }
            };
            match found {
                Some((rid, old)) => {
                    let new = match &spec.matched {
                        WhenMatched::KeepExisting => continue,
                        WhenMatched::Fail => {
                            let pattern: Document = spec.on.iter().map(|f| (f.clone(), Bson::Int32(1))).collect();
                            return Err(MongoError::new(
                                ErrorCode::DuplicateKey,
                                format!(
                                    "E11000 duplicate key error collection: {ns} dup key: {}",
                                    crate::query::util::doc_to_string(&key)
                                ),
                            )
                            .with_info(bson::doc! { "keyPattern": pattern, "keyValue": key.clone() }));
                        }
                        WhenMatched::Replace => {
                            let mut n = d.clone();
                            if !n.contains_key("_id") {
                                if let Some(id) = old.get("_id") {
                                    n = with_id_value(n, id.clone());
                                }
                            }
                            n
                        }
                        WhenMatched::Merge => {
                            let mut n = old.clone();
                            for (k, v) in &d {
                                n.insert(k.clone(), v.clone());
                            }
                            n
                        }
                        WhenMatched::Pipeline(p) => {
                            let mut vars = rt.vars.to_vec();
                            {
                                let mut c = rt.ctx(&d);
                                for e in &spec.lets {
                                    vars.push(e.value(&mut c)?);
                                }
                            }
                            let mut sub = Rt { ss: &mut *rt.ss, vars: &vars, now: rt.now, allow_disk_use: rt.allow_disk_use, deadline: rt.deadline };
                            let mut s = p.start(Box::new(Buffer(VecDeque::from([old.clone()]))));
                            let mut n = s.next(&mut sub)?.unwrap_or_default();
                            if let Some(id) = old.get("_id") {
                                if n.get("_id").is_none() {
                                    n = with_id_value(n, id.clone());
                                }
                            }
                            n
                        }
                    };
                    if !crate::query::compare::bson_equal(
                        old.get("_id").unwrap_or(&Bson::Null),
                        new.get("_id").unwrap_or(&Bson::Null),
                    ) {
                        return Err(MongoError::new(
                            ErrorCode::ImmutableField,
                            "$merge failed to update the matching document, did you attempt to modify the _id or the shard key?",
                        ));
                    }
                    rt.ss.write_collection(&spec.db, &spec.coll, false, false, |t, c| {
                        t.update(c, rid, &old, &new, new.clone())
                    })?;
                }
                None => match spec.not_matched {
                    WhenNotMatched::Discard => {}
                    WhenNotMatched::Fail => {
                        return Err(err(
                            13113,
                            "$merge could not find a matching document in the target collection for at least one document in the source collection",
                        ))
                    }
                    WhenNotMatched::Insert => {
                        let d = with_id(d);
                        rt.ss.write_collection(&spec.db, &spec.coll, true, false, |t, c| t.insert(c, &d).map(|_| ()))?;
                    }
                },
            }
        }
        Ok(())
    }
}

fn with_id_value(d: Document, id: Bson) -> Document {
    let mut out = Document::new();
    out.insert("_id", id);
    for (k, v) in d {
        if k != "_id" {
            out.insert(k, v);
        }
    }
    out
}

impl Stream for MergeRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if !self.done {
            self.done = true;
            self.run(rt)?;
        }
        Ok(None)
    }
}
