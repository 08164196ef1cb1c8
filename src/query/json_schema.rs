//! `$jsonSchema`: a JSON Schema (draft 4 keywords, plus `bsonType`) compiled once and checked
//! against whole documents, as in queries and collection validators.
//!
//! As in mongod, a keyword that concerns one kind of value (`minimum` numbers, `maxLength`
//! strings, `properties` objects, `items` arrays) passes values of every other kind; `type`
//! and `bsonType` are what restrict kinds. `type: "integer"` and keywords such as `$ref`,
//! `format` or `default` are refused as mongod refuses them.

use super::compare::bson_equal;
use super::matcher::DocPredicate;
use super::ops_element::type_alias;
use super::ops_eval::RegexPredicate;
use super::util::{is_number, number_as_f64};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, Document};
use std::sync::Arc;

/// Deepest schema nesting accepted (mongod bounds nesting the same way as filters).
const MAX_DEPTH: usize = 100;

fn parse_error(msg: impl Into<String>) -> MongoError {
    MongoError::new(ErrorCode::FailedToParse, msg)
}

fn type_error(keyword: &str, what: &str) -> MongoError {
    MongoError::type_mismatch(format!("$jsonSchema keyword '{keyword}' must be {what}"))
}

/// The kinds of value a `type` / `bsonType` keyword allows.
#[derive(Debug, Default, Clone)]
struct Kinds {
    codes: Vec<i32>,
    number: bool,
}

impl Kinds {
    fn allows(&self, v: &Bson) -> bool {
        (self.number && is_number(v)) || self.codes.contains(&super::util::type_code(v))
    }
}

#[derive(Debug, Clone)]
enum Extra {
    Allowed(bool),
    Schema(Box<Schema>),
}

#[derive(Debug, Clone)]
enum Items {
    All(Box<Schema>),
    Each(Vec<Schema>),
}

#[derive(Debug, Clone)]
enum Dependency {
    Fields(Vec<String>),
    Schema(Box<Schema>),
}

/// One compiled (sub)schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    kinds: Option<Kinds>,
    enumeration: Option<Vec<Bson>>,
    all_of: Vec<Schema>,
    any_of: Option<Vec<Schema>>,
    one_of: Option<Vec<Schema>>,
    not: Option<Box<Schema>>,
    // numbers
    minimum: Option<(f64, bool)>,
    maximum: Option<(f64, bool)>,
    multiple_of: Option<f64>,
    // strings
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<Arc<RegexPredicate>>,
    // objects
    properties: Vec<(String, Schema)>,
    pattern_properties: Vec<(Arc<RegexPredicate>, Schema)>,
    additional_properties: Option<Extra>,
    required: Vec<String>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    dependencies: Vec<(String, Dependency)>,
    // arrays
    items: Option<Items>,
    additional_items: Option<Extra>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
}

fn count(keyword: &str, v: &Bson) -> Result<u64> {
    let n = number_as_f64(v).ok_or_else(|| type_error(keyword, "a number"))?;
    if n < 0.0 || n.fract() != 0.0 || !n.is_finite() {
        return Err(parse_error(format!("$jsonSchema keyword '{keyword}' must be a non-negative integer")));
    }
    Ok(n as u64)
}

