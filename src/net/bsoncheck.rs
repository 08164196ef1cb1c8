//! Structural validation of untrusted BSON before it reaches the `bson` crate.
//!
//! The `bson` decoder is recursive and trusts a document's declared length when allocating, so a
//! hostile client could exhaust the stack with deep nesting or make it allocate what the length
//! field claims. `validate` walks the bytes with an explicit stack (no recursion), checks every
//! length against the bytes actually present and enforces a nesting limit; only documents that
//! pass are handed to `bson::Document::from_reader`.
//!
//! Depth is counted as mongod does: the top-level document is level 0, each embedded document,
//! array or code-with-scope scope one level deeper, and a value nested deeper than `max_depth`
//! levels is refused (mongod answers such a command with `Overflow`, "BSONObj exceeded maximum
//! nested object depth: 200").

use std::fmt;

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BsonCheckKind {
    /// Malformed bytes: mongod's `InvalidBSON` (22).
    Invalid,
    /// Nested deeper than allowed: mongod's `Overflow` (15).
    TooDeep,
}

/// A refused document: what kind of fault and a message fit for `errmsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsonCheckError {
    pub kind: BsonCheckKind,
    pub message: String,
}

impl BsonCheckError {
    fn invalid(message: impl Into<String>) -> Self {
        BsonCheckError { kind: BsonCheckKind::Invalid, message: message.into() }
    }
}

impl fmt::Display for BsonCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BsonCheckError {}

/// mongod's `maxBSONDepth` can be raised to at most 1000; `parse_document` never goes deeper,
/// whatever it is asked, because the `bson` crate's decoder recurses once per level.
pub const PARSE_DEPTH_CEILING: usize = 1000;

/// Smallest possible document: int32 length + terminating NUL.
const MIN_DOC_LEN: usize = 5;

/// Where an open document ends, and what must follow its terminator.
struct Frame {
    /// Index of the document's final (NUL) byte.
    end: usize,
    /// For a code-with-scope scope: the index just past the whole code-with-scope value, which
    /// must coincide with the end of the scope document.
    cws_end: Option<usize>,
}

fn read_i32(bytes: &[u8], pos: usize) -> Option<i32> {
    let b = bytes.get(pos..pos.checked_add(4)?)?;
    Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a NUL-terminated UTF-8 string in `bytes[pos..limit]`; returns the index just past the NUL.
fn read_cstring(bytes: &[u8], pos: usize, limit: usize, what: &str) -> Result<usize, BsonCheckError> {
    let region = bytes.get(pos..limit).unwrap_or(&[]);
    let nul = region
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| BsonCheckError::invalid(format!("unterminated {what}")))?;
    std::str::from_utf8(&region[..nul])
        .map_err(|_| BsonCheckError::invalid(format!("invalid UTF-8 in {what}")))?;
    Ok(pos + nul + 1)
}

/// Reads a length-prefixed BSON string ending at or before `limit`; returns the index past it.
fn read_string(bytes: &[u8], pos: usize, limit: usize, what: &str) -> Result<usize, BsonCheckError> {
    let len = read_i32(bytes, pos)
        .filter(|_| pos + 4 <= limit)
        .ok_or_else(|| BsonCheckError::invalid(format!("truncated {what} length")))?;
    if len < 1 {
        return Err(BsonCheckError::invalid(format!("invalid {what} length {len}")));
    }
    let start = pos + 4;
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= limit)
        .ok_or_else(|| BsonCheckError::invalid(format!("{what} length {len} exceeds its document")))?;
    if bytes.get(end - 1) != Some(&0) {
        return Err(BsonCheckError::invalid(format!("{what} is not NUL-terminated")));
    }
    std::str::from_utf8(&bytes[start..end - 1])
        .map_err(|_| BsonCheckError::invalid(format!("invalid UTF-8 in {what}")))?;
    Ok(end)
}

