//! The event catalog: every event popug produces, with its name, version,
//! routing key, kind and producer, declared once in the `catalog!` table
//! below (read it with [`catalog()`]).
//!
//! An event's Rust type *is* its identity: the bus derives the AMQP `type`
//! property from the payload's protobuf full name, the routing key from
//! [`Event::ROUTING_KEY`], and consumers dispatch on the full name, which
//! carries the version in its package (`popug.events.tasks.v2.TaskCreated`).
//! Every event also states its business rules in [`Validate`]; the outbox
//! refuses an event that breaks them, and consumers dead-letter one.

pub mod rules;
pub mod upcast;

pub use rules::{InvalidEvent, Validate};

use crate::pb::popug::events::{
    accounts::v1 as accounts_v1,
    billing::v1 as billing_v1,
    tasks::{v1 as tasks_v1, v2 as tasks_v2},
};

/// Whether an event replicates an entity's state or records a business fact.
///
/// Data-streaming (CUD) events and business events are kept apart so that a
/// consumer can tell a replica update from a fact it must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Create/update/delete of an entity's state (data streaming).
    Cud,
    /// Something that happened in the business (an assignment, a payment).
    Business,
}

/// A type that travels on the bus as the payload of an envelope.
///
/// Its name is the protobuf message name ([`prost::Name::NAME`]) and its
/// version that of its package, so neither can drift from the schema.
pub trait Event: prost::Message + prost::Name + Validate + Default + Clone + 'static {
    /// Schema version; equals the version of the protobuf package.
    const VERSION: u32;
    /// Routing key on the topic exchange: `<aggregate>.<event>.v<version>`.
    const ROUTING_KEY: &'static str;
    /// CUD or business event.
    const KIND: EventKind;
    /// The one service that may produce it (the contract's event catalog);
    /// consumers dead-letter a copy from anyone else.
    const PRODUCER: &'static str;
    /// The services that consume it (the contract's event catalog); their
    /// queues are bound to [`Event::ROUTING_KEY`] before anything is published.
    const CONSUMERS: &'static [&'static str];
}

/// A catalog row, for code that needs to enumerate events (bindings, docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    /// Protobuf full name of the payload, e.g. `popug.events.accounts.v1.AccountCreated`.
    pub full_name: String,
    /// Event name without version.
    pub name: &'static str,
    /// Schema version.
    pub version: u32,
    /// Routing key on the topic exchange.
    pub routing_key: &'static str,
    /// CUD or business event.
    pub kind: EventKind,
    /// The producing service.
    pub producer: &'static str,
    /// The consuming services.
    pub consumers: &'static [&'static str],
}

impl EventInfo {
    /// The catalog row of `E`.
    pub fn of<E: Event>() -> Self {
        Self {
            full_name: E::full_name(),
            name: E::NAME,
            version: E::VERSION,
            routing_key: E::ROUTING_KEY,
            kind: E::KIND,
            producer: E::PRODUCER,
            consumers: E::CONSUMERS,
        }
    }
}

/// Declares events: one line each, the only place these names are written.
macro_rules! catalog {
    ($($ty:ty => version $version:literal, $key:literal, $kind:ident, from $producer:literal, [$($consumer:literal),*];)*) => {
        $(
            impl Event for $ty {
                const VERSION: u32 = $version;
                const ROUTING_KEY: &'static str = $key;
                const KIND: EventKind = EventKind::$kind;
                const PRODUCER: &'static str = $producer;
                const CONSUMERS: &'static [&'static str] = &[$($consumer),*];
            }
        )*

        /// Every event in the catalog.
        pub fn catalog() -> Vec<EventInfo> {
            vec![$(EventInfo::of::<$ty>()),*]
        }
    };
}

/// The catalog row of the payload type `full_name`, e.g.
/// `popug.events.tasks.v1.TaskCompleted`; `None` for a type popug does not
/// produce. Consumers hold each delivery's routing key, envelope and producer
/// against this row.
pub fn lookup(full_name: &str) -> Option<&'static EventInfo> {
    static CATALOG: std::sync::LazyLock<Vec<EventInfo>> = std::sync::LazyLock::new(catalog);
    CATALOG.iter().find(|info| info.full_name == full_name)
}

