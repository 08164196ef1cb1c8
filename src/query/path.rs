//! Dotted-path resolution with mongod's semantics.
//!
//! Reading (`lookup`, `visit`) yields every value a query predicate sees at a path:
//! arrays met before the last component are traversed (their sub-documents are searched with
//! the rest of the path; a numeric component also addresses an element by index), and an
//! array met at the end of the path yields each element and then the array itself
//! (`LeafArrays::Traverse`, what `$eq`, `$in`, `$type`... use) or only the array
//! (`LeafArrays::NoTraverse`, what `$size` and `$elemMatch` use). A missing value is reported
//! as `None`, which is what lets `{a: null}` match documents without `a`.
//!
//! Writing (`get_path`, `set_path`, `unset_path`) addresses exactly one location: numeric
//! components index arrays, intermediate documents are created, and a scalar in the way is
//! mongod's PathNotViable error.

use super::util::{array_index, element_to_string, located};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, Document};

/// How an array found at the end of the path is presented to a predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafArrays {
    /// Each element, then the whole array.
    Traverse,
    /// Only the whole array.
    NoTraverse,
}

/// One value seen at a path. `array_index` is the position within the outermost array that
/// was traversed to reach it (what the positional `$` operator refers to).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate<'a> {
    pub value: Option<&'a Bson>,
    pub array_index: Option<usize>,
}

/// Splits a dotted path into its components.
pub fn split(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

/// Every value a predicate sees at `path`, leaf arrays traversed.
pub fn lookup<'a>(doc: &'a Document, path: &str) -> Vec<Candidate<'a>> {
    lookup_with(doc, path, LeafArrays::Traverse)
}

pub fn lookup_with<'a>(doc: &'a Document, path: &str, mode: LeafArrays) -> Vec<Candidate<'a>> {
    let parts = split(path);
    let mut out = Vec::new();
    visit(doc, &parts, mode, &mut |c| {
        out.push(c);
        false
    });
    out
}

/// Calls `f` with each candidate at the path given as components; `f` returns true to stop.
/// Returns true when stopped early.
pub fn visit<'a, S: AsRef<str>>(
    doc: &'a Document,
    parts: &[S],
    mode: LeafArrays,
    f: &mut dyn FnMut(Candidate<'a>) -> bool,
) -> bool {
    if parts.is_empty() {
        return f(Candidate { value: None, array_index: None });
    }
    walk(doc, parts, mode, None, f)
}

fn walk<'a, S: AsRef<str>>(
    start: &'a Document,
    parts: &[S],
    mode: LeafArrays,
    outer: Option<usize>,
    f: &mut dyn FnMut(Candidate<'a>) -> bool,
) -> bool {
    let mut node = start;
    let mut i = 0;
    while let Some(part) = parts.get(i) {
        let last = i + 1 == parts.len();
        let Some(v) = node.get(part.as_ref()) else {
            return f(Candidate { value: None, array_index: outer });
        };
        match v {
            Bson::Array(arr) if last => {
                if mode == LeafArrays::Traverse {
                    for (j, e) in arr.iter().enumerate() {
                        if f(Candidate { value: Some(e), array_index: outer.or(Some(j)) }) {
                            return true;
                        }
                    }
                }
                return f(Candidate { value: Some(v), array_index: outer });
            }
            Bson::Array(arr) => return walk_array(arr, &parts[i + 1..], mode, outer, f),
            _ if last => return f(Candidate { value: Some(v), array_index: outer }),
            Bson::Document(d) => node = d,
            // A scalar where the path needs a document: the path is missing.
            _ => return f(Candidate { value: None, array_index: outer }),
        }
        i += 1;
    }
    false
}

/// An array met before the end of the path; `rest` is non-empty.
///
/// Sub-documents are searched with the whole rest of the path (a missing field there is a
/// candidate, so `{"a.b": null}` matches `{a: [{}]}`); when the next component is an index,
/// the element at that index is also looked into with the rest after it (a nested array
/// there is traversed as an array). Scalars and other nested arrays are not looked into.
/// Values reached through an index keep the position of an enclosing traversal only.
fn walk_array<'a, S: AsRef<str>>(
    arr: &'a [Bson],
    rest: &[S],
    mode: LeafArrays,
    outer: Option<usize>,
    f: &mut dyn FnMut(Candidate<'a>) -> bool,
) -> bool {
    let Some(next) = rest.first() else {
        return false;
    };
    let offset = array_index(next.as_ref());
    let after = rest.get(1..).unwrap_or(&[]);
    for (j, e) in arr.iter().enumerate() {
        if let Bson::Document(d) = e {
            if walk(d, rest, mode, outer.or(Some(j)), f) {
                return true;
            }
        }
        if offset != Some(j) {
            continue;
        }
        let stop = if after.is_empty() {
            f(Candidate { value: Some(e), array_index: outer })
        } else {
            match e {
                Bson::Document(d) => walk(d, after, mode, outer, f),
                Bson::Array(a) => walk_array(a, after, mode, outer, f),
                _ => false,
            }
        };
        if stop {
            return true;
        }
    }
    false
}

