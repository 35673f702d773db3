//! The beacon's transparency log as an auditor checks it (docs/transparency.md): a checkpoint
//! (a C2SP signed note) trusted only once the log's key and enough witnesses have signed it,
//! then either inclusion proofs of single pulses against it (`verify`, [`inclusion`]) or every
//! entry of the log replayed against the chain and hashed again up to its root (`replay`,
//! [`entries`]).
//!
//! Everything found is a [`Problem`] in the command's usual report, with its `field` one of
//! [`FIELDS`] so that the log's own verdict can be told from the pulses'; the log adds one line
//! of text and a `log` object in `--json` ([`LogSummary`]).

pub(crate) mod entries;
pub(crate) mod inclusion;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lavabeacon_format::{Check, Problem, Report};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::note::{KeyKind, Note, NoteError, VerifierKey};
use lavabeacon_tlog::{cosignature, merkle, Hash};
use std::io::Write;

/// The flags `verify` and `replay` share to say whom a log checkpoint must be signed by. The
/// checkpoint itself is `verify --checkpoint` but `replay --log-checkpoint` (replay's
/// `--checkpoint` was already its progress file).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrustArgs {
    /// The log's key, a C2SP vkey `<name>+<hex id>+<base64(0x01 ‖ Ed25519 key)>` (the beacon
    /// serves it at /log/key; take it from its operator). The checkpoint's origin must be its
    /// name.
    #[arg(long = "log-key", value_name = "VKEY")]
    pub log_key: Option<String>,
    /// A witness's cosignature/v1 key (a vkey of type 0x04) whose cosignature on the checkpoint
    /// counts; repeat for several.
    #[arg(long = "witness", value_name = "VKEY")]
    pub witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned the checkpoint. Default: every one
    /// given (so 0 without --witness).
    #[arg(long, value_name = "N")]
    pub witnesses_required: Option<usize>,
}

/// The `field` of every problem the log's checks report, so that reports (and scripts reading
/// `--json`) can tell them from the pulses' own.
pub const FIELDS: [&str; 4] = [FIELD_CHECKPOINT, FIELD_PROOF, FIELD_ENTRY, FIELD_ROOT];
/// The checkpoint note, its signature or its cosignatures.
pub const FIELD_CHECKPOINT: &str = "logCheckpoint";
/// A pulse's inclusion proof.
pub const FIELD_PROOF: &str = "inclusionProof";
/// An entry of the log that is not what the chain says it must be.
pub const FIELD_ENTRY: &str = "logEntry";
/// The log's root recomputed from its entries.
pub const FIELD_ROOT: &str = "logRoot";

/// What kind of failure a log problem is. `lavabeacon_format::Check` has no variant of its own
/// for the log yet; this is the one place that says which existing one each kind is reported
/// as, so adding one changes this function only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A signature or cosignature that does not verify, or is missing.
    Signature,
    /// The log says something else than the chain or the checkpoint: another root, another
    /// entry, a proof to another tree.
    Fork,
    /// Something needed is missing or cannot be read (a proof, an entry, the note itself).
    Missing,
}

/// A problem of the log's checks.
pub(crate) fn problem(kind: Kind, field: &str, message: impl Into<String>) -> Problem {
    let check = match kind {
        Kind::Signature => Check::Signature,
        Kind::Fork => Check::Fork,
        Kind::Missing => Check::Parse,
    };
    Problem::new(check, message).field(field)
}

/// Whether `p` is one of the log's problems.
pub(crate) fn is_log_problem(p: &Problem) -> bool {
    p.field.as_deref().is_some_and(|f| FIELDS.contains(&f))
}

/// A hash as checkpoints write it: standard base64.
pub(crate) fn b64(h: &Hash) -> String {
    STANDARD.encode(h)
}

/// The keys a checkpoint is checked with, read from [`TrustArgs`].
#[derive(Debug, Clone)]
pub struct Trust {
    /// The log's note key (type 0x01).
    pub log_key: VerifierKey,
    /// The witnesses' cosignature keys, one per Ed25519 key.
    pub witnesses: Vec<VerifierKey>,
    /// How many of them must have cosigned.
    pub required: usize,
}

