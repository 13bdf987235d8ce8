//! Verifies what a licensd server says, for the software licensd protects.
//!
//! Two things can be checked with nothing but the server's Ed25519 public key
//! (`GET /v1/signing-key`, or `licensd signing-key show`), which the application embeds:
//!
//! - a **signed response**: every public license endpoint answers with a
//!   `Licensd-Signature` header over the [`signing_string`] of the exchange, so an answer
//!   cannot come from another server, nor be replayed for another request;
//! - an **offline license file** (`POST /v1/licenses/checkout`): armoured text holding a
//!   signed JSON payload with the license, the activation it is bound to and an expiry.
//!
//! No clock, network or server code here: the caller passes the current time.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The response header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Licensd-Signature";
/// The only algorithm licensd signs with.
pub const ALGORITHM: &str = "ed25519";
/// First line of every response signing string (domain separation and version).
pub const RESPONSE_CONTEXT: &str = "licensd-response-v2";
/// The `v` field of the signature header: the signing string's version.
pub const SIGNATURE_VERSION: &str = "2";
/// Armour lines around a license file.
pub const FILE_BEGIN: &str = "-----BEGIN LICENSD LICENSE FILE-----";
pub const FILE_END: &str = "-----END LICENSD LICENSE FILE-----";

/// Why something did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The public key is not 32 bytes of base64.
    BadPublicKey,
    /// The `Licensd-Signature` header or the license file is not in the documented form.
    Malformed(&'static str),
    /// Signed by a different key than the one given.
    WrongKey { expected: String, found: String },
    /// The signature does not match what was signed: something was changed.
    BadSignature,
    /// The signature is older (or further in the future) than the allowed skew.
    Stale { timestamp: i64, now: i64 },
    /// The license file's validity has ended.
    Expired { expires_at: i64, now: i64 },
    /// The header's signature format is not the one this crate checks (a version 1
    /// signature does not bind the request, so it is refused).
    UnsupportedVersion(String),
    /// The signing key id is not among the keys given (unknown, or retired).
    UnknownKey(String),
    /// The answer is genuine but about another license or device than the one asked about.
    NotForThisRequest(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadPublicKey => f.write_str("the public key is not 32 bytes of base64"),
            Error::Malformed(what) => write!(f, "malformed {what}"),
            Error::WrongKey { expected, found } => {
                write!(f, "signed by key {found}, expected key {expected}")
            }
            Error::BadSignature => f.write_str("the signature does not verify"),
            Error::Stale { timestamp, now } => {
                write!(f, "signature time {timestamp} is too far from now ({now})")
            }
            Error::Expired { expires_at, now } => {
                write!(f, "the license file expired at {expires_at} (now {now})")
            }
            Error::UnsupportedVersion(v) => {
                write!(
                    f,
                    "signature format version {v} is not supported (expected {SIGNATURE_VERSION})"
                )
            }
            Error::UnknownKey(id) => write!(f, "signed by key {id}, which is not a known key"),
            Error::NotForThisRequest(what) => {
                write!(f, "the answer is not for the {what} that was sent")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The key id of a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// A licensd server's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

impl PublicKey {
    /// From the `public_key` of `GET /v1/signing-key`: 32 raw bytes, standard base64.
    pub fn from_base64(s: &str) -> Result<Self, Error> {
        let bytes = B64.decode(s.trim()).map_err(|_| Error::BadPublicKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| Error::BadPublicKey)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::BadPublicKey)?;
        Ok(PublicKey {
            key,
            id: key_id(bytes),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.key.as_bytes())
    }

    fn check_id(&self, found: &str) -> Result<(), Error> {
        if found == self.id {
            Ok(())
        } else {
            Err(Error::WrongKey {
                expected: self.id.clone(),
                found: found.to_owned(),
            })
        }
    }

    fn verify(&self, message: &[u8], signature: &str) -> Result<(), Error> {
        let bytes = B64
            .decode(signature)
            .map_err(|_| Error::Malformed("signature (not base64)"))?;
        let sig = Signature::from_slice(&bytes).map_err(|_| Error::Malformed("signature"))?;
        self.key
            .verify(message, &sig)
            .map_err(|_| Error::BadSignature)
    }
}

/// Where a verifier finds the public key a signature names: one [`PublicKey`], or a
/// [`KeySet`] (several keys during a rotation, picked by key id).
pub trait Keys {
    fn find(&self, key_id: &str) -> Result<&PublicKey, Error>;
}

impl Keys for PublicKey {
    fn find(&self, key_id: &str) -> Result<&PublicKey, Error> {
        self.check_id(key_id)?;
        Ok(self)
    }
}

impl Keys for [PublicKey] {
    fn find(&self, key_id: &str) -> Result<&PublicKey, Error> {
        self.iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| Error::UnknownKey(key_id.to_owned()))
    }
}

impl Keys for Vec<PublicKey> {
    fn find(&self, key_id: &str) -> Result<&PublicKey, Error> {
        self.as_slice().find(key_id)
    }
}

/// The server's published keys (`GET /v1/signing-keys`): every key that may still sign
/// an answer or a license file. An application embeds this set (or fetches it over a
/// channel it trusts); a retired key is no longer in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<PublicKey>,
}

#[derive(Deserialize)]
struct KeySetJson {
    keys: Vec<KeyJson>,
}

#[derive(Deserialize)]
struct KeyJson {
    key_id: String,
    algorithm: String,
    public_key: String,
}

impl KeySet {
    /// From the JSON of `GET /v1/signing-keys`: `{"keys": [{key_id, algorithm, public_key, ..}]}`.
    /// Each key id must be the id of its public key.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let set: KeySetJson =
            serde_json::from_slice(json).map_err(|_| Error::Malformed("key set JSON"))?;
        let keys = set
            .keys
            .into_iter()
            .map(|k| {
                if k.algorithm != ALGORITHM {
                    return Err(Error::Malformed("key set (unknown algorithm)"));
                }
                let key = PublicKey::from_base64(&k.public_key)?;
                key.check_id(&k.key_id)?;
                Ok(key)
            })
            .collect::<Result<_, _>>()?;
        Ok(KeySet { keys })
    }
}

