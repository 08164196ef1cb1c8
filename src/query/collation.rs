//! Collations: parsing and validating the `collation` document as mongod does, and comparing
//! strings under one.
//!
//! The comparison is our own approximation of the Unicode Collation Algorithm (mongod uses
//! ICU), enough for the common Latin-script locales: strings are decomposed (NFD); level 1
//! compares base characters (whitespace < punctuation < symbols < digits < letters, letters
//! case-folded, in code point order within a script), level 2 the accents (in DUCET's order
//! for the common ones; `backwards` reverses them), the case level and level 3 the case
//! (`caseFirst`), level 4 the characters `alternate: "shifted"` ignored, level 5 the code
//! points. `numericOrdering` compares runs of digits as numbers. Locale-specific tailorings
//! (e.g. Swedish "ä" after "z", Spanish "ñ", German phonebook) are not applied; every locale
//! compares like the root locale, except that `fr_CA` defaults to `backwards: true`.
//!
//! While a statement runs with a collation, `Scope` makes it the thread's active collation,
//! and `compare::compare_bson` consults it for string values (field names stay binary, as in
//! mongod).

use crate::error::{ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;

/// The ICU version mongod 7.0 reports in a collation's `version`.
const ICU_VERSION: &str = "57.1";

/// Locales mongod accepts (ICU's collation locales), `_`-separated as mongod writes them.
const LOCALES: &[&str] = &[
    "af",
    "sq",
    "am",
    "ar",
    "hy",
    "as",
    "az",
    "bn",
    "be",
    "bs",
    "bs_Cyrl",
    "bg",
    "my",
    "ca",
    "chr",
    "zh",
    "zh_Hant",
    "hr",
    "cs",
    "da",
    "nl",
    "dz",
    "en",
    "en_US",
    "en_US_POSIX",
    "eo",
    "et",
    "ee",
    "fo",
    "fil",
    "fi",
    "fr",
    "fr_CA",
    "gl",
    "ka",
    "de",
    "de_AT",
    "el",
    "gu",
    "ha",
    "haw",
    "he",
    "hi",
    "hu",
    "is",
    "ig",
    "smn",
    "id",
    "ga",
    "it",
    "ja",
    "kl",
    "kn",
    "kk",
    "km",
    "kok",
    "ko",
    "ky",
    "lk",
    "lo",
    "lv",
    "li",
    "lt",
    "dsb",
    "lb",
    "mk",
    "ms",
    "ml",
    "mt",
    "mr",
    "mn",
    "ne",
    "se",
    "nb",
    "nn",
    "or",
    "om",
    "ps",
    "fa",
    "fa_AF",
    "pl",
    "pt",
    "pa",
    "ro",
    "ru",
    "sr",
    "sr_Latn",
    "si",
    "sk",
    "sl",
    "es",
    "sw",
    "sv",
    "ta",
    "te",
    "th",
    "bo",
    "to",
    "tr",
    "uk",
    "hsb",
    "ur",
    "ug",
    "vi",
    "wae",
    "cy",
    "yi",
    "yo",
    "zu",
    "root",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseFirst {
    Off,
    Upper,
    Lower,
}

/// A validated, non-simple collation with every field filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collation {
    pub locale: String,
    pub strength: u8,
    pub case_level: bool,
    pub case_first: CaseFirst,
    pub numeric_ordering: bool,
    /// `alternate: "shifted"`.
    pub shifted: bool,
    /// `maxVariable: "space"` (only spaces are variable) rather than "punct".
    pub max_variable_space: bool,
    pub backwards: bool,
    pub normalization: bool,
}

fn bad(msg: impl Into<String>) -> MongoError {
    MongoError::bad_value(msg)
}

fn type_error(field: &str, want: &str, got: &Bson) -> MongoError {
    MongoError::type_mismatch(format!(
        "BSON field 'collation.{field}' is the wrong type '{}', expected type '{want}'",
        crate::cmd::format::type_name(got)
    ))
}

impl Collation {
    /// Parses a `collation` argument: `None` for the simple (binary) collation.
    pub fn parse(spec: &Document) -> Result<Option<Collation>> {
        let locale = match spec.get("locale") {
            Some(Bson::String(s)) => s.clone(),
            Some(v) => return Err(type_error("locale", "string", v)),
            None => {
                return Err(MongoError::new(
                    ErrorCode::Location40414,
                    "BSON field 'collation.locale' is missing but a required field",
                ))
            }
        };
        let mut c = Collation {
            backwards: locale == "fr_CA",
            locale,
            strength: 3,
            case_level: false,
            case_first: CaseFirst::Off,
            numeric_ordering: false,
            shifted: false,
            max_variable_space: false,
            normalization: false,
        };
        for (k, v) in spec {
            let boolean = || match v {
                Bson::Boolean(b) => Ok(*b),
                other => Err(type_error(k, "bool", other)),
            };
            let string = || match v {
                Bson::String(s) => Ok(s.as_str()),
                other => Err(type_error(k, "string", other)),
            };
            match k.as_str() {
                "locale" => {}
                "strength" => {
                    let n = match v {
                        Bson::Int32(n) => *n as f64,
                        Bson::Int64(n) => *n as f64,
                        Bson::Double(d) => *d,
                        other => return Err(type_error(k, "int", other)),
                    };
                    if n.fract() != 0.0 || !(1.0..=5.0).contains(&n) {
                        return Err(bad(format!(
                            "Field 'strength' must be an integer 1 through 5. Got: {n}"
                        )));
                    }
                    c.strength = n as u8;
                }
                "caseLevel" => c.case_level = boolean()?,
                "caseFirst" => {
                    c.case_first = match string()? {
                        "off" => CaseFirst::Off,
                        "upper" => CaseFirst::Upper,
                        "lower" => CaseFirst::Lower,
                        other => {
                            return Err(bad(format!(
                                "Field 'caseFirst' must be 'upper', 'lower', or 'off'. Got: {other}"
                            )))
                        }
                    }
                }
                "numericOrdering" => c.numeric_ordering = boolean()?,
                "alternate" => {
                    c.shifted = match string()? {
                        "non-ignorable" => false,
                        "shifted" => true,
                        other => {
                            return Err(bad(format!(
                                "Field 'alternate' must be 'non-ignorable' or 'shifted'. Got: {other}"
                            )))
                        }
                    }
                }
                "maxVariable" => {
                    c.max_variable_space = match string()? {
                        "punct" => false,
                        "space" => true,
                        other => {
                            return Err(bad(format!(
                                "Field 'maxVariable' must be 'punct' or 'space'. Got: {other}"
                            )))
                        }
                    }
                }
                "normalization" => c.normalization = boolean()?,
                "backwards" => c.backwards = boolean()?,
                // Accepted as mongod accepts a version it reports back.
                "version" => {
                    string()?;
                }
                other => {
                    return Err(MongoError::new(
                        ErrorCode::Location40415,
                        format!("BSON field 'collation.{other}' is an unknown field."),
                    ))
                }
            }
        }
        if c.locale == "simple" {
            if spec.len() > 1 {
                return Err(bad("Collation spec with locale 'simple' must not have any other fields"));
            }
            return Ok(None);
        }
        if !LOCALES.contains(&c.locale.as_str()) {
            return Err(bad(format!("Field 'locale' is invalid in: {}", crate::cmd::format::shell(spec))));
        }
        Ok(Some(c))
    }

    /// The collation document as mongod reports it (every field, plus `version`).
    pub fn to_document(&self) -> Document {
        doc! {
            "locale": self.locale.clone(),
            "caseLevel": self.case_level,
            "caseFirst": match self.case_first { CaseFirst::Off => "off", CaseFirst::Upper => "upper", CaseFirst::Lower => "lower" },
            "strength": self.strength as i32,
            "numericOrdering": self.numeric_ordering,
            "alternate": if self.shifted { "shifted" } else { "non-ignorable" },
            "maxVariable": if self.max_variable_space { "space" } else { "punct" },
            "normalization": self.normalization,
            "backwards": self.backwards,
            "version": ICU_VERSION,
        }
    }

    pub fn compare(&self, a: &str, b: &str) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        self.sort_key(a).cmp(&self.sort_key(b))
    }

    /// A byte string whose binary order is this collation's order for strings.
    pub fn sort_key(&self, s: &str) -> Vec<u8> {
        let units = units(s, self.numeric_ordering);
        let variable = |u: &Unit| {
            self.shifted && (u.class == Class::Space || (!self.max_variable_space && u.class == Class::Punct))
        };
        let mut out = Vec::with_capacity(s.len() * 4);
        for u in units.iter().filter(|u| !variable(u)) {
            out.extend_from_slice(&u.primary);
        }
        let case_weight = |u: &Unit| match (u.upper, self.case_first) {
            (false, CaseFirst::Upper) | (true, CaseFirst::Off | CaseFirst::Lower) => 2u8,
            _ => 1u8,
        };
        let letters = || units.iter().filter(|u| !variable(u));
        if self.strength >= 2 {
            out.push(0);
            let mut secondary: Vec<u8> = Vec::new();
            for u in letters() {
                secondary.push(1);
                secondary.extend(u.marks.iter().map(|m| mark_weight(*m)));
            }
            if self.backwards {
                secondary.reverse();
            }
            out.extend(secondary);
        }
        if self.case_level {
            out.push(0);
            out.extend(letters().map(case_weight));
        }
        if self.strength >= 3 {
            out.push(0);
            out.extend(letters().map(case_weight));
        }
        if self.strength >= 4 && self.shifted {
            out.push(0);
            for u in &units {
                if variable(u) {
                    out.extend_from_slice(&u.primary);
                } else {
                    out.push(0xff);
                }
            }
        }
        if self.strength >= 5 {
            out.push(0);
            for ch in s.nfd() {
                // Shifted by one so no byte is the level separator.
                let v = ch as u32 + 1;
                out.extend_from_slice(&v.to_be_bytes()[1..]);
            }
        }
        out
    }

    /// `v` with every string (also inside documents and arrays) replaced by a string whose
    /// binary order is the collation's: what an index with this collation stores.
    pub fn index_value(&self, v: &Bson) -> Bson {
        match v {
            Bson::String(s) => Bson::String(key_string(&self.sort_key(s))),
            Bson::Symbol(s) => Bson::Symbol(key_string(&self.sort_key(s))),
            Bson::Document(d) => {
                Bson::Document(d.iter().map(|(k, v)| (k.clone(), self.index_value(v))).collect())
            }
            Bson::Array(a) => Bson::Array(a.iter().map(|v| self.index_value(v)).collect()),
            other => other.clone(),
        }
    }
}

