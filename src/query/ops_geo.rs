//! Geospatial query operators: `$geoWithin` (and legacy `$within`), `$geoIntersects`, and
//! the parsing of `$near`/`$nearSphere` (which only `find` runs: it sorts by distance, see
//! `cmd/geo.rs`); plus the check a 2d/2dsphere index makes of each document it indexes.
//!
//! `$geoWithin` and `$geoIntersects` need no index, as in mongod. Regions: `$geometry`
//! (Polygon/MultiPolygon, spherical), `$box`, `$polygon`, `$center` (flat) and
//! `$centerSphere` (radians on the sphere). Circles and boxes test a geometry's vertices.

use super::geometry::{self, Shape, EARTH_RADIUS_M};
use super::matcher::{Ctx, ElementPredicate, Expr};
use super::util::{bad_value, number_as_f64, value_to_string};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, Document};
use geo::{Coord, Geometry, LineString, Point, Polygon};

/// What `$geoWithin` tests against.
#[derive(Debug)]
enum Region {
    /// `$geometry`: a Polygon or MultiPolygon.
    Sphere(Geometry<f64>),
    Box {
        min: Coord<f64>,
        max: Coord<f64>,
    },
    Polygon(Geometry<f64>),
    Center {
        c: Coord<f64>,
        r: f64,
    },
    /// Radius in radians.
    CenterSphere {
        c: Coord<f64>,
        r: f64,
    },
}

#[derive(Debug)]
struct Within(Region);

impl ElementPredicate for Within {
    fn matches(&self, v: Option<&Bson>) -> bool {
        let Some(s) = v.and_then(geometry::stored) else { return false };
        let g = &s.geom;
        match &self.0 {
            Region::Sphere(r) | Region::Polygon(r) => geometry::region_covers(r, g),
            Region::Box { min, max } => {
                geometry::all_coords(g, |c| c.x >= min.x && c.x <= max.x && c.y >= min.y && c.y <= max.y)
            }
            Region::Center { c: center, r } => {
                geometry::all_coords(g, |c| geometry::flat_distance(*center, c) <= *r)
            }
            Region::CenterSphere { c: center, r } => {
                geometry::all_coords(g, |c| geometry::sphere_distance(*center, c) <= *r)
            }
        }
    }
}

#[derive(Debug)]
struct IntersectsPred(Geometry<f64>);

impl ElementPredicate for IntersectsPred {
    fn matches(&self, v: Option<&Bson>) -> bool {
        v.and_then(geometry::stored).is_some_and(|s| geometry::intersects(&self.0, &s.geom))
    }
}

fn malformed(op: &str, arg: &Bson) -> MongoError {
    bad_value(format!("malformed {op}: {}", value_to_string(arg)))
}

fn finite_num(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            number_as_f64(v).filter(|f| !f.is_nan())
        }
        _ => None,
    }
}

/// `[[x, y], radius]` of `$center` / `$centerSphere`.
fn circle(op: &str, arg: &Bson) -> Result<(Coord<f64>, f64)> {
    let Bson::Array(a) = arg else { return Err(malformed(op, arg)) };
    let (Some(c), Some(r), 2) = (a.first().and_then(geometry::legacy_point), a.get(1), a.len()) else {
        return Err(malformed(op, arg));
    };
    match finite_num(r) {
        Some(r) if r >= 0.0 => Ok((c, r)),
        _ => Err(bad_value(format!("radius must be a non-negative number: {}", value_to_string(arg)))),
    }
}

fn geometry_arg(arg: &Bson) -> Result<Geometry<f64>> {
    let Bson::Document(d) = arg else {
        return Err(bad_value(format!("geometry must be an object: {}", value_to_string(arg))));
    };
    geometry::geojson(d).map_err(|why| bad_value(format!("Can't parse geometry: {why}")))
}

