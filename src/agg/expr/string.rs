//! String expressions: `$concat`, substrings and lengths (byte and code-point variants), case,
//! `$split`, the `$trim` family, `$indexOfBytes`/`$indexOfCP`, `$strcasecmp`, the regex
//! operators and `$replaceOne`/`$replaceAll`.

use super::{err, find_arg, func, named_args, nullish, type_of, Ctx, Expr, Parser, Special, MAX_BUILD_BYTES};
use crate::error::Result;
use crate::query::ops_eval::RegexPredicate;
use bson::{doc, Bson};

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let r = match name {
        "$concat" => p.args(arg).and_then(|a| func("$concat", a, concat_fn)),
        "$substr" | "$substrBytes" => {
            p.args_exact(name, arg, 3).and_then(|a| func("$substrBytes", a, substr_bytes_fn))
        }
        "$substrCP" => p.args_exact(name, arg, 3).and_then(|a| func("$substrCP", a, substr_cp_fn)),
        "$toLower" => p.args_exact(name, arg, 1).and_then(|a| func("$toLower", a, case_fn)),
        "$toUpper" => p.args_exact(name, arg, 1).and_then(|a| func("$toUpper", a, case_fn)),
        "$strLenBytes" => p.args_exact(name, arg, 1).and_then(|a| func("$strLenBytes", a, len_fn)),
        "$strLenCP" => p.args_exact(name, arg, 1).and_then(|a| func("$strLenCP", a, len_fn)),
        "$split" => p.args_exact(name, arg, 2).and_then(|a| func("$split", a, split_fn)),
        "$strcasecmp" => p.args_exact(name, arg, 2).and_then(|a| func("$strcasecmp", a, strcasecmp_fn)),
        "$indexOfBytes" => p.args_range(name, arg, 2, 4).and_then(|a| func("$indexOfBytes", a, index_of_fn)),
        "$indexOfCP" => p.args_range(name, arg, 2, 4).and_then(|a| func("$indexOfCP", a, index_of_fn)),
        "$trim" | "$ltrim" | "$rtrim" => parse_trim(name, arg, p),
        "$regexMatch" | "$regexFind" | "$regexFindAll" => parse_regex(name, arg, p),
        "$replaceOne" | "$replaceAll" => parse_replace(name, arg, p),
        _ => return None,
    };
    Some(r)
}

fn concat_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let mut out = String::new();
    for a in args {
        match a {
            Some(Bson::String(s)) => {
                if out.len() + s.len() > MAX_BUILD_BYTES {
                    return Err(err(16493, "$concat result is too large"));
                }
                out.push_str(s)
            }
            v if nullish(v) => return Ok(Some(Bson::Null)),
            v => return Err(err(16702, format!("$concat only supports strings, not {}", type_of(v)))),
        }
    }
    Ok(Some(Bson::String(out)))
}

/// mongod's `coerceToString` for `$substr`/`$toLower`/`$toUpper`.
fn coerce_string(_name: &str, v: &Option<Bson>) -> Result<String> {
    Ok(match v {
        None | Some(Bson::Null) | Some(Bson::Undefined) => String::new(),
        Some(Bson::String(s)) | Some(Bson::Symbol(s)) => s.clone(),
        Some(Bson::Int32(i)) => i.to_string(),
        Some(Bson::Int64(i)) => i.to_string(),
        Some(Bson::Double(d)) => super::convert::format_double(*d),
        Some(Bson::Decimal128(d)) => d.to_string(),
        Some(Bson::DateTime(d)) => super::date::iso_string(d.timestamp_millis()),
        Some(Bson::Timestamp(t)) => format!("Timestamp({}, {})", t.time, t.increment),
        Some(other) => {
            return Err(err(
                16007,
                format!("can't convert from BSON type {} to String", crate::query::util::type_name(other)),
            ))
        }
    })
}

fn int_arg(name: &str, v: &Option<Bson>, what: &str, code: i32) -> Result<i64> {
    match v.as_ref().and_then(crate::query::util::exact_i64) {
        Some(n) => Ok(n),
        None => match v.as_ref().and_then(crate::query::util::number_as_f64) {
            Some(d) if d.is_finite() => Ok(d.trunc() as i64),
            _ => {
                Err(err(code, format!("{name}: {what} must be a numeric type (is BSON type {})", type_of(v))))
            }
        },
    }
}

