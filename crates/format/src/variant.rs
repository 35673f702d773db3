//! Other beacons that speak the NIST 2.0 format, and how they differ (spec §3, "variants found
//! in the wild"). Everything here was confirmed against real pulses unless said otherwise; the
//! pulses are in `tests/vectors/other-beacons/`.

use crate::hash::{sha3_512, sha512, Hash512};
use crate::message::{output_value, output_value_inmetro};
use crate::pulse::{Externals, Pulse};
use num_bigint::BigUint;
use serde::Serialize;

/// Which beacon's rules a pulse follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// NIST (and lavabeacon): outputValue = SHA-512(M ‖ sig).
    Nist,
    /// INMETRO (Brazil): outputValue = SHA-512(M ‖ u32(len(sig)) ‖ sig).
    Inmetro,
    /// CLCERT (Chile): cipherSuite 1, external list, hashedMessage, Sloth outputValue.
    Clcert,
}

impl Variant {
    /// Decides from the pulse itself: CLCERT by its suite and fields, INMETRO by its host.
    pub fn detect(p: &Pulse) -> Variant {
        if p.cipher_suite == 1
            || matches!(p.external, Externals::List(_))
            || p.hashed_message.is_some()
            || p.sloth.is_some()
        {
            Variant::Clcert
        } else if host_of(&p.uri)
            .is_some_and(|h| h == "inmetro.gov.br" || h.ends_with(".inmetro.gov.br"))
        {
            Variant::Inmetro
        } else {
            Variant::Nist
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Nist => "nist",
            Variant::Inmetro => "inmetro",
            Variant::Clcert => "clcert",
        }
    }

    /// The value the previous pulse's precommitmentValue must equal, given this pulse's
    /// localRandomValue. NIST: SHA-512; CLCERT: SHA3-512 (its verifier's rule); INMETRO: the
    /// value itself (its generator's source; not yet confirmed on two consecutive pulses).
    pub fn commitment_of(self, local_random_value: &Hash512) -> Hash512 {
        match self {
            Variant::Nist => sha512(&[&local_random_value.0]),
            Variant::Clcert => sha3_512(&[&local_random_value.0]),
            Variant::Inmetro => *local_random_value,
        }
    }

    /// Whether the pulse takes part in the chain. CLCERT marks pulses it considers invalid
    /// with statusCode 102 or 103; its own verifier skips them and links the next pulse to
    /// the closest earlier valid one.
    pub fn is_link_valid(self, status_code: u32) -> bool {
        !(self == Variant::Clcert && matches!(status_code, 102 | 103))
    }
}

fn host_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let host = rest.split(['/', ':', '?']).next()?;
    Some(host)
}

/// How outputValue was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputCheck {
    /// It matched the variant's rule.
    Ok,
    /// It did not; `expected` is what the rule gives, and `hint` names another rule that would
    /// have matched (e.g. an INMETRO pulse served under another host).
    Mismatch {
        /// What the variant's rule gives.
        expected: String,
        /// Another beacon's rule that matches, if any.
        hint: Option<&'static str>,
    },
}

