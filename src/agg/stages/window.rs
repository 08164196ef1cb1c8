//! `$setWindowFields`: partitions the input, sorts each partition by `sortBy`, and adds one
//! field per window function computed over a `documents` or `range` window.
//!
//! The stage is blocking (a partition is only complete at the end of the input, and mongod
//! sorts by partition key first), bounded by the stage memory limit. Every output is computed
//! from the input documents, so outputs of one stage never see each other. The `$group`
//! accumulators are reused for window functions over a window; the order-based functions
//! ($rank, $shift, $expMovingAvg, $locf, $linearFill, $derivative, $integral) have their own
//! evaluation here.

use super::group::{approx_size, parse_acc, AccSpec};
use crate::agg::expr::arith::num;
use crate::agg::expr::date::add_units;
use crate::agg::expr::{const_ctx, get_path, Expr, Parser};
use crate::agg::pipeline::{ParseCtx, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::compare::{compare_bson, Num};
use crate::query::sort::SortSpec;
use crate::query::util::{exact_i64, is_number, type_name, value_to_string};
use bson::{Bson, Document};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

fn parse_err(msg: impl Into<String>) -> MongoError {
    MongoError::new(ErrorCode::FailedToParse, msg)
}

fn located(code: i32, msg: impl Into<String>) -> MongoError {
    crate::agg::expr::err(code, msg)
}

/// One end of a `documents` window.
#[derive(Clone, Copy, Debug, PartialEq)]
enum DocBound {
    Unbounded,
    Current,
    Offset(i64),
}

/// One end of a `range` window.
#[derive(Clone, Debug, PartialEq)]
enum RangeBound {
    Unbounded,
    Current,
    Value(Num),
}

#[derive(Debug, PartialEq)]
enum Window {
    Documents(DocBound, DocBound),
    Range(RangeBound, RangeBound, Option<String>),
}

impl Window {
    fn whole() -> Window {
        Window::Documents(DocBound::Unbounded, DocBound::Unbounded)
    }
}

enum Func {
    /// A `$group` accumulator fed with the documents of the window.
    Acc(AccSpec),
    Cov {
        x: Expr,
        y: Expr,
        sample: bool,
    },
    Derivative {
        input: Expr,
        unit: Option<i64>,
    },
    Integral {
        input: Expr,
        unit: Option<i64>,
    },
    Shift {
        output: Expr,
        by: i64,
        default: Bson,
    },
    Rank,
    DenseRank,
    DocumentNumber,
    ExpMovingAvg {
        input: Expr,
        alpha: f64,
    },
    Locf(Expr),
    LinearFill(Expr),
}

struct Output {
    path: String,
    func: Func,
    window: Window,
}

pub struct SetWindowFields {
    partition_by: Option<Expr>,
    sort_by: Option<SortSpec>,
    outputs: Vec<Output>,
}

/// The window functions that accept a `window` (all of them are `$group` accumulators except
/// the covariances, `$derivative` and `$integral`).
const WINDOWED_ACCUMULATORS: &[&str] = &[
    "$sum",
    "$avg",
    "$min",
    "$max",
    "$count",
    "$push",
    "$addToSet",
    "$first",
    "$last",
    "$mergeObjects",
    "$stdDevPop",
    "$stdDevSamp",
    "$firstN",
    "$lastN",
    "$minN",
    "$maxN",
    "$top",
    "$bottom",
    "$topN",
    "$bottomN",
    "$median",
    "$percentile",
];

/// Milliseconds of a fixed-length time unit (`$derivative`/`$integral` accept only these).
fn fixed_unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "week" => 7 * 86_400_000,
        "day" => 86_400_000,
        "hour" => 3_600_000,
        "minute" => 60_000,
        "second" => 1000,
        "millisecond" => 1,
        _ => return None,
    })
}

const TIME_UNITS: &[&str] =
    &["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"];

