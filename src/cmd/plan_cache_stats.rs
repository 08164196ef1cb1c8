//! `$planCacheStats`: one document per plan cache entry of the collection (the winning index
//! per query shape that `query/multiplan.rs` keeps). The command layer computes them and hands
//! them to the pipeline as a `$documents` source, like `$collStats`.

use super::Ctx;
use crate::error::{ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};

/// Replaces a leading `$planCacheStats` of `pipeline` (on `db.coll`) by its documents.
pub fn rewrite(ctx: &Ctx, db: &str, coll: &str, pipeline: &mut [Bson]) -> Result<()> {
    let Some(Bson::Document(first)) = pipeline.first() else { return Ok(()) };
    let Some(spec) = first.get("$planCacheStats") else { return Ok(()) };
    let Bson::Document(opts) = spec else {
        return Err(MongoError::new(
            ErrorCode::FailedToParse,
            format!(
                "$planCacheStats value must be an object. Found: {}",
                crate::query::util::type_name(spec)
            ),
        ));
    };
    for (k, v) in opts {
        match (k.as_str(), v) {
            ("allHosts", Bson::Boolean(_)) => {}
            _ => {
                return Err(MongoError::new(
                    ErrorCode::FailedToParse,
                    format!("unrecognized option to $planCacheStats: {k}"),
                ))
            }
        }
    }
    let docs: Vec<Bson> = entries(ctx, &format!("{db}.{coll}")).into_iter().map(Bson::Document).collect();
    pipeline[0] = Bson::Document(doc! { "$documents": { "$literal": docs } });
    Ok(())
}

fn entries(ctx: &Ctx, ns: &str) -> Vec<Document> {
    let Some(coll) = ctx.shared.store.catalog.get(ns) else { return Vec::new() };
    let mut list = crate::query::multiplan::entries(&coll);
    list.sort_by(|a, b| a.shape.cmp(&b.shape));
    list.into_iter()
        .map(|e| {
            let key_pattern =
                coll.indexes.iter().find(|i| i.name == e.index).map(|i| i.key.clone()).unwrap_or_default();
            let mut d = doc! {
                "version": "1",
                "queryHash": e.query_hash.clone(),
                "planCacheShapeHash": e.query_hash,
                "planCacheKey": e.plan_cache_key,
                "isActive": e.is_active,
                "works": e.works as i64,
                "timeOfCreation": e.time_of_creation,
                "cachedPlan": {
                    "stage": "FETCH",
                    "inputStage": { "stage": "IXSCAN", "keyPattern": key_pattern, "indexName": e.index },
                },
                "indexFilterSet": false,
                "host": ctx.shared.me.clone(),
            };
            if !e.created_from.is_empty() {
                d.insert("createdFromQuery", e.created_from);
            }
            d
        })
        .collect()
}
