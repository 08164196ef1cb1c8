//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), server side: stored credentials and
//! the two-round conversation. Hashing, HMAC, PBKDF2 and nonces come from `ring`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bson::{doc, Bson, Document};
use ring::rand::SecureRandom;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Sha1,
    Sha256,
}

/// Why a conversation failed. Everything but a malformed message is reported to the client
/// as mongod's one "Authentication failed." so that user names cannot be probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The client's message does not follow the grammar.
    Malformed(String),
    /// Wrong proof, wrong nonce or unknown user.
    Failed,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha1, Mechanism::Sha256];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha1 => "SCRAM-SHA-1",
            Mechanism::Sha256 => "SCRAM-SHA-256",
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// mongod's defaults (scramIterationCount, scramSHA256IterationCount).
    pub fn default_iterations(self) -> u32 {
        match self {
            Mechanism::Sha1 => 10_000,
            Mechanism::Sha256 => 15_000,
        }
    }

    fn salt_len(self) -> usize {
        match self {
            Mechanism::Sha1 => 16,
            Mechanism::Sha256 => 28,
        }
    }

    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Mechanism::Sha256 => &digest::SHA256,
        }
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Mechanism::Sha256 => hmac::HMAC_SHA256,
        }
    }

    fn pbkdf2_alg(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_alg(), key), data).as_ref().to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }

    /// The password as this mechanism feeds it to PBKDF2: SCRAM-SHA-1 uses mongod's legacy
    /// digest `hex(md5("user:mongo:pwd"))`, SCRAM-SHA-256 the SASLprepped password.
    pub fn prepare_password(self, user: &str, pwd: &str) -> Result<String, ScramError> {
        match self {
            Mechanism::Sha1 => Ok(mongo_digest(user, pwd)),
            Mechanism::Sha256 => saslprep(pwd),
        }
    }
}

/// mongod's legacy password digest: hex MD5 of `user:mongo:pwd`.
pub fn mongo_digest(user: &str, pwd: &str) -> String {
    use md5::Digest;
    let sum = md5::Md5::digest(format!("{user}:mongo:{pwd}").as_bytes());
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// SASLprep (RFC 4013) via the `stringprep` crate.
pub fn saslprep(s: &str) -> Result<String, ScramError> {
    stringprep::saslprep(s)
        .map(|c| c.into_owned())
        .map_err(|e| ScramError::Malformed(format!("Error preparing SASL string: {e}")))
}

/// Fresh random bytes (salts, nonces).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    // SystemRandom only fails when the OS has no entropy source; fall back to `rand`.
    if ring::rand::SystemRandom::new().fill(&mut v).is_err() {
        for b in &mut v {
            *b = rand::random();
        }
    }
    v
}

/// What the server stores for one mechanism: never the password, only salted keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub iteration_count: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl Credentials {
    /// Derives credentials from an already prepared password (see `prepare_password`).
    pub fn derive(mech: Mechanism, prepared: &str, salt: Vec<u8>, iterations: u32) -> Credentials {
        let salted = salted_password(mech, prepared, &salt, iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        Credentials {
            iteration_count: iterations,
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(&salted, b"Server Key"),
            salt,
        }
    }

    /// New credentials with a random salt and the mechanism's default iteration count.
    pub fn generate(mech: Mechanism, user: &str, pwd: &str) -> Result<Credentials, ScramError> {
        let prepared = mech.prepare_password(user, pwd)?;
        Ok(Credentials::derive(mech, &prepared, random_bytes(mech.salt_len()), mech.default_iterations()))
    }

    /// The shape mongod keeps in `admin.system.users` (`credentials.<mechanism>`).
    pub fn to_doc(&self) -> Document {
        doc! {
            "iterationCount": self.iteration_count as i32,
            "salt": B64.encode(&self.salt),
            "storedKey": B64.encode(&self.stored_key),
            "serverKey": B64.encode(&self.server_key),
        }
    }

    pub fn from_doc(d: &Document) -> Option<Credentials> {
        let text = |k: &str| d.get_str(k).ok().and_then(|s| B64.decode(s).ok());
        let iterations = match d.get("iterationCount") {
            Some(Bson::Int32(n)) => u32::try_from(*n).ok(),
            Some(Bson::Int64(n)) => u32::try_from(*n).ok(),
            _ => None,
        }?;
        Some(Credentials {
            iteration_count: iterations,
            salt: text("salt")?,
            stored_key: text("storedKey")?,
            server_key: text("serverKey")?,
        })
    }
}

