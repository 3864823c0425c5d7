//! `popug ops dead-letters list|show|replay|discard`: the dead-letter
//! console of one service, over its `popug.ops.v1.OpsService` (admins).
//!
//! `popug ops dead-letters --service <service> [--all]` (no subcommand)
//! lists, as it always did.

#![allow(clippy::print_stdout)] // `show` prints the envelope's JSON as it is

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use popug::client::{Bearer, Endpoints, answer, connect};
use popug_proto::pb::popug::ops::v1::{self as ops, ops_service_client::OpsServiceClient};
use popug_runtime::Service;
use serde_json::{Value, json};
use tonic::{codegen::InterceptedService, transport::Channel};

use crate::output;

/// Dead letters of one service: `list` (default), `show`, `replay`, `discard`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct DeadLettersArgs {
    #[command(subcommand)]
    command: Option<DeadLettersCommand>,
    /// Without a subcommand: the service to list (tracker, billing or analytics).
    #[arg(long)]
    service: Option<String>,
    /// Without a subcommand: also the resolved and discarded ones.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// Lists dead letters, newest first, with counts by error.
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: FilterArgs,
        /// Also the resolved and discarded ones.
        #[arg(long)]
        all: bool,
    },
    /// Shows one dead letter: its row, and its envelope with the payload
    /// decoded, as JSON.
    Show {
        /// The dead letter's id (from `list`).
        id: i64,
        #[command(flatten)]
        target: Target,
    },
    /// Moves dead letters back to the live queue after a fix: all of them,
    /// or those named by `--id` or matching the filter.
    Replay {
        #[command(flatten)]
        target: Target,
        /// Only this dead letter (repeat for more).
        #[arg(long = "id")]
        ids: Vec<i64>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Most messages to move (0: no limit).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Closes dead letters that must never be applied; the audit record
    /// keeps who did it and why.
    Discard {
        /// The dead letters' ids (from `list`).
        #[arg(required = true)]
        ids: Vec<i64>,
        #[command(flatten)]
        target: Target,
        /// Why they must never apply (kept in the audit record).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
struct Target {
    /// tracker, billing or analytics.
    #[arg(long)]
    service: String,
}

#[derive(Args)]
struct FilterArgs {
    /// Only this payload type, e.g. popug.events.tasks.v1.TaskCompleted.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only errors containing this text (ignoring case).
    #[arg(long)]
    error: Option<String>,
    /// Only failures at or after this time: RFC 3339, YYYY-MM-DD (UTC), or
    /// an age such as 30m, 12h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Only failures before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
}

impl FilterArgs {
    fn is_set(&self) -> bool {
        self.event_type.is_some()
            || self.error.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }

    fn to_proto(&self) -> anyhow::Result<Option<ops::DeadLetterFilter>> {
        if !self.is_set() {
            return Ok(None);
        }
        let now = chrono::Utc::now();
        Ok(Some(ops::DeadLetterFilter {
            event_type: self.event_type.clone().unwrap_or_default(),
            error_contains: self.error.clone().unwrap_or_default(),
            failed_after: self
                .since
                .as_deref()
                .map(|text| when("--since", text, now))
                .transpose()?,
            failed_before: self
                .until
                .as_deref()
                .map(|text| when("--until", text, now))
                .transpose()?,
        }))
    }
}

/// A time given as RFC 3339, a day (its start, UTC) or an age before `now`.
fn when(
    flag: &str,
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<prost_types::Timestamp> {
    let time = if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        time.with_timezone(&chrono::Utc)
    } else if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        day.and_time(chrono::NaiveTime::MIN).and_utc()
    } else {
        let unit = text.chars().last().unwrap_or(' ');
        let amount: i64 = text[..text.len() - unit.len_utf8().min(text.len())]
            .parse()
            .ok()
            .filter(|amount| *amount >= 0)
            .with_context(|| {
                format!(
                    "{flag} `{text}`: expected RFC 3339, YYYY-MM-DD, or an age like 30m, 12h, 7d"
                )
            })?;
        let age = match unit {
            's' => chrono::Duration::try_seconds(amount),
            'm' => chrono::Duration::try_minutes(amount),
            'h' => chrono::Duration::try_hours(amount),
            'd' => chrono::Duration::try_days(amount),
            _ => None,
        }
        .with_context(|| format!("{flag} `{text}`: an age ends in s, m, h or d"))?;
        now - age
    };
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

type Client = OpsServiceClient<InterceptedService<Channel, Bearer>>;

async fn client(service: &str) -> anyhow::Result<Client> {
    let target = match service {
        "tracker" => Service::Tracker,
        "billing" => Service::Billing,
        "analytics" => Service::Analytics,
        "auth" => bail!("auth consumes no events, so it has no dead letters"),
        other => bail!("`{other}` is not a service: tracker, billing or analytics"),
    };
    let (_, bearer) = crate::session::signed_in().await?;
    Ok(OpsServiceClient::with_interceptor(
        connect(Endpoints::from_env().of(target)).await?,
        bearer,
    ))
}

/// Runs a `popug ops dead-letters` command.
pub(crate) async fn run(json: bool, args: DeadLettersArgs) -> anyhow::Result<()> {
    let command = match args.command {
        Some(command) => command,
        None => {
            let Some(service) = args.service else {
                bail!("say which service: `popug ops dead-letters list --service <service>`");
            };
            DeadLettersCommand::List {
                target: Target { service },
                filter: FilterArgs {
                    event_type: None,
                    error: None,
                    since: None,
                    until: None,
                },
                all: args.all,
            }
        }
    };
    match command {
        DeadLettersCommand::List {
            target,
            filter,
            all,
        } => list(json, &target.service, &filter, all).await,
        DeadLettersCommand::Show { id, target } => show(json, &target.service, id).await,
        DeadLettersCommand::Replay {
            target,
            ids,
            filter,
            limit,
        } => replay(json, &target.service, ids, &filter, limit).await,
        DeadLettersCommand::Discard {
            ids,
            target,
            reason,
        } => discard(json, &target.service, ids, reason).await,
    }
}

fn row(letter: &ops::DeadLetter) -> Value {
    let state = if letter.discarded_at.is_some() {
        "discarded"
    } else if letter.resolved_at.is_some() {
        "resolved"
    } else {
        "unresolved"
    };
    json!({
        "id": letter.id, "event_id": letter.event_id, "event_type": letter.event_type,
        "routing_key": letter.routing_key, "failures": letter.failures,
        "failed_at": output::time(letter.failed_at.as_ref()), "state": state,
        "resolved_at": output::time(letter.resolved_at.as_ref()),
        "discarded_at": output::time(letter.discarded_at.as_ref()),
        "discarded_by": letter.discarded_by, "discard_reason": letter.discard_reason,
        "body_size": letter.body_size, "error": letter.error,
    })
}

async fn list(json: bool, service: &str, filter: &FilterArgs, all: bool) -> anyhow::Result<()> {
    let mut client = client(service).await?;
    let filter = filter.to_proto()?;
    // Pages end by count or by size; read them all.
    let mut listed = ops::ListDeadLettersResponse::default();
    loop {
        let request = ops::ListDeadLettersRequest {
            page_size: 1000,
            include_resolved: all,
            page_token: listed.next_page_token.clone(),
            filter: filter.clone(),
            ..ops::ListDeadLettersRequest::default()
        };
        let page = answer(client.list_dead_letters(request)).await?;
        listed.dead_letters.extend(page.dead_letters);
        listed.unresolved = page.unresolved;
        listed.matching = page.matching;
        listed.error_counts = page.error_counts;
        listed.dead_letter_queue_depth = page.dead_letter_queue_depth;
        listed.next_page_token = page.next_page_token;
        if listed.next_page_token.is_empty() {
            break;
        }
    }
    let rows: Vec<Value> = listed.dead_letters.iter().map(row).collect();
    let counts: Vec<Value> = listed
        .error_counts
        .iter()
        .map(|count| {
            json!({
                "count": count.count, "last_failed_at": output::time(count.last_failed_at.as_ref()),
                "error": count.error,
            })
        })
        .collect();
    if json {
        output::print_json(json!({
            "dead_letters": rows, "error_counts": counts, "matching": listed.matching,
            "unresolved": listed.unresolved,
            "dead_letter_queue_depth": listed.dead_letter_queue_depth,
        }));
        return Ok(());
    }
    if !counts.is_empty() {
        output::print(false, &["count", "last_failed_at", "error"], &counts);
        println!();
    }
    output::print(
        false,
        &[
            "id",
            "event_type",
            "failures",
            "failed_at",
            "state",
            "error",
        ],
        &rows,
    );
    eprintln!(
        "{} matching; {} unresolved in all, {} in the dead-letter queue",
        listed.matching, listed.unresolved, listed.dead_letter_queue_depth
    );
    Ok(())
}

async fn show(json: bool, service: &str, id: i64) -> anyhow::Result<()> {
    let mut client = client(service).await?;
    let request = ops::GetDeadLetterRequest {
        id,
        include_body: false,
    };
    let shown = answer(client.get_dead_letter(request)).await?;
    let letter = shown.dead_letter.unwrap_or_default();
    let envelope: Value = if shown.envelope_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&shown.envelope_json).unwrap_or(Value::String(shown.envelope_json))
    };
    if json {
        output::print_json(json!({
            "dead_letter": row(&letter), "envelope": envelope,
            "decode_error": shown.decode_error,
        }));
        return Ok(());
    }
    let fields = row(&letter);
    for key in [
        "id",
        "state",
        "event_id",
        "event_type",
        "routing_key",
        "failures",
        "failed_at",
        "resolved_at",
        "discarded_at",
        "discarded_by",
        "discard_reason",
        "body_size",
        "error",
    ] {
        match &fields[key] {
            Value::Null => {}
            Value::String(text) if text.is_empty() => {}
            Value::String(text) => println!("{key:<15} {text}"),
            other => println!("{key:<15} {other}"),
        }
    }
    if !shown.decode_error.is_empty() {
        println!("{:<15} {}", "decode_error", shown.decode_error);
    }
    if envelope != Value::Null {
        println!(
            "\n{}",
            serde_json::to_string_pretty(&envelope).unwrap_or_default()
        );
    }
    Ok(())
}

