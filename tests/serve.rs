//! `lavabeacon serve` end to end with real parts: a SoftHSM2 dev token, SQLite (and
//! Postgres), the os, hsm and cpu sources, the synthetic camera through the camera frame path,
//! the image spool fed with generated files, and the API on a real port. Everything the API
//! serves verifies with `lavabeacon verify`, every manifest recombines, and a test beacon says
//! so in every response.

mod common;

use common::{checked_chain, get, softhsm_present, wait_for, Beacon};
use lavabeacon_format::manifest::Manifest;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The dev token's configuration with these sources and a spool under the token directory.
fn config_with_sources(hsm: &Path, sources: &[&str]) -> std::path::PathBuf {
    let toml = common::dev_config(hsm);
    let mut text = std::fs::read_to_string(&toml).unwrap();
    let list = sources
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    text.push_str(&format!(
        "\n[engine]\nsources = [{list}]\nspool_dir = \"./spool\"\n"
    ));
    let out = hsm.join("serve.toml");
    std::fs::write(&out, text).unwrap();
    out
}

/// Writes a noisy "image" into the spool the way a capture script must: a dot-name, then a
/// rename.
fn spool_image(dir: &Path, n: u32) {
    use rand::RngCore;
    let mut img = vec![0u8; 64 * 1024];
    rand::thread_rng().fill_bytes(&mut img);
    let tmp = dir.join(format!(".img-{n:05}.raw"));
    std::fs::File::create(&tmp)
        .unwrap()
        .write_all(&img)
        .unwrap();
    std::fs::rename(&tmp, dir.join(format!("img-{n:05}.raw"))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_pulses_that_verify_through_the_api_and_says_it_is_a_test_beacon() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let toml = config_with_sources(&hsm, &["os", "hsm", "cpu", "synthetic-camera", "spool"]);
    let spool = hsm.join("spool");
    let beacon = Beacon::start("serve", &toml, &[]);
    let base = beacon.base.clone();

    // Feed the spool while the beacon runs.
    let feeding = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            for n in 0..12 {
                std::thread::sleep(Duration::from_millis(350));
                if spool.exists() {
                    spool_image(&spool, n);
                }
            }
        })
    };
    let store = lavabeacon_store::open(&format!("sqlite:{}", hsm.join("lavabeacon.db").display()))
        .await
        .unwrap();
    wait_for(store.as_ref(), 3, 30).await;
    feeding.join().unwrap();
    let n = store.counts().await.unwrap().pulses;
    wait_for(store.as_ref(), n + 2, 30).await; // the last images are taken too
    let n = store.counts().await.unwrap().pulses;

    // The newest pulse, marked as a test beacon's, outside the signed pulse.
    let (status, h, body) = get(&format!("{base}/beacon/last"), &["Lavabeacon-Test", "ETag"]);
    assert_eq!(status, 200, "{body}");
    assert!(h[0].as_deref().unwrap().contains("TEST BEACON"), "{h:?}");
    let last: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last["lavabeacon"]["test"], true);
    assert!(last["pulse"]["pulseIndex"].as_u64().unwrap() >= n);
    assert!(h[1].as_deref().unwrap().contains(
        &last["pulse"]["outputValue"]
            .as_str()
            .unwrap()
            .to_lowercase()
    ));

    // Every pulse and the certificate through the API, then `lavabeacon verify` on them.
    let mut jsonl = String::new();
    let mut spool_used = 0;
    for i in 1..=n {
        let (status, _, body) = get(&format!("{base}/beacon/2.0/chain/1/pulse/{i}"), &[]);
        assert_eq!(status, 200, "pulse {i}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        jsonl.push_str(&v["pulse"].to_string());
        jsonl.push('\n');
        let (status, _, m) = get(&format!("{base}/beacon/2.0/chain/1/pulse/{i}/sources"), &[]);
        assert_eq!(status, 200, "{m}");
        let m: Manifest = serde_json::from_str(&m).unwrap();
        assert_eq!(
            m.recombine().unwrap().to_hex_upper(),
            v["pulse"]["localRandomValue"].as_str().unwrap(),
            "pulse {i}: the served manifest recombines to the served localRandomValue"
        );
        let names: Vec<&str> = m.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["os", "hsm", "cpu", "synthetic-camera", "spool"]);
        for s in &m.sources[..4] {
            assert_eq!(s.status, "ok", "pulse {i}: {s:?}");
        }
        spool_used += usize::from(m.sources[4].status == "ok");
    }
    assert!(
        spool_used >= 2,
        "the spool contributed to {spool_used} pulses"
    );
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "images left in the spool: {left:?}");

    let id = last["pulse"]["certificateId"].as_str().unwrap();
    let (status, _, pem) = get(&format!("{base}/beacon/2.0/certificate/{id}"), &[]);
    assert_eq!(status, 200);
    std::fs::write(dir.path().join("served.pem"), &pem).unwrap();
    std::fs::write(dir.path().join("served.jsonl"), &jsonl).unwrap();
    // `lavabeacon verify --cert served.pem FILE`: its report, once it has passed.
    let verified = |file: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
            .args(["verify", "--cert"])
            .arg(dir.path().join("served.pem"))
            .arg(dir.path().join(file))
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{file}: {report}");
        report
    };
    verified("served.jsonl");

    // The same pulses as one answer, NIST's chain between two times, verified the same way.
    let times: Vec<String> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["timeStamp"].to_string())
        .collect();
    let ms = |t: &str| lavabeacon_format::time::parse_time_stamp(t.trim_matches('"')).unwrap();
    let (status, _, chain) = get(
        &format!(
            "{base}/beacon/2.0/chain/time/{}/{}/previous",
            ms(&times[0]),
            ms(&times[times.len() - 1])
        ),
        &[],
    );
    assert_eq!(status, 200, "{chain}");
    let served: Vec<serde_json::Value> = serde_json::from_str(&chain).unwrap();
    assert_eq!(served.len() as u64, n);
    std::fs::write(dir.path().join("chain.json"), &chain).unwrap();
    let report = verified("chain.json");
    assert!(report.contains(&format!("{n} pulses")), "{report}");

    // Health while running, and the errors a client gets.
    let (status, _, body) = get(&format!("{base}/health"), &[]);
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["database"], "ok");
    assert_eq!(health["hsm"], "ok");
    assert!(health["test"]
        .as_str()
        .unwrap()
        .contains("synthetic camera"));
    let (status, h, body) = get(&format!("{base}/beacon/4102444800"), &["Retry-After"]);
    assert_eq!(status, 425, "{body}");
    assert!(h[0].as_deref().unwrap().parse::<u64>().unwrap() > 1_000_000);
    let (status, _, body) = get(&format!("{base}/beacon/not-a-time"), &[]);
    assert_eq!(status, 400);
    assert!(body.contains("RFC 3339"), "{body}");
    let (status, _, body) = get(&format!("{base}/no/such/path"), &[]);
    assert_eq!(status, 404);
    let e: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["error"]["status"], 404);
    beacon.kill();

    let chain = checked_chain(store.as_ref(), &hsm.join("pulse-key.pem")).await;
    assert!(chain.iter().all(|p| p.period == 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_makes_a_chain_that_verifies_across_a_restart() {
    if !softhsm_present() {
        return;
    }
    let Some(url) = common::fresh_postgres("serve").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let toml = config_with_sources(&hsm, &["os", "hsm", "cpu", "synthetic-camera"]);
    let store = lavabeacon_store::open(&url).await.unwrap();
    let beacon = Beacon::start("serve", &toml, &["--database", &url]);
    wait_for(store.as_ref(), 3, 30).await;
    beacon.kill();
    let beacon = Beacon::start("serve", &toml, &["--database", &url]);
    let n = store.counts().await.unwrap().pulses;
    wait_for(store.as_ref(), n + 2, 30).await;
    let (status, _, body) = get(&format!("{}/beacon/last", beacon.base), &[]);
    assert_eq!(status, 200, "{body}");
    beacon.kill();
    let chain = checked_chain(store.as_ref(), &hsm.join("pulse-key.pem")).await;
    assert!(
        chain[1..]
            .iter()
            .all(|p| p.status_code == 0 || p.status_code == 2),
        "no lost precommitment: {:?}",
        chain.iter().map(|p| p.status_code).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beacon_carries_another_beacons_verified_newest_pulse_in_external() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (hsm_a, hsm_b) = (dir.path().join("a"), dir.path().join("b"));
    common::dev_token(&hsm_a);
    common::dev_token(&hsm_b);
    let store_a =
        lavabeacon_store::open(&format!("sqlite:{}", hsm_a.join("lavabeacon.db").display()))
            .await
            .unwrap();
    let a = Beacon::start("serve", &common::dev_config(&hsm_a), &[]);
    wait_for(store_a.as_ref(), 1, 30).await;

    let toml_b = config_with_sources(&hsm_b, &["os", "hsm", "cpu", "synthetic-camera"]);
    let mut text = std::fs::read_to_string(&toml_b).unwrap();
    text.push_str(&format!(
        "\n[engine.external]\nurl = \"{}/beacon/2.0/pulse/last\"\ndescription = \"beacon A\"\ncertificate = {:?}\n",
        a.base,
        hsm_a.join("pulse-key.pem")
    ));
    std::fs::write(&toml_b, text).unwrap();
    let store_b =
        lavabeacon_store::open(&format!("sqlite:{}", hsm_b.join("lavabeacon.db").display()))
            .await
            .unwrap();
    let b = Beacon::start("serve", &toml_b, &[]);
    wait_for(store_b.as_ref(), 3, 30).await;
    // What the sourceId names, as NIST's schema serves it: the description, whose SHA-512 it is.
    let source_id = lavabeacon_format::hash::sha512(&[b"beacon A"]);
    let (status, h, body) = get(
        &format!(
            "{}/beacon/2.0/externalSource/{}",
            b.base,
            source_id.to_hex_upper()
        ),
        &["Content-Type"],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "beacon A");
    assert_eq!(h[0].as_deref(), Some("text/plain; charset=utf-8"));
    b.kill();
    a.kill();

    let chain = checked_chain(store_b.as_ref(), &hsm_b.join("pulse-key.pem")).await;
    for p in &chain {
        let ext = p.external.as_slice()[0];
        assert_eq!(ext.source_id, source_id);
        assert_eq!(ext.status_code, 0, "pulse {}", p.pulse_index);
        let m: Manifest =
            serde_json::from_str(&store_b.manifest(1, p.pulse_index).await.unwrap().unwrap())
                .unwrap();
        let entry = m
            .external
            .expect("the manifest names the other beacon's pulse");
        assert_eq!(entry.external().unwrap(), ext);
        // The pulse of A it names is A's, with that outputValue.
        let index: u64 = entry
            .uri
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let of_a = store_a.by_index(1, index).await.unwrap().unwrap();
        assert_eq!(Some(of_a.output_value.to_hex_upper()), entry.output_value);
    }

    // An export carries the description beside the pulses, and an import loads it, so a
    // mirror serves it too.
    let export = dir.path().join("b.jsonl");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    let db_b = format!("sqlite:{}", hsm_b.join("lavabeacon.db").display());
    run(&[
        "export",
        "--database",
        &db_b,
        "--output",
        export.to_str().unwrap(),
    ]);
    let file = dir
        .path()
        .join("b.external-sources")
        .join(format!("{}.txt", source_id.to_hex_upper()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "beacon A");
    let mirror = format!("sqlite:{}", dir.path().join("mirror.db").display());
    run(&["import", export.to_str().unwrap(), "--database", &mirror]);
    let mirror = lavabeacon_store::open(&mirror).await.unwrap();
    assert_eq!(
        mirror.external_source(&source_id).await.unwrap().as_deref(),
        Some("beacon A")
    );
}

#[test]
fn serve_refuses_to_start_on_a_wrong_pin_or_a_busy_port_and_says_why() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
            .args(["serve", "--period", "1s", "--config"])
            .arg(common::dev_config(&hsm))
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, err) = run(&["--listen", &addr]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");

    let pin = hsm.join("user.pin");
    let good = std::fs::read_to_string(&pin).unwrap();
    std::fs::write(&pin, "31415926\n").unwrap();
    let (code, err) = run(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("signer") && err.to_lowercase().contains("pin"),
        "{err}"
    );
    assert!(
        !err.contains("31415926") && !err.contains(good.trim()),
        "no PIN in messages: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_api_node_serves_and_streams_what_the_engine_writes() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let mut toml = std::fs::read_to_string(common::dev_config(&hsm)).unwrap();
    // The read-only node must be told the period: it has no engine to ask.
    toml = toml.replace("period_ms = 60000", "period_ms = 1000");
    let config = hsm.join("period-1s.toml");
    std::fs::write(&config, toml).unwrap();
    let store = lavabeacon_store::open(&format!("sqlite:{}", hsm.join("lavabeacon.db").display()))
        .await
        .unwrap();
    let engine = Beacon::start("engine", &config, &[]);
    wait_for(store.as_ref(), 1, 30).await;
    let api = Beacon::start("api", &config, &[]);

    // Its stream pushes each new pulse, found by watching the database.
    let (tx, rx) = std::sync::mpsc::channel();
    let url = format!("{}/beacon/2.0/stream", api.base);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let resp = ureq::get(&url).call().unwrap();
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(id) = line.strip_prefix("id: ") {
                if tx.send(id.to_string()).is_err() {
                    return;
                }
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s");
    let second = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("another within 10 s");
    let index = |id: &str| id.split_once('-').unwrap().1.parse::<u64>().unwrap();
    assert_eq!(index(&second), index(&first) + 1);

    let (status, h, body) = get(&format!("{}/beacon/last", api.base), &["Lavabeacon-Test"]);
    assert_eq!(status, 200, "{body}");
    assert!(
        h[0].as_deref().unwrap_or("").contains("TEST certificate"),
        "{h:?}"
    );
    let (status, _, body) = get(&format!("{}/health", api.base), &[]);
    assert_eq!(status, 200, "{body}");
    engine.kill();
    api.kill();
}

/// Started the way systemd socket activation starts it (`deploy/systemd/lavabeacon.socket`):
/// the listening socket as descriptor 3, `LISTEN_FDS=1` and `LISTEN_PID` its own pid. It serves
/// on that socket, opening no port of its own.
#[test]
fn serve_takes_the_listening_socket_systemd_passes() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    // `$$` is the shell's pid, which `exec` keeps: what systemd puts in LISTEN_PID.
    cmd.arg("-c")
        .arg("export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" serve --period 1s --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_lavabeacon"))
        .arg(common::dev_config(&hsm))
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
    // SAFETY: between fork and exec only dup2(2) and fcntl(2), which are async-signal-safe.
    // The socket must be descriptor 3 and stay open across exec (a dup2 onto itself would
    // keep the close-on-exec flag Rust sets on every descriptor).
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let beacon = Beacon::spawn(&mut cmd, Some(Duration::from_secs(30)));
    drop(listener);
    assert_eq!(beacon.base, format!("http://{addr}"));
    let url = format!("{}/beacon/last", beacon.base);
    let mut answer = get(&url, &[]);
    for _ in 0..100 {
        if answer.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        answer = get(&url, &[]);
    }
    assert_eq!(answer.0, 200, "{}", answer.2);
    assert!(answer.2.contains("\"pulseIndex\""), "{}", answer.2);
}
