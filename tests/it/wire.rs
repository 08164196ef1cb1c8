//! Raw wire protocol: well-formed OP_MSG and OP_QUERY, checksums, and hostile frames. After
//! every hostile input the server must still answer a ping on a new connection.

use crate::common::{self, raw};
use mongodb::bson::{doc, Document};
use raw::{Outcome, Reply};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `bytes` on a new connection and observes what the server does within `wait`.
fn send(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Outcome {
    let mut s = raw::connect(addr);
    s.set_read_timeout(Some(wait)).expect("timeout");
    // The server may close before reading everything: a failed write is an outcome, not a bug.
    if s.write_all(bytes).is_err() {
        return Outcome::Closed;
    }
    raw::read_outcome(&mut s)
}

/// The reply document of an OP_MSG or OP_REPLY frame, if it parses.
fn reply_doc(r: &Reply) -> Option<Document> {
    match r.op {
        raw::OP_MSG => raw::try_op_msg_doc(r),
        raw::OP_REPLY => {
            let mut slice = r.body.get(20..)?;
            Document::from_reader(&mut slice).ok()
        }
        _ => None,
    }
}

/// The server must refuse the input: close the connection or answer with an error, promptly.
fn assert_rejected(o: Outcome, case: &str) {
    match o {
        Outcome::Closed => {}
        Outcome::Timeout => panic!("{case}: the server neither answered nor closed"),
        Outcome::Reply(r) => match reply_doc(&r) {
            Some(d) => assert!(!raw::is_ok(&d), "{case}: accepted as valid: {d}"),
            None => panic!("{case}: unparseable reply {r:?}"),
        },
    }
}

fn header(len: i32, request_id: i32, op: i32) -> Vec<u8> {
    let mut v = len.to_le_bytes().to_vec();
    v.extend_from_slice(&request_id.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&op.to_le_bytes());
    v
}

fn ping() -> Document {
    doc! {"ping": 1, "$db": "admin"}
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn op_msg_ping_gets_op_msg_reply() {
    let env = common::start();
    let mut s = raw::connect(env.server.addr());
    s.write_all(&raw::op_msg(11, &ping())).expect("send");
    let r = raw::read_frame(&mut s).expect("reply");
    assert_eq!(r.op, raw::OP_MSG);
    assert_eq!(r.response_to, 11);
    assert_eq!(r.length as usize, 16 + r.body.len());
    let flags = u32::from_le_bytes([r.body[0], r.body[1], r.body[2], r.body[3]]);
    assert_eq!(flags & raw::MORE_TO_COME, 0, "no moreToCome on a plain reply");
    let d = raw::op_msg_doc(&r);
    assert_eq!(d.get("ok"), Some(&mongodb::bson::Bson::Double(1.0)), "{d}");
    // The connection stays usable for further requests.
    s.write_all(&raw::op_msg(12, &doc! {"hello": 1, "$db": "admin"})).expect("send");
    let r = raw::read_frame(&mut s).expect("reply");
    assert_eq!(r.response_to, 12);
    let d = raw::op_msg_doc(&r);
    assert_eq!(d.get_bool("isWritablePrimary"), Ok(true), "{d}");
    assert_ne!(r.request_id, 0, "replies carry their own request id");
}

#[test]
fn op_query_is_master_gets_op_reply() {
    let env = common::start();
    let mut s = raw::connect(env.server.addr());
    s.write_all(&raw::op_query(21, "admin.$cmd", &doc! {"isMaster": 1})).expect("send");
    let r = raw::read_frame(&mut s).expect("reply");
    assert_eq!(r.op, raw::OP_REPLY, "OP_QUERY is answered with OP_REPLY");
    assert_eq!(r.response_to, 21);
    assert!(r.body.len() > 20, "OP_REPLY body");
    let cursor_id = i64::from_le_bytes(r.body[4..12].try_into().expect("8 bytes"));
    let starting_from = i32::from_le_bytes(r.body[12..16].try_into().expect("4 bytes"));
    let number_returned = i32::from_le_bytes(r.body[16..20].try_into().expect("4 bytes"));
    assert_eq!((cursor_id, starting_from, number_returned), (0, 0, 1));
    let d = reply_doc(&r).expect("OP_REPLY document");
    assert_eq!(d.get_bool("ismaster"), Ok(true), "{d}");
    assert!(raw::is_ok(&d), "{d}");
    assert_eq!(d.get_i32("maxWireVersion").ok().map(|v| v >= 17), Some(true), "{d}");
    // The same connection then speaks OP_MSG, as drivers do after the handshake.
    s.write_all(&raw::op_msg(22, &ping())).expect("send");
    let r = raw::read_frame(&mut s).expect("reply");
    assert_eq!((r.op, r.response_to), (raw::OP_MSG, 22));
}

#[test]
fn op_msg_document_sequence_insert() {
    let env = common::start();
    let db = common::unique_name("wireseq");
    let mut body = 0u32.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&raw::bson_bytes(&doc! {"insert": "c", "$db": db.as_str()}));
    let mut seq = b"documents\0".to_vec();
    seq.extend_from_slice(&raw::bson_bytes(&doc! {"_id": 1, "a": "x"}));
    seq.extend_from_slice(&raw::bson_bytes(&doc! {"_id": 2, "a": "y"}));
    body.push(1);
    body.extend_from_slice(&((seq.len() + 4) as i32).to_le_bytes());
    body.extend_from_slice(&seq);
    let mut s = raw::connect(env.server.addr());
    s.write_all(&raw::frame(31, 0, raw::OP_MSG, &body)).expect("send");
    let d = raw::op_msg_doc(&raw::read_frame(&mut s).expect("reply"));
    assert!(raw::is_ok(&d), "{d}");
    assert_eq!(common::num(&d, "n"), 2, "{d}");
    let n =
        env.client.database(&db).collection::<Document>("c").count_documents(doc! {}).run().expect("count");
    assert_eq!(n, 2);
}

#[test]
fn more_to_come_request_gets_no_reply() {
    let env = common::start();
    let mut s = raw::connect(env.server.addr());
    s.write_all(&raw::op_msg_flags(41, raw::MORE_TO_COME, &ping())).expect("send");
    s.write_all(&raw::op_msg(42, &ping())).expect("send");
    let r = raw::read_frame(&mut s).expect("reply");
    assert_eq!(r.response_to, 42, "the moreToCome request must not be answered");
}

#[test]
fn crc32c_matches_the_reference_vector() {
    assert_eq!(raw::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn checksums_are_verified() {
    let env = common::start();
    let addr = env.server.addr();
    match send(addr, &raw::op_msg_checksummed(51, &ping(), false), WAIT) {
        Outcome::Reply(r) => {
            assert_eq!(r.response_to, 51);
            let d = raw::op_msg_doc(&r);
            assert!(raw::is_ok(&d), "a correct checksum is accepted: {d}");
        }
        other => panic!("valid checksummed ping: {other:?}"),
    }
    assert_rejected(send(addr, &raw::op_msg_checksummed(52, &ping(), true), WAIT), "bad CRC-32C");
    raw::assert_alive(addr, "bad checksum");
    // A checksum flag with no room for the checksum at all.
    let bytes = raw::op_msg_flags(53, raw::CHECKSUM_PRESENT, &doc! {});
    assert_rejected(send(addr, &bytes, WAIT), "checksum flag, section eats the checksum bytes");
    raw::assert_alive(addr, "checksum flag without checksum");
}

#[test]
fn bad_message_lengths() {
    let env = common::start();
    let addr = env.server.addr();
    for len in [0, 4, 12, 15, -1, i32::MIN] {
        let mut bytes = header(len, 61, raw::OP_MSG);
        bytes.extend_from_slice(&[0u8; 16]);
        assert_rejected(send(addr, &bytes, WAIT), &format!("length {len}"));
        raw::assert_alive(addr, &format!("length {len}"));
    }
    for len in [48_000_001, 64 << 20, i32::MAX] {
        let mut bytes = header(len, 62, raw::OP_MSG);
        bytes.extend_from_slice(&[0u8; 64]);
        assert_rejected(send(addr, &bytes, WAIT), &format!("length {len}"));
        raw::assert_alive(addr, &format!("length {len}"));
    }
}

#[test]
fn length_longer_than_bytes_sent() {
    let env = common::start();
    let addr = env.server.addr();
    let valid = raw::op_msg(71, &ping());
    let mut bytes = valid.clone();
    bytes[0..4].copy_from_slice(&1000i32.to_le_bytes());
    let mut s = raw::connect(addr);
    s.write_all(&bytes).expect("send");
    // A stalled client must not block anyone else.
    raw::assert_alive(addr, "a stalled partial frame (still open)");
    s.shutdown(Shutdown::Write).ok();
    drop(s);
    raw::assert_alive(addr, "a partial frame then close");

    // Many stalled connections at once: half a header each.
    let stalled: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut s = raw::connect(addr);
            s.write_all(&valid[..8]).expect("send");
            s
        })
        .collect();
    raw::assert_alive(addr, "30 stalled connections");
    drop(stalled);
    raw::assert_alive(addr, "30 dropped connections");
}

/// OP_MSG with the given raw body (flags + sections), true length.
fn msg(request_id: i32, body: &[u8]) -> Vec<u8> {
    raw::frame(request_id, 0, raw::OP_MSG, body)
}

fn kind0(d: &Document) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&raw::bson_bytes(d));
    v
}

