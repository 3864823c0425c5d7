//! Black-box tests of billing-svc: auth-svc and billing-svc on random ports,
//! the tracker's events published onto the bus as the tracker would, a real
//! SMTP sink for payout emails, and the money invariants after every test.

use std::time::Duration;

use billing_svc::{
    domain::{EntryKind, FeeReason},
    store::Booking,
};
use lapin::options::BasicGetOptions;
use popug_bus::{Consumer, ConsumerConfig, Relay, Topology, topology};
use popug_proto::{
    events::Event,
    pb::popug::{
        auth::v1 as auth,
        billing::v1::{self as pb, billing_service_client::BillingServiceClient},
        events::{billing::v1 as billing_events, tasks::v1 as tasks_v1},
    },
};
use popug_runtime::Env;
use popug_testing::{
    TestAuth, consume, consume_any, drain,
    tracker_events::{assigned, completed, created},
    with_token,
};
use prost::{Message as _, Name as _};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

struct TestApp {
    auth: TestAuth,
    billing: Channel,
    billing_relay: Relay,
    consumer: Consumer,
    ledger: billing_svc::store::Ledger,
    mailer: billing_svc::mail::Mailer,
    channel: lapin::Channel,
    topology: Topology,
    admin_token: String,
    /// The service's database URL, with its session limits.
    database_url: url::Url,
    _stop: tokio_util::sync::DropGuard,
}

async fn spawn_app(smtp_url: Option<String>) -> TestApp {
    spawn_app_on(popug_testing::database_url(), smtp_url).await
}

/// [`spawn_app`] on the database at `billing_db` (created and migrated if needed).
async fn spawn_app_on(billing_db: String, smtp_url: Option<String>) -> TestApp {
    spawn_app_with(billing_db, smtp_url, &[]).await
}

/// [`spawn_app_on`] with more settings.
async fn spawn_app_with(
    billing_db: String,
    smtp_url: Option<String>,
    extra: &[(&str, &str)],
) -> TestApp {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let namespace = popug_testing::namespace();
    let stop = CancellationToken::new();
    let auth = TestAuth::spawn(&namespace, &stop).await;
    let auth_url = auth.url();
    let mail_dir = std::env::temp_dir().join(format!("popug-billing-mail-{id}"));
    let mail = mail_dir.to_string_lossy().into_owned();
    let mut pairs = vec![
        ("POPUG_BILLING_DATABASE_URL", billing_db.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
        ("POPUG_BILLING_SEED", "7"),
        ("POPUG_MAIL_DIR", mail.as_str()),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
    ];
    if let Some(url) = &smtp_url {
        pairs.push(("POPUG_SMTP_URL", url.as_str()));
    }
    pairs.extend_from_slice(extra);
    let settings =
        billing_svc::BillingSettings::load(&Env::from_pairs(pairs)).expect("billing settings");
    let database_url = settings.common.limited_database_url();
    let amqp_url = settings.common.amqp_url.clone();
    let topology = Topology::from_settings(&settings.common);
    let mut billing_app = billing_svc::Application::build(settings)
        .await
        .expect("billing-svc");
    let billing_relay = billing_app.take_relay().expect("relay");
    let consumer = billing_app.take_consumer().expect("consumer");
    consumer.declare().await.expect("billing queue");
    let ledger = billing_app.ledger().clone();
    let mailer = billing_app.mailer().clone();
    let billing_addr = billing_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(billing_app.run_until_stopped(async move { stopping.cancelled().await }));

    let connection = lapin::Connection::connect(amqp_url.as_str(), Default::default())
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    std::mem::forget(connection);
    declare_probe(&channel, &topology).await;

    let admin_token = auth.admin_token.clone();
    let mut app = TestApp {
        auth,
        billing: popug_testing::channel(billing_addr).await,
        billing_relay,
        consumer,
        ledger,
        mailer,
        channel,
        topology,
        admin_token,
        database_url,
        _stop: stop.drop_guard(),
    };
    app.sync_accounts().await;
    app
}

/// A queue, `probe`, that receives every event billing publishes.
async fn declare_probe(channel: &lapin::Channel, topology: &Topology) {
    let probe = popug_bus::QueueSpec::new(
        "probe",
        vec![
            "task.priced.v1".into(),
            "transaction.applied.v1".into(),
            "payment.sent.v1".into(),
            "billing_cycle.closed.v1".into(),
        ],
    );
    topology::declare_queue(channel, topology, &probe)
        .await
        .expect("probe");
}

impl TestApp {
    fn billing(&self) -> BillingServiceClient<Channel> {
        BillingServiceClient::new(self.billing.clone())
    }

    async fn sync_accounts(&mut self) {
        let published = drain(&mut self.auth.relay).await;
        consume(&mut self.consumer, published).await;
    }

    async fn account(&mut self, login: &str, role: auth::Role) -> (uuid::Uuid, String) {
        let account = self.auth.account(login, role).await;
        self.sync_accounts().await;
        account
    }

    /// Publishes `event` as its producer would (the tracker, or auth for
    /// account events), as of `at`; returns its bytes.
    async fn publish<E: Event>(&self, event: &E, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
        let body = popug_bus::envelope::wrap(event, E::PRODUCER, at).encode_to_vec();
        self.publish_bytes(E::ROUTING_KEY, &body).await;
        body
    }

    async fn publish_bytes(&self, routing_key: &str, body: &[u8]) {
        self.channel
            .basic_publish(
                self.topology.exchange().into(),
                routing_key.into(),
                Default::default(),
                body,
                Default::default(),
            )
            .await
            .expect("publish");
    }

    /// Billing's published events so far: (type, payload).
    async fn billing_events(&mut self) -> Vec<(String, Vec<u8>)> {
        drain(&mut self.billing_relay).await;
        let queue = self.topology.queue("probe");
        let mut events = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            let opened = popug_bus::envelope::open(&message.delivery.data).expect("envelope");
            events.push((opened.meta.event_type, opened.payload));
        }
        events
    }

    async fn balance(&self, account_id: uuid::Uuid) -> i64 {
        self.billing()
            .get_account(with_token(
                pb::GetAccountRequest {
                    account_id: account_id.to_string(),
                    date: String::new(),
                },
                &self.admin_token,
            ))
            .await
            .expect("get account")
            .into_inner()
            .balance_cents
    }

    async fn assert_invariants(&self) {
        let mut conn = self.ledger.pool().get().await.expect("connection");
        let violations = billing_svc::invariants::violations(&mut conn)
            .await
            .expect("checks run");
        assert!(
            violations.is_empty(),
            "money invariants broken:\n{}",
            violations.join("\n")
        );
    }
}

fn prices_of(events: &[(String, Vec<u8>)]) -> Vec<billing_events::TaskPriced> {
    events
        .iter()
        .filter(|(kind, _)| *kind == billing_events::TaskPriced::full_name())
        .map(|(_, payload)| {
            billing_events::TaskPriced::decode(payload.as_slice()).expect("payload")
        })
        .collect()
}

#[tokio::test]
async fn every_assignment_charges_and_completion_pays_at_fixed_prices() {
    let mut app = spawn_app(None).await;
    let (w1, _) = app.account("worker1", auth::Role::Worker).await;
    let (w2, w2_token) = app.account("worker2", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    app.publish(&created(task, 1), now).await;
    app.publish(&assigned(task, w1, None), now).await;
    app.publish(&assigned(task, w2, Some(w1)), now).await;
    app.publish(&completed(task, w2), now).await;
    assert_eq!(consume(&mut app.consumer, 4).await.applied, 4);

    let events = app.billing_events().await;
    let prices = prices_of(&events);
    assert_eq!(prices.len(), 1, "priced once");
    let (fee, reward) = (prices[0].fee_cents, prices[0].reward_cents);
    assert_eq!(
        app.balance(w1).await,
        -fee,
        "charged at assignment, no refund after the shuffle"
    );
    assert_eq!(app.balance(w2).await, reward - fee);
    let applied = events
        .iter()
        .filter(|(kind, _)| *kind == billing_events::TransactionApplied::full_name())
        .count();
    assert_eq!(applied, 3, "one TransactionApplied per entry");

    let mine = app
        .billing()
        .get_my_account(with_token(pb::GetMyAccountRequest::default(), &w2_token))
        .await
        .expect("mine")
        .into_inner();
    assert_eq!(mine.balance_cents, reward - fee);
    let kinds: Vec<i32> = mine.entries.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            pb::EntryKind::AssignmentFee as i32,
            pb::EntryKind::CompletionReward as i32
        ]
    );
    assert!(
        mine.entries
            .iter()
            .all(|entry| entry.description.contains("POPUG-1 Task 1")),
        "{:?}",
        mine.entries
    );

    let earnings = app
        .billing()
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("earnings")
        .into_inner()
        .days;
    assert_eq!(earnings.len(), 1);
    assert_eq!(earnings[0].earnings_cents, 2 * fee - reward);
    app.assert_invariants().await;
}

