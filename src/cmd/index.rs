//! createIndexes, listIndexes, dropIndexes.

use super::format::{shell, type_name};
use super::{args, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::collation::Collation;
use crate::query::matcher::Matcher;
use crate::store::wildcard::WildcardSpec;
use crate::store::{IndexMeta, StoreError};
use bson::{doc, Bson, Document};
use std::sync::Arc;

/// Options an index spec may carry (others are 197 InvalidIndexSpecificationOption).
const INDEX_OPTIONS: &[&str] = &[
    "key",
    "name",
    "unique",
    "sparse",
    "partialFilterExpression",
    "expireAfterSeconds",
    "hidden",
    "collation",
    "v",
    "background",
    "storageEngine",
    "weights",
    "default_language",
    "language_override",
    "textIndexVersion",
    "2dsphereIndexVersion",
    "bits",
    "min",
    "max",
    "wildcardProjection",
    "ns",
    "prepareUnique",
    "bucketSize",
    "coarsestIndexedLevel",
    "finestIndexedLevel",
    "clustered",
];

/// Options that do not change what an index is (ignored when comparing specs).
const COSMETIC: &[&str] = &["v", "background", "ns", "name", "key"];

/// mongod's default index name: `a_1_b_-1`.
pub fn default_name(key: &Document) -> String {
    key.iter()
        .map(|(k, v)| {
            let d = match v {
                Bson::Int32(n) => n.to_string(),
                Bson::Int64(n) => n.to_string(),
                Bson::Double(n) if n.fract() == 0.0 => format!("{}", *n as i64),
                Bson::Double(n) => n.to_string(),
                Bson::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}_{d}")
        })
        .collect::<Vec<_>>()
        .join("_")
}

fn cannot_create(spec: &Document, why: &str) -> MongoError {
    MongoError::new(
        ErrorCode::CannotCreateIndex,
        format!("Error in specification {} :: caused by :: {why}", shell(spec)),
    )
}

/// Validates one spec and returns it in the shape listIndexes shows (`v`, `key`, `name`, ...).
fn normalize_spec(raw: &Document) -> Result<Document> {
    let key = match raw.get("key") {
        Some(Bson::Document(k)) => k.clone(),
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "The field 'key' must be an object, but got {}",
                type_name(v)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::FailedToParse,
                "The 'key' field is a required property of an index specification",
            ))
        }
    };
    if key.is_empty() {
        return Err(cannot_create(raw, "Index keys cannot be an empty field."));
    }
    for (field, v) in &key {
        if field.is_empty() || field.split('.').any(str::is_empty) {
            return Err(cannot_create(raw, "Index keys cannot contain an empty field."));
        }
        match v {
            Bson::Int32(0) | Bson::Int64(0) => return Err(cannot_create(raw, "Values in the index key pattern can't be 0.")),
            Bson::Double(d) if *d == 0.0 || d.is_nan() => {
                return Err(cannot_create(raw, "Values in the index key pattern can't be 0."))
            }
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {}
            Bson::String(s) if matches!(s.as_str(), "hashed" | "2d" | "2dsphere") => {}
            Bson::String(s) if matches!(s.as_str(), "text" | "geoHaystack") => {
                return Err(cannot_create(raw, &format!("index type '{s}' is not supported yet")))
            }
            Bson::String(s) => return Err(cannot_create(raw, &format!("Unknown index plugin '{s}'"))),
            other => {
                return Err(cannot_create(
                    raw,
                    &format!(
                        "Values in v:2 index key pattern cannot be of type {}. Only numbers > 0, numbers < 0, and strings are allowed.",
                        type_name(other)
                    ),
                ))
            }
        }
    }
    check_special_kinds(raw, &key)?;
    let name = match raw.get("name") {
        Some(Bson::String(s)) if !s.is_empty() => s.clone(),
        Some(Bson::String(_)) => return Err(cannot_create(raw, "index name cannot be empty")),
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "The field 'name' must be a string, but got {}",
                type_name(v)
            )))
        }
        None => default_name(&key),
    };
    let is_id = key.len() == 1 && key.contains_key("_id");
    let mut spec = doc! { "v": 2, "key": key.clone(), "name": name.clone() };
    for (k, v) in raw {
        // dropDups is accepted and ignored since 3.0; ns is legacy.
        if matches!(k.as_str(), "key" | "name" | "v" | "ns" | "dropDups") {
            continue;
        }
        if !INDEX_OPTIONS.contains(&k.as_str()) {
            return Err(MongoError::new(
                ErrorCode::InvalidIndexSpecificationOption,
                format!(
                    "The field '{k}' is not valid for an index specification. Specification: {}",
                    shell(raw)
                ),
            ));
        }
        if is_id
            && matches!(
                k.as_str(),
                "unique" | "sparse" | "partialFilterExpression" | "expireAfterSeconds" | "hidden"
            )
        {
            return Err(MongoError::new(
                ErrorCode::InvalidIndexSpecificationOption,
                format!(
                    "The field '{k}' is not valid for an _id index specification. Specification: {}",
                    shell(raw)
                ),
            ));
        }
        let v = match (k.as_str(), v) {
            ("unique" | "sparse" | "hidden", Bson::Boolean(b)) => Bson::Boolean(*b),
            ("unique" | "sparse" | "hidden", Bson::Int32(n)) => Bson::Boolean(*n != 0),
            ("unique" | "sparse" | "hidden", Bson::Double(n)) => Bson::Boolean(*n != 0.0),
            ("unique" | "sparse" | "hidden", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "The field '{k}' must be a bool, but got {}",
                    type_name(other)
                )))
            }
            ("partialFilterExpression", Bson::Document(f)) => {
                Matcher::parse(f)?;
                Bson::Document(f.clone())
            }
            ("partialFilterExpression", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "The field 'partialFilterExpression' must be an object, but got {}",
                    type_name(other)
                )))
            }
            ("expireAfterSeconds", n @ (Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))) => {
                let secs = match n {
                    Bson::Int32(x) => *x as i64,
                    Bson::Int64(x) => *x,
                    Bson::Double(x) => *x as i64,
                    _ => 0,
                };
                if !(0..=i32::MAX as i64).contains(&secs) {
                    return Err(cannot_create(
                        raw,
                        "TTL index 'expireAfterSeconds' option must be within an acceptable range",
                    ));
                }
                Bson::Int32(secs as i32)
            }
            ("collation", Bson::Document(c)) => match Collation::parse(c)? {
                Some(c) => Bson::Document(c.to_document()),
                // The simple collation is the absence of one.
                None => continue,
            },
            ("collation", other) => {
                return Err(MongoError::type_mismatch(format!(
                    "The field 'collation' must be an object, but got {}",
                    type_name(other)
                )))
            }
            ("expireAfterSeconds", other) => {
                return Err(cannot_create(
                    raw,
                    &format!(
                        "TTL index 'expireAfterSeconds' option must be numeric, but received a type of '{}'",
                        type_name(other)
                    ),
                ))
            }
            (_, v) => v.clone(),
        };
        spec.insert(k.clone(), v);
    }
    if key.values().any(|v| matches!(v, Bson::String(s) if s == "2dsphere"))
        && !spec.contains_key("2dsphereIndexVersion")
    {
        // Listed as mongod lists it: the current 2dsphere format.
        spec.insert("2dsphereIndexVersion", 3);
    }
    if spec.get_bool("sparse").unwrap_or(false) && spec.contains_key("partialFilterExpression") {
        return Err(cannot_create(raw, "cannot mix \"partialFilterExpression\" and \"sparse\" options"));
    }
    if spec.get_bool("unique").unwrap_or(false) && spec.get_bool("hidden").unwrap_or(false) {
        // mongod allows hidden unique indexes; nothing to refuse here.
    }
    Ok(spec)
}

