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
/// First line of every response signing string (domain separation).
pub const RESPONSE_CONTEXT: &str = "licensd-response-v1";
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// The exact bytes a response signature covers, one field per line (`\n`, no trailing newline):
///
/// ```text
/// licensd-response-v1
/// {timestamp: unix seconds}
/// {request method, upper case}
/// {request path and query, exactly as sent in the request line}
/// {response status code}
/// {SHA-256 of the response body bytes, lower-case hex}
/// ```
pub fn signing_string(
    timestamp: i64,
    method: &str,
    path: &str,
    status: u16,
    body: &[u8],
) -> String {
    format!(
        "{RESPONSE_CONTEXT}\n{timestamp}\n{}\n{path}\n{status}\n{}",
        method.to_ascii_uppercase(),
        hex(&Sha256::digest(body))
    )
}

/// The parsed `Licensd-Signature` header: `keyid=..,alg=ed25519,ts=..,sig=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub key_id: String,
    pub algorithm: String,
    pub timestamp: i64,
    pub signature: String,
}

impl SignatureHeader {
    /// Parses the header value. Order does not matter; unknown fields are ignored; each
    /// known field must appear once.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let (mut key_id, mut algorithm, mut timestamp, mut signature) = (None, None, None, None);
        for part in value.split(',') {
            let (name, v) = part
                .trim()
                .split_once('=')
                .ok_or(Error::Malformed("signature header (expected name=value)"))?;
            let slot = match name.trim() {
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
            "keyid={},alg={},ts={},sig={}",
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
    pub status: u16,
    pub body: &'a [u8],
    /// The `Licensd-Signature` header value.
    pub signature_header: &'a str,
}

/// Verifies a signed response: right key, Ed25519 signature over the [`signing_string`],
/// and a timestamp within `max_skew_secs` of `now` (unix seconds). To bind the answer
/// to this very request, also send a fresh `nonce` and check the body echoes it.
pub fn verify_response(
    key: &PublicKey,
    exchange: &Exchange<'_>,
    now: i64,
    max_skew_secs: i64,
) -> Result<SignatureHeader, Error> {
    let header = SignatureHeader::parse(exchange.signature_header)?;
    if header.algorithm != ALGORITHM {
        return Err(Error::Malformed("signature header (unknown alg)"));
    }
    key.check_id(&header.key_id)?;
    let message = signing_string(
        header.timestamp,
        exchange.method,
        exchange.path,
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

/// Verifies a license file offline: armour, signature by `key`, and `now < expires_at`.
/// The caller should then compare [`LicenseFilePayload::fingerprint`] with its device.
pub fn verify_license_file(
    key: &PublicKey,
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
    key.verify(&json, signature_b64)?;
    let payload: LicenseFilePayload = serde_json::from_slice(&json)
        .map_err(|_| Error::Malformed("license file (payload is not the expected JSON)"))?;
    key.check_id(&payload.key_id)?;
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

    fn sign(sk: &SigningKey, ts: i64, path: &str, body: &[u8]) -> String {
        let s = signing_string(ts, "post", path, 200, body);
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
            signing_string(1, "post", "/v1/x?a=b", 201, b""),
            "licensd-response-v1\n1\nPOST\n/v1/x?a=b\n201\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_response_verifies_and_any_change_breaks_it() {
        let (sk, pk) = keys();
        let header = sign(&sk, 100, "/v1/licenses/validate", b"{\"valid\":true}");
        let ok = Exchange {
            method: "POST",
            path: "/v1/licenses/validate",
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
        assert_eq!(
            verify_license_file(&other, &file, 15),
            Err(Error::BadSignature)
        );
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
                let e = Exchange { method: "POST", path: "/", status: 200, body: &body, signature_header: &h };
                prop_assert!(verify_response(&pk, &e, 0, 300).is_err());
            }
        }
    }
}
