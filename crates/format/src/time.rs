//! The one place that maps pulse timestamps to instants and to the periods of the skip list.
//!
//! A pulse's `timeStamp` is signed as text, so the text is kept verbatim in [`crate::Pulse`];
//! this module turns it into Unix milliseconds and back, and finds the UTC hour, day, month and
//! year that contain an instant.
//!
//! Over 400 lines only with its unit tests below (the code is about 310): stamps, periods and
//! the parsing of times typed by people share one error vocabulary and are tested side by side.

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

    /// Unix milliseconds at the start of the period after the one that contains `ms`.
    pub fn next_start(self, ms: i64) -> Option<i64> {
        // Step past the end of this period (no period is longer than these steps, none shorter
        // than the step minus a period), then take the start of the one stepped into.
        let start = self.start_of(ms)?;
        let step = match self {
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
            Period::Month => 32 * 86_400_000,
            Period::Year => 367 * 86_400_000,
        };
        self.start_of(start.checked_add(step)?)
    }
}

/// A beacon's slots: pulses are due at whole multiples of the period, in Unix milliseconds.
/// The one home of slot arithmetic, for the builder, the verifier, the engine and the API.
///
/// ```
/// use lavabeacon_format::time::Slots;
/// let s = Slots::new(60_000).unwrap();
/// assert!(s.is_slot(120_000));
/// assert_eq!(s.at_or_before(179_999), 120_000);
/// assert_eq!(s.at_or_after(120_001), 180_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    period_ms: i64,
}

impl Slots {
    /// The slots of a period of `period_ms` milliseconds; `None` for a period of 0.
    pub fn new(period_ms: u32) -> Option<Slots> {
        (period_ms > 0).then(|| Slots {
            period_ms: i64::from(period_ms),
        })
    }

    /// The period, milliseconds.
    pub fn period_ms(self) -> i64 {
        self.period_ms
    }

    /// Whether `ms` is a slot (a whole multiple of the period).
    pub fn is_slot(self, ms: i64) -> bool {
        ms.rem_euclid(self.period_ms) == 0
    }

    /// The latest slot at or before `ms`.
    pub fn at_or_before(self, ms: i64) -> i64 {
        ms - ms.rem_euclid(self.period_ms)
    }

    /// The earliest slot at or after `ms`.
    pub fn at_or_after(self, ms: i64) -> i64 {
        let floor = self.at_or_before(ms);
        if floor == ms {
            ms
        } else {
            floor.saturating_add(self.period_ms)
        }
    }

    /// The slot `n` periods after `ms` (saturating).
    pub fn after(self, ms: i64, n: i64) -> i64 {
        ms.saturating_add(self.period_ms.saturating_mul(n))
    }
}

// ---------------------------------------------------------------------------------------------
// Times and indexes typed by people: in URLs, on the command line.

/// A time or index typed by a person that cannot be read; the text says what would have been
/// accepted, with an example.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Times in URLs and on the command line: RFC 3339 (`2026-11-21T10:00:00Z`), Unix
/// milliseconds or Unix seconds; a number is told apart by size: below 100,000,000,000 it is
/// seconds (every date up to the year 5138), from there on milliseconds (every date from March
/// 1973). NIST's own paths take milliseconds only ([`parse_millis`]).
///
/// Numbers below this are seconds, from here on milliseconds.
pub const SECONDS_BELOW: i64 = 100_000_000_000;

/// The latest instant we accept (year 9999), so arithmetic on times never overflows.
pub const LATEST_MS: i64 = 253_402_300_799_999;

const EXAMPLE: &str =
    "use RFC 3339 (2026-11-21T10:00:00Z), Unix seconds (1795255200) or Unix milliseconds (1795255200000)";

/// Parses a time in any of the accepted forms into Unix milliseconds (an RFC 3339 time outside
/// 1970..9999 becomes the nearest edge: [`clamped`]).
pub fn parse_when(text: &str) -> Result<i64, BadInput> {
    let shown: String = text.chars().take(40).collect();
    if let Some(digits) = text.strip_prefix('-') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadInput(format!(
                "time {shown:?} is negative: the beacon has no pulses before 1970; {EXAMPLE}"
            )));
        }
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = text
            .parse()
            .map_err(|_| BadInput(format!("time {shown:?} is out of range; {EXAMPLE}")))?;
        let ms = if n < SECONDS_BELOW { n * 1000 } else { n };
        return in_range(ms, &shown);
    }
    match parse_time_stamp(text) {
        Ok(ms) => Ok(clamped(ms)),
        Err(_) => Err(BadInput(format!("time {shown:?} is not a time; {EXAMPLE}"))),
    }
}

/// Parses NIST's form: Unix milliseconds (RFC 3339 is accepted too; it cannot be mistaken).
pub fn parse_millis(text: &str) -> Result<i64, BadInput> {
    let shown: String = text.chars().take(40).collect();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = text.parse().map_err(|_| {
            BadInput(format!(
                "time {shown:?} is out of range; NIST paths take Unix milliseconds, e.g. 1795255200000"
            ))
        })?;
        return in_range(ms, &shown);
    }
    match parse_time_stamp(text) {
        Ok(ms) => Ok(clamped(ms)),
        Err(_) => Err(BadInput(format!(
            "time {shown:?} is not a time; NIST paths take Unix milliseconds, e.g. 1795255200000"
        ))),
    }
}

