//! Order-preserving byte encoding of BSON values for index keys.
//!
//! For any values `a`, `b`: the bytes of `a` compare (memcmp) as
//! [`compare_bson`](crate::query::compare::compare_bson) compares `a` and `b`, and equal values
//! (1, 1i64, 1.0, decimal "1.0") encode to identical bytes. Every element is self-delimiting and
//! no element's encoding is a prefix of another's, so a compound key (elements concatenated)
//! compares element by element; a descending element has every byte inverted, which reverses
//! its order and keeps it self-delimiting.
//!
//! Layout of one element: a type byte (canonical rank + 1, so never 0) and a body:
//! - MinKey, Undefined, Null, MaxKey: no body.
//! - Numbers: see [`append_number_body`].
//! - String/Symbol, JavaScript code: bytes with 0x00 escaped as 00 FF, terminated by 00 00.
//! - Object: per field: type byte, escaped name, body; then 0x00 (below every type byte, so a
//!   prefix object is smaller). Array: the same without names.
//! - BinData: length (u32 BE, counting subtype 2's inner length as mongod does), subtype, bytes.
//! - ObjectId: 12 bytes. Boolean: 0/1. Date: i64 with the sign bit flipped, BE.
//!   Timestamp: u64 BE. Regex: escaped pattern, escaped flags. DBPointer: namespace length
//!   (u32 BE), namespace, 12 OID bytes. Code with scope: escaped code, then the scope object.
//!
//! The record id suffix is 8 bytes big-endian after the key (ordered correctly for rid >= 0).

use crate::query::compare::{
    binary_len, canonical_type_rank, db_pointer_parts, decode_decimal128, exact_number, timestamp_u64,
    BigNat, DecimalParts, ExactNum,
};
use bson::Bson;

const END: u8 = 0x00;

/// Appends one key element for `v` (inverted if `descending`).
pub fn append_value(out: &mut Vec<u8>, v: &Bson, descending: bool) {
    let start = out.len();
    append_ascending(out, v);
    if descending {
        if let Some(tail) = out.get_mut(start..) {
            tail.iter_mut().for_each(|b| *b = !*b);
        }
    }
}

