//! Covered queries: an index scan whose query reads only fields the index holds answers from
//! the index entries alone (no FETCH), as mongod's PROJECTION_COVERED plans do. Entries carry
//! the key fields' original BSON values (`store::index::typed_values`), so the answer keeps
//! each value's type even though the key bytes do not (1, 1.0 and NumberLong(1) share a key).
//!
//! A dotted path is covered when it is one of the index's fields (and no index field is a
//! prefix of another): entries of documents missing a dotted field carry no values, since
//! `{a: {}}`, `{a: 5}` and `{}` project `a.b` differently, so the scan fetches those.

use super::exec::Access;
use super::planner::Plan;
use bson::{Bson, Document};

/// The fields an inclusion projection outputs (with `_id` unless excluded); `None` for
/// anything else (exclusions, expressions, `$slice`/`$elemMatch`/positional), which needs the
/// whole document.
fn projected_fields(projection: &Document) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut with_id = true;
    for (k, v) in projection {
        let truthy = match v {
            Bson::Boolean(b) => *b,
            Bson::Int32(n) => *n != 0,
            Bson::Int64(n) => *n != 0,
            Bson::Double(n) => *n != 0.0,
            _ => return None,
        };
        if k == "_id" {
            with_id = truthy;
            continue;
        }
        if !truthy || k.contains('$') || k.is_empty() {
            return None;
        }
        out.push(k.as_str());
    }
    if with_id {
        out.push("_id");
    }
    (!out.is_empty()).then_some(out)
}

/// Adds the fields `filter` reads to `out`; false when it reads something it does not name
/// (`$expr`, `$where`, `$text`, `$jsonSchema`, ...).
fn filter_fields<'a>(filter: &'a Document, out: &mut Vec<&'a str>) -> bool {
    for (k, v) in filter {
        match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let Bson::Array(clauses) = v else { return false };
                for c in clauses {
                    let Bson::Document(c) = c else { return false };
                    if !filter_fields(c, out) {
                        return false;
                    }
                }
            }
            "$comment" => {}
            k if k.contains('$') || k.is_empty() => return false,
            k => out.push(k),
        }
    }
    true
}

/// Marks `plan` covered when it scans an index that can cover and every field the query reads
/// (filter, sort, projection output) is a top-level field of that index.
pub fn cover(plan: &mut Plan, filter: &Document, projection: Option<&Document>, sort: Option<&Document>) {
    let Access::IndexScan { index, covered, .. } = &mut plan.access else { return };
    *covered = false;
    if !index.can_cover() {
        return;
    }
    let Some(mut needed) = projection.and_then(projected_fields) else { return };
    if !filter_fields(filter, &mut needed) {
        return;
    }
    for k in sort.into_iter().flat_map(|s| s.keys()) {
        if k.contains('$') {
            return;
        }
        needed.push(k);
    }
    // `{a: 1, "a.b": 1}` would need both the whole `a` and its part in one document.
    let nested = |p: &str, q: &str| q.starts_with(p) && q.as_bytes().get(p.len()) == Some(&b'.');
    if index.fields.iter().any(|(p, _)| index.fields.iter().any(|(q, _)| nested(p, q))) {
        return;
    }
    let in_index = |f: &str| index.fields.iter().any(|(p, _)| p == f);
    *covered = needed.iter().all(|f| in_index(f));
}

/// The inclusion projection equivalent to reading only `fields` (top-level names), for a
/// pipeline whose stages read no others: planned like a find with that projection.
pub fn projection_of(fields: &[String]) -> Document {
    let mut p: Document = fields.iter().map(|k| (k.clone(), Bson::Int32(1))).collect();
    if !fields.iter().any(|k| k == "_id") {
        p.insert("_id", 0);
    }
    p
}

/// The projection a command that reads only its filter's fields and `extra` (count: none;
/// distinct: its key) would have, so that planning it can cover; `None` when the filter reads
/// fields it does not name.
pub fn reading(filter: &Document, extra: &[&str]) -> Option<Document> {
    let mut fields = Vec::new();
    if !filter_fields(filter, &mut fields) {
        return None;
    }
    fields.extend_from_slice(extra);
    let mut names: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    names.sort();
    names.dedup();
    // A path under another one (`a` and `a.b`) is read through the outer one.
    let outer: Vec<String> = names
        .iter()
        .filter(|q| {
            !names.iter().any(|p| q.starts_with(p.as_str()) && q.as_bytes().get(p.len()) == Some(&b'.'))
        })
        .cloned()
        .collect();
    (!outer.is_empty()).then(|| projection_of(&outer))
}

/// Whether a plan reads only index entries.
pub fn is_covered(plan: &Plan) -> bool {
    matches!(plan.access, Access::IndexScan { covered: true, .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn projections_that_can_be_covered() {
        assert_eq!(projected_fields(&doc! { "a": 1, "_id": 0 }), Some(vec!["a"]));
        assert_eq!(projected_fields(&doc! { "a": true }), Some(vec!["a", "_id"]));
        assert_eq!(projected_fields(&doc! { "_id": 1 }), Some(vec!["_id"]));
        assert_eq!(projected_fields(&doc! { "_id": 0 }), None);
        assert_eq!(projected_fields(&doc! { "a": 0 }), None);
        assert_eq!(projected_fields(&doc! { "a.b": 1, "_id": 0 }), Some(vec!["a.b"]));
        assert_eq!(projected_fields(&doc! { "a": { "$slice": 1 }, "_id": 0 }), None);
        assert_eq!(projected_fields(&doc! { "a.$": 1, "_id": 0 }), None);
        assert_eq!(projected_fields(&doc! { "a": "$b", "_id": 0 }), None);
    }

    #[test]
    fn filters_name_their_fields() {
        let mut v = Vec::new();
        let f = doc! { "a": 1, "$or": [{ "b": 2 }, { "a": { "$gt": 3 } }] };
        assert!(filter_fields(&f, &mut v));
        assert_eq!(v, vec!["a", "b", "a"]);
        assert!(!filter_fields(&doc! { "$expr": { "$eq": ["$a", 1] } }, &mut Vec::new()));
        let dotted = doc! { "a.b": 1 };
        assert!(filter_fields(&dotted, &mut v));
        assert!(!filter_fields(&doc! { "a.$": 1 }, &mut Vec::new()));
    }

    #[test]
    fn commands_read_their_filter_fields() {
        let f = doc! { "a.b": 1, "a": { "$gt": 0 }, "$or": [{ "c": 1 }] };
        assert_eq!(reading(&f, &["d"]), Some(doc! { "a": 1, "c": 1, "d": 1, "_id": 0 }));
        assert_eq!(reading(&doc! { "_id": 3 }, &[]), Some(doc! { "_id": 1 }));
        assert_eq!(reading(&doc! { "$where": "1" }, &[]), None);
        assert_eq!(reading(&doc! {}, &[]), None);
    }
}
