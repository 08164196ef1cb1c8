//! Choosing how to find documents: `_id` point lookups; index scans over equality / `$in`
//! prefixes followed by one range (`$gt`/`$gte`/`$lt`/`$lte`, within the value's type bracket);
//! index scans that deliver the requested sort order; otherwise a collection scan. Every plan
//! is followed by the full matcher, so bounds only need to be a superset of the matches.
//! A rooted `$or` whose clauses can each use an index becomes a union of their scans.
//! When several indexes qualify, `multiplan` runs them in a trial to choose; `covered` marks
//! index scans that need no documents.

use super::exec::Access;
use crate::error::{ErrorCode, MongoError, Result};
use crate::store::catalog::{direction_is_descending, Collection, IndexKind, IndexMeta};
use crate::store::keystring;
use crate::store::scan::{after_prefix, KeyRange};
use crate::store::wildcard::WildcardSpec;
use bson::{Bson, Document};
use std::sync::Arc;

/// Most index ranges one query may expand to (`$in` lists multiply).
const MAX_RANGES: usize = 4096;

/// One side of a range: the value and whether it is included.
type Bound<'a> = Option<&'a (Bson, bool)>;

/// What the filter says about one top-level field.
#[derive(Debug, Default)]
struct FieldPred {
    /// Equal to one of these values.
    points: Option<Vec<Bson>>,
    lower: Option<(Bson, bool)>,
    upper: Option<(Bson, bool)>,
}

/// A value whose matches are exactly the index entries equal to it. Arrays (which also match
/// documents holding them as an element), regexes and null (which also matches a missing
/// field) are left to scans that the matcher re-checks.
fn is_point(v: &Bson) -> bool {
    match v {
        Bson::Array(_) | Bson::RegularExpression(_) | Bson::Null | Bson::Undefined => false,
        Bson::Document(d) => !d.keys().next().is_some_and(|k| k.starts_with('$')),
        _ => true,
    }
}

/// A value a range bound can use: a comparison with it only matches its own type bracket.
fn is_range_value(v: &Bson) -> bool {
    !matches!(
        v,
        Bson::Array(_)
            | Bson::Document(_)
            | Bson::RegularExpression(_)
            | Bson::Null
            | Bson::Undefined
            | Bson::MinKey
            | Bson::MaxKey
    )
}

fn field_pred(filter: &Document, field: &str) -> Option<FieldPred> {
    let v = filter.get(field)?;
    let mut p = FieldPred::default();
    match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            for (op, arg) in d {
                match op.as_str() {
                    "$eq" if is_point(arg) => p.points = Some(vec![arg.clone()]),
                    "$in" => {
                        if let Bson::Array(vs) = arg {
                            if !vs.is_empty() && vs.iter().all(is_point) {
                                p.points = Some(vs.clone());
                            }
                        }
                    }
                    "$gt" | "$gte" if is_range_value(arg) => p.lower = Some((arg.clone(), op == "$gte")),
                    "$lt" | "$lte" if is_range_value(arg) => p.upper = Some((arg.clone(), op == "$lte")),
                    _ => {}
                }
            }
        }
        v if is_point(v) => p.points = Some(vec![v.clone()]),
        _ => return None,
    }
    if p.points.is_none() && p.lower.is_none() && p.upper.is_none() {
        return None;
    }
    Some(p)
}

/// What the filter says about key field `i` of `idx`. A hashed field holds only hashes, so it
/// answers equality (with the hashes of the values) and never ranges.
fn index_pred(idx: &IndexMeta, i: usize, filter: &Document) -> Option<FieldPred> {
    let (field, _) = idx.fields.get(i)?;
    let pred = collated(idx, field_pred(filter, field)?)?;
    match idx.kind {
        IndexKind::Hashed(pos) if pos == i => {
            let points = pred.points?;
            let hashed = points.iter().map(|v| Bson::Int64(crate::store::hashed::hash_value(v))).collect();
            Some(FieldPred { points: Some(hashed), lower: None, upper: None })
        }
        _ => Some(pred),
    }
}

/// Whether the index orders strings as the statement's collation does.
fn same_collation(idx: &IndexMeta) -> bool {
    super::collation::active().as_deref() == idx.collation.as_deref()
}

