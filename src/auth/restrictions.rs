//! `authenticationRestrictions` of users and roles: lists of `{clientSource, serverAddress}`
//! documents whose entries are IP addresses or CIDR ranges. A login must satisfy, for the
//! user and for every role it inherits that has restrictions, at least one document of that
//! list; a document is satisfied when the client's address is in one of its `clientSource`
//! ranges and the address it connected to in one of its `serverAddress` ranges (a missing
//! field allows any). As in mongod, roles with incompatible restrictions make a user unusable.

use crate::error::{MongoError, Result};
use bson::{Bson, Document};
use std::net::IpAddr;

const FIELDS: [&str; 2] = ["clientSource", "serverAddress"];

/// An address range: `addr/prefix`, or one address (the full prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|n| *n <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> (u128, bool) {
            match a.to_canonical() {
                IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, true),
                IpAddr::V6(v) => (u128::from(v), false),
            }
        };
        let (mine, v4) = bits(self.addr);
        let (theirs, their_v4) = bits(ip);
        if v4 != their_v4 {
            return false;
        }
        // IPv4 addresses sit in the top 32 bits, so one prefix mask serves both families.
        let len = u32::from(self.prefix).min(128);
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
        mine & mask == theirs & mask
    }
}

/// Checks and returns a command's `authenticationRestrictions` (None when absent).
pub fn parse(v: Option<&Bson>) -> Result<Option<Vec<Bson>>> {
    let Some(v) = v else { return Ok(None) };
    let Bson::Array(items) = v else {
        return Err(MongoError::type_mismatch("\"authenticationRestrictions\" must be an array"));
    };
    for item in items {
        let Bson::Document(d) = item else {
            return Err(MongoError::type_mismatch("Each authenticationRestriction must be an object"));
        };
        for (k, v) in d {
            if !FIELDS.contains(&k.as_str()) {
                return Err(MongoError::bad_value(format!(
                    "Unknown field in authenticationRestriction: '{k}'"
                )));
            }
            let Bson::Array(ranges) = v else {
                return Err(MongoError::type_mismatch(format!("'{k}' must be an array of strings")));
            };
            for r in ranges {
                match r.as_str() {
                    Some(s) if Cidr::parse(s).is_some() => {}
                    _ => return Err(MongoError::bad_value(format!("'{r}' is not a valid CIDR range"))),
                }
            }
        }
    }
    Ok(Some(items.clone()))
}

/// The restriction list stored in a user or role document (empty when there is none).
pub fn of(d: &Document) -> Vec<Bson> {
    d.get_array("authenticationRestrictions").cloned().unwrap_or_default()
}

fn field_allows(d: &Document, field: &str, ip: Option<IpAddr>) -> bool {
    let Ok(ranges) = d.get_array(field) else { return true };
    let Some(ip) = ip else { return false };
    ranges.iter().filter_map(Bson::as_str).filter_map(Cidr::parse).any(|c| c.contains(ip))
}

/// True when one document of `list` admits the connection (an empty list admits all).
pub fn list_allows(list: &[Bson], client: Option<IpAddr>, server: Option<IpAddr>) -> bool {
    list.is_empty()
        || list
            .iter()
            .filter_map(Bson::as_document)
            .any(|d| field_allows(d, "clientSource", client) && field_allows(d, "serverAddress", server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn cidr_ranges_match_their_addresses_only() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("::1/128").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn any_document_of_a_list_admits() {
        let list = vec![
            Bson::Document(doc! { "clientSource": ["10.0.0.0/8"] }),
            Bson::Document(doc! { "clientSource": ["127.0.0.1"], "serverAddress": ["127.0.0.1"] }),
        ];
        assert!(list_allows(&list, ip("127.0.0.1"), ip("127.0.0.1")));
        assert!(list_allows(&list, ip("10.3.3.3"), ip("192.168.0.1")));
        assert!(!list_allows(&list, ip("127.0.0.1"), ip("192.168.0.1")));
        assert!(list_allows(&[], None, None));
        assert!(parse(Some(&Bson::Array(list))).is_ok());
        let bad = Bson::Array(vec![Bson::Document(doc! { "clientSource": ["1.2.3.4/99"] })]);
        assert!(parse(Some(&bad)).is_err());
    }
}
