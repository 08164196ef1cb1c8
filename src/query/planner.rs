//! Choosing how to find documents. For now: `_id` point lookups, and equality (or `$in`) on a
//! prefix of an index's fields; everything else scans the collection. The query issue replaces
//! this with trial-run plan selection, ranges and sort-providing index scans.

use super::exec::Access;
use crate::error::{ErrorCode, MongoError, Result};
use crate::store::catalog::{Collection, IndexMeta};
use crate::store::keystring;
use bson::{Bson, Document};
use std::sync::Arc;

/// Most index prefixes one query may expand to (`$in` lists multiply).
const MAX_PREFIXES: usize = 4096;

/// The values a top-level filter field is equal to, when the filter pins it to a few points.
fn equality_points(filter: &Document, field: &str) -> Option<Vec<Bson>> {
    let v = filter.get(field)?;
    match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            if d.len() != 1 {
                return None;
            }
            match d.iter().next()? {
                (op, v) if op == "$eq" && is_point(v) => Some(vec![v.clone()]),
                (op, Bson::Array(vs)) if op == "$in" && vs.iter().all(is_point) && !vs.is_empty() => {
                    Some(vs.clone())
                }
                _ => None,
            }
        }
        v if is_point(v) => Some(vec![v.clone()]),
        _ => None,
    }
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

/// Encoded key prefixes for equality on the leading fields of `idx`, and how many fields.
fn prefixes_for(idx: &IndexMeta, filter: &Document) -> (Vec<Vec<u8>>, usize) {
    let mut prefixes: Vec<Vec<u8>> = vec![Vec::new()];
    let mut covered = 0;
    for (field, desc) in &idx.fields {
        let Some(points) = equality_points(filter, field) else {
            break;
        };
        if prefixes.len() * points.len() > MAX_PREFIXES {
            break;
        }
        let mut next = Vec::with_capacity(prefixes.len() * points.len());
        for p in &prefixes {
            for v in &points {
                let mut k = p.clone();
                keystring::append_value(&mut k, v, *desc);
                next.push(k);
            }
        }
        prefixes = next;
        covered += 1;
    }
    prefixes.sort();
    prefixes.dedup();
    (prefixes, covered)
}

fn usable(idx: &IndexMeta) -> bool {
    idx.partial.is_none() && !idx.spec.get_bool("hidden").unwrap_or(false)
}

pub fn plan(
    coll: &Collection,
    filter: &Document,
    sort: Option<&Document>,
    hint: Option<&Bson>,
) -> Result<Access> {
    let natural_dir = |d: &Document| -> Option<bool> {
        d.get("$natural").map(|v| !crate::store::catalog::direction_is_descending(v))
    };
    if let Some(h) = hint {
        if let Bson::Document(d) = h {
            if let Some(forward) = natural_dir(d) {
                return Ok(Access::CollScan { forward });
            }
        }
        if let Some(idx) = index_by_hint(coll, h)? {
            let (prefixes, covered) = prefixes_for(idx, filter);
            let prefixes = if covered == 0 { vec![Vec::new()] } else { prefixes };
            return Ok(Access::IndexPrefixes { index: idx.clone(), prefixes, forward: true });
        }
    }
    if let Some(forward) = sort.and_then(natural_dir) {
        return Ok(Access::CollScan { forward });
    }
    if let Some(points) = equality_points(filter, "_id") {
        if points.len() == 1 {
            return Ok(Access::IdLookup(points[0].clone()));
        }
    }
    // (index, key prefixes, fields covered)
    type Candidate<'a> = (&'a Arc<IndexMeta>, Vec<Vec<u8>>, usize);
    let mut best: Option<Candidate> = None;
    for idx in coll.indexes.iter().filter(|i| usable(i)) {
        let (prefixes, covered) = prefixes_for(idx, filter);
        if covered == 0 {
            continue;
        }
        let better = match &best {
            None => true,
            Some((b, _, bc)) => covered > *bc || (covered == *bc && idx.unique && !b.unique),
        };
        if better {
            best = Some((idx, prefixes, covered));
        }
    }
    Ok(match best {
        Some((idx, prefixes, _)) => Access::IndexPrefixes { index: idx.clone(), prefixes, forward: true },
        None => Access::CollScan { forward: true },
    })
}