/// A predicate in the index's terms: strings become the index's collation keys. Under another
/// collation than the index's, string values give no usable bounds.
fn collated(idx: &IndexMeta, pred: FieldPred) -> Option<FieldPred> {
    let strings = pred.points.iter().flatten().any(super::collation::has_strings)
        || [&pred.lower, &pred.upper].into_iter().flatten().any(|(v, _)| super::collation::has_strings(v));
    if !strings {
        return Some(pred);
    }
    if !same_collation(idx) {
        return None;
    }
    let Some(c) = &idx.collation else {
        return Some(pred);
    };
    Some(FieldPred {
        points: pred.points.map(|p| p.iter().map(|v| c.index_value(v)).collect()),
        lower: pred.lower.map(|(v, inc)| (c.index_value(&v), inc)),
        upper: pred.upper.map(|(v, inc)| (c.index_value(&v), inc)),
    })
}

fn encoded(v: &Bson, desc: bool) -> Vec<u8> {
    let mut k = Vec::new();
    keystring::append_value(&mut k, v, desc);
    k
}

/// Key range for `prefix` followed by the range of one field. Bounds stay inside the type
/// bracket of the bound's value (all keys starting with its type byte).
fn range_after(
    prefix: &[u8],
    lower: Option<&(Bson, bool)>,
    upper: Option<&(Bson, bool)>,
    desc: bool,
) -> KeyRange {
    let sample = lower.or(upper).map(|(v, _)| v.clone()).unwrap_or(Bson::Null);
    let type_byte = encoded(&sample, desc).first().copied().unwrap_or(0);
    let mut bracket = prefix.to_vec();
    bracket.push(type_byte);
    let bracket_end = after_prefix(&bracket);
    let with = |v: &Bson| {
        let mut k = prefix.to_vec();
        k.extend(encoded(v, desc));
        k
    };
    // In ascending encoding a lower value bound is a lower key bound; descending flips them.
    let (key_lo_from, key_hi_from) = if desc { (upper, lower) } else { (lower, upper) };
    let lo = match key_lo_from {
        // Inclusive: start at the value's own keys; exclusive: after every key with it.
        Some((v, true)) => with(v),
        Some((v, false)) => after_prefix(&with(v)).unwrap_or_else(|| bracket.clone()),
        None => bracket.clone(),
    };
    let hi = match key_hi_from {
        Some((v, true)) => after_prefix(&with(v)),
        Some((v, false)) => Some(with(v)),
        None => bracket_end,
    };
    KeyRange { lo, hi }
}

fn shell_value(v: &Bson) -> String {
    let mut s = String::new();
    crate::cmd::format::write_value(&mut s, v);
    s
}

/// The ends of a value's type bracket as explain prints them.
fn bracket_ends(v: &Bson) -> (&'static str, &'static str) {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => ("-inf.0", "inf.0"),
        Bson::String(_) | Bson::Symbol(_) => ("\"\"", "{}"),
        Bson::ObjectId(_) => ("ObjectId('000000000000000000000000')", "ObjectId('ffffffffffffffffffffffff')"),
        Bson::Boolean(_) => ("false", "true"),
        Bson::DateTime(_) => ("new Date(-9223372036854775808)", "new Date(9223372036854775807)"),
        _ => ("MinKey", "MaxKey"),
    }
}

