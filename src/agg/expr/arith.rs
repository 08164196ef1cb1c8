//! Arithmetic and trigonometric expressions, with mongod's numeric promotion: int32 widens to
//! int64 on overflow, int64 to double; a double operand makes a double. Also `$sum`/`$avg`/
//! `$min`/`$max`/`$stdDevPop`/`$stdDevSamp` used as expressions.

use super::decimal;
use super::{err, func, nullish, type_of, Expr, Parser};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::compare::{compare_bson, Num};
use bson::{Bson, DateTime, Decimal128};

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let r = match name {
        "$add" => p.args(arg).and_then(|a| func("$add", a, add_fn)),
        "$multiply" => p.args(arg).and_then(|a| func("$multiply", a, multiply_fn)),
        "$subtract" => p.args_exact(name, arg, 2).and_then(|a| func("$subtract", a, subtract_fn)),
        "$divide" => p.args_exact(name, arg, 2).and_then(|a| func("$divide", a, divide_fn)),
        "$mod" => p.args_exact(name, arg, 2).and_then(|a| func("$mod", a, mod_fn)),
        "$pow" => p.args_exact(name, arg, 2).and_then(|a| func("$pow", a, pow_fn)),
        "$log" => p.args_exact(name, arg, 2).and_then(|a| func("$log", a, log_fn)),
        "$round" => p.args_range(name, arg, 1, 2).and_then(|a| func("$round", a, round_fn)),
        "$trunc" => p.args_range(name, arg, 1, 2).and_then(|a| func("$trunc", a, round_fn)),
        "$atan2" => p.args_exact(name, arg, 2).and_then(|a| func("$atan2", a, atan2_fn)),
        "$sum" | "$avg" | "$min" | "$max" | "$stdDevPop" | "$stdDevSamp" => {
            let st: &'static str = match name {
                "$sum" => "$sum",
                "$avg" => "$avg",
                "$min" => "$min",
                "$max" => "$max",
                "$stdDevPop" => "$stdDevPop",
                _ => "$stdDevSamp",
            };
            p.args(arg).and_then(|a| func(st, a, list_fn))
        }
        _ => {
            let st = UNARY.iter().find(|n| **n == name)?;
            p.args_exact(name, arg, 1).and_then(|a| func(st, a, unary_fn))
        }
    };
    Some(r)
}

const UNARY: &[&str] = &[
    "$abs",
    "$ceil",
    "$floor",
    "$sqrt",
    "$exp",
    "$ln",
    "$log10",
    "$sin",
    "$cos",
    "$tan",
    "$asin",
    "$acos",
    "$atan",
    "$sinh",
    "$cosh",
    "$tanh",
    "$asinh",
    "$acosh",
    "$atanh",
    "$degreesToRadians",
    "$radiansToDegrees",
];

pub fn num(v: &Bson) -> Option<Num> {
    crate::query::compare::as_number(v)
}

/// a + b with promotion.
pub fn add_nums(a: Num, b: Num) -> Result<Num> {
    Ok(match (a, b) {
        (Num::Decimal(_), _) | (_, Num::Decimal(_)) => Num::Decimal(super::decimal::add(a, b)),
        (Num::Double(_), _) | (_, Num::Double(_)) => Num::Double(a.to_f64() + b.to_f64()),
        (Num::Int32(x), Num::Int32(y)) => match x.checked_add(y) {
            Some(r) => Num::Int32(r),
            None => Num::Int64(i64::from(x) + i64::from(y)),
        },
        _ => {
            let (x, y) = (as_i64(a), as_i64(b));
            match x.checked_add(y) {
                Some(r) => Num::Int64(r),
                None => Num::Double(x as f64 + y as f64),
            }
        }
    })
}

fn sub_nums(a: Num, b: Num) -> Result<Num> {
    Ok(match (a, b) {
        (Num::Decimal(_), _) | (_, Num::Decimal(_)) => Num::Decimal(super::decimal::sub(a, b)),
        (Num::Double(_), _) | (_, Num::Double(_)) => Num::Double(a.to_f64() - b.to_f64()),
        (Num::Int32(x), Num::Int32(y)) => match x.checked_sub(y) {
            Some(r) => Num::Int32(r),
            None => Num::Int64(i64::from(x) - i64::from(y)),
        },
        _ => {
            let (x, y) = (as_i64(a), as_i64(b));
            match x.checked_sub(y) {
                Some(r) => Num::Int64(r),
                None => Num::Double(x as f64 - y as f64),
            }
        }
    })
}

