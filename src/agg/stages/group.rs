//! `$group` (hash groups over a streamed input, bounded memory), its accumulators, and the
//! stages built on it: `$sortByCount` and `$bucket`.

use crate::agg::expr::arith::{StdDev, Sum};
use crate::agg::expr::{err, Expr, Parser};
use crate::agg::pipeline::{ParseCtx, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::compare::compare_bson;
use crate::query::sort::SortSpec;
use crate::query::util::type_name;
use bson::{doc, Bson, Document};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Kind {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    MergeObjects,
    StdDevPop,
    StdDevSamp,
    FirstN,
    LastN,
    MinN,
    MaxN,
    Top,
    Bottom,
    TopN,
    BottomN,
    /// `$median`/`$percentile` (spec in `AccSpec::quantile`), over a `State::List` of doubles.
    Quantile,
}

pub(crate) struct AccSpec {
    pub(crate) field: String,
    pub(crate) kind: Kind,
    arg: Expr,
    n: Option<Expr>,
    pub(crate) sort: Option<SortSpec>,
    pub(crate) quantile: Option<crate::agg::expr::stats::QuantileSpec>,
}

#[derive(Clone)]
pub(crate) enum State {
    Sum(Sum),
    Min(Option<Bson>),
    Max(Option<Bson>),
    First(Option<Bson>),
    Last(Bson),
    List(Vec<Bson>),
    Set(Vec<Bson>, HashSet<Vec<u8>>),
    Merge(Document),
    Std(StdDev),
    /// firstN/lastN/minN/maxN: the limit and the values.
    N(usize, VecDeque<Bson>),
    /// top/bottom(N): the limit and (sort keys, output) pairs.
    Ranked(usize, Vec<(Vec<Bson>, Bson)>),
}

pub(crate) fn parse_acc(field: &str, spec: &Bson, p: &mut Parser) -> Result<AccSpec> {
    if field.contains('.') {
        return Err(err(40235, format!("The field name '{field}' cannot contain '.'")));
    }
    if field.starts_with('$') {
        return Err(err(40236, format!("The field name '{field}' cannot be an operator name")));
    }
    let Bson::Document(d) = spec else {
        return Err(MongoError::new(
            ErrorCode::Location40234,
            format!("The field '{field}' must be an accumulator object"),
        ));
    };
    if d.len() != 1 {
        return Err(err(40238, format!("The field '{field}' must specify one accumulator")));
    }
    let Some((op, arg)) = d.iter().next() else {
        return Err(err(40238, format!("The field '{field}' must specify one accumulator")));
    };
    let kind = match op.as_str() {
        "$sum" => Kind::Sum,
        "$count" => {
            if !matches!(arg, Bson::Document(a) if a.is_empty()) {
                return Err(err(40237, "$count takes no arguments, i.e. $count:{}"));
            }
            return Ok(AccSpec {
                field: field.into(),
                kind: Kind::Sum,
                arg: Expr::Const(Bson::Int32(1)),
                n: None,
                sort: None,
                quantile: None,
            });
        }
        "$avg" => Kind::Avg,
        "$min" => Kind::Min,
        "$max" => Kind::Max,
        "$first" => Kind::First,
        "$last" => Kind::Last,
        "$push" => Kind::Push,
        "$addToSet" => Kind::AddToSet,
        "$mergeObjects" => Kind::MergeObjects,
        "$stdDevPop" => Kind::StdDevPop,
        "$stdDevSamp" => Kind::StdDevSamp,
        "$firstN" => Kind::FirstN,
        "$lastN" => Kind::LastN,
        "$minN" => Kind::MinN,
        "$maxN" => Kind::MaxN,
        "$top" => Kind::Top,
        "$bottom" => Kind::Bottom,
        "$topN" => Kind::TopN,
        "$bottomN" => Kind::BottomN,
        "$median" | "$percentile" => {
            let (arg, q) = crate::agg::expr::stats::parse_quantile(op, arg, p)?;
            return Ok(AccSpec {
                field: field.into(),
                kind: Kind::Quantile,
                arg,
                n: None,
                sort: None,
                quantile: Some(q),
            });
        }
        other => return Err(err(15952, format!("unknown group operator '{other}'"))),
    };
    if matches!(arg, Bson::Array(_)) && !matches!(kind, Kind::Push | Kind::AddToSet) {
        return Err(err(40237, format!("The {op} accumulator is a unary operator")));
    }
    let (arg, n, sort) = match kind {
        Kind::FirstN | Kind::LastN | Kind::MinN | Kind::MaxN => {
            let Bson::Document(a) = arg else {
                return Err(err(
                    5787801,
                    format!("specification must be an object; found {}", type_name(arg)),
                ));
            };
            let input =
                a.get("input").ok_or_else(|| err(5787907, format!("{op} requires an 'input' field")))?;
            let n = a.get("n").ok_or_else(|| err(5787906, format!("{op} requires an 'n' field")))?;
            for k in a.keys() {
                if k != "input" && k != "n" {
                    return Err(err(5787901, format!("Unknown argument for 'n' operator: {k}")));
                }
            }
            (p.parse(input)?, Some(p.parse(n)?), None)
        }
        Kind::Top | Kind::Bottom | Kind::TopN | Kind::BottomN => {
            let Bson::Document(a) = arg else {
                return Err(err(
                    5788001,
                    format!("specification must be an object; found {}", type_name(arg)),
                ));
            };
            let output = a.get("output").ok_or_else(|| err(5788002, "Missing value for 'output'"))?;
            let Some(Bson::Document(sort_by)) = a.get("sortBy") else {
                return Err(err(5788003, "Missing value for 'sortBy'"));
            };
            let n = match kind {
                Kind::TopN | Kind::BottomN => {
                    Some(p.parse(a.get("n").ok_or_else(|| err(5788004, "Missing value for 'n'"))?)?)
                }
                _ => None,
            };
            (p.parse(output)?, n, Some(SortSpec::parse(sort_by)?))
        }
        _ => (p.parse(arg)?, None, None),
    };
    Ok(AccSpec { field: field.into(), kind, arg, n, sort, quantile: None })
}

impl AccSpec {
    pub(crate) fn fresh(&self, c: &mut crate::agg::expr::Ctx) -> Result<State> {
        let limit = |c: &mut crate::agg::expr::Ctx| -> Result<usize> {
            let v = match &self.n {
                Some(e) => e.value(c)?,
                None => Bson::Int32(1),
            };
            match crate::query::util::exact_i64(&v) {
                Some(n) if n > 0 => Ok(n.min(1 << 20) as usize),
                Some(_) => Err(err(5787908, "'n' must be greater than 0")),
                None => Err(err(
                    5787902,
                    format!(
                        "Value for 'n' must be of integral type, but found {}",
                        crate::query::util::value_to_string(&v)
                    ),
                )),
            }
        };
        Ok(match self.kind {
            Kind::Sum | Kind::Avg => State::Sum(Sum::default()),
            Kind::Min => State::Min(None),
            Kind::Max => State::Max(None),
            Kind::First => State::First(None),
            Kind::Last => State::Last(Bson::Null),
            Kind::Push | Kind::Quantile => State::List(Vec::new()),
            Kind::AddToSet => State::Set(Vec::new(), HashSet::new()),
            Kind::MergeObjects => State::Merge(Document::new()),
            Kind::StdDevPop | Kind::StdDevSamp => State::Std(StdDev::default()),
            Kind::FirstN | Kind::LastN | Kind::MinN | Kind::MaxN => State::N(limit(c)?, VecDeque::new()),
            Kind::Top | Kind::Bottom | Kind::TopN | Kind::BottomN => State::Ranked(limit(c)?, Vec::new()),
        })
    }

    /// Feeds one document's value; returns the bytes the state grew by (roughly).
    pub(crate) fn add(&self, st: &mut State, c: &mut crate::agg::expr::Ctx, doc: &Document) -> Result<usize> {
        let v = self.arg.eval(c)?;
        Ok(match st {
            State::Sum(s) => {
                if let Some(v) = &v {
                    s.add(v)?;
                }
                0
            }
            State::Min(cur) | State::Max(cur) => {
                let is_min = self.kind == Kind::Min;
                if let Some(v) = v.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
                    let better = cur.as_ref().is_none_or(|b| {
                        let o = compare_bson(&v, b);
                        if is_min {
                            o.is_lt()
                        } else {
                            o.is_gt()
                        }
                    });
                    if better {
                        let n = approx_size(&v);
                        *cur = Some(v);
                        return Ok(n);
                    }
                }
                0
            }
            State::First(cur) => {
                if cur.is_none() {
                    let v = v.unwrap_or(Bson::Null);
                    let n = approx_size(&v);
                    *cur = Some(v);
                    n
                } else {
                    0
                }
            }
            State::Last(cur) => {
                *cur = v.unwrap_or(Bson::Null);
                0
            }
            State::List(list) if self.kind == Kind::Quantile => {
                match v.as_ref().and_then(crate::agg::expr::stats::numeric) {
                    Some(x) => {
                        list.push(Bson::Double(x));
                        approx_size(&Bson::Double(x))
                    }
                    None => 0,
                }
            }
            State::List(list) => match v {
                Some(v) => {
                    let n = approx_size(&v);
                    list.push(v);
                    n
                }
                None => 0,
            },
            State::Set(list, seen) => match v {
                Some(v) if seen.insert(crate::query::collation::group_key(&v)) => {
                    let n = approx_size(&v) * 2;
                    list.push(v);
                    n
                }
                _ => 0,
            },
            State::Merge(d) => {
                if let Some(v) = v {
                    crate::agg::expr::object::merge_into(d, &v)?;
                    approx_size(&v)
                } else {
                    0
                }
            }
            State::Std(s) => {
                if let Some(v) = v {
                    s.add(&v);
                }
                0
            }
            State::N(limit, items) => {
                let limit = *limit;
                match self.kind {
                    Kind::FirstN => {
                        if items.len() < limit {
                            let v = v.unwrap_or(Bson::Null);
                            let n = approx_size(&v);
                            items.push_back(v);
                            return Ok(n);
                        }
                        0
                    }
                    Kind::LastN => {
                        let v = v.unwrap_or(Bson::Null);
                        let n = approx_size(&v);
                        items.push_back(v);
                        if items.len() > limit {
                            items.pop_front();
                        }
                        n
                    }
                    _ => {
                        let Some(v) = v.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else {
                            return Ok(0);
                        };
                        let n = approx_size(&v);
                        items.push_back(v);
                        if items.len() > limit * 2 + 16 {
                            trim_min_max(items, limit, self.kind == Kind::MinN);
                        }
                        n
                    }
                }
            }
            State::Ranked(limit, items) => {
                let sort = self.sort.as_ref().ok_or_else(|| MongoError::internal("top without sortBy"))?;
                let keys = sort.keys(doc);
                let v = v.unwrap_or(Bson::Null);
                let n = approx_size(&v);
                items.push((keys, v));
                let limit = *limit;
                if items.len() > limit * 2 + 16 {
                    trim_ranked(items, limit, sort, matches!(self.kind, Kind::Top | Kind::TopN));
                }
                n
            }
        })
    }

    pub(crate) fn finish(&self, st: State) -> Bson {
        match st {
            State::Sum(s) => {
                if self.kind == Kind::Avg {
                    s.average()
                } else {
                    s.result()
                }
            }
            State::Min(v) | State::Max(v) => v.unwrap_or(Bson::Null),
            State::First(v) => v.unwrap_or(Bson::Null),
            State::Last(v) => v,
            State::List(l) => match &self.quantile {
                Some(q) => q.result(l.iter().filter_map(crate::agg::expr::stats::numeric).collect()),
                None => Bson::Array(l),
            },
            State::Set(l, _) => Bson::Array(l),
            State::Merge(d) => Bson::Document(d),
            State::Std(s) => s.result(self.kind == Kind::StdDevSamp),
            State::N(limit, items) => {
                let mut items = items;
                if matches!(self.kind, Kind::MinN | Kind::MaxN) {
                    trim_min_max(&mut items, limit, self.kind == Kind::MinN);
                }
                Bson::Array(items.into_iter().collect())
            }
            State::Ranked(limit, mut items) => {
                let top = matches!(self.kind, Kind::Top | Kind::TopN);
                if let Some(sort) = &self.sort {
                    trim_ranked(&mut items, limit, sort, top);
                }
                let out: Vec<Bson> = items.into_iter().map(|(_, v)| v).collect();
                match self.kind {
                    Kind::Top | Kind::Bottom => out.into_iter().next().unwrap_or(Bson::Null),
                    _ => Bson::Array(out),
                }
            }
        }
    }
}

