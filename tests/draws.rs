//! `lavabeacon draw`: RFC 3797's worked example from its own files, and a draw end to end on a
//! real beacon (SoftHSM2 dev token, 1 s period): a spec fixed before its pulse, its result
//! fetched and verified, then verified offline; a changed spec, selection or pulse fails with
//! the reason.

mod common;

use common::{get, output_text, softhsm_present, Beacon};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn lavabeacon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(args)
        .output()
        .unwrap()
}

/// `lavabeacon draw verify --spec SPEC --result RESULT --cert CERT` and `extra`.
fn verify(spec: &str, result: &str, cert: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "draw", "verify", "--spec", spec, "--result", result, "--cert", cert,
    ];
    args.extend(extra);
    lavabeacon(&args)
}

fn vectors(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/rfc3797")
        .join(file)
        .display()
        .to_string()
}

#[test]
fn draw_run_reproduces_the_rfc_3797_worked_example_from_its_files() {
    let (names, seeds) = (vectors("names.txt"), vectors("seeds.txt"));
    let out = lavabeacon(&[
        "draw", "run", "--method", "rfc3797", "--names", &names, "--seeds", &seeds, "--count",
        "16", "--json",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let indexes: Vec<u64> = v["picks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indexes,
        [17, 7, 2, 16, 25, 23, 8, 24, 19, 13, 22, 5, 18, 9, 1, 4]
    );
    assert_eq!(v["picks"][0]["position"], 1);
    assert_eq!(v["picks"][0]["name"], "Lee");
    assert_eq!(v["picks"][10]["name"], "Sloth");
    assert_eq!(v["key"], "9319./2.5.8.10.12./9.18.26.34.41.45./");
    // Text form, and a pool too small for the picks asked.
    let text = lavabeacon(&[
        "draw", "run", "--names", &names, "--seeds", &seeds, "--count", "2",
    ]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("17  Lee"));
    let refused = lavabeacon(&[
        "draw", "run", "--names", &names, "--seeds", &seeds, "--count", "26",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(output_text(&refused).contains("cannot pick 26 from a pool of 25"));
}

/// Waits until the beacon at `base` has published the pulse of `time_ms`.
fn wait_published(base: &str, time_ms: i64) {
    let started = Instant::now();
    while get(&format!("{base}/beacon/2.0/pulse/time/{time_ms}"), &[]).0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no pulse at {time_ms}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_draw_fixed_before_its_pulse_is_computed_from_the_beacon_and_verified_offline() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::dev_token(dir.path());
    let beacon = Beacon::start("serve", &common::dev_config(dir.path()), &[]);
    let (_, _, body) = {
        let started = Instant::now();
        loop {
            let r = get(&format!("{}/beacon/last", beacon.base), &[]);
            if r.0 == 200 {
                break r;
            }
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let last: serde_json::Value = serde_json::from_str(&body).unwrap();
    let certificate_id = last["pulse"]["certificateId"].as_str().unwrap().to_string();
    let newest_ms =
        lavabeacon_format::time::parse_time_stamp(last["pulse"]["timeStamp"].as_str().unwrap())
            .unwrap();
    // Three periods ahead of the newest pulse: the spec exists before its pulse does.
    let target_ms = newest_ms + 3000;
    let target = lavabeacon_format::time::format_time_stamp(target_ms).unwrap();
    let spec = serde_json::json!({
        "version": 1,
        "title": "End-to-end test draw",
        "method": "lavabeacon-v1",
        "operation": "pick",
        "pool": {"entries": ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances"]},
        "count": 3,
        "beacon": {"baseUri": "http://localhost:8080/beacon/2.0", "chainIndex": 1, "certificateId": certificate_id},
        "targetTime": target,
    });
    let spec_file = dir.path().join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let spec_path = spec_file.to_str().unwrap();
    let id = lavabeacon(&["draw", "spec", spec_path, "--json"]);
    assert!(id.status.success(), "{}", output_text(&id));
    let id: serde_json::Value = serde_json::from_slice(&id.stdout).unwrap();
    let draw_id = id["drawId"].as_str().unwrap().to_string();
    assert_eq!(draw_id.len(), 128);

    // Before its pulse: not yet, and said so.
    let early = lavabeacon(&["draw", "result", "--spec", spec_path, "--url", &beacon.base]);
    if early.status.success() {
        panic!("a result before the target time: {}", output_text(&early));
    }
    assert!(
        output_text(&early).contains("not yet published") || output_text(&early).contains("404"),
        "{}",
        output_text(&early)
    );

    wait_published(&beacon.base, target_ms);
    let result = lavabeacon(&["draw", "result", "--spec", spec_path, "--url", &beacon.base]);
    assert!(result.status.success(), "{}", output_text(&result));
    let result_file = dir.path().join("result.json");
    std::fs::write(&result_file, &result.stdout).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(r["drawId"], draw_id.as_str());
    assert_eq!(r["pulse"]["timeStamp"], target.as_str());
    assert_eq!(r["selection"]["picks"].as_array().unwrap().len(), 3);
    // A pulse trusted later, and the beacon's skip path from the deciding pulse to it.
    let decides = r["pulse"]["pulseIndex"].as_u64().unwrap();
    wait_published(&beacon.base, target_ms + 2000);
    let (_, _, trusted) = get(
        &format!("{}/beacon/2.0/chain/1/pulse/{}", beacon.base, decides + 2),
        &[],
    );
    let (status, _, path) = get(
        &format!(
            "{}/beacon/2.0/skipList/1/{decides}/{}",
            beacon.base,
            decides + 2
        ),
        &[],
    );
    assert_eq!(status, 200, "{path}");
    let (_, _, unrelated) = get(&format!("{}/beacon/2.0/chain/1/pulse/1", beacon.base), &[]);
    beacon.kill();
    let trusted_file = dir.path().join("trusted.json");
    std::fs::write(&trusted_file, &trusted).unwrap();
    let path_file = dir.path().join("path.json");
    std::fs::write(&path_file, &path).unwrap();
    let unrelated_file = dir.path().join("unrelated.json");
    std::fs::write(&unrelated_file, &unrelated).unwrap();

    // Offline, with the certificate the dev token wrote.
    let cert = dir.path().join("pulse-key.pem");
    let cert = cert.to_str().unwrap();
    let result_path = result_file.to_str().unwrap();
    let ok = verify(spec_path, result_path, cert, &[]);
    assert!(ok.status.success(), "{}", output_text(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK: draw "));
    let (trusted_path, path_path) = (trusted_file.to_str().unwrap(), path_file.to_str().unwrap());
    let linked = verify(
        spec_path,
        result_path,
        cert,
        &["--trusted", trusted_path, "--path", path_path],
    );
    assert!(linked.status.success(), "{}", output_text(&linked));
    let other = verify(
        spec_path,
        result_path,
        cert,
        &[
            "--trusted",
            unrelated_file.to_str().unwrap(),
            "--path",
            path_path,
        ],
    );
    assert_eq!(other.status.code(), Some(1));
    assert!(
        output_text(&other).contains("it must run between"),
        "{}",
        output_text(&other)
    );

    // A changed spec: another id.
    let mut changed = spec.clone();
    changed["count"] = 2.into();
    let changed_spec = dir.path().join("changed-spec.json");
    std::fs::write(&changed_spec, changed.to_string()).unwrap();
    let out = verify(changed_spec.to_str().unwrap(), result_path, cert, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        output_text(&out).contains("the spec was changed"),
        "{}",
        output_text(&out)
    );

    // A changed selection: made again, it differs.
    let mut tampered = r.clone();
    let picks = tampered["selection"]["picks"].as_array_mut().unwrap();
    picks.swap(0, 1);
    for (i, p) in picks.iter_mut().enumerate() {
        p["position"] = (i + 1).into();
    }
    let tampered_file = dir.path().join("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string()).unwrap();
    let out = verify(spec_path, tampered_file.to_str().unwrap(), cert, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        output_text(&out).contains("the selection is not the one"),
        "{}",
        output_text(&out)
    );

    // A changed pulse: its signature fails.
    let mut forged = r.clone();
    let lrv = forged["pulse"]["localRandomValue"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = format!(
        "{}{}",
        if lrv.starts_with('0') { '1' } else { '0' },
        &lrv[1..]
    );
    forged["pulse"]["localRandomValue"] = flipped.into();
    let forged_file = dir.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let out = verify(spec_path, forged_file.to_str().unwrap(), cert, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        output_text(&out).contains("the pulse does not verify"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn a_draw_registered_before_its_pulse_gets_a_signed_receipt_and_its_result_verifies_offline() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::dev_token(dir.path());
    // A client of the registry (the private-bytes credentials), from this host only.
    let clients_file = dir.path().join("clients.json");
    let out = lavabeacon(&[
        "clients",
        "add",
        "lottery",
        "--clients-file",
        clients_file.to_str().unwrap(),
        "--allow-ip",
        "127.0.0.1",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let creds = dir.path().join("lottery.json");
    std::fs::write(&creds, &out.stdout).unwrap();
    let config = common::dev_config(dir.path());
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!("\n[private]\nclients_file = {clients_file:?}\n"));
    std::fs::write(&config, toml).unwrap();
    let beacon = Beacon::start("serve", &config, &[]);
    let base = beacon.base.clone();
    let newest = {
        let started = Instant::now();
        loop {
            let (status, _, body) = get(&format!("{base}/beacon/last"), &[]);
            if status == 200 {
                break serde_json::from_str::<serde_json::Value>(&body).unwrap();
            }
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let newest_ms =
        lavabeacon_format::time::parse_time_stamp(newest["pulse"]["timeStamp"].as_str().unwrap())
            .unwrap();
    let spec_for = |target_ms: i64, title: &str| {
        serde_json::json!({
            "version": 1, "title": title, "method": "rfc3797", "operation": "pick",
            "pool": {"entries": ["Ada", "Grace", "Alan", "Edsger", "Barbara"]}, "count": 2,
            "sources": [["9319"], ["2", "5", "12", "8", "10"]],
            "beacon": {"baseUri": "http://localhost:8080/beacon/2.0", "chainIndex": 1,
                       "certificateId": newest["pulse"]["certificateId"]},
            "targetTime": lavabeacon_format::time::format_time_stamp(target_ms).unwrap(),
        })
    };
    let creds_path = creds.to_str().unwrap();
    let register = |spec: &str| {
        lavabeacon(&[
            "draw",
            "register",
            "--url",
            &base,
            "--credentials",
            creds_path,
            "--spec",
            spec,
        ])
    };

    // Registered four periods ahead: a receipt signed by the beacon's key.
    let target_ms = newest_ms + 4000;
    let spec = spec_for(target_ms, "registered in time");
    let spec_file = dir.path().join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let spec_path = spec_file.to_str().unwrap();
    let out = register(spec_path);
    assert!(out.status.success(), "{}", output_text(&out));
    let registered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = registered["drawId"].as_str().unwrap().to_string();
    let receipt_file = dir.path().join("receipt.json");
    std::fs::write(&receipt_file, registered["receipt"].to_string()).unwrap();
    assert_eq!(registered["receipt"]["drawId"], id.as_str());
    // A lavabeacon-v1 draw on the same pulse, weighted, for the explorer to make again.
    let mut v1 = spec_for(target_ms, "weighted, made again in the browser");
    v1["method"] = "lavabeacon-v1".into();
    v1["operation"] = "weighted".into();
    v1["weights"] = serde_json::json!(["1", "2", "3", "4", "5"]);
    v1.as_object_mut().unwrap().remove("sources");
    let v1_file = dir.path().join("v1.json");
    std::fs::write(&v1_file, v1.to_string()).unwrap();
    let out = register(v1_file.to_str().unwrap());
    assert!(out.status.success(), "{}", output_text(&out));
    let v1_id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["drawId"]
        .as_str()
        .unwrap()
        .to_string();

    // Anyone reads it back; its result is not there before its pulse.
    let (status, _, body) = get(&format!("{base}/draws/{id}"), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["receipt"],
        registered["receipt"]
    );
    let (status, headers, _) = get(&format!("{base}/draws/{id}/result"), &["Retry-After"]);
    assert_eq!(status, 425);
    assert!(headers[0].is_some(), "425 comes with Retry-After");

    // Too late: less than two periods ahead; and no credentials at all.
    let late = spec_for(newest_ms + 1000, "too late");
    let late_file = dir.path().join("late.json");
    std::fs::write(&late_file, late.to_string()).unwrap();
    let out = register(late_file.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        output_text(&out).contains("too late"),
        "{}",
        output_text(&out)
    );
    let anonymous = ureq::post(&format!("{base}/draws"))
        .set("Content-Type", "application/json")
        .send_string(&spec.to_string());
    match anonymous {
        // Without the client's custom header: refused before anything else (docs/private-bytes.md).
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("an unsigned registration: {other:?}"),
    }

    // After its pulse: the result, verified offline with the receipt.
    wait_published(&base, target_ms);
    let (status, _, body) = get(&format!("{base}/draws/{id}/result"), &[]);
    assert_eq!(status, 200, "{body}");
    let result_file = dir.path().join("result.json");
    std::fs::write(&result_file, &body).unwrap();
    // The explorer checks both in the browser: the spec's id, the receipt, the pulse, and the
    // v1 selection made again (RFC 3797's needs MD5, which WebCrypto lacks: not checked).
    if common::browser::present() {
        let out = common::browser::scenario("draw", &base, &["--id", &v1_id, "--selection", "ok"]);
        assert!(out.contains("draw: Verified"), "{out}");
        let out =
            common::browser::scenario("draw", &base, &["--id", &id, "--selection", "not-checked"]);
        assert!(out.contains("draw: Verified"), "{out}");
    }
    beacon.kill();
    let cert = dir.path().join("pulse-key.pem");
    let (cert, result_path, receipt_path) = (
        cert.to_str().unwrap(),
        result_file.to_str().unwrap(),
        receipt_file.to_str().unwrap(),
    );
    let ok = verify(spec_path, result_path, cert, &["--receipt", receipt_path]);
    assert!(ok.status.success(), "{}", output_text(&ok));

    // A receipt changed after signing fails on its signature.
    let mut forged = registered["receipt"].clone();
    forged["registeredAt"] = lavabeacon_format::time::format_time_stamp(newest_ms - 60_000)
        .unwrap()
        .into();
    std::fs::write(&receipt_file, forged.to_string()).unwrap();
    let out = verify(spec_path, result_path, cert, &["--receipt", receipt_path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        output_text(&out).contains("the receipt's signature"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn the_draw_vectors_are_what_draw_result_makes_and_what_a_second_implementation_makes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/draws");
    let suite2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/lavabeacon-suite2");
    let (pulse, cert) = (suite2.join("pulse-2.json"), suite2.join("certificate.pem"));
    for name in ["v1-pick", "v1-weighted", "v1-integers", "rfc3797-pulse"] {
        let spec = dir.join(format!("{name}.spec.json"));
        let expected = dir.join(format!("{name}.result.json"));
        let out = lavabeacon(&[
            "draw",
            "result",
            "--spec",
            spec.to_str().unwrap(),
            "--pulse",
            pulse.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{name}: {}", output_text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&expected).unwrap(),
            "{name}"
        );
        let ok = verify(
            spec.to_str().unwrap(),
            expected.to_str().unwrap(),
            cert.to_str().unwrap(),
            &[],
        );
        assert!(ok.status.success(), "{name}: {}", output_text(&ok));
    }
    // docs/draws.md, implemented again in Python (standard library only).
    let out = Command::new("python3")
        .arg("check.py")
        .current_dir(&dir)
        .output()
        .expect("python3 (scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(" ok ").count(),
        4
    );
}