fn substr_bytes_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let s = coerce_string(name, &args[0])?;
    let start = int_arg(name, &args[1], "starting index", 16034)?;
    let len = int_arg(name, &args[2], "length", 16035)?;
    let bytes = s.as_bytes();
    if start < 0 || start as usize >= bytes.len() {
        return Ok(Some(Bson::String(String::new())));
    }
    let start = start as usize;
    let end = if len < 0 { bytes.len() } else { (start.saturating_add(len as usize)).min(bytes.len()) };
    if !s.is_char_boundary(start) {
        return Err(err(
            28656,
            format!("{name}:  Invalid range, starting index is a UTF-8 continuation byte."),
        ));
    }
    if !s.is_char_boundary(end) {
        return Err(err(
            28657,
            format!("{name}:  Invalid range, ending index is in the middle of a UTF-8 character."),
        ));
    }
    Ok(Some(Bson::String(s[start..end].to_string())))
}

fn substr_cp_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let s = coerce_string(name, &args[0])?;
    let start = match &args[1] {
        Some(v) if crate::query::util::is_number(v) => crate::query::util::exact_i64(v)
            .ok_or_else(|| err(34438, format!("{name}: starting index must be a integral value")))?,
        v => {
            return Err(err(
                34450,
                format!("{name}: starting index must be a numeric type (is BSON type {})", type_of(v)),
            ))
        }
    };
    let len = match &args[2] {
        Some(v) if crate::query::util::is_number(v) => crate::query::util::exact_i64(v)
            .ok_or_else(|| err(34453, format!("{name}: length must be a integral value")))?,
        v => {
            return Err(err(
                34452,
                format!("{name}: length must be a numeric type (is BSON type {})", type_of(v)),
            ))
        }
    };
    if start < 0 {
        return Err(err(34455, format!("{name}: starting index must be non-negative (got: {start})")));
    }
    if len < 0 {
        return Err(err(34454, format!("{name}: length must be a nonnegative integer.")));
    }
    let out: String = s.chars().skip(start as usize).take(len as usize).collect();
    Ok(Some(Bson::String(out)))
}

fn case_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let s = coerce_string(name, &args[0])?;
    // mongod changes the case of ASCII letters only.
    Ok(Some(Bson::String(if name == "$toLower" { s.to_ascii_lowercase() } else { s.to_ascii_uppercase() })))
}

fn len_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &args[0] {
        Some(Bson::String(s)) => {
            let n = if name == "$strLenBytes" { s.len() } else { s.chars().count() };
            Ok(Some(Bson::Int32(n as i32)))
        }
        v => {
            let code = if name == "$strLenBytes" { 34473 } else { 34471 };
            Err(err(code, format!("{name} requires a string argument, found: {}", type_of(v))))
        }
    }
}

fn split_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    if nullish(&args[0]) || nullish(&args[1]) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::String(s)) = &args[0] else {
        return Err(err(
            40085,
            format!(
                "$split requires an expression that evaluates to a string as a first argument, found: {}",
                type_of(&args[0])
            ),
        ));
    };
    let Some(Bson::String(sep)) = &args[1] else {
        return Err(err(
            40086,
            format!(
                "$split requires an expression that evaluates to a string as a second argument, found: {}",
                type_of(&args[1])
            ),
        ));
    };
    if sep.is_empty() {
        return Err(err(40087, "$split requires a non-empty separator"));
    }
    Ok(Some(Bson::Array(s.split(sep.as_str()).map(|p| Bson::String(p.to_string())).collect())))
}

fn strcasecmp_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let a = coerce_string("$strcasecmp", &args[0])?.to_ascii_lowercase();
    let b = coerce_string("$strcasecmp", &args[1])?.to_ascii_lowercase();
    Ok(Some(Bson::Int32(match a.cmp(&b) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })))
}

