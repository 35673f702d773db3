//! HTTP semantics at the level of the bytes on the wire: raw requests over TCP, every header as
//! sent and every status line as received. Entity tags (RFC 9110 weak comparison), CORS
//! preflights and exposed headers, reason phrases, oversized requests, canonical URLs, NIST's
//! milliseconds, query strings that cannot be read, and long-polls.

use super::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// An answer as read off the socket.
struct Raw {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn status(&self) -> u16 {
        self.status_line.split(' ').nth(1).unwrap().parse().unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn error_message(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: not a JSON error ({e}): {:?}",
                self.status_line, self.body
            )
        });
        assert_eq!(v["error"]["status"], self.status(), "{}", self.body);
        v["error"]["message"].as_str().unwrap().to_string()
    }
}

/// Sends `head` (the request line and headers, without the closing blank line) to `base` on a
/// connection of its own, and reads the answer to the end.
fn raw_at(base: &str, head: &str) -> Raw {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Raw {
        status_line,
        headers,
        body: body.to_string(),
    }
}

fn raw(head: &str) -> Raw {
    raw_at(&world().base, head)
}

fn pulse_path(i: u64) -> String {
    format!("/beacon/2.0/chain/1/pulse/{i}")
}

#[test]
fn if_none_match_uses_weak_comparison_lists_and_star() {
    let path = pulse_path(5);
    let first = raw(&format!("GET {path} HTTP/1.1"));
    assert_eq!(first.status(), 200);
    let etag = first.header("ETag").unwrap().to_string();
    let opaque = etag.trim_matches('"');
    for (matching, header_lines) in [
        (true, format!("If-None-Match: {etag}")),
        (true, format!("If-None-Match: W/{etag}")),
        (true, format!("If-None-Match: \"nope\", W/\"{opaque}\"")),
        (true, "If-None-Match: *".to_string()),
        // The same field sent twice is one list.
        (
            true,
            format!("If-None-Match: \"nope\"\r\nIf-None-Match: {etag}"),
        ),
        (false, "If-None-Match: \"nope\", W/\"other\"".to_string()),
        // An unquoted tag is not an entity tag: the full answer.
        (false, format!("If-None-Match: {opaque}")),
    ] {
        let r = raw(&format!("GET {path} HTTP/1.1\r\n{header_lines}"));
        let expected = if matching { 304 } else { 200 };
        assert_eq!(r.status(), expected, "{header_lines}");
        assert_eq!(r.header("ETag"), Some(etag.as_str()), "{header_lines}");
        if matching {
            assert!(r.body.is_empty(), "a 304 has no body");
        }
    }
    // The XML form has its own tag; the JSON one does not validate it.
    let xml = raw(&format!(
        "GET {path} HTTP/1.1\r\nAccept: application/xml\r\nIf-None-Match: W/{etag}"
    ));
    assert_eq!(xml.status(), 200);
    assert_ne!(xml.header("ETag"), Some(etag.as_str()));
}

#[test]
fn a_cors_preflight_gets_204_with_the_methods_and_headers_and_scripts_can_read_etag() {
    let r = raw(
        "OPTIONS /beacon/last HTTP/1.1\r\nOrigin: https://other.example\r\n\
         Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: if-none-match",
    );
    assert_eq!(r.status(), 204, "{}", r.status_line);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    let methods = r.header("Access-Control-Allow-Methods").unwrap();
    assert!(
        methods.contains("GET") && methods.contains("HEAD"),
        "{methods}"
    );
    let allowed = r
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["if-none-match", "last-event-id", "accept"] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert!(r.header("Access-Control-Max-Age").is_some());
    // The cross-origin GET that follows can read the headers it needs.
    let get = raw("GET /beacon/last HTTP/1.1\r\nOrigin: https://other.example");
    let exposed = get.header("Access-Control-Expose-Headers").unwrap();
    for h in [
        "ETag",
        "Link",
        "Retry-After",
        "Lavabeacon-Test",
        "Lavabeacon-Warning",
    ] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    // A path that does not exist is still 404, whatever the method.
    assert_eq!(raw("OPTIONS /nowhere HTTP/1.1").status(), 404);
}