fn mul_nums(a: Num, b: Num) -> Result<Num> {
    Ok(match (a, b) {
        (Num::Decimal(_), _) | (_, Num::Decimal(_)) => Num::Decimal(super::decimal::mul(a, b)),
        (Num::Double(_), _) | (_, Num::Double(_)) => Num::Double(a.to_f64() * b.to_f64()),
        (Num::Int32(x), Num::Int32(y)) => match x.checked_mul(y) {
            Some(r) => Num::Int32(r),
            None => Num::Int64(i64::from(x) * i64::from(y)),
        },
        _ => {
            let (x, y) = (as_i64(a), as_i64(b));
            match x.checked_mul(y) {
                Some(r) => Num::Int64(r),
                None => Num::Double(x as f64 * y as f64),
            }
        }
    })
}

fn as_i64(n: Num) -> i64 {
    match n {
        Num::Int32(i) => i64::from(i),
        Num::Int64(i) => i,
        Num::Double(d) => d as i64,
        Num::Decimal(_) => n.to_f64() as i64,
    }
}

/// A double of milliseconds rounded as mongod rounds it when adding to a date.
fn ms_of(n: Num) -> Result<i64> {
    match n {
        Num::Int32(i) => Ok(i64::from(i)),
        Num::Int64(i) => Ok(i),
        _ => {
            let d = n.to_f64().round();
            if !d.is_finite() || d.abs() >= 9.2e18 {
                return Err(err(ErrorCode::Overflow.code(), "date overflow in $add"));
            }
            Ok(d as i64)
        }
    }
}

fn add_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let mut total = Num::Int32(0);
    let mut date: Option<i64> = None;
    for a in args {
        if nullish(a) {
            return Ok(Some(Bson::Null));
        }
        match a {
            Some(Bson::DateTime(d)) => {
                if date.is_some() {
                    return Err(err(16612, "only one date allowed in an $add expression"));
                }
                date = Some(d.timestamp_millis());
            }
            Some(v) => match num(v) {
                Some(n) => total = add_nums(total, n)?,
                None => {
                    return Err(err(
                        16554,
                        format!("$add only supports numeric or date types, not {}", type_of(a)),
                    ))
                }
            },
            None => {}
        }
    }
    match date {
        Some(ms) => {
            let delta = ms_of(total)?;
            let r = ms
                .checked_add(delta)
                .ok_or_else(|| err(ErrorCode::Overflow.code(), "date overflow in $add"))?;
            Ok(Some(Bson::DateTime(DateTime::from_millis(r))))
        }
        None => Ok(Some(total.to_bson())),
    }
}

fn multiply_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let mut total = Num::Int32(1);
    for a in args {
        if nullish(a) {
            return Ok(Some(Bson::Null));
        }
        match a.as_ref().and_then(num) {
            Some(n) => total = mul_nums(total, n)?,
            None => {
                return Err(err(16555, format!("$multiply only supports numeric types, not {}", type_of(a))))
            }
        }
    }
    Ok(Some(total.to_bson()))
}

fn two(args: &[Option<Bson>]) -> (&Option<Bson>, &Option<Bson>) {
    static NONE: Option<Bson> = None;
    (args.first().unwrap_or(&NONE), args.get(1).unwrap_or(&NONE))
}

fn subtract_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) || nullish(b) {
        return Ok(Some(Bson::Null));
    }
    let bad = || err(16556, format!("can't $subtract {} from {}", type_of(b), type_of(a)));
    match (a.as_ref(), b.as_ref()) {
        (Some(Bson::DateTime(x)), Some(Bson::DateTime(y))) => {
            Ok(Some(Bson::Int64(x.timestamp_millis().wrapping_sub(y.timestamp_millis()))))
        }
        (Some(Bson::DateTime(x)), Some(y)) => {
            let n = num(y).ok_or_else(bad)?;
            let r = x
                .timestamp_millis()
                .checked_sub(ms_of(n)?)
                .ok_or_else(|| err(ErrorCode::Overflow.code(), "date overflow in $subtract"))?;
            Ok(Some(Bson::DateTime(DateTime::from_millis(r))))
        }
        (Some(x), Some(y)) => match (num(x), num(y)) {
            (Some(x), Some(y)) => Ok(Some(sub_nums(x, y)?.to_bson())),
            _ => Err(bad()),
        },
        _ => Ok(Some(Bson::Null)),
    }
}