fn salted_password(mech: Mechanism, prepared: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; mech.digest_alg().output_len()];
    let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(mech.pbkdf2_alg(), n, salt, prepared.as_bytes(), &mut out);
    out
}

/// The user name and client nonce of a client-first message, with its bare part (what the
/// auth message covers) and its GS2 header (echoed back in `c=`).
#[derive(Debug, Clone)]
pub struct ClientFirst {
    pub user: String,
    pub nonce: String,
    bare: String,
    gs2_header: String,
}

fn malformed(msg: &str) -> ScramError {
    ScramError::Malformed(msg.to_string())
}

/// Undoes RFC 5802's escaping of `,` and `=` in a saslname.
fn unescape_name(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = t;
        } else {
            return Err(malformed("Invalid SCRAM user name encoding"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub fn parse_client_first(payload: &str) -> Result<ClientFirst, ScramError> {
    // gs2-header: cbind-flag "," [authzid] ","
    let mut parts = payload.splitn(3, ',');
    let flag = parts.next().unwrap_or("");
    let authzid = parts
        .next()
        .ok_or_else(|| malformed("Incorrect number of arguments for first SCRAM client message"))?;
    let bare = parts
        .next()
        .ok_or_else(|| malformed("Incorrect number of arguments for first SCRAM client message"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(malformed("Server does not support channel binding")),
        _ => return Err(malformed("Incorrect SCRAM client message prefix")),
    }
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(malformed("Incorrect SCRAM authzid"));
    }
    let mut user = None;
    let mut nonce = None;
    for attr in bare.split(',') {
        if let Some(v) = attr.strip_prefix("n=") {
            user = Some(unescape_name(v)?);
        } else if let Some(v) = attr.strip_prefix("r=") {
            nonce = Some(v.to_string());
        } else if attr.starts_with("m=") {
            return Err(malformed("SCRAM mandatory extensions are not supported"));
        }
    }
    let (Some(user), Some(nonce)) = (user, nonce) else {
        return Err(malformed("Invalid SCRAM client first message: missing user name or nonce"));
    };
    if nonce.is_empty() || user.is_empty() {
        return Err(malformed("Invalid SCRAM client first message: empty user name or nonce"));
    }
    Ok(ClientFirst { user, nonce, bare: bare.to_string(), gs2_header: format!("{flag},{authzid},") })
}

/// A conversation after the server-first message: waits for the client's proof.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub mech: Mechanism,
    creds: Credentials,
    client_first: ClientFirst,
    server_first: String,
    nonce: String,
}

impl Conversation {
    /// Answers a client-first message with the server-first message. `server_nonce` is the
    /// random part the server adds.
    pub fn start(
        mech: Mechanism,
        client_first: ClientFirst,
        creds: Credentials,
        server_nonce: &str,
    ) -> (Conversation, String) {
        let nonce = format!("{}{server_nonce}", client_first.nonce);
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&creds.salt), creds.iteration_count);
        let conv = Conversation { mech, creds, client_first, server_first: server_first.clone(), nonce };
        (conv, server_first)
    }

    /// A random server nonce as mongod makes it (24 random bytes, base64).
    pub fn new_nonce() -> String {
        B64.encode(random_bytes(24))
    }

    /// Checks the client-final message; on success returns the server-final message.
    pub fn finish(&self, client_final: &str) -> Result<String, ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("Incorrect number of arguments for final SCRAM client message"))?;
        let mut binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                binding = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        let (Some(binding), Some(nonce)) = (binding, nonce) else {
            return Err(malformed("Incorrect SCRAM client final message"));
        };
        if B64.decode(binding).ok().as_deref() != Some(self.client_first.gs2_header.as_bytes()) {
            return Err(malformed("Unmatched SCRAM channel binding"));
        }
        if nonce != self.nonce {
            return Err(ScramError::Failed);
        }
        let proof = B64.decode(proof).map_err(|_| malformed("Invalid SCRAM proof encoding"))?;
        let auth_message = format!("{},{},{without_proof}", self.client_first.bare, self.server_first);
        let signature = self.mech.hmac(&self.creds.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::Failed);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let computed = self.mech.hash(&client_key);
        if !same_bytes(&computed, &self.creds.stored_key) {
            return Err(ScramError::Failed);
        }
        let server_signature = self.mech.hmac(&self.creds.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

/// Compares two byte strings in time independent of where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the RFC's example exchange with the RFC's salt, iteration count and nonces.
    fn rfc_exchange(
        mech: Mechanism,
        salt_b64: &str,
        client_first: &str,
        server_nonce: &str,
        expected_server_first: &str,
        client_final: &str,
    ) -> Result<String, ScramError> {
        let salt = B64.decode(salt_b64).unwrap();
        let creds = Credentials::derive(mech, "pencil", salt, 4096);
        let first = parse_client_first(client_first).unwrap();
        assert_eq!(first.user, "user");
        let (conv, server_first) = Conversation::start(mech, first, creds, server_nonce);
        assert_eq!(server_first, expected_server_first);
        conv.finish(client_final)
    }

    #[test]
    fn rfc5802_sha1_vector() {
        let r = rfc_exchange(
            Mechanism::Sha1,
            "QSXCR+Q6sek8bf92",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(r, Ok("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_string()));
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let r = rfc_exchange(
            Mechanism::Sha256,
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(r, Ok("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_string()));
    }

    #[test]
    fn wrong_proof_and_wrong_nonce_fail() {
        let wrong_proof = rfc_exchange(
            Mechanism::Sha1,
            "QSXCR+Q6sek8bf92",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAX8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(wrong_proof, Err(ScramError::Failed));
        let wrong_nonce = rfc_exchange(
            Mechanism::Sha1,
            "QSXCR+Q6sek8bf92",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawLXXX,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(wrong_nonce, Err(ScramError::Failed));
    }

    #[test]
    fn client_first_grammar() {
        assert!(parse_client_first("p=tls-unique,,n=user,r=abc").is_err());
        assert!(parse_client_first("n,,n=user").is_err());
        assert!(parse_client_first("x,,n=user,r=abc").is_err());
        assert!(parse_client_first("n,,n=u=2Cx=3Dy,r=abc").is_ok_and(|c| c.user == "u,x=y"));
        assert!(parse_client_first("n,,n=u=ZZ,r=abc").is_err());
        assert!(parse_client_first("").is_err());
    }

    #[test]
    fn mongo_digest_and_saslprep() {
        // md5("user:mongo:pencil")
        assert_eq!(mongo_digest("user", "pencil"), "1c33006ec1ffd90f9cadcbcc0e118200");
        assert_ne!(mongo_digest("user", "pencil"), mongo_digest("user", "pencil2"));
        // RFC 4013 examples: soft hyphen is mapped to nothing, U+00AA is NFKC-normalised.
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a");
        assert!(saslprep("\u{0007}").is_err());
    }

    #[test]
    fn credentials_round_trip_through_bson() {
        let c = Credentials::generate(Mechanism::Sha256, "u", "p").unwrap();
        assert_eq!(c.iteration_count, 15_000);
        assert_eq!(c.salt.len(), 28);
        assert_eq!(Credentials::from_doc(&c.to_doc()), Some(c));
    }
}
