//! Calendar arithmetic over whole dates: `$dateDiff` and `$dateTrunc` (units, `binSize`,
//! `startOfWeek`), `$dateToParts` (calendar or ISO 8601) and `$dateFromParts` (values out of
//! range carry into the next unit, as mongod's do). All of them work in a time zone's local
//! wall clock (see `tz.rs`).

use super::date::{civil, date_ms, days_from_civil, iso_week, MS_PER_DAY};
use super::tz::{self, zone_arg, Zone};
use super::{err, find_arg, named_args, nullish, Ctx, Expr, Parser, Special};
use crate::error::Result;
use crate::query::util::{exact_i64, is_number, type_name};
use bson::{Bson, DateTime, Document};

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    match name {
        "$dateDiff" => {
            let args = named_args(
                name,
                arg,
                &["startDate", "endDate", "unit", "timezone", "startOfWeek"],
                5166301,
                5166302,
            )?;
            let need = |k: &str, code: i32| {
                find_arg(&args, k).ok_or_else(|| err(code, format!("Missing '{k}' parameter to $dateDiff")))
            };
            Ok(Expr::Special(Box::new(DateDiff {
                start: p.parse(need("startDate", 5166303)?)?,
                end: p.parse(need("endDate", 5166304)?)?,
                unit: p.parse(need("unit", 5166305)?)?,
                tz: opt(&args, "timezone", p)?,
                start_of_week: opt(&args, "startOfWeek", p)?,
            })))
        }
        "$dateTrunc" => {
            let args = named_args(
                name,
                arg,
                &["date", "unit", "binSize", "timezone", "startOfWeek"],
                5439006,
                5439007,
            )?;
            let need = |k: &str, code: i32| {
                find_arg(&args, k).ok_or_else(|| err(code, format!("Missing '{k}' parameter to $dateTrunc")))
            };
            Ok(Expr::Special(Box::new(DateTrunc {
                date: p.parse(need("date", 5439008)?)?,
                unit: p.parse(need("unit", 5439009)?)?,
                bin_size: opt(&args, "binSize", p)?,
                tz: opt(&args, "timezone", p)?,
                start_of_week: opt(&args, "startOfWeek", p)?,
            })))
        }
        "$dateToParts" => {
            let args = named_args(name, arg, &["date", "timezone", "iso8601"], 40524, 40520)?;
            let date = find_arg(&args, "date")
                .ok_or_else(|| err(40522, "Missing 'date' parameter to $dateToParts"))?;
            Ok(Expr::Special(Box::new(ToParts {
                date: p.parse(date)?,
                tz: opt(&args, "timezone", p)?,
                iso: opt(&args, "iso8601", p)?,
            })))
        }
        _ => {
            const FIELDS: [&str; 11] = [
                "year",
                "month",
                "day",
                "hour",
                "minute",
                "second",
                "millisecond",
                "isoWeekYear",
                "isoWeek",
                "isoDayOfWeek",
                "timezone",
            ];
            let args = named_args(name, arg, &FIELDS, 40519, 40518)?;
            let has = |k: &str| find_arg(&args, k).is_some();
            let iso = has("isoWeekYear");
            if iso && (has("year") || has("month") || has("day")) {
                return Err(err(40489, "$dateFromParts does not allow mixing natural dates with ISO dates"));
            }
            if !iso && !has("year") {
                return Err(err(
                    40516,
                    "$dateFromParts requires either 'year' or 'isoWeekYear' to be present",
                ));
            }
            if !iso && (has("isoWeek") || has("isoDayOfWeek")) {
                return Err(err(40489, "$dateFromParts does not allow mixing natural dates with ISO dates"));
            }
            let mut parts = Vec::new();
            for k in FIELDS.iter().take(10) {
                if let Some(v) = find_arg(&args, k) {
                    parts.push((*k, p.parse(v)?));
                }
            }
            Ok(Expr::Special(Box::new(FromParts { parts, tz: opt(&args, "timezone", p)?, iso })))
        }
    }
}

fn opt(args: &[(&str, &Bson)], k: &str, p: &mut Parser) -> Result<Option<Expr>> {
    find_arg(args, k).map(|v| p.parse(v)).transpose()
}

