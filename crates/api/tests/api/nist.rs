//! NIST's schema, `beacon-2.0.xsd`: every XML answer (a pulse, several, a skip list, a chain,
//! errors) validated against it with `xmllint`, offline (`tests/vectors/nist-schema/`), and the
//! routes it lists that lavabeacon added: the first pulse of the last chain, external sources'
//! descriptions, the chain between two times.

use super::*;
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use std::path::PathBuf;

/// NIST's schema and the offline copy of what it imports.
fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/nist-schema")
}

/// Whether `xmllint` can run here. Under CI=true it must (scripts/test.sh installs Debian's
/// libxml2-utils); elsewhere a test without it says so and checks nothing more.
fn xmllint_present() -> bool {
    let found = std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and xmllint is missing (Debian: libxml2-utils)"
        );
        eprintln!("xmllint not installed: XML answers not validated against NIST's schema");
    }
    found
}

/// `xml` validated against beacon-2.0.xsd: `Err` with xmllint's complaint.
fn validate(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("answer.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .env("XML_CATALOG_FILES", schema_dir().join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(schema_dir().join("beacon-2.0.xsd"))
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn xml_get(path: &str) -> Resp {
    request("GET", path, &[("Accept", "application/xml")])
}

/// The answer at `path` in XML: status `status`, NIST's media type, valid against the schema.
fn valid_xml(method: &str, path: &str, status: u16) -> Resp {
    let r = request(method, path, &[("Accept", "application/xml")]);
    assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/xml"),
        "{method} {path}"
    );
    if let Err(e) = validate(&r.body) {
        panic!(
            "{method} {path} does not validate against beacon-2.0.xsd:\n{e}\n{}",
            r.body
        );
    }
    r
}

/// The `<pulse>` elements of an XML answer, each as its text from after `<pulse` (so its
/// attributes first) to before `</pulse>`.
fn pulse_elements(xml: &str) -> Vec<&str> {
    xml.split("</pulse>")
        .filter_map(|s| {
            let at = s.rfind("<pulse>").or_else(|| s.rfind("<pulse "))?;
            Some(&s[at + "<pulse".len()..])
        })
        .collect()
}

/// Every field of `p` is in the `<pulse>` element `xml`, as NIST's schema names it.
fn same_pulse(xml: &str, p: &Pulse) {
    let e = p.external.as_slice()[0];
    for (name, value) in [
        ("uri", p.uri.clone()),
        ("version", p.version.clone()),
        ("cipherSuite", p.cipher_suite.to_string()),
        ("period", p.period.to_string()),
        ("certificateId", p.certificate_id.to_hex_lower()),
        ("chainIndex", p.chain_index.to_string()),
        ("pulseIndex", p.pulse_index.to_string()),
        ("timeStamp", p.time_stamp.clone()),
        ("localRandomValue", p.local_random_value.to_hex_upper()),
        ("sourceId", e.source_id.to_hex_upper()),
        ("value", e.value.to_hex_upper()),
        ("precommitmentValue", p.precommitment_value.to_hex_upper()),
        ("statusCode", p.status_code.to_string()),
        ("signatureValue", hex::encode_upper(&p.signature_value)),
        ("outputValue", p.output_value.to_hex_upper()),
    ] {
        assert!(
            xml.contains(&format!("<{name}>{value}</{name}>")),
            "{name} of pulse {} not in {xml}",
            p.pulse_index
        );
    }
    for lv in &p.list_values {
        assert!(xml.contains(&format!(
            "type=\"{}\">{}</listValue>",
            lv.kind,
            lv.value.to_hex_upper()
        )));
    }
}

fn t(i: usize) -> i64 {
    world().chain[i - 1].time_ms().unwrap()
}

#[test]
fn every_pulse_answer_in_xml_is_a_response_valid_against_nists_schema() {
    if !xmllint_present() {
        return;
    }
    let w = world();
    let newest = &w.chain[PAST as usize - 1];
    for (path, pulse) in [
        ("/beacon/2.0/pulse/last".to_string(), newest),
        ("/beacon/last".into(), newest),
        ("/beacon/2.0/chain/last/pulse/last".into(), newest),
        ("/beacon/2.0/chain/1/pulse/last".into(), newest),
        ("/beacon/2.0/chain/last/pulse/1".into(), &w.chain[0]),
        ("/beacon/2.0/chain/1/pulse/first".into(), &w.chain[0]),
        ("/beacon/2.0/chain/1/pulse/100".into(), &w.chain[99]),
        (format!("/beacon/2.0/pulse/time/{}", t(50)), &w.chain[49]),
        (
            format!("/beacon/2.0/pulse/time/next/{}", t(50)),
            &w.chain[50],
        ),
        (
            format!("/beacon/2.0/pulse/time/previous/{}", t(50)),
            &w.chain[48],
        ),
        (format!("/beacon/{}", t(60) - 1), &w.chain[59]),
    ] {
        let r = valid_xml("GET", &path, 200);
        let pulses = pulse_elements(&r.body);
        assert_eq!(pulses.len(), 1, "{path}");
        same_pulse(pulses[0], pulse);
        assert!(
            r.body.contains("<!-- "),
            "{path}: a test beacon says so in a comment"
        );
    }
    // Several pulses that are not a chain: the bulk route.
    let path = format!("/beacon/2.0/pulses?from={}&to={}", t(10), t(14));
    let r = valid_xml("GET", &path, 200);
    assert_eq!(r.header("Vary"), Some("Accept"));
    let pulses = pulse_elements(&r.body);
    assert_eq!(pulses.len(), 5);
    for (i, xml) in pulses.iter().enumerate() {
        same_pulse(xml, &w.chain[9 + i]);
    }
}

#[test]
fn skip_lists_and_chains_in_xml_are_valid_and_name_the_value_that_links_each_pulse() {
    if !xmllint_present() {
        return;
    }
    let w = world();
    for path in [
        "/beacon/2.0/skipList/1/1/290".to_string(),
        format!("/beacon/2.0/skipList/{}/{}", t(1), t(290)),
    ] {
        let r = valid_xml("GET", &path, 200);
        assert!(r.body.contains("<skipList>"), "{path}");
        let json: Vec<Pulse> = serde_json::from_str::<Vec<serde_json::Value>>(&get(&path).body)
            .unwrap()
            .iter()
            .map(|v| lavabeacon_format::json::parse_pulse(&v.to_string()).unwrap())
            .collect();
        let pulses = pulse_elements(&r.body);
        assert_eq!(pulses.len(), json.len(), "{path}");
        assert!(pulses[0].starts_with(">"), "the first has no type");
        for (i, xml) in pulses.iter().enumerate().skip(1) {
            let kind = json[i].linked_by(&json[i - 1]).unwrap();
            assert!(xml.starts_with(&format!(" type=\"{kind}\">")), "{xml}");
            same_pulse(xml, &json[i]);
        }
        assert!(
            pulses.iter().any(|p| !p.starts_with(" type=\"previous\"")),
            "a skip path over 290 minutes hops by hour"
        );
    }
    let path = format!("/beacon/2.0/chain/time/{}/{}/previous", t(10), t(20));
    let r = valid_xml("GET", &path, 200);
    assert!(r.body.contains("<chain>"));
    let pulses = pulse_elements(&r.body);
    assert_eq!(pulses.len(), 11);
    for (i, xml) in pulses.iter().enumerate() {
        let kind = if i == 0 { ">" } else { " type=\"previous\">" };
        assert!(xml.starts_with(kind), "{xml}");
        same_pulse(xml, &w.chain[9 + i]);
    }
}

#[test]
fn errors_in_xml_are_nists_error_element_with_the_status_as_code() {
    if !xmllint_present() {
        return;
    }
    let long = format!("/beacon/2.0/pulse/last?x={}", "a".repeat(9000));
    let future = now_ms() + 3_600_000;
    for (method, path, status) in [
        ("GET", "/beacon/2.0/chain/1/pulse/100000".to_string(), 404),
        ("GET", "/beacon/2.0/chain/1/pulse/abc".into(), 400),
        ("GET", "/beacon/2.0/chain/last/pulse/2".into(), 400),
        ("GET", "/no/such/path".into(), 404),
        ("POST", "/beacon/2.0/pulse/last".into(), 405),
        ("GET", format!("/beacon/{future}"), 425),
        ("GET", "/beacon/2.0/pulses?from=1&to=2".into(), 404),
        ("GET", "/beacon/2.0/pulses?from=1&from=2".into(), 400),
        ("GET", "/beacon/2.0/skipList/1/20/10".into(), 404),
        ("GET", "/beacon/2.0/externalSource/12".into(), 400),
        (
            "GET",
            format!("/beacon/2.0/chain/time/{}/{}/previous", t(1), t(290)),
            400,
        ),
        ("GET", long, 414),
    ] {
        let r = valid_xml(method, &path, status);
        assert!(
            r.body.contains(&format!("<code>{status}</code>")),
            "{path}: {}",
            r.body
        );
        assert!(r.body.contains("<description xml:lang=\"en\">"));
        // The same error in JSON for everyone else; but an empty window of the bulk route is
        // an empty JSON Lines answer (NIST's XML has no empty response).
        if path.contains("pulses?from=1&to=2") {
            assert_eq!(request(method, &path, &[]).status, 200);
            continue;
        }
        let json = request(method, &path, &[]);
        assert_eq!(json.status, status);
        assert_eq!(json.header("Content-Type"), Some("application/json"));
        let message = json.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        let escaped = message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;");
        assert!(r.body.contains(&escaped), "{path}: {message} in {}", r.body);
    }
}

#[test]
fn the_schema_check_fails_on_xml_that_breaks_the_schema() {
    if !xmllint_present() {
        return;
    }
    let good = xml_get("/beacon/2.0/chain/1/pulse/100").body;
    assert_eq!(validate(&good), Ok(()));
    for (what, bad) in [
        (
            "the namespace lavabeacon used before",
            good.replace(
                "http://csrc.nist.gov/ns/beacon/pulse/2.0",
                "http://beacon.nist.gov/beacon/2.0/",
            ),
        ),
        (
            "no outputValue",
            good.split("    <outputValue>").next().unwrap().to_string()
                + "  </pulse>\n</response>\n",
        ),
        (
            "a bare pulse, not in a response",
            good.replace("<response xmlns", "<pulse xmlns")
                .replace("</response>", "</pulse>")
                .replacen("  <pulse>\n", "", 1)
                .replacen("  </pulse>\n", "", 1),
        ),
        (
            "a short hex value",
            good.replacen("<outputValue>", "<outputValue>AB", 1),
        ),
    ] {
        assert!(validate(&bad).is_err(), "{what} must not validate:\n{bad}");
    }
}

#[test]
fn the_chain_between_two_times_is_every_pulse_linked_by_previous_and_verifies() {
    let w = world();
    let path = format!("/beacon/2.0/chain/time/{}/{}/previous", t(5), t(205));
    let r = get(&path);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("Vary"), Some("Accept"));
    let chain: Vec<Pulse> = serde_json::from_str::<Vec<serde_json::Value>>(&r.body)
        .unwrap()
        .iter()
        .map(|v| lavabeacon_format::json::parse_pulse(&v.to_string()).unwrap())
        .collect();
    assert_eq!(chain, w.chain[4..205]);
    let report = Verifier::new(&certs(), Options::default()).verify_pulses(&chain);
    assert!(report.passed(), "{}", report.render_text());
    assert_eq!(report.links_checked, 200);

    // Times between pulses: the pulse at or after t1, the pulse at or before t2.
    let r = get(&format!(
        "/beacon/2.0/chain/time/{}/{}/previous",
        t(5) - 1,
        t(8) + 1
    ));
    let chain: Vec<serde_json::Value> = serde_json::from_str(&r.body).unwrap();
    let indexes: Vec<u64> = chain
        .iter()
        .map(|p| p["pulseIndex"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [5, 6, 7, 8]);
    // One pulse is a chain of one.
    let r = get(&format!(
        "/beacon/2.0/chain/time/{}/{}/previous",
        t(9),
        t(9)
    ));
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&r.body)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_chain_longer_than_the_servers_limit_is_refused_before_anything_is_read() {
    // This world's limit is 250 pulses.
    let ok = get(&format!(
        "/beacon/2.0/chain/time/{}/{}/previous",
        t(1),
        t(250)
    ));
    assert_eq!(ok.status, 200);
    let r = get(&format!(
        "/beacon/2.0/chain/time/{}/{}/previous",
        t(1),
        t(251)
    ));
    assert_eq!(r.status, 400);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("251 pulses") && message.contains("(250)"),
        "{message}"
    );
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    // Backwards, and before the first pulse.
    assert_eq!(
        get(&format!(
            "/beacon/2.0/chain/time/{}/{}/previous",
            t(9),
            t(8)
        ))
        .status,
        404
    );
    assert_eq!(get("/beacon/2.0/chain/time/1/2/previous").status, 404);
    assert_eq!(get("/beacon/2.0/chain/time/x/2/previous").status, 400);
}

