//! Read access for the executor: record scans in RecordId order, index range scans, fetches.
//! Each call works inside whatever transaction the session has open.

use super::catalog::{Collection, IndexMeta};
use super::index::rid_from_bytes;
use super::wt::{Cursor, Key, Session};
use super::{StoreError, StoreResult};
use bson::Document;
use std::cmp::Ordering;

/// Decodes a stored document. Goes through `RawDocument` because `Document::from_reader`
/// would turn user documents shaped like extended JSON (`{$numberLong: "5"}`) into other types.
pub fn parse_record(bytes: &[u8]) -> StoreResult<Document> {
    let raw = bson::RawDocument::from_bytes(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Document::try_from(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The record with only the top-level fields named in `fields` (in stored order). The other
/// elements are stepped over by their encoded length without being decoded or validated
/// (the bytes were validated when stored); anything unexpected falls back to a full parse.
pub fn parse_fields(bytes: &[u8], fields: &[String]) -> StoreResult<Document> {
    match pick_fields(bytes, fields) {
        Some(d) => Ok(d),
        None => {
            let d = parse_record(bytes)?;
            Ok(d.into_iter().filter(|(k, _)| fields.iter().any(|f| f == k)).collect())
        }
    }
}

fn le_i32(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?)).ok()
}

/// Bytes of an element's value of BSON type `t` starting at `at`.
fn value_len(b: &[u8], t: u8, at: usize) -> Option<usize> {
    let cstr = |from: usize| b.get(from..)?.iter().position(|&c| c == 0).map(|p| p + 1);
    Some(match t {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x02 | 0x0D | 0x0E => 4 + le_i32(b, at)?,
        0x03 | 0x04 | 0x0F => le_i32(b, at)?,
        0x05 => 5 + le_i32(b, at)?,
        0x06 | 0x0A | 0xFF | 0x7F => 0,
        0x07 => 12,
        0x08 => 1,
        0x0B => {
            let p = cstr(at)?;
            p + cstr(at + p)?
        }
        0x0C => 4 + le_i32(b, at)? + 12,
        0x10 => 4,
        0x13 => 16,
        _ => return None,
    })
}

/// The common scalar types decoded straight from their bytes; `None` for the rest.
fn scalar(t: u8, v: &[u8]) -> Option<bson::Bson> {
    use bson::Bson;
    let i64_at = |v: &[u8]| v.get(..8).and_then(|x| x.try_into().ok()).map(i64::from_le_bytes);
    Some(match t {
        0x01 => Bson::Double(f64::from_le_bytes(v.get(..8)?.try_into().ok()?)),
        0x02 => {
            let s = v.get(4..v.len().checked_sub(1)?)?;
            Bson::String(std::str::from_utf8(s).ok()?.to_string())
        }
        0x07 => Bson::ObjectId(bson::oid::ObjectId::from_bytes(v.get(..12)?.try_into().ok()?)),
        0x08 => Bson::Boolean(*v.first()? != 0),
        0x09 => Bson::DateTime(bson::DateTime::from_millis(i64_at(v)?)),
        0x0A => Bson::Null,
        0x10 => Bson::Int32(i32::from_le_bytes(v.get(..4)?.try_into().ok()?)),
        0x12 => Bson::Int64(i64_at(v)?),
        _ => return None,
    })
}

fn pick_fields(b: &[u8], fields: &[String]) -> Option<Document> {
    let total = le_i32(b, 0)?;
    if total != b.len() || total < 5 {
        return None;
    }
    let mut out = Document::new();
    let mut at = 4;
    while at < total - 1 {
        let t = *b.get(at)?;
        let key_len = b.get(at + 1..)?.iter().position(|&c| c == 0)?;
        let key = b.get(at + 1..at + 1 + key_len)?;
        let value_at = at + 2 + key_len;
        let end = value_at + value_len(b, t, value_at)?;
        if end > total - 1 {
            return None;
        }
        if let Some(name) = fields.iter().find(|f| f.as_bytes() == key) {
            let value = match scalar(t, b.get(value_at..end)?) {
                Some(v) => v,
                None => {
                    // The one element as its own document, decoded by the bson crate.
                    let mut one = Vec::with_capacity(end - at + 5);
                    one.extend_from_slice(&((end - at + 5) as i32).to_le_bytes());
                    one.extend_from_slice(b.get(at..end)?);
                    one.push(0);
                    parse_record(&one).ok()?.into_iter().next()?.1
                }
            };
            out.insert(name.clone(), value);
        }
        at = end;
    }
    Some(out)
}

pub fn fetch(s: &Session, coll: &Collection, rid: i64) -> StoreResult<Option<Document>> {
    let mut cur = s.open_cursor(&coll.uri(), None)?;
    if cur.search(Key::Int(rid))? {
        Ok(Some(parse_record(cur.value()?)?))
    } else {
        Ok(None)
    }
}

/// A record (with its stored size, for batch accounting) through an open record cursor.
pub fn fetch_with(cur: &mut Cursor<'_>, rid: i64) -> StoreResult<Option<(Document, usize)>> {
    if cur.search(Key::Int(rid))? {
        let raw = cur.value()?;
        Ok(Some((parse_record(raw)?, raw.len())))
    } else {
        Ok(None)
    }
}

/// Visits records after `after` (exclusive) in RecordId order (or reverse); `f` returns false
/// to stop.
pub fn scan_records(
    s: &Session,
    coll: &Collection,
    after: Option<i64>,
    forward: bool,
    mut f: impl FnMut(i64, &[u8]) -> StoreResult<bool>,
) -> StoreResult<()> {
    let mut cur = s.open_cursor(&coll.uri(), None)?;
    let mut positioned = match after {
        None => {
            if forward {
                cur.next()?
            } else {
                cur.prev()?
            }
        }
        Some(rid) => match cur.search_near(Key::Int(rid))? {
            None => false,
            Some(ord) => {
                let past = if forward { ord == Ordering::Greater } else { ord == Ordering::Less };
                if past {
                    true
                } else if forward {
                    cur.next()?
                } else {
                    cur.prev()?
                }
            }
        },
    };
    while positioned {
        let rid = cur.key_int()?;
        if !f(rid, cur.value()?)? {
            return Ok(());
        }
        positioned = if forward { cur.next()? } else { cur.prev()? };
    }
    Ok(())
}

/// The smallest byte string greater than every string that starts with `prefix`
/// (None when there is none: the prefix is all 0xFF).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last != 0xFF {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

/// The RecordId an index entry points at.
pub fn entry_rid(idx: &IndexMeta, key: &[u8], value: &[u8]) -> StoreResult<i64> {
    let r = if idx.unique {
        rid_from_bytes(value)
    } else {
        key.len().checked_sub(8).and_then(|at| rid_from_bytes(&key[at..]))
    };
    r.ok_or_else(|| StoreError::Corrupt(format!("bad entry in index {}", idx.name)))
}

/// A range of index keys: `lo` inclusive, `hi` exclusive (None: to the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lo: Vec<u8>,
    pub hi: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        KeyRange { lo: prefix.to_vec(), hi: prefix_successor(prefix) }
    }

    /// The whole index.
    pub fn all() -> KeyRange {
        KeyRange { lo: Vec::new(), hi: None }
    }

    pub fn is_empty(&self) -> bool {
        self.hi.as_ref().is_some_and(|hi| *hi <= self.lo)
    }

    fn below_hi(&self, key: &[u8]) -> bool {
        self.hi.as_ref().is_none_or(|hi| key < hi.as_slice())
    }
}

