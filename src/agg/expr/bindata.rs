//! `$convert` between strings and BinData (mongod 8.0's `to: {type: "binData", subtype}` and
//! `format`: base64, base64url, hex, uuid, utf8), which `$toUUID` is shorthand for.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson};

use base64::Engine as _;

/// The `format` values mongod accepts.
pub const FORMATS: &[&str] = &["base64", "base64url", "hex", "uuid", "utf8", "auto"];

/// Converts `v` (not null) to BinData of `subtype`, or BinData `v` to a string (`to_string`);
/// the error is mongod's message without its "in $convert ..." suffix.
pub fn convert(v: &Bson, to_string: bool, subtype: u8, format: Option<&str>) -> Result<Bson, String> {
    let unsupported =
        |to: &str| format!("Unsupported conversion from {} to {to}", crate::query::util::type_name(v));
    match (v, to_string) {
        (Bson::String(s), false) => {
            let Some(format) = format else {
                return Err("Format must be speficied when converting from 'string' to 'binData'".into());
            };
            let bytes = decode(s, format, subtype)
                .ok_or_else(|| format!("Failed to parse BinData '{s}' with format '{format}'"))?;
            Ok(Bson::Binary(Binary { subtype: BinarySubtype::from(subtype), bytes }))
        }
        (Bson::Binary(b), false) => {
            if u8::from(b.subtype) == subtype {
                Ok(Bson::Binary(b.clone()))
            } else {
                Err("Conversions between different binData subtypes are not supported".into())
            }
        }
        (Bson::Binary(b), true) => {
            let Some(format) = format else {
                return Err("Format must be speficied when converting from 'binData' to 'string'".into());
            };
            encode(b, format)
                .ok_or_else(|| format!("Failed to convert binData to a string with format '{format}'"))
        }
        (_, true) => Err(unsupported("string")),
        _ => Err(unsupported("binData")),
    }
}

fn decode(s: &str, format: &str, subtype: u8) -> Option<Vec<u8>> {
    match format {
        "base64" | "auto" => base64::engine::general_purpose::STANDARD.decode(s).ok(),
        "base64url" => base64::engine::general_purpose::URL_SAFE.decode(s).ok(),
        "hex" => {
            if !s.len().is_multiple_of(2) || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            (0..s.len() / 2)
                .map(|i| s.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect()
        }
        "uuid" if subtype == 4 => parse_uuid(s),
        "utf8" => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn encode(b: &Binary, format: &str) -> Option<Bson> {
    let s = match format {
        "base64" | "auto" => base64::engine::general_purpose::STANDARD.encode(&b.bytes),
        "base64url" => base64::engine::general_purpose::URL_SAFE.encode(&b.bytes),
        "hex" => b.bytes.iter().map(|x| format!("{x:02X}")).collect(),
        "uuid" if b.subtype == BinarySubtype::Uuid && b.bytes.len() == 16 => {
            let h: String = b.bytes.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                h.get(0..8)?,
                h.get(8..12)?,
                h.get(12..16)?,
                h.get(16..20)?,
                h.get(20..32)?
            )
        }
        "utf8" => String::from_utf8(b.bytes.clone()).ok()?,
        _ => return None,
    };
    Some(Bson::String(s))
}

/// The 16 bytes of a hyphenated UUID string (8-4-4-4-12 hex digits).
fn parse_uuid(s: &str) -> Option<Vec<u8>> {
    let lens: Vec<usize> = s.split('-').map(str::len).collect();
    if lens != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = s.split('-').collect();
    decode(&hex, "hex", 0)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use bson::{bson, Binary, Bson};

    #[test]
    fn uuid() {
        let uuid = bson::Uuid::parse_str("3b241101-e2bb-4255-8caf-4136c566a962").unwrap();
        assert_eq!(
            ev(bson!({"$toUUID": "3b241101-e2bb-4255-8caf-4136c566a962"})).unwrap(),
            Some(Bson::Binary(Binary::from_uuid(uuid)))
        );
        assert_eq!(ev(bson!({"$toUUID": "$nope"})).unwrap(), Some(Bson::Null));
        assert_eq!(code(ev(bson!({"$toUUID": "3b241101e2bb42558caf4136c566a962"}))), 241);
        assert_eq!(code(ev(bson!({"$toUUID": "3b241101-e2bb-4255-8caf-4136c566a96g"}))), 241);
        assert_eq!(code(ev(bson!({"$toUUID": "+b241101-e2bb-4255-8caf-4136c566a962"}))), 241);
        assert_eq!(code(ev(bson!({"$toUUID": 5}))), 241);
        assert_eq!(code(ev(bson!({"$toUUID": ["a", "b"]}))), 16020);
        // And back, through $convert with a format.
        let back = bson!({"$convert": {"input": {"$toUUID": "3B241101-e2bb-4255-8caf-4136c566a962"}, "to": "string", "format": "uuid"}});
        assert_eq!(ev(back).unwrap(), Some(bson!("3b241101-e2bb-4255-8caf-4136c566a962")));
    }

    #[test]
    fn formats() {
        let to_bin = |s: &str, f: &str| {
            ev(bson!({"$convert": {"input": s, "to": {"type": "binData", "subtype": 0}, "format": f}}))
        };
        let bin = |b: &[u8]| {
            Some(Bson::Binary(Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: b.to_vec() }))
        };
        assert_eq!(to_bin("aGk=", "base64").unwrap(), bin(b"hi"));
        assert_eq!(to_bin("6869", "hex").unwrap(), bin(b"hi"));
        assert_eq!(to_bin("hi", "utf8").unwrap(), bin(b"hi"));
        assert_eq!(code(to_bin("zz", "hex")), 241);
        assert_eq!(code(to_bin("3b241101-e2bb-4255-8caf-4136c566a962", "uuid")), 241, "uuid needs subtype 4");
        assert_eq!(code(to_bin("hi", "rot13")), 2);
        let e = bson!({"$convert": {"input": "hi", "to": "binData", "onError": "bad"}});
        assert_eq!(ev(e).unwrap(), Some(bson!("bad")), "a string needs a format");
        let e = bson!({"$convert": {"input": {"$convert": {"input": "hi", "to": "binData", "format": "utf8"}}, "to": "string", "format": "hex"}});
        assert_eq!(ev(e).unwrap(), Some(bson!("6869")));
    }
}