fn parse_region(op: &str, spec: &Document) -> Result<Region> {
    let mut it = spec.iter();
    let (Some((kind, arg)), None) = (it.next(), it.next()) else {
        return Err(bad_value(format!(
            "{op} must contain exactly one shape: {}",
            value_to_string(&Bson::Document(spec.clone()))
        )));
    };
    Ok(match kind.as_str() {
        "$geometry" => {
            let g = geometry_arg(arg)?;
            if !matches!(g, Geometry::Polygon(_) | Geometry::MultiPolygon(_)) {
                return Err(bad_value(format!(
                    "{op} not supported with provided geometry: {}",
                    value_to_string(arg)
                )));
            }
            Region::Sphere(g)
        }
        "$box" => {
            let Bson::Array(a) = arg else { return Err(malformed("$box", arg)) };
            let (Some(p), Some(q), 2) = (
                a.first().and_then(geometry::legacy_point),
                a.get(1).and_then(geometry::legacy_point),
                a.len(),
            ) else {
                return Err(malformed("$box", arg));
            };
            Region::Box {
                min: Coord { x: p.x.min(q.x), y: p.y.min(q.y) },
                max: Coord { x: p.x.max(q.x), y: p.y.max(q.y) },
            }
        }
        "$polygon" => {
            let Bson::Array(a) = arg else { return Err(malformed("$polygon", arg)) };
            let mut pts = a
                .iter()
                .map(geometry::legacy_point)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("$polygon", arg))?;
            if pts.len() < 3 {
                return Err(bad_value("Polygon must have at least 3 points"));
            }
            if pts.first() != pts.last() {
                if let Some(first) = pts.first().copied() {
                    pts.push(first);
                }
            }
            Region::Polygon(Geometry::Polygon(Polygon::new(LineString::new(pts), Vec::new())))
        }
        "$center" => {
            let (c, r) = circle("$center", arg)?;
            Region::Center { c, r }
        }
        "$centerSphere" => {
            let (c, r) = circle("$centerSphere", arg)?;
            if !(-180.0..=180.0).contains(&c.x) || !(-90.0..=90.0).contains(&c.y) {
                return Err(bad_value(format!("Invalid center for $centerSphere: {}", value_to_string(arg))));
            }
            Region::CenterSphere { c, r }
        }
        other => return Err(bad_value(format!("unknown geo specifier: {other}: {}", value_to_string(arg)))),
    })
}

/// The error of `$near`-like operators anywhere but the top of a find filter.
pub fn near_not_allowed() -> MongoError {
    MongoError::new(
        ErrorCode::Location5626500,
        "$geoNear, $near, and $nearSphere are not allowed in this context, as these operators require \
         sorting geospatial data. If you do not need sort, consider using $geoWithin instead.",
    )
}

/// Parses the geospatial family; `None` for other operators.
pub fn parse_op(path: &str, op: &str, arg: &Bson, _ctx: Ctx) -> Option<Result<Expr>> {
    let r = match op {
        "$geoWithin" | "$within" => match arg {
            Bson::Document(spec) => parse_region(op, spec).map(|r| Expr::path(path, Within(r))),
            _ => Err(bad_value(format!("{op} must be an object"))),
        },
        "$geoIntersects" => match arg {
            Bson::Document(spec) => match spec.get("$geometry") {
                Some(g) if spec.len() == 1 => geometry_arg(g).map(|g| Expr::path(path, IntersectsPred(g))),
                _ => Err(bad_value(format!(
                    "$geoIntersects only supports $geometry: {}",
                    value_to_string(arg)
                ))),
            },
            _ => Err(bad_value("$geoIntersects must be an object")),
        },
        "$near" | "$nearSphere" | "$geoNear" => Err(near_not_allowed()),
        _ => return None,
    };
    Some(r)
}

