//! A long replay's position, written every so many pulses, so that a run that stops (or is
//! stopped) resumes where it was and still ends with the whole report.

use crate::log::entries::LogProgress;
use lavabeacon_format::{Problem, Report};
use std::path::Path;

/// What a checkpoint keeps: where to go on from, and what was found before.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Checkpoint {
    /// What was being replayed (a resumed run must replay the same thing).
    pub source: String,
    /// The time of the last pulse checked; the resumed run starts again at this pulse, so
    /// that the link from it to the next one is checked too.
    pub last_time_ms: i64,
    pub pulses: u64,
    pub manifests_checked: u64,
    pub problems: Vec<Problem>,
    /// With `--log-checkpoint`: where the log's entries stood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogProgress>,
}

impl Checkpoint {
    /// The checkpoint in `path` of a replay of `source`, if the file exists.
    pub fn load(path: &Path, source: &str) -> Result<Option<Checkpoint>, String> {
        if !path.exists() {
            return Ok(None);
        }
        match std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<Checkpoint>(&t).ok())
        {
            Some(c) if c.source == source => Ok(Some(c)),
            Some(_) => Err(format!(
                "{}: a checkpoint of another replay",
                path.display()
            )),
            None => Err(format!("{}: not a checkpoint", path.display())),
        }
    }

    /// Writes it to `path` through a temporary file renamed over it, so that a run stopped
    /// mid-write leaves the checkpoint before. A failed write only loses this checkpoint.
    pub fn save(&self, path: &Path) {
        let partial = path.with_extension("partial");
        let json = serde_json::to_vec(self).expect("checkpoint serialises");
        if std::fs::write(&partial, json).is_ok() {
            let _ = std::fs::rename(&partial, path);
        }
    }

    /// Adds what the runs before found to the report of the run that resumed from here.
    pub fn merge_into(self, report: &mut Report) {
        report.note(format!(
            "resumed from a checkpoint after {} pulses: signatures, links and skip links are counted for this run only, and skip values in the period it resumed in could not be recomputed",
            self.pulses
        ));
        // The first pulse of this run was the last of the one before: count it once.
        report.pulses += self.pulses.saturating_sub(1);
        report.manifests_checked += self.manifests_checked;
        report.problems = self.with_problems(std::mem::take(&mut report.problems));
    }

    /// The problems found before, then those of `later` that are new. The resumed run checks
    /// the checkpoint's last pulse again: what it found there is among the earlier problems.
    pub fn with_problems(&self, later: Vec<Problem>) -> Vec<Problem> {
        let same = |a: &Problem, b: &Problem| {
            (a.check, a.chain, a.pulse, &a.field, &a.message)
                == (b.check, b.chain, b.pulse, &b.field, &b.message)
        };
        let mut problems = self.problems.clone();
        for p in later {
            if !problems.iter().any(|e| same(e, &p)) {
                problems.push(p);
            }
        }
        problems
    }
}
