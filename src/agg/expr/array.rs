//! Array and set expressions: `$size` `$arrayElemAt` `$first` `$last` `$filter` `$map` `$reduce`
//! `$in` `$concatArrays` `$slice` `$range` `$reverseArray` `$indexOfArray` `$zip` `$isArray`
//! `$sortArray` `$firstN` `$lastN`, and the set operators.

use super::{
    err, find_arg, func, named_args, nullish, type_of, validate_var_name, Ctx, Expr, Parser, Special,
    MAX_BUILD_BYTES,
};
use crate::error::Result;
use crate::query::compare::{bson_equal, compare_bson};
use crate::query::util::{exact_i64, is_number};
use bson::Bson;

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let r = match name {
        "$size" => p.args_exact(name, arg, 1).and_then(|a| func("$size", a, size_fn)),
        "$isArray" => p.args_exact(name, arg, 1).and_then(|a| {
            func("$isArray", a, |_, v| Ok(Some(Bson::Boolean(matches!(v[0], Some(Bson::Array(_)))))))
        }),
        "$arrayElemAt" => p.args_exact(name, arg, 2).and_then(|a| func("$arrayElemAt", a, elem_at_fn)),
        "$first" => p.args_exact(name, arg, 1).and_then(|a| func("$first", a, first_last_fn)),
        "$last" => p.args_exact(name, arg, 1).and_then(|a| func("$last", a, first_last_fn)),
        "$in" => p.args_exact(name, arg, 2).and_then(|a| func("$in", a, in_fn)),
        "$concatArrays" => p.args(arg).and_then(|a| func("$concatArrays", a, concat_fn)),
        "$slice" => p.args_range(name, arg, 2, 3).and_then(|a| func("$slice", a, slice_fn)),
        "$range" => p.args_range(name, arg, 2, 3).and_then(|a| func("$range", a, range_fn)),
        "$reverseArray" => p.args_exact(name, arg, 1).and_then(|a| func("$reverseArray", a, reverse_fn)),
        "$indexOfArray" => p.args_range(name, arg, 2, 4).and_then(|a| func("$indexOfArray", a, index_of_fn)),
        "$setUnion" | "$setIntersection" | "$setDifference" | "$setEquals" | "$setIsSubset" => {
            let st: &'static str = match name {
                "$setUnion" => "$setUnion",
                "$setIntersection" => "$setIntersection",
                "$setDifference" => "$setDifference",
                "$setEquals" => "$setEquals",
                _ => "$setIsSubset",
            };
            p.args(arg).and_then(|a| {
                if matches!(st, "$setDifference" | "$setIsSubset") && a.len() != 2 {
                    return Err(super::arity_error(st, 2, a.len()));
                }
                if st == "$setEquals" && a.len() < 2 {
                    return Err(err(17045, "$setEquals needs at least two arguments"));
                }
                func(st, a, set_fn)
            })
        }
        "$anyElementTrue" | "$allElementsTrue" => {
            let st: &'static str =
                if name == "$anyElementTrue" { "$anyElementTrue" } else { "$allElementsTrue" };
            p.args_exact(name, arg, 1).and_then(|a| func(st, a, elements_true_fn))
        }
        "$filter" => parse_filter(arg, p),
        "$map" => parse_map(arg, p),
        "$reduce" => parse_reduce(arg, p),
        "$zip" => parse_zip(arg, p),
        "$sortArray" => parse_sort_array(arg, p),
        "$firstN" | "$lastN" => parse_n(name, arg, p),
        _ => return None,
    };
    Some(r)
}

fn size_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &v[0] {
        Some(Bson::Array(a)) => Ok(Some(Bson::Int32(a.len() as i32))),
        other => Err(err(
            17124,
            format!("The argument to $size must be an array. Type of the argument was: {}", type_of(other)),
        )),
    }
}

