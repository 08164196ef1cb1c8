//! Date expressions: the part extractors (`$year` ... `$isoWeek`), `$dateToString`,
//! `$dateFromString`, `$dateAdd`/`$dateSubtract`. Time zones (UTC offsets and IANA names) are in
//! `tz.rs`; `$dateDiff`, `$dateTrunc` and the parts conversions in `date_parts.rs`.

use super::tz::{self, parse_offset, zone_arg};
use super::{err, find_arg, named_args, nullish, type_of, Ctx, Expr, Parser, Special};
use crate::error::Result;
use bson::{Bson, DateTime};

pub const MS_PER_DAY: i64 = 86_400_000;

pub fn parse(name: &str, arg: &Bson, p: &mut Parser) -> Option<Result<Expr>> {
    let part = match name {
        "$year" => Part::Year,
        "$month" => Part::Month,
        "$dayOfMonth" => Part::DayOfMonth,
        "$hour" => Part::Hour,
        "$minute" => Part::Minute,
        "$second" => Part::Second,
        "$millisecond" => Part::Millisecond,
        "$dayOfWeek" => Part::DayOfWeek,
        "$dayOfYear" => Part::DayOfYear,
        "$week" => Part::Week,
        "$isoWeek" => Part::IsoWeek,
        "$isoWeekYear" => Part::IsoWeekYear,
        "$isoDayOfWeek" => Part::IsoDayOfWeek,
        "$dateToString" => return Some(parse_to_string(arg, p)),
        "$dateFromString" => return Some(parse_from_string(arg, p)),
        "$dateAdd" | "$dateSubtract" => return Some(parse_add(name, arg, p)),
        "$dateDiff" | "$dateTrunc" | "$dateToParts" | "$dateFromParts" => {
            return Some(super::date_parts::parse(name, arg, p))
        }
        _ => return None,
    };
    Some(parse_part(name, part, arg, p))
}

#[derive(Clone, Copy)]
enum Part {
    Year,
    Month,
    DayOfMonth,
    Hour,
    Minute,
    Second,
    Millisecond,
    DayOfWeek,
    DayOfYear,
    Week,
    IsoWeek,
    IsoWeekYear,
    IsoDayOfWeek,
}

