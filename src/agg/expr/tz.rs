//! Time zones of the date expressions: UTC offsets (`+05:30`, `-0800`, `+03`) and IANA names
//! (`America/New_York`, from the tz database compiled into `chrono-tz`).

use super::err;
use crate::error::Result;
use bson::Bson;
use chrono::{Offset, TimeZone};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zone {
    /// Minutes east of UTC.
    Fixed(i64),
    Named(chrono_tz::Tz),
}

pub const UTC: Zone = Zone::Fixed(0);

impl Zone {
    /// Minutes east of UTC at the instant `utc_ms`.
    pub fn offset_at(&self, utc_ms: i64) -> i64 {
        match self {
            Zone::Fixed(m) => *m,
            Zone::Named(tz) => match chrono::DateTime::from_timestamp_millis(utc_ms) {
                Some(t) => {
                    i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()) / 60
                }
                None => 0,
            },
        }
    }

    /// Local wall-clock milliseconds of the instant `utc_ms`.
    pub fn to_local(&self, utc_ms: i64) -> i64 {
        utc_ms.saturating_add(self.offset_at(utc_ms) * 60_000)
    }

    /// The instant whose local time is `local_ms`; in a gap or overlap of a DST change the
    /// offset in force just before the change is used.
    pub fn to_utc(&self, local_ms: i64) -> i64 {
        match self {
            Zone::Fixed(m) => local_ms.saturating_sub(m * 60_000),
            Zone::Named(_) => {
                let first = local_ms.saturating_sub(self.offset_at(local_ms) * 60_000);
                let second = local_ms.saturating_sub(self.offset_at(first) * 60_000);
                if self.to_local(second) == local_ms {
                    second
                } else {
                    first
                }
            }
        }
    }
}

/// `+hh:mm`, `+hhmm`, `+hh` as minutes east of UTC.
pub fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (digits.get(..2)?.parse::<i64>().ok()?, digits.get(2..)?.parse::<i64>().ok()?),
        _ => return None,
    };
    if h > 99 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// A zone name as mongod accepts it.
pub fn zone_by_name(s: &str) -> Option<Zone> {
    match s {
        "UTC" | "GMT" | "Z" | "Etc/UTC" | "Etc/GMT" => Some(UTC),
        _ if s.starts_with('+') || s.starts_with('-') => parse_offset(s).map(Zone::Fixed),
        _ => s.parse::<chrono_tz::Tz>().ok().map(Zone::Named),
    }
}

/// A `timezone` argument's value (`None` for null/missing, which makes the result null).
pub fn zone_arg(v: &Bson) -> Result<Option<Zone>> {
    match v {
        Bson::Null | Bson::Undefined => Ok(None),
        Bson::String(s) => zone_by_name(s)
            .map(Some)
            .ok_or_else(|| err(40485, format!("unrecognized time zone identifier: \"{s}\""))),
        other => Err(err(
            40517,
            format!("timezone must evaluate to a string, found {}", crate::query::util::type_name(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_zones_follow_daylight_saving() {
        let ny = zone_by_name("America/New_York").unwrap();
        // 2021-01-15T12:00Z is EST (-5h), 2021-07-15T12:00Z is EDT (-4h).
        assert_eq!(ny.offset_at(1_610_712_000_000), -300);
        assert_eq!(ny.offset_at(1_626_350_400_000), -240);
        assert_eq!(ny.to_utc(ny.to_local(1_626_350_400_000)), 1_626_350_400_000);
        assert_eq!(zone_by_name("+05:30"), Some(Zone::Fixed(330)));
        assert_eq!(zone_by_name("-0800"), Some(Zone::Fixed(-480)));
        assert_eq!(zone_by_name("Mars/Base"), None);
    }
}
