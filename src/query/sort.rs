//! Sort specifications (`{a: 1, "b.c": -1}`) and mongod's document ordering.
//!
//! The sort key of a field is its value; an array contributes its smallest element for an
//! ascending sort and its largest for a descending one (an empty array sorts before null);
//! a missing field sorts as null; dotted paths reach into arrays of sub-documents, each
//! element contributing (null where the field is missing). Documents with equal keys keep
//! their input order: sort with a stable sort (`sort_documents` does).

use super::compare::compare_bson;
use super::util::{array_index, element_to_string, located};
use crate::error::{ErrorCode, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq)]
pub struct SortField {
    pub path: String,
    pub parts: Vec<String>,
    pub ascending: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct SortSpec {
    pub fields: Vec<SortField>,
    /// `{$natural: 1 | -1}`: storage order (true) or its reverse, for the caller to apply.
    pub natural: Option<bool>,
}

impl SortSpec {
    pub fn parse(spec: &Document) -> Result<SortSpec> {
        let mut fields = Vec::with_capacity(spec.len());
        let mut natural = None;
        for (path, v) in spec {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(located(
                    40352,
                    ErrorCode::BadValue,
                    "FieldPath cannot be constructed with empty string",
                ));
            }
            if let Bson::Document(d) = v {
                if d.len() == 1 && d.keys().next().is_some_and(|k| k == "$meta") {
                    // No metadata is ever set here, so a valid `$meta` key ties every
                    // document and is dropped; textScore needs a `$text` query we cannot have.
                    match d.get("$meta") {
                        Some(Bson::String(m)) if m == "textScore" => {
                            return Err(located(
                                40218,
                                ErrorCode::BadValue,
                                "query requires text score metadata, but it is not available",
                            ))
                        }
                        Some(Bson::String(m))
                            if matches!(
                                m.as_str(),
                                "randVal" | "searchScore" | "vectorSearchScore" | "score" | "geoNearDistance"
                            ) =>
                        {
                            continue
                        }
                        _ => {
                            return Err(located(
                                31138,
                                ErrorCode::BadValue,
                                format!("Illegal $meta sort: {}", element_to_string(path, v)),
                            ))
                        }
                    }
                }
                return Err(located(
                    17312,
                    ErrorCode::BadValue,
                    "$meta is the only expression supported by $sort right now",
                ));
            }
            let n = match v {
                Bson::Int32(i) => f64::from(*i),
                Bson::Int64(i) => *i as f64,
                Bson::Double(d) => *d,
                Bson::Decimal128(_) => super::util::number_as_f64(v).unwrap_or(0.0),
                _ => {
                    return Err(located(
                        15974,
                        ErrorCode::BadValue,
                        format!("Illegal key in $sort specification: {}", element_to_string(path, v)),
                    ))
                }
            };
            let ascending = if n == 1.0 {
                true
            } else if n == -1.0 {
                false
            } else {
                return Err(located(
                    15975,
                    ErrorCode::BadValue,
                    "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
                ));
            };
            if path == "$natural" {
                natural = Some(ascending);
                continue;
            }
            if path.starts_with('$') {
                return Err(located(
                    16410,
                    ErrorCode::BadValue,
                    "FieldPath field names may not start with '$'.",
                ));
            }
            fields.push(SortField {
                path: path.clone(),
                parts: path.split('.').map(str::to_string).collect(),
                ascending,
            });
        }
        Ok(SortSpec { fields, natural })
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// mongod's order of two documents under this specification.
    pub fn compare(&self, a: &Document, b: &Document) -> Ordering {
        for f in &self.fields {
            let ka = sort_key(a, &f.parts, f.ascending);
            let kb = sort_key(b, &f.parts, f.ascending);
            let c = compare_keys(&ka, &kb);
            let c = if f.ascending { c } else { c.reverse() };
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    }

    /// The per-field sort keys of a document (for callers that sort many times).
    pub fn keys(&self, doc: &Document) -> Vec<Bson> {
        self.fields.iter().map(|f| sort_key(doc, &f.parts, f.ascending)).collect()
    }

    /// Stable-sorts documents (ties keep their input order).
    pub fn sort_documents(&self, docs: &mut [Document]) {
        if self.fields.is_empty() {
            return;
        }
        let mut keyed: Vec<(Vec<Bson>, usize)> =
            docs.iter().enumerate().map(|(i, d)| (self.keys(d), i)).collect();
        keyed.sort_by(|(ka, _), (kb, _)| self.compare_keys(ka, kb));
        let mut taken: Vec<Option<Document>> = docs.iter_mut().map(|d| Some(std::mem::take(d))).collect();
        for (slot, (_, i)) in docs.iter_mut().zip(keyed) {
            if let Some(d) = taken.get_mut(i).and_then(Option::take) {
                *slot = d;
            }
        }
    }

    /// Compares key vectors made by `keys`.
    pub fn compare_keys(&self, a: &[Bson], b: &[Bson]) -> Ordering {
        for ((f, ka), kb) in self.fields.iter().zip(a).zip(b) {
            let c = compare_keys(ka, kb);
            let c = if f.ascending { c } else { c.reverse() };
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    }
}

/// Orders keys; `Undefined` (an empty array) sorts before everything but MinKey.
fn compare_keys(a: &Bson, b: &Bson) -> Ordering {
    let rank = |v: &Bson| match v {
        Bson::MinKey => 0,
        Bson::Undefined => 1,
        _ => 2,
    };
    match (rank(a), rank(b)) {
        (2, 2) => compare_bson(a, b),
        (x, y) => x.cmp(&y),
    }
}

/// The key a document sorts by on one field.
pub fn sort_key(doc: &Document, parts: &[String], ascending: bool) -> Bson {
    let mut best: Option<Bson> = None;
    let mut consider = |v: &Bson| {
        let better = match &best {
            None => true,
            Some(cur) => {
                let c = compare_keys(v, cur);
                if ascending {
                    c == Ordering::Less
                } else {
                    c == Ordering::Greater
                }
            }
        };
        if better {
            best = Some(v.clone());
        }
    };
    collect_doc_keys(doc, parts, &mut consider);
    best.unwrap_or(Bson::Null)
}

fn collect_doc_keys(d: &Document, rest: &[String], f: &mut dyn FnMut(&Bson)) {
    let Some((first, tail)) = rest.split_first() else {
        return;
    };
    match d.get(first) {
        Some(next) => collect_keys(next, tail, f),
        None => f(&Bson::Null),
    }
}

/// Calls `f` with every key value the path yields (as mongod's sort key generator).
fn collect_keys(v: &Bson, rest: &[String], f: &mut dyn FnMut(&Bson)) {
    let Some((first, tail)) = rest.split_first() else {
        match v {
            Bson::Array(a) if a.is_empty() => f(&Bson::Undefined),
            Bson::Array(a) => a.iter().for_each(&mut *f),
            other => f(other),
        }
        return;
    };
    match v {
        Bson::Document(d) => collect_doc_keys(d, rest, f),
        Bson::Array(a) => {
            if let Some(i) = array_index(first) {
                match a.get(i) {
                    Some(e) => collect_keys(e, tail, f),
                    None => f(&Bson::Null),
                }
                return;
            }
            if a.is_empty() {
                f(&Bson::Null);
            }
            for e in a {
                match e {
                    Bson::Document(_) => collect_keys(e, rest, f),
                    _ => f(&Bson::Null),
                }
            }
        }
        _ => f(&Bson::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn sorted(spec: Document, docs: Vec<Document>) -> Vec<i32> {
        let s = SortSpec::parse(&spec).unwrap();
        let mut docs = docs;
        s.sort_documents(&mut docs);
        docs.iter().map(|d| d.get_i32("_id").unwrap()).collect()
    }

    #[test]
    fn basic_and_stable() {
        let docs = vec![
            doc! {"_id": 1, "a": 2},
            doc! {"_id": 2, "a": 1},
            doc! {"_id": 3, "a": 2},
            doc! {"_id": 4},
            doc! {"_id": 5, "a": "x"},
            doc! {"_id": 6, "a": null},
        ];
        assert_eq!(sorted(doc! {"a": 1}, docs.clone()), vec![4, 6, 2, 1, 3, 5]);
        assert_eq!(sorted(doc! {"a": -1}, docs), vec![5, 1, 3, 2, 4, 6]);
    }

    #[test]
    fn arrays_use_min_or_max() {
        let docs = vec![
            doc! {"_id": 1, "a": [1, 10]},
            doc! {"_id": 2, "a": 5},
            doc! {"_id": 3, "a": []},
            doc! {"_id": 4, "a": null},
        ];
        assert_eq!(sorted(doc! {"a": 1}, docs.clone()), vec![3, 4, 1, 2]);
        assert_eq!(sorted(doc! {"a": -1}, docs), vec![1, 2, 4, 3]);
    }

    #[test]
    fn dotted_paths_through_arrays() {
        let docs = vec![
            doc! {"_id": 1, "a": [{"b": 3}, {"b": 1}]},
            doc! {"_id": 2, "a": {"b": 2}},
            doc! {"_id": 3, "a": [{"b": 4}, {"c": 1}]},
        ];
        assert_eq!(sorted(doc! {"a.b": 1}, docs.clone()), vec![3, 1, 2]);
        assert_eq!(sorted(doc! {"a.b": -1}, docs), vec![3, 1, 2]);
    }

    #[test]
    fn compound_and_numeric_types() {
        let docs = vec![
            doc! {"_id": 1, "a": 1, "b": 2},
            doc! {"_id": 2, "a": 1.0, "b": 1},
            doc! {"_id": 3, "a": 0i64, "b": 9},
        ];
        assert_eq!(sorted(doc! {"a": 1, "b": 1}, docs.clone()), vec![3, 2, 1]);
        assert_eq!(sorted(doc! {"a": -1, "b": -1}, docs), vec![1, 2, 3]);
    }

    #[test]
    fn parse_errors() {
        let e = SortSpec::parse(&doc! {"a": 0}).unwrap_err();
        assert_eq!(e.message, "$sort key ordering must be 1 (for ascending) or -1 (for descending)");
        let e = SortSpec::parse(&doc! {"a": "x"}).unwrap_err();
        assert_eq!(e.code, ErrorCode::Location15974);
        assert_eq!(e.message, "Illegal key in $sort specification: a: \"x\"");
        let code = |d: Document| SortSpec::parse(&d).map(|_| ()).unwrap_err().code.code();
        assert_eq!(code(doc! {"a": {"$meta": "textScore"}}), 40218);
        assert_eq!(code(doc! {"a": {"$meta": "nope"}}), 31138);
        assert_eq!(code(doc! {"a": {"$meta": 1}}), 31138);
        assert_eq!(code(doc! {"a": {"$add": [1]}}), 17312);
        let s = SortSpec::parse(&doc! {"a": {"$meta": "searchScore"}, "b": -1}).unwrap();
        assert_eq!(s.fields.len(), 1);
        assert_eq!(s.fields[0].path, "b");
        assert!(SortSpec::parse(&doc! {"a": 1.0, "b": -1i64}).is_ok());
        assert!(SortSpec::parse(&doc! {}).unwrap().is_empty());
        let s = SortSpec::parse(&doc! {"$natural": -1}).unwrap();
        assert_eq!((s.is_empty(), s.natural), (true, Some(false)));
        assert!(SortSpec::parse(&doc! {"$a": 1}).is_err());
    }
}
