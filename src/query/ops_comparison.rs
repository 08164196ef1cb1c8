//! Comparison operators: `$eq $ne $gt $gte $lt $lte $in $nin`.
//!
//! mongod compares only within a canonical type bracket (numbers with numbers, strings with
//! strings...): `{a: {$gt: 1}}` never matches a string. Exceptions: null also matches a
//! missing field (and undefined) for `$eq`, `$lte`, `$gte`; a `MinKey`/`MaxKey` bound compares
//! with everything. NaN equals NaN and is neither greater nor less than anything.

use super::compare::{canonical_type_rank, compare_bson};
use super::matcher::{is_operator_doc, Ctx, ElementPredicate, Expr};
use super::ops_eval::RegexPredicate;
use super::util::{bad_value, number_as_f64};
use crate::error::Result;
use bson::Bson;
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// `$eq`, `$gt`, `$gte`, `$lt`, `$lte` against one value.
#[derive(Debug)]
pub struct ComparisonPredicate {
    pub op: CmpOp,
    pub rhs: Bson,
}

/// The comparison bracket of a value; missing and undefined share one, as in mongod.
fn bracket(v: Option<&Bson>) -> i32 {
    match v {
        None | Some(Bson::Undefined) => -3,
        Some(Bson::Null) => -2,
        Some(Bson::MinKey) => -1,
        Some(Bson::MaxKey) => 1000,
        Some(other) => i32::from(canonical_type_rank(other)),
    }
}

fn is_nan(v: &Bson) -> bool {
    matches!(v, Bson::Double(_) | Bson::Decimal128(_)) && number_as_f64(v).is_some_and(f64::is_nan)
}

/// mongod's `ComparisonMatchExpression::matchesSingleElement`.
pub fn compare_matches(op: CmpOp, v: Option<&Bson>, rhs: &Bson) -> bool {
    let (bv, br) = (bracket(v), bracket(Some(rhs)));
    if bv != br {
        // null and undefined/missing are equal for these purposes.
        if (bv == -3 && br == -2) || (bv == -2 && br == -3) {
            return matches!(op, CmpOp::Eq | CmpOp::Lte | CmpOp::Gte);
        }
        return matches!(
            (rhs, op),
            (Bson::MaxKey, CmpOp::Lt | CmpOp::Lte) | (Bson::MinKey, CmpOp::Gt | CmpOp::Gte)
        );
    }
    let Some(v) = v else {
        // Both missing/undefined: only possible with an undefined bound, rejected at parse.
        return matches!(op, CmpOp::Eq | CmpOp::Lte | CmpOp::Gte);
    };
    let (nv, nr) = (is_nan(v), is_nan(rhs));
    if nv || nr {
        return match op {
            CmpOp::Lt | CmpOp::Gt => false,
            _ => nv && nr,
        };
    }
    let c = compare_bson(v, rhs);
    match op {
        CmpOp::Eq => c == Ordering::Equal,
        CmpOp::Gt => c == Ordering::Greater,
        CmpOp::Gte => c != Ordering::Less,
        CmpOp::Lt => c == Ordering::Less,
        CmpOp::Lte => c != Ordering::Greater,
    }
}

impl ElementPredicate for ComparisonPredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        compare_matches(self.op, v, &self.rhs)
    }
}

/// `$in`: equality with any listed value, or a match of any listed regex.
#[derive(Debug)]
pub struct InPredicate {
    /// Sorted by `compare_bson` for binary search.
    values: Vec<Bson>,
    regexes: Vec<RegexPredicate>,
    has_null: bool,
}

impl InPredicate {
    pub fn new(values: Vec<Bson>, regexes: Vec<RegexPredicate>) -> InPredicate {
        let has_null = values.iter().any(|v| matches!(v, Bson::Null));
        let mut values = values;
        values.sort_by(compare_bson);
        InPredicate { values, regexes, has_null }
    }
}

