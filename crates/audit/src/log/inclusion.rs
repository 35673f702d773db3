//! `verify --checkpoint`: each pulse given must be in the checkpoint's tree, shown by an
//! inclusion proof (RFC 9162 2.1.3.2) from the leaf hash of its outputValue at the proof's
//! leafIndex to the checkpoint's root.
//!
//! Proofs are the beacon's answers to `GET /beacon/2.0/chain/{c}/pulse/{p}/inclusion?size=N`,
//! `{"leafIndex", "treeSize", "inclusionProof": [base64…], "checkpoint"}`: read from files
//! (`--inclusion`: one answer, an array of them, or JSON Lines) or fetched (`--url`). An answer
//! fetched for a pulse is that pulse's; one from a file is matched to a pulse by trying it
//! (it names no pulse unless it carries `chainIndex` and `pulseIndex`), since only the right
//! pulse's leaf can lead to the root.

use super::{b64, problem, Kind, Trust, FIELD_CHECKPOINT, FIELD_PROOF};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::input::Location;
use lavabeacon_format::Problem;
use lavabeacon_store::{redact, redact_urls};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::note::Note;
use lavabeacon_tlog::{merkle, Hash, ProofError};
use std::collections::HashSet;
use std::path::Path;

/// A pulse given to `verify`, as far as the log is concerned.
#[derive(Debug, Clone)]
pub struct PulseRef {
    pub chain: u64,
    pub index: u64,
    pub output: Hash512,
    pub location: Option<Location>,
}

/// One answer of the inclusion route.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    leaf_index: u64,
    tree_size: u64,
    inclusion_proof: Vec<String>,
    #[serde(default)]
    checkpoint: Option<String>,
    /// Not in the route's answer; honoured when a file adds them, to bind a proof to a pulse.
    #[serde(default)]
    chain_index: Option<u64>,
    #[serde(default)]
    pulse_index: Option<u64>,
}

/// An inclusion proof read.
#[derive(Debug, Clone)]
pub struct Proof {
    /// Where it came from: `file:line`, or the URL.
    pub origin: String,
    /// The pulse it is for, when known (fetched for it, or named in the answer).
    pub pulse: Option<(u64, u64)>,
    pub leaf: u64,
    pub size: u64,
    pub hashes: Vec<Hash>,
    /// The checkpoint note served with it.
    pub served: Option<String>,
}

impl Proof {
    /// An answer's text, from `origin`.
    fn parse(value: serde_json::Value, origin: String) -> Result<Proof, String> {
        let a: Answer = serde_json::from_value(value)
            .map_err(|e| format!("{origin}: not an inclusion proof answer: {e}"))?;
        let hashes = a
            .inclusion_proof
            .iter()
            .enumerate()
            .map(|(i, h)| {
                STANDARD
                    .decode(h)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        format!("{origin}: inclusionProof[{i}] is not the base64 of 32 bytes")
                    })
            })
            .collect::<Result<Vec<Hash>, String>>()?;
        Ok(Proof {
            origin,
            pulse: a.chain_index.zip(a.pulse_index),
            leaf: a.leaf_index,
            size: a.tree_size,
            hashes,
            served: a.checkpoint,
        })
    }

    /// Whether it leads from `leaf` to `root` in a tree of `size`.
    fn proves(&self, leaf: &Hash, size: u64, root: &Hash) -> Result<(), ProofError> {
        if self.size != size {
            return Err(ProofError::Impossible(format!(
                "it is for a tree of {}, the checkpoint's has {size}",
                self.size
            )));
        }
        merkle::verify_inclusion(leaf, self.leaf, size, &self.hashes, root)
    }
}

/// Reads `--inclusion` files. A file that cannot be read is an error (a usage error); an
/// answer in it that cannot be read is a problem.
pub fn read_files(paths: &[impl AsRef<Path>]) -> Result<(Vec<Proof>, Vec<Problem>), String> {
    let mut proofs = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
        for (origin, value) in answers(&name, &text) {
            match value.and_then(|v| Proof::parse(v, origin)) {
                Ok(p) => proofs.push(p),
                Err(e) => problems.push(problem(Kind::Missing, FIELD_PROOF, e)),
            }
        }
    }
    Ok((proofs, problems))
}

