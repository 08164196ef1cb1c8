//! MongoDB wire-protocol codec: framing, OP_MSG / OP_QUERY parsing, OP_MSG / OP_REPLY encoding.
//! Pure functions over byte slices and `Read`; no sockets, no async.
//!
//! # Which errors close the connection, which are answered
//!
//! mongod closes the connection when it cannot trust the framing, and answers with an error
//! reply (`{ok: 0, errmsg, code, codeName}`, `responseTo` = the request's id) when the frame was
//! read whole but its content is bad. The server follows the same split, which
//! [`WireError::closes_connection`] encodes:
//!
//! * **Close, send nothing**: `Io` (socket error, EOF inside a frame), `Closed` (clean EOF
//!   between frames), `BadLength` (messageLength < 16 or > 48 000 000: mongod refuses such a
//!   frame before reading it, so the byte stream can no longer be re-synchronised), and `Fatal`:
//!   a frame read whole that mongod treats as connection-fatal: OP_MSG flag bits 2-15 set
//!   (`IllegalOpMsgFlag`, 223), more than two document sequences (`TooManyDocumentSequences`,
//!   233), and a CRC-32C mismatch (`ChecksumMismatch`, 288; a corrupt frame is not worth
//!   answering).
//! * **Answer with an error reply, keep the connection**: `Protocol(RequestError)`: everything
//!   else found inside a fully read frame: truncated or overlapping sections, two bodies, no
//!   body, unknown section kind, duplicate sequence names, invalid BSON (`InvalidBSON`, 22), a
//!   command nested deeper than `MAX_BSON_DEPTH` (`Overflow`, 15, "BSONObj exceeded maximum
//!   nested object depth: 200"), a document over `MAX_COMMAND_SIZE` (`BSONObjectTooLarge`). mongod
//!   replies to these the same way ("reply with the parse error ... such as the document too
//!   deep error"). A request with `moreToCome` set gets no reply even then. mongod answers the
//!   OP_MSG section faults with location codes (40430 two bodies, 40431 duplicate sequence,
//!   40432 unknown kind, 40433 sequence clashes with a body field, 40587 no body) that
//!   `ErrorCode` does not have yet; they go out as `ProtocolError` (17) with mongod's message.
//! * OP_COMPRESSED: we advertise no compressors, so a client should never send it; the frame
//!   is well delimited, so answer it with an error rather than close.
//! * Op codes with no handler (legacy OP_INSERT/UPDATE/DELETE/GET_MORE/KILL_CURSORS,
//!   unsupported since MongoDB 5.1, or unknown numbers) are the server's call; closing is the
//!   safe default.

// Encoders return the project's `MongoError` (144 bytes) like every command does.
#![allow(clippy::result_large_err)]

use crate::error::{ErrorCode, MongoError};
use crate::net::bsoncheck::{self, BsonCheckError, BsonCheckKind};
use bson::Document;
use std::fmt;
use std::io::{self, Read};

/// mongod's `maxMessageSizeBytes`.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// mongod's `maxBsonObjectSize` (user documents).
pub const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;
/// Command documents may exceed a user document by 16 KiB (mongod's `BSONObjMaxInternalSize`),
/// room for command fields around a maximum-size document.
pub const MAX_COMMAND_SIZE: usize = MAX_BSON_OBJECT_SIZE + 16 * 1024;
/// mongod's default `maxBSONDepth`: levels of nesting below the top-level command document.
pub const MAX_BSON_DEPTH: usize = 200;
/// mongod's `maxWriteBatchSize`. Bounds the documents decoded from one sequence, so a frame of
/// tiny documents cannot make us build millions of `Document`s; mongod refuses such a batch
/// later anyway (`InvalidLength`, "Write batch sizes must be between 1 and 100000").
pub const MAX_SEQUENCE_DOCUMENTS: usize = 100_000;

pub const HEADER_LEN: usize = 16;

pub const OP_REPLY: i32 = 1;
pub const OP_UPDATE: i32 = 2001;
pub const OP_INSERT: i32 = 2002;
pub const OP_RESERVED: i32 = 2003;
pub const OP_QUERY: i32 = 2004;
pub const OP_GET_MORE: i32 = 2005;
pub const OP_DELETE: i32 = 2006;
pub const OP_KILL_CURSORS: i32 = 2007;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;

/// OP_MSG flag bits. Bits 0-15 are "required": a receiver must refuse ones it does not know.
pub const FLAG_CHECKSUM_PRESENT: u32 = 1;
pub const FLAG_MORE_TO_COME: u32 = 1 << 1;
pub const FLAG_EXHAUST_ALLOWED: u32 = 1 << 16;
const KNOWN_FLAGS: u32 = FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME | FLAG_EXHAUST_ALLOWED;
const REQUIRED_FLAGS_MASK: u32 = 0xFFFF;

/// OP_QUERY flag bits the server may look at.
pub const QUERY_FLAG_SECONDARY_OK: u32 = 1 << 2;
pub const QUERY_FLAG_EXHAUST: u32 = 1 << 6;
/// OP_REPLY responseFlags.
pub const REPLY_FLAG_CURSOR_NOT_FOUND: i32 = 1;
pub const REPLY_FLAG_QUERY_FAILURE: i32 = 1 << 1;
pub const REPLY_FLAG_AWAIT_CAPABLE: i32 = 1 << 3;

/// How much of a body is allocated before its bytes have arrived.
const READ_CHUNK: usize = 64 * 1024;

/// The standard message header; all fields little-endian int32 on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let f = |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Header { length: f(0), request_id: f(4), response_to: f(8), op_code: f(12) }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.length.to_le_bytes());
        out[4..8].copy_from_slice(&self.request_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.response_to.to_le_bytes());
        out[12..16].copy_from_slice(&self.op_code.to_le_bytes());
        out
    }
}

/// Everything that can go wrong reading or parsing a request. See the module doc for which
/// variants close the connection.
#[derive(Debug)]
pub enum WireError {
    /// Socket error, or EOF in the middle of a frame.
    Io(io::Error),
    /// Clean EOF before the first byte of a header.
    Closed,
    /// messageLength outside 16..=MAX_MESSAGE_SIZE; the body was not read.
    BadLength(String),
    /// The frame was read but mongod would drop the connection over it.
    Fatal(String),
    /// The frame was read fully but its content is bad: reply with this error.
    Protocol(RequestError),
}