#[tokio::test]
async fn prices_are_drawn_once_per_task_within_their_ranges() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let now = chrono::Utc::now();
    let tasks: Vec<uuid::Uuid> = (0..150).map(|_| uuid::Uuid::new_v4()).collect();
    for (i, task) in tasks.iter().enumerate() {
        // Whichever event comes first prices the task: here the assignment.
        app.publish(&assigned(*task, worker, None), now).await;
        app.publish(&created(*task, i + 1), now).await;
    }
    consume(&mut app.consumer, 300).await;
    let prices = prices_of(&app.billing_events().await);
    assert_eq!(prices.len(), 150);
    assert!(prices.iter().all(
        |p| (1_000..=2_000).contains(&p.fee_cents) && (2_000..=4_000).contains(&p.reward_cents)
    ));
    let distinct: std::collections::HashSet<i64> = prices.iter().map(|p| p.fee_cents).collect();
    assert!(
        distinct.len() > 50,
        "fees vary: {} distinct of 150",
        distinct.len()
    );
    let charged: i64 = prices.iter().map(|p| p.fee_cents).sum();
    assert_eq!(app.balance(worker).await, -charged);
    app.assert_invariants().await;
}

#[tokio::test]
async fn out_of_order_events_still_charge_once_at_the_right_price() {
    let mut app = spawn_app(None).await;
    let now = chrono::Utc::now();
    let task = uuid::Uuid::new_v4();
    // A task and an assignee billing has never heard of: the assignment
    // arrives before the task's creation and before the account exists.
    let stranger = uuid::Uuid::new_v4();
    app.publish(&assigned(task, stranger, None), now).await;
    app.publish(&completed(task, stranger), now).await;
    consume(&mut app.consumer, 2).await;
    app.publish(&created(task, 9), now).await;
    let account_created = popug_proto::pb::popug::events::accounts::v1::AccountCreated {
        account_id: stranger.to_string(),
        login: "stranger".into(),
        name: "Stranger".into(),
        email: "stranger@popug.inc".into(),
        role: popug_proto::pb::popug::events::accounts::v1::Role::Worker.into(),
        active: true,
        version: 1,
    };
    app.publish(&account_created, now).await;
    consume(&mut app.consumer, 2).await;
    let prices = prices_of(&app.billing_events().await);
    assert_eq!(prices.len(), 1);
    assert_eq!(
        app.balance(stranger).await,
        prices[0].reward_cents - prices[0].fee_cents
    );
    let entries = app
        .billing()
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: stranger.to_string(),
                date: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("account")
        .into_inner()
        .entries;
    assert!(
        entries
            .iter()
            .all(|entry| entry.description.contains("POPUG-9")),
        "filled in later: {entries:?}"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_duplicated_event_gives_exactly_one_entry_even_concurrently() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let body = app
        .publish(&assigned(task, worker, None), chrono::Utc::now())
        .await;
    for _ in 0..4 {
        app.publish_bytes(tasks_v1::TaskAssigned::ROUTING_KEY, &body)
            .await;
    }
    // A second billing consumer competes for the five copies.
    let broker = popug_bus::Broker::new(
        "amqp://guest:guest@127.0.0.1:5672/%2f"
            .parse()
            .expect("url"),
        app.topology.clone(),
        "billing-2",
    );
    let mut second = Consumer::new(
        app.ledger.pool().clone(),
        broker,
        "billing",
        billing_svc::handlers::handlers(
            &app.ledger,
            &popug_token::Standings::new(std::sync::Arc::new(
                popug_runtime::directory::AccountsDirectory::new(app.ledger.pool().clone()),
            )),
        ),
        ConsumerConfig::default(),
    );
    // Both run until the five copies are settled between them; cancelling
    // only ever interrupts a wait for a delivery, never a batch in hand.
    let token = CancellationToken::new();
    let settled = std::sync::atomic::AtomicUsize::new(0);
    async fn compete(
        consumer: &mut Consumer,
        settled: &std::sync::atomic::AtomicUsize,
        token: &CancellationToken,
    ) {
        while let Some(report) = consumer.process_batch(token).await.expect("batch") {
            assert_eq!(report.dead_lettered, 0);
            if settled.fetch_add(report.settled(), std::sync::atomic::Ordering::SeqCst)
                + report.settled()
                >= 5
            {
                token.cancel();
            }
        }
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            compete(&mut app.consumer, &settled, &token),
            compete(&mut second, &settled, &token)
        )
    })
    .await
    .expect("the five copies are settled");
    let prices = prices_of(&app.billing_events().await);
    assert_eq!(prices.len(), 1);
    assert_eq!(
        app.balance(worker).await,
        -prices[0].fee_cents,
        "charged once"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_v1_task_created_is_understood() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let legacy = tasks_v1::TaskCreated {
        task_id: task.to_string(),
        title: "[UBERPOP-42] Fix the old nest".into(),
        description: String::new(),
    };
    app.publish(&legacy, chrono::Utc::now()).await;
    app.publish(&assigned(task, worker, None), chrono::Utc::now())
        .await;
    assert_eq!(consume(&mut app.consumer, 2).await.applied, 2);
    let entries = app
        .billing()
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: worker.to_string(),
                date: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("account")
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .description
            .ends_with(" Fix the old nest (assigned at creation)"),
        "{}",
        entries[0].description
    );
    app.assert_invariants().await;
}

/// A real SMTP server (Python's aiosmtpd) storing mail in a maildir.
struct SmtpSink {
    child: tokio::process::Child,
    maildir: tempfile_dir::Dir,
    url: String,
}

mod tempfile_dir {
    /// A directory removed on drop.
    pub(super) struct Dir(pub(super) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }
}

/// A port nothing listens on yet.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

impl SmtpSink {
    async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Self {
        let maildir =
            std::env::temp_dir().join(format!("popug-smtp-{}", uuid::Uuid::new_v4().simple()));
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd is installed (pip install aiosmtpd)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the SMTP sink did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            maildir: tempfile_dir::Dir(maildir),
            url: format!("smtp://127.0.0.1:{port}"),
        }
    }

    fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for folder in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.0.join(folder)) {
                for entry in entries {
                    messages.push(
                        std::fs::read_to_string(entry.expect("entry").path()).expect("message"),
                    );
                }
            }
        }
        messages
    }
}