impl ElementPredicate for InPredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        let Some(v) = v else { return self.has_null };
        if matches!(v, Bson::Undefined) {
            return self.has_null;
        }
        if self.regexes.iter().any(|r| r.matches(Some(v))) {
            return true;
        }
        if super::collation::with_active(|c| c.is_some()) {
            // The values were sorted without the collation: look at each.
            return self.values.iter().any(|x| compare_matches(CmpOp::Eq, Some(v), x));
        }
        if let Ok(i) = self.values.binary_search_by(|x| compare_bson(x, v)) {
            return self.values.get(i).is_some_and(|x| compare_matches(CmpOp::Eq, Some(v), x));
        }
        false
    }
}

/// `{path: value}` / `{path: {$eq: value}}`.
pub fn eq_expr(path: &str, value: &Bson) -> Result<Expr> {
    check_not_undefined(value)?;
    Ok(Expr::path(path, ComparisonPredicate { op: CmpOp::Eq, rhs: value.clone() }))
}

fn check_not_undefined(value: &Bson) -> Result<()> {
    if matches!(value, Bson::Undefined) {
        return Err(bad_value("cannot compare to undefined"));
    }
    Ok(())
}

/// The `$in` list: regexes match, documents starting with `$` are refused.
pub fn in_predicate(arg: &Bson, op: &str) -> Result<InPredicate> {
    let Bson::Array(items) = arg else {
        return Err(bad_value(format!("{op} needs an array")));
    };
    let mut values = Vec::with_capacity(items.len());
    let mut regexes = Vec::new();
    for item in items {
        match item {
            Bson::RegularExpression(re) => regexes.push(RegexPredicate::new(&re.pattern, &re.options)?),
            Bson::Document(d) if is_operator_doc(d) => {
                return Err(bad_value("cannot nest $ under $in"));
            }
            Bson::Undefined => return Err(bad_value("InMatchExpression equality cannot be undefined")),
            other => values.push(other.clone()),
        }
    }
    Ok(InPredicate::new(values, regexes))
}

