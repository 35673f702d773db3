//! A pulse as XML, in NIST's Beacon 2.0 namespace, for clients that ask with
//! `Accept: application/xml`. The element names and order are the JSON's; skip-list entries are
//! `<listValue uri="…" type="…">HEX</listValue>`.

use lavabeacon_format::pulse::Externals;
use lavabeacon_format::Pulse;
use std::fmt::Write;

/// NIST's Beacon 2.0 XML namespace.
pub const NAMESPACE: &str = "http://beacon.nist.gov/beacon/2.0/";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The pulse as an XML document; a test beacon's warning goes in a comment before it.
pub fn pulse_xml(p: &Pulse, test_warning: Option<&str>) -> String {
    let mut xml = String::with_capacity(3000);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
    if let Some(w) = test_warning {
        let _ = writeln!(xml, "<!-- {} -->", escape(w).replace("--", "- -"));
    }
    let _ = writeln!(xml, "<pulse xmlns=\"{NAMESPACE}\">");
    let mut element = |name: &str, value: &str| {
        let _ = writeln!(xml, "  <{name}>{}</{name}>", escape(value));
    };
    element("uri", &p.uri);
    element("version", &p.version);
    element("cipherSuite", &p.cipher_suite.to_string());
    element("period", &p.period.to_string());
    element("certificateId", &p.certificate_id.to_hex_lower());
    element("chainIndex", &p.chain_index.to_string());
    element("pulseIndex", &p.pulse_index.to_string());
    element("timeStamp", &p.time_stamp);
    element("localRandomValue", &p.local_random_value.to_hex_upper());
    let externals = match &p.external {
        Externals::One(e) => vec![*e],
        Externals::List(v) => v.clone(),
    };
    for e in externals {
        let _ = writeln!(
            xml,
            "  <external>\n    <sourceId>{}</sourceId>\n    <statusCode>{}</statusCode>\n    <value>{}</value>\n  </external>",
            e.source_id.to_hex_upper(),
            e.status_code,
            e.value.to_hex_upper()
        );
    }
    for lv in &p.list_values {
        let uri = lv
            .uri
            .as_deref()
            .map(|u| format!(" uri=\"{}\"", escape(u)))
            .unwrap_or_default();
        let _ = writeln!(
            xml,
            "  <listValue{uri} type=\"{}\">{}</listValue>",
            escape(&lv.kind),
            lv.value.to_hex_upper()
        );
    }
    let mut element = |name: &str, value: &str| {
        let _ = writeln!(xml, "  <{name}>{}</{name}>", escape(value));
    };
    element("precommitmentValue", &p.precommitment_value.to_hex_upper());
    element("statusCode", &p.status_code.to_string());
    element("signatureValue", &hex::encode_upper(&p.signature_value));
    element("outputValue", &p.output_value.to_hex_upper());
    xml.push_str("</pulse>\n");
    xml
}