/// A `$near` / `$nearSphere` query on one field.
#[derive(Clone, Debug)]
pub struct Near {
    pub field: String,
    pub center: Coord<f64>,
    /// The point was GeoJSON: distances are meters on the sphere (needs a 2dsphere index).
    pub geojson: bool,
    /// Distances on the sphere (radians for legacy points) rather than flat.
    pub spherical: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Multiplies reported distances (`$geoNear`'s distanceMultiplier).
    pub multiplier: f64,
}

impl Near {
    /// The distance to the nearest geometry found at the field, in the query's units.
    pub fn distance(&self, doc: &Document) -> Option<(f64, Bson)> {
        let mut best: Option<(f64, Bson)> = None;
        for c in super::path::lookup(doc, &self.field) {
            let Some(v) = c.value else { continue };
            let Some(Shape { geom, .. }) = geometry::stored(v) else { continue };
            let Some(mut d) = geometry::distance_to(&geom, self.center, self.spherical) else { continue };
            if self.geojson {
                d *= EARTH_RADIUS_M;
            }
            if best.as_ref().is_none_or(|(b, _)| d < *b) {
                best = Some((d, v.clone()));
            }
        }
        best
    }

    /// Whether a distance is within `[min, max]`.
    pub fn in_range(&self, d: f64) -> bool {
        self.min.is_none_or(|m| d >= m) && self.max.is_none_or(|m| d <= m)
    }

