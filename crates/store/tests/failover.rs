//! Two engines on one database, as separate processes: only the leader writes; when the leader
//! process is killed, the standby takes over within two periods (1-second periods here) and
//! the chain goes on without a fork. Runs on SQLite and on a real PostgreSQL server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START: &str = "2026-03-01T00:00:00.000Z";
const PERIOD_MS: u32 = 1000;

/// The leader process: `failover` re-runs itself with `LAVABEACON_FAILOVER_CHILD` set. It takes
/// the lock, then appends the chain's next pulse every period and says so on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process for the failover tests, started by them"]
async fn failover_leader_process() {
    let Ok(url) = std::env::var("LAVABEACON_FAILOVER_CHILD") else {
        return;
    };
    let store = lavabeacon_store::open(&url).await.unwrap();
    let leader = store
        .acquire_leadership(Some(Duration::from_secs(10)))
        .await
        .unwrap();
    println!("LEADER");
    let (signer, _) = common::chain::ed25519_identity(1);
    let pulses = common::chain::build_chain(100, START, PERIOD_MS, &signer);
    loop {
        let n = store.counts().await.unwrap().pulses as usize;
        store.append(&pulses[n], None, Some(&leader)).await.unwrap();
        println!("APPENDED {}", n + 1);
        tokio::time::sleep(Duration::from_millis(u64::from(PERIOD_MS))).await;
    }
}

fn start_leader(url: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "failover_leader_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LAVABEACON_FAILOVER_CHILD", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

async fn killing_the_leader_hands_over_to_the_standby(db: &common::Db) {
    let (mut child, lines) = start_leader(&db.url);
    let wait_for = |what: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("leader process never said {what}"));
        if line.contains(what) {
            return line;
        }
    };
    wait_for("LEADER");
    wait_for("APPENDED 2");
    // The standby: another engine on the same database, waiting for the lock.
    let standby = db.reopen().await;
    let busy = standby
        .acquire_leadership(Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(
        matches!(busy, lavabeacon_store::StoreError::LeaderBusy { .. }),
        "{busy}"
    );
    let (signer, _) = common::chain::ed25519_identity(1);
    let pulses = common::chain::build_chain(100, START, PERIOD_MS, &signer);
    let waiting = tokio::spawn(async move {
        let l = standby
            .acquire_leadership(Some(Duration::from_secs(20)))
            .await
            .unwrap();
        (standby, l, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap(); // SIGKILL: no clean shutdown, as in a crash
    let killed = Instant::now();
    child.wait().unwrap();
    let (standby, leader, took_over) = waiting.await.unwrap();
    let gap = took_over.duration_since(killed);
    assert!(
        gap < Duration::from_millis(2 * u64::from(PERIOD_MS)),
        "standby took {gap:?} to take over"
    );
    let n = standby.counts().await.unwrap().pulses as usize;
    standby
        .append(&pulses[n], None, Some(&leader))
        .await
        .unwrap();
    // One chain, no fork, nothing lost.
    for i in 1..=n + 1 {
        assert_eq!(
            standby.by_index(1, i as u64).await.unwrap().as_ref(),
            Some(&pulses[i - 1])
        );
    }
    eprintln!(
        "{}: standby took over {gap:?} after the kill, chain at {} pulses",
        standby.backend(),
        n + 1
    );
}

contract!(killing_the_leader_hands_over_to_the_standby);
