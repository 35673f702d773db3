//! Keys over the years on a real SoftHSM2 token and a running `lavabeacon serve` (period 1 s):
//! `keys rotate --at next` during the run switches the key at that slot with no missed period
//! and the chain verifies across it (SQLite; PostgreSQL with a standby engine that takes over
//! after the switch); a certificate that expires during the run stops the signing at that
//! moment, the gap is marked, and a key rotated in resumes it; a retired key cannot sign.

mod common;

use common::{get, output_text, softhsm_present, wait_for, Beacon};
use lavabeacon_format::cert::{parse_certificates, CertificateSet};
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The dev token in `hsm`, and a configuration for it at one pulse a second (with `database`
/// instead of its SQLite file, if given).
fn setup(hsm: &Path, database: Option<&str>) -> PathBuf {
    common::dev_token(hsm);
    let mut text = std::fs::read_to_string(common::dev_config(hsm))
        .unwrap()
        .replace("period_ms = 60000", "period_ms = 1000");
    if let Some(url) = database {
        text = text.replace(
            "url = \"sqlite:./lavabeacon.db\"",
            &format!("url = {url:?}"),
        );
    }
    text.push_str("\n[engine]\nsources = [\"os\", \"hsm\", \"cpu\"]\n");
    let toml = hsm.join("keys.toml");
    std::fs::write(&toml, text).unwrap();
    toml
}

/// One test of this file at a time: each runs beacons at one pulse a second on SoftHSM (and
/// one makes an RSA key), which two at once on two cores make late.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A dev token and its configuration at one pulse a second over SQLite, in a new temporary
/// folder, with the store opened; `None` (the test skipped) without SoftHSM2 outside CI.
async fn sqlite_run() -> Option<(
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    std::sync::Arc<dyn Store>,
)> {
    if !softhsm_present() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    let toml = setup(&hsm, None);
    let store = lavabeacon_store::open(&format!("sqlite:{}", hsm.join("lavabeacon.db").display()))
        .await
        .unwrap();
    Some((dir, hsm, toml, store))
}

fn lavabeacon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(args)
        .output()
        .unwrap()
}

/// `lavabeacon keys rotate --label LABEL --test --at next` (and `extra`): its output.
fn rotate(toml: &Path, label: &str, extra: &[&str]) -> String {
    let toml = toml.to_str().unwrap();
    let mut args = vec![
        "keys", "rotate", "--config", toml, "--label", label, "--test",
    ];
    args.extend(["--at", "next"]);
    args.extend(extra);
    let o = lavabeacon(&args);
    assert!(o.status.success(), "{}", output_text(&o));
    output_text(&o)
}

/// Chain 1 as stored.
async fn chain(store: &dyn Store) -> Vec<Pulse> {
    let last = store.last_in_chain(1).await.unwrap().unwrap().pulse_index;
    let mut pulses = Vec::new();
    for i in 1..=last {
        pulses.push(store.by_index(1, i).await.unwrap().unwrap());
    }
    pulses
}