/// The single value at a path, numeric components indexing arrays (no array expansion).
pub fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = child(cur, p)?;
    }
    Some(cur)
}

/// The child `name` of a document, or element `name` of an array.
pub fn child<'a>(v: &'a Bson, name: &str) -> Option<&'a Bson> {
    match v {
        Bson::Document(d) => d.get(name),
        Bson::Array(a) => array_index(name).and_then(|i| a.get(i)),
        _ => None,
    }
}

pub fn child_mut<'a>(v: &'a mut Bson, name: &str) -> Option<&'a mut Bson> {
    match v {
        Bson::Document(d) => d.get_mut(name),
        Bson::Array(a) => array_index(name).and_then(move |i| a.get_mut(i)),
        _ => None,
    }
}

/// mongod refuses to pad an array beyond this many elements when a write addresses an index.
pub const MAX_ARRAY_PADDING: usize = 1_500_000;

/// Stores `value` into `container` under `name`: appended to a document (or replaced in
/// place), or at an index of an array padded with nulls. `parent_desc` names the container
/// for the PathNotViable message.
pub fn store_child(container: &mut Bson, name: &str, value: Bson, parent_desc: &str) -> Result<()> {
    match container {
        Bson::Document(d) => {
            d.insert(name.to_string(), value);
            Ok(())
        }
        Bson::Array(a) => {
            let Some(i) = array_index(name) else {
                return Err(not_viable(name, parent_desc));
            };
            if i >= a.len() {
                if i > MAX_ARRAY_PADDING + a.len() || i > MAX_ARRAY_PADDING {
                    return Err(located(
                        ErrorCode::BadValue.code(),
                        ErrorCode::BadValue,
                        format!("can't backfill array to larger than {MAX_ARRAY_PADDING} elements"),
                    ));
                }
                a.resize(i, Bson::Null);
                a.push(value);
            } else if let Some(slot) = a.get_mut(i) {
                *slot = value;
            }
            Ok(())
        }
        _ => Err(not_viable(name, parent_desc)),
    }
}

/// mongod's 28 PathNotViable for writing `field` below a non-container: the message names the
/// element in the way, e.g. "Cannot create field 'b' in element {a: 1}".
pub fn not_viable(field: &str, element_desc: &str) -> MongoError {
    MongoError::new(
        ErrorCode::PathNotViable,
        format!("Cannot create field '{field}' in element {{{element_desc}}}"),
    )
}

/// Builds `{rest[0]: {rest[1]: ... value}}` for the missing tail of a path.
pub fn nest(rest: &[&str], value: Bson) -> Bson {
    rest.iter().rev().fold(value, |acc, k| {
        let mut d = Document::new();
        d.insert((*k).to_string(), acc);
        Bson::Document(d)
    })
}

