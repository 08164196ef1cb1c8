//! Array operators: `$all`, `$elemMatch` (object and value forms), `$size`.
//!
//! `$size` and `$elemMatch` look at arrays themselves, so arrays at the end of the path are
//! not expanded for them (`LeafArrays::NoTraverse`); `$all` is a conjunction of equalities
//! (or of `$elemMatch`es), each seeing the usual expanded values.

use super::matcher::{
    is_field_operator, is_operator_doc_loose, parse_filter, parse_operator_doc, Ctx, ElementPredicate, Expr,
};
use super::ops_comparison::eq_expr;
use super::ops_eval::regex_expr;
use super::path::LeafArrays;
use super::util::{bad_value, number_as_f64};
use crate::error::Result;
use bson::{Bson, Document};

/// `$size: n`.
#[derive(Debug)]
pub struct SizePredicate {
    /// -1 never matches (kept for callers building predicates by hand).
    pub size: i64,
}

impl ElementPredicate for SizePredicate {
    fn leaf_arrays(&self) -> LeafArrays {
        LeafArrays::NoTraverse
    }
    fn matches(&self, v: Option<&Bson>) -> bool {
        match v {
            Some(Bson::Array(a)) => self.size >= 0 && a.len() as u64 == self.size as u64,
            _ => false,
        }
    }
}

/// `$elemMatch: {field conditions}`: some element, as a document, matches the sub-filter.
/// Array elements are looked into as documents with fields "0", "1"... as mongod does.
#[derive(Debug)]
pub struct ElemMatchObject {
    pub filter: Expr,
}

impl ElemMatchObject {
    fn element_matches(&self, e: &Bson) -> bool {
        match e {
            Bson::Document(d) => self.filter.eval(d, None),
            Bson::Array(a) => self.filter.eval(&array_as_document(a), None),
            _ => false,
        }
    }
}

/// An array viewed as a document keyed "0", "1"...
pub fn array_as_document(a: &[Bson]) -> Document {
    let mut d = Document::new();
    for (i, e) in a.iter().enumerate() {
        d.insert(i.to_string(), e.clone());
    }
    d
}

impl ElementPredicate for ElemMatchObject {
    fn leaf_arrays(&self) -> LeafArrays {
        LeafArrays::NoTraverse
    }
    fn matches(&self, v: Option<&Bson>) -> bool {
        match v {
            Some(Bson::Array(a)) => a.iter().any(|e| self.element_matches(e)),
            _ => false,
        }
    }
    fn inner_index(&self, v: &Bson) -> Option<usize> {
        match v {
            Bson::Array(a) => a.iter().position(|e| self.element_matches(e)),
            _ => None,
        }
    }
}

/// `$elemMatch: {$op: ...}`: some element satisfies every operator by itself.
#[derive(Debug)]
pub struct ElemMatchValue {
    /// Built over the empty path: evaluated with `Expr::eval_value`.
    pub conditions: Expr,
}

impl ElementPredicate for ElemMatchValue {
    fn leaf_arrays(&self) -> LeafArrays {
        LeafArrays::NoTraverse
    }
    fn matches(&self, v: Option<&Bson>) -> bool {
        match v {
            Some(Bson::Array(a)) => a.iter().any(|e| self.conditions.eval_value(Some(e))),
            _ => false,
        }
    }
    fn inner_index(&self, v: &Bson) -> Option<usize> {
        match v {
            Bson::Array(a) => a.iter().position(|e| self.conditions.eval_value(Some(e))),
            _ => None,
        }
    }
}

/// Operators that do not name a path: under `$elemMatch` they make the object form.
pub fn is_pathless(op: &str) -> bool {
    matches!(
        op,
        "$and"
            | "$or"
            | "$nor"
            | "$where"
            | "$expr"
            | "$jsonSchema"
            | "$text"
            | "$comment"
            | "$alwaysTrue"
            | "$alwaysFalse"
            | "$sampleRate"
            | "$id"
            | "$ref"
            | "$db"
    )
}

