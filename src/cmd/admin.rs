//! Diagnostics: ping, buildInfo, serverStatus, hostInfo, getParameter, getCmdLineOpts,
//! connectionStatus, listCommands, getLog, whatsmyuri, endSessions.

use super::handshake::{MAX_WIRE_VERSION, SERVER_VERSION, VERSION_ARRAY};
use super::registry::COMMANDS;
use super::{Ctx, Request};
use crate::config::Storage;
use crate::error::{ErrorCode, MongoError, Result};
use crate::net::wire::MAX_BSON_OBJECT_SIZE;
use bson::{doc, Bson, Document};
use std::sync::atomic::Ordering;

pub fn ping(_: &mut Ctx, _: &Request) -> Result<Document> {
    Ok(Document::new())
}

pub fn build_info(_: &mut Ctx, _: &Request) -> Result<Document> {
    Ok(doc! {
        "version": SERVER_VERSION,
        "gitVersion": "secantusdb",
        "versionArray": VERSION_ARRAY.to_vec(),
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "storageEngines": ["wiredTiger"],
        "javascriptEngine": "none",
        "modules": [],
        "openssl": { "running": "disabled", "compiled": "disabled" },
        "buildEnvironment": { "target_arch": std::env::consts::ARCH, "target_os": std::env::consts::OS },
        "allocator": "system",
        "sysInfo": "deprecated",
        "secantusdb": env!("CARGO_PKG_VERSION"),
        "maxWireVersion": MAX_WIRE_VERSION,
    })
}

pub fn whats_my_uri(ctx: &mut Ctx, _: &Request) -> Result<Document> {
    let you = ctx.conn.peer.map(|p| p.to_string()).unwrap_or_default();
    Ok(doc! { "you": you })
}

fn proc_status_kb(field: &str) -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<i64>().ok()))
        })
        .unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn mem_total_mb() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<i64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

pub fn host_info(_: &mut Ctx, _: &Request) -> Result<Document> {
    let cores = std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1);
    Ok(doc! {
        "system": {
            "currentTime": bson::DateTime::now(),
            "hostname": hostname(),
            "cpuAddrSize": 64,
            "memSizeMB": mem_total_mb(),
            "memLimitMB": mem_total_mb(),
            "numCores": cores,
            "numPhysicalCores": cores,
            "cpuArch": std::env::consts::ARCH,
            "numaEnabled": false,
        },
        "os": { "type": "Linux", "name": std::env::consts::OS, "version": "" },
        "extra": { "pageSize": 4096i64 },
    })
}

pub fn server_status(ctx: &mut Ctx, _: &Request) -> Result<Document> {
    let s = ctx.shared;
    let st = &s.stats;
    let uptime = s.started.elapsed();
    let current = st.connections_current.load(Ordering::Relaxed) as i32;
    let mut d = doc! {
        "host": hostname(),
        "version": SERVER_VERSION,
        "process": "mongod",
        "pid": std::process::id() as i64,
        "uptime": uptime.as_secs_f64().floor(),
        "uptimeMillis": uptime.as_millis() as i64,
        "uptimeEstimate": uptime.as_secs() as i64,
        "localTime": bson::DateTime::now(),
        "connections": {
            "current": current,
            "available": (s.config.max_connections as i32).saturating_sub(current),
            "totalCreated": st.connections_total.load(Ordering::Relaxed) as i32,
            "rejected": st.connections_rejected.load(Ordering::Relaxed) as i32,
            "active": current,
        },
        "opcounters": {
            "insert": st.insert.load(Ordering::Relaxed) as i64,
            "query": st.query.load(Ordering::Relaxed) as i64,
            "update": st.update.load(Ordering::Relaxed) as i64,
            "delete": st.delete.load(Ordering::Relaxed) as i64,
            "getmore": st.getmore.load(Ordering::Relaxed) as i64,
            "command": st.command.load(Ordering::Relaxed) as i64,
        },
        "mem": {
            "bits": 64,
            "resident": (proc_status_kb("VmRSS:") / 1024) as i32,
            "virtual": (proc_status_kb("VmSize:") / 1024) as i32,
            "supported": true,
        },
        "storageEngine": {
            "name": "wiredTiger",
            "supportsCommittedReads": true,
            "persistent": true,
            "backupCursorOpen": false,
        },
    };
    d.insert("security", doc! { "authentication": s.auth.stats_doc() });
    if s.is_replica_set() {
        d.insert(
            "repl",
            doc! {
                "hosts": [s.me.clone()],
                "setName": s.config.replica_set_name.clone(),
                "setVersion": 1,
                "isWritablePrimary": true,
                "secondary": false,
                "primary": s.me.clone(),
                "me": s.me.clone(),
            },
        );
    }
    Ok(d)
}

