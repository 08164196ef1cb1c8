//! Evaluation operators: `$regex`/`$options`, `$mod`, and the path-less top-level operators
//! `$comment`, `$where`, `$text`, `$expr`, `$jsonSchema`.
//!
//! Regexes are compiled with the `regex` crate, translating mongod's flags (`i m s x`, `u`
//! accepted and implied). PCRE-only syntax (look-around, back-references) is refused with
//! mongod's invalid-regex error.

use super::matcher::{Ctx, ElementPredicate, Expr};
use super::util::{bad_value, exact_i64, located, number_as_f64};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, Document};

/// mongod's limit on a pattern's length.
const MAX_PATTERN_LEN: usize = 32 * 1024;
/// Bounds the compiled program a client can make us build.
const REGEX_SIZE_LIMIT: usize = 8 << 20;
/// Bounds the work one match may do on hostile patterns (catastrophic backtracking).
const REGEX_BACKTRACK_LIMIT: usize = 1_000_000;

/// A compiled regex test: strings and symbols match by pattern, stored regex values match
/// when pattern and flags are the same.
#[derive(Debug, Clone)]
pub struct RegexPredicate {
    pub pattern: String,
    pub options: String,
    re: fancy_regex::Regex,
}

impl RegexPredicate {
    pub fn new(pattern: &str, options: &str) -> Result<RegexPredicate> {
        if pattern.contains('\0') {
            return Err(bad_value("Regular expression cannot contain an embedded null byte"));
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(invalid_regex(pattern, "pattern is too long"));
        }
        // fancy-regex (backtracking, with look-around and back-references) is closer to the
        // PCRE mongod uses than the regex crate; flags become an inline group.
        let mut flags = String::new();
        for c in options.chars() {
            match c {
                'i' | 'm' | 's' | 'x' => {
                    if !flags.contains(c) {
                        flags.push(c);
                    }
                }
                'u' => {}
                other => {
                    return Err(located(
                        51108,
                        ErrorCode::BadValue,
                        format!("invalid flag in regex options: {other}"),
                    ))
                }
            }
        }
        let full = if flags.is_empty() { pattern.to_string() } else { format!("(?{flags}){pattern}") };
        let re = fancy_regex::RegexBuilder::new(&full)
            .backtrack_limit(REGEX_BACKTRACK_LIMIT)
            .delegate_size_limit(REGEX_SIZE_LIMIT)
            .delegate_dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| invalid_regex(pattern, &e.to_string()))?;
        Ok(RegexPredicate { pattern: pattern.to_string(), options: options.to_string(), re })
    }

    /// The compiled regex (aggregation's `$regexFind` needs captures).
    pub fn regex(&self) -> &fancy_regex::Regex {
        &self.re
    }

    /// A match that hits the backtracking limit counts as no match.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s).unwrap_or(false)
    }
}

fn invalid_regex(pattern: &str, why: &str) -> MongoError {
    located(51091, ErrorCode::BadValue, format!("Regular expression is invalid: {why} (pattern: {pattern})"))
}

impl ElementPredicate for RegexPredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        match v {
            Some(Bson::String(s)) | Some(Bson::Symbol(s)) => self.is_match(s),
            Some(Bson::RegularExpression(r)) => r.pattern == self.pattern && r.options == self.options,
            _ => false,
        }
    }
}

/// `{path: /pattern/options}`.
pub fn regex_expr(path: &str, pattern: &str, options: &str) -> Result<Expr> {
    Ok(Expr::path(path, RegexPredicate::new(pattern, options)?))
}

