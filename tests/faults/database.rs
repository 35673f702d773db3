//! PostgreSQL stopped with `-m immediate` under a serving beacon.

use crate::common::faults::*;
use crate::common::pg::{percent_encode, PgCluster};
use crate::{check_outage, random_hex, serial, sleep_ms, Outage};
use std::time::Duration;

#[test]
fn postgres_stopped_with_immediate_for_10_s_the_beacon_resumes_within_two_periods_and_the_api_fails_fast(
) {
    let _serial = serial();
    let Some(mut fx) = Fixture::new() else { return };
    let Some(pg) = PgCluster::start_new() else {
        return;
    };
    // The beacon connects as a role with a password (with an '@' in it, which must be
    // percent-encoded in the URL), given through the environment as the docs say.
    let (a, b) = (random_hex(6), random_hex(6));
    let password = format!("Lb{a}@{b}");
    let url = pg.password_role("beacon", &password);
    for s in [password.clone(), percent_encode(&password), a, b] {
        fx.secret(&s);
    }
    let admin = pg.url("beacon");
    let beacon = fx.start("serve", &[], &[("LAVABEACON_DATABASE_URL", &url)]);
    let watch = Watch::start(&admin, 1);
    watch.wait_count(3, Duration::from_secs(30)).unwrap();

    let stopped = now_ms();
    pg.stop_immediate();
    // While it is down: /health and /beacon/last, in turn, every 250 ms or so.
    let mut health = Vec::new();
    let mut last = Vec::new();
    let mut probes = Vec::new();
    sleep_ms(200);
    while now_ms() - stopped < 10_000 {
        for (path, into) in [("/health", &mut health), ("/beacon/last", &mut last)] {
            let at = now_ms() - stopped;
            let (status, ms) =
                timed_get(&format!("{}{path}", beacon.base), Duration::from_secs(15));
            into.push(ms);
            probes.push((path, at, status, ms));
            sleep_ms(120);
        }
    }
    pg.start();
    let ended = now_ms();
    let (first, took) = recovered(&watch, stopped + PERIOD_MS, ended, "postgres-stop");
    watch.wait_more(3);
    beacon.kill();
    let seen = watch.stop();

    let slow: Vec<_> = probes.iter().filter(|p| p.3 > 1500 || p.2 == 0).collect();
    assert!(
        slow.is_empty(),
        "API calls while the database was down must fail fast (a 503 within ~1.5 s); these did not (path, ms after the stop, status, latency ms): {slow:?}"
    );
    let wrong: Vec<_> = probes
        .iter()
        .filter(|p| {
            // /health learns of the outage from the next database call (at most 500 ms
            // after the last one, bounded at 1 s): give it that long.
            (p.0 == "/health" && p.1 >= 1_600 && p.2 != 503)
                || (p.0 == "/beacon/last" && p.2 != 503 && p.2 != 200)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "while the database was down /health must say 503, /beacon/last 503 (or the newest pulse from memory, 200): {wrong:?}"
    );
    let (hp50, _, hmax) = summary(&mut health);
    let (lp50, _, lmax) = summary(&mut last);
    let outage = Outage {
        name: "postgres-stop",
        from_ms: stopped,
        to_ms: ended,
        what: "the database was down for 10 s".into(),
        during: "while down",
        after: "after restart",
    };
    let api = format!(", API while down: /health p50 {hp50} ms max {hmax} ms, /beacon/last p50 {lp50} ms max {lmax} ms");
    check_outage(&fx, &admin, &seen, &outage, (first, took), &api);
}
