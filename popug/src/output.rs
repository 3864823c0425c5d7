//! Printing results: aligned tables for people, `--json` for scripts.

#![allow(clippy::print_stdout)] // printing is this module's job

use serde_json::Value;

/// Prints `rows` (objects with the `columns` keys) as a table or as JSON.
pub(crate) fn print(json: bool, columns: &[&str], rows: &[Value]) {
    if json {
        let value = if rows.len() == 1 {
            rows[0].clone()
        } else {
            Value::Array(rows.to_vec())
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return;
    }
    let cell = |row: &Value, column: &str| match &row[column] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|column| {
            rows.iter()
                .map(|row| cell(row, column).chars().count())
                .max()
                .unwrap_or(0)
                .max(column.len())
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!(
        "{}",
        line(columns.iter().map(|column| column.to_uppercase()).collect())
    );
    for row in rows {
        println!(
            "{}",
            line(columns.iter().map(|column| cell(row, column)).collect())
        );
    }
}

/// Prints one JSON value as it is (what `--json` prints of a report).
pub(crate) fn print_json(value: Value) {
    print(true, &[], &[value]);
}

/// Prints a list: a table, or with `--json` one JSON array (even of one row).
pub(crate) fn print_list(json: bool, columns: &[&str], rows: Vec<Value>) {
    if json {
        print(true, columns, &[Value::Array(rows)]);
    } else {
        print(false, columns, &rows);
    }
}

/// Cents as dollars, for people: `-12.05`.
pub(crate) fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// A protobuf timestamp as RFC 3339, or null.
pub(crate) fn time(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp
        .and_then(|ts| chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?))
        .map_or(Value::Null, |time| {
            Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        })
}

/// A line for people beside the output (on stderr, so `--json` and pipes
/// get the output alone).
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}
