//! What a client asked for (the query string, read strictly) and the answer's body in the form
//! it asked for. Every buffer that holds random bytes, or a form of them, is zeroized when
//! dropped.
//!
//! - `GET /private/v1/bytes?n=N&format=F`: N from 1 to [`MAX_BYTES`] (0 or not a number: 400;
//!   more: 413); F `hex` (the default), `base64`, `raw` (application/octet-stream), `csv`
//!   (the decimal bytes joined by commas, as the worker clients expect) or `json`.
//! - `GET /private/v1/integers?count=C&min=A&max=B&format=F`: C from 1 to [`MAX_INTEGERS`]
//!   integers uniform in [A, B] (signed 64-bit, no modulo bias: rejection sampling); F `json`
//!   (the default) or `csv`.

use crate::gate::Refusal;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

/// The most bytes one request may ask for.
pub const MAX_BYTES: u64 = 65_536;
/// The most integers one request may ask for.
pub const MAX_INTEGERS: u64 = 8_192;

/// The form of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Hex,
    Base64,
    Raw,
    Csv,
    Json,
}

/// A request's parameters, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Bytes {
        n: usize,
        form: Form,
    },
    Integers {
        count: usize,
        min: i64,
        max: i64,
        form: Form,
    },
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::new(400, "request", message)
}

/// The query's pairs; a name given twice or a pair without `=` is refused.
fn pairs(query: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, Refusal> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not name=value")))?;
        if !allowed.contains(&k) {
            return Err(bad(format!(
                "unknown parameter {k:?}; this path takes {}",
                allowed.join(", ")
            )));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(bad(format!("parameter {k:?} is given twice")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn count(pairs: &[(String, String)], name: &str, max: u64) -> Result<usize, Refusal> {
    let text = get(pairs, name).ok_or_else(|| bad(format!("{name} is required (1 to {max})")))?;
    let n: u64 = text
        .parse()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            bad(format!(
                "{name}={text:?} is not a whole number from 1 to {max}"
            ))
        })?;
    if n == 0 {
        return Err(bad(format!("{name} must be at least 1")));
    }
    if n > max {
        return Err(Refusal::new(
            413,
            "size",
            format!("{name}={n} is more than {max}; ask in several requests"),
        ));
    }
    Ok(n as usize)
}

fn form(
    pairs: &[(String, String)],
    default: Form,
    allowed: &[(&str, Form)],
) -> Result<Form, Refusal> {
    match get(pairs, "format") {
        None => Ok(default),
        Some(f) => allowed
            .iter()
            .find(|(name, _)| *name == f)
            .map(|(_, form)| *form)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                bad(format!("format={f:?}: one of {}", names.join(", ")))
            }),
    }
}

fn integer(pairs: &[(String, String)], name: &str) -> Result<i64, Refusal> {
    let text = get(pairs, name).ok_or_else(|| bad(format!("{name} is required")))?;
    text.parse()
        .map_err(|_| bad(format!("{name}={text:?} is not a signed 64-bit integer")))
}

impl Ask {
    /// The parameters of `GET /private/v1/bytes`.
    pub fn bytes(query: &str) -> Result<Ask, Refusal> {
        let p = pairs(query, &["n", "format"])?;
        let n = count(&p, "n", MAX_BYTES)?;
        let form = form(
            &p,
            Form::Hex,
            &[
                ("hex", Form::Hex),
                ("base64", Form::Base64),
                ("raw", Form::Raw),
                ("csv", Form::Csv),
                ("json", Form::Json),
            ],
        )?;
        Ok(Ask::Bytes { n, form })
    }

    /// The parameters of `GET /private/v1/integers`.
    pub fn integers(query: &str) -> Result<Ask, Refusal> {
        let p = pairs(query, &["count", "min", "max", "format"])?;
        let count = count(&p, "count", MAX_INTEGERS)?;
        let (min, max) = (integer(&p, "min")?, integer(&p, "max")?);
        if min > max {
            return Err(bad(format!("min ({min}) is more than max ({max})")));
        }
        let form = form(&p, Form::Json, &[("json", Form::Json), ("csv", Form::Csv)])?;
        Ok(Ask::Integers {
            count,
            min,
            max,
            form,
        })
    }

    /// The bytes this request takes from the generator at most, and from the daily quota.
    pub fn cost(&self) -> u64 {
        match self {
            Ask::Bytes { n, .. } => *n as u64,
            // Rejection sampling may draw more; the quota counts 8 bytes an integer.
            Ask::Integers { count, .. } => 8 * *count as u64,
        }
    }