fn divide_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) || nullish(b) {
        return Ok(Some(Bson::Null));
    }
    let (Some(x), Some(y)) = (a.as_ref().and_then(num), b.as_ref().and_then(num)) else {
        return Err(err(
            16609,
            format!("$divide only supports numeric types, not {} and {}", type_of(a), type_of(b)),
        ));
    };
    if matches!(x, Num::Decimal(_)) || matches!(y, Num::Decimal(_)) {
        return match super::decimal::div(x, y) {
            Some(q) => Ok(Some(Bson::Decimal128(q))),
            None => Err(err(16608, "can't $divide by zero")),
        };
    }
    if y.to_f64() == 0.0 {
        return Err(err(16608, "can't $divide by zero"));
    }
    Ok(Some(Bson::Double(x.to_f64() / y.to_f64())))
}

fn mod_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) || nullish(b) {
        return Ok(Some(Bson::Null));
    }
    let (Some(x), Some(y)) = (a.as_ref().and_then(num), b.as_ref().and_then(num)) else {
        return Err(err(
            16611,
            format!("$mod only supports numeric types, not {} and {}", type_of(a), type_of(b)),
        ));
    };
    Ok(Some(match (x, y) {
        (Num::Decimal(_), _) | (_, Num::Decimal(_)) => match super::decimal::rem(x, y) {
            Some(r) => Bson::Decimal128(r),
            None => return Err(err(16610, "can't $mod by zero")),
        },
        (Num::Double(_), _) | (_, Num::Double(_)) => {
            if y.to_f64() == 0.0 {
                return Err(err(16610, "can't $mod by zero"));
            }
            Bson::Double(x.to_f64() % y.to_f64())
        }
        (Num::Int32(p), Num::Int32(q)) => {
            if q == 0 {
                return Err(err(16610, "can't $mod by zero"));
            }
            Bson::Int32(p.wrapping_rem(q))
        }
        _ => {
            let (p, q) = (as_i64(x), as_i64(y));
            if q == 0 {
                return Err(err(16610, "can't $mod by zero"));
            }
            Bson::Int64(p.wrapping_rem(q))
        }
    }))
}

fn pow_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) || nullish(b) {
        return Ok(Some(Bson::Null));
    }
    let base = a
        .as_ref()
        .and_then(num)
        .ok_or_else(|| err(28762, format!("$pow's base must be numeric, not {}", type_of(a))))?;
    let exp = b
        .as_ref()
        .and_then(num)
        .ok_or_else(|| err(28763, format!("$pow's exponent must be numeric, not {}", type_of(b))))?;
    if base.to_f64() == 0.0 && exp.to_f64() < 0.0 {
        return Err(err(28764, "$pow cannot take a base of 0 and a negative exponent"));
    }
    if matches!(base, Num::Decimal(_)) || matches!(exp, Num::Decimal(_)) {
        return Ok(Some(Bson::Decimal128(super::decimal::pow(base, exp))));
    }
    if matches!(base, Num::Double(_)) || matches!(exp, Num::Double(_)) {
        return Ok(Some(Bson::Double(base.to_f64().powf(exp.to_f64()))));
    }
    let (bi, ei) = (as_i64(base), as_i64(exp));
    let both_int32 = matches!(base, Num::Int32(_)) && matches!(exp, Num::Int32(_));
    if ei < 0 {
        return Ok(Some(match bi {
            1 => narrow(1, both_int32),
            -1 => narrow(if ei % 2 == 0 { 1 } else { -1 }, both_int32),
            _ => Bson::Double((bi as f64).powf(ei as f64)),
        }));
    }
    let r = u32::try_from(ei).ok().and_then(|e| bi.checked_pow(e));
    Ok(Some(match r {
        Some(v) => narrow(v, both_int32),
        None => Bson::Double((bi as f64).powf(ei as f64)),
    }))
}

