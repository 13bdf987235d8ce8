//! Stripe webhook signatures, verified by hand: `Stripe-Signature: t=...,v1=...[,v1=...]`
//! is an HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint's signing secret.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far the signed timestamp may be from now, either way (Stripe's own default).
pub const TOLERANCE_SECS: i64 = 300;
/// Longest `Stripe-Signature` header read. Stripe sends a timestamp and a handful of
/// 64-hex-digit signatures (one per active secret, plus a `v0` in test mode).
pub const MAX_HEADER_LEN: usize = 1024;
/// Most `v1` signatures read from one header; more is not a Stripe delivery.
pub const MAX_V1: usize = 8;
/// A `v1` is an HMAC-SHA256: 32 bytes.
const SIG_LEN: usize = 32;

/// Why a signature was refused. The messages go to the caller (Stripe or a developer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Stale,
    Mismatch,
}

impl SignatureError {
    pub fn message(self) -> &'static str {
        match self {
            SignatureError::Missing => "the Stripe-Signature header is missing",
            SignatureError::Malformed => {
                "the Stripe-Signature header is malformed: expected t=TIMESTAMP,v1=SIGNATURE (at most 8 v1 entries, 1024 bytes)"
            }
            SignatureError::Stale => {
                "the Stripe-Signature timestamp is more than 300 s away from the server's clock"
            }
            SignatureError::Mismatch => {
                "no v1 signature matches any configured webhook secret (check LICENSD_STRIPE_WEBHOOK_SECRETS)"
            }
        }
    }
}

/// The parts of a `Stripe-Signature` header that matter: the timestamp and every `v1`.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<Vec<u8>>,
}

