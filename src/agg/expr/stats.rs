//! Order statistics: `$median` and `$percentile` (as expressions here; the `$group` and
//! `$setWindowFields` accumulators share [`QuantileSpec`]) and the expression forms of
//! `$minN`/`$maxN`.
//!
//! mongod's "approximate" method is a t-digest; over the sizes a digest keeps exactly it gives
//! the discrete percentile (the value of rank ceil(p*n) in sorted order). We keep every value
//! (bounded by the stage memory limit), so "approximate" and "discrete" are that exact
//! discrete percentile and "continuous" interpolates between the two nearest ranks.

use super::{err, named_args, nullish, type_of, Ctx, Expr, Parser, Special};
use crate::error::Result;
use crate::query::compare::{as_number, compare_bson};
use crate::query::util::{exact_i64, value_to_string};
use bson::Bson;

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    Some(match name {
        "$median" | "$percentile" => parse_quantile_expr(name, arg, p),
        "$minN" | "$maxN" => parse_min_max_n(name, arg, p),
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    Approximate,
    Discrete,
    Continuous,
}

/// The constant part of a `$median`/`$percentile`: which quantiles, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileSpec {
    /// `None` for `$median` (one scalar result), else `p` (an array result in `p`'s order).
    pub ps: Option<Vec<f64>>,
    pub method: Method,
}

/// Parses `{input, p, method}` (`{input, method}` for `$median`); returns the input and spec.
pub fn parse_quantile(op: &str, arg: &Bson, p: &mut Parser) -> Result<(Expr, QuantileSpec)> {
    let median = op == "$median";
    let allowed: &[&str] = if median { &["input", "method"] } else { &["input", "p", "method"] };
    let Bson::Document(_) = arg else {
        return Err(err(
            7436100,
            format!("specification must be an object; found {}", crate::query::util::type_name(arg)),
        ));
    };
    let args = named_args(op, arg, allowed, 7436100, 40415)?;
    let get = |k: &str| args.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let missing = |k: &str| err(40414, format!("BSON field '{op}.{k}' is missing but a required field"));
    let input = get("input").ok_or_else(|| missing("input"))?;
    let method = match get("method").ok_or_else(|| missing("method"))? {
        Bson::String(s) if s == "approximate" => Method::Approximate,
        Bson::String(s) if s == "discrete" => Method::Discrete,
        Bson::String(s) if s == "continuous" => Method::Continuous,
        Bson::String(_) => {
            return Err(err(7766600, "Currently only 'approximate' can be used as percentile 'method'."))
        }
        other => {
            return Err(crate::error::MongoError::type_mismatch(format!(
                "BSON field '{op}.method' is the wrong type '{}', expected type 'string'",
                crate::query::util::type_name(other)
            )))
        }
    };
    let ps = if median {
        None
    } else {
        let raw = get("p").ok_or_else(|| missing("p"))?;
        Some(parse_p(op, raw, p)?)
    };
    Ok((p.parse(input)?, QuantileSpec { ps, method }))
}

/// `p` must fold to a non-empty array of numbers in [0, 1].
fn parse_p(op: &str, raw: &Bson, p: &mut Parser) -> Result<Vec<f64>> {
    let bad = |shown: String| {
        err(
            7750301,
            format!("The 'p' field for {op} must be an array of numbers from [0.0, 1.0], but found: {shown}"),
        )
    };
    let v = match p.parse(raw)? {
        Expr::Const(v) => v,
        _ => return Err(err(7750300, format!("The 'p' field for {op} must be a constant expression"))),
    };
    let Bson::Array(items) = &v else {
        return Err(bad(value_to_string(&v)));
    };
    if items.is_empty() {
        return Err(bad(value_to_string(&v)));
    }
    items
        .iter()
        .map(|x| match as_number(x).map(|n| n.to_f64()) {
            Some(f) if (0.0..=1.0).contains(&f) => Ok(f),
            _ => Err(bad(value_to_string(x))),
        })
        .collect()
}

/// The numeric value of an accumulated input, `None` for values the operators ignore.
pub fn numeric(v: &Bson) -> Option<f64> {
    as_number(v).map(|n| n.to_f64())
}