/// The zone of an optional `timezone` argument; `None` when it evaluates to null.
fn zone_of(tz: &Option<Expr>, c: &mut Ctx) -> Result<Option<Zone>> {
    match tz {
        Some(t) => zone_arg(&t.value(c)?),
        None => Ok(Some(tz::UTC)),
    }
}

const UNITS: &[&str] =
    &["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"];

fn unit_of(op: &str, v: Option<Bson>) -> Result<Option<String>> {
    match v {
        Some(Bson::String(u)) if UNITS.contains(&u.as_str()) => Ok(Some(u)),
        Some(Bson::String(u)) => {
            Err(err(5439014, format!("{op} parameter 'unit' value cannot be recognized as a time unit: {u}")))
        }
        v if nullish(&v) => Ok(None),
        Some(other) => {
            Err(err(5439013, format!("{op} requires 'unit' to be a string, but got {}", type_name(&other))))
        }
        None => Ok(None),
    }
}

/// 0 = Sunday ... 6 = Saturday, from a full or three-letter day name (any case).
fn day_of_week(op: &str, v: Option<Bson>) -> Result<Option<u32>> {
    match v {
        Some(Bson::String(s)) => {
            let l = s.to_ascii_lowercase();
            let days = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
            days.iter()
                .position(|d| *d == l || (l.len() == 3 && d.starts_with(&l)))
                .map(|i| Some(i as u32))
                .ok_or_else(|| {
                    err(
                        5439016,
                        format!(
                            "{op} parameter 'startOfWeek' value cannot be recognized as a day of a week: {s}"
                        ),
                    )
                })
        }
        v if nullish(&v) => Ok(None),
        Some(other) => Err(err(
            5439015,
            format!("{op} requires 'startOfWeek' to be a string, but got {}", type_name(&other)),
        )),
        None => Ok(None),
    }
}

fn date_arg(op: &str, which: &str, v: &Bson, code: i32) -> Result<i64> {
    match v {
        Bson::DateTime(_) | Bson::ObjectId(_) | Bson::Timestamp(_) => date_ms(op, v),
        other => {
            Err(err(code, format!("{op} requires '{which}' to be a date, but got {}", type_name(other))))
        }
    }
}

/// Months since year 0 of a local time.
fn month_index(local: i64) -> i64 {
    let c = civil(local);
    c.year * 12 + i64::from(c.month) - 1
}

/// Days since the epoch of the week (starting on `sow`) that holds local day `days`.
fn week_start(days: i64, sow: u32) -> i64 {
    let weekday = (days + 4).rem_euclid(7); // 0 = Sunday
    days - (weekday - i64::from(sow)).rem_euclid(7)
}

struct DateDiff {
    start: Expr,
    end: Expr,
    unit: Expr,
    tz: Option<Expr>,
    start_of_week: Option<Expr>,
}

impl Special for DateDiff {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let (s, e, u) = (self.start.eval(c)?, self.end.eval(c)?, self.unit.eval(c)?);
        let Some(zone) = zone_of(&self.tz, c)? else { return Ok(Some(Bson::Null)) };
        let sow = match &self.start_of_week {
            Some(x) => day_of_week("$dateDiff", x.eval(c)?)?,
            None => Some(0),
        };
        if nullish(&s) || nullish(&e) {
            return Ok(Some(Bson::Null));
        }
        let Some(unit) = unit_of("$dateDiff", u)? else { return Ok(Some(Bson::Null)) };
        let Some(sow) = sow else { return Ok(Some(Bson::Null)) };
        let s = date_arg("$dateDiff", "startDate", s.as_ref().unwrap_or(&Bson::Null), 5166307)?;
        let e = date_arg("$dateDiff", "endDate", e.as_ref().unwrap_or(&Bson::Null), 5166307)?;
        let (ls, le) = (zone.to_local(s), zone.to_local(e));
        let floor_div = |a: i64, b: i64| a.div_euclid(b);
        let n = match unit.as_str() {
            "year" => civil(le).year - civil(ls).year,
            "quarter" => floor_div(month_index(le), 3) - floor_div(month_index(ls), 3),
            "month" => month_index(le) - month_index(ls),
            "week" => {
                (week_start(floor_div(le, MS_PER_DAY), sow) - week_start(floor_div(ls, MS_PER_DAY), sow)) / 7
            }
            "day" => floor_div(le, MS_PER_DAY) - floor_div(ls, MS_PER_DAY),
            "hour" => floor_div(le, 3_600_000) - floor_div(ls, 3_600_000),
            "minute" => floor_div(e, 60_000) - floor_div(s, 60_000),
            "second" => floor_div(e, 1000) - floor_div(s, 1000),
            _ => e.saturating_sub(s),
        };
        Ok(Some(Bson::Int64(n)))
    }
}

