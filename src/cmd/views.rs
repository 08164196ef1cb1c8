//! Views, kept as mongod keeps them: one document per view in the database's `system.views`
//! collection (`{_id: "db.view", viewOn: "coll", pipeline: [...]}`). Reads of a view (find,
//! aggregate, count, distinct) run the view's pipeline — views on views resolved down to the
//! collection — before their own; writes to a view fail with 166 CommandNotSupportedOnView.

use super::{Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};

pub const SYSTEM_VIEWS: &str = "system.views";
/// mongod's limit on views defined on views.
const MAX_VIEW_DEPTH: usize = 20;

/// The definition of `db.name` when it is a view.
pub fn definition(ctx: &mut Ctx, db: &str, name: &str) -> Result<Option<Document>> {
    let views_ns = format!("{db}.{SYSTEM_VIEWS}");
    let Some(coll) = ctx.shared.store.catalog.get(&views_ns) else { return Ok(None) };
    let id = Bson::String(format!("{db}.{name}"));
    Ok(ctx.store.read(|t| t.find_by_id(&coll, &id))?.map(|(_, d)| d))
}

/// Every view of a database (for listCollections).
pub fn list(ctx: &mut Ctx, db: &str) -> Result<Vec<Document>> {
    let views_ns = format!("{db}.{SYSTEM_VIEWS}");
    if ctx.shared.store.catalog.get(&views_ns).is_none() {
        return Ok(Vec::new());
    }
    crate::agg::run_all(ctx.store, db, Some(&views_ns), &[], false)
}

/// For a view: the collection it reads in the end and the pipeline to run over it (the
/// innermost view's stages first).
pub fn resolve(ctx: &mut Ctx, db: &str, name: &str) -> Result<Option<(String, Vec<Bson>)>> {
    let mut current = name.to_string();
    let mut stages: Vec<Vec<Bson>> = Vec::new();
    for _ in 0..=MAX_VIEW_DEPTH {
        let Some(def) = definition(ctx, db, &current)? else {
            if stages.is_empty() {
                return Ok(None);
            }
            let pipeline = stages.into_iter().rev().flatten().collect();
            return Ok(Some((current, pipeline)));
        };
        stages.push(def.get_array("pipeline").cloned().unwrap_or_default());
        current = def.get_str("viewOn").unwrap_or_default().to_string();
    }
    Err(MongoError::new(
        ErrorCode::ViewDepthLimitExceeded,
        format!("View depth too deep or view cycle detected; maximum depth is {MAX_VIEW_DEPTH}"),
    ))
}

/// The default collation of a view as stored (`None`: the simple collation).
fn stored_collation(def: &Document) -> Result<Option<std::sync::Arc<crate::query::collation::Collation>>> {
    crate::query::collation::effective(None, def.get_document("collation").ok())
}

fn same_collation(
    a: &Option<std::sync::Arc<crate::query::collation::Collation>>,
    b: &Option<std::sync::Arc<crate::query::collation::Collation>>,
) -> bool {
    a.as_ref().map(|c| c.to_document()) == b.as_ref().map(|c| c.to_document())
}

/// The collation a read of view `db.name` runs with: the view's default (views do not
/// inherit their collection's). A statement may repeat it but not ask for another (167).
pub fn collation_scope(
    ctx: &mut Ctx,
    db: &str,
    name: &str,
    arg: Option<&Bson>,
) -> Result<crate::query::collation::Scope> {
    let view = match definition(ctx, db, name)? {
        Some(def) => stored_collation(&def)?,
        None => None,
    };
    if let Some(a) = arg.filter(|a| !matches!(a, Bson::Document(d) if d.is_empty())) {
        let asked = crate::query::collation::effective(Some(a), None)?;
        if !same_collation(&asked, &view) {
            return Err(MongoError::new(
                ErrorCode::OptionNotSupportedOnView,
                "Cannot override a view's default collation",
            ));
        }
    }
    Ok(crate::query::collation::Scope::enter(view))
}

/// 166 when `db.name` is a view (for the commands that write).
pub fn refuse_write(ctx: &mut Ctx, db: &str, name: &str) -> Result<()> {
    if ctx.shared.store.catalog.get(&format!("{db}.{name}")).is_some() {
        return Ok(());
    }
    if definition(ctx, db, name)?.is_some() {
        return Err(MongoError::new(
            ErrorCode::CommandNotSupportedOnView,
            format!("Namespace {db}.{name} is a view, not a collection"),
        ));
    }
    Ok(())
}

