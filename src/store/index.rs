//! Index keys: which keys a document produces for an index, and keeping index tables in step.
//!
//! Table layout: a unique index maps `key -> RecordId` (so two writers inserting the same key
//! collide inside WiredTiger and one of them retries and sees the duplicate); a non-unique index
//! maps `key ++ RecordId -> ""`. RecordIds are 8 bytes big-endian.

use super::catalog::{IndexKind, IndexMeta};
use super::keystring;
use super::wt::{Key, Session};
use super::{StoreError, StoreResult};
use crate::error::{ErrorCode, MongoError};
use bson::{Bson, Document};

/// One index key of a document: its encoded bytes and the values it was made from.
#[derive(Debug, Clone)]
pub struct IndexKey {
    pub bytes: Vec<u8>,
    pub values: Vec<Bson>,
    /// What the entry's value holds besides the RecordId: the typed values (see
    /// `typed_values`), or nothing.
    pub stored: Option<Vec<u8>>,
}

/// The key fields' original values as the entry stores them: a BSON document `{"0": v0, ...}`
/// by field position, a missing top-level field left out. Key bytes alone are lossy (1, 1.0
/// and NumberLong(1) encode alike; collation keys and hashes cannot be reversed), so a covered
/// query reads these instead. Only single-valued documents get them: an entry made from an
/// array element says nothing about the document's field, and a scan fetches those. So does
/// one missing a dotted field: `{a: {}}`, `{a: 5}` and `{}` all lack `a.b` but project it
/// differently.
fn typed_values(fields: &[(String, bool)], per_field: &[PathValues]) -> Option<Vec<u8>> {
    if per_field.iter().any(|f| f.expanded_array) {
        return None;
    }
    let mut d = Document::new();
    for (i, ((path, _), f)) in fields.iter().zip(per_field).enumerate() {
        match (f.present, f.values.first()) {
            (true, Some(v)) => {
                d.insert(i.to_string(), v.clone());
            }
            _ if path.contains('.') => return None,
            _ => {}
        }
    }
    let mut out = Vec::new();
    d.to_writer(&mut out).ok()?;
    Some(out)
}

/// The typed values in an entry's stored value, if it has them.
pub fn stored_values<'a>(idx: &IndexMeta, value: &'a [u8]) -> Option<&'a [u8]> {
    let v = if idx.unique { value.get(8..)? } else { value };
    (!v.is_empty()).then_some(v)
}

/// Sets `path` (dotted) in `d`, making the parent documents; `None` when a parent is taken
/// by another value.
fn set_path(d: &mut Document, path: &str, v: Bson) -> Option<()> {
    match path.split_once('.') {
        None if d.contains_key(path) => None,
        None => {
            d.insert(path, v);
            Some(())
        }
        Some((head, rest)) => {
            if !d.contains_key(head) {
                d.insert(head, Document::new());
            }
            match d.get_mut(head) {
                Some(Bson::Document(sub)) => set_path(sub, rest, v),
                _ => None,
            }
        }
    }
}

/// The document a covered scan sees for an entry: the key fields the document has with their
/// original values (dotted paths as embedded documents), in key pattern order. `None` when
/// the entry cannot say (the scan then fetches the document).
pub fn covered_doc(idx: &IndexMeta, stored: &[u8]) -> Option<Document> {
    let raw = bson::RawDocument::from_bytes(stored).ok()?;
    let mut d = Document::new();
    for (i, (path, _)) in idx.fields.iter().enumerate() {
        if let Some(v) = raw.get(i.to_string()).ok()? {
            set_path(&mut d, path, Bson::try_from(v.to_raw_bson()).ok()?)?;
        }
    }
    Some(d)
}

/// Values found at a dotted path, expanding arrays as mongod's index key generation does.
struct PathValues {
    values: Vec<Bson>,
    present: bool,
    expanded_array: bool,
}

fn collect_path(doc: &Document, path: &str) -> PathValues {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = PathValues { values: Vec::new(), present: false, expanded_array: false };
    collect_in_doc(doc, &parts, &mut out);
    if out.values.is_empty() {
        out.values.push(Bson::Null);
    }
    out
}

fn collect_in_doc(doc: &Document, parts: &[&str], out: &mut PathValues) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if let Some(v) = doc.get(*first) {
        collect_value(v, rest, out);
    }
}

