//! Every route is served and described; every kind of bad input gets a clear JSON error.

use super::*;

#[test]
fn every_route_in_the_openapi_description_is_served_and_nothing_else_is() {
    let w = world();
    let t = w.chain[10].time_ms().unwrap();
    let id = w.chain[0].certificate_id.to_hex_lower();
    let store = w.store.clone();
    let source_id =
        w.rt.block_on(async move { store.put_external_source("the routes test").await })
            .unwrap()
            .to_hex_upper();
    let doc = get("/openapi.json").json();
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(paths.len(), ROUTES.len());
    for r in ROUTES {
        // A parameter that spans segments is {name:regex} in the table, {name} in the document.
        let doc_path = r.path.replace("{path:.*}", "{path}");
        assert!(
            paths.contains(&doc_path.as_str()),
            "{} missing from /openapi.json",
            r.path
        );
        if r.path.ends_with("/stream") {
            continue; // never ends; tested below
        }
        let path = r
            .path
            .replace("{timestamp}", &t.to_string())
            .replace("{t}", &t.to_string())
            .replace("{t1}", &w.chain[1].time_ms().unwrap().to_string())
            .replace("{t2}", &t.to_string())
            .replace("{c}", "1")
            .replace("{p1}", "2")
            .replace("{p2}", "200")
            .replace("{p}", &(PAST - 1).to_string())
            .replace("{version}", &super::page::assets_version())
            .replace("{file}", "explorer.js")
            .replace("{path:.*}", "0/000")
            .replace(
                "{id}",
                if r.path.contains("externalSource") {
                    &source_id
                } else {
                    &id
                },
            );
        let path = if r.path.ends_with("/pulses") {
            format!("{path}?from={t}")
        } else {
            path
        };
        let resp = if r.method == lavabeacon_api::Verb::Post {
            request("POST", &path, &[])
        } else {
            get(&path)
        };
        assert!(
            r.statuses.contains(&resp.status),
            "{path}: {} not among {:?}",
            resp.status,
            r.statuses
        );
        if r.path.starts_with("/draws") {
            // No draw is registered in this world, and it has no registry to post to
            // (tests/draws.rs registers and reads draws on a real beacon).
            assert_eq!(resp.status, 404, "{path}: {}", resp.body);
            continue;
        }
        if r.path.starts_with("/log/")
            || r.path.ends_with("/inclusion")
            || r.path.starts_with("/witness/")
        {
            // This world keeps no log and witnesses nothing (tests/api/log.rs has a world that
            // does).
            assert_eq!(resp.status, 404, "{path}: {}", resp.body);
            continue;
        }
        if r.path.starts_with("/private/") {
            // Served only with a clients file and a signed request (tests/private.rs); this
            // world has none.
            assert_eq!(resp.status, 404, "{path}: {}", resp.body);
            continue;
        }
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    }
}

