//! Running `$bucketAuto`: the input ordered by its `groupBy` value (in memory, or past
//! `internalDocumentSourceBucketAutoMaxMemoryBytes` with allowDiskUse as sorted runs on disk
//! merged as read), then cut into buckets one at a time, each document fed straight to the
//! bucket's accumulators.

use super::group::{approx_size, BucketAuto, State};
use crate::agg::expr::err;
use crate::agg::pipeline::{Rt, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::compare::compare_bson;
use crate::query::spill::{Item, Spill};
use crate::query::util::type_name;
use bson::{doc, Bson, Document};
use std::cmp::Ordering;
use std::sync::Arc;

pub(super) fn start(spec: Arc<BucketAuto>, input: Box<dyn Stream>) -> Box<dyn Stream> {
    Box::new(BucketAutoRun { spec, input, sorted: None, ahead: None, n: 0, made: 0, min: None })
}

/// (groupBy value, document)
type Row = (Bson, Document);

enum Sorted {
    Mem(std::vec::IntoIter<Row>),
    Disk(Spill),
}

struct BucketAutoRun {
    spec: Arc<BucketAuto>,
    input: Box<dyn Stream>,
    sorted: Option<Sorted>,
    ahead: Option<Row>,
    /// Input documents, and buckets made so far.
    n: usize,
    made: usize,
    /// With a granularity: the lower boundary of the next bucket.
    min: Option<f64>,
}

fn by_value(a: &Document, b: &Document) -> Ordering {
    compare_bson(a.get("v").unwrap_or(&Bson::Null), b.get("v").unwrap_or(&Bson::Null))
}

/// The number a `granularity` rounds, with mongod's errors for other values.
fn granular(v: &Bson) -> Result<f64> {
    let x = if crate::query::util::is_number(v) {
        crate::agg::expr::arith::num(v).map(|x| x.to_f64())
    } else {
        None
    };
    match x {
        None => Err(err(40258, format!("$bucketAuto can specify a 'granularity' with numeric boundaries only, but found a value with type: {}", type_name(v)))),
        Some(x) if x.is_nan() => Err(err(40259, "$bucketAuto can only specify a 'granularity' with numeric boundaries that are not NaN")),
        Some(x) if x < 0.0 => Err(err(40260, format!("$bucketAuto can only specify a 'granularity' with numeric boundaries that are non-negative, but found: {}", crate::query::util::value_to_string(v)))),
        Some(x) => Ok(x),
    }
}

fn spill_rows(spill: &mut Spill, rows: &mut Vec<Row>) -> Result<()> {
    let mut items = Vec::with_capacity(rows.len());
    for (v, d) in rows.drain(..) {
        let doc = doc! { "v": v, "d": d };
        let mut raw = Vec::new();
        doc.to_writer(&mut raw).map_err(|e| MongoError::internal(e.to_string()))?;
        items.push(Item { rid: 0, doc, raw });
    }
    spill.write_run_by(items, by_value)
}

impl BucketAutoRun {
    fn load(&mut self, rt: &mut Rt) -> Result<Sorted> {
        let spec = self.spec.clone();
        let limit = rt.ss.store.knobs.bucket_auto();
        let mut rows: Vec<Row> = Vec::new();
        let mut spill: Option<Spill> = None;
        let mut used = 0usize;
        while let Some(d) = self.input.next(rt)? {
            let v = spec.group_by.value(&mut rt.ctx(&d))?;
            if spec.granularity.is_some() {
                granular(&v)?;
            }
            used += crate::query::exec::bson_size(&d) + approx_size(&v);
            rows.push((v, d));
            self.n += 1;
            if used > limit {
                if !rt.allow_disk_use {
                    return Err(MongoError::new(
                        ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                        "PlanExecutor error during aggregation :: caused by :: $bucketAuto stage ran out of memory. Pass allowDiskUse:true to opt in.",
                    ));
                }
                spill_rows(spill.get_or_insert_with(Default::default), &mut rows)?;
                used = 0;
            }
        }
        if let Some(mut spill) = spill {
            spill_rows(&mut spill, &mut rows)?;
            return Ok(Sorted::Disk(spill));
        }
        // Stable: equal values keep their input order.
        rows.sort_by(|a, b| compare_bson(&a.0, &b.0));
        Ok(Sorted::Mem(rows.into_iter()))
    }

    fn next_row(&mut self) -> Result<Option<Row>> {
        if let Some(r) = self.ahead.take() {
            return Ok(Some(r));
        }
        match self.sorted.as_mut() {
            Some(Sorted::Mem(it)) => Ok(it.next()),
            Some(Sorted::Disk(spill)) => {
                let Some(it) = spill.next_by(by_value)? else { return Ok(None) };
                let mut d = it.doc;
                let v = d.remove("v").unwrap_or(Bson::Null);
                match d.remove("d") {
                    Some(Bson::Document(doc)) => Ok(Some((v, doc))),
                    _ => Err(MongoError::internal("$bucketAuto spill file: bad record")),
                }
            }
            None => Ok(None),
        }
    }

    fn peek(&mut self) -> Result<Option<&Row>> {
        if self.ahead.is_none() {
            self.ahead = self.next_row()?;
        }
        Ok(self.ahead.as_ref())
    }

    /// The next bucket: `size` documents (all the rest for the last bucket), then those that
    /// must not start the next one (an equal value; with a granularity, one below the rounded
    /// upper boundary).
    fn bucket(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        let Some(first) = self.next_row()? else { return Ok(None) };
        let spec = self.spec.clone();
        let size = ((self.n as f64 / spec.buckets as f64).round() as usize).max(1);
        let target = if self.made + 1 == spec.buckets { usize::MAX } else { size };
        self.made += 1;
        let mut states: Vec<State> = Vec::with_capacity(spec.accs.len());
        {
            let mut c = rt.ctx(&first.1);
            for a in &spec.accs {
                states.push(a.fresh(&mut c)?);
            }
        }
        let min_value = first.0.clone();
        let mut last = first.0.clone();
        let feed = |row: &Row, states: &mut Vec<State>| -> Result<()> {
            let mut c = rt.ctx(&row.1);
            for (a, st) in spec.accs.iter().zip(states.iter_mut()) {
                a.add(st, &mut c, &row.1)?;
            }
            Ok(())
        };
        feed(&first, &mut states)?;
        let mut count = 1usize;
        while count < target {
            let Some(r) = self.next_row()? else { break };
            feed(&r, &mut states)?;
            last = r.0;
            count += 1;
        }
        let (min, max) = match spec.granularity {
            Some(g) => {
                let max = g.round_up(granular(&last)?);
                while let Some(r) = self.peek()? {
                    if granular(&r.0)? >= max {
                        break;
                    }
                    if let Some(r) = self.ahead.take() {
                        feed(&r, &mut states)?;
                    }
                }
                let min = match self.min {
                    Some(m) => m,
                    None => g.round_down(granular(&min_value)?),
                };
                self.min = Some(max);
                (Bson::Double(min), Bson::Double(max))
            }
            None => {
                while let Some(r) = self.peek()? {
                    if !compare_bson(&r.0, &last).is_eq() {
                        break;
                    }
                    if let Some(r) = self.ahead.take() {
                        feed(&r, &mut states)?;
                    }
                }
                let max = match self.peek()? {
                    Some(r) => r.0.clone(),
                    None => last,
                };
                (min_value, max)
            }
        };
        let mut b = doc! { "_id": { "min": min, "max": max } };
        for (a, st) in spec.accs.iter().zip(states) {
            b.insert(a.field.clone(), a.finish(st));
        }
        rt.check_deadline()?;
        Ok(Some(b))
    }
}

impl Stream for BucketAutoRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.sorted.is_none() {
            let sorted = self.load(rt)?;
            self.sorted = Some(sorted);
        }
        self.bucket(rt)
    }
}
