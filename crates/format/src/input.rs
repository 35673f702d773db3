//! Reading pulses from files in every form NIST-format beacons publish them: JSON Lines, a
//! JSON array, one pretty-printed object, or several objects one after another; each element
//! may be `{"pulse": {...}}` or a bare pulse. Records keep their `file:line` for messages.

use serde_json::value::RawValue;
use std::io::{self, BufRead, Read};
use std::sync::Arc;

/// The longest JSON Lines record accepted. A NIST pulse is about 3 KiB; a line of 1 MiB is not
/// a pulse, and refusing it keeps memory bounded on hostile input.
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

/// Reads all items from `reader`, which is named `name` in locations.
///
/// JSON Lines are streamed a line at a time; the other forms are read whole.
pub fn read_items<R: Read>(name: &str, reader: R) -> PulseItems<R> {
    PulseItems {
        name: Arc::from(name),
        reader: io::BufReader::with_capacity(1 << 16, reader),
        state: State::Start,
        line: 0,
        buf: Vec::new(),
        terminated: false,
        pending: std::collections::VecDeque::new(),
    }
}

enum State {
    Start,
    Lines,
    Done,
}

/// Iterator over the items of one input.
pub struct PulseItems<R: Read> {
    name: Arc<str>,
    reader: io::BufReader<R>,
    state: State,
    line: usize,
    buf: Vec<u8>,
    /// Whether the last line read ended with a newline (not at end of input).
    terminated: bool,
    pending: std::collections::VecDeque<Item>,
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

impl<R: Read> PulseItems<R> {
    fn location(&self, line: usize) -> Location {
        Location {
            source: self.name.clone(),
            line,
        }
    }

    fn err(&self, source: io::Error) -> InputError {
        InputError {
            name: self.name.to_string(),
            source,
        }
    }

    /// Reads one line into `buf` without the newline, keeping at most MAX_LINE bytes.
    fn read_line(&mut self) -> io::Result<LineRead> {
        self.buf.clear();
        self.terminated = false;
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = self.reader.fill_buf()?;
            if avail.is_empty() {
                return Ok(if !any {
                    LineRead::Eof
                } else if too_long {
                    LineRead::TooLong
                } else {
                    LineRead::Line
                });
            }
            any = true;
            let (chunk, used, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !too_long {
                if self.buf.len() + chunk.len() > MAX_LINE {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if end {
                self.terminated = true;
                return Ok(if too_long {
                    LineRead::TooLong
                } else {
                    LineRead::Line
                });
            }
        }
    }

    fn line_item(&mut self) -> Option<Item> {
        let location = self.location(self.line);
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        // Hand the line's buffer over instead of copying it: lines are a few KiB each.
        let next = Vec::with_capacity(self.buf.len() + 64);
        match String::from_utf8(std::mem::replace(&mut self.buf, next)) {
            Ok(text) => Some(Item::Record { location, text }),
            Err(e) => Some(Item::Unreadable {
                location,
                message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            }),
        }
    }

    /// Reads the rest of the input as one document starting with `first` (already read).
    fn read_document(&mut self, first_line: usize) -> Result<(), InputError> {
        let mut text = std::mem::take(&mut self.buf);
        if self.terminated {
            text.push(b'\n');
        }
        self.reader
            .read_to_end(&mut text)
            .map_err(|e| self.err(e))?;
        let text = match String::from_utf8(text) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = first_line + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
                self.pending.push_back(Item::Unreadable {
                    location: self.location(line),
                    message: "not UTF-8 text".into(),
                });
                return Ok(());
            }
        };
        let mut lines = LineCounter::new(&text, first_line);
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            match serde_json::from_str::<Vec<&RawValue>>(&text) {
                Ok(elements) => {
                    for el in elements {
                        let offset = el.get().as_ptr() as usize - text.as_ptr() as usize;
                        let line = lines.line_at(offset);
                        self.pending.push_back(Item::Record {
                            location: self.location(line),
                            text: el.get().to_string(),
                        });
                    }
                }
                Err(e) => self.pending.push_back(Item::Unreadable {
                    location: self.location(first_line + e.line() - 1),
                    message: format!("JSON array: {}", short_json_error(&e)),
                }),
            }
        } else {
            let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<&RawValue>();
            loop {
                match stream.next() {
                    None => break,
                    Some(Ok(v)) => {
                        let offset = v.get().as_ptr() as usize - text.as_ptr() as usize;
                        let line = lines.line_at(offset);
                        self.pending.push_back(Item::Record {
                            location: self.location(line),
                            text: v.get().to_string(),
                        });
                    }
                    Some(Err(e)) => {
                        self.pending.push_back(Item::Unreadable {
                            location: self.location(first_line + e.line() - 1),
                            message: short_json_error(&e),
                        });
                        break; // after a syntax error the rest cannot be framed reliably
                    }
                }
            }
        }
        Ok(())
    }
}

fn short_json_error(e: &serde_json::Error) -> String {
    let what = if e.is_eof() {
        "truncated JSON"
    } else {
        "not valid JSON"
    };
    let msg = e.to_string();
    format!("{what}: {}", msg.split(" at line ").next().unwrap_or(&msg))
}

/// Maps byte offsets (visited in increasing order) to 1-based line numbers.
struct LineCounter<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str, first_line: usize) -> Self {
        LineCounter {
            text: text.as_bytes(),
            pos: 0,
            line: first_line,
        }
    }
    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset >= self.pos {
            self.line += self.text[self.pos..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.pos = offset;
        }
        self.line
    }
}

impl<R: Read> Iterator for PulseItems<R> {
    type Item = Result<Item, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            match self.state {
                State::Done => return None,
                State::Start | State::Lines => {
                    let read = match self.read_line() {
                        Ok(r) => r,
                        Err(e) => {
                            self.state = State::Done;
                            return Some(Err(self.err(e)));
                        }
                    };
                    self.line += 1;
                    match read {
                        LineRead::Eof => self.state = State::Done,
                        LineRead::TooLong => {
                            self.state = State::Lines;
                            return Some(Ok(Item::Unreadable {
                                location: self.location(self.line),
                                message: format!("line longer than {MAX_LINE} bytes: not a pulse"),
                            }));
                        }
                        LineRead::Line => {
                            if matches!(self.state, State::Start) {
                                let t = String::from_utf8_lossy(&self.buf);
                                let t = t.trim();
                                if t.is_empty() {
                                    self.line_item();
                                    continue; // leading blank lines
                                }
                                // The first line decides the form: a complete object on it
                                // means JSON Lines; anything else is read as one document.
                                let complete = t.starts_with('{')
                                    && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok();
                                if !complete {
                                    self.state = State::Done;
                                    let line = self.line;
                                    if let Err(e) = self.read_document(line) {
                                        return Some(Err(e));
                                    }
                                    continue;
                                }
                                self.state = State::Lines;
                            }
                            if let Some(item) = self.line_item() {
                                return Some(Ok(item));
                            }
                        }
                    }
                }
            }
        }
    }
}