/// `$regex` together with `$options`, wherever they sit in the operator document.
pub fn parse_regex_pair(path: &str, ops: &Document) -> Result<Expr> {
    let mut pattern: Option<String> = None;
    let mut options = String::new();
    for (op, arg) in ops {
        match op.as_str() {
            "$regex" => match arg {
                Bson::String(s) => pattern = Some(s.clone()),
                Bson::RegularExpression(re) => {
                    pattern = Some(re.pattern.clone());
                    if !re.options.is_empty() {
                        if !options.is_empty() {
                            return Err(located(
                                51074,
                                ErrorCode::BadValue,
                                "options set in both $regex and $options",
                            ));
                        }
                        options = re.options.clone();
                    }
                }
                _ => return Err(bad_value("$regex has to be a string")),
            },
            "$options" => {
                let Bson::String(s) = arg else {
                    return Err(bad_value("$options has to be a string"));
                };
                if !options.is_empty() {
                    return Err(located(
                        51075,
                        ErrorCode::BadValue,
                        "options set in both $regex and $options",
                    ));
                }
                options = s.clone();
            }
            _ => {}
        }
    }
    match pattern {
        Some(p) => regex_expr(path, &p, &options),
        None => Err(bad_value("$options needs a $regex")),
    }
}

/// `$mod: [divisor, remainder]` on numbers, truncated toward zero as mongod does.
#[derive(Debug)]
pub struct ModPredicate {
    pub divisor: i64,
    pub remainder: i64,
}

impl ElementPredicate for ModPredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        let n = match v {
            Some(Bson::Int32(i)) => i64::from(*i),
            Some(Bson::Int64(i)) => *i,
            Some(x @ (Bson::Double(_) | Bson::Decimal128(_))) => match number_as_f64(x) {
                Some(d) if d.is_finite() => d.trunc() as i64,
                _ => return false,
            },
            _ => return false,
        };
        n.checked_rem(self.divisor).unwrap_or(0) == self.remainder
    }
}

fn mod_operand(v: &Bson, what: &str) -> Result<i64> {
    match v {
        Bson::Int32(i) => Ok(i64::from(*i)),
        Bson::Int64(i) => Ok(*i),
        Bson::Double(_) | Bson::Decimal128(_) => match number_as_f64(v) {
            Some(d) if d.is_finite() => {
                Ok(exact_i64(&Bson::Double(d.trunc())).unwrap_or(if d < 0.0 { i64::MIN } else { i64::MAX }))
            }
            _ => Err(bad_value(format!(
                "malformed mod, {what} value is invalid :: caused by :: Unable to coerce NaN/Inf to \
                 integral type"
            ))),
        },
        _ => Err(bad_value(format!("malformed mod, {what} not a number"))),
    }
}

fn mod_expr(path: &str, arg: &Bson) -> Result<Expr> {
    let Bson::Array(items) = arg else {
        return Err(bad_value("malformed mod, needs to be an array"));
    };
    if items.len() < 2 {
        return Err(bad_value("malformed mod, not enough elements"));
    }
    if items.len() > 2 {
        return Err(bad_value("malformed mod, too many elements"));
    }
    let (Some(d), Some(r)) = (items.first(), items.get(1)) else {
        return Err(bad_value("malformed mod, not enough elements"));
    };
    let divisor = mod_operand(d, "divisor")?;
    let remainder = mod_operand(r, "remainder")?;
    if divisor == 0 {
        return Err(bad_value("divisor cannot be 0"));
    }
    Ok(Expr::path(path, ModPredicate { divisor, remainder }))
}

/// Parses `$mod` (`$regex`/`$options` are handled as a pair by the matcher); `None` for
/// other operators.
pub fn parse_op(path: &str, op: &str, arg: &Bson, _ctx: Ctx) -> Option<Result<Expr>> {
    Some(match op {
        "$mod" => mod_expr(path, arg),
        // `$regex`/`$options` are normally parsed as a pair by `parse_operator_doc`; these
        // arms serve callers that dispatch a single operator.
        "$regex" => match arg {
            Bson::String(s) => regex_expr(path, s, ""),
            Bson::RegularExpression(re) => regex_expr(path, &re.pattern, &re.options),
            _ => Err(bad_value("$regex has to be a string")),
        },
        "$options" => Err(bad_value("$options needs a $regex")),
        _ => return None,
    })
}

