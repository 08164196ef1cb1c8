//! One client connection: read a message, run it, write the reply, until the peer goes away.
//!
//! Framing errors (a length we cannot trust, a truncated frame) close the connection, as mongod
//! does; a frame that was read whole but whose content is bad gets an error reply and the
//! connection lives on.

use super::splice;
use super::wire::{self, Header, WireError};
use crate::cmd::{self, ConnState, Request};
use crate::error::{ErrorCode, MongoError};
use crate::server::Shared;
use bson::{doc, Document};
use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);

fn next_request_id() -> i32 {
    NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)
}

pub fn serve(stream: TcpStream, shared: &Arc<Shared>, id: i64) {
    let peer = stream.peer_addr().ok();
    let local = stream.local_addr().ok();
    let mut session = match shared.store.session() {
        Ok(s) => s,
        Err(e) => {
            log::error!("conn{id}: cannot open a storage session: {e}");
            return;
        }
    };
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = BufWriter::with_capacity(64 * 1024, stream);
    let mut conn = ConnState::new(id, peer);
    conn.local = local;
    conn.slot = Some(shared.ops.connect(id, peer));
    log::debug!("conn{id}: connection accepted from {peer:?}");
    loop {
        let (header, body) = match wire::read_message(&mut reader) {
            Ok(m) => m,
            Err(WireError::Closed) => break,
            Err(e) => {
                log::debug!("conn{id}: closing: {e}");
                break;
            }
        };
        // A bug must cost one connection, never the server: a panic while serving a request
        // rolls back whatever the session had open and closes this connection only.
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match header.op_code {
            wire::OP_MSG => handle_op_msg(shared, &mut session, &mut conn, &header, &body, &mut writer),
            wire::OP_QUERY => handle_op_query(shared, &mut session, &mut conn, &header, &body),
            other => {
                log::debug!("conn{id}: unsupported opcode {other}; closing");
                Reply::Close
            }
        }));
        let reply = match served {
            Ok(r) => r,
            Err(_) => {
                log::error!("conn{id}: internal error while serving a request; closing the connection");
                let _ = session.wt.rollback_transaction("");
                break;
            }
        };
        match reply {
            Reply::None => {}
            Reply::Frame(frame) => {
                if writer.write_all(&frame).and_then(|_| writer.flush()).is_err() {
                    break;
                }
            }
            Reply::Close => break,
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
    }
    shared.cursors.connection_closed(id);
    shared.ops.disconnect(id);
    log::debug!("conn{id}: end connection {peer:?}");
}

enum Reply {
    None,
    Frame(Vec<u8>),
    Close,
}

fn handle_op_msg(
    shared: &Arc<Shared>,
    session: &mut crate::store::StoreSession,
    conn: &mut ConnState,
    header: &Header,
    body: &[u8],
    writer: &mut dyn Write,
) -> Reply {
    let msg = match wire::parse_op_msg(header, body) {
        Ok(m) => m,
        Err(WireError::Protocol(m)) => {
            let err = m.to_mongo_error();
            return Reply::Frame(encode_msg(header, &cmd::error_reply(shared, &err)));
        }
        Err(e) => {
            log::debug!("conn{}: bad OP_MSG: {e}; closing", conn.id);
            return Reply::Close;
        }
    };
    let more_to_come = msg.flags & wire::FLAG_MORE_TO_COME != 0;
    let exhaust = msg.flags & wire::FLAG_EXHAUST_ALLOWED != 0;
    let body_copy = if exhaust { Some(msg.body.clone()) } else { None };
    let reply = match Request::from_op_msg(msg.body, msg.sequences) {
        Ok(req) => cmd::dispatch(shared, session, conn, req),
        Err(e) => cmd::error_reply(shared, &e),
    };
    if conn.close_requested {
        return Reply::Close;
    }
    if more_to_come {
        return Reply::None;
    }
    match body_copy {
        Some(body) if body.keys().next().map(String::as_str) == Some("getMore") => {
            exhaust_get_more(shared, session, conn, header, body, reply, writer)
        }
        _ => {
            Reply::Frame(encode_reply(next_request_id(), header.request_id, 0, &reply, conn.raw_batch.take()))
        }
    }
}

