//! Choosing among several usable indexes by running them, as mongod's multi-planner does:
//! each candidate runs for a short trial (round-robin, a few works at a time) and the most
//! productive one (results per key or document examined) wins; one that finishes first wins
//! outright. The winner is remembered per collection and query shape (filter fields and
//! operators, not values; sort; projection) until the collection's index set changes or
//! `planCacheClear` clears it.
//!
//! Entries follow mongod's states: a new entry is *inactive* (it records the winner's works
//! but the next query of the shape still runs a trial); a trial whose winner needs no more
//! works than an inactive entry makes it *active* (else the entry's works double). An active
//! entry's plan is used without a trial, but first runs alone for at most ten times its
//! works: when it cannot finish (end its scan or fill a first batch) in that budget, the
//! shape is replanned and the new winner cached as active.

use super::exec::{Exec, ExecOptions, ExecStats};
use super::matcher::Matcher;
use super::planner::{self, Plan};
use crate::error::Result;
use crate::query::exec::Access;
use crate::store::catalog::Collection;
use crate::store::StoreSession;
use bson::{Bson, Document};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A trial ends when a plan has this many results ...
const TRIAL_RESULTS: usize = 101;
/// ... or every plan has done this many works (keys + documents examined).
const TRIAL_WORKS: u64 = 10_000;
/// Works each plan does per round-robin turn.
const TRIAL_STEP: u64 = 64;
/// Most shapes cached per collection and in all; past either the cache starts over (it is
/// only an optimisation). Longer shapes are not cached: this bounds the memory clients can
/// make the cache hold.
const MAX_SHAPES: usize = 1_000;
const MAX_SHAPES_TOTAL: usize = 20_000;
const MAX_SHAPE_LEN: usize = 1024;

/// One candidate's trial: its plan and what it did.
pub struct Trial {
    pub plan: Plan,
    pub stats: ExecStats,
    /// Keys and documents examined.
    pub works: u64,
    /// It ended its scan or filled a first batch.
    pub finished: bool,
}

/// The plan to run, and (when a trial chose it) the candidates' trials, winner first.
pub struct Choice {
    pub plan: Plan,
    pub trials: Vec<Trial>,
    pub from_cache: bool,
}

/// What a query looks like to the plan cache.
pub struct Shape<'a> {
    pub filter: &'a Document,
    pub sort: Option<&'a Document>,
    pub projection: Option<&'a Document>,
}

/// A cached plan may use this many times the works it was cached with before the shape
/// is replanned (mongod's `internalQueryCacheEvictionRatio`).
const EVICTION_RATIO: u64 = 10;
/// A trial that loses to an inactive entry multiplies its works by this (mongod's
/// `internalQueryCacheWorksGrowthCoefficient`).
const WORKS_GROWTH: u64 = 2;
/// Most bytes of the query an entry keeps as `createdFromQuery` (debug information only).
const MAX_CREATED_FROM: usize = 1024;

struct Entry {
    index: String,
    works: u64,
    active: bool,
    created_from: Document,
    created: bson::DateTime,
}

struct CollCache {
    /// The index set the entries were chosen from (idents and hidden flags).
    indexes: String,
    winners: HashMap<String, Entry>,
}

/// One plan cache entry as `$planCacheStats` reports it.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The shape key: filter fields and operators, sort, projection, collation.
    pub shape: String,
    /// Hash of the shape alone, and of the shape with the index set (8 hex digits each).
    pub query_hash: String,
    pub plan_cache_key: String,
    /// The cached plan's index.
    pub index: String,
    pub works: u64,
    pub is_active: bool,
    /// `{query, sort, projection}` of the query that created the entry (empty when large).
    pub created_from: Document,
    pub time_of_creation: bson::DateTime,
}

/// A stable 32-bit FNV-1a hash, printed as mongod prints query hashes.
fn hash_hex(parts: &[&str]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    format!("{h:08X}")
}

/// explain's `queryHash` and `planCacheKey` for a query: what `entries` reports for its shape.
pub fn hashes(coll: &Collection, shape: &Shape<'_>) -> (String, String) {
    let key = shape_key(shape);
    (hash_hex(&[&key]), hash_hex(&[&key, "|", &index_set(coll)]))
}

