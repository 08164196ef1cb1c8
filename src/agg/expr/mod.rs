//! The aggregation expression language, compiled once into an [`Expr`] tree and evaluated per
//! document.
//!
//! Evaluation yields `Option<Bson>`: `None` is mongod's "missing" value (an absent field,
//! `$$REMOVE`), which differs from null where mongod makes it differ (`$type`, `$ifNull`, fields
//! that an expression object leaves out). Variables are resolved to slots at parse time: slot
//! `i` of [`Ctx::vars`] holds the `i`-th variable in scope, so `$let`/`$map`/`$filter` push and
//! pop values instead of looking names up.
//!
//! One file per operator family; each exposes `parse(name, arg, parser)` returning `None` for
//! names it does not own.

pub mod arith;
pub mod array;
pub mod bindata;
pub mod bitwise;
pub mod cond;
pub mod convert;
pub mod date;
pub mod date_parts;
pub mod decimal;
pub mod meta;
pub mod object;
pub mod stats;
pub mod string;
pub mod tz;

use crate::error::{ErrorCode, MongoError, Result};
use crate::query::util::{located, type_name};
use bson::{Bson, DateTime, Document};

/// Deepest nesting of expressions we compile; deeper client input is refused, not recursed.
const MAX_DEPTH: usize = 150;
/// Largest array or string an expression may build (mongod's 16 MB BSON limit, roughly).
pub const MAX_BUILD_BYTES: usize = 16 * 1024 * 1024;

/// What a variable reference names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VarRef {
    Current,
    Root,
    Now,
    ClusterTime,
    Remove,
    /// `$redact`'s verdicts.
    Keep,
    Prune,
    Descend,
    /// A user variable, by slot.
    Slot(usize),
}

/// What `$$KEEP`, `$$PRUNE` and `$$DESCEND` evaluate to: strings with a leading NUL (unlikely
/// in data), which `$redact` compares its expression's result against.
pub const REDACT_KEEP: &str = "\u{0}$$KEEP";
pub const REDACT_PRUNE: &str = "\u{0}$$PRUNE";
pub const REDACT_DESCEND: &str = "\u{0}$$DESCEND";

/// A compiled expression.
pub enum Expr {
    Const(Bson),
    /// `$a.b` (from `$$CURRENT`) or `$$var.a.b`.
    Path(VarRef, Vec<String>),
    /// `{a: <expr>, ...}`: fields that evaluate to missing are left out.
    Object(Vec<(String, Expr)>),
    /// `[<expr>, ...]`: missing elements become null.
    Array(Vec<Expr>),
    /// A pure function of its argument values (missing passed as `None`).
    Func(Box<Func>),
    /// An operator with its own evaluation order (`$cond`, `$let`, `$map` ...).
    Special(Box<dyn Special>),
}

/// Operators that control how (and whether) their arguments are evaluated.
pub trait Special: Send + Sync {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>>;
}

/// An operator family's parser (see the module docs).
type Family = fn(&str, &Bson, &mut Parser) -> Option<Result<Expr>>;

pub type FuncFn = fn(&str, &[Option<Bson>]) -> Result<Option<Bson>>;

pub struct Func {
    pub name: &'static str,
    pub args: Vec<Expr>,
    pub f: FuncFn,
}

/// The evaluation context of one document.
pub struct Ctx<'a> {
    pub root: &'a Document,
    /// `$$CURRENT` (the root, except inside `$redact`'s descent).
    pub current: &'a Document,
    pub vars: Vec<Bson>,
    pub now: DateTime,
}

impl<'a> Ctx<'a> {
    pub fn new(root: &'a Document, vars: &[Bson], now: DateTime) -> Ctx<'a> {
        Ctx { root, current: root, vars: vars.to_vec(), now }
    }
}

/// A context for folding constants (no document, no variables).
pub fn const_ctx() -> Ctx<'static> {
    static EMPTY: std::sync::OnceLock<Document> = std::sync::OnceLock::new();
    Ctx::new(EMPTY.get_or_init(Document::new), &[], DateTime::from_millis(0))
}