/// Broken-down UTC (or offset) time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    /// 1-based.
    pub yday: u32,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
    Civil {
        year,
        month,
        day,
        hour: (rem / 3_600_000) as u32,
        minute: (rem / 60_000 % 60) as u32,
        second: (rem / 1000 % 60) as u32,
        millis: (rem % 1000) as u32,
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

/// ISO-8601 week-numbering year and week of a date.
pub fn iso_week(c: &Civil) -> (i64, u32) {
    let iso_dow = (c.weekday + 6) % 7 + 1;
    let week = (c.yday as i64 - iso_dow as i64 + 10) / 7;
    if week < 1 {
        (c.year - 1, weeks_in_year(c.year - 1))
    } else if week > i64::from(weeks_in_year(c.year)) {
        (c.year + 1, 1)
    } else {
        (c.year, week as u32)
    }
}

pub fn weeks_in_year(y: i64) -> u32 {
    let jan1 = (days_from_civil(y, 1, 1) + 4).rem_euclid(7); // 0 = Sunday
    if jan1 == 4 || (is_leap(y) && jan1 == 3) {
        53
    } else {
        52
    }
}

/// `2018-03-20T11:00:00.000Z`.
pub fn iso_string(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// Parses ISO-8601 date strings: `2018-03-20`, `2018-03-20T11:00`, `...:SS`, `...:SS.mmm`, with
/// `Z`, `+hh:mm`, `+hhmm` or no zone (UTC); a space may separate date and time.
pub fn parse_date_string(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = num(0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = num(5, 2)? as u32;
    let day = num(8, 2)? as u32;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    let mut i = 10;
    if i < b.len() && (b[i] == b'T' || b[i] == b' ') {
        let h = num(i + 1, 2)?;
        if b.get(i + 3) != Some(&b':') {
            return None;
        }
        let m = num(i + 4, 2)?;
        i += 6;
        let mut sec = 0;
        let mut milli = 0;
        if b.get(i) == Some(&b':') {
            sec = num(i + 1, 2)?;
            i += 3;
            if b.get(i) == Some(&b'.') {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                let frac = &s[start..end.min(start + 3)];
                milli = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
                i = end;
            }
        }
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        ms += h * 3_600_000 + m * 60_000 + sec * 1000 + milli;
    }
    let rest = &s[i..];
    let offset = match rest {
        "" | "Z" => 0,
        _ => parse_offset(rest)?,
    };
    Some(ms - offset * 60_000)
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// The milliseconds of a date-like value (date, ObjectId, Timestamp).
pub fn date_ms(name: &str, v: &Bson) -> Result<i64> {
    match v {
        Bson::DateTime(d) => Ok(d.timestamp_millis()),
        Bson::ObjectId(o) => Ok(o.timestamp().timestamp_millis()),
        Bson::Timestamp(t) => Ok(i64::from(t.time) * 1000),
        other => {
            let _ = name;
            Err(err(
                16006,
                format!("can't convert from BSON type {} to Date", crate::query::util::type_name(other)),
            ))
        }
    }
}

struct DatePart {
    name: &'static str,
    part: Part,
    date: Expr,
    tz: Option<Expr>,
}

fn parse_part(name: &str, part: Part, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let st: &'static str = match part {
        Part::Year => "$year",
        Part::Month => "$month",
        Part::DayOfMonth => "$dayOfMonth",
        Part::Hour => "$hour",
        Part::Minute => "$minute",
        Part::Second => "$second",
        Part::Millisecond => "$millisecond",
        Part::DayOfWeek => "$dayOfWeek",
        Part::DayOfYear => "$dayOfYear",
        Part::Week => "$week",
        Part::IsoWeek => "$isoWeek",
        Part::IsoWeekYear => "$isoWeekYear",
        Part::IsoDayOfWeek => "$isoDayOfWeek",
    };
    let (date, tz) = match arg {
        Bson::Document(d) if d.keys().next().is_some_and(|k| !k.starts_with('$')) => {
            let args = named_args(name, arg, &["date", "timezone"], 40629, 40535)?;
            let date = find_arg(&args, "date")
                .ok_or_else(|| err(40539, format!("missing 'date' argument to {name}")))?;
            (p.parse(date)?, find_arg(&args, "timezone").map(|t| p.parse(t)).transpose()?)
        }
        _ => {
            let mut a = p.args_exact(name, arg, 1)?;
            (a.remove(0), None)
        }
    };
    Ok(Expr::Special(Box::new(DatePart { name: st, part, date, tz })))
}

impl Special for DatePart {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let d = self.date.eval(c)?;
        if nullish(&d) {
            return Ok(Some(Bson::Null));
        }
        let zone = match &self.tz {
            Some(t) => match zone_arg(&t.value(c)?)? {
                Some(z) => z,
                None => return Ok(Some(Bson::Null)),
            },
            None => tz::UTC,
        };
        let ms = zone.to_local(date_ms(self.name, d.as_ref().unwrap_or(&Bson::Null))?);
        let cv = civil(ms);
        let v: i64 = match self.part {
            Part::Year => cv.year,
            Part::Month => i64::from(cv.month),
            Part::DayOfMonth => i64::from(cv.day),
            Part::Hour => i64::from(cv.hour),
            Part::Minute => i64::from(cv.minute),
            Part::Second => i64::from(cv.second),
            Part::Millisecond => i64::from(cv.millis),
            Part::DayOfWeek => i64::from(cv.weekday + 1),
            Part::DayOfYear => i64::from(cv.yday),
            Part::Week => (i64::from(cv.yday) - 1 + 7 - i64::from(cv.weekday)) / 7,
            Part::IsoWeek => i64::from(iso_week(&cv).1),
            Part::IsoWeekYear => iso_week(&cv).0,
            Part::IsoDayOfWeek => i64::from((cv.weekday + 6) % 7 + 1),
        };
        Ok(Some(match self.part {
            Part::IsoWeekYear => Bson::Int64(v),
            _ => Bson::Int32(v as i32),
        }))
    }
}

struct ToString {
    date: Expr,
    format: Option<Expr>,
    tz: Option<Expr>,
    on_null: Option<Expr>,
}

fn parse_to_string(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args("$dateToString", arg, &["date", "format", "timezone", "onNull"], 18629, 18534)?;
    let date =
        find_arg(&args, "date").ok_or_else(|| err(18628, "Missing 'date' parameter to $dateToString"))?;
    let format = match find_arg(&args, "format") {
        Some(Bson::String(f)) => {
            check_format(f)?;
            Some(Expr::Const(Bson::String(f.clone())))
        }
        Some(other) => Some(p.parse(other)?),
        None => None,
    };
    Ok(Expr::Special(Box::new(ToString {
        date: p.parse(date)?,
        format,
        tz: find_arg(&args, "timezone").map(|v| p.parse(v)).transpose()?,
        on_null: find_arg(&args, "onNull").map(|v| p.parse(v)).transpose()?,
    })))
}

pub fn check_format(f: &str) -> Result<()> {
    let mut chars = f.chars();
    while let Some(ch) = chars.next() {
        if ch == '%' {
            match chars.next() {
                None => return Err(err(18535, "Unmatched '%' at end of format string")),
                Some(
                    'd' | 'G' | 'H' | 'j' | 'L' | 'm' | 'M' | 'S' | 'u' | 'U' | 'V' | 'w' | 'Y' | 'z' | 'Z'
                    | '%' | 'b' | 'B',
                ) => {}
                Some(x) => {
                    return Err(err(18536, format!("Invalid format character '%{x}' in format string")))
                }
            }
        }
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Formats a date (already shifted by `offset` minutes) with mongod's specifiers.
pub fn format_date(ms_utc: i64, offset: i64, f: &str) -> Result<String> {
    let cv = civil(ms_utc + offset * 60_000);
    let mut out = String::new();
    let mut chars = f.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err(err(18535, "Unmatched '%' at end of format string"));
        };
        match spec {
            'Y' => {
                if !(0..=9999).contains(&cv.year) {
                    return Err(err(18537, "Could not convert date to string: date component was outside the supported range of 0-9999"));
                }
                out.push_str(&format!("{:04}", cv.year))
            }
            'm' => out.push_str(&format!("{:02}", cv.month)),
            'd' => out.push_str(&format!("{:02}", cv.day)),
            'H' => out.push_str(&format!("{:02}", cv.hour)),
            'M' => out.push_str(&format!("{:02}", cv.minute)),
            'S' => out.push_str(&format!("{:02}", cv.second)),
            'L' => out.push_str(&format!("{:03}", cv.millis)),
            'j' => out.push_str(&format!("{:03}", cv.yday)),
            'w' => out.push_str(&format!("{}", cv.weekday + 1)),
            'u' => out.push_str(&format!("{}", (cv.weekday + 6) % 7 + 1)),
            'U' => out.push_str(&format!("{:02}", (cv.yday - 1 + 7 - cv.weekday) / 7)),
            'V' => out.push_str(&format!("{:02}", iso_week(&cv).1)),
            'G' => out.push_str(&format!("{:04}", iso_week(&cv).0)),
            'z' => {
                let sign = if offset < 0 { '-' } else { '+' };
                out.push_str(&format!("{sign}{:02}{:02}", offset.abs() / 60, offset.abs() % 60));
            }
            'Z' => out.push_str(&format!("{}{}", if offset < 0 { "-" } else { "+" }, offset.abs())),
            'b' => out.push_str(MONTHS[(cv.month as usize).saturating_sub(1) % 12].get(..3).unwrap_or("")),
            'B' => out.push_str(MONTHS[(cv.month as usize).saturating_sub(1) % 12]),
            '%' => out.push('%'),
            x => return Err(err(18536, format!("Invalid format character '%{x}' in format string"))),
        }
    }
    Ok(out)
}

impl Special for ToString {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let d = self.date.eval(c)?;
        let zone = match &self.tz {
            Some(t) => match zone_arg(&t.value(c)?)? {
                Some(z) => z,
                None => return Ok(Some(Bson::Null)),
            },
            None => tz::UTC,
        };
        let format = match &self.format {
            Some(f) => match f.eval(c)? {
                Some(Bson::String(s)) => Some(s),
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                v => {
                    return Err(err(
                        18533,
                        format!("$dateToString requires that 'format' be a string, found: {}", type_of(&v)),
                    ))
                }
            },
            None => None,
        };
        if nullish(&d) {
            return match &self.on_null {
                Some(e) => e.eval(c),
                None => Ok(Some(Bson::Null)),
            };
        }
        let ms = date_ms("$dateToString", d.as_ref().unwrap_or(&Bson::Null))?;
        let offset = zone.offset_at(ms);
        let f = format.as_deref().unwrap_or(if zone == tz::UTC {
            "%Y-%m-%dT%H:%M:%S.%LZ"
        } else {
            "%Y-%m-%dT%H:%M:%S.%L"
        });
        Ok(Some(Bson::String(format_date(ms, offset, f)?)))
    }
}

struct FromString {
    input: Expr,
    format: Option<Expr>,
    tz: Option<Expr>,
    on_error: Option<Expr>,
    on_null: Option<Expr>,
}

fn parse_from_string(arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args(
        "$dateFromString",
        arg,
        &["dateString", "timezone", "format", "onError", "onNull"],
        40540,
        40541,
    )?;
    let input = find_arg(&args, "dateString")
        .ok_or_else(|| err(40542, "Missing 'dateString' parameter to $dateFromString"))?;
    Ok(Expr::Special(Box::new(FromString {
        input: p.parse(input)?,
        format: find_arg(&args, "format").map(|v| p.parse(v)).transpose()?,
        tz: find_arg(&args, "timezone").map(|v| p.parse(v)).transpose()?,
        on_error: find_arg(&args, "onError").map(|v| p.parse(v)).transpose()?,
        on_null: find_arg(&args, "onNull").map(|v| p.parse(v)).transpose()?,
    })))
}

impl Special for FromString {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let v = self.input.eval(c)?;
        if nullish(&v) {
            return match &self.on_null {
                Some(e) => e.eval(c),
                None => Ok(Some(Bson::Null)),
            };
        }
        let zone = match &self.tz {
            Some(t) => zone_arg(&t.value(c)?)?.unwrap_or(tz::UTC),
            None => tz::UTC,
        };
        let fail = |msg: String, c: &mut Ctx| -> Result<Option<Bson>> {
            match &self.on_error {
                Some(e) => e.eval(c),
                None => Err(err(241, msg)),
            }
        };
        let format = match &self.format {
            None => None,
            Some(f) => match f.eval(c)? {
                Some(Bson::String(f)) => Some(f),
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                v => {
                    return Err(err(
                        40684,
                        format!("$dateFromString requires that 'format' be a string, found: {}", type_of(&v)),
                    ))
                }
            },
        };
        if let (Some(f), Some(Bson::String(s))) = (&format, &v) {
            check_format(f)?;
            return match super::date_parts::parse_with_format(s, f) {
                Some((local, Some(offset))) => {
                    Ok(Some(Bson::DateTime(DateTime::from_millis(local - offset * 60_000))))
                }
                Some((local, None)) => Ok(Some(Bson::DateTime(DateTime::from_millis(zone.to_utc(local))))),
                None => fail(format!("Error parsing date string '{s}' with format '{f}'"), c),
            };
        }
        match v {
            Some(Bson::String(s)) => {
                let has_zone = s.ends_with('Z')
                    || s.get(10..).is_some_and(|t| t.contains('+') || t.matches('-').count() > 0);
                match parse_date_string(&s) {
                    Some(ms) => {
                        let ms = if has_zone { ms } else { zone.to_utc(ms) };
                        Ok(Some(Bson::DateTime(DateTime::from_millis(ms))))
                    }
                    None => fail(format!("Error parsing date string '{s}'"), c),
                }
            }
            other => fail(
                format!("$dateFromString requires that 'dateString' be a string, found: {}", type_of(&other)),
                c,
            ),
        }
    }
}

