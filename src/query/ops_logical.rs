//! Logical operators: top-level `$and $or $nor` (and `$alwaysTrue`/`$alwaysFalse`), and the
//! field operator `$not`.

use super::matcher::{parse_filter, parse_operator_doc, Ctx, Expr};
use super::ops_eval;
use super::util::{bad_value, failed_to_parse, parse_integer_element};
use crate::error::Result;
use bson::Bson;

/// Parses `$and`/`$or`/`$nor`/`$alwaysTrue`/`$alwaysFalse`; `None` for other operators.
pub fn parse_top_level(op: &str, arg: &Bson, ctx: Ctx) -> Option<Result<Expr>> {
    Some(match op {
        "$and" | "$or" | "$nor" => parse_list(op, arg, ctx).map(|children| match op {
            "$and" => Expr::And(children),
            "$or" => Expr::Or(children),
            _ => Expr::Nor(children),
        }),
        "$alwaysTrue" | "$alwaysFalse" => match parse_integer_element(op, arg) {
            Ok(1) => Ok(Expr::Const(op == "$alwaysTrue")),
            Ok(_) => Err(failed_to_parse(format!("{op} must be an integer value of 1"))),
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

fn parse_list(op: &str, arg: &Bson, ctx: Ctx) -> Result<Vec<Expr>> {
    let Bson::Array(items) = arg else {
        return Err(bad_value(format!("{op} must be an array")));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Bson::Document(d) = item else {
            return Err(bad_value("$or/$and/$nor entries need to be full objects"));
        };
        out.push(parse_filter(d, ctx)?);
    }
    if out.is_empty() {
        return Err(bad_value("$and/$or/$nor must be a nonempty array"));
    }
    Ok(out)
}

/// Parses `$not`; `None` for other operators.
pub fn parse_op(path: &str, op: &str, arg: &Bson, ctx: Ctx) -> Option<Result<Expr>> {
    if op != "$not" {
        return None;
    }
    Some(match arg {
        Bson::RegularExpression(re) => ops_eval::regex_expr(path, &re.pattern, &re.options).map(Expr::negate),
        Bson::Document(d) => {
            if d.is_empty() {
                Err(bad_value("$not cannot be empty"))
            } else {
                parse_operator_doc(path, d, ctx).map(Expr::negate)
            }
        }
        _ => Err(bad_value("$not needs a regex or a document")),
    })
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use crate::query::matcher::Matcher;
    use bson::{doc, Bson, Document};

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    fn err(filter: Document) -> (ErrorCode, String) {
        let e = Matcher::parse(&filter).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn and_or_nor() {
        let d = doc! {"a": 1, "b": 2};
        assert!(m(doc! {"$and": [{"a": 1}, {"b": 2}]}, d.clone()));
        assert!(!m(doc! {"$and": [{"a": 1}, {"b": 3}]}, d.clone()));
        assert!(m(doc! {"$or": [{"a": 5}, {"b": 2}]}, d.clone()));
        assert!(!m(doc! {"$or": [{"a": 5}, {"b": 5}]}, d.clone()));
        assert!(m(doc! {"$nor": [{"a": 5}, {"b": 5}]}, d.clone()));
        assert!(!m(doc! {"$nor": [{"a": 1}]}, d.clone()));
        assert!(m(doc! {"$alwaysTrue": 1}, d.clone()));
        assert!(!m(doc! {"$alwaysFalse": 1}, d));
    }

    #[test]
    fn not() {
        assert!(m(doc! {"a": {"$not": {"$gt": 5}}}, doc! {"a": 3}));
        assert!(m(doc! {"a": {"$not": {"$gt": 5}}}, doc! {}));
        assert!(!m(doc! {"a": {"$not": {"$gt": 5}}}, doc! {"a": [1, 6]}));
        let re = Bson::RegularExpression(bson::Regex { pattern: "^x".into(), options: String::new() });
        assert!(m(doc! {"a": {"$not": re.clone()}}, doc! {"a": "yx"}));
        assert!(!m(doc! {"a": {"$not": re}}, doc! {"a": "xy"}));
        assert!(m(doc! {"a": {"$not": {"$regex": "^x"}}}, doc! {"a": "yx"}));
    }

    #[test]
    fn errors() {
        let e = (ErrorCode::BadValue, "$and/$or/$nor must be a nonempty array".to_string());
        assert_eq!(err(doc! {"$or": []}), e);
        assert_eq!(err(doc! {"$and": 1}), (ErrorCode::BadValue, "$and must be an array".into()));
        assert_eq!(err(doc! {"$nor": [1]}).1, "$or/$and/$nor entries need to be full objects");
        assert_eq!(err(doc! {"a": {"$not": 1}}).1, "$not needs a regex or a document");
        assert_eq!(err(doc! {"a": {"$not": {}}}).1, "$not cannot be empty");
        assert!(err(doc! {"$not": {"a": 1}}).1.starts_with("unknown top level operator: $not"));
        assert_eq!(
            err(doc! {"$alwaysTrue": 2}),
            (ErrorCode::FailedToParse, "$alwaysTrue must be an integer value of 1".into())
        );
        assert!(err(doc! {"$not": {"a": 1}})
            .1
            .ends_with("If you are trying to negate an entire expression, use $nor."));
    }
}
