//! The precommitment across restarts. Pulse n publishes SHA-512 of pulse n+1's
//! localRandomValue, so that value must exist, unpublished, until pulse n+1: it is sealed by the
//! signer (AES-256-GCM with a key in the HSM) and stored in `pending_secrets` *before* pulse n
//! is published. After a restart it is unsealed and checked against pulse n's commitment; if it
//! is gone or does not open, the next pulse says so with statusCode 3.

use lavabeacon_format::builder::{ChainBuilder, ChainParams, ChainState};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use lavabeacon_signer::{Signer, SignerError};
use lavabeacon_store::{Store, StoreError};
use thiserror::Error;
use zeroize::Zeroizing;

/// Why keeping or recovering a value failed outright (a lost value is not an error: see
/// [`Recovered::Lost`]).
#[derive(Debug, Error)]
pub enum CommitmentError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signer could not seal.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// What the sealed value is bound to: a value sealed for one place cannot be passed off at
/// another.
fn place(chain: u64, index: u64) -> Vec<u8> {
    format!("lavabeacon next localRandomValue chain {chain} pulse {index}").into_bytes()
}

/// Seals `value`, the localRandomValue of pulse `index` of `chain`, with its source manifest
/// (whose digests would reveal the value, so it is sealed too), and stores it. Call it before
/// publishing the pulse that commits to it.
pub async fn keep_next(
    store: &dyn Store,
    signer: &dyn Signer,
    chain: u64,
    index: u64,
    value: &Hash512,
    manifest: Option<&Manifest>,
) -> Result<(), CommitmentError> {
    let mut payload = Zeroizing::new(value.0.to_vec());
    if let Some(m) = manifest {
        payload.extend_from_slice(
            serde_json::to_string(m)
                .expect("manifest serialises")
                .as_bytes(),
        );
    }
    let sealed = signer.seal(&place(chain, index), &payload)?;
    store.put_pending_secret(chain, index, &sealed).await?;
    Ok(())
}

/// What a restart finds for the pulse after `last`.
#[derive(Debug)]
pub enum Recovered {
    /// The committed value, checked against `last`'s precommitment, and its manifest.
    Kept(Zeroizing<[u8; 64]>, Option<Manifest>),
    /// The value is gone; the next pulse must carry statusCode 3. The reason is for the log.
    Lost(String),
}

/// What the store holds for one sealed place.
enum Sealed {
    /// A value and its manifest, opened.
    Opened(Zeroizing<[u8; 64]>, Option<Manifest>),
    /// Nothing sealed there, or it does not make a value; `hsm_refused` when the HSM declined
    /// the decryption (which a vanished token can look like).
    Unusable { why: String, hsm_refused: bool },
}

/// Finds and unseals the value sealed for pulse `index` of `chain`, with its manifest.
async fn open_sealed(
    store: &dyn Store,
    signer: &dyn Signer,
    chain: u64,
    index: u64,
) -> Result<Sealed, CommitmentError> {
    let unusable = |why: String| Sealed::Unusable {
        why,
        hsm_refused: false,
    };
    let Some(sealed) = store.pending_secret(chain, index).await? else {
        return Ok(unusable(format!(
            "no sealed value for pulse {chain}/{index}"
        )));
    };
    let value = match signer.unseal(&place(chain, index), &sealed) {
        Ok(v) => v,
        Err(SignerError::Unseal(why)) => {
            return Ok(Sealed::Unusable {
                why: format!("the sealed value for pulse {chain}/{index} does not open: {why}"),
                hsm_refused: true,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let Some(Ok(bytes)) = value.get(..64).map(<[u8; 64]>::try_from) else {
        return Ok(unusable(format!(
            "the sealed value for pulse {chain}/{index} is {} bytes, not 64 or more",
            value.len()
        )));
    };
    let manifest = match &value[64..] {
        [] => None,
        json => match serde_json::from_slice::<Manifest>(json) {
            Ok(m) => Some(m),
            Err(e) => {
                return Ok(unusable(format!(
                    "the sealed manifest for pulse {chain}/{index} is unreadable: {e}"
                )))
            }
        },
    };
    Ok(Sealed::Opened(Zeroizing::new(bytes), manifest))
}

/// Finds, unseals and checks the value `last` committed to.
pub async fn recover_next(
    store: &dyn Store,
    signer: &dyn Signer,
    last: &Pulse,
) -> Result<Recovered, CommitmentError> {
    let (chain, index) = (last.chain_index, last.pulse_index + 1);
    let (bytes, manifest) = match open_sealed(store, signer, chain, index).await? {
        Sealed::Opened(v, m) => (v, m),
        Sealed::Unusable { why, hsm_refused } => {
            if hsm_refused {
                // A token that is gone may fail a decryption the way a wrong key does; the
                // value is declared lost (statusCode 3, for ever) only if the HSM otherwise
                // answers.
                let mut probe = [0u8; 1];
                signer.random(&mut probe)?;
            }
            return Ok(Recovered::Lost(why));
        }
    };
    if precommitment(&Hash512(*bytes)) != last.precommitment_value {
        return Ok(Recovered::Lost(format!(
            "the sealed value for pulse {chain}/{index} does not match pulse {}'s precommitment",
            last.pulse_index
        )));
    }
    Ok(Recovered::Kept(bytes, manifest))
}

/// A chain builder that continues `chain` after its last stored pulse, with the skip-list state
/// read from the store; None if the chain has no pulse yet.
pub async fn resume_builder(
    store: &dyn Store,
    params: ChainParams,
) -> Result<Option<(ChainBuilder, Pulse)>, StoreError> {
    let Some(last) = store.last_in_chain(params.chain_index).await? else {
        return Ok(None);
    };
    let t = last
        .time_ms()
        .map_err(|e| StoreError::corrupt(e.to_string()))?;
    let mut firsts = Vec::with_capacity(4);
    for p in Period::ALL {
        let first = store
            .first_in_period(params.chain_index, p, t)
            .await?
            .ok_or_else(|| {
                StoreError::corrupt(format!(
                    "no first pulse of the {} of pulse {}",
                    p.name(),
                    last.pulse_index
                ))
            })?;
        firsts.push(first);
    }
    let state = ChainState::resume(&last, [&firsts[0], &firsts[1], &firsts[2], &firsts[3]])
        .map_err(|e| StoreError::corrupt(e.to_string()))?;
    Ok(Some((ChainBuilder::resume(params, state), last)))
}

/// The value sealed for pulse `index` of `chain` by an attempt whose own pulse may or may not
/// have been stored (an append whose outcome came too late to know): reusing it, instead of
/// gathering a new one, keeps whatever was committed to true either way. None when there is
/// none or it does not open (then a fresh value is gathered; nothing public committed to it).
pub async fn recover_prepared(
    store: &dyn Store,
    signer: &dyn Signer,
    chain: u64,
    index: u64,
) -> Result<Option<(Zeroizing<[u8; 64]>, Manifest)>, CommitmentError> {
    Ok(match open_sealed(store, signer, chain, index).await? {
        Sealed::Opened(v, Some(m)) if m.chain_index == chain && m.pulse_index == index => {
            Some((v, m))
        }
        _ => None,
    })
}
