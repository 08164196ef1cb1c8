//! Rendering BSON the way mongod's messages do (`{ _id: 1, a: "x" }`) and BSON type names.

use bson::{Bson, Document};
use std::fmt::Write;

/// mongod's name for a value's BSON type, as used in error messages and `$type`.
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

/// `{ a: 1, b: "x" }`, as in mongod's duplicate-key messages.
pub fn shell(d: &Document) -> String {
    let mut s = String::new();
    write_doc(&mut s, d);
    s
}

fn write_doc(s: &mut String, d: &Document) {
    if d.is_empty() {
        s.push_str("{}");
        return;
    }
    s.push_str("{ ");
    for (i, (k, v)) in d.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{k}: ");
        write_value(s, v);
    }
    s.push_str(" }");
}

pub fn write_value(s: &mut String, v: &Bson) {
    match v {
        Bson::String(x) => {
            let _ = write!(s, "\"{x}\"");
        }
        Bson::Document(d) => write_doc(s, d),
        Bson::Array(a) => {
            s.push('[');
            for (i, e) in a.iter().enumerate() {
                s.push_str(if i > 0 { ", " } else { " " });
                write_value(s, e);
            }
            s.push_str(if a.is_empty() { "]" } else { " ]" });
        }
        Bson::ObjectId(o) => {
            let _ = write!(s, "ObjectId('{o}')");
        }
        Bson::Double(f) => {
            if f.fract() == 0.0 && f.is_finite() && f.abs() < 1e15 {
                let _ = write!(s, "{f:.1}");
            } else {
                let _ = write!(s, "{f}");
            }
        }
        Bson::Int32(n) => {
            let _ = write!(s, "{n}");
        }
        Bson::Int64(n) => {
            let _ = write!(s, "{n}");
        }
        Bson::Null => s.push_str("null"),
        Bson::Boolean(b) => {
            let _ = write!(s, "{b}");
        }
        Bson::DateTime(d) => {
            let _ = write!(s, "new Date({})", d.timestamp_millis());
        }
        other => {
            let _ = write!(s, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn shell_format() {
        assert_eq!(shell(&doc! {"_id": 1, "a": "x"}), "{ _id: 1, a: \"x\" }");
        assert_eq!(shell(&doc! {"a": [1, 2.5]}), "{ a: [ 1, 2.5 ] }");
    }
}
