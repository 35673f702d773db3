//! `replay --log-checkpoint`: every entry of the log up to the checkpoint's size, read in
//! pages (from a database) or entry bundles (from a beacon's `/log/tile/entries/…`), compared
//! with the pulses the replay checks, in publication order, and hashed into the tree again
//! to the checkpoint's root.
//!
//! A reader thread fetches entries ahead into a bounded channel; the replay's per-pulse hook
//! ([`LogReplay::on_pulse`]) takes entries up to the next pulse entry, hashing each into a
//! [`Frontier`], so memory holds a page of entries and at most 64 hashes however long the log.
//! Hashing on the hook's side, not the reader's, keeps the frontier exactly at the entries
//! matched so far, which is what a replay checkpoint saves and a resumed run starts from.

use super::{b64, problem, Frontier, Kind, FIELD_ENTRY, FIELD_ROOT};
use lavabeacon_format::chain::Facts;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::Problem;
use lavabeacon_store::{redact, redact_urls, Store};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::entry::Entry;
use lavabeacon_tlog::tile::{self, TileKind, TilePath};
use lavabeacon_tlog::{merkle, Hash};
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender};

/// Entries per read from a database.
const PAGE: u64 = 4096;
/// Entries the reader may be ahead of the replay.
const AHEAD: usize = 8192;
/// The largest entry bundle read: 256 entries of the largest a u16 length allows.
const MAX_BUNDLE: u64 = tile::WIDTH * (2 + u16::MAX as u64);

/// Where the log's entries come from.
#[derive(Debug, Clone)]
pub enum EntrySource {
    /// The store's log (`sqlite:PATH`, `postgres://…`): draws are matched to their receipts.
    Database(String),
    /// A beacon's entry bundles under `<base>/log/` (no trailing slash).
    Url(String),
}

/// What the reader sends: an entry, or how the reading ended early.
enum Msg {
    Entry {
        leaf: u64,
        bytes: Vec<u8>,
        /// For a draw entry read from a database: why it does not match its stored draw.
        draw_problem: Option<String>,
    },
    /// The log has fewer entries than the checkpoint says (a check failure): why.
    Short(u64, String),
    /// The source could not be read (an I/O error).
    Failed(String),
}

/// Starts reading entries `from..size` on a thread of its own.
fn spawn_reader(source: EntrySource, from: u64, size: u64) -> Receiver<Msg> {
    let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
    std::thread::spawn(move || {
        let end = match &source {
            EntrySource::Database(url) => read_database(url, from, size, &tx),
            EntrySource::Url(base) => read_tiles(
                &mut |path: &str| fetch_tile(base, path),
                from,
                size,
                &mut |leaf, bytes| {
                    tx.send(Msg::Entry {
                        leaf,
                        bytes,
                        draw_problem: None,
                    })
                    .is_ok()
                },
            ),
        };
        if let Some(m) = end {
            let _ = tx.send(m);
        }
    });
    rx
}

/// Reads a store's log in pages; `None` when every entry was sent (or the replay stopped).
fn read_database(url: &str, from: u64, size: u64, tx: &SyncSender<Msg>) -> Option<Msg> {
    let rt = crate::runtime();
    rt.block_on(async {
        let store = match lavabeacon_store::open_with(url, lavabeacon_store::Role::Audit).await {
            Ok(s) => s,
            Err(e) => return Some(Msg::Failed(format!("database: {e}"))),
        };
        let log = match store.log() {
            Ok(l) => l,
            Err(e) => return Some(Msg::Failed(e.to_string())),
        };
        let mut at = from;
        while at < size {
            let page = match log.entries(at, PAGE.min(size - at)).await {
                Ok(p) => p,
                Err(e) => return Some(Msg::Failed(format!("the log's entries: {e}"))),
            };
            if page.is_empty() {
                return Some(Msg::Short(
                    at,
                    format!("the database's log holds {at} entries"),
                ));
            }
            for bytes in page {
                let draw_problem = match Entry::parse(&bytes) {
                    Some(Entry::Draw { id, .. }) => match draw_mismatch(&*store, &id, &bytes).await
                    {
                        Ok(p) => p,
                        Err(e) => return Some(Msg::Failed(e)),
                    },
                    _ => None,
                };
                let sent = tx.send(Msg::Entry {
                    leaf: at,
                    bytes,
                    draw_problem,
                });
                if sent.is_err() {
                    return None;
                }
                at += 1;
            }
        }
        None
    })
}

