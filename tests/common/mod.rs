//! Shared by the command-line tests that need SoftHSM2.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether SoftHSM2 is installed; without it the test is skipped with a message, except under
/// `CI=true`, where that fails the run.
pub fn softhsm_present() -> bool {
    let present = Path::new("/usr/lib/softhsm/libsofthsm2.so").exists();
    if !present {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true and SoftHSM2 is not installed"
        );
        eprintln!("skipped: SoftHSM2 is not installed");
    }
    present
}

/// Runs `softhsm-setup/dev-token.sh DIR` with this build's binary; it must succeed. Returns
/// what it printed.
pub fn dev_token(dir: &Path) -> String {
    let out: Output =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup/dev-token.sh"))
            .arg(dir)
            .env("LAVABEACON_BIN", env!("CARGO_BIN_EXE_lavabeacon"))
            .output()
            .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dev-token.sh failed: {text}");
    text
}

/// The configuration the dev-token script writes in `dir`.
pub fn dev_config(dir: &Path) -> PathBuf {
    dir.join("lavabeacon.toml")
}
