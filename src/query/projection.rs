//! Find projections with mongod's (4.4+) semantics.
//!
//! A projection is an inclusion (`{a: 1}`: only the named fields, plus `_id` unless
//! `_id: 0`) or an exclusion (`{a: 0}`: everything else); mixing the two is an error except
//! for `_id`. Dotted paths reach into sub-documents and arrays of sub-documents. Included
//! fields keep the document's order; `$elemMatch` and positional (`a.$`) fields are computed
//! and appended after them, as mongod does. `$slice` trims arrays in either kind. Computed
//! fields (expressions, literals) and `$meta` are refused for now.

use super::matcher::Matcher;
use super::util::{bad_value, located, number_as_f64, true_value};
use crate::error::{ErrorCode, Result};
use bson::{Bson, Document};

#[derive(Clone, Debug)]
enum Item {
    Include,
    Exclude,
    Sub(Node),
    Slice {
        skip: Option<i64>,
        limit: i64,
    },
    ElemMatch(Matcher),
    /// `path.$`: stored at `path`.
    Positional,
}

#[derive(Clone, Debug, Default)]
struct Node {
    fields: Vec<(String, Item)>,
}

impl Node {
    fn get(&self, k: &str) -> Option<&Item> {
        self.fields.iter().find(|(n, _)| n == k).map(|(_, i)| i)
    }