/// explain's interval strings for one field, in index order.
fn describe_field(
    pred: Option<&FieldPred>,
    lower: Option<&(Bson, bool)>,
    upper: Option<&(Bson, bool)>,
    desc: bool,
) -> Vec<Bson> {
    let mut out: Vec<String> = Vec::new();
    match pred.and_then(|p| p.points.as_ref()) {
        Some(points) => {
            let mut pts = points.clone();
            pts.sort_by(crate::query::compare::compare_bson);
            if desc {
                pts.reverse();
            }
            pts.dedup_by(|a, b| crate::query::compare::bson_equal(a, b));
            out.extend(pts.iter().map(|v| format!("[{0}, {0}]", shell_value(v))));
        }
        None if lower.is_some() || upper.is_some() => {
            let sample = lower.or(upper).map(|(v, _)| v).cloned().unwrap_or(Bson::Null);
            let (min, max) = bracket_ends(&sample);
            let (lo, lo_inc) =
                lower.map(|(v, inc)| (shell_value(v), *inc)).unwrap_or((min.to_string(), true));
            let (hi, hi_inc) =
                upper.map(|(v, inc)| (shell_value(v), *inc)).unwrap_or((max.to_string(), true));
            let hi_inc = hi_inc && !(upper.is_none() && max == "{}");
            if desc {
                out.push(format!(
                    "{}{hi}, {lo}{}",
                    if hi_inc { '[' } else { '(' },
                    if lo_inc { ']' } else { ')' }
                ));
            } else {
                out.push(format!(
                    "{}{lo}, {hi}{}",
                    if lo_inc { '[' } else { '(' },
                    if hi_inc { ']' } else { ')' }
                ));
            }
        }
        None => out.push(if desc { "[MaxKey, MinKey]".into() } else { "[MinKey, MaxKey]".into() }),
    }
    out.into_iter().map(Bson::String).collect()
}

fn describe_bounds(
    idx: &IndexMeta,
    filter: &Document,
    eq_fields: usize,
    range: Option<(Bound<'_>, Bound<'_>)>,
) -> Document {
    let mut d = Document::new();
    for (i, (field, desc)) in idx.fields.iter().enumerate() {
        let pred = index_pred(idx, i, filter);
        let intervals = if i < eq_fields {
            describe_field(pred.as_ref(), None, None, *desc)
        } else if i == eq_fields {
            match range {
                Some((lo, hi)) => describe_field(None, lo, hi, *desc),
                None => describe_field(None, None, None, *desc),
            }
        } else {
            describe_field(None, None, None, *desc)
        };
        d.insert(field.clone(), intervals);
    }
    d
}

/// Ranges for `idx` from the filter: (ranges, equality fields pinned, whether a range field
/// follows them, explain's indexBounds).
fn ranges_and_bounds(idx: &IndexMeta, filter: &Document) -> (Vec<KeyRange>, usize, bool, Document) {
    let mut prefixes: Vec<Vec<u8>> = vec![Vec::new()];
    let mut eq_fields = 0;
    for (i, (_, desc)) in idx.fields.iter().enumerate() {
        let Some(pred) = index_pred(idx, i, filter) else { break };
        if let Some(points) = &pred.points {
            if prefixes.len() * points.len() > MAX_RANGES {
                break;
            }
            let mut next = Vec::with_capacity(prefixes.len() * points.len());
            for p in &prefixes {
                for v in points {
                    let mut k = p.clone();
                    keystring::append_value(&mut k, v, *desc);
                    next.push(k);
                }
            }
            prefixes = next;
            eq_fields += 1;
            continue;
        }
        // A multikey index may not intersect two bounds: different elements of one array
        // may satisfy each. Keep the lower bound only.
        let (lower, upper) = if idx.is_multikey() && pred.lower.is_some() {
            (pred.lower.as_ref(), None)
        } else {
            (pred.lower.as_ref(), pred.upper.as_ref())
        };
        let lower_ty = lower.map(|(v, _)| encoded(v, false).first().copied());
        let upper_ty = upper.map(|(v, _)| encoded(v, false).first().copied());
        if lower.is_some() && upper.is_some() && lower_ty != upper_ty {
            // Bounds of different types match nothing together; let the matcher say so.
            break;
        }
        prefixes.sort();
        prefixes.dedup();
        let ranges = prefixes.iter().map(|p| range_after(p, lower, upper, *desc)).collect();
        let bounds = describe_bounds(idx, filter, eq_fields, Some((lower, upper)));
        return (ranges, eq_fields, true, bounds);
    }
    prefixes.sort();
    prefixes.dedup();
    let bounds = describe_bounds(idx, filter, eq_fields, None);
    if eq_fields == 0 {
        return (vec![KeyRange::all()], 0, false, bounds);
    }
    (prefixes.iter().map(|p| KeyRange::prefix(p)).collect(), eq_fields, false, bounds)
}

