//! Days in the company's time zone (`POPUG_TIMEZONE`): a billing day, a
//! dashboard day and "today" all mean the same calendar date there.
//!
//! A request's day is parsed by `popug_input::day`, the rule events' days
//! follow too: strict `YYYY-MM-DD` from 2000-01-01 to 2999-12-31, anything
//! else `INVALID_ARGUMENT` naming the field.

use std::{fmt, str::FromStr};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::ApiError;

/// The company's time zone: a zone of the IANA database (`Europe/Berlin`,
/// daylight saving time included) or a fixed offset from UTC (`+05:30`,
/// `-03:00`, `UTC+08:45:30`). A fixed offset also lets a test place a
/// midnight, and so a day's close, at the second it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timezone {
    /// A named zone.
    Named(chrono_tz::Tz),
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

impl Timezone {
    /// Coordinated Universal Time, the default.
    pub const UTC: Self = Self::Named(chrono_tz::UTC);

    /// The calendar date at `at`.
    pub fn date_at(self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            Self::Named(zone) => zone.from_utc_datetime(&at.naive_utc()).date_naive(),
            Self::Fixed(offset) => offset.from_utc_datetime(&at.naive_utc()).date_naive(),
        }
    }

    /// The earliest instant that reads `local` here, if any (a time that
    /// daylight saving time skips reads nowhere).
    pub fn earliest(self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn earliest<Z: TimeZone>(zone: &Z, local: &NaiveDateTime) -> Option<DateTime<Utc>> {
            zone.from_local_datetime(local)
                .earliest()
                .map(|at| at.with_timezone(&Utc))
        }
        match self {
            Self::Named(zone) => earliest(&zone, &local),
            Self::Fixed(offset) => earliest(&offset, &local),
        }
    }

    /// The first instant of `day`: its midnight, or for a midnight that
    /// daylight saving time skips, the earliest valid instant an hour later.
    pub fn start_of(self, day: NaiveDate) -> Option<DateTime<Utc>> {
        let midnight = day.and_hms_opt(0, 0, 0)?;
        self.earliest(midnight)
            .or_else(|| self.earliest(midnight + chrono::Duration::hours(1)))
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(zone) => f.write_str(zone.name()),
            Self::Fixed(offset) => write!(f, "{offset}"),
        }
    }
}

/// Why a `POPUG_TIMEZONE` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is neither a time zone name (such as `Europe/Berlin`) nor an offset from UTC \
     within a day (such as `+05:30` or `UTC-03:00`)"
)]
pub struct TimezoneError(String);

impl FromStr for Timezone {
    type Err = TimezoneError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if let Ok(zone) = value.parse::<chrono_tz::Tz>() {
            return Ok(Self::Named(zone));
        }
        parse_offset(value.strip_prefix("UTC").unwrap_or(value))
            .map(Self::Fixed)
            .ok_or_else(|| TimezoneError(value.chars().take(64).collect()))
    }
}

/// `+HH:MM` or `+HH:MM:SS` (or `-`), less than a day.
fn parse_offset(value: &str) -> Option<FixedOffset> {
    let (sign, rest) = match value.as_bytes().first()? {
        b'+' => (1, &value[1..]),
        b'-' => (-1, &value[1..]),
        _ => return None,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|part| part.len() != 2) {
        return None;
    }
    let mut seconds = 0;
    for (part, (unit, limit)) in parts.iter().zip([(3600, 24), (60, 60), (1, 60)]) {
        if !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        let number: i32 = part.parse().ok()?;
        if number >= limit {
            return None;
        }
        seconds += number * unit;
    }
    FixedOffset::east_opt(sign * seconds)
}

/// The billing day of an instant.
pub fn day_of(at: DateTime<Utc>, timezone: Timezone) -> NaiveDate {
    timezone.date_at(at)
}

/// Parses a request's `YYYY-MM-DD` (`popug_input::day`), or `default` when empty.
pub fn parse_day(
    field: &'static str,
    value: &str,
    default: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    if value.is_empty() {
        return Ok(default);
    }
    Ok(popug_input::day::parse(field, value)?)
}