/// The first key after every key that starts with `prefix` (public for bounds building).
pub fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    prefix_successor(prefix)
}

/// Visits index entries whose key starts with `prefix`, after the full entry key `after`
/// (exclusive), in key order (or reverse). `f(entry_key, rid)` returns false to stop.
pub fn scan_index(
    s: &Session,
    idx: &IndexMeta,
    prefix: &[u8],
    after: Option<&[u8]>,
    forward: bool,
    f: impl FnMut(&[u8], i64) -> StoreResult<bool>,
) -> StoreResult<()> {
    scan_index_range(s, idx, &KeyRange::prefix(prefix), after, forward, f)
}

/// Visits index entries in `range`, resuming after the entry key `after` (exclusive), in key
/// order (or reverse). `f(entry_key, rid)` returns false to stop.
pub fn scan_index_range(
    s: &Session,
    idx: &IndexMeta,
    range: &KeyRange,
    after: Option<&[u8]>,
    forward: bool,
    mut f: impl FnMut(&[u8], i64) -> StoreResult<bool>,
) -> StoreResult<()> {
    scan_index_entries(s, idx, range, after, forward, |key, rid, _| f(key, rid))
}

/// As `scan_index_range`, also handing `f` the entry's stored value.
pub fn scan_index_entries(
    s: &Session,
    idx: &IndexMeta,
    range: &KeyRange,
    after: Option<&[u8]>,
    forward: bool,
    mut f: impl FnMut(&[u8], i64, &[u8]) -> StoreResult<bool>,
) -> StoreResult<()> {
    if range.is_empty() {
        return Ok(());
    }
    let mut cur = s.open_cursor(&idx.uri(), None)?;
    // Where to start and whether a key equal to the start counts. WiredTiger refuses empty
    // keys, so an empty start means "the first (or last) entry".
    let (start, inclusive): (Option<&[u8]>, bool) = match (after, forward) {
        (Some(a), _) => (Some(a), false),
        (None, true) => (Some(range.lo.as_slice()).filter(|k| !k.is_empty()), true),
        (None, false) => (range.hi.as_deref(), false),
    };
    let mut positioned = match start {
        None => {
            if forward {
                cur.next()?
            } else {
                cur.prev()?
            }
        }
        Some(k) => match cur.search_near(Key::Bytes(k))? {
            None => false,
            Some(ord) => {
                let ok = match (forward, ord) {
                    (true, Ordering::Greater) => true,
                    (true, Ordering::Equal) => inclusive,
                    (false, Ordering::Less) => true,
                    _ => false,
                };
                if ok {
                    true
                } else if forward {
                    cur.next()?
                } else {
                    cur.prev()?
                }
            }
        },
    };
    while positioned {
        let key = cur.key_bytes()?;
        let inside = if forward { range.below_hi(key) } else { key >= range.lo.as_slice() };
        if !inside {
            break;
        }
        let value = cur.value()?;
        let rid = entry_rid(idx, key, value)?;
        if !f(key, rid, value)? {
            return Ok(());
        }
        positioned = if forward { cur.next()? } else { cur.prev()? };
    }
    Ok(())
}