/// Parses path-less top-level operators of this family; `None` for others.
pub fn parse_top_level(op: &str, arg: &Bson, ctx: Ctx) -> Option<Result<Expr>> {
    let top_only = |what: &str| bad_value(format!("{what} can only be applied to the top-level document"));
    Some(match op {
        "$comment" => Ok(Expr::Const(true)),
        // mongod without a script engine.
        "$where" if ctx.sub_document => Err(top_only("$where")),
        "$where" => Err(bad_value("no globalScriptEngine in $where parsing")),
        "$text" if ctx.sub_document => Err(top_only("$text")),
        "$text" => Err(MongoError::new(ErrorCode::IndexNotFound, "text index required for $text query")),
        "$expr" if ctx.sub_document => Err(top_only("$expr")),
        "$sampleRate" if ctx.sub_document => Err(top_only("$sampleRate")),
        "$expr" => crate::agg::expr::expr_predicate(arg).map(Expr::Doc),
        "$jsonSchema" => super::json_schema::parse(arg).map(|p| Expr::Doc(std::sync::Arc::new(p))),
        "$sampleRate" => sample_rate(arg),
        // A DBRef's fields queried at the top level are plain equalities.
        "$id" | "$ref" | "$db" => super::ops_comparison::eq_expr(op, arg),
        _ => return None,
    })
}

/// `$sampleRate: p`: each document passes with probability p, drawn per document.
fn sample_rate(arg: &Bson) -> Result<Expr> {
    let p = match crate::query::compare::as_number(arg) {
        Some(n) => n.to_f64(),
        None => return Err(bad_value("argument to $sampleRate must be a numeric type")),
    };
    if !(0.0..=1.0).contains(&p) {
        return Err(bad_value("numeric argument to $sampleRate must be in [0, 1]"));
    }
    Ok(Expr::Doc(std::sync::Arc::new(SampleRate(p))))
}

#[derive(Debug)]
struct SampleRate(f64);