struct DateTrunc {
    date: Expr,
    unit: Expr,
    bin_size: Option<Expr>,
    tz: Option<Expr>,
    start_of_week: Option<Expr>,
}

/// 2000-01-01T00:00:00 local: the origin of the bins, as mongod's.
const REFERENCE_DAYS: i64 = 10_957;

impl Special for DateTrunc {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let d = self.date.eval(c)?;
        let u = self.unit.eval(c)?;
        let bin = match &self.bin_size {
            Some(b) => b.eval(c)?,
            None => Some(Bson::Int64(1)),
        };
        let Some(zone) = zone_of(&self.tz, c)? else { return Ok(Some(Bson::Null)) };
        let sow = match &self.start_of_week {
            Some(x) => day_of_week("$dateTrunc", x.eval(c)?)?,
            None => Some(0),
        };
        if nullish(&d) || nullish(&bin) {
            return Ok(Some(Bson::Null));
        }
        let Some(unit) = unit_of("$dateTrunc", u)? else { return Ok(Some(Bson::Null)) };
        let Some(sow) = sow else { return Ok(Some(Bson::Null)) };
        let bin = bin.as_ref().filter(|b| is_number(b)).and_then(exact_i64).filter(|n| *n > 0).ok_or_else(
            || err(5439017, "$dateTrunc requires 'binSize' to be a 64-bit integer greater than 0"),
        )?;
        let ms = date_arg("$dateTrunc", "date", d.as_ref().unwrap_or(&Bson::Null), 5439012)?;
        let local = zone.to_local(ms);
        let ref_local = REFERENCE_DAYS * MS_PER_DAY;
        let floor_to = |v: i64, origin: i64, step: i64| -> i64 {
            origin + (v - origin).div_euclid(step).saturating_mul(step)
        };
        let months = |per: i64| -> i64 {
            let m = month_index(local);
            let origin = 2000 * 12;
            let start = floor_to(m, origin, per.saturating_mul(bin));
            let (y, mo) = (start.div_euclid(12), (start.rem_euclid(12) + 1) as u32);
            days_from_civil(y, mo, 1) * MS_PER_DAY
        };
        let out_local = match unit.as_str() {
            "year" => months(12),
            "quarter" => months(3),
            "month" => months(1),
            "week" => {
                // Bins start on the first `startOfWeek` day on or after the reference.
                let origin_days =
                    REFERENCE_DAYS + (i64::from(sow) - (REFERENCE_DAYS + 4).rem_euclid(7)).rem_euclid(7);
                let days = local.div_euclid(MS_PER_DAY);
                floor_to(days, origin_days, 7i64.saturating_mul(bin)) * MS_PER_DAY
            }
            "day" => floor_to(local, ref_local, MS_PER_DAY.saturating_mul(bin)),
            "hour" => floor_to(local, ref_local, 3_600_000i64.saturating_mul(bin)),
            "minute" => floor_to(local, ref_local, 60_000i64.saturating_mul(bin)),
            "second" => floor_to(local, ref_local, 1000i64.saturating_mul(bin)),
            _ => floor_to(local, ref_local, bin),
        };
        Ok(Some(Bson::DateTime(DateTime::from_millis(zone.to_utc(out_local)))))
    }
}

struct ToParts {
    date: Expr,
    tz: Option<Expr>,
    iso: Option<Expr>,
}

