//! Comparison, boolean and conditional expressions, and `$let` / `$rand`.

use super::{arity_error, err, func, nullish, truthy, validate_var_name, Ctx, Expr, Parser, Special};
use crate::error::Result;
use crate::query::compare::compare_bson;
use bson::Bson;
use std::cmp::Ordering;

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let r = match name {
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => {
            let st: &'static str = match name {
                "$eq" => "$eq",
                "$ne" => "$ne",
                "$gt" => "$gt",
                "$gte" => "$gte",
                "$lt" => "$lt",
                "$lte" => "$lte",
                _ => "$cmp",
            };
            p.args_exact(name, arg, 2).and_then(|a| func(st, a, compare_fn))
        }
        "$and" | "$or" => p.args(arg).map(|args| {
            if args.iter().all(Expr::is_const) {
                let mut c = super::const_ctx();
                let vals: Vec<bool> =
                    args.iter().map(|a| a.eval(&mut c).map(|v| truthy(&v))).filter_map(|r| r.ok()).collect();
                let v = if name == "$and" { vals.iter().all(|b| *b) } else { vals.iter().any(|b| *b) };
                return Expr::Const(Bson::Boolean(v));
            }
            Expr::Special(Box::new(Logic { and: name == "$and", args }))
        }),
        "$not" => p
            .args_exact(name, arg, 1)
            .and_then(|a| func("$not", a, |_, v| Ok(Some(Bson::Boolean(!truthy(&v[0])))))),
        "$cond" => parse_cond(arg, p),
        "$ifNull" => p.args(arg).and_then(|args| {
            if args.len() < 2 {
                return Err(err(
                    1612101,
                    "$ifNull needs at least two arguments, had: ".to_string() + &args.len().to_string(),
                ));
            }
            Ok(Expr::Special(Box::new(IfNull(args))))
        }),
        "$switch" => parse_switch(arg, p),
        "$let" => parse_let(arg, p),
        "$rand" => match arg {
            Bson::Document(d) if d.is_empty() => Ok(Expr::Special(Box::new(Rand))),
            _ => Err(err(10065, "$rand does not currently accept arguments")),
        },
        _ => return None,
    };
    Some(r)
}

fn compare_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let a = args.first().cloned().flatten().unwrap_or(Bson::Undefined);
    let b = args.get(1).cloned().flatten().unwrap_or(Bson::Undefined);
    // Missing compares as undefined would: below null.
    let c = cmp_values(&a, &b);
    Ok(Some(match name {
        "$eq" => Bson::Boolean(c == Ordering::Equal),
        "$ne" => Bson::Boolean(c != Ordering::Equal),
        "$gt" => Bson::Boolean(c == Ordering::Greater),
        "$gte" => Bson::Boolean(c != Ordering::Less),
        "$lt" => Bson::Boolean(c == Ordering::Less),
        "$lte" => Bson::Boolean(c != Ordering::Greater),
        _ => Bson::Int32(match c {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }),
    }))
}

/// mongod's `Value::compare` (the same total order as sorting).
pub fn cmp_values(a: &Bson, b: &Bson) -> Ordering {
    compare_bson(a, b)
}

struct Logic {
    and: bool,
    args: Vec<Expr>,
}

impl Special for Logic {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        for a in &self.args {
            let t = truthy(&a.eval(c)?);
            if self.and && !t {
                return Ok(Some(Bson::Boolean(false)));
            }
            if !self.and && t {
                return Ok(Some(Bson::Boolean(true)));
            }
        }
        Ok(Some(Bson::Boolean(self.and)))
    }
}

struct Cond {
    cond: Expr,
    then: Expr,
    otherwise: Expr,
}

impl Special for Cond {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        if truthy(&self.cond.eval(c)?) {
            self.then.eval(c)
        } else {
            self.otherwise.eval(c)
        }
    }
}

fn parse_cond(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let (i, t, e) = match arg {
        Bson::Document(d) => {
            for k in d.keys() {
                if !["if", "then", "else"].contains(&k.as_str()) {
                    return Err(err(17083, format!("Unrecognized parameter to $cond: {k}")));
                }
            }
            let i = d.get("if").ok_or_else(|| err(17080, "Missing 'if' parameter to $cond"))?;
            let t = d.get("then").ok_or_else(|| err(17081, "Missing 'then' parameter to $cond"))?;
            let e = d.get("else").ok_or_else(|| err(17082, "Missing 'else' parameter to $cond"))?;
            (p.parse(i)?, p.parse(t)?, p.parse(e)?)
        }
        Bson::Array(a) if a.len() == 3 => (p.parse(&a[0])?, p.parse(&a[1])?, p.parse(&a[2])?),
        Bson::Array(a) => return Err(arity_error("$cond", 3, a.len())),
        _ => return Err(arity_error("$cond", 3, 1)),
    };
    if let Expr::Const(v) = &i {
        return Ok(if truthy(&Some(v.clone())) { t } else { e });
    }
    Ok(Expr::Special(Box::new(Cond { cond: i, then: t, otherwise: e })))
}

struct IfNull(Vec<Expr>);

impl Special for IfNull {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let n = self.0.len();
        for (i, e) in self.0.iter().enumerate() {
            let v = e.eval(c)?;
            if i + 1 == n || !nullish(&v) {
                return Ok(v);
            }
        }
        Ok(None)
    }
}

struct Switch {
    branches: Vec<(Expr, Expr)>,
    default: Option<Expr>,
}