/// `pulses`, verified with the certificates in `files`; and through `lavabeacon verify` too.
fn verified(pulses: &[Pulse], files: &[PathBuf], dir: &Path) {
    let mut certs = CertificateSet::new();
    for f in files {
        for c in parse_certificates(&std::fs::read(f).unwrap()).unwrap() {
            certs.add(c);
        }
    }
    let r = Verifier::new(&certs, Options::default()).verify_pulses(pulses);
    assert!(r.passed(), "{}", r.render_text());
    let jsonl: String = pulses
        .iter()
        .map(|p| lavabeacon_format::json::to_json_line(p) + "\n")
        .collect();
    let file = dir.join("chain.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    let mut args = vec!["verify".to_string()];
    for f in files {
        args.extend(["--cert".to_string(), f.display().to_string()]);
    }
    args.push(file.display().to_string());
    let o = lavabeacon(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", output_text(&o));
}

/// Waits until chain 1 holds a pulse signed with a certificate other than `old`, then `more`
/// after it.
async fn wait_for_switch(store: &dyn Store, old: &str, more: u64) -> u64 {
    let started = std::time::Instant::now();
    loop {
        let pulses = chain(store).await;
        if let Some(first) = pulses
            .iter()
            .find(|p| p.certificate_id.to_hex_lower() != old)
        {
            wait_for(store, first.pulse_index + more, 30).await;
            return first.pulse_index;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no pulse with the new key in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn certificate_id(pem: &Path) -> String {
    parse_certificates(&std::fs::read(pem).unwrap()).unwrap()[0]
        .id
        .to_hex_lower()
}

/// Every pulse after the first continues the one before: statusCode 0, one period later.
fn no_missed_period(pulses: &[Pulse]) {
    for w in pulses.windows(2) {
        assert_eq!(w[1].status_code, 0, "pulse {}", w[1].pulse_index);
        assert_eq!(
            w[1].time_ms().unwrap() - w[0].time_ms().unwrap(),
            1000,
            "pulse {}",
            w[1].pulse_index
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_during_serve_misses_no_period_and_the_old_key_can_then_be_retired() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((dir, hsm, toml, store)) = sqlite_run().await else {
        return;
    };
    let beacon = Beacon::start("serve", &toml, &[]);
    wait_for(store.as_ref(), 3, 30).await;
    let old = certificate_id(&hsm.join("pulse-key.pem"));
    // Retiring the key that signs is refused.
    let o = lavabeacon(&[
        "keys",
        "retire",
        "--config",
        toml.to_str().unwrap(),
        "--label",
        "pulse-key",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("cannot be retired"),
        "{}",
        output_text(&o)
    );

    let said = rotate(&toml, "pulse-key-2", &[]);
    assert!(said.contains("switch scheduled"), "{said}");
    let new_pem = hsm.join("pulse-key-2.pem");
    let new = certificate_id(&new_pem);
    // Published before it is used.
    let (status, _, _) = get(
        &format!("{}/beacon/2.0/certificate/{new}", beacon.base),
        &[],
    );
    assert_eq!(status, 200);
    let first_new = wait_for_switch(store.as_ref(), &old, 2).await;
    let (status, _, body) = get(&format!("{}/health", beacon.base), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&new),
        "/health names the new certificate: {body}"
    );

    // The old key no longer signs anything: retired while serve runs, nothing is lost.
    let o = lavabeacon(&[
        "keys",
        "retire",
        "--config",
        toml.to_str().unwrap(),
        "--label",
        "pulse-key",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let toml_text = toml.to_str().unwrap();
    let listed = output_text(&lavabeacon(&["keys", "list", "--config", toml_text]));
    assert!(
        listed.lines().any(|l| l.starts_with("pulse-key ")
            && l.contains("private")
            && l.contains("retired: cannot sign")),
        "{listed}"
    );
    // Destroying it asks for --yes; then its objects are gone from the token.
    let destroy = [
        "keys",
        "retire",
        "--config",
        toml_text,
        "--label",
        "pulse-key",
        "--destroy",
    ];
    let o = lavabeacon(&destroy);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(output_text(&o).contains("--yes"), "{}", output_text(&o));
    let o = lavabeacon(&[&destroy[..], &["--yes"]].concat());
    assert!(o.status.success(), "{}", output_text(&o));
    let listed = output_text(&lavabeacon(&["keys", "list", "--config", toml_text]));
    assert!(
        !listed.lines().any(|l| l.starts_with("pulse-key ")),
        "{listed}"
    );
    assert!(
        listed.lines().any(|l| l.starts_with("pulse-key-2 ")),
        "{listed}"
    );
    let n = store.counts().await.unwrap().pulses;
    wait_for(store.as_ref(), n + 2, 30).await;
    beacon.kill();

    let pulses = chain(store.as_ref()).await;
    verified(
        &pulses,
        &[hsm.join("pulse-key.pem"), new_pem.clone()],
        dir.path(),
    );
    no_missed_period(&pulses);
    let switched: Vec<u64> = pulses
        .windows(2)
        .filter(|w| w[0].certificate_id != w[1].certificate_id)
        .map(|w| w[1].pulse_index)
        .collect();
    assert_eq!(switched, [first_new], "one switch, at the scheduled slot");
    assert!(pulses[first_new as usize - 1..]
        .iter()
        .all(|p| p.certificate_id.to_hex_lower() == new));

    // A restarted serve (its configuration still names the old, retired key) follows the
    // schedule: it signs with the new key, keeping the commitment.
    let n = store.counts().await.unwrap().pulses;
    let beacon = Beacon::start("serve", &toml, &[]);
    wait_for(store.as_ref(), n + 2, 30).await;
    beacon.kill();
    let pulses = chain(store.as_ref()).await;
    verified(&pulses, &[hsm.join("pulse-key.pem"), new_pem], dir.path());
    assert!(pulses[n as usize..]
        .iter()
        .all(|p| p.certificate_id.to_hex_lower() == new && p.status_code != 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_expires_stops_the_signing_until_a_new_key_is_rotated_in() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((dir, hsm, toml, store)) = sqlite_run().await else {
        return;
    };
    // The configured key's certificate, issued now for 6 seconds.
    let o = lavabeacon(&[
        "cert",
        "issue",
        "--config",
        toml.to_str().unwrap(),
        "--test",
        "--valid-for",
        "6s",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let short = std::fs::read(hsm.join("pulse-key.pem")).unwrap();
    let short_cert = parse_certificates(&short).unwrap().remove(0);
    let beacon = Beacon::start("serve", &toml, &[]);
    wait_for(store.as_ref(), 1, 30).await;
    // Past its end: nothing more is signed, and /health says why.
    let end_ms = short_cert.not_after * 1000;
    let wait = end_ms + 2_500 - now_ms();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let before = chain(store.as_ref()).await;
    let last = before.last().unwrap();
    assert!(
        last.time_ms().unwrap() <= end_ms,
        "{} signed after {end_ms}",
        last.time_stamp
    );
    let (status, _, body) = get(&format!("{}/health", beacon.base), &[]);
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["lastError"], "certificate expired", "{body}");
    assert_eq!(health["certificate"]["status"], "expired", "{body}");
    let (_, _, metrics) = get(&format!("{}/metrics", beacon.base), &[]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("lavabeacon_certificate_expiry_seconds{") && l.contains(" -")),
        "{metrics}"
    );

    rotate(&toml, "pulse-key-2", &["--years", "1"]);
    let new_pem = hsm.join("pulse-key-2.pem");
    wait_for_switch(store.as_ref(), &short_cert.id.to_hex_lower(), 1).await;
    beacon.kill();
    // The pulse file written by `cert issue` is the short one: keep it beside the new one.
    let short_pem = dir.path().join("short.pem");
    std::fs::write(&short_pem, &short).unwrap();
    let pulses = chain(store.as_ref()).await;
    verified(&pulses, &[short_pem, new_pem], dir.path());
    let resumed = pulses
        .iter()
        .position(|p| p.certificate_id != short_cert.id)
        .unwrap();
    assert_eq!(pulses[resumed].status_code, 2, "the gap is marked");
    assert!(pulses[..resumed]
        .iter()
        .all(|p| p.time_ms().unwrap() <= end_ms));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_standby_follows_the_rotation_when_it_takes_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    if !softhsm_present() {
        return;
    }
    let Some(url) = common::fresh_postgres("keys").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    let toml = setup(&hsm, Some(&url));
    let store = lavabeacon_store::open(&url).await.unwrap();
    let leader = Beacon::start("serve", &toml, &[]);
    wait_for(store.as_ref(), 3, 30).await;
    // A standby engine with the same configuration (the old key's label), waiting for the lock.
    // Its log kept, to say why if it does not take over.
    let standby_log = dir.path().join("standby.log");
    let standby = Beacon::spawn(
        Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
            .args([
                "engine",
                "--config",
                toml.to_str().unwrap(),
                "--period",
                "1s",
            ])
            .stderr(std::fs::File::create(&standby_log).unwrap()),
        None,
    );
    let old = certificate_id(&hsm.join("pulse-key.pem"));
    rotate(&toml, "pulse-key-2", &[]);
    let new_pem = hsm.join("pulse-key-2.pem");
    wait_for_switch(store.as_ref(), &old, 2).await;
    // The leader dies after the switch: the standby takes over with the new key.
    leader.kill();
    let n = store.counts().await.unwrap().pulses;
    let started = std::time::Instant::now();
    while store.counts().await.unwrap().pulses < n + 3 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the standby made no 3 pulses in 90 s; its log:\n{}",
            std::fs::read_to_string(&standby_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    standby.kill();
    let pulses = chain(store.as_ref()).await;
    verified(
        &pulses,
        &[hsm.join("pulse-key.pem"), new_pem.clone()],
        dir.path(),
    );
    let new = certificate_id(&new_pem);
    assert!(pulses[n as usize - 1..]
        .iter()
        .all(|p| p.certificate_id.to_hex_lower() == new));
    assert!(
        pulses.iter().all(|p| p.status_code != 3),
        "the standby opened the value the new key sealed: {:?}",
        pulses.iter().map(|p| p.status_code).collect::<Vec<_>>()
    );
    common::drop_postgres(&url).await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_in_the_configuration_takes_over_at_the_next_boundary_on_sighup() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((dir, hsm, toml, store)) = sqlite_run().await else {
        return;
    };
    let beacon = Beacon::start("serve", &toml, &[]);
    wait_for(store.as_ref(), 2, 30).await;
    let old = certificate_id(&hsm.join("pulse-key.pem"));
    // The classic way: a key made with `keys generate` and `cert issue` under a configuration
    // naming it, that configuration put in place, and a reload.
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("key_label = \"pulse-key\"", "key_label = \"pulse-key-b\"")
        .replace(
            "certificate = \"./pulse-key.pem\"",
            "certificate = \"./pulse-key-b.pem\"",
        );
    let next = hsm.join("next.toml");
    std::fs::write(&next, &text).unwrap();
    for args in [
        vec!["keys", "generate", "--config", next.to_str().unwrap()],
        vec![
            "cert",
            "issue",
            "--config",
            next.to_str().unwrap(),
            "--test",
        ],
    ] {
        let o = lavabeacon(&args);
        assert!(o.status.success(), "{args:?}: {}", output_text(&o));
    }
    std::fs::write(&toml, &text).unwrap();
    let o = Command::new("kill")
        .args(["-HUP", &beacon.child.id().to_string()])
        .output()
        .unwrap();
    assert!(o.status.success());
    wait_for_switch(store.as_ref(), &old, 2).await;
    let (status, _, _) = get(&format!("{}/health", beacon.base), &[]);
    assert_eq!(status, 200, "still serving after the reload");
    beacon.kill();
    let pulses = chain(store.as_ref()).await;
    verified(
        &pulses,
        &[hsm.join("pulse-key.pem"), hsm.join("pulse-key-b.pem")],
        dir.path(),
    );
    no_missed_period(&pulses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_suite_starts_a_new_chain_at_its_slot_and_both_chains_stay_served() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((dir, hsm, toml, store)) = sqlite_run().await else {
        return;
    };
    let config = toml.to_str().unwrap();
    let beacon = Beacon::start("serve", &toml, &[]);
    wait_for(store.as_ref(), 2, 30).await;
    // An RSA key for an Ed25519 chain: refused without --new-chain, before anything is made.
    let rotate_rsa = [
        "keys", "rotate", "--config", config, "--label", "rsa-key", "--suite", "rsa-3072",
        "--test", "--at", "next",
    ];
    let o = lavabeacon(&rotate_rsa);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("--new-chain"),
        "{}",
        output_text(&o)
    );
    let rsa_pem = hsm.join("rsa-key.pem");
    assert!(!rsa_pem.exists());
    let o = lavabeacon(&[&rotate_rsa[..], &["--new-chain"]].concat());
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(output_text(&o).contains("chain 2"), "{}", output_text(&o));
    let started = std::time::Instant::now();
    while store
        .last_in_chain(2)
        .await
        .unwrap()
        .map_or(0, |p| p.pulse_index)
        < 3
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no chain 2");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = get(
        &format!("{}/beacon/2.0/chain/last/pulse/1", beacon.base),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"chainIndex\":2,\"pulseIndex\":1"), "{body}");
    let (status, _, _) = get(
        &format!("{}/beacon/2.0/chain/1/pulse/last", beacon.base),
        &[],
    );
    assert_eq!(status, 200, "the old chain stays served");
    beacon.kill();

    let one = chain(store.as_ref()).await;
    let first_of_two = store.by_index(2, 1).await.unwrap().unwrap();
    assert_eq!(first_of_two.status_code, 1);
    assert_eq!(first_of_two.cipher_suite, 0, "RSA");
    assert_eq!(
        first_of_two.time_ms().unwrap() - one.last().unwrap().time_ms().unwrap(),
        1000,
        "no slot missed between the chains"
    );
    let mut both = one.clone();
    for i in 1..=store.last_in_chain(2).await.unwrap().unwrap().pulse_index {
        both.push(store.by_index(2, i).await.unwrap().unwrap());
    }
    verified(&both, &[hsm.join("pulse-key.pem"), rsa_pem], dir.path());
}
