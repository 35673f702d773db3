//! [`FakeStore`]: a whole store in memory, with the real stores' append rule.

use crate::append::check_extends;
use crate::error::StoreError;
use crate::leader::{LeaderLock, Leadership, MemoryLock};
use crate::lookup::{Lookup, Range};
use crate::row::PulseRow;
use crate::{Counts, Store};
use futures_util::stream::{self, BoxStream, StreamExt};
use lavabeacon_format::chain::Head;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::certificate_id;
use lavabeacon_format::Pulse;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The store in memory.

/// A store in memory: pulses, certificates, manifests, pending secrets and a leader lock, with
/// the real stores' rules for appending ([`check_extends`], the same pulse shape, one pulse per
/// time).
#[derive(Default)]
pub struct FakeStore {
    state: Mutex<State>,
    leader: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    pulses: BTreeMap<(u64, u64), Pulse>,
    /// (chain, index) of the pulse at each time.
    by_time: BTreeMap<i64, (u64, u64)>,
    manifests: BTreeMap<(u64, u64), String>,
    /// In the order stored.
    certificates: Vec<(Hash512, Vec<u8>)>,
    external_sources: Vec<(Hash512, String)>,
    key_switches: Vec<crate::KeySwitch>,
    draws: HashMap<Hash512, crate::StoredDraw>,
    secrets: HashMap<(u64, u64), Vec<u8>>,
}

impl FakeStore {
    /// An empty store.
    pub fn new() -> FakeStore {
        FakeStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; keep the data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_leader(&self, leader: Option<&Leadership>) -> Result<(), StoreError> {
        match leader.map(|l| &l.inner) {
            None => Ok(()),
            Some(LeaderLock::Memory(MemoryLock(held))) if Arc::ptr_eq(held, &self.leader) => Ok(()),
            Some(_) => Err(StoreError::lost_leadership(
                "the leadership given belongs to another store",
            )),
        }
    }
}

impl State {
    fn pulse(&self, key: Option<&(u64, u64)>) -> Option<Pulse> {
        key.and_then(|k| self.pulses.get(k)).cloned()
    }

    fn chain(&self, chain: u64) -> impl DoubleEndedIterator<Item = &Pulse> {
        self.pulses
            .range((chain, 0)..=(chain, u64::MAX))
            .map(|(_, p)| p)
    }

    fn find(&self, lookup: Lookup) -> Option<Pulse> {
        match lookup {
            Lookup::Last => self.pulse(self.by_time.values().next_back()),
            Lookup::LastInChain(c) => self.chain(c).next_back().cloned(),
            Lookup::FirstInChain(c) => self.chain(c).next().cloned(),
            Lookup::ByIndex { chain, index } => self.pulse(Some(&(chain, index))),
            Lookup::AtOrAfter(t) => self.pulse(self.by_time.range(t..).map(|(_, k)| k).next()),
            Lookup::Before(t) => self.pulse(self.by_time.range(..t).map(|(_, k)| k).next_back()),
            Lookup::After(t) => {
                let from = t.checked_add(1)?;
                self.pulse(self.by_time.range(from..).map(|(_, k)| k).next())
            }
            Lookup::FirstInPeriod {
                chain,
                period,
                time_ms,
            } => {
                let start = period.start_of(time_ms)?;
                let first = self
                    .by_time
                    .range(start..=time_ms)
                    .map(|(_, k)| k)
                    .find(|(c, _)| *c == chain);
                self.pulse(first)
            }
        }
    }

