//! `popug ops ...`: a service's event flow (admins): the outbox and its
//! relay, replaying dead letters, and the dead-letter console
//! ([`super::dead_letters`]).

use anyhow::bail;
use clap::Subcommand;
use popug::client::{answer, connect};
use popug_proto::pb::popug::ops::v1::{self as ops, ops_service_client::OpsServiceClient};
use popug_runtime::Service;
use serde_json::json;

use super::dead_letters;
use crate::{config, output, session};

#[derive(Subcommand)]
pub(crate) enum OpsCommand {
    /// Events waiting in the outbox, and the relay's health.
    Outbox {
        /// auth, tracker, billing or analytics.
        #[arg(long, default_value = "auth")]
        service: String,
    },
    /// Events the service could not handle: list, show, replay, discard.
    DeadLetters(dead_letters::DeadLettersArgs),
    /// Moves dead letters back to the live queue after a fix.
    Replay {
        /// tracker, billing or analytics.
        #[arg(long)]
        service: String,
    },
}

/// Runs one `popug ops` command.
pub(crate) async fn run(json: bool, command: OpsCommand) -> anyhow::Result<()> {
    let (service, replay) = match command {
        OpsCommand::Outbox { service } => (service, false),
        OpsCommand::Replay { service } => (service, true),
        OpsCommand::DeadLetters(args) => return dead_letters::run(json, args).await,
    };
    let (_, bearer) = session::signed_in().await?;
    let target = match service.as_str() {
        "auth" => Service::Auth,
        "tracker" => Service::Tracker,
        "billing" => Service::Billing,
        "analytics" => Service::Analytics,
        other => bail!("`{other}` is not a service: auth, tracker, billing or analytics"),
    };
    let mut client =
        OpsServiceClient::with_interceptor(connect(config::endpoints().of(target)).await?, bearer);
    if replay {
        let request = ops::ReplayDeadLettersRequest {
            limit: 0,
            ..ops::ReplayDeadLettersRequest::default()
        };
        let replayed = answer(client.replay_dead_letters(request)).await?.replayed;
        output::print(
            json,
            &["service", "replayed"],
            &[json!({ "service": service, "replayed": replayed })],
        );
        return Ok(());
    }
    let status = answer(client.get_outbox_status(ops::GetOutboxStatusRequest {})).await?;
    let row = json!({
        "service": service,
        "pending": status.pending,
        "oldest_pending_at": output::time(status.oldest_pending_at.as_ref()),
        "oldest_pending_age_ms": status.oldest_pending_age_ms,
        "relay_connected": status.relay_connected,
        "relay_blocked": status.relay_blocked,
        "relay": relay_state(target, status.relay_connected, status.relay_blocked),
        "last_error": status.last_error,
    });
    output::print(
        json,
        &[
            "service",
            "pending",
            "oldest_pending_age_ms",
            "relay",
            "last_error",
        ],
        &[row],
    );
    Ok(())
}

/// The outbox relay of `service` as people read it: analytics publishes no
/// events, so it has no relay at all (not a disconnected one); a connected
/// relay may be blocked by the broker (a memory or disk alarm).
fn relay_state(service: Service, connected: bool, blocked: bool) -> &'static str {
    match (service, connected, blocked) {
        (Service::Analytics, ..) => "none (analytics publishes no events)",
        (_, true, true) => "blocked by the broker",
        (_, true, false) => "connected",
        (_, false, _) => "disconnected",
    }
}