#[test]
fn other_methods_get_405_with_allow_and_a_json_error() {
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "QUERY"] {
        let r = raw(&format!(
            "{method} /beacon/last HTTP/1.1\r\nContent-Length: 0"
        ));
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD, OPTIONS"), "{method}");
        assert!(r.error_message().contains(method), "{method}");
    }
}

#[test]
fn too_early_has_its_reason_phrase_and_retry_after() {
    let future = world().chain.last().unwrap().time_ms().unwrap();
    let r = raw(&format!("GET /beacon/{future} HTTP/1.1"));
    assert_eq!(r.status_line, "HTTP/1.1 425 Too Early");
    assert!(r.header("Retry-After").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(r.error_message().contains("due at"));
}

#[test]
fn oversized_urls_and_headers_get_json_errors_with_the_usual_headers() {
    let long = format!("GET /beacon/2.0/pulse/time/{} HTTP/1.1", "1".repeat(10_000));
    let r = raw(&long);
    assert_eq!(r.status(), 414);
    assert!(r.error_message().contains("8192"));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(
        r.header("Lavabeacon-Test").is_some(),
        "the test flag is on every answer"
    );
    let big = format!(
        "GET /beacon/last HTTP/1.1\r\nX-Padding: {}",
        "a".repeat(20_000)
    );
    let r = raw(&big);
    assert_eq!(r.status(), 431);
    assert!(r.error_message().contains("16384"));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    // Under the limits, the same requests are read.
    let fine = format!(
        "GET /beacon/last HTTP/1.1\r\nX-Padding: {}",
        "a".repeat(8_000)
    );
    assert_eq!(raw(&fine).status(), 200);
}

#[test]
fn only_canonical_index_urls_name_a_pulse() {
    assert_eq!(
        raw(&format!("GET {} HTTP/1.1", pulse_path(1))).status(),
        200
    );
    for path in [
        "/beacon/2.0/chain/1/pulse/01",
        "/beacon/2.0/chain/1/pulse/+1",
        "/beacon/2.0/chain/01/pulse/1",
        "/beacon/2.0/chain/+1/pulse/last",
        "/beacon/2.0/chain/1/pulse/001/sources",
        "/beacon/2.0/skipList/1/01/2",
    ] {
        let r = raw(&format!("GET {path} HTTP/1.1"));
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            r.error_message().contains("no sign, no leading zeros"),
            "{path}"
        );
    }
    // `/beacon/2.0` is NIST's prefix, not a time.
    let r = raw("GET /beacon/2.0 HTTP/1.1");
    assert_eq!(r.status(), 404);
    assert!(r.error_message().contains("no such path"), "{}", r.body);
}

