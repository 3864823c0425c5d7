//! The command groups of the `popug` binary, one concern each; `main.rs`
//! only parses the command line and dispatches to them.
//!
//! - [`up`]: `popug up`, every service in this process.
//! - [`auth`]: `popug login`, `signup`, `logout`, `keys`, `whoami`.
//! - [`password`]: `popug password`, `popug accounts set-password`.
//! - [`admin`]: `popug admin reset-password`, straight on the auth database.
//! - [`accounts`]: `popug accounts ...` (admins).
//! - [`tasks`]: `popug tasks ...`.
//! - [`billing`]: `popug billing ...`: balances, statements, the ledger, day close.
//! - [`analytics`]: `popug analytics ...`: the dashboards.
//! - [`ops`]: `popug ops outbox|replay` and, in [`dead_letters`],
//!   `popug ops dead-letters ...`.
//! - [`audit`]: `popug audit`, the books checked across every service.
//! - [`simulate`]: `popug simulate`, whole days on a private mesh.
//! - [`names`]: task keys and logins in place of ids.
//! - [`events`]: `popug events tail`, a live decoded view of the exchange.
//! - [`status`]: `popug status`, the system at a glance.
//! - [`reset`]: `popug reset`, starting over on this machine.

pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod analytics;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod billing;
pub(crate) mod dead_letters;
pub(crate) mod events;
pub(crate) mod names;
pub(crate) mod ops;
pub(crate) mod password;
pub(crate) mod reset;
pub(crate) mod simulate;
pub(crate) mod status;
pub(crate) mod tasks;
pub(crate) mod up;

/// A failed connection to RabbitMQ at `shown`, said as what it is: refused
/// credentials, or a broker that does not answer.
pub(crate) fn broker_error(shown: &str, error: &lapin::Error) -> anyhow::Error {
    if popug_bus::broker::is_access_refused(error) {
        anyhow::anyhow!(
            "RabbitMQ at {shown} refused the user or password of POPUG_AMQP_URL: {error}"
        )
    } else {
        anyhow::anyhow!(
            "RabbitMQ is unreachable at {shown}: {error}\n  start it: rabbitmq-server -detached\n  or point POPUG_AMQP_URL at yours"
        )
    }
}

/// Like [`popug::client::answer`], but a refusal names the command line's
/// options where the service named a request field (`jira_id` is
/// `--jira-id` here): `flags` pairs each field with its option.
pub(crate) async fn answer_naming<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    flags: &[(&str, &str)],
) -> anyhow::Result<T> {
    match call.await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => {
            let mut message = status.message().to_owned();
            for (field, flag) in flags {
                message = message.replace(&format!("`{field}`"), &format!("`{flag}`"));
            }
            Err(anyhow::anyhow!("{:?}: {message}", status.code()))
        }
    }
}