impl Keys for KeySet {
    fn find(&self, key_id: &str) -> Result<&PublicKey, Error> {
        self.keys.find(key_id)
    }
}

/// The exact bytes a response signature covers, one field per line (`\n`, no trailing newline):
///
/// ```text
/// licensd-response-v2
/// {timestamp: unix seconds}
/// {request method, upper case}
/// {request path and query, exactly as sent in the request line}
/// {SHA-256 of the exact request body bytes, lower-case hex}
/// {response status code}
/// {SHA-256 of the response body bytes, lower-case hex}
/// ```
///
/// The request body's hash binds the answer to the request it answers: a genuine answer
/// for one key cannot be relayed as the answer to a request for another key.
pub fn signing_string(
    timestamp: i64,
    method: &str,
    path: &str,
    request_body: &[u8],
    status: u16,
    body: &[u8],
) -> String {
    signing_string_with_digests(
        timestamp,
        method,
        path,
        &Sha256::digest(request_body),
        status,
        &Sha256::digest(body),
    )
}

/// [`signing_string`] from the two SHA-256 digests, for a caller that already has them.
pub fn signing_string_with_digests(
    timestamp: i64,
    method: &str,
    path: &str,
    request_sha256: &[u8],
    status: u16,
    body_sha256: &[u8],
) -> String {
    format!(
        "{RESPONSE_CONTEXT}\n{timestamp}\n{}\n{path}\n{}\n{status}\n{}",
        method.to_ascii_uppercase(),
        hex(request_sha256),
        hex(body_sha256)
    )
}

/// The parsed `Licensd-Signature` header: `v=2,keyid=..,alg=ed25519,ts=..,sig=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub key_id: String,
    pub algorithm: String,
    pub timestamp: i64,
    pub signature: String,
}