#[tokio::test]
async fn closing_a_day_pays_positive_balances_once_and_emails_them() {
    let mut sink = SmtpSink::start().await;
    let mut app = spawn_app(Some(sink.url.clone())).await;
    let (earner, earner_token) = app.account("earner", auth::Role::Worker).await;
    let (debtor, _) = app.account("debtor", auth::Role::Worker).await;
    let (idle, _) = app.account("idle", auth::Role::Worker).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let yesterday_at = chrono::Utc::now() - chrono::Duration::days(1);
    let yesterday = yesterday_at.date_naive().to_string();
    let (paid_task, debt_task) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    app.publish(&assigned(paid_task, earner, None), yesterday_at)
        .await;
    app.publish(&completed(paid_task, earner), yesterday_at)
        .await;
    app.publish(&assigned(debt_task, debtor, None), yesterday_at)
        .await;
    consume(&mut app.consumer, 3).await;
    let earned = app.balance(earner).await;
    let owed = app.balance(debtor).await;
    assert!(earned > 0 && owed < 0);

    // Only admins close days.
    let close = |token: String, date: String| {
        let mut client = app.billing();
        async move {
            client
                .close_day(with_token(pb::CloseDayRequest { date }, &token))
                .await
        }
    };
    assert_eq!(
        close(accountant.clone(), yesterday.clone())
            .await
            .expect_err("accountant")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        close(app.admin_token.clone(), "tomorrow".into())
            .await
            .expect_err("bad date")
            .code(),
        Code::InvalidArgument
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let not_over = close(app.admin_token.clone(), today)
        .await
        .expect_err("not over");
    assert_eq!(not_over.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&not_over).as_deref(),
        Some(billing_svc::error::DAY_NOT_ENDED)
    );

    // Two admins close the same day at once: one pays, the other reports it closed.
    let (first, second) = tokio::join!(
        close(app.admin_token.clone(), yesterday.clone()),
        close(app.admin_token.clone(), yesterday.clone())
    );
    let (first, second) = (
        first.expect("close").into_inner(),
        second.expect("close").into_inner(),
    );
    assert_eq!(
        [first.already_closed, second.already_closed]
            .iter()
            .filter(|closed| **closed)
            .count(),
        1
    );
    for summary in [&first, &second] {
        assert_eq!(
            (summary.accounts_closed, summary.payouts_cents),
            (1, earned)
        );
    }
    let again = close(app.admin_token.clone(), yesterday.clone())
        .await
        .expect("close again")
        .into_inner();
    assert!(again.already_closed);
    // Closing an earlier day now is refused with the same code as a day
    // that has not ended; the reason, not the message, tells them apart.
    let day_before = (yesterday_at - chrono::Duration::days(1))
        .date_naive()
        .to_string();
    let out_of_order = close(app.admin_token.clone(), day_before)
        .await
        .expect_err("days close in order");
    assert_eq!(out_of_order.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&out_of_order).as_deref(),
        Some(billing_svc::error::DAYS_CLOSE_IN_ORDER)
    );

    assert_eq!(app.balance(earner).await, 0, "paid out exactly its balance");
    assert_eq!(
        app.balance(debtor).await,
        owed,
        "a negative balance carries over"
    );
    assert_eq!(app.balance(idle).await, 0);
    let history = app
        .billing()
        .get_my_account(with_token(
            pb::GetMyAccountRequest {
                date: yesterday.clone(),
            },
            &earner_token,
        ))
        .await
        .expect("history")
        .into_inner();
    let payout = history
        .entries
        .iter()
        .find(|entry| entry.kind == pb::EntryKind::Payout as i32)
        .expect("payout entry");
    assert_eq!(payout.amount_cents, -earned);

    // The email went through SMTP once, with the amount.
    assert_eq!(
        app.mailer.send_pending().await.expect("send"),
        0,
        "sent already, never twice"
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "one email for one payout");
    let amount = format!("${}.{:02}", earned / 100, earned % 100);
    assert!(
        messages[0].contains("earner@popug.inc") && messages[0].contains(&amount),
        "{}",
        messages[0]
    );

    // An event of the closed day arriving late lands in the next open day.
    app.publish(&assigned(uuid::Uuid::new_v4(), earner, None), yesterday_at)
        .await;
    consume(&mut app.consumer, 1).await;
    let late = app
        .billing()
        .get_my_account(with_token(
            pb::GetMyAccountRequest::default(),
            &earner_token,
        ))
        .await
        .expect("today")
        .into_inner();
    assert_eq!(late.entries.len(), 1, "the late fee is in today's log");

    let events = app.billing_events().await;
    let count = |name: String| events.iter().filter(|(kind, _)| *kind == name).count();
    assert_eq!(count(billing_events::PaymentSent::full_name()), 1);
    assert_eq!(count(billing_events::BillingCycleClosed::full_name()), 1);
    app.assert_invariants().await;
    sink.child.kill().await.ok();
}

#[tokio::test]
async fn roles_decide_who_sees_and_closes_what() {
    let mut app = spawn_app(None).await;
    let (worker, worker_token) = app.account("worker1", auth::Role::Worker).await;
    let (_, manager) = app.account("boss", auth::Role::Manager).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let mut client = app.billing();
    let someone = pb::GetAccountRequest {
        account_id: worker.to_string(),
        date: String::new(),
    };
    for token in [&worker_token, &manager] {
        assert_eq!(
            client
                .get_account(with_token(someone.clone(), token))
                .await
                .expect_err("not theirs")
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            client
                .get_management_earnings(with_token(
                    pb::GetManagementEarningsRequest::default(),
                    token
                ))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            client
                .close_day(with_token(pb::CloseDayRequest::default(), token))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
        client
            .get_my_account(with_token(pb::GetMyAccountRequest::default(), token))
            .await
            .expect("own account");
        assert_eq!(
            client
                .list_balances(with_token(pb::ListBalancesRequest::default(), token))
                .await
                .expect_err("not every balance")
                .code(),
            Code::PermissionDenied
        );
    }
    client
        .get_account(with_token(someone.clone(), &accountant))
        .await
        .expect("accountants see any account");
    // Every popug's balance, page by page in account id order.
    let mut balances = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_balances(with_token(
                pb::ListBalancesRequest {
                    page_size: 2,
                    page_token,
                },
                &accountant,
            ))
            .await
            .expect("accountants see every balance")
            .into_inner();
        balances.extend(page.balances);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut logins: Vec<&str> = balances.iter().map(|b| b.login.as_str()).collect();
    logins.sort_unstable();
    assert_eq!(logins, ["admin", "boss", "counter", "worker1"]);
    let listed = balances
        .iter()
        .find(|balance| balance.account_id == worker.to_string())
        .expect("the worker is listed");
    assert_eq!(
        (listed.role(), listed.active, listed.balance_cents),
        (auth::Role::Worker, true, 0)
    );
    assert_invalid(
        client
            .list_balances(with_token(
                pb::ListBalancesRequest {
                    page_size: 0,
                    page_token: "not a token".into(),
                },
                &accountant,
            ))
            .await,
        "page_token",
        "a made-up page token",
    );
    client
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest::default(),
            &accountant,
        ))
        .await
        .expect("and earnings");
    assert_eq!(
        client
            .get_my_account(pb::GetMyAccountRequest::default())
            .await
            .expect_err("anonymous")
            .code(),
        Code::Unauthenticated
    );
    let bad = client
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest {
                from: "2026-12-01".into(),
                to: "2026-11-01".into(),
            },
            &accountant,
        ))
        .await
        .expect_err("reversed range");
    assert!(bad.code() == Code::InvalidArgument && bad.message().contains("`from`"));
    app.assert_invariants().await;
}

/// `result` is INVALID_ARGUMENT naming `field` (never INTERNAL).
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str, case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert!(
        status.message().contains(&format!("`{field}`")),
        "{case}: {}",
        status.message()
    );
}