pub fn elem_match_expr(path: &str, arg: &Bson, ctx: Ctx) -> Result<Expr> {
    let Bson::Document(d) = arg else {
        return Err(bad_value("$elemMatch needs an Object"));
    };
    let value_form = is_operator_doc_loose(d) && d.keys().next().is_some_and(|k| !is_pathless(k));
    if value_form {
        let conditions = parse_operator_doc("", d, Ctx { sub_document: true, ..ctx })?;
        return Ok(Expr::path(path, ElemMatchValue { conditions }));
    }
    let filter = parse_filter(d, Ctx { sub_document: true, ..ctx })?;
    Ok(Expr::path(path, ElemMatchObject { filter }))
}

fn size_expr(path: &str, arg: &Bson) -> Result<Expr> {
    let size = match arg {
        Bson::Int32(i) => i64::from(*i),
        Bson::Int64(i) => {
            if i32::try_from(*i).is_err() {
                return Err(bad_value("$size must be representable as a 32-bit integer"));
            }
            *i
        }
        Bson::Double(_) | Bson::Decimal128(_) => {
            let d = number_as_f64(arg).unwrap_or(f64::NAN);
            if d.fract() != 0.0 || !d.is_finite() {
                return Err(bad_value("$size must be a whole number"));
            }
            if d < f64::from(i32::MIN) || d > f64::from(i32::MAX) {
                return Err(bad_value("$size must be representable as a 32-bit integer"));
            }
            d as i64
        }
        _ => return Err(bad_value("$size needs a number")),
    };
    if size < 0 {
        return Err(bad_value("$size may not be negative"));
    }
    Ok(Expr::path(path, SizePredicate { size }))
}

fn all_expr(path: &str, arg: &Bson, ctx: Ctx) -> Result<Expr> {
    let Bson::Array(items) = arg else {
        return Err(bad_value("$all needs an array"));
    };
    let first_is_elem_match = matches!(items.first(), Some(Bson::Document(d))
        if d.keys().next().is_some_and(|k| k == "$elemMatch"));
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if first_is_elem_match {
            match item {
                Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$elemMatch") => {
                    if let Some(inner) = d.get("$elemMatch") {
                        out.push(elem_match_expr(path, inner, ctx)?);
                    }
                }
                _ => return Err(bad_value("$all/$elemMatch has to be consistent")),
            }
            continue;
        }
        match item {
            Bson::RegularExpression(re) => out.push(regex_expr(path, &re.pattern, &re.options)?),
            Bson::Document(d) if d.keys().next().is_some_and(|k| is_field_operator(k)) => {
                return Err(bad_value("no $ expressions in $all"));
            }
            other => out.push(eq_expr(path, other)?),
        }
    }
    if out.is_empty() {
        // mongod: an empty $all matches nothing.
        return Ok(Expr::Const(false));
    }
    Ok(Expr::And(out))
}

