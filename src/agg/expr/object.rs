//! Object expressions: `$mergeObjects`, `$getField`, `$setField`, `$unsetField`,
//! `$objectToArray`, `$arrayToObject`, plus `$bsonSize`, `$binarySize`, `$tsSecond`,
//! `$tsIncrement`.

use super::{err, find_arg, func, named_args, nullish, type_of, Ctx, Expr, Parser, Special};
use crate::error::Result;
use bson::{doc, Bson, Document};

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let r = match name {
        "$mergeObjects" => p.args(arg).and_then(|a| func("$mergeObjects", a, merge_fn)),
        "$objectToArray" => p.args_exact(name, arg, 1).and_then(|a| func("$objectToArray", a, to_array_fn)),
        "$arrayToObject" => p.args_exact(name, arg, 1).and_then(|a| func("$arrayToObject", a, from_array_fn)),
        "$bsonSize" => p.args_exact(name, arg, 1).and_then(|a| func("$bsonSize", a, bson_size_fn)),
        "$binarySize" => p.args_exact(name, arg, 1).and_then(|a| func("$binarySize", a, binary_size_fn)),
        "$tsSecond" | "$tsIncrement" => {
            let st: &'static str = if name == "$tsSecond" { "$tsSecond" } else { "$tsIncrement" };
            p.args_exact(name, arg, 1).and_then(|a| func(st, a, ts_fn))
        }
        "$getField" => parse_field_op(FieldOp::Get, arg, p),
        "$setField" => parse_field_op(FieldOp::Set, arg, p),
        "$unsetField" => parse_field_op(FieldOp::Unset, arg, p),
        _ => return None,
    };
    Some(r)
}

fn merge_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let mut out = Document::new();
    for (i, a) in args.iter().enumerate() {
        match a {
            n if nullish(n) => {}
            Some(Bson::Document(d)) => {
                for (k, v) in d {
                    out.insert(k.clone(), v.clone());
                }
            }
            other => {
                return Err(err(
                    40400,
                    format!(
                        "$mergeObjects requires object inputs, but input {} is of type {}",
                        i + 1,
                        type_of(other)
                    ),
                ))
            }
        }
    }
    Ok(Some(Bson::Document(out)))
}

/// Merges `v` into `into` (the `$mergeObjects` accumulator's step).
pub fn merge_into(into: &mut Document, v: &Bson) -> Result<()> {
    match v {
        Bson::Null | Bson::Undefined => Ok(()),
        Bson::Document(d) => {
            for (k, x) in d {
                into.insert(k.clone(), x.clone());
            }
            Ok(())
        }
        other => Err(err(
            40400,
            format!(
                "$mergeObjects requires object inputs, but input {} is of type {}",
                crate::query::util::value_to_string(other),
                crate::query::util::type_name(other)
            ),
        )),
    }
}

fn to_array_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &args[0] {
        n if nullish(n) => Ok(Some(Bson::Null)),
        Some(Bson::Document(d)) => Ok(Some(Bson::Array(
            d.iter().map(|(k, v)| Bson::Document(doc! {"k": k.clone(), "v": v.clone()})).collect(),
        ))),
        other => {
            Err(err(40390, format!("$objectToArray requires a document input, found: {}", type_of(other))))
        }
    }
}

