//! A SoftHSM2 made for this process: tokens in a temporary directory (never the system token
//! directory), created before the module is first loaded. Shared by the tests and the benchmark.
#![allow(dead_code)]

use lavabeacon_signer::pkcs11::Pkcs11Config;
use lavabeacon_signer::{PinSource, Suite};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub const PIN: &str = "735162";
pub const PIN_VAR: &str = "LAVABEACON_TEST_HSM_PIN";
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const TOKENS: [&str; 7] = [
    "lb-ed25519",
    "lb-rsa",
    "lb-pin",
    "lb-errors",
    "lb-reconnect",
    "lb-bench-ed25519",
    "lb-bench-rsa",
];

/// Makes the tokens once per process, before the module is first loaded (SoftHSM reads its
/// configuration and token list at C_Initialize). None when SoftHSM2 is not installed.
pub fn tokens() -> Option<&'static PathBuf> {
    softhsm(&TOKENS)
}

/// The directory SoftHSM keeps this process's tokens in.
pub fn token_dir() -> PathBuf {
    tokens_root().expect("tokens made").join("tokens")
}

fn tokens_root() -> Option<&'static PathBuf> {
    DIR.get().and_then(|d| d.as_ref())
}

static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Makes the tokens `labels` once per process (the first call decides), in a temporary
/// directory that SOFTHSM2_CONF points at. None when SoftHSM2 is not installed.
pub fn softhsm(labels: &[&str]) -> Option<&'static PathBuf> {
    DIR.get_or_init(|| {
        let have = std::path::Path::new(MODULE).exists()
            && Command::new("softhsm2-util")
                .arg("--version")
                .output()
                .is_ok();
        if !have {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true and SoftHSM2 is not installed ({MODULE}, softhsm2-util)"
            );
            eprintln!("skipped: SoftHSM2 is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        // Set before any thread loads the module; the tests read them only after this.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        std::env::set_var(PIN_VAR, PIN);
        for label in labels {
            let out = Command::new("softhsm2-util")
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--so-pin",
                    "99887766",
                    "--pin",
                    PIN,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "softhsm2-util: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(dir)
    })
    .as_ref()
}

pub fn config(token: &str, key: &str, suite: Suite) -> Pkcs11Config {
    Pkcs11Config {
        module: PathBuf::from(MODULE),
        token_label: token.into(),
        pin: PinSource::Env(PIN_VAR.into()),
        key_label: key.into(),
        suite,
    }
}
