//! Shared by the command-line tests that need SoftHSM2.
#![allow(dead_code)]

pub mod browser;
pub mod faults;
pub mod pg;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `present`, or, when it is not, a skip with a message naming `what` is missing — except
/// under `CI=true`, where a missing component fails the run.
pub fn present_or_skip(present: bool, what: &str) -> bool {
    if !present {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true and {what} is not installed (scripts/test.sh installs it)"
        );
        eprintln!("skipped: {what} is not installed");
    }
    present
}

/// Whether `command --version` runs and succeeds (the program is installed).
pub fn runs(command: &str) -> bool {
    Command::new(command)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether SoftHSM2 is installed (see [`present_or_skip`]).
pub fn softhsm_present() -> bool {
    present_or_skip(
        Path::new("/usr/lib/softhsm/libsofthsm2.so").exists(),
        "SoftHSM2",
    )
}

/// Runs `softhsm-setup/dev-token.sh DIR` with this build's binary; it must succeed. Returns
/// what it printed.
pub fn dev_token(dir: &Path) -> String {
    dev_token_with(dir, &[])
}

/// `softhsm-setup/dev-token.sh DIR ARGS…` (e.g. `--suite rsa-3072`).
pub fn dev_token_with(dir: &Path, args: &[&str]) -> String {
    let out: Output =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup/dev-token.sh"))
            .arg(dir)
            .args(args)
            .env("LAVABEACON_BIN", env!("CARGO_BIN_EXE_lavabeacon"))
            .output()
            .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "dev-token.sh failed: {text}");
    text
}

/// `files` of the directory `src` (relative to the repository) copied into `name` under the
/// build's scratch directory, with their npm packages installed there (once) from the
/// committed lockfile by `npm ci`; `installed` is a path under `node_modules` that shows they
/// are. Returns the directory.
pub fn npm_installed(src: &str, name: &str, files: &[&str], installed: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    if !dir.join("node_modules").join(installed).exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "npm ci: {}", output_text(&out));
    }
    dir
}

/// What a finished command printed, standard output then standard error.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The configuration the dev-token script writes in `dir`.
pub fn dev_config(dir: &Path) -> PathBuf {
    dir.join("lavabeacon.toml")
}

/// A `lavabeacon serve` or `engine` process, killed (SIGKILL) when dropped. Its stdout is
/// read on a thread: the first line of `serve` is the address it listens on.
pub struct Beacon {
    pub child: std::process::Child,
    pub base: String,
}

impl Beacon {
    /// Starts `lavabeacon <command> --config CONFIG` plus `extra`, with `--period 1s` (not for
    /// `api`); `serve` and `api` on a free port, waiting until they listen.
    pub fn start(command: &str, config: &Path, extra: &[&str]) -> Beacon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lavabeacon"));
        cmd.arg(command)
            .arg("--config")
            .arg(config)
            .args(extra)
            .stderr(std::process::Stdio::null());
        if command != "api" {
            cmd.args(["--period", "1s"]);
        }
        if command != "engine" {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let wait = (command != "engine").then_some(std::time::Duration::from_secs(30));
        Beacon::spawn(&mut cmd, wait)
    }

    /// Spawns `cmd` with its stdout read on a thread and, with `wait`, waits that long for
    /// the address it prints (`listening on …`, the beacon's base URL); without, `base` is
    /// empty.
    pub fn spawn(cmd: &mut Command, wait: Option<std::time::Duration>) -> Beacon {
        use std::io::BufRead;
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let base = match wait {
            Some(limit) => rx
                .recv_timeout(limit)
                .unwrap_or_else(|_| panic!("no address printed within {limit:?}")),
            None => String::new(),
        };
        Beacon { child, base }
    }

    /// SIGKILL, and wait for it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET: status, the headers asked for, and the body.
pub fn get(url: &str, headers: &[&str]) -> (u16, Vec<Option<String>>, String) {
    let resp = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let hs = headers
        .iter()
        .map(|h| resp.header(h).map(str::to_string))
        .collect();
    (status, hs, resp.into_string().unwrap())
}

/// Waits until the store holds `pulses` pulses (at most `secs` seconds).
pub async fn wait_for(store: &dyn lavabeacon_store::Store, pulses: u64, secs: u64) {
    let started = std::time::Instant::now();
    while store.counts().await.unwrap().pulses < pulses {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(secs),
            "no {pulses} pulses in {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The whole of chain 1 from the store, checked: it verifies with the dev certificate, its
/// first pulse has statusCode 1, and every manifest recombines to its localRandomValue.
pub async fn checked_chain(
    store: &dyn lavabeacon_store::Store,
    cert: &Path,
) -> Vec<lavabeacon_format::Pulse> {
    use lavabeacon_format::cert::{parse_certificates, CertificateSet};
    use lavabeacon_format::chain::Facts;
    use lavabeacon_format::manifest::check_published;
    use lavabeacon_format::verify::{Options, Verifier};
    let n = store.counts().await.unwrap().pulses;
    let mut chain = Vec::new();
    for i in 1..=n {
        chain.push(store.by_index(1, i).await.unwrap().unwrap());
    }
    let mut certs = CertificateSet::new();
    for c in parse_certificates(&std::fs::read(cert).unwrap()).unwrap() {
        certs.add(c);
    }
    let r = Verifier::new(&certs, Options::default()).verify_pulses(&chain);
    assert!(r.passed(), "{}", r.render_text());
    assert_eq!(chain[0].status_code, 1);
    for p in &chain {
        let json = store.manifest(1, p.pulse_index).await.unwrap().unwrap();
        if let Err(problem) = check_published(&json, &Facts::of(p, None)) {
            panic!("{}", problem.render());
        }
    }
    chain
}

/// A fresh database `lbtest_<tag>_<pid>` on the server LAVABEACON_TEST_POSTGRES names
/// (default: the local one). Without a server the test is skipped with a message, except under
/// `CI=true`, where that fails the run. (scripts/test.sh drops what a panicking test leaves.)
pub async fn fresh_postgres(tag: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = admin_postgres();
    let mut c = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true and PostgreSQL is not reachable: {e}"
            );
            eprintln!("skipped: PostgreSQL is not reachable ({e}); scripts/test.sh starts one");
            return None;
        }
    };
    let name = format!("lbtest_{tag}_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Drops the database `url` names (made by [`fresh_postgres`]).
pub async fn drop_postgres(url: &str) {
    use sqlx::Connection;
    let name = url.rsplit('/').next().unwrap();
    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_postgres()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)
            .await;
    }
}

fn admin_postgres() -> String {
    std::env::var("LAVABEACON_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}
