//! Decimal128 arithmetic (IEEE 754-2008, 34 digits, round-half-even) for `$add`,
//! `$subtract`, `$multiply`, `$divide`, `$sum` and `$avg`: exact intermediate values in a
//! small unsigned big integer, rounded once. Doubles become decimals with 15 significant digits
//! and integers exactly, as mongod converts them.

use crate::query::compare::{
    decode_decimal128, make_decimal128, DecimalParts, Num, DECIMAL128_MAX_EXPONENT, DECIMAL128_MIN_EXPONENT,
};
use bson::Decimal128;
use std::cmp::Ordering;

const DIGITS: u32 = 34;

/// Little-endian base-2^32 unsigned integer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::with_capacity(4);
        while v > 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn trim(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|l| *l == 0)
    }

    fn to_u128(&self) -> Option<u128> {
        let t = self.clone().trim();
        if t.0.len() > 4 {
            return None;
        }
        Some(t.0.iter().rev().fold(0u128, |acc, l| (acc << 32) | u128::from(*l)))
    }

    fn mul_small(&self, m: u32) -> Big {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut carry = 0u64;
        for l in &self.0 {
            let v = u64::from(*l) * u64::from(m) + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    fn mul_pow10(&self, mut k: u32) -> Big {
        let mut v = self.clone();
        while k >= 9 {
            v = v.mul_small(1_000_000_000);
            k -= 9;
        }
        if k > 0 {
            v = v.mul_small(10u32.pow(k));
        }
        v
    }

    /// (quotient, remainder) of division by a small divisor.
    fn divmod_small(&self, d: u32) -> (Big, u32) {
        let mut out = vec![0u32; self.0.len()];
        let mut rem = 0u64;
        for i in (0..self.0.len()).rev() {
            let cur = (rem << 32) | u64::from(self.0[i]);
            out[i] = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        (Big(out).trim(), rem as u32)
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(o.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// self - o, for self >= o.
    fn sub(&self, o: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = i64::from(self.0[i]) - i64::from(o.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        Big(out).trim()
    }

    fn compare(&self, o: &Big) -> Ordering {
        let (a, b) = (self.clone().trim(), o.clone().trim());
        a.0.len().cmp(&b.0.len()).then_with(|| a.0.iter().rev().cmp(b.0.iter().rev()))
    }

    fn mul(&self, o: &Big) -> Big {
        let mut out = vec![0u64; self.0.len() + o.0.len() + 1];
        for (i, a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, b) in o.0.iter().enumerate() {
                let v = out[i + j] + u64::from(*a) * u64::from(*b) + carry;
                out[i + j] = v & 0xffff_ffff;
                carry = v >> 32;
            }
            let mut k = i + o.0.len();
            while carry > 0 {
                let v = out[k] + carry;
                out[k] = v & 0xffff_ffff;
                carry = v >> 32;
                k += 1;
            }
        }
        Big(out.into_iter().map(|v| v as u32).collect()).trim()
    }

    fn bits(&self) -> usize {
        let t = self.clone().trim();
        match t.0.last() {
            None => 0,
            Some(top) => (t.0.len() - 1) * 32 + (32 - top.leading_zeros() as usize),
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// (quotient, remainder is zero) of division by a divisor below 2^126.
    fn div_u128(&self, d: u128) -> (Big, bool) {
        let mut q = vec![0u32; self.0.len()];
        let mut rem: u128 = 0;
        for i in (0..self.bits()).rev() {
            rem = (rem << 1) | u128::from(self.bit(i));
            if rem >= d {
                rem -= d;
                q[i / 32] |= 1 << (i % 32);
            }
        }
        (Big(q).trim(), rem == 0)
    }

    fn digits(&self) -> u32 {
        let mut n = 0;
        let mut v = self.clone().trim();
        while !v.is_zero() {
            v = v.divmod_small(10).0;
            n += 1;
        }
        n
    }
}

/// A decimal value during a computation.
#[derive(Clone, Debug)]
enum Dec {
    NaN,
    Inf(bool),
    /// (negative, coefficient, exponent).
    Finite(bool, Big, i32),
}

fn from_decimal(d: &Decimal128) -> Dec {
    match decode_decimal128(d) {
        DecimalParts::NaN => Dec::NaN,
        DecimalParts::Infinity { negative } => Dec::Inf(negative),
        DecimalParts::Finite { negative, coefficient, exponent } => {
            Dec::Finite(negative, Big::from_u128(coefficient), exponent)
        }
    }
}

/// A number as a decimal (doubles rounded to 15 significant digits, as mongod converts them).
fn from_num(n: Num) -> Dec {
    match n {
        Num::Int32(i) => Dec::Finite(i < 0, Big::from_u128(u128::from(i.unsigned_abs())), 0),
        Num::Int64(i) => Dec::Finite(i < 0, Big::from_u128(u128::from(i.unsigned_abs())), 0),
        Num::Decimal(d) => from_decimal(&d),
        Num::Double(f) => {
            if f.is_nan() {
                return Dec::NaN;
            }
            if f.is_infinite() {
                return Dec::Inf(f < 0.0);
            }
            if f == 0.0 {
                return Dec::Finite(f.is_sign_negative(), Big::from_u128(0), 0);
            }
            // `{:.14e}` is the double correctly rounded to 15 significant digits.
            let s = format!("{:.14e}", f.abs());
            let Some((mant, exp)) = s.split_once('e') else { return Dec::NaN };
            let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
            let (Ok(c), Ok(e)) = (digits.parse::<u128>(), exp.parse::<i32>()) else { return Dec::NaN };
            Dec::Finite(f < 0.0, Big::from_u128(c), e - 14)
        }
    }
}

fn special(nan: bool, negative: bool) -> Decimal128 {
    let s = if nan {
        "NaN"
    } else if negative {
        "-Infinity"
    } else {
        "Infinity"
    };
    s.parse::<Decimal128>().unwrap_or_else(|_| Decimal128::from_bytes([0; 16]))
}

/// Rounds an exact value to a Decimal128 (34 digits, half-even; `sticky` says the true value
/// lies strictly above the coefficient in its last place).
fn round(negative: bool, coef: Big, mut exp: i32, mut sticky: bool) -> Decimal128 {
    let mut q = coef.trim();
    let mut last = 0u32;
    let mut digits = q.digits();
    let mut dropped = false;
    while digits > DIGITS || exp < DECIMAL128_MIN_EXPONENT {
        if dropped {
            sticky |= last != 0;
        }
        let (nq, r) = q.divmod_small(10);
        q = nq;
        last = r;
        dropped = true;
        exp += 1;
        digits = digits.saturating_sub(1);
        if q.is_zero() && exp >= DECIMAL128_MIN_EXPONENT && digits == 0 {
            break;
        }
    }
    if dropped {
        let odd = q.divmod_small(10).1 % 2 == 1;
        if last > 5 || (last == 5 && (sticky || odd)) {
            q = q.add(&Big::from_u128(1));
            if q.digits() > DIGITS {
                q = q.divmod_small(10).0;
                exp += 1;
            }
        }
    }
    // Too large an exponent: pad the coefficient with zeros while it fits, else infinity.
    while exp > DECIMAL128_MAX_EXPONENT && !q.is_zero() && q.digits() < DIGITS {
        q = q.mul_small(10);
        exp -= 1;
    }
    if exp > DECIMAL128_MAX_EXPONENT {
        if q.is_zero() {
            exp = DECIMAL128_MAX_EXPONENT;
        } else {
            return special(false, negative);
        }
    }
    let c = q.to_u128().unwrap_or(0);
    make_decimal128(negative, c, exp).unwrap_or_else(|| special(true, false))
}

fn add_dec(a: Dec, b: Dec) -> Decimal128 {
    match (a, b) {
        (Dec::NaN, _) | (_, Dec::NaN) => special(true, false),
        (Dec::Inf(p), Dec::Inf(q)) if p != q => special(true, false),
        (Dec::Inf(p), _) | (_, Dec::Inf(p)) => special(false, p),
        (Dec::Finite(na, ca, ea), Dec::Finite(nb, cb, eb)) => {
            // Align on the smaller exponent; an operand far below the other's last digit only
            // matters as a sticky bit, so it is replaced by one unit of a lower place.
            let (hi, lo) = if ea >= eb { ((na, ca, ea), (nb, cb, eb)) } else { ((nb, cb, eb), (na, ca, ea)) };
            let (nh, ch, eh) = hi;
            let (nl, mut cl, mut el) = lo;
            let shift_room = (DIGITS + 3).saturating_sub(ch.digits()) as i64;
            if !cl.is_zero()
                && !ch.is_zero()
                && i64::from(eh) - i64::from(el) > shift_room + i64::from(DIGITS) + 1
            {
                el = eh - shift_room as i32;
                cl = Big::from_u128(1);
                // The operand is strictly smaller than this unit, so this stays exact enough
                // for rounding: the result lies between the two neighbours of the true sum.
                let big_h = ch.mul_pow10((eh - el) as u32);
                let (neg, coef) = combine(nh, big_h, nl, cl);
                return round(neg, coef, el, false);
            }
            let e = el;
            let sh = ch.mul_pow10((eh - e) as u32);
            let (neg, coef) = combine(nh, sh, nl, cl);
            let neg = if coef.is_zero() { nh && nl } else { neg };
            round(neg, coef, e, false)
        }
    }
}

fn combine(na: bool, a: Big, nb: bool, b: Big) -> (bool, Big) {
    if na == nb {
        return (na, a.add(&b));
    }
    match a.compare(&b) {
        Ordering::Less => (nb, b.sub(&a)),
        _ => (na, a.sub(&b)),
    }
}

fn negate(d: Dec) -> Dec {
    match d {
        Dec::Finite(n, c, e) => Dec::Finite(!n, c, e),
        Dec::Inf(n) => Dec::Inf(!n),
        Dec::NaN => Dec::NaN,
    }
}

pub fn add(a: Num, b: Num) -> Decimal128 {
    add_dec(from_num(a), from_num(b))
}

pub fn sub(a: Num, b: Num) -> Decimal128 {
    add_dec(from_num(a), negate(from_num(b)))
}

pub fn mul(a: Num, b: Num) -> Decimal128 {
    match (from_num(a), from_num(b)) {
        (Dec::NaN, _) | (_, Dec::NaN) => special(true, false),
        (Dec::Inf(p), Dec::Finite(q, c, _)) | (Dec::Finite(q, c, _), Dec::Inf(p)) => {
            if c.is_zero() {
                special(true, false)
            } else {
                special(false, p != q)
            }
        }
        (Dec::Inf(p), Dec::Inf(q)) => special(false, p != q),
        (Dec::Finite(na, ca, ea), Dec::Finite(nb, cb, eb)) => round(na != nb, ca.mul(&cb), ea + eb, false),
    }
}

/// `a / b`; `None` when `b` is zero (the callers' division-by-zero error).
pub fn div(a: Num, b: Num) -> Option<Decimal128> {
    Some(match (from_num(a), from_num(b)) {
        (Dec::NaN, _) | (_, Dec::NaN) => special(true, false),
        (Dec::Inf(_), Dec::Inf(_)) => special(true, false),
        (Dec::Inf(p), Dec::Finite(q, _, _)) => special(false, p != q),
        (Dec::Finite(p, _, _), Dec::Inf(q)) => round(p != q, Big::from_u128(0), 0, false),
        (Dec::Finite(na, ca, ea), Dec::Finite(nb, cb, eb)) => {
            let d = cb.to_u128().filter(|d| *d != 0)?;
            if ca.is_zero() {
                return Some(round(na != nb, ca, ea - eb, false));
            }
            // Enough extra digits for a 34-digit quotient plus a rounding digit.
            let k = (DIGITS + 2 + cb.digits()).saturating_sub(ca.digits());
            let (mut q, exact) = ca.mul_pow10(k).div_u128(d);
            let mut exp = ea - eb - k as i32;
            // An exact quotient takes the exponent closest to the ideal one (ea - eb).
            if exact {
                while exp < ea - eb {
                    let (nq, r) = q.divmod_small(10);
                    if r != 0 {
                        break;
                    }
                    q = nq;
                    exp += 1;
                }
            }
            round(na != nb, q, exp, !exact)
        }
    })
}

/// Whether a decimal is zero (for division by zero).
pub fn is_zero(n: Num) -> bool {
    matches!(from_num(n), Dec::Finite(_, c, _) if c.is_zero())
}

impl Big {
    /// self mod d, for a nonzero d (shift-and-subtract: the remainder stays below `d`).
    fn rem(&self, d: &Big) -> Big {
        let mut r = Big(Vec::new());
        for i in (0..self.bits()).rev() {
            r = r.mul_small(2);
            if self.bit(i) {
                r = r.add(&Big::from_u128(1));
            }
            if r.compare(d) != Ordering::Less {
                r = r.sub(d);
            }
        }
        r.trim()
    }

    /// Keeps the `p` leading digits: (truncated coefficient, digits dropped, any nonzero).
    fn truncate_digits(self, p: u32) -> (Big, u32, bool) {
        let mut q = self.trim();
        let mut d = q.digits();
        let (mut dropped, mut sticky) = (0, false);
        while d > p {
            let (nq, r) = q.divmod_small(10);
            sticky |= r != 0;
            q = nq;
            d -= 1;
            dropped += 1;
        }
        (q, dropped, sticky)
    }
}

/// `a mod b` with the dividend's sign (IEEE remainder toward zero, as mongod's `$mod`);
/// `None` when `b` is zero.
pub fn rem(a: Num, b: Num) -> Option<Decimal128> {
    Some(match (from_num(a), from_num(b)) {
        (_, Dec::Finite(_, c, _)) if c.is_zero() => return None,
        (Dec::NaN, _) | (_, Dec::NaN) | (Dec::Inf(_), _) => special(true, false),
        (x @ Dec::Finite(..), Dec::Inf(_)) => match x {
            Dec::Finite(n, c, e) => round(n, c, e, false),
            _ => special(true, false),
        },
        (Dec::Finite(na, ca, ea), Dec::Finite(_, cb, eb)) => {
            // Both on the smaller exponent: the remainder of the integers is exact.
            let e = ea.min(eb);
            let x = ca.mul_pow10((ea - e) as u32);
            let y = cb.mul_pow10((eb - e) as u32);
            let r = if x.compare(&y) == Ordering::Less { x } else { x.rem(&y) };
            round(na, r, e, false)
        }
    })
}

/// Digits carried through `pow`'s repeated multiplications (3 beyond the result's 34, and
/// below 2^126 so the reciprocal of a negative power divides by a `u128`).
const POW_DIGITS: u32 = 37;

/// An intermediate of `pow`: (negative, coefficient, exponent, inexact).
type Approx = (bool, Big, i64, bool);

fn approx_mul(a: &Approx, b: &Approx) -> Approx {
    let (c, dropped, sticky) = a.1.mul(&b.1).truncate_digits(POW_DIGITS);
    (a.0 != b.0, c, a.2 + b.2 + i64::from(dropped), a.3 || b.3 || sticky)
}

/// Decimal `base ^ exp`. Integral exponents are computed in decimal (to 37 digits, rounded
/// once to 34); others as e^(y·ln x) in fixed point (`real_pow`), infinities through doubles.
pub fn pow(base: Num, exp: Num) -> Decimal128 {
    let (b, e) = (from_num(base), from_num(exp));
    let is_zero = |d: &Dec| matches!(d, Dec::Finite(_, c, _) if c.is_zero());
    let one = || round(false, Big::from_u128(1), 0, false);
    if is_zero(&e) || matches!(&b, Dec::Finite(false, c, 0) if c.to_u128() == Some(1)) {
        return one();
    }
    // The exponent as an integer, when it is one (and small enough to matter).
    let int_exp = match &e {
        Dec::Finite(n, c, x) => {
            let mut c = c.clone();
            let mut x = *x;
            while x < 0 {
                let (q, r) = c.divmod_small(10);
                if r != 0 {
                    break;
                }
                c = q;
                x += 1;
            }
            let v = if (0..=20).contains(&x) { c.mul_pow10(x as u32).to_u128() } else { None };
            match (x >= 0, v) {
                (true, Some(v)) if v <= u128::from(u64::MAX) => Some((*n, v as u64)),
                _ => None,
            }
        }
        _ => None,
    };
    let (Dec::Finite(bn, bc, be), Some((neg_exp, n))) = (&b, int_exp) else {
        return match (&b, &e) {
            (Dec::Finite(false, bc, be), Dec::Finite(en, ec, ee)) if !bc.is_zero() => {
                real_pow(bc, *be, *en, ec, *ee)
            }
            _ => float_pow(base, exp),
        };
    };
    if bc.is_zero() {
        return round(*bn && n % 2 == 1, Big::from_u128(0), 0, false);
    }
    let x: Approx = (*bn, bc.clone(), i64::from(*be), false);
    let mut acc: Approx = (false, Big::from_u128(1), 0, false);
    let mut sq = x;
    let mut k = n;
    // Magnitudes move away from 1 monotonically, so once one is out of range the result is.
    let out_of_range = |a: &Approx| {
        let mag = a.2 + i64::from(a.1.digits());
        mag > i64::from(DECIMAL128_MAX_EXPONENT) + 80 || mag < i64::from(DECIMAL128_MIN_EXPONENT) - 80
    };
    while k > 0 {
        if k & 1 == 1 {
            acc = approx_mul(&acc, &sq);
            if out_of_range(&acc) {
                break;
            }
        }
        k >>= 1;
        if k > 0 {
            sq = approx_mul(&sq, &sq);
            if out_of_range(&sq) {
                acc = approx_mul(&acc, &sq);
                break;
            }
        }
    }
    let (neg, c, x, inexact) = acc;
    let neg = neg && n % 2 == 1;
    let big = x + i64::from(c.digits()) > i64::from(DECIMAL128_MAX_EXPONENT) + 80;
    let small = x + i64::from(c.digits()) < i64::from(DECIMAL128_MIN_EXPONENT) - 80;
    if !neg_exp {
        if big {
            return special(false, neg);
        }
        if small {
            return round(neg, Big::from_u128(0), DECIMAL128_MIN_EXPONENT, false);
        }
        return round(neg, c, x as i32, inexact);
    }
    // A negative exponent: the reciprocal.
    if small {
        return special(false, neg);
    }
    if big {
        return round(neg, Big::from_u128(0), DECIMAL128_MIN_EXPONENT, false);
    }
    let Some(d) = c.to_u128() else { return special(true, false) };
    let k = DIGITS + 3 + c.digits();
    let (mut q, exact) = Big::from_u128(1).mul_pow10(k).div_u128(d);
    let mut exp = -(i64::from(k)) - x;
    // An exact quotient takes the exponent closest to the ideal one (that of 1 / x^n).
    if exact && !inexact {
        while exp < -x {
            let (nq, r) = q.divmod_small(10);
            if r != 0 {
                break;
            }
            q = nq;
            exp += 1;
        }
    }
    round(neg, q, exp.clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2)) as i32, inexact || !exact)
}

/// Fractional digits of the fixed-point numbers `real_pow` computes with (16 beyond the
/// result's 34, so the rounding errors of the series stay far below its last digit).
const FX: u32 = 50;

impl Big {
    /// self / 10^k, truncated.
    fn div_pow10(&self, mut k: u32) -> Big {
        let mut v = self.clone();
        while k >= 9 {
            v = v.divmod_small(1_000_000_000).0;
            k -= 9;
        }
        if k > 0 {
            v = v.divmod_small(10u32.pow(k)).0;
        }
        v
    }

    /// self / d, truncated, for a nonzero d (shift-and-subtract).
    fn div_big(&self, d: &Big) -> Big {
        let mut q = vec![0u32; self.0.len()];
        let mut r = Big(Vec::new());
        for i in (0..self.bits()).rev() {
            r = r.mul_small(2);
            if self.bit(i) {
                r = r.add(&Big::from_u128(1));
            }
            if r.compare(d) != Ordering::Less {
                r = r.sub(d);
                q[i / 32] |= 1 << (i % 32);
            }
        }
        Big(q).trim()
    }
}

fn fx_one() -> Big {
    Big::from_u128(1).mul_pow10(FX)
}

fn fx_mul(a: &Big, b: &Big) -> Big {
    a.mul(b).div_pow10(FX)
}

fn fx_div(a: &Big, b: &Big) -> Big {
    a.mul_pow10(FX).div_big(b)
}

/// 2·atanh(num/den) = ln((den + num) / (den - num)), for 0 <= num/den well below 1.
fn two_atanh(num: &Big, den: &Big) -> Big {
    let z = fx_div(num, den);
    let z2 = fx_mul(&z, &z);
    let mut sum = Big(Vec::new());
    let mut term = z;
    let mut k = 1u32;
    while !term.is_zero() && k < 10_000 {
        sum = sum.add(&term.divmod_small(k).0);
        term = fx_mul(&term, &z2);
        k += 2;
    }
    sum.mul_small(2)
}

fn fx_ln2() -> Big {
    two_atanh(&Big::from_u128(1), &Big::from_u128(3))
}

/// ln 10 = 3·ln 2 + ln 1.25.
fn fx_ln10() -> Big {
    fx_ln2().mul_small(3).add(&two_atanh(&Big::from_u128(1), &Big::from_u128(9)))
}

/// ln m for a fixed-point m in [1, 10): halved into [1, 2), then the atanh series.
fn fx_ln(m: &Big) -> Big {
    let one = fx_one();
    let two = one.mul_small(2);
    let mut m = m.clone();
    let mut halvings = 0u32;
    while m.compare(&two) != Ordering::Less {
        m = m.divmod_small(2).0;
        halvings += 1;
    }
    let series = if m.compare(&one) == Ordering::Greater {
        two_atanh(&m.sub(&one), &m.add(&one))
    } else {
        Big(Vec::new())
    };
    fx_ln2().mul_small(halvings).add(&series)
}

/// e^r for a fixed-point r in [0, ln 10): the Taylor series of r / 2^10, squared ten times.
fn fx_exp(r: &Big) -> Big {
    let small = r.divmod_small(1024).0;
    let mut sum = fx_one();
    let mut term = fx_one();
    let mut k = 1u32;
    while k < 200 {
        term = fx_mul(&term, &small).divmod_small(k).0;
        if term.is_zero() {
            break;
        }
        sum = sum.add(&term);
        k += 1;
    }
    for _ in 0..10 {
        sum = fx_mul(&sum, &sum);
    }
    sum
}

/// Whether the digits of `v` past its 34th are (nearly) all zeros or all nines.
fn guard_digits_flat(v: &Big) -> bool {
    let mut digits = Vec::new();
    let mut q = v.clone().trim();
    while !q.is_zero() {
        let (nq, r) = q.divmod_small(10);
        digits.push(r as u8);
        q = nq;
    }
    digits.reverse();
    let Some(guard) = digits.get(DIGITS as usize..) else { return false };
    // The last few carry the rounding errors of the series and the squarings.
    let guard = &guard[..guard.len().saturating_sub(6)];
    guard.len() >= 8 && (guard.iter().all(|d| *d == 0) || guard.iter().all(|d| *d == 9))
}

/// `c·10^e ^ y` for a positive base and a non-integral exponent `y = ±cy·10^ey`, as
/// e^(y·ln x) on 50-digit fixed point, rounded once to 34 digits.
fn real_pow(c: &Big, e: i32, neg_y: bool, cy: &Big, ey: i32) -> Decimal128 {
    // x = m·10^big_e with m in [1, 10).
    let d = c.digits();
    let m = c.mul_pow10(FX + 1 - d);
    let big_e = i64::from(e) + i64::from(d) - 1;
    let ln10 = fx_ln10();
    let ln_m = fx_ln(&m);
    let scaled = ln10.mul_small(u32::try_from(big_e.unsigned_abs()).unwrap_or(u32::MAX));
    // |ln x| and whether ln x < 0.
    let (ln_x, ln_neg) = if big_e >= 0 {
        (scaled.add(&ln_m), false)
    } else if scaled.compare(&ln_m) == Ordering::Greater {
        (scaled.sub(&ln_m), true)
    } else {
        (Big(Vec::new()), false)
    };
    // |y| in fixed point; an exponent this far out only overflows or underflows.
    let shift = i64::from(FX) + i64::from(ey);
    let y = if shift >= 0 {
        if shift > 20_000 {
            return special(false, false);
        }
        cy.mul_pow10(shift as u32)
    } else {
        cy.div_pow10(u32::try_from(-shift).unwrap_or(u32::MAX).min(20_000))
    };
    let t = fx_mul(&ln_x, &y);
    let negative_t = ln_neg != neg_y;
    // |t| past ~14 200 (e^t beyond 10^±6176) is out of range either way.
    if t.compare(&Big::from_u128(14_500).mul_pow10(FX)) == Ordering::Greater {
        return if negative_t {
            round(false, Big(Vec::new()), DECIMAL128_MIN_EXPONENT, false)
        } else {
            special(false, false)
        };
    }
    let k = t.div_big(&ln10);
    let k_small = u32::try_from(k.to_u128().unwrap_or(0)).unwrap_or(u32::MAX);
    let r = t.sub(&ln10.mul_small(k_small));
    let f = fx_exp(&r);
    let (coef, exp) = if negative_t {
        (fx_div(&fx_one(), &f), -i64::from(k_small) - i64::from(FX))
    } else {
        (f, i64::from(k_small) - i64::from(FX))
    };
    let exp = exp.clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2)) as i32;
    approximated(false, coef, exp)
}

/// A result computed on fixed point through approximations, rounded once to 34 digits. An
/// exact result (4^0.5, log10 1000) ends in guard digits of all zeros or all nines: it takes
/// the shortest form, as an exact result does.
fn approximated(negative: bool, coef: Big, exp: i32) -> Decimal128 {
    let exact_looking = guard_digits_flat(&coef);
    let rounded = round(negative, coef, exp, !exact_looking);
    if !exact_looking {
        return rounded;
    }
    shortest(from_decimal(&rounded))
}

/// The value with the trailing zeros of its fraction dropped (they carry no information).
fn shortest(d: Dec) -> Decimal128 {
    match d {
        Dec::Finite(n, mut c, mut e) => {
            while !c.is_zero() && e < 0 {
                let (q, rem) = c.divmod_small(10);
                if rem != 0 {
                    break;
                }
                c = q;
                e += 1;
            }
            round(n, c, e, false)
        }
        Dec::Inf(n) => special(false, n),
        Dec::NaN => special(true, false),
    }
}

fn float_pow(base: Num, exp: Num) -> Decimal128 {
    from_f64(base.to_f64().powf(exp.to_f64()))
}

/// A double's value as a decimal with the 15 significant digits a double carries (for the
/// functions computed in binary floating point, such as the trigonometric ones).
pub fn from_f64(r: f64) -> Decimal128 {
    // Only 15 digits are known: trailing zeros are not significant.
    shortest(from_num(Num::Double(r)))
}

/// |ln x| on FX-digit fixed point and whether ln x < 0, for a finite positive `x`.
fn fx_ln_of(x: Num) -> Option<(Big, bool)> {
    let Dec::Finite(false, c, e) = from_num(x) else { return None };
    if c.is_zero() {
        return None;
    }
    // x = m·10^big_e with m in [1, 10).
    let d = c.digits();
    let m = if d <= FX + 1 { c.mul_pow10(FX + 1 - d) } else { c.div_pow10(d - FX - 1) };
    let big_e = i64::from(e) + i64::from(d) - 1;
    let ln_m = fx_ln(&m);
    let scaled = fx_ln10().mul_small(u32::try_from(big_e.unsigned_abs()).unwrap_or(u32::MAX));
    Some(if big_e >= 0 {
        (scaled.add(&ln_m), false)
    } else if scaled.compare(&ln_m) == Ordering::Greater {
        (scaled.sub(&ln_m), true)
    } else {
        (ln_m.sub(&scaled), false)
    })
}

fn fixed_to_decimal(v: Big, negative: bool) -> Decimal128 {
    if v.is_zero() {
        return make_decimal128(false, 0, 0).unwrap_or_else(|| special(true, false));
    }
    approximated(negative, v, -(FX as i32))
}

/// Natural logarithm of a positive decimal (NaN and infinity pass through as IEEE says).
pub fn ln(x: Num) -> Decimal128 {
    match from_num(x) {
        Dec::NaN => special(true, false),
        Dec::Inf(false) => special(false, false),
        _ => match fx_ln_of(x) {
            Some((v, neg)) => fixed_to_decimal(v, neg),
            None => special(true, false),
        },
    }
}

/// log of `x` in `base` (both positive, base not 1): ln x / ln base.
pub fn log(x: Num, base: Num) -> Decimal128 {
    match (fx_ln_of(x), fx_ln_of(base)) {
        (Some((a, na)), Some((b, nb))) if !b.is_zero() => fixed_to_decimal(fx_div(&a, &b), na != nb),
        _ => special(true, false),
    }
}

/// Square root of a non-negative decimal, as x^0.5.
pub fn sqrt(x: Num) -> Decimal128 {
    match make_decimal128(false, 5, -1) {
        Some(half) => pow(x, Num::Decimal(half)),
        None => special(true, false),
    }
}

/// e^x, as a power of e to 34 digits.
pub fn exp(x: Num) -> Decimal128 {
    match make_decimal128(false, 2_718_281_828_459_045_235_360_287_471_352_662, -33) {
        Some(e) => pow(Num::Decimal(e), x),
        None => special(true, false),
    }
}

/// |x|.
pub fn abs(x: Decimal128) -> Decimal128 {
    let mut bytes = x.bytes();
    bytes[15] &= 0x7f;
    Decimal128::from_bytes(bytes)
}

/// The integer at or above (`ceil`) or at or below `x`.
pub fn ceil_floor(x: Decimal128, ceil: bool) -> Decimal128 {
    let Dec::Finite(neg, _, _) = from_decimal(&x) else { return x };
    let t = quantize(x, 0, true);
    if is_zero(Num::Decimal(sub(Num::Decimal(x), Num::Decimal(t)))) {
        return t;
    }
    match (ceil, neg) {
        (true, false) => add(Num::Decimal(t), Num::Int32(1)),
        (false, true) => sub(Num::Decimal(t), Num::Int32(1)),
        _ => t,
    }
}

/// `$round`/`$trunc` of a decimal to `place` digits after the point: the value quantized to
/// exponent `-place`, half-even or toward zero (NaN when that needs more than 34 digits).
pub fn quantize(v: Decimal128, place: i64, trunc: bool) -> Decimal128 {
    let Dec::Finite(neg, c, e) = from_decimal(&v) else { return v };
    let Ok(t) = i32::try_from(-place) else { return special(true, false) };
    if e >= t {
        let k = (e - t) as u32;
        if c.digits() + k > DIGITS && !c.is_zero() {
            return special(true, false);
        }
        let c = if c.is_zero() { c } else { c.mul_pow10(k) };
        return make_decimal128(neg, c.to_u128().unwrap_or(0), t).unwrap_or_else(|| special(true, false));
    }
    let k = (t - e) as u32;
    let (mut q, mut last, mut sticky) = (c, 0u32, false);
    if k > DIGITS + 2 {
        // Every digit goes, and the value is below half a unit of the last place kept.
        sticky = !q.is_zero();
        q = Big::from_u128(0);
    } else {
        for _ in 0..k {
            sticky |= last != 0;
            let (nq, r) = q.divmod_small(10);
            q = nq;
            last = r;
        }
    }
    if !trunc {
        let odd = q.divmod_small(10).1 % 2 == 1;
        if last > 5 || (last == 5 && (sticky || odd)) {
            q = q.add(&Big::from_u128(1));
        }
    }
    if q.digits() > DIGITS {
        return special(true, false);
    }
    make_decimal128(neg, q.to_u128().unwrap_or(0), t).unwrap_or_else(|| special(true, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Num {
        Num::Decimal(s.parse().unwrap())
    }

    fn s(x: Decimal128) -> String {
        x.to_string()
    }

    #[test]
    fn exact_and_rounded_arithmetic() {
        assert_eq!(s(add(d("1.0"), d("2.00"))), "3.00");
        assert_eq!(s(add(d("0.1"), d("0.2"))), "0.3");
        assert_eq!(s(sub(d("1"), d("1"))), "0");
        assert_eq!(s(add(d("1"), Num::Int32(2))), "3");
        assert_eq!(s(add(d("1"), Num::Double(0.1))), "1.100000000000000");
        assert_eq!(s(mul(d("1.5"), d("2"))), "3.0");
        assert_eq!(s(div(d("1"), d("4")).unwrap()), "0.25");
        assert_eq!(s(div(d("10"), d("2")).unwrap()), "5");
        assert_eq!(s(div(d("1"), d("3")).unwrap()), "0.3333333333333333333333333333333333");
        assert_eq!(s(div(d("2"), d("3")).unwrap()), "0.6666666666666666666666666666666667");
        assert!(div(d("1"), d("0")).is_none());
        assert_eq!(
            s(add(d("9999999999999999999999999999999999"), d("1"))),
            "1.000000000000000000000000000000000E+34"
        );
        assert_eq!(s(add(d("1E+40"), d("1E-40"))), "1.000000000000000000000000000000000E+40");
        assert_eq!(s(sub(d("1E+40"), d("1E-40"))), "1.000000000000000000000000000000000E+40");
        assert_eq!(s(mul(d("Infinity"), d("-2"))), "-Infinity");
        assert_eq!(s(add(d("NaN"), d("1"))), "NaN");
    }

    #[test]
    fn remainder_power_and_quantize() {
        assert_eq!(s(rem(d("7.5"), d("2")).unwrap()), "1.5");
        assert_eq!(s(rem(d("-7"), Num::Int32(3)).unwrap()), "-1");
        assert_eq!(s(rem(d("1E+20"), d("7")).unwrap()), "2");
        assert_eq!(s(rem(d("0.3"), Num::Double(0.1)).unwrap()), "0E-15");
        assert!(rem(d("1"), d("0.00")).is_none());
        assert_eq!(s(rem(d("Infinity"), d("1")).unwrap()), "NaN");
        assert_eq!(s(pow(d("1.5"), Num::Int32(2))), "2.25");
        assert_eq!(s(pow(d("2"), Num::Int32(-2))), "0.25");
        assert_eq!(s(pow(d("10"), Num::Int32(40))), "1.000000000000000000000000000000000E+40");
        assert_eq!(s(pow(d("3"), Num::Int32(-1))), "0.3333333333333333333333333333333333");
        assert_eq!(s(pow(d("1.1"), Num::Int64(100))), "13780.61233982227018411833717208964");
        assert_eq!(s(pow(d("-2"), Num::Int32(3))), "-8");
        assert_eq!(s(pow(d("10"), Num::Int64(1 << 40))), "Infinity");
        assert_eq!(s(pow(d("NaN"), Num::Int32(0))), "1");
        assert_eq!(s(pow(d("4"), d("0.5"))), "2");
        assert_eq!(s(pow(d("2"), d("0.5"))), "1.414213562373095048801688724209698");
        assert_eq!(s(pow(d("10"), d("-1.5"))), "0.03162277660168379331998893544432719");
        assert_eq!(s(pow(d("0.5"), d("2.5"))), "0.1767766952966368811002110905262123");
        assert_eq!(s(pow(d("1E+100"), d("0.01"))), "10");
        assert_eq!(s(pow(d("1E+6000"), d("1.5"))), "Infinity");
        assert_eq!(s(pow(d("1E-6000"), d("1.5"))), "0E-6176");
        assert_eq!(s(pow(d("-2"), d("0.5"))), "NaN");
        let q = |v: &str, p, t| s(quantize(v.parse().unwrap(), p, t));
        assert_eq!(q("1.2345", 2, false), "1.23");
        assert_eq!(q("1.235", 2, false), "1.24");
        assert_eq!(q("1.225", 2, false), "1.22");
        assert_eq!(q("1.229", 2, true), "1.22");
        assert_eq!(q("-2.5", 0, false), "-2");
        assert_eq!(q("1234.5", -2, false), "1.2E+3");
        assert_eq!(q("10", 2, false), "10.00");
        assert_eq!(q("1E+40", 0, false), "NaN");
        assert_eq!(q("Infinity", 1, false), "Infinity");
        assert_eq!(q("1E-50", 3, false), "0.000");
    }
}
