//! Find projections with mongod's (4.4+) semantics.
//!
//! A projection is an inclusion (`{a: 1}`: only the named fields, plus `_id` unless
//! `_id: 0`) or an exclusion (`{a: 0}`: everything else); mixing the two is an error except
//! for `_id`. Dotted paths reach into sub-documents and arrays of sub-documents. Included
//! fields keep the document's order; `$elemMatch` and positional (`a.$`) fields are computed
//! and appended after them, as mongod does. `$slice` trims arrays in either kind. Computed
//! fields (expressions, literals) and `$meta` are refused for now.

use super::matcher::{Expr, Matcher};
use super::util::{bad_value, located, number_as_f64, true_value, type_name};
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
    /// `_id` is not mentioned: included by an inclusion projection.
    include_id: bool,
    root: Node,
    /// The dotted path of a positional projection (without `.$`).
    positional: Option<Vec<String>>,
    /// A projection with computed fields (expressions, literals): run by the aggregation
    /// engine's `$project`.
    computed: Option<std::sync::Arc<crate::agg::stages::project::Projector>>,
    /// Top-level `{field: {$meta: name}}` entries, filled by the executor after projecting
    /// (it knows the RecordId and index key).
    pub metas: Vec<(String, Meta)>,
}

/// The `$meta` values a find projection can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    RecordId,
    IndexKey,
    /// Known to mongod but never available here (search, sort keys, ...): left out.
    Absent,
}

/// Splits `{field: {$meta: name}}` entries off a find projection; mongod's errors for a bad
/// name and for `textScore` without a `$text` query.
fn split_metas(spec: &Document) -> Result<(Document, Vec<(String, Meta)>)> {
    let mut rest = Document::new();
    let mut metas = Vec::new();
    for (k, v) in spec {
        let name = match v {
            Bson::Document(d) if d.len() == 1 => d.get("$meta"),
            _ => None,
        };
        let Some(name) = name else {
            rest.insert(k.clone(), v.clone());
            continue;
        };
        let Bson::String(name) = name else {
            return Err(located(17307, ErrorCode::BadValue, "$meta only supports string arguments"));
        };
        let meta = match name.as_str() {
            "recordId" | "showRecordId" => Meta::RecordId,
            "indexKey" => Meta::IndexKey,
            "textScore" => {
                return Err(located(
                    40218,
                    ErrorCode::BadValue,
                    "query requires text score metadata, but it is not available",
                ))
            }
            "searchScore"
            | "searchHighlights"
            | "searchScoreDetails"
            | "sortKey"
            | "vectorSearchScore"
            | "geoNearDistance"
            | "geoNearPoint"
            | "randVal"
            | "score"
            | "scoreDetails"
            | "searchSequenceToken" => Meta::Absent,
            other => {
                return Err(located(
                    17308,
                    ErrorCode::BadValue,
                    format!("Unsupported argument to $meta: {other}"),
                ))
            }
        };
        metas.push((k.clone(), meta));
    }
    Ok((rest, metas))
}

impl Projection {
    /// Parses without the query (a positional projection is then not checked against it).
    pub fn parse(spec: &Document) -> Result<Projection> {
        Self::parse_inner(spec, None)
    }

    /// Parses with the query filter (`None`: the command has none), which a positional
    /// projection (`a.$`) must refer to (mongod's 31277 / 51050 checks).
    pub fn parse_with_query(spec: &Document, query: Option<&Document>) -> Result<Projection> {
        Self::parse_inner(spec, Some(query))
    }

    fn parse_inner(spec: &Document, query: Option<Option<&Document>>) -> Result<Projection> {
        let (spec, metas) = split_metas(spec)?;
        let mut p = Self::parse_fields(&spec, query)?;
        p.metas = metas;
        Ok(p)
    }