/// The collection's plan cache entries (those chosen from its current index set).
pub fn entries(coll: &Collection) -> Vec<CacheEntry> {
    let Ok(guard) = cache().lock() else { return Vec::new() };
    let Some(c) = guard.get(&coll.uuid) else { return Vec::new() };
    if c.indexes != index_set(coll) {
        return Vec::new();
    }
    let mut out: Vec<CacheEntry> = c
        .winners
        .iter()
        .map(|(shape, e)| CacheEntry {
            shape: shape.clone(),
            query_hash: hash_hex(&[shape]),
            plan_cache_key: hash_hex(&[shape, "|", &c.indexes]),
            index: e.index.clone(),
            works: e.works,
            is_active: e.active,
            created_from: e.created_from.clone(),
            time_of_creation: e.created,
        })
        .collect();
    out.sort_by(|a, b| a.shape.cmp(&b.shape));
    out
}

fn cache() -> &'static Mutex<HashMap<bson::Uuid, CollCache>> {
    static CACHE: OnceLock<Mutex<HashMap<bson::Uuid, CollCache>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Identifies the index set: a new or dropped index (or collection) makes it differ.
fn index_set(coll: &Collection) -> String {
    let mut s = String::new();
    for i in &coll.indexes {
        s.push_str(&i.ident);
        if i.spec.get_bool("hidden").unwrap_or(false) {
            s.push('h');
        }
        s.push(',');
    }
    s
}

/// Field names and operators of a filter, without values.
fn filter_shape(out: &mut String, filter: &Document) {
    out.push('{');
    for (k, v) in filter {
        out.push_str(k);
        out.push(':');
        match v {
            Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                out.push('{');
                for (op, arg) in d {
                    out.push_str(op);
                    if op == "$not" || op == "$elemMatch" {
                        if let Bson::Document(inner) = arg {
                            filter_shape(out, inner);
                        }
                    }
                    out.push(',');
                }
                out.push('}');
            }
            Bson::Array(clauses) if k.starts_with('$') => {
                out.push('[');
                for c in clauses {
                    if let Bson::Document(c) = c {
                        filter_shape(out, c);
                    }
                }
                out.push(']');
            }
            // Arrays, regexes and null plan differently from other equality values.
            Bson::Array(_) => out.push_str("arr"),
            Bson::RegularExpression(_) => out.push_str("re"),
            Bson::Null | Bson::Undefined => out.push_str("null"),
            _ => out.push_str("eq"),
        }
        out.push(',');
    }
    out.push('}');
}

fn shape_key(shape: &Shape<'_>) -> String {
    let mut s = String::new();
    filter_shape(&mut s, shape.filter);
    s.push('|');
    for (k, v) in shape.sort.into_iter().flatten() {
        s.push_str(k);
        s.push_str(if crate::store::catalog::direction_is_descending(v) { "-" } else { "+" });
    }
    s.push('|');
    for k in shape.projection.into_iter().flat_map(|p| p.keys()) {
        s.push_str(k);
        s.push(',');
    }
    // The collation decides which indexes can answer string predicates.
    s.push('|');
    if let Some(c) = super::collation::active() {
        s.push_str(&format!("{c:?}"));
    }
    s
}

fn index_name(plan: &Plan) -> Option<&str> {
    match &plan.access {
        Access::IndexScan { index, .. } => Some(&index.name),
        _ => None,
    }
}

/// The active entry's (index, works) for a shape.
fn cached(coll: &Collection, key: &str) -> Option<(String, u64)> {
    let guard = cache().lock().ok()?;
    let entry = guard.get(&coll.uuid)?;
    if entry.indexes != index_set(coll) {
        return None;
    }
    entry.winners.get(key).filter(|e| e.active).map(|e| (e.index.clone(), e.works))
}

/// `{query, sort, projection}` of the query, when small enough to keep.
fn created_from(shape: &Shape<'_>) -> Document {
    let mut d = bson::doc! { "query": shape.filter.clone() };
    d.insert("sort", shape.sort.cloned().unwrap_or_default());
    d.insert("projection", shape.projection.cloned().unwrap_or_default());
    let mut bytes = Vec::new();
    match d.to_writer(&mut bytes) {
        Ok(()) if bytes.len() <= MAX_CREATED_FROM => d,
        _ => Document::new(),
    }
}