impl SetWindowFields {
    pub fn parse(spec: &Bson, pc: &ParseCtx) -> Result<SetWindowFields> {
        let Bson::Document(d) = spec else {
            return Err(parse_err("the $setWindowFields stage specification must be an object"));
        };
        let mut p = pc.parser();
        let (mut partition_by, mut sort_by, mut output) = (None, None, None);
        for (k, v) in d {
            match k.as_str() {
                "partitionBy" => partition_by = Some(p.parse(v)?),
                "sortBy" => {
                    let Bson::Document(s) = v else {
                        return Err(MongoError::type_mismatch(format!(
                            "BSON field '$setWindowFields.sortBy' is the wrong type '{}', expected type 'object'",
                            type_name(v)
                        )));
                    };
                    sort_by = Some((s.clone(), SortSpec::parse(s)?));
                }
                "output" => {
                    let Bson::Document(o) = v else {
                        return Err(MongoError::type_mismatch(format!(
                            "BSON field '$setWindowFields.output' is the wrong type '{}', expected type 'object'",
                            type_name(v)
                        )));
                    };
                    output = Some(o);
                }
                other => {
                    return Err(located(
                        40415,
                        format!("BSON field '$setWindowFields.{other}' is an unknown field."),
                    ))
                }
            }
        }
        let output = output.ok_or_else(|| {
            located(40414, "BSON field '$setWindowFields.output' is missing but a required field")
        })?;
        let sort_fields = sort_by.as_ref().map(|(s, _)| s.len()).unwrap_or(0);
        let ascending_one = sort_by
            .as_ref()
            .is_some_and(|(s, spec)| s.len() == 1 && spec.fields.first().is_some_and(|f| f.ascending));
        let mut outputs = Vec::with_capacity(output.len());
        for (field, fspec) in output {
            crate::agg::expr::parse_field_path(field)?;
            let o = parse_output(field, fspec, &mut p)?;
            // mongod's checks of the window against sortBy.
            match &o.window {
                Window::Documents(lo, hi)
                    if (*lo != DocBound::Unbounded || *hi != DocBound::Unbounded) && sort_fields == 0 =>
                {
                    return Err(located(5339901, "Document-based bounds require a sortBy"));
                }
                Window::Range(..) if sort_fields != 1 => {
                    return Err(located(5339902, "Range-based bounds require sortBy a single field"));
                }
                Window::Range(..) if !ascending_one => {
                    return Err(located(5339903, "Range-based bounds require an ascending sortBy"));
                }
                _ => {}
            }
            let op = fspec.as_document().and_then(|d| d.keys().find(|k| k.starts_with('$')).cloned());
            let op = op.unwrap_or_default();
            match &o.func {
                Func::Rank | Func::DenseRank | Func::DocumentNumber
                    if sort_fields != 1 && op != "$documentNumber" =>
                {
                    return Err(located(
                        5371602,
                        format!("{op} must be specified with a top level sortBy expression with exactly one element"),
                    ));
                }
                Func::Shift { .. } | Func::ExpMovingAvg { .. } | Func::Locf(_)
                    if sort_fields == 0 && op != "$locf" =>
                {
                    return Err(parse_err(format!("{op} requires a sortBy")));
                }
                Func::Derivative { .. } | Func::Integral { .. } | Func::LinearFill(_) if !ascending_one => {
                    return Err(parse_err(format!("{op} requires a sortBy on exactly one ascending field")));
                }
                _ => {}
            }
            outputs.push(o);
        }
        Ok(SetWindowFields { partition_by, sort_by: sort_by.map(|(_, s)| s), outputs })
    }
}