#[test]
fn malformed_sections() {
    let env = common::start();
    let addr = env.server.addr();
    let flags = 0u32.to_le_bytes().to_vec();
    let ping_bytes = raw::bson_bytes(&ping());
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    // No section at all.
    cases.push(("no sections", flags.clone()));
    // A kind-0 document claiming more bytes than the message holds.
    let mut b = flags.clone();
    b.push(0);
    b.extend_from_slice(&100i32.to_le_bytes());
    b.extend_from_slice(&ping_bytes[4..10]);
    cases.push(("truncated section", b));
    // A kind-0 document cut short (its own length is right, the bytes are missing).
    let mut b = flags.clone();
    b.push(0);
    b.extend_from_slice(&ping_bytes[..ping_bytes.len() - 3]);
    cases.push(("document cut short", b));
    // Bad BSON: unknown element type.
    let mut bad = ping_bytes.clone();
    bad[4] = 0x7f;
    let mut b = flags.clone();
    b.push(0);
    b.extend_from_slice(&bad);
    cases.push(("unknown element type", b));
    // Bad BSON: missing terminating NUL.
    let mut bad = ping_bytes.clone();
    let last = bad.len() - 1;
    bad[last] = 0x01;
    let mut b = flags.clone();
    b.push(0);
    b.extend_from_slice(&bad);
    cases.push(("no document terminator", b));
    // Bad BSON: a string whose length runs past the document.
    let mut s = Vec::new();
    s.push(0x02);
    s.extend_from_slice(b"$db\0");
    s.extend_from_slice(&1_000_000i32.to_le_bytes());
    s.extend_from_slice(b"admin\0");
    let mut d = Vec::new();
    d.extend_from_slice(&((4 + s.len() + 1) as i32).to_le_bytes());
    d.extend_from_slice(&s);
    d.push(0);
    let mut b = flags.clone();
    b.push(0);
    b.extend_from_slice(&d);
    cases.push(("string length past the end", b));
    // Bad BSON: a negative string length.
    let mut neg = d.clone();
    neg[9..13].copy_from_slice(&(-5i32).to_le_bytes());
    let mut b = flags.clone();
    b.push(0);
    b.extend_from_slice(&neg);
    cases.push(("negative string length", b));
    // Two body sections.
    let mut b = flags.clone();
    b.extend_from_slice(&kind0(&ping()));
    b.extend_from_slice(&kind0(&ping()));
    cases.push(("two kind-0 sections", b));
    // Unknown section kind.
    let mut b = flags.clone();
    b.extend_from_slice(&kind0(&ping()));
    b.push(7);
    b.extend_from_slice(&ping_bytes);
    cases.push(("unknown section kind", b));
    // Unknown required flag bit (bits 0-15 are required-to-understand).
    let mut b = (1u32 << 4).to_le_bytes().to_vec();
    b.extend_from_slice(&kind0(&ping()));
    cases.push(("unknown required flag", b));
    // Kind-1 sections with lying sizes.
    let insert = doc! {"insert": "c", "$db": "wirebad"};
    let one = raw::bson_bytes(&doc! {"_id": 1});
    for (name, size) in [
        ("kind-1 size past the end", 10_000i32),
        ("kind-1 size below its header", 2),
        ("kind-1 negative size", -20),
        ("kind-1 size cutting the document", 4 + 10 + 3),
    ] {
        let mut b = flags.clone();
        b.extend_from_slice(&kind0(&insert));
        b.push(1);
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(b"documents\0");
        b.extend_from_slice(&one);
        cases.push((name, b));
    }
    // Kind-1 identifier without a NUL.
    let mut b = flags.clone();
    b.extend_from_slice(&kind0(&insert));
    b.push(1);
    b.extend_from_slice(&13i32.to_le_bytes());
    b.extend_from_slice(b"documents");
    cases.push(("kind-1 identifier without NUL", b));
    // Only a kind-1 section, no body.
    let mut b = flags.clone();
    b.push(1);
    b.extend_from_slice(&((4 + 10 + one.len()) as i32).to_le_bytes());
    b.extend_from_slice(b"documents\0");
    b.extend_from_slice(&one);
    cases.push(("kind-1 without a body section", b));

    for (i, (name, body)) in cases.iter().enumerate() {
        assert_rejected(send(addr, &msg(100 + i as i32, body), WAIT), name);
        raw::assert_alive(addr, name);
    }
    // None of the malformed inserts stored anything.
    let n = env
        .client
        .database("wirebad")
        .collection::<Document>("c")
        .count_documents(doc! {})
        .run()
        .expect("count");
    assert_eq!(n, 0, "a malformed insert wrote documents");
}