/// The restrictions mongod puts on hashed and wildcard key patterns and their options.
fn check_special_kinds(raw: &Document, key: &Document) -> Result<()> {
    check_geo_kinds(raw, key)?;
    let hashed = key.values().filter(|v| matches!(v, Bson::String(s) if s == "hashed")).count();
    if hashed > 1 {
        return Err(MongoError::new(
            ErrorCode::Location31303,
            format!(
                "A maximum of one index field is allowed to be hashed but found {hashed} for 'key' {}",
                shell(key)
            ),
        ));
    }
    let flag = |k: &str| match raw.get(k) {
        Some(Bson::Boolean(b)) => *b,
        Some(Bson::Int32(n)) => *n != 0,
        Some(Bson::Double(n)) => *n != 0.0,
        _ => false,
    };
    if hashed == 1 && flag("unique") {
        return Err(MongoError::new(
            ErrorCode::Location16764,
            "Currently hashed indexes cannot guarantee uniqueness. Use a regular index.",
        ));
    }
    let wildcard = WildcardSpec::wildcard_field(key);
    if raw.contains_key("wildcardProjection") && wildcard != Some("$**") {
        return Err(cannot_create(raw, "The field 'wildcardProjection' is only allowed in an '$**' index"));
    }
    let Some(field) = wildcard else {
        return Ok(());
    };
    if key.len() > 1 {
        return Err(cannot_create(raw, "compound wildcard indexes are not supported yet"));
    }
    if !matches!(key.get(field), Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))) {
        return Err(cannot_create(raw, "A wildcard index must be ascending or descending"));
    }
    if key.keys().any(|k| k.matches("$**").count() > 1 || (k.contains("$**") && !k.ends_with("$**"))) {
        return Err(cannot_create(
            raw,
            "Index key contains an illegal field name: field name starts with '$'.",
        ));
    }
    for opt in ["unique", "sparse"] {
        if flag(opt) {
            return Err(cannot_create(
                raw,
                &format!("Index type 'wildcard' does not support the {opt} option"),
            ));
        }
    }
    if raw.contains_key("expireAfterSeconds") {
        return Err(cannot_create(
            raw,
            "Index type 'wildcard' does not support the expireAfterSeconds option",
        ));
    }
    let projection = match raw.get("wildcardProjection") {
        None => None,
        Some(Bson::Document(p)) => Some(p),
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "The field 'wildcardProjection' must be a non-empty object, but got {}",
                type_name(v)
            )))
        }
    };
    WildcardSpec::new(field, projection).map_err(|m| cannot_create(raw, &m))?;
    Ok(())
}