/// What is wrong with a fully read request, with the code mongod answers it with. Converts
/// into its message (`String`) or into a `MongoError` carrying the code.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
}

impl RequestError {
    pub fn to_mongo_error(&self) -> MongoError {
        MongoError::new(self.code, self.message.clone())
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<RequestError> for String {
    fn from(e: RequestError) -> String {
        e.message
    }
}

impl From<RequestError> for MongoError {
    fn from(e: RequestError) -> MongoError {
        MongoError::new(e.code, e.message)
    }
}

impl WireError {
    pub fn closes_connection(&self) -> bool {
        !matches!(self, WireError::Protocol(_))
    }

    /// The error to answer with, for errors that are answered.
    pub fn reply_error(&self) -> Option<MongoError> {
        match self {
            WireError::Protocol(e) => Some(e.to_mongo_error()),
            _ => None,
        }
    }

    fn protocol(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError::Protocol(RequestError { code, message: message.into() })
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "I/O error: {e}"),
            WireError::Closed => f.write_str("connection closed"),
            WireError::BadLength(m) => write!(f, "bad message length: {m}"),
            WireError::Fatal(m) => write!(f, "invalid message: {m}"),
            WireError::Protocol(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

impl From<BsonCheckError> for WireError {
    fn from(e: BsonCheckError) -> Self {
        let code = match e.kind {
            BsonCheckKind::Invalid => ErrorCode::InvalidBSON,
            BsonCheckKind::TooDeep => ErrorCode::Overflow,
        };
        WireError::protocol(code, e.message)
    }
}

/// Reads one whole message: the 16-byte header, then the body (`length - 16` bytes). The length
/// is validated before anything is allocated, and the body buffer grows only as bytes actually
/// arrive, so a client claiming 48 MB and sending 10 bytes costs us about 64 KiB.
pub fn read_message<R: Read>(r: &mut R) -> Result<(Header, Vec<u8>), WireError> {
    let mut hdr = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut hdr[got..]) {
            Ok(0) if got == 0 => return Err(WireError::Closed),
            Ok(0) => {
                return Err(WireError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a message header",
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    let header = Header::parse(&hdr);
    if header.length < HEADER_LEN as i32 || header.length as usize > MAX_MESSAGE_SIZE {
        return Err(WireError::BadLength(format!(
            "message length {} is invalid. Min {HEADER_LEN} Max: {MAX_MESSAGE_SIZE}",
            header.length
        )));
    }
    let mut body = Vec::new();
    read_body(r, header.length as usize - HEADER_LEN, &mut body)?;
    Ok((header, body))
}

/// Fills `buf` with exactly `n` bytes, growing it with the data received (doubling, capped at
/// `n`) rather than trusting `n` up front. Takes `buf` by reference so tests can see its capacity.
fn read_body<R: Read>(r: &mut R, n: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    while buf.len() < n {
        let start = buf.len();
        if buf.capacity() <= start {
            let target = n.min((start * 2).max(start + READ_CHUNK));
            buf.reserve_exact(target - start);
        }
        let want = (n - start).min(buf.capacity() - start);
        buf.resize(start + want, 0);
        match r.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a message",
                ));
            }
            Ok(k) => buf.truncate(start + k),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn le_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    le_i32(bytes, at).map(|v| v as u32)
}

/// Splits off the NUL-terminated string at the start of `bytes`: (string, bytes after the NUL).
fn cstring(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..nul], &bytes[nul + 1..]))
}

/// Takes the BSON document at the start of `bytes` by its length prefix, checking the prefix
/// against `max_size` and the bytes present. Returns (document bytes, rest).
fn take_doc<'a>(bytes: &'a [u8], max_size: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), WireError> {
    let len = le_i32(bytes, 0).ok_or_else(|| {
        WireError::protocol(ErrorCode::InvalidBSON, format!("{what}: no room for a BSON length"))
    })?;
    if len < 5 {
        return Err(WireError::protocol(
            ErrorCode::InvalidBSON,
            format!("{what}: BSON object size {len} is invalid"),
        ));
    }
    let len = len as usize;
    if len > max_size {
        return Err(WireError::protocol(
            ErrorCode::BSONObjectTooLarge,
            format!(
                "BSONObj size: {len} (0x{len:X}) is invalid. Size must be between 0 and {max_size}(16MB)"
            ),
        ));
    }
    if len > bytes.len() {
        return Err(WireError::protocol(
            ErrorCode::InvalidBSON,
            format!("{what}: BSON object of {len} bytes extends past the end of its section"),
        ));
    }
    Ok(bytes.split_at(len))
}

/// One OP_MSG section, as raw bytes (documents not yet decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section<'a> {
    /// Kind 0: the command document.
    Body(&'a [u8]),
    /// Kind 1: identifier plus zero or more documents.
    Sequence { identifier: &'a str, documents: Vec<&'a [u8]> },
}

/// A parsed OP_MSG request.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMsg {
    pub flags: u32,
    pub body: Document,
    /// Kind-1 sections in message order: (identifier, documents).
    pub sequences: Vec<(String, Vec<Document>)>,
}

impl OpMsg {
    pub fn checksum_present(&self) -> bool {
        self.flags & FLAG_CHECKSUM_PRESENT != 0
    }
    /// The client expects no reply.
    pub fn more_to_come(&self) -> bool {
        self.flags & FLAG_MORE_TO_COME != 0
    }
    pub fn exhaust_allowed(&self) -> bool {
        self.flags & FLAG_EXHAUST_ALLOWED != 0
    }
}

/// Table for CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), built at compile time.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Continues a CRC-32C over `data`: `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32C, the OP_MSG checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// The OP_MSG checksum covers the header and body minus the trailing 4 checksum bytes.
fn op_msg_checksum(header: &Header, body_without_crc: &[u8]) -> u32 {
    crc32c_append(crc32c(&header.to_bytes()), body_without_crc)
}

