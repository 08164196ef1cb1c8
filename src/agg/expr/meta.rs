//! `{$meta: <name>}`: per-document metadata. This server has no text or Atlas search, does
//! not expose record ids or index keys to expressions, and keeps no sort key on documents, so
//! every known name evaluates to missing, except `textScore`, which mongod refuses when the
//! query has no `$text` (there never is one here).

use super::{err, Expr};
use crate::error::Result;
use bson::Bson;

/// The names mongod accepts.
const NAMES: &[&str] = &[
    "textScore",
    "randVal",
    "searchScore",
    "searchHighlights",
    "searchScoreDetails",
    "searchSequenceToken",
    "geoNearDistance",
    "geoNearPoint",
    "recordId",
    "indexKey",
    "sortKey",
    "vectorSearchScore",
    "score",
    "scoreDetails",
];

pub fn parse(name: &str, arg: &Bson) -> Option<Result<Expr>> {
    if name != "$meta" {
        return None;
    }
    Some(parse_meta(arg))
}

fn parse_meta(arg: &Bson) -> Result<Expr> {
    let Bson::String(s) = arg else {
        return Err(err(17307, "$meta only supports string arguments"));
    };
    if !NAMES.contains(&s.as_str()) {
        return Err(err(17308, format!("Unsupported argument to $meta: {s}")));
    }
    if s == "textScore" {
        return Err(err(40218, "query requires text score metadata, but it is not available"));
    }
    // `$$REMOVE` evaluates to missing.
    Ok(Expr::Path(super::VarRef::Remove, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, doc};

    #[test]
    fn meta() {
        let d = doc! {"a": 1};
        for name in ["searchScore", "indexKey", "recordId", "sortKey", "geoNearDistance", "vectorSearchScore"]
        {
            assert_eq!(eval_on(bson!({"$meta": name}), &d).unwrap(), None, "{name}");
        }
        assert_eq!(code(ev(bson!({"$meta": "textScore"}))), 40218);
        assert_eq!(code(ev(bson!({"$meta": "nope"}))), 17308);
        assert_eq!(code(ev(bson!({"$meta": 1}))), 17307);
        // Inside an object the missing field is left out.
        assert_eq!(
            eval_on(bson!({"s": {"$meta": "searchScore"}, "a": "$a"}), &d).unwrap(),
            Some(bson!({"a": 1}))
        );
    }
}
