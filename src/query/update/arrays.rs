//! Array update operators: `$push` (with `$each $slice $sort $position`), `$addToSet`
//! (with `$each`), `$pop`, `$pull`, `$pullAll`.

use super::{LeafCx, Modifier};
use crate::error::{MongoError, Result};
use crate::query::compare::{bson_equal, compare_bson};
use crate::query::matcher::{is_operator_doc, parse_operator_doc, Ctx, Expr, Matcher};
use crate::query::path::get_path;
use crate::query::util::{
    bad_value, exact_i64, failed_to_parse, number_as_f64, parse_integer_element, type_name,
};
use bson::Bson;
use std::cmp::Ordering;

/// Builds an array modifier; `Ok(None)` if `op` is not an array operator.
pub(super) fn parse_modifier(op: &str, path: &str, v: &Bson) -> Result<Option<Box<dyn Modifier>>> {
    Ok(Some(match op {
        "$push" => Box::new(parse_push(v)?),
        "$addToSet" => Box::new(parse_add_to_set(v)?),
        "$pop" => {
            let n = parse_integer_element(path, v)?;
            if n != 1 && n != -1 {
                return Err(failed_to_parse(format!("$pop expects 1 or -1, found: {n}")));
            }
            Box::new(Pop { first: n < 0 })
        }
        "$pull" => Box::new(Pull { cond: parse_pull_condition(v)? }),
        "$pullAll" => {
            let Bson::Array(items) = v else {
                return Err(bad_value(format!(
                    "$pullAll requires an array argument but was given a {}",
                    type_name(v)
                )));
            };
            Box::new(PullAll { values: items.clone() })
        }
        _ => return Ok(None),
    }))
}

#[derive(Debug)]
enum PushSort {
    Whole(bool),
    /// (dotted field, ascending) pairs.
    Fields(Vec<(String, bool)>),
}

#[derive(Debug)]
struct Push {
    each: Vec<Bson>,
    slice: Option<i64>,
    sort: Option<PushSort>,
    position: Option<i64>,
}

fn integral(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => exact_i64(v),
        _ => None,
    }
}

fn parse_push(v: &Bson) -> Result<Push> {
    let Bson::Document(d) = v else {
        return Ok(Push { each: vec![v.clone()], slice: None, sort: None, position: None });
    };
    if !d.contains_key("$each") {
        return Ok(Push { each: vec![v.clone()], slice: None, sort: None, position: None });
    }
    let mut p = Push { each: Vec::new(), slice: None, sort: None, position: None };
    for (k, arg) in d {
        match k.as_str() {
            "$each" => {
                let Bson::Array(items) = arg else {
                    return Err(bad_value(format!(
                        "The argument to $each in $push must be an array but it was of type: {}",
                        type_name(arg)
                    )));
                };
                p.each = items.clone();
            }
            "$slice" => {
                p.slice = Some(integral(arg).ok_or_else(|| {
                    bad_value(format!(
                        "The value for $slice must be an integer value but was given type: {}",
                        type_name(arg)
                    ))
                })?);
            }
            "$position" => {
                p.position = Some(integral(arg).ok_or_else(|| {
                    bad_value(format!(
                        "The value for $position must be an integer value, not of type: {}",
                        type_name(arg)
                    ))
                })?);
            }
            "$sort" => p.sort = Some(parse_push_sort(arg)?),
            other => return Err(bad_value(format!("Unrecognized clause in $push: {other}"))),
        }
    }
    Ok(p)
}

fn sort_direction(v: &Bson) -> Option<bool> {
    match number_as_f64(v) {
        Some(1.0) => Some(true),
        Some(-1.0) => Some(false),
        _ => None,
    }
}

fn parse_push_sort(arg: &Bson) -> Result<PushSort> {
    match arg {
        Bson::Document(d) => {
            if d.is_empty() {
                return Err(bad_value("The $sort pattern is empty when it should be a set of fields."));
            }
            let mut fields = Vec::new();
            for (k, v) in d {
                if k.is_empty() || k.split('.').any(str::is_empty) {
                    return Err(bad_value(format!("The $sort field is a dotted field but has an empty part: {k}")));
                }
                if k.starts_with('$') {
                    return Err(bad_value("The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields"));
                }
                match sort_direction(v) {
                    Some(asc) => fields.push((k.clone(), asc)),
                    None => return Err(bad_value("The $sort element value must be either 1 or -1")),
                }
            }
            Ok(PushSort::Fields(fields))
        }
        other => match sort_direction(other) {
            Some(asc) => Ok(PushSort::Whole(asc)),
            None => Err(bad_value(
                "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
            )),
        },
    }
}