/// A compound key: the elements concatenated; `true` marks a descending field.
pub fn encode_key(parts: &[(&Bson, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (v, descending) in parts {
        append_value(&mut out, v, *descending);
    }
    out
}

/// Appends the record id as 8 bytes big-endian (memcmp orders record ids >= 0 correctly).
pub fn append_record_id(out: &mut Vec<u8>, rid: i64) {
    out.extend_from_slice(&rid.to_be_bytes());
}

/// The record id stored in the last 8 bytes of `key`, if it has 8 bytes.
pub fn read_record_id_suffix(key: &[u8]) -> Option<i64> {
    let start = key.len().checked_sub(8)?;
    let bytes: [u8; 8] = key.get(start..)?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

/// `key` without its 8-byte record id suffix.
pub fn key_without_record_id(key: &[u8]) -> Option<&[u8]> {
    key.get(..key.len().checked_sub(8)?)
}

fn type_byte(v: &Bson) -> u8 {
    canonical_type_rank(v) + 1
}

enum Frame<'a> {
    Doc(bson::document::Iter<'a>),
    Array(std::slice::Iter<'a, Bson>),
}

/// Encodes with an explicit stack so deeply nested values cannot overflow the thread's stack.
fn append_ascending(out: &mut Vec<u8>, v: &Bson) {
    let mut stack = Vec::new();
    out.push(type_byte(v));
    append_body(out, v, &mut stack);
    while let Some(top) = stack.last_mut() {
        let next = match top {
            Frame::Doc(it) => it.next().map(|(k, v)| (Some(k), v)),
            Frame::Array(it) => it.next().map(|v| (None, v)),
        };
        match next {
            None => {
                out.push(END);
                stack.pop();
            }
            Some((name, value)) => {
                out.push(type_byte(value));
                if let Some(name) = name {
                    append_escaped(out, name.as_bytes());
                }
                append_body(out, value, &mut stack);
            }
        }
    }
}

/// Writes the body of `v`; a container's contents are left on `stack` for the caller to write
/// (they always come last in the body).
fn append_body<'a>(out: &mut Vec<u8>, v: &'a Bson, stack: &mut Vec<Frame<'a>>) {
    match v {
        Bson::MinKey | Bson::Undefined | Bson::Null | Bson::MaxKey => {}
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => append_number_body(out, v),
        Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => append_escaped(out, s.as_bytes()),
        Bson::Document(d) => stack.push(Frame::Doc(d.iter())),
        Bson::Array(a) => stack.push(Frame::Array(a.iter())),
        Bson::Binary(b) => {
            // BSON caps a value far below 4 GiB, so the length always fits.
            let len = u32::try_from(binary_len(b)).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.push(u8::from(b.subtype));
            out.extend_from_slice(&b.bytes);
        }
        Bson::ObjectId(o) => out.extend_from_slice(&o.bytes()),
        Bson::Boolean(b) => out.push(u8::from(*b)),
        Bson::DateTime(d) => {
            let flipped = (d.timestamp_millis() as u64) ^ (1 << 63);
            out.extend_from_slice(&flipped.to_be_bytes());
        }
        Bson::Timestamp(t) => out.extend_from_slice(&timestamp_u64(t).to_be_bytes()),
        Bson::RegularExpression(r) => {
            append_escaped(out, r.pattern.as_bytes());
            append_escaped(out, r.options.as_bytes());
        }
        Bson::DbPointer(_) => {
            let (ns, oid) = db_pointer_parts(v);
            let len = u32::try_from(ns.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(ns.as_bytes());
            out.extend_from_slice(&oid);
        }
        Bson::JavaScriptCodeWithScope(c) => {
            append_escaped(out, c.code.as_bytes());
            stack.push(Frame::Doc(c.scope.iter()));
        }
    }
}

/// Byte string in an order-preserving, prefix-free form: 00 -> 00 FF, then 00 00.
fn append_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

// ---------------------------------------------------------------------------------------------
// Numbers.

const NUM_NAN: u8 = 0x01;
const NUM_NEG_INF: u8 = 0x02;
const NUM_NEG: u8 = 0x03;
const NUM_ZERO: u8 = 0x04;
const NUM_POS: u8 = 0x05;
const NUM_POS_INF: u8 = 0x06;
const EXP_BIAS: i32 = 0x8000;

/// One encoding for all four numeric types, by exact value.
///
/// A class byte (NaN < -inf < negative < zero < positive < +inf); for finite non-zero values
/// the magnitude follows (all bytes inverted for negatives):
/// - `e2 = floor(log2 |x|)` as u16 BE biased by 0x8000 (decimal128 needs about ±20520);
/// - the first 64 bits after the leading one bit (truncated), trailing zeros dropped, written
///   7 bits per byte in the high bits with the low bit set on every byte but the last;
/// - 0x00 if those bits are the exact value, else 0x01 followed by the decimal's normalised
///   value: adjusted exponent (u16 BE, biased) and the coefficient scaled to 34 digits (u128 BE).
///
/// Every int32, int64 and double is exact within 64 bits, so only a decimal128 ever carries the
/// tail; values sharing the 64-bit prefix but not exact all lie strictly between that prefix and
/// the next, where they order among themselves by their decimal value.
fn append_number_body(out: &mut Vec<u8>, v: &Bson) {
    let Some(num) = exact_number(v) else {
        return;
    };
    let (neg, mant, pow2, pow5) = match num {
        ExactNum::NaN => return out.push(NUM_NAN),
        ExactNum::NegInf => return out.push(NUM_NEG_INF),
        ExactNum::Zero => return out.push(NUM_ZERO),
        ExactNum::PosInf => return out.push(NUM_POS_INF),
        ExactNum::Finite { neg, mant, pow2, pow5 } => (neg, mant, pow2, pow5),
    };
    out.push(if neg { NUM_NEG } else { NUM_POS });
    let start = out.len();
    let (e2, fraction, exact) = binary_decompose(mant, pow2, pow5);
    // Finite values of all four types have -20520 < e2 < 20420.
    let biased = u16::try_from(e2 + EXP_BIAS).unwrap_or(0);
    out.extend_from_slice(&biased.to_be_bytes());
    append_fraction(out, fraction);
    match decimal_tail(v).filter(|_| !exact) {
        None => out.push(0x00),
        Some((adjusted, coefficient34)) => {
            out.push(0x01);
            let biased = u16::try_from(adjusted + EXP_BIAS).unwrap_or(0);
            out.extend_from_slice(&biased.to_be_bytes());
            out.extend_from_slice(&coefficient34.to_be_bytes());
        }
    }
    if neg {
        if let Some(magnitude) = out.get_mut(start..) {
            magnitude.iter_mut().for_each(|b| *b = !*b);
        }
    }
}

/// 64 fraction bits, 7 per byte: a byte holding more bits of a longer fraction beats the
/// final byte of a shorter one with the same high bits, since its low (continuation) bit is set.
fn append_fraction(out: &mut Vec<u8>, fraction: u64) {
    if fraction == 0 {
        out.push(0);
        return;
    }
    let significant = 64 - fraction.trailing_zeros();
    let chunks = significant.div_ceil(7);
    let padded = u128::from(fraction) << 6; // 70 bits: ten 7-bit chunks
    for i in 0..chunks {
        let chunk = ((padded >> (63 - 7 * i)) & 0x7f) as u8;
        out.push((chunk << 1) | u8::from(i + 1 < chunks));
    }
}

/// A positive decimal's value as (adjusted exponent, coefficient scaled to exactly 34 digits).
fn decimal_tail(v: &Bson) -> Option<(i32, u128)> {
    let Bson::Decimal128(d) = v else {
        return None;
    };
    let DecimalParts::Finite { coefficient, exponent, .. } = decode_decimal128(d) else {
        return None;
    };
    if coefficient == 0 {
        return None;
    }
    let digits = coefficient.ilog10() + 1;
    let scaled = coefficient.checked_mul(10u128.checked_pow(34u32.checked_sub(digits)?)?)?;
    Some((exponent + digits as i32 - 1, scaled))
}

/// For `x = mant * 2^pow2 * 5^pow5` (mant > 0): `floor(log2 x)`, the next 64 bits of x below
/// its leading one bit (truncated), and whether those bits represent x exactly.
pub(crate) fn binary_decompose(mant: u128, pow2: i32, pow5: i32) -> (i32, u64, bool) {
    let (e, fraction, exact) = if pow5 == 0 {
        top_bits_u128(mant)
    } else if pow5 > 0 {
        let mut num = BigNat::from_u128(mant);
        num.mul_pow5(pow5.unsigned_abs());
        match num.to_u128() {
            Some(v) => top_bits_u128(v),
            None => top_bits_ratio(&num, &BigNat::from_u128(1)),
        }
    } else {
        let mut den = BigNat::from_u128(1);
        den.mul_pow5(pow5.unsigned_abs());
        top_bits_ratio(&BigNat::from_u128(mant), &den)
    };
    (e + pow2, fraction, exact)
}

fn top_bits_u128(v: u128) -> (i32, u64, bool) {
    if v == 0 {
        return (0, 0, true); // callers never pass 0; avoid the 128-bit shift below
    }
    let lz = v.leading_zeros();
    let norm = v << lz; // leading one at bit 127
    let fraction = (norm >> 63) as u64; // bits 126..63
    let exact = norm << 65 == 0; // bits 62..0
    (127 - lz as i32, fraction, exact)
}

/// Same as [`top_bits_u128`] for `num / den` (both non-zero), by long division.
fn top_bits_ratio(num: &BigNat, den: &BigNat) -> (i32, u64, bool) {
    // Scale by 2^t so the quotient lies in [2^64, 2^66): 66 quotient bits suffice.
    let t = 65 - num.bit_len() as i64 + den.bit_len() as i64;
    let mut rem = num.clone();
    let mut divisor = den.clone();
    if t > 0 {
        rem.shl(t.unsigned_abs());
    } else {
        divisor.shl(t.unsigned_abs());
    }
    divisor.shl(65);
    let mut q: u128 = 0;
    for i in (0..=65).rev() {
        if rem >= divisor {
            rem.sub_assign(&divisor);
            q |= 1 << i;
        }
        divisor.shr1();
    }
    // |t| is bounded by the bit lengths (< 20000), so the casts are lossless.
    if q >> 65 != 0 {
        ((65 - t) as i32, (q >> 1) as u64, rem.is_zero() && q & 1 == 0)
    } else {
        ((64 - t) as i32, q as u64, rem.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::compare::compare_bson;
    use crate::query::compare::tests::{dec, random_number, random_value, rng};
    use bson::doc;
    use rand::Rng;
    use std::cmp::Ordering;

    fn enc(v: &Bson, descending: bool) -> Vec<u8> {
        let mut out = Vec::new();
        append_value(&mut out, v, descending);
        out
    }

    fn check_pairs(values: &[Bson], pairs: usize, seed: u64) {
        let keys: Vec<Vec<u8>> = values.iter().map(|v| enc(v, false)).collect();
        let desc: Vec<Vec<u8>> = values.iter().map(|v| enc(v, true)).collect();
        let mut r = rng(seed);
        let mut equal_distinct = 0;
        for _ in 0..pairs {
            let i = r.gen_range(0..values.len());
            let j = r.gen_range(0..values.len());
            let want = compare_bson(&values[i], &values[j]);
            assert_eq!(
                keys[i].cmp(&keys[j]),
                want,
                "{:?} vs {:?}\n{:02x?}\n{:02x?}",
                values[i],
                values[j],
                keys[i],
                keys[j]
            );
            assert_eq!(desc[i].cmp(&desc[j]), want.reverse());
            if want == Ordering::Equal && values[i] != values[j] {
                equal_distinct += 1;
            }
        }
        assert!(equal_distinct > pairs / 1000, "generator too spread: {equal_distinct}");
    }

    #[test]
    fn random_numbers_agree_with_compare() {
        let mut r = rng(10);
        let values: Vec<Bson> = (0..4000).map(|_| random_number(&mut r)).collect();
        check_pairs(&values, 400_000, 11);
    }

    #[test]
    fn random_values_agree_with_compare() {
        let mut r = rng(20);
        let values: Vec<Bson> = (0..4000).map(|_| random_value(&mut r, 3)).collect();
        check_pairs(&values, 400_000, 21);
    }

    #[test]
    fn sorting_by_bytes_equals_sorting_by_compare() {
        let mut r = rng(30);
        let mut values: Vec<Bson> = (0..5000).map(|_| random_value(&mut r, 3)).collect();
        values.sort_by(compare_bson);
        let keys: Vec<Vec<u8>> = values.iter().map(|v| enc(v, false)).collect();
        for (w, k) in values.windows(2).zip(keys.windows(2)) {
            assert_eq!(k[0].cmp(&k[1]), compare_bson(&w[0], &w[1]), "{w:?}");
        }
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
    }

    #[test]
    fn compound_keys_compare_field_by_field() {
        let mut r = rng(40);
        let pool: Vec<Bson> = (0..2000).map(|_| random_value(&mut r, 2)).collect();
        let asc: Vec<Vec<u8>> = pool.iter().map(|v| enc(v, false)).collect();
        let desc: Vec<Vec<u8>> = pool.iter().map(|v| enc(v, true)).collect();
        for _ in 0..100_000 {
            let width = r.gen_range(1..=3);
            let dirs: Vec<bool> = (0..width).map(|_| r.gen()).collect();
            let a: Vec<usize> = (0..width).map(|_| r.gen_range(0..pool.len())).collect();
            // Often share a prefix so later fields decide.
            let b: Vec<usize> =
                (0..width).map(|k| if r.gen_bool(0.5) { a[k] } else { r.gen_range(0..pool.len()) }).collect();
            // Per-value encodings are cached; encode_key itself is checked on a sample.
            let concat = |idx: &[usize]| -> Vec<u8> {
                idx.iter()
                    .zip(&dirs)
                    .flat_map(|(&i, &d)| if d { &desc[i] } else { &asc[i] }.iter().copied())
                    .collect()
            };
            let (mut ea, mut eb) = (concat(&a), concat(&b));
            if r.gen_ratio(1, 50) {
                let parts: Vec<(&Bson, bool)> =
                    a.iter().map(|&i| &pool[i]).zip(dirs.iter().copied()).collect();
                assert_eq!(encode_key(&parts), ea);
            }
            let (a, b): (Vec<&Bson>, Vec<&Bson>) =
                (a.iter().map(|&i| &pool[i]).collect(), b.iter().map(|&i| &pool[i]).collect());
            let mut want = Ordering::Equal;
            for k in 0..width {
                let c = compare_bson(a[k], b[k]);
                if c != Ordering::Equal {
                    want = if dirs[k] { c.reverse() } else { c };
                    break;
                }
            }
            assert_eq!(ea.cmp(&eb), want, "{a:?} vs {b:?} dirs {dirs:?}");
            // The record id only breaks ties.
            let (ra, rb) = (r.gen_range(1..1_000_000), r.gen_range(1..1_000_000));
            append_record_id(&mut ea, ra);
            append_record_id(&mut eb, rb);
            assert_eq!(ea.cmp(&eb), want.then(ra.cmp(&rb)));
            assert_eq!(read_record_id_suffix(&ea), Some(ra));
            assert_eq!(read_record_id_suffix(&eb), Some(rb));
            assert_eq!(key_without_record_id(&eb).map(<[u8]>::len), Some(eb.len() - 8));
        }
    }

    #[test]
    fn equal_values_encode_identically() {
        let groups: Vec<Vec<Bson>> = vec![
            vec![Bson::Int32(1), Bson::Int64(1), Bson::Double(1.0), dec("1.0"), dec("1"), dec("0.001E3")],
            vec![Bson::Int32(0), Bson::Double(-0.0), dec("-0"), dec("0E-6176")],
            vec![Bson::Double(f64::NAN), dec("NaN"), dec("-NaN"), Bson::Double(-f64::NAN)],
            vec![Bson::Double(f64::INFINITY), dec("Infinity")],
            vec![Bson::Int64(i64::MIN), Bson::Double(-9.223372036854776e18)],
            vec![Bson::String("x".into()), Bson::Symbol("x".into())],
            vec![
                Bson::Document(doc! {"a": 1, "b": [2.0, {"c": "d"}]}),
                Bson::Document(doc! {"a": 1.0, "b": [2_i64, {"c": "d"}]}),
            ],
        ];
        for g in &groups {
            let first = enc(&g[0], false);
            for v in g {
                assert_eq!(enc(v, false), first, "{v:?}");
            }
        }
        assert_eq!(enc(&Bson::Int32(1), false).len(), 6);
    }

    #[test]
    fn record_id_suffix() {
        let mut k = encode_key(&[(&Bson::String("a".into()), false)]);
        append_record_id(&mut k, 42);
        assert_eq!(read_record_id_suffix(&k), Some(42));
        assert_eq!(read_record_id_suffix(&[1, 2]), None);
        assert_eq!(key_without_record_id(&[1, 2]), None);
    }

    #[test]
    fn decompose_matches_definition() {
        // 3 = 1.1b * 2^1; 0.1 is not dyadic; 2^64 + 1 fits 64 fraction bits, 2^65 + 1 does not.
        assert_eq!(binary_decompose(3, 0, 0), (1, 1 << 63, true));
        let (e, f, exact) = binary_decompose(1, 0, -1); // 1/5
        assert_eq!((e, exact), (-3, false));
        assert_eq!(f, 0x9999_9999_9999_9999);
        assert_eq!(binary_decompose((1 << 64) + 1, 0, 0), (64, 1, true));
        assert!(!binary_decompose((1 << 65) + 1, 0, 0).2);
        assert!(!binary_decompose(1, 6111, 6111).2);
        assert!(!binary_decompose(1, -6176, -6176).2);
        assert_eq!(binary_decompose(25, -2, -2), (-2, 0, true)); // 0.25
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut a = Bson::Int32(1);
        for _ in 0..100_000 {
            a = Bson::Document(doc! {"a": a});
        }
        assert!(enc(&a, true).len() > 300_000);
        std::mem::forget(a);
    }
}