pub(super) fn trim_min_max(items: &mut VecDeque<Bson>, limit: usize, min: bool) {
    let mut v: Vec<Bson> = items.drain(..).collect();
    v.sort_by(|a, b| if min { compare_bson(a, b) } else { compare_bson(b, a) });
    v.truncate(limit);
    items.extend(v);
}

pub(super) fn trim_ranked(items: &mut Vec<(Vec<Bson>, Bson)>, limit: usize, sort: &SortSpec, top: bool) {
    // Stable sort keeps arrival order among equal keys.
    items.sort_by(|a, b| sort.compare_keys(&a.0, &b.0));
    if top {
        items.truncate(limit);
    } else {
        let drop = items.len().saturating_sub(limit);
        items.drain(..drop);
    }
}

/// A cheap estimate of a value's in-memory size, for the stage memory limit.
pub fn approx_size(v: &Bson) -> usize {
    match v {
        Bson::String(s) => 24 + s.len(),
        Bson::Document(d) => 32 + d.iter().map(|(k, v)| k.len() + 8 + approx_size(v)).sum::<usize>(),
        Bson::Array(a) => 24 + a.iter().map(approx_size).sum::<usize>(),
        Bson::Binary(b) => 32 + b.bytes.len(),
        _ => 24,
    }
}