async fn replay(
    json: bool,
    service: &str,
    ids: Vec<i64>,
    filter: &FilterArgs,
    limit: u32,
) -> anyhow::Result<()> {
    let mut client = client(service).await?;
    let request = ops::ReplayDeadLettersRequest {
        limit,
        ids,
        filter: filter.to_proto()?,
    };
    let replayed = answer(client.replay_dead_letters(request)).await?;
    output::print(
        json,
        &[
            "service",
            "replayed",
            "replayed_ids",
            "not_replayed_ids",
            "dropped_discarded",
        ],
        &[json!({
            "service": service, "replayed": replayed.replayed,
            "replayed_ids": replayed.replayed_ids, "not_replayed_ids": replayed.not_replayed_ids,
            "dropped_discarded": replayed.dropped_discarded,
        })],
    );
    Ok(())
}

async fn discard(json: bool, service: &str, ids: Vec<i64>, reason: String) -> anyhow::Result<()> {
    let mut client = client(service).await?;
    let request = ops::DiscardDeadLettersRequest { ids, reason };
    let discarded = answer(client.discard_dead_letters(request)).await?;
    output::print(
        json,
        &[
            "service",
            "discarded_ids",
            "already_closed_ids",
            "not_found_ids",
            "dropped_from_queue",
        ],
        &[json!({
            "service": service, "discarded_ids": discarded.discarded_ids,
            "already_closed_ids": discarded.already_closed_ids,
            "not_found_ids": discarded.not_found_ids,
            "dropped_from_queue": discarded.dropped_from_queue,
        })],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_days_or_ages() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let seconds = |text: &str| when("--since", text, now).expect(text).seconds;
        assert_eq!(seconds("2026-12-02T09:00:00Z"), now.timestamp() - 3_600);
        assert_eq!(seconds("2026-12-01"), now.timestamp() - 34 * 3_600);
        assert_eq!(seconds("30m"), now.timestamp() - 1_800);
        assert_eq!(seconds("2d"), now.timestamp() - 2 * 86_400);
        for bad in ["yesterday", "5w", "-3h", "", "h"] {
            let error = when("--since", bad, now).expect_err(bad).to_string();
            assert!(error.starts_with("--since"), "{error}");
        }
    }
}
