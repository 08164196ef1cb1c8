//! The query matcher: a filter document parsed into an expression tree, evaluated against
//! documents with mongod's semantics.
//!
//! The parser only knows the shape of a filter (top-level `$` operators vs field conditions,
//! operator documents vs literal values); every operator is parsed by its family's module
//! (`ops_comparison`, `ops_logical`, `ops_element`, `ops_array`, `ops_eval`, `ops_bitwise`,
//! `ops_geo`),
//! which returns `None` for operators it does not own. Adding an operator means adding it to
//! one family file: a new `ElementPredicate` (per-value test) or `DocPredicate` (whole
//! document, like `$expr`).

use super::path::{self, LeafArrays};
use super::util::bad_value;
use super::{ops_array, ops_bitwise, ops_comparison, ops_element, ops_eval, ops_geo, ops_logical};
use crate::error::Result;
use bson::{Bson, Document};
use std::fmt;
use std::sync::Arc;

/// mongod refuses filters nested deeper than this.
pub const MAX_DEPTH: usize = 100;

/// A test applied to each value found at a path (mongod's `matchesSingleElement`).
pub trait ElementPredicate: fmt::Debug + Send + Sync {
    /// Whether arrays at the end of the path are looked into (see `path::LeafArrays`).
    fn leaf_arrays(&self) -> LeafArrays {
        LeafArrays::Traverse
    }
    /// `None` is a missing value.
    fn matches(&self, v: Option<&Bson>) -> bool;
    /// For predicates that look inside an array (`$elemMatch`): the index of the element
    /// that matched, reported for the positional `$` operator.
    fn inner_index(&self, _v: &Bson) -> Option<usize> {
        None
    }
}

/// A test of the whole document (`$expr`, `$where`, ...): the extension point for
/// path-less top-level operators.
pub trait DocPredicate: fmt::Debug + Send + Sync {
    fn matches(&self, doc: &Document) -> bool;
}

/// A parsed filter.
#[derive(Clone, Debug)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Nor(Vec<Expr>),
    Not(Box<Expr>),
    Const(bool),
    /// A predicate on the values at a path. An empty path (inside `$elemMatch` value form)
    /// applies the predicate to the value itself.
    Path {
        path: String,
        parts: Vec<String>,
        pred: Arc<dyn ElementPredicate>,
    },
    Doc(Arc<dyn DocPredicate>),
}

impl Expr {
    pub fn path(path: &str, pred: impl ElementPredicate + 'static) -> Expr {
        let parts = if path.is_empty() { Vec::new() } else { path.split('.').map(str::to_string).collect() };
        Expr::Path { path: path.to_string(), parts, pred: Arc::new(pred) }
    }

    pub fn negate(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    /// One expression for a list of conjuncts.
    pub fn and(mut v: Vec<Expr>) -> Expr {
        if v.len() == 1 {
            if let Some(e) = v.pop() {
                return e;
            }
        }
        Expr::And(v)
    }

    /// Evaluates against a document; `details` receives the positional array index.
    pub fn eval(&self, doc: &Document, details: Option<&mut Option<usize>>) -> bool {
        match self {
            Expr::And(children) => match details {
                Some(d) => children.iter().all(|c| c.eval(doc, Some(&mut *d))),
                None => children.iter().all(|c| c.eval(doc, None)),
            },
            // mongod does not record positions below $or / $nor / $not.
            Expr::Or(children) => children.iter().any(|c| c.eval(doc, None)),
            Expr::Nor(children) => !children.iter().any(|c| c.eval(doc, None)),
            Expr::Not(child) => !child.eval(doc, None),
            Expr::Const(b) => *b,
            Expr::Doc(p) => p.matches(doc),
            Expr::Path { parts, pred, .. } => {
                let mut found = false;
                let mut index = None;
                let want = details.is_some();
                path::visit(doc, parts, pred.leaf_arrays(), &mut |c| {
                    if !pred.matches(c.value) {
                        return false;
                    }
                    found = true;
                    if want {
                        index = c.array_index.or_else(|| c.value.and_then(|v| pred.inner_index(v)));
                    }
                    true
                });
                if let (true, Some(d), Some(i)) = (found, details, index) {
                    *d = Some(i);
                }
                found
            }
        }
    }

    /// Evaluates against one value with no path traversal (mongod's `matchesSingleElement`,
    /// used by `$elemMatch`'s value form and `$pull` conditions).
    pub fn eval_value(&self, v: Option<&Bson>) -> bool {
        match self {
            Expr::And(c) => c.iter().all(|e| e.eval_value(v)),
            Expr::Or(c) => c.iter().any(|e| e.eval_value(v)),
            Expr::Nor(c) => !c.iter().any(|e| e.eval_value(v)),
            Expr::Not(e) => !e.eval_value(v),
            Expr::Const(b) => *b,
            Expr::Doc(p) => matches!(v, Some(Bson::Document(d)) if p.matches(d)),
            Expr::Path { parts, pred, .. } => {
                if parts.is_empty() {
                    pred.matches(v)
                } else {
                    match v {
                        Some(Bson::Document(d)) => self.eval(d, None),
                        _ => false,
                    }
                }
            }
        }
    }
}

/// Parsing state passed to the operator families.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctx {
    pub depth: usize,
    /// Inside `$elemMatch`: document-level operators (`$where`, `$expr`...) are refused.
    pub sub_document: bool,
}

