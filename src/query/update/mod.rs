//! The updater: update documents parsed into a tree of modifiers and applied to a document
//! with mongod's semantics.
//!
//! An update is either a replacement document or a set of operators (`$set`, `$inc`...).
//! Operator paths are merged into one tree (mongod's `UpdateObjectNode`): paths that overlap
//! are a ConflictingUpdateOperators error at parse time, and fields are visited in mongod's
//! (5.0+) order, lexicographic with numeric names in numeric order, so new fields are
//! appended in that order while existing fields keep their position. Positional `$`, `$[]`
//! and `$[<id>]` (with `arrayFilters`) components are supported.
//!
//! Modifiers live in `fields.rs` (`$set $unset $inc $mul $min $max $rename $setOnInsert
//! $currentDate`) and `arrays.rs` (`$push $addToSet $pop $pull $pullAll`); each is a
//! `Modifier`, the extension point for new operators.

mod arrays;
mod fields;

use super::compare::bson_equal;
use super::matcher::{is_operator_doc, Matcher};
use super::path::{self, nest, not_viable};
use super::util::{
    array_index, bad_value, doc_binary_equal, doc_to_string, element_to_string, failed_to_parse, type_name,
    value_to_string,
};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, DateTime, Document, Timestamp};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// What a modifier sees when it runs.
pub struct LeafCx<'a> {
    /// The last component of the concrete path (array indexes resolved).
    pub field: &'a str,
    /// The concrete dotted path.
    pub path: &'a str,
    /// `_id: <value>` of the document, for messages ("no id" when absent).
    pub id_desc: &'a str,
    pub is_insert: bool,
    pub now: DateTime,
    pub timestamp: Timestamp,
}

/// One update operator applied at one path.
pub trait Modifier: fmt::Debug + Send + Sync {
    /// Changes an existing value in place; returns whether it changed.
    fn apply_existing(&self, v: &mut Bson, cx: &LeafCx) -> Result<bool>;
    /// The value to create where the path is missing (`None`: nothing to do).
    fn create(&self, cx: &LeafCx) -> Result<Option<Bson>>;
    /// Whether a scalar in the middle of the path is a silent no-op rather than
    /// PathNotViable ($unset, $pull, $pullAll, $pop).
    fn tolerates_non_viable(&self) -> bool {
        false
    }
    /// `$unset`: the field is removed (array elements become null).
    fn removes(&self) -> bool {
        false
    }
    /// Whether a missing path is created ($set...) rather than left alone ($pull, $pop); it
    /// decides mongod's message when a non-container is in the way.
    fn creates(&self) -> bool {
        true
    }
    /// `$setOnInsert` outside an upsert's insert does nothing at all.
    fn active(&self, _is_insert: bool) -> bool {
        true
    }
}

#[derive(Debug)]
enum LeafKind {
    Mod(Box<dyn Modifier>),
    /// The destination of `$rename {from: to}`.
    RenameTo {
        from: String,
    },
    /// The source of a `$rename`: only reserves the path for conflict detection.
    Placeholder,
}

#[derive(Debug)]
struct Leaf {
    kind: LeafKind,
}

/// Field names ordered as mongod orders update children: numbers numerically, others
/// lexicographically (by bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldKey(String);

impl Ord for FieldKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (array_index(&self.0), array_index(&other.0)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.0.as_bytes().cmp(other.0.as_bytes()),
        }
    }
}

impl PartialOrd for FieldKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
struct ObjNode {
    children: BTreeMap<FieldKey, UNode>,
    positional: Option<Box<UNode>>,
}

#[derive(Debug, Default)]
struct ArrNode {
    /// Keyed by array-filter identifier; "" is `$[]`.
    children: BTreeMap<String, UNode>,
}

#[derive(Debug)]
enum UNode {
    Obj(ObjNode),
    Arr(ArrNode),
    Leaf(Leaf),
}

impl UNode {
    /// The first modifier of this sub-tree (in application order) that fails when a
    /// non-container is in its way: whether it creates its path, and its path below here.
    fn first_strict(&self, is_insert: bool) -> Option<(bool, Vec<String>)> {
        match self {
            UNode::Leaf(l) => match &l.kind {
                LeafKind::Mod(m) if !m.active(is_insert) || m.tolerates_non_viable() => None,
                LeafKind::Mod(m) => Some((m.creates(), Vec::new())),
                LeafKind::RenameTo { .. } => Some((true, Vec::new())),
                LeafKind::Placeholder => None,
            },
            UNode::Obj(o) => {
                let mut kids: Vec<(String, &UNode)> =
                    o.children.iter().map(|(k, v)| (k.0.clone(), v)).collect();
                if let Some(p) = &o.positional {
                    kids.push(("$".to_string(), p));
                }
                kids.into_iter().find_map(|(k, c)| {
                    c.first_strict(is_insert).map(|(creates, mut rel)| {
                        rel.insert(0, k);
                        (creates, rel)
                    })
                })
            }
            UNode::Arr(a) => a.children.iter().find_map(|(id, c)| {
                c.first_strict(is_insert).map(|(creates, mut rel)| {
                    let comp = if id.is_empty() { "$[]".to_string() } else { format!("$[{id}]") };
                    rel.insert(0, comp);
                    (creates, rel)
                })
            }),
        }
    }
}