/// How group keys are computed and groups ordered on output.
enum Keying {
    /// `_id: <expr>`; groups come out in first-seen order.
    Expr(Expr),
    /// `$bucket`: the boundary a value falls in (or the default); output by boundary.
    Bucket { group_by: Expr, boundaries: Vec<Bson>, default: Option<Bson> },
}

pub struct GroupSpec {
    keying: Keying,
    accs: Vec<AccSpec>,
}

impl GroupSpec {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<GroupSpec> {
        let Bson::Document(d) = spec else {
            return Err(err(15947, "a group's fields must be specified in an object"));
        };
        let mut p = pc.parser();
        let mut id = None;
        let mut accs = Vec::new();
        for (k, v) in d {
            if k == "_id" {
                id = Some(p.parse(v)?);
            } else {
                accs.push(parse_acc(k, v, &mut p)?);
            }
        }
        let id = id.ok_or_else(|| {
            MongoError::new(ErrorCode::Location15955, "a group specification must include an _id")
        })?;
        Ok(GroupSpec { keying: Keying::Expr(id), accs })
    }
}

impl StageSpec for GroupSpec {
    fn name(&self) -> &'static str {
        match self.keying {
            Keying::Expr(_) => "$group",
            Keying::Bucket { .. } => "$bucket",
        }
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(GroupRun { spec: self, input, out: None, merged: None })
    }
}