fn parse_output(field: &str, spec: &Bson, p: &mut Parser) -> Result<Output> {
    let Bson::Document(d) = spec else {
        return Err(parse_err(format!("The field '{field}' must be an object")));
    };
    let mut func: Option<(&String, &Bson)> = None;
    let mut window = None;
    for (k, v) in d {
        if k == "window" {
            window = Some(v);
        } else if k.starts_with('$') {
            if func.is_some() {
                return Err(parse_err(format!(
                    "Expected a single window function for field '{field}', but found more than one"
                )));
            }
            func = Some((k, v));
        } else {
            return Err(parse_err(format!("Window function found an unknown argument: {k}")));
        }
    }
    let Some((op, arg)) = func else {
        return Err(parse_err(format!("Expected a $-prefixed window function for field '{field}'")));
    };
    let window_taking = WINDOWED_ACCUMULATORS.contains(&op.as_str())
        || matches!(op.as_str(), "$covariancePop" | "$covarianceSamp" | "$derivative" | "$integral");
    let known = window_taking
        || matches!(
            op.as_str(),
            "$shift" | "$rank" | "$denseRank" | "$documentNumber" | "$expMovingAvg" | "$locf" | "$linearFill"
        );
    if !known {
        return Err(parse_err(format!("Unrecognized window function, {op}")));
    }
    if window.is_some() && !window_taking {
        return Err(parse_err(format!("{op} does not accept a 'window' field")));
    }
    if op == "$derivative" && window.is_none() {
        return Err(parse_err("$derivative requires explicit window bounds"));
    }
    let window = match window {
        Some(w) => parse_window(w)?,
        None => Window::whole(),
    };
    let named = |allowed: &[&str]| -> Result<Document> {
        let Bson::Document(a) = arg else {
            return Err(parse_err(format!(
                "Argument to {op} must be an object, but found {}",
                type_name(arg)
            )));
        };
        for k in a.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(parse_err(format!("{op} found an unknown argument: {k}")));
            }
        }
        Ok(a.clone())
    };
    let unit_arg = |a: &Document| -> Result<Option<i64>> {
        match a.get("unit") {
            None => Ok(None),
            Some(Bson::String(u)) => fixed_unit_ms(u).map(Some).ok_or_else(|| {
                parse_err(format!(
                    "{op} 'unit' must be one of week, day, hour, minute, second or millisecond; found: {u}"
                ))
            }),
            Some(other) => {
                Err(parse_err(format!("{op} 'unit' must be a string, found {}", type_name(other))))
            }
        }
    };
    let func = match op.as_str() {
        "$covariancePop" | "$covarianceSamp" => {
            let Bson::Array(xy) = arg else {
                return Err(parse_err(format!("{op} requires an array of two expressions")));
            };
            let [x, y] = xy.as_slice() else {
                return Err(parse_err(format!("{op} requires an array of two expressions")));
            };
            Func::Cov { x: p.parse(x)?, y: p.parse(y)?, sample: op == "$covarianceSamp" }
        }
        "$derivative" | "$integral" => {
            let a = named(&["input", "unit"])?;
            let input =
                a.get("input").ok_or_else(|| parse_err(format!("{op} requires an 'input' expression")))?;
            let input = p.parse(input)?;
            let unit = unit_arg(&a)?;
            if op == "$derivative" {
                Func::Derivative { input, unit }
            } else {
                Func::Integral { input, unit }
            }
        }
        "$shift" => {
            let a = named(&["output", "by", "default"])?;
            let output =
                a.get("output").ok_or_else(|| parse_err("$shift requires an 'output' expression"))?;
            let by = match a.get("by") {
                Some(b) if is_number(b) => exact_i64(b).filter(|n| i32::try_from(*n).is_ok()),
                _ => None,
            }
            .ok_or_else(|| {
                parse_err(
                    "'$shift:by' field must be an integer, but found ".to_string()
                        + &a.get("by").map_or("nothing".into(), value_to_string),
                )
            })?;
            let default = match a.get("default") {
                None => Bson::Null,
                Some(dv) => {
                    let e = p.parse(dv)?;
                    if !e.is_const() {
                        return Err(parse_err("'$shift:default' expression must yield a constant value."));
                    }
                    e.value(&mut const_ctx())?
                }
            };
            Func::Shift { output: p.parse(output)?, by, default }
        }
        "$rank" | "$denseRank" | "$documentNumber" => {
            if !matches!(arg, Bson::Document(a) if a.is_empty()) {
                return Err(parse_err(format!("{op} accepts an empty object as its argument")));
            }
            match op.as_str() {
                "$rank" => Func::Rank,
                "$denseRank" => Func::DenseRank,
                _ => Func::DocumentNumber,
            }
        }
        "$expMovingAvg" => {
            let a = named(&["input", "N", "alpha"])?;
            let input =
                a.get("input").ok_or_else(|| parse_err("$expMovingAvg requires an 'input' expression"))?;
            let alpha = match (a.get("N"), a.get("alpha")) {
                (Some(n), None) => match exact_i64(n).filter(|_| is_number(n)) {
                    Some(n) if n > 0 => 2.0 / (n as f64 + 1.0),
                    _ => return Err(parse_err("'N' field must be an integer greater than zero")),
                },
                (None, Some(al)) => match num(al).map(|x| x.to_f64()) {
                    Some(x) if x > 0.0 && x < 1.0 => x,
                    _ => return Err(parse_err("'alpha' must be a number between 0 and 1 (exclusive)")),
                },
                _ => {
                    return Err(parse_err("$expMovingAvg must have exactly one of 'N' or 'alpha' specified"));
                }
            };
            Func::ExpMovingAvg { input: p.parse(input)?, alpha }
        }
        "$locf" => Func::Locf(p.parse(arg)?),
        "$linearFill" => Func::LinearFill(p.parse(arg)?),
        _ => {
            let mut one = Document::new();
            one.insert(op.clone(), arg.clone());
            Func::Acc(parse_acc("x", &Bson::Document(one), p)?)
        }
    };
    Ok(Output { path: field.to_string(), func, window })
}