/// The next midnight after `now` in `timezone`, as an instant.
pub fn next_midnight(now: DateTime<Utc>, timezone: Timezone) -> DateTime<Utc> {
    let tomorrow = day_of(now, timezone).succ_opt().unwrap_or(NaiveDate::MAX);
    timezone
        .start_of(tomorrow)
        .unwrap_or(now + chrono::Duration::hours(24))
}

/// A request's `from` and `to` days (each defaulting to `today`): in order
/// and at most 366 days apart.
pub fn parse_range(
    from: &str,
    to: &str,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = parse_day("from", from, today)?;
    let to = parse_day("to", to, today)?;
    if from > to {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() > 366 {
        return Err(ApiError::invalid(
            "to",
            "the range may span at most 366 days",
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(value: &str) -> NaiveDate {
        NaiveDate::parse_from_str(value, "%Y-%m-%d").expect("a day")
    }

    fn field_of<T: std::fmt::Debug>(result: Result<T, ApiError>) -> &'static str {
        match result {
            Err(ApiError::InvalidArgument { field, .. }) => field,
            other => panic!("not an invalid argument: {other:?}"),
        }
    }

    #[test]
    fn request_days_follow_the_one_day_rule() {
        let today = day("2026-11-22");
        assert_eq!(parse_day("date", "", today).ok(), Some(today));
        assert_eq!(
            parse_day("date", "2000-01-01", today).ok(),
            Some(day("2000-01-01"))
        );
        for bad in [
            "-5000-01-01",
            "2026-99-99",
            "1999-12-31",
            "3000-01-01",
            "2026-1-5",
            "x\0",
        ] {
            assert_eq!(field_of(parse_day("date", bad, today)), "date", "{bad}");
        }
    }

    #[test]
    fn a_time_zone_is_a_name_or_a_fixed_offset() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T23:30:00Z")
            .expect("time")
            .to_utc();
        let zone = |value: &str| value.parse::<Timezone>();
        assert_eq!(zone("UTC"), Ok(Timezone::UTC));
        assert_eq!(
            zone("Europe/Berlin").map(|tz| tz.to_string()).as_deref(),
            Ok("Europe/Berlin")
        );
        for (value, shown, date, midnight) in [
            (
                "+05:30",
                "+05:30",
                "2026-11-23",
                "2026-11-23T18:30:00+00:00",
            ),
            (
                "UTC-03:00",
                "-03:00",
                "2026-11-22",
                "2026-11-23T03:00:00+00:00",
            ),
            (
                "+00:29:59",
                "+00:29:59",
                "2026-11-22",
                "2026-11-22T23:30:01+00:00",
            ),
        ] {
            let timezone = zone(value).expect(value);
            assert_eq!(timezone.to_string(), shown);
            assert_eq!(day_of(at, timezone).to_string(), date, "{value}");
            assert_eq!(
                next_midnight(at, timezone).to_rfc3339(),
                midnight,
                "{value}"
            );
        }
        for bad in [
            "",
            "Mars/Olympus_Mons",
            "+5:30",
            "+24:00",
            "-05:60",
            "+05:30:",
            "05:30",
            "+0a:00",
            "+05:30:60",
            "UTC+",
            "+٠٥:٣٠",
        ] {
            let error = zone(bad).expect_err(bad).to_string();
            assert!(error.contains("neither a time zone name"), "{bad}: {error}");
        }
    }

    #[test]
    fn ranges_name_the_field_at_fault() {
        let today = day("2026-11-22");
        assert_eq!(
            parse_range("2026-11-01", "", today).ok(),
            Some((day("2026-11-01"), today))
        );
        assert_eq!(field_of(parse_range("-5000-01-01", "", today)), "from");
        assert_eq!(field_of(parse_range("", "+2026-11-22", today)), "to");
        assert_eq!(
            field_of(parse_range("2026-12-01", "2026-11-01", today)),
            "from"
        );
        assert_eq!(
            field_of(parse_range("2000-01-01", "2999-12-31", today)),
            "to"
        );
    }
}
