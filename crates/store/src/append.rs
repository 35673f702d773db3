//! The check before an append, the same for every backend (and the fake): the pulse's own
//! outputValue, then the format crate's one append rule
//! ([`lavabeacon_format::chain::check_append`]) against the head its transaction read.

use crate::error::StoreError;
use lavabeacon_format::chain::{check_append, Head};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::{output_value, signed_message};
use lavabeacon_format::Pulse;

/// A chain's head as a transaction reads it: (pulseIndex, time in ms, outputValue bytes).
pub(crate) type HeadRow = (i64, i64, Vec<u8>);

/// The head as the append rule takes it; a stored outputValue that is not 64 bytes is corrupt.
pub(crate) fn head_of(chain: u64, row: &HeadRow) -> Result<Head, StoreError> {
    let (index, time_ms, output) = row;
    let output: [u8; 64] = output.as_slice().try_into().map_err(|_| {
        StoreError::corrupt(format!(
            "pulse {chain}/{index}: output_value is {} bytes, not 64",
            output.len()
        ))
    })?;
    Ok(Head {
        index: *index as u64,
        time_ms: *time_ms,
        output: Hash512(output),
    })
}

/// Checks that `pulse` may be appended after `head` (None: its chain is empty), with
/// `newest_time_ms` the newest stored time of any chain: its outputValue is the hash of its M
/// and signature, and it follows the append rule. Returns its time.
pub(crate) fn check_extends(
    pulse: &Pulse,
    head: Option<&Head>,
    newest_time_ms: Option<i64>,
) -> Result<i64, StoreError> {
    let m = signed_message(pulse);
    if output_value(&m, &pulse.signature_value) != pulse.output_value {
        return Err(StoreError::unsupported(format!(
            "pulse {}/{}: outputValue is not SHA-512(M ‖ signature)",
            pulse.chain_index, pulse.pulse_index
        )));
    }
    let time = pulse
        .time_ms()
        .map_err(|e| StoreError::unsupported(e.to_string()))?;
    check_append(pulse, time, head, newest_time_ms).map_err(|refusal| StoreError::Conflict {
        chain: pulse.chain_index,
        index: pulse.pulse_index,
        reason: refusal.to_string(),
    })?;
    Ok(time)
}

/// Checks that `pulses` is a run that extends the chain's head, each pulse the one before.
pub(crate) fn check_run(
    pulses: &[Pulse],
    head: Option<Head>,
    newest_time_ms: Option<i64>,
) -> Result<(), StoreError> {
    let mut head = head;
    let mut newest = newest_time_ms;
    for p in pulses {
        let time_ms = check_extends(p, head.as_ref(), newest)?;
        head = Some(Head {
            index: p.pulse_index,
            time_ms,
            output: p.output_value,
        });
        newest = Some(time_ms);
    }
    Ok(())
}