fn parse_window(w: &Bson) -> Result<Window> {
    let shape_err = || {
        parse_err("'window' field can only contain 'documents' as the only argument or 'range' with an optional 'unit' field")
    };
    let Bson::Document(w) = w else {
        return Err(parse_err("'window' field must be an object"));
    };
    let (mut documents, mut range, mut unit) = (None, None, None);
    for (k, v) in w {
        match k.as_str() {
            "documents" => documents = Some(v),
            "range" => range = Some(v),
            "unit" => unit = Some(v),
            _ => return Err(shape_err()),
        }
    }
    let pair = |v: &Bson| -> Result<(Bson, Bson)> {
        match v {
            Bson::Array(a) if a.len() == 2 => Ok((a[0].clone(), a[1].clone())),
            other => {
                Err(parse_err(format!("Window bounds must be a 2-element array: {}", value_to_string(other))))
            }
        }
    };
    match (documents, range, unit) {
        (Some(dv), None, None) => {
            let (lo, hi) = pair(dv)?;
            let bound = |b: &Bson| -> Result<DocBound> {
                match b {
                    Bson::String(s) if s == "unbounded" => Ok(DocBound::Unbounded),
                    Bson::String(s) if s == "current" => Ok(DocBound::Current),
                    n if is_number(n) => exact_i64(n)
                        .map(DocBound::Offset)
                        .ok_or_else(|| parse_err("Numeric document-based bounds must be an integer")),
                    _ => Err(parse_err("Window bounds must be 'unbounded', 'current', or an integer")),
                }
            };
            let (lo, hi) = (bound(&lo)?, bound(&hi)?);
            let pos = |b: DocBound, lower: bool| match b {
                DocBound::Unbounded => {
                    if lower {
                        i64::MIN
                    } else {
                        i64::MAX
                    }
                }
                DocBound::Current => 0,
                DocBound::Offset(k) => k,
            };
            if lo == DocBound::Unbounded && hi == DocBound::Unbounded {
                return Ok(Window::Documents(lo, hi));
            }
            if hi == DocBound::Unbounded && lo != DocBound::Unbounded {
                return Ok(Window::Documents(lo, hi));
            }
            if lo == DocBound::Unbounded {
                return Ok(Window::Documents(lo, hi));
            }
            if pos(lo, true) > pos(hi, false) {
                return Err(parse_err("Lower bound must not exceed upper bound"));
            }
            Ok(Window::Documents(lo, hi))
        }
        (None, Some(rv), unit) => {
            let unit = match unit {
                None => None,
                Some(Bson::String(u)) if TIME_UNITS.contains(&u.as_str()) => Some(u.clone()),
                Some(Bson::String(u)) => {
                    return Err(located(ErrorCode::BadValue.code(), format!("unknown time unit value: {u}")))
                }
                Some(other) => {
                    return Err(parse_err(format!("'unit' must be a string, found {}", type_name(other))))
                }
            };
            let (lo, hi) = pair(rv)?;
            let bound = |b: &Bson| -> Result<RangeBound> {
                match b {
                    Bson::String(s) if s == "unbounded" => Ok(RangeBound::Unbounded),
                    Bson::String(s) if s == "current" => Ok(RangeBound::Current),
                    n if is_number(n) => {
                        if unit.is_some() && exact_i64(n).is_none() {
                            return Err(parse_err("With 'unit', range-based bounds must be an integer"));
                        }
                        num(n)
                            .map(RangeBound::Value)
                            .ok_or_else(|| parse_err("Range-based bounds expression must be a number"))
                    }
                    _ => Err(parse_err("Range-based bounds expression must be a number")),
                }
            };
            let (lo, hi) = (bound(&lo)?, bound(&hi)?);
            let as_value = |b: &RangeBound| match b {
                RangeBound::Current => Some(0.0),
                RangeBound::Value(v) => Some(v.to_f64()),
                RangeBound::Unbounded => None,
            };
            if let (Some(l), Some(h)) = (as_value(&lo), as_value(&hi)) {
                if l > h {
                    return Err(parse_err("Lower bound must not exceed upper bound"));
                }
            }
            Ok(Window::Range(lo, hi, unit))
        }
        (None, None, Some(_)) => Err(shape_err()),
        (None, None, None) => Err(shape_err()),
        _ => Err(shape_err()),
    }
}

impl StageSpec for SetWindowFields {
    fn name(&self) -> &'static str {
        "$setWindowFields"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(WindowRun { spec: self, input, sorted: None, ahead: None, out: VecDeque::new() })
    }
}

/// (partition key, sort keys, document)
type Row = (Bson, Vec<Bson>, Document);

/// The input in partition and sort order: in memory, or (past the memory limit with
/// allowDiskUse) sorted runs on disk merged as read.
enum Sorted {
    Mem(std::vec::IntoIter<Row>),
    Disk(crate::query::spill::Spill),
}

struct WindowRun {
    spec: Arc<SetWindowFields>,
    input: Box<dyn Stream>,
    sorted: Option<Sorted>,
    /// The first row of the next partition, read while finding the end of the current one.
    ahead: Option<Row>,
    /// The computed documents of the current partition.
    out: VecDeque<Document>,
}

/// One partition being computed: its documents in sort order and, for the functions that need
/// it, the value of the single sortBy field.
struct Part<'a> {
    docs: &'a [Document],
    keys: &'a [Vec<Bson>],
    sort_values: Vec<Option<Bson>>,
}

fn memory_error(used: usize, limit: usize) -> MongoError {
    MongoError::new(
        ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
        format!("Exceeded memory limit in DocumentSourceSetWindowFields, used {used} bytes, memory limit {limit} bytes"),
    )
}

fn row_order(spec: &SetWindowFields, a: (&Bson, &[Bson]), b: (&Bson, &[Bson])) -> std::cmp::Ordering {
    let c = compare_bson(a.0, b.0);
    match &spec.sort_by {
        Some(s) => c.then_with(|| s.compare_keys(a.1, b.1)),
        None => c,
    }
}

fn spilled_keys(d: &Document) -> (&Bson, &[Bson]) {
    let p = d.get("p").unwrap_or(&Bson::Null);
    let k = match d.get("k") {
        Some(Bson::Array(a)) => a.as_slice(),
        _ => &[],
    };
    (p, k)
}

impl WindowRun {
    /// Reads the whole input and orders it by partition then sortBy.
    fn load(&mut self, rt: &mut Rt) -> Result<Sorted> {
        let spec = self.spec.clone();
        let limit = rt.ss.store.knobs.window();
        let mut items: Vec<Row> = Vec::new();
        let mut spill: Option<crate::query::spill::Spill> = None;
        let mut used = 0usize;
        while let Some(d) = self.input.next(rt)? {
            let pkey = match &spec.partition_by {
                Some(e) => e.value(&mut rt.ctx(&d))?,
                None => Bson::Null,
            };
            if matches!(pkey, Bson::Array(_)) {
                return Err(located(
                    ErrorCode::TypeMismatch.code(),
                    "An expression used to partition cannot evaluate to value of type array",
                ));
            }
            let keys = spec.sort_by.as_ref().map(|s| s.keys(&d)).unwrap_or_default();
            used += crate::query::exec::bson_size(&d)
                + approx_size(&pkey)
                + keys.iter().map(approx_size).sum::<usize>();
            items.push((pkey, keys, d));
            if used > limit {
                if !rt.allow_disk_use {
                    return Err(memory_error(used, limit));
                }
                self.spill_rows(spill.get_or_insert_with(Default::default), &mut items)?;
                used = 0;
            }
        }
        if let Some(mut spill) = spill {
            self.spill_rows(&mut spill, &mut items)?;
            return Ok(Sorted::Disk(spill));
        }
        if spec.partition_by.is_some() || spec.sort_by.is_some() {
            // Stable: equal keys keep their input order.
            items.sort_by(|a, b| row_order(&spec, (&a.0, &a.1), (&b.0, &b.1)));
        }
        Ok(Sorted::Mem(items.into_iter()))
    }