/// Parse-time state: the names of the variables in scope, innermost last.
#[derive(Clone, Default)]
pub struct Parser {
    pub vars: Vec<String>,
    depth: usize,
}

impl Parser {
    /// A parser with the pipeline-level variables (`let`) in slots 0..n.
    pub fn with_vars(names: Vec<String>) -> Parser {
        Parser { vars: names, depth: 0 }
    }

    /// Parses an expression value.
    pub fn parse(&mut self, v: &Bson) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(MongoError::new(ErrorCode::BadValue, "expression nested too deeply"));
        }
        let r = self.parse_inner(v);
        self.depth -= 1;
        r
    }

    fn parse_inner(&mut self, v: &Bson) -> Result<Expr> {
        match v {
            Bson::String(s) if s.starts_with("$$") => self.parse_variable(&s[2..]),
            Bson::String(s) if s.starts_with('$') => {
                Ok(Expr::Path(VarRef::Current, parse_field_path(&s[1..])?))
            }
            Bson::Document(d) => self.parse_document(d),
            Bson::Array(a) => {
                let items = a.iter().map(|x| self.parse(x)).collect::<Result<Vec<_>>>()?;
                if items.iter().all(|e| matches!(e, Expr::Const(_))) {
                    return Ok(Expr::Const(Bson::Array(
                        items
                            .into_iter()
                            .filter_map(|e| if let Expr::Const(c) = e { Some(c) } else { None })
                            .collect(),
                    )));
                }
                Ok(Expr::Array(items))
            }
            other => Ok(Expr::Const(other.clone())),
        }
    }

    fn parse_variable(&mut self, s: &str) -> Result<Expr> {
        let (name, rest) = match s.split_once('.') {
            Some((n, r)) => (n, Some(r)),
            None => (s, None),
        };
        let path = match rest {
            Some(r) => parse_field_path(r)?,
            None => Vec::new(),
        };
        let var = match name {
            "CURRENT" => VarRef::Current,
            "ROOT" => VarRef::Root,
            "NOW" => VarRef::Now,
            "CLUSTER_TIME" => VarRef::ClusterTime,
            "REMOVE" => VarRef::Remove,
            "KEEP" => VarRef::Keep,
            "PRUNE" => VarRef::Prune,
            "DESCEND" => VarRef::Descend,
            _ => match self.vars.iter().rposition(|v| v == name) {
                Some(slot) => VarRef::Slot(slot),
                None => {
                    validate_var_name(name, true)?;
                    return Err(err(17276, format!("Use of undefined variable: {name}")));
                }
            },
        };
        Ok(Expr::Path(var, path))
    }

    fn parse_document(&mut self, d: &Document) -> Result<Expr> {
        let Some(first) = d.keys().next() else {
            return Ok(Expr::Const(Bson::Document(Document::new())));
        };
        if first.starts_with('$') {
            if d.len() != 1 {
                return Err(err(
                    15983,
                    format!(
                        "An object representing an expression must have exactly one field: {}",
                        crate::query::util::doc_to_string(d)
                    ),
                ));
            }
            let (name, arg) = d.iter().next().ok_or_else(|| MongoError::internal("empty"))?;
            return self.parse_operator(name, arg);
        }
        let mut fields = Vec::with_capacity(d.len());
        for (k, v) in d {
            if k.starts_with('$') {
                return Err(err(16404, format!("Field names may not start with '$': {k}")));
            }
            if k.contains('.') {
                return Err(err(16412, format!("FieldPath field names may not contain '.'. Consider using $getField or $setField: {k}"),
                ));
            }
            if k.is_empty() {
                return Err(err(16410, "FieldPath field names may not be empty strings."));
            }
            fields.push((k.clone(), self.parse(v)?));
        }
        Ok(Expr::Object(fields))
    }

    /// `{$op: arg}`.
    pub fn parse_operator(&mut self, name: &str, arg: &Bson) -> Result<Expr> {
        if name == "$literal" {
            return Ok(Expr::Const(arg.clone()));
        }
        if let Some(r) = meta::parse(name, arg) {
            return r;
        }
        let families: [Family; 9] = [
            arith::parse,
            cond::parse,
            convert::parse,
            string::parse,
            array::parse,
            object::parse,
            date::parse,
            bitwise::parse,
            stats::parse,
        ];
        for family in families {
            if let Some(r) = family(name, arg, self) {
                return r;
            }
        }
        Err(MongoError::new(ErrorCode::InvalidPipelineOperator, format!("Unrecognized expression '{name}'")))
    }

    /// The arguments of an operator: the elements of an array, or the one value otherwise.
    pub fn args(&mut self, arg: &Bson) -> Result<Vec<Expr>> {
        match arg {
            Bson::Array(a) => a.iter().map(|x| self.parse(x)).collect(),
            other => Ok(vec![self.parse(other)?]),
        }
    }

    /// Arguments with a fixed count (mongod's 16020).
    pub fn args_exact(&mut self, name: &str, arg: &Bson, n: usize) -> Result<Vec<Expr>> {
        let args = self.args(arg)?;
        if args.len() != n {
            return Err(arity_error(name, n, args.len()));
        }
        Ok(args)
    }

    /// Arguments with a count in `min..=max`.
    pub fn args_range(&mut self, name: &str, arg: &Bson, min: usize, max: usize) -> Result<Vec<Expr>> {
        let args = self.args(arg)?;
        if args.len() < min || args.len() > max {
            return Err(err(16020, format!(
                    "Expression {name} takes at least {min} arguments, and at most {max}, but {} were passed in.",
                    args.len()
                ),
            ));
        }
        Ok(args)
    }

    /// Binds `names` in a new scope for the duration of `f`; returns the first slot.
    pub fn scoped<T>(
        &mut self,
        names: &[String],
        f: impl FnOnce(&mut Parser, usize) -> Result<T>,
    ) -> Result<T> {
        let base = self.vars.len();
        self.vars.extend(names.iter().cloned());
        let r = f(self, base);
        self.vars.truncate(base);
        r
    }
}