struct DateAdd {
    subtract: bool,
    start: Expr,
    unit: Expr,
    amount: Expr,
    tz: Option<Expr>,
}

fn parse_add(name: &str, arg: &Bson, p: &mut Parser) -> Result<Expr> {
    let args = named_args(name, arg, &["startDate", "unit", "amount", "timezone"], 5166400, 5166401)?;
    let get = |k: &str| {
        find_arg(&args, k).ok_or_else(|| err(5166402, format!("{name} requires '{k}' to be present")))
    };
    Ok(Expr::Special(Box::new(DateAdd {
        subtract: name == "$dateSubtract",
        start: p.parse(get("startDate")?)?,
        unit: p.parse(get("unit")?)?,
        amount: p.parse(get("amount")?)?,
        tz: find_arg(&args, "timezone").map(|v| p.parse(v)).transpose()?,
    })))
}

impl Special for DateAdd {
    fn eval(&self, c: &mut Ctx) -> Result<Option<Bson>> {
        let start = self.start.eval(c)?;
        let unit = self.unit.eval(c)?;
        let amount = self.amount.eval(c)?;
        if nullish(&start) || nullish(&unit) || nullish(&amount) {
            return Ok(Some(Bson::Null));
        }
        let zone = match &self.tz {
            Some(t) => zone_arg(&t.value(c)?)?.unwrap_or(tz::UTC),
            None => tz::UTC,
        };
        let ms = date_ms("$dateAdd", start.as_ref().unwrap_or(&Bson::Null))?;
        let Some(Bson::String(unit)) = unit else {
            return Err(err(5166403, "unit must be a string"));
        };
        let mut n = amount
            .as_ref()
            .and_then(crate::query::util::exact_i64)
            .ok_or_else(|| err(5166405, "amount must be an integer"))?;
        if self.subtract {
            n = n.checked_neg().ok_or_else(|| err(5166406, "amount overflow"))?;
        }
        let out = add_in_zone(ms, &unit, n, zone)?;
        Ok(Some(Bson::DateTime(DateTime::from_millis(out))))
    }
}

