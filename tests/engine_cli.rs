//! The engine killed with SIGKILL at random points and started again, twenty times, as
//! `lavabeacon engine` and `lavabeacon serve` in turn: the chain it leaves verifies, every gap
//! is marked (statusCode 2), every manifest recombines, and no precommitment is lost (no
//! statusCode 3: the sealed value is always in the store before its pulse is public).

mod common;

use common::{checked_chain, softhsm_present, wait_for, Beacon};
use rand::Rng;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_twenty_times_at_random_points_the_chain_verifies_with_every_gap_marked() {
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
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    for round in 0..20 {
        let command = if round % 2 == 0 { "engine" } else { "serve" };
        let beacon = Beacon::start(command, &toml, &[]);
        if round == 0 {
            wait_for(store.as_ref(), 1, 30).await;
        }
        // Anywhere in the period: while sampling, signing, sealing, waiting or appending.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..2600))).await;
        beacon.kill();
        kills += 1;
        if round % 4 == 3 {
            // Down for longer than a period: the slot is missed and the gap must be marked.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }
    let beacon = Beacon::start("engine", &toml, &[]);
    let n = store.counts().await.unwrap().pulses;
    wait_for(store.as_ref(), n + 2, 30).await;
    beacon.kill();

    let chain = checked_chain(store.as_ref(), &hsm.join("pulse-key.pem")).await;
    assert_eq!(kills, 20);
    let statuses: Vec<u32> = chain.iter().map(|p| p.status_code).collect();
    assert!(
        statuses[1..].iter().all(|s| *s == 0 || *s == 2),
        "no lost precommitment: {statuses:?}"
    );
    // Some restarts lose slots; each is marked where the chain resumes.
    assert!(statuses.contains(&2), "{statuses:?}");
    for w in chain.windows(2) {
        let gap = w[1].time_ms().unwrap() - w[0].time_ms().unwrap();
        assert_eq!(
            gap > 1000,
            w[1].status_code == 2,
            "pulse {}",
            w[1].pulse_index
        );
    }
}
