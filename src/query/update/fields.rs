//! Field update operators: `$set $setOnInsert $unset $inc $mul $min $max $currentDate`, and
//! the helpers behind `$rename` (which the update driver applies as read-source / write-
//! destination / remove-source).

use super::{LeafCx, Modifier};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::compare::{compare_bson, decode_decimal128, make_decimal128, DecimalParts};
use crate::query::util::{
    arith, array_index, bad_value, binary_equal, element_to_string, is_number, safe_num_debug, type_name,
    ArithOutcome,
};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// Builds a field modifier; `Ok(None)` if `op` is not a field operator.
pub(super) fn parse_modifier(op: &str, path: &str, v: &Bson) -> Result<Option<Box<dyn Modifier>>> {
    Ok(Some(match op {
        "$set" => Box::new(Set { value: v.clone(), on_insert: false }),
        "$setOnInsert" => Box::new(Set { value: v.clone(), on_insert: true }),
        "$unset" => Box::new(Unset),
        "$inc" | "$mul" => {
            let mul = op == "$mul";
            if !is_number(v) {
                let verb = if mul { "multiply" } else { "increment" };
                return Err(MongoError::type_mismatch(format!(
                    "Cannot {verb} with non-numeric argument: {{{}}}",
                    element_to_string(path, v)
                )));
            }
            Box::new(Arith { by: v.clone(), mul })
        }
        "$min" => Box::new(MinMax { value: v.clone(), max: false }),
        "$max" => Box::new(MinMax { value: v.clone(), max: true }),
        "$currentDate" => Box::new(CurrentDate { timestamp: current_date_type(v)? }),
        "$bit" => Box::new(parse_bit(path, v)?),
        _ => return Ok(None),
    }))
}

#[derive(Debug)]
struct Set {
    value: Bson,
    on_insert: bool,
}

impl Modifier for Set {
    fn apply_existing(&self, v: &mut Bson, _cx: &LeafCx) -> Result<bool> {
        if binary_equal(v, &self.value) {
            return Ok(false);
        }
        *v = self.value.clone();
        Ok(true)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(Some(self.value.clone()))
    }
    fn active(&self, is_insert: bool) -> bool {
        !self.on_insert || is_insert
    }
}

#[derive(Debug)]
struct Unset;