#[tokio::test]
async fn every_date_taking_method_refuses_a_bad_day_naming_the_field() {
    let mut app = spawn_app(None).await;
    let (worker, worker_token) = app.account("worker1", auth::Role::Worker).await;
    let admin = app.admin_token.clone();
    let mut client = app.billing();
    let range = |from: &str, to: &str| (from.to_owned(), to.to_owned());
    for day in popug_testing::hostile_days() {
        let shown: String = day.chars().take(24).collect();
        let case = |method: &str| format!("{method} {shown:?}");
        assert_invalid(
            client
                .get_my_account(with_token(
                    pb::GetMyAccountRequest { date: day.clone() },
                    &worker_token,
                ))
                .await,
            "date",
            &case("GetMyAccount"),
        );
        assert_invalid(
            client
                .get_account(with_token(
                    pb::GetAccountRequest {
                        account_id: worker.to_string(),
                        date: day.clone(),
                    },
                    &admin,
                ))
                .await,
            "date",
            &case("GetAccount"),
        );
        assert_invalid(
            client
                .close_day(with_token(
                    pb::CloseDayRequest { date: day.clone() },
                    &admin,
                ))
                .await,
            "date",
            &case("CloseDay"),
        );
        for (field, (from, to)) in [("from", range(&day, "")), ("to", range("", &day))] {
            assert_invalid(
                client
                    .get_management_earnings(with_token(
                        pb::GetManagementEarningsRequest {
                            from: from.clone(),
                            to: to.clone(),
                        },
                        &admin,
                    ))
                    .await,
                field,
                &case("GetManagementEarnings"),
            );
            assert_invalid(
                client
                    .get_income_statement(with_token(
                        pb::GetIncomeStatementRequest {
                            from: from.clone(),
                            to: to.clone(),
                        },
                        &admin,
                    ))
                    .await,
                field,
                &case("GetIncomeStatement"),
            );
            assert_invalid(
                client
                    .get_statement(with_token(
                        pb::GetStatementRequest {
                            account_id: String::new(),
                            from,
                            to,
                        },
                        &worker_token,
                    ))
                    .await,
                field,
                &case("GetStatement"),
            );
        }
    }

    // The ends of the range are days like any other.
    let year_2000 = client
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest {
                from: "2000-01-01".into(),
                to: "2000-12-31".into(),
            },
            &admin,
        ))
        .await
        .expect("the first year")
        .into_inner()
        .days;
    assert_eq!(year_2000.len(), 366);
    let last_year = client
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest {
                from: "2999-01-01".into(),
                to: "2999-12-31".into(),
            },
            &admin,
        ))
        .await
        .expect("the last year")
        .into_inner()
        .days;
    assert_eq!(last_year.len(), 365);
    client
        .get_statement(with_token(
            pb::GetStatementRequest {
                account_id: String::new(),
                from: "2999-12-31".into(),
                to: "2999-12-31".into(),
            },
            &worker_token,
        ))
        .await
        .expect("the last day");
    let first_day = client
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: worker.to_string(),
                date: "2000-01-01".into(),
            },
            &admin,
        ))
        .await
        .expect("the first day")
        .into_inner();
    assert!(first_day.entries.is_empty());
    let not_yet = client
        .close_day(with_token(
            pb::CloseDayRequest {
                date: "2999-12-31".into(),
            },
            &admin,
        ))
        .await;
    assert_eq!(
        not_yet.expect_err("not ended").code(),
        Code::FailedPrecondition
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn an_account_billing_never_heard_of_is_not_found_but_a_new_caller_sees_zero() {
    let mut app = spawn_app(None).await;
    let (known, _) = app.account("worker1", auth::Role::Worker).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let get = |account_id: String, date: &str| pb::GetAccountRequest {
        account_id,
        date: date.into(),
    };
    let stranger = uuid::Uuid::new_v4();
    for token in [&app.admin_token, &accountant] {
        let status = app
            .billing()
            .get_account(with_token(get(stranger.to_string(), ""), token))
            .await
            .expect_err("unknown account");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(
            status.message().contains(&stranger.to_string()),
            "{status:?}"
        );
    }
    // A bad date is still the date's fault, whoever the account.
    assert_invalid(
        app.billing()
            .get_account(with_token(
                get(stranger.to_string(), "2026-99-99"),
                &accountant,
            ))
            .await,
        "date",
        "GetAccount of a stranger on a bad day",
    );
    let seen = app
        .billing()
        .get_account(with_token(get(known.to_string(), ""), &accountant))
        .await
        .expect("a known account")
        .into_inner();
    assert_eq!((seen.balance_cents, seen.entries.len()), (0, 0));

    // A caller whose AccountCreated has not reached billing yet sees a zero
    // balance of its own, not an error; others see it once it has.
    let (newcomer, newcomer_token) = app.auth.account("newcomer", auth::Role::Worker).await;
    let mine = app
        .billing()
        .get_my_account(with_token(
            pb::GetMyAccountRequest::default(),
            &newcomer_token,
        ))
        .await
        .expect("a caller billing has not heard of yet")
        .into_inner();
    assert_eq!(
        (mine.account_id, mine.balance_cents, mine.entries.len()),
        (newcomer.to_string(), 0, 0)
    );
    let early = app
        .billing()
        .get_account(with_token(get(newcomer.to_string(), ""), &accountant))
        .await;
    assert_eq!(early.expect_err("not heard of yet").code(), Code::NotFound);
    app.sync_accounts().await;
    app.billing()
        .get_account(with_token(get(newcomer.to_string(), ""), &accountant))
        .await
        .expect("heard of now");
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_payout_above_the_rules_bound_is_refused_and_nothing_is_paid() {
    use diesel_async::RunQueryDsl as _;
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    // A balance no day's work reaches (a bug or a fraud), put in by hand.
    let set_balance = |cents: i64| {
        diesel::sql_query(format!(
            "UPDATE accounts SET balance_cents = {cents} WHERE account_id = '{worker}'"
        ))
    };
    let mut conn = app.ledger.pool().get().await.expect("connection");
    set_balance(100_000_001)
        .execute(&mut conn)
        .await
        .expect("a forged balance");
    drop(conn);
    let mut client = app.billing();
    let refused = client
        .close_day(with_token(pb::CloseDayRequest::default(), &app.admin_token))
        .await
        .expect_err("too large a payout");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        popug_runtime::error::reason(&refused).as_deref(),
        Some(billing_svc::error::PAYOUT_TOO_LARGE)
    );
    assert!(
        refused.message().contains(&worker.to_string()) && refused.message().contains("100000000"),
        "{}",
        refused.message()
    );
    assert_eq!(app.balance(worker).await, 100_000_001, "nothing was paid");
    assert!(
        app.billing_events().await.is_empty(),
        "no event left billing"
    );
    let mut conn = app.ledger.pool().get().await.expect("connection");
    set_balance(0).execute(&mut conn).await.expect("set back");
    drop(conn);
    let closed = client
        .close_day(with_token(pb::CloseDayRequest::default(), &app.admin_token))
        .await
        .expect("the day closes")
        .into_inner();
    assert_eq!((closed.accounts_closed, closed.already_closed), (0, false));
    app.assert_invariants().await;
}

/// Returns once a session of the pool's database waits on a lock.
async fn awaiting_a_lock(pool: &popug_runtime::database::Pool) {
    use diesel_async::RunQueryDsl as _;
    let mut conn = pool.get().await.expect("connection");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND wait_event_type = 'Lock')",
        ))
        .get_result(&mut conn)
        .await
        .expect("activity");
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody waits on a lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A batch that updates an account's replica and then books an entry for it
/// runs into a day close that pays that account: the close waits for the
/// batch, never the other way round (before, each waited for the other and
/// Postgres aborted one of them).
#[tokio::test]
async fn an_account_update_and_a_day_close_wait_for_each_other_without_deadlock() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app(None).await;
    let worker = uuid::Uuid::new_v4();
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let day = popug_runtime::calendar::day_of(yesterday, popug_runtime::Timezone::UTC);
    let pool = app.ledger.pool().clone();
    let mut conn = pool.get().await.expect("connection");
    // Entries as the consumer books them: with their events in the inbox.
    let applied = async |conn: &mut diesel_async::AsyncPgConnection, event_id: uuid::Uuid| {
        diesel::sql_query("INSERT INTO inbox (consumer, event_id) VALUES ('billing', $1)")
            .bind::<diesel::sql_types::Uuid, _>(event_id)
            .execute(conn)
            .await
            .expect("inbox");
    };
    let reward_event = uuid::Uuid::new_v4();
    applied(&mut conn, reward_event).await;
    app.ledger
        .book(
            &mut conn,
            &[Booking {
                kind: EntryKind::CompletionReward,
                reason: None,
                task_id: uuid::Uuid::new_v4(),
                popug: worker,
                source_event_id: reward_event,
                at: yesterday,
            }],
        )
        .await
        .expect("a reward to pay at the close");

    diesel::sql_query("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    billing_svc::store::replica::role_changed(&mut conn, worker, "worker", 2)
        .await
        .expect("replica");
    let ledger = app.ledger.clone();
    let close = tokio::spawn(async move { ledger.close_day(day).await });
    // The close waits on the batch's shared lock (before the fix, on the
    // account row).
    awaiting_a_lock(&pool).await;
    let fee_event = uuid::Uuid::new_v4();
    applied(&mut conn, fee_event).await;
    app.ledger
        .book(
            &mut conn,
            &[Booking {
                kind: EntryKind::AssignmentFee,
                reason: Some(FeeReason::Created),
                task_id: uuid::Uuid::new_v4(),
                popug: worker,
                source_event_id: fee_event,
                at: chrono::Utc::now(),
            }],
        )
        .await
        .expect("the batch goes on");
    diesel::sql_query("COMMIT")
        .execute(&mut conn)
        .await
        .expect("the batch commits");
    let closed = close.await.expect("joined").expect("the close succeeds");
    assert_eq!(closed.accounts_paid, 1);
    app.assert_invariants().await;
}

/// Two workers (or replicas) meet a new task at once, each inside its batch:
/// the task is priced once (in a short transaction of its own, so neither
/// batch holds the task's row while it goes on) and both read that price.
#[tokio::test]
async fn a_task_met_by_two_batches_at_once_is_priced_once() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app(None).await;
    let task = uuid::Uuid::new_v4();
    let pool = app.ledger.pool().clone();
    let meet = |ledger: billing_svc::store::Ledger| async move {
        let mut conn = ledger.pool().get().await.expect("connection");
        diesel::sql_query("BEGIN")
            .execute(&mut conn)
            .await
            .expect("begin");
        let prices = ledger.ensure_tasks(&mut conn, &[task]).await;
        // The batch is still open while the other one prices the task.
        tokio::time::sleep(Duration::from_millis(200)).await;
        diesel::sql_query("COMMIT")
            .execute(&mut conn)
            .await
            .expect("commit");
        prices.expect("priced")
    };
    let (first, second) = tokio::join!(meet(app.ledger.clone()), meet(app.ledger.clone()));
    assert_eq!(first, second);
    let mut conn = pool.get().await.expect("connection");
    let announced: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM outbox WHERE event_type LIKE '%TaskPriced')",
    ))
    .get_result(&mut conn)
    .await
    .expect("count");
    assert_eq!(announced, 1, "the price is announced once");
}

