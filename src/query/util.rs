//! Small helpers shared by the query-language modules: error construction with mongod's
//! numeric codes, mongod-style value printing for error messages, BSON type names, exact
//! ("binary") equality and mongod's numeric promotion rules for `$inc`/`$mul`.

use crate::error::{ErrorCode, MongoError};
use bson::{Bson, Document};

/// An error with mongod's numeric code `code`. Location codes that `ErrorCode` does not list
/// yet fall back to `fallback`, so adding the code to the table later makes them exact.
pub fn located(code: i32, fallback: ErrorCode, message: impl Into<String>) -> MongoError {
    MongoError::new(ErrorCode::from_code(code).unwrap_or(fallback), message)
}

pub fn bad_value(message: impl Into<String>) -> MongoError {
    MongoError::new(ErrorCode::BadValue, message)
}

pub fn failed_to_parse(message: impl Into<String>) -> MongoError {
    MongoError::new(ErrorCode::FailedToParse, message)
}

/// mongod's `typeName()` for a value (the names `$type` accepts).
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

/// The BSON type number of a value (what `$type: <number>` compares against).
pub fn type_code(v: &Bson) -> i32 {
    match v {
        Bson::Double(_) => 1,
        Bson::String(_) => 2,
        Bson::Document(_) => 3,
        Bson::Array(_) => 4,
        Bson::Binary(_) => 5,
        Bson::Undefined => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Null => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) => 13,
        Bson::Symbol(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::Int32(_) => 16,
        Bson::Timestamp(_) => 17,
        Bson::Int64(_) => 18,
        Bson::Decimal128(_) => 19,
        Bson::MinKey => -1,
        Bson::MaxKey => 127,
    }
}

pub fn is_number(v: &Bson) -> bool {
    matches!(v, Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_))
}

/// A non-empty run of ASCII digits: a path component that can address an array element.
pub fn is_all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The array index a path component names: digits only and written canonically, as mongod
/// compares the component with the element's field name ("01" addresses nothing).
pub fn array_index(s: &str) -> Option<usize> {
    if !is_all_digits(s) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// mongod's `parseIntegerElementToLong`: a number that is exactly an int64, else
/// FailedToParse naming the element (`name: value`).
pub fn parse_integer_element(name: &str, v: &Bson) -> Result<i64, MongoError> {
    let shown = || element_to_string(name, v);
    if !is_number(v) {
        return Err(failed_to_parse(format!("Expected a number in: {}", shown())));
    }
    if let Some(n) = exact_i64(v) {
        return Ok(n);
    }
    let d = number_as_f64(v).unwrap_or(f64::NAN);
    if d.is_nan() {
        return Err(failed_to_parse(format!("Expected an integer, but found NaN in: {}", shown())));
    }
    if d.fract() == 0.0 || d.is_infinite() {
        return Err(failed_to_parse(format!("Cannot represent as a 64-bit integer: {}", shown())));
    }
    Err(failed_to_parse(format!("Expected an integer: {}", shown())))
}

/// `parse_integer_element` refusing negative values.
pub fn parse_non_negative_integer(name: &str, v: &Bson) -> Result<i64, MongoError> {
    let n = parse_integer_element(name, v)?;
    if n < 0 {
        return Err(failed_to_parse(format!(
            "Expected a positive number in: {}",
            element_to_string(name, v)
        )));
    }
    Ok(n)
}

/// mongod's "truthiness" of an element (`BSONElement::trueValue`).
pub fn true_value(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Int32(i) => *i != 0,
        Bson::Int64(i) => *i != 0,
        Bson::Double(d) => *d != 0.0,
        Bson::Decimal128(_) => decimal_to_f64(v).is_some_and(|d| d != 0.0),
        Bson::Null | Bson::Undefined => false,
        _ => true,
    }
}

/// A number as the nearest f64.
pub fn number_as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Double(d) => Some(*d),
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Decimal128(_) => decimal_to_f64(v),
        _ => None,
    }
}

fn decimal_to_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Decimal128(d) => Some(super::compare::decimal128_to_f64(d)),
        _ => None,
    }
}