/// Parses the comparison family's field operators; `None` if `op` is not one of them.
pub fn parse_op(path: &str, op: &str, arg: &Bson, _ctx: Ctx) -> Option<Result<Expr>> {
    let cmp = |op: CmpOp| -> Result<Expr> {
        check_not_undefined(arg)?;
        Ok(Expr::path(path, ComparisonPredicate { op, rhs: arg.clone() }))
    };
    Some(match op {
        "$eq" => cmp(CmpOp::Eq),
        "$gt" => cmp(CmpOp::Gt),
        "$gte" => cmp(CmpOp::Gte),
        "$lt" => cmp(CmpOp::Lt),
        "$lte" => cmp(CmpOp::Lte),
        "$ne" => {
            if matches!(arg, Bson::RegularExpression(_)) {
                return Some(Err(bad_value("Can't have regex as arg to $ne.")));
            }
            cmp(CmpOp::Eq).map(Expr::negate)
        }
        "$in" => in_predicate(arg, "$in").map(|p| Expr::path(path, p)),
        "$nin" => in_predicate(arg, "$nin").map(|p| Expr::negate(Expr::path(path, p))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use crate::query::matcher::Matcher;
    use bson::{doc, Bson, Document};

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn ranges_stay_in_type_bracket() {
        assert!(m(doc! {"a": {"$gt": 1}}, doc! {"a": 2}));
        assert!(m(doc! {"a": {"$gt": 1}}, doc! {"a": 1.5}));
        assert!(!m(doc! {"a": {"$gt": 1}}, doc! {"a": "2"}));
        assert!(!m(doc! {"a": {"$lt": "z"}}, doc! {"a": 1}));
        assert!(m(doc! {"a": {"$gte": 2, "$lte": 2}}, doc! {"a": 2i64}));
        assert!(!m(doc! {"a": {"$gt": 1}}, doc! {"b": 2}));
        // Each operator may be satisfied by a different element.
        assert!(m(doc! {"a": {"$gt": 1, "$lt": 5}}, doc! {"a": [0, 10]}));
        assert!(m(doc! {"a": {"$lt": 5}}, doc! {"a": [10, 3]}));
        assert!(m(doc! {"a": {"$gt": [1]}}, doc! {"a": [2]}));
    }

    #[test]
    fn null_bounds() {
        assert!(m(doc! {"a": {"$gte": null}}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$lte": null}}, doc! {"a": null}));
        assert!(!m(doc! {"a": {"$gt": null}}, doc! {"a": 1}));
        assert!(!m(doc! {"a": {"$lt": null}}, doc! {}));
    }

    #[test]
    fn min_max_key() {
        assert!(m(doc! {"a": {"$lt": Bson::MaxKey}}, doc! {"a": "x"}));
        assert!(m(doc! {"a": {"$gt": Bson::MinKey}}, doc! {"a": 1}));
        assert!(!m(doc! {"a": {"$gt": Bson::MaxKey}}, doc! {"a": 1}));
    }

    #[test]
    fn nan() {
        assert!(m(doc! {"a": f64::NAN}, doc! {"a": f64::NAN}));
        assert!(!m(doc! {"a": {"$gt": 0}}, doc! {"a": f64::NAN}));
        assert!(!m(doc! {"a": {"$lt": f64::NAN}}, doc! {"a": 0}));
        assert!(m(doc! {"a": {"$gte": f64::NAN}}, doc! {"a": f64::NAN}));
    }

    #[test]
    fn ne_and_nin() {
        assert!(m(doc! {"a": {"$ne": 1}}, doc! {"a": 2}));
        assert!(m(doc! {"a": {"$ne": 1}}, doc! {}));
        assert!(!m(doc! {"a": {"$ne": 1}}, doc! {"a": [1, 2]}));
        assert!(m(doc! {"a": {"$nin": [1, 2]}}, doc! {"a": 3}));
        assert!(!m(doc! {"a": {"$nin": [1, 2]}}, doc! {"a": [3, 2]}));
        assert!(m(doc! {"a": {"$nin": [1]}}, doc! {}));
    }

    #[test]
    fn in_list() {
        assert!(m(doc! {"a": {"$in": [1, "x"]}}, doc! {"a": "x"}));
        assert!(m(doc! {"a": {"$in": [1, "x"]}}, doc! {"a": 1.0}));
        assert!(m(doc! {"a": {"$in": [null]}}, doc! {}));
        assert!(m(doc! {"a": {"$in": [[1, 2]]}}, doc! {"a": [1, 2]}));
        assert!(m(doc! {"a": {"$in": [2]}}, doc! {"a": [1, 2]}));
        let re = Bson::RegularExpression(bson::Regex { pattern: "^ab".into(), options: "i".into() });
        assert!(m(doc! {"a": {"$in": [5, re.clone()]}}, doc! {"a": "ABc"}));
        assert!(m(doc! {"a": {"$in": [re]}}, doc! {"a": ["x", "abz"]}));
        assert!(!m(doc! {"a": {"$in": []}}, doc! {"a": 1}));
    }

    #[test]
    fn errors() {
        let e = Matcher::parse(&doc! {"a": {"$in": 1}}).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::BadValue, "$in needs an array"));
        let e = Matcher::parse(&doc! {"a": {"$nin": {}}}).unwrap_err();
        assert_eq!(e.message, "$nin needs an array");
        let e = Matcher::parse(&doc! {"a": {"$in": [{"$gt": 1}]}}).unwrap_err();
        assert_eq!(e.message, "cannot nest $ under $in");
        let re = Bson::RegularExpression(bson::Regex { pattern: "x".into(), options: String::new() });
        let e = Matcher::parse(&doc! {"a": {"$ne": re}}).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadValue);
    }

    #[test]
    fn eq_with_regex_is_literal() {
        let re = Bson::RegularExpression(bson::Regex { pattern: "x".into(), options: String::new() });
        assert!(!m(doc! {"a": {"$eq": re.clone()}}, doc! {"a": "x"}));
        assert!(m(doc! {"a": {"$eq": re.clone()}}, doc! {"a": re}));
    }
}