impl Ctx {
    pub fn deeper(self) -> Result<Ctx> {
        if self.depth >= MAX_DEPTH {
            return Err(bad_value(format!("exceeded maximum query nesting depth of {MAX_DEPTH}")));
        }
        Ok(Ctx { depth: self.depth + 1, ..self })
    }
}

/// A compiled query filter.
#[derive(Clone, Debug)]
pub struct Matcher {
    root: Expr,
}

impl Matcher {
    pub fn parse(filter: &Document) -> Result<Matcher> {
        Ok(Matcher { root: parse_filter(filter, Ctx::default())? })
    }

    /// A matcher around an already-built expression (for callers composing filters).
    pub fn from_expr(root: Expr) -> Matcher {
        Matcher { root }
    }

    pub fn expr(&self) -> &Expr {
        &self.root
    }

    pub fn matches(&self, doc: &Document) -> bool {
        self.root.eval(doc, None)
    }

    /// Whether the document matches, and the array index the match went through (for the
    /// positional `$` operator in projections and updates).
    pub fn matches_with_details(&self, doc: &Document) -> (bool, Option<usize>) {
        let mut index = None;
        let ok = self.root.eval(doc, Some(&mut index));
        (ok, if ok { index } else { None })
    }

    /// Matches one value as `$elemMatch` / `$pull` do: documents are matched as documents.
    pub fn matches_value(&self, v: &Bson) -> bool {
        self.root.eval_value(Some(v))
    }
}

/// Parses a filter document (top level, or a `$and`/`$or`/`$elemMatch` sub-filter).
pub fn parse_filter(filter: &Document, ctx: Ctx) -> Result<Expr> {
    let ctx = ctx.deeper()?;
    let mut out = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        if key.starts_with('$') {
            out.push(parse_top_level(key, value, ctx)?);
        } else {
            out.push(parse_field(key, value, ctx)?);
        }
    }
    Ok(Expr::and(out))
}

fn parse_top_level(op: &str, arg: &Bson, ctx: Ctx) -> Result<Expr> {
    if let Some(r) = ops_logical::parse_top_level(op, arg, ctx) {
        return r;
    }
    if let Some(r) = ops_eval::parse_top_level(op, arg, ctx) {
        return r;
    }
    let hint = if op == "$not" {
        ". If you are trying to negate an entire expression, use $nor."
    } else {
        ". If you have a field name that starts with a '$' symbol, consider using $getField or \
         $setField."
    };
    Err(bad_value(format!("unknown top level operator: {op}{hint}")))
}

/// `field: <value>`: an operator document, a regex, or a literal to compare with.
pub fn parse_field(path: &str, value: &Bson, ctx: Ctx) -> Result<Expr> {
    match value {
        Bson::Document(d) if is_operator_doc(d) => parse_operator_doc(path, d, ctx),
        Bson::RegularExpression(re) => ops_eval::regex_expr(path, &re.pattern, &re.options),
        _ => ops_comparison::eq_expr(path, value),
    }
}