impl SignatureHeader {
    /// Parses the header value. Order does not matter; unknown fields are ignored; each
    /// known field must appear once. A header without `v=2` is refused: version 1
    /// signatures did not bind the request, so they prove nothing about this one.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let (mut version, mut key_id, mut algorithm, mut timestamp, mut signature) =
            (None, None, None, None, None);
        for part in value.split(',') {
            let (name, v) = part
                .trim()
                .split_once('=')
                .ok_or(Error::Malformed("signature header (expected name=value)"))?;
            let slot = match name.trim() {
                "v" => &mut version,
                "keyid" => &mut key_id,
                "alg" => &mut algorithm,
                "ts" => &mut timestamp,
                "sig" => &mut signature,
                _ => continue,
            };
            if slot.replace(v.trim().to_owned()).is_some() {
                return Err(Error::Malformed("signature header (repeated field)"));
            }
        }
        match version.as_deref() {
            Some(SIGNATURE_VERSION) => {}
            Some(v) => return Err(Error::UnsupportedVersion(v.to_owned())),
            None => return Err(Error::UnsupportedVersion("1".to_owned())),
        }
        let timestamp = timestamp
            .ok_or(Error::Malformed("signature header (no ts)"))?
            .parse()
            .map_err(|_| Error::Malformed("signature header (ts is not a number)"))?;
        Ok(SignatureHeader {
            key_id: key_id.ok_or(Error::Malformed("signature header (no keyid)"))?,
            algorithm: algorithm.ok_or(Error::Malformed("signature header (no alg)"))?,
            timestamp,
            signature: signature.ok_or(Error::Malformed("signature header (no sig)"))?,
        })
    }

    pub fn to_header_value(&self) -> String {
        format!(
            "v={SIGNATURE_VERSION},keyid={},alg={},ts={},sig={}",
            self.key_id, self.algorithm, self.timestamp, self.signature
        )
    }
}

/// One HTTP exchange as the application saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a str,
    /// Path and query as sent, e.g. `/v1/licenses/validate`.
    pub path: &'a str,
    /// The exact request body bytes sent (empty for a request without a body).
    pub request_body: &'a [u8],
    pub status: u16,
    pub body: &'a [u8],
    /// The `Licensd-Signature` header value.
    pub signature_header: &'a str,
}

/// Verifies a signed response: a key of `keys` picked by the header's key id, Ed25519
/// signature over the [`signing_string`] (which binds the request body), and a timestamp
/// within `max_skew_secs` of `now` (unix seconds). To be sure the answer is about the
/// license and device asked about, use [`verify_answer`].
pub fn verify_response<K: Keys + ?Sized>(
    keys: &K,
    exchange: &Exchange<'_>,
    now: i64,
    max_skew_secs: i64,
) -> Result<SignatureHeader, Error> {
    let header = SignatureHeader::parse(exchange.signature_header)?;
    if header.algorithm != ALGORITHM {
        return Err(Error::Malformed("signature header (unknown alg)"));
    }
    let key = keys.find(&header.key_id)?;
    let message = signing_string(
        header.timestamp,
        exchange.method,
        exchange.path,
        exchange.request_body,
        exchange.status,
        exchange.body,
    );
    key.verify(message.as_bytes(), &header.signature)?;
    if (now - header.timestamp).abs() > max_skew_secs {
        return Err(Error::Stale {
            timestamp: header.timestamp,
            now,
        });
    }
    Ok(header)
}

/// What the application asked about: the key and the device fingerprint it sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent<'a> {
    pub key: &'a str,
    pub fingerprint: Option<&'a str>,
}

/// [`verify_response`], then checks that the answer's JSON is about what was sent: a
/// `license.key` in the answer equals the key sent (ignoring case and surrounding white
/// space) and an `activation.fingerprint` equals the fingerprint sent.
pub fn verify_answer<K: Keys + ?Sized>(
    keys: &K,
    exchange: &Exchange<'_>,
    sent: &Sent<'_>,
    now: i64,
    max_skew_secs: i64,
) -> Result<SignatureHeader, Error> {
    let header = verify_response(keys, exchange, now, max_skew_secs)?;
    check_answer_is_for(exchange.body, sent)?;
    Ok(header)
}

/// The answer names the key and fingerprint that were sent (where it names them at all).
pub fn check_answer_is_for(body: &[u8], sent: &Sent<'_>) -> Result<(), Error> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(()); // not JSON: nothing named, the signature alone binds it
    };
    let normalise = |s: &str| s.trim().to_uppercase();
    if let Some(key) = answer.pointer("/license/key").and_then(|k| k.as_str()) {
        if normalise(key) != normalise(sent.key) {
            return Err(Error::NotForThisRequest("license key"));
        }
    }
    if let Some(fp) = answer
        .pointer("/activation/fingerprint")
        .and_then(|f| f.as_str())
    {
        if Some(fp) != sent.fingerprint {
            return Err(Error::NotForThisRequest("fingerprint"));
        }
    }
    Ok(())
}

