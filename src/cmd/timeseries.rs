//! Time-series collections. mongod stores their measurements in buckets; we store each
//! measurement as a document of an ordinary record table, which keeps every read and write
//! path shared. What a user sees of the kind is kept: the `timeseries` options in mongod's
//! normalised form, `type: "timeseries"` in listCollections, no `_id` index (so `_id` need
//! not be unique), the automatic `{metaField: 1, timeField: 1}` index, and the check that
//! each measurement carries its time as a BSON date.

use crate::error::{ErrorCode, MongoError, Result};
use crate::store::catalog::Collection;
use bson::{doc, Bson, Document};

/// Largest bucket span mongod accepts (one year).
const MAX_SPAN_SECONDS: i64 = 31_536_000;

/// The `timeseries` option of `create` in the form mongod stores and lists it.
pub fn normalize(spec: &Bson) -> Result<Document> {
    let Bson::Document(spec) = spec else {
        return Err(MongoError::type_mismatch(
            "BSON field 'create.timeseries' is the wrong type, expected type 'object'",
        ));
    };
    let mut time_field = None;
    let mut meta_field = None;
    let mut granularity = None;
    let mut span = None;
    let mut rounding = None;
    for (k, v) in spec {
        let field = |what: &str| format!("BSON field 'create.timeseries.{k}' is the wrong type '{what}'");
        match k.as_str() {
            "timeField" | "metaField" | "granularity" => {
                let Bson::String(s) = v else {
                    return Err(MongoError::type_mismatch(format!(
                        "{}, expected type 'string'",
                        field(crate::query::util::type_name(v))
                    )));
                };
                match k.as_str() {
                    "timeField" => time_field = Some(s.clone()),
                    "metaField" => meta_field = Some(s.clone()),
                    _ => granularity = Some(s.clone()),
                }
            }
            "bucketMaxSpanSeconds" | "bucketRoundingSeconds" => {
                let n = match v {
                    Bson::Int32(n) => *n as i64,
                    Bson::Int64(n) => *n,
                    Bson::Double(d) if d.fract() == 0.0 => *d as i64,
                    _ => {
                        return Err(MongoError::type_mismatch(format!(
                            "{}, expected type 'int'",
                            field(crate::query::util::type_name(v))
                        )))
                    }
                };
                if k == "bucketMaxSpanSeconds" {
                    span = Some(n);
                } else {
                    rounding = Some(n);
                }
            }
            other => {
                return Err(MongoError::new(
                    ErrorCode::Location40415,
                    format!("BSON field 'create.timeseries.{other}' is an unknown field."),
                ))
            }
        }
    }
    let Some(time_field) = time_field else {
        return Err(MongoError::new(
            ErrorCode::Location40414,
            "BSON field 'create.timeseries.timeField' is missing but a required field",
        ));
    };
    check_field_name("timeField", &time_field)?;
    if let Some(meta) = &meta_field {
        check_field_name("metaField", meta)?;
        if *meta == time_field {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                "The 'timeField' and 'metaField' options cannot refer to the same field",
            ));
        }
    }
    let (granularity, span) = match (granularity, span, rounding) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                "Time-series 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' cannot be set alongside 'granularity'",
            ))
        }
        (None, Some(s), Some(r)) => {
            if s != r {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    "Time-series 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' fields must be equal",
                ));
            }
            if !(1..=MAX_SPAN_SECONDS).contains(&s) {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    format!("Time-series 'bucketMaxSpanSeconds' must be between 1 and {MAX_SPAN_SECONDS}"),
                ));
            }
            (None, s)
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                "Time-series 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' must both be set",
            ))
        }
        (g, None, None) => {
            let g = g.unwrap_or_else(|| "seconds".to_string());
            let span = match g.as_str() {
                "seconds" => 3600,
                "minutes" => 86_400,
                "hours" => 2_592_000,
                other => {
                    return Err(MongoError::bad_value(format!(
                        "Enumeration value '{other}' for field 'create.timeseries.granularity' is not a valid value."
                    )))
                }
            };
            (Some(g), span)
        }
    };
    let mut out = doc! { "timeField": time_field };
    if let Some(m) = meta_field {
        out.insert("metaField", m);
    }
    match granularity {
        Some(g) => out.insert("granularity", g),
        None => out.insert("bucketRoundingSeconds", span as i32),
    };
    out.insert("bucketMaxSpanSeconds", span as i32);
    Ok(out)
}

fn check_field_name(which: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('.') || name.starts_with('$') || name == "_id" {
        return Err(MongoError::new(
            ErrorCode::InvalidOptions,
            format!("The '{which}' option must be a top-level field name other than _id, without dots or a leading $"),
        ));
    }
    Ok(())
}

/// Options that cannot go with `timeseries`.
pub fn check_combination(options: &Document) -> Result<()> {
    for k in ["capped", "viewOn", "clusteredIndex", "validator", "autoIndexId"] {
        if options.contains_key(k) {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                format!("Time-series collections do not support the '{k}' option"),
            ));
        }
    }
    Ok(())
}

/// The index mongod creates with a time-series collection that has a metaField.
pub fn auto_index(options: &Document) -> Option<Document> {
    let ts = options.get_document("timeseries").ok()?;
    let time = ts.get_str("timeField").ok()?;
    let meta = ts.get_str("metaField").ok()?;
    Some(doc! { "v": 2, "key": { meta: 1, time: 1 }, "name": format!("{meta}_1_{time}_1") })
}

/// Each measurement must carry its time as a BSON date.
pub fn check_measurement(coll: &Collection, doc: &Document) -> Result<()> {
    let Ok(ts) = coll.options.get_document("timeseries") else { return Ok(()) };
    let Ok(field) = ts.get_str("timeField") else { return Ok(()) };
    if !matches!(doc.get(field), Some(Bson::DateTime(_))) {
        return Err(MongoError::bad_value(format!(
            "'{field}' must be present and contain a valid BSON UTC datetime value"
        )));
    }
    if let Ok(meta) = ts.get_str("metaField") {
        if matches!(doc.get(meta), Some(Bson::Array(_))) {
            return Err(MongoError::bad_value(format!("'{meta}' field cannot be an array")));
        }
    }
    Ok(())
}
