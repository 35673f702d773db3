//! Every JSON form NIST-format beacons publish reads the same pulses; writing them back keeps M
//! identical; malformed input gets a clear error naming the file and line, never a panic.

mod support;

use lavabeacon_format::input::{read_items, Item};
use lavabeacon_format::json::{parse_pulse, to_json_line, to_nist_json, ParseError};
use lavabeacon_format::message::signed_message;
use lavabeacon_format::Pulse;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/nist-2018-chain1"
);

fn nist(n: u64) -> (String, Pulse) {
    let text = std::fs::read_to_string(format!("{DIR}/pulse-{n}.json")).unwrap();
    let p = parse_pulse(&text).unwrap();
    (text, p)
}

fn items(text: &str) -> Vec<Item> {
    read_items("input.json", text.as_bytes())
        .map(|r| r.unwrap())
        .collect()
}

fn records(text: &str) -> Vec<(String, Pulse)> {
    items(text)
        .into_iter()
        .map(|i| match i {
            Item::Record { location, text } => (location.to_string(), parse_pulse(&text).unwrap()),
            Item::Unreadable { location, message } => panic!("{location}: {message}"),
        })
        .collect()
}

#[test]
fn envelope_and_bare_object_read_the_same_pulse() {
    let (text, p) = nist(54609);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bare = serde_json::to_string(&v["pulse"]).unwrap();
    assert_eq!(parse_pulse(&bare).unwrap(), p);
}

#[test]
fn round_trip_keeps_the_signed_message() {
    for n in [1, 54609, 54610] {
        let (_, p) = nist(n);
        for text in [to_json_line(&p), to_nist_json(&p)] {
            let q = parse_pulse(&text).unwrap();
            assert_eq!(signed_message(&q), signed_message(&p));
            assert_eq!(q, p);
        }
    }
    // NIST's own case conventions: certificateId lower, the rest upper.
    let line = to_json_line(&nist(1).1);
    assert!(line.contains("\"certificateId\":\"5501e3d7"));
    assert!(line.contains("\"localRandomValue\":\"88C3BF23"));
    assert!(
        line.contains("\"uri\":null"),
        "chain start skip entries have null uris"
    );
}

#[test]
fn other_beacons_round_trip_too() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/other-beacons"
    );
    for f in [
        "clcert-2020-chain4-pulse-987497.json",
        "inmetro-2020-chain1-pulse-386184.json",
    ] {
        let p = parse_pulse(&std::fs::read_to_string(format!("{dir}/{f}")).unwrap()).unwrap();
        let q = parse_pulse(&to_nist_json(&p)).unwrap();
        assert_eq!(signed_message(&q), signed_message(&p), "{f}");
        assert_eq!(q, p, "{f}");
    }
}

