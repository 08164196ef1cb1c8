//! Gap-filling stages: `$densify` (adds documents for the missing steps of a numeric or date
//! field, per partition) and `$fill` (sets null or missing fields from a value, the last
//! observation, or a linear interpolation; it is rewritten into `$setWindowFields` and
//! `$addFields` as mongod does).

use super::group::approx_size;
use crate::agg::expr::arith::{add_nums, num};
use crate::agg::expr::date::add_units;
use crate::agg::expr::{err, get_path, parse_field_path};
use crate::agg::pipeline::{ParseCtx, Rt, StageSpec, Stream};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::compare::{compare_bson, Num};
use crate::query::util::{is_number, type_name, value_to_string};
use bson::{doc, Bson, Document};
use std::cmp::Ordering;
use std::sync::Arc;

const TIME_UNITS: &[&str] =
    &["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"];

#[derive(Debug, PartialEq)]
enum Bounds {
    Full,
    Partition,
    /// `[lo, hi)`.
    Explicit(Box<(Bson, Bson)>),
}

pub struct Densify {
    field: String,
    field_parts: Vec<String>,
    partitions: Vec<(String, Vec<String>)>,
    step: Num,
    unit: Option<String>,
    bounds: Bounds,
}

fn idl_unknown(stage: &str, k: &str) -> MongoError {
    err(40415, format!("BSON field '{stage}.{k}' is an unknown field."))
}

fn idl_missing(stage: &str, k: &str) -> MongoError {
    err(40414, format!("BSON field '{stage}.{k}' is missing but a required field"))
}

fn idl_type(stage: &str, k: &str, v: &Bson, want: &str) -> MongoError {
    MongoError::type_mismatch(format!(
        "BSON field '{stage}.{k}' is the wrong type '{}', expected type '{want}'",
        type_name(v)
    ))
}

impl Densify {
    pub fn parse(spec: &Bson) -> Result<Densify> {
        let Bson::Document(d) = spec else {
            return Err(err(6246500, "$densify must be an object"));
        };
        let (mut field, mut partitions, mut range) = (None, Vec::new(), None);
        for (k, v) in d {
            match (k.as_str(), v) {
                ("field", Bson::String(s)) => field = Some(s.clone()),
                ("field", other) => return Err(idl_type("$densify", k, other, "string")),
                ("partitionByFields", Bson::Array(a)) => {
                    for p in a {
                        let Bson::String(p) = p else {
                            return Err(idl_type("$densify", k, p, "string"));
                        };
                        if p.starts_with('$') {
                            return Err(err(8993000, "Cannot densify on a field starting with '$'"));
                        }
                        partitions.push((p.clone(), parse_field_path(p)?));
                    }
                }
                ("partitionByFields", other) => return Err(idl_type("$densify", k, other, "array")),
                ("range", Bson::Document(r)) => range = Some(r),
                ("range", other) => return Err(idl_type("$densify", k, other, "object")),
                _ => return Err(idl_unknown("$densify", k)),
            }
        }
        let field = field.ok_or_else(|| idl_missing("$densify", "field"))?;
        if field.starts_with('$') {
            return Err(err(5733306, "Cannot densify field starting with '$'"));
        }
        let range = range.ok_or_else(|| idl_missing("$densify", "range"))?;
        let (mut step, mut unit, mut bounds) = (None, None, None);
        for (k, v) in range {
            match k.as_str() {
                "step" => step = Some(v),
                "unit" => match v {
                    Bson::String(u) if TIME_UNITS.contains(&u.as_str()) => unit = Some(u.clone()),
                    Bson::String(u) => {
                        return Err(err(ErrorCode::BadValue.code(), format!("unknown time unit value: {u}")))
                    }
                    other => return Err(idl_type("$densify.range", k, other, "string")),
                },
                "bounds" => bounds = Some(v),
                _ => return Err(idl_unknown("$densify.range", k)),
            }
        }
        let step = step.ok_or_else(|| idl_missing("$densify.range", "step"))?;
        let bounds = bounds.ok_or_else(|| idl_missing("$densify.range", "bounds"))?;
        let step_num = num(step)
            .filter(|_| is_number(step))
            .ok_or_else(|| idl_type("$densify.range", "step", step, "number"))?;
        if step_num.to_f64() <= 0.0 || step_num.to_f64().is_nan() {
            return Err(err(
                5733401,
                "the step parameter in a range statement must be a strictly positive numeric value",
            ));
        }
        if unit.is_some() && crate::query::util::exact_i64(step).is_none() {
            return Err(err(
                5733402,
                "The step parameter in a range statement must be a whole number when densifying a date range",
            ));
        }
        let bounds = match bounds {
            Bson::String(s) if s == "full" => Bounds::Full,
            Bson::String(s) if s == "partition" => Bounds::Partition,
            Bson::Array(a) if a.len() == 2 => {
                let (lo, hi) = (a[0].clone(), a[1].clone());
                let dates = matches!(lo, Bson::DateTime(_)) && matches!(hi, Bson::DateTime(_));
                let nums = is_number(&lo) && is_number(&hi);
                if !dates && !nums {
                    return Err(err(
                        5733403,
                        "a bounding array in a range statement must contain two numeric or two date values",
                    ));
                }
                if dates && unit.is_none() {
                    return Err(err(
                        5733410,
                        "numeric bounds may not have unit parameter; date bounds require a unit",
                    ));
                }
                if nums && unit.is_some() {
                    return Err(err(
                        5733409,
                        "numeric bounds may not have unit parameter; date bounds require a unit",
                    ));
                }
                if compare_bson(&lo, &hi) == Ordering::Greater {
                    return Err(err(
                        5733402,
                        "the lower bound in a range statement must be less than or equal to the upper bound",
                    ));
                }
                Bounds::Explicit(Box::new((lo, hi)))
            }
            other => {
                return Err(err(
                    5946800,
                    format!(
                        "Bounds must be 'full', 'partition' or an array of two values, found {}",
                        value_to_string(other)
                    ),
                ))
            }
        };
        if !partitions.is_empty() && bounds == Bounds::Partition {
            // Allowed: bounds per partition.
        }
        if partitions.is_empty() && bounds == Bounds::Partition {
            return Err(err(5733408, "one may not specify the bounds as 'partition' without specifying a non-empty array of partitionByFields. You may have meant to specify 'full' bounds."));
        }
        let field_parts = parse_field_path(&field)?;
        Ok(Densify { field, field_parts, partitions, step: step_num, unit, bounds })
    }

