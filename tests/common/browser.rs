//! The explorer's browser scenarios (`tests/browser/explorer.mjs`), run by Node with
//! playwright-core in Debian's Chromium: for `tests/explorer.rs` and the draw page's test in
//! `tests/draws.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium, node and npm, or a skip with a message (a failure under CI=true).
pub fn present() -> bool {
    super::present_or_skip(
        Path::new("/usr/bin/chromium").exists() && super::runs("node") && super::runs("npm"),
        "Chromium (/usr/bin/chromium) with node and npm",
    )
}

/// The scenarios and playwright-core, installed (once) from the committed lockfile into the
/// build's scratch directory.
fn driver() -> PathBuf {
    super::npm_installed(
        "tests/browser",
        "browser",
        &["package.json", "package-lock.json", "explorer.mjs"],
        "playwright-core",
    )
    .join("explorer.mjs")
}

/// Runs one scenario against `base`; it must pass. Returns what it printed.
pub fn scenario(name: &str, base: &str, options: &[&str]) -> String {
    let out = Command::new("node")
        .arg(driver())
        .arg(name)
        .arg(base)
        .args(options)
        .output()
        .unwrap();
    let text = super::output_text(&out);
    assert!(out.status.success(), "scenario {name} failed:\n{text}");
    text
}