/// Why a draw entry does not match the draw the store registered under its id, if it does
/// not: its receipt's log entry (`Receipt::log_entry`) must be the entry, byte for byte.
async fn draw_mismatch(
    store: &dyn Store,
    id: &[u8; 64],
    entry: &[u8],
) -> Result<Option<String>, String> {
    let id = Hash512::from(*id);
    let Some(d) = store
        .draw(&id)
        .await
        .map_err(|e| format!("draw {}: {e}", id.short()))?
    else {
        return Ok(Some(format!(
            "a registration of draw {}, which the database does not hold",
            id.short()
        )));
    };
    let receipt = serde_json::from_str::<lavabeacon_draw::receipt::Receipt>(&d.receipt)
        .ok()
        .and_then(|r| r.log_entry());
    Ok(match receipt {
        None => Some(format!(
            "draw {}: its stored receipt cannot be read or is unsigned",
            id.short()
        )),
        Some(e) if e != entry => Some(format!(
            "draw {}: the entry is not its stored receipt's (SHA-512 of the receipt's signed message and signature)",
            id.short()
        )),
        Some(_) => None,
    })
}

/// A tile of the beacon at `base`: its bytes, `None` when the beacon has none (404).
fn fetch_tile(base: &str, path: &str) -> Result<Option<Vec<u8>>, String> {
    let url = format!("{base}/log/{path}");
    match ureq::get(&url).call() {
        Ok(resp) => {
            let mut body = Vec::new();
            resp.into_reader()
                .take(MAX_BUNDLE + 1)
                .read_to_end(&mut body)
                .map_err(|e| format!("{}: {e}", redact(&url)))?;
            Ok(Some(body))
        }
        Err(ureq::Error::Status(404, _)) => Ok(None),
        Err(e) => Err(redact_urls(&e.to_string())),
    }
}

/// Fetches a tile by its path: its bytes, `None` when there is none (404).
type FetchTile<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, String> + 'a;

/// Reads entries `from..size` from entry bundles (C2SP tlog-tiles), each tile by
/// `fetch(path)`, and hands each to `send` (false: stop). The last tile is partial when
/// `size` is not a multiple of 256; a log that has grown may have dropped it for the full
/// tile, whose first entries are the same, so that is read instead. `None` when every entry
/// was sent.
fn read_tiles(
    fetch: &mut FetchTile,
    from: u64,
    size: u64,
    send: &mut dyn FnMut(u64, Vec<u8>) -> bool,
) -> Option<Msg> {
    let mut at = from;
    while at < size {
        let n = at / tile::WIDTH;
        let start = n * tile::WIDTH;
        let count = (size - start).min(tile::WIDTH);
        let partial = TilePath {
            kind: TileKind::Entries,
            index: n,
            width: (count < tile::WIDTH).then_some(count as u16),
        };
        let mut body = match fetch(&partial.to_string()) {
            Ok(b) => b,
            Err(e) => return Some(Msg::Failed(e)),
        };
        if body.is_none() && partial.width.is_some() {
            let full = TilePath {
                width: None,
                ..partial
            };
            body = match fetch(&full.to_string()) {
                Ok(b) => b,
                Err(e) => return Some(Msg::Failed(e)),
            };
        }
        let Some(body) = body else {
            return Some(Msg::Short(
                at,
                format!("the beacon serves no log/{partial}"),
            ));
        };
        let entries = (body.len() as u64 <= MAX_BUNDLE)
            .then(|| tile::unbundle(&body))
            .flatten();
        let Some(entries) = entries.filter(|e| e.len() as u64 >= count) else {
            return Some(Msg::Short(
                at,
                format!("log/{partial} is not an entry bundle of {count} entries"),
            ));
        };
        for bytes in entries
            .into_iter()
            .take(count as usize)
            .skip((at - start) as usize)
        {
            if !send(at, bytes) {
                return None;
            }
            at += 1;
        }
    }
    None
}