#[test]
fn an_external_sources_description_is_served_by_its_sha512() {
    let w = world();
    let description =
        "beacon A: https://a.example/beacon/2.0/pulse/last\nSHA-512 of its outputValue\n";
    let store = w.store.clone();
    let id =
        w.rt.block_on(async move { store.put_external_source(description).await.unwrap() });
    assert_eq!(id, sha512(&[description.as_bytes()]));
    for hex in [id.to_hex_upper(), id.to_hex_lower()] {
        let r = get(&format!("/beacon/2.0/externalSource/{hex}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, description);
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            r.header("Cache-Control"),
            Some("public, max-age=31536000, immutable")
        );
    }
    let zero = get(&format!("/beacon/2.0/externalSource/{}", "0".repeat(128)));
    assert_eq!(zero.status, 404);
    assert!(zero.body.contains("all zeros"), "{}", zero.body);
    assert_eq!(get("/beacon/2.0/externalSource/xyz").status, 400);
}

fn get_from(w: &World, path: &str) -> Resp {
    request_at(&w.base, "GET", path, &[])
}

/// A world of its own, one pulse a second: chain 1, then chain 2 started after it.
#[test]
fn the_first_pulse_of_the_last_chain_follows_a_new_chain() {
    let w = new_world(1000, 5, 0);
    let first = get_from(&w, "/beacon/2.0/chain/last/pulse/1");
    assert_eq!(first.status, 200);
    assert_eq!(pulse_of(&first), w.chain[0]);
    assert!(
        first
            .header("Cache-Control")
            .is_some_and(|c| c.starts_with("public, max-age=") && !c.contains("immutable")),
        "it changes when a new chain starts: {:?}",
        first.header("Cache-Control")
    );

    // Chain 2 starts two seconds after chain 1's last pulse, as after a restart.
    let last1 = w.chain[4].time_ms().unwrap();
    let mut b = ChainBuilder::new_chain(ChainParams::new("http://beacon.test/beacon/2.0", 2, 1000));
    let mut chain2 = Vec::new();
    for i in 1..=3u64 {
        let t = last1 + 1000 * (i as i64 + 1);
        let next = NextPulse::new(t, lrv(100 + i), precommitment(&lrv(101 + i)));
        chain2.push(b.next(next, w.signer.as_ref()).unwrap());
    }
    let (store, to_store) = (w.store.clone(), chain2.clone());
    w.rt.block_on(async move {
        for p in &to_store {
            store.append(p, None, None).await.unwrap();
        }
    });
    let last2 = chain2[2].time_ms().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(
        (last2 - now_ms()).max(0) as u64 + 100,
    ));
    // The cached newest pulse is rechecked at most every 20 ms.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let first = get_from(&w, "/beacon/2.0/chain/last/pulse/1");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(pulse_of(&first), chain2[0]);
    assert_eq!(pulse_of(&first).status_code, 1);
    assert_eq!(
        pulse_of(&get_from(&w, "/beacon/2.0/chain/last/pulse/last")),
        chain2[2]
    );
    // No chain links pulses of two chains.
    let across = get_from(
        &w,
        &format!(
            "/beacon/2.0/chain/time/{}/{last2}/previous",
            w.chain[0].time_ms().unwrap()
        ),
    );
    assert_eq!(across.status, 404, "{}", across.body);
    assert!(across.body.contains("in one chain"), "{}", across.body);
    if xmllint_present() {
        let r = request_at(
            &w.base,
            "GET",
            "/beacon/2.0/chain/last/pulse/1",
            &[("Accept", "application/xml")],
        );
        assert_eq!(validate(&r.body), Ok(()));
        same_pulse(pulse_elements(&r.body)[0], &chain2[0]);
    }
}
