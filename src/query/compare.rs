//! mongod's total order over BSON values: the order of `sort`, of index keys, and of `$lt`/`$gt`
//! once the caller has applied type bracketing.
//!
//! Types are ordered by their canonical rank (numbers of all four kinds share one rank, and so
//! do String and Symbol); values of one rank compare by value. Numbers compare by their exact
//! mathematical value, whatever mix of int32/int64/double/decimal128 they are (see
//! [`compare_bson`] for the one deliberate difference from mongod). NaN (double or decimal) is
//! below every other number and equal to every NaN; -0 equals 0.
//!
//! Comparison walks nested documents with an explicit stack, so a deeply nested client value
//! cannot overflow the thread's stack.

use bson::{Bson, Decimal128, Document};
use std::cmp::Ordering;

/// mongod's canonical type rank, with two shifts so it fits a `u8`: MinKey is 0 (mongod: -1)
/// and Undefined is 1 (mongod: 0, still below Null). The other values are mongod's.
pub fn canonical_type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 0,
        Bson::Undefined => 1,
        Bson::Null => 5,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

/// Total order over BSON values with mongod's semantics.
///
/// Numbers are compared exactly. mongod itself compares a decimal128 with a double after
/// rounding the double to 34 decimal digits; the two orders differ only for a decimal whose 34
/// digits equal that rounding without equalling the double, a case we resolve exactly instead
/// (so that the order stays transitive and matches the index key encoding).
pub fn compare_bson(a: &Bson, b: &Bson) -> Ordering {
    let mut stack = Vec::new();
    match compare_shallow(a, b, &mut stack) {
        Ordering::Equal => drain(stack),
        other => other,
    }
}

/// Compares two documents as mongod compares embedded objects: field by field, each field by
/// type rank, then name (bytes), then value; a document that is a prefix of the other is less.
pub fn compare_docs(a: &Document, b: &Document) -> Ordering {
    drain(vec![Frame::Docs(a.iter(), b.iter())])
}

/// `compare_bson(a, b) == Equal`: 1, 1i64, 1.0 and decimal 1.0 are all equal.
pub fn bson_equal(a: &Bson, b: &Bson) -> bool {
    compare_bson(a, b) == Ordering::Equal
}

/// A numeric BSON value, kept in its own type so arithmetic can apply mongod's type promotion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int32(i32),
    Int64(i64),
    Double(f64),
    Decimal(Decimal128),
}

impl Num {
    /// Nearest double (decimals are rounded correctly, int64 beyond 2^53 rounds too).
    pub fn to_f64(&self) -> f64 {
        match *self {
            Num::Int32(i) => f64::from(i),
            Num::Int64(i) => i as f64,
            Num::Double(f) => f,
            Num::Decimal(d) => decimal128_to_f64(&d),
        }
    }

    pub fn to_bson(&self) -> Bson {
        match *self {
            Num::Int32(i) => Bson::Int32(i),
            Num::Int64(i) => Bson::Int64(i),
            Num::Double(f) => Bson::Double(f),
            Num::Decimal(d) => Bson::Decimal128(d),
        }
    }
}

/// The numeric view of `v`, or `None` if it is not one of the four numeric types.
pub fn as_number(v: &Bson) -> Option<Num> {
    match *v {
        Bson::Int32(i) => Some(Num::Int32(i)),
        Bson::Int64(i) => Some(Num::Int64(i)),
        Bson::Double(f) => Some(Num::Double(f)),
        Bson::Decimal128(d) => Some(Num::Decimal(d)),
        _ => None,
    }
}

/// Exact comparison of two numbers, with the same semantics as [`compare_bson`].
pub fn compare_numbers(a: &Num, b: &Num) -> Ordering {
    match (*a, *b) {
        (Num::Int32(x), Num::Int32(y)) => x.cmp(&y),
        (Num::Int32(x), Num::Int64(y)) => i64::from(x).cmp(&y),
        (Num::Int64(x), Num::Int32(y)) => x.cmp(&i64::from(y)),
        (Num::Int64(x), Num::Int64(y)) => x.cmp(&y),
        (Num::Double(x), Num::Double(y)) => compare_f64(x, y),
        _ => compare_exact(&ExactNum::of_num(a), &ExactNum::of_num(b)),
    }
}

/// The largest canonical decimal128 coefficient, 10^34 - 1.
pub const DECIMAL128_MAX_COEFFICIENT: u128 = 9_999_999_999_999_999_999_999_999_999_999_999;
/// Smallest and largest exponent of a decimal128 (value = coefficient * 10^exponent).
pub const DECIMAL128_MIN_EXPONENT: i32 = -6176;
pub const DECIMAL128_MAX_EXPONENT: i32 = 6111;

/// A decoded decimal128 (IEEE 754-2008, binary integer decimal encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalParts {
    NaN,
    Infinity {
        negative: bool,
    },
    /// value = (-1)^negative * coefficient * 10^exponent; coefficient <= 10^34 - 1.
    Finite {
        negative: bool,
        coefficient: u128,
        exponent: i32,
    },
}

