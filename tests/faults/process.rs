//! The process itself: SIGKILL, SIGSTOP, a closed stdout, a second engine on the same file,
//! SIGTERM with open streams.

use crate::common::faults::*;
use crate::{fmt_lateness, missed_between, serial, sleep_ms};
use std::time::{Duration, Instant};

#[test]
fn sigkill_at_random_moments_then_restart_continues_the_chain_with_status_2_and_the_commitment_kept(
) {
    use rand::Rng;
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let url = fx.sqlite_url();
    let mut beacon = fx.start("serve", &[], &[]);
    let watch = Watch::start(&url, 1);
    watch.wait_count(3, Duration::from_secs(30)).unwrap();
    let mut rng = rand::thread_rng();
    let mut recoveries = Vec::new();
    for _ in 0..3 {
        // Anywhere in the period: sampling, signing, sealing, waiting for the slot, appending.
        let phase = rng.gen_range(0..1000);
        sleep_ms(1000 + phase);
        let killed = now_ms();
        beacon.kill();
        beacon = fx.start("serve", &[], &[]);
        let up = now_ms();
        let (first, took) = recovered(&watch, killed + PERIOD_MS, up, "sigkill");
        recoveries.push((phase, up - killed, took, first.status));
    }
    watch.wait_more(2);
    beacon.kill();
    let seen = watch.stop();

    // A restart quick enough to make the next slot costs no period at all (status 0 then);
    // one that is not leaves a gap, which assert_chain checks is marked with status 2, with
    // the commitment kept (no status 3).
    let links = assert_chain(&url, 1, &seen, &[]);
    assert!(
        links.len() >= 3 * 2,
        "the chain went on across three restarts: {:?}",
        links.iter().map(|l| l.status).collect::<Vec<_>>()
    );
    let lateness = assert_punctual(&seen, "sigkill");
    let rounds: Vec<String> = recoveries
        .iter()
        .map(|(phase, start, took, status)| {
            format!("killed {phase} ms into a period, up in {start} ms, next pulse {took} ms later (status {status})")
        })
        .collect();
    println!(
        "faults: sigkill: missed {} periods over 3 kills; {}; {}",
        missed(&links),
        rounds.join("; "),
        fmt_lateness(lateness)
    );
    fx.check_logs();
}

#[test]
fn sigstop_for_5_s_skips_the_slot_that_was_due_instead_of_publishing_it_late_and_resumes() {
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let url = fx.sqlite_url();
    let beacon = fx.start("serve", &[], &[]);
    let watch = Watch::start(&url, 1);
    watch.wait_count(3, Duration::from_secs(30)).unwrap();
    // Just after a pulse: the next one is prepared and waits for its slot.
    watch.wait_more(1);
    sleep_ms(300);
    let stopped = now_ms();
    beacon.signal(SIGSTOP);
    sleep_ms(5000);
    let resumed = now_ms();
    beacon.signal(SIGCONT);
    let (first, took) = recovered(&watch, stopped, resumed, "sigstop");
    watch.wait_more(3);
    beacon.kill();
    let seen = watch.stop();

    let links = assert_chain(&url, 1, &seen, &[]);
    // A slot due while the process was stopped could not have been published on time.
    let late: Vec<_> = links
        .iter()
        .filter(|l| l.time_ms > stopped && l.time_ms + TOLERANCE_MS + SLACK_MS < resumed)
        .map(|l| {
            format!(
                "#{} (status {}, due {} ms before SIGCONT)",
                l.index,
                l.status,
                resumed - l.time_ms
            )
        })
        .collect();
    assert!(
        late.is_empty(),
        "slots due while the beacon was stopped were published late instead of skipped: {late:?}"
    );
    let lateness = assert_punctual(&seen, "sigstop");
    println!(
        "faults: sigstop: missed {} periods ({} while stopped), recovered {:.2} s after SIGCONT (pulse #{} status {}); {}",
        missed(&links),
        missed_between(&links, stopped, resumed),
        took as f64 / 1000.0,
        first.index,
        first.status,
        fmt_lateness(lateness)
    );
    fx.check_logs();
}

#[test]
fn a_closed_stdout_does_not_stop_the_beacon() {
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let url = fx.sqlite_url();
    let mut beacon = fx.spawn("serve", &fx.config, &[], &[], Stdout::CloseAfterListening);
    let closed = now_ms();
    let watch = Watch::start(&url, 1);
    // Several pulses after the pipe closed: each would have been a write to it.
    let ok = watch.wait_count(5, Duration::from_secs(15));
    let alive = beacon.alive();
    assert!(
        alive && ok.is_ok(),
        "with its stdout closed the beacon must go on publishing: alive {alive}, {ok:?}, exit {:?}; stderr:\n{}",
        beacon.child.try_wait(),
        beacon.stderr()
    );
    let (status, _) = timed_get(
        &format!("{}/beacon/last", beacon.base),
        Duration::from_secs(5),
    );
    assert_eq!(status, 200);
    beacon.kill();
    let seen = watch.stop();
    let links = assert_chain(&url, 1, &seen, &[]);
    let lateness = assert_punctual(&seen, "closed-stdout");
    println!(
        "faults: closed-stdout: {} pulses in {:.1} s after stdout closed, missed {} periods, still alive; {}",
        links.iter().filter(|l| l.time_ms > closed).count(),
        (now_ms() - closed) as f64 / 1000.0,
        missed(&links),
        fmt_lateness(lateness)
    );
    fx.check_logs();
}