struct GroupRun {
    spec: Arc<GroupSpec>,
    input: Box<dyn Stream>,
    out: Option<std::vec::IntoIter<Document>>,
    /// The groups of a `$group` that spilled, merged from disk as they are read.
    merged: Option<super::group_spill::GroupMerge>,
}

/// mongod's error for a `$group` past its memory limit without allowDiskUse.
fn group_memory_error() -> MongoError {
    MongoError::new(
        ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
        "PlanExecutor error during aggregation :: caused by :: Exceeded memory limit for $group, but didn't allow external spilling; pass allowDiskUse:true to opt in",
    )
}

/// (sort key of the group in spill runs, `_id`, accumulator states)
type Group = (Vec<u8>, Bson, Vec<State>);

impl GroupRun {
    fn build(&mut self, rt: &mut Rt) -> Result<Vec<Document>> {
        let spec = self.spec.clone();
        let limit = rt.ss.store.knobs.group();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        // Groups in first-seen order; a `$bucket`'s sort key starts with its boundary rank.
        let mut groups: Vec<Group> = Vec::new();
        let mut spill: Option<crate::query::spill::Spill> = None;
        let mut used = 0usize;
        while let Some(d) = self.input.next(rt)? {
            let mut c = rt.ctx(&d);
            let (key, rank) = match &spec.keying {
                Keying::Expr(e) => (e.value(&mut c)?, 0),
                Keying::Bucket { group_by, boundaries, default } => {
                    let v = group_by.value(&mut c)?;
                    let pos = boundaries
                        .windows(2)
                        .position(|w| compare_bson(&v, &w[0]).is_ge() && compare_bson(&v, &w[1]).is_lt());
                    match (pos, default) {
                        (Some(i), _) => (boundaries[i].clone(), i),
                        (None, Some(dflt)) => (dflt.clone(), usize::MAX),
                        (None, None) => {
                            return Err(err(
                                40066,
                                "$switch could not find a matching branch for an input, and no default was specified.",
                            ))
                        }
                    }
                }
            };
            let k = crate::query::collation::group_key(&key);
            let gi = match index.get(&k) {
                Some(i) => *i,
                None => {
                    let mut states = Vec::with_capacity(spec.accs.len());
                    for a in &spec.accs {
                        states.push(a.fresh(&mut c)?);
                    }
                    used += k.len() * 3 + approx_size(&key) + 64 * (spec.accs.len() + 1);
                    let mut sort_key = Vec::with_capacity(k.len() + 8);
                    sort_key.extend_from_slice(&(rank as u64).to_be_bytes());
                    sort_key.extend_from_slice(&k);
                    index.insert(k, groups.len());
                    groups.push((sort_key, key, states));
                    groups.len() - 1
                }
            };
            let (_, _, states) = &mut groups[gi];
            for (a, st) in spec.accs.iter().zip(states.iter_mut()) {
                used += a.add(st, &mut c, &d)?;
            }
            if used > limit {
                if !rt.allow_disk_use {
                    return Err(group_memory_error());
                }
                index.clear();
                spill_groups(spill.get_or_insert_with(Default::default), &mut groups)?;
                used = 0;
            }
        }
        if let Some(mut spill) = spill {
            spill_groups(&mut spill, &mut groups)?;
            self.merged = Some(super::group_spill::GroupMerge::new(spill));
            return Ok(Vec::new());
        }
        if matches!(spec.keying, Keying::Bucket { .. }) {
            groups.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut out = Vec::with_capacity(groups.len());
        for (_, key, states) in groups {
            out.push(group_doc(&spec.accs, key, states));
        }
        Ok(out)
    }
}

fn group_doc(accs: &[AccSpec], key: Bson, states: Vec<State>) -> Document {
    let mut g = doc! { "_id": key };
    for (a, st) in accs.iter().zip(states) {
        g.insert(a.field.clone(), a.finish(st));
    }
    g
}

/// Writes the held groups out as one run sorted by group key.
fn spill_groups(spill: &mut crate::query::spill::Spill, groups: &mut Vec<Group>) -> Result<()> {
    let mut items = Vec::with_capacity(groups.len());
    for (sort_key, key, states) in groups.drain(..) {
        items.push(super::group_spill::record(sort_key, key, &states)?);
    }
    spill.write_run_by(items, super::group_spill::by_key)
}

impl Stream for GroupRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.out.is_none() {
            let docs = self.build(rt)?;
            self.out = Some(docs.into_iter());
        }
        if let Some(m) = self.merged.as_mut() {
            return Ok(m.next(&self.spec.accs)?.map(|(key, states)| group_doc(&self.spec.accs, key, states)));
        }
        Ok(self.out.as_mut().and_then(Iterator::next))
    }
}

