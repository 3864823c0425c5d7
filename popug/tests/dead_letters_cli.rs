//! `popug ops dead-letters list|show|replay|discard`, run as an operator
//! would, against the whole mesh with bad messages on its bus.

use std::time::Duration;

use lapin::{BasicProperties, options::BasicPublishOptions};
use popug_proto::pb::popug::events::accounts::v1::{AccountCreated, Role};
use popug_testing::ADMIN_PASSWORD;
use prost::Message as _;

mod support;

use support::Cli;

impl Cli {
    /// Publishes `body` on the mesh's exchange as if a producer had.
    async fn publish(&self, routing_key: &str, body: &[u8]) {
        let topology = popug_bus::Topology::new(Some(self.namespace.clone()));
        let broker = popug_bus::Broker::new(
            "amqp://guest:guest@127.0.0.1:5672/%2f"
                .parse()
                .expect("url"),
            topology.clone(),
            "cli-test",
        );
        let (connection, channel) = broker.confirm_channel().await.expect("broker");
        let confirm = channel
            .basic_publish(
                topology.exchange().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert_eq!(confirm, lapin::Confirmation::Ack(None), "routed");
        connection.close(200, "done".into()).await.ok();
    }

    /// Billing's dead letters once `unresolved` of them are, and in its
    /// dead-letter queue (30 s at most).
    async fn await_unresolved(&self, unresolved: u64) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let listed = self
                .json(&["ops", "dead-letters", "list", "--service", "billing"])
                .await;
            // Rows first, then (asynchronously) the broker's dead-letter queue.
            if listed["unresolved"].as_u64() == Some(unresolved)
                && listed["dead_letter_queue_depth"].as_u64() == Some(unresolved)
            {
                return listed;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "billing never had {unresolved} unresolved dead letters: {listed}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const ACCOUNT_CREATED: &str = "popug.events.accounts.v1.AccountCreated";

#[tokio::test]
async fn an_admin_lists_shows_discards_and_replays_dead_letters_from_the_command_line() {
    let cli = Cli::start().await;
    cli.json(&["login", "--login", "admin", "--password", ADMIN_PASSWORD])
        .await;
    let admin_id = cli.json(&["whoami"]).await["account_id"]
        .as_str()
        .expect("account id")
        .to_owned();
    // An account event that breaks the rules, and bytes that are no envelope.
    let invalid = AccountCreated {
        account_id: "42".into(),
        login: "forged".into(),
        name: "Forged".into(),
        email: "forged@popug.inc".into(),
        role: Role::Worker.into(),
        active: true,
        version: 1,
    };
    let envelope = popug_bus::envelope::wrap(&invalid, "auth", chrono::Utc::now());
    cli.publish("account.created.v1", &envelope.encode_to_vec())
        .await;
    cli.publish("account.created.v1", b"\xff\x00 not protobuf")
        .await;
    let listed = cli.await_unresolved(2).await;
    assert_eq!(listed["matching"], 2);
    assert_eq!(listed["error_counts"].as_array().map(Vec::len), Some(2));
    let letters = listed["dead_letters"].as_array().expect("rows");
    let id_where = |wanted: &dyn Fn(&serde_json::Value) -> bool| {
        letters
            .iter()
            .find(|letter| wanted(letter))
            .and_then(|letter| letter["id"].as_i64())
            .expect("listed")
            .to_string()
    };
    let invalid_id = id_where(&|letter| letter["event_type"] == ACCOUNT_CREATED);
    let garbage_id = id_where(&|letter| letter["event_id"] == "");

    // Filters.
    let typed = cli
        .json(&[
            "ops",
            "dead-letters",
            "list",
            "--service",
            "billing",
            "--type",
            ACCOUNT_CREATED,
        ])
        .await;
    assert_eq!(typed["matching"], 1);
    let recent = cli
        .json(&[
            "ops",
            "dead-letters",
            "list",
            "--service",
            "billing",
            "--since",
            "1h",
        ])
        .await;
    assert_eq!(recent["matching"], 2);
    let old = cli
        .json(&[
            "ops",
            "dead-letters",
            "list",
            "--service",
            "billing",
            "--until",
            "2001-01-01",
        ])
        .await;
    assert_eq!(old["matching"], 0);
    let (ok, _, stderr) = cli
        .run(&[
            "ops",
            "dead-letters",
            "list",
            "--service",
            "billing",
            "--since",
            "yesterday",
        ])
        .await;
    assert!(!ok && stderr.contains("--since"), "{stderr}");

    // One letter as JSON.
    let shown = cli
        .json(&[
            "ops",
            "dead-letters",
            "show",
            &invalid_id,
            "--service",
            "billing",
        ])
        .await;
    assert_eq!(shown["envelope"]["eventId"], envelope.event_id.as_str());
    assert_eq!(shown["envelope"]["payload"]["accountId"], "42");
    assert!(
        shown["dead_letter"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("`account_id`")),
        "{shown}"
    );
    let (ok, _, stderr) = cli
        .run(&["ops", "dead-letters", "show", "0", "--service", "billing"])
        .await;
    assert!(!ok && stderr.contains("`id`"), "{stderr}");

    // Discarded with a reason; the record names the admin.
    let (ok, _, stderr) = cli
        .run(&[
            "ops",
            "dead-letters",
            "discard",
            &garbage_id,
            "--service",
            "billing",
        ])
        .await;
    assert!(!ok && stderr.contains("--reason"), "{stderr}");
    let discarded = cli
        .json(&[
            "ops",
            "dead-letters",
            "discard",
            &garbage_id,
            "--service",
            "billing",
            "--reason",
            "bytes from a broken test publisher",
        ])
        .await;
    assert_eq!(discarded["discarded_ids"][0].to_string(), garbage_id);
    // Replayed by id: the rule still refuses it, so it fails again, on its row.
    let replayed = cli
        .json(&[
            "ops",
            "dead-letters",
            "replay",
            "--service",
            "billing",
            "--id",
            &invalid_id,
        ])
        .await;
    assert_eq!(replayed["replayed_ids"][0].to_string(), invalid_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The old form still lists.
        let all = cli
            .json(&["ops", "dead-letters", "--service", "billing", "--all"])
            .await;
        let rows = all["dead_letters"].as_array().expect("rows").clone();
        let invalid_row = rows
            .iter()
            .find(|row| {
                row["id"].as_i64().map(|id| id.to_string()).as_deref() == Some(invalid_id.as_str())
            })
            .expect("listed");
        // The broker moves the nacked message to the dead-letter queue
        // asynchronously, after the row counted the failure.
        if invalid_row["failures"] == 2 && all["dead_letter_queue_depth"] == 1 {
            let garbage_row = rows
                .iter()
                .find(|row| {
                    row["id"].as_i64().map(|id| id.to_string()).as_deref()
                        == Some(garbage_id.as_str())
                })
                .expect("listed");
            assert_eq!(garbage_row["state"], "discarded");
            assert_eq!(garbage_row["discarded_by"], admin_id.as_str());
            assert_eq!(
                garbage_row["discard_reason"],
                "bytes from a broken test publisher"
            );
            assert_eq!(all["unresolved"], 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replayed letter never failed again: {all}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
