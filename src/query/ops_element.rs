//! Element operators: `$exists` and `$type`.

use super::matcher::{Ctx, ElementPredicate, Expr};
use super::util::{bad_value, exact_i64, failed_to_parse, number_as_f64, true_value, type_code};
use crate::error::{MongoError, Result};
use bson::Bson;

/// `$exists: true`; `$exists: false` is its negation.
#[derive(Debug)]
pub struct ExistsPredicate;

impl ElementPredicate for ExistsPredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        v.is_some()
    }
}

/// `$type`: a set of BSON type codes, plus the "number" alias.
#[derive(Debug, Default)]
pub struct TypePredicate {
    codes: Vec<i32>,
    any_number: bool,
}

impl ElementPredicate for TypePredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        let Some(v) = v else { return false };
        if self.any_number
            && matches!(v, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_))
        {
            return true;
        }
        self.codes.contains(&type_code(v))
    }
}

/// The type code an alias names (mongod's `$type` string aliases).
pub fn type_alias(name: &str) -> Option<i32> {
    Some(match name {
        "double" => 1,
        "string" => 2,
        "object" => 3,
        "array" => 4,
        "binData" => 5,
        "undefined" => 6,
        "objectId" => 7,
        "bool" => 8,
        "date" => 9,
        "null" => 10,
        "regex" => 11,
        "dbPointer" => 12,
        "javascript" => 13,
        "symbol" => 14,
        "javascriptWithScope" => 15,
        "int" => 16,
        "timestamp" => 17,
        "long" => 18,
        "decimal" => 19,
        "minKey" => -1,
        "maxKey" => 127,
        _ => return None,
    })
}

fn valid_code(c: i64) -> bool {
    (1..=19).contains(&c) || c == -1 || c == 127
}

fn add_type(p: &mut TypePredicate, v: &Bson) -> Result<()> {
    match v {
        Bson::String(s) => {
            if s == "number" {
                p.any_number = true;
            } else {
                match type_alias(s) {
                    Some(c) => p.codes.push(c),
                    None => return Err(bad_value(format!("Unknown type name alias: {s}"))),
                }
            }
            Ok(())
        }
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            match exact_i64(v) {
                Some(c) if valid_code(c) => {
                    // `valid_code` bounds c to i32.
                    p.codes.push(c as i32);
                    Ok(())
                }
                _ => {
                    let shown = match v {
                        Bson::Double(d) => format!("{d}"),
                        _ => number_as_f64(v).map(|d| format!("{d}")).unwrap_or_default(),
                    };
                    Err(bad_value(format!("Invalid numerical type code: {shown}")))
                }
            }
        }
        _ => Err(MongoError::type_mismatch("type must be represented as a number or a string")),
    }
}

/// Parses a `$type` argument: a code, an alias, or an array of them.
pub fn type_predicate(arg: &Bson) -> Result<TypePredicate> {
    let mut p = TypePredicate::default();
    match arg {
        Bson::Array(items) => {
            for item in items {
                add_type(&mut p, item)?;
            }
        }
        other => add_type(&mut p, other)?,
    }
    if p.codes.is_empty() && !p.any_number {
        return Err(failed_to_parse("$type must match at least one type"));
    }
    Ok(p)
}

/// Parses `$exists`/`$type`; `None` for other operators.
pub fn parse_op(path: &str, op: &str, arg: &Bson, _ctx: Ctx) -> Option<Result<Expr>> {
    Some(match op {
        "$exists" => {
            let e = Expr::path(path, ExistsPredicate);
            Ok(if true_value(arg) { e } else { Expr::negate(e) })
        }
        "$type" => type_predicate(arg).map(|p| Expr::path(path, p)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use crate::query::matcher::Matcher;
    use bson::{doc, Document};

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn exists() {
        assert!(m(doc! {"a": {"$exists": true}}, doc! {"a": null}));
        assert!(!m(doc! {"a": {"$exists": true}}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$exists": false}}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$exists": 0}}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$exists": 1}}, doc! {"a": []}));
        assert!(m(doc! {"a.b": {"$exists": true}}, doc! {"a": [{"c": 1}, {"b": 2}]}));
        assert!(m(doc! {"a.b": {"$exists": false}}, doc! {"a": [1, 2]}));
        assert!(!m(doc! {"a.b": {"$exists": false}}, doc! {"a": [{"b": 1}]}));
    }

    #[test]
    fn type_matching() {
        assert!(m(doc! {"a": {"$type": "string"}}, doc! {"a": "x"}));
        assert!(m(doc! {"a": {"$type": 2}}, doc! {"a": "x"}));
        assert!(m(doc! {"a": {"$type": 2.0}}, doc! {"a": "x"}));
        assert!(m(doc! {"a": {"$type": "number"}}, doc! {"a": 1i64}));
        assert!(m(doc! {"a": {"$type": ["string", "int"]}}, doc! {"a": 1}));
        assert!(!m(doc! {"a": {"$type": "double"}}, doc! {"a": 1}));
        // Array elements, and the array itself.
        assert!(m(doc! {"a": {"$type": "string"}}, doc! {"a": [1, "x"]}));
        assert!(m(doc! {"a": {"$type": "array"}}, doc! {"a": []}));
        assert!(!m(doc! {"a": {"$type": "array"}}, doc! {"a": 1}));
        assert!(m(doc! {"a": {"$type": "null"}}, doc! {"a": null}));
        assert!(!m(doc! {"a": {"$type": "null"}}, doc! {}));
        assert!(m(doc! {"a": {"$type": "minKey"}}, doc! {"a": bson::Bson::MinKey}));
    }

    #[test]
    fn type_errors() {
        let e = Matcher::parse(&doc! {"a": {"$type": "foo"}}).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::BadValue, "Unknown type name alias: foo"));
        let e = Matcher::parse(&doc! {"a": {"$type": 100}}).unwrap_err();
        assert_eq!(e.message, "Invalid numerical type code: 100");
        let e = Matcher::parse(&doc! {"a": {"$type": {}}}).unwrap_err();
        assert_eq!(e.code, ErrorCode::TypeMismatch);
        let e = Matcher::parse(&doc! {"a": {"$type": []}}).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::FailedToParse, "$type must match at least one type")
        );
    }
}