#[tokio::test]
async fn ledger_entries_cannot_be_changed_or_removed() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    app.publish(
        &assigned(uuid::Uuid::new_v4(), worker, None),
        chrono::Utc::now(),
    )
    .await;
    consume(&mut app.consumer, 1).await;
    let mut conn = app.ledger.pool().get().await.expect("connection");
    use diesel_async::RunQueryDsl as _;
    for statement in [
        "UPDATE postings SET amount_cents = -1",
        "DELETE FROM postings",
        "TRUNCATE postings CASCADE",
        "UPDATE transactions SET day = day + 1",
        "DELETE FROM transactions",
        "TRUNCATE transactions CASCADE",
        "UPDATE tasks SET fee_cents = 1000, reward_cents = 2000",
        // A leg on its own, or legs that do not sum to zero, never land.
        "INSERT INTO postings (tx_id, account, amount_cents) SELECT tx_id, 'revenue', 100 FROM transactions",
        "INSERT INTO postings (tx_id, account, amount_cents) SELECT tx_id, a, 100 \
         FROM transactions, unnest(ARRAY['revenue', 'payouts']) a",
    ] {
        let error = diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .expect_err(statement);
        assert!(
            ["immutable", "fixed", "does not balance"]
                .iter()
                .any(|said| error.to_string().contains(said)),
            "{statement}: {error}"
        );
    }
    drop(conn);
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_payout_email_waits_for_the_smtp_server_and_goes_out_once() {
    let port = free_port();
    let mut app = spawn_app(Some(format!("smtp://127.0.0.1:{port}"))).await;
    let (earner, _) = app.account("earner", auth::Role::Worker).await;
    let yesterday_at = chrono::Utc::now() - chrono::Duration::days(1);
    let task = uuid::Uuid::new_v4();
    app.publish(&assigned(task, earner, None), yesterday_at)
        .await;
    app.publish(&completed(task, earner), yesterday_at).await;
    consume(&mut app.consumer, 2).await;
    // The day closes while the SMTP server is down: the payout stands, the
    // email waits with its error.
    app.billing()
        .close_day(with_token(
            pb::CloseDayRequest {
                date: yesterday_at.date_naive().to_string(),
            },
            &app.admin_token,
        ))
        .await
        .expect("close");
    assert_eq!(app.balance(earner).await, 0);
    assert_eq!(app.mailer.send_pending().await.expect("round"), 0);
    {
        use diesel_async::RunQueryDsl as _;
        #[derive(diesel::QueryableByName)]
        struct Pending {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            attempts: i32,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            has_error: bool,
        }
        let mut conn = app.ledger.pool().get().await.expect("connection");
        let pending: Vec<Pending> = diesel::sql_query(
            "SELECT attempts, last_error IS NOT NULL AS has_error FROM emails WHERE sent_at IS NULL",
        )
        .load(&mut conn)
        .await
        .expect("emails");
        assert_eq!(pending.len(), 1);
        assert!(pending[0].attempts >= 1 && pending[0].has_error);
    }
    // The server comes up: the next round sends it, and only once.
    let mut sink = SmtpSink::start_on(port).await;
    assert_eq!(app.mailer.send_pending().await.expect("round"), 1);
    assert_eq!(app.mailer.send_pending().await.expect("round"), 0);
    assert_eq!(sink.messages().len(), 1);
    app.assert_invariants().await;
    sink.child.kill().await.ok();
}

/// Takes what waits in the probe queue: each message id once into
/// `published`, counting the ones seen before in `duplicates`.
async fn drain_probe(
    probe: &lapin::Channel,
    queue: &str,
    published: &mut std::collections::HashSet<String>,
    duplicates: &mut usize,
) {
    while let Some(message) = probe
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
    {
        let id = message.delivery.properties.message_id().clone();
        if !published.insert(id.expect("a message id").to_string()) {
            *duplicates += 1;
        }
    }
}

/// Two billing-svc instances on one database and one queue, as two
/// Kubernetes replicas run: their consumers compete for 2,400 task events
/// while both try to close the day; their relays share one outbox.
#[tokio::test]
async fn two_replicas_under_load_book_every_event_once_and_close_the_day_once() {
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    let namespace = popug_testing::namespace();
    let database = popug_testing::database_url();
    let mail =
        std::env::temp_dir().join(format!("popug-replicas-{}", uuid::Uuid::new_v4().simple()));
    let mail = mail.to_string_lossy().into_owned();
    let settings = billing_svc::BillingSettings::load(&Env::from_pairs([
        ("POPUG_BILLING_DATABASE_URL", database.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_MAIL_DIR", mail.as_str()),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
        // Eight competing workers over two replicas, in small batches:
        // many batches book into the same accounts at once.
        ("POPUG_BILLING_CONSUMER_WORKERS", "4"),
        ("POPUG_BILLING_BATCH_SIZE", "32"),
    ]))
    .expect("settings");
    let topology = Topology::from_settings(&settings.common);
    let broker = popug_bus::Broker::new(settings.common.amqp_url.clone(), topology.clone(), "test");
    let (connection, channel) = broker.confirm_channel().await.expect("broker");
    topology::declare_catalog(&channel, &topology)
        .await
        .expect("topology");
    let (_probe_connection, probe) = broker.confirm_channel().await.expect("broker");
    declare_probe(&probe, &topology).await;
    let stop = CancellationToken::new();
    let mut ledgers = Vec::new();
    for _ in 0..2 {
        let replica = billing_svc::Application::build(settings.clone())
            .await
            .expect("a replica starts");
        ledgers.push(replica.ledger().clone());
        let stopping = stop.clone();
        tokio::spawn(replica.run_until_stopped(async move { stopping.cancelled().await }));
    }
    let _stop = stop.drop_guard();

    // Yesterday's work: 400 tasks for 20 workers, each created, assigned,
    // reassigned once and completed; 2,400 events, 1,200 entries to book.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let day = popug_runtime::calendar::day_of(yesterday, popug_runtime::Timezone::UTC);
    let workers: Vec<uuid::Uuid> = (0..20).map(|_| uuid::Uuid::new_v4()).collect();
    let mut confirms = Vec::new();
    for (number, task) in (0..400).map(|n| (n, uuid::Uuid::new_v4())) {
        let first = workers[number % workers.len()];
        let second = workers[(number + 7) % workers.len()];
        let events = [
            (
                <popug_proto::pb::popug::events::tasks::v2::TaskCreated as Event>::ROUTING_KEY,
                popug_bus::envelope::wrap(&created(task, number), "tracker", yesterday)
                    .encode_to_vec(),
            ),
            (
                tasks_v1::TaskAssigned::ROUTING_KEY,
                popug_bus::envelope::wrap(&assigned(task, first, None), "tracker", yesterday)
                    .encode_to_vec(),
            ),
            (
                tasks_v1::TaskAssigned::ROUTING_KEY,
                popug_bus::envelope::wrap(
                    &assigned(task, second, Some(first)),
                    "tracker",
                    yesterday,
                )
                .encode_to_vec(),
            ),
            (
                tasks_v1::TaskCompleted::ROUTING_KEY,
                popug_bus::envelope::wrap(&completed(task, second), "tracker", yesterday)
                    .encode_to_vec(),
            ),
        ];
        for (routing_key, body) in events {
            let confirm = channel
                .basic_publish(
                    topology.exchange().into(),
                    routing_key.into(),
                    lapin::options::BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish");
            confirms.push(confirm);
        }
        // Both replicas try to close yesterday while the load is on.
        if number == 200 {
            let (a, b) = tokio::join!(ledgers[0].close_day(day), ledgers[1].close_day(day));
            let (a, b) = (a.expect("close"), b.expect("close"));
            assert!(
                a.already_closed != b.already_closed,
                "exactly one replica closes: {a:?} {b:?}"
            );
            assert_eq!(a.payouts_cents, b.payouts_cents);
        }
    }
    for confirm in confirms {
        confirm.await.expect("confirmed");
    }
    connection.close(200, "published".into()).await.ok();

    // Every fee and reward is booked once, by whichever replica took it.
    let pool = ledgers[0].pool().clone();
    let queue = topology.queue("probe");
    let mut published = std::collections::HashSet::new();
    let mut duplicates = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        // Reading the probe as it fills also keeps it from expiring.
        drain_probe(&probe, &queue, &mut published, &mut duplicates).await;
        let mut conn = pool.get().await.expect("connection");
        let booked: i64 = diesel_async::RunQueryDsl::get_result(
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM entries WHERE kind <> 'payout')",
            )),
            &mut conn,
        )
        .await
        .expect("count");
        if booked == 1_200 {
            break;
        }
        assert!(booked < 1_200, "{booked} entries for 1,200 events");
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {booked} of 1,200 booked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = ledgers[1].close_day(day).await.expect("close");
    assert!(again.already_closed, "a closed day stays closed");
    let violations = ledgers[0].violations().await.expect("invariants");
    assert!(violations.is_empty(), "{violations:#?}");

    // The two relays shared one outbox: each event billing committed (a
    // price per task, a transaction per entry, a payment per payout, one
    // closed cycle) reached the broker exactly once.
    let mut conn = pool.get().await.expect("connection");
    let committed: i64 = diesel_async::RunQueryDsl::get_result(
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "400 + (SELECT count(*) FROM entries) + (SELECT count(*) FROM payouts) \
             + (SELECT count(*) FROM day_closes)",
        )),
        &mut conn,
    )
    .await
    .expect("count");
    let committed = usize::try_from(committed).expect("a count");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while published.len() + duplicates < committed && tokio::time::Instant::now() < deadline {
        drain_probe(&probe, &queue, &mut published, &mut duplicates).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(duplicates, 0, "events published twice by the two relays");
    assert_eq!(published.len(), committed, "events committed vs published");
    // Nothing beyond them arrives either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extra = probe
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get");
    assert!(extra.is_none(), "an event beyond the {committed} committed");
}