/// Decodes the BID encoding. Non-canonical coefficients (above 10^34 - 1, including every
/// "11"-prefixed finite form) mean zero, as IEEE 754 specifies.
pub fn decode_decimal128(d: &Decimal128) -> DecimalParts {
    let bits = u128::from_le_bytes(d.bytes());
    let negative = bits >> 127 == 1;
    let combination = (bits >> 122) & 0x1f;
    if combination == 0x1f {
        return DecimalParts::NaN;
    }
    if combination == 0x1e {
        return DecimalParts::Infinity { negative };
    }
    let (biased, coefficient) = if (bits >> 125) & 0b11 == 0b11 {
        // Implied coefficient 0b100 << 110 exceeds 10^34 - 1: always non-canonical.
        ((bits >> 111) & 0x3fff, 0)
    } else {
        ((bits >> 113) & 0x3fff, bits & ((1u128 << 113) - 1))
    };
    let coefficient = if coefficient > DECIMAL128_MAX_COEFFICIENT { 0 } else { coefficient };
    // `biased` has 14 bits, so the cast cannot truncate.
    DecimalParts::Finite { negative, coefficient, exponent: biased as i32 + DECIMAL128_MIN_EXPONENT }
}

/// Builds a finite decimal128 from its parts; `None` if the coefficient or exponent is out of
/// range (no rounding or clamping is attempted).
pub fn make_decimal128(negative: bool, coefficient: u128, exponent: i32) -> Option<Decimal128> {
    if coefficient > DECIMAL128_MAX_COEFFICIENT
        || !(DECIMAL128_MIN_EXPONENT..=DECIMAL128_MAX_EXPONENT).contains(&exponent)
    {
        return None;
    }
    let biased = u128::try_from(exponent - DECIMAL128_MIN_EXPONENT).ok()?;
    let bits = (u128::from(negative) << 127) | (biased << 113) | coefficient;
    Some(Decimal128::from_bytes(bits.to_le_bytes()))
}

/// Nearest double to a decimal128 (correctly rounded; overflow gives ±inf, underflow ±0).
pub fn decimal128_to_f64(d: &Decimal128) -> f64 {
    match decode_decimal128(d) {
        DecimalParts::NaN => f64::NAN,
        DecimalParts::Infinity { negative } => {
            if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        DecimalParts::Finite { negative, coefficient, exponent } => {
            // The standard library's parser rounds correctly; the text is at most ~45 bytes.
            let magnitude = format!("{coefficient}e{exponent}").parse::<f64>().unwrap_or(f64::NAN);
            if negative {
                -magnitude
            } else {
                magnitude
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structural comparison.

enum Frame<'a> {
    Docs(bson::document::Iter<'a>, bson::document::Iter<'a>),
    Arrays(std::slice::Iter<'a, Bson>, std::slice::Iter<'a, Bson>),
}

/// Finishes a comparison whose pending containers are on `stack` (innermost last).
fn drain(mut stack: Vec<Frame<'_>>) -> Ordering {
    while let Some(top) = stack.last_mut() {
        let (left, right) = match top {
            Frame::Docs(l, r) => (l.next().map(|(k, v)| (Some(k), v)), r.next().map(|(k, v)| (Some(k), v))),
            Frame::Arrays(l, r) => (l.next().map(|v| (None, v)), r.next().map(|v| (None, v))),
        };
        match (left, right) {
            (None, None) => {
                stack.pop();
            }
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let by_rank = canonical_type_rank(va).cmp(&canonical_type_rank(vb));
                if by_rank != Ordering::Equal {
                    return by_rank;
                }
                if let (Some(ka), Some(kb)) = (ka, kb) {
                    let by_name = ka.as_bytes().cmp(kb.as_bytes());
                    if by_name != Ordering::Equal {
                        return by_name;
                    }
                }
                let by_value = compare_shallow(va, vb, &mut stack);
                if by_value != Ordering::Equal {
                    return by_value;
                }
            }
        }
    }
    Ordering::Equal
}

/// Compares everything about `a` and `b` except the contents of nested containers, which are
/// pushed on `stack` to be compared next (they are the last thing that decides).
fn compare_shallow<'a>(a: &'a Bson, b: &'a Bson, stack: &mut Vec<Frame<'a>>) -> Ordering {
    let by_rank = canonical_type_rank(a).cmp(&canonical_type_rank(b));
    if by_rank != Ordering::Equal {
        return by_rank;
    }
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            stack.push(Frame::Docs(x.iter(), y.iter()));
            Ordering::Equal
        }
        (Bson::Array(x), Bson::Array(y)) => {
            stack.push(Frame::Arrays(x.iter(), y.iter()));
            Ordering::Equal
        }
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            let by_code = x.code.as_bytes().cmp(y.code.as_bytes());
            if by_code == Ordering::Equal {
                stack.push(Frame::Docs(x.scope.iter(), y.scope.iter()));
            }
            by_code
        }
        _ => compare_scalars(a, b),
    }
}

/// Values of equal canonical rank that are not containers.
fn compare_scalars(a: &Bson, b: &Bson) -> Ordering {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return compare_numbers(&x, &y);
    }
    if let (Some(x), Some(y)) = (string_bytes(a), string_bytes(b)) {
        // A statement running with a collation compares string values by it.
        return super::collation::with_active(|c| match c {
            Some(c) => c.compare(
                std::str::from_utf8(x).unwrap_or_default(),
                std::str::from_utf8(y).unwrap_or_default(),
            ),
            None => x.cmp(y),
        });
    }
    match (a, b) {
        (Bson::Binary(x), Bson::Binary(y)) => binary_len(x)
            .cmp(&binary_len(y))
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => timestamp_u64(x).cmp(&timestamp_u64(y)),
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .as_bytes()
            .cmp(y.pattern.as_bytes())
            .then_with(|| x.options.as_bytes().cmp(y.options.as_bytes())),
        (Bson::DbPointer(_), Bson::DbPointer(_)) => {
            let (nx, ox) = db_pointer_parts(a);
            let (ny, oy) = db_pointer_parts(b);
            nx.len().cmp(&ny.len()).then_with(|| nx.as_bytes().cmp(ny.as_bytes())).then_with(|| ox.cmp(&oy))
        }
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.as_bytes().cmp(y.as_bytes()),
        // MinKey, Undefined, Null, MaxKey: one value per rank.
        _ => Ordering::Equal,
    }
}

