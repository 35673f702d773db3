//! Faults planted in a generated chain: each is re-signed and re-linked so that a correct
//! verifier reports exactly its pulse and its check, and nothing else.

use lavabeacon_format::builder::{ChainBuilder, LinkFacts};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::{output_value, signed_message};
use lavabeacon_format::suite::PulseSigner;
use lavabeacon_format::Pulse;
use rand::rngs::StdRng;
use rand::{Rng, RngCore};

/// A planted fault: where, what, and which check must catch it (`NAME.faults.json`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Fault {
    pub chain_index: u64,
    pub pulse_index: u64,
    pub kind: &'static str,
    pub check: &'static str,
}

/// The faults planted in turn: (kind, the check that reports it).
const KINDS: [(&str, &str); 4] = [
    ("signature", "signature"),
    ("previous", "previous"),
    ("precommitment", "precommitment"),
    ("skip-value", "skip_value"),
];

/// `count` distinct pulse indexes in `2..=pulses`, ascending: the first pulse stays clean.
pub(super) fn positions(count: u64, pulses: u64, rng: &mut StdRng) -> Vec<u64> {
    let mut at: Vec<u64> = Vec::new();
    while (at.len() as u64) < count {
        let k = rng.gen_range(2..=pulses);
        if !at.contains(&k) {
            at.push(k);
        }
    }
    at.sort_unstable();
    at
}

/// Plants the `nth` fault in `p` (already built), keeping every later link consistent with it:
/// the builder is moved on from the changed pulse.
pub(super) fn plant(
    nth: usize,
    p: &mut Pulse,
    rng: &mut StdRng,
    signer: &dyn PulseSigner,
    builder: &mut ChainBuilder,
) -> Result<Fault, String> {
    let (kind, check) = KINDS[nth % KINDS.len()];
    let mut noise = [0u8; 64];
    rng.fill_bytes(&mut noise);
    match kind {
        "signature" => {
            // A flipped bit; outputValue is made from the bad signature, so only the
            // signature check can catch it.
            let i = rng.gen_range(0..p.signature_value.len());
            p.signature_value[i] ^= 1 << rng.gen_range(0..8);
            let m = signed_message(p);
            p.output_value = output_value(&m, &p.signature_value);
        }
        "previous" => {
            p.list_values[0].value = Hash512(noise);
            resign(p, signer)?;
        }
        "precommitment" => {
            // A value the pulse before did not commit to, with statusCode 0 all the same.
            p.local_random_value = Hash512(noise);
            resign(p, signer)?;
        }
        _ => {
            p.list_values[1].value = Hash512(noise);
            resign(p, signer)?;
        }
    }
    let mut state = builder.state().expect("a pulse was built").clone();
    let facts = LinkFacts::of(p).map_err(|e| e.to_string())?;
    for f in state.first_of.iter_mut() {
        if f.index == p.pulse_index {
            *f = facts.clone();
        }
    }
    state.last = facts;
    *builder = ChainBuilder::resume(builder.params().clone(), state);
    Ok(Fault {
        chain_index: p.chain_index,
        pulse_index: p.pulse_index,
        kind,
        check,
    })
}

fn resign(p: &mut Pulse, signer: &dyn PulseSigner) -> Result<(), String> {
    let m = signed_message(p);
    p.signature_value = signer.sign(&m).map_err(|e| e.to_string())?;
    p.output_value = output_value(&m, &p.signature_value);
    Ok(())
}
