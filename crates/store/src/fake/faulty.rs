//! [`FaultyStore`]: any store, with the faults of a database injected on command.

use crate::error::StoreError;
use crate::leader::Leadership;
use crate::lookup::{Lookup, Range};
use crate::{Counts, Store};
use futures_util::stream::{self, BoxStream, StreamExt};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::Pulse;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Faults around any store.

/// A call of the [`Store`] trait that [`FaultyStore::fail_next`] can make fail. (Range reads
/// fail only while the store is down: [`FaultyStore::go_down`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `append`, failing before the inner store sees it.
    Append,
    /// `append`, failing after the inner store committed the pulse (a connection lost while
    /// COMMIT's answer was on its way).
    AppendAfterCommit,
    /// `bulk_load`.
    BulkLoad,
    /// A `find` of the same kind as this lookup, whatever its arguments:
    /// `Find(Lookup::LastInChain(0))` is every read of a chain's head.
    Find(Lookup),
    /// `put_certificate`.
    PutCertificate,
    /// `certificate`.
    Certificate,
    /// `certificates`.
    Certificates,
    /// `put_external_source`.
    PutExternalSource,
    /// `external_source`.
    ExternalSource,
    /// `external_sources`.
    ExternalSources,
    /// `put_draw`.
    PutDraw,
    /// `draw`.
    Draw,
    /// `put_key_switch`.
    PutKeySwitch,
    /// `key_switches`.
    KeySwitches,
    /// `put_manifests`.
    PutManifests,
    /// `manifest`.
    Manifest,
    /// `put_pending_secret`.
    PutPendingSecret,
    /// `pending_secret`.
    PendingSecret,
    /// `drop_pending_secrets`.
    DropPendingSecrets,
    /// `counts`.
    Counts,
    /// `acquire_leadership`.
    AcquireLeadership,
}

impl Call {
    fn is(&self, other: &Call) -> bool {
        match (self, other) {
            (Call::Find(a), Call::Find(b)) => {
                std::mem::discriminant(a) == std::mem::discriminant(b)
            }
            _ => self == other,
        }
    }
}

/// While the store is down: how long every call hangs, and the error it then returns.
type Outage = (Duration, StoreError);

/// Any store, with faults injected on command (see the module doc). With no fault set it is
/// the inner store exactly.
pub struct FaultyStore<S: Store + ?Sized = dyn Store> {
    inner: Arc<S>,
    down: Mutex<Option<Outage>>,
    /// Calls to fail: which, how many more times, with what.
    planned: Mutex<Vec<(Call, u32, StoreError)>>,
    /// How many more reads of a chain's head answer with the pulse before the head.
    stale_heads: AtomicUsize,
    open_ranges: Arc<AtomicUsize>,
    ranges_made: AtomicUsize,
}

impl<S: Store + ?Sized> FaultyStore<S> {
    /// `inner`, with no fault set.
    pub fn new(inner: Arc<S>) -> FaultyStore<S> {
        FaultyStore {
            inner,
            down: Mutex::new(None),
            planned: Mutex::new(Vec::new()),
            stale_heads: AtomicUsize::new(0),
            open_ranges: Arc::new(AtomicUsize::new(0)),
            ranges_made: AtomicUsize::new(0),
        }
    }

    /// The store inside.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// The next `times` calls of `call` fail with `error` (replacing what was set for it).
    pub fn fail_next(&self, call: Call, times: u32, error: StoreError) {
        let mut planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
        planned.retain(|(c, _, _)| !c.is(&call));
        planned.push((call, times, error));
    }

    /// The next `times` reads of a chain's head whose head is past pulse 1 answer with the
    /// pulse before it, as a read that does not see the last commit yet.
    pub fn answer_stale_heads(&self, times: usize) {
        self.stale_heads.store(times, Ordering::SeqCst);
    }

    /// From now on every call (and every range read, when first polled) hangs for `hang` and
    /// then fails with `error`, as calls do while a database is down.
    pub fn go_down(&self, hang: Duration, error: StoreError) {
        *self.down.lock().unwrap_or_else(|p| p.into_inner()) = Some((hang, error));
    }

