//! `popug reset`: starts this machine's popug over. It drops the four
//! databases the local settings name (`popug_auth` .. `popug_analytics` on
//! `POPUG_POSTGRES_URL`, or the `POPUG_<SERVICE>_DATABASE_URL`s) and deletes
//! the namespace's queues (each consumer's live and dead-letter queue) and
//! its exchange, with what they hold. It says exactly what it will remove,
//! then asks (or goes on with `--yes`); it refuses while a service of these
//! settings still answers.

use std::{io::IsTerminal as _, time::Duration};

use anyhow::{Context as _, bail};
use popug::mesh::{MeshSettings, drop_databases};
use serde_json::json;

use crate::output;

/// Removes everything after confirmation (`yes` skips it).
pub(crate) async fn reset(json: bool, yes: bool) -> anyhow::Result<()> {
    let settings = MeshSettings::load(&popug_runtime::Env::process())?;
    let commons = [
        &settings.auth.common,
        &settings.tracker.common,
        &settings.billing.common,
        &settings.analytics.common,
    ];
    for common in commons {
        let addr = common.addr;
        let answering = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .is_ok_and(|connected| connected.is_ok());
        if answering {
            bail!(
                "{}-svc answers at {addr}: stop `popug up` (or the service) first, then reset",
                common.service.name()
            );
        }
    }
    let databases: Vec<url::Url> = commons
        .iter()
        .map(|common| common.database_url.clone())
        .collect();
    let topology = popug_bus::Topology::from_settings(settings.common());
    let (queues, exchange) = popug_bus::topology::objects(&topology);
    let broker_shown = popug_runtime::database::redacted(&settings.common().amqp_url);
    let database_names: Vec<String> = databases
        .iter()
        .map(popug_runtime::database::redacted)
        .collect();
    eprintln!(
        "popug reset removes, with everything in them:\n  the databases {}\n  from RabbitMQ at {broker_shown}: the queues {} and the exchange {exchange}",
        database_names.join(", "),
        queues.join(", ")
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("nothing was removed: confirm with --yes (stdin is not a terminal to ask on)");
        }
        eprint!("type `reset` to go on: ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if answer.trim() != "reset" {
            bail!("nothing was removed");
        }
    }
    drop_databases(&databases).await?;
    let connection = lapin::Connection::connect(
        settings.common().amqp_url.as_str(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .map_err(|error| crate::commands::broker_error(&broker_shown, &error))?;
    let channel = connection.create_channel().await?;
    let deleted = popug_bus::topology::delete_all(&channel, &topology)
        .await
        .with_context(|| format!("deleting the queues and the exchange at {broker_shown}"))?;
    connection.close(200, "reset".into()).await.ok();
    let rows: Vec<serde_json::Value> =
        database_names
            .iter()
            .map(|name| json!({ "removed": name, "kind": "database", "messages": null }))
            .chain(deleted.iter().map(
                |(queue, held)| json!({ "removed": queue, "kind": "queue", "messages": held }),
            ))
            .chain([json!({ "removed": exchange, "kind": "exchange", "messages": null })])
            .collect();
    output::print_list(json, &["kind", "removed", "messages"], rows);
    if !json {
        output::note("done: `popug up` starts afresh (a new first admin; sign in again)");
    }
    Ok(())
}
