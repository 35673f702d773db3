//! One pulse at a time: never before its time, cacheable with ETags, JSON or XML.

use super::*;

#[test]
fn a_pulse_whose_time_has_not_come_is_never_served() {
    let w = world();
    let future = &w.chain[PAST as usize];
    let t = future.time_ms().unwrap();
    let last = get("/beacon/last");
    assert_eq!(
        pulse_of(&last).pulse_index,
        PAST,
        "the newest public pulse, not the stored future one"
    );
    let r = get(&format!("/beacon/{t}"));
    assert_eq!(r.status, 425);
    let wait: i64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!(
        (wait - (t - now_ms()) / 1000).abs() <= 2,
        "Retry-After {wait} s"
    );
    assert_eq!(get(&format!("/beacon/2.0/pulse/time/{t}")).status, 404);
    assert_eq!(
        get(&format!("/beacon/2.0/pulse/time/next/{}", t - 1)).status,
        404
    );
    let prev = get(&format!("/beacon/2.0/pulse/time/previous/{}", t + PERIOD));
    assert_eq!(pulse_of(&prev).pulse_index, PAST);
    let bulk = get(&format!(
        "/beacon/2.0/pulses?from={}&to={}",
        t - 3 * PERIOD,
        t + 5 * PERIOD
    ));
    assert!(bulk
        .body
        .lines()
        .all(|l| !l.contains(&future.output_value.to_hex_upper())));
}

#[test]
fn pulses_are_cacheable_with_etags_and_304s_and_the_newest_until_the_next_is_due() {
    let w = world();
    let p = &w.chain[41];
    let r = get("/beacon/2.0/chain/1/pulse/42");
    assert_eq!(
        r.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = r.header("ETag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", p.output_value.to_hex_lower()));
    assert_eq!(r.header("Vary"), Some("Accept"));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r.header("Lavabeacon-Test").unwrap().contains("TEST BEACON"));
    let again = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/42",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/43",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(other.status, 200);

    let last = get("/beacon/last");
    let cc = last.header("Cache-Control").unwrap();
    let max_age: i64 = cc
        .strip_prefix("public, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    let due = w.chain[PAST as usize - 1].time_ms().unwrap() + PERIOD;
    // Until the next pulse is due; 0 once it is overdue (this world publishes no more, and a
    // slow run can reach the next minute).
    assert!(max_age <= ((due - now_ms()) / 1000 + 1).max(0), "{cc}");
    let r = get(&format!(
        "/beacon/2.0/certificate/{}",
        p.certificate_id.to_hex_lower()
    ));
    assert_eq!(
        r.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
}

#[test]
fn xml_is_served_when_asked_for_with_the_same_values() {
    let w = world();
    let p = &w.chain[99];
    let r = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/100",
        &[("Accept", "application/xml")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/xml"));
    assert!(r
        .body
        .contains("<response xmlns=\"http://csrc.nist.gov/ns/beacon/pulse/2.0\">\n  <pulse>\n"));
    for (name, value) in [
        ("outputValue", p.output_value.to_hex_upper()),
        ("signatureValue", hex::encode_upper(&p.signature_value)),
        ("timeStamp", p.time_stamp.clone()),
        ("pulseIndex", "100".into()),
    ] {
        assert!(
            r.body.contains(&format!("<{name}>{value}</{name}>")),
            "{name}"
        );
    }
    assert!(r.body.contains(&format!(
        "type=\"previous\">{}</listValue>",
        w.chain[98].output_value.to_hex_upper()
    )));
    assert_ne!(
        r.header("ETag"),
        get("/beacon/2.0/chain/1/pulse/100").header("ETag"),
        "each representation has its own ETag"
    );
    let json = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/100",
        &[("Accept", "application/json, application/xml")],
    );
    assert_eq!(pulse_of(&json), *p);
}
