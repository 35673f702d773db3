//! Server-Sent Events: live pulses and resumption after `Last-Event-ID`.

use super::*;

/// Reads SSE events (their ids) from `path` until `n` have come.
fn events(base: &str, last_id: Option<&str>, n: usize) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut req = ureq::get(&format!("{base}/beacon/2.0/stream"));
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", id);
    }
    let resp = req.call().unwrap();
    assert_eq!(resp.header("Content-Type"), Some("text/event-stream"));
    std::thread::spawn(move || {
        let mut seen = 0;
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(id) = line.strip_prefix("id: ") {
                if tx.send(id.to_string()).is_err() {
                    return;
                }
                seen += 1;
                if seen == n {
                    return;
                }
            }
        }
    });
    rx
}

#[test]
fn the_stream_delivers_new_pulses_and_resumes_after_the_last_event_id() {
    // A world of its own, one pulse a second, to which this test adds pulses.
    let w = new_world(1000, 20, 0);
    let wait = std::time::Duration::from_secs(10);
    let resumed = events(&w.base, Some("1-17"), 3);
    for i in 18..=20 {
        assert_eq!(resumed.recv_timeout(wait).unwrap(), format!("1-{i}"));
    }
    let live = events(&w.base, None, 2);
    // The watcher, as a read-only API node runs it, finds pulses written by someone else.
    w.rt.spawn(
        w.beacon
            .clone()
            .watch(std::time::Duration::from_millis(100)),
    );
    for (i, told) in [(21u64, true), (22, false)] {
        // The next whole second, once it has come.
        let t = now_ms() - now_ms().rem_euclid(1000) + 1000;
        std::thread::sleep(std::time::Duration::from_millis(
            (t - now_ms()).max(0) as u64 + 5,
        ));
        // Told as the engine in the same process tells it, or found by the watcher.
        publish(&w, i, t, told);
        assert_eq!(
            live.recv_timeout(wait).unwrap(),
            format!("1-{i}"),
            "told: {told}"
        );
    }
}
