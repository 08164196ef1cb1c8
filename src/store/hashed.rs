//! The 64-bit hash a hashed index stores for a value, computed as mongod computes it (so that
//! the keys match `convertShardKeyToHashed`): MD5 over the seed (0, as 4 little-endian bytes)
//! followed by the value's canonical form, and the first 8 bytes of the digest read as a
//! little-endian int64.
//!
//! The canonical form of one element is its canonical type rank (4 bytes, little-endian), its
//! field name with the terminating NUL when it is inside a document, then its value: numbers
//! of every type as one int64 (truncated toward zero, so 1, 1.0, NumberLong(1) and 1.9 hash
//! alike, as the docs say), documents and arrays as their elements in turn followed by the
//! end-of-object marker, and every other type as its BSON value bytes.

use bson::spec::BinarySubtype;
use bson::Bson;
use md5::{Digest, Md5};

/// The seed mongod uses for hashed indexes.
const SEED: i32 = 0;

/// The hash a hashed index stores for `v`.
pub fn hash_value(v: &Bson) -> i64 {
    let mut h = Md5::new();
    h.update(SEED.to_le_bytes());
    hash_element(&mut h, None, v);
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// mongod's canonical type numbers (the BSON comparison order, spaced as mongod spaces them).
fn canonical_type(v: &Bson) -> i32 {
    // The comparison order's ranks, except at the two ends where the hash's numbering differs.
    match v {
        Bson::MinKey => -1,
        Bson::Undefined => 0,
        other => crate::query::compare::canonical_type_rank(other) as i32,
    }
}

/// A number as the int64 mongod hashes: truncated toward zero; NaN and values outside the
/// int64 range become int64's minimum (what the historical double-to-int conversion gave).
fn number_for_hash(v: &Bson) -> i64 {
    let d = match v {
        Bson::Int32(n) => return *n as i64,
        Bson::Int64(n) => return *n,
        Bson::Double(d) => *d,
        Bson::Decimal128(d) => crate::query::compare::decimal128_to_f64(d),
        _ => return 0,
    };
    // 2^63 is exactly representable; anything at or above it (or NaN) is out of range.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        i64::MIN
    } else {
        d.trunc() as i64
    }
}

fn string_value(h: &mut Md5, s: &str) {
    // BSON string: int32 length including the NUL, the bytes, the NUL.
    h.update(((s.len() + 1) as i32).to_le_bytes());
    h.update(s.as_bytes());
    h.update([0u8]);
}

fn hash_element(h: &mut Md5, name: Option<&str>, v: &Bson) {
    h.update(canonical_type(v).to_le_bytes());
    if let Some(name) = name {
        h.update(name.as_bytes());
        h.update([0u8]);
    }
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            h.update(number_for_hash(v).to_le_bytes());
        }
        Bson::Document(d) => {
            for (k, e) in d {
                hash_element(h, Some(k), e);
            }
            end_of_object(h);
        }
        Bson::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                hash_element(h, Some(&i.to_string()), e);
            }
            end_of_object(h);
        }
        Bson::JavaScriptCodeWithScope(c) => {
            for (k, e) in &c.scope {
                hash_element(h, Some(k), e);
            }
            end_of_object(h);
        }
        Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => string_value(h, s),
        Bson::Binary(b) => {
            let old = b.subtype == BinarySubtype::BinaryOld;
            // The old binary subtype nests a second length inside the payload.
            let outer = b.bytes.len() + if old { 4 } else { 0 };
            h.update((outer as i32).to_le_bytes());
            h.update([u8::from(b.subtype)]);
            if old {
                h.update((b.bytes.len() as i32).to_le_bytes());
            }
            h.update(&b.bytes);
        }
        Bson::ObjectId(o) => h.update(o.bytes()),
        Bson::Boolean(b) => h.update([*b as u8]),
        Bson::DateTime(d) => h.update(d.timestamp_millis().to_le_bytes()),
        Bson::Timestamp(t) => {
            h.update(t.increment.to_le_bytes());
            h.update(t.time.to_le_bytes());
        }
        Bson::RegularExpression(r) => {
            h.update(r.pattern.as_bytes());
            h.update([0u8]);
            h.update(r.options.as_bytes());
            h.update([0u8]);
        }
        Bson::DbPointer(_) => {
            let (ns, oid) = crate::query::compare::db_pointer_parts(v);
            string_value(h, &ns);
            h.update(oid);
        }
        Bson::MinKey | Bson::MaxKey | Bson::Null | Bson::Undefined => {}
    }
}

/// The end-of-object element that closes every embedded document: type 0, empty name.
fn end_of_object(h: &mut Md5) {
    h.update(0i32.to_le_bytes());
    h.update([0u8]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId};

    #[test]
    fn md5_is_the_rfc_1321_digest() {
        // RFC 1321's test suite: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        let d = Md5::digest(b"abc");
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn numbers_of_equal_value_hash_alike() {
        let one = hash_value(&Bson::Int32(1));
        assert_eq!(one, hash_value(&Bson::Int64(1)));
        assert_eq!(one, hash_value(&Bson::Double(1.0)));
        assert_eq!(one, hash_value(&Bson::Decimal128("1.0".parse().unwrap())));
        // Floating-point values are truncated: 2.2, 2.3 and 2.9 collide with 2.
        let two = hash_value(&Bson::Int32(2));
        for d in [2.2, 2.3, 2.9] {
            assert_eq!(two, hash_value(&Bson::Double(d)));
        }
        assert_ne!(one, two);
        assert_eq!(hash_value(&Bson::Double(-0.0)), hash_value(&Bson::Int32(0)));
    }

    #[test]
    fn values_of_different_types_hash_apart() {
        let vals = [
            Bson::Null,
            Bson::Int32(0),
            Bson::String(String::new()),
            Bson::String("0".into()),
            Bson::Boolean(false),
            Bson::Document(doc! {}),
            Bson::Document(doc! { "a": 0 }),
            Bson::Document(doc! { "b": 0 }),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::MinKey,
            Bson::MaxKey,
        ];
        let hashes: std::collections::HashSet<i64> = vals.iter().map(hash_value).collect();
        assert_eq!(hashes.len(), vals.len());
    }

    #[test]
    fn hash_is_the_digest_of_the_canonical_form() {
        // Spelled out by hand for one string: seed, canonical type 15, BSON string value.
        let mut h = Md5::new();
        h.update([0, 0, 0, 0, 15, 0, 0, 0, 3, 0, 0, 0, b'h', b'i', 0]);
        let d = h.finalize();
        let expect = i64::from_le_bytes(d[..8].try_into().unwrap());
        assert_eq!(hash_value(&Bson::String("hi".into())), expect);
        // Field order matters inside documents, as it does for BSON equality.
        assert_ne!(
            hash_value(&Bson::Document(doc! { "a": 1, "b": 2 })),
            hash_value(&Bson::Document(doc! { "b": 2, "a": 1 }))
        );
    }
}