/// Parses `$all`, `$elemMatch`, `$size`; `None` for other operators.
pub fn parse_op(path: &str, op: &str, arg: &Bson, ctx: Ctx) -> Option<Result<Expr>> {
    Some(match op {
        "$size" => size_expr(path, arg),
        "$elemMatch" => elem_match_expr(path, arg, ctx),
        "$all" => all_expr(path, arg, ctx),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use crate::query::matcher::Matcher;
    use bson::{doc, Document};

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    fn err(filter: Document) -> String {
        let e = Matcher::parse(&filter).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadValue);
        e.message
    }

    #[test]
    fn size() {
        assert!(m(doc! {"a": {"$size": 2}}, doc! {"a": [1, [2, 3]]}));
        assert!(!m(doc! {"a": {"$size": 1}}, doc! {"a": [1, [2, 3]]}));
        assert!(m(doc! {"a": {"$size": 0}}, doc! {"a": []}));
        assert!(!m(doc! {"a": {"$size": 0}}, doc! {}));
        assert!(m(doc! {"a": {"$size": 2.0}}, doc! {"a": [1, 2]}));
        assert!(m(doc! {"a.b": {"$size": 1}}, doc! {"a": [{"b": [1, 2]}, {"b": [3]}]}));
        assert_eq!(err(doc! {"a": {"$size": "x"}}), "$size needs a number");
        assert_eq!(err(doc! {"a": {"$size": -1}}), "$size may not be negative");
        assert_eq!(err(doc! {"a": {"$size": 1.5}}), "$size must be a whole number");
    }

    #[test]
    fn all() {
        assert!(m(doc! {"a": {"$all": [1, 2]}}, doc! {"a": [2, 3, 1]}));
        assert!(!m(doc! {"a": {"$all": [1, 4]}}, doc! {"a": [2, 3, 1]}));
        assert!(m(doc! {"a": {"$all": [1]}}, doc! {"a": 1}));
        assert!(m(doc! {"a": {"$all": [[1, 2]]}}, doc! {"a": [[1, 2], 3]}));
        assert!(m(doc! {"a": {"$all": [[1, 2]]}}, doc! {"a": [1, 2]}));
        assert!(!m(doc! {"a": {"$all": []}}, doc! {"a": [1]}));
        let q = doc! {"a": {"$all": [
            {"$elemMatch": {"b": 1, "c": {"$gt": 1}}},
            {"$elemMatch": {"b": 2}}
        ]}};
        assert!(m(q.clone(), doc! {"a": [{"b": 1, "c": 2}, {"b": 2}]}));
        assert!(!m(q, doc! {"a": [{"b": 1, "c": 1}, {"b": 2}]}));
        assert_eq!(err(doc! {"a": {"$all": 1}}), "$all needs an array");
        assert_eq!(
            err(doc! {"a": {"$all": [{"$elemMatch": {}}, 1]}}),
            "$all/$elemMatch has to be consistent"
        );
        assert_eq!(err(doc! {"a": {"$all": [{"$gt": 1}]}}), "no $ expressions in $all");
        // Unknown `$` names are literal documents in $all.
        assert!(m(doc! {"a": {"$all": [{"$x": 1}]}}, doc! {"a": [{"$x": 1}]}));
    }

    #[test]
    fn elem_match() {
        // Object form: one element satisfies all conditions together.
        let q = doc! {"a": {"$elemMatch": {"b": 1, "c": {"$gt": 1}}}};
        assert!(m(q.clone(), doc! {"a": [{"b": 1, "c": 2}]}));
        assert!(!m(q, doc! {"a": [{"b": 1, "c": 0}, {"b": 2, "c": 5}]}));
        // Value form.
        let q = doc! {"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}};
        assert!(m(q.clone(), doc! {"a": [82, 90]}));
        assert!(!m(q, doc! {"a": [79, 90]}));
        // Not an array: no match.
        assert!(!m(doc! {"a": {"$elemMatch": {"$gt": 1}}}, doc! {"a": 5}));
        // Pathless first operator makes the object form.
        let q = doc! {"a": {"$elemMatch": {"$or": [{"b": 1}, {"b": 2}]}}};
        assert!(m(q, doc! {"a": [{"b": 2}]}));
        // Nested arrays are elements viewed as documents.
        assert!(m(doc! {"a": {"$elemMatch": {"0": 1}}}, doc! {"a": [[1, 2]]}));
        assert!(m(doc! {"a": {"$elemMatch": {}}}, doc! {"a": [1, {}]}));
        assert!(m(doc! {"a": {"$elemMatch": {"$not": {"$gt": 5}}}}, doc! {"a": [7, 3]}));
        assert_eq!(err(doc! {"a": {"$elemMatch": 1}}), "$elemMatch needs an Object");
    }
}