fn string_bytes(v: &Bson) -> Option<&[u8]> {
    match v {
        Bson::String(s) | Bson::Symbol(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// mongod orders BinData by its stored length; bson stores subtype 2 ("old binary") without the
/// 4-byte inner length that the stored length includes.
pub(crate) fn binary_len(b: &bson::Binary) -> usize {
    match b.subtype {
        bson::spec::BinarySubtype::BinaryOld => b.bytes.len().saturating_add(4),
        _ => b.bytes.len(),
    }
}

pub(crate) fn timestamp_u64(t: &bson::Timestamp) -> u64 {
    (u64::from(t.time) << 32) | u64::from(t.increment)
}

/// Namespace and ObjectId bytes of a DBPointer (bson 2 keeps its fields private, but its
/// extended JSON form exposes them). Anything else yields empty parts.
pub(crate) fn db_pointer_parts(v: &Bson) -> (String, [u8; 12]) {
    let json = v.clone().into_relaxed_extjson();
    let inner = &json["$dbPointer"];
    let ns = inner["$ref"].as_str().unwrap_or_default().to_owned();
    let oid = inner["$id"]["$oid"]
        .as_str()
        .and_then(|h| bson::oid::ObjectId::parse_str(h).ok())
        .map(|o| o.bytes())
        .unwrap_or_default();
    (ns, oid)
}

// ---------------------------------------------------------------------------------------------
// Exact numbers.

/// Doubles order as mongod orders them: NaN lowest and equal to NaN, -0 == 0.
fn compare_f64(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// A number as an exact rational: finite values are `±mant * 2^pow2 * 5^pow5` with `mant > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExactNum {
    NaN,
    NegInf,
    Finite { neg: bool, mant: u128, pow2: i32, pow5: i32 },
    Zero,
    PosInf,
}

impl ExactNum {
    pub(crate) fn of_num(n: &Num) -> ExactNum {
        match *n {
            Num::Int32(i) => Self::of_i64(i64::from(i)),
            Num::Int64(i) => Self::of_i64(i),
            Num::Double(f) => Self::of_f64(f),
            Num::Decimal(d) => Self::of_decimal(&d),
        }
    }

    fn of_i64(i: i64) -> ExactNum {
        if i == 0 {
            return ExactNum::Zero;
        }
        Self::finite(i < 0, u128::from(i.unsigned_abs()), 0, 0)
    }

    fn of_f64(f: f64) -> ExactNum {
        if f.is_nan() {
            return ExactNum::NaN;
        }
        if f.is_infinite() {
            return if f < 0.0 { ExactNum::NegInf } else { ExactNum::PosInf };
        }
        if f == 0.0 {
            return ExactNum::Zero;
        }
        let bits = f.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1u64 << 52) - 1);
        let (mant, pow2) =
            if biased == 0 { (fraction, -1074) } else { (fraction | (1u64 << 52), biased - 1075) };
        Self::finite(f < 0.0, u128::from(mant), pow2, 0)
    }

    fn of_decimal(d: &Decimal128) -> ExactNum {
        match decode_decimal128(d) {
            DecimalParts::NaN => ExactNum::NaN,
            DecimalParts::Infinity { negative: true } => ExactNum::NegInf,
            DecimalParts::Infinity { negative: false } => ExactNum::PosInf,
            DecimalParts::Finite { negative, coefficient, exponent } => {
                Self::finite(negative, coefficient, exponent, exponent)
            }
        }
    }

    /// Canonical form: zero is `Zero`, and `mant` carries no factor of two.
    fn finite(neg: bool, mant: u128, pow2: i32, pow5: i32) -> ExactNum {
        if mant == 0 {
            return ExactNum::Zero;
        }
        let tz = mant.trailing_zeros();
        ExactNum::Finite { neg, mant: mant >> tz, pow2: pow2.saturating_add(tz as i32), pow5 }
    }

    /// Position in NaN < -inf < negative < 0 < positive < +inf.
    pub(crate) fn class(&self) -> u8 {
        match self {
            ExactNum::NaN => 0,
            ExactNum::NegInf => 1,
            ExactNum::Finite { neg: true, .. } => 2,
            ExactNum::Zero => 3,
            ExactNum::Finite { neg: false, .. } => 4,
            ExactNum::PosInf => 5,
        }
    }
}

pub(crate) fn exact_number(v: &Bson) -> Option<ExactNum> {
    as_number(v).map(|n| ExactNum::of_num(&n))
}

fn compare_exact(a: &ExactNum, b: &ExactNum) -> Ordering {
    match (*a, *b) {
        (
            ExactNum::Finite { neg: na, mant: ma, pow2: ea, pow5: fa },
            ExactNum::Finite { neg: nb, mant: mb, pow2: eb, pow5: fb },
        ) if na == nb => {
            let by_magnitude = compare_magnitudes((ma, ea, fa), (mb, eb, fb));
            if na {
                by_magnitude.reverse()
            } else {
                by_magnitude
            }
        }
        _ => a.class().cmp(&b.class()),
    }
}

const LOG2_5: f64 = 2.321_928_094_887_362;

/// Compares `ma * 2^ea * 5^fa` with `mb * 2^eb * 5^fb` (both mantissas non-zero).
fn compare_magnitudes(a: (u128, i32, i32), b: (u128, i32, i32)) -> Ordering {
    let (ma, ea, fa) = a;
    let (mb, eb, fb) = b;
    if fa == fb {
        return compare_binary(ma, ea, mb, eb);
    }
    // log2 estimates are accurate to far better than 1e-9 here, so a gap of 1 decides.
    let la = (ma as f64).log2() + f64::from(ea) + f64::from(fa) * LOG2_5;
    let lb = (mb as f64).log2() + f64::from(eb) + f64::from(fb) * LOG2_5;
    if la > lb + 1.0 {
        return Ordering::Greater;
    }
    if lb > la + 1.0 {
        return Ordering::Less;
    }
    // Close magnitudes: the exponent differences are small (bounded by the decimal128 and
    // double ranges), so cross-multiplying stays within a few thousand bits.
    let (e_min, f_min) = (ea.min(eb), fa.min(fb));
    let scaled = |m: u128, e: i32, f: i32| {
        let mut n = BigNat::from_u128(m);
        n.mul_pow5(f.abs_diff(f_min));
        n.shl(u64::from(e.abs_diff(e_min)));
        n
    };
    scaled(ma, ea, fa).cmp(&scaled(mb, eb, fb))
}

/// Compares `ma * 2^ea` with `mb * 2^eb` (both mantissas non-zero).
fn compare_binary(ma: u128, ea: i32, mb: u128, eb: i32) -> Ordering {
    let top_a = i64::from(128 - ma.leading_zeros()) + i64::from(ea);
    let top_b = i64::from(128 - mb.leading_zeros()) + i64::from(eb);
    if top_a != top_b {
        return top_a.cmp(&top_b);
    }
    // Same leading-bit position: aligning the mantissas cannot overflow 128 bits.
    if ea >= eb {
        (ma << ea.abs_diff(eb)).cmp(&mb)
    } else {
        ma.cmp(&(mb << eb.abs_diff(ea)))
    }
}

/// A small unsigned big integer (little-endian 64-bit limbs, no high zero limbs). Sizes are
/// bounded by the decimal128/double exponent ranges, never by client-chosen lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BigNat {
    limbs: Vec<u64>,
}

