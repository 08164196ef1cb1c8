//! Databases and collections: listDatabases, listCollections, create, drop, dropDatabase,
//! renameCollection, collStats, dbStats.

use super::{args, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::matcher::Matcher;
use crate::store::{Collection, StoreError};
use bson::{doc, Bson, Document};

/// Fields every command may carry that are not options of the command itself.
pub const GENERIC_FIELDS: &[&str] = &[
    "$db",
    "lsid",
    "$clusterTime",
    "writeConcern",
    "readConcern",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "comment",
    "$readPreference",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "maxTimeMS",
    "$audit",
    "$client",
    "mayBypassWriteBlocking",
];

/// mongod reports small counts as int32 and large ones as int64.
pub fn num(n: u64) -> Bson {
    if n <= i32::MAX as u64 {
        Bson::Int32(n as i32)
    } else {
        Bson::Int64(n as i64)
    }
}

fn db_size(ctx: &Ctx, db: &str) -> u64 {
    let store = &ctx.shared.store;
    store
        .catalog
        .list(db)
        .iter()
        .map(|c| {
            store.table_file_size(&c.ident)
                + c.indexes.iter().map(|i| store.table_file_size(&i.ident)).sum::<u64>()
        })
        .sum()
}

pub fn list_databases(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name_only = args::opt_bool(req, "nameOnly")?.unwrap_or(false);
    let filter = args::opt_doc(req, "filter")?.map(Matcher::parse).transpose()?;
    let mut dbs = Vec::new();
    let mut total = 0u64;
    let mut names = ctx.shared.store.catalog.databases();
    // mongod always has `admin` (system.version) and `config` (the sessions collection).
    names.insert("admin".to_string());
    names.insert("config".to_string());
    // The oplog lives in `local`, which a replica-set member always lists.
    if ctx.shared.is_replica_set() {
        names.insert("local".to_string());
    }
    for name in names {
        let size = db_size(ctx, &name);
        let entry = if name_only {
            doc! { "name": name.clone() }
        } else {
            doc! { "name": name.clone(), "sizeOnDisk": size as i64, "empty": false }
        };
        if filter.as_ref().is_some_and(|f| {
            !f.matches(&doc! {"name": name.clone(), "sizeOnDisk": size as i64, "empty": false})
        }) {
            continue;
        }
        total += size;
        dbs.push(Bson::Document(entry));
    }
    if name_only {
        return Ok(doc! { "databases": dbs });
    }
    Ok(doc! { "databases": dbs, "totalSize": total as i64, "totalSizeMb": (total / (1024 * 1024)) as i64 })
}

fn collection_entry(c: &Collection) -> Document {
    if c.is_timeseries() {
        return doc! {
            "name": c.name.clone(),
            "type": "timeseries",
            "options": c.options.clone(),
            "info": { "readOnly": false },
        };
    }
    doc! {
        "name": c.name.clone(),
        "type": "collection",
        "options": c.options.clone(),
        "info": { "readOnly": false, "uuid": c.uuid },
        "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
    }
}

pub fn list_collections(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    args::check_db_name(&req.db)?;
    let name_only = args::opt_bool(req, "nameOnly")?.unwrap_or(false);
    let filter = args::opt_doc(req, "filter")?.map(Matcher::parse).transpose()?;
    let mut out = Vec::new();
    let mut colls = ctx.shared.store.catalog.list(&req.db);
    if req.db == "local" {
        if let Some(oplog) = ctx.shared.store.collection(crate::store::OPLOG_NS) {
            colls.push(oplog);
        }
    }
    for c in colls {
        let full = collection_entry(&c);
        if filter.as_ref().is_some_and(|f| !f.matches(&full)) {
            continue;
        }
        out.push(if name_only {
            doc! { "name": c.name.clone(), "type": full.get_str("type").unwrap_or("collection") }
        } else {
            full
        });
    }
    for v in super::views::list(ctx, &req.db)? {
        let id = v.get_str("_id").unwrap_or_default();
        let name = id.split_once('.').map_or(id, |(_, n)| n).to_string();
        let mut options = doc! { "viewOn": v.get("viewOn").cloned().unwrap_or(Bson::Null), "pipeline": v.get("pipeline").cloned().unwrap_or(Bson::Array(Vec::new())) };
        if let Some(c) = v.get("collation") {
            options.insert("collation", c.clone());
        }
        let full = doc! {
            "name": name.clone(),
            "type": "view",
            "options": options,
            "info": { "readOnly": true },
        };
        if filter.as_ref().is_some_and(|f| !f.matches(&full)) {
            continue;
        }
        out.push(if name_only {
            doc! { "name": name, "type": "view" }
        } else {
            full
        });
    }
    if let Some(r) = crate::auth::authorized_collections(ctx.shared, ctx.store, ctx.conn, req)? {
        out.retain(|d| {
            let name = d.get_str("name").unwrap_or_default();
            r.privileges.touches(&crate::auth::roles::Resource::coll(&req.db, name))
        });
    }
    let ns = format!("{}.$cmd.listCollections", req.db);
    super::cursor::single_batch_cursor(ctx, req, ns, out)
}

pub fn create(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = args::collection(req)?;
    let mut options = Document::new();
    for (k, v) in &req.body {
        if k == "create" || GENERIC_FIELDS.contains(&k.as_str()) {
            continue;
        }
        options.insert(k.clone(), v.clone());
    }
    if options.contains_key("viewOn") || options.contains_key("pipeline") {
        return super::views::create(ctx, req, &name, &options);
    }
    if super::views::definition(ctx, &req.db, &name)?.is_some() {
        return Err(MongoError::new(
            ErrorCode::NamespaceExists,
            format!("Namespace {}.{name} already exists", req.db),
        ));
    }
    check_validation_options(&options)?;
    normalize_pre_post_images("create", &mut options)?;
    if let Some(c) = options.get("collation") {
        // Kept in mongod's full form; the simple collation is no default at all.
        match crate::query::collation::effective(Some(c), None)? {
            Some(c) => options.insert("collation", c.to_document()),
            None => options.remove("collation"),
        };
    }
    if let Some(ts) = options.get("timeseries") {
        let ts = super::timeseries::normalize(ts)?;
        super::timeseries::check_combination(&options)?;
        options.insert("timeseries", ts);
    }
    if let Some(ci) = options.get("clusteredIndex") {
        let spec = clustered_index_spec(ci)?;
        options.insert("clusteredIndex", spec);
    }
    if matches!(options.get("capped"), Some(Bson::Boolean(true))) && !options.contains_key("size") {
        return Err(MongoError::new(
            ErrorCode::InvalidOptions,
            "the 'size' field is required when 'capped' is true",
        ));
    }
    match ctx.store.create_collection(&req.db, &name, options) {
        Ok(_) => Ok(Document::new()),
        Err(StoreError::NamespaceExists(ns)) => {
            Err(MongoError::new(ErrorCode::NamespaceExists, format!("Collection {ns} already exists.")))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn drop(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = args::collection(req)?;
    let ns = format!("{}.{}", req.db, name);
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        if let Some(reply) = super::views::drop(ctx, &req.db, &name)? {
            return Ok(reply);
        }
        // Since 7.0 dropping a missing collection succeeds.
        return Ok(Document::new());
    };
    ctx.shared.cursors.kill_namespace(&ns);
    match ctx.store.drop_collection(&req.db, &name) {
        Ok(()) | Err(StoreError::NamespaceNotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(doc! { "nIndexesWas": coll.indexes.len() as i32, "ns": ns })
}

pub fn drop_database(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    args::check_db_name(&req.db)?;
    for c in ctx.shared.store.catalog.list(&req.db) {
        ctx.shared.cursors.kill_namespace(&c.ns);
        match ctx.store.drop_collection(&c.db, &c.name) {
            Ok(()) | Err(StoreError::NamespaceNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let cmd_ns = format!("{}.$cmd", req.db);
    ctx.store.write(true, |t| {
        t.log(|ts| crate::oplog::entry("c", &cmd_ns, None, doc! {"dropDatabase": 1}, None, ts))
    })?;
    Ok(doc! { "dropped": req.db.clone() })
}

pub fn rename_collection(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    if req.db != "admin" {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            "renameCollection may only be run against the admin database.",
        ));
    }
    let from = match req.body.get("renameCollection") {
        Some(Bson::String(s)) => s.clone(),
        _ => return Err(MongoError::type_mismatch("'renameCollection' must be of type String")),
    };
    let to = args::opt_str(req, "to")?
        .ok_or_else(|| MongoError::type_mismatch("'to' must be of type String"))?
        .to_string();
    let drop_target = args::opt_bool(req, "dropTarget")?.unwrap_or(false);
    for ns in [&from, &to] {
        let (db, coll) = ns.split_once('.').ok_or_else(|| {
            MongoError::new(ErrorCode::InvalidNamespace, format!("Invalid namespace specified '{ns}'"))
        })?;
        args::check_db_name(db)?;
        args::check_coll_name(db, coll)?;
    }
    if from == to {
        return Err(MongoError::new(ErrorCode::IllegalOperation, "Can't rename a collection to itself"));
    }
    if ctx.shared.store.catalog.get(&from).is_none() {
        return Err(MongoError::new(
            ErrorCode::NamespaceNotFound,
            format!("Source collection {from} does not exist"),
        ));
    }
    if !drop_target && ctx.shared.store.catalog.get(&to).is_some() {
        return Err(MongoError::new(ErrorCode::NamespaceExists, "target namespace exists"));
    }
    ctx.shared.cursors.kill_namespace(&from);
    ctx.store.rename_collection(&from, &to, drop_target).map_err(|e| match e {
        StoreError::NamespaceExists(_) => {
            MongoError::new(ErrorCode::NamespaceExists, "target namespace exists")
        }
        other => other.into(),
    })?;
    Ok(Document::new())
}

fn scale(req: &Request) -> Result<u64> {
    match args::opt_i64(req, "scale")? {
        None => Ok(1),
        Some(s) if s > 0 => Ok(s as u64),
        Some(_) => Err(MongoError::bad_value("Scale factor must be greater than zero")),
    }
}

pub fn coll_stats(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = args::collection(req)?;
    let scale = scale(req)?;
    let ns = format!("{}.{}", req.db, name);
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        return Err(MongoError::new(ErrorCode::NamespaceNotFound, format!("Collection [{ns}] not found.")));
    };
    let (count, size) = ctx.store.count_and_size(&coll)?;
    let store = &ctx.shared.store;
    let storage = store.table_file_size(&coll.ident);
    let mut index_sizes = Document::new();
    let mut total_index = 0u64;
    for i in &coll.indexes {
        let s = store.table_file_size(&i.ident);
        total_index += s;
        index_sizes.insert(i.name.clone(), num(s / scale));
    }
    let avg = size.checked_div(count).unwrap_or(0);
    let mut stats = doc! {
        "ns": ns,
        "size": num(size / scale),
        "count": num(count),
        "avgObjSize": num(avg),
        "storageSize": num(storage / scale),
        "freeStorageSize": 0,
        "capped": coll.is_capped(),
        "nindexes": coll.indexes.len() as i32,
        "indexBuilds": [],
        "totalIndexSize": num(total_index / scale),
        "totalSize": num((storage + total_index) / scale),
        "indexSizes": index_sizes,
        "scaleFactor": scale as i32,
    };
    if coll.is_capped() {
        // A capped collection's limits follow `capped`, as in mongod's collStats.
        let opt = |k: &str| coll.options.get(k).and_then(crate::query::util::exact_i64).filter(|n| *n > 0);
        let mut limits = Document::new();
        if let Some(max) = opt("max") {
            limits.insert("max", max);
        }
        if let Some(bytes) = opt("size") {
            limits.insert("maxSize", num(bytes as u64 / scale));
        }
        let mut out = Document::new();
        for (k, v) in stats {
            let capped = k == "capped";
            out.insert(k, v);
            if capped {
                out.extend(limits.clone());
            }
        }
        stats = out;
    }
    Ok(stats)
}

/// `clusteredIndex` as mongod stores it: `{v: 2, key: {_id: 1}, name, unique: true}`. Ours
/// keeps records by RecordId with the usual `_id` index; the option is kept so listings show
/// what the application asked for.
fn clustered_index_spec(ci: &Bson) -> Result<Document> {
    let Bson::Document(d) = ci else {
        return Err(MongoError::type_mismatch("'clusteredIndex' must be an object"));
    };
    if d.get_document("key").ok() != Some(&doc! { "_id": 1 }) {
        return Err(MongoError::new(
            ErrorCode::InvalidIndexSpecificationOption,
            "The clusteredIndex option is only supported for key: {_id: 1}",
        ));
    }
    if d.get("unique") != Some(&Bson::Boolean(true)) {
        return Err(MongoError::new(
            ErrorCode::InvalidIndexSpecificationOption,
            "The clusteredIndex option requires unique: true",
        ));
    }
    let name = d.get_str("name").unwrap_or("_id_").to_string();
    Ok(doc! { "v": 2, "key": { "_id": 1 }, "name": name, "unique": true })
}

pub fn db_stats(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    args::check_db_name(&req.db)?;
    let scale = scale(req)?;
    let colls = ctx.shared.store.catalog.list(&req.db);
    let (mut objects, mut data, mut storage, mut indexes, mut index_size) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for c in &colls {
        let (n, s) = ctx.store.count_and_size(c)?;
        objects += n;
        data += s;
        storage += ctx.shared.store.table_file_size(&c.ident);
        for i in &c.indexes {
            indexes += 1;
            index_size += ctx.shared.store.table_file_size(&i.ident);
        }
    }
    let avg = if objects > 0 { data as f64 / objects as f64 } else { 0.0 };
    let views = super::views::list(ctx, &req.db)?.len();
    Ok(doc! {
        "db": req.db.clone(),
        "collections": colls.len() as i64,
        "views": views as i64,
        "objects": objects as i64,
        "avgObjSize": avg,
        "dataSize": (data / scale) as f64,
        "storageSize": (storage / scale) as f64,
        "indexes": indexes as i64,
        "indexSize": (index_size / scale) as f64,
        "totalSize": ((storage + index_size) / scale) as f64,
        "scaleFactor": scale as i64,
        "fsUsedSize": 0.0,
        "fsTotalSize": 0.0,
    })
}

/// Checks `changeStreamPreAndPostImages: {enabled: <bool>}` as mongod parses it, and keeps it
/// in the options only when enabled (mongod's listCollections omits a disabled one).
fn normalize_pre_post_images(cmd: &str, options: &mut Document) -> Result<()> {
    let Some(v) = options.get("changeStreamPreAndPostImages") else { return Ok(()) };
    let field = format!("{cmd}.changeStreamPreAndPostImages");
    let Bson::Document(spec) = v else {
        return Err(MongoError::type_mismatch(format!(
            "BSON field '{field}' is the wrong type '{}', expected type 'object'",
            super::format::type_name(v)
        )));
    };
    if let Some(k) = spec.keys().find(|k| k.as_str() != "enabled") {
        return Err(MongoError::new(
            ErrorCode::Location40415,
            format!("BSON field '{field}.{k}' is an unknown field."),
        ));
    }
    let enabled = match spec.get("enabled") {
        Some(Bson::Boolean(b)) => *b,
        Some(other) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field '{field}.enabled' is the wrong type '{}', expected type 'bool'",
                super::format::type_name(other)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                format!("BSON field '{field}.enabled' is missing but a required field"),
            ))
        }
    };
    if enabled {
        options.insert("changeStreamPreAndPostImages", doc! { "enabled": true });
    } else {
        options.remove("changeStreamPreAndPostImages");
    }
    Ok(())
}

fn check_validation_options(options: &Document) -> Result<()> {
    if let Some(v) = options.get("validator") {
        match v {
            Bson::Document(d) => {
                Matcher::parse(d)?;
            }
            _ => return Err(MongoError::type_mismatch("'validator' option must be a document")),
        }
    }
    for (field, allowed) in [
        ("validationLevel", &["off", "strict", "moderate"][..]),
        ("validationAction", &["error", "warn"][..]),
    ] {
        match options.get(field) {
            None => {}
            Some(Bson::String(s)) if allowed.contains(&s.as_str()) => {}
            Some(Bson::String(s)) => {
                return Err(MongoError::bad_value(format!(
                    "Enumeration value '{s}' for field '{field}' is not a valid value."
                )))
            }
            Some(_) => return Err(MongoError::type_mismatch(format!("'{field}' must be a string"))),
        }
    }
    Ok(())
}

/// collMod: validator / validationLevel / validationAction, and an index's `hidden` or
/// `expireAfterSeconds`.
pub fn coll_mod(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = args::collection(req)?;
    let ns = format!("{}.{}", req.db, name);
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        if let Some(reply) = super::views::coll_mod(ctx, req, &name)? {
            return Ok(reply);
        }
        return Err(MongoError::new(ErrorCode::NamespaceNotFound, format!("ns does not exist: {ns}")));
    };
    let mut options = coll.options.clone();
    let mut o = doc! { "collMod": name.clone() };
    let mut reply = Document::new();
    let mut index_change: Option<(String, Document)> = None;
    for (k, v) in &req.body {
        if k == "collMod" || GENERIC_FIELDS.contains(&k.as_str()) {
            continue;
        }
        match k.as_str() {
            "validator" | "validationLevel" | "validationAction" | "changeStreamPreAndPostImages" => {
                options.insert(k.clone(), v.clone());
            }
            "index" => {
                let Bson::Document(spec) = v else {
                    return Err(MongoError::type_mismatch("'index' option must be a document"));
                };
                let idx = match (spec.get("name"), spec.get("keyPattern")) {
                    (Some(Bson::String(n)), _) => coll.index(n).cloned(),
                    (_, Some(Bson::Document(kp))) => coll.indexes.iter().find(|i| &i.key == kp).cloned(),
                    _ => {
                        return Err(MongoError::new(
                            ErrorCode::InvalidOptions,
                            "must specify either index name or key pattern for collMod",
                        ))
                    }
                };
                let Some(idx) = idx else {
                    return Err(MongoError::new(
                        ErrorCode::IndexNotFound,
                        format!("cannot find index {} for ns {ns}", shell_doc(spec)),
                    ));
                };
                let mut new_spec = idx.spec.clone();
                for opt in ["hidden", "expireAfterSeconds"] {
                    if let Some(nv) = spec.get(opt) {
                        if opt == "hidden" && idx.is_id() {
                            return Err(MongoError::bad_value("can't hide _id index"));
                        }
                        let old = new_spec.get(opt).cloned();
                        let nv = match (opt, nv) {
                            ("hidden", Bson::Boolean(b)) => Bson::Boolean(*b),
                            ("expireAfterSeconds", Bson::Int32(n)) => Bson::Int32(*n),
                            ("expireAfterSeconds", Bson::Int64(n)) => Bson::Int32(*n as i32),
                            ("expireAfterSeconds", Bson::Double(n)) => Bson::Int32(*n as i32),
                            _ => {
                                return Err(MongoError::type_mismatch(format!("'{opt}' has the wrong type")))
                            }
                        };
                        reply.insert(format!("{opt}_old"), old.unwrap_or(Bson::Boolean(false)));
                        reply.insert(format!("{opt}_new"), nv.clone());
                        new_spec.insert(opt, nv);
                    }
                }
                index_change = Some((idx.name.clone(), new_spec));
            }
            other => {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    format!("BSON field 'collMod.{other}' is an unknown field."),
                ))
            }
        }
        o.insert(k.clone(), v.clone());
    }
    check_validation_options(&options)?;
    normalize_pre_post_images("collMod", &mut options)?;
    ctx.store.modify_collection(&ns, o, |c| {
        let mut next = c.with_options(options);
        if let Some((name, spec)) = index_change {
            let mut indexes = Vec::new();
            for i in &next.indexes {
                if i.name == name {
                    indexes.push(std::sync::Arc::new(i.respec(spec.clone())?));
                } else {
                    indexes.push(i.clone());
                }
            }
            next = next.with_indexes(indexes);
        }
        Ok(next)
    })?;
    Ok(reply)
}