    fn spill_rows(&self, spill: &mut crate::query::spill::Spill, rows: &mut Vec<Row>) -> Result<()> {
        let mut out = Vec::with_capacity(rows.len());
        for (p, k, d) in rows.drain(..) {
            let doc = bson::doc! { "p": p, "k": k, "d": d };
            let mut raw = Vec::new();
            doc.to_writer(&mut raw).map_err(|e| MongoError::internal(e.to_string()))?;
            out.push(crate::query::spill::Item { rid: 0, doc, raw });
        }
        let spec = &self.spec;
        spill.write_run_by(out, |a, b| row_order(spec, spilled_keys(a), spilled_keys(b)))
    }

    fn next_row(&mut self) -> Result<Option<Row>> {
        let spec = &self.spec;
        match self.sorted.as_mut() {
            Some(Sorted::Mem(it)) => Ok(it.next()),
            Some(Sorted::Disk(spill)) => {
                let Some(it) = spill.next_by(|a, b| row_order(spec, spilled_keys(a), spilled_keys(b)))?
                else {
                    return Ok(None);
                };
                let mut d = it.doc;
                let p = d.remove("p").unwrap_or(Bson::Null);
                let k = match d.remove("k") {
                    Some(Bson::Array(a)) => a,
                    _ => Vec::new(),
                };
                match d.remove("d") {
                    Some(Bson::Document(doc)) => Ok(Some((p, k, doc))),
                    _ => Err(MongoError::internal("$setWindowFields spill file: bad record")),
                }
            }
            None => Ok(None),
        }
    }

    /// Computes the next partition into `out`; false when the input is done.
    fn next_partition(&mut self, rt: &mut Rt) -> Result<bool> {
        let first = match self.ahead.take() {
            Some(r) => r,
            None => match self.next_row()? {
                Some(r) => r,
                None => return Ok(false),
            },
        };
        let pkey = first.0.clone();
        let (mut keys, mut docs) = (vec![first.1], vec![first.2]);
        // A partition read back from disk must still fit in memory.
        let limit = rt.memory_limit().max(rt.ss.store.knobs.window());
        let mut used = 0usize;
        while let Some(r) = self.next_row()? {
            if !compare_bson(&r.0, &pkey).is_eq() {
                self.ahead = Some(r);
                break;
            }
            used += crate::query::exec::bson_size(&r.2);
            if used > limit {
                return Err(memory_error(used, limit));
            }
            keys.push(r.1);
            docs.push(r.2);
        }
        let spec = self.spec.clone();
        let sort_values = match spec.sort_by.as_ref().and_then(|s| s.fields.first()) {
            Some(f) if spec.sort_by.as_ref().is_some_and(|s| s.fields.len() == 1) => {
                docs.iter().map(|d| get_path(d, &f.parts)).collect()
            }
            _ => Vec::new(),
        };
        let part = Part { docs: &docs, keys: &keys, sort_values };
        let mut columns = Vec::with_capacity(spec.outputs.len());
        for o in &spec.outputs {
            columns.push(compute(o, &part, rt)?);
        }
        for (i, mut d) in docs.into_iter().enumerate() {
            for (o, col) in spec.outputs.iter().zip(columns.iter_mut()) {
                let v = std::mem::replace(&mut col[i], Bson::Null);
                crate::query::path::set_path(&mut d, &o.path, v)?;
            }
            self.out.push_back(d);
        }
        rt.check_deadline()?;
        Ok(true)
    }
}

impl Stream for WindowRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.sorted.is_none() {
            let sorted = self.load(rt)?;
            self.sorted = Some(sorted);
        }
        loop {
            if let Some(d) = self.out.pop_front() {
                return Ok(Some(d));
            }
            if !self.next_partition(rt)? {
                return Ok(None);
            }
        }
    }
}