/// Where a replay of the log stands: saved in the replay's own checkpoint, so that a
/// resumed run goes on with the log where it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogProgress {
    /// Entries read and hashed.
    pub entries: u64,
    /// The frontier after them (base64 hashes, largest subtree first).
    pub frontier: Vec<String>,
    pub pulse_entries: u64,
    pub draws: u64,
    pub pulses_after: u64,
    /// The outputValue of the last pulse compared (hex): a resumed run sees it again first.
    pub last_output: Option<String>,
    /// Whether entries and pulses went different ways, after which they are not compared.
    pub diverged: bool,
}

/// What a finished replay of the log counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTotals {
    pub entries: u64,
    pub pulse_entries: u64,
    pub draws: u64,
    pub pulses_after: u64,
    /// The root of the entries read, when all the checkpoint's were.
    pub root: Option<Hash>,
}

/// The log beside a replay: takes the replayed pulses one by one and the log's entries as
/// they come.
pub struct LogReplay {
    rx: Receiver<Msg>,
    size: u64,
    root: Hash,
    frontier: Frontier,
    pulse_entries: u64,
    draws: u64,
    pulses_after: u64,
    last_output: Option<Hash512>,
    diverged: bool,
    /// The first pulse of a resumed run is the last of the run before: compared already.
    skip_first: Option<Hash512>,
    /// How the reader ended early: fewer entries, or an error.
    ended: Option<Msg>,
}

impl LogReplay {
    /// Starts reading `source`'s entries for `checkpoint`, from the start or from `resumed`.
    pub fn start(
        source: EntrySource,
        checkpoint: &Checkpoint,
        resumed: Option<&LogProgress>,
    ) -> Result<LogReplay, String> {
        let mut log = LogReplay::prepare(checkpoint, resumed)?;
        log.rx = spawn_reader(source, log.frontier.size(), checkpoint.size);
        Ok(log)
    }