fn from_array_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    let a = match &args[0] {
        n if nullish(n) => return Ok(Some(Bson::Null)),
        Some(Bson::Array(a)) => a,
        other => {
            return Err(err(
                40386,
                format!("$arrayToObject requires an array input, found: {}", type_of(other)),
            ))
        }
    };
    let mut out = Document::new();
    let mut kv_form: Option<bool> = None;
    for item in a {
        let (k, v) = match item {
            Bson::Array(pair) => {
                if kv_form == Some(true) {
                    return Err(err(40391, "$arrayToObject requires a consistent input format. Elements must all be arrays or all be objects. Object found, but expected array"));
                }
                kv_form = Some(false);
                if pair.len() != 2 {
                    return Err(err(
                        40397,
                        format!(
                            "$arrayToObject requires an array of size 2 arrays,found array of size: {}",
                            pair.len()
                        ),
                    ));
                }
                match &pair[0] {
                    Bson::String(k) => (k.clone(), pair[1].clone()),
                    other => {
                        return Err(err(40395, format!("$arrayToObject requires an array of key-value pairs, where the key must be of type string. Found key type: {}", crate::query::util::type_name(other))))
                    }
                }
            }
            Bson::Document(d) => {
                if kv_form == Some(false) {
                    return Err(err(40396, "$arrayToObject requires a consistent input format. Elements must all be arrays or all be objects. Array found, but expected an object"));
                }
                kv_form = Some(true);
                if d.len() != 2 || !d.contains_key("k") || !d.contains_key("v") {
                    return Err(err(40392, format!("$arrayToObject requires an object keys of 'k' and 'v'. Found incorrect number of keys:{}", d.len())));
                }
                match d.get("k") {
                    Some(Bson::String(k)) => (k.clone(), d.get("v").cloned().unwrap_or(Bson::Null)),
                    other => {
                        return Err(err(40394, format!("$arrayToObject requires an object with keys 'k' and 'v', where the value of 'k' must be of type string. Found type: {}", other.map_or("missing", crate::query::util::type_name))))
                    }
                }
            }
            other => {
                return Err(err(
                    40398,
                    format!(
                        "Unrecognised input type format for $arrayToObject: {}",
                        crate::query::util::type_name(other)
                    ),
                ))
            }
        };
        if k.contains('\0') {
            return Err(err(4940400, "Key field cannot contain an embedded null byte"));
        }
        out.insert(k, v);
    }
    Ok(Some(Bson::Document(out)))
}

fn bson_size_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &args[0] {
        n if nullish(n) => Ok(Some(Bson::Null)),
        Some(Bson::Document(d)) => Ok(Some(Bson::Int32(crate::query::exec::bson_size(d) as i32))),
        other => Err(err(31393, format!("$bsonSize requires a document input, found: {}", type_of(other)))),
    }
}

fn binary_size_fn(_: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &args[0] {
        n if nullish(n) => Ok(Some(Bson::Null)),
        Some(Bson::String(s)) => Ok(Some(Bson::Int32(s.len() as i32))),
        Some(Bson::Binary(b)) => Ok(Some(Bson::Int32(b.bytes.len() as i32))),
        other => Err(err(
            51276,
            format!("$binarySize requires a string or BinData argument, found: {}", type_of(other)),
        )),
    }
}