/// The output values of one function for every document of a partition.
fn compute(o: &Output, part: &Part, rt: &Rt) -> Result<Vec<Bson>> {
    let n = part.docs.len();
    let eval_all = |e: &Expr| -> Result<Vec<Option<Bson>>> {
        part.docs.iter().map(|d| e.eval(&mut rt.ctx(d))).collect()
    };
    match &o.func {
        Func::DocumentNumber => Ok((1..=n).map(|i| int_value(i as i64)).collect()),
        Func::Rank | Func::DenseRank => {
            let dense = matches!(o.func, Func::DenseRank);
            let mut out = Vec::with_capacity(n);
            let mut rank = 0i64;
            for i in 0..n {
                let tie = i > 0 && compare_keys_eq(&part.keys[i - 1], &part.keys[i]);
                if !tie {
                    rank = if dense { rank + 1 } else { i as i64 + 1 };
                }
                out.push(int_value(rank));
            }
            Ok(out)
        }
        Func::Shift { output, by, default } => {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let j = i as i64 + by;
                let v = if j >= 0 && (j as usize) < n {
                    output.eval(&mut rt.ctx(&part.docs[j as usize]))?.unwrap_or(Bson::Null)
                } else {
                    default.clone()
                };
                out.push(v);
            }
            Ok(out)
        }
        Func::ExpMovingAvg { input, alpha } => {
            let vals = eval_all(input)?;
            let mut out = Vec::with_capacity(n);
            let mut cur: Option<f64> = None;
            let mut decimal = false;
            for v in vals {
                match v.as_ref().filter(|v| is_number(v)) {
                    Some(x) => {
                        decimal |= matches!(x, Bson::Decimal128(_));
                        let x = num(x).map(|n| n.to_f64()).unwrap_or(0.0);
                        let next = match cur {
                            None => x,
                            Some(c) => alpha * x + (1.0 - alpha) * c,
                        };
                        cur = Some(next);
                        out.push(Bson::Double(next));
                    }
                    None => out.push(Bson::Null),
                }
            }
            let _ = decimal;
            Ok(out)
        }
        Func::Locf(e) => {
            let vals = eval_all(e)?;
            let mut last = Bson::Null;
            Ok(vals
                .into_iter()
                .map(|v| match v {
                    Some(v) if !matches!(v, Bson::Null | Bson::Undefined) => {
                        last = v.clone();
                        v
                    }
                    _ => last.clone(),
                })
                .collect())
        }
        Func::LinearFill(e) => linear_fill(eval_all(e)?, part),
        _ if o.window == Window::whole() => {
            // The same window for every document: compute it once.
            let v = over_window(o, part, 0, n, rt)?;
            check_output_size(approx_size(&v).saturating_mul(n), rt)?;
            Ok(vec![v; n])
        }
        Func::Acc(acc) if matches!(o.window, Window::Documents(DocBound::Unbounded, _)) => {
            // A window that only grows (running totals): feed each document once.
            let mut out = Vec::with_capacity(n);
            let mut used = 0usize;
            let first = part.docs.first().cloned().unwrap_or_default();
            let mut state = acc.fresh(&mut rt.ctx(&first))?;
            let mut added = 0usize;
            for i in 0..n {
                let (_, hi) = window_bounds(&o.window, i, part)?;
                while added < hi {
                    let d = &part.docs[added];
                    acc.add(&mut state, &mut rt.ctx(d), d)?;
                    added += 1;
                }
                let v = acc.finish(state.clone());
                used = used.saturating_add(approx_size(&v));
                check_output_size(used, rt)?;
                out.push(v);
            }
            Ok(out)
        }
        _ => {
            let mut out = Vec::with_capacity(n);
            let mut used = 0usize;
            for i in 0..n {
                let (lo, hi) = window_bounds(&o.window, i, part)?;
                let v = over_window(o, part, lo, hi, rt)?;
                used = used.saturating_add(approx_size(&v));
                check_output_size(used, rt)?;
                out.push(v);
            }
            Ok(out)
        }
    }
}

/// The outputs of one window function count against the stage memory limit too.
fn check_output_size(used: usize, rt: &Rt) -> Result<()> {
    let limit = rt.memory_limit();
    if used > limit {
        return Err(MongoError::new(
            ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
            format!("Exceeded memory limit in DocumentSourceSetWindowFields, used {used} bytes, memory limit {limit} bytes"),
        ));
    }
    Ok(())
}

fn int_value(i: i64) -> Bson {
    i32::try_from(i).map(Bson::Int32).unwrap_or(Bson::Int64(i))
}

fn compare_keys_eq(a: &[Bson], b: &[Bson]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compare_bson(x, y).is_eq())
}

/// `[lo, hi)` indexes of the window of document `i` (empty when `lo >= hi`).
fn window_bounds(w: &Window, i: usize, part: &Part) -> Result<(usize, usize)> {
    let n = part.docs.len() as i64;
    let i64_i = i as i64;
    match w {
        Window::Documents(lo, hi) => {
            let l = match lo {
                DocBound::Unbounded => 0,
                DocBound::Current => i64_i,
                DocBound::Offset(k) => i64_i.saturating_add(*k),
            }
            .max(0);
            let h = match hi {
                DocBound::Unbounded => n,
                DocBound::Current => i64_i + 1,
                DocBound::Offset(k) => i64_i.saturating_add(*k).saturating_add(1),
            }
            .min(n);
            Ok((l.min(n) as usize, h.max(0) as usize))
        }
        Window::Range(lo, hi, unit) => {
            let needs_value = matches!(lo, RangeBound::Value(_)) || matches!(hi, RangeBound::Value(_));
            let cur = part.sort_values.get(i).cloned().flatten();
            let cur = if needs_value { Some(check_range_value(cur.as_ref(), unit.is_some())?) } else { None };
            let l = match lo {
                RangeBound::Unbounded => 0,
                RangeBound::Current => i,
                RangeBound::Value(off) => {
                    let target = shift_value(cur.as_ref(), off, unit.as_deref())?;
                    part.sort_values.partition_point(|v| {
                        v.as_ref().is_none_or(|v| compare_bson(v, &target) == Ordering::Less)
                    })
                }
            };
            let h = match hi {
                RangeBound::Unbounded => part.docs.len(),
                RangeBound::Current => i + 1,
                RangeBound::Value(off) => {
                    let target = shift_value(cur.as_ref(), off, unit.as_deref())?;
                    part.sort_values.partition_point(|v| {
                        v.as_ref().is_none_or(|v| compare_bson(v, &target) != Ordering::Greater)
                    })
                }
            };
            Ok((l, h))
        }
    }
}