/// An integer result: int32 when both inputs were and it fits, else int64.
fn narrow(v: i64, int32: bool) -> Bson {
    match i32::try_from(v) {
        Ok(i) if int32 => Bson::Int32(i),
        _ => Bson::Int64(v),
    }
}

fn log_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) || nullish(b) {
        return Ok(Some(Bson::Null));
    }
    let x = a
        .as_ref()
        .and_then(num)
        .ok_or_else(|| err(28756, format!("$log's argument must be numeric, not {}", type_of(a))))?;
    let base = b
        .as_ref()
        .and_then(num)
        .ok_or_else(|| err(28757, format!("$log's base must be numeric, not {}", type_of(b))))?;
    let decimal_args = matches!(x, Num::Decimal(_)) || matches!(base, Num::Decimal(_));
    let (xn, basen) = (x, base);
    let (x, base) = (x.to_f64(), base.to_f64());
    if x.is_nan() || base.is_nan() {
        return Ok(Some(if decimal_args {
            Bson::Decimal128(decimal::ln(Num::Double(f64::NAN)))
        } else {
            Bson::Double(f64::NAN)
        }));
    }
    if x <= 0.0 {
        return Err(err(28758, format!("$log's argument must be a positive number, but is {}", fmt_f(x))));
    }
    if base <= 0.0 || base == 1.0 {
        return Err(err(
            28759,
            format!("$log's base must be a positive number not equal to 1, but is {}", fmt_f(base)),
        ));
    }
    if decimal_args {
        return Ok(Some(Bson::Decimal128(decimal::log(xn, basen))));
    }
    Ok(Some(Bson::Double(x.ln() / base.ln())))
}

fn fmt_f(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn round_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) {
        return Ok(Some(Bson::Null));
    }
    let place = if args.len() > 1 {
        if nullish(b) {
            return Ok(Some(Bson::Null));
        }
        let p = b.as_ref().and_then(crate::query::util::exact_i64).ok_or_else(|| {
            err(51081, format!("{name} requires \"place\" argument to be an integral value"))
        })?;
        if !(-20..=100).contains(&p) {
            return Err(err(
                51083,
                format!("cannot apply {name} with precision value {p} value must be in [-20, 100]"),
            ));
        }
        p
    } else {
        0
    };
    let n = a
        .as_ref()
        .and_then(num)
        .ok_or_else(|| err(51080, format!("{name} only supports numeric types, not {}", type_of(a))))?;
    let trunc = name == "$trunc";
    Ok(Some(match n {
        Num::Decimal(d) => Bson::Decimal128(super::decimal::quantize(d, place, trunc)),
        Num::Double(d) => {
            if !d.is_finite() {
                Bson::Double(d)
            } else {
                let scale = 10f64.powi(place as i32);
                let scaled = d * scale;
                let r = if trunc { scaled.trunc() } else { scaled.round_ties_even() };
                let out = r / scale;
                Bson::Double(if out.is_finite() { out } else { d })
            }
        }
        Num::Int32(_) | Num::Int64(_) => {
            if place >= 0 {
                n.to_bson()
            } else {
                let v = as_i64(n);
                let m = 10i128.pow(place.unsigned_abs() as u32);
                let v128 = i128::from(v);
                let q = v128 / m;
                let rem = v128 % m;
                let mut q2 = q;
                if !trunc {
                    let twice = rem.abs() * 2;
                    if twice > m || (twice == m && q % 2 != 0) {
                        q2 += v128.signum();
                    }
                }
                let r = q2 * m;
                match (n, i32::try_from(r), i64::try_from(r)) {
                    (Num::Int32(_), Ok(i), _) => Bson::Int32(i),
                    (_, _, Ok(l)) => Bson::Int64(l),
                    _ => Bson::Double(r as f64),
                }
            }
        }
    }))
}

