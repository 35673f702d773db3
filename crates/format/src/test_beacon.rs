//! Test beacons: the one place that decides what makes a beacon a test beacon and how it says so.
//!
//! A beacon whose operator can know its values in advance (a software key anyone with the file
//! can sign with, a development token's TEST certificate, the synthetic camera) must say so with
//! everything it serves. The engine decides it from what it runs with, an API node from what the
//! store shows (the newest pulse's certificate and manifest); both go through [`TestMark`] so
//! the two can never disagree on the rule or on the words.

use crate::cert::TEST_ONLY;

/// Names of the sources that make a beacon a test beacon (they produce no entropy worth the
/// name: the synthetic camera renders a deterministic scene plus OS noise).
pub const TEST_SOURCES: &[&str] = &["synthetic-camera"];

/// One reason a beacon is a test beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TestMark {
    /// The pulses are signed with a software key (from a file, not an HSM).
    SoftwareKey,
    /// The signing certificate says TEST ONLY (the development token's).
    TestCertificate,
    /// A source that makes no real entropy ([`TEST_SOURCES`]).
    SyntheticCamera,
}

impl TestMark {
    /// The words for this reason in the warning.
    pub fn describe(self) -> &'static str {
        match self {
            TestMark::SoftwareKey => "software signing key",
            TestMark::TestCertificate => "TEST certificate",
            TestMark::SyntheticCamera => "synthetic camera",
        }
    }
}

/// Whether a source of this name makes the beacon a test beacon.
pub fn is_test_source(name: &str) -> bool {
    TEST_SOURCES.contains(&name)
}

/// Whether a certificate subject marks its key as for tests only.
pub fn is_test_subject(subject: &str) -> bool {
    subject.contains(TEST_ONLY)
}

/// The reasons, in one fixed order and each once, as the warning shows them: `None` for a
/// beacon that is not a test beacon.
pub fn reasons(marks: impl IntoIterator<Item = TestMark>) -> Option<String> {
    let mut marks: Vec<TestMark> = marks.into_iter().collect();
    marks.sort();
    marks.dedup();
    (!marks.is_empty()).then(|| {
        marks
            .iter()
            .map(|m| m.describe())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// What a published pulse shows: a TEST certificate (by its subject) and test sources in its
/// manifest (JSON as stored; an unreadable manifest shows nothing).
pub fn marks_of_published(
    certificate_subject: Option<&str>,
    manifest_json: Option<&str>,
) -> Vec<TestMark> {
    let mut marks = Vec::new();
    if certificate_subject.is_some_and(is_test_subject) {
        marks.push(TestMark::TestCertificate);
    }
    // Read as loosely as an auditor would: a manifest of a later version with more fields still
    // names its sources.
    let names = manifest_json
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|m| m.get("sources").and_then(|s| s.as_array()).cloned())
        .unwrap_or_default();
    if names.iter().any(|s| {
        s.get("name")
            .and_then(|n| n.as_str())
            .is_some_and(is_test_source)
    }) {
        marks.push(TestMark::SyntheticCamera);
    }
    marks
}

/// The warning a test beacon gives with everything it serves (a header, a member of every pulse
/// answer, its log when it starts).
pub fn warning(why: &str) -> String {
    format!("TEST BEACON ({why}): its pulses are not unpredictable to the operator and must not be used for anything that matters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_in_one_order_each_once() {
        assert_eq!(reasons([]), None);
        assert_eq!(
            reasons([
                TestMark::SyntheticCamera,
                TestMark::TestCertificate,
                TestMark::SyntheticCamera
            ])
            .unwrap(),
            "TEST certificate, synthetic camera"
        );
    }

    #[test]
    fn a_published_pulse_shows_its_test_certificate_and_synthetic_sources() {
        use crate::manifest::{Manifest, SourceEntry};
        let source = |name: &str| SourceEntry {
            name: name.into(),
            status: "ok".into(),
            credited_bits: 0,
            digest: None,
        };
        let manifest = |names: &[&str]| {
            serde_json::to_string(&Manifest {
                version: 1,
                chain_index: 1,
                pulse_index: 1,
                sources: names.iter().map(|n| source(n)).collect(),
                external: None,
            })
            .unwrap()
        };
        let subject = format!("CN=dev, O={TEST_ONLY}");
        let test = manifest(&["os", "synthetic-camera"]);
        assert_eq!(
            marks_of_published(Some(&subject), Some(&test)),
            [TestMark::TestCertificate, TestMark::SyntheticCamera]
        );
        let real = manifest(&["os", "camera"]);
        assert!(marks_of_published(Some("CN=beacon"), Some(&real)).is_empty());
        assert!(marks_of_published(None, Some("not json")).is_empty());
    }

    #[test]
    fn the_warning_names_its_reasons() {
        let w = warning("synthetic camera");
        assert!(w.starts_with("TEST BEACON (synthetic camera): "), "{w}");
    }
}