/// The services that produce events, each once, in catalog order.
pub fn producers() -> Vec<&'static str> {
    let mut producers: Vec<&'static str> = Vec::new();
    for info in catalog() {
        if !producers.contains(&info.producer) {
            producers.push(info.producer);
        }
    }
    producers
}

catalog! {
    accounts_v1::AccountCreated => version 1, "account.created.v1", Cud, from "auth", ["tracker", "billing", "analytics"];
    accounts_v1::AccountUpdated => version 1, "account.updated.v1", Cud, from "auth", ["tracker", "billing", "analytics"];
    accounts_v1::AccountRoleChanged => version 1, "account.role_changed.v1", Business, from "auth", ["tracker", "billing", "analytics"];
    accounts_v1::AccountDeactivated => version 1, "account.deactivated.v1", Cud, from "auth", ["tracker", "billing", "analytics"];
    tasks_v1::TaskCreated => version 1, "task.created.v1", Cud, from "tracker", ["billing", "analytics"];
    tasks_v2::TaskCreated => version 2, "task.created.v2", Cud, from "tracker", ["billing", "analytics"];
    tasks_v1::TaskAssigned => version 1, "task.assigned.v1", Business, from "tracker", ["billing", "analytics"];
    tasks_v1::TaskCompleted => version 1, "task.completed.v1", Business, from "tracker", ["billing", "analytics"];
    billing_v1::TaskPriced => version 1, "task.priced.v1", Business, from "billing", ["analytics"];
    billing_v1::TransactionApplied => version 1, "transaction.applied.v1", Business, from "billing", ["analytics"];
    billing_v1::BillingCycleClosed => version 1, "billing_cycle.closed.v1", Business, from "billing", ["analytics"];
    billing_v1::PaymentSent => version 1, "payment.sent.v1", Business, from "billing", ["analytics"];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snake_case(name: &str) -> String {
        let mut snake = String::new();
        for (i, ch) in name.chars().enumerate() {
            if ch.is_ascii_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.push(ch.to_ascii_lowercase());
        }
        snake
    }

    #[test]
    fn routing_keys_follow_aggregate_event_version() {
        for info in catalog() {
            let (stem, version) = info
                .routing_key
                .rsplit_once(".v")
                .unwrap_or_else(|| panic!("{} has no version suffix", info.routing_key));
            assert_eq!(version, info.version.to_string(), "{}", info.routing_key);
            assert_eq!(stem.matches('.').count(), 1, "{}", info.routing_key);
            assert_eq!(
                stem.replace('.', "_"),
                snake_case(info.name),
                "{}",
                info.routing_key
            );
        }
    }

    #[test]
    fn versions_match_package_versions() {
        for info in catalog() {
            let package = info
                .full_name
                .rsplit_once('.')
                .map(|(p, _)| p)
                .unwrap_or("");
            assert!(
                package.ends_with(&format!(".v{}", info.version)),
                "{} declared as v{}",
                info.full_name,
                info.version
            );
            assert!(info.full_name.ends_with(&format!(".{}", info.name)));
        }
    }

    #[test]
    fn each_aggregate_has_one_producer_as_the_contract_says() {
        for info in catalog() {
            let aggregate = info.routing_key.split('.').next().unwrap_or_default();
            let expected = match aggregate {
                "account" => "auth",
                "task" if info.name == "TaskPriced" => "billing",
                "task" => "tracker",
                "transaction" | "billing_cycle" | "payment" => "billing",
                other => panic!("no producer known for the aggregate {other}"),
            };
            assert_eq!(info.producer, expected, "{}", info.full_name);
            assert!(
                !info.consumers.contains(&info.producer),
                "{}",
                info.full_name
            );
        }
        assert_eq!(producers(), ["auth", "tracker", "billing"]);
        let completed = lookup("popug.events.tasks.v1.TaskCompleted").expect("catalogued");
        assert_eq!(
            (completed.routing_key, completed.producer),
            ("task.completed.v1", "tracker")
        );
        assert_eq!(lookup("popug.events.tasks.v9.TaskCompleted"), None);
    }

    #[test]
    fn names_and_keys_are_unique() {
        let catalog = catalog();
        for (i, a) in catalog.iter().enumerate() {
            for b in &catalog[i + 1..] {
                assert_ne!(a.full_name, b.full_name);
                assert_ne!(a.routing_key, b.routing_key);
            }
        }
    }
}
