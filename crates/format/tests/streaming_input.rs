//! Arrays and object sequences are read a value at a time: any size, flat memory, each
//! element located at its first line, every framing fault reported where it is.

use lavabeacon_format::input::{read_items, Item, MAX_LINE};
use lavabeacon_format::json::{parse_pulse, to_json_line, to_nist_json};
use lavabeacon_format::Pulse;
use std::io::Read;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/nist-2018-chain1"
);

fn nist(n: u64) -> Pulse {
    parse_pulse(&std::fs::read_to_string(format!("{DIR}/pulse-{n}.json")).unwrap()).unwrap()
}

fn items(text: &[u8]) -> Vec<Item> {
    read_items("in", text).map(|r| r.unwrap()).collect()
}

/// (location, pulse or message) of each item.
fn summary(text: &[u8]) -> Vec<(String, Result<Pulse, String>)> {
    items(text)
        .into_iter()
        .map(|i| match i {
            Item::Record { location, text } => (
                location.to_string(),
                parse_pulse(&text).map_err(|e| e.to_string()),
            ),
            Item::Unreadable { location, message } => (location.to_string(), Err(message)),
        })
        .collect()
}

#[test]
fn empty_inputs_give_no_items() {
    for text in [
        "",
        " ",
        "\n\n",
        "\u{feff}",
        "[]",
        " [ \n ] \n",
        "\r\n[\r\n]\r\n",
    ] {
        assert!(items(text.as_bytes()).is_empty(), "{text:?}");
    }
}

#[test]
fn a_compact_array_far_over_max_line_on_one_line_reads_every_pulse() {
    let p = nist(54609);
    let one = to_json_line(&p);
    let n = (3 * MAX_LINE) / one.len() + 1;
    let array = format!("[{}]", vec![one.as_str(); n].join(","));
    assert!(array.len() > 3 * MAX_LINE && !array.contains('\n'));
    let got = summary(array.as_bytes());
    assert_eq!(got.len(), n);
    for (location, pulse) in got {
        assert_eq!(location, "in:1");
        assert_eq!(pulse.unwrap(), p);
    }
}

/// An endless array: `[` then the same pulse forever, `,`-separated, generated on the fly.
struct EndlessArray {
    element: Vec<u8>,
    pos: usize,
    started: bool,
}

impl Read for EndlessArray {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.started {
            self.started = true;
            buf[0] = b'[';
            return Ok(1);
        }
        let mut n = 0;
        while n < buf.len() {
            let k = (self.element.len() - self.pos).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&self.element[self.pos..self.pos + k]);
            n += k;
            self.pos = (self.pos + k) % self.element.len();
        }
        Ok(n)
    }
}

#[test]
fn elements_come_out_before_the_array_ends() {
    // Nothing could be read if the array were read whole: this one has no end.
    let element = format!("{},", to_json_line(&nist(1))).into_bytes();
    let source = EndlessArray {
        element,
        pos: 0,
        started: false,
    };
    let got: Vec<Item> = read_items("endless", source)
        .take(20_000)
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got.len(), 20_000);
    assert!(got.iter().all(|i| matches!(i, Item::Record { .. })));
}

#[test]
fn pretty_array_elements_are_located_at_their_first_line() {
    let pulses = [nist(1), nist(54609), nist(54610)];
    let jsons: Vec<String> = pulses.iter().map(to_nist_json).collect();
    let array = format!("\n[\n{}\n]\n", jsons.join(",\n"));
    let mut line = 3;
    let mut expected = Vec::new();
    for j in &jsons {
        expected.push(format!("in:{line}"));
        line += j.lines().count();
    }
    let got = summary(array.as_bytes());
    let locations: Vec<String> = got.iter().map(|(l, _)| l.clone()).collect();
    assert_eq!(locations, expected);
    let read: Vec<Pulse> = got.into_iter().map(|(_, p)| p.unwrap()).collect();
    assert_eq!(read, pulses);
}

#[test]
fn strings_with_brackets_quotes_and_escapes_do_not_confuse_the_framing() {
    let tricky = r#"[{"a": "}]\"[{", "b": ["]"]}, {"c": "\\"}, "x]", 12, true]"#;
    let got = items(tricky.as_bytes());
    let texts: Vec<String> = got
        .into_iter()
        .map(|i| match i {
            Item::Record { text, .. } => text,
            Item::Unreadable { message, .. } => panic!("{message}"),
        })
        .collect();
    assert_eq!(
        texts,
        [
            r#"{"a": "}]\"[{", "b": ["]"]}"#,
            r#"{"c": "\\"}"#,
            r#""x]""#,
            "12",
            "true"
        ]
    );
    for t in &texts {
        assert!(serde_json::from_str::<serde_json::Value>(t).is_ok(), "{t}");
    }
}

#[test]
fn an_oversized_element_is_refused_and_the_next_one_read() {
    let p = nist(1);
    let one = to_json_line(&p);
    let big = format!("{{\"x\": \"{}\"}}", "A".repeat(MAX_LINE + 10));
    let array = format!("[\n{one},\n{big},\n{one}\n]");
    let got = summary(array.as_bytes());
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].1.as_ref().unwrap(), &p);
    assert_eq!(got[1].0, "in:3");
    assert!(
        got[1].1.as_ref().unwrap_err().contains("longer than"),
        "{:?}",
        got[1].1
    );
    assert_eq!(got[2].0, "in:4");
    assert_eq!(got[2].1.as_ref().unwrap(), &p);
}

#[test]
fn framing_faults_are_reported_at_their_line_after_the_good_elements() {
    let one = to_json_line(&nist(1));
    let cases = [
        // (input, items before the fault, fault's line, words in the message)
        (format!("[{one},\n{one}"), 2, 2, "not closed"),
        (format!("[{one},\n{}", &one[..200]), 1, 2, "truncated"),
        (format!("[{one}\n{one}]"), 1, 2, "expected `,` or `]`"),
        (format!("[{one},]"), 1, 1, "empty array element"),
        (
            format!("[{one}]\n{one}"),
            1,
            2,
            "after the end of the array",
        ),
        (
            "{\n\"a\": 1}\nhello".to_string(),
            1,
            3,
            "expected a JSON object",
        ),
    ];
    for (input, good, line, words) in cases {
        let got = items(input.as_bytes());
        assert_eq!(got.len(), good + 1, "{input:.60}: {got:?}");
        assert!(
            got[..good].iter().all(|i| matches!(i, Item::Record { .. })),
            "{input:.60}"
        );
        match &got[good] {
            Item::Unreadable { location, message } => {
                assert_eq!(location.to_string(), format!("in:{line}"), "{input:.60}");
                assert!(message.contains(words), "{input:.60}: {message}");
            }
            other => panic!("{input:.60}: {other:?}"),
        }
    }
}

#[test]
fn objects_one_after_another_stream_with_their_lines() {
    let (a, b) = (nist(54609), nist(54610));
    let text = format!(
        "{}\n{}{}",
        to_nist_json(&a),
        to_nist_json(&b),
        to_nist_json(&a)
    );
    let got = summary(text.as_bytes());
    let first_lines = to_nist_json(&a).lines().count();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "in:1");
    assert_eq!(got[1].0, format!("in:{}", first_lines + 1));
    assert_eq!(got[1].1.as_ref().unwrap(), &b);
    assert_eq!(got[2].1.as_ref().unwrap(), &a);
}
