//! The XML forms of NIST's schema `beacon-2.0.xsd` (namespace
//! `http://csrc.nist.gov/ns/beacon/pulse/2.0`), for clients that ask with `Accept:
//! application/xml`: every answer is a `<response>` holding one `<pulse>` or several, a
//! `<chain>` (every pulse between two, linked by `previous`), a `<skipList>` (pulses each
//! naming the one before in the listValue its `type` attribute names) or an `<error>` (`<code>`
//! and `<description xml:lang="en">`). A test beacon's warning is a comment before the
//! `<response>`. The copy of the schema the tests validate against is in
//! `tests/vectors/nist-schema/`.
//!
//! Element names and order are the JSON's (the signing order); hex is written as the JSON
//! writes it. A pulse with more than one external value (other beacons' formats) writes one
//! `<external>` each, which NIST's schema (at most one) does not allow; lavabeacon never makes
//! such a pulse.

use lavabeacon_format::Pulse;
use std::fmt::Write;

/// NIST's Beacon 2.0 XML namespace (the schema's target namespace).
pub const NAMESPACE: &str = "http://csrc.nist.gov/ns/beacon/pulse/2.0";

/// The media type of every XML answer.
pub const MEDIA_TYPE: &str = "application/xml";

/// The sequences of pulses a `<response>` can hold besides single pulses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `<chain>`: every pulse from one to another, each linked to the one before by
    /// `previous`.
    Chain,
    /// `<skipList>`: pulses each linked to the one before by some listValue.
    SkipList,
}

impl List {
    fn element(self) -> &'static str {
        match self {
            List::Chain => "chain",
            List::SkipList => "skipList",
        }
    }

    /// The opening tag, on its own line.
    pub fn open(self) -> String {
        format!("  <{}>\n", self.element())
    }

    /// The closing tag, on its own line.
    pub fn close(self) -> String {
        format!("  </{}>\n", self.element())
    }
}

/// Text and attribute values with `&`, `<`, `>` and quotes escaped (right for HTML too: the
/// web page uses it).
pub(crate) fn escape(text: &str) -> String {
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

/// The start of every XML answer: the declaration, a test beacon's warning as a comment, and
/// `<response xmlns=…>`.
pub fn open(test_warning: Option<&str>) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
    if let Some(w) = test_warning {
        // A comment may not hold "--" nor end with "-"; it is not parsed for entities, so
        // nothing is escaped in it.
        let mut text = w.to_string();
        while text.contains("--") {
            text = text.replace("--", "- -");
        }
        let _ = writeln!(xml, "<!-- {} -->", text.trim_end_matches('-'));
    }
    let _ = writeln!(xml, "<response xmlns=\"{NAMESPACE}\">");
    xml
}

/// The end of every XML answer.
pub const CLOSE: &str = "</response>\n";

/// Writes `p` as a `<pulse>` element; `link` is its `type` attribute inside a `<chain>` or
/// `<skipList>` (the listValue that names the pulse before it).
pub fn push_pulse(xml: &mut String, p: &Pulse, link: Option<&str>, nested: bool) {
    let pad = if nested { "    " } else { "  " };
    match link {
        Some(kind) => {
            let _ = writeln!(xml, "{pad}<pulse type=\"{}\">", escape(kind));
        }
        None => {
            let _ = writeln!(xml, "{pad}<pulse>");
        }
    }
    let element = |xml: &mut String, name: &str, value: &str| {
        let _ = writeln!(xml, "{pad}  <{name}>{}</{name}>", escape(value));
    };
    element(xml, "uri", &p.uri);
    element(xml, "version", &p.version);
    element(xml, "cipherSuite", &p.cipher_suite.to_string());
    element(xml, "period", &p.period.to_string());
    element(xml, "certificateId", &p.certificate_id.to_hex_lower());
    element(xml, "chainIndex", &p.chain_index.to_string());
    element(xml, "pulseIndex", &p.pulse_index.to_string());
    element(xml, "timeStamp", &p.time_stamp);
    element(
        xml,
        "localRandomValue",
        &p.local_random_value.to_hex_upper(),
    );
    for e in p.external.as_slice() {
        let _ = writeln!(
            xml,
            "{pad}  <external>\n{pad}    <sourceId>{}</sourceId>\n{pad}    <statusCode>{}</statusCode>\n{pad}    <value>{}</value>\n{pad}  </external>",
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
            "{pad}  <listValue{uri} type=\"{}\">{}</listValue>",
            escape(&lv.kind),
            lv.value.to_hex_upper()
        );
    }
    element(
        xml,
        "precommitmentValue",
        &p.precommitment_value.to_hex_upper(),
    );
    element(xml, "statusCode", &p.status_code.to_string());
    element(
        xml,
        "signatureValue",
        &hex::encode_upper(&p.signature_value),
    );
    element(xml, "outputValue", &p.output_value.to_hex_upper());
    let _ = writeln!(xml, "{pad}</pulse>");
}

/// One pulse: `<response><pulse>…</pulse></response>`.
pub fn pulse_xml(p: &Pulse, test_warning: Option<&str>) -> String {
    let mut xml = open(test_warning);
    xml.reserve(3000);
    push_pulse(&mut xml, p, None, false);
    xml.push_str(CLOSE);
    xml
}

/// A skip path (oldest first) as `<response><skipList>`, each pulse after the first with the
/// `type` of the listValue that names the one before it.
pub fn skip_list_xml(path: &[Pulse], test_warning: Option<&str>) -> String {
    let mut xml = open(test_warning);
    xml.reserve(3000 * path.len());
    xml.push_str(&List::SkipList.open());
    for (i, p) in path.iter().enumerate() {
        let link = i.checked_sub(1).and_then(|j| p.linked_by(&path[j]));
        push_pulse(&mut xml, p, link, true);
    }
    xml.push_str(&List::SkipList.close());
    xml.push_str(CLOSE);
    xml
}

/// An error: `<response><error><code>STATUS</code><description xml:lang="en">…`.
pub fn error_xml(status: u16, message: &str) -> String {
    let mut xml = open(None);
    let _ = write!(
        xml,
        "  <error>\n    <code>{status}</code>\n    <description xml:lang=\"en\">{}</description>\n  </error>\n{CLOSE}",
        escape(message)
    );
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_with_double_hyphens_stays_one_well_formed_comment() {
        let xml = open(Some("a -- b --- c & d -"));
        assert!(xml.contains("<!-- a - - b - - - c & d  -->"), "{xml}");
        let comment = xml
            .split("<!--")
            .nth(1)
            .unwrap()
            .split("-->")
            .next()
            .unwrap();
        assert!(!comment.contains("--"), "{comment}");
    }

    #[test]
    fn an_error_message_is_escaped_text() {
        let xml = error_xml(404, "no <pulse> & \"that\"");
        assert!(
            xml.contains("no &lt;pulse&gt; &amp; &quot;that&quot;"),
            "{xml}"
        );
        assert!(xml.contains("<code>404</code>"));
        assert!(xml.ends_with(CLOSE));
    }
}
