//! Signing through SoftHSM2 over PKCS#11: signatures per second for Ed25519 and RSA-4096, with
//! one and two threads, and the time from "pulse ready to sign" to "signed" (the chain
//! builder's `next`: M built, signed in the token, outputValue computed).
//!
//! `cargo bench -p lavabeacon-signer --bench sign`

#[path = "../tests/common/mod.rs"]
mod common;

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_signer::cert::Validity;
use lavabeacon_signer::pkcs11::Pkcs11Key;
use lavabeacon_signer::Suite;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches` runs this too; the real run is `cargo bench`
    }
    common::tokens().expect("SoftHSM2 is needed for this benchmark");
    for (token, suite, n) in [
        ("lb-bench-ed25519", Suite::Ed25519, 4000u64),
        ("lb-bench-rsa", Suite::Rsa { bits: 4096 }, 300),
    ] {
        let key = Pkcs11Key::generate(&common::config(token, "bench-key", suite)).unwrap();
        let cert = key
            .issue_certificate("bench", true, Validity::years(1), None)
            .unwrap();
        let signer = Arc::new(key.into_signer(&cert).unwrap());
        for threads in [1u64, 2] {
            let started = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let s = signer.clone();
                    std::thread::spawn(move || {
                        for i in 0..n / threads {
                            s.key()
                                .sign_raw(&[t.to_be_bytes(), i.to_be_bytes()].concat())
                                .unwrap();
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            println!(
                "{}: {:.0} signatures/s with {threads} thread(s) ({n} signatures)",
                suite.name(),
                n as f64 / started.elapsed().as_secs_f64()
            );
        }
        // Ready to sign → signed, one pulse at a time as the engine does it.
        let l = |i: u64| sha512(&[b"bench", &i.to_be_bytes()]);
        let mut b = ChainBuilder::new_chain(ChainParams::new(
            "https://beacon.example.org/beacon/2.0",
            1,
            60_000,
        ));
        let mut lat = Vec::new();
        for i in 1..=n / 4 {
            let next = NextPulse::new(
                1_790_000_040_000 + i as i64 * 60_000,
                l(i),
                precommitment(&l(i + 1)),
            );
            let s = Instant::now();
            b.next(next, signer.as_ref()).unwrap();
            lat.push(s.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        println!(
            "{}: pulse ready → signed: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} pulses)",
            suite.name(),
            pct(0.5),
            pct(0.99),
            lat[lat.len() - 1],
            lat.len()
        );
    }
}