    /// Calls reach the inner store again.
    pub fn come_back(&self) {
        *self.down.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Range reads (`range`, `manifests_by_index`) open now: made and not yet dropped.
    pub fn open_ranges(&self) -> usize {
        self.open_ranges.load(Ordering::SeqCst)
    }

    /// Range reads made since the start (or since [`FaultyStore::reset_ranges_made`]).
    pub fn ranges_made(&self) -> usize {
        self.ranges_made.load(Ordering::SeqCst)
    }

    /// Counts range reads made from zero again.
    pub fn reset_ranges_made(&self) {
        self.ranges_made.store(0, Ordering::SeqCst);
    }

    /// The planned failure of `call`, if one is due; counts it.
    fn take(&self, call: Call) -> Result<(), StoreError> {
        let mut planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
        match planned.iter_mut().find(|(c, n, _)| c.is(&call) && *n > 0) {
            Some((_, n, e)) => {
                *n -= 1;
                Err(e.clone())
            }
            None => Ok(()),
        }
    }

    /// Hangs and fails while the store is down.
    async fn outage(&self) -> Result<(), StoreError> {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match down {
            Some((hang, e)) => {
                tokio::time::sleep(hang).await;
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Both checks before a call reaches the inner store.
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        self.outage().await?;
        self.take(call)
    }

    /// `s`, counted as open until it is dropped, hanging first while the store is down.
    fn counted<'a, T: Send + 'a>(
        &'a self,
        s: BoxStream<'a, Result<T, StoreError>>,
    ) -> BoxStream<'a, Result<T, StoreError>> {
        struct Open(Arc<AtomicUsize>);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.ranges_made.fetch_add(1, Ordering::SeqCst);
        self.open_ranges.fetch_add(1, Ordering::SeqCst);
        let open = Open(self.open_ranges.clone());
        let outage = stream::once(async move { self.outage().await })
            .filter_map(|r| async move { r.err().map(Err) });
        outage
            .chain(s)
            .map(move |item| {
                let _held = &open;
                item
            })
            .boxed()
    }
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> Store for FaultyStore<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError> {
        self.before(Call::Append).await?;
        self.inner.append(pulse, manifest, leader).await?;
        self.take(Call::AppendAfterCommit)
    }

    async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError> {
        self.before(Call::BulkLoad).await?;
        self.inner.bulk_load(pulses).await
    }

    async fn find(&self, lookup: Lookup) -> Result<Option<Pulse>, StoreError> {
        self.before(Call::Find(lookup)).await?;
        let found = self.inner.find(lookup).await?;
        if let (Lookup::LastInChain(chain), Some(head)) = (lookup, &found) {
            let stale = head.pulse_index > 1
                && self
                    .stale_heads
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if stale {
                let before = Lookup::ByIndex {
                    chain,
                    index: head.pulse_index - 1,
                };
                return self.inner.find(before).await;
            }
        }
        Ok(found)
    }

    fn range(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>> {
        self.counted(self.inner.range(range))
    }

    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
        self.before(Call::PutCertificate).await?;
        self.inner.put_certificate(der).await
    }
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
        self.before(Call::Certificate).await?;
        self.inner.certificate(id).await
    }
    async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.before(Call::Certificates).await?;
        self.inner.certificates().await
    }
    async fn put_external_source(&self, description: &str) -> Result<Hash512, StoreError> {
        self.before(Call::PutExternalSource).await?;
        self.inner.put_external_source(description).await
    }
    async fn external_source(&self, id: &Hash512) -> Result<Option<String>, StoreError> {
        self.before(Call::ExternalSource).await?;
        self.inner.external_source(id).await
    }
    async fn external_sources(&self) -> Result<Vec<String>, StoreError> {
        self.before(Call::ExternalSources).await?;
        self.inner.external_sources().await
    }
    async fn put_draw(
        &self,
        d: &crate::StoredDraw,
        log_entry: &[u8],
    ) -> Result<crate::StoredDraw, StoreError> {
        self.before(Call::PutDraw).await?;
        self.inner.put_draw(d, log_entry).await
    }
    /// The store's own log, without faults: the log's fault paths are those of the append.
    fn log(&self) -> Result<&dyn crate::Log, StoreError> {
        self.inner.log()
    }
    async fn draw(&self, id: &Hash512) -> Result<Option<crate::StoredDraw>, StoreError> {
        self.before(Call::Draw).await?;
        self.inner.draw(id).await
    }
    async fn put_key_switch(&self, s: &crate::KeySwitch) -> Result<(), StoreError> {
        self.before(Call::PutKeySwitch).await?;
        self.inner.put_key_switch(s).await
    }
    async fn key_switches(&self) -> Result<Vec<crate::KeySwitch>, StoreError> {
        self.before(Call::KeySwitches).await?;
        self.inner.key_switches().await
    }

    async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError> {
        self.before(Call::PutManifests).await?;
        self.inner.put_manifests(manifests).await
    }
    async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
        self.before(Call::Manifest).await?;
        self.inner.manifest(chain, index).await
    }
    fn manifests_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
        self.counted(self.inner.manifests_by_index(chain, from, to))
    }

    async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.before(Call::PutPendingSecret).await?;
        self.inner.put_pending_secret(chain, index, sealed).await
    }
    async fn pending_secret(&self, chain: u64, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.before(Call::PendingSecret).await?;
        self.inner.pending_secret(chain, index).await
    }
    async fn drop_pending_secrets(&self, chain: u64, up_to_index: u64) -> Result<(), StoreError> {
        self.before(Call::DropPendingSecrets).await?;
        self.inner.drop_pending_secrets(chain, up_to_index).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.before(Call::Counts).await?;
        self.inner.counts().await
    }

    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError> {
        self.before(Call::AcquireLeadership).await?;
        self.inner.acquire_leadership(wait).await
    }
}
