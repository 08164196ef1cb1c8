//! count and distinct.

use super::{args, Ctx, Request};
use crate::error::{MongoError, Result};
use crate::query::compare::compare_bson;
use crate::query::exec::{Exec, ExecOptions};
use crate::query::matcher::Matcher;
use crate::query::multiplan;
use bson::{doc, Bson, Document};

pub fn count(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    let filter = args::opt_doc(req, "query")?.cloned().unwrap_or_default();
    let skip = args::opt_i64(req, "skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(MongoError::bad_value("skip value is negative in count query"));
    }
    // A negative limit counts like a positive one, as mongod does.
    let limit = args::opt_i64(req, "limit")?.map(|l| l.unsigned_abs()).filter(|l| *l > 0);
    let ns = format!("{}.{}", req.db, coll_name);
    let _collation = crate::query::collation::enter_for(
        req.body.get("collation"),
        ctx.shared.store.catalog.get(&ns).as_deref(),
    )?;
    if let Some((near, rest)) = crate::query::ops_geo::take_near(&filter)? {
        // The count command (unlike countDocuments' $match) accepts $near, as mongod's does.
        return super::geo::count_near(ctx, &ns, near, rest, skip as u64, limit);
    }
    let matcher = Matcher::parse(&filter)?;
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        let Some((base, mut stages)) = super::views::resolve(ctx, &req.db, &coll_name)? else {
            return Ok(doc! { "n": 0 });
        };
        let _view_collation =
            super::views::collation_scope(ctx, &req.db, &coll_name, req.body.get("collation"))?;
        stages.push(Bson::Document(doc! {"$match": filter}));
        if skip > 0 {
            stages.push(Bson::Document(doc! {"$skip": skip}));
        }
        if let Some(l) = limit {
            stages.push(Bson::Document(doc! {"$limit": l as i64}));
        }
        stages.push(Bson::Document(doc! {"$count": "n"}));
        // count on a view spills as mongod's does: by allowDiskUseByDefault.
        let disk = ctx.shared.store.knobs.allow_disk_use(None);
        let out =
            crate::agg::run_all(ctx.store, &req.db, Some(&format!("{}.{base}", req.db)), &stages, disk)?;
        let n = out.first().and_then(|d| d.get("n")).map(crate::query::util::exact_i64).unwrap_or(Some(0));
        return Ok(doc! { "n": super::catalog::num(n.unwrap_or(0).max(0) as u64) });
    };
    let hint = req.body.get("hint").filter(|h| !matches!(h, Bson::Null));
    // Counting reads only the filter's fields: an index holding them all answers alone.
    let projection = crate::query::covered::reading(&filter, &[]);
    let shape = multiplan::Shape { filter: &filter, sort: None, projection: projection.as_ref() };
    let access = multiplan::choose(ctx.store, &coll, &shape, hint, true)?.plan.access;
    let mut exec = Exec::new(
        coll,
        access,
        ExecOptions {
            filter: if filter.is_empty() { None } else { Some(matcher) },
            sort: None,
            projection: None,
            skip: skip as u64,
            limit,
            allow_disk_use: false,
        },
    );
    let mut n: u64 = 0;
    while exec.next_match(ctx.store)?.is_some() {
        n += 1;
    }
    Ok(doc! { "n": super::catalog::num(n) })
}

/// Values at a dotted path, with arrays unwound one level as distinct does.
fn values_at(doc: &Document, path: &str, out: &mut Vec<Bson>) {
    fn walk(v: &Bson, rest: &[&str], out: &mut Vec<Bson>) {
        match (v, rest.split_first()) {
            (Bson::Array(a), None) => out.extend(a.iter().cloned()),
            (v, None) => out.push(v.clone()),
            (Bson::Document(d), Some((first, after))) => {
                if let Some(x) = d.get(*first) {
                    walk(x, after, out);
                }
            }
            (Bson::Array(a), Some(_)) => {
                for e in a {
                    if let Bson::Document(_) = e {
                        walk(e, rest, out);
                    }
                }
            }
            _ => {}
        }
    }
    let parts: Vec<&str> = path.split('.').collect();
    if let Some((first, rest)) = parts.split_first() {
        if let Some(v) = doc.get(*first) {
            walk(v, rest, out);
        }
    }
}

pub fn distinct(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let coll_name = args::collection(req)?;
    let key = match req.body.get("key") {
        Some(Bson::String(k)) => k.clone(),
        Some(_) => {
            return Err(MongoError::type_mismatch(
                "BSON field 'distinct.key' is the wrong type, expected type 'string'",
            ))
        }
        None => {
            return Err(MongoError::new(
                crate::error::ErrorCode::Location40414,
                "BSON field 'distinct.key' is missing but a required field",
            ))
        }
    };
    let filter = args::opt_doc(req, "query")?.cloned().unwrap_or_default();
    let ns = format!("{}.{}", req.db, coll_name);
    let _collation = crate::query::collation::enter_for(
        req.body.get("collation"),
        ctx.shared.store.catalog.get(&ns).as_deref(),
    )?;
    let matcher = Matcher::parse(&filter)?;
    let mut values: Vec<Bson> = Vec::new();
    if ctx.shared.store.catalog.get(&ns).is_none() {
        if let Some((base, mut stages)) = super::views::resolve(ctx, &req.db, &coll_name)? {
            let _view_collation =
                super::views::collation_scope(ctx, &req.db, &coll_name, req.body.get("collation"))?;
            stages.push(Bson::Document(doc! {"$match": filter.clone()}));
            let disk = ctx.shared.store.knobs.allow_disk_use(None);
            let docs =
                crate::agg::run_all(ctx.store, &req.db, Some(&format!("{}.{base}", req.db)), &stages, disk)?;
            for d in &docs {
                values_at(d, &key, &mut values);
            }
        }
    }
    if let Some(coll) = ctx.shared.store.catalog.get(&ns) {
        let projection = crate::query::covered::reading(&filter, &[key.as_str()]);
        let shape = multiplan::Shape { filter: &filter, sort: None, projection: projection.as_ref() };
        let access = multiplan::choose(ctx.store, &coll, &shape, None, true)?.plan.access;
        let mut exec = Exec::new(
            coll,
            access,
            ExecOptions {
                filter: if filter.is_empty() { None } else { Some(matcher) },
                sort: None,
                projection: None,
                skip: 0,
                limit: None,
                allow_disk_use: false,
            },
        );
        let mut found = Vec::new();
        while let Some((_, d)) = exec.next_match(ctx.store)? {
            found.clear();
            values_at(&d, &key, &mut found);
            values.append(&mut found);
            if values.len() > 100_000 {
                values.sort_by(compare_bson);
                values.dedup_by(|a, b| compare_bson(a, b).is_eq());
            }
        }
    }
    values.sort_by(compare_bson);
    values.dedup_by(|a, b| compare_bson(a, b).is_eq());
    let size: usize = values.iter().map(|v| crate::query::exec::bson_size(&doc! {"v": v.clone()})).sum();
    if size > crate::net::wire::MAX_BSON_OBJECT_SIZE {
        return Err(MongoError::new(crate::error::ErrorCode::Location17217, "distinct too big, 16mb cap"));
    }
    Ok(doc! { "values": values })
}