/// Whether scanning `idx` (forward or reverse) after `eq_fields` single-point equality fields
/// yields documents in `sort` order. Returns the scan direction.
fn provides_sort(idx: &IndexMeta, sort: &Document, eq_fields: usize, single_prefix: bool) -> Option<bool> {
    if sort.is_empty() || idx.is_multikey() || (eq_fields > 0 && !single_prefix) || !same_collation(idx) {
        return None;
    }
    let rest = idx.fields.get(eq_fields..)?;
    if sort.len() > rest.len() {
        return None;
    }
    let hashed_at = match &idx.kind {
        IndexKind::Btree => None,
        IndexKind::Hashed(pos) => Some(*pos),
        IndexKind::Wildcard(_) | IndexKind::Geo => return None,
    };
    if hashed_at.is_some_and(|p| p >= eq_fields && p < eq_fields + sort.len()) {
        // Hash order is not value order.
        return None;
    }
    let mut forward: Option<bool> = None;
    for ((field, desc), (sfield, sdir)) in rest.iter().zip(sort.iter()) {
        if field != sfield {
            return None;
        }
        let sort_desc = match sdir {
            Bson::Int32(n) => *n < 0,
            Bson::Int64(n) => *n < 0,
            Bson::Double(n) => *n < 0.0,
            _ => return None,
        };
        let same = sort_desc == *desc;
        match forward {
            None => forward = Some(same),
            Some(f) if f != same => return None,
            _ => {}
        }
    }
    forward
}

/// A wildcard index answers the predicate on one covered path (equality or `$in` preferred to
/// a range) as a scan of the entries with that path: (ranges, score, explain's indexBounds).
fn wildcard_ranges(
    idx: &IndexMeta,
    spec: &WildcardSpec,
    filter: &Document,
) -> Option<(Vec<KeyRange>, usize, Document)> {
    let mut best: Option<(Vec<KeyRange>, usize, Document)> = None;
    for path in filter.keys() {
        // Positional components and operators are left to other plans.
        let plain = !path.split('.').any(|c| c.starts_with('$') || c.bytes().all(|b| b.is_ascii_digit()));
        if !plain || !spec.covers(path) {
            continue;
        }
        let Some(mut pred) = field_pred(filter, path).and_then(|p| collated(idx, p)) else { continue };
        // Only leaf values have entries: a non-empty embedded document equals none of them
        // (an empty one is a leaf).
        if pred
            .points
            .as_ref()
            .is_some_and(|p| p.iter().any(|v| matches!(v, Bson::Document(d) if !d.is_empty())))
        {
            pred.points = None;
        }
        let path_value = Bson::String(path.clone());
        let prefix = encoded(&path_value, false);
        let (ranges, score, intervals) = if let Some(points) = &pred.points {
            let mut keys: Vec<Vec<u8>> = points
                .iter()
                .map(|v| {
                    let mut k = prefix.clone();
                    keystring::append_value(&mut k, v, false);
                    k
                })
                .collect();
            keys.sort();
            keys.dedup();
            let ranges = keys.iter().map(|k| KeyRange::prefix(k)).collect();
            (ranges, 2, describe_field(Some(&pred), None, None, false))
        } else {
            let lower = pred.lower.as_ref();
            let upper =
                if idx.path_is_multikey(path) && lower.is_some() { None } else { pred.upper.as_ref() };
            if lower.is_none() && upper.is_none() {
                continue;
            }
            let ty = |b: Bound<'_>| b.map(|(v, _)| encoded(v, false).first().copied());
            if lower.is_some() && upper.is_some() && ty(lower) != ty(upper) {
                continue;
            }
            (vec![range_after(&prefix, lower, upper, false)], 1, describe_field(None, lower, upper, false))
        };
        if best.as_ref().is_none_or(|(_, s, _)| score > *s) {
            let mut bounds = Document::new();
            bounds.insert("$_path", vec![Bson::String(format!("[{0}, {0}]", shell_value(&path_value)))]);
            bounds.insert(path.clone(), intervals);
            best = Some((ranges, score, bounds));
        }
    }
    best
}

