//! The bytes of one input, as every splitter reads them: what was read ahead to decide the
//! form, then the reader; the line count; the buffer the current record is cut into. Also the
//! one shape every splitter has ([`Splitter`]).

use super::item::{Item, Location};
use std::io::{self, BufRead, Read};
use std::sync::Arc;

/// What a splitter gives each time it is asked.
pub(super) enum Next {
    /// An item; more may follow.
    Item(Item),
    /// An item after which nothing can be cut out reliably: reading stops after it.
    Last(Item),
    /// The input is over.
    End,
}

/// One form of input (JSON Lines, an array, objects one after another): cuts the next record
/// out of the bytes.
pub(super) trait Splitter {
    /// The next item, or the end.
    fn next_item<R: Read>(&mut self, input: &mut Reader<R>) -> io::Result<Next>;
}

/// The bytes of one input: first what was read ahead to decide the form and given back, then
/// the reader. A field of its own in [`Reader`], so that a splitter can look at the bytes
/// while it fills the record buffer.
pub(super) struct Bytes<R: Read> {
    prefix: Vec<u8>,
    pos: usize,
    reader: io::BufReader<R>,
}

impl<R: Read> Bytes<R> {
    /// The bytes available next (empty at the end of the input).
    pub(super) fn fill(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.prefix.len() {
            return Ok(&self.prefix[self.pos..]);
        }
        self.reader.fill_buf()
    }

    /// Marks `n` bytes of what [`Bytes::fill`] gave as read.
    pub(super) fn consume(&mut self, n: usize) {
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

    /// Gives bytes back, to be read again before anything else.
    pub(super) fn unread(&mut self, bytes: Vec<u8>) {
        self.prefix = bytes;
        self.pos = 0;
    }
}

/// One input and where in it reading is.
pub(super) struct Reader<R: Read> {
    /// The input's name, shared by every location.
    name: Arc<str>,
    pub(super) bytes: Bytes<R>,
    /// In JSON Lines: the line just read. Elsewhere: newlines consumed so far (the current
    /// line is one more).
    pub(super) line: usize,
    /// The record being cut out.
    pub(super) buf: Vec<u8>,
}

/// JSON whitespace.
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<R: Read> Reader<R> {
    pub(super) fn new(name: &str, reader: R) -> Self {
        Reader {
            name: Arc::from(name),
            bytes: Bytes {
                prefix: Vec::new(),
                pos: 0,
                reader: io::BufReader::with_capacity(1 << 16, reader),
            },
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The input's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// A location in this input.
    pub(super) fn location(&self, line: usize) -> Location {
        Location {
            source: self.name.clone(),
            line,
        }
    }

    /// Skips JSON whitespace, counting newlines; returns the next byte without consuming it,
    /// or None at the end of the input.
    pub(super) fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            let avail = self.bytes.fill()?;
            if avail.is_empty() {
                return Ok(None);
            }
            let n = avail.iter().position(|b| !is_ws(*b)).unwrap_or(avail.len());
            let next = avail.get(n).copied();
            self.line += memchr::memchr_iter(b'\n', &avail[..n]).count();
            self.bytes.consume(n);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Consumes one byte already seen by [`Reader::skip_ws`] (never a newline).
    pub(super) fn skip_byte(&mut self) {
        self.bytes.consume(1);
    }

    /// The record in `buf` as an item at `location`: its text, or why it is not text. The
    /// buffer is handed over, not copied (records are a few KiB each).
    pub(super) fn take_record(&mut self, location: Location) -> Item {
        let next = Vec::with_capacity(self.buf.len() + 64);
        match String::from_utf8(std::mem::replace(&mut self.buf, next)) {
            Ok(text) => Item::Record { location, text },
            Err(e) => Item::Unreadable {
                location,
                message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            },
        }
    }

    /// A framing error at the current line: nothing after it can be cut out reliably.
    pub(super) fn stop(&self, message: &str) -> Next {
        Next::Last(Item::Unreadable {
            location: self.location(self.line + 1),
            message: message.into(),
        })
    }
}
