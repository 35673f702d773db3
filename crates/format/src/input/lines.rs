//! JSON Lines: one record a line, blank lines skipped, a line longer than [`MAX_LINE`] refused
//! without being kept.

use super::item::{Item, MAX_LINE};
use super::reader::{Next, Reader, Splitter};
use std::io::{self, Read};

/// How reading one line ended.
pub(super) enum LineRead {
    /// The input was already over.
    Eof,
    /// A line, in the reader's buffer without its newline.
    Line,
    /// A line longer than [`MAX_LINE`]: skipped, not kept.
    TooLong,
}

/// Reads one line into the reader's buffer without the newline, keeping at most
/// [`MAX_LINE`] bytes.
pub(super) fn read_line<R: Read>(input: &mut Reader<R>) -> io::Result<LineRead> {
    input.buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = input.bytes.fill()?;
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
            if input.buf.len() + chunk.len() > MAX_LINE {
                too_long = true;
                input.buf = Vec::new();
            } else {
                input.buf.extend_from_slice(chunk);
            }
        }
        input.bytes.consume(used);
        if end {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

/// The line just read as an item, or None for a blank line.
pub(super) fn line_item<R: Read>(input: &mut Reader<R>) -> Option<Item> {
    let location = input.location(input.line);
    if input.buf.last() == Some(&b'\r') {
        input.buf.pop();
    }
    if input.buf.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(input.take_record(location))
}

/// The item for the line just read when it was too long.
pub(super) fn too_long_line<R: Read>(input: &Reader<R>) -> Item {
    Item::Unreadable {
        location: input.location(input.line),
        message: format!("line longer than {MAX_LINE} bytes: not a pulse"),
    }
}

/// The JSON Lines splitter.
pub(super) struct Lines;

impl Splitter for Lines {
    fn next_item<R: Read>(&mut self, input: &mut Reader<R>) -> io::Result<Next> {
        loop {
            let read = read_line(input)?;
            input.line += 1;
            match read {
                LineRead::Eof => return Ok(Next::End),
                LineRead::TooLong => return Ok(Next::Item(too_long_line(input))),
                LineRead::Line => {
                    if let Some(item) = line_item(input) {
                        return Ok(Next::Item(item));
                    }
                }
            }
        }
    }
}