fn atan2_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let (a, b) = two(args);
    if nullish(a) || nullish(b) {
        return Ok(Some(Bson::Null));
    }
    let (Some(y), Some(x)) = (a.as_ref().and_then(num), b.as_ref().and_then(num)) else {
        return Err(err(51044, "$atan2 only supports numeric types"));
    };
    Ok(Some(Bson::Double(y.to_f64().atan2(x.to_f64()))))
}

fn unary_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let a = args.first().unwrap_or(&None);
    if nullish(a) {
        return Ok(Some(Bson::Null));
    }
    let n = a
        .as_ref()
        .and_then(num)
        .ok_or_else(|| err(28765, format!("{name} only supports numeric types, not {}", type_of(a))))?;
    let d = n.to_f64();
    if let Num::Decimal(x) = n {
        // Decimal arithmetic where it is exact or correctly rounded; the rest below is
        // computed in binary and returned as a decimal, as mongod returns decimals.
        let dec = |v: Decimal128| Ok(Some(Bson::Decimal128(v)));
        match name {
            "$abs" => return dec(decimal::abs(x)),
            "$ceil" => return dec(decimal::ceil_floor(x, true)),
            "$floor" => return dec(decimal::ceil_floor(x, false)),
            "$sqrt" if d >= 0.0 || d.is_nan() => return dec(decimal::sqrt(n)),
            "$exp" => return dec(decimal::exp(n)),
            "$ln" if d > 0.0 || d.is_nan() => return dec(decimal::ln(n)),
            "$log10" if d > 0.0 || d.is_nan() => return dec(decimal::log(n, Num::Int32(10))),
            _ => {}
        }
    }
    let is_decimal = matches!(n, Num::Decimal(_));
    let dbl =
        |v: f64| Ok(Some(if is_decimal { Bson::Decimal128(decimal::from_f64(v)) } else { Bson::Double(v) }));
    let range = |lo: f64, hi: f64, code: i32| -> Result<()> {
        if d.is_nan() || (lo..=hi).contains(&d) {
            Ok(())
        } else {
            Err(err(
                code,
                format!(
                    "cannot apply {name} to {}, value must be in [{}, {}]",
                    fmt_f(d),
                    fmt_f(lo),
                    fmt_f(hi)
                ),
            ))
        }
    };
    match name {
        "$abs" => Ok(Some(match n {
            Num::Int32(i) => match i.checked_abs() {
                Some(v) => Bson::Int32(v),
                None => Bson::Int64(i64::from(i).abs()),
            },
            Num::Int64(i) => {
                Bson::Int64(i.checked_abs().ok_or_else(|| err(28680, "can't take $abs of long long min"))?)
            }
            _ => Bson::Double(d.abs()),
        })),
        "$ceil" | "$floor" => Ok(Some(match n {
            Num::Double(_) => Bson::Double(if name == "$ceil" { d.ceil() } else { d.floor() }),
            other => other.to_bson(),
        })),
        "$sqrt" => {
            if d < 0.0 {
                return Err(err(28714, "$sqrt's argument must be greater than or equal to 0"));
            }
            dbl(d.sqrt())
        }
        "$exp" => dbl(d.exp()),
        "$ln" => {
            if d <= 0.0 {
                return Err(err(
                    28766,
                    format!("$ln's argument must be a positive number, but is {}", fmt_f(d)),
                ));
            }
            dbl(d.ln())
        }
        "$log10" => {
            if d <= 0.0 {
                return Err(err(
                    28761,
                    format!("$log10's argument must be a positive number, but is {}", fmt_f(d)),
                ));
            }
            dbl(d.log10())
        }
        "$sin" | "$cos" | "$tan" => {
            if d.is_infinite() {
                return Err(err(50989, format!("cannot apply {name} to {d}, value must be in (-inf,inf)")));
            }
            dbl(match name {
                "$sin" => d.sin(),
                "$cos" => d.cos(),
                _ => d.tan(),
            })
        }
        "$asin" => {
            range(-1.0, 1.0, 50989)?;
            dbl(d.asin())
        }
        "$acos" => {
            range(-1.0, 1.0, 50989)?;
            dbl(d.acos())
        }
        "$atan" => dbl(d.atan()),
        "$sinh" => dbl(d.sinh()),
        "$cosh" => dbl(d.cosh()),
        "$tanh" => dbl(d.tanh()),
        "$asinh" => dbl(d.asinh()),
        "$acosh" => {
            range(1.0, f64::INFINITY, 50989)?;
            dbl(d.acosh())
        }
        "$atanh" => {
            range(-1.0, 1.0, 50989)?;
            dbl(d.atanh())
        }
        "$degreesToRadians" => dbl(d.to_radians()),
        "$radiansToDegrees" => dbl(d.to_degrees()),
        _ => Err(MongoError::internal(format!("unknown unary {name}"))),
    }
}

