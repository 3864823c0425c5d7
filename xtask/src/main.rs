//! `cargo xtask`: the daily commands, one name each, so nobody has to
//! remember the flags (CI runs the same ones through `.ci/run`).
//!
//! Plain Rust and the tools the README lists (and an AMQP client, to clear
//! leftover test queues quickly).

mod schema;

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

/// The commands and what they do, for `cargo xtask help`.
const HELP: &str = "\
cargo xtask <command>

  fmt                 format every crate
  lint                formatting check, clippy (warnings denied), buf lint
  doc                 the workspace's docs, warnings denied (cargo doc --no-deps)
  test [CRATE...]     the tests (cargo nextest run), of the whole workspace or of some crates;
                      arguments after -- go to nextest, e.g. -- -E 'test(/statement/)'
  schema [--write]    each schema.rs against `diesel print-schema` of its migrations
                      (--write regenerates them); needs diesel_cli
  reset-test-dbs      drop the databases and queues tests, benches and simulations left
  faults [ARGS...]    the fault-injection suite (popug-faults --help for its flags)
  ci                  what CI runs (.ci/run)
";

/// A failed step: what failed, for the one line `cargo xtask` prints.
type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    let done = match command {
        "fmt" => cargo(&["fmt", "--all"]),
        "lint" => lint(),
        "doc" => doc(),
        "test" => test(rest),
        "schema" => schema::run(&root(), rest.iter().any(|arg| arg == "--write")),
        "reset-test-dbs" => reset_test_dbs(),
        "faults" => faults(rest),
        "ci" => run(Command::new("bash").arg(root().join(".ci/run"))),
        "help" | "-h" | "--help" => {
            print_help();
            Ok(())
        }
        other => Err(format!(
            "no command `{other}`; `cargo xtask help` lists them"
        )),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)] // the help is the command's output
fn print_help() {
    print!("{HELP}");
}

#[allow(clippy::print_stderr)] // the one line that says what failed
fn report(error: &str) {
    eprintln!("xtask: {error}");
}

/// The workspace root (this crate's parent).
fn root() -> PathBuf {
    // `cargo run` says where the package is at run time; the path compiled
    // in may be another checkout's that shares the target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs `command` in the workspace root; an error names it if it fails.
fn run(command: &mut Command) -> Result {
    let shown = format!("{command:?}");
    let status = command
        .current_dir(root())
        .status()
        .map_err(|error| format!("{shown}: cannot run it: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn cargo(args: &[&str]) -> Result {
    run(Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(args))
}

fn lint() -> Result {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    run(Command::new("buf").arg("lint"))
}

fn doc() -> Result {
    run(
        Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["doc", "--workspace", "--no-deps", "--locked"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

fn test(args: &[String]) -> Result {
    let (crates, passed) = match args.iter().position(|arg| arg == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[][..]),
    };
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(["nextest", "run"]);
    if crates.is_empty() {
        command.arg("--workspace");
    }
    for name in crates {
        command.args(["-p", name]);
    }
    run(command.args(passed))
}

/// Runs `command` (named `what` in errors) with no input; its standard
/// output, or its standard error as the error.
fn output(command: &mut Command, what: &str) -> Result<String> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("{what}: cannot run it: {error}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `sql` on the local server's maintenance database; its output, one
/// row per line.
fn psql(sql: &str) -> Result<String> {
    output(
        Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-qAtc", sql]),
        &format!("psql -c {sql:?}"),
    )
}

/// The databases and queues left by interrupted tests, benches and
/// simulations (CI clears them the same way before it starts).
fn reset_test_dbs() -> Result {
    let leftovers = psql(
        "SELECT datname FROM pg_database WHERE datname LIKE 'popug\\_test\\_%' \
         OR datname LIKE 'popug\\_bench\\_%' OR datname LIKE 'popug\\_sim\\_%'",
    )?;
    for name in leftovers.lines() {
        psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))?;
    }
    run(Command::new("bash").args(["-c", LEFTOVER_SERVERS]))?;
    delete_test_queues()
}

/// Deletes the queues of test, bench and simulation namespaces over AMQP
/// (the local broker's guest user), in one connection.
fn delete_test_queues() -> Result {
    let listed = output(
        Command::new("rabbitmqctl").args(["-q", "list_queues", "name"]),
        "rabbitmqctl list_queues",
    )?;
    let doomed: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|name| {
            ["test-", "bench-", "sim-"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })
        .collect();
    if doomed.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("a runtime for the AMQP client: {error}"))?;
    runtime.block_on(async {
        let amqp = |error: lapin::Error| format!("deleting test queues: {error}");
        let connection = lapin::Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            lapin::ConnectionProperties::default(),
        )
        .await
        .map_err(amqp)?;
        let mut channel = connection.create_channel().await.map_err(amqp)?;
        let mut refused = 0_usize;
        for name in &doomed {
            let deleted = channel
                .queue_delete(
                    (*name).into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
            if deleted.is_err() {
                // Say, a queue another connection holds exclusively: the
                // broker closes the channel; go on with a new one.
                refused += 1;
                channel = connection.create_channel().await.map_err(amqp)?;
            }
        }
        connection.close(200, "done".into()).await.ok();
        report_line(&format!(
            "deleted {} leftover test queue(s){}",
            doomed.len() - refused,
            if refused > 0 {
                format!(", {refused} refused (in use)")
            } else {
                String::new()
            }
        ));
        Ok(())
    })
}

#[allow(clippy::print_stdout)] // what the cleaning did
fn report_line(line: &str) {
    println!("{line}");
}

/// Private servers an interrupted fault suite left (`popug_testing::private`
/// names their directories).
const LEFTOVER_SERVERS: &str = r#"
for data in /tmp/popug-postgres-*/data; do
  [[ -d "$data" ]] || continue
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
  rm -rf "$(dirname "$data")"
done
for dir in /tmp/popug-rabbit-*; do
  [[ -d "$dir" ]] || continue
  rabbitmqctl -q -n "popug-test-${dir##*/popug-rabbit-}@localhost" stop >/dev/null 2>&1
  rm -rf "$dir"
done
exit 0
"#;

fn faults(args: &[String]) -> Result {
    // The services as the suite expects them: built beside it.
    cargo(&["test", "--no-run", "--workspace", "--locked", "--quiet"])?;
    let target = env::var("CARGO_TARGET_DIR").map_or_else(|_| root().join("target"), PathBuf::from);
    run(Command::new(target.join("debug/popug-faults")).args(args))
}