impl BigNat {
    pub(crate) fn from_u128(v: u128) -> BigNat {
        let mut n = BigNat { limbs: vec![v as u64, (v >> 64) as u64] };
        n.trim();
        n
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    pub(crate) fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(top) => (self.limbs.len() as u64 - 1) * 64 + u64::from(64 - top.leading_zeros()),
        }
    }

    pub(crate) fn to_u128(&self) -> Option<u128> {
        match self.limbs.as_slice() {
            [] => Some(0),
            [lo] => Some(u128::from(*lo)),
            [lo, hi] => Some(u128::from(*lo) | (u128::from(*hi) << 64)),
            _ => None,
        }
    }

    fn mul_small(&mut self, m: u64) {
        let mut carry: u128 = 0;
        for limb in self.limbs.iter_mut() {
            let p = u128::from(*limb) * u128::from(m) + carry;
            *limb = p as u64;
            carry = p >> 64;
        }
        if carry != 0 {
            self.limbs.push(carry as u64);
        }
        self.trim();
    }

    pub(crate) fn mul_pow5(&mut self, mut k: u32) {
        const POW5_27: u64 = 7_450_580_596_923_828_125;
        while k >= 27 {
            self.mul_small(POW5_27);
            k -= 27;
        }
        if k > 0 {
            self.mul_small(5u64.pow(k));
        }
    }

    pub(crate) fn shl(&mut self, n: u64) {
        if self.is_zero() || n == 0 {
            return;
        }
        let bits = (n % 64) as u32;
        if bits != 0 {
            let mut carry = 0u64;
            for limb in self.limbs.iter_mut() {
                let next = *limb >> (64 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry != 0 {
                self.limbs.push(carry);
            }
        }
        let whole = usize::try_from(n / 64).unwrap_or(0);
        if whole > 0 {
            self.limbs.splice(0..0, std::iter::repeat_n(0, whole));
        }
    }

    pub(crate) fn shr1(&mut self) {
        let mut carry = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let low = *limb & 1;
            *limb = (*limb >> 1) | (carry << 63);
            carry = low;
        }
        self.trim();
    }

    /// `self -= other`; the caller guarantees `self >= other`.
    pub(crate) fn sub_assign(&mut self, other: &BigNat) {
        let mut borrow = false;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let o = other.limbs.get(i).copied().unwrap_or(0);
            let (d1, b1) = limb.overflowing_sub(o);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *limb = d2;
            borrow = b1 || b2;
        }
        self.trim();
    }
}

impl PartialOrd for BigNat {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigNat {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bson::spec::BinarySubtype;
    use bson::{doc, Binary, JavaScriptCodeWithScope, Regex, Timestamp};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::str::FromStr;

    pub(crate) fn dec(s: &str) -> Bson {
        Bson::Decimal128(Decimal128::from_str(s).expect("test decimal"))
    }