/// `$sum` & co. as expressions: over the elements of a single array argument, or over the
/// arguments.
fn list_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let values: Vec<Bson> = match args {
        [Some(Bson::Array(a))] => a.clone(),
        _ => args.iter().flatten().cloned().collect(),
    };
    match name {
        "$sum" => {
            let mut s = Sum::default();
            for v in &values {
                s.add(v)?;
            }
            Ok(Some(s.result()))
        }
        "$avg" => {
            let mut s = Sum::default();
            for v in &values {
                s.add(v)?;
            }
            Ok(Some(s.average()))
        }
        "$min" | "$max" => {
            let mut best: Option<Bson> = None;
            for v in values.into_iter().filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
                let better = best.as_ref().is_none_or(|b| {
                    let c = compare_bson(&v, b);
                    if name == "$min" {
                        c.is_lt()
                    } else {
                        c.is_gt()
                    }
                });
                if better {
                    best = Some(v);
                }
            }
            Ok(Some(best.unwrap_or(Bson::Null)))
        }
        _ => {
            let mut dev = StdDev::default();
            for v in &values {
                dev.add(v);
            }
            Ok(Some(dev.result(name == "$stdDevSamp")))
        }
    }
}

/// A running `$sum`/`$avg` with mongod's types: int32 while every input is int32 and the total
/// fits, then int64, then double (an int64 overflow continues in double).
#[derive(Default, Clone)]
pub struct Sum {
    long: i64,
    double: f64,
    kind: u8, // 0 int32, 1 int64, 2 double
    count: u64,
    overflowed: bool,
    /// The sum of the Decimal128 inputs; once there is one the result is a decimal.
    decimal: Option<bson::Decimal128>,
}

impl Sum {
    pub fn add(&mut self, v: &Bson) -> Result<()> {
        match v {
            Bson::Int32(i) => self.add_int(i64::from(*i), false),
            Bson::Int64(i) => self.add_int(*i, true),
            Bson::Double(d) => {
                self.kind = 2;
                self.double += d;
            }
            Bson::Decimal128(d) => {
                let total = match self.decimal {
                    Some(t) => super::decimal::add(Num::Decimal(t), Num::Decimal(*d)),
                    None => *d,
                };
                self.decimal = Some(total);
            }
            _ => return Ok(()),
        }
        self.count += 1;
        Ok(())
    }

    fn add_int(&mut self, i: i64, long: bool) {
        if long && self.kind == 0 {
            self.kind = 1;
        }
        if self.overflowed {
            self.double += i as f64;
            return;
        }
        match self.long.checked_add(i) {
            Some(r) => self.long = r,
            None => {
                // Beyond int64: continue in double, as mongod does.
                self.overflowed = true;
                self.double += self.long as f64 + i as f64;
                self.long = 0;
                self.kind = 2;
            }
        }
    }

    /// The whole total as a decimal, when any input was one.
    fn decimal_total(&self) -> Option<bson::Decimal128> {
        let d = self.decimal?;
        let mut t = super::decimal::add(Num::Decimal(d), Num::Int64(self.long));
        if self.kind == 2 {
            t = super::decimal::add(Num::Decimal(t), Num::Double(self.double));
        }
        Some(t)
    }

    pub fn result(&self) -> Bson {
        if let Some(t) = self.decimal_total() {
            return Bson::Decimal128(t);
        }
        match self.kind {
            0 => match i32::try_from(self.long) {
                Ok(i) => Bson::Int32(i),
                Err(_) => Bson::Int64(self.long),
            },
            1 => Bson::Int64(self.long),
            _ => Bson::Double(self.double + self.long as f64),
        }
    }