#[test]
fn a_nist_time_in_seconds_is_served_as_milliseconds_with_a_warning() {
    let first = &world().chain[0];
    let seconds = first.time_ms().unwrap() / 1000;
    // Read as milliseconds it is a 1970 time: the first pulse after it is the chain's first.
    let r = raw(&format!("GET /beacon/2.0/pulse/time/{seconds} HTTP/1.1"));
    assert_eq!(r.status(), 200);
    assert!(r.body.contains("\"pulseIndex\":1,"), "{}", r.body);
    let warning = r.header("Lavabeacon-Warning").expect("the warning header");
    assert!(
        warning.contains("multiply by 1000") && warning.contains("1970-"),
        "{warning}"
    );
    // Also when the answer is an error.
    let r = raw(&format!(
        "GET /beacon/2.0/pulse/time/previous/{seconds} HTTP/1.1"
    ));
    assert_eq!(r.status(), 404);
    assert!(r.header("Lavabeacon-Warning").is_some());
    // Milliseconds, and RFC 3339, carry no warning.
    let ms = first.time_ms().unwrap();
    let r = raw(&format!("GET /beacon/2.0/pulse/time/{ms} HTTP/1.1"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Lavabeacon-Warning"), None);
}

#[test]
fn a_query_string_that_cannot_be_read_gets_a_json_400() {
    let r = raw("GET /beacon/2.0/pulses?from=1&from=2 HTTP/1.1");
    assert_eq!(r.status(), 400);
    assert!(r.error_message().contains("query string"), "{}", r.body);
    let r = raw("GET /beacon/2.0/pulse/time/1795255200000?wait=maybe HTTP/1.1");
    assert_eq!(r.status(), 400);
    assert!(r.error_message().contains("wait=true"), "{}", r.body);
}

#[test]
fn wait_true_holds_a_request_until_its_pulse_is_published() {
    // One pulse a second, ten published.
    let w = new_world(1000, 10, 0);
    let last = w.chain.last().unwrap().time_ms().unwrap();
    // The next slot, at most a period ahead: held, then answered with the pulse.
    let next = last + 1000;
    let base = w.base.clone();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let r = raw_at(&base, &format!("GET /beacon/{next}?wait=true HTTP/1.1"));
        (r, started.elapsed())
    });
    let base = w.base.clone();
    let nist = std::thread::spawn(move || {
        raw_at(
            &base,
            &format!("GET /beacon/2.0/pulse/time/{next}?wait=true HTTP/1.1"),
        )
    });
    std::thread::sleep(Duration::from_millis((next - now_ms()).max(0) as u64 + 300));
    publish(&w, 11, next, true);
    let (r, took) = waiting.join().unwrap();
    assert_eq!(r.status(), 200, "{}", r.body);
    assert!(r.body.contains("\"pulseIndex\":11,"), "{}", r.body);
    assert!(took >= Duration::from_millis(250), "it waited: {took:?}");
    assert_eq!(
        r.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    let r = nist.join().unwrap();
    assert_eq!(r.status(), 200, "{}", r.body);
    assert!(r.body.contains("\"pulseIndex\":11,"), "{}", r.body);

    // A pulse written by another engine reaches a waiter through the watcher.
    w.rt.spawn(w.beacon.clone().watch(Duration::from_millis(50)));
    let next = next + 1000;
    let base = w.base.clone();
    let waiting = std::thread::spawn(move || {
        raw_at(&base, &format!("GET /beacon/{next}?wait=true HTTP/1.1"))
    });
    std::thread::sleep(Duration::from_millis((next - now_ms()).max(0) as u64 + 100));
    publish(&w, 12, next, false);
    let r = waiting.join().unwrap();
    assert_eq!(r.status(), 200, "{}", r.body);
    assert!(r.body.contains("\"pulseIndex\":12,"), "{}", r.body);

    // More than a period ahead: answered at once, as without wait.
    let far = next + 10_000;
    let started = Instant::now();
    let r = raw_at(&w.base, &format!("GET /beacon/{far}?wait=true HTTP/1.1"));
    assert_eq!(r.status_line, "HTTP/1.1 425 Too Early");
    assert!(started.elapsed() < Duration::from_millis(500));
    let r = raw_at(
        &w.base,
        &format!("GET /beacon/2.0/pulse/time/{far}?wait=true HTTP/1.1"),
    );
    assert_eq!(r.status(), 404);

    // A slot the engine misses: the wait ends after the late tolerance and a period, with the
    // answer it would have had at once.
    let missed = next + 1000;
    let started = Instant::now();
    let r = raw_at(&w.base, &format!("GET /beacon/{missed}?wait=true HTTP/1.1"));
    assert_eq!(r.status(), 425, "{}", r.body);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[test]
fn an_empty_last_event_id_is_no_last_event_id() {
    // The stream never ends: read only the head of the answer.
    let status = |last_event_id: &str| {
        let addr = world().base.trim_start_matches("http://").to_string();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /beacon/2.0/stream HTTP/1.1\r\nHost: {addr}\r\nLast-Event-ID:{last_event_id}\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 64];
        let n = s.read(&mut head).unwrap();
        String::from_utf8_lossy(&head[..n])
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(status(""), "HTTP/1.1 200 OK");
    assert_eq!(status(" "), "HTTP/1.1 200 OK");
    assert_eq!(status(" garbage"), "HTTP/1.1 400 Bad Request");
}