/// Checks that `bytes` is exactly one well-formed BSON document nested at most `max_depth`
/// levels deep. Iterative: hostile nesting cannot overflow the stack, and the explicit stack
/// never grows past `max_depth + 1` frames.
pub fn validate(bytes: &[u8], max_depth: usize) -> Result<(), BsonCheckError> {
    let declared =
        read_i32(bytes, 0).ok_or_else(|| BsonCheckError::invalid("document shorter than 4 bytes"))?;
    if declared < MIN_DOC_LEN as i32 || declared as usize != bytes.len() {
        return Err(BsonCheckError::invalid(format!(
            "document length field {declared} does not match the {} bytes given",
            bytes.len()
        )));
    }
    let mut stack = vec![Frame { end: bytes.len() - 1, cws_end: None }];
    let mut pos = 4;
    while let Some(top) = stack.last() {
        let end = top.end;
        let type_byte = *bytes.get(pos).ok_or_else(|| BsonCheckError::invalid("document truncated"))?;
        if type_byte == 0 {
            if pos != end {
                return Err(BsonCheckError::invalid("document terminator before its declared end"));
            }
            let cws_end = top.cws_end;
            stack.pop();
            pos += 1;
            if let Some(cws_end) = cws_end {
                if pos != cws_end {
                    return Err(BsonCheckError::invalid("code with scope length inconsistent"));
                }
            }
            continue;
        }
        if pos >= end {
            return Err(BsonCheckError::invalid("document not terminated by 0x00"));
        }
        // Every value must end at or before the document's terminator.
        pos = read_cstring(bytes, pos + 1, end, "element name")?;
        let fixed = |at: usize, n: usize| -> Result<usize, BsonCheckError> {
            at.checked_add(n)
                .filter(|&e| e <= end)
                .ok_or_else(|| BsonCheckError::invalid(format!("value of type 0x{type_byte:02x} truncated")))
        };
        pos = match type_byte {
            0x01 | 0x09 | 0x11 | 0x12 => fixed(pos, 8)?, // double, datetime, timestamp, int64
            0x10 => fixed(pos, 4)?,                      // int32
            0x07 => fixed(pos, 12)?,                     // ObjectId
            0x13 => fixed(pos, 16)?,                     // decimal128
            0x06 | 0x0A | 0x7F | 0xFF => pos,            // undefined, null, maxKey, minKey
            0x08 => {
                match bytes.get(pos) {
                    Some(0) | Some(1) if pos < end => {}
                    _ => return Err(BsonCheckError::invalid("boolean must be 0x00 or 0x01")),
                }
                pos + 1
            }
            0x02 => read_string(bytes, pos, end, "string")?,
            0x0D => read_string(bytes, pos, end, "JavaScript code")?,
            0x0E => read_string(bytes, pos, end, "symbol")?,
            0x0B => {
                let p = read_cstring(bytes, pos, end, "regex pattern")?;
                read_cstring(bytes, p, end, "regex options")?
            }
            0x0C => {
                let p = read_string(bytes, pos, end, "DBPointer namespace")?;
                fixed(p, 12)?
            }
            0x05 => {
                let len = read_i32(bytes, pos)
                    .filter(|_| pos + 5 <= end)
                    .ok_or_else(|| BsonCheckError::invalid("truncated binary header"))?;
                if len < 0 {
                    return Err(BsonCheckError::invalid(format!("negative binary length {len}")));
                }
                let subtype = bytes[pos + 4];
                let data = pos + 5;
                let data_end = data.checked_add(len as usize).filter(|&e| e <= end).ok_or_else(|| {
                    BsonCheckError::invalid(format!("binary length {len} exceeds its document"))
                })?;
                if subtype == 0x02 {
                    // The deprecated "old binary" subtype repeats the length inside the payload.
                    match read_i32(bytes, data) {
                        Some(inner) if len >= 4 && inner == len - 4 => {}
                        _ => {
                            return Err(BsonCheckError::invalid("old binary (subtype 2) length inconsistent"))
                        }
                    }
                }
                data_end
            }
            0x03 | 0x04 | 0x0F => {
                let mut cws_end = None;
                let doc_start = if type_byte == 0x0F {
                    // int32 total length, string code, document scope.
                    let total = read_i32(bytes, pos)
                        .filter(|_| pos + 4 <= end)
                        .ok_or_else(|| BsonCheckError::invalid("truncated code with scope length"))?;
                    // 4 (total) + 5 (empty string) + 5 (empty scope)
                    if total < 14 {
                        return Err(BsonCheckError::invalid(format!(
                            "invalid code with scope length {total}"
                        )));
                    }
                    let total_end =
                        pos.checked_add(total as usize).filter(|&e| e <= end).ok_or_else(|| {
                            BsonCheckError::invalid("code with scope length exceeds its document")
                        })?;
                    cws_end = Some(total_end);
                    read_string(bytes, pos + 4, total_end, "code with scope code")?
                } else {
                    pos
                };
                let len = read_i32(bytes, doc_start)
                    .filter(|_| doc_start + 4 <= end)
                    .ok_or_else(|| BsonCheckError::invalid("truncated embedded document length"))?;
                if len < MIN_DOC_LEN as i32 {
                    return Err(BsonCheckError::invalid(format!("invalid embedded document length {len}")));
                }
                let doc_end = doc_start
                    .checked_add(len as usize)
                    .filter(|&e| e <= cws_end.unwrap_or(end))
                    .ok_or_else(|| {
                        BsonCheckError::invalid(format!("embedded document length {len} exceeds its parent"))
                    })?;
                if stack.len() > max_depth {
                    return Err(BsonCheckError {
                        kind: BsonCheckKind::TooDeep,
                        message: format!("BSONObj exceeded maximum nested object depth: {max_depth}"),
                    });
                }
                stack.push(Frame { end: doc_end - 1, cws_end });
                doc_start + 4
            }
            other => {
                return Err(BsonCheckError::invalid(format!("unknown BSON type 0x{other:02x}")));
            }
        };
    }
    if pos != bytes.len() {
        // Unreachable when lengths are consistent; kept as a guard.
        return Err(BsonCheckError::invalid("trailing bytes after document"));
    }
    Ok(())
}