/// Records a trial's winner: a new entry starts inactive, an inactive one becomes active when
/// the winner needed no more works (else its works grow); after a replan (`replanned`) the
/// winner is cached as active at once.
fn remember(coll: &Collection, key: String, shape: &Shape<'_>, index: String, works: u64, replanned: bool) {
    if key.len() > MAX_SHAPE_LEN {
        return;
    }
    let Ok(mut guard) = cache().lock() else { return };
    if guard.values().map(|c| c.winners.len()).sum::<usize>() >= MAX_SHAPES_TOTAL {
        guard.clear();
    }
    let set = index_set(coll);
    let entry =
        guard.entry(coll.uuid).or_insert_with(|| CollCache { indexes: set.clone(), winners: HashMap::new() });
    if entry.indexes != set || (entry.winners.len() >= MAX_SHAPES && !entry.winners.contains_key(&key)) {
        entry.indexes = set;
        entry.winners.clear();
    }
    let works = works.max(1);
    let fresh = |active: bool| Entry {
        index: index.clone(),
        works,
        active,
        created_from: created_from(shape),
        created: bson::DateTime::now(),
    };
    match entry.winners.get_mut(&key) {
        None => {
            entry.winners.insert(key, fresh(replanned));
        }
        Some(e) if replanned || works <= e.works => *e = fresh(true),
        Some(e) if !e.active => e.works = e.works.saturating_mul(WORKS_GROWTH).max(e.works + 1),
        // Another query made it active meanwhile, with fewer works: keep it.
        Some(_) => {}
    }
}

/// `planCacheClear`: forget one shape's winner, or every shape of the collection.
pub fn clear(coll: &Collection, shape: Option<&Shape<'_>>) {
    let Ok(mut guard) = cache().lock() else { return };
    match shape {
        None => {
            guard.remove(&coll.uuid);
        }
        Some(s) => {
            if let Some(entry) = guard.get_mut(&coll.uuid) {
                entry.winners.remove(&shape_key(s));
            }
        }
    }
}

/// Picks the plan for a query. With several candidate indexes: the cached winner for this
/// shape if there is one (and `use_cache`), else a trial run (whose winner is cached when
/// `use_cache`; explain neither reads nor fills the cache, as in mongod).
pub fn choose(
    ss: &mut StoreSession,
    coll: &Arc<Collection>,
    shape: &Shape<'_>,
    hint: Option<&Bson>,
    use_cache: bool,
) -> Result<Choice> {
    let sort = shape.sort.filter(|s| !s.is_empty());
    let mut candidates = planner::plan_candidates(coll, shape.filter, sort, hint)?;
    for c in &mut candidates {
        super::covered::cover(c, shape.filter, shape.projection, sort);
    }
    if candidates.len() <= 1 {
        let plan = match candidates.pop() {
            Some(p) => p,
            None => planner::plan_with_sort(coll, shape.filter, sort, hint)?,
        };
        return Ok(Choice { plan, trials: Vec::new(), from_cache: false });
    }
    let key = shape_key(shape);
    let mut replanned = false;
    if use_cache {
        if let Some((name, works)) = cached(coll, &key) {
            if let Some(i) = candidates.iter().position(|p| index_name(p) == Some(name.as_str())) {
                // The cached plan alone, within its budget: finishing keeps it.
                let budget = works.saturating_mul(EVICTION_RATIO);
                let plan = candidates[i].clone();
                let run = run_trials(ss, coll, shape.filter, sort.is_some(), vec![plan.clone()], budget)?;
                if run.first().is_some_and(|t| t.finished) {
                    return Ok(Choice { plan, trials: Vec::new(), from_cache: true });
                }
                replanned = true;
            }
        }
    }
    let trials = run_trials(ss, coll, shape.filter, sort.is_some(), candidates, TRIAL_WORKS)?;
    if use_cache {
        if let Some(t) = trials.first() {
            if let Some(name) = index_name(&t.plan) {
                remember(coll, key, shape, name.to_string(), t.works, replanned);
            }
        }
    }
    let plan = match trials.first() {
        Some(t) => t.plan.clone(),
        None => planner::plan_with_sort(coll, shape.filter, sort, hint)?,
    };
    Ok(Choice { plan, trials, from_cache: false })
}

/// The plan for a statement without a projection (update, delete, findAndModify, an
/// aggregation's leading `$match`): trial run or plan cache as for find.
pub fn choose_plan(
    ss: &mut StoreSession,
    coll: &Arc<Collection>,
    filter: &Document,
    sort: Option<&Document>,
    hint: Option<&Bson>,
) -> Result<Plan> {
    Ok(choose(ss, coll, &Shape { filter, sort, projection: None }, hint, true)?.plan)
}