fn elem_at_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    if nullish(&v[0]) || nullish(&v[1]) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(a)) = &v[0] else {
        return Err(err(
            28689,
            format!("$arrayElemAt's first argument must be an array, but is {}", type_of(&v[0])),
        ));
    };
    let idx = match &v[1] {
        Some(n) if is_number(n) => exact_i64(n).filter(|i| i32::try_from(*i).is_ok()).ok_or_else(|| {
            err(
                28691,
                format!(
                    "$arrayElemAt's second argument must be representable as a 32-bit integer: {}",
                    crate::query::util::value_to_string(n)
                ),
            )
        })?,
        other => {
            return Err(err(
                28690,
                format!("$arrayElemAt's second argument must be a numeric value, but is {}", type_of(other)),
            ))
        }
    };
    let i = if idx < 0 { a.len() as i64 + idx } else { idx };
    Ok(if i < 0 { None } else { a.get(i as usize).cloned() })
}

fn first_last_fn(name: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &v[0] {
        x if nullish(x) => Ok(Some(Bson::Null)),
        Some(Bson::Array(a)) => Ok(if name == "$first" { a.first().cloned() } else { a.last().cloned() }),
        other => Err(err(28689, format!("{name}'s argument must be an array, but is {}", type_of(other)))),
    }
}

fn in_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    let Some(Bson::Array(a)) = &v[1] else {
        return Err(err(
            40081,
            format!("$in requires an array as a second argument, found: {}", type_of(&v[1])),
        ));
    };
    let needle = v[0].clone().unwrap_or(Bson::Undefined);
    Ok(Some(Bson::Boolean(a.iter().any(|x| bson_equal(x, &needle)))))
}

fn concat_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    let mut out = Vec::new();
    for x in v {
        match x {
            n if nullish(n) => return Ok(Some(Bson::Null)),
            Some(Bson::Array(a)) => out.extend(a.iter().cloned()),
            other => {
                return Err(err(28664, format!("$concatArrays only supports arrays, not {}", type_of(other))))
            }
        }
    }
    Ok(Some(Bson::Array(out)))
}

fn slice_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    if v.iter().any(nullish) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(a)) = &v[0] else {
        return Err(err(
            28724,
            format!("First argument to $slice must be an array, but is of type: {}", type_of(&v[0])),
        ));
    };
    let int = |x: &Option<Bson>, which: &str, code: i32| -> Result<i64> {
        x.as_ref()
            .filter(|b| is_number(b))
            .and_then(exact_i64)
            .filter(|i| i32::try_from(*i).is_ok())
            .ok_or_else(|| {
                err(
                    code,
                    format!("{which} argument to $slice must be numeric, but is of type: {}", type_of(x)),
                )
            })
    };
    let len = a.len() as i64;
    let (start, count) = if v.len() == 2 {
        let n = int(&v[1], "Second", 28725)?;
        if n >= 0 {
            (0, n)
        } else {
            ((len + n).max(0), -n)
        }
    } else {
        let pos = int(&v[1], "Second", 28725)?;
        let n = int(&v[2], "Third", 28726)?;
        if n <= 0 {
            return Err(err(28729, format!("Third argument to $slice must be positive: {n}")));
        }
        let start = if pos < 0 { (len + pos).max(0) } else { pos.min(len) };
        (start, n)
    };
    let start = start.clamp(0, len) as usize;
    let end = (start as i64).saturating_add(count).min(len) as usize;
    Ok(Some(Bson::Array(a[start..end].to_vec())))
}

fn range_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    let int = |x: &Option<Bson>, what: &str, c1: i32, c2: i32| -> Result<i64> {
        match x {
            Some(b) if is_number(b) => exact_i64(b).filter(|i| i32::try_from(*i).is_ok()).ok_or_else(|| {
                err(c2, format!("$range requires a {what} that can be represented as a 32-bit integer, found value: {}", crate::query::util::value_to_string(b)))
            }),
            other => Err(err(c1, format!("$range requires a numeric {what}, found value of type: {}", type_of(other)))),
        }
    };
    let start = int(&v[0], "starting value", 34443, 34444)?;
    let end = int(&v[1], "ending value", 34445, 34446)?;
    let step = if v.len() > 2 { int(&v[2], "step value", 34447, 34448)? } else { 1 };
    if step == 0 {
        return Err(err(34449, "$range requires a non-zero step value"));
    }
    let count = if (step > 0 && end > start) || (step < 0 && end < start) {
        ((end - start).abs() + step.abs() - 1) / step.abs()
    } else {
        0
    };
    if count as usize > MAX_BUILD_BYTES / 8 {
        return Err(err(5236800, "$range would use too much memory and cannot be spilled"));
    }
    let out = (0..count).map(|i| Bson::Int32((start + i * step) as i32)).collect();
    Ok(Some(Bson::Array(out)))
}

