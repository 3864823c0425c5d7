//! Days in the company's time zone (`POPUG_TIMEZONE`): a billing day, a
//! dashboard day and "today" all mean the same calendar date there.

use chrono::{NaiveDate, TimeZone as _};

use crate::ApiError;

/// The billing day of an instant.
pub fn day_of(at: chrono::DateTime<chrono::Utc>, timezone: chrono_tz::Tz) -> NaiveDate {
    timezone.from_utc_datetime(&at.naive_utc()).date_naive()
}

/// Parses a request's `YYYY-MM-DD`, or `default` when empty.
pub fn parse_day(
    field: &'static str,
    value: &str,
    default: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    if value.is_empty() {
        return Ok(default);
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, format!("`{value}` is not a date like 2026-11-22")))
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