    /// Where to start, without a reader yet.
    fn prepare(
        checkpoint: &Checkpoint,
        resumed: Option<&LogProgress>,
    ) -> Result<LogReplay, String> {
        let mut log = LogReplay {
            rx: std::sync::mpsc::sync_channel(1).1,
            size: checkpoint.size,
            root: checkpoint.root,
            frontier: Frontier::new(),
            pulse_entries: 0,
            draws: 0,
            pulses_after: 0,
            last_output: None,
            diverged: false,
            skip_first: None,
            ended: None,
        };
        if let Some(p) = resumed {
            let nodes = p
                .frontier
                .iter()
                .map(|h| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(h)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                })
                .collect::<Option<Vec<Hash>>>();
            log.frontier = nodes
                .and_then(|n| Frontier::restore(p.entries, n))
                .filter(|f| f.size() <= checkpoint.size)
                .ok_or("the replay checkpoint's log frontier is damaged")?;
            log.pulse_entries = p.pulse_entries;
            log.draws = p.draws;
            log.pulses_after = p.pulses_after;
            log.diverged = p.diverged;
            log.last_output = p.last_output.as_deref().and_then(hex_to_512);
            log.skip_first = log.last_output;
        }
        Ok(log)
    }

    /// Where it stands, for the replay's checkpoint.
    pub fn progress(&self) -> LogProgress {
        LogProgress {
            entries: self.frontier.size(),
            frontier: self.frontier.nodes().iter().map(b64).collect(),
            pulse_entries: self.pulse_entries,
            draws: self.draws,
            pulses_after: self.pulses_after,
            last_output: self.last_output.map(|h| h.to_hex_lower()),
            diverged: self.diverged,
        }
    }

    /// The next entry, hashed into the tree; `None` once the checkpoint's entries are all
    /// read or the reader ended early.
    fn next(&mut self) -> Option<(u64, Vec<u8>, Option<String>)> {
        if self.ended.is_some() || self.frontier.size() >= self.size {
            return None;
        }
        match self.rx.recv() {
            Ok(Msg::Entry {
                leaf,
                bytes,
                draw_problem,
            }) => {
                debug_assert_eq!(leaf, self.frontier.size());
                self.frontier.push(merkle::leaf_hash(&bytes));
                Some((leaf, bytes, draw_problem))
            }
            Ok(end) => {
                self.ended = Some(end);
                None
            }
            Err(_) => {
                self.ended = Some(Msg::Failed("the log's reader stopped".into()));
                None
            }
        }
    }

    /// A leaf that is not a pulse's: a draw registration is counted (its receipt's mismatch, if
    /// any, reported); anything else is a problem.
    fn not_a_pulse(
        &mut self,
        leaf: u64,
        is_draw: bool,
        len: usize,
        draw_problem: Option<String>,
        problems: &mut Vec<Problem>,
    ) {
        if !is_draw {
            problems.push(problem(
                Kind::Missing,
                FIELD_ENTRY,
                format!(
                    "the log's leaf {leaf} is neither a pulse's outputValue nor a draw registration ({len} bytes)"
                ),
            ));
            return;
        }
        self.draws += 1;
        if let Some(why) = draw_problem {
            problems.push(problem(
                Kind::Fork,
                FIELD_ENTRY,
                format!("the log's leaf {leaf} is {why}"),
            ));
        }
    }

    /// Takes entries up to the next pulse entry, which must be this pulse's outputValue;
    /// draws on the way are counted (and with a database checked against their receipts).
    pub fn on_pulse(&mut self, f: &Facts, problems: &mut Vec<Problem>) {
        if let Some(last) = self.skip_first.take() {
            if last == f.output {
                return;
            }
        }
        if self.diverged {
            return;
        }
        loop {
            let Some((leaf, bytes, draw_problem)) = self.next() else {
                // Published after the checkpoint (or the log ended early: said at the end).
                self.pulses_after += 1;
                return;
            };
            match Entry::parse(&bytes) {
                Some(Entry::Pulse(out)) => {
                    self.pulse_entries += 1;
                    self.last_output = Some(f.output);
                    if out != f.output.0 {
                        // One missing or extra entry puts every later pair out of step:
                        // the first disagreement is the finding, the rest is noise.
                        self.diverged = true;
                        problems.push(
                            problem(
                                Kind::Fork,
                                FIELD_ENTRY,
                                format!(
                                    "the log's leaf {leaf} is not this pulse's outputValue: the log's pulses are not the pulses replayed, in publication order (compared no further)"
                                ),
                            )
                            .at(f.chain, f.index)
                            .located(f.location.as_ref())
                            .values(f.output.short(), Hash512::from(out).short()),
                        );
                    }
                    return;
                }
                other => {
                    self.not_a_pulse(leaf, other.is_some(), bytes.len(), draw_problem, problems)
                }
            }
        }
    }

    /// Reads and hashes the entries left, and compares the root. Problems for the log's
    /// pulses the replay did not see, a log shorter than the checkpoint, another root. An
    /// error is a source that could not be read.
    pub fn finish(mut self, problems: &mut Vec<Problem>) -> Result<LogTotals, String> {
        let mut unseen: Option<(u64, u64)> = None;
        while let Some((leaf, bytes, draw_problem)) = self.next() {
            match Entry::parse(&bytes) {
                Some(Entry::Pulse(_)) => {
                    self.pulse_entries += 1;
                    let u = unseen.get_or_insert((leaf, 0));
                    u.1 += 1;
                }
                other => {
                    self.not_a_pulse(leaf, other.is_some(), bytes.len(), draw_problem, problems)
                }
            }
        }
        if let (Some((leaf, n)), false) = (unseen, self.diverged) {
            problems.push(problem(
                Kind::Fork,
                FIELD_ENTRY,
                format!(
                    "the log holds {n} pulses the replay did not see, the first at leaf {leaf}"
                ),
            ));
        }
        let read = self.frontier.size();
        match self.ended.take() {
            Some(Msg::Failed(e)) => return Err(e),
            Some(Msg::Short(at, why)) => problems.push(problem(
                Kind::Missing,
                FIELD_ROOT,
                format!(
                    "{why}: entry {at} is missing, the checkpoint's tree has {}",
                    self.size
                ),
            )),
            _ => {}
        }
        let root = (read == self.size).then(|| self.frontier.root());
        if let Some(r) = root.filter(|r| *r != self.root) {
            problems.push(
                problem(
                    Kind::Fork,
                    FIELD_ROOT,
                    format!(
                        "the log's {read} entries hash to another root than the checkpoint's: the log is forked, or the checkpoint is not this log's"
                    ),
                )
                .values(b64(&self.root), b64(&r)),
            );
        }
        Ok(LogTotals {
            entries: read,
            pulse_entries: self.pulse_entries,
            draws: self.draws,
            pulses_after: self.pulses_after,
            root,
        })
    }
}

