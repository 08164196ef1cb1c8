//! `$project`, `$addFields`/`$set` and `$unset`: one projection tree with three ways of
//! applying it (inclusion, exclusion, adding fields). Public so pipeline-style updates and
//! find's computed projections can use it.

use crate::agg::expr::{err, Ctx, Expr, Parser};
use crate::agg::pipeline::{ParseCtx, Rt, StageSpec, Stream};
use crate::error::Result;
use crate::query::util::type_name;
use bson::{Bson, Document};
use std::sync::Arc;

pub enum Node {
    Include,
    Exclude,
    Compute(Expr),
    Sub(Tree),
}

/// Fields in the order they were first named.
#[derive(Default)]
pub struct Tree(pub Vec<(String, Node)>);

impl Tree {
    fn get(&self, k: &str) -> Option<&Node> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    /// Adds `node` at a dotted path; a second definition of one path is a collision.
    fn insert(&mut self, path: &str, node: Node, stage: &str) -> Result<()> {
        let parts: Vec<&str> = path.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err(40352, "FieldPath cannot be constructed with empty string"));
        }
        if parts.first().is_some_and(|p| p.starts_with('$')) {
            return Err(err(
                16410,
                "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
            ));
        }
        let mut cur = self;
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let pos = cur.0.iter().position(|(n, _)| n == p);
            if last {
                if pos.is_some() {
                    return Err(collision(stage, path));
                }
                cur.0.push((p.to_string(), node));
                return Ok(());
            }
            let idx = match pos {
                Some(i) => i,
                None => {
                    cur.0.push((p.to_string(), Node::Sub(Tree::default())));
                    cur.0.len() - 1
                }
            };
            cur = match &mut cur.0[idx].1 {
                Node::Sub(t) => t,
                _ => return Err(collision(stage, path)),
            };
        }
        Ok(())
    }

    fn any(&self, f: &dyn Fn(&Node) -> bool) -> bool {
        self.0.iter().any(|(_, n)| match n {
            Node::Sub(t) => t.any(f),
            other => f(other),
        })
    }
}

fn collision(stage: &str, path: &str) -> crate::error::MongoError {
    err(31250, format!("Invalid {stage} :: caused by :: Path collision at {path}"))
}

/// Builds a tree from a spec; `flags` says whether numbers/booleans are include/exclude flags
/// ($project) or literal values ($addFields).
fn build(
    spec: &Document,
    p: &mut Parser,
    flags: bool,
    stage: &str,
    prefix: &str,
    tree: &mut Tree,
) -> Result<()> {
    for (k, v) in spec {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if k.starts_with('$') && prefix.is_empty() && spec.len() == 1 {
            // `{$project: {$add: ...}}` is not a field.
            return Err(err(
                16410,
                "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
            ));
        }
        let node = match v {
            Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
                if flags =>
            {
                if crate::query::util::true_value(v) {
                    Node::Include
                } else {
                    Node::Exclude
                }
            }
            Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                Node::Compute(p.parse(v)?)
            }
            Bson::Document(d) => {
                if d.is_empty() {
                    return Err(err(
                        if flags { 51270 } else { 40180 },
                        format!("Invalid {stage} :: caused by :: An empty sub-projection is not a valid value. Found empty object at path"),
                    ));
                }
                build(d, p, flags, stage, &path, tree)?;
                continue;
            }
            other => Node::Compute(p.parse(other)?),
        };
        tree.insert(&path, node, stage)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Inclusion,
    Exclusion,
    AddFields,
}

pub struct Projector {
    pub tree: Tree,
    pub mode: Mode,
    stage: &'static str,
    exclude_id: bool,
}

pub fn parse_project(spec: &Bson, pc: &ParseCtx) -> Result<Projector> {
    let Bson::Document(d) = spec else {
        return Err(err(15969, format!("$project specification must be an object, got {}", type_name(spec))));
    };
    project_from(d, &mut pc.parser())
}