/// A number that is exactly an integer representable as i64 (mongod's
/// `parseIntegerElementToLong`-style check), else `None`.
pub fn exact_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(_) | Bson::Decimal128(_) => {
            let d = number_as_f64(v)?;
            // 2^63 is not representable as i64; the upper bound is exclusive.
            const TWO_63: f64 = (1u64 << 63) as f64;
            if d.fract() == 0.0 && (-TWO_63..TWO_63).contains(&d) {
                Some(d as i64)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Exact equality of type and value, as mongod's `binaryEqualValues`: 1 and 1.0 differ, field
/// order matters, NaN equals the same NaN, 0.0 and -0.0 differ. Used for no-op detection.
pub fn binary_equal(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits(),
        (Bson::Document(x), Bson::Document(y)) => doc_binary_equal(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| binary_equal(p, q))
        }
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            x.code == y.code && doc_binary_equal(&x.scope, &y.scope)
        }
        _ => std::mem::discriminant(a) == std::mem::discriminant(b) && a == b,
    }
}

pub fn doc_binary_equal(a: &Document, b: &Document) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && binary_equal(va, vb))
}

/// mongod's `BSONElement::toString(includeFieldName = true)`: `a: { b: 1 }`.
pub fn element_to_string(name: &str, v: &Bson) -> String {
    let mut s = String::new();
    s.push_str(name);
    s.push_str(": ");
    write_value(&mut s, v, 0);
    s
}

/// mongod's printing of a value inside messages (`{ a: 1 }`, `[ 1, 2 ]`, `"x"`).
pub fn value_to_string(v: &Bson) -> String {
    let mut s = String::new();
    write_value(&mut s, v, 0);
    s
}

/// `{ a: 1, b: "x" }` as mongod's `BSONObj::toString`.
pub fn doc_to_string(d: &Document) -> String {
    let mut s = String::new();
    write_doc(&mut s, d, 0);
    s
}

// Messages are bounded: deep or huge values are cut rather than printed whole.
const MAX_PRINT: usize = 1024;
const MAX_PRINT_DEPTH: usize = 20;

fn write_doc(s: &mut String, d: &Document, depth: usize) {
    if d.is_empty() {
        s.push_str("{}");
        return;
    }
    s.push_str("{ ");
    for (i, (k, v)) in d.iter().enumerate() {
        if s.len() > MAX_PRINT {
            s.push_str("...");
            break;
        }
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push_str(": ");
        write_value(s, v, depth + 1);
    }
    s.push_str(" }");
}

fn write_value(s: &mut String, v: &Bson, depth: usize) {
    use std::fmt::Write;
    if depth > MAX_PRINT_DEPTH {
        s.push_str("...");
        return;
    }
    match v {
        Bson::Double(d) => {
            if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e16 {
                let _ = write!(s, "{d:.1}");
            } else if d.is_nan() {
                s.push_str("nan");
            } else if d.is_infinite() {
                s.push_str(if *d > 0.0 { "inf" } else { "-inf" });
            } else {
                let _ = write!(s, "{d}");
            }
        }
        Bson::String(x) => {
            s.push('"');
            s.push_str(x);
            s.push('"');
        }
        Bson::Symbol(x) => {
            let _ = write!(s, "Symbol(\"{x}\")");
        }
        Bson::Document(d) => write_doc(s, d, depth),
        Bson::Array(a) => {
            if a.is_empty() {
                s.push_str("[]");
                return;
            }
            s.push_str("[ ");
            for (i, e) in a.iter().enumerate() {
                if s.len() > MAX_PRINT {
                    s.push_str("...");
                    break;
                }
                if i > 0 {
                    s.push_str(", ");
                }
                write_value(s, e, depth + 1);
            }
            s.push_str(" ]");
        }
        Bson::Boolean(b) => s.push_str(if *b { "true" } else { "false" }),
        Bson::Null => s.push_str("null"),
        Bson::Undefined => s.push_str("undefined"),
        Bson::Int32(i) => {
            let _ = write!(s, "{i}");
        }
        Bson::Int64(i) => {
            let _ = write!(s, "{i}");
        }
        Bson::Decimal128(d) => {
            let _ = write!(s, "NumberDecimal(\"{d}\")");
        }
        Bson::ObjectId(o) => {
            let _ = write!(s, "ObjectId('{}')", o.to_hex());
        }
        Bson::DateTime(d) => {
            let _ = write!(s, "new Date({})", d.timestamp_millis());
        }
        Bson::Timestamp(t) => {
            let _ = write!(s, "Timestamp({}, {})", t.time, t.increment);
        }
        Bson::RegularExpression(r) => {
            let _ = write!(s, "/{}/{}", r.pattern, r.options);
        }
        Bson::Binary(b) => {
            let hex: String = b.bytes.iter().take(64).map(|x| format!("{x:02X}")).collect();
            let _ = write!(s, "BinData({}, {})", u8::from(b.subtype), hex);
        }
        Bson::JavaScriptCode(c) => s.push_str(c),
        Bson::JavaScriptCodeWithScope(c) => s.push_str(&c.code),
        Bson::MinKey => s.push_str("MinKey"),
        Bson::MaxKey => s.push_str("MaxKey"),
        Bson::DbPointer(_) => s.push_str("DBRef(...)"),
    }
}

