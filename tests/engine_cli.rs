//! `lavabeacon engine` end to end with real parts: a SoftHSM2 dev token made by
//! `softhsm-setup/dev-token.sh`, SQLite, the os, hsm and cpu sources and the synthetic camera, a
//! 1-second period. Killed with SIGKILL and started again, the chain it leaves verifies, every
//! manifest recombines, and no precommitment is lost.

use lavabeacon_format::cert::{parse_certificates, CertificateSet};
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::verify::{Options, Verifier};
mod common;

use common::softhsm_present;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(toml: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["engine", "--period", "1s", "--config"])
        .arg(toml)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_for(store: &dyn lavabeacon_store::Store, pulses: u64) {
    let started = Instant::now();
    while store.counts().await.unwrap().pulses < pulses {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the engine made no {pulses} pulses in 40 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_signs_in_softhsm_survives_sigkill_and_its_chain_verifies() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let toml = common::dev_config(&hsm);
    let store = lavabeacon_store::open(&format!("sqlite:{}", hsm.join("lavabeacon.db").display()))
        .await
        .unwrap();

    let mut engine = start(&toml);
    wait_for(store.as_ref(), 3).await;
    engine.kill().unwrap(); // SIGKILL
    engine.wait().unwrap();
    let mut engine = start(&toml);
    let before = store.counts().await.unwrap().pulses;
    wait_for(store.as_ref(), before + 2).await;
    engine.kill().unwrap();
    engine.wait().unwrap();

    let n = store.counts().await.unwrap().pulses;
    let mut chain = Vec::new();
    for i in 1..=n {
        chain.push(store.by_index(1, i).await.unwrap().unwrap());
    }
    let mut certs = CertificateSet::new();
    for c in parse_certificates(&std::fs::read(hsm.join("pulse-key.pem")).unwrap()).unwrap() {
        certs.add(c);
    }
    let r = Verifier::new(&certs, Options::default()).verify_pulses(&chain);
    assert!(r.passed(), "{}", r.render_text());
    assert_eq!(chain[0].status_code, 1);
    assert!(
        chain[1..]
            .iter()
            .all(|p| p.status_code == 0 || p.status_code == 2),
        "no lost precommitment: {:?}",
        chain.iter().map(|p| p.status_code).collect::<Vec<_>>()
    );
    for p in &chain {
        assert_eq!(p.period, 1000);
        let m: Manifest =
            serde_json::from_str(&store.manifest(1, p.pulse_index).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(m.recombine().unwrap(), p.local_random_value);
        let names: Vec<&str> = m.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["os", "hsm", "cpu", "camera"]);
        assert!(m.sources.iter().find(|s| s.name == "hsm").unwrap().status == "ok");
    }
}