pub fn parse_sort_by_count(spec: &Bson, pc: &ParseCtx) -> Result<Vec<Arc<dyn StageSpec>>> {
    match spec {
        Bson::String(s) if s.starts_with('$') => {}
        Bson::String(_) => {
            return Err(err(
                40148,
                "the sortByCount field must be defined as a $-prefixed path or an expression",
            ))
        }
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {}
        Bson::Document(_) => {
            return Err(err(
                40147,
                "the sortByCount field must be defined as a $-prefixed path or an expression",
            ))
        }
        _ => return Err(err(40149, "the sortByCount field must be specified as a string or as an object")),
    }
    let mut p = pc.parser();
    let group = GroupSpec {
        keying: Keying::Expr(p.parse(spec)?),
        accs: vec![AccSpec {
            field: "count".into(),
            kind: Kind::Sum,
            arg: Expr::Const(Bson::Int32(1)),
            n: None,
            sort: None,
            quantile: None,
        }],
    };
    let sort = super::sort::SortStage::parse(&Bson::Document(doc! {"count": -1}))?;
    Ok(vec![Arc::new(group), Arc::new(sort)])
}

/// A `groupBy` of `$bucket`/`$bucketAuto`: a `$`-path or an operator expression.
fn is_group_by(v: &Bson) -> bool {
    match v {
        Bson::String(s) => s.starts_with('$'),
        Bson::Document(d) => d.keys().next().is_some_and(|k| k.starts_with('$')),
        _ => false,
    }
}