    pub(crate) fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    fn db_pointer(ns: &str, oid_byte: u8) -> Bson {
        // Raw BSON {x: DBPointer(ns, oid)}: bson 2 offers no public constructor.
        let mut body = vec![0x0c, b'x', 0];
        body.extend_from_slice(&(ns.len() as i32 + 1).to_le_bytes());
        body.extend_from_slice(ns.as_bytes());
        body.push(0);
        body.extend_from_slice(&[oid_byte; 12]);
        body.push(0);
        let mut raw = ((body.len() + 4) as i32).to_le_bytes().to_vec();
        raw.extend_from_slice(&body);
        let d: Document = bson::from_slice(&raw).expect("dbpointer doc");
        d.get("x").cloned().expect("x")
    }

    const EDGE_DECIMALS: &[&str] = &[
        "NaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "0",
        "-0",
        "0E+300",
        "0E-6176",
        "1",
        "1.0",
        "10E-1",
        "0.1",
        "-0.1",
        "0.5",
        "0.25",
        "-1E+10",
        "1E-6000",
        "1E-6176",
        "9.999999999999999999999999999999999E+6144",
        "-9.999999999999999999999999999999999E+6144",
        "1.000000000000000000000000000000001",
        "0.9999999999999999999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "9007199254740992",
        "9007199254740993",
        "18446744073709551616",
        "18446744073709551617",
        "36893488147419103232",
        "36893488147419103233",
        "0.1000000000000000055511151231257827",
        "0.1000000000000000055511151231257828",
        "1.7976931348623157E+308",
        "4.940656458412465441765687928682213E-324",
        "2147483647",
        "-2147483648",
    ];

    fn edge_double(r: &mut StdRng) -> f64 {
        const E: &[f64] = &[
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            -1.0,
            0.1,
            0.5,
            9007199254740992.0,
            9007199254740994.0,
            9.223372036854776e18,
            -9.223372036854776e18,
            1.8446744073709552e19,
            3.6893488147419103e19,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            2147483647.0,
            1e-300,
            1e300,
        ];
        E[r.gen_range(0..E.len())]
    }

    fn edge_i64(r: &mut StdRng) -> i64 {
        const E: &[i64] = &[
            0,
            1,
            -1,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            1 << 53,
            (1 << 53) + 1,
            (1 << 53) - 1,
            -(1 << 53) - 1,
            i32::MAX as i64,
            i32::MIN as i64,
            (1 << 62) + 1,
        ];
        E[r.gen_range(0..E.len())].saturating_add(if r.gen_bool(0.3) { r.gen_range(-2..=2) } else { 0 })
    }

    /// Renders an exactly-representable integer as a random numeric type.
    fn int_as_random_type(r: &mut StdRng, i: i64) -> Bson {
        match r.gen_range(0..4) {
            0 if i32::try_from(i).is_ok() => Bson::Int32(i as i32),
            1 if (i as f64) as i128 == i as i128 && (i as f64) < 9.3e18 => Bson::Double(i as f64),
            2 => {
                // Random trailing zeros so that 1, 1.0, 10E-1 all occur.
                let zeros = r.gen_range(0..4u32);
                let c = u128::from(i.unsigned_abs()) * 10u128.pow(zeros);
                make_decimal128(i < 0, c, -(zeros as i32)).map(Bson::Decimal128).unwrap_or(Bson::Int64(i))
            }
            _ => Bson::Int64(i),
        }
    }

    pub(crate) fn random_number(r: &mut StdRng) -> Bson {
        match r.gen_range(0..12) {
            0 | 1 => {
                let i = r.gen_range(-3..=3);
                int_as_random_type(r, i)
            }
            2 => {
                let i = edge_i64(r);
                int_as_random_type(r, i)
            }
            3 => Bson::Double(edge_double(r)),
            4 => dec(EDGE_DECIMALS[r.gen_range(0..EDGE_DECIMALS.len())]),
            5 => {
                // f64 neighbours of an edge value.
                let mut f = edge_double(r);
                for _ in 0..r.gen_range(1..=3) {
                    f = if r.gen_bool(0.5) { f.next_up() } else { f.next_down() };
                }
                Bson::Double(f)
            }
            6 => Bson::Double(f64::from_bits(r.gen())),
            7 => Bson::Int64(r.gen()),
            8 => {
                // A decimal within a unit in the 34th digit of a double.
                let f = match r.gen_range(0..3) {
                    0 => edge_double(r),
                    1 => f64::from_bits(r.gen()),
                    _ => r.gen_range(-4.0..4.0),
                };
                let text = format!("{f:.33e}");
                match Decimal128::from_str(&text) {
                    Ok(d) => match (r.gen_range(0..3), decode_decimal128(&d)) {
                        (0, DecimalParts::Finite { negative, coefficient, exponent }) => {
                            let c = if r.gen_bool(0.5) {
                                coefficient.saturating_add(1)
                            } else {
                                coefficient.saturating_sub(1)
                            };
                            make_decimal128(negative, c, exponent)
                                .map(Bson::Decimal128)
                                .unwrap_or(Bson::Decimal128(d))
                        }
                        _ => Bson::Decimal128(d),
                    },
                    Err(_) => Bson::Double(f),
                }
            }
            9 => {
                // Random decimal near small magnitudes, so values collide across scales.
                let c = if r.gen_bool(0.5) {
                    r.gen_range(0..30u128)
                } else {
                    r.gen_range(0..=DECIMAL128_MAX_COEFFICIENT)
                };
                let e = r.gen_range(-40..=5);
                Bson::Decimal128(make_decimal128(r.gen_bool(0.3), c, e).expect("in range"))
            }
            10 => {
                let shift = r.gen_range(0..110);
                let c = r.gen_range(0..=DECIMAL128_MAX_COEFFICIENT >> shift);
                let e = r.gen_range(DECIMAL128_MIN_EXPONENT..=DECIMAL128_MAX_EXPONENT);
                Bson::Decimal128(make_decimal128(r.gen_bool(0.5), c, e).expect("in range"))
            }
            _ => {
                // Doubles that are dyadic fractions, also as the equal decimal.
                let f = f64::from(r.gen_range(-64..64i32)) / 16.0;
                if r.gen_bool(0.5) {
                    Bson::Double(f)
                } else {
                    dec(&format!("{f}"))
                }
            }
        }
    }