/// Parses a `$project` specification.
pub fn project_from(d: &Document, p: &mut Parser) -> Result<Projector> {
    if d.is_empty() {
        return Err(err(
            51272,
            "Invalid $project :: caused by :: projection specification must have at least one field",
        ));
    }
    // `{f: {$meta: ...}}` neither includes nor excludes. Every `$meta` is missing here (or an
    // error), so such fields are checked and then left out of the projection.
    let is_meta = |v: &Bson| matches!(v, Bson::Document(m) if m.len() == 1 && m.contains_key("$meta"));
    let mut rest = Document::new();
    for (k, v) in d {
        if is_meta(v) {
            p.parse(v)?;
        } else {
            rest.insert(k.clone(), v.clone());
        }
    }
    let d = &rest;
    let mut tree = Tree::default();
    build(d, p, true, "$project", "", &mut tree)?;
    let non_id =
        Tree(tree.0.iter().filter(|(k, _)| k != "_id").map(|(k, n)| (k.clone(), shallow(n))).collect());
    let has_incl = non_id.any(&|n| matches!(n, Node::Include | Node::Compute(_)));
    let has_excl = non_id.any(&|n| matches!(n, Node::Exclude));
    let id_node = tree.get("_id");
    let id_incl = matches!(id_node, Some(Node::Include | Node::Compute(_) | Node::Sub(_)));
    if has_incl && has_excl {
        return Err(err(
            31254,
            "Invalid $project :: caused by :: Cannot do exclusion on field in inclusion projection",
        ));
    }
    let mode = if has_incl || (id_incl && !has_excl) { Mode::Inclusion } else { Mode::Exclusion };
    if mode == Mode::Exclusion && tree.any(&|n| matches!(n, Node::Compute(_))) {
        return Err(err(
            31252,
            "Invalid $project :: caused by :: Cannot use expression other than $meta in exclusion projection",
        ));
    }
    let exclude_id = matches!(id_node, Some(Node::Exclude));
    Ok(Projector { tree, mode, stage: "$project", exclude_id })
}

/// A copy of a node's shape without its expressions (for mode detection).
fn shallow(n: &Node) -> Node {
    match n {
        Node::Include => Node::Include,
        Node::Exclude => Node::Exclude,
        Node::Compute(_) => Node::Compute(Expr::Const(Bson::Null)),
        Node::Sub(t) => Node::Sub(Tree(t.0.iter().map(|(k, v)| (k.clone(), shallow(v))).collect())),
    }
}

pub fn parse_add_fields(name: &str, spec: &Bson, pc: &ParseCtx) -> Result<Projector> {
    let Bson::Document(d) = spec else {
        return Err(err(
            40272,
            format!("{name} specification stage must be an object, got {}", type_name(spec)),
        ));
    };
    add_fields_from(name, d, &mut pc.parser())
}

pub fn add_fields_from(name: &str, d: &Document, p: &mut Parser) -> Result<Projector> {
    let stage: &'static str = if name == "$set" { "$set" } else { "$addFields" };
    let mut tree = Tree::default();
    build(d, p, false, stage, "", &mut tree)?;
    Ok(Projector { tree, mode: Mode::AddFields, stage, exclude_id: false })
}

pub fn parse_unset(spec: &Bson) -> Result<Projector> {
    let fields: Vec<String> = match spec {
        Bson::String(s) => vec![s.clone()],
        Bson::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Bson::String(s) => Ok(s.clone()),
                _ => Err(err(
                    31120,
                    "$unset specification must be a string or an array containing only string values",
                )),
            })
            .collect::<Result<_>>()?,
        Bson::Array(_) => {
            return Err(err(
                31119,
                "$unset specification must be a string or an array with at least one field",
            ))
        }
        _ => return Err(err(31002, "$unset specification must be a string or an array")),
    };
    unset_from(&fields)
}