impl Special for Switch {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        for (case, then) in &self.branches {
            if truthy(&case.eval(c)?) {
                return then.eval(c);
            }
        }
        match &self.default {
            Some(d) => d.eval(c),
            None => Err(err(
                40066,
                "$switch could not find a matching branch for an input, and no default was specified.",
            )),
        }
    }
}

fn parse_switch(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let Bson::Document(d) = arg else {
        return Err(err(40060, "$switch requires an object as an argument"));
    };
    let mut branches = Vec::new();
    let mut default = None;
    for (k, v) in d {
        match k.as_str() {
            "branches" => {
                let Bson::Array(a) = v else {
                    return Err(err(40061, "$switch expected an array for 'branches'"));
                };
                for b in a {
                    let Bson::Document(bd) = b else {
                        return Err(err(40062, "$switch expected each branch to be an object"));
                    };
                    let (mut case, mut then) = (None, None);
                    for (bk, bv) in bd {
                        match bk.as_str() {
                            "case" => case = Some(p.parse(bv)?),
                            "then" => then = Some(p.parse(bv)?),
                            other => {
                                return Err(err(
                                    40063,
                                    format!("$switch found an unknown argument to a branch: {other}"),
                                ))
                            }
                        }
                    }
                    let case = case
                        .ok_or_else(|| err(40064, "$switch requires each branch have a 'case' expression"))?;
                    let then = then.ok_or_else(|| {
                        err(40065, "$switch requires each branch have a 'then' expression.")
                    })?;
                    branches.push((case, then));
                }
            }
            "default" => default = Some(p.parse(v)?),
            other => return Err(err(40067, format!("$switch found an unknown argument: {other}"))),
        }
    }
    if branches.is_empty() {
        return Err(err(40068, "$switch requires at least one branch."));
    }
    Ok(Expr::Special(Box::new(Switch { branches, default })))
}

struct Let {
    base: usize,
    values: Vec<Expr>,
    body: Expr,
}

impl Special for Let {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let mut vals = Vec::with_capacity(self.values.len());
        for v in &self.values {
            vals.push(v.value(c)?);
        }
        c.vars.truncate(self.base);
        c.vars.extend(vals);
        let r = self.body.eval(c);
        c.vars.truncate(self.base);
        r
    }
}

fn parse_let(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let Bson::Document(d) = arg else {
        return Err(err(16874, "$let only supports an object as its argument"));
    };
    let mut vars = None;
    let mut body = None;
    for (k, v) in d {
        match k.as_str() {
            "vars" => vars = Some(v),
            "in" => body = Some(v),
            other => {
                return Err(err(16875, format!("Unrecognized parameter to $let: {other}")));
            }
        }
    }
    let vars = vars.ok_or_else(|| err(16876, "Missing 'vars' parameter to $let"))?;
    let body = body.ok_or_else(|| err(16877, "Missing 'in' parameter to $let"))?;
    let Bson::Document(vars) = vars else {
        return Err(err(10065, "invalid parameter: expected an object (vars)"));
    };
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (k, v) in vars {
        validate_var_name(k, false)?;
        names.push(k.clone());
        values.push(p.parse(v)?);
    }
    p.scoped(&names, |p, base| {
        let body = p.parse(body)?;
        Ok(Expr::Special(Box::new(Let { base, values, body })))
    })
}

struct Rand;

impl Special for Rand {
    fn eval(&self, _c: &mut Ctx) -> Result<Option<Bson>> {
        Ok(Some(Bson::Double(rand::random::<f64>())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, doc, Bson};

    #[test]
    fn conditionals() {
        let d = doc! {"a": 5, "n": null};
        assert_eq!(
            eval_on(bson!({"$cond": [{"$gt": ["$a", 3]}, "big", "small"]}), &d).unwrap(),
            Some(bson!("big"))
        );
        assert_eq!(
            eval_on(bson!({"$cond": {"if": {"$lt": ["$a", 3]}, "then": 1, "else": 2}}), &d).unwrap(),
            Some(Bson::Int32(2))
        );
        assert_eq!(eval_on(bson!({"$ifNull": ["$n", "$x", "dflt"]}), &d).unwrap(), Some(bson!("dflt")));
        assert_eq!(eval_on(bson!({"$ifNull": ["$n", "$x"]}), &d).unwrap(), None);
        assert_eq!(
            eval_on(bson!({"$switch": {"branches": [{"case": {"$eq": ["$a", 5]}, "then": "five"}]}}), &d)
                .unwrap(),
            Some(bson!("five"))
        );
        assert_eq!(code(eval_on(bson!({"$switch": {"branches": [{"case": false, "then": 1}]}}), &d)), 40066);
        assert_eq!(
            eval_on(bson!({"$let": {"vars": {"x": 2, "y": "$a"}, "in": {"$multiply": ["$$x", "$$y"]}}}), &d)
                .unwrap(),
            Some(Bson::Int32(10))
        );
        assert_eq!(eval_on(bson!({"$and": [1, "$a", true]}), &d).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(eval_on(bson!({"$or": [0, "$n"]}), &d).unwrap(), Some(Bson::Boolean(false)));
        assert_eq!(eval_on(bson!({"$not": ["$n"]}), &d).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(eval_on(bson!({"$cmp": ["$a", 7]}), &d).unwrap(), Some(Bson::Int32(-1)));
        assert_eq!(eval_on(bson!({"$eq": ["$a", 5.0]}), &d).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(eval_on(bson!({"$gt": ["$a", null]}), &d).unwrap(), Some(Bson::Boolean(true)));
        assert_eq!(eval_on(bson!({"$lt": ["$missing", null]}), &d).unwrap(), Some(Bson::Boolean(true)));
    }
}
