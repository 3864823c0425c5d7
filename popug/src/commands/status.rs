//! `popug status`: the system at a glance. For each service: whether it
//! answers and is serving (`grpc.health.v1`), its version, its outbox
//! backlog and its dead letters (admins), and the events queued for its
//! consumer (read from the broker with the local settings); then who is
//! signed in, and the web app's address if one answers there. Exits
//! non-zero when a service does not answer or is not serving.

use std::time::Duration;

use anyhow::bail;
use popug::client::{Bearer, connect};
use popug_proto::pb::popug::ops::v1::{self as ops, ops_service_client::OpsServiceClient};
use popug_runtime::Service;
use serde_json::{Value, json};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{output, session::Session};

/// How long a service has to answer.
const PATIENCE: Duration = Duration::from_secs(3);

/// Health and version of the service at `url`.
async fn health(url: &str) -> (String, String) {
    let checked = tokio::time::timeout(PATIENCE, async {
        let channel = connect(url).await?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        let version = response
            .metadata()
            .get(popug_runtime::instrument::VERSION_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("unknown")
            .to_owned();
        let status = response.into_inner().status();
        anyhow::Ok((status.as_str_name().to_lowercase(), version))
    })
    .await;
    match checked {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => ("unreachable".into(), String::new()),
        Err(_) => ("no answer".into(), String::new()),
    }
}

/// The outbox and dead letters of `service`, as an admin sees them; `None`
/// where the caller may not look (or the service does not answer).
async fn ops_figures(url: &str, service: Service, bearer: Option<&Bearer>) -> Value {
    let Some(bearer) = bearer else {
        return json!({});
    };
    let figures = tokio::time::timeout(PATIENCE, async {
        let mut client = OpsServiceClient::with_interceptor(connect(url).await?, bearer.clone());
        let outbox = client
            .get_outbox_status(ops::GetOutboxStatusRequest {})
            .await?
            .into_inner();
        let mut figures = json!({
            "outbox_pending": outbox.pending,
            "oldest_pending_age_ms": outbox.oldest_pending_age_ms,
        });
        if service != Service::Auth {
            let dead = client
                .list_dead_letters(ops::ListDeadLettersRequest {
                    page_size: 1,
                    ..ops::ListDeadLettersRequest::default()
                })
                .await?
                .into_inner();
            figures["dead_letters_unresolved"] = json!(dead.unresolved);
            figures["dead_letter_queue_depth"] = json!(dead.dead_letter_queue_depth);
        }
        anyhow::Ok(figures)
    })
    .await;
    match figures {
        Ok(Ok(figures)) => figures,
        _ => json!({}),
    }
}

/// Messages waiting in each consumer's live queue, from the local broker
/// settings; `None` when the broker cannot be asked.
async fn queued() -> Option<Vec<(String, u32)>> {
    let env = popug_runtime::Env::process();
    let settings = popug_runtime::Settings::load(Service::Analytics, &env).ok()?;
    let topology = popug_bus::Topology::from_settings(&settings);
    let connection = tokio::time::timeout(
        PATIENCE,
        lapin::Connection::connect(
            settings.amqp_url.as_str(),
            lapin::ConnectionProperties::default(),
        ),
    )
    .await
    .ok()?
    .ok()?;
    let mut waiting = Vec::new();
    for consumer in popug_bus::topology::consumers() {
        // A channel each: a missing queue closes the channel it was asked on.
        let channel = connection.create_channel().await.ok()?;
        let queue = channel
            .queue_declare(
                topology.queue(consumer).into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        if let Ok(queue) = queue {
            waiting.push((consumer.to_owned(), queue.message_count()));
        }
    }
    connection.close(200, "status".into()).await.ok();
    Some(waiting)
}

/// The web app's address, if something answers there.
async fn web() -> (String, bool) {
    let addr = std::env::var("POPUG_WEB_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let answering = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr.as_str()),
    )
    .await
    .is_ok_and(|connected| connected.is_ok());
    (addr, answering)
}

fn cell(figures: &Value, key: &str) -> Value {
    figures.get(key).cloned().unwrap_or(Value::Null)
}

/// The signed-in account, if the session still works.
async fn who_am_i() -> Option<popug_proto::pb::popug::auth::v1::Account> {
    let (mut client, _) = crate::session::auth_client().await.ok()?;
    client
        .who_am_i(popug_proto::pb::popug::auth::v1::WhoAmIRequest {})
        .await
        .ok()?
        .into_inner()
        .account
}

/// Prints the status; fails when a service is down.
pub(crate) async fn status(json: bool) -> anyhow::Result<()> {
    let endpoints = crate::config::endpoints();
    let session = Session::load().ok();
    let bearer = match &session {
        Some(_) => crate::session::signed_in()
            .await
            .ok()
            .map(|(_, bearer)| bearer),
        None => None,
    };
    let account = match &bearer {
        Some(_) => who_am_i().await,
        None => None,
    };
    let waiting = queued().await;
    let mut rows = Vec::new();
    let mut down = Vec::new();
    for service in Service::ALL {
        let url = endpoints.of(service);
        let (health, version) = health(url).await;
        if health != "serving" {
            down.push(service.name());
        }
        let figures = ops_figures(url, service, bearer.as_ref()).await;
        let queued = waiting.as_ref().and_then(|waiting| {
            waiting
                .iter()
                .find(|(consumer, _)| consumer == service.name())
                .map(|(_, count)| *count)
        });
        let dead_letters = match (
            figures.get("dead_letters_unresolved"),
            figures.get("dead_letter_queue_depth"),
        ) {
            (Some(unresolved), Some(depth)) => json!(format!("{unresolved} ({depth} queued)")),
            _ => Value::Null,
        };
        rows.push(json!({
            "service": service.name(),
            "url": url,
            "health": health,
            "version": version,
            "outbox": cell(&figures, "outbox_pending"),
            "outbox_pending": cell(&figures, "outbox_pending"),
            "oldest_pending_age_ms": cell(&figures, "oldest_pending_age_ms"),
            "dead_letters": dead_letters,
            "dead_letters_unresolved": cell(&figures, "dead_letters_unresolved"),
            "dead_letter_queue_depth": cell(&figures, "dead_letter_queue_depth"),
            "queued": queued,
        }));
    }
    let (web_addr, web_answers) = web().await;
    let signed_in = session.as_ref().map(|session| {
        let role = account.as_ref().map(|account| {
            popug_proto::pb::popug::auth::v1::Role::try_from(account.role)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("ROLE_")
                .to_lowercase()
        });
        json!({ "login": session.login, "auth_url": session.auth_url, "role": role, "session_valid": account.is_some() })
    });
    if json {
        output::print_json(json!({
            "services": rows,
            "signed_in": signed_in,
            "web": if web_answers { Some(format!("http://{web_addr}")) } else { None },
        }));
    } else {
        output::print(
            false,
            &[
                "service",
                "url",
                "health",
                "version",
                "outbox",
                "dead_letters",
                "queued",
            ],
            &rows,
        );
        #[allow(clippy::print_stdout)] // the summary lines are this command's output
        {
            match (&session, &account) {
                (Some(session), Some(_)) => println!(
                    "signed in as {} ({}) at {}",
                    session.login,
                    signed_in
                        .as_ref()
                        .and_then(|value| value["role"].as_str())
                        .unwrap_or("?"),
                    session.auth_url
                ),
                (Some(session), None) => println!(
                    "the session of {} has ended or its service does not answer; run `popug login`",
                    session.login
                ),
                (None, _) => println!("not signed in: `popug login --login admin`"),
            }
            if bearer.is_some() && rows.iter().all(|row| row["outbox"].is_null()) {
                println!("(outbox and dead letters are shown to admins)");
            }
            if waiting.is_none() {
                println!(
                    "(queued: the broker of the local settings, POPUG_AMQP_URL, does not answer)"
                );
            }
            if web_answers {
                println!("web: http://{web_addr}");
            } else {
                println!("web: nothing answers at {web_addr} (POPUG_WEB_ADDR)");
            }
        }
    }
    if !down.is_empty() {
        bail!("not serving: {}; is `popug up` running?", down.join(", "));
    }
    Ok(())
}