fn collect_value(v: &Bson, rest: &[&str], out: &mut PathValues) {
    match (v, rest.split_first()) {
        (Bson::Array(a), None) => {
            out.present = true;
            out.expanded_array = true;
            if a.is_empty() {
                // mongod indexes an empty array as undefined so that {a: []} can be found.
                out.values.push(Bson::Undefined);
            }
            for e in a {
                out.values.push(e.clone());
            }
        }
        (_, None) => {
            out.present = true;
            out.values.push(v.clone());
        }
        (Bson::Document(d), Some(_)) => collect_in_doc(d, rest, out),
        (Bson::Array(a), Some((first, after))) => {
            out.expanded_array = true;
            // A numeric component addresses one element; otherwise descend into each element.
            if let Ok(i) = first.parse::<usize>() {
                if let Some(e) = a.get(i) {
                    collect_value(e, after, out);
                    return;
                }
            }
            for e in a {
                if let Bson::Document(d) = e {
                    collect_in_doc(d, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// Every distinct key `doc` produces for `idx` (none when a sparse or partial index skips it).
pub fn keys_for(idx: &IndexMeta, doc: &Document) -> StoreResult<Vec<IndexKey>> {
    if let Some(filter) = &idx.partial {
        if !filter.matches(doc) {
            return Ok(Vec::new());
        }
    }
    if let IndexKind::Wildcard(spec) = &idx.kind {
        return Ok(wildcard_keys(idx, spec, doc));
    }
    if let IndexKind::Geo = idx.kind {
        crate::query::ops_geo::check_index_document(&idx.key, &idx.spec, doc).map_err(StoreError::Mongo)?;
        return Ok(Vec::new());
    }
    let mut per_field: Vec<PathValues> = idx.fields.iter().map(|(p, _)| collect_path(doc, p)).collect();
    if idx.sparse && per_field.iter().all(|f| !f.present) {
        return Ok(Vec::new());
    }
    let stored = match idx.kind {
        IndexKind::Btree if idx.typed => typed_values(&idx.fields, &per_field),
        _ => None,
    };
    if let Some(c) = &idx.collation {
        for f in &mut per_field {
            for v in &mut f.values {
                if crate::query::collation::has_strings(v) {
                    *v = c.index_value(v);
                }
            }
        }
    }
    if let IndexKind::Hashed(pos) = idx.kind {
        if let Some(f) = per_field.get_mut(pos) {
            if f.expanded_array {
                let path = idx.fields.get(pos).map(|(p, _)| p.as_str()).unwrap_or_default();
                return Err(StoreError::Mongo(MongoError::new(
                    ErrorCode::Location16766,
                    format!("Error: hashed indexes do not currently support array values. Found array at path: {path}"),
                )));
            }
            for v in &mut f.values {
                *v = Bson::Int64(super::hashed::hash_value(v));
            }
        }
    }
    let arrays: Vec<&str> = idx
        .fields
        .iter()
        .zip(&per_field)
        .filter(|(_, f)| f.expanded_array)
        .map(|((p, _), _)| p.as_str())
        .collect();
    if !arrays.is_empty() && !idx.is_multikey() {
        idx.multikey.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if arrays.len() > 1 {
        return Err(StoreError::ParallelArrays(format!(
            "cannot index parallel arrays [{}] [{}]",
            arrays[1], arrays[0]
        )));
    }
    // Cartesian product; at most one field has more than one value.
    let mut combos: Vec<Vec<Bson>> = vec![Vec::with_capacity(per_field.len())];
    for f in &per_field {
        let mut next = Vec::with_capacity(combos.len() * f.values.len());
        for c in &combos {
            for v in &f.values {
                let mut c2 = c.clone();
                c2.push(v.clone());
                next.push(c2);
            }
        }
        combos = next;
    }
    let mut keys: Vec<IndexKey> = combos
        .into_iter()
        .map(|values| {
            let parts: Vec<(&Bson, bool)> =
                values.iter().zip(&idx.fields).map(|(v, (_, desc))| (v, *desc)).collect();
            IndexKey { bytes: keystring::encode_key(&parts), values, stored: stored.clone() }
        })
        .collect();
    keys.sort_by(|a, b| a.bytes.cmp(&b.bytes));
    keys.dedup_by(|a, b| a.bytes == b.bytes);
    Ok(keys)
}

/// A wildcard index's keys: (path, value) per covered leaf.
fn wildcard_keys(idx: &IndexMeta, spec: &super::wildcard::WildcardSpec, doc: &Document) -> Vec<IndexKey> {
    let (entries, multikey_paths) = spec.entries(doc);
    if !multikey_paths.is_empty() {
        idx.note_multikey_paths(&multikey_paths);
    }
    let mut keys: Vec<IndexKey> = entries
        .into_iter()
        .map(|(path, v)| {
            let v = match &idx.collation {
                Some(c) => c.index_value(&v),
                None => v,
            };
            let path = Bson::String(path);
            IndexKey {
                bytes: keystring::encode_key(&[(&path, false), (&v, false)]),
                values: vec![path, v],
                stored: None,
            }
        })
        .collect();
    keys.sort_by(|a, b| a.bytes.cmp(&b.bytes));
    keys.dedup_by(|a, b| a.bytes == b.bytes);
    keys
}

pub fn rid_bytes(rid: i64) -> [u8; 8] {
    rid.to_be_bytes()
}

pub fn rid_from_bytes(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// The `{field: value}` document mongod reports as `keyValue` in a duplicate-key error.
pub fn key_value_doc(idx: &IndexMeta, values: &[Bson]) -> Document {
    let mut d = Document::new();
    for ((path, _), v) in idx.fields.iter().zip(values) {
        d.insert(path.clone(), v.clone());
    }
    d
}

pub fn insert_keys(
    session: &Session,
    ns: &str,
    idx: &IndexMeta,
    keys: &[IndexKey],
    rid: i64,
) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let rb = rid_bytes(rid);
    if idx.unique {
        let mut cur = session.open_cursor(&idx.uri(), Some("overwrite=false"))?;
        let mut value = Vec::new();
        for k in keys {
            value.clear();
            value.extend_from_slice(&rb);
            value.extend_from_slice(k.stored.as_deref().unwrap_or_default());
            match cur.insert(Key::Bytes(&k.bytes), &value) {
                Ok(()) => {}
                Err(e) if e.is_duplicate_key() => {
                    return Err(StoreError::DuplicateKey(Box::new(super::error::DuplicateKey {
                        ns: ns.to_string(),
                        index: idx.name.clone(),
                        key_pattern: idx.key.clone(),
                        key_value: key_value_doc(idx, &k.values),
                    })))
                }
                Err(e) => return Err(e.into()),
            }
        }
    } else {
        let mut cur = session.open_cursor(&idx.uri(), None)?;
        let mut buf = Vec::new();
        for k in keys {
            buf.clear();
            buf.extend_from_slice(&k.bytes);
            buf.extend_from_slice(&rb);
            cur.insert(Key::Bytes(&buf), k.stored.as_deref().unwrap_or_default())?;
        }
    }
    Ok(())
}

/// Rewrites the entries whose key bytes stay but whose typed values change (an update from
/// 1 to 1.0, or from a missing field to null): `key_difference` does not see them.
pub fn rewrite_values(
    session: &Session,
    idx: &IndexMeta,
    old: &[IndexKey],
    new: &[IndexKey],
    rid: i64,
) -> StoreResult<()> {
    let mut cur = None;
    let rb = rid_bytes(rid);
    for k in new {
        let Ok(at) = old.binary_search_by(|x| x.bytes.cmp(&k.bytes)) else { continue };
        if old.get(at).is_some_and(|o| o.stored == k.stored) {
            continue;
        }
        let cur = match &mut cur {
            Some(c) => c,
            None => cur.insert(session.open_cursor(&idx.uri(), None)?),
        };
        let stored = k.stored.as_deref().unwrap_or_default();
        if idx.unique {
            let mut value = rb.to_vec();
            value.extend_from_slice(stored);
            cur.insert(Key::Bytes(&k.bytes), &value)?;
        } else {
            let mut key = k.bytes.clone();
            key.extend_from_slice(&rb);
            cur.insert(Key::Bytes(&key), stored)?;
        }
    }
    Ok(())
}

pub fn remove_keys(session: &Session, idx: &IndexMeta, keys: &[IndexKey], rid: i64) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut cur = session.open_cursor(&idx.uri(), None)?;
    let rb = rid_bytes(rid);
    let mut buf = Vec::new();
    for k in keys {
        let key: &[u8] = if idx.unique {
            &k.bytes
        } else {
            buf.clear();
            buf.extend_from_slice(&k.bytes);
            buf.extend_from_slice(&rb);
            &buf
        };
        match cur.remove(Key::Bytes(key)) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Keys present in `a` but not in `b` (both sorted by bytes).
pub fn key_difference(a: &[IndexKey], b: &[IndexKey]) -> Vec<IndexKey> {
    a.iter().filter(|k| b.binary_search_by(|x| x.bytes.cmp(&k.bytes)).is_err()).cloned().collect()
}
