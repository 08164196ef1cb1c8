//! Choosing among several usable indexes by running them, as mongod's multi-planner does:
//! each candidate runs for a short trial (round-robin, a few works at a time) and the most
//! productive one (results per key or document examined) wins; one that finishes first wins
//! outright. The winner is remembered per collection and query shape (filter fields and
//! operators, not values; sort; projection) until the collection's index set changes or
//! `planCacheClear` clears it, so later queries of that shape skip the trial.

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

struct CollCache {
    /// The index set the entries were chosen from (idents and hidden flags).
    indexes: String,
    winners: HashMap<String, String>,
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

fn cached(coll: &Collection, key: &str) -> Option<String> {
    let guard = cache().lock().ok()?;
    let entry = guard.get(&coll.uuid)?;
    if entry.indexes != index_set(coll) {
        return None;
    }
    entry.winners.get(key).cloned()
}

fn remember(coll: &Collection, key: String, index: String) {
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
    if entry.indexes != set || entry.winners.len() >= MAX_SHAPES {
        entry.indexes = set;
        entry.winners.clear();
    }
    entry.winners.insert(key, index);
}

/// The cached winners of `coll` as (shape key, index name), for `$planCacheStats`.
pub fn entries(coll: &Collection) -> Vec<(String, String)> {
    let Ok(guard) = cache().lock() else { return Vec::new() };
    match guard.get(&coll.uuid) {
        Some(e) if e.indexes == index_set(coll) => {
            e.winners.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        _ => Vec::new(),
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
    if candidates.len() <= 1 {
        let plan = match candidates.pop() {
            Some(p) => p,
            None => planner::plan_with_sort(coll, shape.filter, sort, hint)?,
        };
        return Ok(Choice { plan, trials: Vec::new(), from_cache: false });
    }
    let key = shape_key(shape);
    if use_cache {
        if let Some(name) = cached(coll, &key) {
            if let Some(i) = candidates.iter().position(|p| index_name(p) == Some(name.as_str())) {
                return Ok(Choice { plan: candidates.swap_remove(i), trials: Vec::new(), from_cache: true });
            }
        }
    }
    let trials = run_trials(ss, coll, shape.filter, sort.is_some(), candidates)?;
    if use_cache {
        if let Some(name) = trials.first().and_then(|t| index_name(&t.plan)) {
            remember(coll, key, name.to_string());
        }
    }
    let plan = match trials.first() {
        Some(t) => t.plan.clone(),
        None => planner::plan_with_sort(coll, shape.filter, sort, hint)?,
    };
    Ok(Choice { plan, trials, from_cache: false })
}

/// Runs every candidate in turn until one finishes (its scan ends or it has enough results)
/// or all have used their works; returns the trials, winner first.
fn run_trials(
    ss: &mut StoreSession,
    coll: &Arc<Collection>,
    filter: &Document,
    sorted: bool,
    candidates: Vec<Plan>,
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
            if exec.works() >= TRIAL_WORKS {
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
        .map(|(plan, exec, results, _)| {
            let stats = ExecStats { returned: results as u64, ..exec.stats };
            Trial { plan, stats }
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
}
