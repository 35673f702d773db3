//! `/health` when the expected pulse is overdue, and the public words of each failure.

use super::*;

#[test]
fn health_turns_degraded_once_the_expected_pulse_is_overdue_by_the_late_tolerance() {
    const PERIOD: i64 = 4_000;
    // In the first half of a period, so that the next boundary is at least 2 s away.
    let into = now_ms().rem_euclid(PERIOD);
    if into > PERIOD / 2 - 300 {
        std::thread::sleep(Duration::from_millis((PERIOD - into + 50) as u64));
    }
    // No engine: a read-only API node. The tolerance is the default, a tenth of the period.
    let w = new_world(PERIOD, 20, |_| {});
    let tolerance = i64::from(w.beacon.info().late_tolerance_ms);
    assert_eq!(tolerance, 400);
    let next = w.chain.last().unwrap().time_ms().unwrap() + PERIOD;
    let sleep_until = |t: i64| {
        let d = t - now_ms();
        assert!(d > 0, "the test fell behind its schedule by {} ms", -d);
        std::thread::sleep(Duration::from_millis(d as u64));
    };

    let h = get(&w.base, "/health");
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.json()["lateToleranceMs"], 400);
    // The next pulse is due but within the tolerance: still on time.
    sleep_until(next + tolerance / 2);
    let h = get(&w.base, "/health");
    assert_eq!(h.status, 200, "within the tolerance: {}", h.body);
    // Past the tolerance: degraded at once, not a full period later.
    sleep_until(next + tolerance + 150);
    let h = get(&w.base, "/health");
    assert_eq!(h.status, 503, "overdue: {}", h.body);
    let j = h.json();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["lastError"], "late");
    assert_eq!(j["database"], "ok");
    assert_eq!(j["behindMs"], PERIOD);

    // The pulse comes (written by an engine elsewhere): ok again.
    w.append_at(next);
    assert!(
        wait_until(Duration::from_secs(1), || get(&w.base, "/health").status
            == 200),
        "{}",
        get(&w.base, "/health").body
    );
}

#[test]
fn health_shows_public_categories_and_only_a_signer_failure_marks_the_hsm_failing() {
    let w = new_world(HOUR, 10, |_| {});
    let newest = w.chain.last().unwrap().clone();
    let health = || {
        let r = get(&w.base, "/health");
        (r.status, r.json())
    };
    let (status, j) = health();
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["hsm"], "unknown", "no engine has said anything");
    assert!(j["lastError"].is_null());

    w.beacon.published(&newest, None, 1_000);
    let (status, j) = health();
    assert_eq!((status, &j["hsm"]), (200, &"ok".into()));

    // A skip for any other cause names its category and leaves the HSM as it was.
    for category in ["database unavailable", "disk full", "no entropy", "late"] {
        w.beacon.skipped(category, false);
        let (_, j) = health();
        assert_eq!(j["lastError"], category);
        assert_eq!(j["hsm"], "ok", "{category} is not the HSM's fault");
    }
    w.beacon.skipped("hsm unavailable", true);
    let (status, j) = health();
    assert_eq!(status, 503);
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["hsm"], "failing");
    assert_eq!(j["lastError"], "hsm unavailable");

    w.beacon.published(&newest, None, 1_000);
    let (status, j) = health();
    assert_eq!(status, 200, "{j}");
    assert!(j["lastError"].is_null());
    assert_eq!(j["hsm"], "ok");
}
