//! `$collStats` and `$indexStats`: leading stages that describe the collection rather than
//! read it. The command layer computes their documents (it owns the catalog and sizes) and
//! hands them to the pipeline as a `$documents` source, so later stages run as usual.

use super::{Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};

/// Replaces a leading `$collStats`/`$indexStats` of `pipeline` (on collection `coll`) by the
/// documents it produces; either stage later in the pipeline is an error, as in mongod.
pub fn rewrite(ctx: &mut Ctx, db: &str, coll: &str, pipeline: &mut [Bson]) -> Result<()> {
    for (i, s) in pipeline.iter().enumerate() {
        if let Bson::Document(d) = s {
            if let Some(k) = d.keys().next().filter(|k| matches!(k.as_str(), "$collStats" | "$indexStats")) {
                if i > 0 {
                    return Err(MongoError::new(
                        ErrorCode::Location40602,
                        format!("{k} is only valid as the first stage in a pipeline"),
                    ));
                }
            }
        }
    }
    let Some(Bson::Document(first)) = pipeline.first() else { return Ok(()) };
    let docs = match first.iter().next() {
        Some((k, spec)) if k == "$collStats" => vec![Bson::Document(coll_stats(ctx, db, coll, spec)?)],
        Some((k, spec)) if k == "$indexStats" => {
            if !matches!(spec, Bson::Document(d) if d.is_empty()) {
                return Err(MongoError::new(
                    ErrorCode::Location40602,
                    "The $indexStats stage specification must be an empty object",
                ));
            }
            index_stats(ctx, db, coll)?
        }
        _ => return Ok(()),
    };
    pipeline[0] = Bson::Document(doc! {"$documents": {"$literal": docs}});
    Ok(())
}

fn coll_stats(ctx: &mut Ctx, db: &str, coll: &str, spec: &Bson) -> Result<Document> {
    let Bson::Document(spec) = spec else {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            "$collStats must take a nested object but found: ".to_string()
                + &crate::query::util::value_to_string(spec),
        ));
    };
    let ns = format!("{db}.{coll}");
    let mut out = doc! {
        "ns": ns.clone(),
        "host": ctx.shared.me.clone(),
        "localTime": bson::DateTime::now(),
    };
    for (k, v) in spec {
        match k.as_str() {
            "latencyStats" => {
                let _ = v;
                out.insert("latencyStats", ctx.shared.ops.latency_stats(&ns));
            }
            "storageStats" | "count" => {
                let req_body = match (k.as_str(), v) {
                    ("storageStats", Bson::Document(o)) => {
                        let mut b = doc! {"collStats": coll};
                        if let Some(s) = o.get("scale") {
                            b.insert("scale", s.clone());
                        }
                        b
                    }
                    _ => doc! {"collStats": coll},
                };
                let req = Request {
                    db: db.to_string(),
                    name: "collStats".into(),
                    body: req_body,
                    sequences: Vec::new(),
                };
                let stats = match super::catalog::coll_stats(ctx, &req) {
                    Ok(s) => s,
                    Err(e) if e.code == ErrorCode::NamespaceNotFound => {
                        return Err(MongoError::new(
                            ErrorCode::NamespaceNotFound,
                            format!("Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [{ns}] not found."),
                        ))
                    }
                    Err(e) => return Err(e),
                };
                if k == "count" {
                    out.insert("count", stats.get("count").cloned().unwrap_or(Bson::Int32(0)));
                } else {
                    let mut s = stats;
                    s.remove("ns");
                    out.insert("storageStats", s);
                }
            }
            "queryExecStats" => {
                out.insert("queryExecStats", doc! {"collectionScans": {"total": 0i64, "nonTailable": 0i64}});
            }
            other => {
                return Err(MongoError::new(
                    ErrorCode::Location40415,
                    format!("BSON field '$collStats.{other}' is an unknown field."),
                ))
            }
        }
    }
    Ok(out)
}

fn index_stats(ctx: &mut Ctx, db: &str, coll: &str) -> Result<Vec<Bson>> {
    let Some(c) = ctx.shared.store.catalog.get(&format!("{db}.{coll}")) else { return Ok(Vec::new()) };
    // Access counters start with the server.
    let up = i64::try_from(ctx.shared.started.elapsed().as_millis()).unwrap_or(0);
    let since = bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - up);
    Ok(c.indexes
        .iter()
        .map(|i| {
            Bson::Document(doc! {
                "name": i.name.clone(),
                "key": i.key.clone(),
                "host": ctx.shared.me.clone(),
                "accesses": {"ops": 0i64, "since": since},
                "spec": i.spec.clone(),
            })
        })
        .collect())
}