/// `ms` plus `n` calendar `unit`s, counted in the zone `offset` minutes east of UTC (months,
/// quarters and years clamp the day to the month's length, as mongod's `$dateAdd`).
pub fn add_units(ms: i64, unit: &str, n: i64, offset: i64) -> Result<i64> {
    add_in_zone(ms, unit, n, tz::Zone::Fixed(offset))
}

/// `add_units` in a zone: days and longer units move the local wall clock (so a day is 23 or
/// 25 hours across a DST change), shorter units move the instant.
pub fn add_in_zone(ms: i64, unit: &str, n: i64, zone: tz::Zone) -> Result<i64> {
    let overflow = || err(5166406, "date overflow in $dateAdd");
    let fixed =
        |per: i64| -> Result<i64> { n.checked_mul(per).and_then(|d| ms.checked_add(d)).ok_or_else(overflow) };
    Ok(match unit {
        "millisecond" => fixed(1)?,
        "second" => fixed(1000)?,
        "minute" => fixed(60_000)?,
        "hour" => fixed(3_600_000)?,
        "day" | "week" => {
            let per = if unit == "day" { MS_PER_DAY } else { 7 * MS_PER_DAY };
            let local =
                n.checked_mul(per).and_then(|d| zone.to_local(ms).checked_add(d)).ok_or_else(overflow)?;
            zone.to_utc(local)
        }
        "month" | "quarter" | "year" => {
            let months = match unit {
                "month" => n,
                "quarter" => n.checked_mul(3).ok_or_else(overflow)?,
                _ => n.checked_mul(12).ok_or_else(overflow)?,
            };
            if months.abs() > 12 * 300_000 {
                return Err(overflow());
            }
            let local = zone.to_local(ms);
            let cv = civil(local);
            let total = cv.year * 12 + i64::from(cv.month) - 1 + months;
            let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
            let d = cv.day.min(days_in_month(y, m));
            let time = local.rem_euclid(MS_PER_DAY);
            zone.to_utc(days_from_civil(y, m, d) * MS_PER_DAY + time)
        }
        other => return Err(err(5166404, format!("unknown time unit value: {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use bson::{bson, doc};

    #[test]
    fn civil_round_trip() {
        assert_eq!(iso_string(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_string(1521543600123), "2018-03-20T11:00:00.123Z");
        assert_eq!(iso_string(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_date_string("2018-03-20T11:00:00.123Z"), Some(1521543600123));
        assert_eq!(parse_date_string("2018-03-20T12:00:00+01:00"), Some(1521543600000));
        assert_eq!(parse_date_string("2018-02-30"), None);
    }

    #[test]
    fn parts_and_format() {
        // 2014-01-01T08:15:39.736Z, a Wednesday (mongod's documented example).
        let d = doc! {"date": DateTime::from_millis(1388564139736)};
        let get = |e: Bson| eval_on(e, &d).unwrap().unwrap();
        assert_eq!(get(bson!({"$year": "$date"})), Bson::Int32(2014));
        assert_eq!(get(bson!({"$month": "$date"})), Bson::Int32(1));
        assert_eq!(get(bson!({"$dayOfMonth": "$date"})), Bson::Int32(1));
        assert_eq!(get(bson!({"$hour": "$date"})), Bson::Int32(8));
        assert_eq!(get(bson!({"$minute": "$date"})), Bson::Int32(15));
        assert_eq!(get(bson!({"$second": "$date"})), Bson::Int32(39));
        assert_eq!(get(bson!({"$millisecond": "$date"})), Bson::Int32(736));
        assert_eq!(get(bson!({"$dayOfYear": "$date"})), Bson::Int32(1));
        assert_eq!(get(bson!({"$dayOfWeek": "$date"})), Bson::Int32(4));
        assert_eq!(get(bson!({"$week": "$date"})), Bson::Int32(0));
        assert_eq!(get(bson!({"$isoWeek": "$date"})), Bson::Int32(1));
        assert_eq!(get(bson!({"$isoDayOfWeek": "$date"})), Bson::Int32(3));
        assert_eq!(get(bson!({"$hour": {"date": "$date", "timezone": "+05:30"}})), Bson::Int32(13));
        assert_eq!(
            get(
                bson!({"$dateToString": {"format": "%Y-%m-%d %H:%M:%S:%L%z %j %U %u %V %G", "date": "$date"}})
            ),
            bson!("2014-01-01 08:15:39:736+0000 001 00 3 01 2014")
        );
        assert_eq!(get(bson!({"$dateToString": {"date": "$date"}})), bson!("2014-01-01T08:15:39.736Z"));
        assert_eq!(code(eval_on(bson!({"$year": "x"}), &d)), 16006);
        assert_eq!(code(eval_on(bson!({"$dateToString": {"date": "$date", "format": "%Q"}}), &d)), 18536);
        assert_eq!(code(eval_on(bson!({"$year": {"date": "$date", "timezone": "Mars/Base"}}), &d)), 40485);
        assert_eq!(
            get(bson!({"$dateAdd": {"startDate": "$date", "unit": "month", "amount": 1}})),
            Bson::DateTime(DateTime::from_millis(1388564139736 + 31 * MS_PER_DAY))
        );
        // Jan 31 + 1 month clamps to Feb 28.
        let jan31 = DateTime::from_millis(days_from_civil(2021, 1, 31) * MS_PER_DAY);
        let feb28 = DateTime::from_millis(days_from_civil(2021, 2, 28) * MS_PER_DAY);
        assert_eq!(
            eval_on(bson!({"$dateAdd": {"startDate": jan31, "unit": "month", "amount": 1}}), &d).unwrap(),
            Some(Bson::DateTime(feb28))
        );
    }
}
