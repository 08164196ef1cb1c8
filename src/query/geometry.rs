//! Geometry values as mongod reads them: GeoJSON objects (`{type, coordinates}`, spherical,
//! longitude/latitude in degrees) and legacy coordinate pairs (`[x, y]` or `{x: .., y: ..}`,
//! the first two numeric fields). Parsing returns mongod's reason text on bad input; the
//! shapes are `geo` crate geometries.
//!
//! Containment of a point in a polygon is exact (boundary included). A line or polygon is
//! taken to be within a polygon when all its vertices are and none of its edges crosses the
//! polygon's boundary (a polygon around a hole still counts as within); edges
//! are straight lines in longitude/latitude, where mongod follows geodesics, so results on
//! long edges can differ from mongod's. Intersection uses the `geo` crate's planar test.

use crate::query::util::number_as_f64;
use bson::{Bson, Document};
use geo::line_intersection::line_intersection;
use geo::{
    Coord, CoordsIter, Geometry, GeometryCollection, Intersects, Line, LineString, LinesIter,
    MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
};

/// The earth radius mongod uses to turn radians into meters.
pub const EARTH_RADIUS_M: f64 = 6_378_100.0;

/// Most coordinates one geometry may hold (bounds the work a client can ask for).
const MAX_COORDS: usize = 1_000_000;

/// A geometry read from a document or a query.
#[derive(Clone, Debug)]
pub struct Shape {
    pub geom: Geometry<f64>,
    /// A legacy coordinate pair (flat) rather than a GeoJSON object.
    pub legacy: bool,
}

fn num(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => number_as_f64(v),
        _ => None,
    }
}

/// A legacy coordinate pair: an array or document whose first two values are numbers.
pub fn legacy_point(v: &Bson) -> Option<Coord<f64>> {
    let (x, y) = match v {
        Bson::Array(a) => (a.first()?, a.get(1)?),
        Bson::Document(d) => {
            let mut it = d.values();
            (it.next()?, it.next()?)
        }
        _ => return None,
    };
    let c = Coord { x: num(x)?, y: num(y)? };
    (c.x.is_finite() && c.y.is_finite()).then_some(c)
}

/// A GeoJSON position: `[lng, lat]` within the earth's bounds.
fn position(v: &Bson) -> Result<Coord<f64>, String> {
    let Bson::Array(a) = v else {
        return Err("Point must be an array or object".into());
    };
    if a.len() < 2 {
        return Err(format!(
            "Point must only contain numeric elements: {}",
            crate::query::util::value_to_string(v)
        ));
    }
    let (Some(x), Some(y)) = (a.first().and_then(num), a.get(1).and_then(num)) else {
        return Err("Point must only contain numeric elements".into());
    };
    if a.len() > 2 {
        return Err("Point must only contain two numeric elements".into());
    }
    if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
        return Err(format!("longitude/latitude is out of bounds, lng: {x} lat: {y}"));
    }
    Ok(Coord { x, y })
}

fn array<'a>(v: &'a Bson, what: &str) -> Result<&'a Vec<Bson>, String> {
    match v {
        Bson::Array(a) => Ok(a),
        _ => Err(format!("{what} must be an array")),
    }
}

fn positions(v: &Bson, budget: &mut usize) -> Result<Vec<Coord<f64>>, String> {
    let a = array(v, "coordinates")?;
    if a.len() > *budget {
        return Err("too many coordinates".into());
    }
    *budget -= a.len();
    a.iter().map(position).collect()
}

fn line(v: &Bson, budget: &mut usize) -> Result<LineString<f64>, String> {
    let pts = positions(v, budget)?;
    if pts.len() < 2 {
        return Err("GeoJSON LineString must have at least 2 vertices".into());
    }
    Ok(LineString::new(pts))
}

fn ring(v: &Bson, budget: &mut usize) -> Result<LineString<f64>, String> {
    let pts = positions(v, budget)?;
    if pts.len() < 4 {
        return Err("Loop must have at least 3 different vertices".into());
    }
    if pts.first() != pts.last() {
        return Err("Loop is not closed, first vertex does not equal last vertex".into());
    }
    Ok(LineString::new(pts))
}

fn polygon(v: &Bson, budget: &mut usize) -> Result<Polygon<f64>, String> {
    let rings = array(v, "Polygon coordinates")?;
    let mut it = rings.iter();
    let Some(outer) = it.next() else {
        return Err("Polygon has no loops.".into());
    };
    let outer = ring(outer, budget)?;
    let holes = it.map(|r| ring(r, budget)).collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(outer, holes))
}

/// Parses a GeoJSON object (`{type, coordinates}` or a GeometryCollection).
pub fn geojson(d: &Document) -> Result<Geometry<f64>, String> {
    let mut budget = MAX_COORDS;
    geojson_in(d, &mut budget, 0)
}

