//! The accounts replica: account events out of order and twice.

use popug_bus::Topology;
use prost::Message as _;
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_replica_survives_account_events_out_of_order_and_twice() {
    use popug_proto::pb::popug::events::accounts::v1 as accounts_v1;
    let mut app = spawn_app().await;
    let channel = app.probe.channel().clone();
    let account_id = uuid::Uuid::new_v4().to_string();
    let earlier = chrono::Utc::now() - chrono::Duration::minutes(5);
    let later = chrono::Utc::now();
    let created = popug_bus::envelope::wrap(
        &accounts_v1::AccountCreated {
            account_id: account_id.clone(),
            login: "late-bird".into(),
            name: "Late Bird".into(),
            email: "late@popug.inc".into(),
            role: accounts_v1::Role::Worker.into(),
            active: true,
            version: 1,
        },
        "auth",
        // The producer's clock may even say the promotion came first.
        later,
    );
    let promoted = popug_bus::envelope::wrap(
        &accounts_v1::AccountRoleChanged {
            account_id: account_id.clone(),
            role: accounts_v1::Role::Manager.into(),
            previous_role: accounts_v1::Role::Worker.into(),
            version: 2,
        },
        "auth",
        earlier,
    );
    let exchange = Topology::new(None).exchange();
    let namespaced_exchange = app.probe.queue().replace("probe.events", &exchange);
    // The newer role change first, then the creation, then the creation again.
    for (key, envelope) in [
        ("account.role_changed.v1", &promoted),
        ("account.created.v1", &created),
        ("account.created.v1", &created),
    ] {
        channel
            .basic_publish(
                namespaced_exchange.as_str().into(),
                key.into(),
                Default::default(),
                &envelope.encode_to_vec(),
                Default::default(),
            )
            .await
            .expect("publish");
    }
    let report = app.consume(3).await;
    assert_eq!((report.applied, report.duplicates), (2, 1));
    // Still a manager (the older creation did not undo the newer promotion),
    // so still nobody to assign: the only account is a manager.
    let status = app
        .create_task(&app.admin_token.clone(), "Anyone?")
        .await
        .expect_err("no worker");
    assert_eq!(status.code(), Code::FailedPrecondition);
}