    /// Parses a `$geoNear` stage's `near` (a GeoJSON point or a legacy pair).
    pub fn from_point(field: &str, near: &Bson, spherical: bool) -> Result<Near> {
        let (center, geojson) = match near {
            Bson::Document(d) if d.contains_key("type") => match geometry::geojson(d) {
                Ok(Geometry::Point(Point(c))) => (c, true),
                _ => {
                    return Err(bad_value(format!(
                        "invalid argument in geo near query: {}",
                        value_to_string(near)
                    )))
                }
            },
            _ => match geometry::legacy_point(near) {
                Some(c) => (c, false),
                None => {
                    return Err(bad_value(format!(
                        "invalid argument in geo near query: {}",
                        value_to_string(near)
                    )))
                }
            },
        };
        Ok(Near {
            field: field.to_string(),
            center,
            geojson,
            spherical: spherical || geojson,
            min: None,
            max: None,
            multiplier: 1.0,
        })
    }
}

fn distance_arg(name: &str, v: &Bson) -> Result<f64> {
    match finite_num(v) {
        Some(d) if d >= 0.0 => Ok(d),
        _ => Err(bad_value(format!("{name} must be a non-negative number"))),
    }
}

/// The `$near`/`$nearSphere` of a find filter's top level, with the rest of the filter.
/// `None` when the filter has none.
pub fn take_near(filter: &Document) -> Result<Option<(Near, Document)>> {
    let mut found: Option<Near> = None;
    let mut rest = Document::new();
    for (field, cond) in filter {
        let Bson::Document(ops) = cond else {
            rest.insert(field.clone(), cond.clone());
            continue;
        };
        let op = ["$near", "$nearSphere"].into_iter().find(|o| ops.contains_key(*o));
        let (Some(op), false) = (op, field.starts_with('$')) else {
            rest.insert(field.clone(), cond.clone());
            continue;
        };
        if found.is_some() {
            return Err(bad_value("Too many geoNear expressions"));
        }
        let mut near = parse_near(field, op, ops)?;
        near.spherical |= op == "$nearSphere";
        let others: Document = ops
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "$near" | "$nearSphere" | "$maxDistance" | "$minDistance"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !others.is_empty() {
            rest.insert(field.clone(), others);
        }
        found = Some(near);
    }
    Ok(found.map(|n| (n, rest)))
}

fn parse_near(field: &str, op: &str, ops: &Document) -> Result<Near> {
    let arg = ops.get(op).unwrap_or(&Bson::Null);
    let mut min = ops.get("$minDistance").map(|v| distance_arg("$minDistance", v)).transpose()?;
    let mut max = ops.get("$maxDistance").map(|v| distance_arg("$maxDistance", v)).transpose()?;
    let mut near = match arg {
        Bson::Document(d) if d.contains_key("$geometry") => {
            let g = d.get("$geometry").unwrap_or(&Bson::Null);
            let n = match g {
                Bson::Document(gd) => match geometry::geojson(gd) {
                    Ok(Geometry::Point(Point(c))) => Near {
                        field: field.to_string(),
                        center: c,
                        geojson: true,
                        spherical: true,
                        min: None,
                        max: None,
                        multiplier: 1.0,
                    },
                    _ => {
                        return Err(bad_value(format!(
                            "invalid point in geo near query $geometry argument: {}",
                            value_to_string(g)
                        )))
                    }
                },
                _ => {
                    return Err(bad_value(format!(
                        "invalid point in geo near query $geometry argument: {}",
                        value_to_string(g)
                    )))
                }
            };
            // The GeoJSON form carries its distances inside the operator document.
            if let Some(v) = d.get("$minDistance") {
                min = Some(distance_arg("$minDistance", v)?);
            }
            if let Some(v) = d.get("$maxDistance") {
                max = Some(distance_arg("$maxDistance", v)?);
            }
            n
        }
        _ => match geometry::legacy_point(arg) {
            Some(c) => Near {
                field: field.to_string(),
                center: c,
                geojson: false,
                spherical: false,
                min: None,
                max: None,
                multiplier: 1.0,
            },
            None => {
                return Err(bad_value(format!(
                    "invalid argument in geo near query: {}",
                    value_to_string(arg)
                )))
            }
        },
    };
    near.min = min;
    near.max = max;
    Ok(near)
}

/// The check a 2d / 2dsphere index makes of a document it indexes: each geo field must hold
/// geometry (2dsphere) or legacy points inside `[min, max)` (2d). Missing fields and null are
/// allowed (such documents are simply not indexed).
pub fn check_index_document(key: &Document, spec: &Document, doc: &Document) -> Result<()> {
    for (field, kind) in key {
        let Bson::String(kind) = kind else { continue };
        match kind.as_str() {
            "2dsphere" => {
                for c in super::path::lookup_with(doc, field, super::path::LeafArrays::NoTraverse) {
                    let Some(v) = c.value else { continue };
                    check_sphere_value(v).map_err(|why| {
                        MongoError::new(
                            ErrorCode::Location16755,
                            format!("Can't extract geo keys: {}  {why}", super::util::doc_to_string(doc)),
                        )
                    })?;
                }
            }
            "2d" => {
                let (lo, hi) = two_d_bounds(spec);
                for c in super::path::lookup_with(doc, field, super::path::LeafArrays::NoTraverse) {
                    let Some(v) = c.value else { continue };
                    check_2d_value(v, lo, hi)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A 2dsphere field: one geometry, or an array of geometries (legacy pairs count).
fn check_sphere_value(v: &Bson) -> std::result::Result<(), String> {
    match v {
        Bson::Null | Bson::Undefined => Ok(()),
        Bson::Array(items) if geometry::legacy_point(v).is_none() => {
            for item in items {
                geometry::parse_stored(item)?;
            }
            Ok(())
        }
        _ => {
            let s = geometry::parse_stored(v)?;
            if s.legacy {
                if let Geometry::Point(Point(c)) = s.geom {
                    if !(-180.0..=180.0).contains(&c.x) || !(-90.0..=90.0).contains(&c.y) {
                        return Err(format!(
                            "longitude/latitude is out of bounds, lng: {} lat: {}",
                            c.x, c.y
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// The `[min, max)` of a 2d index (default `[-180, 180)`).
pub fn two_d_bounds(spec: &Document) -> (f64, f64) {
    let get = |k: &str, d: f64| spec.get(k).and_then(finite_num).unwrap_or(d);
    (get("min", -180.0), get("max", 180.0))
}

fn check_2d_value(v: &Bson, lo: f64, hi: f64) -> Result<()> {
    // Scalars are not indexed by a 2d index; arrays of pairs are several locations.
    let points: Vec<&Bson> = match v {
        Bson::Array(items)
            if geometry::legacy_point(v).is_none()
                && items.iter().all(|i| matches!(i, Bson::Array(_) | Bson::Document(_))) =>
        {
            items.iter().collect()
        }
        Bson::Array(_) | Bson::Document(_) => vec![v],
        _ => return Ok(()),
    };
    for p in points {
        let Some(c) = geometry::legacy_point(p) else {
            return Err(MongoError::new(
                ErrorCode::Location13026,
                format!(
                    "geo values must be 'legacy coordinate pairs' for 2d indexes: {}",
                    value_to_string(p)
                ),
            ));
        };
        for x in [c.x, c.y] {
            if !(x >= lo && x < hi) {
                return Err(MongoError::new(
                    ErrorCode::Location13027,
                    format!("point not in interval of [ {lo}, {hi} ) :: caused by :: {}", value_to_string(p)),
                ));
            }
        }
    }
    Ok(())
}

/// Validates a 2d index's `bits`/`min`/`max` (the reason text of mongod's refusal).
pub fn check_2d_options(spec: &Document) -> std::result::Result<(), String> {
    if let Some(b) = spec.get("bits") {
        match super::util::exact_i64(b) {
            Some(b) if (1..=32).contains(&b) => {}
            _ => return Err("bits for hash must be > 0 and <= 32".into()),
        }
    }
    for k in ["min", "max"] {
        if let Some(v) = spec.get(k) {
            if finite_num(v).is_none() {
                return Err(format!("{k} must be a number"));
            }
        }
    }
    let (lo, hi) = two_d_bounds(spec);
    if lo >= hi {
        return Err("max must be greater than min".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::matcher::Matcher;
    use bson::doc;

    fn m(filter: Document, d: Document) -> bool {
        Matcher::parse(&filter).unwrap().matches(&d)
    }

    fn err(filter: Document) -> MongoError {
        Matcher::parse(&filter).unwrap_err()
    }

    // The triangle of mongod's $geoWithin documentation example.
    fn square() -> Document {
        doc! {"$geometry": {"type": "Polygon", "coordinates": [[[0, 0], [3, 6], [6, 1], [0, 0]]]}}
    }

    #[test]
    fn geo_within_polygon() {
        assert!(m(
            doc! {"loc": {"$geoWithin": square()}},
            doc! {"loc": {"type": "Point", "coordinates": [3, 3]}}
        ));
        assert!(m(doc! {"loc": {"$geoWithin": square()}}, doc! {"loc": [3, 3]}));
        assert!(!m(doc! {"loc": {"$geoWithin": square()}}, doc! {"loc": [5, 5]}));
        assert!(m(doc! {"loc": {"$within": square()}}, doc! {"loc": {"x": 2, "y": 2}}));
        assert!(!m(doc! {"loc": {"$geoWithin": square()}}, doc! {"loc": "somewhere"}));
        assert!(!m(doc! {"loc": {"$geoWithin": square()}}, doc! {}));
        // An array of locations: any inside matches.
        assert!(m(doc! {"loc": {"$geoWithin": square()}}, doc! {"loc": [[50, 50], [1, 1]]}));
    }

    #[test]
    fn legacy_shapes() {
        let bx = doc! {"loc": {"$geoWithin": {"$box": [[0, 0], [100, 100]]}}};
        assert!(m(bx.clone(), doc! {"loc": [100, 5]}));
        assert!(!m(bx, doc! {"loc": [101, 5]}));
        let poly = doc! {"loc": {"$geoWithin": {"$polygon": [[0, 0], [3, 6], [6, 0]]}}};
        assert!(m(poly.clone(), doc! {"loc": [3, 2]}));
        assert!(!m(poly, doc! {"loc": [0, 6]}));
        let c = doc! {"loc": {"$geoWithin": {"$center": [[-74, 40.74], 10]}}};
        assert!(m(c.clone(), doc! {"loc": [-70, 40]}));
        assert!(!m(c, doc! {"loc": [-60, 40]}));
        // mongod's example: 10 miles around (-88, 30) as radians (10 / 3963.2).
        let cs = doc! {"loc": {"$geoWithin": {"$centerSphere": [[-88, 30], 10.0 / 3963.2]}}};
        assert!(m(cs.clone(), doc! {"loc": {"type": "Point", "coordinates": [-88.1, 30.05]}}));
        assert!(!m(cs, doc! {"loc": [-88.5, 30]}));
    }

    #[test]
    fn geo_intersects() {
        let q = doc! {"loc": {"$geoIntersects": square()}};
        let line = doc! {"loc": {"type": "LineString", "coordinates": [[-1, 3], [10, 3]]}};
        assert!(m(q.clone(), line));
        let far = doc! {"loc": {"type": "LineString", "coordinates": [[10, 10], [20, 20]]}};
        assert!(!m(q.clone(), far));
        assert!(m(q, doc! {"loc": {"type": "Point", "coordinates": [1, 1]}}));
        let pt = doc! {"loc": {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [1, 1]}}}};
        let poly =
            doc! {"loc": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}};
        assert!(m(pt, poly));
    }

    #[test]
    fn bad_queries() {
        assert_eq!(err(doc! {"a": {"$geoWithin": {"$foo": 1}}}).code, ErrorCode::BadValue);
        let pt = doc! {"$geometry": {"type": "Point", "coordinates": [1, 1]}};
        assert_eq!(err(doc! {"a": {"$geoWithin": pt}}).code, ErrorCode::BadValue);
        assert_eq!(err(doc! {"a": {"$geoWithin": {"$center": [[0, 0], -1]}}}).code, ErrorCode::BadValue);
        assert_eq!(err(doc! {"a": {"$near": [0, 0]}}).code, ErrorCode::Location5626500);
    }

    #[test]
    fn near_parsing() {
        let f = doc! {"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [1, 2]}, "$maxDistance": 500}}, "x": 1};
        let (n, rest) = take_near(&f).unwrap().unwrap();
        assert!(n.geojson && n.spherical && n.max == Some(500.0));
        assert_eq!(rest, doc! {"x": 1});
        let (n, _) = take_near(&doc! {"loc": {"$nearSphere": [1, 2], "$minDistance": 0.1}}).unwrap().unwrap();
        assert!(!n.geojson && n.spherical && n.min == Some(0.1));
        let (n, _) = take_near(&doc! {"loc": {"$near": [1, 2]}}).unwrap().unwrap();
        assert!(!n.spherical);
        assert_eq!(n.distance(&doc! {"loc": [4, 6]}).map(|d| d.0), Some(5.0));
        assert!(take_near(&doc! {"loc": 1}).unwrap().is_none());
    }

    #[test]
    fn index_checks() {
        let key = doc! {"loc": "2dsphere"};
        assert!(check_index_document(
            &key,
            &doc! {},
            &doc! {"loc": {"type": "Point", "coordinates": [1, 1]}}
        )
        .is_ok());
        assert!(check_index_document(&key, &doc! {}, &doc! {"other": 1}).is_ok());
        let e = check_index_document(&key, &doc! {}, &doc! {"loc": "x"}).unwrap_err();
        assert_eq!(e.code, ErrorCode::Location16755);
        let e = check_index_document(&key, &doc! {}, &doc! {"loc": [200, 0]}).unwrap_err();
        assert_eq!(e.code, ErrorCode::Location16755);
        let key = doc! {"loc": "2d"};
        assert!(check_index_document(&key, &doc! {}, &doc! {"loc": [179.9, -180]}).is_ok());
        let e = check_index_document(&key, &doc! {}, &doc! {"loc": [180, 0]}).unwrap_err();
        assert_eq!(e.code, ErrorCode::Location13027);
        let e = check_index_document(&key, &doc! {}, &doc! {"loc": ["a", "b"]}).unwrap_err();
        assert_eq!(e.code, ErrorCode::Location13026);
        assert!(check_index_document(&key, &doc! {"min": 0, "max": 1000}, &doc! {"loc": [500, 999]}).is_ok());
        assert!(check_2d_options(&doc! {"bits": 40}).is_err());
        assert!(check_2d_options(&doc! {"min": 5, "max": 1}).is_err());
    }
}
