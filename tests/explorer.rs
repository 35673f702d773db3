//! The web explorer in a real browser: Debian's Chromium (`/usr/bin/chromium`), driven by
//! playwright-core (installed from `tests/browser/package-lock.json`), against a real
//! `lavabeacon serve` signing with a SoftHSM2 dev token. Each test starts its own beacon and
//! runs one scenario of `tests/browser/explorer.mjs`, which says what it checks. One test at a
//! time: each runs a 1 s beacon and a browser, and two cores do not hold several on time.

mod common;

use common::browser::{present as browser_present, scenario};
use common::{get, softhsm_present, Beacon};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The newest pulse's index, once the beacon at `base` has published `n` pulses.
fn wait_pulses(base: &str, n: u64) -> u64 {
    let started = Instant::now();
    loop {
        let (status, _, body) = get(&format!("{base}/beacon/last"), &[]);
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let index = v["pulse"]["pulseIndex"].as_u64().unwrap();
            if index >= n {
                return index;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {n} pulses in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 1 s beacon on a fresh dev token (`--suite` as given), with at least `pulses` published.
fn beacon(dir: &Path, suite: &[&str], pulses: u64) -> Beacon {
    common::dev_token_with(dir, suite);
    let beacon = Beacon::start("serve", &common::dev_config(dir), &[]);
    wait_pulses(&beacon.base, pulses);
    beacon
}

/// The dev token's configuration at one pulse a second (`serve` is told so by `--period`; the
/// commands that read only the file, `api` and `keys rotate`, by this copy).
fn one_second_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(common::dev_config(dir)).unwrap();
    let config = dir.join("one-second.toml");
    std::fs::write(
        &config,
        text.replace("period_ms = 60000", "period_ms = 1000"),
    )
    .unwrap();
    config
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs scenario `name` (with `options`) on a fresh beacon (`suite`, at least `pulses`
/// published), one test at a time; `None` when what it needs is not installed (a skip, or a
/// failure under CI=true).
fn on_fresh_beacon(suite: &[&str], pulses: u64, name: &str, options: &[&str]) -> Option<String> {
    if !softhsm_present() || !browser_present() {
        return None;
    }
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    let beacon = beacon(dir.path(), suite, pulses);
    Some(scenario(name, &beacon.base, options))
}

#[test]
fn the_explorer_verifies_an_ed25519_chain_in_the_browser_with_a_clean_load() {
    if !softhsm_present() || !browser_present() {
        return;
    }
    let _one = lock();
    // Screenshots of a real run: into docs/ when asked (LAVABEACON_UPDATE_SCREENSHOTS=1, after
    // half a minute of pulses, so that the timeline has something to show), else into the
    // build's scratch directory, so that taking them is tested too.
    let update = std::env::var("LAVABEACON_UPDATE_SCREENSHOTS").as_deref() == Ok("1");
    let dir = tempfile::tempdir().unwrap();
    let beacon = beacon(dir.path(), &[], if update { 30 } else { 3 });
    let shots = if update {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    };
    std::fs::create_dir_all(&shots).unwrap();
    let out = scenario(
        "verifies",
        &beacon.base,
        &["--suite", "2", "--screenshots", shots.to_str().unwrap()],
    );
    assert!(out.contains("verified 1-"), "{out}");
    for f in ["explorer-desktop.png", "explorer-phone.png"] {
        let png = std::fs::read(shots.join(f)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{f} is a PNG");
    }
}

#[test]
fn the_explorer_verifies_an_rsa_chain_in_the_browser() {
    if let Some(out) = on_fresh_beacon(&["--suite", "rsa-3072"], 3, "verifies", &["--suite", "0"]) {
        assert!(out.contains("verified 1-"), "{out}");
    }
}

#[test]
fn the_explorer_verifies_an_ed25519_chain_and_the_rsa_chain_after_it_and_selects_either() {
    if !softhsm_present() || !browser_present() {
        return;
    }
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    let beacon = beacon(dir.path(), &[], 2);
    // An RSA key on a new chain, from the next slot two periods ahead (docs/keys.md).
    let config = one_second_config(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["keys", "rotate", "--config"])
        .arg(&config)
        .args(["--label", "rsa-key", "--suite", "rsa-3072", "--test"])
        .args(["--at", "next", "--new-chain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::output_text(&out));
    let started = Instant::now();
    loop {
        let (_, _, body) = get(&format!("{}/beacon/last", beacon.base), &[]);
        let newest: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if newest["pulse"]["chainIndex"] == 2 && newest["pulse"]["pulseIndex"].as_u64() >= Some(3) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no third pulse of chain 2: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = scenario("chains", &beacon.base, &[]);
    assert!(out.contains("chains: "), "{out}");
}

#[test]
fn the_explorer_names_the_failing_check_when_a_proxy_changes_one_byte_of_a_pulse() {
    if let Some(out) = on_fresh_beacon(&[], 3, "tampered", &[]) {
        assert!(out.contains("FAILED"), "{out}");
    }
}

#[test]
fn the_explorer_navigates_by_button_by_date_and_by_url_with_back_and_forward() {
    if let Some(out) = on_fresh_beacon(&[], 5, "navigates", &[]) {
        assert!(out.contains("navigated"), "{out}");
    }
}

#[test]
fn the_explorer_shows_a_new_pulse_that_arrives_over_sse() {
    if let Some(out) = on_fresh_beacon(&[], 2, "live", &[]) {
        assert!(out.contains("live: "), "{out}");
    }
}

#[test]
fn the_explorer_reads_without_javascript_as_the_server_rendered_newest_pulse() {
    if let Some(out) = on_fresh_beacon(&[], 2, "nojs", &[]) {
        assert!(out.contains("without JavaScript"), "{out}");
    }
}

#[test]
fn the_explorer_warns_and_polls_slower_when_the_beacon_has_stalled() {
    if !softhsm_present() || !browser_present() {
        return;
    }
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    // A chain made, its engine killed, and a read-only API node left serving it: the newest
    // pulse gets older by a period every second.
    beacon(dir.path(), &[], 3).kill();
    let api = Beacon::start("api", &one_second_config(dir.path()), &[]);
    std::thread::sleep(Duration::from_secs(3));
    let (status, _, body) = get(&format!("{}/health", api.base), &[]);
    assert_eq!(status, 503, "the API node reports the stall: {body}");
    let out = scenario("stalled", &api.base, &[]);
    assert!(out.contains("stalled: The beacon is behind"), "{out}");
}

#[test]
fn the_explorer_checks_each_pulse_is_in_the_signed_transparency_log() {
    let Some(out) = on_fresh_beacon(&[], 3, "log", &[]) else {
        return;
    };
    assert!(out.contains("log: entry "), "{out}");
}

#[test]
fn the_browser_verifier_checks_real_nist_and_lavabeacon_vectors_and_refuses_changed_ones() {
    // verify.js and x509.js, as served to browsers, run by Node's test runner on the vectors in
    // tests/vectors (Node's WebCrypto is the same API the page uses); log.js on trees, notes
    // and cosignatures made by node:crypto and on RFC 6962's published vectors.
    if !browser_present() {
        return;
    }
    let out = Command::new("node")
        .args([
            "--test",
            "tests/browser/verify-vectors.mjs",
            "tests/browser/log-vectors.mjs",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = common::output_text(&out);
    assert!(out.status.success() && text.contains("# fail 0"), "{text}");
}

#[test]
fn the_committed_favicon_ico_is_what_favicon_py_draws() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/api/web");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(web.join("favicon.py"))
        .current_dir(dir.path())
        .output()
        .expect("python3 (scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", common::output_text(&out));
    assert_eq!(
        std::fs::read(dir.path().join("favicon.ico")).unwrap(),
        std::fs::read(web.join("favicon.ico")).unwrap(),
        "favicon.ico is stale: run python3 favicon.py in crates/api/web"
    );
}