pub fn parse_bucket(spec: &Bson, pc: &ParseCtx) -> Result<Vec<Arc<dyn StageSpec>>> {
    let Bson::Document(d) = spec else {
        return Err(err(
            40201,
            format!("Argument to $bucket stage must be an object, but found type: {}", type_name(spec)),
        ));
    };
    let mut p = pc.parser();
    let (mut group_by, mut boundaries, mut default, mut output) = (None, None, None, None);
    for (k, v) in d {
        match k.as_str() {
            "groupBy" => {
                if !is_group_by(v) {
                    return Err(err(40202, format!("The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression, but found: {}", crate::query::util::value_to_string(v))));
                }
                group_by = Some(p.parse(v)?);
            }
            "boundaries" => {
                let Bson::Array(a) = v else {
                    return Err(err(
                        40200,
                        format!(
                            "The $bucket 'boundaries' field must be an array, but found type: {}",
                            type_name(v)
                        ),
                    ));
                };
                boundaries = Some(a.clone());
            }
            "default" => default = Some(v.clone()),
            "output" => {
                let Bson::Document(o) = v else {
                    return Err(err(
                        40196,
                        format!(
                            "The $bucket 'output' field must be an object, but found type: {}",
                            type_name(v)
                        ),
                    ));
                };
                output = Some(o.clone());
            }
            other => return Err(err(40197, format!("Unrecognized option to $bucket: {other}."))),
        }
    }
    let (Some(group_by), Some(boundaries)) = (group_by, boundaries) else {
        return Err(err(40198, "$bucket requires 'groupBy' and 'boundaries' to be specified."));
    };
    if boundaries.len() < 2 {
        return Err(err(
            40192,
            format!(
                "The $bucket 'boundaries' field must have at least 2 values, but found {} value(s).",
                boundaries.len()
            ),
        ));
    }
    let rank = crate::query::compare::canonical_type_rank;
    for w in boundaries.windows(2) {
        if rank(&w[0]) != rank(&w[1]) {
            return Err(err(
                40193,
                "All values in the the 'boundaries' option to $bucket must have the same type.",
            ));
        }
        if !compare_bson(&w[0], &w[1]).is_lt() {
            return Err(err(40194, "The 'boundaries' option to $bucket must be sorted in ascending order"));
        }
    }
    if let Some(dv) = &default {
        let (lo, hi) = (&boundaries[0], &boundaries[boundaries.len() - 1]);
        if rank(dv) == rank(lo) && compare_bson(dv, lo).is_ge() && compare_bson(dv, hi).is_lt() {
            return Err(err(40199, "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the highest boundary."));
        }
    }
    let accs = match output {
        Some(o) => o.iter().map(|(k, v)| parse_acc(k, v, &mut p)).collect::<Result<Vec<_>>>()?,
        None => vec![AccSpec {
            field: "count".into(),
            kind: Kind::Sum,
            arg: Expr::Const(Bson::Int32(1)),
            n: None,
            sort: None,
            quantile: None,
        }],
    };
    Ok(vec![Arc::new(GroupSpec { keying: Keying::Bucket { group_by, boundaries, default }, accs })])
}