#[test]
fn unknown_and_compressed_opcodes() {
    let env = common::start();
    let addr = env.server.addr();
    let body = raw::op_msg_body(0, &ping());
    // Unknown opcode: any outcome but death (mongod ignores it and keeps the connection).
    let _ = send(addr, &raw::frame(81, 0, 9999, &body), Duration::from_millis(500));
    raw::assert_alive(addr, "unknown opcode 9999");
    // Removed legacy opcodes (OP_INSERT 2002, OP_GET_MORE 2005, OP_KILL_CURSORS 2007).
    for op in [2002, 2005, 2007] {
        let _ = send(addr, &raw::frame(82, 0, op, &body), Duration::from_millis(500));
        raw::assert_alive(addr, &format!("legacy opcode {op}"));
    }
    // OP_COMPRESSED with an unknown compressor and a lying uncompressed size.
    let mut c = raw::OP_MSG.to_le_bytes().to_vec();
    c.extend_from_slice(&i32::MAX.to_le_bytes());
    c.push(200);
    c.extend_from_slice(&[0xAB; 40]);
    assert_rejected(send(addr, &raw::frame(83, 0, raw::OP_COMPRESSED, &c), WAIT), "OP_COMPRESSED");
    raw::assert_alive(addr, "OP_COMPRESSED with an unknown compressor");
    // noop compressor (id 0) claiming a huge uncompressed size.
    let mut c = raw::OP_MSG.to_le_bytes().to_vec();
    c.extend_from_slice(&i32::MAX.to_le_bytes());
    c.push(0);
    c.extend_from_slice(&body);
    let _ = send(addr, &raw::frame(84, 0, raw::OP_COMPRESSED, &c), WAIT);
    raw::assert_alive(addr, "OP_COMPRESSED noop with a lying size");
}