    /// The value after `v` on the step grid.
    fn next(&self, v: &Bson) -> Result<Bson> {
        match (v, &self.unit) {
            (Bson::DateTime(d), Some(u)) => {
                let n = crate::query::util::exact_i64(&self.step.to_bson()).unwrap_or(1);
                Ok(Bson::DateTime(bson::DateTime::from_millis(add_units(d.timestamp_millis(), u, n, 0)?)))
            }
            _ => {
                let a = num(v).ok_or_else(|| MongoError::internal("densify: non-numeric value"))?;
                Ok(add_nums(a, self.step)?.to_bson())
            }
        }
    }

    /// The densified field's value, checked against the unit (dates need one, numbers none).
    fn value_of(&self, d: &Document) -> Result<Option<Bson>> {
        let v = get_path(d, &self.field_parts);
        match &v {
            None | Some(Bson::Null) | Some(Bson::Undefined) => Ok(None),
            Some(Bson::DateTime(_)) if self.unit.is_some() => Ok(v),
            Some(n) if is_number(n) && self.unit.is_none() => Ok(v),
            Some(Bson::DateTime(_)) => Err(err(5733501, "Encountered date densify value without unit")),
            Some(other) if self.unit.is_some() => Err(err(
                6053600,
                format!("Encountered non-date densify value with unit: {}", type_name(other)),
            )),
            Some(other) => Err(err(
                5733201,
                format!("Densify field type must be numeric or a date, found {}", type_name(other)),
            )),
        }
    }
}

impl StageSpec for Densify {
    fn name(&self) -> &'static str {
        "$densify"
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(DensifyRun { spec: self, input, out: None })
    }
}

struct DensifyRun {
    spec: Arc<Densify>,
    input: Box<dyn Stream>,
    out: Option<std::vec::IntoIter<Document>>,
}