    /// The answer's content type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Ask::Bytes {
                form: Form::Raw, ..
            } => "application/octet-stream",
            Ask::Bytes {
                form: Form::Csv, ..
            }
            | Ask::Integers {
                form: Form::Csv, ..
            } => "text/csv; charset=utf-8",
            Ask::Bytes {
                form: Form::Json, ..
            }
            | Ask::Integers {
                form: Form::Json, ..
            } => "application/json",
            _ => "text/plain; charset=utf-8",
        }
    }

    /// The answer's body, made with `fill` (the generator); `test` adds `"test": true` to
    /// JSON forms.
    pub fn body<E>(
        &self,
        test: bool,
        mut fill: impl FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<Zeroizing<Vec<u8>>, E> {
        let test_member = if test { ",\"test\":true" } else { "" };
        match *self {
            Ask::Bytes { n, form } => {
                let mut raw = Zeroizing::new(vec![0u8; n]);
                fill(&mut raw[..])?;
                Ok(Zeroizing::new(match form {
                    Form::Raw => raw.to_vec(),
                    Form::Hex => hex::encode(&*raw).into_bytes(),
                    Form::Base64 => STANDARD.encode(&*raw).into_bytes(),
                    Form::Csv => join(raw.iter().map(|b| *b as i128)),
                    Form::Json => {
                        let hex = Zeroizing::new(hex::encode(&*raw));
                        format!("{{\"n\":{n},\"hex\":\"{}\"{test_member}}}", *hex).into_bytes()
                    }
                }))
            }
            Ask::Integers {
                count,
                min,
                max,
                form,
            } => {
                let values = Zeroizing::new(uniform(count, min, max, &mut fill)?);
                let list = Zeroizing::new(join(values.iter().map(|v| *v as i128)));
                Ok(Zeroizing::new(match form {
                    Form::Json => {
                        let list = std::str::from_utf8(&list).expect("ascii");
                        format!(
                            "{{\"count\":{count},\"min\":{min},\"max\":{max},\"integers\":[{list}]{test_member}}}"
                        )
                        .into_bytes()
                    }
                    _ => list.to_vec(),
                }))
            }
        }
    }
}

/// Decimal numbers joined by commas.
fn join(values: impl Iterator<Item = i128>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(v.to_string().as_bytes());
    }
    out
}

/// `count` integers uniform in `[min, max]`: 64-bit draws, each kept only below the largest
/// multiple of the range's size, so every value is equally likely.
fn uniform<E>(
    count: usize,
    min: i64,
    max: i64,
    fill: &mut impl FnMut(&mut [u8]) -> Result<(), E>,
) -> Result<Vec<i64>, E> {
    let span = (max as i128 - min as i128 + 1) as u128; // 1 ..= 2^64
    let mut out = Vec::with_capacity(count);
    let mut buf = Zeroizing::new(vec![0u8; 8 * count]);
    while out.len() < count {
        let want = count - out.len();
        fill(&mut buf[..8 * want])?;
        for chunk in buf[..8 * want].chunks_exact(8) {
            let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) as u128;
            if span == 1u128 << 64 {
                out.push((min as i128 + x as i128) as i64);
                continue;
            }
            let limit = (1u128 << 64) - (1u128 << 64) % span;
            if x < limit {
                out.push((min as i128 + (x % span) as i128) as i64);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut(&mut [u8]) -> Result<(), ()> {
        let mut next = 0u8;
        move |out: &mut [u8]| {
            for b in out {
                *b = next;
                next = next.wrapping_add(1);
            }
            Ok(())
        }
    }

    #[test]
    fn sizes_out_of_range_get_400_or_413() {
        assert_eq!(Ask::bytes("n=0").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("n=abc").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("n=-1").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("n=+1").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("n=65537").unwrap_err().status, 413);
        assert_eq!(
            Ask::bytes("n=99999999999999999999").unwrap_err().status,
            400
        );
        assert_eq!(
            Ask::bytes("n=65536").unwrap(),
            Ask::Bytes {
                n: 65_536,
                form: Form::Hex
            }
        );
        assert_eq!(Ask::bytes("n=1&n=2").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("n=1&size=2").unwrap_err().status, 400);
        assert_eq!(Ask::bytes("n=1&format=xml").unwrap_err().status, 400);
        assert_eq!(
            Ask::integers("count=1&min=5&max=4").unwrap_err().status,
            400
        );
        assert_eq!(
            Ask::integers("count=8193&min=0&max=1").unwrap_err().status,
            413
        );
    }

    #[test]
    fn every_form_of_the_same_bytes_says_the_same_bytes() {
        let body = |q: &str| {
            let a = Ask::bytes(q).unwrap();
            String::from_utf8(a.body(false, counter()).unwrap().to_vec()).unwrap()
        };
        assert_eq!(body("n=4&format=hex"), "00010203");
        assert_eq!(body("n=4&format=base64"), "AAECAw==");
        assert_eq!(body("n=4&format=csv"), "0,1,2,3");
        assert_eq!(body("n=2&format=json"), "{\"n\":2,\"hex\":\"0001\"}");
        let raw = Ask::bytes("n=3&format=raw").unwrap();
        assert_eq!(raw.content_type(), "application/octet-stream");
        assert_eq!(raw.body(false, counter()).unwrap().as_slice(), &[0, 1, 2]);
        let test = Ask::bytes("n=1&format=json").unwrap();
        assert_eq!(
            test.body(true, counter()).unwrap().as_slice(),
            b"{\"n\":1,\"hex\":\"00\",\"test\":true}"
        );
    }

    #[test]
    fn integers_stay_in_range_without_modulo_bias() {
        // A range of 3 over 64-bit draws: the top (2^64 mod 3) values are rejected.
        let mut draws = vec![u64::MAX, 0, 1, 2].into_iter();
        let mut fill = |out: &mut [u8]| -> Result<(), ()> {
            for c in out.chunks_exact_mut(8) {
                c.copy_from_slice(&draws.next().unwrap_or(5).to_le_bytes());
            }
            Ok(())
        };
        let v = uniform(3, 10, 12, &mut fill).unwrap();
        // u64::MAX is rejected (it lies in the incomplete last block); 0, 1, 2 map to 10..12.
        assert_eq!(v, vec![10, 11, 12]);
        let all = uniform(4, i64::MIN, i64::MAX, &mut counter()).unwrap();
        assert_eq!(all.len(), 4);
        let one = Ask::integers("count=3&min=7&max=7&format=csv").unwrap();
        assert_eq!(one.body(false, counter()).unwrap().as_slice(), b"7,7,7");
    }
}