    fn parse_fields(spec: &Document, query: Option<Option<&Document>>) -> Result<Projection> {
        if has_computed(spec) && !has_find_operator(spec) {
            let p =
                crate::agg::stages::project::project_from(spec, &mut crate::agg::expr::Parser::default())?;
            return Ok(Projection {
                inclusion: p.mode == crate::agg::stages::project::Mode::Inclusion,
                include_id: true,
                root: Node::default(),
                positional: None,
                computed: Some(std::sync::Arc::new(p)),
                metas: Vec::new(),
            });
        }
        let mut flat = Vec::new();
        flatten(spec, "", &mut flat)?;
        let mut root = Node::default();
        let mut kind: Option<bool> = None; // Some(true) = inclusion
        let mut id_specified = false;
        let mut id_included = false;
        let mut id_excluded = false;
        let mut positional: Option<Vec<String>> = None;
        let mut has_elem_match = false;
        let mut has_slice = false;
        for Flat { path, local, item, raw } in flat {
            id_specified |= path == "_id" || path.starts_with("_id.");
            let is_id = path == "_id";
            match &item {
                Item::Include if is_id => id_included = true,
                Item::Exclude if is_id => id_excluded = true,
                Item::Include | Item::Positional => {
                    if kind == Some(false) {
                        return Err(located(
                            31253,
                            ErrorCode::BadValue,
                            format!("Cannot do inclusion on field {local} in exclusion projection"),
                        ));
                    }
                    kind = Some(true);
                }
                Item::Exclude => {
                    if kind == Some(true) {
                        return Err(located(
                            31254,
                            ErrorCode::BadValue,
                            format!("Cannot do exclusion on field {local} in inclusion projection"),
                        ));
                    }
                    kind = Some(false);
                }
                Item::ElemMatch(_) => {
                    if positional.is_some() {
                        return Err(located(
                            31255,
                            ErrorCode::BadValue,
                            "Cannot specify positional operator and $elemMatch.",
                        ));
                    }
                    has_elem_match = true;
                }
                Item::Slice { .. } => has_slice = true,
                Item::Sub(_) => {}
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
                if has_elem_match {
                    return Err(located(
                        31256,
                        ErrorCode::BadValue,
                        "Cannot specify positional operator and $elemMatch.",
                    ));
                }
                if let Some(q) = query {
                    let Some(q) = q else {
                        return Err(located(
                            51050,
                            ErrorCode::BadValue,
                            "Projections with a positional operator require a matcher",
                        ));
                    };
                    let first = parts.first().map(String::as_str).unwrap_or("");
                    if !query_mentions(q, first) {
                        return Err(located(
                            31277,
                            ErrorCode::BadValue,
                            format!("Positional projection '{raw}' does not match the query document."),
                        ));
                    }
                }
                positional = Some(parts.clone());
            }
            insert(&mut root, &path, &parts, item)?;
        }
        // mongod's rules for projections without a plain inclusion or exclusion.
        let inclusion = kind.unwrap_or(if has_slice { id_included } else { has_elem_match || id_included });
        let _ = id_excluded;
        Ok(Projection {
            inclusion,
            include_id: !id_specified,
            root,
            positional,
            computed: None,
            metas: Vec::new(),
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
        if let Some(p) = &self.computed {
            return p.apply(doc, &[], bson::DateTime::now());
        }
        let mut out = Document::new();
        let mut deferred: Vec<&str> = Vec::new();
        for (k, v) in doc {
            let item = self.root.get(k);
            if k == "_id" && item.is_none() {
                if self.include_id || !self.inclusion {
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
                    let index = match m.expr() {
                        Expr::Path { pred, .. } => pred.inner_index(v),
                        _ => None,
                    };
                    if let (Bson::Array(a), Some(i)) = (v, index) {
                        if let Some(e) = a.get(i) {
                            out.insert(k.clone(), Bson::Array(vec![e.clone()]));
                        }
                    }
                }
                _ => {
                    let Some(mut v) = project_field(Some(item), v, true) else {
                        continue;
                    };
                    let rest = self.positional.as_deref().and_then(|p| p.get(1..)).unwrap_or(&[]);
                    apply_positional(&mut v, rest, position)?;
                    out.insert(k.clone(), v);
                }
            }
        }
        Ok(out)
    }
}

/// Whether a specification has a computed field (a literal or an expression) anywhere.
fn has_computed(spec: &Document) -> bool {
    spec.iter().any(|(_, v)| match v {
        Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => false,
        Bson::Document(d) => match d.keys().next() {
            Some(k) if k.starts_with('$') => !matches!(k.as_str(), "$slice" | "$elemMatch" | "$meta"),
            Some(_) => has_computed(d),
            None => false,
        },
        _ => true,
    })
}

/// Whether a specification uses find-only operators ($slice, $elemMatch, $meta, `a.$`), which
/// the expression path does not handle.
fn has_find_operator(spec: &Document) -> bool {
    spec.iter().any(|(k, v)| {
        k.ends_with(".$")
            || match v {
                Bson::Document(d) => match d.keys().next() {
                    Some(op) if op.starts_with('$') => {
                        matches!(op.as_str(), "$slice" | "$elemMatch" | "$meta")
                    }
                    Some(_) => has_find_operator(d),
                    None => false,
                },
                _ => false,
            }
    })
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

/// One entry of a flattened spec: its full dotted path (without a trailing `.$`), the name
/// it was written under (mongod's messages use it), and the key as written.
struct Flat {
    path: String,
    local: String,
    item: Item,
    raw: String,
}

fn is_number_or_bool(v: &Bson) -> bool {
    matches!(v, Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_))
}

/// Turns the spec into entries in spec order; `{a: {b: 1}}` is `a.b`.
fn flatten(spec: &Document, prefix: &str, out: &mut Vec<Flat>) -> Result<()> {
    for (k, v) in spec {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        check_path(&path, prefix.is_empty())?;
        let flat = |path: String, item: Item| Flat { path, local: k.clone(), item, raw: k.clone() };
        if let Some(base) = path.strip_suffix(".$") {
            if matches!(v, Bson::Document(_)) {
                return Err(located(
                    31271,
                    ErrorCode::BadValue,
                    "positional projection cannot be used with an expression or sub object",
                ));
            }
            if !is_number_or_bool(v) {
                return Err(located(
                    31308,
                    ErrorCode::BadValue,
                    "positional projection cannot be used with a literal",
                ));
            }
            if true_value(v) {
                out.push(flat(base.to_string(), Item::Positional));
            } else {
                // An excluded `a.$` is an exclusion of a field named "$", refused by FieldPath.
                return Err(located(
                    16410,
                    ErrorCode::BadValue,
                    "FieldPath field names may not start with '$'. Consider using $getField or \
                     $setField.",
                ));
            }
            continue;
        }
        let item = match v {
            _ if is_number_or_bool(v) => {
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
                        format!(
                            "An empty sub-projection is not a valid value. Found empty object at \
                             path {path}"
                        ),
                    ))
                }
                Some("$slice") if d.len() == 1 => parse_slice(d.get("$slice").unwrap_or(&Bson::Null))?,
                Some("$elemMatch") if d.len() == 1 => {
                    let arg = d.get("$elemMatch").unwrap_or(&Bson::Null);
                    let Bson::Document(_) = arg else {
                        return Err(located(
                            31274,
                            ErrorCode::BadValue,
                            format!(
                                "elemMatch: Invalid argument, object required, but got {}",
                                type_name(arg)
                            ),
                        ));
                    };
                    if path.contains('.') {
                        return Err(located(
                            31275,
                            ErrorCode::BadValue,
                            "Cannot use $elemMatch projection on a nested field.",
                        ));
                    }
                    // Evaluated as mongod does: the query {field: {$elemMatch: arg}}.
                    let mut q = Document::new();
                    q.insert(path.clone(), Bson::Document(d.clone()));
                    Item::ElemMatch(Matcher::parse(&q)?)
                }
                Some("$meta") if d.len() == 1 => {
                    return Err(located(
                        31252,
                        ErrorCode::BadValue,
                        format!("$meta is only supported on top-level fields (field '{path}')"),
                    ))
                }
                Some(op) if d.len() == 1 && op.starts_with('$') => {
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
        out.push(flat(path, item));
    }
    Ok(())
}

/// Whether the query has a condition whose path starts with `field` (what a positional
/// projection needs), looking through `$and`/`$or`/`$nor`.
fn query_mentions(q: &Document, field: &str) -> bool {
    q.iter().any(|(k, v)| match k.as_str() {
        "$and" | "$or" | "$nor" => match v {
            Bson::Array(items) => {
                items.iter().any(|i| matches!(i, Bson::Document(d) if query_mentions(d, field)))
            }
            _ => false,
        },
        _ if k.starts_with('$') => false,
        _ => k.split('.').next() == Some(field),
    })
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
            return Err(located(16410, ErrorCode::BadValue, "FieldPath field names may not start with '$'."));
        }
    }
    Ok(())
}