#[cfg(test)]
mod pick_tests {
    use super::*;
    use bson::{doc, oid::ObjectId, Binary, Bson, Regex, Timestamp};

    #[test]
    fn picks_the_named_fields_of_every_type() {
        let d = doc! {
            "d": 1.5, "s": "x", "o": { "a": 1 }, "a": [1, 2], "bin": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "u": Bson::Undefined, "oid": ObjectId::new(), "b": true, "dt": bson::DateTime::now(), "n": Bson::Null,
            "re": Regex { pattern: "a.b".into(), options: "i".into() }, "i": 5, "ts": Timestamp { time: 1, increment: 2 },
            "l": 7i64, "dec": bson::Decimal128::from_bytes([1; 16]), "min": Bson::MinKey, "max": Bson::MaxKey, "last": "z",
        };
        let mut raw = Vec::new();
        d.to_writer(&mut raw).unwrap();
        let all: Vec<String> = d.keys().cloned().collect();
        assert_eq!(parse_fields(&raw, &all).unwrap(), d);
        let some = vec!["re".to_string(), "last".to_string(), "missing".to_string(), "o".to_string()];
        let got = parse_fields(&raw, &some).unwrap();
        assert_eq!(
            got,
            doc! { "o": { "a": 1 }, "re": Regex { pattern: "a.b".into(), options: "i".into() }, "last": "z" }
        );
        assert_eq!(parse_fields(&raw, &[]).unwrap(), doc! {});
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }
}