impl QuantileSpec {
    /// The result over `values` (any order): doubles; null (or nulls) when there are none.
    pub fn result(&self, mut values: Vec<f64>) -> Bson {
        // NaN sorts first, as mongod orders numbers.
        values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => a.total_cmp(b),
        });
        let one = |p: f64| match quantile(&values, p, self.method) {
            Some(x) => Bson::Double(x),
            None => Bson::Null,
        };
        match &self.ps {
            None => one(0.5),
            Some(ps) => Bson::Array(ps.iter().map(|p| one(*p)).collect()),
        }
    }
}

/// The `p` quantile of sorted values.
pub fn quantile(sorted: &[f64], p: f64, method: Method) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    match method {
        Method::Approximate | Method::Discrete => {
            let rank = (p * n as f64).ceil() as usize;
            sorted.get(rank.clamp(1, n) - 1).copied()
        }
        Method::Continuous => {
            let pos = p * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let (a, b) = (*sorted.get(lo)?, *sorted.get(hi)?);
            Some(if lo == hi { a } else { a + (b - a) * (pos - lo as f64) })
        }
    }
}

struct QuantileExpr {
    input: Expr,
    spec: QuantileSpec,
}

fn parse_quantile_expr(op: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let (input, spec) = parse_quantile(op, arg, p)?;
    Ok(Expr::Special(Box::new(QuantileExpr { input, spec })))
}

impl Special for QuantileExpr {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        // A number is a one-value input; an array gives its numeric elements; anything else
        // has no numbers at all.
        let values = match self.input.eval(c)? {
            Some(Bson::Array(items)) => items.iter().filter_map(numeric).collect(),
            Some(v) => numeric(&v).into_iter().collect(),
            None => Vec::new(),
        };
        Ok(Some(self.spec.result(values)))
    }
}

struct MinMaxN {
    max: bool,
    n: Expr,
    input: Expr,
}

fn parse_min_max_n(op: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args(op, arg, &["n", "input"], 5787801, 5787901)?;
    let get = |k: &str| args.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let n = get("n").ok_or_else(|| err(5787906, format!("{op} requires an 'n' field")))?;
    let input = get("input").ok_or_else(|| err(5787907, format!("{op} requires an 'input' field")))?;
    Ok(Expr::Special(Box::new(MinMaxN { max: op == "$maxN", n: p.parse(n)?, input: p.parse(input)? })))
}