fn parameters(ctx: &Ctx) -> Document {
    let knobs = &ctx.shared.store.knobs;
    let mut d = doc! {
        "featureCompatibilityVersion": { "version": "7.0" },
        "enableTestCommands": ctx.shared.config.enable_test_commands,
        "maxBSONDepth": crate::net::wire::MAX_BSON_DEPTH as i32,
        "cursorTimeoutMillis": 600_000i64,
        "internalQueryMaxBlockingSortMemoryUsageBytes": ctx.shared.store.sort_memory_limit.load(std::sync::atomic::Ordering::Relaxed) as i64,
        "logicalSessionTimeoutMinutes": super::handshake::SESSION_TIMEOUT_MINUTES,
        "minSnapshotHistoryWindowInSeconds": window_secs(ctx),
        "transactionLifetimeLimitSeconds": i32::try_from(ctx.shared.config.transaction_lifetime_secs).unwrap_or(i32::MAX),
        "authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        "requireApiVersion": false,
        "storageEngine": "wiredTiger",
        "allowDiskUseByDefault": knobs.allow_disk_use_by_default.load(std::sync::atomic::Ordering::Relaxed),
    };
    for name in crate::query::knobs::MEMORY_PARAMS {
        if let Some(v) = knobs.memory(name) {
            d.insert(*name, v.load(std::sync::atomic::Ordering::Relaxed) as i64);
        }
    }
    d
}

/// setParameter: the runtime parameters we can change (the blocking-sort memory limit, the
/// snapshot history window);
/// others are refused as unknown, as mongod refuses parameters it does not have.
pub fn set_parameter(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    if req.db != "admin" {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            "setParameter may only be run against the admin database.",
        ));
    }
    let mut reply = Document::new();
    for (k, v) in &req.body {
        if k == "setParameter" || k.starts_with('$') || matches!(k.as_str(), "lsid" | "comment") {
            continue;
        }
        match k.as_str() {
            "internalQueryMaxBlockingSortMemoryUsageBytes" => {
                let n = crate::query::util::exact_i64(v)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| MongoError::bad_value(format!("Invalid value for {k}: {v}")))?;
                let bytes = usize::try_from(n).unwrap_or(usize::MAX);
                let was =
                    ctx.shared.store.sort_memory_limit.swap(bytes, std::sync::atomic::Ordering::Relaxed);
                reply.insert("was", was as i64);
            }
            "minSnapshotHistoryWindowInSeconds" => {
                let n = crate::query::util::exact_i64(v)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| MongoError::bad_value(format!("Invalid value for {k}: {v}")))?;
                if n < 0 {
                    return Err(MongoError::bad_value(format!(
                        "Invalid value for parameter {k}: {n} is not greater than or equal to 0"
                    )));
                }
                let was = window_secs(ctx);
                let history = &ctx.shared.store.history;
                history.window_secs.store(n as u64, std::sync::atomic::Ordering::Relaxed);
                // A smaller window drops history at once, not at the next flusher period.
                ctx.shared.store.advance_history()?;
                reply.insert("was", was);
            }
            "allowDiskUseByDefault" => {
                let Bson::Boolean(b) = v else {
                    return Err(MongoError::bad_value(format!("Invalid value for {k}: {v}")));
                };
                let was = ctx
                    .shared
                    .store
                    .knobs
                    .allow_disk_use_by_default
                    .swap(*b, std::sync::atomic::Ordering::Relaxed);
                reply.insert("was", was);
            }
            name if ctx.shared.store.knobs.memory(name).is_some() => {
                let n = crate::query::util::exact_i64(v)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| MongoError::bad_value(format!("Invalid value for {k}: {v}")))?;
                let bytes = usize::try_from(n).unwrap_or(usize::MAX);
                if let Some(slot) = ctx.shared.store.knobs.memory(name) {
                    let was = slot.swap(bytes, std::sync::atomic::Ordering::Relaxed);
                    reply.insert("was", was as i64);
                }
            }
            other => {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    format!(
                        "attempted to set unrecognized parameter [{other}], use help:true to see options "
                    ),
                ))
            }
        }
    }
    if reply.is_empty() {
        return Err(MongoError::new(
            ErrorCode::InvalidOptions,
            "no option found to set, use help:true to see options ",
        ));
    }
    Ok(reply)
}

