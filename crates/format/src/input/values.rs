//! Cutting JSON values out of the bytes one at a time, for the two forms that are JSON
//! documents: a top-level array ([`Array`]) and objects one after another ([`Sequence`]).
//! A small framer tracks strings and nesting, so a compact array of a million pulses on one
//! line takes no more memory than one pulse.

use super::item::{Item, MAX_LINE};
use super::reader::{is_ws, Next, Reader, Splitter};
use std::io::{self, Read};

/// How one framed value ended.
enum Framed {
    /// Its text (at most MAX_LINE bytes) is in the reader's buffer.
    Whole,
    /// Longer than MAX_LINE: skipped, not kept.
    TooLong,
    /// The input ended inside it.
    Truncated,
}

/// Whether a byte ends a number, `true`, `false` or `null`.
fn ends_scalar(b: u8) -> bool {
    is_ws(b) || matches!(b, b',' | b']' | b'}' | b'[' | b'{' | b'"')
}

/// Cuts out the JSON value that starts at the next byte (not whitespace) into the reader's
/// buffer: an object or array up to its matching bracket, a string up to its closing quote,
/// a scalar up to the byte that ends it. Brackets are only counted, not matched: the parser
/// reports a mismatch in the record itself.
fn frame_value<R: Read>(input: &mut Reader<R>) -> io::Result<Framed> {
    input.buf.clear();
    let mut too_long = false;
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escape = false;
    let mut scalar = false;
    let mut first = true;
    loop {
        let avail = input.bytes.fill()?;
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
            if input.buf.len() + used.len() > MAX_LINE {
                too_long = true;
                input.buf = Vec::new();
            } else {
                input.buf.extend_from_slice(used);
            }
        }
        input.line += memchr::memchr_iter(b'\n', used).count();
        input.bytes.consume(i);
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
fn value_item<R: Read>(input: &mut Reader<R>) -> io::Result<Next> {
    let location = input.location(input.line + 1);
    Ok(match frame_value(input)? {
        Framed::Whole => Next::Item(input.take_record(location)),
        Framed::TooLong => Next::Item(Item::Unreadable {
            location,
            message: format!("a JSON value longer than {MAX_LINE} bytes: not a pulse"),
        }),
        Framed::Truncated => Next::Last(Item::Unreadable {
            location,
            message: "truncated JSON: the input ends inside this value".into(),
        }),
    })
}

/// Where in a top-level array reading is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Before the first element (`[` read).
    Open,
    /// After an element.
    AfterValue,
    /// After a comma.
    AfterComma,
    /// After the closing `]`: only whitespace may follow.
    Closed,
}

/// The splitter for a top-level JSON array, whose `[` has been read.
pub(super) struct Array {
    position: Position,
}

impl Array {
    /// After the array's `[`.
    pub(super) fn opened() -> Self {
        Array {
            position: Position::Open,
        }
    }
}

impl Splitter for Array {
    fn next_item<R: Read>(&mut self, input: &mut Reader<R>) -> io::Result<Next> {
        loop {
            match self.position {
                Position::Open | Position::AfterComma => match input.skip_ws()? {
                    None => return Ok(input.stop("truncated JSON: the array is not closed")),
                    Some(b']') if self.position == Position::Open => {
                        input.skip_byte();
                        self.position = Position::Closed;
                    }
                    Some(b']' | b',') => {
                        return Ok(input.stop("not valid JSON: an empty array element"))
                    }
                    Some(_) => {
                        self.position = Position::AfterValue;
                        return value_item(input);
                    }
                },
                Position::AfterValue => match input.skip_ws()? {
                    None => return Ok(input.stop("truncated JSON: the array is not closed")),
                    Some(b',') => {
                        input.skip_byte();
                        self.position = Position::AfterComma;
                    }
                    Some(b']') => {
                        input.skip_byte();
                        self.position = Position::Closed;
                    }
                    Some(_) => {
                        return Ok(input
                            .stop("not valid JSON: expected `,` or `]` after an array element"))
                    }
                },
                Position::Closed => {
                    return Ok(match input.skip_ws()? {
                        None => Next::End,
                        Some(_) => input.stop("not valid JSON: text after the end of the array"),
                    })
                }
            }
        }
    }
}

/// The splitter for objects one after another, each on as many lines as it likes.
pub(super) struct Sequence;

impl Splitter for Sequence {
    fn next_item<R: Read>(&mut self, input: &mut Reader<R>) -> io::Result<Next> {
        match input.skip_ws()? {
            None => Ok(Next::End),
            Some(b'{') => value_item(input),
            Some(_) => Ok(input.stop("not valid JSON: expected a JSON object")),
        }
    }
}
