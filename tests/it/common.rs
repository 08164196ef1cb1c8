//! Shared helpers: start an embedded server, connect a driver client, inspect driver errors and
//! numbers, and speak raw wire frames.

#![allow(dead_code)]

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::sync::{Client, Collection, Database};
use secantusdb::{Server, ServerBuilder};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running embedded server and a client connected to it. The client is declared first so it
/// is dropped (and its connections closed) before the server stops.
pub struct Env {
    pub client: Client,
    pub server: Server,
}

impl Env {
    /// A database with a name no other test in this process uses.
    pub fn db(&self, prefix: &str) -> Database {
        self.client.database(&unique_name(prefix))
    }

    /// A fresh collection of `Document`s in a fresh database.
    pub fn coll(&self, prefix: &str) -> Collection<Document> {
        self.db(prefix).collection::<Document>("c")
    }

    pub fn admin(&self) -> Database {
        self.client.database("admin")
    }

    /// Runs a command on `admin` and returns the raw reply.
    pub fn admin_cmd(&self, cmd: Document) -> mongodb::error::Result<Document> {
        self.admin().run_command(cmd).run()
    }
}

/// The builder every test starts from: a small cache because many servers run at once.
pub fn builder() -> ServerBuilder {
    Server::builder().cache_size_mb(32)
}

/// Starts an ephemeral replica-set-persona server and connects to it.
pub fn start() -> Env {
    start_with(builder())
}

pub fn start_with(builder: ServerBuilder) -> Env {
    let server = builder.start().expect("server starts");
    let client = connect(&server.uri());
    Env { client, server }
}

/// A client with a server-selection timeout short enough that a broken server fails a test
/// quickly instead of after the driver's default 30 s.
pub fn connect(uri: &str) -> Client {
    let sep = if uri.contains('?') { '&' } else { '?' };
    Client::with_uri_str(format!("{uri}{sep}serverSelectionTimeoutMS=10000")).expect("client from uri")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `prefix_<pid>_<n>`: unique within the test process.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// Code, codeName and message of a command error (`ok: 0` reply).
pub fn command_error(e: &Error) -> (i32, String, String) {
    match &*e.kind {
        ErrorKind::Command(c) => (c.code, c.code_name.clone(), c.message.clone()),
        other => panic!("expected a command error, got {other:?}"),
    }
}

/// Asserts that `res` failed with the given command error code and codeName.
pub fn assert_command_error<T: std::fmt::Debug>(
    res: mongodb::error::Result<T>,
    code: i32,
    code_name: &str,
) -> String {
    let err = res.expect_err("expected a command error");
    let (c, name, msg) = command_error(&err);
    assert_eq!((c, name.as_str()), (code, code_name), "error: {err}");
    msg
}

/// Code of a single write error (writeErrors[0] of an update/delete/insert_one).
pub fn write_error_code(e: &Error) -> i32 {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code,
        other => panic!("expected a write error, got {other:?}"),
    }
}

/// `(index, code)` of every write error of an insert_many.
pub fn insert_many_errors(e: &Error) -> Vec<(usize, i32)> {
    match &*e.kind {
        ErrorKind::InsertMany(ime) => ime
            .write_errors
            .as_ref()
            .map(|v| v.iter().map(|w| (w.index, w.code)).collect())
            .unwrap_or_default(),
        other => panic!("expected an insert_many error, got {other:?}"),
    }
}

/// A BSON number as i64; panics on non-numbers or fractional doubles.
pub fn as_i64(b: &Bson) -> i64 {
    match b {
        Bson::Int32(v) => i64::from(*v),
        Bson::Int64(v) => *v,
        Bson::Double(d) if d.fract() == 0.0 => *d as i64,
        other => panic!("not an integral number: {other:?}"),
    }
}

/// `doc[key]` as i64, panicking with the document when absent or not a number.
pub fn num(doc: &Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(b) => as_i64(b),
        None => panic!("no field {key:?} in {doc}"),
    }
}