    /// Adds another partial sum (a spilled `$group` combining its runs).
    pub fn merge(&mut self, o: &Sum) {
        self.kind = self.kind.max(o.kind);
        self.count += o.count;
        self.double += o.double;
        match self.long.checked_add(o.long).filter(|_| !self.overflowed && !o.overflowed) {
            Some(r) => self.long = r,
            None => {
                self.double += self.long as f64 + o.long as f64;
                self.long = 0;
                self.overflowed = true;
                self.kind = 2;
            }
        }
        self.decimal = match (self.decimal, o.decimal) {
            (Some(a), Some(b)) => Some(super::decimal::add(Num::Decimal(a), Num::Decimal(b))),
            (a, b) => a.or(b),
        };
    }

    /// The partial state as BSON (for spill files).
    pub fn to_bson(&self) -> Bson {
        let mut d = bson::doc! {
            "l": self.long, "d": self.double, "k": i32::from(self.kind),
            "c": i64::try_from(self.count).unwrap_or(i64::MAX), "o": self.overflowed,
        };
        if let Some(x) = self.decimal {
            d.insert("x", x);
        }
        Bson::Document(d)
    }

    pub fn from_bson(v: &Bson) -> Option<Sum> {
        let Bson::Document(d) = v else { return None };
        Some(Sum {
            long: d.get_i64("l").ok()?,
            double: d.get_f64("d").ok()?,
            kind: u8::try_from(d.get_i32("k").ok()?).ok()?,
            count: u64::try_from(d.get_i64("c").ok()?).ok()?,
            overflowed: d.get_bool("o").ok()?,
            decimal: match d.get("x") {
                Some(Bson::Decimal128(x)) => Some(*x),
                _ => None,
            },
        })
    }

    pub fn average(&self) -> Bson {
        if self.count == 0 {
            return Bson::Null;
        }
        if let Some(t) = self.decimal_total() {
            let count = i64::try_from(self.count).unwrap_or(i64::MAX);
            return super::decimal::div(Num::Decimal(t), Num::Int64(count))
                .map(Bson::Decimal128)
                .unwrap_or(Bson::Null);
        }
        let total = if self.kind == 2 { self.double + self.long as f64 } else { self.long as f64 };
        Bson::Double(total / self.count as f64)
    }
}

/// Welford's running variance.
#[derive(Default, Clone)]
pub struct StdDev {
    n: u64,
    mean: f64,
    m2: f64,
}