/// Whether `{$...}` is a set of operators rather than a literal document: the first field
/// starts with `$` and the document is not a DBRef (`$ref` and `$id`).
pub fn is_operator_doc(d: &Document) -> bool {
    starts_with_dollar(d) && !(d.contains_key("$ref") && d.contains_key("$id"))
}

/// As `is_operator_doc`, where any of `$ref`/`$id`/`$db` makes a DBRef (`$elemMatch`).
pub fn is_operator_doc_loose(d: &Document) -> bool {
    starts_with_dollar(d) && !["$ref", "$id", "$db"].iter().any(|k| d.contains_key(*k))
}

fn starts_with_dollar(d: &Document) -> bool {
    d.keys().next().is_some_and(|k| k.starts_with('$'))
}

/// The field operators mongod knows (its path-accepting keywords).
pub fn is_field_operator(op: &str) -> bool {
    matches!(
        op,
        "$eq"
            | "$ne"
            | "$gt"
            | "$gte"
            | "$lt"
            | "$lte"
            | "$in"
            | "$nin"
            | "$all"
            | "$elemMatch"
            | "$size"
            | "$exists"
            | "$type"
            | "$mod"
            | "$regex"
            | "$options"
            | "$bitsAllSet"
            | "$bitsAllClear"
            | "$bitsAnySet"
            | "$bitsAnyClear"
            | "$geoWithin"
            | "$within"
            | "$geoIntersects"
            | "$near"
            | "$nearSphere"
            | "$geoNear"
    )
}

/// The operators of `{path: {$op: arg, ...}}`; each applies to the path independently.
pub fn parse_operator_doc(path: &str, ops: &Document, ctx: Ctx) -> Result<Expr> {
    let ctx = ctx.deeper()?;
    let mut out = Vec::with_capacity(ops.len());
    let mut regex_done = false;
    for (op, arg) in ops {
        if op == "$regex" || op == "$options" {
            if !regex_done {
                regex_done = true;
                out.push(ops_eval::parse_regex_pair(path, ops)?);
            }
            continue;
        }
        out.push(parse_operator(path, op, arg, ctx)?);
    }
    Ok(Expr::and(out))
}