/// The result of mongod's SafeNum arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub enum ArithOutcome {
    Value(Bson),
    /// An integer result that does not fit int64: mongod fails the update.
    Overflow,
    /// Not numbers, or decimal arithmetic (handled by the caller).
    Unsupported,
}

/// mongod's SafeNum arithmetic for `$inc` (`mul == false`) and `$mul`: int32 widens to int64
/// on overflow, an int64 overflow is an error (not a double); a double operand makes a
/// double.
pub fn arith(a: &Bson, b: &Bson, mul: bool) -> ArithOutcome {
    let f = |x: f64, y: f64| if mul { x * y } else { x + y };
    match (a, b) {
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => ArithOutcome::Unsupported,
        (Bson::Double(_), _) | (_, Bson::Double(_)) => match (number_as_f64(a), number_as_f64(b)) {
            (Some(x), Some(y)) => ArithOutcome::Value(Bson::Double(f(x, y))),
            _ => ArithOutcome::Unsupported,
        },
        (Bson::Int32(x), Bson::Int32(y)) => {
            let r = if mul { x.checked_mul(*y) } else { x.checked_add(*y) };
            match r {
                Some(v) => ArithOutcome::Value(Bson::Int32(v)),
                None => arith(&Bson::Int64(i64::from(*x)), &Bson::Int64(i64::from(*y)), mul),
            }
        }
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            let (Some(x), Some(y)) = (exact_i64(a), exact_i64(b)) else {
                return ArithOutcome::Unsupported;
            };
            let r = if mul { x.checked_mul(y) } else { x.checked_add(y) };
            match r {
                Some(v) => ArithOutcome::Value(Bson::Int64(v)),
                None => ArithOutcome::Overflow,
            }
        }
        _ => ArithOutcome::Unsupported,
    }
}

/// mongod's `SafeNum::debugString`: `(NumberInt)42`, `(NumberLong)7`...
pub fn safe_num_debug(v: &Bson) -> String {
    match v {
        Bson::Int32(i) => format!("(NumberInt){i}"),
        Bson::Int64(i) => format!("(NumberLong){i}"),
        Bson::Double(d) => format!("(NumberDouble){d}"),
        Bson::Decimal128(d) => format!("(NumberDecimal){d}"),
        other => format!("(EOO){}", value_to_string(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn printing() {
        assert_eq!(element_to_string("a", &Bson::Int32(1)), "a: 1");
        assert_eq!(element_to_string("a", &Bson::Double(1.0)), "a: 1.0");
        assert_eq!(value_to_string(&Bson::Double(2.5)), "2.5");
        let d = doc! {"a": [1, {"b": "x"}], "c": {}};
        assert_eq!(doc_to_string(&d), "{ a: [ 1, { b: \"x\" } ], c: {} }");
    }

    #[test]
    fn arithmetic_promotion() {
        use ArithOutcome::*;
        let big = Bson::Int64(2147483648);
        assert_eq!(arith(&Bson::Int32(i32::MAX), &Bson::Int32(1), false), Value(big));
        assert_eq!(arith(&Bson::Int32(65536), &Bson::Int32(65536), true), Value(Bson::Int64(1 << 32)));
        assert_eq!(arith(&Bson::Int64(i64::MAX), &Bson::Int32(1), false), Overflow);
        assert_eq!(arith(&Bson::Int32(42), &Bson::Int64(i64::MAX), false), Overflow);
        assert_eq!(arith(&Bson::Int32(2), &Bson::Double(1.5), true), Value(Bson::Double(3.0)));
        assert_eq!(arith(&Bson::Int32(2), &Bson::Int64(3), false), Value(Bson::Int64(5)));
        assert_eq!(arith(&Bson::Int32(2), &Bson::String("x".into()), false), Unsupported);
        assert_eq!(safe_num_debug(&Bson::Int64(7)), "(NumberLong)7");
    }

    #[test]
    fn binary_equality() {
        assert!(!binary_equal(&Bson::Int32(1), &Bson::Double(1.0)));
        assert!(binary_equal(&Bson::Double(f64::NAN), &Bson::Double(f64::NAN)));
        assert!(!binary_equal(&Bson::Document(doc! {"a":1,"b":2}), &Bson::Document(doc! {"b":2,"a":1})));
    }

    #[test]
    fn indexes() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("12"), Some(12));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("a"), None);
        assert_eq!(array_index(""), None);
    }
}
