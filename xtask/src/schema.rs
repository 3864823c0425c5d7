//! `cargo xtask schema`: each crate's `schema.rs` is what `diesel
//! print-schema` says of a database migrated with that crate's migrations,
//! so diesel's view of the tables cannot drift from the tables.
//!
//! A service's database holds the bus's tables too (its migrations run
//! first); those belong to `popug-bus`'s `schema.rs`, so a service's file
//! leaves them out.

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use crate::{Result, output, psql};

/// A crate whose `schema.rs` is generated.
struct Schema {
    /// Its directory, also the home of its `migrations/`.
    dir: &'static str,
    /// Whether its database has the bus's tables under its own.
    on_the_bus: bool,
}

const SCHEMAS: [Schema; 4] = [
    Schema {
        dir: "libs/popug-bus",
        on_the_bus: false,
    },
    Schema {
        dir: "auth-svc",
        on_the_bus: true,
    },
    Schema {
        dir: "tracker-svc",
        on_the_bus: true,
    },
    Schema {
        dir: "billing-svc",
        on_the_bus: true,
    },
];

/// The Postgres server the databases are made on (the tests' one).
const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// Checks (or with `write`, regenerates) every `schema.rs` under `root`.
pub(crate) fn run(root: &Path, write: bool) -> Result {
    let bus_tables = tables(&print(root, &SCHEMAS[0], &[])?);
    let mut stale = Vec::new();
    for schema in &SCHEMAS {
        let except = if schema.on_the_bus {
            bus_tables.as_slice()
        } else {
            &[]
        };
        let generated = rustfmt(root, &print(root, schema, except)?)?;
        let file = root.join(schema.dir).join("src/schema.rs");
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if committed == generated {
            continue;
        }
        if write {
            std::fs::write(&file, &generated)
                .map_err(|error| format!("writing {}: {error}", file.display()))?;
        } else {
            diff(&file, &generated);
            stale.push(file.display().to_string());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} differ from their migrations (the diff is above); run `cargo xtask schema --write`",
            stale.join(", ")
        ))
    }
}

/// `diesel print-schema` of a fresh database migrated for `schema`,
/// without the tables in `except`; the database is dropped after.
fn print(root: &Path, schema: &Schema, except: &[String]) -> Result<String> {
    let name = format!(
        "popug_test_schema_{}_{}",
        schema.dir.replace(['/', '-'], "_"),
        std::process::id()
    );
    let url = format!("{SERVER}/{name}");
    let printed = (|| {
        let mut migrations = Vec::new();
        if schema.on_the_bus {
            migrations.push(root.join(SCHEMAS[0].dir).join("migrations"));
        }
        migrations.push(root.join(schema.dir).join("migrations"));
        // Not `diesel database setup`: it would add a first migration of its own.
        psql(&format!("CREATE DATABASE \"{name}\""))?;
        for dir in &migrations {
            diesel(&[
                "migration",
                "run",
                "--database-url",
                &url,
                "--migration-dir",
                &path(dir),
            ])?;
        }
        let mut args = vec!["print-schema", "--database-url", &url];
        if !except.is_empty() {
            args.push("--except-tables");
            args.extend(except.iter().map(|table| table.as_str()));
        }
        diesel(&args)
    })();
    let dropped = psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).map(drop);
    let printed = printed?;
    dropped?;
    Ok(printed)
}

/// `source` as `cargo fmt` would leave it (so the check and the formatting
/// check agree on one text).
fn rustfmt(root: &Path, source: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("rustfmt: cannot run it: {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(source.as_bytes())
            .map_err(|error| format!("rustfmt: {error}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|error| format!("rustfmt: {error}"))?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the diesel CLI; its standard output.
fn diesel(args: &[&str]) -> Result<String> {
    output(
        Command::new("diesel").args(args),
        &format!(
            "diesel {} (installed with `cargo install diesel_cli --no-default-features \
             --features postgres`)",
            args.join(" ")
        ),
    )
}

/// The tables `diesel::table!` declares in `schema`, as exact-match
/// patterns for `--except-tables` (which takes regular expressions).
fn tables(schema: &str) -> Vec<String> {
    let mut lines = schema.lines();
    let mut names = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() == "diesel::table! {"
            && let Some(name) = lines.next().and_then(|next| next.split_whitespace().next())
        {
            names.push(format!("^{name}$"));
        }
    }
    names
}

/// Shows how `file` differs from `generated` (with `diff -u`).
fn diff(file: &Path, generated: &str) {
    let fresh = std::env::temp_dir().join(format!("schema-{}.rs", std::process::id()));
    if std::fs::write(&fresh, generated).is_ok() {
        Command::new("diff")
            .arg("-u")
            .arg(file)
            .arg(&fresh)
            .status()
            .ok();
        std::fs::remove_file(&fresh).ok();
    }
}

fn path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