fn reverse_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &v[0] {
        x if nullish(x) => Ok(Some(Bson::Null)),
        Some(Bson::Array(a)) => Ok(Some(Bson::Array(a.iter().rev().cloned().collect()))),
        other => Err(err(
            34435,
            format!("The argument to $reverseArray must be an array, but was of type: {}", type_of(other)),
        )),
    }
}

fn index_of_fn(_: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    if nullish(&v[0]) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(a)) = &v[0] else {
        return Err(err(
            40090,
            format!("$indexOfArray requires an array as a first argument, found: {}", type_of(&v[0])),
        ));
    };
    let bound = |i: usize| -> Result<Option<usize>> {
        match v.get(i) {
            None => Ok(None),
            Some(x) => {
                let n = x.as_ref().filter(|b| is_number(b)).and_then(exact_i64).ok_or_else(|| {
                    err(
                        40096,
                        format!(
                            "$indexOfArray requires an integral starting index, found a value of type: {}",
                            type_of(x)
                        ),
                    )
                })?;
                if n < 0 {
                    return Err(err(
                        40097,
                        format!("$indexOfArray requires a nonnegative starting index, found: {n}"),
                    ));
                }
                Ok(Some(n as usize))
            }
        }
    };
    let start = bound(2)?.unwrap_or(0);
    let end = bound(3)?.unwrap_or(a.len()).min(a.len());
    let needle = v[1].clone().unwrap_or(Bson::Undefined);
    for (i, x) in a.iter().enumerate().take(end).skip(start) {
        if bson_equal(x, &needle) {
            return Ok(Some(Bson::Int32(i as i32)));
        }
    }
    Ok(Some(Bson::Int32(-1)))
}

fn dedup(values: impl IntoIterator<Item = Bson>) -> Vec<Bson> {
    let mut out: Vec<Bson> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for v in values {
        if seen.insert(crate::store::keystring::encode_key(&[(&v, false)])) {
            out.push(v);
        }
    }
    out
}

fn set_fn(name: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    let mut sets: Vec<&Vec<Bson>> = Vec::new();
    for (i, x) in v.iter().enumerate() {
        match x {
            n if nullish(n) && matches!(name, "$setUnion" | "$setIntersection" | "$setDifference") => {
                return Ok(Some(Bson::Null))
            }
            Some(Bson::Array(a)) => sets.push(a),
            other => {
                let (code, msg) = match name {
                    "$setEquals" => (
                        17044,
                        format!(
                            "All operands of $setEquals must be arrays. One argument is of type: {}",
                            type_of(other)
                        ),
                    ),
                    "$setIsSubset" if i == 0 => (
                        17046,
                        format!(
                            "both operands of $setIsSubset must be arrays. First argument is of type: {}",
                            type_of(other)
                        ),
                    ),
                    "$setIsSubset" => (
                        17042,
                        format!(
                            "both operands of $setIsSubset must be arrays. Second argument is of type: {}",
                            type_of(other)
                        ),
                    ),
                    "$setDifference" => (
                        17048,
                        format!(
                            "both operands of $setDifference must be arrays. {} argument is of type: {}",
                            if i == 0 { "First" } else { "Second" },
                            type_of(other)
                        ),
                    ),
                    "$setUnion" => (
                        17043,
                        format!(
                            "All operands of $setUnion must be arrays. One argument is of type: {}",
                            type_of(other)
                        ),
                    ),
                    _ => (
                        17047,
                        format!(
                            "All operands of $setIntersection must be arrays. One argument is of type: {}",
                            type_of(other)
                        ),
                    ),
                };
                return Err(err(code, msg));
            }
        }
    }
    let key = |b: &Bson| crate::store::keystring::encode_key(&[(b, false)]);
    let keys = |a: &Vec<Bson>| a.iter().map(key).collect::<std::collections::HashSet<_>>();
    Ok(Some(match name {
        "$setUnion" => Bson::Array(dedup(sets.iter().flat_map(|s| s.iter().cloned()))),
        "$setIntersection" => {
            let Some((first, rest)) = sets.split_first() else { return Ok(Some(Bson::Array(Vec::new()))) };
            let others: Vec<_> = rest.iter().map(|s| keys(s)).collect();
            Bson::Array(dedup(first.iter().filter(|x| others.iter().all(|o| o.contains(&key(x)))).cloned()))
        }
        "$setDifference" => {
            let b = keys(sets[1]);
            Bson::Array(dedup(sets[0].iter().filter(|x| !b.contains(&key(x))).cloned()))
        }
        "$setIsSubset" => {
            let b = keys(sets[1]);
            Bson::Boolean(sets[0].iter().all(|x| b.contains(&key(x))))
        }
        _ => {
            let first = keys(sets[0]);
            Bson::Boolean(sets.iter().skip(1).all(|s| keys(s) == first))
        }
    }))
}

