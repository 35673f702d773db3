//! What reading gives: items (the text of one pulse, or why it could not be cut out) with
//! their [`Location`], and the error for an input that cannot be read at all.

use std::io;
use std::sync::Arc;

/// The longest record accepted: a JSON Lines line, or one element of an array or sequence. A
/// NIST pulse is about 3 KiB; 1 MiB is not a pulse, and refusing it keeps memory bounded on
/// hostile input.
pub const MAX_LINE: usize = 1 << 20;

/// Where a pulse starts in the input: shown as `file:line`. The file name is shared, so a
/// location costs no allocation per pulse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The input's name (a path, or `<stdin>`).
    pub source: Arc<str>,
    /// The line, from 1.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// One element of the input: the text of one pulse, or why it could not be cut out.
#[derive(Debug, Clone)]
pub enum Item {
    /// The JSON text of one pulse (or envelope) and where it starts.
    Record {
        /// Where it starts.
        location: Location,
        /// The JSON text.
        text: String,
    },
    /// A part of the input that is not JSON; reading goes on after it where it can.
    Unreadable {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
}

/// An input that could not be read at all (exit status 2 in the CLI).
#[derive(Debug, thiserror::Error)]
#[error("{name}: {source}")]
pub struct InputError {
    /// The file name.
    pub name: String,
    /// The I/O error.
    pub source: io::Error,
}
