//! Type inspection and conversion: `$type`, `$isNumber`, `$convert` and its shorthands
//! (`$toInt` `$toLong` `$toDouble` `$toDecimal` `$toString` `$toBool` `$toObjectId` `$toDate`),
//! `$toUUID`, and `$toHashedIndexKey` (the key a hashed index stores for a value).

use super::{err, find_arg, func, named_args, nullish, type_of, Ctx, Expr, Parser, Special};
use crate::error::Result;
use crate::query::util::type_name;
use bson::{oid::ObjectId, Bson, DateTime, Decimal128};
use std::str::FromStr;

/// mongod's ConversionFailure.
const CONVERSION_FAILURE: i32 = 241;

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let r = match name {
        "$type" => p
            .args_exact(name, arg, 1)
            .and_then(|a| func("$type", a, |_, v| Ok(Some(Bson::String(type_of(&v[0]).to_string()))))),
        "$isNumber" => p.args_exact(name, arg, 1).and_then(|a| {
            func("$isNumber", a, |_, v| {
                Ok(Some(Bson::Boolean(matches!(
                    v[0],
                    Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_))
                ))))
            })
        }),
        "$convert" => parse_convert(arg, p),
        "$toUUID" => p.args_exact(name, arg, 1).map(|mut a| {
            let to = bson::doc! {"type": "binData", "subtype": 4};
            fold(Convert {
                input: a.remove(0),
                to: Expr::Const(Bson::Document(to)),
                format: Some(Expr::Const(Bson::String("uuid".into()))),
                on_error: None,
                on_null: None,
            })
        }),
        "$toHashedIndexKey" => p.parse(arg).and_then(|a| {
            func("$toHashedIndexKey", vec![a], |_, v| {
                let v = v.first().cloned().flatten().unwrap_or(Bson::Null);
                Ok(Some(Bson::Int64(crate::store::hashed::hash_value(&v))))
            })
        }),
        _ => {
            let to = match name {
                "$toInt" => 16,
                "$toLong" => 18,
                "$toDouble" => 1,
                "$toDecimal" => 19,
                "$toString" => 2,
                "$toBool" => 8,
                "$toObjectId" => 7,
                "$toDate" => 9,
                _ => return None,
            };
            p.args_exact(name, arg, 1).map(|mut a| {
                let input = a.remove(0);
                let c = Convert {
                    input,
                    to: Expr::Const(Bson::Int32(to)),
                    format: None,
                    on_error: None,
                    on_null: None,
                };
                fold(c)
            })
        }
    };
    Some(r)
}

fn fold(c: Convert) -> Expr {
    if c.input.is_const()
        && c.to.is_const()
        && c.format.as_ref().is_none_or(Expr::is_const)
        && c.on_error.is_none()
        && c.on_null.is_none()
    {
        let mut ctx = super::const_ctx();
        if let Ok(v) = c.eval(&mut ctx) {
            return v.map(Expr::Const).unwrap_or(Expr::Special(Box::new(c)));
        }
    }
    Expr::Special(Box::new(c))
}

struct Convert {
    input: Expr,
    to: Expr,
    format: Option<Expr>,
    on_error: Option<Expr>,
    on_null: Option<Expr>,
}

fn parse_convert(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$convert", arg, &["input", "to", "format", "onError", "onNull"], 40450, 40451)?;
    let input =
        find_arg(&args, "input").ok_or_else(|| err(40414, "Missing 'input' parameter to $convert"))?;
    let to = find_arg(&args, "to").ok_or_else(|| err(40414, "Missing 'to' parameter to $convert"))?;
    let c = Convert {
        input: p.parse(input)?,
        to: p.parse(to)?,
        format: find_arg(&args, "format").map(|v| p.parse(v)).transpose()?,
        on_error: find_arg(&args, "onError").map(|v| p.parse(v)).transpose()?,
        on_null: find_arg(&args, "onNull").map(|v| p.parse(v)).transpose()?,
    };
    Ok(fold(c))
}