/// The value an element sorts by under a `$sort: {field: 1}` pattern (null if missing).
fn field_key<'a>(e: &'a Bson, field: &str) -> &'a Bson {
    match e {
        Bson::Document(d) => get_path(d, field).unwrap_or(&Bson::Null),
        _ => &Bson::Null,
    }
}

impl Push {
    fn result(&self, existing: &[Bson]) -> Vec<Bson> {
        let mut out: Vec<Bson> = existing.to_vec();
        let len = out.len() as i64;
        let at = match self.position {
            None => len,
            Some(p) if p >= 0 => p.min(len),
            Some(p) => (len + p).max(0),
        };
        let at = usize::try_from(at).unwrap_or(out.len()).min(out.len());
        out.splice(at..at, self.each.iter().cloned());
        match &self.sort {
            None => {}
            Some(PushSort::Whole(asc)) => out.sort_by(|a, b| {
                let c = compare_bson(a, b);
                if *asc {
                    c
                } else {
                    c.reverse()
                }
            }),
            Some(PushSort::Fields(fields)) => out.sort_by(|a, b| {
                for (f, asc) in fields {
                    let c = compare_bson(field_key(a, f), field_key(b, f));
                    let c = if *asc { c } else { c.reverse() };
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            }),
        }
        if let Some(n) = self.slice {
            let len = out.len();
            if n >= 0 {
                out.truncate(usize::try_from(n).unwrap_or(usize::MAX).min(len));
            } else {
                let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX).min(len);
                out.drain(..len - keep);
            }
        }
        out
    }
}

impl Modifier for Push {
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool> {
        let Bson::Array(a) = v else {
            return Err(bad_value(format!(
                "The field '{}' must be an array but is of type {} in document {{{}}}",
                cx.path,
                type_name(v),
                cx.id_desc
            )));
        };
        let r = self.result(a);
        // As mongod: a $sort always counts as a modification; otherwise pushing or slicing
        // something off does.
        let changed = self.sort.is_some() || !self.each.is_empty() || r.len() != a.len();
        *a = r;
        Ok(changed)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(Some(Bson::Array(self.result(&[]))))
    }
}

#[derive(Debug)]
struct AddToSet {
    each: Vec<Bson>,
}

fn parse_add_to_set(v: &Bson) -> Result<AddToSet> {
    let items = match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$each") => {
            let items = match d.get("$each") {
                Some(Bson::Array(items)) => items.clone(),
                Some(other) => {
                    return Err(MongoError::type_mismatch(format!(
                        "The argument to $each in $addToSet must be an array but it was of type {}",
                        type_name(other)
                    )))
                }
                None => Vec::new(),
            };
            if d.len() > 1 {
                return Err(bad_value(format!(
                    "Found unexpected fields after $each in $addToSet: {}",
                    crate::query::util::doc_to_string(d)
                )));
            }
            items
        }
        other => vec![other.clone()],
    };
    // Duplicates within $each are added once.
    let mut each: Vec<Bson> = Vec::with_capacity(items.len());
    for item in items {
        if !each.iter().any(|e| bson_equal(e, &item)) {
            each.push(item);
        }
    }
    Ok(AddToSet { each })
}

impl Modifier for AddToSet {
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool> {
        let Bson::Array(a) = v else {
            return Err(bad_value(format!(
                "Cannot apply $addToSet to non-array field. Field named '{}' has non-array type {}",
                cx.field,
                type_name(v)
            )));
        };
        let mut changed = false;
        for item in &self.each {
            if !a.iter().any(|e| bson_equal(e, item)) {
                a.push(item.clone());
                changed = true;
            }
        }
        Ok(changed)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(Some(Bson::Array(self.each.clone())))
    }
}

#[derive(Debug)]
struct Pop {
    first: bool,
}

impl Modifier for Pop {
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool> {
        let Bson::Array(a) = v else {
            return Err(MongoError::type_mismatch(format!(
                "Path '{}' contains an element of non-array type '{}'",
                cx.path,
                type_name(v)
            )));
        };
        if a.is_empty() {
            return Ok(false);
        }
        if self.first {
            a.remove(0);
        } else {
            a.pop();
        }
        Ok(true)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(None)
    }
    fn creates(&self) -> bool {
        false
    }
}

