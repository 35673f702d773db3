//! Many pulses at once: the bulk route in windows, manifests, skip paths; all of it verifies.

use super::*;

#[test]
fn the_bulk_route_streams_the_chain_in_windows_and_everything_served_verifies() {
    let w = world();
    let mut next = Some(format!("/beacon/2.0/pulses?from=0&to={}", now_ms()));
    let mut pulses = Vec::new();
    let mut answers = 0;
    while let Some(path) = next.take() {
        let r = get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("Content-Type"), Some("application/x-ndjson"));
        answers += 1;
        for line in r.body.lines() {
            pulses.push(lavabeacon_format::json::parse_pulse(line).unwrap());
        }
        next = r.header("Link").map(|l| {
            let url = l.strip_prefix('<').unwrap().split('>').next().unwrap();
            assert!(l.ends_with("rel=\"next\""));
            url.to_string()
        });
        assert!(answers < 10, "the continuation must end");
    }
    assert_eq!(
        answers, 3,
        "298 pulses, 100 periods per answer, starting at the first pulse"
    );
    assert_eq!(pulses, w.chain[..PAST as usize]);
    let report = Verifier::new(&certs(), Options::default()).verify_pulses(&pulses);
    assert!(report.passed(), "{}", report.render_text());
    assert_eq!(report.links_checked, PAST - 1);

    // Manifests recombine to the served localRandomValue.
    for i in PAST - 9..=PAST {
        let m: Manifest =
            serde_json::from_str(&get(&format!("/beacon/2.0/chain/1/pulse/{i}/sources")).body)
                .unwrap();
        assert_eq!(
            m.recombine().unwrap(),
            pulses[i as usize - 1].local_random_value
        );
    }
}

#[test]
fn skip_paths_by_index_and_by_time_verify_as_skip_paths() {
    let w = world();
    for path in [
        "/beacon/2.0/skipList/1/1/290".to_string(),
        format!(
            "/beacon/2.0/skipList/{}/{}",
            w.chain[0].time_ms().unwrap(),
            w.chain[289].time_ms().unwrap()
        ),
    ] {
        let r = get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let items: Vec<serde_json::Value> = serde_json::from_str(&r.body).unwrap();
        let hops: Vec<Pulse> = items
            .iter()
            .map(|v| lavabeacon_format::json::parse_pulse(&v.to_string()).unwrap())
            .collect();
        assert_eq!(hops.first().unwrap().pulse_index, 1);
        assert_eq!(hops.last().unwrap().pulse_index, 290);
        assert!(hops.len() < 290, "a skip path is shorter than the chain");
        let r = Verifier::new(
            &certs(),
            Options {
                skip_path: true,
                ..Options::default()
            },
        )
        .verify_pulses(&hops);
        assert!(r.passed(), "{}", r.render_text());
    }
}

#[test]
fn a_window_that_ends_before_it_starts_is_empty_and_final() {
    let w = world();
    let t = w.chain[10].time_ms().unwrap();
    for path in [
        format!("/beacon/2.0/pulses?from={}&to={}", t + 60_000, t),
        "/beacon/2.0/chain/1/sources?from=200&to=100".to_string(),
    ] {
        let r = get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.body, "", "{path}");
        assert_eq!(r.header("Link"), None, "{path}");
        assert_eq!(
            r.header("Cache-Control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
    }
    // The same windows the right way round hold pulses.
    let r = get(&format!("/beacon/2.0/pulses?from={t}&to={}", t + 60_000));
    assert_eq!(r.body.lines().count(), 2);
}
