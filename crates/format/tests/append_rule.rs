//! The one append rule (`chain::check_append`, which the store calls before every append):
//! an empty chain starts at pulse 1 after every stored pulse; otherwise the next index, the
//! head's outputValue as previous, and a later time.

mod support;

use lavabeacon_format::chain::{check_append, AppendRefusal, Head, LinkBreak};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::time::parse_time_stamp;
use support::*;

#[test]
fn each_broken_rule_is_named() {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(3, "2026-01-01T00:00:00.000Z", 60_000, &signer);
    let t = |i: usize| parse_time_stamp(&pulses[i].time_stamp).unwrap();
    let head = |i: usize| Head {
        index: pulses[i].pulse_index,
        time_ms: t(i),
        output: pulses[i].output_value,
    };
    assert_eq!(check_append(&pulses[0], t(0), None, None), Ok(()));
    assert_eq!(check_append(&pulses[0], t(0), None, Some(t(0) - 1)), Ok(()));
    assert_eq!(
        check_append(&pulses[1], t(1), None, None),
        Err(AppendRefusal::NotFirst { chain: 1 })
    );
    assert_eq!(
        check_append(&pulses[0], t(0), None, Some(t(0))),
        Err(AppendRefusal::NewChainTooEarly { newest_ms: t(0) })
    );
    assert_eq!(check_append(&pulses[1], t(1), Some(&head(0)), None), Ok(()));
    assert_eq!(
        check_append(&pulses[2], t(2), Some(&head(0)), None),
        Err(AppendRefusal::NotNext { chain: 1, head: 1 })
    );
    let other = Head {
        output: Hash512([7; 64]),
        ..head(0)
    };
    let e = check_append(&pulses[1], t(1), Some(&other), None).unwrap_err();
    assert!(matches!(
        e,
        AppendRefusal::Link {
            head: 1,
            broken: LinkBreak::PreviousWrong(_)
        }
    ));
    assert_eq!(e.to_string(), "previous is not the outputValue of pulse 1");
    assert_eq!(
        check_append(&pulses[1], t(0), Some(&head(0)), None),
        Err(AppendRefusal::Link {
            head: 1,
            broken: LinkBreak::NotLater(0)
        })
    );
}