/// Dotted-path lookup (`"a.b.c"`) through embedded documents.
pub fn path<'a>(doc: &'a Document, dotted: &str) -> &'a Bson {
    let mut cur = doc;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let v = cur.get(*part).unwrap_or_else(|| panic!("no {dotted:?} in {doc}"));
        if i + 1 == parts.len() {
            return v;
        }
        cur = v.as_document().unwrap_or_else(|| panic!("{part} is not a document in {doc}"));
    }
    unreachable!("split yields at least one part")
}

/// mongod answers `ok: 1.0` (a double) on success.
pub fn assert_ok(reply: &Document) {
    assert_eq!(reply.get("ok"), Some(&Bson::Double(1.0)), "reply: {reply}");
}

/// All documents of a collection in natural order.
pub fn all(coll: &Collection<Document>) -> Vec<Document> {
    coll.find(doc! {}).run().expect("find").map(|d| d.expect("doc")).collect()
}

/// The `_id`s of a collection in natural order.
pub fn ids(coll: &Collection<Document>) -> Vec<Bson> {
    all(coll).into_iter().map(|d| d.get("_id").cloned().expect("_id")).collect()
}

/// Raw wire-protocol frames, for tests that go under the driver.
pub mod raw {
    use mongodb::bson::{self, doc, Bson, Document};
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    pub const OP_REPLY: i32 = 1;
    pub const OP_QUERY: i32 = 2004;
    pub const OP_COMPRESSED: i32 = 2012;
    pub const OP_MSG: i32 = 2013;
    pub const CHECKSUM_PRESENT: u32 = 1;
    pub const MORE_TO_COME: u32 = 1 << 1;

    pub fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("tcp connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        s.set_write_timeout(Some(Duration::from_secs(10))).expect("write timeout");
        s.set_nodelay(true).ok();
        s
    }

    pub fn bson_bytes(d: &Document) -> Vec<u8> {
        bson::to_vec(d).expect("encode bson")
    }