/// An error with mongod's location code `code` (codes missing from `ErrorCode` fall back to
/// BadValue until they are added to the table).
pub fn err(code: i32, message: impl Into<String>) -> MongoError {
    located(code, ErrorCode::BadValue, message)
}

pub fn arity_error(name: &str, want: usize, got: usize) -> MongoError {
    let plural = if want == 1 { "argument" } else { "arguments" };
    err(16020, format!("Expression {name} takes exactly {want} {plural}. {got} were passed in."))
}

/// Builds a function call, folding it to a constant when every argument is one.
pub fn func(name: &'static str, args: Vec<Expr>, f: FuncFn) -> Result<Expr> {
    if args.iter().all(|a| matches!(a, Expr::Const(_))) {
        let vals: Vec<Option<Bson>> =
            args.iter().map(|a| if let Expr::Const(c) = a { Some(c.clone()) } else { None }).collect();
        if let Some(v) = f(name, &vals)? {
            return Ok(Expr::Const(v));
        }
    }
    Ok(Expr::Func(Box::new(Func { name, args, f })))
}

/// Checks a user variable name as mongod does (`$let`, `as`, `let`).
pub fn validate_var_name(name: &str, allow_upper: bool) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = match chars.next() {
        None => false,
        Some(c) => c.is_ascii_lowercase() || !c.is_ascii() || (allow_upper && c.is_ascii_uppercase()),
    };
    if !ok_first {
        return Err(err(
            16870,
            format!("'{name}' starts with an invalid character for a user variable name"),
        ));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()) {
        return Err(err(16871, format!("'{name}' contains an invalid character for a variable name: '.'")));
    }
    Ok(())
}

/// Splits and checks `a.b.c` of a field path.
pub fn parse_field_path(s: &str) -> Result<Vec<String>> {
    if s.is_empty() {
        return Err(err(16872, "'$' by itself is not a valid FieldPath"));
    }
    let parts: Vec<String> = s.split('.').map(str::to_owned).collect();
    for p in &parts {
        if p.is_empty() {
            return Err(err(15998, "FieldPath field names may not be empty strings."));
        }
        if p.starts_with('$') {
            return Err(err(
                16410,
                "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
            ));
        }
    }
    Ok(parts)
}