/// The key pattern explain shows for a scan: a wildcard index scans as `{$_path: 1, path: 1}`.
pub fn explain_key_pattern(index: &IndexMeta, bounds: &Document) -> Document {
    match (&index.kind, bounds.keys().nth(1)) {
        (IndexKind::Wildcard(_), Some(path)) => {
            let dir = index.key.values().next().cloned().unwrap_or(Bson::Int32(1));
            let mut d = Document::new();
            d.insert("$_path", 1);
            d.insert(path.clone(), dir);
            d
        }
        _ => index.key.clone(),
    }
}

/// A hidden index is never used; a partial one only when the filter implies its condition.
fn usable(idx: &IndexMeta, filter: &Document) -> bool {
    let covers = match &idx.partial {
        None => true,
        Some(_) => {
            idx.spec.get_document("partialFilterExpression").is_ok_and(|p| super::implies::implies(filter, p))
        }
    };
    // A geo index holds no entries (see `IndexKind::Geo`): ordinary predicates never use it.
    covers && !idx.spec.get_bool("hidden").unwrap_or(false) && !matches!(idx.kind, IndexKind::Geo)
}

fn index_by_hint<'a>(coll: &'a Collection, hint: &Bson) -> Result<Option<&'a Arc<IndexMeta>>> {
    let found = match hint {
        Bson::String(name) => coll.indexes.iter().find(|i| &i.name == name),
        Bson::Document(d) if d.contains_key("$natural") => return Ok(None),
        Bson::Document(key) => coll.indexes.iter().find(|i| &i.key == key),
        _ => None,
    };
    match found {
        Some(i) => Ok(Some(i)),
        None => Err(MongoError::new(
            ErrorCode::BadValue,
            "hint provided does not correspond to an existing index",
        )),
    }
}

/// find's `min` (inclusive) and `max` (exclusive) key bounds on the hinted index: they replace
/// the scan's ranges (the filter still applies to every document).
pub fn apply_min_max(plan: &mut Plan, min: Option<&Document>, max: Option<&Document>) -> Result<()> {
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    let Access::IndexScan { index, ranges, bounds, .. } = &mut plan.access else {
        return Err(MongoError::bad_value(
            "When using min()/max() a hint of which index to use must be provided",
        ));
    };
    let encode = |d: &Document| -> Result<Vec<u8>> {
        let names: Vec<&str> = d.keys().map(String::as_str).collect();
        let fields: Vec<&str> = index.fields.iter().map(|(p, _)| p.as_str()).collect();
        if names != fields {
            return Err(MongoError::bad_value("The index chosen is not consistent with min/max"));
        }
        let parts: Vec<(&Bson, bool)> =
            d.values().zip(&index.fields).map(|(v, (_, desc))| (v, *desc)).collect();
        Ok(crate::store::keystring::encode_key(&parts))
    };
    let lo = min.map(encode).transpose()?.unwrap_or_default();
    let hi = max.map(encode).transpose()?;
    if hi.as_ref().is_some_and(|h| *h <= lo) {
        return Err(MongoError::bad_value("max() must be greater than min()"));
    }
    *ranges = vec![KeyRange { lo, hi }];
    *bounds = Document::new();
    plan.sort_provided = false;
    Ok(())
}

/// The chosen access path and whether it already delivers the requested sort order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub access: Access,
    pub sort_provided: bool,
}

pub fn plan(
    coll: &Collection,
    filter: &Document,
    sort: Option<&Document>,
    hint: Option<&Bson>,
) -> Result<Access> {
    Ok(plan_with_sort(coll, filter, sort, hint)?.access)
}

/// The plan with the best static score (no trial run).
pub fn plan_with_sort(
    coll: &Collection,
    filter: &Document,
    sort: Option<&Document>,
    hint: Option<&Bson>,
) -> Result<Plan> {
    let all = plan_candidates(coll, filter, sort, hint)?;
    all.into_iter().next().ok_or_else(|| MongoError::new(ErrorCode::NoQueryExecutionPlans, "no query plan"))
}