/// `{a: {a: ... {}}}` nested `depth` levels, built without recursion.
fn nested(depth: usize) -> Vec<u8> {
    // Each level: i32 length, 0x03, "a\0", child, 0x00 => child + 8 bytes.
    let mut sizes = Vec::with_capacity(depth);
    let mut size = 5usize;
    for _ in 0..depth {
        size += 8;
        sizes.push(size);
    }
    let mut out = Vec::with_capacity(size);
    for s in sizes.iter().rev() {
        out.extend_from_slice(&(*s as i32).to_le_bytes());
        out.extend_from_slice(&[0x03, b'a', 0]);
    }
    out.extend_from_slice(&[5, 0, 0, 0, 0]);
    out.extend(std::iter::repeat_n(0u8, depth));
    out
}

/// A document made of pre-encoded elements.
fn doc_of(elements: &[(u8, &str, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, name, value) in elements {
        body.push(*t);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value);
    }
    let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out.push(0);
    out
}

fn bson_str(s: &str) -> Vec<u8> {
    let mut v = ((s.len() + 1) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

#[test]
fn deeply_nested_bson() {
    let env = common::start();
    let addr = env.server.addr();
    let deep = nested(10_000);
    // Sanity: the construction is valid BSON of the intended size.
    assert_eq!(i32::from_le_bytes(deep[0..4].try_into().expect("4")) as usize, deep.len());

    let cmd = doc_of(&[
        (0x10, "ping", 1i32.to_le_bytes().to_vec()),
        (0x03, "x", deep.clone()),
        (0x02, "$db", bson_str("admin")),
    ]);
    let mut body = 0u32.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&cmd);
    let _ = send(addr, &msg(91, &body), WAIT);
    raw::assert_alive(addr, "a ping carrying 10 000 nested documents");

    let db = common::unique_name("wiredeep");
    let one = doc_of(&[(0x10, "_id", 1i32.to_le_bytes().to_vec()), (0x03, "a", deep)]);
    let docs = doc_of(&[(0x03, "0", one)]);
    let cmd =
        doc_of(&[(0x02, "insert", bson_str("c")), (0x04, "documents", docs), (0x02, "$db", bson_str(&db))]);
    let mut body = 0u32.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&cmd);
    let _ = send(addr, &msg(92, &body), WAIT);
    raw::assert_alive(addr, "an insert of a 10 000-level document");
    let n =
        env.client.database(&db).collection::<Document>("c").count_documents(doc! {}).run().expect("count");
    assert_eq!(n, 0, "a 10 000-level document must not be stored");

    // A modest depth is fine and round-trips.
    let ok_depth = nested(50);
    let one = doc_of(&[(0x10, "_id", 2i32.to_le_bytes().to_vec()), (0x03, "a", ok_depth)]);
    let docs = doc_of(&[(0x03, "0", one)]);
    let cmd =
        doc_of(&[(0x02, "insert", bson_str("c")), (0x04, "documents", docs), (0x02, "$db", bson_str(&db))]);
    let mut body = 0u32.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&cmd);
    match send(addr, &msg(93, &body), WAIT) {
        Outcome::Reply(r) => {
            let d = raw::op_msg_doc(&r);
            assert_eq!(common::num(&d, "n"), 1, "50 levels are accepted: {d}");
        }
        other => panic!("50-level insert: {other:?}"),
    }
}