/// `$bucketAuto`: sorts the input by the `groupBy` value and cuts it into `buckets` runs of
/// about equal size (equal values never straddle two buckets).
pub struct BucketAuto {
    pub(super) group_by: Expr,
    pub(super) buckets: usize,
    pub(super) granularity: Option<super::granularity::Granularity>,
    pub(super) accs: Vec<AccSpec>,
}

pub fn parse_bucket_auto(spec: &Bson, pc: &ParseCtx) -> Result<Vec<Arc<dyn StageSpec>>> {
    let Bson::Document(d) = spec else {
        return Err(err(
            40240,
            format!("The argument to $bucketAuto must be an object, but found type: {}", type_name(spec)),
        ));
    };
    let mut p = pc.parser();
    let (mut group_by, mut buckets, mut output, mut granularity) = (None, None, None, None);
    for (k, v) in d {
        match k.as_str() {
            "groupBy" => {
                if !is_group_by(v) {
                    return Err(err(40239, format!("The $bucketAuto 'groupBy' field must be defined as a $-prefixed path or an expression object, but found: {}", crate::query::util::value_to_string(v))));
                }
                group_by = Some(p.parse(v)?);
            }
            "buckets" => {
                let n = crate::query::util::exact_i64(v)
                    .filter(|_| crate::query::util::is_number(v))
                    .filter(|n| i32::try_from(*n).is_ok())
                    .ok_or_else(|| {
                        err(
                            40241,
                            format!(
                                "The $bucketAuto 'buckets' field must be a numeric value, but found type: {}",
                                type_name(v)
                            ),
                        )
                    })?;
                if n <= 0 {
                    return Err(err(
                        40243,
                        format!("The $bucketAuto 'buckets' field must be greater than 0, but found: {n}"),
                    ));
                }
                buckets = Some(n as usize);
            }
            "output" => {
                let Bson::Document(o) = v else {
                    return Err(err(
                        40244,
                        format!(
                            "The $bucketAuto 'output' field must be an object, but found type: {}",
                            type_name(v)
                        ),
                    ));
                };
                output = Some(o.clone());
            }
            "granularity" => {
                let Bson::String(g) = v else {
                    return Err(err(
                        40261,
                        format!(
                            "The $bucketAuto 'granularity' field must be a string, but found type: {}",
                            type_name(v)
                        ),
                    ));
                };
                granularity = Some(super::granularity::Granularity::by_name(g)?);
            }
            other => return Err(err(40245, format!("Unrecognized option to $bucketAuto: {other}."))),
        }
    }
    let (Some(group_by), Some(buckets)) = (group_by, buckets) else {
        return Err(err(40246, "$bucketAuto requires 'groupBy' and 'buckets' to be specified"));
    };
    let accs = match output {
        Some(o) => o.iter().map(|(k, v)| parse_acc(k, v, &mut p)).collect::<Result<Vec<_>>>()?,
        None => vec![AccSpec {
            field: "count".into(),
            kind: Kind::Sum,
            arg: Expr::Const(Bson::Int32(1)),
            n: None,
            sort: None,
            quantile: None,
        }],
    };
    Ok(vec![Arc::new(BucketAuto { group_by, buckets, granularity, accs })])
}

impl StageSpec for BucketAuto {
    fn name(&self) -> &'static str {
        "$bucketAuto"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        super::bucket_auto::start(self, input)
    }
}