/// Checks flags and checksum and splits an OP_MSG body into raw sections; no document is
/// decoded. `header` must be the header read with `body` (the checksum covers it).
pub fn split_op_msg<'a>(header: &Header, body: &'a [u8]) -> Result<(u32, Vec<Section<'a>>), WireError> {
    let flags = le_u32(body, 0)
        .ok_or_else(|| WireError::protocol(ErrorCode::Overflow, "OP_MSG too short to hold its flags"))?;
    if flags & REQUIRED_FLAGS_MASK & !KNOWN_FLAGS != 0 {
        return Err(WireError::Fatal(format!("Message contains illegal flags value: Ob{flags:032b}")));
    }
    let mut end = body.len();
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        if body.len() <= 8 {
            return Err(WireError::protocol(
                ErrorCode::ProtocolError,
                "Invalid message size for an OpMsg containing a checksum",
            ));
        }
        end -= 4;
        let sent = le_u32(body, end).unwrap_or(0);
        if sent != op_msg_checksum(header, &body[..end]) {
            return Err(WireError::Fatal("OP_MSG checksum does not match contents".into()));
        }
    }
    let mut rest = &body[4..end];
    let mut sections = Vec::new();
    let mut have_body = false;
    let mut sequence_count = 0;
    while let Some((&kind, after_kind)) = rest.split_first() {
        match kind {
            0 => {
                if have_body {
                    return Err(WireError::protocol(
                        ErrorCode::ProtocolError,
                        "Multiple body sections in message",
                    ));
                }
                have_body = true;
                let (doc, after) = take_doc(after_kind, MAX_COMMAND_SIZE, "OP_MSG body")?;
                sections.push(Section::Body(doc));
                rest = after;
            }
            1 => {
                // mongod accepts at most two sequences and drops the connection otherwise.
                if sequence_count >= 2 {
                    return Err(WireError::Fatal("Too many document sequences in OP_MSG".into()));
                }
                sequence_count += 1;
                let size = le_i32(after_kind, 0).ok_or_else(|| {
                    WireError::protocol(ErrorCode::Overflow, "OP_MSG document sequence: no room for its size")
                })?;
                if size < 4 || size as usize > after_kind.len() {
                    return Err(WireError::protocol(
                        ErrorCode::Overflow,
                        format!("OP_MSG document sequence size {size} is invalid or extends past the end of the message"),
                    ));
                }
                let (seq, after) = after_kind.split_at(size as usize);
                rest = after;
                let (ident, mut docs) = cstring(&seq[4..]).ok_or_else(|| {
                    WireError::protocol(
                        ErrorCode::Overflow,
                        "OP_MSG document sequence identifier is not terminated",
                    )
                })?;
                let identifier = std::str::from_utf8(ident).map_err(|_| {
                    WireError::protocol(
                        ErrorCode::InvalidBSON,
                        "OP_MSG document sequence identifier is not valid UTF-8",
                    )
                })?;
                let duplicate = sections
                    .iter()
                    .any(|s| matches!(s, Section::Sequence { identifier: i, .. } if *i == identifier));
                if duplicate {
                    return Err(WireError::protocol(
                        ErrorCode::ProtocolError,
                        format!("Duplicate document sequence: {identifier}"),
                    ));
                }
                let mut documents = Vec::new();
                while !docs.is_empty() {
                    if documents.len() >= MAX_SEQUENCE_DOCUMENTS {
                        return Err(WireError::protocol(
                            ErrorCode::InvalidLength,
                            format!(
                                "Write batch sizes must be between 1 and {MAX_SEQUENCE_DOCUMENTS}. Got more than \
                                 {MAX_SEQUENCE_DOCUMENTS} operations."
                            ),
                        ));
                    }
                    let (doc, after_doc) = take_doc(docs, MAX_COMMAND_SIZE, "OP_MSG document sequence")?;
                    documents.push(doc);
                    docs = after_doc;
                }
                sections.push(Section::Sequence { identifier, documents });
            }
            other => {
                return Err(WireError::protocol(
                    ErrorCode::ProtocolError,
                    format!("Unknown section kind {other}"),
                ));
            }
        }
    }
    if !have_body {
        return Err(WireError::protocol(ErrorCode::ProtocolError, "OP_MSG messages must have a body"));
    }
    Ok((flags, sections))
}

/// True if the dotted `path` names a field of `doc`, descending through sub-documents.
fn has_path(doc: &Document, path: &str) -> bool {
    let mut cur = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        match cur.get(part) {
            None => return false,
            Some(_) if parts.peek().is_none() => return true,
            Some(bson::Bson::Document(d)) => cur = d,
            Some(_) => return false,
        }
    }
    false
}

/// Parses an OP_MSG body (everything after the header): see `split_op_msg` for framing checks;
/// every document is then validated and decoded with `MAX_BSON_DEPTH`.
pub fn parse_op_msg(header: &Header, body: &[u8]) -> Result<OpMsg, WireError> {
    let (flags, sections) = split_op_msg(header, body)?;
    let mut command = None;
    let mut sequences = Vec::new();
    for section in sections {
        match section {
            Section::Body(raw) => command = Some(bsoncheck::parse_document(raw, MAX_BSON_DEPTH)?),
            Section::Sequence { identifier, documents } => {
                let mut docs = Vec::with_capacity(documents.len());
                for raw in documents {
                    docs.push(bsoncheck::parse_document(raw, MAX_BSON_DEPTH)?);
                }
                sequences.push((identifier.to_string(), docs));
            }
        }
    }
    // split_op_msg guarantees a body; stay panic-free regardless.
    let body = command
        .ok_or_else(|| WireError::protocol(ErrorCode::ProtocolError, "OP_MSG messages must have a body"))?;
    for (identifier, _) in &sequences {
        if has_path(&body, identifier) {
            return Err(WireError::protocol(
                ErrorCode::ProtocolError,
                format!("Duplicate field between body and document sequence {identifier}"),
            ));
        }
    }
    Ok(OpMsg { flags, body, sequences })
}

/// A parsed legacy OP_QUERY (still used for the first `hello`/`isMaster` of old drivers).
#[derive(Debug, Clone, PartialEq)]
pub struct OpQuery {
    pub flags: u32,
    pub full_collection_name: String,
    pub number_to_skip: i32,
    pub number_to_return: i32,
    pub query: Document,
    pub return_fields_selector: Option<Document>,
}

