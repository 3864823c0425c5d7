//! A working day through the generated stubs follows every rule.

use std::collections::HashMap;

use popug::client::Bearer;
use popug_proto::pb::popug::{
    analytics::v1 as analytics, auth::v1 as auth, billing::v1 as billing, tracker::v1 as tracker,
};
use tonic::Code;

use crate::helpers::{World, at, eventually, sign_in};
use popug_testing::code;

#[tokio::test]
async fn a_working_day_follows_every_rule() {
    let world = Box::pin(World::start()).await;
    let channels = &world.channels;
    let (_, manager) = world.hire("manager", auth::Role::Manager).await;
    let (_, accountant) = world.hire("accountant", auth::Role::Accountant).await;

    // Tracker 5: no worker, no task.
    let refused = world.create_task(&manager, "Feed the parrots").await;
    assert_eq!(code(refused), Code::FailedPrecondition);

    // Auth 3: one worker signs up by itself, one is created by the admin.
    let kesha = channels
        .anonymous_auth()
        .sign_up(auth::SignUpRequest {
            login: "kesha".into(),
            password: "kesha-password".into(),
            name: "Kesha".into(),
            email: "kesha@popug.example".into(),
        })
        .await
        .expect("sign up")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(kesha.role, i32::from(auth::Role::Worker));
    let kesha_token = sign_in(channels, "kesha", "kesha-password").await;
    let (gosha_id, gosha) = world.hire("gosha", auth::Role::Worker).await;
    let workers: HashMap<String, &Bearer> = HashMap::from([
        (kesha.account_id.clone(), &kesha_token),
        (gosha_id.clone(), &gosha),
    ]);

    // Tracker 2, 5: anyone creates tasks, only workers get them.
    let first = eventually(|| world.create_task(&manager, "Feed the parrots")).await;
    let mut tasks = vec![first];
    for (creator, title) in [
        (&accountant, "Count the seeds"),
        (&world.admin, "Polish the perches"),
        (&kesha_token, "Sing the morning song"),
        (&gosha, "Teach the chicks to fly"),
        (&manager, "Clean cage 7"),
    ] {
        tasks.push(world.create_task(creator, title).await.expect("created"));
    }
    for task in &tasks {
        assert!(
            workers.contains_key(&task.assignee_id),
            "{task:?} went to a non-worker"
        );
        assert!(task.key.starts_with("POPUG-"), "{}", task.key);
        assert_eq!(task.status, i32::from(tracker::TaskStatus::Open));
    }

    // Tracker 3: a bracket in the title is refused, naming the field.
    let bracketed = world
        .create_task(&manager, "[UBERPOP-42] Feed the parrots")
        .await;
    let status = bracketed.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("title"), "{}", status.message());

    // Tracker 6: only managers and admins shuffle; every open task moves.
    let shuffle = || async {
        channels
            .tracker(&manager)
            .shuffle_tasks(tracker::ShuffleTasksRequest {})
            .await
            .map(|response| response.into_inner().reassigned)
    };
    let by_worker = channels
        .tracker(&kesha_token)
        .shuffle_tasks(tracker::ShuffleTasksRequest {})
        .await;
    assert_eq!(code(by_worker), Code::PermissionDenied);
    assert_eq!(shuffle().await.expect("shuffled"), 6);

    // Tracker 7: only the assignee completes, once; others cannot even see it.
    let task = channels
        .tracker(&world.admin)
        .get_task(tracker::GetTaskRequest {
            task_id: tasks[0].task_id.clone(),
            key: String::new(),
        })
        .await
        .expect("an admin sees any task")
        .into_inner()
        .task
        .expect("task");
    let assignee = workers[&task.assignee_id];
    let other = workers
        .iter()
        .find(|(id, _)| **id != task.assignee_id)
        .map(|(_, bearer)| *bearer)
        .expect("two workers");
    let complete = |bearer: &Bearer| {
        let mut client = channels.tracker(bearer);
        let task_id = task.task_id.clone();
        async move {
            client
                .complete_task(tracker::CompleteTaskRequest { task_id })
                .await
        }
    };
    assert_eq!(code(complete(other).await), Code::PermissionDenied);
    let peek = channels
        .tracker(other)
        .get_task(tracker::GetTaskRequest {
            task_id: task.task_id.clone(),
            key: String::new(),
        })
        .await;
    assert_eq!(code(peek), Code::PermissionDenied);
    let done = complete(assignee)
        .await
        .expect("completed")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(done.status, i32::from(tracker::TaskStatus::Done));
    assert_eq!(code(complete(assignee).await), Code::FailedPrecondition);

    // Roles: a deactivated worker gets nothing at the next shuffle. The one
    // deactivated is not the assignee, who reads its account below (a
    // deactivated account reads nothing).
    let (staying, leaving) = if task.assignee_id == gosha_id {
        (gosha_id.clone(), kesha.account_id.clone())
    } else {
        (kesha.account_id.clone(), gosha_id.clone())
    };
    channels
        .auth(&world.admin)
        .deactivate_account(auth::DeactivateAccountRequest {
            account_id: leaving.clone(),
        })
        .await
        .expect("deactivated");
    eventually(|| async {
        shuffle().await?;
        let open = channels
            .tracker(&manager)
            .list_tasks(tracker::ListTasksRequest {
                status: tracker::TaskStatus::Open.into(),
                page_size: 100,
                page_token: String::new(),
            })
            .await?
            .into_inner()
            .tasks;
        if open.iter().all(|task| task.assignee_id == staying) {
            Ok(())
        } else {
            Err(tonic::Status::unavailable("the replica has not heard yet"))
        }
    })
    .await;
    world.assert_books_agree().await;

    // Billing 3, 4, 7: fees on every assignment, the reward at completion,
    // the balance is the sum of the entries, each visible to its owner.
    let mine = world.balance(assignee, world.day).await;
    assert_eq!(
        mine.balance_cents,
        mine.entries
            .iter()
            .map(|entry| entry.amount_cents)
            .sum::<i64>()
    );
    let rewards: Vec<&billing::Entry> = mine
        .entries
        .iter()
        .filter(|entry| entry.kind == i32::from(billing::EntryKind::CompletionReward))
        .collect();
    assert_eq!(rewards.len(), 1, "one completion, one reward");
    assert_eq!(rewards[0].task_id, task.task_id);
    assert!((2_000..=4_000).contains(&rewards[0].amount_cents));
    for entry in &mine.entries {
        if entry.kind == i32::from(billing::EntryKind::AssignmentFee) {
            assert!((-2_000..=-1_000).contains(&entry.amount_cents), "{entry:?}");
        }
    }
    let peek = channels
        .billing(assignee)
        .get_account(billing::GetAccountRequest {
            account_id: leaving.clone(),
            date: String::new(),
        })
        .await;
    assert_eq!(code(peek), Code::PermissionDenied);
    let seen = channels
        .billing(&accountant)
        .get_account(billing::GetAccountRequest {
            account_id: gosha_id.clone(),
            date: world.day.to_string(),
        })
        .await
        .expect("an accountant sees any account")
        .into_inner();
    assert!(seen.balance_cents < 0, "gosha only paid fees: {seen:?}");

    // Billing 7 and Analytics 2: earnings agree; analytics is for admins.
    let earnings = channels
        .billing(&accountant)
        .get_management_earnings(billing::GetManagementEarningsRequest {
            from: world.day.to_string(),
            to: world.day.to_string(),
        })
        .await
        .expect("earnings")
        .into_inner()
        .days;
    assert_eq!(earnings.len(), 1);
    assert_eq!(
        earnings[0].earnings_cents,
        earnings[0].fees_cents - earnings[0].rewards_cents
    );
    let dashboard = |bearer: &Bearer| {
        let mut client = channels.analytics(bearer);
        let date = world.day.to_string();
        async move {
            client
                .get_dashboard(analytics::GetDashboardRequest { date })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_eq!(code(dashboard(&accountant).await), Code::PermissionDenied);
    let figures = dashboard(&world.admin).await.expect("dashboard");
    assert_eq!(
        figures.management_earnings_cents,
        earnings[0].earnings_cents
    );

    // Billing 5, 6: the day closes only once it has ended, by an admin, once.
    let close = |bearer: &Bearer| {
        let mut client = channels.billing(bearer);
        let date = world.day.to_string();
        async move {
            client
                .close_day(billing::CloseDayRequest { date })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_eq!(code(close(&world.admin).await), Code::FailedPrecondition);
    // Read as the admin: one of the two workers is deactivated by now.
    let mut balances = Vec::new();
    for account_id in [&staying, &leaving] {
        balances.push((account_id, world.balance_of(account_id).await));
    }
    world
        .clock
        .advance_to(at(world.day + chrono::Days::new(1), 0) + chrono::Duration::seconds(1))
        .expect("the day ends");
    assert_eq!(code(close(&manager).await), Code::PermissionDenied);
    let closed = close(&world.admin).await.expect("closed");
    let positive: Vec<i64> = balances
        .iter()
        .map(|(_, b)| *b)
        .filter(|b| *b > 0)
        .collect();
    assert_eq!(closed.accounts_closed as usize, positive.len());
    assert_eq!(closed.payouts_cents, positive.iter().sum::<i64>());
    assert!(!closed.already_closed);
    let again = close(&world.admin).await.expect("closed again");
    assert!(again.already_closed);
    assert_eq!(again.payouts_cents, closed.payouts_cents);
    for (account_id, before) in balances {
        let after = world.balance_of(account_id).await;
        // A positive balance is paid out; a negative one carries over.
        assert_eq!(after, before.min(0));
    }
    if !positive.is_empty() {
        let mails = std::fs::read_dir(&world.mail_dir)
            .expect("the mail directory")
            .filter_map(Result::ok)
            .filter(|file| {
                std::fs::read_to_string(file.path())
                    .is_ok_and(|text| text.contains("payout") || text.contains("Payout"))
            })
            .count();
        assert!(
            mails >= positive.len(),
            "{mails} payout emails for {} payouts",
            positive.len()
        );
    }
    world.assert_books_agree().await;
}