fn kinds(keyword: &str, v: &Bson) -> Result<Kinds> {
    let names: Vec<&Bson> = match v {
        Bson::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if names.is_empty() {
        return Err(parse_error(format!("$jsonSchema keyword '{keyword}' must name at least one type")));
    }
    let mut k = Kinds::default();
    for n in names {
        let Bson::String(name) = n else {
            return Err(type_error(keyword, "a string or an array of strings"));
        };
        if keyword == "type" {
            match name.as_str() {
                "number" => k.number = true,
                "object" => k.codes.push(3),
                "array" => k.codes.push(4),
                "string" => k.codes.push(2),
                "boolean" => k.codes.push(8),
                "null" => k.codes.push(10),
                "integer" => {
                    return Err(parse_error("$jsonSchema type 'integer' is not currently supported."))
                }
                other => return Err(parse_error(format!("Unknown type name alias: {other}"))),
            }
        } else if name == "number" {
            k.number = true;
        } else {
            match type_alias(name) {
                Some(c) => k.codes.push(c),
                None => return Err(parse_error(format!("Unknown type name alias: {name}"))),
            }
        }
    }
    Ok(k)
}

fn schema_list(keyword: &str, v: &Bson, depth: usize) -> Result<Vec<Schema>> {
    let Bson::Array(a) = v else { return Err(type_error(keyword, "an array")) };
    if a.is_empty() {
        return Err(parse_error(format!("$jsonSchema keyword '{keyword}' must be a non-empty array")));
    }
    a.iter()
        .map(|s| match s {
            Bson::Document(d) => Schema::parse_at(d, depth + 1),
            _ => Err(type_error(keyword, "an array of objects")),
        })
        .collect()
}

fn sub_schema(keyword: &str, v: &Bson, depth: usize) -> Result<Schema> {
    match v {
        Bson::Document(d) => Schema::parse_at(d, depth + 1),
        _ => Err(type_error(keyword, "an object")),
    }
}

fn extra(keyword: &str, v: &Bson, depth: usize) -> Result<Extra> {
    match v {
        Bson::Boolean(b) => Ok(Extra::Allowed(*b)),
        Bson::Document(d) => Ok(Extra::Schema(Box::new(Schema::parse_at(d, depth + 1)?))),
        _ => Err(type_error(keyword, "either an object or a boolean")),
    }
}

fn regex(keyword: &str, pattern: &str) -> Result<Arc<RegexPredicate>> {
    RegexPredicate::new(pattern, "").map(Arc::new).map_err(|e| {
        parse_error(format!("$jsonSchema keyword '{keyword}' has an invalid regex: {}", e.message))
    })
}

impl Schema {
    pub fn parse(spec: &Document) -> Result<Schema> {
        Schema::parse_at(spec, 0)
    }

    fn parse_at(spec: &Document, depth: usize) -> Result<Schema> {
        if depth > MAX_DEPTH {
            return Err(parse_error("$jsonSchema is nested too deeply"));
        }
        let mut s = Schema::default();
        let mut exclusive_min = None;
        let mut exclusive_max = None;
        for (k, v) in spec {
            match k.as_str() {
                "type" | "bsonType" => {
                    if s.kinds.is_some() {
                        return Err(parse_error(
                            "Cannot specify both $jsonSchema keywords 'type' and 'bsonType'",
                        ));
                    }
                    s.kinds = Some(kinds(k, v)?);
                }
                "enum" => {
                    let Bson::Array(a) = v else { return Err(type_error(k, "an array")) };
                    if a.is_empty() {
                        return Err(parse_error("$jsonSchema keyword 'enum' cannot be an empty array"));
                    }
                    s.enumeration = Some(a.clone());
                }
                "allOf" => s.all_of = schema_list(k, v, depth)?,
                "anyOf" => s.any_of = Some(schema_list(k, v, depth)?),
                "oneOf" => s.one_of = Some(schema_list(k, v, depth)?),
                "not" => s.not = Some(Box::new(sub_schema(k, v, depth)?)),
                "minimum" | "maximum" => {
                    let n = number_as_f64(v).ok_or_else(|| type_error(k, "a number"))?;
                    if k == "minimum" {
                        s.minimum = Some((n, false));
                    } else {
                        s.maximum = Some((n, false));
                    }
                }
                "exclusiveMinimum" | "exclusiveMaximum" => {
                    let Bson::Boolean(b) = v else { return Err(type_error(k, "a boolean")) };
                    if k == "exclusiveMinimum" {
                        exclusive_min = Some(*b);
                    } else {
                        exclusive_max = Some(*b);
                    }
                }
                "multipleOf" => {
                    let n = number_as_f64(v).ok_or_else(|| type_error(k, "a number"))?;
                    if n <= 0.0 || !n.is_finite() {
                        return Err(parse_error(
                            "$jsonSchema keyword 'multipleOf' must have a positive value",
                        ));
                    }
                    s.multiple_of = Some(n);
                }
                "minLength" => s.min_length = Some(count(k, v)?),
                "maxLength" => s.max_length = Some(count(k, v)?),
                "pattern" => {
                    let Bson::String(p) = v else { return Err(type_error(k, "a string")) };
                    s.pattern = Some(regex(k, p)?);
                }
                "properties" => {
                    let Bson::Document(props) = v else { return Err(type_error(k, "an object")) };
                    for (name, sub) in props {
                        s.properties.push((name.clone(), sub_schema(name, sub, depth)?));
                    }
                }
                "patternProperties" => {
                    let Bson::Document(props) = v else { return Err(type_error(k, "an object")) };
                    for (pattern, sub) in props {
                        s.pattern_properties.push((regex(k, pattern)?, sub_schema(k, sub, depth)?));
                    }
                }
                "additionalProperties" => s.additional_properties = Some(extra(k, v, depth)?),
                "required" => {
                    let Bson::Array(a) = v else { return Err(type_error(k, "an array")) };
                    if a.is_empty() {
                        return Err(parse_error("$jsonSchema keyword 'required' cannot be an empty array"));
                    }
                    for name in a {
                        let Bson::String(name) = name else {
                            return Err(type_error(k, "an array of strings"));
                        };
                        if s.required.contains(name) {
                            return Err(parse_error(
                                "$jsonSchema keyword 'required' array cannot contain duplicate values",
                            ));
                        }
                        s.required.push(name.clone());
                    }
                }
                "minProperties" => s.min_properties = Some(count(k, v)?),
                "maxProperties" => s.max_properties = Some(count(k, v)?),
                "dependencies" => {
                    let Bson::Document(deps) = v else { return Err(type_error(k, "an object")) };
                    for (name, dep) in deps {
                        let dep = match dep {
                            Bson::Document(d) => Dependency::Schema(Box::new(Schema::parse_at(d, depth + 1)?)),
                            Bson::Array(a) if !a.is_empty() => {
                                let mut fields = Vec::new();
                                for f in a {
                                    let Bson::String(f) = f else {
                                        return Err(type_error(k, "an object whose values are arrays of strings or objects"));
                                    };
                                    fields.push(f.clone());
                                }
                                Dependency::Fields(fields)
                            }
                            _ => {
                                return Err(parse_error(
                                    "$jsonSchema keyword 'dependencies' must have non-empty arrays of strings or objects as values",
                                ))
                            }
                        };
                        s.dependencies.push((name.clone(), dep));
                    }
                }
                "items" => {
                    s.items = Some(match v {
                        Bson::Document(d) => Items::All(Box::new(Schema::parse_at(d, depth + 1)?)),
                        Bson::Array(_) => Items::Each(schema_list(k, v, depth)?),
                        _ => return Err(type_error(k, "an array or an object")),
                    })
                }
                "additionalItems" => s.additional_items = Some(extra(k, v, depth)?),
                "minItems" => s.min_items = Some(count(k, v)?),
                "maxItems" => s.max_items = Some(count(k, v)?),
                "uniqueItems" => {
                    let Bson::Boolean(b) = v else { return Err(type_error(k, "a boolean")) };
                    s.unique_items = *b;
                }
                // Annotations only.
                "title" | "description" => {
                    if !matches!(v, Bson::String(_)) {
                        return Err(type_error(k, "a string"));
                    }
                }
                "$ref" | "$schema" | "default" | "definitions" | "format" | "id" => {
                    return Err(parse_error(format!("$jsonSchema keyword '{k}' is not currently supported")))
                }
                other => return Err(parse_error(format!("Unknown $jsonSchema keyword: {other}"))),
            }
        }
        match (exclusive_min, s.minimum.as_mut()) {
            (Some(b), Some(m)) => m.1 = b,
            (Some(_), None) => {
                return Err(parse_error(
                    "$jsonSchema keyword 'minimum' must be a present if exclusiveMinimum is present",
                ))
            }
            _ => {}
        }
        match (exclusive_max, s.maximum.as_mut()) {
            (Some(b), Some(m)) => m.1 = b,
            (Some(_), None) => {
                return Err(parse_error(
                    "$jsonSchema keyword 'maximum' must be a present if exclusiveMaximum is present",
                ))
            }
            _ => {}
        }
        Ok(s)
    }

    /// Whether `v` satisfies this schema.
    pub fn validates(&self, v: &Bson) -> bool {
        if self.kinds.as_ref().is_some_and(|k| !k.allows(v)) {
            return false;
        }
        if self.enumeration.as_ref().is_some_and(|e| !e.iter().any(|x| bson_equal(x, v) && same_kind(x, v))) {
            return false;
        }
        if !self.all_of.iter().all(|s| s.validates(v)) {
            return false;
        }
        if self.any_of.as_ref().is_some_and(|a| !a.iter().any(|s| s.validates(v))) {
            return false;
        }
        if self.one_of.as_ref().is_some_and(|a| a.iter().filter(|s| s.validates(v)).count() != 1) {
            return false;
        }
        if self.not.as_ref().is_some_and(|s| s.validates(v)) {
            return false;
        }
        match v {
            _ if is_number(v) => self.number_ok(v),
            Bson::String(s) => self.string_ok(s),
            Bson::Document(d) => self.object_ok(d),
            Bson::Array(a) => self.array_ok(a),
            _ => true,
        }
    }

    fn number_ok(&self, v: &Bson) -> bool {
        let Some(n) = number_as_f64(v) else { return true };
        if let Some((min, exclusive)) = self.minimum {
            if n < min || (exclusive && n == min) || n.is_nan() {
                return false;
            }
        }
        if let Some((max, exclusive)) = self.maximum {
            if n > max || (exclusive && n == max) || n.is_nan() {
                return false;
            }
        }
        if let Some(m) = self.multiple_of {
            let q = n / m;
            if !q.is_finite() || q.fract() != 0.0 {
                return false;
            }
        }
        true
    }

    fn string_ok(&self, s: &str) -> bool {
        let len = s.chars().count() as u64;
        if self.min_length.is_some_and(|m| len < m) || self.max_length.is_some_and(|m| len > m) {
            return false;
        }
        self.pattern.as_ref().is_none_or(|p| p.is_match(s))
    }

    fn object_ok(&self, d: &Document) -> bool {
        let n = d.len() as u64;
        if self.min_properties.is_some_and(|m| n < m) || self.max_properties.is_some_and(|m| n > m) {
            return false;
        }
        if !self.required.iter().all(|r| d.contains_key(r)) {
            return false;
        }
        for (name, dep) in &self.dependencies {
            if !d.contains_key(name) {
                continue;
            }
            let ok = match dep {
                Dependency::Fields(f) => f.iter().all(|f| d.contains_key(f)),
                Dependency::Schema(s) => s.validates(&Bson::Document(d.clone())),
            };
            if !ok {
                return false;
            }
        }
        for (k, v) in d {
            let mut covered = false;
            if let Some((_, s)) = self.properties.iter().find(|(name, _)| name == k) {
                covered = true;
                if !s.validates(v) {
                    return false;
                }
            }
            for (re, s) in &self.pattern_properties {
                if re.is_match(k) {
                    covered = true;
                    if !s.validates(v) {
                        return false;
                    }
                }
            }
            if !covered {
                match &self.additional_properties {
                    Some(Extra::Allowed(false)) => return false,
                    Some(Extra::Schema(s)) if !s.validates(v) => return false,
                    _ => {}
                }
            }
        }
        true
    }

    fn array_ok(&self, a: &[Bson]) -> bool {
        let n = a.len() as u64;
        if self.min_items.is_some_and(|m| n < m) || self.max_items.is_some_and(|m| n > m) {
            return false;
        }
        if self.unique_items {
            for (i, x) in a.iter().enumerate() {
                if a.iter().skip(i + 1).any(|y| bson_equal(x, y) && same_kind(x, y)) {
                    return false;
                }
            }
        }
        match &self.items {
            None => true,
            Some(Items::All(s)) => a.iter().all(|v| s.validates(v)),
            Some(Items::Each(list)) => {
                if !a.iter().zip(list).all(|(v, s)| s.validates(v)) {
                    return false;
                }
                let rest = a.get(list.len()..).unwrap_or(&[]);
                match &self.additional_items {
                    Some(Extra::Allowed(false)) => rest.is_empty(),
                    Some(Extra::Schema(s)) => rest.iter().all(|v| s.validates(v)),
                    _ => true,
                }
            }
        }
    }
}

/// JSON Schema equality: numbers compare by value across types, other values need the same
/// type (`bson_equal` alone would also equate, e.g., a symbol and a string).
fn same_kind(a: &Bson, b: &Bson) -> bool {
    (is_number(a) && is_number(b)) || super::util::type_code(a) == super::util::type_code(b)
}

/// The `$jsonSchema` query operator: the root document must satisfy the schema.
#[derive(Debug)]
pub struct JsonSchemaPredicate(Schema);

impl DocPredicate for JsonSchemaPredicate {
    fn matches(&self, doc: &Document) -> bool {
        self.0.validates(&Bson::Document(doc.clone()))
    }
}

/// Parses `$jsonSchema`'s argument; the root may only allow objects.
pub fn parse(arg: &Bson) -> Result<JsonSchemaPredicate> {
    let Bson::Document(spec) = arg else {
        return Err(MongoError::type_mismatch("$jsonSchema must be an object"));
    };
    let schema = Schema::parse(spec)?;
    if schema.kinds.as_ref().is_some_and(|k| !k.codes.contains(&3)) {
        return Err(parse_error(
            "$jsonSchema keyword 'type' or 'bsonType' at the top level must allow 'object'",
        ));
    }
    Ok(JsonSchemaPredicate(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ok(schema: Document, d: Document) -> bool {
        parse(&Bson::Document(schema)).expect("schema").matches(&d)
    }

    #[test]
    fn keywords_apply_to_their_own_kind() {
        let s = doc! {
            "required": ["name"],
            "properties": {
                "name": { "bsonType": "string", "minLength": 2, "pattern": "^[A-Z]" },
                "age": { "bsonType": "int", "minimum": 0, "maximum": 130, "exclusiveMaximum": true },
                "tags": { "bsonType": "array", "items": { "bsonType": "string" }, "uniqueItems": true, "maxItems": 3 },
                "score": { "minimum": 5 },
            },
        };
        assert!(ok(s.clone(), doc! {"name": "Al", "age": 3, "tags": ["a", "b"]}));
        assert!(!ok(s.clone(), doc! {"age": 3}));
        assert!(!ok(s.clone(), doc! {"name": "al"}));
        assert!(!ok(s.clone(), doc! {"name": "A"}));
        assert!(!ok(s.clone(), doc! {"name": "Al", "age": 130}));
        assert!(!ok(s.clone(), doc! {"name": "Al", "age": 3i64}));
        assert!(!ok(s.clone(), doc! {"name": "Al", "tags": ["a", "a"]}));
        assert!(!ok(s.clone(), doc! {"name": "Al", "tags": ["a", 1]}));
        // `minimum` passes non-numbers.
        assert!(ok(s.clone(), doc! {"name": "Al", "score": "high"}));
        assert!(!ok(s, doc! {"name": "Al", "score": 4.5}));
    }

    #[test]
    fn combinators_enum_and_additional_properties() {
        let s = doc! {
            "properties": { "_id": {}, "k": { "enum": [1, "x", [1, 2]] } },
            "additionalProperties": false,
            "oneOf": [{ "required": ["k"] }, { "maxProperties": 1 }],
        };
        assert!(ok(s.clone(), doc! {"_id": 1, "k": 1.0}));
        assert!(ok(s.clone(), doc! {"_id": 1}));
        assert!(!ok(s.clone(), doc! {"_id": 1, "k": "y"}));
        assert!(!ok(s.clone(), doc! {"_id": 1, "other": 1}));
        assert!(ok(doc! {"not": {"required": ["a"]}}, doc! {"b": 1}));
        assert!(!ok(doc! {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, doc! {"c": 1}));
        assert!(ok(doc! {"dependencies": {"a": ["b"]}}, doc! {"c": 1}));
        assert!(!ok(doc! {"dependencies": {"a": ["b"]}}, doc! {"a": 1}));
        assert!(!ok(doc! {"patternProperties": {"^x": {"bsonType": "int"}}}, doc! {"xa": "s"}));
        assert!(ok(
            doc! {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 2.5}}},
            doc! {"n": 5}
        ));
        assert!(!ok(doc! {"properties": {"n": {"type": "number", "multipleOf": 2.5}}}, doc! {"n": 6}));
    }

    #[test]
    fn bad_schemas_are_refused() {
        for (bad, code) in [
            (doc! {"type": "integer"}, 9),
            (doc! {"$ref": "#/x"}, 9),
            (doc! {"nope": 1}, 9),
            (doc! {"type": "string"}, 9),
            (doc! {"minimum": "x"}, 14),
            (doc! {"exclusiveMinimum": true}, 9),
            (doc! {"required": []}, 9),
            (doc! {"type": "object", "bsonType": "object"}, 9),
            (doc! {"properties": {"a": 1}}, 14),
        ] {
            let e = parse(&Bson::Document(bad.clone())).expect_err("bad schema");
            assert_eq!(e.code.code(), code, "{bad}: {}", e.message);
        }
    }
}