fn elements_true_fn(name: &str, v: &[Option<Bson>]) -> Result<Option<Bson>> {
    let Some(Bson::Array(a)) = &v[0] else {
        return Err(err(5159200, format!("{name}'s argument must be an array, but is {}", type_of(&v[0]))));
    };
    let t = |x: &Bson| crate::query::util::true_value(x);
    Ok(Some(Bson::Boolean(if name == "$anyElementTrue" { a.iter().any(t) } else { a.iter().all(t) })))
}

fn as_name(v: Option<&Bson>, default: &str) -> Result<String> {
    match v {
        None => Ok(default.to_string()),
        Some(Bson::String(s)) => {
            validate_var_name(s, false)?;
            Ok(s.clone())
        }
        Some(_) => Err(err(16866, "'as' must be a string")),
    }
}

struct Filter {
    input: Expr,
    slot: usize,
    cond: Expr,
    limit: Option<Expr>,
}

fn parse_filter(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$filter", arg, &["input", "as", "cond", "limit"], 28646, 28647)?;
    let input = find_arg(&args, "input").ok_or_else(|| err(28648, "Missing 'input' parameter to $filter"))?;
    let cond = find_arg(&args, "cond").ok_or_else(|| err(28650, "Missing 'cond' parameter to $filter"))?;
    let name = as_name(find_arg(&args, "as"), "this")?;
    let input = p.parse(input)?;
    let limit = find_arg(&args, "limit").map(|l| p.parse(l)).transpose()?;
    p.scoped(&[name], |p, slot| {
        let cond = p.parse(cond)?;
        Ok(Expr::Special(Box::new(Filter { input, slot, cond, limit })))
    })
}

impl Special for Filter {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let input = self.input.eval(c)?;
        let limit = match &self.limit {
            None => None,
            Some(l) => match l.eval(c)? {
                n if nullish(&n) => None,
                Some(n) => match exact_i64(&n).filter(|x| is_number(&n) && i32::try_from(*x).is_ok()) {
                    Some(x) if x > 0 => Some(x as usize),
                    Some(x) => {
                        return Err(err(327391, format!("$filter: limit must be greater than 0: {x}")))
                    }
                    None => {
                        return Err(err(
                            327392,
                            "$filter: limit must be represented as a 32-bit integral value",
                        ))
                    }
                },
                None => None,
            },
        };
        let a = match input {
            n if nullish(&n) => return Ok(Some(Bson::Null)),
            Some(Bson::Array(a)) => a,
            other => {
                return Err(err(28651, format!("input to $filter must be an array not {}", type_of(&other))))
            }
        };
        let mut out = Vec::new();
        for x in a {
            c.vars.truncate(self.slot);
            c.vars.push(x.clone());
            let keep = super::truthy(&self.cond.eval(c)?);
            if keep {
                out.push(x);
                if limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
            }
        }
        c.vars.truncate(self.slot);
        Ok(Some(Bson::Array(out)))
    }
}

