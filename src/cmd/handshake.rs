//! hello / isMaster: the handshake drivers use to discover the server and its limits.

use super::{args, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::net::wire::{MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE};
use bson::{doc, Bson, Document};
use std::time::Duration;

pub const SERVER_VERSION: &str = "7.0.14";
pub const VERSION_ARRAY: [i32; 4] = [7, 0, 14, 0];
/// Wire version 21 is MongoDB 7.0; keep in step with SERVER_VERSION.
pub const MAX_WIRE_VERSION: i32 = 21;
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
pub const SESSION_TIMEOUT_MINUTES: i32 = 30;
/// An awaitable hello never waits longer than this, whatever the client asks.
const MAX_AWAIT: Duration = Duration::from_secs(60);

pub fn hello(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    respond(ctx, req, true)
}

pub fn is_master(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    respond(ctx, req, false)
}

fn respond(ctx: &mut Ctx, req: &Request, new_style: bool) -> Result<Document> {
    if let Some(client) = args::opt_doc(req, "client")? {
        if ctx.conn.client_metadata.is_some() {
            return Err(MongoError::new(
                ErrorCode::ClientMetadataCannotBeMutated,
                "The client metadata document may only be sent in the first hello",
            ));
        }
        ctx.conn.client_metadata = Some(client.clone());
    }
    if matches!(req.body.get("loadBalanced"), Some(Bson::Boolean(true))) {
        return Err(MongoError::bad_value("The server is not configured for load balancing"));
    }
    wait_if_awaitable(ctx, req)?;
    let shared = ctx.shared;
    let mut d = Document::new();
    let topology_version = doc! { "processId": shared.process_id, "counter": 0i64 };
    if req.body.contains_key("helloOk") {
        d.insert("helloOk", true);
    }
    d.insert("topologyVersion", topology_version);
    if new_style {
        d.insert("isWritablePrimary", true);
    } else {
        d.insert("ismaster", true);
    }
    if shared.is_replica_set() {
        let me = shared.me.clone();
        let ts = shared.store.clock.last();
        let now = bson::DateTime::now();
        d.insert("hosts", vec![Bson::String(me.clone())]);
        d.insert("setName", shared.config.replica_set_name.clone());
        d.insert("setVersion", 1);
        d.insert("secondary", false);
        d.insert("primary", me.clone());
        d.insert("me", me);
        d.insert(
            "electionId",
            bson::oid::ObjectId::from_bytes([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]),
        );
        d.insert(
            "lastWrite",
            doc! {
                "opTime": { "ts": ts, "t": 1i64 },
                "lastWriteDate": now,
                "majorityOpTime": { "ts": ts, "t": 1i64 },
                "majorityWriteDate": now,
            },
        );
    }
    d.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE as i32);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE as i32);
    d.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    d.insert("localTime", bson::DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", SESSION_TIMEOUT_MINUTES);
    d.insert("connectionId", ctx.conn.id as i32);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", MAX_WIRE_VERSION);
    d.insert("readOnly", false);
    super::auth::hello_fields(ctx, req, &mut d)?;
    Ok(d)
}

/// Streaming monitors send the topologyVersion they know plus maxAwaitTimeMS: mongod answers
/// only when the topology changes or the time is up. Ours never changes while running, so we
/// wait out the time (waking early on shutdown) instead of letting the monitor spin.
fn wait_if_awaitable(ctx: &Ctx, req: &Request) -> Result<()> {
    let (Some(tv), Some(max_await)) =
        (args::opt_doc(req, "topologyVersion")?, args::opt_i64(req, "maxAwaitTimeMS")?)
    else {
        return Ok(());
    };
    if max_await < 0 {
        return Err(MongoError::bad_value("maxAwaitTimeMS must be a non-negative integer"));
    }
    let same_process = matches!(tv.get("processId"), Some(Bson::ObjectId(o)) if *o == ctx.shared.process_id);
    if !same_process {
        return Ok(());
    }
    let wait = Duration::from_millis(max_await as u64).min(MAX_AWAIT);
    let _ = ctx.shared.shutdown_signal.recv_timeout(wait);
    Ok(())
}