    fn range(&self, range: Range) -> Vec<Pulse> {
        match range {
            Range::ByTime { from_ms, to_ms } if from_ms < to_ms => self
                .by_time
                .range(from_ms..to_ms)
                .filter_map(|(_, k)| self.pulses.get(k).cloned())
                .collect(),
            Range::ByIndex { chain, from, to } if from <= to => self
                .pulses
                .range((chain, from)..=(chain, to))
                .map(|(_, p)| p.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Checks and keeps a run of pulses of one chain: all of them, or none.
    fn append_run(&mut self, pulses: &[Pulse]) -> Result<(), StoreError> {
        let Some(first) = pulses.first() else {
            return Ok(());
        };
        let mut head = self.chain(first.chain_index).next_back().map(|p| Head {
            index: p.pulse_index,
            time_ms: p.time_ms().unwrap_or(i64::MIN),
            output: p.output_value,
        });
        let mut newest = self.by_time.keys().next_back().copied();
        let mut times = Vec::with_capacity(pulses.len());
        for p in pulses {
            PulseRow::from_pulse(p)?; // the same pulses the real stores can keep
            let time_ms = check_extends(p, head.as_ref(), newest)?;
            if self.by_time.contains_key(&time_ms) {
                return Err(StoreError::Conflict {
                    chain: p.chain_index,
                    index: p.pulse_index,
                    reason: "another pulse already has this time".into(),
                });
            }
            head = Some(Head {
                index: p.pulse_index,
                time_ms,
                output: p.output_value,
            });
            newest = newest.max(Some(time_ms));
            times.push(time_ms);
        }
        for (p, t) in pulses.iter().zip(times) {
            self.by_time.insert(t, (p.chain_index, p.pulse_index));
            self.pulses
                .insert((p.chain_index, p.pulse_index), p.clone());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for FakeStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError> {
        self.check_leader(leader)?;
        let mut s = self.state();
        s.append_run(std::slice::from_ref(pulse))?;
        if let Some(m) = manifest {
            s.manifests
                .insert((pulse.chain_index, pulse.pulse_index), m.to_string());
        }
        Ok(())
    }

    async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError> {
        self.state().append_run(pulses)?;
        Ok(pulses.len() as u64)
    }

    async fn find(&self, lookup: Lookup) -> Result<Option<Pulse>, StoreError> {
        Ok(self.state().find(lookup))
    }

    fn range(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>> {
        let pulses = self.state().range(range);
        stream::iter(pulses.into_iter().map(Ok)).boxed()
    }

    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
        let id = certificate_id(der);
        let mut s = self.state();
        if !s.certificates.iter().any(|(i, _)| *i == id) {
            s.certificates.push((id, der.to_vec()));
        }
        Ok(id)
    }
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
        let s = self.state();
        Ok(s.certificates
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, der)| der.clone()))
    }
    async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .state()
            .certificates
            .iter()
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn put_external_source(&self, description: &str) -> Result<Hash512, StoreError> {
        let id = lavabeacon_format::hash::sha512(&[description.as_bytes()]);
        let mut s = self.state();
        if !s.external_sources.iter().any(|(i, _)| *i == id) {
            s.external_sources.push((id, description.to_string()));
        }
        Ok(id)
    }
    async fn external_source(&self, id: &Hash512) -> Result<Option<String>, StoreError> {
        let s = self.state();
        Ok(s.external_sources
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, d)| d.clone()))
    }
    async fn external_sources(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .external_sources
            .iter()
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn put_key_switch(&self, switch: &crate::KeySwitch) -> Result<(), StoreError> {
        let mut s = self.state();
        s.key_switches.retain(|k| k.at_ms != switch.at_ms);
        s.key_switches.push(switch.clone());
        s.key_switches.sort_by_key(|k| k.at_ms);
        Ok(())
    }
    async fn key_switches(&self) -> Result<Vec<crate::KeySwitch>, StoreError> {
        Ok(self.state().key_switches.clone())
    }

    /// The fake keeps no transparency log (`log()` says so): the entry is not kept.
    async fn put_draw(
        &self,
        d: &crate::StoredDraw,
        _log_entry: &[u8],
    ) -> Result<crate::StoredDraw, StoreError> {
        Ok(self
            .state()
            .draws
            .entry(d.id)
            .or_insert_with(|| d.clone())
            .clone())
    }
    async fn draw(&self, id: &Hash512) -> Result<Option<crate::StoredDraw>, StoreError> {
        Ok(self.state().draws.get(id).cloned())
    }

    async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError> {
        let mut s = self.state();
        for (c, i, _) in manifests {
            if s.manifests.contains_key(&(*c, *i)) {
                return Err(StoreError::Conflict {
                    chain: *c,
                    index: *i,
                    reason: "this pulse has a source manifest already".into(),
                });
            }
        }
        for (c, i, m) in manifests {
            s.manifests.insert((*c, *i), m.clone());
        }
        Ok(())
    }
    async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
        Ok(self.state().manifests.get(&(chain, index)).cloned())
    }
    fn manifests_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
        let found: Vec<_> = if from <= to {
            self.state()
                .manifests
                .range((chain, from)..=(chain, to))
                .map(|((c, i), m)| Ok((*c, *i, m.clone())))
                .collect()
        } else {
            Vec::new()
        };
        stream::iter(found).boxed()
    }

    async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.state().secrets.insert((chain, index), sealed.to_vec());
        Ok(())
    }
    async fn pending_secret(&self, chain: u64, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().secrets.get(&(chain, index)).cloned())
    }
    async fn drop_pending_secrets(&self, chain: u64, up_to_index: u64) -> Result<(), StoreError> {
        self.state()
            .secrets
            .retain(|(c, i), _| *c != chain || *i > up_to_index);
        Ok(())
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let s = self.state();
        let mut chains: Vec<u64> = s.pulses.keys().map(|(c, _)| *c).collect();
        chains.dedup();
        Ok(Counts {
            pulses: s.pulses.len() as u64,
            chains: chains.len() as u64,
            certificates: s.certificates.len() as u64,
        })
    }

    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let free = self
                .leader
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if free {
                return Ok(Leadership {
                    inner: LeaderLock::Memory(MemoryLock(self.leader.clone())),
                });
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(StoreError::LeaderBusy {
                    lock: "the fake store's leader lock".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