struct Map {
    input: Expr,
    slot: usize,
    body: Expr,
}

fn parse_map(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$map", arg, &["input", "as", "in"], 16878, 16879)?;
    let input = find_arg(&args, "input").ok_or_else(|| err(16880, "Missing 'input' parameter to $map"))?;
    let body = find_arg(&args, "in").ok_or_else(|| err(16882, "Missing 'in' parameter to $map"))?;
    let name = as_name(find_arg(&args, "as"), "this")?;
    let input = p.parse(input)?;
    p.scoped(&[name], |p, slot| {
        let body = p.parse(body)?;
        Ok(Expr::Special(Box::new(Map { input, slot, body })))
    })
}

impl Special for Map {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let a = match self.input.eval(c)? {
            n if nullish(&n) => return Ok(Some(Bson::Null)),
            Some(Bson::Array(a)) => a,
            other => {
                return Err(err(16883, format!("input to $map must be an array not {}", type_of(&other))))
            }
        };
        let mut out = Vec::with_capacity(a.len());
        for x in a {
            c.vars.truncate(self.slot);
            c.vars.push(x);
            out.push(self.body.value(c)?);
        }
        c.vars.truncate(self.slot);
        Ok(Some(Bson::Array(out)))
    }
}

struct Reduce {
    input: Expr,
    initial: Expr,
    slot: usize,
    body: Expr,
}

fn parse_reduce(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$reduce", arg, &["input", "initialValue", "in"], 40075, 40076)?;
    let input =
        find_arg(&args, "input").ok_or_else(|| err(40077, "$reduce requires 'input' to be specified"))?;
    let initial = find_arg(&args, "initialValue")
        .ok_or_else(|| err(40078, "$reduce requires 'initialValue' to be specified"))?;
    let body = find_arg(&args, "in").ok_or_else(|| err(40079, "$reduce requires 'in' to be specified"))?;
    let input = p.parse(input)?;
    let initial = p.parse(initial)?;
    p.scoped(&["value".to_string(), "this".to_string()], |p, slot| {
        let body = p.parse(body)?;
        Ok(Expr::Special(Box::new(Reduce { input, initial, slot, body })))
    })
}

impl Special for Reduce {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let a = match self.input.eval(c)? {
            n if nullish(&n) => return Ok(Some(Bson::Null)),
            Some(Bson::Array(a)) => a,
            other => {
                return Err(err(
                    40080,
                    format!("$reduce requires that 'input' be an array, found: {}", type_of(&other)),
                ))
            }
        };
        let mut acc = self.initial.eval(c)?;
        for x in a {
            c.vars.truncate(self.slot);
            c.vars.push(acc.unwrap_or(Bson::Null));
            c.vars.push(x);
            acc = self.body.eval(c)?;
        }
        c.vars.truncate(self.slot);
        Ok(acc)
    }
}

struct Zip {
    inputs: Vec<Expr>,
    longest: bool,
    defaults: Option<Expr>,
}

fn parse_zip(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$zip", arg, &["inputs", "useLongestLength", "defaults"], 34460, 34464)?;
    let inputs = match find_arg(&args, "inputs") {
        Some(Bson::Array(a)) => a.iter().map(|x| p.parse(x)).collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(err(34461, "inputs must be an array of expressions")),
        None => return Err(err(34465, "$zip requires at least one input array")),
    };
    let longest = match find_arg(&args, "useLongestLength") {
        None => false,
        Some(Bson::Boolean(b)) => *b,
        Some(_) => return Err(err(34463, "useLongestLength must be a bool")),
    };
    let defaults = match find_arg(&args, "defaults") {
        None => None,
        Some(d @ Bson::Array(_)) => {
            if !longest {
                return Err(err(34466, "cannot specify defaults unless useLongestLength is true"));
            }
            Some(p.parse(d)?)
        }
        Some(_) => return Err(err(34462, "defaults must be an array of expressions")),
    };
    Ok(Expr::Special(Box::new(Zip { inputs, longest, defaults })))
}