fn index_of_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    if nullish(&args[0]) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::String(s)) = &args[0] else {
        return Err(err(
            40091,
            format!("{name} requires a string as the first argument, found: {}", type_of(&args[0])),
        ));
    };
    let Some(Bson::String(needle)) = &args[1] else {
        return Err(err(
            40092,
            format!("{name} requires a string as the second argument, found: {}", type_of(&args[1])),
        ));
    };
    let bound = |i: usize, what: &str| -> Result<Option<usize>> {
        match args.get(i) {
            None => Ok(None),
            Some(v) => {
                let n = v
                    .as_ref()
                    .filter(|x| crate::query::util::is_number(x))
                    .and_then(crate::query::util::exact_i64)
                    .ok_or_else(|| {
                        err(
                            40096,
                            format!(
                                "{name} requires an integral {what}, found a value of type: {}",
                                type_of(v)
                            ),
                        )
                    })?;
                if n < 0 {
                    return Err(err(40097, format!("{name} requires a nonnegative {what}, found: {n}")));
                }
                Ok(Some(n as usize))
            }
        }
    };
    let start = bound(2, "starting index")?.unwrap_or(0);
    let end = bound(3, "ending index")?;
    let cp = name == "$indexOfCP";
    // Work in units: bytes or code points.
    let units: Vec<usize> =
        if cp { s.char_indices().map(|(i, _)| i).collect() } else { (0..s.len()).collect() };
    let total = units.len();
    let end = end.unwrap_or(total).min(total);
    if start > end {
        return Ok(Some(Bson::Int32(-1)));
    }
    let end_byte = if end == total { s.len() } else { units[end] };
    for (unit, &byte_at) in units.iter().enumerate().skip(start).take(end - start + 1) {
        let hay = if cp || s.is_char_boundary(byte_at) { s.get(byte_at..end_byte) } else { None };
        if let Some(h) = hay {
            if h.starts_with(needle.as_str()) {
                return Ok(Some(Bson::Int32(unit as i32)));
            }
        } else if !cp {
            // A byte index inside a multi-byte character: compare raw bytes.
            if s.as_bytes().get(byte_at..end_byte).is_some_and(|b| b.starts_with(needle.as_bytes())) {
                return Ok(Some(Bson::Int32(unit as i32)));
            }
        }
    }
    if start == end && needle.is_empty() && start <= total {
        return Ok(Some(Bson::Int32(start as i32)));
    }
    Ok(Some(Bson::Int32(-1)))
}

/// Whitespace `$trim` removes by default (mongod's list).
const DEFAULT_TRIM: &[char] = &[
    '\0', ' ', '\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}',
    '\u{200A}',
];

struct Trim {
    name: &'static str,
    input: Expr,
    chars: Option<Expr>,
}

fn parse_trim(name: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let st: &'static str = match name {
        "$trim" => "$trim",
        "$ltrim" => "$ltrim",
        _ => "$rtrim",
    };
    let Bson::Document(d) = arg else {
        return Err(err(
            50696,
            format!(
                "{name} only supports an object as an argument, found: {}",
                crate::query::util::type_name(arg)
            ),
        ));
    };
    for k in d.keys() {
        if k != "input" && k != "chars" {
            return Err(err(50694, format!("{name} found an unknown argument: {k}")));
        }
    }
    let input = d.get("input").ok_or_else(|| err(50695, format!("{name} requires an 'input' field")))?;
    Ok(Expr::Special(Box::new(Trim {
        name: st,
        input: p.parse(input)?,
        chars: d.get("chars").map(|c| p.parse(c)).transpose()?,
    })))
}

impl Special for Trim {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let v = self.input.eval(c)?;
        if nullish(&v) {
            return Ok(Some(Bson::Null));
        }
        let Some(Bson::String(s)) = v else {
            return Err(err(
                50699,
                format!(
                    "{} requires its input to be a string, got {} (of type {}) instead.",
                    self.name,
                    crate::query::util::value_to_string(v.as_ref().unwrap_or(&Bson::Null)),
                    type_of(&v)
                ),
            ));
        };
        let set: Vec<char> = match &self.chars {
            None => DEFAULT_TRIM.to_vec(),
            Some(e) => match e.eval(c)? {
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                Some(Bson::String(cs)) => cs.chars().collect(),
                v => {
                    return Err(err(
                        50700,
                        format!(
                            "{} requires 'chars' to be a string, got {} instead.",
                            self.name,
                            type_of(&v)
                        ),
                    ))
                }
            },
        };
        let out = match self.name {
            "$ltrim" => s.trim_start_matches(set.as_slice()),
            "$rtrim" => s.trim_end_matches(set.as_slice()),
            _ => s.trim_matches(set.as_slice()),
        };
        Ok(Some(Bson::String(out.to_string())))
    }
}