/// Sets the value at a dotted path, creating intermediate documents (numeric components
/// index existing arrays, padding with nulls). Errors as mongod when a non-container is in the
/// way. Returns the previous value.
pub fn set_path(doc: &mut Document, path: &str, value: Bson) -> Result<Option<Bson>> {
    let parts = split(path);
    let Some((first, rest)) = parts.split_first() else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(doc.insert((*first).to_string(), value));
    }
    let Some(mut cur) = doc.get_mut(*first) else {
        doc.insert((*first).to_string(), nest(rest, value));
        return Ok(None);
    };
    let mut cur_name = (*first).to_string();
    for (i, p) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let exists = child(cur, p).is_some();
        if last || !exists {
            let desc = element_to_string(&cur_name, cur);
            let old = if exists { child(cur, p).cloned() } else { None };
            let v = if last { value } else { nest(&rest[i + 1..], value) };
            store_child(cur, p, v, &desc)?;
            return Ok(old);
        }
        cur_name = (*p).to_string();
        match child_mut(cur, p) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Removes the value at a dotted path (an array element becomes null, as mongod's `$unset`).
/// Returns whether anything changed.
pub fn unset_path(doc: &mut Document, path: &str) -> bool {
    let parts = split(path);
    let Some((last, prefix)) = parts.split_last() else {
        return false;
    };
    if prefix.is_empty() {
        return doc.remove(*last).is_some();
    }
    let Some((first, middle)) = prefix.split_first() else {
        return false;
    };
    let Some(mut cur) = doc.get_mut(*first) else {
        return false;
    };
    for p in middle {
        match child_mut(cur, p) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    match cur {
        Bson::Document(d) => d.remove(*last).is_some(),
        Bson::Array(a) => match array_index(last).and_then(|i| a.get_mut(i)) {
            Some(slot) if *slot != Bson::Null => {
                *slot = Bson::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn vals(doc: &Document, path: &str, mode: LeafArrays) -> Vec<(Option<Bson>, Option<usize>)> {
        lookup_with(doc, path, mode).into_iter().map(|c| (c.value.cloned(), c.array_index)).collect()
    }

    #[test]
    fn plain_and_missing() {
        let d = doc! {"a": {"b": {"c": 5}}, "x": 1};
        assert_eq!(vals(&d, "a.b.c", LeafArrays::Traverse), vec![(Some(bson!(5)), None)]);
        assert_eq!(vals(&d, "a.z", LeafArrays::Traverse), vec![(None, None)]);
        // A scalar in the middle of the path: missing.
        assert_eq!(vals(&d, "x.y", LeafArrays::Traverse), vec![(None, None)]);
    }

    #[test]
    fn arrays_of_subdocuments() {
        let d = doc! {"a": [{"b": 1}, {"b": 2}, {"c": 3}, 7]};
        assert_eq!(
            vals(&d, "a.b", LeafArrays::Traverse),
            vec![(Some(bson!(1)), Some(0)), (Some(bson!(2)), Some(1)), (None, Some(2))]
        );
    }

    #[test]
    fn leaf_arrays() {
        let d = doc! {"a": [1, [2, 3]]};
        assert_eq!(
            vals(&d, "a", LeafArrays::Traverse),
            vec![(Some(bson!(1)), Some(0)), (Some(bson!([2, 3])), Some(1)), (Some(bson!([1, [2, 3]])), None)]
        );
        assert_eq!(vals(&d, "a", LeafArrays::NoTraverse), vec![(Some(bson!([1, [2, 3]])), None)]);
    }

    #[test]
    fn numeric_components() {
        let d = doc! {"a": [{"b": 1}, {"b": 2}]};
        assert_eq!(
            vals(&d, "a.1.b", LeafArrays::Traverse),
            vec![(None, Some(0)), (None, Some(1)), (Some(bson!(2)), None)]
        );
        let d = doc! {"a": [5, 6]};
        assert_eq!(vals(&d, "a.1", LeafArrays::Traverse), vec![(Some(bson!(6)), None)]);
        // A numeric component also names a field of sub-documents.
        let d = doc! {"a": [{"0": "x"}, 9]};
        assert_eq!(
            vals(&d, "a.0", LeafArrays::Traverse),
            vec![(Some(bson!("x")), Some(0)), (Some(bson!({"0": "x"})), None)]
        );
        let d = doc! {"a": [9, {"0": "x"}]};
        assert_eq!(
            vals(&d, "a.0", LeafArrays::Traverse),
            vec![(Some(bson!(9)), None), (Some(bson!("x")), Some(1))]
        );
        // Nested arrays addressed by index.
        let d = doc! {"a": [[4, 5]]};
        assert_eq!(vals(&d, "a.0.1", LeafArrays::Traverse), vec![(Some(bson!(5)), None)]);
        // ...and searched as arrays with the rest of the path.
        let d = doc! {"a": [[{"b": 1}]]};
        assert_eq!(vals(&d, "a.0.b", LeafArrays::Traverse), vec![(Some(bson!(1)), Some(0))]);
    }

    #[test]
    fn nested_arrays_are_not_searched_by_name() {
        let d = doc! {"a": [[{"b": 1}]]};
        assert!(vals(&d, "a.b", LeafArrays::Traverse).is_empty());
    }

    #[test]
    fn set_and_unset() {
        let mut d = doc! {"a": 1};
        set_path(&mut d, "b.c.d", bson!(2)).unwrap();
        assert_eq!(d, doc! {"a": 1, "b": {"c": {"d": 2}}});
        let err = set_path(&mut d, "a.x", bson!(1)).unwrap_err();
        assert_eq!(err.code, ErrorCode::PathNotViable);
        assert_eq!(err.message, "Cannot create field 'x' in element {a: 1}");
        let mut d = doc! {"a": [1, 2]};
        set_path(&mut d, "a.4", bson!(9)).unwrap();
        assert_eq!(d, doc! {"a": [1, 2, null, null, 9]});
        let err = set_path(&mut d, "a.b", bson!(1)).unwrap_err();
        assert_eq!(err.message, "Cannot create field 'b' in element {a: [ 1, 2, null, null, 9 ]}");
        assert!(unset_path(&mut d, "a.0"));
        assert_eq!(d, doc! {"a": [null, 2, null, null, 9]});
        assert!(!unset_path(&mut d, "zz.y"));
        assert_eq!(get_path(&d, "a.1"), Some(&bson!(2)));
    }
}