/// One field operator, dispatched to its family.
pub fn parse_operator(path: &str, op: &str, arg: &Bson, ctx: Ctx) -> Result<Expr> {
    type Family = fn(&str, &str, &Bson, Ctx) -> Option<Result<Expr>>;
    const FAMILIES: &[Family] = &[
        ops_comparison::parse_op,
        ops_logical::parse_op,
        ops_element::parse_op,
        ops_array::parse_op,
        ops_eval::parse_op,
        ops_bitwise::parse_op,
        ops_geo::parse_op,
    ];
    for family in FAMILIES {
        if let Some(r) = family(path, op, arg, ctx) {
            return r;
        }
    }
    if op == "$where" {
        return Err(bad_value("$where cannot be applied to a field"));
    }
    Err(bad_value(format!("unknown operator: {op}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use bson::doc;

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    fn err(filter: Document) -> (ErrorCode, String) {
        let e = Matcher::parse(&filter).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(m(doc! {}, doc! {"a": 1}));
    }

    #[test]
    fn equality_and_arrays() {
        assert!(m(doc! {"a": 1}, doc! {"a": 1}));
        assert!(m(doc! {"a": 1}, doc! {"a": [3, 1]}));
        assert!(m(doc! {"a": [1, 2]}, doc! {"a": [1, 2]}));
        assert!(m(doc! {"a": [1, 2]}, doc! {"a": [[1, 2], 3]}));
        assert!(!m(doc! {"a": [1, 2]}, doc! {"a": [2, 1]}));
        assert!(!m(doc! {"a": 1}, doc! {"a": [[1]]}));
        assert!(m(doc! {"a.b": 2}, doc! {"a": [{"b": 1}, {"b": 2}]}));
        assert!(m(doc! {"a.b": 2}, doc! {"a": [{"b": [1, 2]}]}));
        // Sub-documents compare whole and in order.
        assert!(m(doc! {"a": {"b": 1, "c": 2}}, doc! {"a": {"b": 1, "c": 2}}));
        assert!(!m(doc! {"a": {"b": 1, "c": 2}}, doc! {"a": {"c": 2, "b": 1}}));
    }

    #[test]
    fn numeric_cross_type_equality() {
        assert!(m(doc! {"a": 1}, doc! {"a": 1.0}));
        assert!(m(doc! {"a": 1i64}, doc! {"a": 1}));
        assert!(m(doc! {"a": {"b": 1}}, doc! {"a": {"b": 1.0}}));
        assert!(!m(doc! {"a": 1}, doc! {"a": "1"}));
    }

    #[test]
    fn null_matches_missing() {
        assert!(m(doc! {"a": null}, doc! {"b": 1}));
        assert!(m(doc! {"a": null}, doc! {"a": null}));
        assert!(!m(doc! {"a": null}, doc! {"a": 0}));
        assert!(m(doc! {"a": null}, doc! {"a": [1, null]}));
        assert!(!m(doc! {"a": null}, doc! {"a": []}));
        assert!(m(doc! {"a.b": null}, doc! {"a": [{"b": 1}, {}]}));
        assert!(!m(doc! {"a.b": null}, doc! {"a": [{"b": 1}]}));
        assert!(m(doc! {"a.b": null}, doc! {"a": 5}));
        assert!(!m(doc! {"a.b": null}, doc! {"a": [1, 2]}));
        assert!(m(doc! {"a": {"$ne": null}}, doc! {"a": 1}));
        assert!(!m(doc! {"a": {"$ne": null}}, doc! {"b": 1}));
    }

    #[test]
    fn positional_details() {
        let f = Matcher::parse(&doc! {"a": {"$gt": 2}}).unwrap();
        assert_eq!(f.matches_with_details(&doc! {"a": [1, 5, 7]}), (true, Some(1)));
        let f = Matcher::parse(&doc! {"a.b": 2}).unwrap();
        assert_eq!(f.matches_with_details(&doc! {"a": [{"b": 1}, {"b": [0, 2]}]}), (true, Some(1)));
        let f = Matcher::parse(&doc! {"a": {"$elemMatch": {"b": 2}}}).unwrap();
        assert_eq!(f.matches_with_details(&doc! {"a": [{"b": 1}, {"b": 2}]}), (true, Some(1)));
        let f = Matcher::parse(&doc! {"x": 1, "a": 3}).unwrap();
        assert_eq!(f.matches_with_details(&doc! {"x": 1, "a": [1, 2, 3]}), (true, Some(2)));
        assert_eq!(f.matches_with_details(&doc! {"x": 2, "a": [1, 2, 3]}), (false, None));
        let f = Matcher::parse(&doc! {"a": 3}).unwrap();
        assert_eq!(f.matches_with_details(&doc! {"a": 3}), (true, None));
    }

    #[test]
    fn parse_errors() {
        let (c, msg) = err(doc! {"$foo": 1});
        assert_eq!(c, ErrorCode::BadValue);
        assert!(msg.starts_with("unknown top level operator: $foo"));
        assert_eq!(err(doc! {"a": {"$foo": 1}}), (ErrorCode::BadValue, "unknown operator: $foo".into()));
        assert_eq!(err(doc! {"a": {"$gt": 1, "b": 1}}), (ErrorCode::BadValue, "unknown operator: b".into()));
        assert_eq!(err(doc! {"a": {"$near": [0, 0]}}).0, ErrorCode::Location5626500);
    }

    #[test]
    fn literal_docs_and_dbrefs() {
        assert!(m(doc! {"a": {"b": {"$gt": 1}}}, doc! {"a": {"b": {"$gt": 1}}}));
        assert!(m(doc! {"a": {"$ref": "c", "$id": 1}}, doc! {"a": {"$ref": "c", "$id": 1}}));
        // Without both $ref and $id it is an operator document.
        assert!(Matcher::parse(&doc! {"a": {"$id": 1}}).is_err());
    }

    #[test]
    fn depth_limit() {
        let mut f = doc! {"a": 1};
        for _ in 0..150 {
            f = doc! {"$and": [f]};
        }
        assert_eq!(err(f).0, ErrorCode::BadValue);
    }
}