fn geojson_in(d: &Document, budget: &mut usize, depth: usize) -> Result<Geometry<f64>, String> {
    let kind = match d.get("type") {
        Some(Bson::String(s)) => s.as_str(),
        Some(_) => return Err("type must be a string".into()),
        None => return Err("unknown GeoJSON type".into()),
    };
    if kind == "GeometryCollection" {
        if depth > 0 {
            return Err("GeometryCollections cannot be nested".into());
        }
        let Some(Bson::Array(items)) = d.get("geometries") else {
            return Err("GeometryCollection geometries must be an array".into());
        };
        let mut out = Vec::with_capacity(items.len().min(1024));
        for g in items {
            let Bson::Document(g) = g else {
                return Err("Element 0 of \"geometries\" is not an object".into());
            };
            out.push(geojson_in(g, budget, depth + 1)?);
        }
        return Ok(Geometry::GeometryCollection(GeometryCollection(out)));
    }
    let coords = d.get("coordinates").ok_or_else(|| format!("{kind} must have a coordinates field"))?;
    let each = |what: &str| array(coords, what);
    Ok(match kind {
        "Point" => Geometry::Point(Point(position(coords)?)),
        "LineString" => Geometry::LineString(line(coords, budget)?),
        "Polygon" => Geometry::Polygon(polygon(coords, budget)?),
        "MultiPoint" => {
            Geometry::MultiPoint(MultiPoint::new(positions(coords, budget)?.into_iter().map(Point).collect()))
        }
        "MultiLineString" => Geometry::MultiLineString(MultiLineString::new(
            each("MultiLineString coordinates")?.iter().map(|l| line(l, budget)).collect::<Result<_, _>>()?,
        )),
        "MultiPolygon" => Geometry::MultiPolygon(MultiPolygon::new(
            each("MultiPolygon coordinates")?.iter().map(|p| polygon(p, budget)).collect::<Result<_, _>>()?,
        )),
        other => return Err(format!("unknown GeoJSON type: {other}")),
    })
}

/// Whether a document is meant as GeoJSON (it has a string `type`).
fn looks_geojson(d: &Document) -> bool {
    matches!(d.get("type"), Some(Bson::String(_)))
}

/// A stored value as a geometry, or why it is not one (for index validation).
pub fn parse_stored(v: &Bson) -> Result<Shape, String> {
    match v {
        Bson::Document(d) if looks_geojson(d) => Ok(Shape { geom: geojson(d)?, legacy: false }),
        Bson::Array(_) | Bson::Document(_) => match legacy_point(v) {
            Some(c) => Ok(Shape { geom: Geometry::Point(Point(c)), legacy: true }),
            None => Err("Point must only contain numeric elements".into()),
        },
        _ => Err("geo element must be an array or object".into()),
    }
}

/// A stored value as a geometry, when it is one.
pub fn stored(v: &Bson) -> Option<Shape> {
    parse_stored(v).ok()
}

/// Point in polygon, boundary included (even-odd rule over every ring).
pub fn polygon_covers_point(p: &Polygon<f64>, c: Coord<f64>) -> bool {
    let rings = std::iter::once(p.exterior()).chain(p.interiors());
    let mut inside = false;
    for r in rings {
        let pts = &r.0;
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if on_segment(a, b, c) {
                return true;
            }
            if (a.y > c.y) != (b.y > c.y) {
                let x = a.x + (c.y - a.y) * (b.x - a.x) / (b.y - a.y);
                if c.x < x {
                    inside = !inside;
                }
            }
        }
    }
    inside
}

fn on_segment(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>) -> bool {
    let cross = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
    let scale = (b.x - a.x).abs() + (b.y - a.y).abs();
    cross.abs() <= 1e-12 * scale.max(1.0)
        && c.x >= a.x.min(b.x)
        && c.x <= a.x.max(b.x)
        && c.y >= a.y.min(b.y)
        && c.y <= a.y.max(b.y)
}

/// Whether a (multi)polygon region covers a point.
pub fn region_covers_point(region: &Geometry<f64>, c: Coord<f64>) -> bool {
    match region {
        Geometry::Polygon(p) => polygon_covers_point(p, c),
        Geometry::MultiPolygon(mp) => mp.0.iter().any(|p| polygon_covers_point(p, c)),
        _ => false,
    }
}

/// Most segment pairs compared to tell whether an edge leaves a region; past it, vertices
/// alone decide (bounds the work of one comparison).
const MAX_SEGMENT_PAIRS: usize = 4_000_000;

fn segments(g: &Geometry<f64>, out: &mut Vec<Line<f64>>) {
    match g {
        Geometry::LineString(l) => out.extend(l.lines_iter()),
        Geometry::MultiLineString(m) => out.extend(m.lines_iter()),
        Geometry::Polygon(p) => out.extend(p.lines_iter()),
        Geometry::MultiPolygon(m) => out.extend(m.lines_iter()),
        Geometry::GeometryCollection(c) => c.iter().for_each(|g| segments(g, out)),
        _ => {}
    }
}