impl Special for Convert {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let to = self.to.eval(c)?;
        let input = self.input.eval(c)?;
        if nullish(&to) {
            return Ok(Some(Bson::Null));
        }
        // `to: {type, subtype}` names a BinData subtype (mongod 8.0).
        let (code, subtype) = match &to {
            Some(Bson::Document(d)) => {
                let t = d.get("type").cloned().unwrap_or(Bson::Null);
                let sub = match d.get("subtype") {
                    None => 0,
                    Some(v) => crate::query::util::exact_i64(v)
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| err(4341107, "Invalid 'to.subtype' value in $convert"))?,
                };
                (target_code(&t)?, sub)
            }
            other => (target_code(other.as_ref().unwrap_or(&Bson::Null))?, 0),
        };
        let format = match &self.format {
            None => None,
            Some(e) => match e.eval(c)? {
                Some(Bson::String(f)) if super::bindata::FORMATS.contains(&f.as_str()) => Some(f),
                other => {
                    return Err(crate::error::MongoError::bad_value(format!(
                        "Invalid format value for $convert: {}",
                        other.as_ref().map(crate::query::util::value_to_string).unwrap_or_default()
                    )))
                }
            },
        };
        if nullish(&input) {
            return match &self.on_null {
                Some(e) => e.eval(c),
                None => Ok(Some(Bson::Null)),
            };
        }
        let v = input.unwrap_or(Bson::Null);
        let out = match (code, &v) {
            (5, _) | (2, Bson::Binary(_)) => {
                super::bindata::convert(&v, code == 2, subtype, format.as_deref())
            }
            _ => convert(&v, code),
        };
        match out {
            Ok(out) => Ok(Some(out)),
            Err(msg) => match &self.on_error {
                Some(e) => e.eval(c),
                None => Err(err(CONVERSION_FAILURE, format!("{msg} in $convert with no onError value"))),
            },
        }
    }
}

fn target_code(to: &Bson) -> Result<i32> {
    let code = match to {
        // $type's names, less the deprecated types $convert does not know by name.
        Bson::String(s) => {
            match crate::query::ops_element::type_alias(s).filter(|c| !matches!(c, 6 | 12..=15)) {
                Some(code) => code,
                None => return Err(err(2, format!("Unknown type name: {s}"))),
            }
        }
        other => match crate::query::util::exact_i64(other) {
            Some(n) => n as i32,
            None => {
                return Err(err(
                    50921,
                    format!(
                        "$convert's 'to' argument must be a string or number, but is {}",
                        type_name(other)
                    ),
                ))
            }
        },
    };
    Ok(code)
}

fn target_name(code: i32) -> &'static str {
    match code {
        1 => "double",
        2 => "string",
        3 => "object",
        4 => "array",
        5 => "binData",
        7 => "objectId",
        8 => "bool",
        9 => "date",
        10 => "null",
        11 => "regex",
        16 => "int",
        17 => "timestamp",
        18 => "long",
        19 => "decimal",
        _ => "unknown",
    }
}