impl StdDev {
    pub fn add(&mut self, v: &Bson) {
        let Some(x) = num(v).map(|n| n.to_f64()) else { return };
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Combines another partial variance (Chan et al.'s parallel formula).
    pub fn merge(&mut self, o: &StdDev) {
        if o.n == 0 {
            return;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        self.mean += delta * o.n as f64 / n as f64;
        self.m2 += o.m2 + delta * delta * (self.n as f64) * (o.n as f64) / n as f64;
        self.n = n;
    }

    pub fn to_bson(&self) -> Bson {
        Bson::Document(
            bson::doc! { "n": i64::try_from(self.n).unwrap_or(i64::MAX), "m": self.mean, "q": self.m2 },
        )
    }

    pub fn from_bson(v: &Bson) -> Option<StdDev> {
        let Bson::Document(d) = v else { return None };
        Some(StdDev {
            n: u64::try_from(d.get_i64("n").ok()?).ok()?,
            mean: d.get_f64("m").ok()?,
            m2: d.get_f64("q").ok()?,
        })
    }

    pub fn result(&self, sample: bool) -> Bson {
        let denom = if sample { self.n.saturating_sub(1) } else { self.n };
        if denom == 0 {
            return Bson::Null;
        }
        Bson::Double((self.m2 / denom as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, Bson};

    #[test]
    fn decimal_unary_functions() {
        let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
        let one = |op: &str, v: &str| {
            let mut d = bson::Document::new();
            d.insert(op, dec(v));
            match ev(Bson::Document(d)).unwrap() {
                Some(Bson::Decimal128(r)) => r.to_string(),
                other => panic!("{op}({v}) gave {other:?}"),
            }
        };
        assert_eq!(one("$sqrt", "16"), "4");
        assert_eq!(one("$sqrt", "2"), "1.414213562373095048801688724209698");
        assert_eq!(one("$ln", "1"), "0");
        assert_eq!(one("$log10", "1000"), "3");
        assert_eq!(one("$exp", "0"), "1");
        assert_eq!(one("$exp", "1"), "2.718281828459045235360287471352662");
        assert_eq!(one("$ln", "10"), "2.302585092994045684017991454684364");
        assert_eq!(one("$abs", "-1.50"), "1.50");
        assert_eq!(one("$ceil", "-1.5"), "-1");
        assert_eq!(one("$floor", "-1.5"), "-2");
        assert_eq!(one("$ceil", "2.1"), "3");
        assert_eq!(one("$floor", "7"), "7");
        assert_eq!(one("$sin", "0"), "0");
        assert_eq!(code(ev(bson!({"$sqrt": dec("-4")}))), 28714);
        assert_eq!(code(ev(bson!({"$ln": dec("0")}))), 28766);
        let log = ev(bson!({"$log": [dec("8"), 2]})).unwrap();
        assert_eq!(log.map(|v| v.to_string()), Some("3".to_string()));
    }

    #[test]
    fn promotion() {
        assert_eq!(ev(bson!({"$add": [2147483647, 1]})).unwrap(), Some(Bson::Int64(2147483648)));
        assert_eq!(ev(bson!({"$add": [i64::MAX, 1]})).unwrap(), Some(Bson::Double(i64::MAX as f64 + 1.0)));
        assert_eq!(ev(bson!({"$add": [1, 2.5]})).unwrap(), Some(Bson::Double(3.5)));
        assert_eq!(ev(bson!({"$add": [1, null]})).unwrap(), Some(Bson::Null));
        assert_eq!(ev(bson!({"$add": [1, "$missing"]})).unwrap(), Some(Bson::Null));
        assert_eq!(code(ev(bson!({"$add": [1, "x"]}))), 16554);
        assert_eq!(ev(bson!({"$multiply": [65536, 65536]})).unwrap(), Some(Bson::Int64(1 << 32)));
        assert_eq!(ev(bson!({"$subtract": [5, 7]})).unwrap(), Some(Bson::Int32(-2)));
        assert_eq!(ev(bson!({"$divide": [5, 2]})).unwrap(), Some(Bson::Double(2.5)));
        assert_eq!(code(ev(bson!({"$divide": [5, 0]}))), 16608);
        assert_eq!(ev(bson!({"$mod": [7, 3]})).unwrap(), Some(Bson::Int32(1)));
        assert_eq!(ev(bson!({"$pow": [2, 10]})).unwrap(), Some(Bson::Int32(1024)));
        assert_eq!(ev(bson!({"$pow": [2, 40]})).unwrap(), Some(Bson::Int64(1 << 40)));
        assert_eq!(ev(bson!({"$pow": [2, -1]})).unwrap(), Some(Bson::Double(0.5)));
        assert_eq!(ev(bson!({"$abs": -5})).unwrap(), Some(Bson::Int32(5)));
        assert_eq!(ev(bson!({"$round": [2.5]})).unwrap(), Some(Bson::Double(2.0)));
        assert_eq!(ev(bson!({"$round": [3.5]})).unwrap(), Some(Bson::Double(4.0)));
        assert_eq!(ev(bson!({"$round": [1234, -2]})).unwrap(), Some(Bson::Int32(1200)));
        assert_eq!(ev(bson!({"$round": [19.25, 1]})).unwrap(), Some(Bson::Double(19.2)));
        assert_eq!(ev(bson!({"$trunc": [7.85, 1]})).unwrap(), Some(Bson::Double(7.8)));
        assert_eq!(ev(bson!({"$sum": [[1, 2, "x", 3.5]]})).unwrap(), Some(Bson::Double(6.5)));
        assert_eq!(ev(bson!({"$max": [1, 5, null]})).unwrap(), Some(Bson::Int32(5)));
        assert_eq!(ev(bson!({"$avg": [[]]})).unwrap(), Some(Bson::Null));
        assert_eq!(code(ev(bson!({"$subtract": [1]}))), 16020);
    }
}