impl Expr {
    /// The value, `None` when missing.
    pub fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        match self {
            Expr::Const(v) => Ok(Some(v.clone())),
            Expr::Path(var, path) => Ok(eval_path(c, *var, path)),
            Expr::Object(fields) => {
                let mut d = Document::new();
                for (k, e) in fields {
                    if let Some(v) = e.eval(c)? {
                        d.insert(k.clone(), v);
                    }
                }
                Ok(Some(Bson::Document(d)))
            }
            Expr::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for e in items {
                    out.push(e.eval(c)?.unwrap_or(Bson::Null));
                }
                Ok(Some(Bson::Array(out)))
            }
            Expr::Func(f) => {
                let mut vals = Vec::with_capacity(f.args.len());
                for a in &f.args {
                    vals.push(a.eval(c)?);
                }
                (f.f)(f.name, &vals)
            }
            Expr::Special(s) => s.eval(c),
        }
    }

    /// The value with missing turned into null.
    pub fn value(&self, c: &mut Ctx) -> Result<Bson> {
        Ok(self.eval(c)?.unwrap_or(Bson::Null))
    }

    pub fn is_const(&self) -> bool {
        matches!(self, Expr::Const(_))
    }

    /// The field path of a plain `$a.b` reference.
    pub fn field_path(&self) -> Option<&[String]> {
        match self {
            Expr::Path(VarRef::Current, p) if !p.is_empty() => Some(p),
            _ => None,
        }
    }
}

fn eval_path(c: &Ctx, var: VarRef, path: &[String]) -> Option<Bson> {
    let base: Bson = match var {
        VarRef::Current | VarRef::Root => {
            let doc = if var == VarRef::Root { c.root } else { c.current };
            let (first, rest) = match path.split_first() {
                None => return Some(Bson::Document(doc.clone())),
                Some(x) => x,
            };
            return doc.get(first).and_then(|v| walk(v, rest));
        }
        VarRef::Keep => Bson::String(REDACT_KEEP.into()),
        VarRef::Prune => Bson::String(REDACT_PRUNE.into()),
        VarRef::Descend => Bson::String(REDACT_DESCEND.into()),
        VarRef::Now => Bson::DateTime(c.now),
        VarRef::ClusterTime => {
            let ms = c.now.timestamp_millis();
            Bson::Timestamp(bson::Timestamp { time: (ms / 1000).max(0) as u32, increment: 1 })
        }
        VarRef::Remove => return None,
        VarRef::Slot(i) => c.vars.get(i).cloned()?,
    };
    if path.is_empty() {
        Some(base)
    } else {
        walk(&base, path)
    }
}

/// mongod's field-path walk: through documents, and over each element of an array (keeping
/// nested arrays as arrays and dropping elements where the path is missing).
pub fn walk(v: &Bson, path: &[String]) -> Option<Bson> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v.clone());
    };
    match v {
        Bson::Document(d) => d.get(first).and_then(|x| walk(x, rest)),
        Bson::Array(items) => {
            let mut out = Vec::new();
            for it in items {
                match it {
                    Bson::Document(_) | Bson::Array(_) => {
                        if let Some(x) = walk(it, path) {
                            out.push(x);
                        }
                    }
                    _ => {}
                }
            }
            Some(Bson::Array(out))
        }
        _ => None,
    }
}

/// mongod's `Value::coerceToBool`.
pub fn truthy(v: &Option<Bson>) -> bool {
    match v {
        None => false,
        Some(b) => crate::query::util::true_value(b),
    }
}

/// Null, undefined or missing.
pub fn nullish(v: &Option<Bson>) -> bool {
    matches!(v, None | Some(Bson::Null) | Some(Bson::Undefined))
}

/// mongod's type name, with "missing" for an absent value.
pub fn type_of(v: &Option<Bson>) -> &'static str {
    match v {
        None => "missing",
        Some(b) => type_name(b),
    }
}

/// Evaluates a field path of the current document without an expression.
pub fn get_path(doc: &Document, path: &[String]) -> Option<Bson> {
    let (first, rest) = path.split_first()?;
    doc.get(first).and_then(|v| walk(v, rest))
}