impl DensifyRun {
    fn build(&mut self, rt: &mut Rt) -> Result<Vec<Document>> {
        let spec = self.spec.clone();
        let limit = rt.memory_limit();
        let mut used = 0usize;
        let too_big = |used: usize| -> Result<()> {
            if used > limit {
                return Err(MongoError::new(
                    ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                    format!("$densify exceeded memory limit of {limit} bytes"),
                ));
            }
            Ok(())
        };
        // (partition values, densified value, document)
        let mut items: Vec<(Vec<Option<Bson>>, Option<Bson>, Document)> = Vec::new();
        while let Some(d) = self.input.next(rt)? {
            let parts: Vec<Option<Bson>> = spec.partitions.iter().map(|(_, p)| get_path(&d, p)).collect();
            let v = spec.value_of(&d)?;
            used += crate::query::exec::bson_size(&d) + v.as_ref().map_or(0, approx_size);
            too_big(used)?;
            items.push((parts, v, d));
        }
        let cmp_opt = |a: &Option<Bson>, b: &Option<Bson>| match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => compare_bson(x, y),
        };
        items.sort_by(|a, b| {
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| cmp_opt(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then_with(|| cmp_opt(&a.1, &b.1))
        });
        // "full": one range over every document.
        let (global_lo, global_hi) = {
            let vals = items.iter().filter_map(|i| i.1.as_ref());
            let mut lo: Option<&Bson> = None;
            let mut hi: Option<&Bson> = None;
            for v in vals {
                if lo.is_none_or(|l| compare_bson(v, l).is_lt()) {
                    lo = Some(v);
                }
                if hi.is_none_or(|h| compare_bson(v, h).is_gt()) {
                    hi = Some(v);
                }
            }
            (lo.cloned(), hi.cloned())
        };
        let mut out = Vec::with_capacity(items.len());
        let mut start = 0;
        while start < items.len() {
            let mut end = start + 1;
            while end < items.len()
                && items[end].0.iter().zip(&items[start].0).all(|(x, y)| cmp_opt(x, y).is_eq())
            {
                end += 1;
            }
            let part = &items[start..end];
            let (lo, hi) = match &spec.bounds {
                Bounds::Full => (global_lo.clone(), global_hi.clone()),
                Bounds::Partition => {
                    let mut vals = part.iter().filter_map(|i| i.1.clone());
                    let first = vals.next();
                    (first.clone(), vals.next_back().or(first))
                }
                Bounds::Explicit(b) => (Some(b.0.clone()), Some(b.1.clone())),
            };
            let template = {
                let mut t = Document::new();
                for ((name, _), v) in spec.partitions.iter().zip(&part[0].0) {
                    if let Some(v) = v {
                        crate::query::path::set_path(&mut t, name, v.clone())?;
                    }
                }
                t
            };
            let generate = |value: &Bson| -> Result<Document> {
                let mut g = Document::new();
                crate::query::path::set_path(&mut g, &spec.field, value.clone())?;
                for (k, v) in &template {
                    if !g.contains_key(k) {
                        g.insert(k.clone(), v.clone());
                    }
                }
                Ok(g)
            };
            let mut cur = lo.clone();
            for (_, v, d) in part {
                if let (Some(v), Some(h)) = (v, &hi) {
                    while let Some(c) = cur.clone() {
                        if !(compare_bson(&c, v).is_lt() && compare_bson(&c, h).is_lt()) {
                            break;
                        }
                        let g = generate(&c)?;
                        used += crate::query::exec::bson_size(&g);
                        too_big(used)?;
                        out.push(g);
                        cur = Some(spec.next(&c)?);
                    }
                }
                out.push(d.clone());
                if let Some(v) = v {
                    while let Some(c) = cur.clone() {
                        if compare_bson(&c, v).is_gt() {
                            break;
                        }
                        cur = Some(spec.next(&c)?);
                    }
                }
            }
            if let Some(h) = &hi {
                while let Some(c) = cur.clone() {
                    if !compare_bson(&c, h).is_lt() {
                        break;
                    }
                    let g = generate(&c)?;
                    used += crate::query::exec::bson_size(&g);
                    too_big(used)?;
                    out.push(g);
                    cur = Some(spec.next(&c)?);
                }
            }
            rt.check_deadline()?;
            start = end;
        }
        Ok(out)
    }
}

impl Stream for DensifyRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        if self.out.is_none() {
            let docs = self.build(rt)?;
            self.out = Some(docs.into_iter());
        }
        Ok(self.out.as_mut().and_then(Iterator::next))
    }
}