/// Parses an OP_QUERY body: flags, cstring namespace, skip, return, query doc, optional
/// projection doc, and nothing after it.
pub fn parse_op_query(body: &[u8]) -> Result<OpQuery, WireError> {
    let flags =
        le_u32(body, 0).ok_or_else(|| WireError::protocol(ErrorCode::Overflow, "OP_QUERY truncated"))?;
    let (ns, rest) = cstring(body.get(4..).unwrap_or(&[]))
        .ok_or_else(|| WireError::protocol(ErrorCode::Overflow, "OP_QUERY namespace is not terminated"))?;
    let full_collection_name = std::str::from_utf8(ns)
        .map_err(|_| {
            WireError::protocol(ErrorCode::InvalidNamespace, "OP_QUERY namespace is not valid UTF-8")
        })?
        .to_string();
    let number_to_skip =
        le_i32(rest, 0).ok_or_else(|| WireError::protocol(ErrorCode::Overflow, "OP_QUERY truncated"))?;
    let number_to_return =
        le_i32(rest, 4).ok_or_else(|| WireError::protocol(ErrorCode::Overflow, "OP_QUERY truncated"))?;
    let (query_raw, rest) = take_doc(&rest[8..], MAX_COMMAND_SIZE, "OP_QUERY query")?;
    let query = bsoncheck::parse_document(query_raw, MAX_BSON_DEPTH)?;
    let return_fields_selector = if rest.is_empty() {
        None
    } else {
        let (proj_raw, rest) = take_doc(rest, MAX_COMMAND_SIZE, "OP_QUERY returnFieldsSelector")?;
        if !rest.is_empty() {
            return Err(WireError::protocol(
                ErrorCode::InvalidBSON,
                "OP_QUERY has trailing bytes after its documents",
            ));
        }
        Some(bsoncheck::parse_document(proj_raw, MAX_BSON_DEPTH)?)
    };
    Ok(OpQuery {
        flags,
        full_collection_name,
        number_to_skip,
        number_to_return,
        query,
        return_fields_selector,
    })
}

/// The fixed prefix of an OP_COMPRESSED body. We never decompress (no compressor is
/// advertised); this only tells the server which request it is refusing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpCompressed {
    pub original_op_code: i32,
    pub uncompressed_size: i32,
    pub compressor_id: u8,
}

pub fn parse_op_compressed(body: &[u8]) -> Result<OpCompressed, WireError> {
    let truncated = || WireError::protocol(ErrorCode::Overflow, "OP_COMPRESSED truncated");
    Ok(OpCompressed {
        original_op_code: le_i32(body, 0).ok_or_else(truncated)?,
        uncompressed_size: le_i32(body, 4).ok_or_else(truncated)?,
        compressor_id: *body.get(8).ok_or_else(truncated)?,
    })
}

/// Appends `doc`'s BSON to `out`, refusing documents over `max_size`.
fn append_doc(out: &mut Vec<u8>, doc: &Document, max_size: usize) -> Result<(), MongoError> {
    let start = out.len();
    doc.to_writer(&mut *out)
        .map_err(|e| MongoError::internal(format!("could not serialise reply document: {e}")))?;
    let size = out.len() - start;
    if size > max_size {
        out.truncate(start);
        return Err(MongoError::new(
            ErrorCode::BSONObjectTooLarge,
            format!(
                "BSONObj size: {size} (0x{size:X}) is invalid. Size must be between 0 and {max_size}(16MB)"
            ),
        ));
    }
    Ok(())
}

/// Writes the final length into the header and checks the frame limit.
fn finish_frame(mut frame: Vec<u8>) -> Result<Vec<u8>, MongoError> {
    if frame.len() > MAX_MESSAGE_SIZE {
        return Err(MongoError::new(
            ErrorCode::BSONObjectTooLarge,
            format!("reply of {} bytes exceeds the maximum message size {MAX_MESSAGE_SIZE}", frame.len()),
        ));
    }
    let len = frame.len() as i32;
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

fn frame_start(request_id: i32, response_to: i32, op_code: i32) -> Vec<u8> {
    let mut frame = Vec::with_capacity(256);
    frame.extend_from_slice(&Header { length: 0, request_id, response_to, op_code }.to_bytes());
    frame
}

/// Encodes an OP_MSG with a body and optional kind-1 sequences. Appends a CRC-32C when `flags`
/// has `FLAG_CHECKSUM_PRESENT`. Fails (never panics) on unserialisable or oversized documents.
pub fn encode_op_msg_with_sequences(
    request_id: i32,
    response_to: i32,
    flags: u32,
    body: &Document,
    sequences: &[(String, Vec<Document>)],
) -> Result<Vec<u8>, MongoError> {
    let mut frame = frame_start(request_id, response_to, OP_MSG);
    frame.extend_from_slice(&flags.to_le_bytes());
    frame.push(0);
    append_doc(&mut frame, body, MAX_COMMAND_SIZE)?;
    for (identifier, docs) in sequences {
        if identifier.as_bytes().contains(&0) {
            return Err(MongoError::internal("document sequence identifier contains a NUL byte"));
        }
        frame.push(1);
        let size_at = frame.len();
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(identifier.as_bytes());
        frame.push(0);
        for d in docs {
            append_doc(&mut frame, d, MAX_COMMAND_SIZE)?;
            if frame.len() > MAX_MESSAGE_SIZE {
                return finish_frame(frame); // reports the size error
            }
        }
        let size = i32::try_from(frame.len() - size_at)
            .map_err(|_| MongoError::internal("document sequence too large"))?;
        frame[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
    }
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        frame.extend_from_slice(&[0; 4]);
    }
    let mut frame = finish_frame(frame)?;
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        let crc_at = frame.len() - 4;
        let crc = crc32c(&frame[..crc_at]);
        frame[crc_at..].copy_from_slice(&crc.to_le_bytes());
    }
    Ok(frame)
}