fn check_definition(
    ctx: &mut Ctx,
    db: &str,
    name: &str,
    view_on: &Bson,
    pipeline: Option<&Bson>,
    collation: Option<&Bson>,
) -> Result<Document> {
    let Bson::String(view_on) = view_on else {
        return Err(MongoError::type_mismatch("'viewOn' option must be specified as a string"));
    };
    if view_on.is_empty() {
        return Err(MongoError::bad_value("'viewOn' option cannot be empty"));
    }
    let pipeline = match pipeline {
        None => Vec::new(),
        Some(Bson::Array(a)) => a.clone(),
        Some(_) => return Err(MongoError::type_mismatch("'pipeline' option must be specified as an array")),
    };
    for s in &pipeline {
        if let Bson::Document(d) = s {
            if let Some(k) =
                d.keys().next().filter(|k| matches!(k.as_str(), "$out" | "$merge" | "$changeStream"))
            {
                return Err(MongoError::new(
                    ErrorCode::OptionNotSupportedOnView,
                    format!("{k} cannot be used in a view definition"),
                ));
            }
        }
    }
    // A pipeline that does not parse is refused now, as mongod does.
    crate::agg::prepare(db, &pipeline, None)?;
    if view_on == name {
        return Err(MongoError::new(
            ErrorCode::GraphContainsCycle,
            format!("View cycle detected: {db}.{name} => {db}.{name}"),
        ));
    }
    let mut def = doc! { "_id": format!("{db}.{name}"), "viewOn": view_on.clone(), "pipeline": pipeline };
    // Kept in mongod's full form; the simple collation is no default at all.
    let own = match collation {
        Some(c) => crate::query::collation::effective(Some(c), None)?,
        None => None,
    };
    if let Some(c) = &own {
        def.insert("collation", c.to_document());
    }
    // A view on a view has that view's collation.
    if let Some(under) = definition(ctx, db, view_on)? {
        if !same_collation(&own, &stored_collation(&under)?) {
            return Err(MongoError::new(
                ErrorCode::OptionNotSupportedOnView,
                format!("View {db}.{name} has a collation that does not match the collation of view {db}.{view_on}"),
            ));
        }
    }
    // Resolving through the new definition finds cycles and over-deep chains.
    let mut seen = vec![name.to_string()];
    let mut next = view_on.clone();
    while let Some(d) = definition(ctx, db, &next)? {
        if seen.contains(&next) || seen.len() > MAX_VIEW_DEPTH {
            return Err(MongoError::new(
                ErrorCode::GraphContainsCycle,
                format!("View cycle detected: {db}.{name}"),
            ));
        }
        seen.push(next.clone());
        next = d.get_str("viewOn").unwrap_or_default().to_string();
        if next == name {
            return Err(MongoError::new(
                ErrorCode::GraphContainsCycle,
                format!("View cycle detected: {db}.{name}"),
            ));
        }
    }
    Ok(def)
}

/// `create` with `viewOn`: stores the definition in `system.views`.
pub fn create(ctx: &mut Ctx, req: &Request, name: &str, options: &Document) -> Result<Document> {
    for k in options.keys() {
        if !matches!(k.as_str(), "viewOn" | "pipeline" | "collation") {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                format!("option '{k}' is not supported when creating a view"),
            ));
        }
    }
    let view_on = options
        .get("viewOn")
        .ok_or_else(|| MongoError::bad_value("'pipeline' requires 'viewOn' to also be specified"))?;
    let db = req.db.as_str();
    if ctx.shared.store.catalog.get(&format!("{db}.{name}")).is_some() || definition(ctx, db, name)?.is_some()
    {
        return Err(MongoError::new(
            ErrorCode::NamespaceExists,
            format!("Namespace {db}.{name} already exists"),
        ));
    }
    let def = check_definition(ctx, db, name, view_on, options.get("pipeline"), options.get("collation"))?;
    ctx.store.write_collection(db, SYSTEM_VIEWS, true, false, |t, c| t.insert(c, &def).map(|_| ()))?;
    Ok(Document::new())
}

/// `drop` of a view: removes its definition. `None` when `name` is not a view.
pub fn drop(ctx: &mut Ctx, db: &str, name: &str) -> Result<Option<Document>> {
    let views_ns = format!("{db}.{SYSTEM_VIEWS}");
    let Some(coll) = ctx.shared.store.catalog.get(&views_ns) else { return Ok(None) };
    let id = Bson::String(format!("{db}.{name}"));
    let removed = ctx.store.write(true, |t| match t.find_by_id(&coll, &id)? {
        Some((rid, old)) => t.delete(&coll, rid, &old).map(|()| true),
        None => Ok(false),
    })?;
    Ok(removed.then(|| doc! { "ns": format!("{db}.{name}") }))
}

/// `collMod` of a view: a new `viewOn` and/or `pipeline`. `None` when `name` is not a view.
pub fn coll_mod(ctx: &mut Ctx, req: &Request, name: &str) -> Result<Option<Document>> {
    let db = req.db.as_str();
    let Some(old) = definition(ctx, db, name)? else { return Ok(None) };
    let mut view_on = old.get("viewOn").cloned().unwrap_or(Bson::Null);
    let mut pipeline = old.get("pipeline").cloned();
    for (k, v) in &req.body {
        if k == "collMod" || super::catalog::GENERIC_FIELDS.contains(&k.as_str()) {
            continue;
        }
        match k.as_str() {
            "viewOn" => view_on = v.clone(),
            "pipeline" => pipeline = Some(v.clone()),
            other => {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    format!("option '{other}' is not supported on a view"),
                ))
            }
        }
    }
    let collation = old.get("collation").cloned();
    let def = check_definition(ctx, db, name, &view_on, pipeline.as_ref(), collation.as_ref())?;
    let Some(coll) = ctx.shared.store.catalog.get(&format!("{db}.{SYSTEM_VIEWS}")) else {
        return Ok(None);
    };
    let id = Bson::String(format!("{db}.{name}"));
    ctx.store.write(true, |t| match t.find_by_id(&coll, &id)? {
        Some((rid, old)) => t.update(&coll, rid, &old, &def, def.clone()),
        None => Ok(()),
    })?;
    Ok(Some(Document::new()))
}