/// Validates `bytes` (see `validate`), then decodes it. Depth is capped at
/// `PARSE_DEPTH_CEILING` whatever `max_depth` says, to keep the recursive decoder safe.
///
/// Decodes through `RawDocument` rather than `Document::from_reader`: the latter goes through
/// serde and reinterprets user sub-documents shaped like extended JSON (`{"$oid": "..."}`,
/// `{"$numberLong": "5"}`, `{"$date": 1}` ...) as other BSON types, or fails on them
/// (`{"$uuid": 1}`); the raw conversion keeps every value as sent and also uses less stack.
pub fn parse_document(bytes: &[u8], max_depth: usize) -> Result<bson::Document, BsonCheckError> {
    validate(bytes, max_depth.min(PARSE_DEPTH_CEILING))?;
    let raw = bson::RawDocument::from_bytes(bytes)
        .map_err(|e| BsonCheckError::invalid(format!("invalid BSON: {e}")))?;
    bson::Document::try_from(raw).map_err(|e| BsonCheckError::invalid(format!("invalid BSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, spec::BinarySubtype, Binary, Bson, JavaScriptCodeWithScope, Regex, Timestamp};

    /// Small deterministic PRNG (xorshift64*) so failures reproduce.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    fn to_bytes(d: &bson::Document) -> Vec<u8> {
        let mut v = Vec::new();
        d.to_writer(&mut v).unwrap();
        v
    }

    fn rich_doc() -> bson::Document {
        doc! {
            "double": 1.5,
            "string": "héllo",
            "empty": "",
            "doc": { "a": 1, "b": { "c": [1, 2, { "d": null }] } },
            "array": [1, "two", 3.0, [4]],
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "old": Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![9, 8] },
            "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
            "undef": Bson::Undefined,
            "oid": bson::oid::ObjectId::from_bytes([3; 12]),
            "bool": true,
            "date": bson::DateTime::from_millis(1_700_000_000_000),
            "null": null,
            "regex": Regex { pattern: "a.*b".into(), options: "i".into() },
            "dbp": Bson::DbPointer(dbpointer()),
            "code": Bson::JavaScriptCode("function(){}".into()),
            "sym": Bson::Symbol("sym".into()),
            "cws": Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "x".into(),
                scope: doc! { "x": { "y": 1 } },
            }),
            "i32": 42,
            "ts": Timestamp { time: 5, increment: 6 },
            "i64": 7i64,
            "dec": Bson::Decimal128(bson::Decimal128::from_bytes([1; 16])),
            "min": Bson::MinKey,
            "max": Bson::MaxKey,
        }
    }

    fn dbpointer() -> bson::DbPointer {
        // DbPointer has no public constructor: decode raw BSON {p: DBPointer("ns", oid)}.
        let mut raw = Vec::new();
        raw.extend_from_slice(&[0, 0, 0, 0, 0x0C, b'p', 0]);
        raw.extend_from_slice(&3i32.to_le_bytes());
        raw.extend_from_slice(b"ns\0");
        raw.extend_from_slice(&[5; 12]);
        raw.push(0);
        let len = raw.len() as i32;
        raw[..4].copy_from_slice(&len.to_le_bytes());
        match bson::Document::from_reader(&raw[..]).unwrap().get("p") {
            Some(Bson::DbPointer(p)) => p.clone(),
            other => panic!("not a dbpointer: {other:?}"),
        }
    }

    fn nested(depth: usize, array: bool) -> Vec<u8> {
        // {a: {a: ... {} }} with `depth` levels below the top; built bottom-up without recursion.
        let mut inner = vec![5, 0, 0, 0, 0];
        for _ in 0..depth {
            let mut d = Vec::with_capacity(inner.len() + 8);
            d.extend_from_slice(&[0, 0, 0, 0, if array { 0x04 } else { 0x03 }]);
            d.extend_from_slice(if array { b"0\0" } else { b"a\0" });
            d.extend_from_slice(&inner);
            d.push(0);
            let len = d.len() as i32;
            d[..4].copy_from_slice(&len.to_le_bytes());
            inner = d;
        }
        inner
    }

    #[test]
    fn accepts_every_type_and_round_trips() {
        let d = rich_doc();
        let bytes = to_bytes(&d);
        validate(&bytes, 200).unwrap();
        assert_eq!(parse_document(&bytes, 200).unwrap(), d);
        validate(&[5, 0, 0, 0, 0], 0).unwrap();
    }

    #[test]
    fn extended_json_shaped_user_documents_are_kept_verbatim() {
        for d in [
            doc! { "$uuid": 1 },
            doc! { "x": { "$oid": "5f0000000000000000000000" } },
            doc! { "x": { "$numberLong": "5" } },
            doc! { "x": { "$date": 1 } },
            doc! { "x": { "$binary": { "base64": "AA==", "subType": "00" } } },
            doc! { "x": { "$code": "c", "$scope": {} } },
        ] {
            assert_eq!(parse_document(&to_bytes(&d), 10).unwrap(), d);
        }
    }

    #[test]
    fn depth_limit_matches_mongod_counting() {
        // 200 levels below the top are allowed, 201 are not.
        assert!(validate(&nested(200, false), 200).is_ok());
        let e = validate(&nested(201, false), 200).unwrap_err();
        assert_eq!(e.kind, BsonCheckKind::TooDeep);
        assert!(validate(&nested(201, true), 200).is_err());
        assert!(validate(&nested(3, false), 3).is_ok());
        assert!(validate(&nested(4, false), 3).is_err());
    }

    #[test]
    fn hundred_thousand_levels_do_not_overflow() {
        let bomb = nested(100_000, false);
        assert_eq!(validate(&bomb, 200).unwrap_err().kind, BsonCheckKind::TooDeep);
        // Even with no practical limit the iterative walk copes...
        validate(&bomb, usize::MAX).unwrap();
        // ...and parse_document still refuses to hand it to the recursive decoder.
        assert_eq!(parse_document(&bomb, usize::MAX).unwrap_err().kind, BsonCheckKind::TooDeep);
        let arrays = nested(100_000, true);
        assert!(parse_document(&arrays, 200).is_err());
    }

    /// The `bson` crate's decoder, encoder and `Drop` recurse once per level and need roughly
    /// 15 KiB of stack per level in debug builds (about 1-2 KiB in release): a 200-deep command
    /// overflows a default 2 MiB thread in debug. Whoever runs commands must give them a larger
    /// stack; these tests pin what 8 MiB and 64 MiB buy.
    #[test]
    fn deep_documents_decode_encode_and_drop_on_a_big_enough_stack() {
        let run = |depth: usize, stack: usize| {
            let bytes = nested(depth, false);
            std::thread::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    let d = parse_document(&bytes, usize::MAX).unwrap();
                    let mut out = Vec::new();
                    d.to_writer(&mut out).unwrap();
                    assert_eq!(out, bytes);
                })
                .unwrap()
                .join()
                .is_ok()
        };
        assert!(run(200, 8 << 20));
        assert!(run(PARSE_DEPTH_CEILING, 64 << 20));
    }

    #[test]
    fn specific_faults() {
        let ok = to_bytes(&doc! { "s": "abc" });
        // Length field too big / too small.
        let mut b = ok.clone();
        b[0] += 1;
        assert!(validate(&b, 10).is_err());
        assert!(validate(&ok[..ok.len() - 1], 10).is_err());
        assert!(validate(&[], 10).is_err());
        assert!(validate(&[4, 0, 0, 0], 10).is_err());
        // Missing final NUL.
        let mut b = ok.clone();
        *b.last_mut().unwrap() = 1;
        assert!(validate(&b, 10).is_err());
        // String length zero, negative, past the end; missing trailing NUL.
        for bad_len in [0i32, -1, 100] {
            let mut b = ok.clone();
            b[7..11].copy_from_slice(&bad_len.to_le_bytes());
            assert!(validate(&b, 10).is_err(), "len {bad_len}");
        }
        let mut b = ok.clone();
        b[14] = b'x'; // string's NUL
        assert!(validate(&b, 10).is_err());
        // Invalid UTF-8 in a string and in a key.
        let mut b = ok.clone();
        b[11] = 0xFF;
        assert!(validate(&b, 10).is_err());
        let mut b = ok.clone();
        b[5] = 0xC3;
        assert!(validate(&b, 10).is_err());
        // Unknown type.
        let mut b = ok.clone();
        b[4] = 0x14;
        assert!(validate(&b, 10).is_err());
        // Bad boolean.
        let mut b = to_bytes(&doc! { "b": true });
        b[7] = 2;
        assert!(validate(&b, 10).is_err());
        // Old binary with a lying inner length.
        let mut b = to_bytes(&doc! { "o": Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![1, 2] } });
        let inner = b.len() - 1 - 6;
        b[inner] = 9;
        assert!(validate(&b, 10).is_err());
        // Embedded document whose length disagrees with its terminator.
        let mut b = to_bytes(&doc! { "d": { "x": 1 } });
        b[7] -= 1;
        assert!(validate(&b, 10).is_err());
    }

    #[test]
    fn code_with_scope_lengths() {
        let d = doc! { "c": Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
        code: "f".into(), scope: doc! { "a": 1 } }) };
        let ok = to_bytes(&d);
        validate(&ok, 10).unwrap();
        // Total length one larger than its parts.
        let mut b = ok.clone();
        b[7] += 1;
        assert!(validate(&b, 10).is_err());
        let mut b = ok.clone();
        b[7] -= 1;
        assert!(validate(&b, 10).is_err());
        // The scope counts as a nesting level.
        assert!(validate(&ok, 0).is_err());
    }

    /// Every document `validate` accepts must also decode: the validator is the only gate.
    fn check_agrees(bytes: &[u8]) -> bool {
        match validate(bytes, 50) {
            Ok(()) => {
                assert!(parse_document(bytes, 50).is_ok(), "validated but undecodable: {bytes:?}");
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        let seeds = [
            to_bytes(&rich_doc()),
            to_bytes(&doc! { "a": [1, { "b": "c" }], "d": { "e": { "f": 1.0 } } }),
            nested(20, true),
            vec![5, 0, 0, 0, 0],
        ];
        let mut rng = Rng::new(0x5EC4_7A5D);
        let mut accepted = 0usize;
        for i in 0..40_000 {
            let base = &seeds[i % seeds.len()];
            let mut b = base.clone();
            match rng.below(6) {
                0 => b.truncate(rng.below(b.len())),
                1 => {
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(b.len());
                        b[at] = rng.next() as u8;
                    }
                }
                2 => {
                    // Flip a byte but keep the outer length consistent.
                    let at = 4 + rng.below(b.len() - 4);
                    b[at] ^= 1 << rng.below(8);
                }
                3 => {
                    let at = rng.below(b.len());
                    b.insert(at, rng.next() as u8);
                    let len = b.len() as i32;
                    b[..4].copy_from_slice(&len.to_le_bytes());
                }
                4 => {
                    // Random lengths planted anywhere.
                    let at = rng.below(b.len().saturating_sub(4));
                    let v = [0i32, 1, 4, 5, -1, i32::MAX, i32::MIN, b.len() as i32][rng.below(8)];
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {
                    let n = rng.below(64);
                    b = (0..n).map(|_| rng.next() as u8).collect();
                }
            }
            if check_agrees(&b) {
                accepted += 1;
            }
            let _ = parse_document(&b, 50);
        }
        // Some mutations (e.g. flipped value bits) must stay valid; this proves the fuzzer reaches
        // the accepting paths too.
        assert!(accepted > 100, "only {accepted} mutants accepted");
    }
}