impl TestApp {
    async fn statement(
        &self,
        account_id: uuid::Uuid,
        from: &str,
        to: &str,
    ) -> pb::GetStatementResponse {
        self.billing()
            .get_statement(with_token(
                pb::GetStatementRequest {
                    account_id: account_id.to_string(),
                    from: from.into(),
                    to: to.into(),
                },
                &self.admin_token,
            ))
            .await
            .expect("statement")
            .into_inner()
    }
}

/// One reward per task, whatever arrives on the bus: a second completion of
/// a paid task, with an event id of its own, moves no money and goes to the
/// dead letters naming the task, alone, while the fresh events beside it in
/// the same batch are booked.
#[tokio::test]
async fn a_second_completion_of_a_paid_task_moves_no_money_and_is_dead_lettered_alone() {
    use diesel_async::RunQueryDsl as _;
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let now = chrono::Utc::now();
    let (task, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    app.publish(&assigned(task, worker, None), now).await;
    app.publish(&completed(task, worker), now).await;
    consume(&mut app.consumer, 2).await;
    let paid = app.balance(worker).await;

    // In one batch: the forged second completion between two fresh events.
    app.publish(&assigned(other, worker, None), now).await;
    app.publish(&completed(task, worker), now).await;
    app.publish(&completed(other, worker), now).await;
    let report = consume_any(&mut app.consumer, 3).await;
    assert_eq!((report.applied, report.dead_lettered), (2, 1), "{report:?}");

    let mut conn = app.ledger.pool().get().await.expect("connection");
    let rewards: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "(SELECT count(*) FROM transactions WHERE kind = 'completion_reward' AND task_id = '{task}')"
    )))
    .get_result(&mut conn)
    .await
    .expect("count");
    assert_eq!(rewards, 1, "the task is rewarded once");
    let error: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "(SELECT error FROM failed_events WHERE consumer = 'billing')",
    ))
    .get_result(&mut conn)
    .await
    .expect("one dead letter");
    assert!(
        error.contains(&task.to_string()) && error.contains("rewarded already"),
        "{error}"
    );
    drop(conn);
    // The other task's fee and reward were booked beside it.
    let statement = app.statement(worker, "", "").await;
    let other_lines = statement
        .lines
        .iter()
        .filter(|line| {
            line.entry
                .as_ref()
                .is_some_and(|e| e.task_id == other.to_string())
        })
        .count();
    assert_eq!(other_lines, 2);
    assert_ne!(app.balance(worker).await, paid);
    app.assert_invariants().await;
}

/// Many events in one batch are booked set-based: every entry carries the
/// running balance, `TransactionApplied` carries the same, and the company's
/// accounts hold the other legs.
#[tokio::test]
async fn a_batch_books_balanced_transactions_with_running_balances() {
    let mut app = spawn_app(None).await;
    let (first, _) = app.account("first", auth::Role::Worker).await;
    let (second, _) = app.account("second", auth::Role::Worker).await;
    let now = chrono::Utc::now();
    let tasks: Vec<uuid::Uuid> = (0..40).map(|_| uuid::Uuid::new_v4()).collect();
    for (i, task) in tasks.iter().enumerate() {
        let popug = if i % 2 == 0 { first } else { second };
        app.publish(&assigned(*task, popug, None), now).await;
        if i % 3 == 0 {
            app.publish(&completed(*task, popug), now).await;
        }
    }
    let published = tasks.len() + tasks.len().div_ceil(3);
    consume(&mut app.consumer, published).await;

    // TransactionApplied carries each entry's balance after it.
    let events = app.billing_events().await;
    let applied: Vec<billing_events::TransactionApplied> = events
        .iter()
        .filter(|(kind, _)| *kind == billing_events::TransactionApplied::full_name())
        .map(|(_, payload)| {
            billing_events::TransactionApplied::decode(payload.as_slice()).expect("payload")
        })
        .collect();
    assert_eq!(applied.len(), published);
    for popug in [first, second] {
        let statement = app.statement(popug, "", "").await;
        assert_eq!(statement.opening_balance_cents, 0);
        let mut running = 0;
        for line in &statement.lines {
            let entry = line.entry.as_ref().expect("entry");
            running += entry.amount_cents;
            assert_eq!(line.balance_after_cents, running);
            assert_eq!(entry.balance_after_cents, running, "booked in this order");
            let event = applied
                .iter()
                .find(|e| e.entry_id == entry.entry_id)
                .expect("announced");
            assert_eq!(event.balance_after_cents, running);
        }
        assert_eq!(statement.closing_balance_cents, running);
        assert_eq!(app.balance(popug).await, running);
    }

    // The company's side: revenue took every fee, expense paid every reward.
    let income = app
        .billing()
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("income")
        .into_inner();
    let total = income.total.expect("total");
    let fees: i64 = applied
        .iter()
        .filter(|e| e.kind == billing_events::EntryKind::AssignmentFee as i32)
        .map(|e| -e.amount_cents)
        .sum();
    let rewards: i64 = applied
        .iter()
        .filter(|e| e.kind == billing_events::EntryKind::CompletionReward as i32)
        .map(|e| e.amount_cents)
        .sum();
    assert_eq!(
        (total.revenue_cents, total.expense_cents, total.net_cents),
        (fees, rewards, fees - rewards)
    );
    let earnings = app
        .billing()
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("earnings")
        .into_inner();
    assert_eq!(earnings.days[0].earnings_cents, fees - rewards);
    app.assert_invariants().await;
}

/// A payout pays the balance at the end of the day being closed: the next
/// day's entries, booked before the close ran (a late close, or a restart
/// after midnight), stay in the next day.
#[tokio::test]
async fn a_close_pays_the_days_balance_not_what_was_booked_since() {
    let mut app = spawn_app(None).await;
    let (earner, _) = app.account("earner", auth::Role::Worker).await;
    let yesterday_at = chrono::Utc::now() - chrono::Duration::days(1);
    let yesterday = yesterday_at.date_naive().to_string();
    let today_at = chrono::Utc::now();
    let (old, new, newer) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    app.publish(&assigned(old, earner, None), yesterday_at)
        .await;
    app.publish(&completed(old, earner), yesterday_at).await;
    // Today's events arrive before yesterday closes.
    app.publish(&assigned(new, earner, None), today_at).await;
    app.publish(&completed(new, earner), today_at).await;
    app.publish(&assigned(newer, earner, None), today_at).await;
    consume(&mut app.consumer, 5).await;
    let day_end = app
        .statement(earner, &yesterday, &yesterday)
        .await
        .closing_balance_cents;
    let today_moves: i64 = app
        .statement(earner, "", "")
        .await
        .lines
        .iter()
        .map(|line| line.entry.as_ref().expect("entry").amount_cents)
        .sum();
    assert!(day_end > 0);

    let closed = app
        .billing()
        .close_day(with_token(
            pb::CloseDayRequest {
                date: yesterday.clone(),
            },
            &app.admin_token,
        ))
        .await
        .expect("close")
        .into_inner();
    assert_eq!(
        closed.payouts_cents, day_end,
        "yesterday's balance, not today's"
    );
    assert_eq!(
        app.balance(earner).await,
        today_moves,
        "today's entries stay today's"
    );
    let after = app.statement(earner, &yesterday, &yesterday).await;
    assert_eq!(after.closing_balance_cents, 0, "yesterday ends paid out");
    app.assert_invariants().await;
}

