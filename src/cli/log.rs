//! `lavabeacon log keys`: the transparency log's verifier key and this beacon's witness key,
//! made in the token if they are not there yet, printed in signed-note `vkey` form — what an
//! operator gives to witnesses (the log's) and to the logs it witnesses (the witness's).

use super::lifecycle::{configure, ConfigArgs};
use lavabeacon_tlog::note::{KeyKind, VerifierKey};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum LogCommand {
    /// Print `log <vkey>` and `witness <vkey>` (making the keys in the token if needed).
    Keys(KeysArgs),
}

#[derive(clap::Args)]
pub struct KeysArgs {
    #[command(flatten)]
    common: ConfigArgs,
}

pub fn run(cmd: LogCommand) -> ExitCode {
    let LogCommand::Keys(args) = cmd;
    let c = match configure(args.common, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if c.signer.kind == crate::config::SignerKind::Pkcs11 {
        crate::softhsm::point_at_configuration(&c.signer);
    }
    let keys = [
        (
            "log",
            c.log_origin(),
            c.log.key_label.clone(),
            KeyKind::Ed25519,
        ),
        (
            "witness",
            c.witness_name(),
            c.witness.key_label.clone(),
            KeyKind::Cosignature,
        ),
    ];
    for (what, name, label, kind) in keys {
        let key = match super::notekeys::open(&c, &label) {
            Ok(k) => k,
            Err(e) => return super::lifecycle::fail("note key", e),
        };
        match VerifierKey::new(&name, kind, key.public_key()) {
            Ok(v) => println!("{what} {}", v.to_vkey()),
            Err(e) => return super::lifecycle::fail(what, format!("the name {name:?}: {e}")),
        }
    }
    ExitCode::SUCCESS
}
