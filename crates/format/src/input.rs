//! Reading pulses from files in every form NIST-format beacons publish them: JSON Lines, a
//! JSON array, one pretty-printed object, or several objects one after another; each element
//! may be `{"pulse": {...}}` or a bare pulse. Records keep their `file:line` for messages.
//!
//! Every form streams: JSON Lines a line at a time, arrays and object sequences a value at a
//! time (a small splitter that tracks strings and nesting, so a compact array of a million
//! pulses on one line takes no more memory than one pulse). No value is kept longer than
//! [`MAX_LINE`] bytes.

use std::io::{self, BufRead, Read};
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

/// Reads all items from `reader`, which is named `name` in locations.
///
/// Every form is streamed: memory stays flat however large the input.
pub fn read_items<R: Read>(name: &str, reader: R) -> PulseItems<R> {
    PulseItems {
        name: Arc::from(name),
        src: Source {
            prefix: Vec::new(),
            pos: 0,
            reader: io::BufReader::with_capacity(1 << 16, reader),
        },
        state: State::Start,
        line: 0,
        buf: Vec::new(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet: the first bytes decide the form.
    Start,
    /// JSON Lines: one record a line.
    Lines,
    /// Inside a top-level array, before the first element (`[` read).
    ArrayOpen,
    /// Inside a top-level array, after an element.
    ArrayAfterValue,
    /// Inside a top-level array, after a comma.
    ArrayAfterComma,
    /// After the top-level array's `]`: only whitespace may follow.
    ArrayClosed,
    /// Objects one after another, each on as many lines as it likes.
    Sequence,
    Done,
}

/// The bytes of the input: first what was read ahead to decide the form, then the reader.
struct Source<R: Read> {
    prefix: Vec<u8>,
    pos: usize,
    reader: io::BufReader<R>,
}

impl<R: Read> Source<R> {
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.prefix.len() {
            return Ok(&self.prefix[self.pos..]);
        }
        self.reader.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.pos < self.prefix.len() {
            self.pos += n;
            if self.pos >= self.prefix.len() {
                // Give the read-ahead back: it may have been a long line.
                self.prefix = Vec::new();
                self.pos = 0;
            }
        } else {
            self.reader.consume(n);
        }
    }
}

/// Iterator over the items of one input.
pub struct PulseItems<R: Read> {
    name: Arc<str>,
    src: Source<R>,
    state: State,
    /// In JSON Lines: the line just read. Elsewhere: newlines consumed so far (the current
    /// line is one more).
    line: usize,
    buf: Vec<u8>,
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// How one framed value ended.
enum Framed {
    /// Its text (at most MAX_LINE bytes).
    Whole,
    /// Longer than MAX_LINE: skipped, not kept.
    TooLong,
    /// The input ended inside it.
    Truncated,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether a byte ends a number, `true`, `false` or `null`.
fn ends_scalar(b: u8) -> bool {
    is_ws(b) || matches!(b, b',' | b']' | b'}' | b'[' | b'{' | b'"')
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
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = self.src.fill()?;
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
            self.src.consume(used);
            if end {
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

    /// Skips JSON whitespace (and a byte-order mark at the very start), counting newlines;
    /// returns the next byte without consuming it, or None at the end of the input.
    fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            let avail = self.src.fill()?;
            if avail.is_empty() {
                return Ok(None);
            }
            let n = avail.iter().position(|b| !is_ws(*b)).unwrap_or(avail.len());
            let next = avail.get(n).copied();
            self.line += memchr::memchr_iter(b'\n', &avail[..n]).count();
            self.src.consume(n);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Consumes one byte already seen by [`Self::skip_ws`] (never a newline).
    fn skip_byte(&mut self) {
        self.src.consume(1);
    }

    /// Cuts out the JSON value that starts at the next byte (not whitespace) into `buf`:
    /// an object or array up to its matching bracket, a string up to its closing quote, a
    /// scalar up to the byte that ends it. Brackets are only counted, not matched: the
    /// parser reports a mismatch in the record itself.
    fn frame_value(&mut self) -> io::Result<Framed> {
        self.buf.clear();
        let mut too_long = false;
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escape = false;
        let mut scalar = false;
        let mut first = true;
        loop {
            let avail = self.src.fill()?;
            if avail.is_empty() {
                return Ok(if scalar && !too_long {
                    Framed::Whole
                } else if scalar {
                    Framed::TooLong
                } else {
                    Framed::Truncated
                });
            }
            let mut i = 0;
            let mut done = false;
            while i < avail.len() {
                let b = avail[i];
                if first {
                    first = false;
                    match b {
                        b'{' | b'[' => depth = 1,
                        b'"' => in_str = true,
                        _ => scalar = true,
                    }
                    i += 1;
                    continue;
                }
                if in_str {
                    if escape {
                        escape = false;
                        i += 1;
                        continue;
                    }
                    // Most of a pulse is long hex strings: jump to what can end one.
                    match memchr::memchr2(b'"', b'\\', &avail[i..]) {
                        None => i = avail.len(),
                        Some(k) => {
                            i += k;
                            if avail[i] == b'\\' {
                                escape = true;
                            } else {
                                in_str = false;
                                if depth == 0 {
                                    done = true;
                                    i += 1;
                                    break;
                                }
                            }
                            i += 1;
                        }
                    }
                    continue;
                }
                if scalar {
                    if ends_scalar(b) {
                        done = true;
                        break;
                    }
                    i += 1;
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            done = true;
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let used = &avail[..i];
            if !too_long {
                if self.buf.len() + used.len() > MAX_LINE {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(used);
                }
            }
            self.line += memchr::memchr_iter(b'\n', used).count();
            self.src.consume(i);
            if done {
                return Ok(if too_long {
                    Framed::TooLong
                } else {
                    Framed::Whole
                });
            }
        }
    }

    /// The next value of an array or sequence, as an item located at its first line.
    fn value_item(&mut self) -> io::Result<Item> {
        let location = self.location(self.line + 1);
        let framed = self.frame_value()?;
        Ok(match framed {
            Framed::Whole => {
                let next = Vec::with_capacity(self.buf.len() + 64);
                match String::from_utf8(std::mem::replace(&mut self.buf, next)) {
                    Ok(text) => Item::Record { location, text },
                    Err(e) => Item::Unreadable {
                        location,
                        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                    },
                }
            }
            Framed::TooLong => Item::Unreadable {
                location,
                message: format!("a JSON value longer than {MAX_LINE} bytes: not a pulse"),
            },
            Framed::Truncated => {
                self.state = State::Done;
                Item::Unreadable {
                    location,
                    message: "truncated JSON: the input ends inside this value".into(),
                }
            }
        })
    }

    /// A framing error at the current line; nothing after it can be framed reliably.
    fn stop(&mut self, message: &str) -> Item {
        self.state = State::Done;
        Item::Unreadable {
            location: self.location(self.line + 1),
            message: message.into(),
        }
    }

    /// The first bytes decide the form: `[` an array; a first line holding one complete
    /// object JSON Lines; anything else objects one after another.
    fn start(&mut self) -> io::Result<Option<Item>> {
        // A byte-order mark, as some Windows tools write.
        let avail = self.src.fill()?;
        if avail.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.src.consume(3);
        }
        match self.skip_ws()? {
            None => {
                self.state = State::Done;
                return Ok(None);
            }
            Some(b'[') => {
                self.skip_byte();
                self.state = State::ArrayOpen;
                return Ok(None);
            }
            Some(_) => {}
        }
        let newlines_before = self.line;
        let read = self.read_line()?;
        self.line += 1;
        match read {
            LineRead::Eof => {
                self.state = State::Done;
                Ok(None)
            }
            LineRead::TooLong => {
                self.state = State::Lines;
                Ok(Some(self.too_long_line()))
            }
            LineRead::Line => {
                let t = String::from_utf8_lossy(&self.buf);
                let t = t.trim();
                let complete =
                    t.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok();
                if complete {
                    self.state = State::Lines;
                    return Ok(self.line_item());
                }
                // Read the line again, as the start of a document.
                let mut prefix = std::mem::take(&mut self.buf);
                prefix.push(b'\n');
                self.src.prefix = prefix;
                self.src.pos = 0;
                self.line = newlines_before;
                self.state = State::Sequence;
                Ok(None)
            }
        }
    }

    fn too_long_line(&self) -> Item {
        Item::Unreadable {
            location: self.location(self.line),
            message: format!("line longer than {MAX_LINE} bytes: not a pulse"),
        }
    }

    /// One step of the state machine: an item, or None when it only moved on.
    fn step(&mut self) -> io::Result<Option<Item>> {
        match self.state {
            State::Done => Ok(None),
            State::Start => self.start(),
            State::Lines => {
                let read = self.read_line()?;
                self.line += 1;
                match read {
                    LineRead::Eof => {
                        self.state = State::Done;
                        Ok(None)
                    }
                    LineRead::TooLong => Ok(Some(self.too_long_line())),
                    LineRead::Line => Ok(self.line_item()),
                }
            }
            State::ArrayOpen | State::ArrayAfterComma => match self.skip_ws()? {
                None => Ok(Some(self.stop("truncated JSON: the array is not closed"))),
                Some(b']') if self.state == State::ArrayOpen => {
                    self.skip_byte();
                    self.state = State::ArrayClosed;
                    Ok(None)
                }
                Some(b']' | b',') => Ok(Some(self.stop("not valid JSON: an empty array element"))),
                Some(_) => {
                    self.state = State::ArrayAfterValue;
                    self.value_item().map(Some)
                }
            },
            State::ArrayAfterValue => match self.skip_ws()? {
                None => Ok(Some(self.stop("truncated JSON: the array is not closed"))),
                Some(b',') => {
                    self.skip_byte();
                    self.state = State::ArrayAfterComma;
                    Ok(None)
                }
                Some(b']') => {
                    self.skip_byte();
                    self.state = State::ArrayClosed;
                    Ok(None)
                }
                Some(_) => Ok(Some(
                    self.stop("not valid JSON: expected `,` or `]` after an array element"),
                )),
            },
            State::ArrayClosed => match self.skip_ws()? {
                None => {
                    self.state = State::Done;
                    Ok(None)
                }
                Some(_) => Ok(Some(
                    self.stop("not valid JSON: text after the end of the array"),
                )),
            },
            State::Sequence => match self.skip_ws()? {
                None => {
                    self.state = State::Done;
                    Ok(None)
                }
                Some(b'{') => self.value_item().map(Some),
                Some(_) => Ok(Some(self.stop("not valid JSON: expected a JSON object"))),
            },
        }
    }
}

impl<R: Read> Iterator for PulseItems<R> {
    type Item = Result<Item, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.state == State::Done {
                return None;
            }
            match self.step() {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => continue,
                Err(e) => {
                    self.state = State::Done;
                    return Some(Err(self.err(e)));
                }
            }
        }
    }
}