/// Bytes as a string with the same binary order: byte `b` becomes the character `b + 1`
/// (UTF-8 keeps code point order).
fn key_string(bytes: &[u8]) -> String {
    bytes.iter().filter_map(|b| char::from_u32(*b as u32 + 1)).collect()
}

/// Bytes equal for values that are equal under the active collation (grouping keys).
pub fn group_key(v: &Bson) -> Vec<u8> {
    with_active(|c| match c {
        Some(c) => crate::store::keystring::encode_key(&[(&c.index_value(v), false)]),
        None => crate::store::keystring::encode_key(&[(v, false)]),
    })
}

/// Whether `v` holds a string anywhere (its order depends on the collation).
pub fn has_strings(v: &Bson) -> bool {
    match v {
        Bson::String(_) | Bson::Symbol(_) => true,
        Bson::Document(d) => d.values().any(has_strings),
        Bson::Array(a) => a.iter().any(has_strings),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Space = 1,
    Punct = 2,
    Symbol = 3,
    Digit = 4,
    Letter = 5,
    Other = 6,
}

/// One collation element: a base character (or a run of digits) with its accents.
struct Unit {
    class: Class,
    primary: Vec<u8>,
    marks: Vec<char>,
    upper: bool,
}

fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x300..=0x36f | 0x1ab0..=0x1aff | 0x1dc0..=0x1dff | 0x20d0..=0x20ff | 0xfe20..=0xfe2f)
}