    fn has_positional(&self) -> bool {
        self.fields.iter().any(|(_, i)| match i {
            Item::Positional => true,
            Item::Sub(n) => n.has_positional(),
            _ => false,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Projection {
    inclusion: bool,
    include_id: bool,
    root: Node,
    /// The dotted path of a positional projection (without `.$`).
    positional: Option<Vec<String>>,
}

impl Projection {
    pub fn parse(spec: &Document) -> Result<Projection> {
        let mut flat = Vec::new();
        flatten(spec, "", &mut flat)?;
        let mut root = Node::default();
        let mut kind: Option<bool> = None; // Some(true) = inclusion
        let mut include_id = true;
        let mut id_explicitly_included = false;
        let mut positional: Option<Vec<String>> = None;
        let mut has_elem_match = false;
        for (path, item) in flat {
            let is_id = path == "_id";
            match &item {
                Item::Include if is_id => id_explicitly_included = true,
                Item::Exclude if is_id => include_id = false,
                Item::Include | Item::Positional => {
                    if kind == Some(false) {
                        return Err(located(
                            31253,
                            ErrorCode::BadValue,
                            format!("Cannot do inclusion on field {path} in exclusion projection"),
                        ));
                    }
                    kind = Some(true);
                }
                Item::Exclude => {
                    if kind == Some(true) {
                        return Err(located(
                            31254,
                            ErrorCode::BadValue,
                            format!("Cannot do exclusion on field {path} in inclusion projection"),
                        ));
                    }
                    kind = Some(false);
                }
                Item::ElemMatch(_) => has_elem_match = true,
                Item::Slice { .. } | Item::Sub(_) => {}
            }
            let parts: Vec<String> = path.split('.').map(str::to_string).collect();
            if matches!(item, Item::Positional) {
                if positional.is_some() {
                    return Err(located(
                        31276,
                        ErrorCode::BadValue,
                        "Cannot specify more than one positional projection per query.",
                    ));
                }
                positional = Some(parts.clone());
            }
            insert(&mut root, &path, &parts, item)?;
        }
        if positional.is_some() && has_elem_match {
            return Err(bad_value(
                "Cannot specify positional operator and $elemMatch.",
            ));
        }
        let inclusion =
            kind.unwrap_or(has_elem_match || positional.is_some() || id_explicitly_included);
        Ok(Projection {
            inclusion,
            include_id,
            root,
            positional,
        })
    }

    pub fn is_inclusion(&self) -> bool {
        self.inclusion
    }

    /// Whether `apply_with_position` needs the matched array index (a `field.$` projection).
    pub fn needs_position(&self) -> bool {
        self.positional.is_some()
    }

    pub fn apply(&self, doc: &Document) -> Result<Document> {
        self.apply_with_position(doc, None)
    }

    /// Projects a document; `position` is the array index the query matched through
    /// (`Matcher::matches_with_details`), used by a positional projection.
    pub fn apply_with_position(&self, doc: &Document, position: Option<usize>) -> Result<Document> {
        let mut out = Document::new();
        let mut deferred: Vec<&str> = Vec::new();
        for (k, v) in doc {
            let item = self.root.get(k);
            if k == "_id"
                && !matches!(
                    item,
                    Some(Item::Sub(_) | Item::Slice { .. } | Item::ElemMatch(_))
                )
            {
                if self.include_id {
                    out.insert(k.clone(), v.clone());
                }
                continue;
            }
            match item {
                Some(Item::ElemMatch(_)) => deferred.push(k),
                Some(Item::Sub(n)) if self.inclusion && n.has_positional() => deferred.push(k),
                Some(Item::Positional) => deferred.push(k),
                _ => {
                    if let Some(v) = project_field(item, v, self.inclusion) {
                        out.insert(k.clone(), v);
                    }
                }
            }
        }
        // Computed fields go last, in projection order.
        for (k, item) in &self.root.fields {
            if !deferred.contains(&k.as_str()) {
                continue;
            }
            let Some(v) = doc.get(k) else { continue };
            match item {
                Item::ElemMatch(m) => {
                    if let Bson::Array(a) = v {
                        if let Some(e) = a.iter().find(|e| m.matches_value(e)) {
                            out.insert(k.clone(), Bson::Array(vec![e.clone()]));
                        }
                    }
                }
                _ => {
                    let Some(mut v) = project_field(Some(item), v, true) else {
                        continue;
                    };
                    let rest = self
                        .positional
                        .as_deref()
                        .and_then(|p| p.get(1..))
                        .unwrap_or(&[]);
                    apply_positional(&mut v, rest, position)?;
                    out.insert(k.clone(), v);
                }
            }
        }
        Ok(out)
    }
}

/// The projected value of one field, or `None` to leave it out.
fn project_field(item: Option<&Item>, v: &Bson, inclusion: bool) -> Option<Bson> {
    match item {
        None => (!inclusion).then(|| v.clone()),
        Some(Item::Include) | Some(Item::Positional) => Some(v.clone()),
        Some(Item::Exclude) => None,
        Some(Item::Slice { skip, limit }) => Some(slice(v, *skip, *limit)),
        Some(Item::ElemMatch(_)) => None,
        Some(Item::Sub(n)) => match v {
            Bson::Document(d) => Some(Bson::Document(project_doc(n, d, inclusion))),
            Bson::Array(a) => Some(Bson::Array(project_array(n, a, inclusion))),
            other => (!inclusion).then(|| other.clone()),
        },
    }
}

fn project_doc(node: &Node, d: &Document, inclusion: bool) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        if let Some(v) = project_field(node.get(k), v, inclusion) {
            out.insert(k.clone(), v);
        }
    }
    out
}

/// A sub-projection applied through an array: documents are projected, nested arrays
/// recursed into, other values kept only by exclusions.
fn project_array(node: &Node, a: &[Bson], inclusion: bool) -> Vec<Bson> {
    a.iter()
        .filter_map(|e| match e {
            Bson::Document(d) => Some(Bson::Document(project_doc(node, d, inclusion))),
            Bson::Array(inner) => Some(Bson::Array(project_array(node, inner, inclusion))),
            other => (!inclusion).then(|| other.clone()),
        })
        .collect()
}

/// Narrows the first array on the positional path to the matched element.
fn apply_positional(v: &mut Bson, rest: &[String], position: Option<usize>) -> Result<()> {
    match v {
        Bson::Array(a) => {
            let Some(e) = position.and_then(|i| a.get(i)).cloned() else {
                return Err(located(
                    51246,
                    ErrorCode::BadValue,
                    "positional operator '.$' couldn't find a matching element in the array",
                ));
            };
            *a = vec![e];
            Ok(())
        }
        Bson::Document(d) => match rest.split_first() {
            Some((first, tail)) => match d.get_mut(first) {
                Some(next) => apply_positional(next, tail, position),
                None => Ok(()),
            },
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn slice(v: &Bson, skip: Option<i64>, limit: i64) -> Bson {
    let Bson::Array(a) = v else { return v.clone() };
    let len = a.len() as i64;
    let (start, count) = match skip {
        None if limit >= 0 => (0, limit),
        None => ((len + limit).max(0), len),
        Some(s) if s >= 0 => (s.min(len), limit),
        Some(s) => ((len + s).max(0), limit),
    };
    let start = usize::try_from(start).unwrap_or(0);
    let count = usize::try_from(count.max(0)).unwrap_or(0);
    Bson::Array(a.iter().skip(start).take(count).cloned().collect())
}

/// Turns the spec into (dotted path, item) pairs in spec order.
fn flatten(spec: &Document, prefix: &str, out: &mut Vec<(String, Item)>) -> Result<()> {
    for (k, v) in spec {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        check_path(&path, prefix.is_empty())?;
        if let Some(base) = path.strip_suffix(".$") {
            if !true_value(v)
                || !matches!(
                    v,
                    Bson::Boolean(_)
                        | Bson::Int32(_)
                        | Bson::Int64(_)
                        | Bson::Double(_)
                        | Bson::Decimal128(_)
                )
            {
                return Err(bad_value(format!(
                    "Cannot exclude a positional projection: {path}"
                )));
            }
            out.push((base.to_string(), Item::Positional));
            continue;
        }
        let item = match v {
            Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
                if true_value(v) {
                    Item::Include
                } else {
                    Item::Exclude
                }
            }
            Bson::Document(d) => match d.keys().next().map(String::as_str) {
                None => {
                    return Err(located(
                        51270,
                        ErrorCode::BadValue,
                        format!("An empty sub-projection is not a valid value. Found empty object at path {path}"),
                    ))
                }
                Some("$slice") if d.len() == 1 => parse_slice(d.get("$slice").unwrap_or(&Bson::Null))?,
                Some("$elemMatch") if d.len() == 1 => {
                    if path.contains('.') {
                        return Err(bad_value("Cannot use $elemMatch projection on a nested field."));
                    }
                    match d.get("$elemMatch") {
                        Some(Bson::Document(f)) => Item::ElemMatch(Matcher::parse(f)?),
                        _ => return Err(bad_value("elemMatch: Invalid argument, object required.")),
                    }
                }
                Some("$meta") => {
                    return Err(bad_value(format!("$meta projections are not supported yet (field '{path}')")))
                }
                Some(op) if op.starts_with('$') => {
                    return Err(bad_value(format!(
                        "projection expressions are not supported yet (field '{path}')"
                    )))
                }
                Some(_) => {
                    flatten(d, &path, out)?;
                    continue;
                }
            },
            _ => {
                return Err(bad_value(format!(
                    "projection expressions are not supported yet (field '{path}')"
                )))
            }
        };
        out.push((path, item));
    }
    Ok(())
}

fn check_path(path: &str, top: bool) -> Result<()> {
    let parts: Vec<&str> = path.split('.').collect();
    let n = parts.len();
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            return Err(located(
                15998,
                ErrorCode::BadValue,
                "FieldPath field names may not be empty strings.",
            ));
        }
        if *p == "$" {
            if i + 1 != n {
                return Err(located(
                    31394,
                    ErrorCode::BadValue,
                    "As of 4.4, it's illegal to specify positional operator in the middle of a path. \
                     Positional projection may only be used at the end, for example: a.b.$. If the \
                     query previously used a form like a.b.$.d, remove the parts following the '$' \
                     and the results will be equivalent.",
                ));
            }
            if i == 0 {
                return Err(located(
                    16410,
                    ErrorCode::BadValue,
                    "FieldPath field names may not start with '$'.",
                ));
            }
            continue;
        }
        if p.starts_with('$') && (top || i > 0) {
            return Err(located(
                16410,
                ErrorCode::BadValue,
                "FieldPath field names may not start with '$'.",
            ));
        }
    }
    Ok(())
}

fn slice_number(v: &Bson) -> Option<i64> {
    let d = number_as_f64(v)?;
    if d.is_nan() {
        return Some(0);
    }
    // Truncated and clamped, as mongod's coercion to an integer does.
    Some(d.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

fn parse_slice(arg: &Bson) -> Result<Item> {
    match arg {
        Bson::Array(a) => {
            if a.len() != 2 {
                return Err(bad_value(format!(
                    "$slice array wrong size. Should be 2, was {}",
                    a.len()
                )));
            }
            let (Some(skip), Some(limit)) = (
                a.first().and_then(slice_number),
                a.get(1).and_then(slice_number),
            ) else {
                return Err(bad_value(
                    "$slice only supports numbers and [skip, limit] arrays",
                ));
            };
            if limit <= 0 {
                return Err(bad_value("$slice limit must be positive"));
            }
            Ok(Item::Slice {
                skip: Some(skip),
                limit,
            })
        }
        other => match slice_number(other) {
            Some(limit) => Ok(Item::Slice { skip: None, limit }),
            None => Err(bad_value(
                "$slice only supports numbers and [skip, limit] arrays",
            )),
        },
    }
}

/// Adds a path to the tree, refusing paths that overlap (`a` and `a.b`).
fn insert(root: &mut Node, full: &str, parts: &[String], item: Item) -> Result<()> {
    let mut node = root;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let pos = node.fields.iter().position(|(n, _)| n == p);
        if last {
            if pos.is_some() {
                return Err(located(
                    31250,
                    ErrorCode::BadValue,
                    format!("Path collision at {full}"),
                ));
            }
            node.fields.push((p.clone(), item));
            return Ok(());
        }
        let idx = match pos {
            Some(idx) => idx,
            None => {
                node.fields.push((p.clone(), Item::Sub(Node::default())));
                node.fields.len() - 1
            }
        };
        match node.fields.get_mut(idx) {
            Some((_, Item::Sub(n))) => node = n,
            _ => {
                let remaining = parts.get(i + 1..).map(|r| r.join(".")).unwrap_or_default();
                return Err(located(
                    31249,
                    ErrorCode::BadValue,
                    format!("Path collision at {full} remaining portion {remaining}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn p(spec: Document, d: Document) -> Document {
        Projection::parse(&spec).unwrap().apply(&d).unwrap()
    }

    fn perr(spec: Document) -> (ErrorCode, String) {
        let e = Projection::parse(&spec).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn inclusion_keeps_document_order_and_id() {
        let d = doc! {"_id": 1, "a": 1, "b": 2, "c": 3};
        assert_eq!(
            p(doc! {"c": 1, "a": 1}, d.clone()),
            doc! {"_id": 1, "a": 1, "c": 3}
        );
        assert_eq!(p(doc! {"c": 1, "_id": 0}, d.clone()), doc! {"c": 3});
        assert_eq!(p(doc! {"_id": 1}, d.clone()), doc! {"_id": 1});
        assert_eq!(
            p(doc! {"a": true, "b": 5}, d.clone()),
            doc! {"_id": 1, "a": 1, "b": 2}
        );
        assert_eq!(p(doc! {"zz": 1}, d.clone()), doc! {"_id": 1});
        assert_eq!(p(doc! {}, d.clone()), d);
    }

    #[test]
    fn exclusion() {
        let d = doc! {"_id": 1, "a": 1, "b": 2, "c": 3};
        assert_eq!(p(doc! {"b": 0}, d.clone()), doc! {"_id": 1, "a": 1, "c": 3});
        assert_eq!(p(doc! {"_id": 0}, d.clone()), doc! {"a": 1, "b": 2, "c": 3});
        assert_eq!(
            p(doc! {"b": false, "_id": 1}, d.clone()),
            doc! {"_id": 1, "a": 1, "c": 3}
        );
    }

    #[test]
    fn dotted_paths() {
        let d = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "x": [{"y": 1, "z": 2}, 5, {"z": 3}, [{"y": 4}]]};
        assert_eq!(
            p(doc! {"a.b": 1}, d.clone()),
            doc! {"_id": 1, "a": {"b": 1}}
        );
        assert_eq!(
            p(doc! {"a": {"c": 1}}, d.clone()),
            doc! {"_id": 1, "a": {"c": 2}}
        );
        assert_eq!(
            p(doc! {"x.y": 1, "_id": 0}, d.clone()),
            doc! {"x": [{"y": 1}, {}, [{"y": 4}]]}
        );
        assert_eq!(
            p(doc! {"x.y": 0, "a.c": 0}, d.clone()),
            doc! {"_id": 1, "a": {"b": 1}, "x": [{"z": 2}, 5, {"z": 3}, [{}]]}
        );
        // A scalar where a sub-document is expected: dropped by inclusions.
        assert_eq!(p(doc! {"a.b.c": 1}, d), doc! {"_id": 1, "a": {}});
    }

    #[test]
    fn slice_forms() {
        let d = doc! {"_id": 1, "a": [1, 2, 3, 4, 5], "b": 1};
        assert_eq!(
            p(doc! {"a": {"$slice": 2}}, d.clone()),
            doc! {"_id": 1, "a": [1, 2], "b": 1}
        );
        assert_eq!(
            p(doc! {"a": {"$slice": -2}}, d.clone()),
            doc! {"_id": 1, "a": [4, 5], "b": 1}
        );
        assert_eq!(
            p(doc! {"a": {"$slice": [1, 2]}}, d.clone()),
            doc! {"_id": 1, "a": [2, 3], "b": 1}
        );
        assert_eq!(
            p(doc! {"a": {"$slice": [-2, 5]}}, d.clone()),
            doc! {"_id": 1, "a": [4, 5], "b": 1}
        );
        assert_eq!(
            p(doc! {"a": {"$slice": [-9, 2]}}, d.clone()),
            doc! {"_id": 1, "a": [1, 2], "b": 1}
        );
        assert_eq!(
            p(doc! {"a": {"$slice": [9, 2]}}, d.clone()),
            doc! {"_id": 1, "a": [], "b": 1}
        );
        assert_eq!(
            p(doc! {"a": {"$slice": 1}, "_id": 0, "b": 1}, d.clone()),
            doc! {"a": [1], "b": 1}
        );
        assert_eq!(p(doc! {"b": {"$slice": 1}}, d.clone()), d);
        assert_eq!(
            perr(doc! {"a": {"$slice": [1]}}).1,
            "$slice array wrong size. Should be 2, was 1"
        );
        assert_eq!(
            perr(doc! {"a": {"$slice": [1, 0]}}).1,
            "$slice limit must be positive"
        );
        assert_eq!(
            perr(doc! {"a": {"$slice": "x"}}).1,
            "$slice only supports numbers and [skip, limit] arrays"
        );
    }

    #[test]
    fn elem_match_appended_last() {
        let d = doc! {
            "_id": 1, "games": [{"game": "abc", "score": 8}, {"game": "xyz", "score": 5}],
            "joined": 1, "lastLogin": 2
        };
        let spec =
            doc! {"games": {"$elemMatch": {"score": {"$gt": 5}}}, "joined": 1, "lastLogin": 1};
        assert_eq!(
            p(spec, d.clone()),
            doc! {"_id": 1, "joined": 1, "lastLogin": 2, "games": [{"game": "abc", "score": 8}]}
        );
        let spec = doc! {"games": {"$elemMatch": {"score": {"$gt": 50}}}};
        assert_eq!(p(spec, d), doc! {"_id": 1});
        assert_eq!(
            perr(doc! {"a.b": {"$elemMatch": {"x": 1}}}).1,
            "Cannot use $elemMatch projection on a nested field."
        );
    }

    #[test]
    fn positional() {
        let f = Matcher::parse(&doc! {"grades": {"$gte": 85}}).unwrap();
        let d = doc! {"_id": 1, "grades": [80, 87, 90], "x": 1};
        let (_, pos) = f.matches_with_details(&d);
        let proj = Projection::parse(&doc! {"grades.$": 1}).unwrap();
        assert!(proj.needs_position());
        assert_eq!(
            proj.apply_with_position(&d, pos).unwrap(),
            doc! {"_id": 1, "grades": [87]}
        );
        let e = proj.apply_with_position(&d, None).unwrap_err();
        assert!(e
            .message
            .contains("positional operator '.$' couldn't find a matching element"));
        let d = doc! {"_id": 1, "a": [{"b": 1, "c": 1}, {"b": 2, "c": 2}]};
        let proj = Projection::parse(&doc! {"a.b.$": 1}).unwrap();
        assert_eq!(
            proj.apply_with_position(&d, Some(1)).unwrap(),
            doc! {"_id": 1, "a": [{"b": 2}]}
        );
        assert_eq!(perr(doc! {"a.$.b": 1}).0, ErrorCode::BadValue);
        assert_eq!(perr(doc! {"a.$": 1, "b.$": 1}).0, ErrorCode::BadValue);
    }

    #[test]
    fn errors() {
        assert_eq!(
            perr(doc! {"a": 1, "b": 0}),
            (
                ErrorCode::Location31254,
                "Cannot do exclusion on field b in inclusion projection".into()
            )
        );
        assert_eq!(
            perr(doc! {"a": 0, "b": 1}),
            (
                ErrorCode::Location31253,
                "Cannot do inclusion on field b in exclusion projection".into()
            )
        );
        assert_eq!(
            perr(doc! {"a": 1, "a.b": 1}),
            (
                ErrorCode::Location31249,
                "Path collision at a.b remaining portion b".into()
            )
        );
        assert_eq!(
            perr(doc! {"a.b": 1, "a": 1}),
            (ErrorCode::Location31250, "Path collision at a".into())
        );
        assert!(perr(doc! {"a": "x"}).1.contains("not supported"));
        assert!(perr(doc! {"a": {"$add": [1, 2]}})
            .1
            .contains("not supported"));
        assert_eq!(perr(doc! {"$a": 1}).0, ErrorCode::Location16410);
        // _id may be excluded from an inclusion projection.
        assert!(Projection::parse(&doc! {"a": 1, "_id": 0}).is_ok());
    }
}