/// The plans worth considering, best static score first; never empty. More than one only
/// when several indexes can answer an unhinted query (the multi-planner's trial decides).
pub fn plan_candidates(
    coll: &Collection,
    filter: &Document,
    sort: Option<&Document>,
    hint: Option<&Bson>,
) -> Result<Vec<Plan>> {
    let natural_dir =
        |d: &Document| -> Option<bool> { d.get("$natural").map(|v| !direction_is_descending(v)) };
    let sort = sort.filter(|s| !s.is_empty());
    if let Some(h) = hint {
        if let Bson::Document(d) = h {
            if let Some(forward) = natural_dir(d) {
                return Ok(vec![Plan { access: Access::CollScan { forward }, sort_provided: false }]);
            }
        }
        if let Some(idx) = index_by_hint(coll, h)? {
            if let IndexKind::Geo = idx.kind {
                return Ok(vec![Plan {
                    access: Access::CollScan { forward: true },
                    sort_provided: sort.is_none(),
                }]);
            }
            if let IndexKind::Wildcard(spec) = &idx.kind {
                // Documents without a covered path have no entry: only a predicate helps.
                let Some((ranges, _, bounds)) = wildcard_ranges(idx, spec, filter) else {
                    return Err(MongoError::new(
                        ErrorCode::NoQueryExecutionPlans,
                        "error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index",
                    ));
                };
                let access =
                    Access::IndexScan { index: idx.clone(), ranges, forward: true, bounds, covered: false };
                return Ok(vec![Plan { access, sort_provided: false }]);
            }
            let (ranges, eq, _, bounds) = ranges_and_bounds(idx, filter);
            let dir = sort.and_then(|s| provides_sort(idx, s, eq, ranges.len() == 1));
            return Ok(vec![Plan {
                access: Access::IndexScan {
                    index: idx.clone(),
                    ranges,
                    forward: dir.unwrap_or(true),
                    bounds,
                    covered: false,
                },
                sort_provided: dir.is_some(),
            }]);
        }
    }
    if let Some(forward) = sort.and_then(natural_dir) {
        return Ok(vec![Plan { access: Access::CollScan { forward }, sort_provided: true }]);
    }
    if let Some(p) = field_pred(filter, "_id").filter(|_| coll.id_index().is_some()) {
        if let Some(points) = &p.points {
            if let [only] = points.as_slice() {
                // The `_id` index is unique under its collation: one lookup finds the only
                // candidate under that collation or the simple one, not under a third.
                let active = super::collation::active();
                let id_collation = coll.id_index().and_then(|i| i.collation.clone());
                if active.is_none() || active == id_collation || !super::collation::has_strings(only) {
                    return Ok(vec![Plan { access: Access::IdLookup(only.clone()), sort_provided: true }]);
                }
            }
        }
    }
    let mut all = index_candidates(coll, filter, sort);
    if all.is_empty() {
        // With a sort, clauses whose scans each deliver it merge in order (SORT_MERGE).
        if let Some(access) = sort.and_then(|s| or_sort_merge(coll, filter, s)) {
            all.push(Plan { access, sort_provided: true });
            return Ok(all);
        }
        let access = or_union(coll, filter).unwrap_or(Access::CollScan { forward: true });
        all.push(Plan { access, sort_provided: sort.is_none() });
    }
    Ok(all)
}