/// Checks outputValue by the variant's rule.
pub fn check_output(variant: Variant, p: &Pulse, m: &[u8]) -> OutputCheck {
    let sig = &p.signature_value;
    match variant {
        Variant::Nist | Variant::Inmetro => {
            let rule = |v| {
                if v == Variant::Nist {
                    output_value(m, sig)
                } else {
                    output_value_inmetro(m, sig)
                }
            };
            let ours = rule(variant);
            if ours == p.output_value {
                return OutputCheck::Ok;
            }
            // Only on a mismatch: does the other beacon's rule explain it?
            let other = if variant == Variant::Nist {
                Variant::Inmetro
            } else {
                Variant::Nist
            };
            OutputCheck::Mismatch {
                expected: ours.to_hex_upper(),
                hint: (rule(other) == p.output_value).then_some(if other == Variant::Nist {
                    "NIST"
                } else {
                    "INMETRO"
                }),
            }
        }
        Variant::Clcert => match &p.sloth {
            None => OutputCheck::Mismatch {
                expected: "a Sloth witness (`witness`, `iterations`) to check outputValue against"
                    .into(),
                hint: None,
            },
            Some(s) => {
                let by_witness = sha3_512(&[s.witness.as_bytes()]);
                if by_witness != p.output_value {
                    return OutputCheck::Mismatch {
                        expected: by_witness.to_hex_upper(),
                        hint: None,
                    };
                }
                if sloth_verify(m, sig, &s.witness, s.iterations) {
                    OutputCheck::Ok
                } else {
                    OutputCheck::Mismatch {
                        expected:
                            "a witness whose Sloth inversion leads to SHA3-512(M ‖ signature)"
                                .into(),
                        hint: None,
                    }
                }
            }
        },
    }
}

/// CLCERT's fixed 2048-bit Sloth prime (≡ 3 mod 4). CLCERT's verifier derives it as the first
/// prime p ≡ 3 (mod 4) at or above 1 + (H("prime0") ‖ … ‖ H("prime3") | 2^2047), with
/// H(x) = hex SHA3-512(u0 ‖ x) and u0 = hex SHA3-512("0" × 2195); the real pulse in
/// `tests/vectors/other-beacons/` verifies with it.
const SLOTH_PRIME_HEX: &str = concat!(
    "d7eacc12ed073ff28f368930468af5de36394a5973a4e6f8b430bb1962a3f537",
    "2e56c6217b841993a6d0b80cc57f1bd7a4b4f4f94021c95d6780f9b0cb827a4d",
    "de6d642bfe92ba12b9a5b4b296394c072018ce0caf93dded2834795ddb300b37",
    "ed3089247b6993248a0aa967d815beaa434407c85667fee1a07dda3c03317a9b",
    "7c507f114baa63441336f9ff6ce3b2017b9aa5ee7b8493104f61fefdd31894ff",
    "0200d200b5ab7da19a7e181192c7d55d2727eb87c3d5e618b6baf73a110d21b5",
    "a52435d3a4ca6775ef342222ddd78423cb11735a41b6fb55767fe61e94836276",
    "f306645656f1ded9f5035fd276a92cf2bb0ad3334c2d10e231bd825e4b9aaf23",
);

/// Cap on Sloth iterations: each is one 2048-bit squaring, so a hostile pulse must not be able
/// to make a verifier spin. CLCERT publishes 120 (180 in its older format).
pub const MAX_SLOTH_ITERATIONS: u32 = 100_000;

fn sloth_verify(m: &[u8], sig: &[u8], witness_hex: &str, iterations: u32) -> bool {
    if iterations > MAX_SLOTH_ITERATIONS {
        return false;
    }
    let hexs = |parts: &[&[u8]]| sha3_512(parts).to_hex_lower();
    let p = BigUint::parse_bytes(SLOTH_PRIME_HEX.as_bytes(), 16).expect("constant prime");
    // u = hex(SHA3-512(M ‖ sig)), then used as ASCII text
    let u = hexs(&[m, sig]);
    let mut seed = String::new();
    for i in 0..4 {
        seed.push_str(&hexs(&[u.as_bytes(), format!("seed{i}").as_bytes()]));
    }
    let s = BigUint::parse_bytes(seed.as_bytes(), 16).expect("hex") % &p;
    let Some(mut v) = BigUint::parse_bytes(witness_hex.as_bytes(), 16) else {
        return false;
    };
    let mask = (BigUint::from(1u8) << 1024u32) - 1u8;
    let two = BigUint::from(2u8);
    for _ in 0..iterations {
        let sq = v.modpow(&two, &p);
        v = if (&v % 2u8) == BigUint::from(0u8) {
            sq
        } else {
            &p - sq
        };
        v = (v ^ &mask) % &p;
    }
    v == s
}
