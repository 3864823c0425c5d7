//! Days: `YYYY-MM-DD`, a real calendar date from [`FIRST`] to [`LAST`].
//!
//! Every day popug takes in is parsed here: a request's `date`, `from` and
//! `to`, and an event's `day`. The form is strict (ten characters: a
//! four-digit year, a two-digit month and day, two dashes; no sign, no
//! spaces, no short forms such as `2026-1-5`), and the date must exist in
//! the calendar. The range holds every day the company can mean (popug did
//! not exist before 2000) and keeps every accepted day, and the ranges
//! built from it, far inside what chrono and Postgres' `date` can hold, so
//! no day a caller sends can make a query fail: outside the range is
//! `INVALID_ARGUMENT` naming the field, never `INTERNAL`.

use chrono::NaiveDate;

use crate::{Invalid, text::quote};

/// The first day popug accepts.
pub const FIRST: NaiveDate = ymd(2000, 1, 1);
/// The last day popug accepts.
pub const LAST: NaiveDate = ymd(2999, 12, 31);

const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("a constant day exists"),
    }
}

/// Parses `value` as the field `field`: `YYYY-MM-DD`, a day of the
/// calendar, from [`FIRST`] to [`LAST`].
pub fn parse(field: &'static str, value: &str) -> Result<NaiveDate, Invalid> {
    let bytes = value.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(Invalid::new(
            field,
            format!("{} is not a day like 2026-11-22 (YYYY-MM-DD)", quote(value)),
        ));
    }
    let number = |range: std::ops::Range<usize>| {
        value[range]
            .bytes()
            .fold(0_u32, |n, digit| n * 10 + u32::from(digit - b'0'))
    };
    let year = i32::try_from(number(0..4)).unwrap_or(i32::MAX);
    let day = NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)).ok_or_else(|| {
        Invalid::new(
            field,
            format!("{} is not a day of the calendar", quote(value)),
        )
    })?;
    if !(FIRST..=LAST).contains(&day) {
        return Err(Invalid::new(
            field,
            format!("{} is outside {FIRST}..={LAST}", quote(value)),
        ));
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn days_of_the_range_parse() {
        assert_eq!(parse("date", "2026-11-22"), Ok(ymd(2026, 11, 22)));
        assert_eq!(parse("date", "2000-01-01"), Ok(FIRST));
        assert_eq!(parse("date", "2999-12-31"), Ok(LAST));
        assert_eq!(parse("date", "2028-02-29"), Ok(ymd(2028, 2, 29)));
    }

    #[test]
    fn anything_else_is_refused_naming_the_field() {
        for bad in [
            "",
            "-5000-01-01",
            "+2026-11-22",
            "1999-12-31",
            "3000-01-01",
            "0000-01-01",
            "9999-12-31",
            "2026-99-99",
            "2026-02-30",
            "2027-02-29",
            "2026-00-10",
            "2026-1-5",
            " 2026-11-22",
            "2026-11-22 ",
            "2026/11/22",
            "22.11.2026",
            "2026-11-22\0",
            "２０２６-１１-２２",
            "yesterday",
        ] {
            let error = parse("from", bad).expect_err(bad);
            assert_eq!(error.field, "from", "{bad}");
            assert!(error.to_string().contains("`from`"), "{error}");
        }
    }

    proptest! {
        #[test]
        fn any_string_parses_only_to_a_day_of_the_range_that_round_trips(value in any::<String>()) {
            if let Ok(day) = parse("day", &value) {
                prop_assert!((FIRST..=LAST).contains(&day));
                prop_assert_eq!(day.to_string(), value);
            }
        }

        #[test]
        fn day_shaped_strings_never_panic_and_round_trip(value in "[0-9]{4}-[0-9]{2}-[0-9]{2}") {
            match parse("day", &value) {
                Ok(day) => {
                    prop_assert!((FIRST..=LAST).contains(&day));
                    prop_assert_eq!(day.to_string(), value);
                }
                Err(error) => {
                    prop_assert_eq!(error.field, "day");
                    let in_range = NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                        .is_ok_and(|day| (FIRST..=LAST).contains(&day));
                    prop_assert!(!in_range, "{value} is a day of the range");
                }
            }
        }

        #[test]
        fn every_day_of_the_range_is_accepted(offset in 0..=(LAST - FIRST).num_days()) {
            let day = FIRST + chrono::Days::new(offset.unsigned_abs());
            prop_assert_eq!(parse("day", &day.to_string()), Ok(day));
        }

        #[test]
        fn any_bytes_never_panic(bytes in any::<Vec<u8>>()) {
            let value = String::from_utf8_lossy(&bytes);
            if let Ok(day) = parse("day", &value) {
                prop_assert!((FIRST..=LAST).contains(&day));
            }
        }
    }
}