    /// A 16-byte header followed by `body`, with the true length.
    pub fn frame(request_id: i32, response_to: i32, op: i32, body: &[u8]) -> Vec<u8> {
        let len = 16 + body.len() as i32;
        let mut v = Vec::with_capacity(len as usize);
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&request_id.to_le_bytes());
        v.extend_from_slice(&response_to.to_le_bytes());
        v.extend_from_slice(&op.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// OP_MSG body: flag bits then one kind-0 section.
    pub fn op_msg_body(flags: u32, d: &Document) -> Vec<u8> {
        let mut body = flags.to_le_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(&bson_bytes(d));
        body
    }

    pub fn op_msg(request_id: i32, d: &Document) -> Vec<u8> {
        frame(request_id, 0, OP_MSG, &op_msg_body(0, d))
    }

    pub fn op_msg_flags(request_id: i32, flags: u32, d: &Document) -> Vec<u8> {
        frame(request_id, 0, OP_MSG, &op_msg_body(flags, d))
    }

    /// OP_MSG with the checksumPresent flag and a trailing CRC-32C; `corrupt` flips the sum.
    pub fn op_msg_checksummed(request_id: i32, d: &Document, corrupt: bool) -> Vec<u8> {
        let body = op_msg_body(CHECKSUM_PRESENT, d);
        // The header's length counts the 4 checksum bytes; the checksum covers everything
        // before it, header included.
        let mut msg = frame(request_id, 0, OP_MSG, &body);
        let len = (msg.len() + 4) as i32;
        msg[0..4].copy_from_slice(&len.to_le_bytes());
        let mut sum = crc32c(&msg);
        if corrupt {
            sum ^= 0xdead_beef;
        }
        msg.extend_from_slice(&sum.to_le_bytes());
        msg
    }

    /// Legacy OP_QUERY on `ns` (e.g. `admin.$cmd`).
    pub fn op_query(request_id: i32, ns: &str, query: &Document) -> Vec<u8> {
        let mut body = 0i32.to_le_bytes().to_vec();
        body.extend_from_slice(ns.as_bytes());
        body.push(0);
        body.extend_from_slice(&0i32.to_le_bytes());
        body.extend_from_slice(&(-1i32).to_le_bytes());
        body.extend_from_slice(&bson_bytes(query));
        frame(request_id, 0, OP_QUERY, &body)
    }

    /// CRC-32C (Castagnoli), bit by bit: messages here are small.
    pub fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
            }
        }
        !crc
    }

    #[derive(Debug)]
    pub struct Reply {
        pub length: i32,
        pub request_id: i32,
        pub response_to: i32,
        pub op: i32,
        pub body: Vec<u8>,
    }

    /// What a connection did after we sent something.
    #[derive(Debug)]
    pub enum Outcome {
        Closed,
        Reply(Reply),
        Timeout,
    }

    /// Reads one frame (bounded to 48 MB); EOF and resets count as `Closed`.
    pub fn read_outcome(s: &mut TcpStream) -> Outcome {
        match read_frame(s) {
            Ok(r) => Outcome::Reply(r),
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Outcome::Timeout,
                _ => Outcome::Closed,
            },
        }
    }

    pub fn read_frame(s: &mut TcpStream) -> io::Result<Reply> {
        let mut head = [0u8; 16];
        s.read_exact(&mut head)?;
        let field = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let length = field(0);
        if !(16..=48_000_000).contains(&length) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("length {length}")));
        }
        let mut body = vec![0u8; length as usize - 16];
        s.read_exact(&mut body)?;
        Ok(Reply { length, request_id: field(4), response_to: field(8), op: field(12), body })
    }

    /// The kind-0 document of an OP_MSG reply body, if the reply is a well-formed OP_MSG.
    pub fn try_op_msg_doc(r: &Reply) -> Option<Document> {
        if r.op != OP_MSG {
            return None;
        }
        let flags = u32::from_le_bytes(r.body.get(0..4)?.try_into().ok()?);
        let end = if flags & CHECKSUM_PRESENT != 0 { r.body.len().checked_sub(4)? } else { r.body.len() };
        if *r.body.get(4)? != 0 {
            return None;
        }
        let mut slice = r.body.get(5..end)?;
        Document::from_reader(&mut slice).ok()
    }

    /// The kind-0 document of an OP_MSG reply body; panics when it is not one.
    pub fn op_msg_doc(r: &Reply) -> Document {
        assert_eq!(r.op, OP_MSG, "reply opcode");
        try_op_msg_doc(r).unwrap_or_else(|| panic!("malformed OP_MSG reply: {r:?}"))
    }

    /// Sends one OP_MSG command on a new connection and returns the reply document.
    pub fn command(addr: SocketAddr, d: &Document) -> Document {
        let mut s = connect(addr);
        s.write_all(&op_msg(7, d)).expect("send");
        let r = read_frame(&mut s).expect("reply frame");
        assert_eq!(r.response_to, 7);
        op_msg_doc(&r)
    }

    /// The server answers `ping` with `ok: 1` on a brand-new connection.
    pub fn assert_alive(addr: SocketAddr, after: &str) {
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => s,
            Err(e) => panic!("server unreachable after {after}: {e}"),
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(&op_msg(4242, &doc! {"ping": 1, "$db": "admin"}))
            .unwrap_or_else(|e| panic!("cannot send ping after {after}: {e}"));
        let r = read_frame(&mut s).unwrap_or_else(|e| panic!("no ping reply after {after}: {e}"));
        assert_eq!(r.response_to, 4242, "after {after}");
        let d = op_msg_doc(&r);
        assert_eq!(d.get("ok").map(super::as_i64), Some(1), "ping after {after}: {d}");
    }

    /// True when a reply document says `ok: 1`.
    pub fn is_ok(d: &Document) -> bool {
        matches!(d.get("ok"), Some(Bson::Double(x)) if *x == 1.0)
            || matches!(d.get("ok"), Some(Bson::Int32(1)) | Some(Bson::Int64(1)))
    }
}