/// Converts `v` (not null) to the BSON type `code`; the error is mongod's message without its
/// "in $convert ..." suffix.
pub fn convert(v: &Bson, code: i32) -> std::result::Result<Bson, String> {
    let unsupported = || format!("Unsupported conversion from {} to {}", type_name(v), target_name(code));
    let num = super::arith::num(v);
    match code {
        1 => match v {
            Bson::Double(d) => Ok(Bson::Double(*d)),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => {
                Ok(Bson::Double(num.map(|n| n.to_f64()).unwrap_or(0.0)))
            }
            Bson::Boolean(b) => Ok(Bson::Double(if *b { 1.0 } else { 0.0 })),
            Bson::DateTime(d) => Ok(Bson::Double(d.timestamp_millis() as f64)),
            Bson::String(s) => parse_double(s).map(Bson::Double).ok_or_else(|| failed_number(s)),
            _ => Err(unsupported()),
        },
        16 | 18 => {
            let long = code == 18;
            let i: i64 = match v {
                Bson::Int32(i) => i64::from(*i),
                Bson::Int64(i) => *i,
                Bson::Double(_) | Bson::Decimal128(_) => {
                    let d = num.map(|n| n.to_f64()).unwrap_or(0.0);
                    if d.is_nan() {
                        return Err("Attempt to convert NaN value to integer type".into());
                    }
                    if d.is_infinite() {
                        return Err("Attempt to convert infinity value to integer type".into());
                    }
                    let t = d.trunc();
                    let (lo, hi) = if long {
                        (-9.223372036854776e18, 9.223372036854776e18)
                    } else {
                        (-2147483649.0, 2147483648.0)
                    };
                    if t < lo || t >= hi || (!long && t <= lo) {
                        return Err("Conversion would overflow target type".into());
                    }
                    t as i64
                }
                Bson::Boolean(b) => i64::from(*b),
                Bson::DateTime(d) if long => d.timestamp_millis(),
                Bson::String(s) => {
                    if long {
                        s.parse::<i64>().map_err(|_| failed_number(s))?
                    } else {
                        i64::from(s.parse::<i32>().map_err(|_| failed_number(s))?)
                    }
                }
                _ => return Err(unsupported()),
            };
            if long {
                Ok(Bson::Int64(i))
            } else {
                i32::try_from(i).map(Bson::Int32).map_err(|_| "Conversion would overflow target type".into())
            }
        }
        19 => match v {
            Bson::Decimal128(d) => Ok(Bson::Decimal128(*d)),
            Bson::Int32(i) => dec(&i.to_string()),
            Bson::Int64(i) => dec(&i.to_string()),
            Bson::Double(d) => dec(&format_double(*d)),
            Bson::Boolean(b) => dec(if *b { "1" } else { "0" }),
            Bson::DateTime(d) => dec(&d.timestamp_millis().to_string()),
            Bson::String(s) => Decimal128::from_str(s).map(Bson::Decimal128).map_err(|_| failed_number(s)),
            _ => Err(unsupported()),
        },
        2 => Ok(Bson::String(match v {
            Bson::String(s) => s.clone(),
            Bson::Int32(i) => i.to_string(),
            Bson::Int64(i) => i.to_string(),
            Bson::Double(d) => format_double(*d),
            Bson::Decimal128(d) => d.to_string(),
            Bson::Boolean(b) => b.to_string(),
            Bson::DateTime(d) => super::date::iso_string(d.timestamp_millis()),
            Bson::ObjectId(o) => o.to_hex(),
            _ => return Err(unsupported()),
        })),
        8 => match v {
            Bson::Boolean(b) => Ok(Bson::Boolean(*b)),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
                Ok(Bson::Boolean(crate::query::util::true_value(v)))
            }
            Bson::String(_) | Bson::ObjectId(_) | Bson::DateTime(_) => Ok(Bson::Boolean(true)),
            _ => Err(unsupported()),
        },
        7 => match v {
            Bson::ObjectId(o) => Ok(Bson::ObjectId(*o)),
            Bson::String(s) => {
                if s.len() != 24 {
                    return Err(format!(
                        "Failed to parse objectId '{s}': Invalid string length for parsing to OID, expected 24 but found {}",
                        s.len()
                    ));
                }
                ObjectId::parse_str(s).map(Bson::ObjectId).map_err(|_| {
                    format!("Failed to parse objectId '{s}': Invalid character found in hex string")
                })
            }
            _ => Err(unsupported()),
        },
        9 => match v {
            Bson::DateTime(d) => Ok(Bson::DateTime(*d)),
            Bson::Int64(i) => Ok(Bson::DateTime(DateTime::from_millis(*i))),
            Bson::Double(_) | Bson::Decimal128(_) => {
                let d = num.map(|n| n.to_f64()).unwrap_or(0.0);
                if !d.is_finite() || d.abs() >= 9.2e18 {
                    return Err("Conversion would overflow target type".to_string());
                }
                Ok(Bson::DateTime(DateTime::from_millis(d.trunc() as i64)))
            }
            Bson::ObjectId(o) => {
                Ok(Bson::DateTime(DateTime::from_millis((o.timestamp().timestamp_millis() / 1000) * 1000)))
            }
            Bson::Timestamp(t) => Ok(Bson::DateTime(DateTime::from_millis(i64::from(t.time) * 1000))),
            Bson::String(s) => super::date::parse_date_string(s)
                .map(|ms| Bson::DateTime(DateTime::from_millis(ms)))
                .ok_or_else(|| format!("Error parsing date string '{s}'")),
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

fn dec(s: &str) -> std::result::Result<Bson, String> {
    Decimal128::from_str(s).map(Bson::Decimal128).map_err(|_| format!("Failed to convert {s} to decimal"))
}

fn failed_number(s: &str) -> String {
    format!("Failed to parse number '{s}'")
}

fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    if t.is_empty() || s.trim() != s {
        return None;
    }
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "inf" => {
            return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    s.parse::<f64>().ok()
}

/// A double as mongod prints it in `$toString`/`$concat`-style conversions.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let a = d.abs();
    if !(1e-4..1e16).contains(&a) {
        // Exponent form with a sign and at least two digits, as printf's %g gives.
        let s = format!("{d:e}");
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(x) => ('-', x),
                None => ('+', e),
            };
            let digits = if digits.len() < 2 { format!("0{digits}") } else { digits.to_string() };
            return format!("{m}e{sign}{digits}");
        }
        return s;
    }
    format!("{d}")
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, oid::ObjectId, Bson};

    #[test]
    fn conversions() {
        assert_eq!(ev(bson!({"$toInt": "42"})).unwrap(), Some(Bson::Int32(42)));
        assert_eq!(ev(bson!({"$toInt": 4.9})).unwrap(), Some(Bson::Int32(4)));
        assert_eq!(code(ev(bson!({"$toInt": "4.5"}))), 241);
        assert_eq!(code(ev(bson!({"$toInt": 3e10}))), 241);
        assert_eq!(ev(bson!({"$toLong": 3e10})).unwrap(), Some(Bson::Int64(30_000_000_000)));
        assert_eq!(ev(bson!({"$toDouble": "1.5"})).unwrap(), Some(Bson::Double(1.5)));
        assert_eq!(ev(bson!({"$toString": 2.5})).unwrap(), Some(bson!("2.5")));
        assert_eq!(ev(bson!({"$toString": 5.0})).unwrap(), Some(bson!("5")));
        assert_eq!(ev(bson!({"$toBool": "false"})).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(ev(bson!({"$toBool": 0})).unwrap(), Some(Bson::Boolean(false)));
        let h = |v: Bson| ev(bson!({"$toHashedIndexKey": v})).unwrap();
        assert_eq!(h(bson!(1)), Some(Bson::Int64(crate::store::hashed::hash_value(&Bson::Int32(1)))));
        assert_eq!(h(bson!(1)), h(bson!(1.0)));
        assert_ne!(h(bson!("a")), h(bson!("b")));
        assert_eq!(h(bson!("$nope")), h(Bson::Null));
        assert_eq!(ev(bson!({"$toInt": null})).unwrap(), Some(Bson::Null));
        let oid = ObjectId::parse_str("5ab9cbfa31c2ab715d42129e").unwrap();
        assert_eq!(
            ev(bson!({"$toObjectId": "5ab9cbfa31c2ab715d42129e"})).unwrap(),
            Some(Bson::ObjectId(oid))
        );
        assert_eq!(
            ev(bson!({"$convert": {"input": "abc", "to": "int", "onError": "bad"}})).unwrap(),
            Some(bson!("bad"))
        );
        assert_eq!(
            ev(bson!({"$convert": {"input": null, "to": "int", "onNull": 0}})).unwrap(),
            Some(Bson::Int32(0))
        );
        assert_eq!(ev(bson!({"$type": "$nope"})).unwrap(), Some(bson!("missing")));
        assert_eq!(ev(bson!({"$type": [[1]]})).unwrap(), Some(bson!("array")));
        assert_eq!(ev(bson!({"$isNumber": 1.5})).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(
            ev(bson!({"$toDate": "2018-03-20T11:00:00Z"})).unwrap(),
            Some(Bson::DateTime(bson::DateTime::from_millis(1521543600000)))
        );
        assert_eq!(super::format_double(1e20), "1e+20");
    }
}