#[test]
fn bad_input_gets_a_clear_json_error_and_never_a_500() {
    let w = world();
    let id = w.chain[0].certificate_id.to_hex_lower();
    let far_future = "99999999999"; // seconds: the year 5138
    let cases: &[(&str, &str, u16, &str)] = &[
        ("GET", "/beacon/yesterday", 400, "RFC 3339"),
        ("GET", "/beacon/-1", 400, "negative"),
        (
            "GET",
            "/beacon/99999999999999999999999",
            400,
            "out of range",
        ),
        ("GET", "/beacon/1e12", 400, "not a time"),
        ("GET", "/beacon/2026-13-45T99:00:00Z", 400, "not a time"),
        ("GET", "/beacon/999999999999999", 400, "outside 1970..9999"),
        (
            "GET",
            &format!("/beacon/{far_future}"),
            425,
            "has been published yet",
        ),
        ("GET", "/beacon/2.0/pulse/time/abc", 400, "milliseconds"),
        ("GET", "/beacon/2.0/pulse/time/-5", 400, "milliseconds"),
        (
            "GET",
            "/beacon/2.0/pulse/time/253402300799000",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/pulse/time/next/253402300799000",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/pulse/time/previous/0",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/7/pulse/1",
            404,
            "no published pulse 1 in chain 7",
        ),
        ("GET", "/beacon/2.0/chain/7/pulse/last", 404, "chain 7"),
        (
            "GET",
            "/beacon/2.0/chain/0/pulse/1",
            400,
            "whole number from 1",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/18446744073709551616",
            400,
            "not an index",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/9223372036854775807",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/299",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/299/sources",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/2/sources",
            404,
            "no source manifest",
        ),
        ("GET", "/beacon/2.0/certificate/xyz", 400, "128 hex digits"),
        (
            "GET",
            "/beacon/2.0/externalSource/xyz",
            400,
            "128 hex digits",
        ),
        (
            "GET",
            "/beacon/2.0/chain/time/yesterday/1/previous",
            400,
            "milliseconds",
        ),
        (
            "GET",
            "/beacon/2.0/chain/last/pulse/7",
            400,
            "chain \"last\"",
        ),
        (
            "GET",
            &format!("/beacon/2.0/certificate/{}", "0".repeat(128)),
            404,
            "no certificate",
        ),
        (
            "GET",
            &format!("/beacon/2.0/certificate/{id}00"),
            400,
            "128 hex digits",
        ),
        ("GET", "/beacon/2.0/skipList/1/5/2", 404, "runs backwards"),
        (
            "GET",
            "/beacon/2.0/skipList/1795255200000/1795255100000",
            404,
            "runs backwards",
        ),
        (
            "GET",
            "/beacon/2.0/skipList/1/1/299",
            404,
            "no published pulse 299",
        ),
        ("GET", "/beacon/2.0/pulses", 400, "from is required"),
        ("GET", "/beacon/2.0/pulses?from=later", 400, "not a time"),
        ("GET", "/beacon/2.0/stream", 0, ""),
        ("GET", "/no/such/thing", 404, "no such path"),
        ("GET", "/beacon/2.0/chain/1", 404, "no such path"),
        ("POST", "/beacon/last", 405, "read with GET"),
        (
            "DELETE",
            "/beacon/2.0/chain/1/pulse/1",
            405,
            "read with GET",
        ),
        ("PUT", "/beacon/2.0/certificate/x", 405, "read with GET"),
    ];
    for (method, path, status, needle) in cases {
        if *status == 0 {
            continue;
        }
        let r = request(method, path, &[]);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.body);
        let e = r.json();
        assert_eq!(e["error"]["status"], *status, "{path}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "{method} {path}: {msg:?} lacks {needle:?}"
        );
    }
    let r = request("GET", "/beacon/2.0/stream", &[("Last-Event-ID", "garbage")]);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request("GET", "/beacon/2.0/stream", &[("Last-Event-ID", "1-299")]);
    assert_eq!(
        r.status, 404,
        "a future pulse is no place to resume from: {}",
        r.body
    );
    let r = get(&format!("/beacon/{far_future}"));
    assert!(r.header("Retry-After").unwrap().parse::<u64>().unwrap() > 1_000_000);
}

#[test]
fn health_and_metrics_say_when_the_newest_pulses_certificate_expires() {
    let w = world();
    let cert = lavabeacon_format::cert::parse_certificates(w.cert_pem.as_bytes())
        .unwrap()
        .remove(0);
    let health = get("/health").json();
    let c = &health["certificate"];
    assert_eq!(c["certificateId"], cert.id.to_hex_lower(), "{health}");
    assert_eq!(
        c["status"], "ok",
        "a software key's is valid for ten years: {health}"
    );
    let left = c["expiresInSeconds"].as_i64().unwrap();
    let expected = cert.not_after - now_ms() / 1000;
    assert!((left - expected).abs() <= 2, "{left} vs {expected}");
    let metrics = get("/metrics").body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("lavabeacon_certificate_expiry_seconds{"))
        .unwrap_or_else(|| panic!("no expiry gauge in {metrics}"));
    // Labelled with the certificateId's first 16 hex digits, as Prometheus tools show them.
    assert!(
        line.contains(&format!(
            "{{certificate=\"{}\"}}",
            &cert.id.to_hex_lower()[..16]
        )),
        "{line}"
    );
    let value: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - expected).abs() <= 2, "{line}");
}