/// How `$pull` decides which elements to remove.
#[derive(Debug)]
enum PullCond {
    /// `{$gt: 5}`, a regex...: the conditions applied to each element itself.
    Value(Expr),
    /// `{field: cond}`: documents matching the query.
    Object(Matcher),
    Equal(Bson),
}

fn parse_pull_condition(v: &Bson) -> Result<PullCond> {
    match v {
        Bson::Document(d) => {
            let pathless = d.keys().next().is_some_and(|k| {
                matches!(k.as_str(), "$and" | "$or" | "$nor" | "$where" | "$expr" | "$comment")
            });
            if is_operator_doc(d) && !pathless {
                Ok(PullCond::Value(parse_operator_doc("", d, Ctx::default())?))
            } else {
                Ok(PullCond::Object(Matcher::parse(d)?))
            }
        }
        Bson::RegularExpression(re) => {
            Ok(PullCond::Value(crate::query::ops_eval::regex_expr("", &re.pattern, &re.options)?))
        }
        other => Ok(PullCond::Equal(other.clone())),
    }
}

impl PullCond {
    fn removes(&self, e: &Bson) -> bool {
        match self {
            PullCond::Value(x) => x.eval_value(Some(e)),
            PullCond::Object(m) => matches!(e, Bson::Document(d) if m.matches(d)),
            PullCond::Equal(x) => bson_equal(x, e),
        }
    }
}

#[derive(Debug)]
struct Pull {
    cond: PullCond,
}

fn pull_from(v: &mut Bson, op: &str, keep: impl Fn(&Bson) -> bool) -> Result<bool> {
    let Bson::Array(a) = v else {
        return Err(bad_value(format!("Cannot apply {op} to a non-array value")));
    };
    let before = a.len();
    a.retain(keep);
    Ok(a.len() != before)
}

impl Modifier for Pull {
    fn apply_existing(&self, v: &mut Bson, _cx: &LeafCx) -> Result<bool> {
        pull_from(v, "$pull", |e| !self.cond.removes(e))
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(None)
    }
    fn creates(&self) -> bool {
        false
    }
}

#[derive(Debug)]
struct PullAll {
    values: Vec<Bson>,
}

