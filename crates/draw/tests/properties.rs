//! Properties of `lavabeacon-v1` over many draws: every position equally likely (a chi-squared
//! bound), prefixes that do not move when more are drawn, no modulo bias; and the RFC 3797
//! worked example through a whole spec.

use lavabeacon_draw::spec::{BeaconRef, DrawSpec, Pool};
use lavabeacon_draw::{select, v1};

/// Pearson's chi-squared statistic of `counts` against equal expectations.
fn chi_squared(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// The pulses of many draws: distinct outputValues, as successive pulses have.
fn output_value(i: u64) -> [u8; 64] {
    let mut v = [0u8; 64];
    v[..8].copy_from_slice(&i.to_be_bytes());
    *lavabeacon_format::hash::sha512(&[&v]).as_bytes()
}

#[test]
fn every_entry_is_first_pick_equally_often_over_20000_draws() {
    // 10 entries, 9 degrees of freedom: the 99.9 % point of chi-squared is 27.88.
    let mut counts = [0u64; 10];
    for i in 0..20_000 {
        let mut s = v1::Stream::new(&output_value(i), &[1; 64]);
        counts[v1::pick(&mut s, 10, 1)[0] - 1] += 1;
    }
    let x2 = chi_squared(&counts);
    assert!(x2 < 27.88, "chi-squared {x2} for {counts:?}");
}

#[test]
fn every_position_of_a_shuffle_is_uniform_over_10000_shuffles() {
    // Where entry 1 lands among 6 positions: 5 degrees of freedom, 99.9 % point 20.52.
    let mut counts = [0u64; 6];
    for i in 0..10_000 {
        let mut s = v1::Stream::new(&output_value(i), &[2; 64]);
        let order = v1::pick(&mut s, 6, 6);
        counts[order.iter().position(|&e| e == 1).unwrap()] += 1;
    }
    let x2 = chi_squared(&counts);
    assert!(x2 < 20.52, "chi-squared {x2} for {counts:?}");
}

#[test]
fn weighted_picks_follow_the_weights() {
    // Weights 1, 2, 3, 4: first picks in proportion, checked as chi-squared against 1:2:3:4.
    let weights = [1u64, 2, 3, 4];
    let mut counts = [0u64; 4];
    let n = 20_000u64;
    for i in 0..n {
        let mut s = v1::Stream::new(&output_value(i), &[3; 64]);
        counts[v1::weighted(&mut s, &weights, 1)[0] - 1] += 1;
    }
    let x2: f64 = counts
        .iter()
        .zip(weights)
        .map(|(&c, w)| {
            let e = n as f64 * w as f64 / 10.0;
            (c as f64 - e).powi(2) / e
        })
        .sum();
    assert!(
        x2 < 16.27,
        "chi-squared {x2} for {counts:?} (3 degrees of freedom, 99.9 %)"
    );
}

#[test]
fn integers_in_a_range_that_does_not_divide_2_pow_64_are_uniform() {
    // [0, 2] (3 values, 2^64 mod 3 = 1): 2 degrees of freedom, 99.9 % point 13.82.
    let mut counts = [0u64; 3];
    let mut s = v1::Stream::new(&output_value(0), &[4; 64]);
    for v in v1::integers(&mut s, 0, 2, 30_000) {
        counts[v as usize] += 1;
    }
    let x2 = chi_squared(&counts);
    assert!(x2 < 13.82, "chi-squared {x2} for {counts:?}");
}

#[test]
fn prefixes_are_stable_for_every_count_on_many_pulses() {
    for i in 0..200 {
        let all = v1::pick(&mut v1::Stream::new(&output_value(i), &[5; 64]), 50, 50);
        for k in [1, 2, 7, 30] {
            let some = v1::pick(&mut v1::Stream::new(&output_value(i), &[5; 64]), 50, k);
            assert_eq!(some, all[..k]);
        }
    }
}

fn spec(method: &str, entries: usize) -> DrawSpec {
    DrawSpec {
        version: 1,
        title: "test".into(),
        method: method.into(),
        operation: "pick".into(),
        pool: Some(Pool::Entries {
            entries: (1..=entries).map(|i| format!("entry {i}")).collect(),
        }),
        count: 3,
        weights: None,
        range: None,
        sources: None,
        beacon: BeaconRef {
            base_uri: "https://beacon.example.org/beacon/2.0".into(),
            chain_index: 1,
            certificate_id: "ab".repeat(64),
        },
        target_time: "2027-01-01T00:00:00.000Z".into(),
    }
}

#[test]
fn the_same_pulse_decides_two_draws_independently_and_the_id_binds_the_spec() {
    let a = spec("lavabeacon-v1", 1000);
    let mut b = a.clone();
    b.title = "another draw".into();
    assert_ne!(a.id(), b.id());
    let pulse = output_value(9);
    assert_ne!(select(&a, &pulse).unwrap(), select(&b, &pulse).unwrap());
    assert_eq!(select(&a, &pulse).unwrap(), select(&a, &pulse).unwrap());
}

#[test]
fn a_spec_reads_back_to_the_same_canonical_bytes_and_id() {
    let a = spec("rfc3797", 25);
    let text = serde_json::to_string_pretty(&a).unwrap();
    let b = DrawSpec::parse(&text).unwrap();
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.id_hex(), b.id_hex());
    // Canonical: keys sorted, no white space.
    let canonical = String::from_utf8(a.canonical()).unwrap();
    assert!(
        canonical.starts_with("{\"beacon\":{\"baseUri\":"),
        "{canonical}"
    );
    assert!(
        !canonical.contains("\": ") && !canonical.contains(", \""),
        "{canonical}"
    );
}

#[test]
fn the_rfc_3797_example_through_a_spec_with_the_pulse_as_the_last_source() {
    let mut s = spec("rfc3797", 25);
    s.sources = Some(vec![
        vec!["9319".into()],
        vec!["2".into(), "5".into(), "12".into(), "8".into(), "10".into()],
    ]);
    let mut pulse = [0u8; 64];
    // 9 18 26 34 41 45 cannot be one number; the pulse source is one value: here 4660.
    pulse[62] = 0x12;
    pulse[63] = 0x34;
    let out = select(&s, &pulse).unwrap();
    assert_eq!(out.key.as_deref(), Some("9319./2.5.8.10.12./4660./"));
    assert_eq!(out.picks.len(), 3);
    assert_eq!(
        out.picks[0].name.as_deref(),
        Some(format!("entry {}", out.picks[0].index).as_str())
    );
}

#[test]
fn specs_that_cannot_be_drawn_are_refused_with_the_reason() {
    let mut s = spec("lavabeacon-v1", 3);
    s.count = 4;
    assert!(s
        .check()
        .unwrap_err()
        .to_string()
        .contains("cannot pick 4 of 3"));
    let mut s = spec("rfc3797", 3);
    s.operation = "shuffle".into();
    assert!(s.check().unwrap_err().to_string().contains("only picks"));
    let mut s = spec("lavabeacon-v1", 3);
    s.target_time = "tomorrow".into();
    assert!(s.check().unwrap_err().to_string().contains("targetTime"));
    let mut s = spec("lavabeacon-v1", 3);
    s.operation = "weighted".into();
    s.weights = Some(vec!["1".into(), "0".into(), "2".into()]);
    assert!(s.check().unwrap_err().to_string().contains("weight \"0\""));
    let mut s = spec("rfc3797", 3);
    s.sources = Some(vec![vec!["12a".into()]]);
    assert!(s
        .check()
        .unwrap_err()
        .to_string()
        .contains("not a non-negative whole number"));
}