impl Trust {
    /// The keys the flags name; `checkpoint_flag` is how the command spells its checkpoint
    /// (for messages). An error is a usage error.
    pub fn from_args(args: &TrustArgs, checkpoint_flag: &str) -> Result<Trust, String> {
        let vkey = args
            .log_key
            .as_deref()
            .ok_or_else(|| format!("{checkpoint_flag} needs --log-key VKEY, the log's key"))?;
        let log_key = VerifierKey::parse(vkey).map_err(|e| format!("--log-key: {e}"))?;
        if log_key.kind != KeyKind::Ed25519 {
            return Err(format!(
                "--log-key: {} is a cosignature key (type 0x04); a log signs its checkpoints with a note key (type 0x01)",
                log_key.name
            ));
        }
        let mut witnesses: Vec<VerifierKey> = Vec::new();
        for w in &args.witnesses {
            let key = VerifierKey::parse(w).map_err(|e| format!("--witness: {e}"))?;
            if key.kind != KeyKind::Cosignature {
                return Err(format!(
                    "--witness: {} is not a cosignature/v1 key (type 0x04)",
                    key.name
                ));
            }
            // A cosignature does not name its cosigner: the same Ed25519 key under two names
            // would count one witness twice. Distinct witnesses are distinct keys.
            if !witnesses.iter().any(|k| k.public_key == key.public_key) {
                witnesses.push(key);
            }
        }
        let required = args.witnesses_required.unwrap_or(witnesses.len());
        if required > witnesses.len() {
            return Err(format!(
                "--witnesses-required {required}: only {} distinct --witness keys given",
                witnesses.len()
            ));
        }
        Ok(Trust {
            log_key,
            witnesses,
            required,
        })
    }
}

/// Refuses the trust flags without a checkpoint to apply them to.
pub(crate) fn refuse_unused(args: &TrustArgs, checkpoint_flag: &str) -> Result<(), String> {
    let used = if args.log_key.is_some() {
        Some("--log-key")
    } else if !args.witnesses.is_empty() {
        Some("--witness")
    } else if args.witnesses_required.is_some() {
        Some("--witnesses-required")
    } else {
        None
    };
    match used {
        Some(flag) => Err(format!(
            "{flag} applies to a log checkpoint: give {checkpoint_flag} FILE"
        )),
        None => Ok(()),
    }
}

/// One witness key and whether it cosigned.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WitnessOutcome {
    /// Its name.
    pub name: String,
    /// Its vkey.
    pub key: String,
    /// Whether a valid cosignature by it is on the checkpoint.
    pub cosigned: bool,
    /// The cosignature's time (POSIX seconds), when it cosigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

/// A checkpoint read and its signatures checked.
#[derive(Debug, Clone)]
pub struct CheckedCheckpoint {
    /// The checkpoint, when the note could be read at all (even if its signatures failed:
    /// what it says is still checked, so that a report lists everything).
    pub checkpoint: Option<Checkpoint>,
    /// Every witness key given, and whether it cosigned.
    pub witnesses: Vec<WitnessOutcome>,
    /// How many had to.
    pub required: usize,
    /// What failed.
    pub problems: Vec<Problem>,
}

/// Reads the signed note `bytes` (from `name`) and checks it: a C2SP checkpoint, whose origin
/// is the log key's name, signed by the log key, cosigned by at least `trust.required` of
/// the witnesses. A line that claims to be a given witness's and does not verify is a problem
/// even when enough others cosigned: someone forged it.
pub fn check_checkpoint(bytes: &[u8], name: &str, trust: &Trust) -> CheckedCheckpoint {
    let mut out = CheckedCheckpoint {
        checkpoint: None,
        witnesses: Vec::new(),
        required: trust.required,
        problems: Vec::new(),
    };
    let bad = |kind, m: String| problem(kind, FIELD_CHECKPOINT, format!("{name}: {m}"));
    let note = match Note::parse(bytes) {
        Ok(n) => n,
        Err(e) => {
            out.problems
                .push(bad(Kind::Missing, format!("not a signed note: {e}")));
            return out;
        }
    };
    let checkpoint = match Checkpoint::parse(&note.text) {
        Ok(c) => c,
        Err(e) => {
            out.problems.push(bad(Kind::Missing, e.to_string()));
            return out;
        }
    };
    if checkpoint.origin != trust.log_key.name {
        out.problems.push(bad(
            Kind::Signature,
            format!(
                "the checkpoint's origin {:?} is not the log key's name {:?}",
                checkpoint.origin, trust.log_key.name
            ),
        ));
    }
    if let Err(e) = note.verify(&trust.log_key) {
        out.problems.push(bad(
            Kind::Signature,
            format!("not signed by the log key: {e}"),
        ));
    }
    for w in &trust.witnesses {
        let timestamp = match cosignature::verify(&note, w) {
            Ok(t) => Some(t),
            Err(NoteError::NotSigned { .. }) => None,
            Err(e) => {
                out.problems
                    .push(bad(Kind::Signature, format!("cosignature: {e}")));
                None
            }
        };
        out.witnesses.push(WitnessOutcome {
            name: w.name.clone(),
            key: w.to_vkey(),
            cosigned: timestamp.is_some(),
            timestamp,
        });
    }
    let cosigned = out.witnesses.iter().filter(|w| w.cosigned).count();
    if cosigned < trust.required {
        let missing: Vec<&str> = out
            .witnesses
            .iter()
            .filter(|w| !w.cosigned)
            .map(|w| w.name.as_str())
            .collect();
        out.problems.push(bad(
            Kind::Signature,
            format!(
                "{cosigned} valid witness cosignature{}, {} required (none by {})",
                if cosigned == 1 { "" } else { "s" },
                trust.required,
                missing.join(", ")
            ),
        ));
    }
    out.checkpoint = Some(checkpoint);
    out
}