enum RegexSource {
    Fixed(Box<RegexPredicate>),
    Dynamic { regex: Box<Expr>, options: Option<Box<Expr>> },
}

struct RegexOp {
    name: &'static str,
    input: Expr,
    source: RegexSource,
}

fn parse_regex(name: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let st: &'static str = match name {
        "$regexMatch" => "$regexMatch",
        "$regexFind" => "$regexFind",
        _ => "$regexFindAll",
    };
    let Bson::Document(d) = arg else {
        return Err(err(
            51103,
            format!(
                "{name} expects an object of named arguments but found: {}",
                crate::query::util::type_name(arg)
            ),
        ));
    };
    for k in d.keys() {
        if !["input", "regex", "options"].contains(&k.as_str()) {
            return Err(err(31024, format!("{name} found an unknown argument: {k}")));
        }
    }
    let input = d.get("input").ok_or_else(|| err(31022, format!("{name} requires 'input' parameter")))?;
    let regex = d.get("regex").ok_or_else(|| err(31023, format!("{name} requires 'regex' parameter")))?;
    let regex = p.parse(regex)?;
    let options = d.get("options").map(|o| p.parse(o)).transpose()?;
    let source = match (&regex, &options) {
        (Expr::Const(r), None) => match compile(st, Some(r), None)? {
            Some(re) => RegexSource::Fixed(Box::new(re)),
            None => RegexSource::Dynamic { regex: Box::new(regex), options: options.map(Box::new) },
        },
        (Expr::Const(r), Some(Expr::Const(o))) => match compile(st, Some(r), Some(o))? {
            Some(re) => RegexSource::Fixed(Box::new(re)),
            None => RegexSource::Dynamic { regex: Box::new(regex), options: options.map(Box::new) },
        },
        _ => RegexSource::Dynamic { regex: Box::new(regex), options: options.map(Box::new) },
    };
    Ok(Expr::Special(Box::new(RegexOp { name: st, input: p.parse(input)?, source })))
}

/// Compiles the regex operand; `None` when it is null (the result is then null/false/[]).
fn compile(name: &str, regex: Option<&Bson>, options: Option<&Bson>) -> Result<Option<RegexPredicate>> {
    let opts = match options {
        None | Some(Bson::Null) | Some(Bson::Undefined) => None,
        Some(Bson::String(o)) => Some(o.clone()),
        Some(other) => {
            return Err(err(
                51106,
                format!(
                    "{name} needs 'options' to be of type string, found: {}",
                    crate::query::util::type_name(other)
                ),
            ))
        }
    };
    let (pattern, flags) = match regex {
        None | Some(Bson::Null) | Some(Bson::Undefined) => return Ok(None),
        Some(Bson::String(s)) => (s.clone(), opts.unwrap_or_default()),
        Some(Bson::RegularExpression(r)) => {
            if opts.is_some() && !r.options.is_empty() {
                return Err(err(
                    51107,
                    format!("{name} found regex option(s) specified in both 'regex' and 'option' fields"),
                ));
            }
            (r.pattern.clone(), opts.unwrap_or_else(|| r.options.clone()))
        }
        Some(other) => {
            return Err(err(
                51105,
                format!(
                    "{name} needs 'regex' to be of type string or regex, found: {}",
                    crate::query::util::type_name(other)
                ),
            ))
        }
    };
    RegexPredicate::new(&pattern, &flags).map(Some)
}