/// A `$slice` number as mongod reads it (`numberInt()`: truncated to an int32).
fn slice_number(v: &Bson) -> Option<i64> {
    let d = number_as_f64(v)?;
    if d.is_nan() {
        return Some(0);
    }
    Some(d.trunc().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i64)
}

fn parse_slice(arg: &Bson) -> Result<Item> {
    match arg {
        Bson::Array(a) => {
            let (Some(skip), Some(limit), 2) = (a.first(), a.get(1), a.len()) else {
                return Err(located(
                    31272,
                    ErrorCode::BadValue,
                    "$slice array argument should be of form [skip, limit]",
                ));
            };
            let Some(skip) = slice_number(skip) else {
                return Err(located(
                    31257,
                    ErrorCode::BadValue,
                    format!("$slice expects the skip argument to be a number, got {}", type_name(skip)),
                ));
            };
            let Some(limit_n) = slice_number(limit) else {
                return Err(located(
                    31258,
                    ErrorCode::BadValue,
                    format!("$slice expects the limit argument to be a number, got {}", type_name(limit)),
                ));
            };
            if limit_n <= 0 {
                return Err(located(
                    31259,
                    ErrorCode::BadValue,
                    format!("$slice limit must be positive, got {limit_n}"),
                ));
            }
            Ok(Item::Slice { skip: Some(skip), limit: limit_n })
        }
        other => match slice_number(other) {
            Some(limit) => Ok(Item::Slice { skip: None, limit }),
            None => Err(located(
                31273,
                ErrorCode::BadValue,
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
                return Err(located(31250, ErrorCode::BadValue, format!("Path collision at {full}")));
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
        assert_eq!(p(doc! {"c": 1, "a": 1}, d.clone()), doc! {"_id": 1, "a": 1, "c": 3});
        assert_eq!(p(doc! {"c": 1, "_id": 0}, d.clone()), doc! {"c": 3});
        assert_eq!(p(doc! {"_id": 1}, d.clone()), doc! {"_id": 1});
        assert_eq!(p(doc! {"a": true, "b": 5}, d.clone()), doc! {"_id": 1, "a": 1, "b": 2});
        assert_eq!(p(doc! {"zz": 1}, d.clone()), doc! {"_id": 1});
        assert_eq!(p(doc! {}, d.clone()), d);
    }

    #[test]
    fn exclusion() {
        let d = doc! {"_id": 1, "a": 1, "b": 2, "c": 3};
        assert_eq!(p(doc! {"b": 0}, d.clone()), doc! {"_id": 1, "a": 1, "c": 3});
        assert_eq!(p(doc! {"_id": 0}, d.clone()), doc! {"a": 1, "b": 2, "c": 3});
        assert_eq!(p(doc! {"b": false, "_id": 1}, d.clone()), doc! {"_id": 1, "a": 1, "c": 3});
    }

    #[test]
    fn dotted_paths() {
        let d = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "x": [{"y": 1, "z": 2}, 5, {"z": 3}, [{"y": 4}]]};
        assert_eq!(p(doc! {"a.b": 1}, d.clone()), doc! {"_id": 1, "a": {"b": 1}});
        assert_eq!(p(doc! {"a": {"c": 1}}, d.clone()), doc! {"_id": 1, "a": {"c": 2}});
        assert_eq!(p(doc! {"x.y": 1, "_id": 0}, d.clone()), doc! {"x": [{"y": 1}, {}, [{"y": 4}]]});
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
        assert_eq!(p(doc! {"a": {"$slice": 2}}, d.clone()), doc! {"_id": 1, "a": [1, 2], "b": 1});
        assert_eq!(p(doc! {"a": {"$slice": -2}}, d.clone()), doc! {"_id": 1, "a": [4, 5], "b": 1});
        assert_eq!(p(doc! {"a": {"$slice": [1, 2]}}, d.clone()), doc! {"_id": 1, "a": [2, 3], "b": 1});
        assert_eq!(p(doc! {"a": {"$slice": [-2, 5]}}, d.clone()), doc! {"_id": 1, "a": [4, 5], "b": 1});
        assert_eq!(p(doc! {"a": {"$slice": [-9, 2]}}, d.clone()), doc! {"_id": 1, "a": [1, 2], "b": 1});
        assert_eq!(p(doc! {"a": {"$slice": [9, 2]}}, d.clone()), doc! {"_id": 1, "a": [], "b": 1});
        assert_eq!(p(doc! {"a": {"$slice": 1}, "_id": 0, "b": 1}, d.clone()), doc! {"a": [1], "b": 1});
        assert_eq!(p(doc! {"b": {"$slice": 1}}, d.clone()), d);
        assert_eq!(
            perr(doc! {"a": {"$slice": [1]}}).1,
            "$slice array argument should be of form [skip, limit]"
        );
        assert_eq!(perr(doc! {"a": {"$slice": [1, 0]}}).1, "$slice limit must be positive, got 0");
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
        let spec = doc! {"games": {"$elemMatch": {"score": {"$gt": 5}}}, "joined": 1, "lastLogin": 1};
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
        assert_eq!(proj.apply_with_position(&d, pos).unwrap(), doc! {"_id": 1, "grades": [87]});
        let e = proj.apply_with_position(&d, None).unwrap_err();
        assert!(e.message.contains("positional operator '.$' couldn't find a matching element"));
        let d = doc! {"_id": 1, "a": [{"b": 1, "c": 1}, {"b": 2, "c": 2}]};
        let proj = Projection::parse(&doc! {"a.b.$": 1}).unwrap();
        assert_eq!(proj.apply_with_position(&d, Some(1)).unwrap(), doc! {"_id": 1, "a": [{"b": 2}]});
        assert_eq!(perr(doc! {"a.$.b": 1}).0, ErrorCode::Location31394);
        assert_eq!(perr(doc! {"a.$": 1, "b.$": 1}).0, ErrorCode::Location31276);
    }

    #[test]
    fn errors() {
        assert_eq!(
            perr(doc! {"a": 1, "b": 0}),
            (ErrorCode::Location31254, "Cannot do exclusion on field b in inclusion projection".into())
        );
        assert_eq!(
            perr(doc! {"a": 0, "b": 1}),
            (ErrorCode::Location31253, "Cannot do inclusion on field b in exclusion projection".into())
        );
        assert_eq!(
            perr(doc! {"a": 1, "a.b": 1}),
            (ErrorCode::Location31249, "Path collision at a.b remaining portion b".into())
        );
        assert_eq!(perr(doc! {"a.b": 1, "a": 1}), (ErrorCode::Location31250, "Path collision at a".into()));
        let p = Projection::parse(&doc! {"a": "x", "s": {"$add": ["$n", 1]}}).unwrap();
        assert_eq!(p.apply(&doc! {"_id": 1, "n": 2, "z": 0}).unwrap(), doc! {"_id": 1, "a": "x", "s": 3});
        assert!(perr(doc! {"a": {"$slice": 1}, "b": {"$add": [1, 2]}}).1.contains("not supported"));
        assert_eq!(perr(doc! {"$a": 1}).0, ErrorCode::Location16410);
        // _id may be excluded from an inclusion projection.
        assert!(Projection::parse(&doc! {"a": 1, "_id": 0}).is_ok());
    }

    #[test]
    fn mongod_type_rules_and_messages() {
        // Messages name the field as written in a nested spec.
        assert_eq!(
            perr(doc! {"a": 1, "b": {"c": 0}}).1,
            "Cannot do exclusion on field c in inclusion projection"
        );
        // $slice alone is an exclusion; with {_id: 1} an inclusion; $elemMatch alone inclusion.
        let d = doc! {"_id": 1, "a": [1, 2, 3], "b": 2};
        assert_eq!(p(doc! {"a": {"$slice": 1}, "_id": 1}, d.clone()), doc! {"_id": 1, "a": [1]});
        assert_eq!(p(doc! {"a": {"$elemMatch": {"$gt": 1}}}, d.clone()), doc! {"_id": 1, "a": [2]});
        assert_eq!(
            p(doc! {"a": {"$elemMatch": {"$gt": 1}}, "b": {"$slice": 1}}, d.clone()),
            doc! {"_id": 1, "b": 2, "a": [2]}
        );
        // `_id.x` inclusion does not include the whole _id.
        let d = doc! {"_id": {"x": 1, "y": 2}, "a": 1};
        assert_eq!(p(doc! {"_id.x": 1, "a": 1}, d), doc! {"_id": {"x": 1}, "a": 1});
    }

    #[test]
    fn positional_needs_the_query() {
        let spec = doc! {"a.$": 1};
        assert!(Projection::parse_with_query(&spec, Some(&doc! {"a.b": 1})).is_ok());
        assert!(Projection::parse_with_query(&spec, Some(&doc! {"$and": [{"a": 1}]})).is_ok());
        let e = Projection::parse_with_query(&spec, Some(&doc! {"b": 1})).unwrap_err();
        assert_eq!(e.message, "Positional projection 'a.$' does not match the query document.");
        assert!(Projection::parse_with_query(&spec, None).is_err());
        assert!(Projection::parse(&spec).is_ok());
        assert_eq!(perr(doc! {"a.$": {"$slice": 1}}).0, ErrorCode::Location31271);
        assert_eq!(perr(doc! {"a.$": "x"}).0, ErrorCode::Location31308);
    }
}