fn ts_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    match &args[0] {
        n if nullish(n) => Ok(Some(Bson::Null)),
        Some(Bson::Timestamp(t)) => {
            Ok(Some(Bson::Int64(i64::from(if name == "$tsSecond" { t.time } else { t.increment }))))
        }
        other => {
            Err(err(5687301, format!("Argument to {name} must be a timestamp, but is {}", type_of(other))))
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set,
    Unset,
}

struct FieldExpr {
    op: FieldOp,
    field: Expr,
    input: Expr,
    value: Option<Expr>,
}

fn parse_field_op(op: FieldOp, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let name = match op {
        FieldOp::Get => "$getField",
        FieldOp::Set => "$setField",
        FieldOp::Unset => "$unsetField",
    };
    // `{$getField: "name"}` is shorthand for `{field: "name", input: "$$CURRENT"}`.
    if op == FieldOp::Get && !matches!(arg, Bson::Document(_)) {
        return Ok(Expr::Special(Box::new(FieldExpr {
            op,
            field: field_name_expr(name, arg, p)?,
            input: Expr::Path(super::VarRef::Current, Vec::new()),
            value: None,
        })));
    }
    let allowed: &[&str] = match op {
        FieldOp::Set => &["field", "input", "value"],
        _ => &["field", "input"],
    };
    let args = named_args(name, arg, allowed, 3041701, 3041702)?;
    let field = find_arg(&args, "field")
        .ok_or_else(|| err(3041703, format!("{name} requires 'field' to be specified")))?;
    let input = match find_arg(&args, "input") {
        Some(i) => p.parse(i)?,
        None if op == FieldOp::Get => Expr::Path(super::VarRef::Current, Vec::new()),
        None => return Err(err(4161105, format!("{name} requires 'input' to be specified"))),
    };
    let value = match op {
        FieldOp::Set => Some(
            p.parse(
                find_arg(&args, "value")
                    .ok_or_else(|| err(4161106, "$setField requires 'value' to be specified"))?,
            )?,
        ),
        _ => None,
    };
    Ok(Expr::Special(Box::new(FieldExpr { op, field: field_name_expr(name, field, p)?, input, value })))
}

fn field_name_expr(name: &str, v: &Bson, p: &mut Parser) -> Result<Expr> {
    let e = p.parse(v)?;
    match (&e, v) {
        (Expr::Const(Bson::String(_)), _) => Ok(e),
        (_, Bson::Document(d)) if d.contains_key("$literal") => Ok(e),
        (Expr::Const(_), _) => Err(err(
            5654602,
            format!(
                "{name} requires 'field' to evaluate to type String, but got {}",
                crate::query::util::type_name(v)
            ),
        )),
        _ => Err(err(
            4161102,
            format!("{name} requires 'field' to evaluate to a constant, but got a non-constant argument"),
        )),
    }
}

impl Special for FieldExpr {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let Some(Bson::String(field)) = self.field.eval(c)? else {
            return Err(err(3041704, "field must evaluate to a string"));
        };
        let input = self.input.eval(c)?;
        match self.op {
            FieldOp::Get => match input {
                Some(Bson::Document(d)) => Ok(d.get(&field).cloned()),
                n if nullish(&n) => Ok(None),
                other => Err(err(
                    3041705,
                    format!(
                        "$getField requires 'input' to evaluate to type Object, but got {}",
                        type_of(&other)
                    ),
                )),
            },
            FieldOp::Set | FieldOp::Unset => {
                let mut d = match input {
                    Some(Bson::Document(d)) => d,
                    n if nullish(&n) => return Ok(Some(Bson::Null)),
                    other => {
                        return Err(err(
                            4161105,
                            format!(
                                "$setField requires 'input' to evaluate to type Object, but got {}",
                                type_of(&other)
                            ),
                        ))
                    }
                };
                let value = match &self.value {
                    Some(v) => v.eval(c)?,
                    None => None,
                };
                match value {
                    Some(v) => {
                        d.insert(field, v);
                    }
                    None => {
                        d.remove(&field);
                    }
                }
                Ok(Some(Bson::Document(d)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, doc, Bson};

    #[test]
    fn objects() {
        let d = doc! {"o": {"a": 1, "b": 2}, "a.b": 5};
        let get = |e: Bson| eval_on(e, &d);
        assert_eq!(
            get(bson!({"$mergeObjects": ["$o", {"b": 3, "c": 4}, null]})).unwrap(),
            Some(bson!({"a": 1, "b": 3, "c": 4}))
        );
        assert_eq!(code(get(bson!({"$mergeObjects": ["$o", 1]}))), 40400);
        assert_eq!(
            get(bson!({"$objectToArray": "$o"})).unwrap(),
            Some(bson!([{"k": "a", "v": 1}, {"k": "b", "v": 2}]))
        );
        assert_eq!(
            get(bson!({"$arrayToObject": [[["x", 1], ["y", 2]]]})).unwrap(),
            Some(bson!({"x": 1, "y": 2}))
        );
        assert_eq!(get(bson!({"$arrayToObject": [[{"k": "x", "v": 1}]]})).unwrap(), Some(bson!({"x": 1})));
        assert_eq!(get(bson!({"$getField": "a.b"})).unwrap(), Some(Bson::Int32(5)));
        assert_eq!(get(bson!({"$getField": {"field": "b", "input": "$o"}})).unwrap(), Some(Bson::Int32(2)));
        assert_eq!(
            get(bson!({"$setField": {"field": "z", "input": "$o", "value": 9}})).unwrap(),
            Some(bson!({"a": 1, "b": 2, "z": 9}))
        );
        assert_eq!(
            get(bson!({"$unsetField": {"field": "a", "input": "$o"}})).unwrap(),
            Some(bson!({"b": 2}))
        );
    }
}