/// An RFC 3339 time (any year from 1 to 9999, any offset) as the nearest instant in
/// 1970..9999: no pulse lies outside that range, so every question about a time before or
/// after it ("the first pulse at or after", "the newest before") has the same answer at its
/// edge, and arithmetic on it cannot overflow. Numbers are refused instead ([`in_range`]):
/// a negative or huge number is a mistake, a date in 1066 is a question.
fn clamped(ms: i64) -> i64 {
    ms.clamp(0, LATEST_MS)
}

fn in_range(ms: i64, shown: &str) -> Result<i64, BadInput> {
    if !(0..=LATEST_MS).contains(&ms) {
        return Err(BadInput(format!(
            "time {shown:?} is outside 1970..9999; {EXAMPLE}"
        )));
    }
    Ok(ms)
}

/// Parses a chain or pulse index.
pub fn parse_index(what: &str, text: &str) -> Result<u64, BadInput> {
    let shown: String = text.chars().take(40).collect();
    match text.parse::<u64>() {
        Ok(n) if n >= 1 && n <= i64::MAX as u64 => Ok(n),
        _ => Err(BadInput(format!(
            "{what} {shown:?} is not an index: use a whole number from 1, e.g. 1"
        ))),
    }
}

/// Reads a period such as `1s`, `60s` or `1m` (a bare number is seconds) as milliseconds:
/// whole seconds, at least one.
pub fn parse_period(text: &str) -> Result<u32, BadInput> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let n: u64 = num
        .parse()
        .map_err(|_| BadInput(format!("period {text:?}: expected e.g. 1s, 60s or 1m")))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" | "min" => n * 60_000,
        _ => {
            return Err(BadInput(format!(
                "period {text:?}: unit must be ms, s or m"
            )))
        }
    };
    if ms < 1000 || ms % 1000 != 0 {
        return Err(BadInput(format!(
            "period {text:?}: whole seconds, at least 1s"
        )));
    }
    u32::try_from(ms).map_err(|_| BadInput(format!("period {text:?} is too long")))
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

    #[test]
    fn next_period_starts_cross_month_and_leap_year_ends() {
        let at = |s| parse_time_stamp(s).unwrap();
        let t = at("2024-02-29T23:59:00.000Z");
        assert_eq!(
            Period::Hour.next_start(t),
            Some(at("2024-03-01T00:00:00.000Z"))
        );
        assert_eq!(
            Period::Day.next_start(t),
            Some(at("2024-03-01T00:00:00.000Z"))
        );
        assert_eq!(
            Period::Month.next_start(t),
            Some(at("2024-03-01T00:00:00.000Z"))
        );
        assert_eq!(
            Period::Year.next_start(t),
            Some(at("2025-01-01T00:00:00.000Z"))
        );
        let jan = at("2023-01-31T12:00:00.000Z");
        assert_eq!(
            Period::Month.next_start(jan),
            Some(at("2023-02-01T00:00:00.000Z"))
        );
    }

    #[test]
    fn slots_round_down_and_up_to_period_boundaries_before_1970_too() {
        assert!(Slots::new(0).is_none());
        let s = Slots::new(1_000).unwrap();
        assert_eq!(s.at_or_before(-1), -1_000);
        assert_eq!(s.at_or_after(-1), 0);
        assert_eq!(s.at_or_after(0), 0);
        assert_eq!(s.at_or_after(1), 1_000);
        assert!(s.is_slot(-2_000) && !s.is_slot(1_500));
        assert_eq!(s.after(1_000, 3), 4_000);
    }

    // Times typed by people.

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
    fn rfc3339_times_outside_1970_to_9999_are_their_nearest_edge() {
        assert_eq!(parse_when("1066-10-14T09:00:00Z").unwrap(), 0);
        assert_eq!(parse_millis("0001-01-01T00:00:00+23:59").unwrap(), 0);
        assert_eq!(parse_when("1970-01-01T00:00:00+01:00").unwrap(), 0);
        assert_eq!(parse_when("9999-12-31T23:59:59-05:00").unwrap(), LATEST_MS);
        assert_eq!(parse_millis("1970-01-01T00:00:01Z").unwrap(), 1_000);
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
            assert!(matches!(e, BadInput(_)), "{bad:?}");
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

    #[test]
    fn periods_are_whole_seconds_in_s_m_or_ms() {
        assert_eq!(parse_period("1s"), Ok(1000));
        assert_eq!(parse_period("60"), Ok(60_000));
        assert_eq!(parse_period("2m"), Ok(120_000));
        assert_eq!(parse_period("5000ms"), Ok(5000));
        assert!(parse_period("500ms").is_err());
        assert!(parse_period("1500ms").is_err());
        assert!(parse_period("soon").is_err());
    }
}