/// The current document's sortBy value for a range window: a number, or a date with `unit`.
fn check_range_value(v: Option<&Bson>, dated: bool) -> Result<Bson> {
    match v {
        Some(Bson::DateTime(_)) if dated => Ok(v.cloned().unwrap_or(Bson::Null)),
        Some(n) if !dated && is_number(n) => Ok(n.clone()),
        other => {
            let t = other.map_or("missing", type_name);
            if dated {
                Err(located(
                    5429513,
                    format!("Invalid range: Expected the sortBy field to be a Date, but it was {t}"),
                ))
            } else {
                Err(located(
                    5429413,
                    format!("Invalid range: Expected the sortBy field to be a number, but it was {t}"),
                ))
            }
        }
    }
}

/// `base + off` (numbers), or `base` moved by `off` units (dates).
fn shift_value(base: Option<&Bson>, off: &Num, unit: Option<&str>) -> Result<Bson> {
    let base = base.ok_or_else(|| MongoError::internal("range window without a sortBy value"))?;
    match (base, unit) {
        (Bson::DateTime(d), Some(u)) => {
            let n = exact_i64(&off.to_bson()).unwrap_or(0);
            let ms = add_units(d.timestamp_millis(), u, n, 0)?;
            Ok(Bson::DateTime(bson::DateTime::from_millis(ms)))
        }
        _ => {
            let a = num(base).ok_or_else(|| MongoError::internal("non-numeric range value"))?;
            Ok(crate::agg::expr::arith::add_nums(a, *off)?.to_bson())
        }
    }
}

/// A windowed function over documents `lo..hi` of the partition.
fn over_window(o: &Output, part: &Part, lo: usize, hi: usize, rt: &Rt) -> Result<Bson> {
    let docs = part.docs.get(lo..hi).unwrap_or(&[]);
    match &o.func {
        Func::Acc(acc) => {
            let mut state = None;
            for d in docs {
                let mut c = rt.ctx(d);
                if state.is_none() {
                    state = Some(acc.fresh(&mut c)?);
                }
                if let Some(st) = state.as_mut() {
                    acc.add(st, &mut c, d)?;
                }
            }
            let state = match state {
                Some(s) => s,
                None => acc.fresh(&mut rt.ctx(&Document::new()))?,
            };
            Ok(acc.finish(state))
        }
        Func::Cov { x, y, sample } => {
            let mut pts = Vec::new();
            for d in docs {
                let mut c = rt.ctx(d);
                let (a, b) = (x.eval(&mut c)?, y.eval(&mut c)?);
                if let (Some(a), Some(b)) = (a.as_ref().and_then(num), b.as_ref().and_then(num)) {
                    pts.push((a.to_f64(), b.to_f64()));
                }
            }
            let k = pts.len() as f64;
            let denom = if *sample { k - 1.0 } else { k };
            if pts.is_empty() || denom <= 0.0 {
                return Ok(Bson::Null);
            }
            let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
            let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
            Ok(Bson::Double(pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / denom))
        }
        Func::Derivative { input, unit } | Func::Integral { input, unit } => {
            let derivative = matches!(o.func, Func::Derivative { .. });
            let mut pts = Vec::with_capacity(docs.len());
            for (k, d) in docs.iter().enumerate() {
                let xv = part.sort_values.get(lo + k).cloned().flatten();
                let x = time_axis(xv.as_ref(), *unit)?;
                let y = input.eval(&mut rt.ctx(d))?;
                let Some(y) = y.as_ref().filter(|v| is_number(v)).and_then(num) else {
                    if derivative {
                        return Err(located(
                            5624901,
                            format!(
                                "$derivative input must be numeric, found {}",
                                y.as_ref().map_or("missing", type_name)
                            ),
                        ));
                    }
                    continue;
                };
                pts.push((x, y.to_f64()));
            }
            if derivative {
                let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
                    return Ok(Bson::Null);
                };
                if pts.len() < 2 || last.0 == first.0 {
                    return Ok(Bson::Null);
                }
                return Ok(Bson::Double((last.1 - first.1) / (last.0 - first.0)));
            }
            if pts.is_empty() {
                return Ok(Bson::Null);
            }
            let area: f64 = pts.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
            Ok(Bson::Double(area))
        }
        _ => Err(MongoError::internal("not a windowed function")),
    }
}