/// The source names in the manifest of each pulse of chain 1 (by index).
fn manifest_sources(url: &str, links: &[Link]) -> Vec<(u64, Vec<String>)> {
    block_on(async {
        let store = lavabeacon_store::open(url).await.unwrap();
        let mut v = Vec::new();
        for l in links {
            let m = store
                .manifest(1, l.index)
                .await
                .unwrap()
                .unwrap_or_default();
            let m: serde_json::Value = serde_json::from_str(&m).unwrap_or_default();
            let names = m["sources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s["name"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            v.push((l.index, names));
        }
        v
    })
}

#[test]
fn two_engines_on_one_sqlite_file_through_a_symlink_one_leads_and_the_other_waits() {
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    // A standby pair shares the token (so B can unseal A's sealed value when it takes over);
    // B samples one source fewer, so that each pulse's manifest says which engine made it.
    let config_b = fx.hsm.join("b.toml");
    let mut text = std::fs::read_to_string(&fx.config).unwrap();
    text.push_str("\n[engine]\nsources = [\"os\", \"hsm\", \"cpu\"]\n");
    std::fs::write(&config_b, text).unwrap();
    let by_b = |names: &Vec<String>| !names.iter().any(|n| n == "synthetic-camera");

    let (dir_a, dir_b) = (fx.dir.path().join("a"), fx.dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let url_a = format!("sqlite:{}", dir_a.join("db.sqlite").display());
    let url_b = format!("sqlite:{}", dir_b.join("db.sqlite").display());
    let a = fx.start("serve", &["--database", &url_a], &[]);
    let watch = Watch::start(&url_a, 1);
    watch.wait_count(2, Duration::from_secs(30)).unwrap();
    std::os::unix::fs::symlink(dir_a.join("db.sqlite"), dir_b.join("db.sqlite")).unwrap();
    let b = fx.spawn(
        "serve",
        &config_b,
        &["--database", &url_b],
        &[],
        Stdout::Keep,
    );
    let both_from = now_ms();
    watch.wait_more(4);
    let both_to = now_ms();
    let during = chain(&url_a, 1);
    let written_by_b: Vec<u64> = manifest_sources(&url_a, &during)
        .into_iter()
        .filter(|(_, names)| by_b(names))
        .map(|(i, _)| i)
        .collect();
    let b_out = b.stdout_lines.lock().unwrap().clone();
    let b_err = b.stderr();
    let b_skips: Vec<&str> = b_err
        .lines()
        .filter(|l| l.to_lowercase().contains("skip"))
        .collect();
    assert!(
        written_by_b.is_empty()
            && b_skips.is_empty()
            && !b_out.iter().any(|l| l.contains("published")),
        "while A leads, B (on the same file through a symlink) must wait, not write: pulses made by B {written_by_b:?}; B's skipped slots {b_skips:?}; B's stdout {b_out:?}"
    );
    let while_both = missed_between(&during, both_from, both_to);
    assert_eq!(while_both, 0, "A missed slots while B ran");

    // A dies: B, the standby, takes over with A's sealed value (status 2, commitment kept).
    let killed = now_ms();
    a.kill();
    // The standby notices the free lock (it polls it), opens the engine, then makes a pulse:
    // one period more than a recovery.
    let (first, took) = recovered(
        &watch,
        killed + PERIOD_MS,
        killed + PERIOD_MS,
        "symlink takeover",
    );
    watch.wait_more(2);
    b.kill();
    let seen = watch.stop();
    let links = assert_chain(&url_a, 1, &seen, &[]);
    let after: Vec<u64> = manifest_sources(&url_a, &links)
        .into_iter()
        .filter(|(i, names)| *i > first.index && !by_b(names))
        .map(|(i, _)| i)
        .collect();
    assert!(
        after.is_empty(),
        "after A died, B makes the pulses; these are not B's: {after:?}"
    );
    println!(
        "faults: symlink: while both ran {} pulses, all by A; B took over {:.2} s after A was killed (pulse #{} status {}), missed {} periods",
        during
            .iter()
            .filter(|l| l.time_ms > both_from && l.time_ms <= both_to)
            .count(),
        (took + PERIOD_MS) as f64 / 1000.0,
        first.index,
        first.status,
        missed(&links)
    );
    fx.check_logs();
}

#[test]
fn sigterm_with_open_sse_streams_exits_within_5_s_and_frees_the_leader_lock() {
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let url = fx.sqlite_url();
    let mut beacon = fx.start("serve", &[], &[]);
    let watch = Watch::start(&url, 1);
    watch.wait_count(2, Duration::from_secs(30)).unwrap();
    let _idle = idle_sse_client(&beacon.base, "1-1");
    let reading = reading_sse_client(&beacon.base);
    let started = Instant::now();
    while reading.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reading SSE client got no event"
        );
        sleep_ms(20);
    }
    beacon.signal(SIGTERM);
    let exit = beacon.wait_exit(Duration::from_secs(5));
    let Some((status, took)) = exit else {
        panic!(
            "SIGTERM with two open SSE streams (one idle, one reading): still running after 5 s; stderr:\n{}",
            beacon.stderr()
        );
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    // The lock is free at once: a new beacon leads and publishes.
    let termed = now_ms();
    let again = fx.start("serve", &[], &[]);
    let up = now_ms();
    let (_, next) = recovered(&watch, termed + PERIOD_MS, up, "after SIGTERM");
    again.kill();
    let seen = watch.stop();
    assert_chain(&url, 1, &seen, &[]);
    println!(
        "faults: sigterm: exited in {} ms with 2 open SSE streams; a new beacon published {next} ms after it was up",
        took.as_millis()
    );
    fx.check_logs();
}