impl Modifier for Unset {
    fn apply_existing(&self, _v: &mut Bson, _cx: &LeafCx) -> Result<bool> {
        // The driver removes the field itself (see `removes`).
        Ok(false)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(None)
    }
    fn tolerates_non_viable(&self) -> bool {
        true
    }
    fn removes(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct Arith {
    by: Bson,
    mul: bool,
}

impl Arith {
    fn name(&self) -> &'static str {
        if self.mul {
            "$mul"
        } else {
            "$inc"
        }
    }
}

impl Modifier for Arith {
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool> {
        if !is_number(v) {
            return Err(MongoError::type_mismatch(format!(
                "Cannot apply {} to a value of non-numeric type. {{{}}} has the field '{}' of non-numeric type {}",
                self.name(),
                cx.id_desc,
                cx.field,
                type_name(v)
            )));
        }
        let result = match arith(v, &self.by, self.mul) {
            ArithOutcome::Value(r) => r,
            ArithOutcome::Unsupported => decimal_arith(v, &self.by, self.mul)?,
            ArithOutcome::Overflow => {
                return Err(bad_value(format!(
                    "Failed to apply {} operations to current value ({}) for document {{{}}}",
                    self.name(),
                    safe_num_debug(v),
                    cx.id_desc
                )))
            }
        };
        if binary_equal(v, &result) {
            return Ok(false);
        }
        *v = result;
        Ok(true)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        if !self.mul {
            return Ok(Some(self.by.clone()));
        }
        // $mul on a missing field stores a zero of the multiplier's type.
        Ok(Some(match &self.by {
            Bson::Int32(_) => Bson::Int32(0),
            Bson::Int64(_) => Bson::Int64(0),
            Bson::Double(_) => Bson::Double(0.0),
            _ => make_decimal128(false, 0, 0).map(Bson::Decimal128).unwrap_or(Bson::Int32(0)),
        }))
    }
}

/// A number as an exact decimal: sign, coefficient, exponent. Doubles are first rounded to
/// 15 significant digits, as mongod converts a double for decimal arithmetic.
enum Dec {
    NaN,
    Inf(bool),
    Finite(bool, u128, i32),
}

fn to_dec(v: &Bson) -> Option<Dec> {
    Some(match v {
        Bson::Int32(i) => Dec::Finite(*i < 0, u128::from(i.unsigned_abs()), 0),
        Bson::Int64(i) => Dec::Finite(*i < 0, u128::from(i.unsigned_abs()), 0),
        Bson::Decimal128(d) => match decode_decimal128(d) {
            DecimalParts::NaN => Dec::NaN,
            DecimalParts::Infinity { negative } => Dec::Inf(negative),
            DecimalParts::Finite { negative, coefficient, exponent } => {
                Dec::Finite(negative, coefficient, exponent)
            }
        },
        Bson::Double(d) => {
            if d.is_nan() {
                Dec::NaN
            } else if d.is_infinite() {
                Dec::Inf(*d < 0.0)
            } else if *d == 0.0 {
                Dec::Finite(d.is_sign_negative(), 0, 0)
            } else {
                let s = format!("{:.14e}", d.abs());
                let (mant, exp) = s.split_once('e')?;
                let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
                let coef: u128 = digits.parse().ok()?;
                let exp: i32 = exp.parse().ok()?;
                Dec::Finite(*d < 0.0, coef, exp - 14)
            }
        }
        _ => return None,
    })
}

fn dec_to_bson(neg: bool, coef: u128, exp: i32) -> Option<Bson> {
    make_decimal128(neg, coef, exp).map(Bson::Decimal128)
}

fn special(neg: bool, inf: bool) -> Bson {
    // Built from text: the encoding of NaN/Infinity has no coefficient to pass.
    let s = match (inf, neg) {
        (false, _) => "NaN",
        (true, false) => "Infinity",
        (true, true) => "-Infinity",
    };
    s.parse::<bson::Decimal128>().map(Bson::Decimal128).unwrap_or(Bson::Double(f64::NAN))
}

/// Decimal128 `$inc`/`$mul`, exact when the result needs no rounding.
fn decimal_arith(a: &Bson, b: &Bson, mul: bool) -> Result<Bson> {
    let unsupported = || bad_value("decimal arithmetic that needs rounding is not supported yet");
    let (Some(x), Some(y)) = (to_dec(a), to_dec(b)) else {
        return Err(unsupported());
    };
    let out = match (x, y) {
        (Dec::NaN, _) | (_, Dec::NaN) => special(false, false),
        (Dec::Inf(p), Dec::Inf(q)) => {
            if mul {
                special(p != q, true)
            } else if p == q {
                special(p, true)
            } else {
                special(false, false)
            }
        }
        (Dec::Inf(p), Dec::Finite(q, c, _)) | (Dec::Finite(q, c, _), Dec::Inf(p)) => {
            if mul {
                if c == 0 {
                    special(false, false)
                } else {
                    special(p != q, true)
                }
            } else {
                special(p, true)
            }
        }
        (Dec::Finite(na, ca, ea), Dec::Finite(nb, cb, eb)) => {
            if mul {
                let c = ca.checked_mul(cb).ok_or_else(unsupported)?;
                dec_to_bson(na != nb, c, ea + eb).ok_or_else(unsupported)?
            } else {
                let e = ea.min(eb);
                let scale = |c: u128, from: i32| -> Option<i128> {
                    let p = u32::try_from(from - e).ok()?;
                    let c = c.checked_mul(10u128.checked_pow(p)?)?;
                    i128::try_from(c).ok()
                };
                let sa = scale(ca, ea).ok_or_else(unsupported)?;
                let sb = scale(cb, eb).ok_or_else(unsupported)?;
                let sa = if na { -sa } else { sa };
                let sb = if nb { -sb } else { sb };
                let sum = sa.checked_add(sb).ok_or_else(unsupported)?;
                dec_to_bson(sum < 0, sum.unsigned_abs(), e).ok_or_else(unsupported)?
            }
        }
    };
    Ok(out)
}

#[derive(Debug)]
struct MinMax {
    value: Bson,
    max: bool,
}

impl Modifier for MinMax {
    fn apply_existing(&self, v: &mut Bson, _cx: &LeafCx) -> Result<bool> {
        let c = compare_bson(&self.value, v);
        let replace = if self.max { c == Ordering::Greater } else { c == Ordering::Less };
        if replace {
            *v = self.value.clone();
        }
        Ok(replace)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(Some(self.value.clone()))
    }
}

#[derive(Debug)]
struct CurrentDate {
    timestamp: bool,
}

impl CurrentDate {
    fn value(&self, cx: &LeafCx) -> Bson {
        if self.timestamp {
            Bson::Timestamp(cx.timestamp)
        } else {
            Bson::DateTime(cx.now)
        }
    }
}

impl Modifier for CurrentDate {
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool> {
        *v = self.value(cx);
        // mongod always counts $currentDate as a modification.
        Ok(true)
    }
    fn create(&self, cx: &LeafCx) -> Result<Option<Bson>> {
        Ok(Some(self.value(cx)))
    }
}

/// `true` → date; `{$type: "date" | "timestamp"}`. Returns whether it is a timestamp.
fn current_date_type(v: &Bson) -> Result<bool> {
    match v {
        Bson::Boolean(_) => Ok(false),
        Bson::Document(d) => {
            let mut ts = None;
            for (k, t) in d {
                if k != "$type" {
                    return Err(bad_value(format!("Unrecognized $currentDate option: {k}")));
                }
                ts = match t {
                    Bson::String(s) if s == "date" => Some(false),
                    Bson::String(s) if s == "timestamp" => Some(true),
                    _ => None,
                };
            }
            ts.ok_or_else(|| {
                bad_value(
                    "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: \
                     {field : {$type: 'date'}}}",
                )
            })
        }
        other => Err(bad_value(format!(
            "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression \
             ({{$type: 'timestamp/date'}}).",
            type_name(other)
        ))),
    }
}

/// `$bit: {field: {and|or|xor: <int>}}` on int32/int64 fields.
#[derive(Debug)]
struct Bit {
    ops: Vec<(BitOp, Bson)>,
}

#[derive(Debug, Clone, Copy)]
enum BitOp {
    And,
    Or,
    Xor,
}

fn parse_bit(path: &str, v: &Bson) -> Result<Bit> {
    let Bson::Document(d) = v else {
        return Err(bad_value(format!(
            "The $bit modifier is not compatible with a {}. You must pass in an embedded document: {{$bit: \
             {{field: {{and/or/xor: #}}}}",
            type_name(v)
        )));
    };
    let mut ops = Vec::new();
    for (k, arg) in d {
        let op = match k.as_str() {
            "and" => BitOp::And,
            "or" => BitOp::Or,
            "xor" => BitOp::Xor,
            _ => {
                return Err(bad_value(format!(
                    "The $bit modifier only supports 'and', 'or', and 'xor', not '{k}' which is an unknown \
                     operator: {{{}}}",
                    element_to_string(k, arg)
                )))
            }
        };
        if !matches!(arg, Bson::Int32(_) | Bson::Int64(_)) {
            return Err(bad_value(format!(
                "The $bit modifier field must be an Integer(32/64 bit); a '{}' is not supported here: {{{}}}",
                type_name(arg),
                element_to_string(k, arg)
            )));
        }
        ops.push((op, arg.clone()));
    }
    if ops.is_empty() {
        return Err(bad_value(format!(
            "You must pass in at least one bitwise operation. The format is: {{$bit: {{field: {{and/or/xor: \
             #}}}}}}: {}",
            element_to_string(path, v)
        )));
    }
    Ok(Bit { ops })
}

impl Bit {
    fn compute(&self, start: &Bson) -> Option<Bson> {
        let mut cur = start.clone();
        for (op, arg) in &self.ops {
            let f = |a: i64, b: i64| match op {
                BitOp::And => a & b,
                BitOp::Or => a | b,
                BitOp::Xor => a ^ b,
            };
            cur = match (&cur, arg) {
                (Bson::Int32(a), Bson::Int32(b)) => Bson::Int32(f(i64::from(*a), i64::from(*b)) as i32),
                (Bson::Int32(a), Bson::Int64(b)) => Bson::Int64(f(i64::from(*a), *b)),
                (Bson::Int64(a), Bson::Int32(b)) => Bson::Int64(f(*a, i64::from(*b))),
                (Bson::Int64(a), Bson::Int64(b)) => Bson::Int64(f(*a, *b)),
                _ => return None,
            };
        }
        Some(cur)
    }
}

impl Modifier for Bit {
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool> {
        let Some(r) = self.compute(v) else {
            return Err(bad_value(format!(
                "Cannot apply $bit to a value of non-integral type.{{{}}} has the field {} of non-integer type {}",
                cx.id_desc,
                cx.field,
                type_name(v)
            )));
        };
        if binary_equal(v, &r) {
            return Ok(false);
        }
        *v = r;
        Ok(true)
    }
    fn create(&self, _cx: &LeafCx) -> Result<Option<Bson>> {
        // A missing field behaves as int32 0.
        Ok(self.compute(&Bson::Int32(0)))
    }
}

/// Validates `$rename: {from: to}` and returns `to`.
pub(super) fn rename_target(from: &str, v: &Bson) -> Result<String> {
    let Bson::String(to) = v else {
        return Err(bad_value(format!(
            "The 'to' field for $rename must be a string: {}",
            element_to_string(from, v)
        )));
    };
    if to == from {
        return Err(bad_value(format!(
            "The source and target field for $rename must differ: {}",
            element_to_string(from, v)
        )));
    }
    let prefix = |a: &str, b: &str| b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'.');
    if prefix(from, to) || prefix(to, from) {
        return Err(bad_value(format!(
            "The source and target field for $rename must not be on the same path: {}",
            element_to_string(from, v)
        )));
    }
    Ok(to.clone())
}