/// Encodes a reply, splicing in a cursor batch left as stored BSON; should the reply not
/// have the expected shape, the documents are parsed into it instead.
fn encode_reply(
    request_id: i32,
    response_to: i32,
    flags: u32,
    reply: &Document,
    raw: Option<Vec<Vec<u8>>>,
) -> Vec<u8> {
    let Some(raw) = raw else {
        return wire::encode_op_msg_or_error(request_id, response_to, flags, reply);
    };
    if let Ok(mut frame) = wire::encode_op_msg(request_id, response_to, flags, reply) {
        if splice::splice_batch(&mut frame, splice::OP_MSG_BODY_AT, &raw) {
            return frame;
        }
    }
    let mut reply = reply.clone();
    if let Ok(cursor) = reply.get_document_mut("cursor") {
        let docs: Vec<Document> =
            raw.iter().filter_map(|b| crate::store::scan::parse_record(b).ok()).collect();
        for key in ["firstBatch", "nextBatch"] {
            if cursor.contains_key(key) {
                cursor.insert(key, docs.clone());
            }
        }
    }
    wire::encode_op_msg_or_error(request_id, response_to, flags, &reply)
}

fn cursor_open(reply: &Document) -> bool {
    reply.get_f64("ok").unwrap_or(0.0) == 1.0
        && reply.get_document("cursor").ok().and_then(|c| c.get_i64("id").ok()).is_some_and(|id| id != 0)
}

/// Exhaust cursors: while the cursor stays open, send each batch with `moreToCome` and run
/// the next getMore without waiting for the client to ask; each reply answers the previous.
fn exhaust_get_more(
    shared: &Arc<Shared>,
    session: &mut crate::store::StoreSession,
    conn: &mut ConnState,
    header: &Header,
    body: Document,
    mut reply: Document,
    writer: &mut dyn Write,
) -> Reply {
    let mut response_to = header.request_id;
    loop {
        let id = next_request_id();
        let open = cursor_open(&reply);
        let flags = if open { wire::FLAG_MORE_TO_COME } else { 0 };
        let frame = encode_reply(id, response_to, flags, &reply, conn.raw_batch.take());
        if writer.write_all(&frame).and_then(|_| writer.flush()).is_err() {
            return Reply::Close;
        }
        if !open {
            return Reply::None;
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            return Reply::Close;
        }
        response_to = id;
        reply = match Request::from_op_msg(body.clone(), Vec::new()) {
            Ok(req) => cmd::dispatch(shared, session, conn, req),
            Err(e) => cmd::error_reply(shared, &e),
        };
        if conn.close_requested {
            return Reply::Close;
        }
    }
}

fn encode_msg(header: &Header, reply: &Document) -> Vec<u8> {
    match wire::encode_op_msg(next_request_id(), header.request_id, 0, reply) {
        Ok(f) => f,
        Err(e) => wire::encode_error_op_msg(next_request_id(), header.request_id, &e),
    }
}

/// Legacy OP_QUERY: drivers use it for the first handshake (`isMaster` on `admin.$cmd`).
fn handle_op_query(
    shared: &Arc<Shared>,
    session: &mut crate::store::StoreSession,
    conn: &mut ConnState,
    header: &Header,
    body: &[u8],
) -> Reply {
    let q = match wire::parse_op_query(body) {
        Ok(q) => q,
        Err(e) => {
            log::debug!("conn{}: bad OP_QUERY: {e}; closing", conn.id);
            return Reply::Close;
        }
    };
    let reply = match q.full_collection_name.strip_suffix(".$cmd") {
        Some(db) => {
            // Commands may arrive wrapped as {$query: {...}, $readPreference: ...}.
            let mut body = match q.query.get_document("$query") {
                Ok(inner) => inner.clone(),
                Err(_) => q.query.clone(),
            };
            body.insert("$db", db);
            let name = body.keys().next().cloned().unwrap_or_default();
            if !matches!(name.as_str(), "isMaster" | "ismaster" | "hello") {
                let err = MongoError::new(
                    ErrorCode::UnsupportedOpQueryCommand,
                    format!(
                        "Unsupported OP_QUERY command: {name}. The client driver may require an upgrade."
                    ),
                );
                cmd::error_reply(shared, &err)
            } else {
                match Request::from_op_msg(body, Vec::new()) {
                    Ok(req) => cmd::dispatch(shared, session, conn, req),
                    Err(e) => cmd::error_reply(shared, &e),
                }
            }
        }
        None => doc! {
            "$err": "OP_QUERY is no longer supported. The client driver may require an upgrade.",
            "code": ErrorCode::UnsupportedOpQueryCommand.code(),
            "ok": 0.0,
        },
    };
    if conn.close_requested {
        return Reply::Close;
    }
    match wire::encode_op_reply(next_request_id(), header.request_id, 0, 0, 0, &[reply]) {
        Ok(f) => Reply::Frame(f),
        Err(_) => Reply::Close,
    }
}