impl Modifier for PullAll {
    fn apply_existing(&self, v: &mut Bson, _cx: &LeafCx) -> Result<bool> {
        // mongod names $pull in this message for $pullAll too.
        pull_from(v, "$pull", |e| !self.values.iter().any(|x| bson_equal(x, e)))
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(None)
    }
    fn creates(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::{apply_update, parse_update};
    use crate::error::ErrorCode;
    use bson::{doc, Document};

    fn upd(u: Document, d: Document) -> (Document, bool) {
        let spec = parse_update(&u, None).unwrap();
        apply_update(&spec, &d, false, None).unwrap()
    }

    fn upd_err(u: Document, d: Document) -> (ErrorCode, String) {
        let e = match parse_update(&u, None) {
            Ok(spec) => apply_update(&spec, &d, false, None).unwrap_err(),
            Err(e) => e,
        };
        (e.code, e.message)
    }

    #[test]
    fn push() {
        assert_eq!(upd(doc! {"$push": {"a": 3}}, doc! {"_id": 1, "a": [1]}).0, doc! {"_id": 1, "a": [1, 3]});
        assert_eq!(upd(doc! {"$push": {"a": 3}}, doc! {"_id": 1}).0, doc! {"_id": 1, "a": [3]});
        assert_eq!(
            upd(doc! {"$push": {"a": [1, 2]}}, doc! {"_id": 1, "a": []}).0,
            doc! {"_id": 1, "a": [[1, 2]]}
        );
        assert_eq!(
            upd(doc! {"$push": {"a": {"$each": [3, 4]}}}, doc! {"_id": 1, "a": [1]}).0,
            doc! {"_id": 1, "a": [1, 3, 4]}
        );
        assert_eq!(
            upd(doc! {"$push": {"a": {"$each": [0], "$position": 0}}}, doc! {"_id": 1, "a": [1, 2]}).0,
            doc! {"_id": 1, "a": [0, 1, 2]}
        );
        assert_eq!(
            upd(doc! {"$push": {"a": {"$each": [9], "$position": -1}}}, doc! {"_id": 1, "a": [1, 2]}).0,
            doc! {"_id": 1, "a": [1, 9, 2]}
        );
        assert_eq!(
            upd(
                doc! {"$push": {"a": {"$each": [5, 0], "$sort": 1, "$slice": 3}}},
                doc! {"_id": 1, "a": [3, 1]}
            )
            .0,
            doc! {"_id": 1, "a": [0, 1, 3]}
        );
        assert_eq!(
            upd(doc! {"$push": {"a": {"$each": [], "$slice": -1}}}, doc! {"_id": 1, "a": [1, 2]}).0,
            doc! {"_id": 1, "a": [2]}
        );
        assert!(!upd(doc! {"$push": {"a": {"$each": []}}}, doc! {"_id": 1, "a": [1]}).1);
        let scores = doc! {"_id": 1, "q": [{"id": 1, "s": 8}, {"id": 2, "s": 9}]};
        assert_eq!(
            upd(
                doc! {"$push": {"q": {"$each": [{"id": 3, "s": 7}], "$sort": {"s": -1}, "$slice": 2}}},
                scores
            )
            .0,
            doc! {"_id": 1, "q": [{"id": 2, "s": 9}, {"id": 1, "s": 8}]}
        );
        let (c, m) = upd_err(doc! {"$push": {"a": 1}}, doc! {"_id": 1, "a": "x"});
        assert_eq!(
            (c, m.as_str()),
            (
                ErrorCode::BadValue,
                "The field 'a' must be an array but is of type string in document {_id: 1}"
            )
        );
        assert_eq!(upd_err(doc! {"$push": {"a": {"$each": 1}}}, doc! {}).0, ErrorCode::BadValue);
        assert_eq!(
            upd_err(doc! {"$push": {"a": {"$each": [], "$foo": 1}}}, doc! {}).1,
            "Unrecognized clause in $push: $foo"
        );
        assert_eq!(upd_err(doc! {"$push": {"a": {"$each": [], "$sort": 0}}}, doc! {}).0, ErrorCode::BadValue);
        assert_eq!(
            upd_err(doc! {"$push": {"a": {"$each": [], "$slice": 1.5}}}, doc! {}).0,
            ErrorCode::BadValue
        );
    }

    #[test]
    fn add_to_set() {
        assert_eq!(
            upd(doc! {"$addToSet": {"a": 2}}, doc! {"_id": 1, "a": [1, 2]}),
            (doc! {"_id": 1, "a": [1, 2]}, false)
        );
        assert!(!upd(doc! {"$addToSet": {"a": 2.0}}, doc! {"_id": 1, "a": [2]}).1);
        assert_eq!(
            upd(doc! {"$addToSet": {"a": {"$each": [1, 3, 3, 4]}}}, doc! {"_id": 1, "a": [1]}).0,
            doc! {"_id": 1, "a": [1, 3, 4]}
        );
        assert_eq!(
            upd(doc! {"$addToSet": {"a": {"$each": []}}}, doc! {"_id": 1}).0,
            doc! {"_id": 1, "a": []}
        );
        assert!(!upd(doc! {"$addToSet": {"a": {"b": 1}}}, doc! {"_id": 1, "a": [{"b": 1}]}).1);
        let (c, m) = upd_err(doc! {"$addToSet": {"a": 1}}, doc! {"_id": 1, "a": 1});
        assert_eq!(
            (c, m.as_str()),
            (
                ErrorCode::BadValue,
                "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type int"
            )
        );
        assert_eq!(upd_err(doc! {"$addToSet": {"a": {"$each": 1}}}, doc! {}).0, ErrorCode::TypeMismatch);
    }

    #[test]
    fn pop() {
        assert_eq!(
            upd(doc! {"$pop": {"a": 1}}, doc! {"_id": 1, "a": [1, 2, 3]}).0,
            doc! {"_id": 1, "a": [1, 2]}
        );
        assert_eq!(
            upd(doc! {"$pop": {"a": -1}}, doc! {"_id": 1, "a": [1, 2, 3]}).0,
            doc! {"_id": 1, "a": [2, 3]}
        );
        assert!(!upd(doc! {"$pop": {"a": 1}}, doc! {"_id": 1, "a": []}).1);
        assert!(!upd(doc! {"$pop": {"a": 1}}, doc! {"_id": 1}).1);
        assert_eq!(
            upd_err(doc! {"$pop": {"a": 2}}, doc! {}),
            (ErrorCode::FailedToParse, "$pop expects 1 or -1, found: 2".into())
        );
        assert_eq!(upd_err(doc! {"$pop": {"a": "x"}}, doc! {}).0, ErrorCode::FailedToParse);
        assert_eq!(upd_err(doc! {"$pop": {"a": 1}}, doc! {"_id": 1, "a": 1}).0, ErrorCode::TypeMismatch);
    }

    #[test]
    fn pull() {
        assert_eq!(
            upd(doc! {"$pull": {"a": 2}}, doc! {"_id": 1, "a": [1, 2, 2.0, 3]}).0,
            doc! {"_id": 1, "a": [1, 3]}
        );
        assert_eq!(
            upd(doc! {"$pull": {"a": {"$gte": 2}}}, doc! {"_id": 1, "a": [1, 2, 3]}).0,
            doc! {"_id": 1, "a": [1]}
        );
        assert_eq!(
            upd(doc! {"$pull": {"a": {"$in": [1, 3]}}}, doc! {"_id": 1, "a": [1, 2, 3]}).0,
            doc! {"_id": 1, "a": [2]}
        );
        let d = doc! {"_id": 1, "r": [{"item": "A", "score": 5}, {"item": "B", "score": 8}, 7]};
        assert_eq!(
            upd(doc! {"$pull": {"r": {"score": 8, "item": "B"}}}, d.clone()).0,
            doc! {"_id": 1, "r": [{"item": "A", "score": 5}, 7]}
        );
        assert_eq!(upd(doc! {"$pull": {"r": {"score": {"$gt": 4}}}}, d).0, doc! {"_id": 1, "r": [7]});
        assert!(!upd(doc! {"$pull": {"a": 9}}, doc! {"_id": 1, "a": [1]}).1);
        assert_eq!(
            upd_err(doc! {"$pull": {"a": 1}}, doc! {"_id": 1, "a": 1}).1,
            "Cannot apply $pull to a non-array value"
        );
        assert_eq!(
            upd(doc! {"$pullAll": {"a": [1, 3]}}, doc! {"_id": 1, "a": [1, 2, 3, 1]}).0,
            doc! {"_id": 1, "a": [2]}
        );
        assert_eq!(
            upd_err(doc! {"$pullAll": {"a": 1}}, doc! {}).1,
            "$pullAll requires an array argument but was given a int"
        );
    }

    #[test]
    fn non_viable_paths() {
        // Non-creating operators: a missing path is a no-op, a blocked one an error.
        assert!(!upd(doc! {"$pull": {"a.b": 1}}, doc! {"_id": 1}).1);
        assert_eq!(
            upd_err(doc! {"$pull": {"a.b": 1}}, doc! {"_id": 1, "a": 1}),
            (
                ErrorCode::PathNotViable,
                "Cannot use the part (b) of (a.b) to traverse the element ({a: 1})".into()
            )
        );
        assert_eq!(
            upd_err(doc! {"$pop": {"a.b.c": 1}}, doc! {"_id": 1, "a": {"b": 5}}).1,
            "Cannot use the part (c) of (a.b.c) to traverse the element ({b: 5})"
        );
        // $unset tolerates it.
        assert!(!upd(doc! {"$unset": {"a.b": 1}}, doc! {"_id": 1, "a": 1}).1);
        // Creating operators report the field they could not create.
        assert_eq!(
            upd_err(doc! {"$push": {"a.b": 1}}, doc! {"_id": 1, "a": 1}).1,
            "Cannot create field 'b' in element {a: 1}"
        );
        // $push names the full path of a non-array.
        assert_eq!(
            upd_err(doc! {"$push": {"a.b": 1}}, doc! {"_id": 1, "a": {"b": 1}}).1,
            "The field 'a.b' must be an array but is of type int in document {_id: 1}"
        );
    }

    #[test]
    fn pop_argument_parsing() {
        assert_eq!(upd(doc! {"$pop": {"a": 1.0}}, doc! {"_id": 1, "a": [1, 2]}).0, doc! {"_id": 1, "a": [1]});
        assert_eq!(upd_err(doc! {"$pop": {"a": 1.5}}, doc! {}).1, "Expected an integer: a: 1.5");
        assert_eq!(upd_err(doc! {"$pop": {"a": "x"}}, doc! {}).1, "Expected a number in: a: \"x\"");
        assert_eq!(upd_err(doc! {"$pop": {"a": 2.0}}, doc! {}).1, "$pop expects 1 or -1, found: 2");
    }
}