/// Reads a checkpoint file: unreadable is a usage error, anything in it is checked.
pub(crate) fn read_checkpoint(
    path: &std::path::Path,
    trust: &Trust,
) -> Result<CheckedCheckpoint, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(check_checkpoint(&bytes, &path.display().to_string(), trust))
}

/// The log's line in a report, and its `log` object in `--json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogSummary {
    /// Whether every check of the log passed.
    pub ok: bool,
    /// The checkpoint's origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The checkpoint's tree size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// The checkpoint's root (base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Every witness key given.
    pub witnesses: Vec<WitnessOutcome>,
    /// How many had to cosign.
    pub witnesses_required: usize,
    /// `verify`: the pulses given, and those proven in the checkpoint's tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulses_given: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulses_included: Option<u64>,
    /// `replay`: the log entries read and hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// `replay`: the pulse entries among them (each the replayed pulse at its place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulse_entries: Option<u64>,
    /// `replay`: the draw registrations among them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draws: Option<u64>,
    /// `replay`: pulses replayed that were published after the checkpoint (not in its tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulses_after: Option<u64>,
    /// `replay`: the root of the entries read (base64), when all `treeSize` were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_computed: Option<String>,
}

impl LogSummary {
    /// The summary's checkpoint part; `ok` is set from the report by [`print`].
    pub fn of(checked: &CheckedCheckpoint) -> LogSummary {
        LogSummary {
            origin: checked.checkpoint.as_ref().map(|c| c.origin.clone()),
            tree_size: checked.checkpoint.as_ref().map(|c| c.size),
            root: checked.checkpoint.as_ref().map(|c| b64(&c.root)),
            witnesses: checked.witnesses.clone(),
            witnesses_required: checked.required,
            ..LogSummary::default()
        }
    }

    /// One line: `log checkpoint <origin> size <N> root <base64>: OK|FAILED: …`.
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(given), Some(included)) = (self.pulses_given, self.pulses_included) {
            parts.push(format!("{included} of {given} pulses included"));
        }
        if let Some(entries) = self.entries {
            let draws = self.draws.unwrap_or(0);
            parts.push(format!(
                "{entries} entries replayed ({} pulses, {draws} draw{})",
                self.pulse_entries.unwrap_or(0),
                if draws == 1 { "" } else { "s" }
            ));
            parts.push(match (&self.root_computed, &self.root) {
                (Some(c), Some(r)) if c == r => "root recomputed".to_string(),
                (Some(c), _) => format!("root recomputed as {c}"),
                (None, _) => "root not recomputed".to_string(),
            });
        }
        let cosigned = self.witnesses.iter().filter(|w| w.cosigned).count();
        parts.push(if self.witnesses.is_empty() {
            "no witnesses given".to_string()
        } else {
            format!(
                "{cosigned} of {} witnesses cosigned ({} required)",
                self.witnesses.len(),
                self.witnesses_required
            )
        });
        if let Some(after) = self.pulses_after.filter(|a| *a > 0) {
            parts.push(format!("{after} later pulses not in this checkpoint"));
        }
        let head = match (&self.origin, self.tree_size, &self.root) {
            (Some(o), Some(s), Some(r)) => format!("log checkpoint {o} size {s} root {r}"),
            _ => "log checkpoint (unreadable)".to_string(),
        };
        format!(
            "{head}: {}: {}",
            if self.ok { "OK" } else { "FAILED" },
            parts.join(", ")
        )
    }
}