/// Parses the header. Unknown schemes (`v0`, future ones) are skipped; a `v1` that is
/// not 64 hex digits is skipped too, so one bad entry cannot hide a good one. A header
/// longer than [`MAX_HEADER_LEN`] or with more than [`MAX_V1`] signatures is refused
/// before any HMAC is computed, so a hostile header costs no more than a real one.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                let t = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed)?;
                if timestamp.replace(t).is_some() {
                    return Err(SignatureError::Malformed);
                }
            }
            "v1" => {
                match hex::decode(value.trim()) {
                    Ok(sig) if sig.len() == SIG_LEN => v1.push(sig),
                    _ => {}
                }
                if v1.len() > MAX_V1 {
                    return Err(SignatureError::Malformed);
                }
            }
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !v1.is_empty() => Ok(SignatureHeader { timestamp, v1 }),
        _ => Err(SignatureError::Malformed),
    }
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks `header` against `body` under every secret, at time `now` (unix seconds).
/// Any `v1` under any secret may match; each comparison is constant-time.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let parsed = parse_header(header)?;
    if now.abs_diff(parsed.timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut matched = false;
    for secret in secrets {
        // One HMAC of the body per secret, however many `v1` there are.
        let expected = mac(secret.expose_secret(), parsed.timestamp, body)
            .finalize()
            .into_bytes();
        for sig in &parsed.v1 {
            matched |= bool::from(expected.as_slice().ct_eq(sig.as_slice()));
        }
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `body` at `timestamp`: for tests and the CLI helper.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let sig = hex::encode(mac(secret, timestamp, body).finalize().into_bytes());
    format!("t={timestamp},v1={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> Vec<SecretString> {
        s.iter().map(|s| SecretString::from(*s)).collect()
    }

    const BODY: &[u8] = br#"{"id":"evt_1","type":"x"}"#;

    #[test]
    fn a_signature_made_with_any_configured_secret_verifies() {
        let header = sign("whsec_new", 1_000, BODY);
        let both = secrets(&["whsec_old", "whsec_new"]);
        assert_eq!(verify(Some(&header), BODY, &both, 1_000), Ok(()));
        assert_eq!(
            verify(Some(&header), BODY, &secrets(&["whsec_old"]), 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let good = sign("whsec_a", 50, BODY);
        let good_sig = good.split_once(",v1=").unwrap().1;
        let header = format!("t=50,v0={good_sig},v1={},v1={good_sig}", "ab".repeat(32));
        assert_eq!(
            verify(Some(&header), BODY, &secrets(&["whsec_a"]), 50),
            Ok(())
        );
        let only_v0 = format!("t=50,v0={good_sig}");
        assert_eq!(
            verify(Some(&only_v0), BODY, &secrets(&["whsec_a"]), 50),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_body_and_timestamp_are_covered() {
        let header = sign("whsec_a", 50, BODY);
        let s = secrets(&["whsec_a"]);
        assert_eq!(
            verify(Some(&header), b"{}", &s, 50),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace("t=50", "t=51");
        assert_eq!(
            verify(Some(&moved), BODY, &s, 50),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_stale() {
        let s = secrets(&["whsec_a"]);
        let header = sign("whsec_a", 10_000, BODY);
        assert_eq!(verify(Some(&header), BODY, &s, 10_300), Ok(()));
        assert_eq!(verify(Some(&header), BODY, &s, 9_700), Ok(()));
        assert_eq!(
            verify(Some(&header), BODY, &s, 10_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), BODY, &s, 9_699),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn missing_and_no_secrets() {
        assert_eq!(
            verify(None, BODY, &secrets(&["x"]), 0),
            Err(SignatureError::Missing)
        );
        let header = sign("x", 0, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &[], 0),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn odd_headers_never_panic() {
        let inputs = [
            "",
            ",",
            "=",
            "t=",
            "t=,v1=",
            "v1=abcd",
            "t=1",
            "t=1,t=2,v1=00",
            "t=abc,v1=00",
            "t=99999999999999999999999,v1=00",
            "t=-9223372036854775808,v1=00",
            "t=9223372036854775807,v1=00",
            "t=1,v1=zz",
            "t=1,v1=0",
            "t=1,v1=é",
            "t = 1 , v1 = 00",
            "\u{0}\u{ffff}",
            "t=1,,,,v1=00,=,==,v1",
        ];
        for input in inputs {
            let _ = parse_header(input);
            for now in [0, i64::MIN, i64::MAX] {
                let _ = verify(Some(input), BODY, &secrets(&["s"]), now);
            }
        }
        assert_eq!(
            parse_header("t=1,v1=zz"),
            Err(SignatureError::Malformed),
            "a v1 that is not hex is skipped, and then none is left"
        );
        assert_eq!(
            parse_header(&format!(" t = 7 , v1 = {} ", "0a".repeat(32))),
            Ok(SignatureHeader {
                timestamp: 7,
                v1: vec![vec![10; 32]]
            })
        );
        // Pseudo-random bytes, as a small fuzz.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            let len = (x % 40) as usize;
            let s: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"tv01=,abcdef9- \x7f"[(x % 16) as usize] as char
                })
                .collect();
            let _ = verify(Some(&s), BODY, &secrets(&["s"]), (x as i64) >> 1);
        }
    }

    #[test]
    fn oversized_headers_are_refused_before_any_hmac() {
        let good = sign("whsec_a", 50, BODY);
        let good_sig = good.split_once(",v1=").unwrap().1.to_owned();
        let junk = format!("v1={}", "ab".repeat(32));
        let eight = format!("t=50,{},v1={good_sig}", [junk.as_str(); 7].join(","));
        assert_eq!(
            verify(Some(&eight), BODY, &secrets(&["whsec_a"]), 50),
            Ok(())
        );
        let nine = format!("t=50,{},v1={good_sig}", [junk.as_str(); 8].join(","));
        assert_eq!(parse_header(&nine), Err(SignatureError::Malformed));
        let long = format!("{good},v0={}", "0".repeat(MAX_HEADER_LEN));
        assert_eq!(parse_header(&long), Err(SignatureError::Malformed));
        // A v1 of the wrong length is no signature at all.
        assert_eq!(parse_header("t=1,v1=00"), Err(SignatureError::Malformed));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // Bounded, so it runs in every `cargo test` (CI's test command).
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn any_header_parses_or_is_refused_without_panicking(header in "\\PC{0,1200}") {
                if let Ok(parsed) = parse_header(&header) {
                    prop_assert!(header.len() <= MAX_HEADER_LEN);
                    prop_assert!(!parsed.v1.is_empty() && parsed.v1.len() <= MAX_V1);
                    prop_assert!(parsed.v1.iter().all(|s| s.len() == SIG_LEN));
                }
            }

            #[test]
            fn headers_built_from_parts_never_panic(
                parts in proptest::collection::vec(("(t|v1|v0| t |x|)", "[0-9a-f=, -]{0,70}"), 0..40),
                now in any::<i64>(),
            ) {
                let header: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let header = header.join(",");
                let _ = verify(Some(&header), BODY, &secrets(&["s"]), now);
            }

            #[test]
            fn a_signed_body_verifies_among_up_to_seven_decoys(
                secret in "[ -~]{1,40}",
                timestamp in -10_000_000_000i64..10_000_000_000,
                body in proptest::collection::vec(any::<u8>(), 0..512),
                decoys in proptest::collection::vec("[0-9a-f]{64}", 0..7),
            ) {
                let signed = sign(&secret, timestamp, &body);
                let mut header = signed.clone();
                for d in &decoys {
                    header.push_str(&format!(",v1={d}"));
                }
                prop_assert_eq!(verify(Some(&header), &body, &secrets(&[&secret]), timestamp), Ok(()));
                let mut other = body.clone();
                other.push(0);
                prop_assert_eq!(
                    verify(Some(&header), &other, &secrets(&[&secret]), timestamp),
                    Err(SignatureError::Mismatch)
                );
            }
        }
    }
}
