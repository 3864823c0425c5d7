//! Which characters a text field may hold.
//!
//! Every text field of every request and every event (titles, jira ids,
//! descriptions, names, logins, emails, passwords, tokens) passes one of two
//! rules, so a NUL (which Postgres refuses in `text`) or an escape sequence
//! (which would end up in a notification file, an email header or a
//! terminal) never gets in:
//!
//! - [`single_line`], for every field but one: no control character at all
//!   (C0 `U+0000..=U+001F`, DEL `U+007F`, C1 `U+0080..=U+009F`) and no
//!   Unicode line or paragraph separator (`U+2028`, `U+2029`).
//! - [`multi_line`], for task descriptions only: the same, except that line
//!   feed (`\n`) and tab (`\t`) are allowed. A carriage return is not: CRLF
//!   line endings become `\n` at the edge ([`normalize_line_endings`]), and
//!   a lone one is refused.
//!
//! Anything else that Unicode calls a character is allowed: any script,
//! emoji with their joiners, right-to-left marks. Each field's own rules
//! (lengths, shapes such as a login's alphabet) come on top of these.

use std::borrow::Cow;

use crate::Invalid;

/// Whether `c` is refused in every field: a control character or a Unicode
/// line or paragraph separator.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` is refused in a multi-line field: as [`is_forbidden`], but
/// line feed and tab are allowed.
pub fn is_forbidden_in_multi_line(c: char) -> bool {
    is_forbidden(c) && !matches!(c, '\n' | '\t')
}

/// A one-line text field: no control character and no line separator.
pub fn single_line(field: &'static str, value: &str) -> Result<(), Invalid> {
    check(field, value, is_forbidden, "")
}

/// A multi-line text field (task descriptions): as [`single_line`], but
/// line feeds and tabs are allowed.
pub fn multi_line(field: &'static str, value: &str) -> Result<(), Invalid> {
    check(
        field,
        value,
        is_forbidden_in_multi_line,
        "; only line feeds (\\n) and tabs (\\t) are allowed",
    )
}

fn check(
    field: &'static str,
    value: &str,
    forbidden: fn(char) -> bool,
    hint: &str,
) -> Result<(), Invalid> {
    match value.chars().enumerate().find(|&(_, c)| forbidden(c)) {
        None => Ok(()),
        Some((position, c)) => Err(Invalid::new(
            field,
            format!(
                "must not contain {} (U+{:04X}, character {}){hint}",
                describe(c),
                u32::from(c),
                position + 1
            ),
        )),
    }
}

fn describe(c: char) -> &'static str {
    match c {
        '\0' => "NUL",
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => "a line break",
        _ => "a control character",
    }
}

/// `value` with CRLF line endings turned into `\n`, as a multi-line field
/// is stored (text pasted from Windows keeps its lines; a lone `\r` is left
/// for [`multi_line`] to refuse).
pub fn normalize_line_endings(value: &str) -> Cow<'_, str> {
    if value.contains("\r\n") {
        Cow::Owned(value.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(value)
    }
}