impl Special for RegexOp {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let input = self.input.eval(c)?;
        let dynamic;
        let re = match &self.source {
            RegexSource::Fixed(r) => Some(r.as_ref()),
            RegexSource::Dynamic { regex, options } => {
                let r = regex.eval(c)?;
                let o = match options {
                    Some(o) => o.eval(c)?,
                    None => None,
                };
                dynamic = compile(self.name, r.as_ref(), o.as_ref())?;
                dynamic.as_ref()
            }
        };
        let empty = || match self.name {
            "$regexMatch" => Bson::Boolean(false),
            "$regexFind" => Bson::Null,
            _ => Bson::Array(Vec::new()),
        };
        let s = match &input {
            v if nullish(v) => return Ok(Some(empty())),
            Some(Bson::String(s)) => s,
            v => {
                return Err(err(51104, format!("{} needs 'input' to be of type string", self.name))
                    .with_note(type_of(v)))
            }
        };
        let Some(re) = re else {
            return Ok(Some(empty()));
        };
        let re = re.regex();
        match self.name {
            "$regexMatch" => Ok(Some(Bson::Boolean(re.is_match(s).unwrap_or(false)))),
            "$regexFind" => Ok(Some(match re.captures(s).ok().flatten() {
                Some(caps) => capture_doc(s, &caps),
                None => Bson::Null,
            })),
            _ => {
                let mut out = Vec::new();
                let mut pos = 0usize;
                let mut bytes = 0usize;
                while pos <= s.len() {
                    let Some(caps) = re.captures_from_pos(s, pos).ok().flatten() else { break };
                    let Some(m) = caps.get(0) else { break };
                    let d = capture_doc(s, &caps);
                    bytes += m.as_str().len() + 64;
                    if bytes > MAX_BUILD_BYTES {
                        return Err(err(
                            51151,
                            "$regexFindAll: the size of buffer to store output exceeded the 64MB limit",
                        ));
                    }
                    out.push(d);
                    pos = if m.end() > m.start() {
                        m.end()
                    } else {
                        // An empty match: step over one character.
                        m.end() + s[m.end()..].chars().next().map_or(1, char::len_utf8)
                    };
                }
                Ok(Some(Bson::Array(out)))
            }
        }
    }
}

trait WithNote {
    fn with_note(self, t: &str) -> Self;
}

impl WithNote for crate::error::MongoError {
    fn with_note(mut self, t: &str) -> Self {
        self.message = format!("{}, found: {t}", self.message);
        self
    }
}

fn capture_doc(s: &str, caps: &fancy_regex::Captures) -> Bson {
    let Some(m) = caps.get(0) else { return Bson::Null };
    let idx = s[..m.start()].chars().count() as i32;
    let captures: Vec<Bson> = (1..caps.len())
        .map(|i| caps.get(i).map_or(Bson::Null, |g| Bson::String(g.as_str().to_string())))
        .collect();
    Bson::Document(doc! {"match": m.as_str(), "idx": idx, "captures": captures})
}

struct Replace {
    all: bool,
    input: Expr,
    find: Expr,
    replacement: Expr,
}

fn parse_replace(name: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args(name, arg, &["input", "find", "replacement"], 51751, 51750)?;
    let get = |k: &str| {
        find_arg(&args, k).ok_or_else(|| err(51749, format!("{name} requires '{k}' to be specified")))
    };
    Ok(Expr::Special(Box::new(Replace {
        all: name == "$replaceAll",
        input: p.parse(get("input")?)?,
        find: p.parse(get("find")?)?,
        replacement: p.parse(get("replacement")?)?,
    })))
}