fn classify(c: char) -> Class {
    if c.is_whitespace() {
        Class::Space
    } else if c.is_ascii_digit() {
        Class::Digit
    } else if c.is_alphabetic() {
        Class::Letter
    } else if matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
        || matches!(c as u32, 0xa2..=0xa9 | 0xac | 0xae..=0xb1 | 0xb4 | 0xb8 | 0xd7 | 0xf7 | 0x20a0..=0x20cf | 0x2100..=0x2bff)
    {
        Class::Symbol
    } else if c.is_ascii_punctuation()
        || matches!(c as u32, 0xa1 | 0xa7 | 0xab | 0xb6 | 0xb7 | 0xbb | 0xbf | 0x2010..=0x2027 | 0x2030..=0x205e | 0x3000..=0x303f)
    {
        Class::Punct
    } else {
        Class::Other
    }
}

fn units(s: &str, numeric: bool) -> Vec<Unit> {
    let chars: Vec<char> = s.nfd().collect();
    let mut out: Vec<Unit> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if is_mark(c) {
            match out.last_mut() {
                Some(u) => u.marks.push(c),
                // A leading accent stands for itself.
                None => out.push(Unit {
                    class: Class::Other,
                    primary: cp_primary(Class::Other, c),
                    marks: vec![],
                    upper: false,
                }),
            }
            i += 1;
            continue;
        }
        let class = classify(c);
        if class == Class::Digit && numeric {
            let start = i;
            while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect::<String>();
            let digits = digits.trim_start_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            // Length first (numbers past 254 digits compare by their first 254), then digits.
            let mut primary = vec![Class::Digit as u8, digits.len().min(254) as u8 + 1];
            primary.extend(digits.bytes().take(254));
            out.push(Unit { class, primary, marks: vec![], upper: false });
            continue;
        }
        let lower = c.to_lowercase().next().unwrap_or(c);
        let upper = lower != c || (c.is_uppercase() && !c.is_lowercase());
        out.push(Unit { class, primary: cp_primary(class, lower), marks: vec![], upper });
        i += 1;
    }
    out
}