pub fn unset_from(fields: &[String]) -> Result<Projector> {
    let mut tree = Tree::default();
    for f in fields {
        if f.is_empty() {
            return Err(err(
                40352,
                "Invalid $unset :: caused by :: FieldPath cannot be constructed with empty string",
            ));
        }
        if f.starts_with('$') {
            return Err(err(
                16410,
                "Invalid $unset :: caused by :: FieldPath field names may not start with '$'.",
            ));
        }
        tree.insert(f, Node::Exclude, "$unset")?;
    }
    let exclude_id = matches!(tree.get("_id"), Some(Node::Exclude));
    Ok(Projector { tree, mode: Mode::Exclusion, stage: "$unset", exclude_id })
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Projector({})", self.stage)
    }
}

impl Projector {
    /// Applies the projection to `doc` (expressions see `doc` as `$$ROOT`).
    pub fn apply(&self, doc: &Document, vars: &[Bson], now: bson::DateTime) -> Result<Document> {
        let mut c = Ctx::new(doc, vars, now);
        match self.mode {
            Mode::Inclusion => {
                let mut out = Document::new();
                if !self.exclude_id && self.tree.get("_id").is_none() {
                    if let Some(id) = doc.get("_id") {
                        out.insert("_id", id.clone());
                    }
                }
                include(doc, &self.tree, &mut c, &mut out)?;
                Ok(out)
            }
            Mode::Exclusion => Ok(exclude(doc, &self.tree)),
            Mode::AddFields => {
                let mut out = doc.clone();
                add(&mut out, &self.tree, &mut c)?;
                Ok(out)
            }
        }
    }
}

fn include(src: &Document, tree: &Tree, c: &mut Ctx, out: &mut Document) -> Result<()> {
    for (k, v) in src {
        match tree.get(k) {
            Some(Node::Include) => {
                out.insert(k.clone(), v.clone());
            }
            Some(Node::Sub(t)) => match v {
                Bson::Document(d) => {
                    let mut sub = Document::new();
                    include(d, t, c, &mut sub)?;
                    out.insert(k.clone(), sub);
                }
                Bson::Array(a) => {
                    out.insert(k.clone(), include_array(a, t, c)?);
                }
                _ => {}
            },
            _ => {}
        }
    }
    // Computed fields come after the included ones, in specification order.
    for (k, node) in &tree.0 {
        match node {
            Node::Compute(e) => {
                if let Some(v) = e.eval(c)? {
                    out.insert(k.clone(), v);
                }
            }
            Node::Sub(t)
                if !matches!(src.get(k), Some(Bson::Document(_) | Bson::Array(_)))
                    && t.any(&|n| matches!(n, Node::Compute(_))) =>
            {
                let mut sub = Document::new();
                include(&Document::new(), t, c, &mut sub)?;
                out.insert(k.clone(), sub);
            }
            _ => {}
        }
    }
    Ok(())
}

fn include_array(a: &[Bson], t: &Tree, c: &mut Ctx) -> Result<Bson> {
    let mut out = Vec::new();
    for x in a {
        match x {
            Bson::Document(d) => {
                let mut sub = Document::new();
                include(d, t, c, &mut sub)?;
                out.push(Bson::Document(sub));
            }
            Bson::Array(inner) => out.push(include_array(inner, t, c)?),
            _ => {}
        }
    }
    Ok(Bson::Array(out))
}