/// Parses an operator's object argument: named fields, each allowed once.
pub fn named_args<'a>(
    op: &str,
    arg: &'a Bson,
    allowed: &[&str],
    code_not_object: i32,
    code_unknown: i32,
) -> Result<Vec<(&'a str, &'a Bson)>> {
    let Bson::Document(d) = arg else {
        return Err(located(
            code_not_object,
            ErrorCode::FailedToParse,
            format!("{op} only supports an object as its argument"),
        ));
    };
    let mut out = Vec::new();
    for (k, v) in d {
        if !allowed.contains(&k.as_str()) {
            return Err(located(
                code_unknown,
                ErrorCode::FailedToParse,
                format!("{op} found an unknown argument: {k}"),
            ));
        }
        out.push((k.as_str(), v));
    }
    Ok(out)
}

/// The named argument `name` from `named_args` output.
pub fn find_arg<'a>(args: &[(&str, &'a Bson)], name: &str) -> Option<&'a Bson> {
    args.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// `$expr` inside a query filter (find, update, delete): evaluated per document with no
/// variables but `$$NOW`; an evaluation error counts as no match.
pub fn expr_predicate(arg: &Bson) -> Result<std::sync::Arc<dyn crate::query::matcher::DocPredicate>> {
    let e = Parser::default().parse(arg)?;
    Ok(std::sync::Arc::new(ExprPredicate(e)))
}

struct ExprPredicate(Expr);

impl std::fmt::Debug for ExprPredicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$expr")
    }
}

impl crate::query::matcher::DocPredicate for ExprPredicate {
    fn matches(&self, doc: &Document) -> bool {
        let mut c = Ctx::new(doc, &[], DateTime::now());
        self.0.eval(&mut c).map(|v| truthy(&v)).unwrap_or(false)
    }
}

#[cfg(test)]
pub mod test_util {
    use super::*;
    use bson::doc;

    /// Evaluates `expr` (a JSON-like BSON value) against `doc`.
    pub fn eval_on(expr: Bson, doc: &Document) -> Result<Option<Bson>> {
        let e = Parser::default().parse(&expr)?;
        let mut c = Ctx::new(doc, &[], DateTime::from_millis(0));
        e.eval(&mut c)
    }

    pub fn ev(expr: Bson) -> Result<Option<Bson>> {
        eval_on(expr, &doc! {})
    }

    pub fn code(r: Result<Option<Bson>>) -> i32 {
        match r {
            Err(e) => e.code.code(),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use bson::{bson, doc};

    #[test]
    fn paths_and_vars() {
        let d = doc! {"a": {"b": 1}, "arr": [{"x": 1}, {"y": 2}, {"x": 3}, 5, [{"x": 4}]]};
        assert_eq!(eval_on(bson!("$a.b"), &d).unwrap(), Some(Bson::Int32(1)));
        assert_eq!(eval_on(bson!("$a.c"), &d).unwrap(), None);
        assert_eq!(eval_on(bson!("$arr.x"), &d).unwrap(), Some(bson!([1, 3, [4]])));
        assert_eq!(eval_on(bson!("$$ROOT.a"), &d).unwrap(), Some(bson!({"b": 1})));
        assert_eq!(eval_on(bson!("$$REMOVE"), &d).unwrap(), None);
        assert_eq!(eval_on(bson!({"x": "$a.b", "y": "$nope"}), &d).unwrap(), Some(bson!({"x": 1})));
        assert_eq!(eval_on(bson!(["$nope", 1]), &d).unwrap(), Some(bson!([null, 1])));
        assert_eq!(code(ev(bson!("$$nope"))), 17276);
        assert_eq!(code(ev(bson!({"$nope": 1}))), 168);
        assert_eq!(code(ev(bson!({"$add": [1], "$x": 1}))), 15983);
        assert_eq!(code(ev(bson!("$"))), 16872);
        assert_eq!(ev(bson!({"$literal": "$a"})).unwrap(), Some(bson!("$a")));
    }
}