impl Special for ToParts {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let d = self.date.eval(c)?;
        let Some(zone) = zone_of(&self.tz, c)? else { return Ok(Some(Bson::Null)) };
        let iso = match &self.iso {
            Some(e) => match e.eval(c)? {
                Some(Bson::Boolean(b)) => b,
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                Some(other) => {
                    return Err(err(
                        40521,
                        format!("iso8601 must evaluate to a bool, found {}", type_name(&other)),
                    ))
                }
                None => false,
            },
            None => false,
        };
        if nullish(&d) {
            return Ok(Some(Bson::Null));
        }
        let ms = date_ms("$dateToParts", d.as_ref().unwrap_or(&Bson::Null))?;
        let cv = civil(zone.to_local(ms));
        let mut out = Document::new();
        if iso {
            let (wy, w) = iso_week(&cv);
            out.insert("isoWeekYear", Bson::Int32(wy as i32));
            out.insert("isoWeek", Bson::Int32(w as i32));
            out.insert("isoDayOfWeek", Bson::Int32(((cv.weekday + 6) % 7 + 1) as i32));
        } else {
            out.insert("year", Bson::Int32(cv.year as i32));
            out.insert("month", Bson::Int32(cv.month as i32));
            out.insert("day", Bson::Int32(cv.day as i32));
        }
        out.insert("hour", Bson::Int32(cv.hour as i32));
        out.insert("minute", Bson::Int32(cv.minute as i32));
        out.insert("second", Bson::Int32(cv.second as i32));
        out.insert("millisecond", Bson::Int32(cv.millis as i32));
        Ok(Some(Bson::Document(out)))
    }
}

struct FromParts {
    parts: Vec<(&'static str, Expr)>,
    tz: Option<Expr>,
    iso: bool,
}

impl Special for FromParts {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let mut vals = [0i64; 10];
        // month, day, isoWeek, isoDayOfWeek default to 1.
        vals[1] = 1;
        vals[2] = 1;
        vals[8] = 1;
        vals[9] = 1;
        const NAMES: [&str; 10] = [
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "millisecond",
            "isoWeekYear",
            "isoWeek",
            "isoDayOfWeek",
        ];
        for (name, e) in &self.parts {
            let v = e.eval(c)?;
            if nullish(&v) {
                return Ok(Some(Bson::Null));
            }
            let v = v.unwrap_or(Bson::Null);
            let n = exact_i64(&v).filter(|_| is_number(&v)).ok_or_else(|| {
                err(
                    40515,
                    format!(
                        "'{name}' must evaluate to an integer, found {} with value {}",
                        type_name(&v),
                        crate::query::util::value_to_string(&v)
                    ),
                )
            })?;
            let (lo, hi) = if matches!(*name, "year" | "isoWeekYear") { (1, 9999) } else { (-32768, 32767) };
            if n < lo || n > hi {
                return Err(if lo == 1 {
                    err(
                        40523,
                        format!("'{name}' must evaluate to an integer in the range {lo} to {hi}, found {n}"),
                    )
                } else {
                    err(31034, format!("'{name}' must evaluate to a value in the range [{lo}, {hi}]; value {n} is not in range"))
                });
            }
            if let Some(i) = NAMES.iter().position(|x| x == name) {
                vals[i] = n;
            }
        }
        let Some(zone) = zone_of(&self.tz, c)? else { return Ok(Some(Bson::Null)) };
        let days = if self.iso {
            // Monday of ISO week 1 is the Monday of the week holding January 4th.
            let jan4 = days_from_civil(vals[7], 1, 4);
            let monday1 = jan4 - (jan4 + 3).rem_euclid(7);
            monday1 + (vals[8] - 1) * 7 + (vals[9] - 1)
        } else {
            let months = vals[0] * 12 + vals[1] - 1;
            let (y, m) = (months.div_euclid(12), (months.rem_euclid(12) + 1) as u32);
            days_from_civil(y, m, 1) + vals[2] - 1
        };
        let local = days * MS_PER_DAY + vals[3] * 3_600_000 + vals[4] * 60_000 + vals[5] * 1000 + vals[6];
        Ok(Some(Bson::DateTime(DateTime::from_millis(zone.to_utc(local)))))
    }
}