/// The value `$rename` moves (None if the source is missing: a no-op). mongod refuses to
/// rename out of or into an array element, and a source path blocked by a non-document is
/// PathNotViable.
pub(super) fn rename_source(doc: &Document, from: &str, to: &str, id_desc: &str) -> Result<Option<Bson>> {
    let array_error = |what: &str, path: &str, name: &str| {
        bad_value(format!(
            "The {what} field cannot be an array element, '{path}' in doc with {id_desc} has an \
             array field called '{name}'"
        ))
    };
    let parts: Vec<&str> = from.split('.').collect();
    let Some((first, rest)) = parts.split_first() else {
        return Ok(None);
    };
    let Some(mut cur) = doc.get(*first) else {
        return Ok(None);
    };
    let mut cur_name: &str = first;
    let mut nearest_array: Option<&str> = None;
    for p in rest {
        let next = match cur {
            Bson::Document(d) => d.get(*p),
            Bson::Array(a) if array_index(p).is_some() => {
                nearest_array = Some(cur_name);
                array_index(p).and_then(|i| a.get(i))
            }
            blocking => {
                return Err(MongoError::new(
                    ErrorCode::PathNotViable,
                    format!(
                        "cannot use the part ({cur_name} of {from}) to traverse the element ({{{}}})",
                        element_to_string(cur_name, blocking)
                    ),
                ))
            }
        };
        match next {
            Some(v) => {
                cur = v;
                cur_name = p;
            }
            None => return Ok(None),
        }
    }
    if let Some(name) = nearest_array {
        return Err(array_error("source", from, name));
    }
    // The destination may not be inside an existing array either. (A non-numeric component
    // on an array is left to the $set-like traversal, which reports it as PathNotViable.)
    let tparts: Vec<&str> = to.split('.').collect();
    let mut at: Option<(&str, &Bson)> = None;
    let mut nearest_array: Option<&str> = None;
    for p in &tparts {
        let next = match at {
            None => doc.get(*p),
            Some((_, Bson::Document(d))) => d.get(*p),
            Some((name, Bson::Array(a))) if array_index(p).is_some() => {
                nearest_array = Some(name);
                array_index(p).and_then(|i| a.get(i))
            }
            Some(_) => None,
        };
        match next {
            Some(v) => at = Some((p, v)),
            None => break,
        }
    }
    if let Some(name) = nearest_array {
        return Err(array_error("destination", to, name));
    }
    Ok(Some(cur.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::{apply_update_at, parse_update};
    use crate::error::ErrorCode;
    use bson::{doc, Bson, DateTime, Document, Timestamp};

    fn upd(u: Document, d: Document) -> (Document, bool) {
        let spec = parse_update(&u, None).unwrap();
        apply_update_at(
            &spec,
            &d,
            false,
            None,
            DateTime::from_millis(1000),
            Timestamp { time: 1, increment: 1 },
        )
        .unwrap()
    }

    fn upd_err(u: Document, d: Document) -> (ErrorCode, String) {
        let e = match parse_update(&u, None) {
            Ok(spec) => apply_update_at(
                &spec,
                &d,
                false,
                None,
                DateTime::from_millis(1000),
                Timestamp { time: 1, increment: 1 },
            )
            .unwrap_err(),
            Err(e) => e,
        };
        (e.code, e.message)
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse().unwrap())
    }

    #[test]
    fn set_and_noop() {
        assert_eq!(upd(doc! {"$set": {"a": 2}}, doc! {"_id": 1, "a": 1}), (doc! {"_id": 1, "a": 2}, true));
        assert_eq!(upd(doc! {"$set": {"a": 1}}, doc! {"_id": 1, "a": 1}), (doc! {"_id": 1, "a": 1}, false));
        // A different numeric type is a change.
        assert_eq!(
            upd(doc! {"$set": {"a": 1.0}}, doc! {"_id": 1, "a": 1}),
            (doc! {"_id": 1, "a": 1.0}, true)
        );
        assert_eq!(upd(doc! {"$set": {"c.d": 1}}, doc! {"_id": 1}), (doc! {"_id": 1, "c": {"d": 1}}, true));
        assert_eq!(
            upd(doc! {"$set": {"a.1": 9}}, doc! {"_id": 1, "a": [1, 2]}),
            (doc! {"_id": 1, "a": [1, 9]}, true)
        );
        assert_eq!(
            upd(doc! {"$set": {"a.3": 9}}, doc! {"_id": 1, "a": [1]}),
            (doc! {"_id": 1, "a": [1, null, null, 9]}, true)
        );
        let (c, m) = upd_err(doc! {"$set": {"a.b": 1}}, doc! {"_id": 1, "a": 1});
        assert_eq!((c, m.as_str()), (ErrorCode::PathNotViable, "Cannot create field 'b' in element {a: 1}"));
        let (c, m) = upd_err(doc! {"$set": {"a.b": 1}}, doc! {"_id": 1, "a": [{"b": 0}]});
        assert_eq!(
            (c, m.as_str()),
            (ErrorCode::PathNotViable, "Cannot create field 'b' in element {a: [ { b: 0 } ]}")
        );
        let (c, _) = upd_err(doc! {"$set": {"a.b": 1}}, doc! {"_id": 1, "a": null});
        assert_eq!(c, ErrorCode::PathNotViable);
    }

    #[test]
    fn unset() {
        assert_eq!(
            upd(doc! {"$unset": {"a": ""}}, doc! {"_id": 1, "a": 1, "b": 2}),
            (doc! {"_id": 1, "b": 2}, true)
        );
        assert_eq!(upd(doc! {"$unset": {"x": 1}}, doc! {"_id": 1}), (doc! {"_id": 1}, false));
        assert_eq!(
            upd(doc! {"$unset": {"a.1": 1}}, doc! {"_id": 1, "a": [1, 2, 3]}),
            (doc! {"_id": 1, "a": [1, null, 3]}, true)
        );
        assert_eq!(
            upd(doc! {"$unset": {"a.b.c": 1}}, doc! {"_id": 1, "a": 5}),
            (doc! {"_id": 1, "a": 5}, false)
        );
    }

    #[test]
    fn inc_and_mul() {
        assert_eq!(upd(doc! {"$inc": {"a": 2}}, doc! {"_id": 1, "a": 1}).0, doc! {"_id": 1, "a": 3});
        assert_eq!(upd(doc! {"$inc": {"a": 2}}, doc! {"_id": 1}).0, doc! {"_id": 1, "a": 2});
        assert!(!upd(doc! {"$inc": {"a": 0}}, doc! {"_id": 1, "a": 1}).1);
        assert_eq!(
            upd(doc! {"$inc": {"a": 1}}, doc! {"_id": 1, "a": i32::MAX}).0,
            doc! {"_id": 1, "a": 2147483648i64}
        );
        // An int64 overflow fails (mongod does not fall back to a double).
        assert_eq!(
            upd_err(doc! {"$inc": {"a": 1}}, doc! {"_id": 1, "a": i64::MAX}),
            (
                ErrorCode::BadValue,
                "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) \
                 for document {_id: 1}"
                    .into()
            )
        );
        assert_eq!(
            upd_err(doc! {"$mul": {"a": i64::MAX}}, doc! {"_id": "x", "a": 42}).1,
            "Failed to apply $mul operations to current value ((NumberInt)42) for document {_id: \"x\"}"
        );
        assert_eq!(upd(doc! {"$inc": {"a": 0.5}}, doc! {"_id": 1, "a": 1}).0, doc! {"_id": 1, "a": 1.5});
        assert_eq!(upd(doc! {"$mul": {"a": 3}}, doc! {"_id": 1, "a": 2i64}).0, doc! {"_id": 1, "a": 6i64});
        assert_eq!(upd(doc! {"$mul": {"a": 3i64}}, doc! {"_id": 1}).0, doc! {"_id": 1, "a": 0i64});
        assert_eq!(
            upd(doc! {"$inc": {"a": dec("1.5")}}, doc! {"_id": 1, "a": 1}).0,
            doc! {"_id": 1, "a": dec("2.5")}
        );
        assert_eq!(
            upd(doc! {"$mul": {"a": dec("1.5")}}, doc! {"_id": 1, "a": dec("2")}).0,
            doc! {"_id": 1, "a": dec("3.0")}
        );
        assert_eq!(
            upd(doc! {"$inc": {"a": 0.1}}, doc! {"_id": 1, "a": dec("1")}).0,
            doc! {"_id": 1, "a": dec("1.100000000000000")}
        );
        let (c, m) = upd_err(doc! {"$inc": {"a": 1}}, doc! {"_id": 1, "a": "x"});
        assert_eq!(c, ErrorCode::TypeMismatch);
        assert_eq!(m, "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string");
        let (c, m) = upd_err(doc! {"$inc": {"a": "x"}}, doc! {"_id": 1});
        assert_eq!(
            (c, m.as_str()),
            (ErrorCode::TypeMismatch, "Cannot increment with non-numeric argument: {a: \"x\"}")
        );
        let (_, m) = upd_err(doc! {"$mul": {"a": "x"}}, doc! {"_id": 1});
        assert_eq!(m, "Cannot multiply with non-numeric argument: {a: \"x\"}");
    }

    #[test]
    fn min_max() {
        assert_eq!(upd(doc! {"$min": {"a": 1}}, doc! {"_id": 1, "a": 3}), (doc! {"_id": 1, "a": 1}, true));
        assert_eq!(upd(doc! {"$min": {"a": 5}}, doc! {"_id": 1, "a": 3}), (doc! {"_id": 1, "a": 3}, false));
        assert_eq!(upd(doc! {"$max": {"a": 5}}, doc! {"_id": 1, "a": 3}), (doc! {"_id": 1, "a": 5}, true));
        assert!(!upd(doc! {"$max": {"a": 3.0}}, doc! {"_id": 1, "a": 3}).1);
        assert_eq!(upd(doc! {"$max": {"a": "x"}}, doc! {"_id": 1, "a": 3}).0, doc! {"_id": 1, "a": "x"});
        assert_eq!(upd(doc! {"$min": {"a": 1}}, doc! {"_id": 1}).0, doc! {"_id": 1, "a": 1});
    }

    #[test]
    fn current_date() {
        let (d, c) = upd(doc! {"$currentDate": {"a": true, "b": {"$type": "timestamp"}}}, doc! {"_id": 1});
        assert!(c);
        assert_eq!(
            d,
            doc! {"_id": 1, "a": DateTime::from_millis(1000), "b": Timestamp { time: 1, increment: 1 }}
        );
        assert_eq!(upd_err(doc! {"$currentDate": {"a": 1}}, doc! {}).0, ErrorCode::BadValue);
        assert_eq!(upd_err(doc! {"$currentDate": {"a": {"$type": "x"}}}, doc! {}).0, ErrorCode::BadValue);
    }

    #[test]
    fn rename() {
        assert_eq!(
            upd(doc! {"$rename": {"a": "z"}}, doc! {"_id": 1, "a": 1, "b": 2}),
            (doc! {"_id": 1, "b": 2, "z": 1}, true)
        );
        assert_eq!(
            upd(doc! {"$rename": {"a": "b.c"}}, doc! {"_id": 1, "a": 1}).0,
            doc! {"_id": 1, "b": {"c": 1}}
        );
        assert_eq!(upd(doc! {"$rename": {"x": "y"}}, doc! {"_id": 1}), (doc! {"_id": 1}, false));
        assert_eq!(
            upd(doc! {"$rename": {"a": "b"}}, doc! {"_id": 1, "a": 1, "b": 2}).0,
            doc! {"_id": 1, "b": 1}
        );
        assert_eq!(
            upd_err(doc! {"$rename": {"a": 1}}, doc! {}).1,
            "The 'to' field for $rename must be a string: a: 1"
        );
        assert_eq!(
            upd_err(doc! {"$rename": {"a": "a"}}, doc! {}).1,
            "The source and target field for $rename must differ: a: \"a\""
        );
        assert_eq!(
            upd_err(doc! {"$rename": {"a": "a.b"}}, doc! {}).1,
            "The source and target field for $rename must not be on the same path: a: \"a.b\""
        );
        assert_eq!(upd_err(doc! {"$rename": {"a.$": "b"}}, doc! {}).0, ErrorCode::BadValue);
        let (c, m) = upd_err(doc! {"$rename": {"a.0": "b"}}, doc! {"_id": 1, "a": [1]});
        assert_eq!(c, ErrorCode::BadValue);
        assert_eq!(m, "The source field cannot be an array element, 'a.0' in doc with _id: 1 has an array field called 'a'");
        assert_eq!(
            upd_err(doc! {"$rename": {"a": "b.c"}, "$set": {"b": 1}}, doc! {}).0,
            ErrorCode::ConflictingUpdateOperators
        );
    }

    #[test]
    fn bit() {
        assert_eq!(upd(doc! {"$bit": {"a": {"and": 6}}}, doc! {"_id": 1, "a": 3}).0, doc! {"_id": 1, "a": 2});
        assert_eq!(
            upd(doc! {"$bit": {"a": {"or": 4i64}}}, doc! {"_id": 1, "a": 3}).0,
            doc! {"_id": 1, "a": 7i64}
        );
        assert_eq!(upd(doc! {"$bit": {"a": {"xor": 1}}}, doc! {"_id": 1}).0, doc! {"_id": 1, "a": 1});
        assert_eq!(upd_err(doc! {"$bit": {"a": {"and": 1.5}}}, doc! {}).0, ErrorCode::BadValue);
        assert_eq!(upd_err(doc! {"$bit": {"a": {"and": 1}}}, doc! {"a": 1.5}).0, ErrorCode::BadValue);
    }

    #[test]
    fn rename_errors() {
        let d = doc! {"_id": 1, "a": [{"a": 1}, {"b": 2}], "s": 5};
        assert_eq!(
            upd_err(doc! {"$rename": {"a.a": "b"}}, d.clone()),
            (
                ErrorCode::PathNotViable,
                "cannot use the part (a of a.a) to traverse the element ({a: [ { a: 1 }, { b: 2 } ]})".into()
            )
        );
        assert_eq!(
            upd_err(doc! {"$rename": {"s.x": "b"}}, d.clone()).1,
            "cannot use the part (s of s.x) to traverse the element ({s: 5})"
        );
        assert_eq!(
            upd_err(doc! {"$rename": {"s": "a.0.z"}}, d.clone()).1,
            "The destination field cannot be an array element, 'a.0.z' in doc with _id: 1 has an \
             array field called 'a'"
        );
        assert_eq!(
            upd_err(doc! {"$rename": {"s": "a.z"}}, d.clone()).1,
            "Cannot create field 'z' in element {a: [ { a: 1 }, { b: 2 } ]}"
        );
        assert_eq!(upd_err(doc! {"$rename": {"_id": "x"}}, d).0, ErrorCode::ImmutableField);
    }
}
