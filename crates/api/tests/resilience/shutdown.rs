//! A shutdown with streams open.

use super::*;

#[test]
fn shutdown_ends_streams_and_stops_the_server_within_five_seconds() {
    let w = new_world(HOUR, 4_000, |_| {});
    let lo = Ipv4Addr::LOCALHOST;
    // One that reads, and says when its stream ends.
    let (status, _, mut reading) = sse_client(&w, lo);
    assert_eq!(status, 200);
    let (ended_tx, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        reading
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while matches!(reading.read(&mut buf), Ok(n) if n > 0) {}
        let _ = ended_tx.send(Instant::now());
    });
    // One that asked for the whole chain and never reads a byte.
    let idle = connect_raw(
        lo,
        w.addr,
        "/beacon/2.0/stream",
        &[("Last-Event-ID", "1-1")],
        Some(4096),
    );
    // One already gone.
    let (status, _, closed) = sse_client(&w, lo);
    assert_eq!(status, 200);
    drop(closed);
    // The idle one's catch-up is under way and stuck.
    std::thread::sleep(Duration::from_millis(800));

    let start = Instant::now();
    w.beacon.begin_shutdown();
    let handle = w.handle.clone();
    w.rt.spawn(async move { handle.stop(true).await });
    let ended = ended.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        ended - start < Duration::from_millis(1500),
        "the reading client's stream ended {:?} after begin_shutdown",
        ended - start
    );
    w.stopped
        .recv_timeout(Duration::from_secs(5))
        .expect("the server did not stop within 5 s");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    drop(idle);
}
