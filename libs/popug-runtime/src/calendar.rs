//! Days in the company's time zone (`POPUG_TIMEZONE`): a billing day, a
//! dashboard day and "today" all mean the same calendar date there.
//!
//! A request's day is parsed by `popug_input::day`, the rule events' days
//! follow too: strict `YYYY-MM-DD` from 2000-01-01 to 2999-12-31, anything
//! else `INVALID_ARGUMENT` naming the field.

use chrono::{NaiveDate, TimeZone as _};

use crate::ApiError;

/// The billing day of an instant.
pub fn day_of(at: chrono::DateTime<chrono::Utc>, timezone: chrono_tz::Tz) -> NaiveDate {
    timezone.from_utc_datetime(&at.naive_utc()).date_naive()
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
pub fn next_midnight(
    now: chrono::DateTime<chrono::Utc>,
    timezone: chrono_tz::Tz,
) -> chrono::DateTime<chrono::Utc> {
    let tomorrow = day_of(now, timezone).succ_opt().unwrap_or(NaiveDate::MAX);
    let midnight = tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A midnight skipped by a DST change: the earliest valid instant after it.
    timezone
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            timezone
                .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or(now + chrono::Duration::hours(24), |at| {
            at.with_timezone(&chrono::Utc)
        })
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