/// xorshift64*: a tiny deterministic generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_garbage() {
    let env = common::start();
    let addr = env.server.addr();
    let mut rng = Rng(0x5EC4_A705_DB00_0001);
    let valid = raw::op_msg(1, &doc! {"find": "c", "filter": {"a": {"$gt": 1}}, "$db": "garbage"});
    for i in 0..120 {
        let bytes = match i % 3 {
            // Pure noise.
            0 => {
                let n = 1 + rng.below(300);
                rng.bytes(n)
            }
            // A true-length OP_MSG header over a random body.
            1 => {
                let n = rng.below(200);
                raw::frame(i, 0, raw::OP_MSG, &rng.bytes(n))
            }
            // A valid message with a few bytes flipped (header length kept).
            _ => {
                let mut b = valid.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = 4 + rng.below(b.len() - 4);
                    b[at] ^= 1 << rng.below(8);
                }
                b
            }
        };
        let mut s = raw::connect(addr);
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        if s.write_all(&bytes).is_ok() {
            s.shutdown(Shutdown::Write).ok();
            let _ = raw::read_outcome(&mut s);
        }
        drop(s);
        if i % 10 == 9 {
            raw::assert_alive(addr, &format!("garbage case {i}"));
        }
    }
    raw::assert_alive(addr, "120 garbage frames");
    // And the driver still works end to end.
    let coll = env.coll("aftergarbage");
    coll.insert_one(doc! {"a": 1}).run().expect("insert");
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 1);
}
