//! What signing one answer costs, against its parts measured in the same run, interleaved:
//! the whole `Licensd-Signature` header (`Signer::sign_response`), and alone: Ed25519 over
//! a signing string, SHA-256 of a typical validate answer, the signing string's formatting.
//!
//!   cargo bench --bench signing            # ROUNDS=5 ITERS=20000
//!
//! (Under `cargo test --all-targets` it runs each part ten times, as a check that it runs.)
//!
//! Prints one table row per part: ns per call (median of the rounds) and its share of
//! the whole.
use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer as _, SigningKey};
use licensd::licensing::signing::Signer;
use sha2::{Digest, Sha256};

/// A validate answer of the public API, as the server renders it (about 600 bytes).
const BODY: &[u8] = br#"{"valid":true,"code":"VALID","license":{"id":"0d6f9d4e-8a31-4b6e-9a77-4b1f0c3f3e11","key":"A1B2C-D3E4F-G5H6I-J7K8L-M9N0P","status":"active","product":{"id":"00000000-0000-0000-0000-00000000be01","slug":"bench","name":"Bench App"},"max_activations":null,"activations_count":0,"expires_at":null,"entitlements":[],"created_at":"2026-11-25T16:00:00Z"},"activation":null,"stale_since":null}"#;
const REQUEST: &[u8] = br#"{"key":"A1B2C-D3E4F-G5H6I-J7K8L-M9N0P"}"#;

/// One measured part: its name and the call it times.
type Part<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn time(iters: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let env = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this once, briefly.
    let (rounds, iters) = if std::env::args().any(|a| a == "--bench") {
        (env("ROUNDS", 5), env("ITERS", 20_000))
    } else {
        (1, 10)
    };
    let seed = [7u8; 32];
    let signer = Signer::from_seed(&seed);
    let key = SigningKey::from_bytes(&seed);
    let request_sha = Sha256::digest(REQUEST);
    let message = licensd_client::signing_string_with_digests(
        1_764_000_000,
        "POST",
        "/v1/licenses/validate",
        &request_sha,
        200,
        &Sha256::digest(BODY),
    );

    let ring_key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("seed");
    assert_eq!(
        ring_key.sign(message.as_bytes()).as_ref(),
        key.sign(message.as_bytes()).to_bytes(),
        "Ed25519 is deterministic: both libraries sign alike"
    );

    let parts: [Part; 5] = [
        (
            "whole header: Signer::sign_response",
            Box::new(|| {
                black_box(signer.sign_response(
                    black_box(1_764_000_000),
                    "POST",
                    "/v1/licenses/validate",
                    &request_sha,
                    200,
                    black_box(BODY),
                ));
            }),
        ),
        (
            "Ed25519 sign of the signing string",
            Box::new(|| {
                black_box(key.sign(black_box(message.as_bytes())));
            }),
        ),
        (
            "Ed25519 sign of the signing string, ring (BoringSSL's code)",
            Box::new(|| {
                black_box(ring_key.sign(black_box(message.as_bytes())));
            }),
        ),
        (
            "SHA-256 of the answer body",
            Box::new(|| {
                black_box(Sha256::digest(black_box(BODY)));
            }),
        ),
        (
            "signing string (format, hex)",
            Box::new(|| {
                black_box(licensd_client::signing_string_with_digests(
                    black_box(1_764_000_000),
                    "POST",
                    "/v1/licenses/validate",
                    &request_sha,
                    200,
                    &request_sha,
                ));
            }),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); parts.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in parts.iter().enumerate() {
            samples[i].push(time(iters, f));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "signing one answer ({} B body), {rounds} rounds x {iters} calls, interleaved; load: {}",
        BODY.len(),
        load.trim()
    );
    println!();
    println!("| part | ns per call | share of the whole |");
    println!("|---|---:|---:|");
    let whole = median(samples[0].clone());
    for ((name, _), s) in parts.iter().zip(samples) {
        let ns = median(s);
        println!("| {name} | {ns:.0} | {:.2} |", ns / whole);
    }
}