/// Class byte then the code point in three bytes: fixed width, so elements never run together.
fn cp_primary(class: Class, c: char) -> Vec<u8> {
    let cp = c as u32;
    vec![class as u8, (cp >> 16) as u8, (cp >> 8) as u8, cp as u8]
}

/// Secondary weights above the plain letter's (1): the common accents in DUCET's order, then
/// the others by code point.
fn mark_weight(m: char) -> u8 {
    const ORDER: &[u32] =
        &[0x301, 0x300, 0x306, 0x302, 0x30c, 0x30a, 0x308, 0x30b, 0x303, 0x307, 0x328, 0x327, 0x304];
    match ORDER.iter().position(|x| *x == m as u32) {
        Some(p) => 2 + p as u8,
        None => 20u8.saturating_add((m as u32 % 200) as u8).max(20),
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Arc<Collation>>> = const { RefCell::new(None) };
}

/// The collation string comparisons on this thread use (none: binary).
pub fn with_active<R>(f: impl FnOnce(Option<&Collation>) -> R) -> R {
    ACTIVE.with(|a| f(a.borrow().as_deref()))
}

/// The thread's active collation (what a cursor opened now keeps for its getMores).
pub fn active() -> Option<Arc<Collation>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Enters the collation a statement on `coll` runs with: its `collation` argument, else the
/// collection's default.
pub fn enter_for(arg: Option<&Bson>, coll: Option<&crate::store::Collection>) -> Result<Scope> {
    let default = coll.and_then(|c| c.options.get_document("collation").ok());
    Ok(Scope::enter(effective(arg, default)?))
}

/// Makes a collation the thread's active one until dropped (then restores the previous one).
pub struct Scope {
    previous: Option<Arc<Collation>>,
}

impl Scope {
    pub fn enter(c: Option<Arc<Collation>>) -> Scope {
        Scope { previous: ACTIVE.with(|a| std::mem::replace(&mut *a.borrow_mut(), c)) }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.previous.take();
        ACTIVE.with(|a| *a.borrow_mut() = prev);
    }
}

/// The collation a statement runs with: its own `collation` argument if given (`{locale:
/// "simple"}` meaning binary), otherwise the collection's default.
pub fn effective(arg: Option<&Bson>, coll_default: Option<&Document>) -> Result<Option<Arc<Collation>>> {
    match arg {
        Some(Bson::Document(d)) => Ok(Collation::parse(d)?.map(Arc::new)),
        Some(v) => Err(MongoError::type_mismatch(format!(
            "BSON field 'collation' is the wrong type '{}', expected type 'object'",
            crate::cmd::format::type_name(v)
        ))),
        None => Ok(coll_default.and_then(|d| Collation::parse(d).ok().flatten()).map(Arc::new)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(spec: Document) -> Collation {
        Collation::parse(&spec).unwrap().unwrap()
    }

    #[test]
    fn parse_and_errors() {
        assert!(Collation::parse(&doc! { "locale": "simple" }).unwrap().is_none());
        let en = c(doc! { "locale": "en" });
        assert_eq!(en.strength, 3);
        assert_eq!(en.to_document().get_str("caseFirst").unwrap(), "off");
        assert!(c(doc! { "locale": "fr_CA" }).backwards);
        let code = |d: Document| Collation::parse(&d).unwrap_err().code;
        assert_eq!(code(doc! { "locale": "xx" }), ErrorCode::BadValue);
        assert_eq!(code(doc! { "strength": 2 }), ErrorCode::Location40414);
        assert_eq!(code(doc! { "locale": "en", "strength": 6 }), ErrorCode::BadValue);
        assert_eq!(code(doc! { "locale": "en", "caseFirst": "x" }), ErrorCode::BadValue);
        assert_eq!(code(doc! { "locale": "en", "caseLevel": 1 }), ErrorCode::TypeMismatch);
        assert_eq!(code(doc! { "locale": "en", "bogus": 1 }), ErrorCode::Location40415);
        assert_eq!(code(doc! { "locale": 1 }), ErrorCode::TypeMismatch);
    }

    #[test]
    fn strengths() {
        let s1 = c(doc! { "locale": "en", "strength": 1 });
        let s2 = c(doc! { "locale": "en", "strength": 2 });
        let s3 = c(doc! { "locale": "en" });
        assert_eq!(s1.compare("cafe", "Café"), Ordering::Equal);
        assert_eq!(s2.compare("cafe", "CAFE"), Ordering::Equal);
        assert_eq!(s2.compare("cafe", "café"), Ordering::Less);
        assert_eq!(s3.compare("cafe", "Cafe"), Ordering::Less);
        assert_eq!(s3.compare("a", "B"), Ordering::Less);
        assert_eq!(s3.compare("B", "c"), Ordering::Less);
        // Accents weigh less than letters: "café" < "cafes".
        assert_eq!(s3.compare("café", "cafes"), Ordering::Less);
        // A precomposed and a decomposed é are the same letter.
        assert_eq!(s3.compare("caf\u{e9}", "cafe\u{301}"), Ordering::Equal);
    }

    #[test]
    fn case_options_and_numbers() {
        let upper = c(doc! { "locale": "en", "caseFirst": "upper" });
        assert_eq!(upper.compare("A", "a"), Ordering::Less);
        let lvl = c(doc! { "locale": "en", "strength": 1, "caseLevel": true });
        assert_eq!(lvl.compare("a", "á"), Ordering::Equal);
        assert_ne!(lvl.compare("a", "A"), Ordering::Equal);
        let num = c(doc! { "locale": "en", "numericOrdering": true });
        assert_eq!(num.compare("10", "9"), Ordering::Greater);
        assert_eq!(num.compare("item 2", "item 10"), Ordering::Less);
        assert_eq!(c(doc! { "locale": "en" }).compare("10", "9"), Ordering::Less);
        let shifted = c(doc! { "locale": "en", "alternate": "shifted" });
        assert_eq!(shifted.compare("black-bird", "blackbird"), Ordering::Equal);
        assert_eq!(shifted.compare("black bird", "blackbird"), Ordering::Equal);
        let space = c(doc! { "locale": "en", "alternate": "shifted", "maxVariable": "space" });
        assert_eq!(space.compare("black bird", "blackbird"), Ordering::Equal);
        assert_ne!(space.compare("black-bird", "blackbird"), Ordering::Equal);
    }

    #[test]
    fn index_values_keep_the_order() {
        let s2 = c(doc! { "locale": "en", "strength": 2 });
        let words = ["b", "A", "a", "é", "e", "Z", "10", "ab"];
        for x in words {
            for y in words {
                let (kx, ky) =
                    (s2.index_value(&Bson::String(x.into())), s2.index_value(&Bson::String(y.into())));
                let (Bson::String(kx), Bson::String(ky)) = (kx, ky) else { panic!() };
                assert_eq!(kx.as_bytes().cmp(ky.as_bytes()), s2.compare(x, y), "{x} {y}");
            }
        }
    }
}
