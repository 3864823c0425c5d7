//! The README's walkthrough cannot drift: its shell blocks marked
//! `<!-- walkthrough -->` run in order, in one bash, against a fresh
//! `popug up` (private databases, broker namespace and ports, which are
//! substituted for the default ones), with the real grpcurl and jq and this
//! build's `popug` on the PATH.

use std::{process::Stdio, time::Duration};

use popug_testing::ADMIN_PASSWORD;
use tokio::{io::AsyncBufReadExt as _, process::Command};

/// The marked blocks of `readme`, in order.
fn walkthrough(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- walkthrough -->" {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a marked block is a sh block");
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|line| line.trim() != "```")
            .collect();
        blocks.push(block.join("\n"));
    }
    blocks
}

#[test]
fn the_walkthrough_is_found() {
    let blocks =
        walkthrough("text\n<!-- walkthrough -->\n```sh\necho a\necho b\n```\n```sh\nnot me\n```\n");
    assert_eq!(blocks, ["echo a\necho b"]);
}

#[tokio::test]
async fn the_readme_walkthrough_runs_against_a_fresh_popug_up() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let blocks = walkthrough(&readme);
    assert!(blocks.len() >= 7, "the README marks its walkthrough");

    let (env, _databases) = popug_testing::mesh_env();
    let env: Vec<(String, String)> = env
        .with("POPUG_BILLING_AUTO_CLOSE", "true")
        .vars()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let mut up = Command::new(env!("CARGO_BIN_EXE_popug"))
        .arg("up")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("popug up starts");
    let mut lines = tokio::io::BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut urls = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            for service in ["auth-svc", "tracker-svc", "billing-svc", "analytics-svc"] {
                if let Some(url) = line.trim().strip_prefix(service) {
                    urls.push(url.trim().to_owned());
                }
            }
            if urls.len() == 4 {
                return;
            }
        }
        panic!("popug up exited without printing its endpoints");
    })
    .await
    .expect("popug up prints its endpoints");
    // Keep reading its output, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut script = String::from("set -euo pipefail\n");
    for block in &blocks {
        let mut block = block.clone();
        for (port, url) in (50051..=50054).zip(&urls) {
            block = block.replace(
                &format!("127.0.0.1:{port}"),
                url.trim_start_matches("http://"),
            );
        }
        script.push_str(&block);
        script.push('\n');
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_popug"))
        .parent()
        .expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config = tempfile::tempdir().expect("config dir");
    let output = tokio::time::timeout(
        Duration::from_secs(240),
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", path)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("POPUG_CONFIG_DIR", config.path())
            .env("POPUG_AUTH_URL", &urls[0])
            .env("POPUG_TRACKER_URL", &urls[1])
            .env("POPUG_BILLING_URL", &urls[2])
            .env("POPUG_ANALYTICS_URL", &urls[3])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the walkthrough ends in time")
    .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- script\n{script}"
    );
    for seen in [
        "\"login\": \"admin\"",
        "kesha",
        "\"key\": \"POPUG-1\"",
        "TASK_STATUS_DONE",
        "ENTRY_KIND_COMPLETION_REWARD",
        "\"date\":",
        "audit: clean",
        "POPUG-2 is ",
    ] {
        assert!(stdout.contains(seen), "`{seen}` is not in:\n{stdout}");
    }

    let pid = up.id().expect("running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    up.wait().await.expect("popug up stops");
}