/// Statements: the owner reads its own, accountants and admins anyone's; an
/// unknown account is NOT_FOUND, a bad range names the field.
#[tokio::test]
async fn statements_are_for_the_owner_accountants_and_admins() {
    let mut app = spawn_app(None).await;
    let (worker, worker_token) = app.account("worker1", auth::Role::Worker).await;
    let (other, _) = app.account("other", auth::Role::Worker).await;
    app.publish(
        &assigned(uuid::Uuid::new_v4(), worker, None),
        chrono::Utc::now(),
    )
    .await;
    consume(&mut app.consumer, 1).await;
    let statement = |token: &str, account: String, from: &str| {
        let mut client = app.billing();
        let request = with_token(
            pb::GetStatementRequest {
                account_id: account,
                from: from.into(),
                to: String::new(),
            },
            token,
        );
        async move { client.get_statement(request).await }
    };
    let own = statement(&worker_token, String::new(), "")
        .await
        .expect("own")
        .into_inner();
    assert_eq!(own.account_id, worker.to_string());
    assert_eq!(own.lines.len(), 1);
    let code = |result: Result<tonic::Response<pb::GetStatementResponse>, tonic::Status>| {
        result.expect_err("refused").code()
    };
    assert_eq!(
        code(statement(&worker_token, other.to_string(), "").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(statement(&app.admin_token, uuid::Uuid::new_v4().to_string(), "").await),
        Code::NotFound
    );
    assert_eq!(
        code(statement(&app.admin_token, "kesha".into(), "").await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(statement(&app.admin_token, worker.to_string(), "2026-99-01").await),
        Code::InvalidArgument
    );
    let income = app
        .billing()
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest::default(),
            &worker_token,
        ))
        .await;
    assert_eq!(
        income.expect_err("workers see no income").code(),
        Code::PermissionDenied
    );
    app.assert_invariants().await;
}

/// Every assignment charges its fee, so a shuffle that leaves a task with
/// its popug charges it again: the popug's statement shows two fees of the
/// same amount, told apart by their reasons (at creation, by the shuffle
/// that kept the task), and a shuffle to another popug says so too. The
/// database refuses a fee that does not say why it was charged.
#[tokio::test]
async fn a_shuffle_that_keeps_a_task_shows_two_fees_with_their_reasons() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let (other, _) = app.account("worker2", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    app.publish(&created(task, 7), now).await;
    app.publish(&assigned(task, worker, None), now).await;
    app.publish(&assigned(task, worker, Some(worker)), now)
        .await;
    app.publish(&assigned(task, other, Some(worker)), now).await;
    assert_eq!(consume(&mut app.consumer, 4).await.applied, 4);

    // Each fee line of a statement, as (amount, description), sorted.
    let fees = async |account: uuid::Uuid| {
        let mut lines: Vec<(i64, String)> = app
            .statement(account, "", "")
            .await
            .lines
            .into_iter()
            .map(|line| {
                let entry = line.entry.expect("an entry");
                assert_eq!(entry.kind, pb::EntryKind::AssignmentFee as i32);
                (entry.amount_cents, entry.description)
            })
            .collect();
        lines.sort();
        lines
    };
    let kept = fees(worker).await;
    let fee = kept.iter().map(|(cents, _)| *cents).next().expect("a fee");
    assert_eq!(
        kept,
        [
            (
                fee,
                "fee for POPUG-7 Task 7 (assigned at creation)".to_owned()
            ),
            (
                fee,
                "fee for POPUG-7 Task 7 (reassigned by a shuffle to the same popug)".to_owned()
            ),
        ]
    );
    assert_eq!(
        fees(other).await,
        [(
            fee,
            "fee for POPUG-7 Task 7 (reassigned by a shuffle)".to_owned()
        )]
    );
    let mine = app
        .billing()
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: worker.to_string(),
                date: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("account")
        .into_inner();
    let mut described: Vec<String> = mine.entries.into_iter().map(|e| e.description).collect();
    described.sort();
    assert_eq!(
        described,
        kept.into_iter().map(|(_, text)| text).collect::<Vec<_>>(),
        "the audit log says the same"
    );

    use diesel_async::RunQueryDsl as _;
    let mut conn = app.ledger.pool().get().await.expect("connection");
    let error = diesel::sql_query(
        "INSERT INTO transactions (tx_id, kind, task_id, source_event_id, day) \
         VALUES (gen_random_uuid(), 'assignment_fee', $1, gen_random_uuid(), current_date)",
    )
    .bind::<diesel::sql_types::Uuid, _>(task)
    .execute(&mut conn)
    .await
    .expect_err("a fee without its reason");
    assert!(
        error
            .to_string()
            .contains("transactions_fees_have_a_reason"),
        "{error}"
    );
    drop(conn);
    app.assert_invariants().await;
}

/// The first billing schema, as main wrote it before the double-entry books.
const SINGLE_ENTRY_SCHEMA: &str = "2026112200000002";

/// A ledger written by the single-entry code upgrades in place: every entry
/// becomes a balanced transaction; balances, days, earnings and payouts stay
/// what they were, and the invariants hold.
#[tokio::test]
async fn a_single_entry_ledger_upgrades_to_double_entry_in_place() {
    use diesel::{Connection as _, RunQueryDsl as _};
    use diesel_migrations::MigrationHarness as _;
    // A blocking connection without libpq, as the service migrates.
    type PgConnection = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
        diesel_async::AsyncPgConnection,
    >;
    let url = popug_testing::database_url();
    let (server, name) = url.rsplit_once('/').expect("a database url");
    let (popugs, tasks) = (
        [
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        ],
        30,
    );
    let before = {
        let (url, server, name) = (url.clone(), server.to_owned(), name.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut admin = PgConnection::establish(&server).expect("server");
            diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create");
            let mut conn = PgConnection::establish(&url).expect("database");
            conn.run_pending_migrations(popug_bus::MIGRATIONS).expect("bus migrations");
            let all = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(
                &billing_svc::startup::MIGRATIONS,
            )
            .expect("migrations");
            for migration in all {
                if migration.name().version().to_string().as_str() <= SINGLE_ENTRY_SCHEMA {
                    conn.run_migration(&*migration).expect("old migration");
                }
            }
            // What the old code wrote: entries with their balances, the inbox
            // records of their events, and yesterday's close with a payout.
            diesel::sql_query(format!(
                "INSERT INTO accounts (account_id, login, balance_cents) VALUES \
                 ('{}', 'first', 0), ('{}', 'second', 0), ('{}', 'third', 0)",
                popugs[0], popugs[1], popugs[2]
            ))
            .execute(&mut conn)
            .expect("accounts");
            diesel::sql_query(format!(
                "WITH t AS (INSERT INTO tasks (task_id, fee_cents, reward_cents, title) \
                     SELECT gen_random_uuid(), 1000 + 31 * n, 2000 + 57 * n, 'task ' || n FROM generate_series(1, {tasks}) n \
                     RETURNING task_id, fee_cents, reward_cents, title), \
                 numbered AS (SELECT t.*, row_number() OVER (ORDER BY title) AS n FROM t), \
                 moves AS ( \
                     SELECT task_id, 'assignment_fee' AS kind, -fee_cents AS cents, n, \
                            (ARRAY['{a}', '{b}', '{c}']::uuid[])[1 + n % 3] AS popug FROM numbered \
                     UNION ALL SELECT task_id, 'completion_reward', reward_cents, n, \
                            (ARRAY['{a}', '{b}', '{c}']::uuid[])[1 + n % 3] FROM numbered WHERE n % 2 = 0 OR n % 3 = 2 \
                 ), booked AS ( \
                     INSERT INTO entries (entry_id, account_id, kind, amount_cents, task_id, source_event_id, day, occurred_at) \
                     SELECT gen_random_uuid(), popug, kind, cents, task_id, gen_random_uuid(), \
                            current_date - (n % 3)::int, now() - make_interval(secs => 1000 - n) FROM moves \
                     RETURNING account_id, amount_cents, source_event_id \
                 ), inboxed AS (INSERT INTO inbox (consumer, event_id) SELECT 'billing', source_event_id FROM booked) \
                 UPDATE accounts a SET balance_cents = s.total \
                 FROM (SELECT account_id, sum(amount_cents) AS total FROM booked GROUP BY account_id) s \
                 WHERE a.account_id = s.account_id",
                a = popugs[0], b = popugs[1], c = popugs[2]
            ))
            .execute(&mut conn)
            .expect("entries");
            diesel::sql_query(
                "WITH paid AS ( \
                     SELECT account_id, sum(amount_cents) AS cents FROM entries WHERE day < current_date - 1 \
                     GROUP BY account_id HAVING sum(amount_cents) > 0 \
                 ), payout AS ( \
                     INSERT INTO entries (entry_id, account_id, kind, amount_cents, source_event_id, day) \
                     SELECT gen_random_uuid(), account_id, 'payout', -cents, gen_random_uuid(), current_date - 2 FROM paid \
                     RETURNING entry_id, account_id, amount_cents \
                 ), rows AS ( \
                     INSERT INTO payouts (payout_id, account_id, day, amount_cents, entry_id) \
                     SELECT gen_random_uuid(), account_id, current_date - 2, -amount_cents, entry_id FROM payout \
                     RETURNING amount_cents \
                 ), closed AS ( \
                     INSERT INTO day_closes (day, accounts_paid, payouts_cents) \
                     SELECT current_date - 2, count(*), COALESCE(sum(amount_cents), 0) FROM rows \
                 ) \
                 UPDATE accounts a SET balance_cents = a.balance_cents + p.amount_cents FROM payout p \
                 WHERE a.account_id = p.account_id",
            )
            .execute(&mut conn)
            .expect("yesterday's close");
            #[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
            struct Figure {
                #[diesel(sql_type = diesel::sql_types::Text)]
                what: String,
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                cents: i64,
            }
            let figures: Vec<Figure> = diesel::sql_query(
                "SELECT 'balance ' || login AS what, balance_cents AS cents FROM accounts \
                 UNION ALL SELECT 'fees ' || day, -sum(amount_cents)::bigint FROM entries WHERE kind = 'assignment_fee' GROUP BY day \
                 UNION ALL SELECT 'rewards ' || day, sum(amount_cents)::bigint FROM entries WHERE kind = 'completion_reward' GROUP BY day \
                 UNION ALL SELECT 'payouts ' || day, -sum(amount_cents)::bigint FROM entries WHERE kind = 'payout' GROUP BY day \
                 UNION ALL SELECT 'entries', count(*) FROM entries ORDER BY 1",
            )
            .load(&mut conn)
            .expect("figures");
            figures.into_iter().map(|f| (f.what, f.cents)).collect::<Vec<_>>()
        })
        .await
        .expect("the old ledger")
    };
    assert!(
        before
            .iter()
            .any(|(what, cents)| what.starts_with("payouts") && *cents > 0),
        "{before:?}"
    );

    // Today's code starts on it and upgrades it.
    let app = spawn_app_on(url, None).await;
    app.assert_invariants().await;
    let today = chrono::Utc::now().date_naive();
    let earnings = app
        .billing()
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest {
                from: (today - chrono::Duration::days(2)).to_string(),
                to: today.to_string(),
            },
            &app.admin_token,
        ))
        .await
        .expect("income")
        .into_inner();
    let mut after: Vec<(String, i64)> = Vec::new();
    for (login, popug) in ["first", "second", "third"].iter().zip(popugs) {
        let balance = app.balance(popug).await;
        after.push((format!("balance {login}"), balance));
        let statement = app
            .statement(popug, &(today - chrono::Duration::days(2)).to_string(), "")
            .await;
        assert_eq!(
            statement.closing_balance_cents, balance,
            "{login}'s statement ends at the balance"
        );
    }
    let mut entries = 0;
    for day in &earnings.days {
        for (what, cents) in [
            ("fees", day.revenue_cents),
            ("rewards", day.expense_cents),
            ("payouts", day.payouts_cents),
        ] {
            if cents != 0 {
                after.push((format!("{what} {}", day.date), cents));
            }
        }
    }
    let mut page_token = String::new();
    loop {
        let page = app
            .billing()
            .list_entries(with_token(
                pb::ListEntriesRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                },
                &app.admin_token,
            ))
            .await
            .expect("entries")
            .into_inner();
        entries += page.entries.len();
        // Fees booked before their reasons were recorded read as they did.
        for entry in &page.entries {
            assert!(!entry.description.contains('('), "{}", entry.description);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    after.push(("entries".into(), i64::try_from(entries).expect("count")));
    after.sort();
    assert_eq!(after, before, "every figure survives the upgrade");
}