/// What a license file holds (its JSON payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseFilePayload {
    /// Format version: 1.
    pub version: u32,
    /// The key id of the key that signed it.
    pub key_id: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the file is not valid from this moment on.
    pub expires_at: i64,
    /// The license as `POST /v1/licenses/validate` shows it.
    pub license: serde_json::Value,
    /// The activation the file is bound to, when a fingerprint was given.
    pub activation: Option<serde_json::Value>,
}

impl LicenseFilePayload {
    /// The device fingerprint the file is bound to, if any: compare it with the device's own.
    pub fn fingerprint(&self) -> Option<&str> {
        self.activation.as_ref()?.get("fingerprint")?.as_str()
    }
}

/// Writes a license file: the armour lines around `base64(payload) "." base64(signature)`,
/// wrapped at 64 columns. The signature covers the payload's JSON bytes.
pub fn write_license_file(signing_key: &SigningKey, payload: &LicenseFilePayload) -> String {
    let json = serde_json::to_vec(payload).expect("a payload always serialises");
    let signature = signing_key.sign(&json);
    let body = format!("{}.{}", B64.encode(&json), B64.encode(signature.to_bytes()));
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 80);
    out.push_str(FILE_BEGIN);
    out.push('\n');
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(FILE_END);
    out.push('\n');
    out
}