/// Whether a (multi)polygon region covers a geometry: every vertex is covered and no edge
/// crosses the region's boundary (which a concave region needs).
pub fn region_covers(region: &Geometry<f64>, g: &Geometry<f64>) -> bool {
    if !all_coords(g, |c| region_covers_point(region, c)) {
        return false;
    }
    let (mut inner, mut outer) = (Vec::new(), Vec::new());
    segments(g, &mut inner);
    segments(region, &mut outer);
    if inner.is_empty() || inner.len().saturating_mul(outer.len()) > MAX_SEGMENT_PAIRS {
        return true;
    }
    !inner.iter().any(|s| outer.iter().any(|r| line_intersection(*s, *r).is_some_and(|i| i.is_proper())))
}

/// Every vertex of a geometry satisfies `f` (and it has at least one).
pub fn all_coords(g: &Geometry<f64>, f: impl Fn(Coord<f64>) -> bool) -> bool {
    let mut any = false;
    for c in g.coords_iter() {
        if !f(c) {
            return false;
        }
        any = true;
    }
    any
}

pub fn intersects(a: &Geometry<f64>, b: &Geometry<f64>) -> bool {
    a.intersects(b)
}

/// Great-circle distance in radians (haversine).
pub fn sphere_distance(a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (la1, la2) = (a.y.to_radians(), b.y.to_radians());
    let dlat = la2 - la1;
    let dlng = (b.x - a.x).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * h.sqrt().clamp(0.0, 1.0).asin()
}

pub fn flat_distance(a: Coord<f64>, b: Coord<f64>) -> f64 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

/// Distance from `center` to the nearest vertex of `g` (zero inside a polygon).
pub fn distance_to(g: &Geometry<f64>, center: Coord<f64>, spherical: bool) -> Option<f64> {
    if region_covers_point(g, center) {
        return Some(0.0);
    }
    let d = |c| if spherical { sphere_distance(center, c) } else { flat_distance(center, c) };
    g.coords_iter().map(d).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    #[test]
    fn legacy_pairs() {
        assert_eq!(legacy_point(&bson!([1, 2.5])), Some(Coord { x: 1.0, y: 2.5 }));
        assert_eq!(legacy_point(&bson!({"lng": 3, "lat": 4})), Some(Coord { x: 3.0, y: 4.0 }));
        assert_eq!(legacy_point(&bson!([1])), None);
        assert_eq!(legacy_point(&bson!(["a", 1])), None);
    }

    #[test]
    fn geojson_shapes() {
        assert!(matches!(
            geojson(&doc! {"type": "Point", "coordinates": [-73.97, 40.77]}),
            Ok(Geometry::Point(_))
        ));
        assert!(geojson(&doc! {"type": "Point", "coordinates": [-200, 0]})
            .unwrap_err()
            .contains("out of bounds"));
        assert!(geojson(&doc! {"type": "LineString", "coordinates": [[0, 0]]}).is_err());
        let open = doc! {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]};
        assert!(geojson(&open).unwrap_err().contains("not closed"));
        let sq = doc! {"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]]};
        assert!(matches!(geojson(&sq), Ok(Geometry::Polygon(_))));
        assert!(geojson(&doc! {"type": "Circle", "coordinates": [0, 0]}).is_err());
        let gc =
            doc! {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 1]}]};
        assert!(matches!(geojson(&gc), Ok(Geometry::GeometryCollection(_))));
    }

    #[test]
    fn point_in_polygon_with_hole() {
        let g = geojson(&doc! {"type": "Polygon", "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]],
        ]})
        .unwrap();
        assert!(region_covers_point(&g, Coord { x: 1.0, y: 1.0 }));
        assert!(region_covers_point(&g, Coord { x: 10.0, y: 5.0 }), "boundary counts");
        assert!(!region_covers_point(&g, Coord { x: 5.0, y: 5.0 }), "inside the hole");
        assert!(!region_covers_point(&g, Coord { x: 11.0, y: 5.0 }));
    }

    #[test]
    fn concave_regions() {
        // A U: the line from one arm to the other leaves the region between them.
        let u = geojson(&doc! {"type": "Polygon", "coordinates": [
            [[0, 0], [6, 0], [6, 6], [4, 6], [4, 2], [2, 2], [2, 6], [0, 6], [0, 0]],
        ]})
        .unwrap();
        let across = geojson(&doc! {"type": "LineString", "coordinates": [[1, 5], [5, 5]]}).unwrap();
        assert!(!region_covers(&u, &across));
        let along = geojson(&doc! {"type": "LineString", "coordinates": [[1, 1], [5, 1]]}).unwrap();
        assert!(region_covers(&u, &along));
    }

    #[test]
    fn distances() {
        // One degree of longitude on the equator, on mongod's earth radius.
        let d = sphere_distance(Coord { x: 0.0, y: 0.0 }, Coord { x: 1.0, y: 0.0 }) * EARTH_RADIUS_M;
        assert!((d - 111_318.845).abs() < 1.0, "{d}");
        assert_eq!(flat_distance(Coord { x: 0.0, y: 0.0 }, Coord { x: 3.0, y: 4.0 }), 5.0);
    }
}
