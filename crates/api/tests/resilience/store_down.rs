//! A store that stops answering: every request answers 503 within about a second.

use super::*;

#[test]
fn while_the_store_hangs_every_request_answers_503_within_about_a_second() {
    let w = new_world(HOUR, 60, |_| {});
    let t = w.chain[9].time_ms().unwrap();
    let id = w.chain[0].certificate_id.to_hex_lower();
    assert_eq!(get(&w.base, "/beacon/last").status, 200);
    go_down(&w.store);

    // /health asks the store itself when nobody else has lately; that lookup is bounded too.
    std::thread::sleep(Duration::from_millis(600));
    let start = Instant::now();
    let h = get(&w.base, "/health");
    let took = start.elapsed();
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(took < Duration::from_millis(1600), "/health took {took:?}");
    let j = h.json();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["database"], "unavailable");
    assert_eq!(j["lastError"], "database unavailable");
    assert!(!h.body.contains("injected"), "no internal text: {}", h.body);

    let paths = [
        "/beacon/2.0/chain/1/pulse/5".to_string(),
        "/beacon/2.0/chain/1/pulse/first".into(),
        "/beacon/2.0/chain/1/pulse/last".into(),
        "/beacon/2.0/chain/1/pulse/5/sources".into(),
        format!("/beacon/{t}"),
        format!("/beacon/2.0/pulse/time/{t}"),
        format!("/beacon/2.0/pulse/time/next/{t}"),
        format!("/beacon/2.0/pulse/time/previous/{t}"),
        format!("/beacon/2.0/pulses?from={t}"),
        "/beacon/2.0/chain/1/sources?from=1&to=9".into(),
        "/beacon/2.0/skipList/1/1/50".into(),
        format!("/beacon/2.0/certificate/{id}"),
        "/health".into(),
    ];
    let base = w.base.clone();
    let mut checks: Vec<std::thread::JoinHandle<(String, Resp, Duration)>> = paths
        .iter()
        .map(|p| {
            let (base, p) = (base.clone(), p.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = get(&base, &p);
                (p, r, start.elapsed())
            })
        })
        .collect();
    checks.push(std::thread::spawn(move || {
        let start = Instant::now();
        let r = get_with(&base, "/beacon/2.0/stream", &[("Last-Event-ID", "1-3")]);
        (
            "/beacon/2.0/stream (Last-Event-ID 1-3)".into(),
            r,
            start.elapsed(),
        )
    }));
    for c in checks {
        let (path, r, took) = c.join().unwrap();
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert!(took < Duration::from_millis(1600), "{path} took {took:?}");
        if path != "/health" {
            assert_eq!(r.json()["error"]["status"], 503, "{path}");
            assert!(!r.body.contains("injected"), "{path}: {}", r.body);
        }
    }
    // The newest pulse is in memory and not overdue: still served.
    let start = Instant::now();
    assert_eq!(get(&w.base, "/beacon/last").status, 200);
    assert!(start.elapsed() < Duration::from_millis(500));

    // Back again: answers at once, and /health says so within a probe.
    w.store.come_back();
    assert_eq!(get(&w.base, "/beacon/2.0/chain/1/pulse/5").status, 200);
    assert!(
        wait_until(Duration::from_secs(3), || get(&w.base, "/health").status
            == 200),
        "{}",
        get(&w.base, "/health").body
    );
}
