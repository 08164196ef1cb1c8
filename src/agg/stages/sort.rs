//! `$sort` (a blocking sort bounded by the stage memory limit; a following `$limit` makes it
//! a top-k that keeps only k documents) and `$sample` (reservoir sampling).

use super::group::approx_size;
use crate::agg::expr::err;
use crate::agg::pipeline::{Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::sort::SortSpec;
use crate::query::util::type_name;
use bson::{Bson, Document};
use rand::Rng;
use std::sync::Arc;

pub struct SortStage {
    spec: SortSpec,
    limit: Option<u64>,
}

impl SortStage {
    pub fn parse(spec: &Bson) -> Result<SortStage> {
        let Bson::Document(d) = spec else {
            return Err(err(15973, "the $sort key specification must be an object"));
        };
        if d.is_empty() {
            return Err(err(15976, "$sort stage must have at least one sort key"));
        }
        Ok(SortStage { spec: SortSpec::parse(d)?, limit: None })
    }

    pub fn with_limit(&self, n: u64) -> SortStage {
        SortStage { spec: self.spec.clone(), limit: Some(self.limit.map_or(n, |l| l.min(n))) }
    }
}

impl StageSpec for SortStage {
    fn name(&self) -> &'static str {
        "$sort"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(SortRun { spec: self, input, out: None, spill: None })
    }
    fn with_limit(&self, n: u64) -> Option<Arc<dyn StageSpec>> {
        Some(Arc::new(SortStage::with_limit(self, n)))
    }
}

struct SortRun {
    spec: Arc<SortStage>,
    input: Box<dyn Stream>,
    out: Option<std::vec::IntoIter<(Vec<Bson>, Document)>>,
    /// With allowDiskUse, a sort past the memory limit: sorted runs on disk, merged as read.
    spill: Option<crate::query::spill::Spill>,
}

impl SortRun {
    /// Writes the held documents out as one sorted run.
    fn spill_items(&mut self, items: &mut Vec<(Vec<Bson>, Document)>) -> Result<()> {
        let spec = self.spec.clone();
        let mut out = Vec::with_capacity(items.len());
        for (_, d) in items.drain(..) {
            let mut raw = Vec::new();
            d.to_writer(&mut raw).map_err(|e| MongoError::internal(e.to_string()))?;
            out.push(crate::query::spill::Item { rid: 0, doc: d, raw });
        }
        let cmp = |a: &Document, b: &Document| spec.spec.compare_keys(&spec.spec.keys(a), &spec.spec.keys(b));
        self.spill.get_or_insert_with(Default::default).write_run_by(out, cmp)
    }

    fn build(&mut self, rt: &mut Rt) -> Result<Vec<(Vec<Bson>, Document)>> {
        // The server's blocking-sort limit; with allowDiskUse, past it runs go to disk.
        let limit_bytes = rt.ss.store.sort_memory_limit.load(std::sync::atomic::Ordering::Relaxed);
        let stage = self.spec.clone();
        let spec = &stage.spec;
        let k = self.spec.limit.map(|l| l.min(usize::MAX as u64 / 4) as usize);
        let mut items: Vec<(Vec<Bson>, Document)> = Vec::new();
        let mut used = 0usize;
        while let Some(d) = self.input.next(rt)? {
            let keys = spec.keys(&d);
            used += crate::query::exec::bson_size(&d) + keys.iter().map(approx_size).sum::<usize>();
            items.push((keys, d));
            if let Some(k) = k {
                if items.len() >= 2 * k.max(512) {
                    // A stable sort keeps input order among equal keys.
                    items.sort_by(|a, b| spec.compare_keys(&a.0, &b.0));
                    items.truncate(k);
                    used = items
                        .iter()
                        .map(|(ks, d)| {
                            crate::query::exec::bson_size(d) + ks.iter().map(approx_size).sum::<usize>()
                        })
                        .sum();
                }
            }
            if used > limit_bytes && rt.allow_disk_use && k.is_none() {
                self.spill_items(&mut items)?;
                used = 0;
                continue;
            }
            if used > limit_bytes {
                return Err(MongoError::new(
                    ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                    format!(
                        "PlanExecutor error during aggregation :: caused by :: Sort exceeded memory limit of {limit_bytes} bytes, but did not opt in to external sorting."
                    ),
                ));
            }
        }
        if self.spill.is_some() {
            self.spill_items(&mut items)?;
            return Ok(Vec::new());
        }
        let spec = &self.spec.spec;
        items.sort_by(|a, b| spec.compare_keys(&a.0, &b.0));
        if let Some(k) = k {
            items.truncate(k);
        }
        Ok(items)
    }
}

impl Stream for SortRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.out.is_none() {
            let items = self.build(rt)?;
            self.out = Some(items.into_iter());
        }
        if let Some(spill) = self.spill.as_mut() {
            let spec = &self.spec.spec;
            let cmp = |a: &Document, b: &Document| spec.compare_keys(&spec.keys(a), &spec.keys(b));
            return Ok(spill.next_by(cmp)?.map(|it| it.doc));
        }
        Ok(self.out.as_mut().and_then(Iterator::next).map(|(_, d)| d))
    }
}

pub struct Sample {
    size: usize,
}

impl Sample {
    pub fn parse(spec: &Bson) -> Result<Sample> {
        let Bson::Document(d) = spec else {
            return Err(err(28745, "the $sample stage specification must be an object"));
        };
        let mut size = None;
        for (k, v) in d {
            if k != "size" {
                return Err(err(28748, format!("unrecognized option to $sample: {k}")));
            }
            if !crate::query::util::is_number(v) {
                return Err(err(
                    28746,
                    format!("size argument to $sample must be a number, found: {}", type_name(v)),
                ));
            }
            let n = crate::query::util::number_as_f64(v).unwrap_or(0.0);
            if n < 0.0 {
                return Err(err(28747, "size argument to $sample must not be negative"));
            }
            size = Some(n.min(1e15) as usize);
        }
        Ok(Sample { size: size.ok_or_else(|| err(28749, "$sample stage must specify a size"))? })
    }
}

impl StageSpec for Sample {
    fn name(&self) -> &'static str {
        "$sample"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(SampleRun { size: self.size, input, out: None })
    }
}

struct SampleRun {
    size: usize,
    input: Box<dyn Stream>,
    out: Option<std::vec::IntoIter<Document>>,
}

impl Stream for SampleRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.out.is_none() {
            let limit = rt.memory_limit();
            let mut rng = rand::thread_rng();
            let mut kept: Vec<Document> = Vec::new();
            let mut used = 0usize;
            let mut seen = 0usize;
            while let Some(d) = self.input.next(rt)? {
                seen += 1;
                if kept.len() < self.size {
                    used += crate::query::exec::bson_size(&d);
                    kept.push(d);
                    if used > limit {
                        return Err(MongoError::new(
                            ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                            "$sample exceeded the memory limit",
                        ));
                    }
                } else {
                    let j = rng.gen_range(0..seen);
                    if j < self.size {
                        kept[j] = d;
                    }
                }
            }
            // Random output order, as mongod's $sample gives.
            for i in (1..kept.len()).rev() {
                let j = rng.gen_range(0..=i);
                kept.swap(i, j);
            }
            self.out = Some(kept.into_iter());
        }
        Ok(self.out.as_mut().and_then(Iterator::next))
    }
}