/// A 64-byte hash from hex.
fn hex_to_512(h: &str) -> Option<Hash512> {
    let b = (0..h.len())
        .step_by(2)
        .map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    <[u8; 64]>::try_from(b).ok().map(Hash512::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entries(n: u64) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; 64]).collect()
    }

    /// A beacon's tiles for a log of `e`, with or without its partial tile.
    fn tiles(e: &[Vec<u8>], partial: bool) -> HashMap<String, Vec<u8>> {
        let mut m = HashMap::new();
        for (n, chunk) in e.chunks(256).enumerate() {
            let width = (chunk.len() < 256).then_some(chunk.len() as u16);
            if width.is_some() && !partial {
                continue;
            }
            let p = TilePath {
                kind: TileKind::Entries,
                index: n as u64,
                width,
            };
            m.insert(
                p.to_string(),
                tile::bundle(chunk.iter().map(|x| x.as_slice())),
            );
        }
        m
    }

    fn read(
        m: &HashMap<String, Vec<u8>>,
        from: u64,
        size: u64,
    ) -> (Vec<(u64, Vec<u8>)>, Option<Msg>) {
        let mut got = Vec::new();
        let end = read_tiles(
            &mut |p: &str| Ok(m.get(p).cloned()),
            from,
            size,
            &mut |leaf, b| {
                got.push((leaf, b));
                true
            },
        );
        (got, end)
    }

    fn facts(index: u64, output: [u8; 64]) -> Facts {
        Facts {
            chain: 1,
            index,
            time_ms: None,
            period: 60_000,
            status: 0,
            variant: lavabeacon_format::Variant::Nist,
            output: Hash512::from(output),
            precommitment: Hash512::from([0; 64]),
            commitment: Hash512::from([0; 64]),
            list: [None; 5],
            location: None,
        }
    }

    /// A replay of the log of `e` against `checkpoint`, its entries already sent.
    fn replay_of(
        e: &[Vec<u8>],
        checkpoint: &Checkpoint,
        resumed: Option<&LogProgress>,
    ) -> LogReplay {
        let mut log = LogReplay::prepare(checkpoint, resumed).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(e.len() + 1);
        for (i, b) in e.iter().enumerate().skip(log.frontier.size() as usize) {
            tx.send(Msg::Entry {
                leaf: i as u64,
                bytes: b.clone(),
                draw_problem: None,
            })
            .unwrap();
        }
        if (e.len() as u64) < checkpoint.size {
            tx.send(Msg::Short(e.len() as u64, "the test log ends".into()))
                .unwrap();
        }
        log.rx = rx;
        log
    }

    fn draw(n: u8) -> Vec<u8> {
        Entry::Draw {
            id: [n; 64],
            receipt: [n; 64],
        }
        .to_bytes()
    }

    #[test]
    fn entries_match_pulses_in_order_with_draws_between_and_hash_to_the_root() {
        // Pulses 1..=5 with two draws among them; the checkpoint covers 6 entries (four
        // pulses), the fifth pulse came later.
        let e = [
            vec![1; 64],
            draw(7),
            vec![2; 64],
            vec![3; 64],
            draw(8),
            vec![4; 64],
            vec![5; 64],
        ];
        let leaves: Vec<Hash> = e.iter().map(|b| merkle::leaf_hash(b)).collect();
        let cp = Checkpoint {
            origin: "o".into(),
            size: 6,
            root: merkle::root(&leaves[..6]),
            extensions: vec![],
        };
        let mut problems = Vec::new();
        let mut log = replay_of(&e[..6], &cp, None);
        for i in 1..=5u8 {
            log.on_pulse(&facts(i.into(), [i; 64]), &mut problems);
        }
        let totals = log.finish(&mut problems).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            totals,
            LogTotals {
                entries: 6,
                pulse_entries: 4,
                draws: 2,
                pulses_after: 1,
                root: Some(cp.root),
            }
        );

        // Stopped after pulse 3 and resumed: the same totals.
        let mut log = replay_of(&e[..6], &cp, None);
        for i in 1..=3u8 {
            log.on_pulse(&facts(i.into(), [i; 64]), &mut problems);
        }
        let saved = log.progress();
        assert_eq!(saved.entries, 4);
        let mut log = replay_of(&e[..6], &cp, Some(&saved));
        for i in 3..=5u8 {
            log.on_pulse(&facts(i.into(), [i; 64]), &mut problems);
        }
        assert_eq!(log.finish(&mut problems).unwrap(), totals);
        assert!(problems.is_empty(), "{problems:?}");

        // Another root at the same size.
        let forked = Checkpoint {
            root: [0; 32],
            ..cp.clone()
        };
        let mut log = replay_of(&e[..6], &forked, None);
        for i in 1..=4u8 {
            log.on_pulse(&facts(i.into(), [i; 64]), &mut problems);
        }
        log.finish(&mut problems).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("hash to another root"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_pulse_an_unseen_one_and_a_short_log_are_each_found() {
        let e = vec![vec![1; 64], vec![3; 64]];
        let cp = Checkpoint {
            origin: "o".into(),
            size: 3,
            root: [0; 32],
            extensions: vec![],
        };
        let mut problems = Vec::new();
        let mut log = replay_of(&e, &cp, None);
        for i in 1..=3u8 {
            log.on_pulse(&facts(i.into(), [i; 64]), &mut problems);
        }
        let totals = log.finish(&mut problems).unwrap();
        assert_eq!(totals.root, None);
        let text: Vec<String> = problems.iter().map(|p| p.render()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with(
            "chain 1 pulse 2: logEntry: the log's leaf 1 is not this pulse's outputValue"
        ));
        assert!(
            text[1].contains("the test log ends: entry 2 is missing, the checkpoint's tree has 3")
        );

        // The log holds a pulse after the last one replayed.
        let mut problems = Vec::new();
        let cp2 = Checkpoint { size: 2, ..cp };
        let mut log = replay_of(&e, &cp2, None);
        log.on_pulse(&facts(1, [1; 64]), &mut problems);
        log.finish(&mut problems).unwrap();
        assert!(problems[0]
            .message
            .contains("the log holds 1 pulses the replay did not see, the first at leaf 1"));
    }

    #[test]
    fn entry_bundles_are_read_from_any_leaf_up_to_the_size() {
        let e = entries(800);
        let m = tiles(&e[..555], true);
        let (got, end) = read(&m, 0, 555);
        assert!(end.is_none());
        assert_eq!(got.len(), 555);
        assert!(got.iter().all(|(i, b)| b == &e[*i as usize]));
        let (got, _) = read(&m, 300, 555);
        assert_eq!(got.first().unwrap().0, 300);
        assert_eq!(got.len(), 255);

        // A log grown past the checkpoint, its partial tile gone: the full tile serves.
        let grown = tiles(&e, false);
        let (got, end) = read(&grown, 0, 555);
        assert!(end.is_none());
        assert_eq!(got.len(), 555);

        // A log that serves fewer entries than the checkpoint says.
        let (got, end) = read(&m, 0, 556);
        assert_eq!(got.len(), 512);
        assert!(matches!(end, Some(Msg::Short(512, _))));
    }
}