/// `$fill`, rewritten into the stages mongod rewrites it into: `$setWindowFields` with
/// `$locf`/`$linearFill` for `method` outputs, then `$addFields` with `$ifNull` for `value`s.
pub fn parse_fill(spec: &Bson, pc: &ParseCtx) -> Result<Vec<Arc<dyn StageSpec>>> {
    let Bson::Document(d) = spec else {
        return Err(idl_type("$fill", "", spec, "object"));
    };
    let (mut partition_by, mut partition_fields, mut sort_by, mut output) = (None, None, None, None);
    for (k, v) in d {
        match k.as_str() {
            "partitionBy" => partition_by = Some(v.clone()),
            "partitionByFields" => {
                let Bson::Array(a) = v else {
                    return Err(idl_type("$fill", k, v, "array"));
                };
                let mut fields = Document::new();
                for f in a {
                    let Bson::String(f) = f else {
                        return Err(idl_type("$fill", k, f, "string"));
                    };
                    parse_field_path(f)?;
                    fields.insert(f.replace('.', "_"), format!("${f}"));
                }
                partition_fields = Some(Bson::Document(fields));
            }
            "sortBy" => match v {
                Bson::Document(s) => sort_by = Some(s.clone()),
                other => return Err(idl_type("$fill", k, other, "object")),
            },
            "output" => match v {
                Bson::Document(o) => output = Some(o.clone()),
                other => return Err(idl_type("$fill", k, other, "object")),
            },
            _ => return Err(idl_unknown("$fill", k)),
        }
    }
    if partition_by.is_some() && partition_fields.is_some() {
        return Err(err(
            6050204,
            "Maximum one of 'partitionBy' and 'partitionByFields can be specified in '$fill'",
        ));
    }
    let output = output.ok_or_else(|| idl_missing("$fill", "output"))?;
    let mut windows = Document::new();
    let mut values = Document::new();
    for (field, o) in &output {
        let Bson::Document(o) = o else {
            return Err(idl_type("$fill.output", field, o, "object"));
        };
        if o.len() != 1 {
            return Err(err(
                6050203,
                "Exactly one of 'value' and 'method' must be specified in $fill output",
            ));
        }
        match (o.get("value"), o.get("method")) {
            (Some(v), None) => {
                values.insert(field.clone(), doc! {"$ifNull": [format!("${field}"), v.clone()]});
            }
            (None, Some(Bson::String(m))) if m == "locf" => {
                windows.insert(field.clone(), doc! {"$locf": format!("${field}")});
            }
            (None, Some(Bson::String(m))) if m == "linear" => {
                if sort_by.as_ref().is_none_or(|s| s.len() != 1) {
                    return Err(err(
                        6050201,
                        "'sortBy' field must be specified and contain exactly one field for method 'linear'",
                    ));
                }
                windows.insert(field.clone(), doc! {"$linearFill": format!("${field}")});
            }
            (None, Some(m)) => {
                return Err(err(
                    6050202,
                    format!("Method must be either 'linear' or 'locf', found {}", value_to_string(m)),
                ))
            }
            _ => {
                return Err(err(
                    6050203,
                    "Exactly one of 'value' and 'method' must be specified in $fill output",
                ))
            }
        }
    }
    let mut stages: Vec<Arc<dyn StageSpec>> = Vec::new();
    if let Some(s) = &sort_by {
        stages.push(Arc::new(super::sort::SortStage::parse(&Bson::Document(s.clone()))?));
    }
    if !windows.is_empty() {
        let mut swf = doc! {"output": windows};
        if let Some(p) = partition_by.or(partition_fields) {
            swf.insert("partitionBy", p);
        }
        if let Some(s) = sort_by {
            swf.insert("sortBy", s);
        }
        stages.push(Arc::new(super::window::SetWindowFields::parse(&Bson::Document(swf), pc)?));
    }
    if !values.is_empty() {
        stages.push(Arc::new(super::project::parse_add_fields("$addFields", &Bson::Document(values), pc)?));
    }
    Ok(stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densify_validation() {
        let code = |v: Bson| Densify::parse(&v).err().map(|e| e.code.code());
        assert_eq!(code(bson::bson!({"field": "a", "range": {"step": 1, "bounds": "full"}})), None);
        assert_eq!(code(bson::bson!({"range": {"step": 1, "bounds": "full"}})), Some(40414));
        assert_eq!(code(bson::bson!({"field": "a", "range": {"step": 0, "bounds": "full"}})), Some(5733401));
        assert_eq!(
            code(bson::bson!({"field": "a", "range": {"step": 1, "bounds": "partition"}})),
            Some(5733408)
        );
        assert_eq!(code(bson::bson!({"field": "a", "range": {"step": 1, "bounds": [5, 1]}})), Some(5733402));
        assert_eq!(
            code(bson::bson!({"field": "a", "range": {"step": 1, "bounds": "full"}, "x": 1})),
            Some(40415)
        );
    }
}