/// Runs every candidate in turn until one finishes (its scan ends or it has enough results)
/// or all have used their works; returns the trials, winner first.
fn run_trials(
    ss: &mut StoreSession,
    coll: &Arc<Collection>,
    filter: &Document,
    sorted: bool,
    candidates: Vec<Plan>,
    max_works: u64,
) -> Result<Vec<Trial>> {
    let matcher = if filter.is_empty() { None } else { Some(Matcher::parse(filter)?) };
    let mut runs: Vec<(Plan, Exec, usize, bool)> = candidates
        .into_iter()
        .map(|plan| {
            let opts = ExecOptions {
                filter: matcher.clone(),
                sort: None,
                projection: None,
                skip: 0,
                limit: None,
                allow_disk_use: false,
            };
            let exec = Exec::new(coll.clone(), plan.access.clone(), opts);
            (plan, exec, 0, false)
        })
        .collect();
    'trial: loop {
        let mut all_spent = true;
        for (plan, exec, results, done) in runs.iter_mut() {
            if exec.works() >= max_works {
                continue;
            }
            all_spent = false;
            let (n, ended) = exec.trial(ss, TRIAL_STEP)?;
            // A plan that still has to sort gives nothing back before its input ends.
            *results = if sorted && !plan.sort_provided && !ended { 0 } else { n };
            *done = ended || *results >= TRIAL_RESULTS;
            if *done {
                break 'trial;
            }
        }
        if all_spent {
            break;
        }
    }
    // Finished first, then results per work; ties keep the static order (stable sort).
    let productivity = |results: usize, exec: &Exec| results as f64 / exec.works().max(1) as f64;
    runs.sort_by(|a, b| {
        b.3.cmp(&a.3).then_with(|| {
            productivity(b.2, &b.1).partial_cmp(&productivity(a.2, &a.1)).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    Ok(runs
        .into_iter()
        .map(|(plan, exec, results, finished)| {
            let stats = ExecStats { returned: results as u64, ..exec.stats };
            Trial { plan, stats, works: exec.works(), finished }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn shapes_ignore_values_but_not_operators() {
        let key = |f: Document| shape_key(&Shape { filter: &f, sort: None, projection: None });
        assert_eq!(key(doc! { "a": 1, "b": { "$gt": 2 } }), key(doc! { "a": "x", "b": { "$gt": 9 } }));
        assert_ne!(key(doc! { "a": 1 }), key(doc! { "a": { "$gt": 1 } }));
        assert_ne!(key(doc! { "a": 1 }), key(doc! { "b": 1 }));
        assert_ne!(key(doc! { "a": 1 }), key(doc! { "a": null }));
        let s = doc! { "a": -1 };
        let f = doc! { "a": 1 };
        assert_ne!(key(doc! { "a": 1 }), shape_key(&Shape { filter: &f, sort: Some(&s), projection: None }));
    }

    #[test]
    fn entries_become_active_grow_and_replan_as_mongod() {
        let coll = Collection {
            db: "db".into(),
            name: "c".into(),
            ns: "db.c".into(),
            uuid: bson::Uuid::new(),
            ident: "coll-0".into(),
            options: Document::new(),
            indexes: Vec::new(),
            shared: crate::store::catalog::new_shared(),
            validator: None,
        };
        let f = doc! { "a": 1, "b": 2 };
        let shape = Shape { filter: &f, sort: None, projection: None };
        let key = shape_key(&shape);
        let state = || {
            let e = entries(&coll);
            assert_eq!(e.len(), 1);
            (e[0].index.clone(), e[0].works, e[0].is_active)
        };
        remember(&coll, key.clone(), &shape, "a_1".into(), 10, false);
        assert_eq!(state(), ("a_1".to_string(), 10, false));
        assert!(cached(&coll, &key).is_none(), "an inactive entry is not used");
        // A costlier trial leaves it inactive with doubled works.
        remember(&coll, key.clone(), &shape, "b_1".into(), 15, false);
        assert_eq!(state(), ("a_1".to_string(), 20, false));
        // One within the entry's works replaces it, active.
        remember(&coll, key.clone(), &shape, "b_1".into(), 18, false);
        assert_eq!(state(), ("b_1".to_string(), 18, true));
        assert_eq!(cached(&coll, &key), Some(("b_1".to_string(), 18)));
        // A replan's winner is cached as active whatever its works.
        remember(&coll, key.clone(), &shape, "a_1".into(), 500, true);
        assert_eq!(state(), ("a_1".to_string(), 500, true));
        let e = &entries(&coll)[0];
        assert_eq!(e.created_from.get_document("query").unwrap(), &f);
        assert_eq!(e.query_hash.len(), 8);
        assert_ne!(e.query_hash, e.plan_cache_key);
        clear(&coll, None);
        assert!(entries(&coll).is_empty());
    }
}
