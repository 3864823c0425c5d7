//! Keyset paging for the list RPCs, written once: the same size rules and
//! the same token shape (the last item's position) in every service.

use std::{fmt::Display, str::FromStr};

use crate::ApiError;

/// Items per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// The most items a page may hold.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// How many items at most.
    pub size: i64,
    /// The position after which the page starts; `None` for the first page.
    pub after: Option<T>,
}

/// Parses a request's `page_size` (0 means the default) and `page_token`
/// (empty for the first page, else a position from [`next_token`]). A
/// token is text like any other: one line, no control character, so a NUL
/// never reaches a query (`popug_input::text`).
pub fn page<T: FromStr>(page_size: u32, page_token: &str) -> Result<Page<T>, ApiError> {
    popug_input::text::single_line("page_token", page_token)?;
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n <= MAX_PAGE_SIZE => i64::from(n),
        n => {
            return Err(ApiError::invalid(
                "page_size",
                format!("{n} is more than {MAX_PAGE_SIZE}"),
            ));
        }
    };
    let after =
        match page_token {
            "" => None,
            token => Some(token.parse().map_err(|_| {
                ApiError::invalid("page_token", "is not a token from a previous page")
            })?),
        };
    Ok(Page { size, after })
}

/// The token of the page after `items`: the last item's `position`, or empty
/// when the page is not full (it was the last one).
pub fn next_token<I, P: Display>(items: &[I], size: i64, position: impl Fn(&I) -> P) -> String {
    match items.last() {
        Some(last) if i64::try_from(items.len()).unwrap_or(0) == size => position(last).to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tokens() {
        assert_eq!(page::<i64>(0, "").expect("default").size, DEFAULT_PAGE_SIZE);
        assert_eq!(page::<i64>(7, "42").expect("valid").after, Some(42));
        assert!(matches!(
            page::<i64>(1001, ""),
            Err(ApiError::InvalidArgument {
                field: "page_size",
                ..
            })
        ));
        assert!(matches!(
            page::<i64>(10, "x"),
            Err(ApiError::InvalidArgument {
                field: "page_token",
                ..
            })
        ));
        for hostile in ["kesha\0", "kesha\u{1b}[2J", "a\nb"] {
            assert!(matches!(
                page::<String>(10, hostile),
                Err(ApiError::InvalidArgument {
                    field: "page_token",
                    ..
                })
            ));
        }
        assert_eq!(next_token(&[1, 2], 2, |n| *n), "2");
        assert_eq!(next_token(&[1], 2, |n| *n), "");
    }
}