impl super::matcher::DocPredicate for SampleRate {
    fn matches(&self, _doc: &Document) -> bool {
        // random() is in [0, 1): p = 0 never passes and p = 1 always does.
        rand::random::<f64>() < self.0
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use crate::query::matcher::Matcher;
    use bson::{doc, Bson, Document, Regex};

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn sample_rate() {
        let docs: Vec<Document> = (0..2000).map(|i| doc! {"i": i}).collect();
        let count = |p: Bson| {
            let m = Matcher::parse(&doc! {"$sampleRate": p}).unwrap();
            docs.iter().filter(|d| m.matches(d)).count()
        };
        assert_eq!(count(Bson::Double(0.0)), 0);
        assert_eq!(count(Bson::Int32(1)), 2000);
        let half = count(Bson::Double(0.5));
        assert!((800..=1200).contains(&half), "{half}");
        assert_eq!(err(doc! {"$sampleRate": 1.5}).0, ErrorCode::BadValue);
        assert_eq!(err(doc! {"$sampleRate": -0.1}).0, ErrorCode::BadValue);
        assert_eq!(err(doc! {"$sampleRate": "x"}).0, ErrorCode::BadValue);
        assert_eq!(err(doc! {"a": {"$elemMatch": {"$sampleRate": 0.5}}}).0, ErrorCode::BadValue);
    }

    fn re(p: &str, o: &str) -> Bson {
        Bson::RegularExpression(Regex { pattern: p.into(), options: o.into() })
    }

    fn err(filter: Document) -> (ErrorCode, String) {
        let e = Matcher::parse(&filter).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn regex_forms() {
        assert!(m(doc! {"a": re("^ab", "")}, doc! {"a": "abc"}));
        assert!(!m(doc! {"a": re("^ab", "")}, doc! {"a": "ABc"}));
        assert!(m(doc! {"a": re("^ab", "i")}, doc! {"a": "ABc"}));
        assert!(m(doc! {"a": {"$regex": "^ab", "$options": "i"}}, doc! {"a": "ABc"}));
        assert!(m(doc! {"a": {"$options": "i", "$regex": "^ab"}}, doc! {"a": "ABc"}));
        assert!(m(doc! {"a": {"$regex": re("^ab", "i")}}, doc! {"a": "ABc"}));
        assert!(m(doc! {"a": {"$regex": "^b", "$options": "m"}}, doc! {"a": "a\nb"}));
        assert!(!m(doc! {"a": {"$regex": "^b"}}, doc! {"a": "a\nb"}));
        assert!(m(doc! {"a": {"$regex": "a.b", "$options": "s"}}, doc! {"a": "a\nb"}));
        assert!(m(doc! {"a": {"$regex": "a b # comment", "$options": "x"}}, doc! {"a": "ab"}));
        // Array elements; non-strings never match; stored regexes match by value.
        assert!(m(doc! {"a": re("x", "")}, doc! {"a": [1, "yx"]}));
        assert!(!m(doc! {"a": re("1", "")}, doc! {"a": 1}));
        assert!(m(doc! {"a": re("x", "i")}, doc! {"a": re("x", "i")}));
        assert!(m(doc! {"a": re("x", "")}, doc! {"a": Bson::Symbol("x".into())}));
    }

    #[test]
    fn regex_errors() {
        assert_eq!(err(doc! {"a": {"$regex": 1}}), (ErrorCode::BadValue, "$regex has to be a string".into()));
        assert_eq!(err(doc! {"a": {"$regex": "x", "$options": 1}}).1, "$options has to be a string");
        assert_eq!(err(doc! {"a": {"$options": "i"}}).1, "$options needs a $regex");
        assert_eq!(
            err(doc! {"a": {"$regex": re("x", "i"), "$options": "m"}}).1,
            "options set in both $regex and $options"
        );
        assert!(err(doc! {"a": {"$regex": "x", "$options": "z"}})
            .1
            .starts_with("invalid flag in regex options: z"));
        assert!(err(doc! {"a": {"$regex": "("}}).1.starts_with("Regular expression is invalid"));
    }

    #[test]
    fn modulo() {
        assert!(m(doc! {"a": {"$mod": [4, 0]}}, doc! {"a": 8}));
        assert!(m(doc! {"a": {"$mod": [4, 1]}}, doc! {"a": 9.9}));
        assert!(m(doc! {"a": {"$mod": [4, -1]}}, doc! {"a": -5}));
        assert!(m(doc! {"a": {"$mod": [4.5, 0]}}, doc! {"a": 8}));
        assert!(!m(doc! {"a": {"$mod": [4, 0]}}, doc! {"a": "8"}));
        assert!(m(doc! {"a": {"$mod": [4, 0]}}, doc! {"a": [1, 12]}));
        assert!(m(doc! {"a": {"$mod": [-1, 0]}}, doc! {"a": i64::MIN}));
        assert_eq!(err(doc! {"a": {"$mod": 4}}).1, "malformed mod, needs to be an array");
        assert_eq!(err(doc! {"a": {"$mod": [4]}}).1, "malformed mod, not enough elements");
        assert_eq!(err(doc! {"a": {"$mod": [4, 1, 2]}}).1, "malformed mod, too many elements");
        assert_eq!(err(doc! {"a": {"$mod": ["x", 1]}}).1, "malformed mod, divisor not a number");
        assert_eq!(err(doc! {"a": {"$mod": [1, "x"]}}).1, "malformed mod, remainder not a number");
        assert_eq!(err(doc! {"a": {"$mod": [0, 1]}}).1, "divisor cannot be 0");
    }

    #[test]
    fn top_level() {
        assert!(m(doc! {"$comment": "hi", "a": 1}, doc! {"a": 1}));
        assert_eq!(
            err(doc! {"$where": "1"}),
            (ErrorCode::BadValue, "no globalScriptEngine in $where parsing".into())
        );
        assert_eq!(err(doc! {"$text": {"$search": "x"}}).0, ErrorCode::IndexNotFound);
        assert!(Matcher::parse(&doc! {"$expr": {"$eq": ["$a", 1]}}).unwrap().matches(&doc! {"a": 1}));
        assert!(Matcher::parse(&doc! {"$jsonSchema": {}}).unwrap().matches(&doc! {"a": 1}));
        assert_eq!(err(doc! {"$jsonSchema": 1}).0, ErrorCode::TypeMismatch);
        assert_eq!(
            err(doc! {"a": {"$elemMatch": {"$where": "1"}}}).1,
            "$where can only be applied to the top-level document"
        );
        assert_eq!(err(doc! {"a": {"$where": "1"}}).1, "$where cannot be applied to a field");
        // Top-level DBRef fields are equalities.
        assert!(m(doc! {"$id": 5}, doc! {"$id": 5}));
    }
}