/// Encodes a reply OP_MSG carrying `body`; returns the whole frame, or the error to answer
/// with instead (`InternalError` if unserialisable, `BSONObjectTooLarge` if over
/// `MAX_COMMAND_SIZE`).
pub fn encode_op_msg(
    request_id: i32,
    response_to: i32,
    flags: u32,
    body: &Document,
) -> Result<Vec<u8>, MongoError> {
    encode_op_msg_with_sequences(request_id, response_to, flags, body, &[])
}

/// An OP_MSG carrying `err.to_reply()`; cannot fail.
pub fn encode_error_op_msg(request_id: i32, response_to: i32, err: &MongoError) -> Vec<u8> {
    encode_op_msg(request_id, response_to, 0, &err.to_reply())
        .unwrap_or_else(|_| minimal_frame(request_id, response_to, OP_MSG))
}

/// `{ok: 0.0}` built by hand: the last resort if even an error document cannot be encoded.
fn minimal_frame(request_id: i32, response_to: i32, op_code: i32) -> Vec<u8> {
    let mut frame = frame_start(request_id, response_to, op_code);
    if op_code == OP_MSG {
        frame.extend_from_slice(&[0, 0, 0, 0, 0]); // flags, kind 0
    } else {
        frame.extend_from_slice(&[0; 16]); // responseFlags, cursorID, startingFrom
        frame.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    }
    frame.extend_from_slice(&[17, 0, 0, 0, 0x01, b'o', b'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let len = frame.len() as i32;
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame
}

/// `encode_op_msg` that never fails: if `body` cannot be encoded, the frame carries the
/// matching error reply instead, so the client always gets an answer.
pub fn encode_op_msg_or_error(request_id: i32, response_to: i32, flags: u32, body: &Document) -> Vec<u8> {
    encode_op_msg(request_id, response_to, flags, body)
        .unwrap_or_else(|e| encode_error_op_msg(request_id, response_to, &e))
}

/// Encodes an OP_REPLY (the answer to OP_QUERY); fails on unserialisable or oversized documents.
pub fn encode_op_reply(
    request_id: i32,
    response_to: i32,
    response_flags: i32,
    cursor_id: i64,
    starting_from: i32,
    docs: &[Document],
) -> Result<Vec<u8>, MongoError> {
    let mut frame = frame_start(request_id, response_to, OP_REPLY);
    frame.extend_from_slice(&response_flags.to_le_bytes());
    frame.extend_from_slice(&cursor_id.to_le_bytes());
    frame.extend_from_slice(&starting_from.to_le_bytes());
    let count = i32::try_from(docs.len()).map_err(|_| MongoError::internal("too many documents in reply"))?;
    frame.extend_from_slice(&count.to_le_bytes());
    for d in docs {
        append_doc(&mut frame, d, MAX_COMMAND_SIZE)?;
        if frame.len() > MAX_MESSAGE_SIZE {
            break; // finish_frame reports it
        }
    }
    finish_frame(frame)
}

/// `encode_op_reply` that never fails: on error the reply carries one error document instead.
pub fn encode_op_reply_or_error(
    request_id: i32,
    response_to: i32,
    response_flags: i32,
    cursor_id: i64,
    starting_from: i32,
    docs: &[Document],
) -> Vec<u8> {
    encode_op_reply(request_id, response_to, response_flags, cursor_id, starting_from, docs).unwrap_or_else(
        |e| {
            encode_op_reply(request_id, response_to, response_flags, 0, 0, &[e.to_reply()])
                .unwrap_or_else(|_| minimal_frame(request_id, response_to, OP_REPLY))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    fn read(frame: &[u8]) -> Result<(Header, Vec<u8>), WireError> {
        read_message(&mut &frame[..])
    }

    fn parse(frame: &[u8]) -> Result<OpMsg, WireError> {
        let (h, body) = read(frame)?;
        assert_eq!(h.op_code, OP_MSG);
        parse_op_msg(&h, &body)
    }

    fn bson_bytes(d: &Document) -> Vec<u8> {
        let mut v = Vec::new();
        d.to_writer(&mut v).unwrap();
        v
    }

    /// Builds an OP_MSG frame from raw body bytes (after the header), fixing the length.
    fn raw_frame(body: &[u8]) -> Vec<u8> {
        let mut f = Header {
            length: (HEADER_LEN + body.len()) as i32,
            request_id: 7,
            response_to: 0,
            op_code: OP_MSG,
        }
        .to_bytes()
        .to_vec();
        f.extend_from_slice(body);
        f
    }

    fn expect_protocol(r: Result<OpMsg, WireError>, code: ErrorCode) {
        match r {
            Err(WireError::Protocol(e)) => assert_eq!(e.code, code, "{e}"),
            other => panic!("expected Protocol({code}), got {other:?}"),
        }
    }

    #[test]
    fn request_error_converts_for_replies() {
        let e = RequestError { code: ErrorCode::Overflow, message: "too deep".into() };
        // Usable wherever a message is expected, and as a MongoError with its code.
        let as_msg = MongoError::new(ErrorCode::InvalidBSON, e.clone());
        assert_eq!(as_msg.message, "too deep");
        let m: MongoError = e.clone().into();
        assert_eq!(m.code, ErrorCode::Overflow);
        let w = WireError::Protocol(e);
        assert!(!w.closes_connection());
        assert_eq!(w.reply_error().map(|m| m.code), Some(ErrorCode::Overflow));
        assert!(WireError::Fatal("x".into()).closes_connection());
        assert!(WireError::Closed.closes_connection());
    }

    fn expect_fatal(r: Result<OpMsg, WireError>) {
        match r {
            Err(e @ WireError::Fatal(_)) => assert!(e.closes_connection()),
            other => panic!("expected Fatal, got {other:?}"),
        }
    }

    #[test]
    fn header_round_trip() {
        let h = Header { length: 100, request_id: -5, response_to: 77, op_code: OP_MSG };
        assert_eq!(Header::parse(&h.to_bytes()), h);
        assert_eq!(&h.to_bytes()[..4], &[100, 0, 0, 0]);
    }

    #[test]
    fn op_msg_round_trip() {
        let body = doc! { "ping": 1, "$db": "admin", "nested": { "a": [1, 2, 3] } };
        let frame = encode_op_msg_or_error(42, 9, 0, &body);
        let (h, raw) = read(&frame).unwrap();
        assert_eq!(h, Header { length: frame.len() as i32, request_id: 42, response_to: 9, op_code: OP_MSG });
        let m = parse_op_msg(&h, &raw).unwrap();
        assert_eq!(m.body, body);
        assert_eq!(m.flags, 0);
        assert!(m.sequences.is_empty());
        // Optional flag bits (16-31) are accepted.
        let m = parse(&encode_op_msg_or_error(1, 0, FLAG_EXHAUST_ALLOWED | 1 << 20, &body)).unwrap();
        assert!(m.exhaust_allowed());
        assert!(parse(&encode_op_msg_or_error(1, 0, FLAG_MORE_TO_COME, &body)).unwrap().more_to_come());
    }

    #[test]
    fn kind1_sequences() {
        let body = doc! { "insert": "c", "$db": "test" };
        let docs: Vec<Document> = (0..5).map(|i| doc! { "_id": i }).collect();
        let seqs = vec![("documents".to_string(), docs.clone()), ("empty".to_string(), vec![])];
        let frame = encode_op_msg_with_sequences(1, 0, 0, &body, &seqs).unwrap();
        let m = parse(&frame).unwrap();
        assert_eq!(m.body, body);
        assert_eq!(m.sequences, seqs);

        // Sequence before the body is legal too.
        let mut b = 0u32.to_le_bytes().to_vec();
        let mut seq = Vec::new();
        seq.extend_from_slice(b"docs\0");
        seq.extend_from_slice(&bson_bytes(&doc! { "a": 1 }));
        b.push(1);
        b.extend_from_slice(&((seq.len() + 4) as i32).to_le_bytes());
        b.extend_from_slice(&seq);
        b.push(0);
        b.extend_from_slice(&bson_bytes(&body));
        let m = parse(&raw_frame(&b)).unwrap();
        assert_eq!(m.sequences, vec![("docs".to_string(), vec![doc! { "a": 1 }])]);
    }

    fn seq_section(ident: &str, docs: &[Document]) -> Vec<u8> {
        let mut seq = ident.as_bytes().to_vec();
        seq.push(0);
        for d in docs {
            seq.extend_from_slice(&bson_bytes(d));
        }
        let mut out = vec![1];
        out.extend_from_slice(&((seq.len() + 4) as i32).to_le_bytes());
        out.extend_from_slice(&seq);
        out
    }

    fn body_section(d: &Document) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&bson_bytes(d));
        out
    }

    fn msg(flags: u32, sections: &[Vec<u8>]) -> Vec<u8> {
        let mut b = flags.to_le_bytes().to_vec();
        for s in sections {
            b.extend_from_slice(s);
        }
        raw_frame(&b)
    }

    #[test]
    fn section_rules() {
        let ping = doc! { "ping": 1 };
        expect_protocol(parse(&msg(0, &[])), ErrorCode::ProtocolError); // no body
        expect_protocol(parse(&msg(0, &[seq_section("d", &[])])), ErrorCode::ProtocolError);
        expect_protocol(
            parse(&msg(0, &[body_section(&ping), body_section(&ping)])),
            ErrorCode::ProtocolError,
        );
        expect_protocol(
            parse(&msg(0, &[body_section(&ping), seq_section("d", &[]), seq_section("d", &[])])),
            ErrorCode::ProtocolError,
        );
        expect_fatal(parse(&msg(
            0,
            &[body_section(&ping), seq_section("a", &[]), seq_section("b", &[]), seq_section("c", &[])],
        )));
        expect_protocol(
            parse(&msg(0, &[body_section(&ping), vec![2, 0, 0, 0, 0]])),
            ErrorCode::ProtocolError,
        );
        // Sequence name clashing with a body field, also through a dotted path.
        expect_protocol(
            parse(&msg(0, &[body_section(&doc! { "ping": 1, "docs": [] }), seq_section("docs", &[])])),
            ErrorCode::ProtocolError,
        );
        expect_protocol(
            parse(&msg(0, &[body_section(&doc! { "a": { "b": [] } }), seq_section("a.b", &[])])),
            ErrorCode::ProtocolError,
        );
        assert!(parse(&msg(0, &[body_section(&doc! { "a": { "c": 1 } }), seq_section("a.b", &[])])).is_ok());
        // Flags too short.
        expect_protocol(parse_op_msg_raw(&[0, 0]), ErrorCode::Overflow);
    }

    fn parse_op_msg_raw(body: &[u8]) -> Result<OpMsg, WireError> {
        parse(&raw_frame(body))
    }

    #[test]
    fn required_flag_bits_close_the_connection() {
        for bit in 2..16 {
            expect_fatal(parse(&msg(1 << bit, &[body_section(&doc! { "ping": 1 })])));
        }
    }

    #[test]
    fn checksum_good_and_bad() {
        let body = doc! { "ping": 1 };
        let frame = encode_op_msg_or_error(3, 0, FLAG_CHECKSUM_PRESENT, &body);
        let m = parse(&frame).unwrap();
        assert!(m.checksum_present());
        assert_eq!(m.body, body);
        // Known CRC-32C vector, so the crate really is Castagnoli.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xE306_9283);
        // Any flipped bit, header included, breaks it.
        for at in [1usize, 5, 9, 20, frame.len() - 6, frame.len() - 1] {
            let mut bad = frame.clone();
            bad[at] ^= 0x10;
            if at < 4 {
                continue; // length change is a framing error instead
            }
            expect_fatal(parse(&bad));
        }
        // Checksum flag with no room for a checksum.
        expect_protocol(parse_op_msg_raw(&[1, 0, 0, 0, 0, 0, 0, 0]), ErrorCode::ProtocolError);
        expect_protocol(parse_op_msg_raw(&[1, 0, 0, 0]), ErrorCode::ProtocolError);
    }

    #[test]
    fn lying_lengths() {
        let frame = encode_op_msg_or_error(1, 0, 0, &doc! { "ping": 1 });
        for len in [0i32, 15, -1, i32::MIN, (MAX_MESSAGE_SIZE + 1) as i32, i32::MAX] {
            let mut f = frame.clone();
            f[..4].copy_from_slice(&len.to_le_bytes());
            assert!(matches!(read(&f), Err(WireError::BadLength(_))), "len {len}");
        }
        // Longer than the data: EOF inside the body.
        let mut f = frame.clone();
        f[..4].copy_from_slice(&((frame.len() + 1) as i32).to_le_bytes());
        assert!(matches!(read(&f), Err(WireError::Io(ref e)) if e.kind() == io::ErrorKind::UnexpectedEof));
        // Empty stream is a clean close; a partial header is not.
        assert!(matches!(read(&[]), Err(WireError::Closed)));
        assert!(matches!(read(&frame[..7]), Err(WireError::Io(_))));
        // Exactly 16: empty body.
        let h = Header { length: 16, request_id: 1, response_to: 0, op_code: OP_MSG };
        let (_, body) = read(&h.to_bytes()).unwrap();
        assert!(body.is_empty());
        expect_protocol(parse_op_msg(&h, &body), ErrorCode::Overflow);
    }

    #[test]
    fn claimed_size_is_not_allocated_up_front() {
        // 48 MB claimed, 10 bytes sent.
        let mut data =
            Header { length: MAX_MESSAGE_SIZE as i32, request_id: 1, response_to: 0, op_code: OP_MSG }
                .to_bytes()
                .to_vec();
        data.extend_from_slice(&[0; 10]);
        assert!(matches!(read(&data), Err(WireError::Io(_))));
        let mut buf = Vec::new();
        assert!(read_body(&mut &data[16..], MAX_MESSAGE_SIZE - 16, &mut buf).is_err());
        assert!(buf.capacity() <= READ_CHUNK, "allocated {}", buf.capacity());
        // Growth follows the data: 1 MB received -> a few MB of capacity at most.
        let big = vec![0u8; 1 << 20];
        assert!(read_body(&mut &big[..], MAX_MESSAGE_SIZE, &mut buf).is_err());
        assert!(buf.capacity() <= 4 << 20, "allocated {}", buf.capacity());
        // A reader returning one byte at a time still assembles the body.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || out.is_empty() {
                    return Ok(0);
                }
                out[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let frame = encode_op_msg_or_error(1, 0, 0, &doc! { "ping": 1 });
        let (h, body) = read_message(&mut Trickle(&frame)).unwrap();
        assert_eq!(parse_op_msg(&h, &body).unwrap().body, doc! { "ping": 1 });
    }

    #[test]
    fn truncated_and_overreaching_sections() {
        let ping = doc! { "ping": 1 };
        let good = msg(0, &[body_section(&ping), seq_section("docs", &[doc! { "a": 1 }])]);
        let (h, body) = read(&good).unwrap();
        // Every truncation of the body (with a consistent header) is refused without panic.
        let body_only = 4 + body_section(&ping).len(); // a complete message on its own
        for cut in (0..body.len()).filter(|&c| c != body_only) {
            let b = &body[..cut];
            let r = parse_op_msg(&Header { length: (HEADER_LEN + cut) as i32, ..h }, b);
            assert!(r.is_err(), "cut {cut}");
        }
        // Body length pointing past the end.
        let mut b = body.clone();
        b[5] = 0xFF;
        expect_protocol(parse_op_msg(&h, &b), ErrorCode::InvalidBSON);
        // Body claiming more than MAX_COMMAND_SIZE.
        let mut b = body.clone();
        b[5..9].copy_from_slice(&((MAX_COMMAND_SIZE + 1) as i32).to_le_bytes());
        expect_protocol(parse_op_msg(&h, &b), ErrorCode::BSONObjectTooLarge);
        // Sequence size past the end, below 4, and a document overrunning the sequence.
        let seq_at = 4 + 1 + bson_bytes(&ping).len() + 1;
        for bad in [1000i32, 3, -7] {
            let mut b = body.clone();
            b[seq_at..seq_at + 4].copy_from_slice(&bad.to_le_bytes());
            expect_protocol(parse_op_msg(&h, &b), ErrorCode::Overflow);
        }
        let mut b = body.clone();
        let size = le_i32(&b, seq_at).unwrap();
        b[seq_at..seq_at + 4].copy_from_slice(&(size - 1).to_le_bytes());
        assert!(matches!(parse_op_msg(&h, &b), Err(WireError::Protocol(_))));
        // Identifier without a NUL.
        let mut raw = 0u32.to_le_bytes().to_vec();
        raw.extend_from_slice(&body_section(&ping));
        raw.extend_from_slice(&[1, 7, 0, 0, 0, b'a', b'b', b'c']);
        expect_protocol(parse_op_msg_raw(&raw), ErrorCode::Overflow);
    }

    #[test]
    fn bson_faults_are_answered_with_mongod_codes() {
        // Too deep: 201 levels below the top.
        let mut d = doc! {};
        for _ in 0..=MAX_BSON_DEPTH {
            d = doc! { "a": d };
        }
        let frame = msg(0, &[body_section(&d)]);
        let r = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || parse(&frame).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        match r {
            Err(WireError::Protocol(e)) => {
                assert_eq!(e.code, ErrorCode::Overflow);
                assert!(e.message.contains("maximum nested object depth: 200"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        // Invalid UTF-8 inside the body.
        let mut b = body_section(&doc! { "s": "ab" });
        let n = b.len();
        b[n - 3] = 0xFF;
        expect_protocol(parse(&msg(0, &[b])), ErrorCode::InvalidBSON);
    }

    #[test]
    fn sequence_document_count_is_bounded() {
        let empty = [5u8, 0, 0, 0, 0];
        let mut seq = b"documents\0".to_vec();
        for _ in 0..=MAX_SEQUENCE_DOCUMENTS {
            seq.extend_from_slice(&empty);
        }
        let mut raw = 0u32.to_le_bytes().to_vec();
        raw.extend_from_slice(&body_section(&doc! { "insert": "c" }));
        raw.push(1);
        raw.extend_from_slice(&((seq.len() + 4) as i32).to_le_bytes());
        raw.extend_from_slice(&seq);
        expect_protocol(parse_op_msg_raw(&raw), ErrorCode::InvalidLength);
    }

    #[test]
    fn op_query_parse() {
        let q = doc! { "isMaster": 1, "client": { "driver": "x" } };
        let proj = doc! { "a": 1 };
        let mut body = 4u32.to_le_bytes().to_vec();
        body.extend_from_slice(b"admin.$cmd\0");
        body.extend_from_slice(&0i32.to_le_bytes());
        body.extend_from_slice(&(-1i32).to_le_bytes());
        body.extend_from_slice(&bson_bytes(&q));
        let r = parse_op_query(&body).unwrap();
        assert_eq!(
            r,
            OpQuery {
                flags: 4,
                full_collection_name: "admin.$cmd".into(),
                number_to_skip: 0,
                number_to_return: -1,
                query: q.clone(),
                return_fields_selector: None
            }
        );
        let mut with_proj = body.clone();
        with_proj.extend_from_slice(&bson_bytes(&proj));
        assert_eq!(parse_op_query(&with_proj).unwrap().return_fields_selector, Some(proj));
        let mut trailing = with_proj.clone();
        trailing.push(0);
        assert!(parse_op_query(&trailing).is_err());
        for cut in 0..body.len() {
            assert!(parse_op_query(&body[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn op_compressed_prefix() {
        let mut b = OP_MSG.to_le_bytes().to_vec();
        b.extend_from_slice(&100i32.to_le_bytes());
        b.push(2);
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            parse_op_compressed(&b).unwrap(),
            OpCompressed { original_op_code: OP_MSG, uncompressed_size: 100, compressor_id: 2 }
        );
        assert!(parse_op_compressed(&b[..8]).is_err());
    }

    #[test]
    fn op_reply_encoding() {
        let docs = vec![doc! { "ismaster": true, "ok": 1.0 }, doc! { "x": 1 }];
        let f = encode_op_reply_or_error(5, 4, REPLY_FLAG_AWAIT_CAPABLE, 99, 3, &docs);
        let (h, body) = read(&f).unwrap();
        assert_eq!(h, Header { length: f.len() as i32, request_id: 5, response_to: 4, op_code: OP_REPLY });
        assert_eq!(le_i32(&body, 0), Some(REPLY_FLAG_AWAIT_CAPABLE));
        assert_eq!(i64::from_le_bytes(body[4..12].try_into().unwrap()), 99);
        assert_eq!(le_i32(&body, 12), Some(3));
        assert_eq!(le_i32(&body, 16), Some(2));
        let mut rest = &body[20..];
        for d in &docs {
            let (raw, after) = take_doc(rest, MAX_COMMAND_SIZE, "t").unwrap();
            assert_eq!(&bsoncheck::parse_document(raw, 10).unwrap(), d);
            rest = after;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn encoding_failures_become_error_replies() {
        // A key with a NUL cannot be serialised.
        let mut bad = Document::new();
        bad.insert("a\0b", 1);
        let m = parse(&encode_op_msg_or_error(1, 2, 0, &bad)).unwrap();
        assert_eq!(m.body.get_f64("ok").unwrap(), 0.0);
        assert_eq!(m.body.get_i32("code").unwrap(), ErrorCode::InternalError.code());
        // Oversized document.
        let big = doc! { "s": "x".repeat(MAX_COMMAND_SIZE) };
        let m = parse(&encode_op_msg_or_error(1, 2, 0, &big)).unwrap();
        assert_eq!(m.body.get_i32("code").unwrap(), ErrorCode::BSONObjectTooLarge.code());
        let f = encode_op_reply_or_error(1, 2, 0, 7, 0, &[bad]);
        let (_, body) = read(&f).unwrap();
        assert_eq!(le_i32(&body, 16), Some(1));
        // The hand-built fallbacks are well-formed.
        for op in [OP_MSG, OP_REPLY] {
            let f = minimal_frame(1, 2, op);
            let (h, body) = read(&f).unwrap();
            let doc_at = if op == OP_MSG { 5 } else { 20 };
            assert_eq!(h.op_code, op);
            assert_eq!(bsoncheck::parse_document(&body[doc_at..], 1).unwrap(), doc! { "ok": 0.0 });
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let seeds = [
            encode_op_msg_with_sequences(
                1,
                0,
                FLAG_CHECKSUM_PRESENT,
                &doc! { "insert": "c", "$db": "d" },
                &[("documents".into(), vec![doc! { "_id": 1, "a": [1, { "b": 2 }] }])],
            )
            .unwrap(),
            encode_op_msg_with_sequences(
                1,
                0,
                0,
                &doc! { "find": "c", "filter": { "a": { "$gt": 1 } } },
                &[],
            )
            .unwrap(),
            msg(0, &[seq_section("a", &[doc! {}]), body_section(&doc! { "x": 1 }), seq_section("b", &[])]),
        ];
        let mut parsed = 0;
        for i in 0..30_000 {
            let mut f = seeds[i % seeds.len()].clone();
            match rng.below(5) {
                0 => {
                    for _ in 0..=rng.below(3) {
                        let at = rng.below(f.len());
                        f[at] = rng.next() as u8;
                    }
                }
                1 => f.truncate(rng.below(f.len())),
                2 => {
                    // Mutate the body only, keep the header consistent.
                    let at = 16 + rng.below(f.len() - 16);
                    f[at] ^= 1 << rng.below(8);
                }
                3 => {
                    let at = 16 + rng.below(f.len() - 20);
                    let v = [0i32, 3, 4, 5, -1, i32::MAX, i32::MIN, 1 << 24][rng.below(8)];
                    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {
                    let n = rng.below(80);
                    f = (0..n).map(|_| rng.next() as u8).collect();
                    if n >= 4 && rng.below(2) == 0 {
                        f[..4].copy_from_slice(&(n as i32).to_le_bytes());
                    }
                }
            }
            if let Ok((h, body)) = read(&f) {
                if parse_op_msg(&h, &body).is_ok() {
                    parsed += 1;
                }
                let _ = parse_op_query(&body);
                let _ = parse_op_compressed(&body);
            }
            let _ = parse_op_query(&f);
        }
        assert!(parsed > 100, "fuzzer never produced a parseable message ({parsed})");
    }
}