#[test]
fn json_lines_array_pretty_objects_and_envelopes_all_read() {
    let pulses: Vec<Pulse> = [1, 54609, 54610].map(|n| nist(n).1).to_vec();
    let lines: String = pulses.iter().map(|p| to_json_line(p) + "\n").collect();
    let array = format!(
        "[\n{}\n]",
        pulses
            .iter()
            .map(to_nist_json)
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let pretty: String = pulses.iter().map(|p| to_nist_json(p) + "\n").collect();
    let crlf = pretty.replace('\n', "\r\n");
    for (form, text) in [
        ("lines", &lines),
        ("array", &array),
        ("pretty", &pretty),
        ("crlf", &crlf),
    ] {
        let got: Vec<Pulse> = records(text).into_iter().map(|(_, p)| p).collect();
        assert_eq!(got, pulses, "{form}");
    }
    let locations: Vec<String> = records(&lines).into_iter().map(|(l, _)| l).collect();
    assert_eq!(locations, ["input.json:1", "input.json:2", "input.json:3"]);
    let first_line_of_each = to_nist_json(&pulses[0]).lines().count() + 1;
    assert_eq!(
        records(&pretty)[1].0,
        format!("input.json:{first_line_of_each}")
    );
}

#[test]
fn hex_is_case_insensitive() {
    let (text, p) = nist(54610);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for f in ["localRandomValue", "signatureValue", "outputValue"] {
        let lower = v["pulse"][f].as_str().unwrap().to_lowercase();
        v["pulse"][f] = lower.into();
    }
    let q = parse_pulse(&v.to_string()).unwrap();
    assert_eq!(q, p);
}

fn with_field(field: &str, value: serde_json::Value) -> String {
    let (text, _) = nist(54609);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pulse"][field] = value;
    v.to_string()
}

#[test]
fn malformed_fields_get_errors_naming_the_field() {
    let bad_hex = with_field("localRandomValue", "ZZ".repeat(64).into());
    let e = parse_pulse(&bad_hex).unwrap_err();
    assert!(
        matches!(&e, ParseError::BadHex { field, .. } if field == "localRandomValue"),
        "{e}"
    );
    assert!(e.to_string().contains("'Z' at position 0"), "{e}");

    let short = with_field("outputValue", "AB".repeat(63).into());
    assert_eq!(
        parse_pulse(&short).unwrap_err().to_string(),
        "field `outputValue`: expected 64 bytes (128 hex digits), found 63 bytes"
    );
    let odd = with_field("signatureValue", "ABC".into());
    assert!(parse_pulse(&odd)
        .unwrap_err()
        .to_string()
        .contains("odd number of digits"));

    let (text, _) = nist(54609);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pulse"]
        .as_object_mut()
        .unwrap()
        .remove("precommitmentValue");
    let e = parse_pulse(&v.to_string()).unwrap_err().to_string();
    assert!(e.contains("missing field `precommitmentValue`"), "{e}");

    let negative = with_field("pulseIndex", (-5).into());
    assert!(parse_pulse(&negative)
        .unwrap_err()
        .to_string()
        .contains("not a pulse"));
    let huge = with_field("cipherSuite", serde_json::json!(1u64 << 40));
    assert!(parse_pulse(&huge).is_err());
}

#[test]
fn truncated_input_is_reported_with_its_line() {
    let (text, _) = nist(54609);
    let cut = &text[..text.len() / 2];
    let got = items(cut);
    assert_eq!(got.len(), 1);
    match &got[0] {
        Item::Unreadable { location, message } => {
            assert!(
                location.to_string().starts_with("input.json:"),
                "{location}"
            );
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let line = to_json_line(&nist(1).1);
    let lines = format!("{line}\n{}\n{line}\n", &line[..100]);
    let got = items(&lines);
    assert_eq!(got.len(), 3);
    match &got[1] {
        Item::Record { location, text } => {
            assert_eq!(location.to_string(), "input.json:2");
            assert!(parse_pulse(text)
                .unwrap_err()
                .to_string()
                .contains("truncated JSON"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_100_mb_line_is_refused_without_reading_it_into_memory() {
    let line = to_json_line(&nist(1).1);
    let mut big = format!("{line}\n");
    big.push_str(&"x".repeat(100 << 20));
    big.push('\n');
    big.push_str(&line);
    big.push('\n');
    let got = items(&big);
    assert_eq!(got.len(), 3);
    match &got[1] {
        Item::Unreadable { location, message } => {
            assert_eq!(location.to_string(), "input.json:2");
            assert!(message.contains("line longer than"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&got[2], Item::Record { location, .. } if location.to_string() == "input.json:3")
    );
}

#[test]
fn binary_garbage_is_an_error_not_a_panic() {
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let got: Vec<_> = read_items("g.bin", garbage.as_slice())
        .map(|r| r.unwrap())
        .collect();
    assert!(!got.is_empty());
    assert!(got
        .iter()
        .all(|i| matches!(i, Item::Unreadable { .. } | Item::Record { .. })));
}