/// `--json` with the log: the report's fields with `ok` first, then `log`.
#[derive(serde::Serialize)]
struct JsonWithLog<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a Report,
    log: &'a LogSummary,
}

/// Prints `report` as [`crate::output::print_report`] does, with the log's line before the
/// summary line (text) or its `log` object (`--json`). `log.ok` is set from the report.
pub(crate) fn print(report: &Report, log: Option<&mut LogSummary>, json: bool) {
    let Some(log) = log else {
        return crate::output::print_report(report, json);
    };
    log.ok = !report.problems.iter().any(is_log_problem);
    let text = if json {
        let out = JsonWithLog {
            ok: report.passed(),
            report,
            log,
        };
        serde_json::to_string_pretty(&out).expect("report serialises") + "\n"
    } else {
        let full = report.render_text();
        let summary = format!("{}\n", report.summary());
        let body = full.strip_suffix(&summary).unwrap_or(&full);
        format!("{body}{}\n{summary}", log.render())
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Puts `problems` into `report` where the verifier would have: problems without a pulse first,
/// then by chain and pulse (a stable sort: each group keeps its order).
pub(crate) fn add_problems(report: &mut Report, problems: Vec<Problem>) {
    report.problems.extend(problems);
    report
        .problems
        .sort_by_key(|p| (p.chain.is_some(), p.chain, p.pulse));
}

/// The right edge of a Merkle tree being built leaf by leaf: the roots of its complete
/// subtrees, largest first (one per bit set in its size), so a log of any length is hashed
/// in memory of at most 64 hashes. Its root is RFC 6962's MTH of the leaves pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// A frontier saved by [`Frontier::nodes`]: `None` when `nodes` cannot be the frontier
    /// of a tree of `size` (one hash per bit set in it).
    pub fn restore(size: u64, nodes: Vec<Hash>) -> Option<Frontier> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// How many leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtrees' roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf by its hash: it merges with every subtree of its size to its left, as
    /// a binary counter carries.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut n = self.size;
        while n & 1 == 1 {
            let left = self.nodes.pop().expect("a bit set has its subtree");
            h = merkle::node_hash(&left, &h);
            n >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The root: the smallest subtree, then each larger one as the left child of what is to
    /// its right (as RFC 6962 splits at the largest power of two).
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return merkle::empty_root();
        };
        it.fold(*last, |acc, left| merkle::node_hash(left, &acc))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// A note key (`kind` 0x01) or cosignature key (0x04) from a seed byte.
    pub(crate) fn key(name: &str, kind: KeyKind, seed: u8) -> (SigningKey, VerifierKey) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let vk = VerifierKey::new(name, kind, sk.verifying_key().to_bytes()).unwrap();
        (sk, vk)
    }

    /// A checkpoint note for (size, root) signed by `log`, cosigned by `witnesses`.
    pub(crate) fn note(
        log: &(SigningKey, VerifierKey),
        size: u64,
        root: Hash,
        witnesses: &[&(SigningKey, VerifierKey)],
    ) -> String {
        let body = Checkpoint {
            origin: log.1.name.clone(),
            size,
            root,
            extensions: vec![],
        }
        .body();
        let sig = log.0.sign(body.as_bytes()).to_bytes();
        let mut out = format!(
            "{body}\n{}",
            lavabeacon_tlog::note::signature_line(&log.1.name, log.1.key_id, &sig)
        );
        for (sk, vk) in witnesses {
            let t = 1_700_000_000;
            let s = sk.sign(&cosignature::signed_message(&body, t)).to_bytes();
            out.push_str(&cosignature::line(&vk.name, vk.key_id, t, &s));
        }
        out
    }

    fn trust(log: &VerifierKey, witnesses: &[&VerifierKey], required: Option<usize>) -> Trust {
        Trust::from_args(
            &TrustArgs {
                log_key: Some(log.to_vkey()),
                witnesses: witnesses.iter().map(|w| w.to_vkey()).collect(),
                witnesses_required: required,
            },
            "--checkpoint",
        )
        .unwrap()
    }

    #[test]
    fn the_frontier_gives_every_root_of_the_recursive_definition() {
        let leaves: Vec<Hash> = (0..300u32)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), merkle::empty_root());
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), merkle::root(&leaves[..=i]), "size {}", i + 1);
            assert!(f.nodes().len() <= 64);
            let again = Frontier::restore(f.size(), f.nodes().to_vec()).unwrap();
            assert_eq!(again, f);
        }
        assert!(Frontier::restore(3, vec![[0; 32]]).is_none());
    }

    #[test]
    fn a_checkpoint_signed_and_cosigned_passes_and_each_missing_signature_fails() {
        let log = key("example.org/log", KeyKind::Ed25519, 1);
        let w1 = key("w1", KeyKind::Cosignature, 2);
        let w2 = key("w2", KeyKind::Cosignature, 3);
        let text = note(&log, 5, [7; 32], &[&w1]);
        let ok = check_checkpoint(text.as_bytes(), "cp", &trust(&log.1, &[&w1.1], None));
        assert!(ok.problems.is_empty(), "{:?}", ok.problems);
        assert_eq!(ok.checkpoint.unwrap().size, 5);
        assert!(ok.witnesses[0].cosigned);

        // Two witnesses required, one cosigned.
        let few = check_checkpoint(text.as_bytes(), "cp", &trust(&log.1, &[&w1.1, &w2.1], None));
        assert_eq!(few.problems.len(), 1);
        assert!(few.problems[0]
            .message
            .contains("1 valid witness cosignature, 2 required (none by w2)"));
        // One of the two is enough when one is required.
        let one = check_checkpoint(
            text.as_bytes(),
            "cp",
            &trust(&log.1, &[&w1.1, &w2.1], Some(1)),
        );
        assert!(one.problems.is_empty());

        // Another log key of the same name: not signed by it.
        let other = key("example.org/log", KeyKind::Ed25519, 9);
        let wrong = check_checkpoint(text.as_bytes(), "cp", &trust(&other.1, &[], None));
        assert!(wrong.problems[0]
            .message
            .contains("not signed by the log key"));
        // A key of another name: the origin is not its name either.
        let renamed = key("other.org/log", KeyKind::Ed25519, 1);
        let r = check_checkpoint(text.as_bytes(), "cp", &trust(&renamed.1, &[], None));
        assert!(r.problems[0].message.contains("is not the log key's name"));

        // A changed root breaks the signature and the cosignature.
        let forged = text.replace(&b64(&[7; 32]), &b64(&[8; 32]));
        let f = check_checkpoint(forged.as_bytes(), "cp", &trust(&log.1, &[&w1.1], None));
        assert_eq!(f.problems.len(), 3, "{:?}", f.problems);
        assert!(f.problems.iter().all(is_log_problem));

        let junk = check_checkpoint(b"hello\n", "cp", &trust(&log.1, &[], None));
        assert!(junk.checkpoint.is_none());
        assert!(junk.problems[0]
            .message
            .starts_with("cp: not a signed note"));
    }

    #[test]
    fn trust_flags_refuse_wrong_key_kinds_and_impossible_thresholds() {
        let log = key("l", KeyKind::Ed25519, 1);
        let w = key("w", KeyKind::Cosignature, 2);
        let same_key_other_name = key("w-again", KeyKind::Cosignature, 2);
        let args = |log_key: &VerifierKey, ws: &[&VerifierKey], n| TrustArgs {
            log_key: Some(log_key.to_vkey()),
            witnesses: ws.iter().map(|w| w.to_vkey()).collect(),
            witnesses_required: n,
        };
        let t = Trust::from_args(&args(&log.1, &[&w.1, &same_key_other_name.1], None), "x");
        assert_eq!(
            t.unwrap().required,
            1,
            "one witness under two names counts once"
        );
        assert!(Trust::from_args(&args(&w.1, &[], None), "x")
            .unwrap_err()
            .contains("note key"));
        assert!(Trust::from_args(&args(&log.1, &[&log.1], None), "x")
            .unwrap_err()
            .contains("not a cosignature/v1 key"));
        assert!(Trust::from_args(&args(&log.1, &[&w.1], Some(2)), "x")
            .unwrap_err()
            .contains("only 1 distinct"));
        assert_eq!(
            Trust::from_args(&TrustArgs::default(), "--checkpoint").unwrap_err(),
            "--checkpoint needs --log-key VKEY, the log's key"
        );
    }
}