fn shell_doc(d: &Document) -> String {
    super::format::shell(d)
}

/// validate: walks the records and every index and reports counts (no repair).
pub fn validate(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = args::collection(req)?;
    let ns = format!("{}.{}", req.db, name);
    let Some(coll) = ctx.shared.store.catalog.get(&ns) else {
        return Err(MongoError::new(
            ErrorCode::NamespaceNotFound,
            format!("Collection '{ns}' does not exist to validate."),
        ));
    };
    let background = args::opt_bool(req, "background")?.unwrap_or(false);
    if background && args::opt_bool(req, "full")?.unwrap_or(false) {
        return Err(MongoError::new(
            ErrorCode::InvalidOptions,
            "Running the validate command with { background: true } cannot be done with { full: true } as well.",
        ));
    }
    let (count, _) = ctx.store.count_and_size(&coll)?;
    let mut keys_per_index = Document::new();
    let mut index_details = Document::new();
    for idx in &coll.indexes {
        let n = ctx.store.read(|t| {
            let mut n = 0i64;
            crate::store::scan::scan_index(t.s, idx, &[], None, true, |_, _| {
                n += 1;
                Ok(true)
            })?;
            Ok(n)
        })?;
        keys_per_index.insert(idx.name.clone(), n);
        index_details.insert(idx.name.clone(), doc! { "valid": true });
    }
    Ok(doc! {
        "ns": ns,
        "uuid": coll.uuid,
        "nInvalidDocuments": 0,
        "nNonCompliantDocuments": 0,
        "nrecords": num(count),
        "nIndexes": coll.indexes.len() as i32,
        "keysPerIndex": keys_per_index,
        "indexDetails": index_details,
        "valid": true,
        "repaired": false,
        "warnings": [],
        "errors": [],
        "extraIndexEntries": [],
        "missingIndexEntries": [],
        "corruptRecords": [],
    })
}

/// Atlas Search index commands: refused as a non-Atlas mongod refuses them.
pub fn search_index_unsupported(_: &mut Ctx, _: &Request) -> Result<Document> {
    Err(MongoError::new(
        ErrorCode::CommandNotSupported,
        "Search index commands are only supported with Atlas.",
    ))
}

/// fsync: flushes the journal and takes a checkpoint (locking is not supported).
pub fn fsync(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    if args::opt_bool(req, "lock")?.unwrap_or(false) {
        return Err(MongoError::new(ErrorCode::CommandNotSupported, "fsync with lock is not supported"));
    }
    ctx.store.flush_journal()?;
    ctx.store.checkpoint()?;
    Ok(doc! { "numFiles": 1 })
}
