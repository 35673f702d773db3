//! Streams: the per-client limit, and idle clients that never read.

use super::*;

#[test]
fn a_client_may_hold_only_so_many_streams_and_then_gets_429_with_retry_after() {
    let w = new_world(HOUR, 30, |i| {
        i.max_streams_per_client = 3;
        i.max_streams = 5;
    });
    let a = Ipv4Addr::new(127, 0, 0, 1);
    let mut held = Vec::new();
    for _ in 0..3 {
        let (status, head, s) = sse_client(&w, a);
        assert_eq!(status, 200, "{head}");
        held.push(s);
    }
    // A fourth stream from the same address, SSE or bulk, is refused.
    let r = get(&w.base, "/beacon/2.0/stream");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("10"));
    assert_eq!(r.json()["error"]["status"], 429);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per client"));
    let t = w.chain[0].time_ms().unwrap();
    assert_eq!(
        get(&w.base, &format!("/beacon/2.0/pulses?from={t}")).status,
        429
    );
    assert_eq!(
        get(&w.base, "/beacon/2.0/chain/1/sources").status,
        429,
        "the bulk routes count too"
    );
    // Plain requests are not streams.
    assert_eq!(get(&w.base, "/beacon/2.0/chain/1/pulse/3").status, 200);

    // Another address has its own share, up to the server's total.
    let b = Ipv4Addr::new(127, 0, 0, 2);
    for _ in 0..2 {
        let (status, head, s) = sse_client(&w, b);
        assert_eq!(status, 200, "{head}");
        held.push(s);
    }
    let (status, head, _) = sse_client(&w, Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!(status, 429, "the total of 5 is reached: {head}");
    assert!(head.contains("retry-after: 10") || head.contains("Retry-After: 10"));
    assert!(get(&w.base, "/metrics")
        .body
        .contains("lavabeacon_open_streams 5"));

    // A client that leaves frees its place.
    drop(held.remove(0));
    assert!(
        wait_until(Duration::from_secs(3), || {
            let (status, _, s) = sse_client(&w, a);
            if status == 200 {
                held.push(s);
            }
            status == 200
        }),
        "a closed stream's place was not freed"
    );
}

/// `n` SSE clients, each from an address of its own, that resume from the first pulse and
/// never read.
fn idle_clients(w: &World, n: u8) -> Vec<TcpStream> {
    (0..n)
        .map(|k| {
            connect_raw(
                Ipv4Addr::new(127, 0, 1, 10 + k),
                w.addr,
                "/beacon/2.0/stream",
                &[("Last-Event-ID", "1-1")],
                Some(4096),
            )
        })
        .collect()
}

#[test]
fn idle_sse_clients_resuming_from_the_first_pulse_hold_no_connection_and_block_nothing() {
    const PAST: u64 = 4_000;
    let w = new_world(HOUR, PAST, |_| {});
    for n in [4u8, 64] {
        let idle = idle_clients(&w, n);
        // Their catch-ups fill what the sockets hold, then wait on the clients. A page being
        // read is open for a moment (64 of them queue for the pool's 4 connections); a read
        // kept open while its client is waited on never closes.
        let open = || w.store.open_ranges();
        let made = || w.store.ranges_made();
        let settled = wait_until(Duration::from_secs(10), || {
            let before = made();
            std::thread::sleep(Duration::from_millis(300));
            before == made() && before > 0 && open() == 0
        });
        assert!(
            settled,
            "{n} idle clients keep store reads (and their connections) open: {} open, {} made",
            open(),
            made()
        );
        // Pages are 256 pulses: a catch-up that went through would have read 16 each.
        assert!(
            made() < 16 * n as usize,
            "the idle clients are not stuck ({} range reads), so this tests nothing",
            made()
        );

        // Everything else is answered at once, bulk reads and other streams included.
        let base = w.base.clone();
        let t = w.chain[100].time_ms().unwrap();
        let checks: Vec<_> = [
            "/beacon/2.0/chain/1/pulse/7".to_string(),
            "/beacon/last".into(),
            "/health".into(),
            format!("/beacon/2.0/pulses?from={t}&to={}", t + 99 * HOUR),
            "/beacon/2.0/skipList/1/1/3999".into(),
        ]
        .into_iter()
        .map(|p| {
            let base = base.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = get(&base, &p);
                (p, r, start.elapsed())
            })
        })
        .collect();
        for c in checks {
            let (path, r, took) = c.join().unwrap();
            assert_eq!(r.status, 200, "{path} with {n} idle clients: {}", r.body);
            assert!(
                took < Duration::from_millis(2000),
                "{path} took {took:?} with {n} idle clients"
            );
            if path.contains("pulses?") {
                assert_eq!(r.body.lines().count(), 100);
            }
        }
        // A client that reads gets its catch-up.
        let start = Instant::now();
        let mut s = connect_raw(
            Ipv4Addr::LOCALHOST,
            w.addr,
            "/beacon/2.0/stream",
            &[("Last-Event-ID", &format!("1-{}", PAST - 300))],
            None,
        );
        let (status, _) = read_head(&mut s);
        assert_eq!(status, 200);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let want = format!("id: 1-{PAST}\n");
        while !String::from_utf8_lossy(&got).contains(&want) {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "the stream ended early");
            got.extend_from_slice(&buf[..k]);
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a 300-pulse catch-up took {:?} with {n} idle clients",
            start.elapsed()
        );
        drop(idle);
        // Their places are freed (the server notices at its next write to them).
        w.store.reset_ranges_made();
    }
}