fn window_secs(ctx: &Ctx) -> i32 {
    let secs = ctx.shared.store.history.window_secs.load(std::sync::atomic::Ordering::Relaxed);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

pub fn get_parameter(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let all = parameters(ctx);
    let want_all = match req.body.get("getParameter") {
        Some(Bson::String(s)) => s == "*",
        Some(Bson::Document(d)) => d.get_bool("allParameters").unwrap_or(false),
        _ => false,
    };
    if want_all {
        return Ok(all);
    }
    let mut out = Document::new();
    for k in req.body.keys() {
        if k == "getParameter" || k.starts_with('$') || k == "lsid" || k == "comment" {
            continue;
        }
        match all.get(k) {
            Some(v) => {
                out.insert(k.clone(), v.clone());
            }
            None => {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    format!("no option found to get: {k}"),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(MongoError::new(ErrorCode::InvalidOptions, "no option found to get"));
    }
    Ok(out)
}

pub fn get_cmd_line_opts(ctx: &mut Ctx, _: &Request) -> Result<Document> {
    let cfg = &ctx.shared.config;
    let argv: Vec<Bson> = std::env::args().map(Bson::String).collect();
    let mut parsed = doc! {
        "net": { "bindIp": cfg.host.clone(), "port": cfg.port as i32 },
    };
    if let Storage::Path(p) = &cfg.storage {
        parsed.insert("storage", doc! { "dbPath": p.display().to_string() });
    }
    if !cfg.standalone {
        parsed.insert("replication", doc! { "replSet": cfg.replica_set_name.clone() });
    }
    if cfg.enable_test_commands {
        parsed.insert("setParameter", doc! { "enableTestCommands": "1" });
    }
    if cfg.auth {
        parsed.insert("security", doc! { "authorization": "enabled" });
    }
    Ok(doc! { "argv": argv, "parsed": parsed })
}

pub fn connection_status(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let show = matches!(req.body.get("showPrivileges"), Some(Bson::Boolean(true)));
    Ok(doc! { "authInfo": super::auth::auth_info(ctx, show)? })
}

pub fn list_commands(_: &mut Ctx, _: &Request) -> Result<Document> {
    let mut cmds = Document::new();
    for c in COMMANDS {
        let info = doc! {
            "help": c.help,
            "requiresAuth": !c.pre_auth,
            "secondaryOk": true,
            "adminOnly": false,
            "apiVersions": [],
            "deprecatedApiVersions": [],
        };
        cmds.insert(c.name, info.clone());
        for a in c.aliases {
            cmds.insert(*a, info.clone());
        }
    }
    Ok(doc! { "commands": cmds })
}

pub fn get_log(_: &mut Ctx, req: &Request) -> Result<Document> {
    match req.body.get("getLog") {
        Some(Bson::String(s)) if s == "*" => Ok(doc! { "names": ["global", "startupWarnings"] }),
        Some(Bson::String(s)) if s == "global" || s == "startupWarnings" => {
            Ok(doc! { "totalLinesWritten": 0, "log": [] })
        }
        Some(Bson::String(s)) => {
            Err(MongoError::new(ErrorCode::OperationFailed, format!("no RamLog named: {s}")))
        }
        _ => Err(MongoError::type_mismatch("Argument to getLog must be of type String")),
    }
}