/// Verifies a license file offline: armour, signature by the key of `keys` its `key_id`
/// names, and `now < expires_at`. The caller should then compare
/// [`LicenseFilePayload::fingerprint`] with its device.
pub fn verify_license_file<K: Keys + ?Sized>(
    keys: &K,
    text: &str,
    now: i64,
) -> Result<LicenseFilePayload, Error> {
    let start = text
        .find(FILE_BEGIN)
        .ok_or(Error::Malformed("license file (no BEGIN line)"))?
        + FILE_BEGIN.len();
    let end = text[start..]
        .find(FILE_END)
        .ok_or(Error::Malformed("license file (no END line)"))?
        + start;
    let body: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (payload_b64, signature_b64) = body
        .split_once('.')
        .ok_or(Error::Malformed("license file (no signature)"))?;
    let json = B64
        .decode(payload_b64)
        .map_err(|_| Error::Malformed("license file (payload is not base64)"))?;
    // Parsed before it is trusted only to learn which key signed it.
    let payload: LicenseFilePayload = serde_json::from_slice(&json)
        .map_err(|_| Error::Malformed("license file (payload is not the expected JSON)"))?;
    keys.find(&payload.key_id)?.verify(&json, signature_b64)?;
    if now >= payload.expires_at {
        return Err(Error::Expired {
            expires_at: payload.expires_at,
            now,
        });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (SigningKey, PublicKey) {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let pk = PublicKey::from_bytes(sk.verifying_key().as_bytes()).unwrap();
        (sk, pk)
    }

    fn sign(sk: &SigningKey, ts: i64, path: &str, request: &[u8], body: &[u8]) -> String {
        let s = signing_string(ts, "post", path, request, 200, body);
        SignatureHeader {
            key_id: key_id(sk.verifying_key().as_bytes()),
            algorithm: ALGORITHM.into(),
            timestamp: ts,
            signature: B64.encode(sk.sign(s.as_bytes()).to_bytes()),
        }
        .to_header_value()
    }

    #[test]
    fn signing_string_is_the_documented_one() {
        assert_eq!(
            signing_string(1, "post", "/v1/x?a=b", b"", 201, b""),
            "licensd-response-v2\n1\nPOST\n/v1/x?a=b\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n201\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_response_verifies_and_any_change_breaks_it() {
        let (sk, pk) = keys();
        let request = br#"{"key":"K"}"#;
        let header = sign(
            &sk,
            100,
            "/v1/licenses/validate",
            request,
            b"{\"valid\":true}",
        );
        let ok = Exchange {
            method: "POST",
            path: "/v1/licenses/validate",
            request_body: request,
            status: 200,
            body: b"{\"valid\":true}",
            signature_header: &header,
        };
        assert!(verify_response(&pk, &ok, 110, 300).is_ok());
        let changed = [
            Exchange {
                body: b"{\"valid\":false}",
                ..ok
            },
            Exchange {
                path: "/v1/licenses/activate",
                ..ok
            },
            Exchange {
                request_body: br#"{"key":"L"}"#,
                ..ok
            },
            Exchange { status: 201, ..ok },
            Exchange {
                method: "GET",
                ..ok
            },
        ];
        for e in changed {
            assert_eq!(verify_response(&pk, &e, 110, 300), Err(Error::BadSignature));
        }
        let later = header.replace("ts=100", "ts=101");
        let e = Exchange {
            signature_header: &later,
            ..ok
        };
        assert_eq!(verify_response(&pk, &e, 110, 300), Err(Error::BadSignature));
        assert!(matches!(
            verify_response(&pk, &ok, 1000, 300),
            Err(Error::Stale { .. })
        ));
    }

    /// The relay of issue 9: a proxy answers a request for a fake key with the genuine
    /// answer for a real key (same nonce). Version 1 signatures accepted it.
    #[test]
    fn a_genuine_answer_relayed_for_another_request_is_refused() {
        let (sk, pk) = keys();
        let real = br#"{"key":"REAL-KEY","nonce":"n1"}"#;
        let fake = br#"{"key":"FAKE-KEY","nonce":"n1"}"#;
        let answer = br#"{"valid":true,"code":"VALID","license":{"key":"REAL-KEY"},"nonce":"n1"}"#;
        let path = "/v1/licenses/validate";

        // What a version 1 server sent, and how a version 1 verifier checked it.
        let v1 = format!(
            "licensd-response-v1\n100\nPOST\n{path}\n200\n{}",
            hex(&Sha256::digest(answer))
        );
        let v1_sig = sk.sign(v1.as_bytes());
        assert!(
            pk.key.verify(v1.as_bytes(), &v1_sig).is_ok(),
            "v1 accepted the relay"
        );
        // This crate refuses a version 1 header outright.
        let v1_header = format!(
            "keyid={},alg=ed25519,ts=100,sig={}",
            pk.key_id(),
            B64.encode(v1_sig.to_bytes())
        );
        let relayed_v1 = Exchange {
            method: "POST",
            path,
            request_body: fake,
            status: 200,
            body: answer,
            signature_header: &v1_header,
        };
        assert_eq!(
            verify_response(&pk, &relayed_v1, 110, 300),
            Err(Error::UnsupportedVersion("1".into()))
        );

        // Version 2: the genuine answer verifies for the request it answered...
        let header = sign(&sk, 100, path, real, answer);
        let genuine = Exchange {
            request_body: real,
            signature_header: &header,
            ..relayed_v1
        };
        let sent_real = Sent {
            key: " real-key ",
            fingerprint: None,
        };
        assert!(verify_answer(&pk, &genuine, &sent_real, 110, 300).is_ok());
        // ...and not for the relayed one.
        let relayed = Exchange {
            request_body: fake,
            ..genuine
        };
        let sent_fake = Sent {
            key: "FAKE-KEY",
            fingerprint: None,
        };
        assert_eq!(
            verify_answer(&pk, &relayed, &sent_fake, 110, 300),
            Err(Error::BadSignature)
        );
        // Even where the bytes match, the answer must name what was sent.
        assert_eq!(
            verify_answer(&pk, &genuine, &sent_fake, 110, 300),
            Err(Error::NotForThisRequest("license key"))
        );
    }

    #[test]
    fn the_answer_must_name_the_fingerprint_sent() {
        let body = br#"{"license":{"key":"K"},"activation":{"fingerprint":"dev-1"}}"#;
        let sent = |fp| Sent {
            key: "k",
            fingerprint: fp,
        };
        assert!(check_answer_is_for(body, &sent(Some("dev-1"))).is_ok());
        assert_eq!(
            check_answer_is_for(body, &sent(Some("dev-2"))),
            Err(Error::NotForThisRequest("fingerprint"))
        );
        assert!(check_answer_is_for(br#"{"valid":false,"code":"NOT_FOUND"}"#, &sent(None)).is_ok());
    }

    #[test]
    fn a_key_set_picks_the_key_by_id() {
        let (sk, pk) = keys();
        let other_sk = SigningKey::from_bytes(&[8u8; 32]);
        let other = PublicKey::from_bytes(other_sk.verifying_key().as_bytes()).unwrap();
        let json = format!(
            r#"{{"keys":[{{"key_id":"{}","algorithm":"ed25519","public_key":"{}","status":"current"}},
                {{"key_id":"{}","algorithm":"ed25519","public_key":"{}","status":"published"}}]}}"#,
            other.key_id(),
            other.to_base64(),
            pk.key_id(),
            pk.to_base64()
        );
        let set = KeySet::from_json(json.as_bytes()).unwrap();
        assert_eq!(set.keys, vec![other.clone(), pk.clone()]);
        let header = sign(&sk, 100, "/p", b"", b"{}");
        let e = Exchange {
            method: "POST",
            path: "/p",
            request_body: b"",
            status: 200,
            body: b"{}",
            signature_header: &header,
        };
        assert!(verify_response(&set, &e, 100, 300).is_ok());
        let only_other = KeySet { keys: vec![other] };
        assert_eq!(
            verify_response(&only_other, &e, 100, 300),
            Err(Error::UnknownKey(pk.key_id().to_owned()))
        );
        // A key id that does not belong to its key is refused.
        let lying = json.replacen(pk.key_id(), "0000000000000000", 1);
        assert!(KeySet::from_json(lying.as_bytes()).is_err());
    }

    #[test]
    fn license_files_round_trip_expire_and_resist_tampering() {
        let (sk, pk) = keys();
        let payload = LicenseFilePayload {
            version: 1,
            key_id: pk.key_id().to_owned(),
            issued_at: 10,
            expires_at: 20,
            license: serde_json::json!({"key": "K", "status": "active"}),
            activation: Some(serde_json::json!({"fingerprint": "dev-1"})),
        };
        let file = write_license_file(&sk, &payload);
        let got = verify_license_file(&pk, &file, 15).unwrap();
        assert_eq!(got, payload);
        assert_eq!(got.fingerprint(), Some("dev-1"));
        assert!(matches!(
            verify_license_file(&pk, &file, 20),
            Err(Error::Expired { .. })
        ));
        let other = PublicKey::from_bytes(
            SigningKey::from_bytes(&[8u8; 32])
                .verifying_key()
                .as_bytes(),
        )
        .unwrap();
        assert!(matches!(
            verify_license_file(&other, &file, 15),
            Err(Error::WrongKey { .. })
        ));
        // Flip one character of the payload.
        let line = file.lines().nth(1).unwrap();
        let mut bytes = line.as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        let tampered = file.replacen(line, std::str::from_utf8(&bytes).unwrap(), 1);
        assert!(verify_license_file(&pk, &tampered, 15).is_err());
    }

    mod hostile_input {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn signature_headers_never_panic(s in "\\PC{0,200}") {
                let _ = SignatureHeader::parse(&s);
            }

            #[test]
            fn signature_headers_round_trip(
                id in "[0-9a-f]{16}", ts in any::<i64>(), sig in "[A-Za-z0-9+/]{1,88}={0,2}",
            ) {
                let h = SignatureHeader { key_id: id, algorithm: ALGORITHM.into(), timestamp: ts, signature: sig };
                prop_assert_eq!(SignatureHeader::parse(&h.to_header_value()), Ok(h));
            }

            #[test]
            fn license_file_parsing_never_panics(s in "\\PC{0,400}") {
                let (_, pk) = keys();
                prop_assert!(verify_license_file(&pk, &s, 0).is_err());
                let wrapped = format!("{FILE_BEGIN}\n{s}\n{FILE_END}\n");
                prop_assert!(verify_license_file(&pk, &wrapped, 0).is_err());
            }

            #[test]
            fn responses_with_any_header_never_panic(h in "\\PC{0,200}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
                let (_, pk) = keys();
                let e = Exchange { method: "POST", path: "/", request_body: b"", status: 200, body: &body, signature_header: &h };
                prop_assert!(verify_response(&pk, &e, 0, 300).is_err());
            }
        }
    }
}