    fn random_str(r: &mut StdRng) -> String {
        const ALPHABET: &[&str] = &["a", "b", "\0", "\u{7f}", "é", "ab"];
        (0..r.gen_range(0..=3)).map(|_| ALPHABET[r.gen_range(0..ALPHABET.len())]).collect()
    }

    fn random_doc(r: &mut StdRng, depth: u32) -> Document {
        const NAMES: &[&str] = &["", "a", "b", "ab", "a\0"];
        let mut d = Document::new();
        if depth == 0 {
            return d;
        }
        for _ in 0..r.gen_range(0..=3) {
            d.insert(NAMES[r.gen_range(0..NAMES.len())], random_value(r, depth - 1));
        }
        d
    }

    /// A random value of any type, nested at most `depth` levels, biased to near-equal values.
    pub(crate) fn random_value(r: &mut StdRng, depth: u32) -> Bson {
        match r.gen_range(0..100) {
            0..=39 => random_number(r),
            40..=47 => Bson::String(random_str(r)),
            48..=50 => Bson::Symbol(random_str(r)),
            51..=57 if depth > 0 => Bson::Document(random_doc(r, depth)),
            58..=64 if depth > 0 => {
                Bson::Array((0..r.gen_range(0..=3)).map(|_| random_value(r, depth - 1)).collect())
            }
            65..=68 => {
                const SUBTYPES: &[BinarySubtype] = &[
                    BinarySubtype::Generic,
                    BinarySubtype::BinaryOld,
                    BinarySubtype::Uuid,
                    BinarySubtype::UserDefined(0x80),
                ];
                const BYTES: &[u8] = &[0, 1, 0xff];
                let len = r.gen_range(0..=5);
                Bson::Binary(Binary {
                    subtype: SUBTYPES[r.gen_range(0..SUBTYPES.len())],
                    bytes: (0..len).map(|_| BYTES[r.gen_range(0..3)]).collect(),
                })
            }
            69..=70 => {
                let mut b = [if r.gen_bool(0.5) { 0 } else { 0xff }; 12];
                b[r.gen_range(0..12)] = r.gen_range(0..3);
                Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))
            }
            71..=72 => Bson::Boolean(r.gen()),
            73..=75 => {
                const MS: &[i64] = &[i64::MIN, -1, 0, 1, i64::MAX];
                let ms = if r.gen_bool(0.8) { MS[r.gen_range(0..MS.len())] } else { r.gen() };
                Bson::DateTime(bson::DateTime::from_millis(ms))
            }
            76..=78 => {
                const T: &[u32] = &[0, 1, u32::MAX];
                Bson::Timestamp(Timestamp { time: T[r.gen_range(0..3)], increment: T[r.gen_range(0..3)] })
            }
            79..=81 => {
                const OPTS: &[&str] = &["", "i", "im", "m"];
                Bson::RegularExpression(Regex {
                    pattern: random_str(r).replace('\0', ""),
                    options: OPTS[r.gen_range(0..OPTS.len())].to_owned(),
                })
            }
            82..=83 => Bson::JavaScriptCode(random_str(r)),
            84..=85 => Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: random_str(r),
                scope: random_doc(r, depth.saturating_sub(1)),
            }),
            86 => {
                const NS: &[&str] = &["", "a", "b", "ab", "db.c"];
                db_pointer(NS[r.gen_range(0..NS.len())], r.gen_range(0..2))
            }
            87 => Bson::MinKey,
            88 => Bson::MaxKey,
            89..=90 => Bson::Null,
            91 => Bson::Undefined,
            _ => random_number(r),
        }
    }

    /// Independent oracle for numbers: exact decimal text of each value, compared as strings.
    /// Returns (class, scientific exponent, significant digits without trailing zeros).
    fn oracle(v: &Bson) -> Oracle {
        let (neg, digits, exp): (bool, String, i64) = match *v {
            Bson::Int32(i) => (i < 0, i.unsigned_abs().to_string(), 0),
            Bson::Int64(i) => (i < 0, i.unsigned_abs().to_string(), 0),
            Bson::Double(f) => {
                if f.is_nan() {
                    return (0, 0, String::new());
                }
                if f.is_infinite() {
                    return (if f < 0.0 { 1 } else { 5 }, 0, String::new());
                }
                // 1100 fractional digits print any double exactly.
                let text = format!("{:.1100e}", f.abs());
                let (mantissa, e) = text.split_once('e').expect("exp form");
                let digits = mantissa.replace('.', "");
                let e: i64 = e.parse().expect("exp");
                (f < 0.0, digits, e - 1100)
            }
            Bson::Decimal128(d) => match decode_decimal128(&d) {
                DecimalParts::NaN => return (0, 0, String::new()),
                DecimalParts::Infinity { negative } => {
                    return (if negative { 1 } else { 5 }, 0, String::new())
                }
                DecimalParts::Finite { negative, coefficient, exponent } => {
                    (negative, coefficient.to_string(), i64::from(exponent))
                }
            },
            _ => unreachable!(),
        };
        // value = digits * 10^exp
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            return (3, 0, String::new());
        }
        let sci = exp + trimmed.len() as i64 - 1;
        let sig = trimmed.trim_end_matches('0').to_owned();
        (if neg { 2 } else { 4 }, sci, sig)
    }

    type Oracle = (u8, i64, String);

    fn oracle_cmp((ca, ea, da): &Oracle, (cb, eb, db): &Oracle) -> Ordering {
        if ca != cb {
            return ca.cmp(cb);
        }
        let mag = ea.cmp(eb).then_with(|| da.cmp(db));
        if *ca == 2 {
            mag.reverse()
        } else {
            mag
        }
    }

    #[test]
    fn numbers_match_exact_decimal_oracle() {
        let mut r = rng(1);
        let values: Vec<Bson> = (0..3000).map(|_| random_number(&mut r)).collect();
        let oracles: Vec<Oracle> = values.iter().map(oracle).collect();
        let mut cross_type_equal = 0;
        for _ in 0..300_000 {
            let i = r.gen_range(0..values.len());
            let j = r.gen_range(0..values.len());
            let (a, b) = (&values[i], &values[j]);
            let want = oracle_cmp(&oracles[i], &oracles[j]);
            assert_eq!(compare_bson(a, b), want, "{a:?} vs {b:?}");
            if want == Ordering::Equal && a.element_type() != b.element_type() {
                cross_type_equal += 1;
            }
        }
        // The generator must produce near-equal values for this test to bite.
        assert!(cross_type_equal > 1000, "{cross_type_equal}");
    }

    #[test]
    fn numeric_edge_cases() {
        use Ordering::*;
        let cases: Vec<(Bson, Bson, Ordering)> = vec![
            (Bson::Int64(i64::MAX), Bson::Double(9.223372036854776e18), Less),
            (Bson::Int64(i64::MIN), Bson::Double(-9.223372036854776e18), Equal),
            (Bson::Int64((1 << 53) + 1), Bson::Double(9007199254740992.0), Greater),
            (Bson::Int64(1 << 53), Bson::Double(9007199254740992.0), Equal),
            (Bson::Double(f64::NAN), Bson::Double(f64::NEG_INFINITY), Less),
            (Bson::Double(f64::NAN), dec("NaN"), Equal),
            (dec("-NaN"), Bson::Double(f64::NAN), Equal),
            (Bson::Double(-0.0), Bson::Int32(0), Equal),
            (dec("-0"), Bson::Double(0.0), Equal),
            (dec("0E+300"), Bson::Int64(0), Equal),
            (dec("1.0"), Bson::Int32(1), Equal),
            (dec("10E-1"), Bson::Double(1.0), Equal),
            (dec("0.1"), Bson::Double(0.1), Less),
            (dec("0.1000000000000000055511151231257828"), Bson::Double(0.1), Greater),
            (dec("0.1000000000000000055511151231257827"), Bson::Double(0.1), Less),
            (dec("1E-6000"), Bson::Double(5e-324), Less),
            (dec("1E-6000"), Bson::Int32(0), Greater),
            (dec("-1E+10"), Bson::Int64(-10_000_000_000), Equal),
            (dec("9223372036854775808"), Bson::Int64(i64::MAX), Greater),
            (dec("9223372036854775808"), Bson::Double(9.223372036854776e18), Equal),
            (dec("Infinity"), Bson::Double(f64::INFINITY), Equal),
            (dec("Infinity"), Bson::Double(f64::MAX), Greater),
            (dec("-Infinity"), dec("-9.999999999999999999999999999999999E+6144"), Less),
            (dec("1E+400"), Bson::Double(f64::MAX), Greater),
            (dec("0.5"), Bson::Double(0.5), Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_bson(&a, &b), want, "{a:?} vs {b:?}");
            assert_eq!(compare_bson(&b, &a), want.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn type_order_and_structures() {
        use Ordering::*;
        let ordered = vec![
            Bson::MinKey,
            Bson::Undefined,
            Bson::Null,
            Bson::Double(f64::NAN),
            Bson::Int32(5),
            Bson::String(String::new()),
            Bson::Document(doc! {}),
            Bson::Array(vec![]),
            Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![] }),
            Bson::ObjectId(bson::oid::ObjectId::from_bytes([0; 12])),
            Bson::Boolean(false),
            Bson::DateTime(bson::DateTime::from_millis(i64::MIN)),
            Bson::Timestamp(Timestamp { time: 0, increment: 0 }),
            Bson::RegularExpression(Regex { pattern: String::new(), options: String::new() }),
            db_pointer("", 0),
            Bson::JavaScriptCode(String::new()),
            Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope { code: String::new(), scope: doc! {} }),
            Bson::MaxKey,
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare_bson(&w[0], &w[1]), Less, "{:?} < {:?}", w[0], w[1]);
        }
        let cases: Vec<(Bson, Bson, Ordering)> = vec![
            (Bson::Symbol("a".into()), Bson::String("a".into()), Equal),
            (Bson::String("a".into()), Bson::String("a\0".into()), Less),
            (Bson::String("Z".into()), Bson::String("a".into()), Less),
            // Type rank decides before field name.
            (Bson::Document(doc! {"b": 1}), Bson::Document(doc! {"a": "x"}), Less),
            (Bson::Document(doc! {"a": 1}), Bson::Document(doc! {"b": 1}), Less),
            (Bson::Document(doc! {"a": 1}), Bson::Document(doc! {"a": 1, "b": 0}), Less),
            (Bson::Document(doc! {"a": 2}), Bson::Document(doc! {"a": 1.0, "b": 0}), Greater),
            (Bson::Array(vec![1.into()]), Bson::Array(vec![1.into(), 2.into()]), Less),
            (Bson::Array(vec![2.into()]), Bson::Array(vec![1.into(), 2.into()]), Greater),
            (Bson::Array(vec!["a".into()]), Bson::Array(vec![1.into(), 2.into()]), Greater),
            // BinData: length, then subtype, then bytes; subtype 2 counts its inner length.
            (
                Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: vec![0] }),
                Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 0] }),
                Less,
            ),
            (
                Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![9] }),
                Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: vec![0] }),
                Less,
            ),
            (
                Bson::Binary(Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![] }),
                Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![1; 4] }),
                Greater,
            ),
            (
                Bson::DateTime(bson::DateTime::from_millis(-1)),
                Bson::DateTime(bson::DateTime::from_millis(1)),
                Less,
            ),
            (
                Bson::Timestamp(Timestamp { time: 1, increment: 0 }),
                Bson::Timestamp(Timestamp { time: 0, increment: u32::MAX }),
                Greater,
            ),
            (db_pointer("b", 0), db_pointer("aa", 0), Less),
            (db_pointer("b", 0), db_pointer("a", 1), Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_bson(&a, &b), want, "{a:?} vs {b:?}");
            assert_eq!(compare_bson(&b, &a), want.reverse(), "{b:?} vs {a:?}");
        }
        assert_eq!(compare_docs(&doc! {"a": 1}, &doc! {"a": 1.0}), Equal);
        assert!(bson_equal(&Bson::Int32(7), &dec("7.00")));
    }

    #[test]
    fn decimal_codec() {
        for s in EDGE_DECIMALS {
            let d = Decimal128::from_str(s).expect("parse");
            if let DecimalParts::Finite { negative, coefficient, exponent } = decode_decimal128(&d) {
                assert_eq!(make_decimal128(negative, coefficient, exponent), Some(d), "{s}");
            }
        }
        assert_eq!(
            decode_decimal128(&Decimal128::from_str("-1.5E-3").expect("parse")),
            DecimalParts::Finite { negative: true, coefficient: 15, exponent: -4 }
        );
        // Non-canonical coefficient (10^34) and the "11" form both mean zero.
        let big = (6176u128 << 113) | (DECIMAL128_MAX_COEFFICIENT + 1);
        let eleven = (0b11u128 << 125) | 5;
        for bits in [big, eleven] {
            let v = Bson::Decimal128(Decimal128::from_bytes(bits.to_le_bytes()));
            assert!(bson_equal(&v, &Bson::Int32(0)));
        }
        assert_eq!(decimal128_to_f64(&Decimal128::from_str("0.1").expect("p")), 0.1);
        assert_eq!(decimal128_to_f64(&Decimal128::from_str("-1E+400").expect("p")), f64::NEG_INFINITY);
        assert!(decimal128_to_f64(&Decimal128::from_str("NaN").expect("p")).is_nan());
        assert_eq!(as_number(&Bson::Int32(3)).map(|n| n.to_f64()), Some(3.0));
        assert_eq!(as_number(&Bson::Null), None);
    }

    #[test]
    fn total_order_properties() {
        let mut r = rng(2);
        let mut values: Vec<Bson> = (0..1500).map(|_| random_value(&mut r, 3)).collect();
        // The standard sort detects many total-order violations by itself.
        values.sort_by(compare_bson);
        for i in 0..values.len() {
            for j in i..values.len() {
                let ij = compare_bson(&values[i], &values[j]);
                assert_ne!(ij, Ordering::Greater, "{:?} > {:?}", values[i], values[j]);
                assert_eq!(compare_bson(&values[j], &values[i]), ij.reverse());
            }
        }
        let pool: Vec<Bson> = (0..3000).map(|_| random_value(&mut r, 3)).collect();
        for _ in 0..200_000 {
            let a = &pool[r.gen_range(0..pool.len())];
            let b = &pool[r.gen_range(0..pool.len())];
            let c = &pool[r.gen_range(0..pool.len())];
            let (ab, bc, ac) = (compare_bson(a, b), compare_bson(b, c), compare_bson(a, c));
            if ab != Ordering::Greater && bc != Ordering::Greater {
                assert_ne!(ac, Ordering::Greater, "{a:?} {b:?} {c:?}");
                if ab == Ordering::Equal && bc == Ordering::Equal {
                    assert_eq!(ac, Ordering::Equal);
                }
            }
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut a = Bson::Int32(1);
        let mut b = Bson::Int32(2);
        for _ in 0..100_000 {
            a = Bson::Array(vec![a]);
            b = Bson::Array(vec![b]);
        }
        assert_eq!(compare_bson(&a, &b), Ordering::Less);
        // Dropping such values recursively is bson's business; leak them in the test.
        std::mem::forget(a);
        std::mem::forget(b);
    }
}
