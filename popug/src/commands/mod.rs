//! Command groups of the `popug` binary that live in their own files, one
//! concern each; `main.rs` only wires them into the command line.
//!
//! - [`password`]: `popug password`, `popug accounts set-password`.
//! - [`admin`]: `popug admin reset-password`, straight on the auth database.
//! - [`names`]: task keys and logins in place of ids.
//! - [`events`]: `popug events tail`, a live decoded view of the exchange.
//! - [`status`]: `popug status`, the system at a glance.
//! - [`reset`]: `popug reset`, starting over on this machine.

pub(crate) mod admin;
pub(crate) mod events;
pub(crate) mod names;
pub(crate) mod password;
pub(crate) mod reset;
pub(crate) mod status;

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
