//! Reading pulses from files in every form NIST-format beacons publish them: JSON Lines, a
//! JSON array, one pretty-printed object, or several objects one after another; each element
//! may be `{"pulse": {...}}` or a bare pulse. Records keep their `file:line` for messages.
//!
//! Every form streams: JSON Lines a line at a time, arrays and object sequences a value at a
//! time (a small splitter that tracks strings and nesting, so a compact array of a million
//! pulses on one line takes no more memory than one pulse). No value is kept longer than
//! [`MAX_LINE`] bytes.
//!
//! ## Layout
//! - this file: [`read_items`] and [`PulseItems`]: the first bytes decide the form, then that
//!   form's splitter gives the items.
//! - `item`: [`Item`], [`Location`], [`InputError`], [`MAX_LINE`].
//! - `reader`: the bytes of one input, and the one shape every splitter has.
//! - `lines`: the JSON Lines splitter.
//! - `values`: cutting out one JSON value; the array and object-sequence splitters.

mod item;
mod lines;
mod reader;
mod values;

pub use item::{InputError, Item, Location, MAX_LINE};

use lines::{line_item, read_line, too_long_line, LineRead, Lines};
use reader::{Next, Reader, Splitter};
use std::io::{self, Read};
use values::{Array, Sequence};

/// Reads all items from `reader`, which is named `name` in locations.
///
/// Every form is streamed: memory stays flat however large the input.
pub fn read_items<R: Read>(name: &str, reader: R) -> PulseItems<R> {
    PulseItems {
        input: Reader::new(name, reader),
        form: Form::Undecided,
    }
}

/// Iterator over the items of one input.
pub struct PulseItems<R: Read> {
    input: Reader<R>,
    form: Form,
}

/// The form of the input, once its first bytes decided it.
enum Form {
    /// Nothing read yet.
    Undecided,
    /// JSON Lines: one record a line.
    Lines(Lines),
    /// A top-level array.
    Array(Array),
    /// Objects one after another, each on as many lines as it likes.
    Sequence(Sequence),
    /// Over: the input ended, or nothing after an error can be read.
    Done,
}

impl<R: Read> PulseItems<R> {
    /// The first bytes decide the form: `[` an array; a first line holding one complete
    /// object JSON Lines; anything else objects one after another. Gives the first item when
    /// deciding read it (a JSON Lines line).
    fn decide(&mut self) -> io::Result<Option<Item>> {
        let input = &mut self.input;
        // A byte-order mark, as some Windows tools write.
        let avail = input.bytes.fill()?;
        if avail.starts_with(&[0xEF, 0xBB, 0xBF]) {
            input.bytes.consume(3);
        }
        match input.skip_ws()? {
            None => {
                self.form = Form::Done;
                return Ok(None);
            }
            Some(b'[') => {
                input.skip_byte();
                self.form = Form::Array(Array::opened());
                return Ok(None);
            }
            Some(_) => {}
        }
        let newlines_before = input.line;
        let read = read_line(input)?;
        input.line += 1;
        match read {
            LineRead::Eof => {
                self.form = Form::Done;
                Ok(None)
            }
            LineRead::TooLong => {
                self.form = Form::Lines(Lines);
                Ok(Some(too_long_line(input)))
            }
            LineRead::Line => {
                let t = String::from_utf8_lossy(&input.buf);
                let t = t.trim();
                let complete =
                    t.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok();
                if complete {
                    self.form = Form::Lines(Lines);
                    return Ok(line_item(input));
                }
                // Read the line again, as the start of a document.
                let mut prefix = std::mem::take(&mut input.buf);
                prefix.push(b'\n');
                input.bytes.unread(prefix);
                input.line = newlines_before;
                self.form = Form::Sequence(Sequence);
                Ok(None)
            }
        }
    }

    /// The next item of the decided form.
    fn split(&mut self) -> io::Result<Next> {
        match &mut self.form {
            Form::Undecided => Ok(match self.decide()? {
                Some(item) => Next::Item(item),
                // Decided (or over) without an item: ask the form.
                None if matches!(self.form, Form::Done) => Next::End,
                None => self.split()?,
            }),
            Form::Lines(s) => s.next_item(&mut self.input),
            Form::Array(s) => s.next_item(&mut self.input),
            Form::Sequence(s) => s.next_item(&mut self.input),
            Form::Done => Ok(Next::End),
        }
    }
}

impl<R: Read> Iterator for PulseItems<R> {
    type Item = Result<Item, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.split() {
            Ok(Next::Item(item)) => Some(Ok(item)),
            Ok(Next::Last(item)) => {
                self.form = Form::Done;
                Some(Ok(item))
            }
            Ok(Next::End) => {
                self.form = Form::Done;
                None
            }
            Err(e) => {
                self.form = Form::Done;
                Some(Err(InputError {
                    name: self.input.name().to_string(),
                    source: e,
                }))
            }
        }
    }
}