impl Special for MinMaxN {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let n = self.n.value(c)?;
        let limit = match exact_i64(&n) {
            Some(k) if k > 0 => k as usize,
            Some(_) => return Err(err(5787908, "'n' must be greater than 0")),
            None => {
                return Err(err(
                    5787902,
                    format!("Value for 'n' must be of integral type, but found {}", value_to_string(&n)),
                ))
            }
        };
        let input = self.input.eval(c)?;
        let items = match input {
            Some(Bson::Array(a)) => a,
            other => return Err(err(5788200, format!("Input must be an array, found: {}", type_of(&other)))),
        };
        let mut vals: Vec<Bson> = items.into_iter().filter(|v| !nullish(&Some(v.clone()))).collect();
        // Stable: equal values keep their array order.
        vals.sort_by(|a, b| if self.max { compare_bson(b, a) } else { compare_bson(a, b) });
        vals.truncate(limit);
        Ok(Some(Bson::Array(vals)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use bson::{bson, doc};

    fn med(input: Bson) -> Bson {
        ev(bson!({"$median": {"input": input, "method": "approximate"}})).unwrap().unwrap()
    }

    #[test]
    fn median_expression_docs_example() {
        // The testScores example of mongod's $median expression page.
        let rows = [
            (bson!([62, 81, 80, 75, 68]), 75.0),
            (bson!([60, 83, 79, 72, 65]), 72.0),
            (bson!([67, 82, 78, 70, 84]), 78.0),
            (bson!([64, 72, 77, 58, 91]), 72.0),
            (bson!([60, 53, 72, 85, 63]), 63.0),
        ];
        for (scores, want) in rows {
            let d = doc! {"scores": scores};
            let got = eval_on(bson!({"$median": {"input": "$scores", "method": "approximate"}}), &d);
            assert_eq!(got.unwrap(), Some(Bson::Double(want)));
        }
    }

    #[test]
    fn percentile_expression() {
        let d = doc! {"s": [62, 81, 80, 75, 68]};
        let e =
            bson!({"$percentile": {"input": "$s", "p": [0.5, 0.75, 0.9, 0.0, 1.0], "method": "approximate"}});
        assert_eq!(eval_on(e, &d).unwrap(), Some(bson!([75.0, 80.0, 81.0, 62.0, 81.0])));
        // An array of expressions, non-numbers ignored; a lone number is a one-value input.
        let d = doc! {"a": 3, "b": "x", "c": 1.5};
        let e = bson!({"$percentile": {"input": ["$a", "$b", "$c", "$nope", 10], "p": [0.5], "method": "approximate"}});
        assert_eq!(eval_on(e, &d).unwrap(), Some(bson!([3.0])));
        assert_eq!(med(bson!(4)), Bson::Double(4.0));
        assert_eq!(med(bson!([])), Bson::Null);
        assert_eq!(med(bson!(["a", null])), Bson::Null);
        assert_eq!(med(Bson::Null), Bson::Null);
        let e = bson!({"$percentile": {"input": [], "p": [0.1, 0.2], "method": "approximate"}});
        assert_eq!(ev(e).unwrap(), Some(bson!([null, null])));
        assert_eq!(med(bson!([5i64, 2.5, 9])), Bson::Double(5.0));
    }

    #[test]
    fn methods() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5, Method::Discrete), Some(2.0));
        assert_eq!(quantile(&v, 0.5, Method::Continuous), Some(2.5));
        assert_eq!(quantile(&v, 0.0, Method::Approximate), Some(1.0));
        assert_eq!(quantile(&v, 1.0, Method::Continuous), Some(4.0));
        assert_eq!(quantile(&[], 0.5, Method::Continuous), None);
        let e = bson!({"$median": {"input": [1, 2, 3, 4], "method": "continuous"}});
        assert_eq!(ev(e).unwrap(), Some(Bson::Double(2.5)));
    }

    #[test]
    fn quantile_errors() {
        let pe = |p: Bson| code(ev(bson!({"$percentile": {"input": [1], "p": p, "method": "approximate"}})));
        assert_eq!(pe(bson!([1.5])), 7750301);
        assert_eq!(pe(bson!([-0.1])), 7750301);
        assert_eq!(pe(bson!([])), 7750301);
        assert_eq!(pe(bson!(0.5)), 7750301);
        assert_eq!(pe(bson!(["a"])), 7750301);
        assert_eq!(
            code(ev(bson!({"$percentile": {"input": [1], "p": "$x", "method": "approximate"}}))),
            7750300
        );
        assert_eq!(code(ev(bson!({"$median": {"input": [1], "method": "exact"}}))), 7766600);
        assert_eq!(code(ev(bson!({"$median": {"input": [1], "method": 1}}))), 14);
        assert_eq!(code(ev(bson!({"$median": {"input": [1]}}))), 40414);
        assert_eq!(code(ev(bson!({"$percentile": {"input": [1], "method": "approximate"}}))), 40414);
        assert_eq!(code(ev(bson!({"$median": {"input": [1], "p": [0.5], "method": "approximate"}}))), 40415);
        assert_eq!(code(ev(bson!({"$median": [1, 2]}))), 7436100);
    }

    #[test]
    fn min_max_n() {
        let d = doc! {"a": [3, null, 1, "z", 2, 5]};
        let get = |e: Bson| eval_on(e, &d);
        assert_eq!(get(bson!({"$maxN": {"n": 2, "input": "$a"}})).unwrap(), Some(bson!(["z", 5])));
        assert_eq!(get(bson!({"$minN": {"n": 3, "input": "$a"}})).unwrap(), Some(bson!([1, 2, 3])));
        assert_eq!(get(bson!({"$minN": {"n": 10, "input": [2, 1]}})).unwrap(), Some(bson!([1, 2])));
        assert_eq!(get(bson!({"$maxN": {"n": 1, "input": []}})).unwrap(), Some(bson!([])));
        assert_eq!(code(get(bson!({"$maxN": {"n": 0, "input": "$a"}}))), 5787908);
        assert_eq!(code(get(bson!({"$maxN": {"n": "x", "input": "$a"}}))), 5787902);
        assert_eq!(code(get(bson!({"$maxN": {"n": 1, "input": 5}}))), 5788200);
        assert_eq!(code(get(bson!({"$maxN": {"input": "$a"}}))), 5787906);
        assert_eq!(code(get(bson!({"$maxN": {"n": 1}}))), 5787907);
        assert_eq!(code(get(bson!({"$maxN": {"n": 1, "input": [], "x": 1}}))), 5787901);
        assert_eq!(code(get(bson!({"$minN": 3}))), 5787801);
    }
}
