//! Bitwise expressions: `$bitAnd`, `$bitOr`, `$bitXor` (variadic) and `$bitNot`, over int32
//! and int64 only. All-int32 operands give an int32; any int64 makes the result an int64 (the
//! int32 operands sign-extended). A null or missing operand makes the result null.

use super::{func, Expr, Parser};
use crate::error::{MongoError, Result};
use crate::query::util::type_name;
use bson::Bson;

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    Some(match name {
        "$bitAnd" => p.args(arg).and_then(|a| func("$bitAnd", a, variadic_fn)),
        "$bitOr" => p.args(arg).and_then(|a| func("$bitOr", a, variadic_fn)),
        "$bitXor" => p.args(arg).and_then(|a| func("$bitXor", a, variadic_fn)),
        "$bitNot" => p.args_exact(name, arg, 1).and_then(|a| func("$bitNot", a, not_fn)),
        _ => return None,
    })
}

fn type_error(name: &str, v: &Bson) -> MongoError {
    MongoError::type_mismatch(format!(
        "{name} only supports int and long operands, but found {}",
        type_name(v)
    ))
}

fn variadic_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    // The identity of each operation (what an empty argument list gives).
    let mut acc: i64 = if name == "$bitAnd" { -1 } else { 0 };
    let mut long = false;
    let mut null = false;
    for a in args {
        let x = match a {
            None | Some(Bson::Null | Bson::Undefined) => {
                null = true;
                continue;
            }
            Some(Bson::Int32(i)) => i64::from(*i),
            Some(Bson::Int64(l)) => {
                long = true;
                *l
            }
            Some(other) => return Err(type_error(name, other)),
        };
        acc = match name {
            "$bitAnd" => acc & x,
            "$bitOr" => acc | x,
            _ => acc ^ x,
        };
    }
    Ok(Some(match (null, long) {
        (true, _) => Bson::Null,
        (false, true) => Bson::Int64(acc),
        // Every operand was an int32, so the bits above 32 are copies of bit 31.
        (false, false) => Bson::Int32(acc as i32),
    }))
}

fn not_fn(name: &str, args: &[Option<Bson>]) -> Result<Option<Bson>> {
    Ok(Some(match args.first().cloned().flatten() {
        None | Some(Bson::Null | Bson::Undefined) => Bson::Null,
        Some(Bson::Int32(i)) => Bson::Int32(!i),
        Some(Bson::Int64(l)) => Bson::Int64(!l),
        Some(other) => return Err(type_error(name, &other)),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, doc, Bson};

    #[test]
    fn docs_examples() {
        // mongod's "switches" examples.
        let rows = [(0, 127, 0, 127), (2, 3, 2, 3), (3, 5, 1, 7)];
        for (a, b, and, or) in rows {
            let d = doc! {"a": a, "b": b};
            assert_eq!(eval_on(bson!({"$bitAnd": ["$a", "$b"]}), &d).unwrap(), Some(Bson::Int32(and)));
            assert_eq!(eval_on(bson!({"$bitOr": ["$a", "$b"]}), &d).unwrap(), Some(Bson::Int32(or)));
            assert_eq!(eval_on(bson!({"$bitXor": ["$a", "$b"]}), &d).unwrap(), Some(Bson::Int32(a ^ b)));
            assert_eq!(
                eval_on(bson!({"$bitAnd": ["$a", 63i64]}), &d).unwrap(),
                Some(Bson::Int64(i64::from(a & 63)))
            );
            assert_eq!(eval_on(bson!({"$bitNot": "$a"}), &d).unwrap(), Some(Bson::Int32(!a)));
        }
    }

    #[test]
    fn types_and_nulls() {
        assert_eq!(ev(bson!({"$bitAnd": []})).unwrap(), Some(Bson::Int32(-1)));
        assert_eq!(ev(bson!({"$bitOr": []})).unwrap(), Some(Bson::Int32(0)));
        assert_eq!(ev(bson!({"$bitXor": []})).unwrap(), Some(Bson::Int32(0)));
        // Sign extension of a negative int32 against a long.
        assert_eq!(ev(bson!({"$bitOr": [-1, 0i64]})).unwrap(), Some(Bson::Int64(-1)));
        assert_eq!(ev(bson!({"$bitNot": 5i64})).unwrap(), Some(Bson::Int64(-6)));
        assert_eq!(ev(bson!({"$bitAnd": [1, null]})).unwrap(), Some(Bson::Null));
        assert_eq!(ev(bson!({"$bitOr": [1, "$missing"]})).unwrap(), Some(Bson::Null));
        assert_eq!(ev(bson!({"$bitNot": "$missing"})).unwrap(), Some(Bson::Null));
        assert_eq!(ev(bson!({"$bitOr": 6})).unwrap(), Some(Bson::Int32(6)));
        assert_eq!(code(ev(bson!({"$bitAnd": [1, 2.0]}))), 14);
        assert_eq!(code(ev(bson!({"$bitOr": [1, "a"]}))), 14);
        assert_eq!(code(ev(bson!({"$bitNot": 1.5}))), 14);
        assert_eq!(code(ev(bson!({"$bitNot": [1, 2]}))), 16020);
    }
}
