//! The web app in a real browser: the whole mesh and web-svc in this
//! process (a simulated clock at 09:00), Debian's chromium driven by
//! `web/e2e/day.mjs` (playwright-core) through a working day, and what the
//! pages showed held against the billing and analytics APIs and `popug
//! audit`, to the cent. Screenshots of every page land in the test's output
//! folder (printed at the start).
//!
//! Needs Node 20 with npm (the app is built as `popug up` builds it) and
//! `/usr/bin/chromium` (or `CHROMIUM`); `.ci/run` installs both.

mod support;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use popug::{
    audit::audit,
    client::{Channels, sign_in},
    mesh::{Mesh, MeshSettings},
};
use popug_proto::pb::popug::{
    analytics::v1 as analytics,
    auth::v1 as auth,
    billing::v1 as billing,
    ops::v1::{self as ops, ops_service_client::OpsServiceClient},
};
use popug_runtime::Clock;
use popug_testing::ADMIN_PASSWORD;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use web_svc::assets::Assets;

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, 0, 0).expect("an hour").and_utc()
}

/// Where this test's screenshots and the pages' findings go.
fn output_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-day")
}

fn cents(value: &Value, what: &str) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{what} is not a number of cents: {value}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_working_day_in_the_browser_agrees_with_the_books_to_the_cent() {
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    let web_dir = web_svc::assets::source_dir().expect("the checkout has web/");
    // Built as `popug up` builds it: only when missing or stale.
    let dist = web_svc::assets::ensure_built(&web_dir)
        .await
        .expect("the web app builds (npm ci && npm run build in web/)");

    let day = Utc::now().date_naive() - chrono::Days::new(3);
    let clock = Clock::simulated(at(day, 9));
    // The day takes minutes on a busy machine: the test namespace's
    // dead-letter queues must outlive it (they expire when unused), or
    // Operations finds none.
    let (env, _databases) = popug_testing::mesh_env();
    let env = env
        .with("POPUG_WEB_ADDR", "127.0.0.1:0")
        .with("POPUG_QUEUE_TTL", "900");
    let settings = MeshSettings::load(&env)
        .expect("settings")
        .with_clock(&clock);
    let broker = popug_bus::Broker::new(
        settings.common().amqp_url.clone(),
        popug_bus::Topology::from_settings(settings.common()),
        "web-test",
    );
    let mesh = Mesh::start(settings).await.expect("the mesh starts");
    let endpoints = mesh.endpoints();
    let web = popug::web::start(&env, &endpoints, &clock, Assets::from_dir(dist))
        .await
        .expect("web-svc starts");
    let url = format!("http://{}", web.local_addr());
    let stop = CancellationToken::new();
    let _stopping = stop.clone().drop_guard();
    drop(mesh.spawn(&stop));
    tokio::spawn(web.run_until_stopped(stop.clone().cancelled_owned()));

    let output = output_dir();
    std::fs::remove_dir_all(&output).ok();
    std::fs::create_dir_all(&output).expect("the output folder");
    eprintln!("screenshots and findings: {}", output.display());
    let shown = browse(&web_dir, &url, &output, "day").await;

    // Role checks in the UI.
    let links: Vec<&str> = shown["workerLinks"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(links, ["My tasks", "My account"]);
    assert!(
        shown["notAllowed"]
            .as_str()
            .is_some_and(|text| text.contains("Accounting is for accountant and admin only")),
        "{}",
        shown["notAllowed"]
    );
    assert_eq!(shown["accountant"]["closeDayShown"], Value::Bool(false));
    // Field errors name their field.
    assert!(
        shown["titleFieldError"]
            .as_str()
            .is_some_and(|e| e.contains("`title`"))
    );
    assert!(
        shown["loginFieldError"]
            .as_str()
            .is_some_and(|e| e.contains("`login`"))
    );

    // What the pages showed, against the APIs.
    let channels = Channels::connect(&endpoints).await.expect("channels");
    let admin = sign_in(&channels, "admin", ADMIN_PASSWORD)
        .await
        .expect("the admin signs in");
    let accounts = channels
        .auth(&admin)
        .list_accounts(auth::ListAccountsRequest::default())
        .await
        .expect("accounts")
        .into_inner()
        .accounts;
    let kesha = accounts
        .iter()
        .find(|account| account.login == "kesha")
        .expect("the admin created kesha in the browser");
    assert_eq!(kesha.role(), auth::Role::Worker);
    assert!(
        accounts
            .iter()
            .any(|a| a.login == "boss" && a.role() == auth::Role::Manager)
    );
    // The newcomer who signed up was made a manager, then deactivated.
    let chick = accounts
        .iter()
        .find(|account| account.login == "chick")
        .expect("chick signed up in the browser");
    assert_eq!((chick.role(), chick.active), (auth::Role::Manager, false));
    assert_eq!(shown["refreshes"], 2, "both quiet refreshes happened");

    let today = day.to_string();
    let books = channels
        .billing(&admin)
        .get_account(billing::GetAccountRequest {
            account_id: kesha.account_id.clone(),
            date: today.clone(),
        })
        .await
        .expect("kesha's account")
        .into_inner();
    let worker = &shown["worker"];
    assert_eq!(
        cents(&worker["balanceCents"], "balance"),
        books.balance_cents
    );
    assert_eq!(
        cents(&shown["accountant"]["workerBalanceCents"], "balance"),
        books.balance_cents
    );
    let rows = worker["entries"].as_array().expect("entries");
    assert_eq!(rows.len(), books.entries.len(), "one row per ledger entry");
    let tasks = shown["tasks"].as_array().expect("tasks").len();
    assert_eq!(
        books.entries.len(),
        tasks * 2 + 1,
        "a fee per assignment (created, then shuffled) and one reward"
    );
    let mut reward = None;
    for (row, entry) in rows.iter().zip(&books.entries) {
        let reason = match entry.kind() {
            billing::EntryKind::AssignmentFee => "Assignment fee",
            billing::EntryKind::CompletionReward => {
                reward = Some(entry.amount_cents);
                "Completion reward"
            }
            other => panic!("no {other:?} on a working day"),
        };
        assert_eq!(row["reason"], reason);
        assert_eq!(cents(&row["amountCents"], "amount"), entry.amount_cents);
        assert_eq!(
            cents(&row["balanceAfterCents"], "balance after"),
            entry.balance_after_cents
        );
        let key = entry
            .description
            .split_whitespace()
            .find(|word| word.starts_with("POPUG-"))
            .expect("each entry names its task");
        assert!(
            row["task"].as_str().is_some_and(|task| task.contains(key)),
            "{row} shows {key}"
        );
    }
    let reward = reward.expect("the completion paid a reward");

    let earnings = channels
        .billing(&admin)
        .get_management_earnings(billing::GetManagementEarningsRequest {
            from: today.clone(),
            to: today.clone(),
        })
        .await
        .expect("earnings")
        .into_inner()
        .days[0]
        .earnings_cents;
    assert_eq!(
        cents(&shown["accountant"]["earningsTodayCents"], "earnings"),
        earnings
    );
    assert_eq!(
        cents(&shown["analytics"]["earningsCents"], "earnings"),
        earnings
    );
    // One worker did everything: the company earned what it lost.
    assert_eq!(earnings, -books.balance_cents);
    let dashboard = channels
        .analytics(&admin)
        .get_dashboard(analytics::GetDashboardRequest { date: today })
        .await
        .expect("dashboard")
        .into_inner();
    assert_eq!(
        shown["analytics"]["negativePopugs"].as_u64(),
        Some(u64::from(dashboard.negative_balance_popugs))
    );
    assert_eq!(
        cents(&shown["analytics"]["expensiveRewardCents"], "reward"),
        reward
    );

    // And the books agree across the services.
    let report = audit(&channels, &admin, Duration::from_secs(60))
        .await
        .expect("the audit runs");
    assert!(report.is_clean(), "{report}");

    // A message that is no event: Operations shows billing's dead letter
    // with its error, and replays it from there (it fails again, on the
    // same row).
    support::publish_non_event(&broker).await;
    let operations = browse(&web_dir, &url, &output, "operations").await;
    assert!(
        operations["replayed"]
            .as_str()
            .is_some_and(|text| text.starts_with("Replayed 1 messages")),
        "{operations}"
    );
    let letters = OpsServiceClient::with_interceptor(
        popug::client::connect(&endpoints.billing)
            .await
            .expect("billing"),
        admin.clone(),
    )
    .list_dead_letters(ops::ListDeadLettersRequest::default())
    .await
    .expect("dead letters")
    .into_inner();
    assert_eq!(letters.dead_letters.len(), 1);
    assert_eq!(letters.dead_letters[0].failures, 2);
    assert!(
        operations["error"]
            .as_str()
            .is_some_and(|shown| letters.dead_letters[0].error.starts_with(shown.trim())),
        "the page shows the row's error: {operations}"
    );

    for page in [
        "sign-in",
        "my-tasks-worker",
        "all-tasks",
        "my-account",
        "accounting",
        "analytics",
        "accounts",
        "operations",
        "operations-replayed",
        "not-allowed",
        "signed-up",
    ] {
        assert!(
            output
                .join("screenshots")
                .join(format!("{page}.png"))
                .is_file(),
            "a screenshot of {page}"
        );
    }
}

/// Runs `web/e2e/day.mjs` in `phase` against the app at `url`; returns what
/// the pages showed, or fails with the script's problems.
async fn browse(web_dir: &Path, url: &str, output: &Path, phase: &str) -> Value {
    let result_path = output.join(format!("{phase}.json"));
    let browser = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("node")
            .arg("e2e/day.mjs")
            .current_dir(web_dir)
            .env("POPUG_WEB_URL", url)
            .env("POPUG_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("POPUG_PHASE", phase)
            .env("POPUG_SCREENSHOTS", output.join("screenshots"))
            .env("POPUG_RESULT", &result_path)
            .kill_on_drop(true)
            .status(),
    )
    .await
    .unwrap_or_else(|_| panic!("the {phase} in the browser ends within 4 minutes"))
    .expect("node runs (Node 20 is needed)");
    let shown: Value = serde_json::from_slice(
        &std::fs::read(&result_path).expect("the script writes its findings"),
    )
    .expect("findings are JSON");
    assert!(
        browser.success(),
        "the {phase} in the browser failed: {:#}",
        shown["problems"]
    );
    shown
}