/// A parsed operator update.
#[derive(Debug)]
pub struct OperatorUpdate {
    root: ObjNode,
    renames: Vec<(String, String)>,
    array_filters: HashMap<String, Matcher>,
    uses_positional: bool,
}

impl OperatorUpdate {
    /// Whether applying needs the query's matched array index (a positional `$` path).
    pub fn uses_positional(&self) -> bool {
        self.uses_positional
    }
}

#[derive(Debug)]
pub enum UpdateSpec {
    Replacement(Document),
    Operators(OperatorUpdate),
    /// An aggregation pipeline (`u: [...]`), run by the aggregation engine.
    Pipeline(Box<crate::agg::update::UpdatePipeline>),
}

/// The operators mongod knows, in the family that implements them.
const OPERATORS: &[&str] = &[
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$setOnInsert",
    "$currentDate",
    "$push",
    "$addToSet",
    "$pop",
    "$pull",
    "$pullAll",
    "$bit",
];

pub fn parse_update(u: &Document, array_filters: Option<&[Document]>) -> Result<UpdateSpec> {
    let is_operators = u.keys().next().is_some_and(|k| k.starts_with('$'));
    if !is_operators {
        if let Some(filters) = array_filters {
            if !filters.is_empty() {
                return Err(failed_to_parse(
                    "arrayFilters may not be specified for replacement-style updates",
                ));
            }
        }
        validate_replacement(u)?;
        return Ok(UpdateSpec::Replacement(u.clone()));
    }
    let filters = parse_array_filters(array_filters.unwrap_or(&[]))?;
    let mut up = OperatorUpdate {
        root: ObjNode::default(),
        renames: Vec::new(),
        array_filters: filters,
        uses_positional: false,
    };
    let mut used_ids: HashSet<String> = HashSet::new();
    for (op, arg) in u {
        if !OPERATORS.contains(&op.as_str()) {
            return Err(failed_to_parse(format!(
                "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update \
                 specified as an array"
            )));
        }
        let Bson::Document(fields) = arg else {
            return Err(failed_to_parse(format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: \
                 {{<field>: ...}}}} not {{{}}}",
                type_name(arg),
                element_to_string(op, arg)
            )));
        };
        for (p, v) in fields {
            if op == "$rename" {
                let to = fields::rename_target(p, v)?;
                let from_comps = parse_path(p, &up.array_filters, &mut used_ids)?;
                let to_comps = parse_path(&to, &up.array_filters, &mut used_ids)?;
                if from_comps.iter().any(|c| !matches!(c, Comp::Field(_))) {
                    return Err(bad_value(format!("The source field for $rename may not be dynamic: {p}")));
                }
                if to_comps.iter().any(|c| !matches!(c, Comp::Field(_))) {
                    return Err(bad_value(format!(
                        "The destination field for $rename may not be dynamic: {to}"
                    )));
                }
                insert(&mut up.root, &from_comps, p, Leaf { kind: LeafKind::Placeholder })?;
                insert(&mut up.root, &to_comps, &to, Leaf { kind: LeafKind::RenameTo { from: p.clone() } })?;
                up.renames.push((p.clone(), to));
                continue;
            }
            let comps = parse_path(p, &up.array_filters, &mut used_ids)?;
            if comps.iter().any(|c| matches!(c, Comp::Positional)) {
                up.uses_positional = true;
            }
            let m = make_modifier(op, p, v)?;
            insert(&mut up.root, &comps, p, Leaf { kind: LeafKind::Mod(m) })?;
        }
    }
    let mut unused: Vec<&String> = up.array_filters.keys().filter(|k| !used_ids.contains(*k)).collect();
    unused.sort();
    if let Some(id) = unused.first() {
        return Err(failed_to_parse(format!(
            "The array filter for identifier '{id}' was not used in the update {}",
            doc_to_string(u)
        )));
    }
    Ok(UpdateSpec::Operators(up))
}

fn make_modifier(op: &str, path: &str, v: &Bson) -> Result<Box<dyn Modifier>> {
    if let Some(m) = fields::parse_modifier(op, path, v)? {
        return Ok(m);
    }
    if let Some(m) = arrays::parse_modifier(op, path, v)? {
        return Ok(m);
    }
    Err(failed_to_parse(format!("{op} is not supported yet")))
}