impl Special for Zip {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let mut arrays = Vec::with_capacity(self.inputs.len());
        for e in &self.inputs {
            match e.eval(c)? {
                n if nullish(&n) => return Ok(Some(Bson::Null)),
                Some(Bson::Array(a)) => arrays.push(a),
                other => {
                    return Err(err(
                        34468,
                        format!("$zip found a non-array expression in input: {}", type_of(&other)),
                    ))
                }
            }
        }
        let defaults = match &self.defaults {
            Some(d) => match d.eval(c)? {
                Some(Bson::Array(a)) => a,
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        if !defaults.is_empty() && defaults.len() != arrays.len() {
            return Err(err(34467, "defaults and inputs must have the same length"));
        }
        let lens = arrays.iter().map(Vec::len);
        let n = if self.longest { lens.max().unwrap_or(0) } else { lens.min().unwrap_or(0) };
        let out = (0..n)
            .map(|i| {
                Bson::Array(
                    arrays
                        .iter()
                        .enumerate()
                        .map(|(j, a)| {
                            a.get(i).cloned().or_else(|| defaults.get(j).cloned()).unwrap_or(Bson::Null)
                        })
                        .collect(),
                )
            })
            .collect();
        Ok(Some(Bson::Array(out)))
    }
}

struct SortArray {
    input: Expr,
    by: Result<crate::query::sort::SortSpec, bool>,
}

fn parse_sort_array(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$sortArray", arg, &["input", "sortBy"], 2942500, 2942501)?;
    let input = find_arg(&args, "input")
        .ok_or_else(|| err(2942502, "$sortArray requires 'input' to be specified"))?;
    let by = match find_arg(&args, "sortBy") {
        Some(Bson::Document(d)) => Ok(crate::query::sort::SortSpec::parse(d)?),
        Some(v) if is_number(v) => {
            let n = exact_i64(v).unwrap_or(0);
            if n != 1 && n != -1 {
                return Err(err(2942503, "$sortArray requires sortBy to be 1 or -1"));
            }
            Err(n == 1)
        }
        _ => return Err(err(2942504, "$sortArray requires 'sortBy' to be an object or 1/-1")),
    };
    Ok(Expr::Special(Box::new(SortArray { input: p.parse(input)?, by })))
}

impl Special for SortArray {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let mut a = match self.input.eval(c)? {
            n if nullish(&n) => return Ok(Some(Bson::Null)),
            Some(Bson::Array(a)) => a,
            other => {
                return Err(err(
                    2942505,
                    format!("$sortArray requires an array as input, found: {}", type_of(&other)),
                ))
            }
        };
        match &self.by {
            Err(asc) => {
                a.sort_by(|x, y| {
                    let o = compare_bson(x, y);
                    if *asc {
                        o
                    } else {
                        o.reverse()
                    }
                });
            }
            Ok(spec) => {
                let empty = bson::Document::new();
                a.sort_by(|x, y| {
                    let dx = if let Bson::Document(d) = x { d } else { &empty };
                    let dy = if let Bson::Document(d) = y { d } else { &empty };
                    spec.compare(dx, dy)
                });
            }
        }
        Ok(Some(Bson::Array(a)))
    }
}

struct FirstN {
    last: bool,
    n: Expr,
    input: Expr,
}

fn parse_n(name: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args(name, arg, &["n", "input"], 5787801, 5787802)?;
    let n = find_arg(&args, "n").ok_or_else(|| err(5787906, "Missing value for 'n'"))?;
    let input = find_arg(&args, "input").ok_or_else(|| err(5787907, "Missing value for 'input'"))?;
    Ok(Expr::Special(Box::new(FirstN { last: name == "$lastN", n: p.parse(n)?, input: p.parse(input)? })))
}

