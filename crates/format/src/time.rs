//! The one place that maps pulse timestamps to instants and to the periods of the skip list.
//!
//! A pulse's `timeStamp` is signed as text, so the text is kept verbatim in [`crate::Pulse`];
//! this module turns it into Unix milliseconds and back, and finds the UTC hour, day, month and
//! year that contain an instant.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Timelike, Utc};
use thiserror::Error;

/// A timestamp that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("timeStamp {text:?} is not an RFC 3339 UTC time such as \"2018-08-30T17:43:00.000Z\"")]
pub struct TimeError {
    /// The offending text (truncated to 64 characters).
    pub text: String,
}

/// Reads a pulse timestamp as Unix milliseconds.
///
/// The canonical form `YYYY-MM-DDTHH:MM:SS.000Z` takes a fast path; any other RFC 3339 time is
/// accepted too (other beacons may differ), and [`is_canonical`] tells them apart.
///
/// ```
/// use lavabeacon_format::time::parse_time_stamp;
/// assert_eq!(parse_time_stamp("1970-01-01T00:01:00.000Z").unwrap(), 60_000);
/// ```
pub fn parse_time_stamp(text: &str) -> Result<i64, TimeError> {
    if let Some(ms) = parse_canonical(text.as_bytes()) {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| TimeError {
            text: text.chars().take(64).collect(),
        })
}

/// Whether `text` is exactly the 24-character form NIST publishes.
pub fn is_canonical(text: &str) -> bool {
    parse_canonical(text.as_bytes()).is_some()
}

/// Formats Unix milliseconds in the canonical pulse form, e.g. `2018-08-30T17:43:00.000Z`.
///
/// Returns `None` for instants chrono cannot represent.
pub fn format_time_stamp(ms: i64) -> Option<String> {
    let t = Utc.timestamp_millis_opt(ms).single()?;
    Some(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn parse_canonical(b: &[u8]) -> Option<i64> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let t = date.and_hms_milli_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?)?;
    Some(t.and_utc().timestamp_millis())
}

/// The calendar periods of the skip list (spec §6), shortest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A UTC hour.
    Hour,
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
    /// A UTC calendar year.
    Year,
}

impl Period {
    /// The four periods in skip-list order.
    pub const ALL: [Period; 4] = [Period::Hour, Period::Day, Period::Month, Period::Year];

    /// The skip-list type name (`hour`, `day`, `month`, `year`).
    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    /// Position in `listValues` after `previous` (hour = 1 … year = 4).
    pub fn list_position(self) -> usize {
        self as usize + 1
    }

    /// Unix milliseconds at the start of the period of this kind that contains `ms`.
    ///
    /// ```
    /// use lavabeacon_format::time::{Period, parse_time_stamp};
    /// let t = parse_time_stamp("2018-08-30T17:43:00.000Z").unwrap();
    /// let start = Period::Month.start_of(t).unwrap();
    /// assert_eq!(start, parse_time_stamp("2018-08-01T00:00:00.000Z").unwrap());
    /// ```
    pub fn start_of(self, ms: i64) -> Option<i64> {
        let t = Utc.timestamp_millis_opt(ms).single()?;
        let start = match self {
            Period::Hour => t.date_naive().and_hms_opt(t.hour(), 0, 0)?,
            Period::Day => t.date_naive().and_hms_opt(0, 0, 0)?,
            Period::Month => {
                NaiveDate::from_ymd_opt(t.year(), t.month(), 1)?.and_hms_opt(0, 0, 0)?
            }
            Period::Year => NaiveDate::from_ymd_opt(t.year(), 1, 1)?.and_hms_opt(0, 0, 0)?,
        };
        Some(start.and_utc().timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_rfc3339_forms_agree() {
        let a = parse_time_stamp("2018-08-30T17:43:00.000Z").unwrap();
        let b = parse_time_stamp("2018-08-30T19:43:00+02:00").unwrap();
        assert_eq!(a, b);
        assert!(is_canonical("2018-08-30T17:43:00.000Z"));
        assert!(!is_canonical("2018-08-30T19:43:00+02:00"));
        assert_eq!(format_time_stamp(a).unwrap(), "2018-08-30T17:43:00.000Z");
    }

    #[test]
    fn rejects_garbage_and_impossible_dates() {
        for bad in [
            "",
            "yesterday",
            "2018-02-30T00:00:00.000Z",
            "2018-08-30T25:00:00.000Z",
        ] {
            assert!(parse_time_stamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn period_starts_are_utc_boundaries() {
        let t = parse_time_stamp("2024-12-31T23:59:00.000Z").unwrap();
        let at = |s| parse_time_stamp(s).unwrap();
        assert_eq!(
            Period::Hour.start_of(t),
            Some(at("2024-12-31T23:00:00.000Z"))
        );
        assert_eq!(
            Period::Day.start_of(t),
            Some(at("2024-12-31T00:00:00.000Z"))
        );
        assert_eq!(
            Period::Month.start_of(t),
            Some(at("2024-12-01T00:00:00.000Z"))
        );
        assert_eq!(
            Period::Year.start_of(t),
            Some(at("2024-01-01T00:00:00.000Z"))
        );
    }
}
