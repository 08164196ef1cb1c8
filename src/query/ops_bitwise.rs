//! Bitwise operators: `$bitsAllSet $bitsAnySet $bitsAllClear $bitsAnyClear`.
//!
//! The argument is a non-negative integer mask, an array of bit positions, or BinData (bytes
//! little-endian). Integers in documents are tested as two's complement (negative numbers
//! have every high bit set); doubles only when integral and representable as int64; BinData
//! by its bytes; anything else never matches.

use super::matcher::{Ctx, ElementPredicate, Expr};
use super::util::{bad_value, element_to_string, exact_i64, failed_to_parse, parse_non_negative_integer};
use crate::error::Result;
use bson::Bson;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitTest {
    AllSet,
    AnySet,
    AllClear,
    AnyClear,
}

#[derive(Debug)]
pub struct BitsPredicate {
    pub test: BitTest,
    /// Bit positions, deduplicated.
    pub positions: Vec<u64>,
}

impl BitsPredicate {
    fn eval(&self, bit: impl Fn(u64) -> bool) -> bool {
        match self.test {
            BitTest::AllSet => self.positions.iter().all(|&p| bit(p)),
            BitTest::AnySet => self.positions.iter().any(|&p| bit(p)),
            BitTest::AllClear => self.positions.iter().all(|&p| !bit(p)),
            BitTest::AnyClear => self.positions.iter().any(|&p| !bit(p)),
        }
    }
}

impl ElementPredicate for BitsPredicate {
    fn matches(&self, v: Option<&Bson>) -> bool {
        match v {
            Some(Bson::Int32(i)) => {
                let n = i64::from(*i);
                self.eval(|p| if p >= 64 { n < 0 } else { (n >> p) & 1 == 1 })
            }
            Some(x @ (Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_))) => {
                if let Bson::Double(d) = x {
                    if d.fract() != 0.0 {
                        return false;
                    }
                }
                match exact_i64(x) {
                    Some(n) => self.eval(|p| if p >= 64 { n < 0 } else { (n >> p) & 1 == 1 }),
                    None => false,
                }
            }
            Some(Bson::Binary(b)) => self.eval(|p| {
                let byte = usize::try_from(p / 8).ok().and_then(|i| b.bytes.get(i)).copied().unwrap_or(0);
                (byte >> (p % 8)) & 1 == 1
            }),
            _ => false,
        }
    }
}

fn bits_expr(path: &str, op: &str, test: BitTest, arg: &Bson) -> Result<Expr> {
    let mut positions = Vec::new();
    match arg {
        Bson::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                // mongod parses each position as a non-negative int32.
                let p = parse_non_negative_integer(&i.to_string(), item)
                    .and_then(|p| {
                        u32::try_from(p).ok().filter(|p| *p <= i32::MAX as u32).ok_or_else(|| {
                            failed_to_parse(format!(
                                "Cannot represent {} in an int",
                                element_to_string(&i.to_string(), item)
                            ))
                        })
                    })
                    .map_err(|e| bad_value(format!("Failed to parse bit position. {}", e.message)))?;
                positions.push(u64::from(p));
            }
        }
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            let mask = parse_non_negative_integer(op, arg)?;
            positions.extend((0..64).filter(|b| (mask >> b) & 1 == 1));
        }
        Bson::Binary(b) => {
            for (i, byte) in b.bytes.iter().enumerate() {
                for bit in 0..8u64 {
                    if (byte >> bit) & 1 == 1 {
                        positions.push(i as u64 * 8 + bit);
                    }
                }
            }
        }
        _ => {
            return Err(bad_value(format!(
                "{op} takes an Array, a number, or a BinData but received: {}",
                element_to_string(op, arg)
            )))
        }
    }
    positions.sort_unstable();
    positions.dedup();
    Ok(Expr::path(path, BitsPredicate { test, positions }))
}

/// Parses the bitwise family; `None` for other operators.
pub fn parse_op(path: &str, op: &str, arg: &Bson, _ctx: Ctx) -> Option<Result<Expr>> {
    let test = match op {
        "$bitsAllSet" => BitTest::AllSet,
        "$bitsAnySet" => BitTest::AnySet,
        "$bitsAllClear" => BitTest::AllClear,
        "$bitsAnyClear" => BitTest::AnyClear,
        _ => return None,
    };
    Some(bits_expr(path, op, test, arg))
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;
    use crate::query::matcher::Matcher;
    use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn numbers() {
        // 54 = 0b110110
        assert!(m(doc! {"a": {"$bitsAllSet": [1, 5]}}, doc! {"a": 54}));
        assert!(m(doc! {"a": {"$bitsAllSet": 50}}, doc! {"a": 54}));
        assert!(!m(doc! {"a": {"$bitsAllSet": [0]}}, doc! {"a": 54}));
        assert!(m(doc! {"a": {"$bitsAnySet": [0, 1]}}, doc! {"a": 54}));
        assert!(m(doc! {"a": {"$bitsAllClear": [0, 3]}}, doc! {"a": 54}));
        assert!(m(doc! {"a": {"$bitsAnyClear": [0, 1]}}, doc! {"a": 54}));
        assert!(m(doc! {"a": {"$bitsAllSet": [100]}}, doc! {"a": -1}));
        assert!(!m(doc! {"a": {"$bitsAllSet": [1]}}, doc! {"a": 2.5}));
        assert!(m(doc! {"a": {"$bitsAllSet": [1]}}, doc! {"a": 2.0}));
        assert!(!m(doc! {"a": {"$bitsAllSet": [1]}}, doc! {"a": "2"}));
    }

    #[test]
    fn bindata() {
        let bin = Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![0b0000_0010, 0b1] });
        assert!(m(doc! {"a": {"$bitsAllSet": [1, 8]}}, doc! {"a": bin.clone()}));
        assert!(m(doc! {"a": {"$bitsAllClear": [100]}}, doc! {"a": bin.clone()}));
        assert!(m(doc! {"a": {"$bitsAnySet": bin.clone()}}, doc! {"a": 2}));
    }

    #[test]
    fn errors() {
        let e = Matcher::parse(&doc! {"a": {"$bitsAllSet": "x"}}).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadValue);
        assert!(e.message.starts_with("$bitsAllSet takes an Array, a number, or a BinData"));
        let e = Matcher::parse(&doc! {"a": {"$bitsAllSet": -1}}).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::FailedToParse, "Expected a positive number in: $bitsAllSet: -1")
        );
        let e = Matcher::parse(&doc! {"a": {"$bitsAllSet": [1, -2]}}).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::BadValue, "Failed to parse bit position. Expected a positive number in: 1: -2")
        );
        assert!(Matcher::parse(&doc! {"a": {"$bitsAllSet": [1.5]}}).is_err());
        assert!(Matcher::parse(&doc! {"a": {"$bitsAllSet": ["x"]}}).is_err());
    }
}