/// A replica that hangs mid-batch (paused, holding an account row in an open
/// transaction) holds it only for a bounded time: the server ends its idle
/// transaction, the running replica's lock waits give up and are retried
/// (never dead-lettered), and booking goes on within seconds.
#[tokio::test]
async fn a_hung_replica_holds_its_locks_only_for_a_bounded_time() {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let mut app = spawn_app_with(
        popug_testing::database_url(),
        None,
        &[
            ("POPUG_DATABASE_LOCK_TIMEOUT", "300"),
            ("POPUG_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "2000"),
        ],
    )
    .await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    // The hung replica: a session of the service (same limits) that took the
    // worker's account row in a transaction, then stopped.
    let mut hung = diesel_async::AsyncPgConnection::establish(app.database_url.as_str())
        .await
        .expect("a session");
    diesel::sql_query("BEGIN")
        .execute(&mut hung)
        .await
        .expect("begin");
    diesel::sql_query(format!(
        "SELECT 1 FROM accounts WHERE account_id = '{worker}' FOR UPDATE"
    ))
    .execute(&mut hung)
    .await
    .expect("the row is held");

    let task = uuid::Uuid::new_v4();
    app.publish(&assigned(task, worker, None), chrono::Utc::now())
        .await;
    app.publish(&completed(task, worker), chrono::Utc::now())
        .await;
    let started = std::time::Instant::now();
    let report = consume(&mut app.consumer, 2).await;
    assert_eq!(report.applied, 2, "booked once the hung transaction ended");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "booking waited {:?}",
        started.elapsed()
    );
    // The server ended the hung session's transaction.
    let ended = diesel::sql_query("COMMIT").execute(&mut hung).await;
    assert!(ended.is_err(), "the idle transaction was terminated");
    assert_ne!(app.balance(worker).await, 0);
    app.assert_invariants().await;
}

/// Runs `sql` on the server's maintenance database, outside the service's.
async fn on_server(sql: &str) {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let mut conn = diesel_async::AsyncPgConnection::establish(&popug_testing::server_url())
        .await
        .expect("the server");
    diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
}

#[tokio::test]
async fn a_day_close_that_meets_a_database_outage_is_retried_until_it_succeeds() {
    let app = spawn_app(None).await;
    let database = app.database_url.path().trim_start_matches('/').to_owned();
    let yesterday = app.ledger.today().pred_opt().expect("a day before");
    // The database goes away as midnight passes: no new sessions, and the
    // open ones are cut.
    on_server(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"
    ))
    .await;
    on_server(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ))
    .await;
    let token = CancellationToken::new();
    let closer = tokio::spawn(billing_svc::closer::run(
        app.ledger.clone(),
        app.mailer.clone(),
        popug_bus::Backoff::new(vec![Duration::from_millis(200), Duration::from_secs(1)]),
        token.clone(),
    ));
    // Longer than a checkout from the pool waits (10 s), so the first
    // attempt fails.
    tokio::time::sleep(Duration::from_secs(12)).await;
    on_server(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
    ))
    .await;

    // The close is retried within seconds, not left to the next midnight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last_closed = None;
    while last_closed != Some(yesterday) && tokio::time::Instant::now() < deadline {
        last_closed = app.ledger.last_closed().await.ok().flatten();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    closer.await.expect("the closer stops");
    assert_eq!(last_closed, Some(yesterday), "yesterday was closed");
    app.assert_invariants().await;
}

/// The value of the unlabelled gauge `name` after one round of
/// `gauge_books` (with a token already cancelled, it measures once).
async fn books_gauge(ledger: &billing_svc::store::Ledger, name: &str) -> f64 {
    let stopped = CancellationToken::new();
    stopped.cancel();
    ledger
        .clone()
        .gauge_books(Duration::from_secs(60), stopped)
        .await;
    let rendered = popug_runtime::telemetry::metrics_handle().render();
    rendered
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not exported: {rendered}"))
}

#[tokio::test]
async fn the_books_gauges_count_invariant_violations_and_ended_days_left_open() {
    use diesel_async::RunQueryDsl as _;
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    // Days close by hand here (POPUG_BILLING_AUTO_CLOSE=false): yesterday is open.
    assert_eq!(
        books_gauge(&app.ledger, "popug_billing_days_unclosed").await,
        1.0
    );
    assert_eq!(
        books_gauge(&app.ledger, "popug_ledger_invariant_violations").await,
        0.0
    );
    app.billing()
        .close_day(with_token(pb::CloseDayRequest::default(), &app.admin_token))
        .await
        .expect("close yesterday");
    assert_eq!(
        books_gauge(&app.ledger, "popug_billing_days_unclosed").await,
        0.0
    );
    // A balance that is not the sum of its entries (put in by hand).
    let mut conn = app.ledger.pool().get().await.expect("connection");
    diesel::sql_query(format!(
        "UPDATE accounts SET balance_cents = 7 WHERE account_id = '{worker}'"
    ))
    .execute(&mut conn)
    .await
    .expect("a forged balance");
    drop(conn);
    assert!(books_gauge(&app.ledger, "popug_ledger_invariant_violations").await >= 1.0);
}