/// The answers of a file: one JSON value (an answer, or an array of them), or JSON Lines.
fn answers(name: &str, text: &str) -> Vec<(String, Result<serde_json::Value, String>)> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return match v {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("{name}[{i}]"), Ok(v)))
                .collect(),
            v => vec![(format!("{name}:1"), Ok(v))],
        };
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let origin = format!("{name}:{}", i + 1);
            let v = serde_json::from_str(l).map_err(|e| format!("{origin}: not JSON: {e}"));
            (origin, v)
        })
        .collect()
}

/// Fetches the inclusion proof of each pulse in the tree of `size` from the beacon at `base`
/// (no trailing slash). An answer other than 200 is a problem of its pulse; a beacon that
/// cannot be reached is an error.
pub fn fetch(
    base: &str,
    pulses: &[(u64, u64)],
    size: u64,
) -> Result<(Vec<Proof>, Vec<Problem>), String> {
    let mut proofs = Vec::new();
    let mut problems = Vec::new();
    for &(chain, index) in pulses {
        let url = format!("{base}/beacon/2.0/chain/{chain}/pulse/{index}/inclusion?size={size}");
        let shown = redact(&url);
        let text = match ureq::get(&url).call() {
            Ok(resp) => resp.into_string().map_err(|e| format!("{shown}: {e}"))?,
            Err(ureq::Error::Status(code, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                let body: String = body.trim().chars().take(200).collect();
                problems.push(
                    problem(
                        Kind::Missing,
                        FIELD_PROOF,
                        format!(
                            "no inclusion proof for pulse {chain}/{index}: {shown} answered {code} {body}"
                        ),
                    )
                    .at(chain, index),
                );
                continue;
            }
            Err(e) => return Err(redact_urls(&e.to_string())),
        };
        let parsed = serde_json::from_str(&text)
            .map_err(|e| format!("{shown}: not JSON: {e}"))
            .and_then(|v| Proof::parse(v, shown.clone()));
        match parsed {
            Ok(mut p) => {
                // Fetched for this pulse: it is this pulse's, whatever the answer says.
                p.pulse = Some((chain, index));
                proofs.push(p);
            }
            Err(e) => problems.push(problem(Kind::Missing, FIELD_PROOF, e).at(chain, index)),
        }
    }
    Ok((proofs, problems))
}

/// Whether one of `proofs` already puts `pulse` in `cp`'s tree (so it needs no fetching).
pub fn proven(pulse: &PulseRef, proofs: &[Proof], cp: &Checkpoint) -> bool {
    let leaf = merkle::leaf_hash(pulse.output.as_bytes());
    proofs.iter().any(|p| {
        p.pulse.is_none_or(|id| id == (pulse.chain, pulse.index))
            && p.proves(&leaf, cp.size, &cp.root).is_ok()
    })
}

/// The roots of the checkpoints served with proofs that the log key signed (size, root), and
/// a problem for each that contradicts `cp` (same size, another root: the log signed two
/// trees of one size).
fn served_roots(
    proofs: &[Proof],
    cp: &Checkpoint,
    trust: &Trust,
) -> (Vec<Option<(u64, Hash)>>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut reported = HashSet::new();
    let roots = proofs
        .iter()
        .map(|p| {
            let note = Note::parse(p.served.as_deref()?.as_bytes()).ok()?;
            let c = Checkpoint::parse(&note.text).ok()?;
            // A checkpoint the log did not sign proves nothing either way.
            if c.origin != trust.log_key.name || note.verify(&trust.log_key).is_err() {
                return None;
            }
            if c.size == cp.size && c.root != cp.root && reported.insert(c.root) {
                problems.push(problem(
                    Kind::Fork,
                    FIELD_CHECKPOINT,
                    format!(
                        "the log key signed two checkpoints of size {}: root {} (served with {}) and the checkpoint's {}: the log is forked",
                        c.size,
                        b64(&c.root),
                        p.origin,
                        b64(&cp.root)
                    ),
                ));
            }
            Some((c.size, c.root))
        })
        .collect();
    (roots, problems)
}

/// Checks that every pulse is in `cp`'s tree. Returns how many are, and a problem for each
/// that is not; proofs that prove none of the pulses are noted in `notes`.
pub fn check(
    pulses: &[PulseRef],
    proofs: &[Proof],
    cp: &Checkpoint,
    trust: &Trust,
    notes: &mut Vec<String>,
) -> (u64, Vec<Problem>) {
    let (served, mut problems) = served_roots(proofs, cp, trust);
    let mut used = vec![false; proofs.len()];
    let mut included = 0;
    let mut seen = HashSet::new();
    for pulse in pulses {
        if !seen.insert((pulse.chain, pulse.index, pulse.output)) {
            continue;
        }
        let leaf = merkle::leaf_hash(pulse.output.as_bytes());
        let here = |p: &Problem| {
            p.clone()
                .at(pulse.chain, pulse.index)
                .located(pulse.location.as_ref())
        };
        // This pulse's own proofs first, then those that name no pulse.
        let candidates: Vec<usize> = (0..proofs.len())
            .filter(|&i| proofs[i].pulse == Some((pulse.chain, pulse.index)))
            .chain((0..proofs.len()).filter(|&i| proofs[i].pulse.is_none()))
            .collect();
        if let Some(&i) = candidates
            .iter()
            .find(|&&i| proofs[i].proves(&leaf, cp.size, &cp.root).is_ok())
        {
            used[i] = true;
            included += 1;
            continue;
        }
        // Not in the checkpoint's tree. In the tree of a checkpoint the log signed and served
        // with the proof? Then the log shows this pulse in another tree than the checkpoint.
        let elsewhere = candidates.iter().find_map(|&i| {
            let (size, root) = served[i]?;
            proofs[i]
                .proves(&leaf, size, &root)
                .ok()
                .map(|()| (i, size, root))
        });
        let found = if let Some((i, size, root)) = elsewhere {
            used[i] = true;
            let why = if size == cp.size {
                "the log is forked"
            } else {
                "a tree of another size: fetch the proof for the checkpoint's size"
            };
            problem(
                Kind::Fork,
                FIELD_PROOF,
                format!(
                    "its proof ({}) leads to root {} of a checkpoint the log key signed for size {size}, not to the checkpoint's root {}: {why}",
                    proofs[i].origin,
                    b64(&root),
                    b64(&cp.root)
                ),
            )
        } else if let Some(&i) = candidates.iter().find(|&&i| proofs[i].pulse.is_some()) {
            used[i] = true;
            let e = proofs[i].proves(&leaf, cp.size, &cp.root).unwrap_err();
            let kind = if matches!(e, ProofError::Mismatch) {
                Kind::Fork
            } else {
                Kind::Missing
            };
            problem(
                kind,
                FIELD_PROOF,
                format!(
                    "the inclusion proof of leaf {} ({}) does not verify: {e}",
                    proofs[i].leaf, proofs[i].origin
                ),
            )
        } else {
            let others = candidates.len();
            let tried = if others > 0 {
                format!(
                    " (none of the {others} proofs given leads from its outputValue to the checkpoint's root)"
                )
            } else {
                String::new()
            };
            problem(
                Kind::Missing,
                FIELD_PROOF,
                format!(
                    "no inclusion proof for pulse {}/{}{tried}",
                    pulse.chain, pulse.index
                ),
            )
        };
        problems.push(here(&found));
    }
    for (p, used) in proofs.iter().zip(used) {
        if !used {
            notes.push(format!(
                "inclusion proof {} (leaf {} of {}) proves none of the pulses given",
                p.origin, p.leaf, p.size
            ));
        }
    }
    (included, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::{key, note};
    use crate::log::TrustArgs;
    use lavabeacon_tlog::note::KeyKind;

    fn outputs(n: u8) -> Vec<Hash512> {
        (0..n).map(|i| Hash512::from([i; 64])).collect()
    }

    fn leaves(o: &[Hash512]) -> Vec<Hash> {
        o.iter().map(|h| merkle::leaf_hash(h.as_bytes())).collect()
    }

    /// The proof of leaf `i` of `l`, made by recomputing subtrees (as the store does from
    /// stored ones).
    fn proof_of(
        l: &[Hash],
        i: u64,
        origin: &str,
        pulse: Option<(u64, u64)>,
        served: Option<String>,
    ) -> Proof {
        let hashes = merkle::inclusion_ranges(i, l.len() as u64)
            .unwrap()
            .iter()
            .map(|&(a, b)| merkle::root(&l[a as usize..b as usize]))
            .collect();
        Proof {
            origin: origin.into(),
            pulse,
            leaf: i,
            size: l.len() as u64,
            hashes,
            served,
        }
    }

    fn pulse(i: u64, output: Hash512) -> PulseRef {
        PulseRef {
            chain: 1,
            index: i + 1,
            output,
            location: None,
        }
    }

    #[test]
    fn proofs_are_matched_to_their_pulses_and_a_fork_is_named() {
        let log = key("example.org/log", KeyKind::Ed25519, 1);
        let trust = Trust::from_args(
            &TrustArgs {
                log_key: Some(log.1.to_vkey()),
                ..TrustArgs::default()
            },
            "--checkpoint",
        )
        .unwrap();
        let o = outputs(7);
        let l = leaves(&o);
        let root = merkle::root(&l);
        let cp = Checkpoint {
            origin: log.1.name.clone(),
            size: 7,
            root,
            extensions: vec![],
        };
        let served = note(&log, 7, root, &[]);
        let proofs = vec![
            proof_of(&l, 5, "a:1", None, Some(served.clone())),
            proof_of(&l, 2, "a:2", Some((1, 3)), None),
        ];
        let pulses = vec![pulse(5, o[5]), pulse(2, o[2])];
        let mut notes = Vec::new();
        let (n, problems) = check(&pulses, &proofs, &cp, &trust, &mut notes);
        assert_eq!((n, problems.len(), notes.len()), (2, 0, 0), "{problems:?}");

        // A pulse without a proof, and a proof for none of the pulses.
        let (n, problems) = check(&[pulse(4, o[4])], &proofs[..1], &cp, &trust, &mut notes);
        assert_eq!(n, 0);
        assert_eq!(
            problems[0].render(),
            "chain 1 pulse 5: inclusionProof: no inclusion proof for pulse 1/5 (none of the 1 proofs given leads from its outputValue to the checkpoint's root)"
        );
        assert_eq!(
            notes,
            ["inclusion proof a:1 (leaf 5 of 7) proves none of the pulses given"]
        );

        // A changed hash in a proof bound to its pulse.
        let mut bad = proofs[1].clone();
        bad.hashes[0][0] ^= 1;
        let (_, problems) = check(&[pulse(2, o[2])], &[bad], &cp, &trust, &mut notes);
        assert!(
            problems[0]
                .message
                .contains("does not verify: the proof leads to another root"),
            "{problems:?}"
        );

        // The checkpoint checked is another tree of the same size, which the log key signed
        // too; the proofs lead to the served checkpoint's root.
        let forked = Checkpoint {
            root: [9; 32],
            ..cp.clone()
        };
        let (n, problems) = check(&pulses[..1], &proofs[..1], &forked, &trust, &mut notes);
        assert_eq!(n, 0);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0]
            .message
            .contains("the log key signed two checkpoints of size 7"));
        assert!(problems[1].message.contains("the log is forked"));
    }

    #[test]
    fn answer_files_may_be_one_object_an_array_or_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.json");
        let answer = r#"{"leafIndex": 0, "treeSize": 1, "inclusionProof": [], "checkpoint": "x"}"#;
        std::fs::write(&one, format!("{answer}\n")).unwrap();
        let lines = dir.path().join("lines.jsonl");
        std::fs::write(
            &lines,
            format!("{answer}\nnot json\n{{\"leafIndex\": 1}}\n"),
        )
        .unwrap();
        let array = dir.path().join("array.json");
        std::fs::write(&array, format!("[{answer}, {answer}]")).unwrap();
        let (proofs, problems) = read_files(&[one, lines, array]).unwrap();
        assert_eq!(proofs.len(), 4);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].message.contains("lines.jsonl:2: not JSON"));
        assert!(problems[1]
            .message
            .contains("lines.jsonl:3: not an inclusion proof answer"));
        assert!(read_files(&[dir.path().join("missing")]).is_err());
    }
}
