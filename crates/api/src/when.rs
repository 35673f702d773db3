//! Times in URLs. `/beacon/{timestamp}` and the bulk route take RFC 3339
//! (`2026-11-21T10:00:00Z`), Unix milliseconds or Unix seconds; a number is told apart by size:
//! below 100,000,000,000 it is seconds (that covers every date up to the year 5138), from there
//! on milliseconds (every date from March 1973). NIST's own paths take milliseconds only.

use crate::error::ApiError;
use lavabeacon_format::time::parse_time_stamp;

/// Numbers below this are seconds, from here on milliseconds.
pub const SECONDS_BELOW: i64 = 100_000_000_000;

/// The latest instant we accept (year 9999), so arithmetic on times never overflows.
pub const LATEST_MS: i64 = 253_402_300_799_999;

const EXAMPLE: &str =
    "use RFC 3339 (2026-11-21T10:00:00Z), Unix seconds (1795255200) or Unix milliseconds (1795255200000)";

/// Parses a time in any of the accepted forms into Unix milliseconds.
pub fn parse_when(text: &str) -> Result<i64, ApiError> {
    let shown: String = text.chars().take(40).collect();
    if let Some(digits) = text.strip_prefix('-') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::BadRequest(format!(
                "time {shown:?} is negative: the beacon has no pulses before 1970; {EXAMPLE}"
            )));
        }
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = text.parse().map_err(|_| {
            ApiError::BadRequest(format!("time {shown:?} is out of range; {EXAMPLE}"))
        })?;
        let ms = if n < SECONDS_BELOW { n * 1000 } else { n };
        return in_range(ms, &shown);
    }
    match parse_time_stamp(text) {
        Ok(ms) => in_range(ms, &shown),
        Err(_) => Err(ApiError::BadRequest(format!(
            "time {shown:?} is not a time; {EXAMPLE}"
        ))),
    }
}

/// Parses NIST's form: Unix milliseconds (RFC 3339 is accepted too; it cannot be mistaken).
pub fn parse_millis(text: &str) -> Result<i64, ApiError> {
    let shown: String = text.chars().take(40).collect();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = text.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "time {shown:?} is out of range; NIST paths take Unix milliseconds, e.g. 1795255200000"
            ))
        })?;
        return in_range(ms, &shown);
    }
    match parse_time_stamp(text) {
        Ok(ms) => in_range(ms, &shown),
        Err(_) => Err(ApiError::BadRequest(format!(
            "time {shown:?} is not a time; NIST paths take Unix milliseconds, e.g. 1795255200000"
        ))),
    }
}

fn in_range(ms: i64, shown: &str) -> Result<i64, ApiError> {
    if !(0..=LATEST_MS).contains(&ms) {
        return Err(ApiError::BadRequest(format!(
            "time {shown:?} is outside 1970..9999; {EXAMPLE}"
        )));
    }
    Ok(ms)
}

/// Parses a chain or pulse index.
pub fn parse_index(what: &str, text: &str) -> Result<u64, ApiError> {
    let shown: String = text.chars().take(40).collect();
    match text.parse::<u64>() {
        Ok(n) if n >= 1 && n <= i64::MAX as u64 => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{what} {shown:?} is not an index: use a whole number from 1, e.g. 1"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_milliseconds_and_rfc3339_name_the_same_instant() {
        let ms = 1_795_255_200_000;
        assert_eq!(parse_when("1795255200").unwrap(), ms);
        assert_eq!(parse_when("1795255200000").unwrap(), ms);
        assert_eq!(parse_when("2026-11-21T10:00:00Z").unwrap(), ms);
        assert_eq!(parse_when("2026-11-21T10:00:00.000Z").unwrap(), ms);
        assert_eq!(parse_when("2026-11-21T11:00:00+01:00").unwrap(), ms);
    }

    #[test]
    fn garbage_negative_and_overflowing_times_are_refused_with_an_example() {
        for bad in [
            "",
            "yesterday",
            "-5",
            "99999999999999999999999",
            "12:00",
            "2026-13-01T00:00:00Z",
            "1e12",
            " 1795255200",
            "999999999999999",
        ] {
            let e = parse_when(bad).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{bad:?}");
            assert!(e.to_string().contains("RFC 3339"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn indexes_are_positive_whole_numbers_that_fit_the_store() {
        assert_eq!(parse_index("pulse", "1").unwrap(), 1);
        for bad in [
            "0",
            "-1",
            "x",
            "18446744073709551616",
            "9223372036854775808",
            "",
        ] {
            assert!(parse_index("pulse", bad).is_err(), "{bad:?}");
        }
    }
}
