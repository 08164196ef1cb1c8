//! Whether a query filter implies a partial index's `partialFilterExpression`, so the index
//! holds every document the query can match and the planner may use it. Conservative: only
//! equality, `$in`, ranges and `$exists: true` are understood; anything else answers false.

use super::compare::{canonical_type_rank, compare_bson};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// True when every document matching `query` also matches `partial`.
pub fn implies(query: &Document, partial: &Document) -> bool {
    partial.iter().all(|(k, v)| match (k.as_str(), v) {
        ("$and", Bson::Array(items)) => {
            items.iter().all(|it| matches!(it, Bson::Document(d) if implies(query, d)))
        }
        (k, _) if k.starts_with('$') => false,
        (field, Bson::Document(ops)) if ops.keys().next().is_some_and(|o| o.starts_with('$')) => {
            ops.iter().all(|(op, pv)| field_implies(query, field, op, pv))
        }
        (field, pv) => field_implies(query, field, "$eq", pv),
    })
}

/// The query's predicates on `field` as (operator, value): top level and inside `$and`.
fn predicates<'a>(query: &'a Document, field: &str, out: &mut Vec<(&'a str, &'a Bson)>) {
    for (k, v) in query {
        if k == "$and" {
            if let Bson::Array(items) = v {
                for it in items {
                    if let Bson::Document(d) = it {
                        predicates(d, field, out);
                    }
                }
            }
        } else if k == field {
            match v {
                Bson::Document(ops) if ops.keys().next().is_some_and(|o| o.starts_with('$')) => {
                    out.extend(ops.iter().map(|(o, x)| (o.as_str(), x)));
                }
                other => out.push(("$eq", other)),
            }
        }
    }
}

fn same_bracket(a: &Bson, b: &Bson) -> bool {
    canonical_type_rank(a) == canonical_type_rank(b)
}

/// Whether the value `qv` (a document's value, as an equality in the query) satisfies `op pv`.
fn value_satisfies(qv: &Bson, op: &str, pv: &Bson) -> bool {
    if matches!(qv, Bson::Null | Bson::Array(_) | Bson::Document(_) | Bson::RegularExpression(_)) {
        return false;
    }
    if op == "$exists" {
        return matches!(pv, Bson::Boolean(true) | Bson::Int32(1) | Bson::Int64(1) | Bson::Double(_));
    }
    if !same_bracket(qv, pv) {
        return false;
    }
    let ord = compare_bson(qv, pv);
    match op {
        "$eq" => ord == Ordering::Equal,
        "$lt" => ord == Ordering::Less,
        "$lte" => ord != Ordering::Greater,
        "$gt" => ord == Ordering::Greater,
        "$gte" => ord != Ordering::Less,
        _ => false,
    }
}

fn field_implies(query: &Document, field: &str, op: &str, pv: &Bson) -> bool {
    let mut preds = Vec::new();
    predicates(query, field, &mut preds);
    preds.iter().any(|&(qop, qv)| match qop {
        "$eq" => value_satisfies(qv, op, pv),
        "$in" => {
            matches!(qv, Bson::Array(a) if !a.is_empty() && a.iter().all(|x| value_satisfies(x, op, pv)))
        }
        "$lt" | "$lte" | "$gt" | "$gte" if op == "$exists" => value_satisfies(qv, op, pv),
        "$lt" | "$lte" if matches!(op, "$lt" | "$lte") && same_bracket(qv, pv) => {
            match compare_bson(qv, pv) {
                Ordering::Less => true,
                Ordering::Equal => op == "$lte" || qop == "$lt",
                Ordering::Greater => false,
            }
        }
        "$gt" | "$gte" if matches!(op, "$gt" | "$gte") && same_bracket(qv, pv) => {
            match compare_bson(qv, pv) {
                Ordering::Greater => true,
                Ordering::Equal => op == "$gte" || qop == "$gt",
                Ordering::Less => false,
            }
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn equalities_and_ranges_imply_wider_conditions() {
        let p = doc! { "a": { "$lte": 1.5 } };
        assert!(implies(&doc! { "x": 6, "a": 1 }, &p));
        assert!(implies(&doc! { "a": { "$lt": 1.5 } }, &p));
        assert!(implies(&doc! { "a": { "$lte": 1.5 } }, &p));
        assert!(implies(&doc! { "a": { "$in": [0, 1] } }, &p));
        assert!(implies(&doc! { "$and": [{ "a": 0 }] }, &p));
        assert!(!implies(&doc! { "a": 2 }, &p));
        assert!(!implies(&doc! { "a": { "$lte": 2 } }, &p));
        assert!(!implies(&doc! { "a": "1" }, &p), "other types never satisfy a numeric bound");
        assert!(!implies(&doc! { "x": 1 }, &p));
        assert!(!implies(&doc! { "$or": [{ "a": 1 }] }, &p));
        let exists = doc! { "b": { "$exists": true }, "c": { "$gt": 5 } };
        assert!(implies(&doc! { "b": "x", "c": { "$gte": 6 } }, &exists));
        assert!(!implies(&doc! { "b": null, "c": 6 }, &exists));
        assert!(implies(&doc! { "s": "on" }, &doc! { "s": "on" }));
        assert!(!implies(&doc! { "s": "off" }, &doc! { "s": "on" }));
    }
}