/// How error messages show a value a caller sent: between backticks, every
/// forbidden character escaped as `\u{..}`, cut after 64 characters. A
/// message never carries a caller's control characters (they would reach
/// logs and terminals) or an unbounded copy of its input.
pub fn quote(value: &str) -> String {
    const SHOWN: usize = 64;
    let mut quoted = String::from("`");
    for (position, c) in value.chars().enumerate() {
        if position == SHOWN {
            quoted.push('…');
            break;
        }
        if is_forbidden(c) {
            quoted.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            quoted.push(c);
        }
    }
    quoted.push('`');
    quoted
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn printable_text_of_any_script_passes() {
        for good in [
            "Feed the chicks",
            "Кеша",
            "ケシャ",
            "ياسمين",
            "👩‍👩‍👧 family",
            "a\u{200f}b",
            "",
        ] {
            assert_eq!(single_line("title", good), Ok(()), "{good}");
            assert_eq!(multi_line("description", good), Ok(()), "{good}");
        }
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        for bad in [
            "nul\0here",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "cr\rhere",
            "lf\nhere",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            "c1\u{9b}31m",
            "line\u{2028}separator",
            "paragraph\u{2029}separator",
        ] {
            let error = single_line("title", bad).expect_err(bad);
            assert_eq!(error.field, "title");
            assert!(error.to_string().contains("`title`"), "{error}");
        }
        let error = single_line("name", "nul\0").expect_err("NUL");
        assert_eq!(
            error.reason, "must not contain NUL (U+0000, character 4)",
            "{error}"
        );
    }

    #[test]
    fn descriptions_may_hold_line_feeds_and_tabs_only() {
        assert_eq!(multi_line("description", "one\n\ttwo\n"), Ok(()));
        for bad in ["cr\rlf", "nul\0", "esc\u{1b}", "bell\u{7}", "\u{2028}"] {
            let error = multi_line("description", bad).expect_err(bad);
            assert_eq!(error.field, "description");
        }
        assert_eq!(normalize_line_endings("a\r\nb\r\n"), "a\nb\n");
        assert_eq!(normalize_line_endings("a\rb"), "a\rb");
        assert!(matches!(normalize_line_endings("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn quoting_escapes_and_bounds_what_it_shows() {
        assert_eq!(quote("42"), "`42`");
        assert_eq!(quote("a\0b\u{1b}"), "`a\\u{0}b\\u{1b}`");
        let long = quote(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), 64 + 3);
        assert!(long.ends_with("…`"));
    }

    proptest! {
        #[test]
        fn any_string_with_a_forbidden_character_is_refused(
            before in any::<String>(),
            bad in prop_oneof![
                Just('\0'),
                (0_u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('\0')),
                (0x7f_u32..0xa0).prop_map(|c| char::from_u32(c).unwrap_or('\0')),
                Just('\u{2028}'),
                Just('\u{2029}'),
            ],
            after in any::<String>(),
        ) {
            let value = format!("{before}{bad}{after}");
            prop_assert!(single_line("field", &value).is_err());
            if !matches!(bad, '\n' | '\t') {
                prop_assert!(multi_line("field", &value).is_err());
            }
        }

        #[test]
        fn whatever_passes_holds_no_forbidden_character(value in any::<String>()) {
            if single_line("field", &value).is_ok() {
                let separator = |c: char| matches!(c, '\u{2028}' | '\u{2029}');
                prop_assert!(!value.chars().any(|c| c.is_control() || separator(c)), "{:?}", value);
            }
            if multi_line("field", &value).is_ok() {
                prop_assert!(!value.contains('\0') && !value.contains('\r'));
                prop_assert!(value.chars().all(|c| c == '\n' || c == '\t' || !is_forbidden(c)));
            }
        }

        #[test]
        fn any_bytes_read_as_text_never_panic_and_nul_never_passes(bytes in any::<Vec<u8>>()) {
            let value = String::from_utf8_lossy(&bytes);
            let single = single_line("field", &value);
            let multi = multi_line("field", &normalize_line_endings(&value));
            if bytes.contains(&0) {
                prop_assert!(single.is_err() && multi.is_err());
            }
            let quoted = quote(&value);
            prop_assert!(!quoted.chars().any(is_forbidden));
            // 64 characters at most, each escaped in at most 8 (`\u{2029}`).
            prop_assert!(quoted.chars().count() <= 64 * 8 + 3);
        }

        #[test]
        fn normalizing_drops_the_cr_of_each_crlf_only(value in "[a-z\r\n]{0,40}") {
            let normalized = normalize_line_endings(&value);
            prop_assert_eq!(normalized.matches('\n').count(), value.matches('\n').count());
            prop_assert_eq!(
                normalized.matches('\r').count(),
                value.matches('\r').count() - value.matches("\r\n").count()
            );
        }
    }
}