impl Special for FirstN {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let n = self.n.value(c)?;
        let n =
            exact_i64(&n).filter(|x| *x > 0).ok_or_else(|| err(5787908, "'n' must be a positive integer"))?;
        let a = match self.input.eval(c)? {
            Some(Bson::Array(a)) => a,
            other => {
                return Err(err(
                    5787909,
                    format!("Must provide an array as 'input', found: {}", type_of(&other)),
                ))
            }
        };
        let n = (n as usize).min(a.len());
        Ok(Some(Bson::Array(if self.last { a[a.len() - n..].to_vec() } else { a[..n].to_vec() })))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, doc, Bson};

    #[test]
    fn arrays() {
        let d = doc! {"a": [1, 2, 3, 4], "s": "x"};
        let get = |e: Bson| eval_on(e, &d);
        assert_eq!(get(bson!({"$size": "$a"})).unwrap(), Some(Bson::Int32(4)));
        assert_eq!(code(get(bson!({"$size": "$s"}))), 17124);
        assert_eq!(get(bson!({"$arrayElemAt": ["$a", -1]})).unwrap(), Some(Bson::Int32(4)));
        assert_eq!(get(bson!({"$arrayElemAt": ["$a", 9]})).unwrap(), None);
        assert_eq!(get(bson!({"$first": "$a"})).unwrap(), Some(Bson::Int32(1)));
        assert_eq!(get(bson!({"$last": "$nope"})).unwrap(), Some(Bson::Null));
        assert_eq!(
            get(bson!({"$filter": {"input": "$a", "as": "x", "cond": {"$gt": ["$$x", 2]}}})).unwrap(),
            Some(bson!([3, 4]))
        );
        assert_eq!(
            get(bson!({"$filter": {"input": "$a", "cond": {"$gt": ["$$this", 1]}, "limit": 1}})).unwrap(),
            Some(bson!([2]))
        );
        assert_eq!(
            get(bson!({"$map": {"input": "$a", "in": {"$multiply": ["$$this", 10]}}})).unwrap(),
            Some(bson!([10, 20, 30, 40]))
        );
        assert_eq!(
            get(
                bson!({"$reduce": {"input": "$a", "initialValue": 0, "in": {"$add": ["$$value", "$$this"]}}})
            )
            .unwrap(),
            Some(Bson::Int32(10))
        );
        assert_eq!(get(bson!({"$in": [2, "$a"]})).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(code(get(bson!({"$in": [2, "$s"]}))), 40081);
        assert_eq!(get(bson!({"$concatArrays": ["$a", [5]]})).unwrap(), Some(bson!([1, 2, 3, 4, 5])));
        assert_eq!(get(bson!({"$slice": ["$a", -2]})).unwrap(), Some(bson!([3, 4])));
        assert_eq!(get(bson!({"$slice": ["$a", 1, 2]})).unwrap(), Some(bson!([2, 3])));
        assert_eq!(get(bson!({"$range": [0, 10, 3]})).unwrap(), Some(bson!([0, 3, 6, 9])));
        assert_eq!(get(bson!({"$range": [5, 0, -2]})).unwrap(), Some(bson!([5, 3, 1])));
        assert_eq!(get(bson!({"$reverseArray": "$a"})).unwrap(), Some(bson!([4, 3, 2, 1])));
        assert_eq!(get(bson!({"$indexOfArray": ["$a", 3]})).unwrap(), Some(Bson::Int32(2)));
        assert_eq!(
            get(bson!({"$zip": {"inputs": [[1, 2], ["a"]], "useLongestLength": true}})).unwrap(),
            Some(bson!([[1, "a"], [2, null]]))
        );
        assert_eq!(get(bson!({"$setUnion": [[1, 2], [2, 3]]})).unwrap(), Some(bson!([1, 2, 3])));
        assert_eq!(get(bson!({"$setIntersection": [[1, 2], [2, 3]]})).unwrap(), Some(bson!([2])));
        assert_eq!(get(bson!({"$setEquals": [[1, 2], [2, 1, 1]]})).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(
            get(bson!({"$sortArray": {"input": [3, 1, 2], "sortBy": -1}})).unwrap(),
            Some(bson!([3, 2, 1]))
        );
        assert_eq!(get(bson!({"$lastN": {"n": 2, "input": "$a"}})).unwrap(), Some(bson!([3, 4])));
    }
}