/// Parses `s` with a `$dateFromString` format: the local milliseconds, and the UTC offset in
/// minutes when the string carries one (`%z`, `%Z`). `None` when `s` does not match.
pub fn parse_with_format(s: &str, f: &str) -> Option<(i64, Option<i64>)> {
    let b = s.as_bytes();
    let mut i = 0usize;
    let digits = |i: &mut usize, max: usize| -> Option<i64> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        s.get(start..*i)?.parse().ok()
    };
    let (mut year, mut month, mut day) = (None, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut milli) = (0i64, 0i64, 0i64, 0i64);
    let (mut yday, mut iso_year, mut iso_week, mut iso_day) = (None, None, 1i64, 1i64);
    let mut offset = None;
    let mut chars = f.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            let mut buf = [0u8; 4];
            let lit = ch.encode_utf8(&mut buf).as_bytes();
            if b.get(i..i + lit.len())? != lit {
                return None;
            }
            i += lit.len();
            continue;
        }
        match chars.next()? {
            'Y' => year = Some(digits(&mut i, 4)?),
            'G' => iso_year = Some(digits(&mut i, 4)?),
            'm' => month = digits(&mut i, 2)?,
            'd' => day = digits(&mut i, 2)?,
            'H' => hour = digits(&mut i, 2)?,
            'M' => minute = digits(&mut i, 2)?,
            'S' => second = digits(&mut i, 2)?,
            'L' => {
                let start = i;
                let v = digits(&mut i, 3)?;
                milli = v * 10i64.pow(3 - (i - start) as u32);
            }
            'j' => yday = Some(digits(&mut i, 3)?),
            'V' => iso_week = digits(&mut i, 2)?,
            'u' => iso_day = digits(&mut i, 1)?,
            'U' | 'w' => {
                digits(&mut i, 2)?;
            }
            'b' | 'B' => {
                const NAMES: [&str; 12] =
                    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
                let rest = s.get(i..)?.to_ascii_lowercase();
                let idx = NAMES.iter().position(|n| rest.starts_with(n))?;
                month = idx as i64 + 1;
                i += 3;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
            }
            'z' => {
                let start = i;
                if !matches!(b.get(i), Some(b'+' | b'-')) {
                    return None;
                }
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b':') {
                    i += 1;
                }
                offset = Some(tz::parse_offset(s.get(start..i)?)?);
            }
            'Z' => {
                let sign = match b.get(i) {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return None,
                };
                i += 1;
                offset = Some(sign * digits(&mut i, 4)?);
            }
            '%' => {
                if b.get(i) != Some(&b'%') {
                    return None;
                }
                i += 1;
            }
            _ => return None,
        }
    }
    if i != b.len() || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = match (year, iso_year, yday) {
        (Some(y), _, Some(yd)) => days_from_civil(y, 1, 1) + yd - 1,
        (Some(y), _, None) => {
            if day < 1 || day > i64::from(super::date::days_in_month(y, month as u32)) {
                return None;
            }
            days_from_civil(y, month as u32, day as u32)
        }
        (None, Some(y), _) => {
            let jan4 = days_from_civil(y, 1, 4);
            jan4 - (jan4 + 3).rem_euclid(7) + (iso_week - 1) * 7 + (iso_day - 1)
        }
        (None, None, _) => return None,
    };
    Some((days * MS_PER_DAY + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli, offset))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, doc, Bson, DateTime};

    fn date(s: &str) -> Bson {
        Bson::DateTime(DateTime::parse_rfc3339_str(s).unwrap())
    }

    #[test]
    fn diff_counts_boundaries() {
        let d = doc! {"a": date("2020-12-31T23:59:00Z"), "b": date("2021-01-01T00:01:00Z")};
        let diff = |unit: &str| {
            eval_on(bson!({"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": unit}}), &d).unwrap()
        };
        assert_eq!(diff("year"), Some(Bson::Int64(1)));
        assert_eq!(diff("month"), Some(Bson::Int64(1)));
        assert_eq!(diff("day"), Some(Bson::Int64(1)));
        assert_eq!(diff("minute"), Some(Bson::Int64(2)));
        assert_eq!(diff("millisecond"), Some(Bson::Int64(120_000)));
        // In New York both instants are on 2020-12-31.
        let ny = eval_on(
            bson!({"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": "day", "timezone": "America/New_York"}}),
            &d,
        );
        assert_eq!(ny.unwrap(), Some(Bson::Int64(0)));
        assert_eq!(
            code(eval_on(
                bson!({"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": "fortnight"}}),
                &d
            )),
            5439014
        );
    }

    #[test]
    fn trunc_and_parts() {
        let d = doc! {"a": date("2021-03-20T11:30:05.500Z")};
        let t = |spec: Bson| eval_on(bson!({"$dateTrunc": spec}), &d).unwrap();
        assert_eq!(t(bson!({"date": "$a", "unit": "hour"})), Some(date("2021-03-20T11:00:00Z")));
        assert_eq!(
            t(bson!({"date": "$a", "unit": "month", "binSize": 2})),
            Some(date("2021-03-01T00:00:00Z"))
        );
        assert_eq!(t(bson!({"date": "$a", "unit": "quarter"})), Some(date("2021-01-01T00:00:00Z")));
        // 2021-03-20 is a Saturday; weeks start on Monday the 15th.
        assert_eq!(
            t(bson!({"date": "$a", "unit": "week", "startOfWeek": "mon"})),
            Some(date("2021-03-15T00:00:00Z"))
        );
        assert_eq!(
            t(bson!({"date": "$a", "unit": "day", "timezone": "America/New_York"})),
            Some(date("2021-03-20T04:00:00Z"))
        );
        assert_eq!(
            eval_on(bson!({"$dateToParts": {"date": "$a", "iso8601": true}}), &d).unwrap(),
            Some(
                bson!({"isoWeekYear": 2021, "isoWeek": 11, "isoDayOfWeek": 6, "hour": 11, "minute": 30, "second": 5, "millisecond": 500})
            )
        );
        assert_eq!(
            ev(bson!({"$dateFromParts": {"year": 2017, "month": 14, "day": 1, "hour": 12}})).unwrap(),
            Some(date("2018-02-01T12:00:00Z"))
        );
        assert_eq!(
            ev(bson!({"$dateFromParts": {"isoWeekYear": 2017, "isoWeek": 1, "isoDayOfWeek": 1}})).unwrap(),
            Some(date("2017-01-02T00:00:00Z"))
        );
        assert_eq!(
            ev(bson!({"$dateFromParts": {"year": 2016, "month": 12, "day": 31, "timezone": "America/New_York"}})).unwrap(),
            Some(date("2016-12-31T05:00:00Z"))
        );
        assert_eq!(code(ev(bson!({"$dateFromParts": {"year": 2016, "isoWeek": 3}}))), 40489);
        assert_eq!(code(ev(bson!({"$dateFromParts": {"year": 0}}))), 40523);
    }

    #[test]
    fn from_string_with_format() {
        let f = |s: &str, fmt: &str, tz: Bson| {
            ev(bson!({"$dateFromString": {"dateString": s, "format": fmt, "timezone": tz}})).unwrap()
        };
        assert_eq!(f("15-06-2018", "%d-%m-%Y", bson!("UTC")), Some(date("2018-06-15T00:00:00Z")));
        assert_eq!(
            f("2017-02-08 12:10:40.787", "%Y-%m-%d %H:%M:%S.%L", bson!("America/New_York")),
            Some(date("2017-02-08T17:10:40.787Z"))
        );
        assert_eq!(
            f("2017-02-08T12:10:40 +0530", "%Y-%m-%dT%H:%M:%S %z", bson!("UTC")),
            Some(date("2017-02-08T06:40:40Z"))
        );
        assert_eq!(
            code(ev(bson!({"$dateFromString": {"dateString": "2017/02/08", "format": "%Y-%m-%d"}}))),
            241
        );
        assert_eq!(
            ev(bson!({"$dateFromString": {"dateString": "nope", "format": "%Y", "onError": "bad"}})).unwrap(),
            Some(bson!("bad"))
        );
    }
}