/// Every index that can answer the filter (or deliver the sort over all documents), best
/// static score first: equality fields count double, a trailing range once; ties go to
/// unique indexes, then to one that delivers the sort, then to the older index.
fn index_candidates(coll: &Collection, filter: &Document, sort: Option<&Document>) -> Vec<Plan> {
    let mut found: Vec<((usize, bool, bool), Plan)> = Vec::new();
    for idx in coll.indexes.iter().filter(|i| usable(i, filter)) {
        if let IndexKind::Wildcard(spec) = &idx.kind {
            if let Some((ranges, score, bounds)) = wildcard_ranges(idx, spec, filter) {
                let access =
                    Access::IndexScan { index: idx.clone(), ranges, forward: true, bounds, covered: false };
                found.push(((score, false, false), Plan { access, sort_provided: false }));
            }
            continue;
        }
        let (ranges, eq, range, bounds) = ranges_and_bounds(idx, filter);
        let score = eq * 2 + range as usize;
        let dir = sort.and_then(|s| provides_sort(idx, s, eq, ranges.len() == 1));
        if score == 0 {
            // No predicate: only worth it when the index delivers the sort and holds every
            // document.
            if dir.is_none() || idx.sparse {
                continue;
            }
        }
        let access = Access::IndexScan {
            index: idx.clone(),
            ranges,
            forward: dir.unwrap_or(true),
            bounds,
            covered: false,
        };
        found.push(((score, idx.unique, dir.is_some()), Plan { access, sort_provided: dir.is_some() }));
    }
    // Stable: equal keys keep index creation order.
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Most clauses of a `$or` answered by a union of scans.
const MAX_OR_BRANCHES: usize = 64;

/// A rooted `$or` whose every clause can use an index: a union of one scan per clause (the
/// whole filter is applied to each document found). `None` when any clause would need a
/// collection scan anyway.
fn or_union(coll: &Collection, filter: &Document) -> Option<Access> {
    let Some(Bson::Array(clauses)) = filter.get("$or") else { return None };
    if clauses.is_empty() || clauses.len() > MAX_OR_BRANCHES {
        return None;
    }
    let mut branches = Vec::with_capacity(clauses.len());
    for c in clauses {
        let Bson::Document(clause) = c else { return None };
        match plan_with_sort(coll, clause, None, None).ok()?.access {
            Access::CollScan { .. } => return None,
            a => branches.push(a),
        }
    }
    Some(Access::Or(branches))
}

/// A rooted `$or` whose every clause has an index scan delivering `sort`: the scans merged
/// by sort key, so no blocking sort is needed.
fn or_sort_merge(coll: &Collection, filter: &Document, sort: &Document) -> Option<Access> {
    let Some(Bson::Array(clauses)) = filter.get("$or") else { return None };
    if clauses.len() < 2 || clauses.len() > MAX_OR_BRANCHES || sort.contains_key("$natural") {
        return None;
    }
    let spec = super::sort::SortSpec::parse(sort).ok()?;
    let mut branches = Vec::with_capacity(clauses.len());
    for c in clauses {
        let Bson::Document(clause) = c else { return None };
        let plan = plan_with_sort(coll, clause, Some(sort), None).ok()?;
        match plan.access {
            a @ Access::IndexScan { .. } if plan.sort_provided => branches.push(a),
            _ => return None,
        }
    }
    Some(Access::SortMerge(branches, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn range_bounds_stay_in_the_type_bracket() {
        let r = range_after(&[], Some(&(Bson::Int32(3), false)), Some(&(Bson::Int32(7), true)), false);
        let key = |v: Bson| encoded(&v, false);
        let inside = |k: &[u8]| k >= r.lo.as_slice() && r.hi.as_ref().is_none_or(|h| k < h.as_slice());
        assert!(!inside(&key(Bson::Int32(3))));
        assert!(inside(&key(Bson::Double(3.5))));
        assert!(inside(&key(Bson::Int64(7))));
        assert!(!inside(&key(Bson::Int32(8))));
        assert!(!inside(&key(Bson::String("5".into()))));
        // Descending fields flip the byte order but keep the same matches.
        let r = range_after(&[], Some(&(Bson::Int32(3), true)), None, true);
        let key = |v: Bson| encoded(&v, true);
        let inside = |k: &[u8]| k >= r.lo.as_slice() && r.hi.as_ref().is_none_or(|h| k < h.as_slice());
        assert!(inside(&key(Bson::Int32(3))));
        assert!(inside(&key(Bson::Int32(300))));
        assert!(!inside(&key(Bson::Int32(2))));
        assert!(!inside(&key(Bson::String("z".into()))));
    }

    #[test]
    fn predicates() {
        let f = doc! { "a": { "$gt": 1, "$lte": 5 }, "b": 3, "c": { "$in": [1, 2] }, "d": [1] };
        let a = field_pred(&f, "a").unwrap();
        assert!(a.points.is_none() && a.lower.is_some() && a.upper.is_some());
        assert_eq!(field_pred(&f, "b").unwrap().points.unwrap().len(), 1);
        assert_eq!(field_pred(&f, "c").unwrap().points.unwrap().len(), 2);
        assert!(field_pred(&f, "d").is_none());
        assert!(field_pred(&doc! { "x": { "$ne": 1 } }, "x").is_none());
    }
}