/// mongod's rules for 2d and 2dsphere key patterns: one index plugin per index, a single
/// leading 2d field, and valid `bits`/`min`/`max` / `2dsphereIndexVersion` options.
fn check_geo_kinds(raw: &Document, key: &Document) -> Result<()> {
    let plugin = |name: &str| key.values().filter(|v| matches!(v, Bson::String(s) if s == name)).count();
    let (two_d, sphere) = (plugin("2d"), plugin("2dsphere"));
    if two_d + sphere == 0 {
        return Ok(());
    }
    if plugin("hashed") > 0
        || (two_d > 0 && sphere > 0)
        || crate::store::wildcard::WildcardSpec::wildcard_field(key).is_some()
    {
        return Err(cannot_create(raw, "Can't use more than one index plugin for a single index."));
    }
    if two_d > 0 {
        if two_d > 1 {
            return Err(cannot_create(raw, "2d index can only have one geo field"));
        }
        if !matches!(key.values().next(), Some(Bson::String(s)) if s == "2d") {
            return Err(cannot_create(raw, "2d has to be first in index"));
        }
        crate::query::ops_geo::check_2d_options(raw).map_err(|why| cannot_create(raw, &why))?;
    }
    if let Some(v) = raw.get("2dsphereIndexVersion") {
        if !matches!(crate::query::util::exact_i64(v), Some(1..=3)) {
            return Err(cannot_create(
                raw,
                &format!("unsupported geo index version {{ 2dsphereIndexVersion : {v} }}, only support versions: [1,2,3]"),
            ));
        }
    }
    Ok(())
}

/// The options that make two specs with the same key different indexes.
fn options_of(spec: &Document) -> Document {
    spec.iter()
        .filter(|(k, _)| !COSMETIC.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn create_indexes(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    super::views::refuse_write(ctx, &req.db, &coll_name)?;
    let raw = match req.body.get("indexes") {
        Some(Bson::Array(a)) => a,
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'createIndexes.indexes' is the wrong type '{}', expected type 'array'",
                type_name(v)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'createIndexes.indexes' is missing but a required field",
            ))
        }
    };
    if raw.is_empty() {
        return Err(MongoError::bad_value("Must specify at least one index to create"));
    }
    let mut specs = Vec::new();
    for r in raw {
        let Bson::Document(r) = r else {
            return Err(MongoError::type_mismatch(
                "BSON field 'createIndexes.indexes' element is the wrong type, expected type 'object'",
            ));
        };
        specs.push((normalize_spec(r)?, r.contains_key("collation")));
    }
    let ns = format!("{}.{}", req.db, coll_name);
    let created_collection = ctx.shared.store.catalog.get(&ns).is_none();
    let coll = ctx.store.ensure_collection(&req.db, &coll_name)?;
    let before = coll.indexes.len();
    let mut to_build: Vec<Document> = Vec::new();
    for (mut spec, own_collation) in specs {
        // An index without a collation of its own takes the collection's default.
        if let (false, Ok(c)) = (own_collation, coll.options.get_document("collation")) {
            spec.insert("collation", c.clone());
        }
        let name = spec.get_str("name").unwrap_or_default().to_string();
        let key = spec.get_document("key").cloned().unwrap_or_default();
        let existing: Vec<&Arc<IndexMeta>> = coll.indexes.iter().collect();
        if let Some(same_name) = existing.iter().find(|i| i.name == name) {
            if same_name.key != key {
                return Err(MongoError::new(
                    ErrorCode::IndexKeySpecsConflict,
                    format!(
                        "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: {}, existing index: {}",
                        shell(&spec),
                        shell(&same_name.spec)
                    ),
                ));
            }
            if options_of(&same_name.spec) != options_of(&spec) {
                return Err(MongoError::new(
                    ErrorCode::IndexOptionsConflict,
                    format!(
                        "An equivalent index already exists with the same name but different options. Requested index: {}, existing index: {}",
                        shell(&spec),
                        shell(&same_name.spec)
                    ),
                ));
            }
            continue;
        }
        if let Some(same_key) =
            existing.iter().find(|i| i.key == key && options_of(&i.spec) == options_of(&spec))
        {
            return Err(MongoError::new(
                ErrorCode::IndexOptionsConflict,
                format!("Index already exists with a different name: {}", same_key.name),
            ));
        }
        if to_build.iter().any(|s| s.get_str("name").ok() == Some(name.as_str())) {
            continue;
        }
        to_build.push(spec);
    }
    let mut reply = doc! {
        "numIndexesBefore": before as i32,
        "numIndexesAfter": (before + to_build.len()) as i32,
        "createdCollectionAutomatically": created_collection,
    };
    if to_build.is_empty() {
        reply.insert("note", "all indexes already exist");
        return Ok(reply);
    }
    ctx.store.create_indexes(&coll, to_build).map_err(|e| match e {
        e @ StoreError::DuplicateKey(_) => {
            let mut m: MongoError = e.into();
            m.message = format!(
                "Index build failed: {}: Collection {ns} ( {} ) :: caused by :: {}",
                bson::Uuid::new(),
                coll.uuid,
                m.message
            );
            m
        }
        other => other.into(),
    })?;
    Ok(reply)
}

