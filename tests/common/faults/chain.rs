//! The chain after the fault.

use super::*;

/// One pulse of the stored chain, as the checks need it.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u64,
    pub time_ms: i64,
    pub status: u32,
    pub output: String,
    pub certificate: String,
}

/// Runs `f` to completion on a runtime of its own (the fault tests are plain threads).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The whole of `chain` from the database at `url`.
pub fn chain(url: &str, chain: u64) -> Vec<Link> {
    block_on(chain_of(url, chain))
}

async fn chain_of(url: &str, chain: u64) -> Vec<Link> {
    let store = lavabeacon_store::open(url).await.unwrap();
    let mut v = Vec::new();
    let Some(last) = store.last_in_chain(chain).await.unwrap() else {
        return v;
    };
    for i in 1..=last.pulse_index {
        let p = store
            .by_index(chain, i)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("chain {chain} has no pulse {i} below its head"));
        v.push(Link {
            index: i,
            time_ms: p.time_ms().unwrap(),
            status: p.status_code,
            output: p.output_value.to_hex_upper(),
            certificate: p.certificate_id.to_hex_upper(),
        });
    }
    v
}

/// `lavabeacon replay --database URL` must pass (exit 0).
pub fn replay_passes(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["replay", "--database", url])
        .env_remove("LAVABEACON_DATABASE_URL")
        .output()
        .unwrap();
    let text = super::super::output_text(&out);
    assert!(
        out.status.success(),
        "lavabeacon replay --database {} failed ({:?}):\n{text}",
        lavabeacon_store::redact(url),
        out.status.code()
    );
    text
}

/// Slots without a pulse between consecutive pulses of `links` (from the first to the last).
pub fn missed(links: &[Link]) -> i64 {
    links
        .windows(2)
        .map(|w| (w[1].time_ms - w[0].time_ms) / PERIOD_MS - 1)
        .sum()
}

/// The checks every fault test ends with, on the stored chain: `replay` passes; indices are
/// whole; the first pulse has status 1 and, after it, each gap is marked with status 2 on the
/// pulse after it and each pulse without a gap has status 0; status 3 only at the indices
/// `lost_ok` allows; every pulse the watcher saw is in the chain unchanged (no fork, no
/// rewritten head). Returns the chain.
pub fn assert_chain(url: &str, chain_index: u64, seen: &[Seen], lost_ok: &[u64]) -> Vec<Link> {
    replay_passes(url);
    let links = chain(url, chain_index);
    assert!(!links.is_empty(), "chain {chain_index} is empty");
    let mut problems = Vec::new();
    if links[0].status != 1 {
        problems.push(format!("pulse #1 has status {}, not 1", links[0].status));
    }
    for w in links.windows(2) {
        let gap = w[1].time_ms - w[0].time_ms;
        let want = if gap > PERIOD_MS { 2 } else { 0 };
        if gap % PERIOD_MS != 0 || gap <= 0 {
            problems.push(format!(
                "pulse #{}: {gap} ms after the previous one",
                w[1].index
            ));
        }
        match w[1].status {
            3 if lost_ok.contains(&w[1].index) => {}
            3 => problems.push(format!(
                "pulse #{} has status 3 (precommitment lost) although the sealed value was never lost",
                w[1].index
            )),
            s if s != want => problems.push(format!(
                "pulse #{} has status {s} after a gap of {gap} ms (want {want})",
                w[1].index
            )),
            _ => {}
        }
    }
    for s in seen {
        match links.get(s.index as usize - 1) {
            Some(l) if l.output == s.output => {}
            Some(_) => problems.push(format!(
                "pulse #{} changed after it was readable (a fork or a rewritten head)",
                s.index
            )),
            None => problems.push(format!("pulse #{} was readable, then gone", s.index)),
        }
    }
    let statuses: Vec<String> = links
        .iter()
        .map(|l| format!("#{}:{}", l.index, l.status))
        .collect();
    assert!(
        problems.is_empty(),
        "chain {chain_index}:\n{}\nstatuses: {}",
        problems.join("\n"),
        statuses.join(" ")
    );
    links
}