fn validate_replacement(u: &Document) -> Result<()> {
    for (k, v) in u {
        if k.starts_with('$') {
            return Err(MongoError::new(
                ErrorCode::DollarPrefixedFieldName,
                format!(
                    "The dollar ($) prefixed field '{k}' in '{k}' is not allowed in the context of an \
                     update's replacement document. Consider using an aggregation pipeline with \
                     $replaceWith."
                ),
            ));
        }
        if k == "_id" && matches!(v, Bson::Array(_)) {
            return Err(MongoError::new(
                ErrorCode::InvalidIdField,
                "The '_id' value cannot be of type array",
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum Comp {
    Field(String),
    Positional,
    All,
    Filtered(String),
}

impl Comp {
    fn is_array_update(&self) -> bool {
        matches!(self, Comp::All | Comp::Filtered(_))
    }
}

fn parse_path(p: &str, filters: &HashMap<String, Matcher>, used: &mut HashSet<String>) -> Result<Vec<Comp>> {
    if p.is_empty() {
        return Err(MongoError::new(ErrorCode::EmptyFieldName, "An empty update path is not valid."));
    }
    let mut out = Vec::new();
    let mut positionals = 0;
    for (i, c) in p.split('.').enumerate() {
        if c.is_empty() {
            return Err(MongoError::new(
                ErrorCode::EmptyFieldName,
                format!("The update path '{p}' contains an empty field name, which is not allowed."),
            ));
        }
        let comp = if c == "$" {
            positionals += 1;
            Comp::Positional
        } else if c == "$[]" {
            Comp::All
        } else if let Some(id) = c.strip_prefix("$[").and_then(|r| r.strip_suffix(']')) {
            if !filters.contains_key(id) {
                return Err(bad_value(format!("No array filter found for identifier '{id}' in path '{p}'")));
            }
            used.insert(id.to_string());
            Comp::Filtered(id.to_string())
        } else if c.starts_with('$') {
            return Err(MongoError::new(
                ErrorCode::DollarPrefixedFieldName,
                format!("The dollar ($) prefixed field '{c}' in '{p}' is not valid for storage."),
            ));
        } else {
            Comp::Field(c.to_string())
        };
        if i == 0 && comp == Comp::Positional {
            return Err(bad_value(format!(
                "Cannot have positional (i.e. '$') element in the first position in path '{p}'"
            )));
        }
        if i == 0 && comp.is_array_update() {
            return Err(bad_value(format!(
                "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position \
                 in path '{p}'"
            )));
        }
        out.push(comp);
    }
    if positionals > 1 {
        return Err(bad_value(format!("Too many positional (i.e. '$') elements found in path '{p}'")));
    }
    Ok(out)
}

fn conflict(full: &str, comps_text: &[&str], upto: usize) -> MongoError {
    let at = comps_text.get(..=upto).map(|c| c.join(".")).unwrap_or_default();
    MongoError::new(
        ErrorCode::ConflictingUpdateOperators,
        format!("Updating the path '{full}' would create a conflict at '{at}'"),
    )
}

/// Adds a leaf at a path, refusing overlaps with paths already in the tree.
fn insert(root: &mut ObjNode, comps: &[Comp], full: &str, leaf: Leaf) -> Result<()> {
    let texts: Vec<&str> = full.split('.').collect();
    insert_obj(root, comps, 0, full, &texts, leaf)
}

/// Continues `insert` at component `start` below an object node. `comps`, `full` and
/// `texts` always describe the whole path, so conflicts report it whole.
fn insert_obj(
    root: &mut ObjNode,
    comps: &[Comp],
    start: usize,
    full: &str,
    texts: &[&str],
    leaf: Leaf,
) -> Result<()> {
    let mut cur = root;
    let mut leaf = Some(leaf);
    for (i, comp) in comps.iter().enumerate().skip(start) {
        let last = i + 1 == comps.len();
        let next_is_array = comps.get(i + 1).is_some_and(Comp::is_array_update);
        let slot: &mut UNode = match comp {
            Comp::Field(name) => {
                let key = FieldKey(name.clone());
                if last {
                    if cur.children.contains_key(&key) {
                        return Err(conflict(full, texts, i));
                    }
                    if let Some(l) = leaf.take() {
                        cur.children.insert(key, UNode::Leaf(l));
                    }
                    return Ok(());
                }
                cur.children.entry(key).or_insert_with(|| new_inner(next_is_array))
            }
            Comp::Positional => {
                if last {
                    if cur.positional.is_some() {
                        return Err(conflict(full, texts, i));
                    }
                    cur.positional = leaf.take().map(|l| Box::new(UNode::Leaf(l)));
                    return Ok(());
                }
                cur.positional.get_or_insert_with(|| Box::new(new_inner(next_is_array)))
            }
            // An array component directly under an object node cannot happen: the parent was
            // made an array node by the previous step.
            Comp::All | Comp::Filtered(_) => return Err(conflict(full, texts, i)),
        };
        match slot {
            UNode::Obj(o) if !next_is_array => cur = o,
            UNode::Arr(a) if next_is_array => {
                return match leaf.take() {
                    Some(l) => insert_arr(a, comps, i + 1, full, texts, l),
                    None => Ok(()),
                };
            }
            _ => return Err(conflict(full, texts, i)),
        }
    }
    Ok(())
}

fn new_inner(array: bool) -> UNode {
    if array {
        UNode::Arr(ArrNode::default())
    } else {
        UNode::Obj(ObjNode::default())
    }
}

/// Continues `insert` below an array node at component `i` (a `$[]` / `$[id]`).
fn insert_arr(
    a: &mut ArrNode,
    comps: &[Comp],
    i: usize,
    full: &str,
    texts: &[&str],
    leaf: Leaf,
) -> Result<()> {
    let key = match comps.get(i) {
        Some(Comp::All) => String::new(),
        Some(Comp::Filtered(id)) => id.clone(),
        _ => return Err(conflict(full, texts, i)),
    };
    let last = i + 1 == comps.len();
    if last {
        if a.children.contains_key(&key) {
            return Err(conflict(full, texts, i));
        }
        a.children.insert(key, UNode::Leaf(leaf));
        return Ok(());
    }
    let next_is_array = comps.get(i + 1).is_some_and(Comp::is_array_update);
    let slot = a.children.entry(key).or_insert_with(|| new_inner(next_is_array));
    match slot {
        UNode::Arr(inner) if next_is_array => insert_arr(inner, comps, i + 1, full, texts, leaf),
        UNode::Obj(o) if !next_is_array => insert_obj(o, comps, i + 1, full, texts, leaf),
        _ => Err(conflict(full, texts, i)),
    }
}

fn parse_array_filters(filters: &[Document]) -> Result<HashMap<String, Matcher>> {
    let mut out = HashMap::new();
    for f in filters {
        let mut ids = HashSet::new();
        collect_filter_ids(f, &mut ids)?;
        let mut ids: Vec<String> = ids.into_iter().collect();
        ids.sort();
        let id = match ids.as_slice() {
            [] => {
                return Err(failed_to_parse(
                    "Cannot use an expression without a top-level field name in arrayFilters",
                ))
            }
            [one] => one.clone(),
            [a, b, ..] => {
                return Err(failed_to_parse(format!(
                    "Error parsing array filter :: caused by :: Expected a single top-level field name, \
                     found '{a}' and '{b}'"
                )))
            }
        };
        let valid = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(bad_value(format!(
                "Error parsing array filter :: caused by :: The top-level field name must be an \
                 alphanumeric string beginning with a lowercase letter, found '{id}'"
            )));
        }
        if out.contains_key(&id) {
            return Err(failed_to_parse(format!(
                "Found multiple array filters with the same top-level field name {id}"
            )));
        }
        out.insert(id, Matcher::parse(f)?);
    }
    Ok(out)
}

fn collect_filter_ids(f: &Document, ids: &mut HashSet<String>) -> Result<()> {
    for (k, v) in f {
        match k.as_str() {
            "$and" | "$or" | "$nor" => {
                if let Bson::Array(items) = v {
                    for item in items {
                        if let Bson::Document(d) = item {
                            collect_filter_ids(d, ids)?;
                        }
                    }
                }
            }
            _ if k.starts_with('$') => {}
            _ => {
                ids.insert(k.split('.').next().unwrap_or_default().to_string());
            }
        }
    }
    Ok(())
}

/// Applies an update with the current time for `$currentDate`.
pub fn apply_update(
    spec: &UpdateSpec,
    doc: &Document,
    is_upsert_insert: bool,
    positional: Option<usize>,
) -> Result<(Document, bool)> {
    let now = DateTime::now();
    let secs = u32::try_from(now.timestamp_millis().max(0) / 1000).unwrap_or(u32::MAX);
    apply_update_at(spec, doc, is_upsert_insert, positional, now, Timestamp { time: secs, increment: 1 })
}

/// Applies an update; `now`/`timestamp` are what `$currentDate` writes. Returns the new
/// document and whether it differs from the input (false for a no-op, as mongod's
/// nModified).
pub fn apply_update_at(
    spec: &UpdateSpec,
    doc: &Document,
    is_upsert_insert: bool,
    positional: Option<usize>,
    now: DateTime,
    timestamp: Timestamp,
) -> Result<(Document, bool)> {
    match spec {
        UpdateSpec::Replacement(r) => apply_replacement(r, doc, is_upsert_insert),
        UpdateSpec::Pipeline(p) => p.apply(doc, now),
        UpdateSpec::Operators(up) => {
            let id_desc = match doc.get("_id") {
                Some(id) => element_to_string("_id", id),
                None => "no id".to_string(),
            };
            let mut st = State {
                positional,
                is_insert: is_upsert_insert,
                id_desc,
                now,
                timestamp,
                filters: &up.array_filters,
                renamed: HashMap::new(),
                touched_id: None,
            };
            // $rename reads its sources from the document as it was.
            for (from, to) in &up.renames {
                if let Some(v) = fields::rename_source(doc, from, to, &st.id_desc)? {
                    st.renamed.insert(from.clone(), v);
                }
            }
            let mut root = Bson::Document(doc.clone());
            let mut trail = Vec::new();
            let mut changed = apply_children(&up.root, &mut root, &mut trail, &mut st)?;
            let Bson::Document(mut out) = root else {
                return Err(MongoError::internal("update produced a non-document"));
            };
            for (from, _) in &up.renames {
                if st.renamed.contains_key(from) {
                    if !is_upsert_insert && (from == "_id" || from.starts_with("_id.")) {
                        return Err(MongoError::new(
                            ErrorCode::ImmutableField,
                            format!(
                                "Unsetting the path '{from}' using $rename would modify the immutable \
                                 field '_id'"
                            ),
                        ));
                    }
                    changed |= path::unset_path(&mut out, from);
                }
            }
            if !is_upsert_insert {
                if let Some(p) = &st.touched_id {
                    let same = match (doc.get("_id"), out.get("_id")) {
                        (Some(a), Some(b)) => crate::query::collation::binary(|| bson_equal(a, b)),
                        (None, None) => true,
                        _ => false,
                    };
                    if !same {
                        return Err(MongoError::new(
                            ErrorCode::ImmutableField,
                            format!("Performing an update on the path '{p}' would modify the immutable field '_id'"),
                        ));
                    }
                }
            }
            if matches!(out.get("_id"), Some(Bson::Array(_))) {
                return Err(MongoError::new(
                    ErrorCode::InvalidIdField,
                    "The '_id' value cannot be of type array",
                ));
            }
            Ok((out, changed))
        }
    }
}

fn apply_replacement(r: &Document, doc: &Document, is_upsert_insert: bool) -> Result<(Document, bool)> {
    let mut out = Document::new();
    match (doc.get("_id"), r.get("_id")) {
        (Some(old), Some(new))
            if !is_upsert_insert && !crate::query::collation::binary(|| bson_equal(old, new)) =>
        {
            return Err(MongoError::new(
                ErrorCode::ImmutableField,
                format!(
                    "After applying the update, the (immutable) field '_id' was found to have been altered \
                     to _id: {}",
                    value_to_string(new)
                ),
            ));
        }
        (Some(old), None) => {
            out.insert("_id", old.clone());
        }
        _ => {}
    }
    for (k, v) in r {
        out.insert(k.clone(), v.clone());
    }
    let changed = !doc_binary_equal(doc, &out);
    Ok((out, changed))
}

struct State<'a> {
    positional: Option<usize>,
    is_insert: bool,
    id_desc: String,
    now: DateTime,
    timestamp: Timestamp,
    filters: &'a HashMap<String, Matcher>,
    renamed: HashMap<String, Bson>,
    touched_id: Option<String>,
}

/// Applies an object node's children to `target` (a document, an array addressed by index,
/// or a value that cannot hold fields).
fn apply_children(
    node: &ObjNode,
    target: &mut Bson,
    trail: &mut Vec<String>,
    st: &mut State,
) -> Result<bool> {
    let mut entries: Vec<(String, &UNode)> = node.children.iter().map(|(k, v)| (k.0.clone(), v)).collect();
    if let Some(p) = &node.positional {
        let Some(i) = st.positional else {
            return Err(bad_value("The positional operator did not find the match needed from the query."));
        };
        let key = i.to_string();
        if node.children.contains_key(&FieldKey(key.clone())) {
            let mut t = trail.clone();
            t.push(key);
            return Err(MongoError::new(
                ErrorCode::ConflictingUpdateOperators,
                format!("Update created a conflict at '{}'", t.join(".")),
            ));
        }
        entries.push((key, p));
        entries.sort_by_key(|a| FieldKey(a.0.clone()));
    }
    let mut changed = false;
    for (key, child) in entries {
        changed |= apply_at(child, target, &key, trail, st)?;
    }
    Ok(changed)
}

fn apply_at(
    child: &UNode,
    container: &mut Bson,
    key: &str,
    trail: &mut Vec<String>,
    st: &mut State,
) -> Result<bool> {
    if let UNode::Leaf(Leaf { kind: LeafKind::Mod(m) }) = child {
        if !m.active(st.is_insert) {
            return Ok(false);
        }
    }
    let viable = matches!(container, Bson::Document(_))
        || matches!(container, Bson::Array(_)) && array_index(key).is_some();
    if !viable {
        let Some((creates, rel)) = child.first_strict(st.is_insert) else {
            return Ok(false);
        };
        let desc = match trail.last() {
            Some(name) => element_to_string(name, container),
            None => value_to_string(container),
        };
        if creates {
            return Err(not_viable(key, &desc));
        }
        let mut full = trail.clone();
        full.push(key.to_string());
        full.extend(rel);
        return Err(MongoError::new(
            ErrorCode::PathNotViable,
            format!(
                "Cannot use the part ({key}) of ({}) to traverse the element ({{{desc}}})",
                full.join(".")
            ),
        ));
    }
    trail.push(key.to_string());
    let r = apply_at_viable(child, container, key, trail, st);
    trail.pop();
    r
}

fn apply_at_viable(
    child: &UNode,
    container: &mut Bson,
    key: &str,
    trail: &mut Vec<String>,
    st: &mut State,
) -> Result<bool> {
    let removes = matches!(child, UNode::Leaf(Leaf { kind: LeafKind::Mod(m) }) if m.removes());
    if removes {
        note_id(trail, st);
        return Ok(match container {
            Bson::Document(d) => d.remove(key).is_some(),
            Bson::Array(a) => match array_index(key).and_then(|i| a.get_mut(i)) {
                Some(slot) => {
                    *slot = Bson::Null;
                    true
                }
                None => false,
            },
            _ => false,
        });
    }
    let existing: Option<&mut Bson> = match container {
        Bson::Document(d) => d.get_mut(key),
        Bson::Array(a) => array_index(key).and_then(|i| a.get_mut(i)),
        _ => None,
    };
    match existing {
        Some(v) => apply_existing(child, v, trail, st),
        None => match create(child, trail, st)? {
            Some(v) => {
                path::store_child(container, key, v, "")?;
                Ok(true)
            }
            None => Ok(false),
        },
    }
}

fn note_id(trail: &[String], st: &mut State) {
    if trail.first().is_some_and(|f| f == "_id") && st.touched_id.is_none() {
        st.touched_id = Some(trail.join("."));
    }
}

fn leaf_cx<'a>(trail: &'a [String], path: &'a str, st: &'a State) -> LeafCx<'a> {
    LeafCx {
        field: trail.last().map(String::as_str).unwrap_or(""),
        path,
        id_desc: &st.id_desc,
        is_insert: st.is_insert,
        now: st.now,
        timestamp: st.timestamp,
    }
}

fn apply_existing(child: &UNode, v: &mut Bson, trail: &mut Vec<String>, st: &mut State) -> Result<bool> {
    match child {
        UNode::Leaf(l) => {
            let path = trail.join(".");
            let changed = match &l.kind {
                LeafKind::Mod(m) => m.apply_existing(v, &leaf_cx(trail, &path, st))?,
                LeafKind::Placeholder => false,
                LeafKind::RenameTo { from } => match st.renamed.get(from) {
                    Some(val) => {
                        let c = !super::util::binary_equal(v, val);
                        *v = val.clone();
                        c
                    }
                    None => false,
                },
            };
            if changed {
                note_id(trail, st);
            }
            Ok(changed)
        }
        UNode::Obj(o) => apply_children(o, v, trail, st),
        UNode::Arr(a) => {
            let Bson::Array(items) = v else {
                let name = trail.last().cloned().unwrap_or_default();
                return Err(bad_value(format!(
                    "Cannot apply array updates to non-array element {}",
                    element_to_string(&name, v)
                )));
            };
            let mut changed = false;
            for (i, item) in items.iter_mut().enumerate() {
                for (id, sub) in &a.children {
                    let selected = id.is_empty() || element_matches(st.filters.get(id), id, item);
                    if selected {
                        trail.push(i.to_string());
                        let r = apply_existing(sub, item, trail, st);
                        trail.pop();
                        changed |= r?;
                    }
                }
            }
            Ok(changed)
        }
    }
}

/// An array filter tests an element as the value of its identifier field.
fn element_matches(filter: Option<&Matcher>, id: &str, item: &Bson) -> bool {
    let Some(f) = filter else { return false };
    let mut d = Document::new();
    d.insert(id.to_string(), item.clone());
    f.matches(&d)
}

fn create(child: &UNode, trail: &mut Vec<String>, st: &mut State) -> Result<Option<Bson>> {
    match child {
        UNode::Leaf(l) => {
            let path = trail.join(".");
            let v = match &l.kind {
                LeafKind::Mod(m) => m.create(&leaf_cx(trail, &path, st))?,
                LeafKind::Placeholder => None,
                LeafKind::RenameTo { from } => st.renamed.get(from).cloned(),
            };
            if v.is_some() {
                note_id(trail, st);
            }
            Ok(v)
        }
        UNode::Obj(o) => {
            let mut tmp = Bson::Document(Document::new());
            let changed = apply_children(o, &mut tmp, trail, st)?;
            Ok(changed.then_some(tmp))
        }
        UNode::Arr(_) => Err(bad_value(format!(
            "The path '{}' must exist in the document in order to apply array updates.",
            trail.join(".")
        ))),
    }
}

/// The document an upsert starts from: the filter's equality conditions (top level and
/// inside `$and`, single-clause `$or`, `$eq`, single-element `$in`), `_id` first.
pub fn upsert_seed(filter: &Document) -> Result<Document> {
    let mut eqs: Vec<(String, Bson)> = Vec::new();
    collect_equalities(filter, &mut eqs)?;
    eqs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for w in eqs.windows(2) {
        if let [(a, _), (b, _)] = w {
            if a == b {
                return Err(MongoError::new(
                    ErrorCode::NotSingleValueField,
                    format!("cannot infer query fields to set, path '{a}' is matched twice"),
                ));
            }
        }
    }
    for (i, (a, _)) in eqs.iter().enumerate() {
        for (b, _) in eqs.iter().skip(i + 1) {
            if b.starts_with(a.as_str()) && b.as_bytes().get(a.len()) == Some(&b'.') {
                return Err(MongoError::new(
                    ErrorCode::NotSingleValueField,
                    format!("cannot infer query fields to set, both paths '{b}' and '{a}' are matched"),
                ));
            }
        }
    }
    let mut out = Document::new();
    if let Some(pos) = eqs.iter().position(|(p, _)| p == "_id" || p.starts_with("_id.")) {
        if eqs.get(pos).is_some_and(|(p, _)| p == "_id") {
            let (p, v) = eqs.remove(pos);
            out.insert(p, v);
        }
    }
    for (p, v) in eqs {
        let parts: Vec<&str> = p.split('.').collect();
        if let Some((first, rest)) = parts.split_first() {
            if out.contains_key(*first) {
                path::set_path(&mut out, &p, v)?;
            } else {
                out.insert((*first).to_string(), nest(rest, v));
            }
        }
    }
    Ok(out)
}

fn collect_equalities(filter: &Document, out: &mut Vec<(String, Bson)>) -> Result<()> {
    for (k, v) in filter {
        match k.as_str() {
            "$and" => {
                if let Bson::Array(items) = v {
                    for item in items {
                        if let Bson::Document(d) = item {
                            collect_equalities(d, out)?;
                        }
                    }
                }
            }
            "$or" => {
                if let Bson::Array(items) = v {
                    if let [Bson::Document(d)] = items.as_slice() {
                        collect_equalities(d, out)?;
                    }
                }
            }
            _ if k.starts_with('$') => {}
            _ => match v {
                Bson::RegularExpression(_) => {}
                Bson::Document(d) if is_operator_doc(d) => {
                    for (op, arg) in d {
                        match (op.as_str(), arg) {
                            ("$eq", Bson::RegularExpression(_)) => {}
                            ("$eq", a) => out.push((k.clone(), a.clone())),
                            ("$in", Bson::Array(items)) if items.len() == 1 => {
                                if let Some(a) = items.first() {
                                    if !matches!(a, Bson::RegularExpression(_)) {
                                        out.push((k.clone(), a.clone()));
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                other => out.push((k.clone(), other.clone())),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn run(
        u: Document,
        filters: Option<&[Document]>,
        d: Document,
        pos: Option<usize>,
    ) -> Result<(Document, bool)> {
        let spec = parse_update(&u, filters)?;
        apply_update(&spec, &d, false, pos)
    }

    fn upd(u: Document, d: Document) -> Document {
        run(u, None, d, None).unwrap().0
    }

    fn err(u: Document, d: Document) -> (ErrorCode, String) {
        let e = run(u, None, d, None).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn parse_errors() {
        let (c, m) = err(doc! {"$foo": {"a": 1}}, doc! {});
        assert_eq!(c, ErrorCode::FailedToParse);
        assert_eq!(m, "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update specified as an array");
        let (c, m) = err(doc! {"$set": {"a": 1}, "b": 2}, doc! {});
        assert_eq!(c, ErrorCode::FailedToParse);
        assert!(m.starts_with("Unknown modifier: b."));
        let (c, m) = err(doc! {"$set": 1}, doc! {});
        assert_eq!(c, ErrorCode::FailedToParse);
        assert_eq!(m, "Modifiers operate on fields but we found type int instead. For example: {$mod: {<field>: ...}} not {$set: 1}");
        let (c, m) = err(doc! {"a": 1, "$set": {"b": 1}}, doc! {});
        assert_eq!(c, ErrorCode::DollarPrefixedFieldName);
        assert!(m.starts_with("The dollar ($) prefixed field '$set' in '$set'"));
        assert_eq!(err(doc! {"$set": {"a..b": 1}}, doc! {}).0, ErrorCode::EmptyFieldName);
        assert_eq!(err(doc! {"$set": {"$.a": 1}}, doc! {}).0, ErrorCode::BadValue);
        assert_eq!(err(doc! {"$set": {"a.$.b.$": 1}}, doc! {}).0, ErrorCode::BadValue);
        // Empty operator documents are accepted (no-op).
        assert_eq!(run(doc! {"$set": {}}, None, doc! {"_id": 1}, None).unwrap(), (doc! {"_id": 1}, false));
    }

    #[test]
    fn conflicts() {
        let c = |u: Document| err(u, doc! {});
        assert_eq!(
            c(doc! {"$set": {"a": 1}, "$inc": {"a.b": 1}}),
            (
                ErrorCode::ConflictingUpdateOperators,
                "Updating the path 'a.b' would create a conflict at 'a'".into()
            )
        );
        assert_eq!(
            c(doc! {"$set": {"a.b": 1}, "$inc": {"a": 1}}).1,
            "Updating the path 'a' would create a conflict at 'a'"
        );
        assert_eq!(
            c(doc! {"$set": {"a": 1}, "$unset": {"a": 1}}).1,
            "Updating the path 'a' would create a conflict at 'a'"
        );
        assert_eq!(
            c(doc! {"$set": {"a.$[].b": 1, "a.$[].b.c": 1}}).1,
            "Updating the path 'a.$[].b.c' would create a conflict at 'a.$[].b'"
        );
        // Siblings do not conflict.
        assert!(run(doc! {"$set": {"a.b": 1, "a.c": 1}}, None, doc! {}, None).is_ok());
        assert!(run(doc! {"$set": {"a.b": 1}, "$inc": {"ab": 1}}, None, doc! {}, None).is_ok());
    }

    #[test]
    fn field_order() {
        // Existing fields stay in place; new ones are appended in lexicographic order,
        // numeric names in numeric order.
        assert_eq!(
            upd(doc! {"$set": {"z": 1, "b": 2, "a": 3}}, doc! {"_id": 1, "b": 0, "y": 0}),
            doc! {"_id": 1, "b": 2, "y": 0, "a": 3, "z": 1}
        );
        assert_eq!(
            upd(doc! {"$set": {"x.10": 1, "x.9": 2}}, doc! {"_id": 1}),
            doc! {"_id": 1, "x": {"9": 2, "10": 1}}
        );
        assert_eq!(
            upd(doc! {"$set": {"a.c": 1, "a.b": 1}}, doc! {"_id": 1}),
            doc! {"_id": 1, "a": {"b": 1, "c": 1}}
        );
    }

    #[test]
    fn immutable_id() {
        let (c, m) = err(doc! {"$set": {"_id": 2}}, doc! {"_id": 1});
        assert_eq!(c, ErrorCode::ImmutableField);
        assert_eq!(m, "Performing an update on the path '_id' would modify the immutable field '_id'");
        assert!(!run(doc! {"$set": {"_id": 1}}, None, doc! {"_id": 1}, None).unwrap().1);
        assert_eq!(err(doc! {"$unset": {"_id": 1}}, doc! {"_id": 1}).0, ErrorCode::ImmutableField);
        assert_eq!(
            err(doc! {"$set": {"_id.a": 2}}, doc! {"_id": {"a": 1}}).1,
            "Performing an update on the path '_id.a' would modify the immutable field '_id'"
        );
        // On an upsert's insert, _id may be set.
        let spec = parse_update(&doc! {"$set": {"_id": 5}}, None).unwrap();
        assert_eq!(apply_update(&spec, &doc! {}, true, None).unwrap().0, doc! {"_id": 5});
    }

    #[test]
    fn replacement() {
        let spec = parse_update(&doc! {"b": 2}, None).unwrap();
        assert_eq!(
            apply_update(&spec, &doc! {"_id": 1, "a": 1}, false, None).unwrap(),
            (doc! {"_id": 1, "b": 2}, true)
        );
        assert!(!apply_update(&spec, &doc! {"_id": 1, "b": 2}, false, None).unwrap().1);
        let spec = parse_update(&doc! {"_id": 2, "b": 2}, None).unwrap();
        let e = apply_update(&spec, &doc! {"_id": 1}, false, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::ImmutableField);
        assert_eq!(
            e.message,
            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2"
        );
        let spec = parse_update(&doc! {}, None).unwrap();
        assert_eq!(apply_update(&spec, &doc! {"_id": 1, "a": 1}, false, None).unwrap().0, doc! {"_id": 1});
    }

    #[test]
    fn positional_operators() {
        let d = doc! {"_id": 1, "a": [1, 2, 3]};
        assert_eq!(
            run(doc! {"$set": {"a.$": 9}}, None, d.clone(), Some(1)).unwrap().0,
            doc! {"_id": 1, "a": [1, 9, 3]}
        );
        let e = run(doc! {"$set": {"a.$": 9}}, None, d.clone(), None).unwrap_err();
        assert_eq!(e.message, "The positional operator did not find the match needed from the query.");
        assert_eq!(upd(doc! {"$inc": {"a.$[]": 10}}, d.clone()), doc! {"_id": 1, "a": [11, 12, 13]});
        let d2 = doc! {"_id": 1, "a": [{"b": 1}, {"b": 5}, {"c": 1}]};
        assert_eq!(
            upd(doc! {"$set": {"a.$[].x": 0}}, d2.clone()),
            doc! {"_id": 1, "a": [{"b": 1, "x": 0}, {"b": 5, "x": 0}, {"c": 1, "x": 0}]}
        );
        let filters = [doc! {"e.b": {"$gte": 2}}];
        assert_eq!(
            run(doc! {"$set": {"a.$[e].b": 0}}, Some(&filters), d2.clone(), None).unwrap().0,
            doc! {"_id": 1, "a": [{"b": 1}, {"b": 0}, {"c": 1}]}
        );
        let filters = [doc! {"x": {"$gt": 1}}];
        assert_eq!(
            run(doc! {"$mul": {"a.$[x]": 2}}, Some(&filters), d.clone(), None).unwrap().0,
            doc! {"_id": 1, "a": [1, 4, 6]}
        );
        let e = run(doc! {"$set": {"a.$[y]": 1}}, Some(&filters), d.clone(), None).unwrap_err();
        assert_eq!(e.message, "No array filter found for identifier 'y' in path 'a.$[y]'");
        let e = run(doc! {"$set": {"a": 1}}, Some(&filters), d.clone(), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::FailedToParse);
        assert_eq!(
            e.message,
            "The array filter for identifier 'x' was not used in the update { $set: { a: 1 } }"
        );
        assert_eq!(err(doc! {"$set": {"b.$[].c": 1}}, doc! {"_id": 1}).0, ErrorCode::BadValue);
        assert_eq!(err(doc! {"$set": {"a.$[].c": 1}}, d).0, ErrorCode::PathNotViable);
        assert_eq!(
            run(doc! {"$set": {"a.$[]": 1}}, None, doc! {"a": 5}, None).unwrap_err().code,
            ErrorCode::BadValue
        );
    }

    #[test]
    fn set_on_insert() {
        let spec = parse_update(&doc! {"$setOnInsert": {"a": 1}, "$set": {"b": 1}}, None).unwrap();
        assert_eq!(apply_update(&spec, &doc! {"_id": 1}, false, None).unwrap().0, doc! {"_id": 1, "b": 1});
        assert_eq!(
            apply_update(&spec, &doc! {"_id": 1}, true, None).unwrap().0,
            doc! {"_id": 1, "a": 1, "b": 1}
        );
    }

    #[test]
    fn upsert_seeds() {
        assert_eq!(upsert_seed(&doc! {"b": 1, "_id": 3, "a": {"$gt": 1}}).unwrap(), doc! {"_id": 3, "b": 1});
        assert_eq!(
            upsert_seed(&doc! {"$and": [{"x.y": 1}, {"x.z": {"$eq": 2}}], "c": {"$in": [4]}}).unwrap(),
            doc! {"c": 4, "x": {"y": 1, "z": 2}}
        );
        assert_eq!(upsert_seed(&doc! {"$or": [{"a": 1}, {"b": 2}]}).unwrap(), doc! {});
        assert_eq!(upsert_seed(&doc! {"$or": [{"a": 1}]}).unwrap(), doc! {"a": 1});
        let e = upsert_seed(&doc! {"$and": [{"a": 1}, {"a": 2}]}).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::NotSingleValueField, "cannot infer query fields to set, path 'a' is matched twice")
        );
        assert_eq!(upsert_seed(&doc! {"a": 1, "a.b": 1}).unwrap_err().code, ErrorCode::NotSingleValueField);
        // The seed then gets the operators applied as an insert.
        let seed = upsert_seed(&doc! {"a": 1}).unwrap();
        let spec = parse_update(&doc! {"$inc": {"n": 1}, "$setOnInsert": {"s": true}}, None).unwrap();
        assert_eq!(apply_update(&spec, &seed, true, None).unwrap().0, doc! {"a": 1, "n": 1, "s": true});
    }
}