pub fn list_indexes(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    let ns = format!("{}.{}", req.db, coll_name);
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        return Err(MongoError::new(ErrorCode::NamespaceNotFound, format!("ns does not exist: {ns}")));
    };
    let clustered = coll.options.get_document("clusteredIndex").ok();
    let specs: Vec<Document> = coll
        .indexes
        .iter()
        .map(|i| match clustered {
            // A clustered collection lists its `_id` index as the clustered one it asked for.
            Some(c) if i.is_id() => {
                let mut spec = c.clone();
                spec.insert("clustered", true);
                spec
            }
            _ => i.spec.clone(),
        })
        .collect();
    super::cursor::single_batch_cursor(ctx, req, ns, specs)
}

pub fn drop_indexes(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    let ns = format!("{}.{}", req.db, coll_name);
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        return Err(MongoError::new(ErrorCode::NamespaceNotFound, format!("ns not found {ns}")));
    };
    let was = coll.indexes.len() as i32;
    let names: Vec<String> = match req.body.get("index") {
        Some(Bson::String(s)) if s == "*" => {
            coll.indexes.iter().filter(|i| !i.is_id()).map(|i| i.name.clone()).collect()
        }
        Some(Bson::String(s)) => vec![s.clone()],
        Some(Bson::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| MongoError::type_mismatch("dropIndexes index names must be strings"))
            })
            .collect::<Result<_>>()?,
        Some(Bson::Document(key)) => {
            let found: Vec<&Arc<IndexMeta>> = coll.indexes.iter().filter(|i| &i.key == key).collect();
            match found.as_slice() {
                [] => {
                    return Err(MongoError::new(
                        ErrorCode::IndexNotFound,
                        format!("can't find index with key: {}", shell(key)),
                    ))
                }
                [one] => vec![one.name.clone()],
                _ => {
                    return Err(MongoError::new(
                        ErrorCode::IndexNotFound,
                        format!(
                            "{} indexes found for key: {}, identify by name instead.",
                            found.len(),
                            shell(key)
                        ),
                    ))
                }
            }
        }
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'dropIndexes.index' is the wrong type '{}', expected types '[string, object]'",
                type_name(v)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'dropIndexes.index' is missing but a required field",
            ))
        }
    };
    for n in &names {
        if n == "_id_" {
            return Err(MongoError::new(ErrorCode::InvalidOptions, "cannot drop _id index"));
        }
        if coll.index(n).is_none() {
            return Err(MongoError::new(
                ErrorCode::IndexNotFound,
                format!("index not found with name [{n}]"),
            ));
        }
    }
    let all = matches!(req.body.get("index"), Some(Bson::String(s)) if s == "*");
    for n in &names {
        match ctx.store.drop_index(&coll, n) {
            // "*" drops what is there; an index dropped meanwhile is not an error.
            Err(StoreError::IndexNotFound(_)) if all => {}
            other => other?,
        }
    }
    let mut reply = doc! { "nIndexesWas": was };
    if matches!(req.body.get("index"), Some(Bson::String(s)) if s == "*") {
        reply.insert("msg", "non-_id indexes dropped for collection");
    }
    Ok(reply)
}