fn exclude(src: &Document, tree: &Tree) -> Document {
    let mut out = Document::new();
    for (k, v) in src {
        match tree.get(k) {
            Some(Node::Exclude) => {}
            Some(Node::Sub(t)) => match v {
                Bson::Document(d) => {
                    out.insert(k.clone(), exclude(d, t));
                }
                Bson::Array(a) => {
                    out.insert(k.clone(), exclude_array(a, t));
                }
                other => {
                    out.insert(k.clone(), other.clone());
                }
            },
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn exclude_array(a: &[Bson], t: &Tree) -> Bson {
    Bson::Array(
        a.iter()
            .map(|x| match x {
                Bson::Document(d) => Bson::Document(exclude(d, t)),
                Bson::Array(inner) => exclude_array(inner, t),
                other => other.clone(),
            })
            .collect(),
    )
}

fn add(out: &mut Document, tree: &Tree, c: &mut Ctx) -> Result<()> {
    for (k, node) in &tree.0 {
        match node {
            Node::Compute(e) => match e.eval(c)? {
                Some(v) => {
                    out.insert(k.clone(), v);
                }
                None => {
                    out.remove(k);
                }
            },
            Node::Sub(t) => {
                let new = match out.get(k) {
                    Some(Bson::Document(d)) => {
                        let mut d = d.clone();
                        add(&mut d, t, c)?;
                        Bson::Document(d)
                    }
                    Some(Bson::Array(a)) => add_array(a, t, c)?,
                    _ => {
                        let mut d = Document::new();
                        add(&mut d, t, c)?;
                        Bson::Document(d)
                    }
                };
                out.insert(k.clone(), new);
            }
            Node::Include | Node::Exclude => {}
        }
    }
    Ok(())
}

fn add_array(a: &[Bson], t: &Tree, c: &mut Ctx) -> Result<Bson> {
    let mut out = Vec::with_capacity(a.len());
    for x in a {
        out.push(match x {
            Bson::Document(d) => {
                let mut d = d.clone();
                add(&mut d, t, c)?;
                Bson::Document(d)
            }
            Bson::Array(inner) => add_array(inner, t, c)?,
            _ => {
                let mut d = Document::new();
                add(&mut d, t, c)?;
                Bson::Document(d)
            }
        });
    }
    Ok(Bson::Array(out))
}

impl StageSpec for Projector {
    fn name(&self) -> &'static str {
        self.stage
    }
    fn start(self: Arc<Self>, input: Box<dyn Stream>) -> Box<dyn Stream> {
        Box::new(ProjectRun { spec: self, input })
    }
}

struct ProjectRun {
    spec: Arc<Projector>,
    input: Box<dyn Stream>,
}

impl Stream for ProjectRun {
    fn next(&mut self, rt: &mut Rt) -> Result<Option<Document>> {
        let Some(d) = self.input.next(rt)? else { return Ok(None) };
        Ok(Some(self.spec.apply(&d, rt.vars, rt.now)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn run(p: &Projector, d: Document) -> Document {
        p.apply(&d, &[], bson::DateTime::from_millis(0)).unwrap()
    }

    #[test]
    fn projections() {
        let d = doc! {"_id": 1, "a": 1, "b": {"c": 2, "d": 3}, "e": [{"c": 1, "x": 2}, 5]};
        let p = project_from(&doc! {"a": 1, "b.c": 1, "s": {"$add": ["$a", 10]}}, &mut Parser::default())
            .unwrap();
        assert_eq!(run(&p, d.clone()), doc! {"_id": 1, "a": 1, "b": {"c": 2}, "s": 11});
        let p = project_from(&doc! {"_id": 0, "e.c": 1}, &mut Parser::default()).unwrap();
        assert_eq!(run(&p, d.clone()), doc! {"e": [{"c": 1}]});
        let p = project_from(&doc! {"b": 0, "e.x": 0}, &mut Parser::default()).unwrap();
        assert_eq!(run(&p, d.clone()), doc! {"_id": 1, "a": 1, "e": [{"c": 1}, 5]});
        assert!(project_from(&doc! {"a": 1, "b": 0}, &mut Parser::default()).is_err());
        let p = add_fields_from(
            "$set",
            &doc! {"b.z": "$a", "a": "$$REMOVE", "n": {"x": 1}},
            &mut Parser::default(),
        )
        .unwrap();
        assert_eq!(
            run(&p, d.clone()),
            doc! {"_id": 1, "b": {"c": 2, "d": 3, "z": 1}, "e": [{"c": 1, "x": 2}, 5], "n": {"x": 1}}
        );
        let p = unset_from(&["a".to_string(), "b.c".to_string()]).unwrap();
        assert_eq!(run(&p, d), doc! {"_id": 1, "b": {"d": 3}, "e": [{"c": 1, "x": 2}, 5]});
    }
}