/// The x coordinate of `$derivative`/`$integral`: a number, or a date in `unit`s (required).
fn time_axis(v: Option<&Bson>, unit: Option<i64>) -> Result<f64> {
    match (v, unit) {
        (Some(Bson::DateTime(d)), Some(u)) => Ok(d.timestamp_millis() as f64 / u as f64),
        (Some(Bson::DateTime(_)), None) => Err(located(
            5624900,
            "For windowed time-based functions, the sortBy field must be a Date when 'unit' is given and numeric otherwise; got a Date with no 'unit'",
        )),
        (Some(n), None) if is_number(n) => Ok(num(n).map(|x| x.to_f64()).unwrap_or(0.0)),
        (other, _) => Err(located(
            5624900,
            format!(
                "For windowed time-based functions, the sortBy field must be a Date when 'unit' is given and numeric otherwise; got {}",
                other.map_or("missing", type_name)
            ),
        )),
    }
}

/// `$linearFill`: nulls between two numeric values become the straight-line interpolation along
/// the sortBy value; nulls before the first or after the last value stay null.
fn linear_fill(vals: Vec<Option<Bson>>, part: &Part) -> Result<Vec<Bson>> {
    let xs: Vec<Option<f64>> = part
        .sort_values
        .iter()
        .map(|v| match v {
            Some(Bson::DateTime(d)) => Some(d.timestamp_millis() as f64),
            Some(n) if is_number(n) => num(n).map(|x| x.to_f64()),
            _ => None,
        })
        .collect();
    let mut out: Vec<Bson> = Vec::with_capacity(vals.len());
    let known: Vec<Option<f64>> = vals
        .iter()
        .map(|v| match v {
            Some(x) if is_number(x) => num(x).map(|n| n.to_f64()),
            Some(Bson::Null) | Some(Bson::Undefined) | None => None,
            Some(_) => None,
        })
        .collect();
    for (i, v) in vals.iter().enumerate() {
        if let Some(v @ Bson::Int32(_) | v @ Bson::Int64(_) | v @ Bson::Double(_) | v @ Bson::Decimal128(_)) =
            v
        {
            out.push(v.clone());
            continue;
        }
        if let Some(other) = v.as_ref().filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
            return Err(located(
                ErrorCode::TypeMismatch.code(),
                format!("$linearFill only supports numeric types, found {}", type_name(other)),
            ));
        }
        let prev = (0..i).rev().find(|&j| known[j].is_some());
        let next = (i + 1..vals.len()).find(|&j| known[j].is_some());
        let filled = match (prev, next) {
            (Some(a), Some(b)) => match (
                xs.get(a).copied().flatten(),
                xs.get(b).copied().flatten(),
                xs.get(i).copied().flatten(),
            ) {
                (Some(xa), Some(xb), Some(xi)) if xb != xa => {
                    let (ya, yb) = (known[a].unwrap_or(0.0), known[b].unwrap_or(0.0));
                    Bson::Double(ya + (yb - ya) * (xi - xa) / (xb - xa))
                }
                _ => Bson::Null,
            },
            _ => Bson::Null,
        };
        out.push(filled);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn window(v: Bson) -> Result<Window> {
        parse_window(&v)
    }

    #[test]
    fn window_bounds_parse() {
        assert_eq!(
            window(bson::bson!({"documents": ["unbounded", "current"]})).unwrap(),
            Window::Documents(DocBound::Unbounded, DocBound::Current)
        );
        assert_eq!(
            window(bson::bson!({"documents": [-1, 1]})).unwrap(),
            Window::Documents(DocBound::Offset(-1), DocBound::Offset(1))
        );
        assert_eq!(window(bson::bson!({"documents": [1, -1]})).unwrap_err().code.code(), 9);
        assert_eq!(window(bson::bson!({"documents": [0]})).unwrap_err().code.code(), 9);
        assert_eq!(window(bson::bson!({"documents": [0.5, 1]})).unwrap_err().code.code(), 9);
        assert_eq!(window(bson::bson!({"documents": [0, 1], "unit": "day"})).unwrap_err().code.code(), 9);
        assert!(matches!(
            window(bson::bson!({"range": [-10, 10], "unit": "day"})).unwrap(),
            Window::Range(RangeBound::Value(_), RangeBound::Value(_), Some(_))
        ));
        assert_eq!(window(bson::bson!({"range": [5, -5]})).unwrap_err().code.code(), 9);
        assert_eq!(window(bson::bson!({"range": [-1.5, 1], "unit": "hour"})).unwrap_err().code.code(), 9);
    }

    #[test]
    fn fill_interpolates_along_the_sort_value() {
        let docs: Vec<Document> = (0..4).map(|i| doc! {"t": i}).collect();
        let part = Part {
            docs: &docs,
            keys: &[],
            sort_values: vec![
                Some(Bson::Int32(0)),
                Some(Bson::Int32(1)),
                Some(Bson::Int32(3)),
                Some(Bson::Int32(4)),
            ],
        };
        let vals = vec![Some(Bson::Int32(0)), None, Some(Bson::Null), Some(Bson::Int32(8))];
        let out = linear_fill(vals, &part).unwrap();
        assert_eq!(out, vec![Bson::Int32(0), Bson::Double(2.0), Bson::Double(6.0), Bson::Int32(8)]);
    }
}