impl Special for Replace {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let name = if self.all { "$replaceAll" } else { "$replaceOne" };
        let vals = [self.input.eval(c)?, self.find.eval(c)?, self.replacement.eval(c)?];
        for (what, v) in ["input", "find", "replacement"].iter().zip(&vals) {
            if !nullish(v) && !matches!(v, Some(Bson::String(_))) {
                return Err(err(
                    51746,
                    format!("{name} requires that '{what}' be a string, found: {}", type_of(v)),
                ));
            }
        }
        if vals.iter().any(nullish) {
            return Ok(Some(Bson::Null));
        }
        let [Some(Bson::String(input)), Some(Bson::String(find)), Some(Bson::String(rep))] = &vals else {
            return Ok(Some(Bson::Null));
        };
        let out = if self.all {
            if find.is_empty() {
                // Every position between characters matches an empty string.
                let mut o = String::with_capacity(input.len());
                o.push_str(rep);
                for ch in input.chars() {
                    o.push(ch);
                    o.push_str(rep);
                    if o.len() > MAX_BUILD_BYTES {
                        return Err(err(16493, "$replaceAll result is too large"));
                    }
                }
                o
            } else {
                let n = input.matches(find.as_str()).count();
                if input.len().saturating_add(n.saturating_mul(rep.len())) > MAX_BUILD_BYTES {
                    return Err(err(16493, "$replaceAll result is too large"));
                }
                input.replace(find.as_str(), rep)
            }
        } else {
            input.replacen(find.as_str(), rep, 1)
        };
        Ok(Some(Bson::String(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, Bson};

    #[test]
    fn strings() {
        assert_eq!(ev(bson!({"$concat": ["a", "b", "c"]})).unwrap(), Some(bson!("abc")));
        assert_eq!(ev(bson!({"$concat": ["a", null]})).unwrap(), Some(Bson::Null));
        assert_eq!(code(ev(bson!({"$concat": ["a", 1]}))), 16702);
        assert_eq!(ev(bson!({"$substr": ["hello", 1, 3]})).unwrap(), Some(bson!("ell")));
        assert_eq!(ev(bson!({"$substrCP": ["héllo", 1, 2]})).unwrap(), Some(bson!("él")));
        assert_eq!(code(ev(bson!({"$substrBytes": ["héllo", 2, 2]}))), 28656);
        assert_eq!(ev(bson!({"$toUpper": "abc"})).unwrap(), Some(bson!("ABC")));
        assert_eq!(ev(bson!({"$toLower": 5})).unwrap(), Some(bson!("5")));
        assert_eq!(ev(bson!({"$strLenCP": "héllo"})).unwrap(), Some(Bson::Int32(5)));
        assert_eq!(ev(bson!({"$strLenBytes": "héllo"})).unwrap(), Some(Bson::Int32(6)));
        assert_eq!(ev(bson!({"$split": ["a-b-c", "-"]})).unwrap(), Some(bson!(["a", "b", "c"])));
        assert_eq!(code(ev(bson!({"$split": ["a", ""]}))), 40087);
        assert_eq!(ev(bson!({"$trim": {"input": "  x  "}})).unwrap(), Some(bson!("x")));
        assert_eq!(ev(bson!({"$ltrim": {"input": "xxay", "chars": "x"}})).unwrap(), Some(bson!("ay")));
        assert_eq!(ev(bson!({"$indexOfCP": ["cafétéria", "é"]})).unwrap(), Some(Bson::Int32(3)));
        assert_eq!(ev(bson!({"$indexOfBytes": ["cafétéria", "é"]})).unwrap(), Some(Bson::Int32(3)));
        assert_eq!(ev(bson!({"$indexOfBytes": ["abc", "c", 0, 2]})).unwrap(), Some(Bson::Int32(-1)));
        assert_eq!(ev(bson!({"$strcasecmp": ["ABC", "abc"]})).unwrap(), Some(Bson::Int32(0)));
        assert_eq!(
            ev(bson!({"$regexMatch": {"input": "Hello", "regex": "^h", "options": "i"}})).unwrap(),
            Some(Bson::Boolean(true))
        );
        assert_eq!(
            ev(bson!({"$regexFind": {"input": "a1b22", "regex": "([0-9]+)"}})).unwrap(),
            Some(bson!({"match": "1", "idx": 1, "captures": ["1"]}))
        );
        assert_eq!(
            ev(bson!({"$regexFindAll": {"input": "a1b22", "regex": "[0-9]+"}})).unwrap(),
            Some(
                bson!([{"match": "1", "idx": 1, "captures": []}, {"match": "22", "idx": 3, "captures": []}])
            )
        );
        assert_eq!(
            ev(bson!({"$replaceAll": {"input": "a.b.c", "find": ".", "replacement": "-"}})).unwrap(),
            Some(bson!("a-b-c"))
        );
        assert_eq!(
            ev(bson!({"$replaceOne": {"input": "a.b.c", "find": ".", "replacement": "-"}})).unwrap(),
            Some(bson!("a-b.c"))
        );
    }
}
