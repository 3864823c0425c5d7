//! What a consumer checks about a delivery before anything applies it,
//! written once here and called where the consumer parses a delivery.
//!
//! The event catalog gives every payload type its name, version, routing key
//! and its one producer. A delivery is **coherent** when all of its parts
//! name the same catalog row:
//!
//! - the payload's type (the `Any`'s type URL) is catalogued;
//! - the envelope's `event_name` and `event_version` are that row's;
//! - the routing key it was published with is that row's;
//! - the envelope's `producer` is that row's producer;
//! - the AMQP `type` and `app_id` properties, when set, say the same as the
//!   payload type and the envelope's producer.
//!
//! The properties are checked only when present: our relay always sets them,
//! but they carry no authority (any publisher may set any value, exactly as
//! it may write any envelope), so they add no security; they are checked so
//! that what operators and tools read off a message never contradicts what
//! the consumer applies. Tools that leave them out lose nothing.
//!
//! Coherence stops mix-ups and crude forgeries (a `TaskCompleted` sent as a
//! `TaskAssigned`, or on `account.created.v1`), never a publisher that tells
//! one consistent lie: that takes knowing who published.
//!
//! A delivery is **authentic** when it was published by its catalogued
//! producer's broker user. When the producers' users are configured
//! ([`ProducerUsers`]), the delivery's AMQP `user_id` must be that user: the
//! relay sets it on every publish, and the broker refuses any `user_id` that
//! is not the publishing connection's own user, so it is the one fact about
//! a message that its publisher cannot choose. (A replayed message is held
//! against the routing key and user its dead-letter row recorded when it
//! first arrived; see [`crate::dead_letters`].) Without producer users (the
//! local default, one shared user) every publisher looks alike and only
//! coherence is checked.

use popug_proto::events::{EventInfo, lookup};
use popug_runtime::ProducerUsers;

use crate::envelope::{self, EventMeta, Opened};

/// What the broker says about a delivery, beside its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received<'a> {
    /// The routing key it was published with; `None` when unknown (a
    /// replayed message whose dead-letter row had none), and then not checked.
    pub routing_key: Option<&'a str>,
    /// The AMQP `type` property, if set.
    pub amqp_type: Option<&'a str>,
    /// The AMQP `app_id` property, if set.
    pub app_id: Option<&'a str>,
    /// The broker user that published it (the AMQP `user_id`, validated by
    /// the broker; for a replay, the original publisher's), if any.
    pub user_id: Option<&'a str>,
}

/// Why a delivery is not what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incoherent {
    /// The payload type is not in the catalog.
    #[error("payload type {0} is not in the event catalog (unknown type or version)")]
    UnknownType(String),
    /// The envelope's name or version is not the payload's.
    #[error(
        "incoherent envelope: it names {name} v{version}, but its payload is a {full_name} ({expected} v{expected_version})"
    )]
    Name {
        /// The envelope's `event_name`.
        name: String,
        /// The envelope's `event_version`.
        version: u32,
        /// The payload's type.
        full_name: String,
        /// The payload type's name.
        expected: &'static str,
        /// The payload type's version.
        expected_version: u32,
    },
    /// The routing key is not the payload's.
    #[error(
        "incoherent envelope: published on `{routing_key}`, but a {full_name} travels on `{expected}`"
    )]
    RoutingKey {
        /// The routing key it came with.
        routing_key: String,
        /// The payload's type.
        full_name: String,
        /// The payload type's routing key.
        expected: &'static str,
    },
    /// The envelope names a producer other than the event's.
    #[error(
        "incoherent envelope: producer `{producer}`, but only `{expected}` produces {full_name}"
    )]
    Producer {
        /// The envelope's `producer`.
        producer: String,
        /// The payload's type.
        full_name: String,
        /// The event's catalogued producer.
        expected: &'static str,
    },
    /// Not published by the event's producer's broker user: a forgery, or a
    /// producer misconfigured.
    #[error(
        "unauthenticated: only `{producer}` produces {full_name}, as broker user `{expected_user}`, but this was published {}",
        user_id.as_ref().map_or_else(|| "without a user_id".to_owned(), |user| format!("by `{user}`"))
    )]
    Unauthenticated {
        /// The payload's type.
        full_name: String,
        /// The event's catalogued producer.
        producer: &'static str,
        /// That producer's broker user.
        expected_user: String,
        /// Who published it, if known.
        user_id: Option<String>,
    },
    /// An AMQP property contradicts the envelope.
    #[error(
        "incoherent message: AMQP property `{property}` is `{value}`, but the envelope says `{expected}`"
    )]
    Property {
        /// `type` or `app_id`.
        property: &'static str,
        /// Its value.
        value: String,
        /// What the envelope says.
        expected: String,
    },
}

impl Incoherent {
    /// Whether the broker's word says someone other than the producer
    /// published it (rather than its parts disagreeing).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Incoherent::Unauthenticated { .. })
    }
}

/// Holds an opened envelope against the catalog, `received` and, when set,
/// the producers' broker users; returns the event's catalog row when the
/// delivery is coherent and authentic.
pub fn check(
    meta: &EventMeta,
    received: &Received<'_>,
    producer_users: Option<&ProducerUsers>,
) -> Result<&'static EventInfo, Incoherent> {
    let info =
        lookup(&meta.event_type).ok_or_else(|| Incoherent::UnknownType(meta.event_type.clone()))?;
    if let Some(users) = producer_users {
        // A producer missing from the map has no user, so nothing of its passes.
        let expected_user = users.user_of(info.producer);
        if expected_user.is_none() || received.user_id != expected_user {
            return Err(Incoherent::Unauthenticated {
                full_name: info.full_name.clone(),
                producer: info.producer,
                expected_user: expected_user.unwrap_or_default().to_owned(),
                user_id: received.user_id.map(str::to_owned),
            });
        }
    }
    if meta.event_name != info.name || meta.event_version != info.version {
        return Err(Incoherent::Name {
            name: meta.event_name.clone(),
            version: meta.event_version,
            full_name: info.full_name.clone(),
            expected: info.name,
            expected_version: info.version,
        });
    }
    if let Some(routing_key) = received.routing_key
        && routing_key != info.routing_key
    {
        return Err(Incoherent::RoutingKey {
            routing_key: routing_key.to_owned(),
            full_name: info.full_name.clone(),
            expected: info.routing_key,
        });
    }
    if meta.producer != info.producer {
        return Err(Incoherent::Producer {
            producer: meta.producer.clone(),
            full_name: info.full_name.clone(),
            expected: info.producer,
        });
    }
    for (property, value, expected) in [
        ("type", received.amqp_type, info.full_name.as_str()),
        ("app_id", received.app_id, info.producer),
    ] {
        if let Some(value) = value
            && value != expected
        {
            return Err(Incoherent::Property {
                property,
                value: value.to_owned(),
                expected: expected.to_owned(),
            });
        }
    }
    Ok(info)
}

/// A message refused before any handler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Refused because the broker's word says its producer did not publish it.
    pub unauthenticated: bool,
    /// The envelope, when it could be read (boxed: refusals are rare, and
    /// the happy path's result stays small).
    pub meta: Option<Box<EventMeta>>,
    /// Why.
    pub reason: String,
}

/// Reads `body` as an envelope and holds it against the catalog,
/// `received` and the producers' users ([`check`]): the consumer's first
/// step for every delivery. Never panics, whatever the bytes.
pub fn admit(
    body: &[u8],
    received: &Received<'_>,
    producer_users: Option<&ProducerUsers>,
) -> Result<(Opened, &'static EventInfo), Refused> {
    let opened = envelope::open(body).map_err(|error| Refused {
        unauthenticated: false,
        meta: None,
        reason: error.to_string(),
    })?;
    match check(&opened.meta, received, producer_users) {
        Ok(info) => Ok((opened, info)),
        Err(error) => Err(Refused {
            unauthenticated: error.is_unauthenticated(),
            meta: Some(Box::new(opened.meta)),
            reason: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use popug_proto::{
        events::{EventInfo, catalog},
        pb::popug::events::v1::Envelope,
    };
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;

    /// One part of a message: a catalog row's value, or anything at all.
    #[derive(Debug, Clone)]
    enum Part {
        Row(usize),
        Other(String),
    }

    fn part() -> impl Strategy<Value = Part> {
        let rows = catalog().len();
        prop_oneof![
            3 => (0..rows).prop_map(Part::Row),
            1 => "[a-zA-Z0-9._ -]{0,40}".prop_map(Part::Other),
        ]
    }

    fn value(part: &Part, rows: &[EventInfo], of: fn(&EventInfo) -> String) -> String {
        match part {
            Part::Row(index) => of(&rows[*index]),
            Part::Other(other) => other.clone(),
        }
    }

    /// The parts of a message, as a publisher may write them.
    #[derive(Debug, Clone)]
    struct Parts {
        payload_type: String,
        name: String,
        version: u32,
        producer: String,
        routing_key: Option<String>,
        amqp_type: Option<String>,
        app_id: Option<String>,
        payload: Vec<u8>,
    }

    fn parts() -> impl Strategy<Value = Parts> {
        (
            part(),
            part(),
            prop_oneof![Just(None), (0_u32..4).prop_map(Some)],
            part(),
            proptest::option::of(part()),
            proptest::option::of(part()),
            proptest::option::of(part()),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(
                |(payload_type, name, version, producer, key, amqp_type, app_id, payload)| {
                    let rows = catalog();
                    Parts {
                        payload_type: value(&payload_type, &rows, |row| row.full_name.clone()),
                        name: value(&name, &rows, |row| row.name.to_owned()),
                        // The named row's version, or another number.
                        version: match (version, &name) {
                            (None, Part::Row(index)) => rows[*index].version,
                            (Some(version), _) => version,
                            (None, Part::Other(_)) => 1,
                        },
                        producer: value(&producer, &rows, |row| row.producer.to_owned()),
                        routing_key: key
                            .map(|key| value(&key, &rows, |row| row.routing_key.to_owned())),
                        amqp_type: amqp_type
                            .map(|kind| value(&kind, &rows, |row| row.full_name.clone())),
                        app_id: app_id.map(|app| value(&app, &rows, |row| row.producer.to_owned())),
                        payload,
                    }
                },
            )
    }

    fn encode(parts: &Parts) -> Vec<u8> {
        Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_name: parts.name.clone(),
            event_version: parts.version,
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            producer: parts.producer.clone(),
            trace_context: None,
            payload: Some(prost_types::Any {
                type_url: format!("type.googleapis.com/{}", parts.payload_type),
                value: parts.payload.clone(),
            }),
        }
        .encode_to_vec()
    }

    fn received(parts: &Parts) -> Received<'_> {
        Received {
            routing_key: parts.routing_key.as_deref(),
            amqp_type: parts.amqp_type.as_deref(),
            app_id: parts.app_id.as_deref(),
            user_id: None,
        }
    }

    /// Whether every part names the payload type's catalog row, as the
    /// contract states it (independently of `check`).
    fn agree(parts: &Parts) -> bool {
        catalog()
            .into_iter()
            .find(|row| row.full_name == parts.payload_type)
            .is_some_and(|row| {
                parts.name == row.name
                    && parts.version == row.version
                    && parts.producer == row.producer
                    && parts
                        .routing_key
                        .as_ref()
                        .is_none_or(|key| key == row.routing_key)
                    && parts
                        .amqp_type
                        .as_ref()
                        .is_none_or(|kind| *kind == row.full_name)
                    && parts.app_id.as_ref().is_none_or(|app| app == row.producer)
            })
    }

    /// The parts of a coherent message of catalog row `index`.
    fn coherent(index: usize, payload: Vec<u8>) -> Parts {
        let row = &catalog()[index];
        Parts {
            payload_type: row.full_name.clone(),
            name: row.name.to_owned(),
            version: row.version,
            producer: row.producer.to_owned(),
            routing_key: Some(row.routing_key.to_owned()),
            amqp_type: Some(row.full_name.clone()),
            app_id: Some(row.producer.to_owned()),
            payload,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn a_coherent_message_with_any_one_part_changed_is_refused(
            index in 0..catalog().len(),
            which in 0_usize..7,
            other in part(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let good = coherent(index, payload);
            prop_assert!(admit(&encode(&good), &received(&good), None).is_ok());
            let rows = catalog();
            let mut bad = good.clone();
            match which {
                0 => bad.payload_type = value(&other, &rows, |row| row.full_name.clone()),
                1 => bad.name = value(&other, &rows, |row| row.name.to_owned()),
                2 => bad.version = match &other {
                    Part::Row(index) => rows[*index].version,
                    Part::Other(other) => u32::try_from(other.len()).unwrap_or(0),
                },
                3 => bad.producer = value(&other, &rows, |row| row.producer.to_owned()),
                4 => bad.routing_key = Some(value(&other, &rows, |row| row.routing_key.to_owned())),
                5 => bad.amqp_type = Some(value(&other, &rows, |row| row.full_name.clone())),
                _ => bad.app_id = Some(value(&other, &rows, |row| row.producer.to_owned())),
            }
            let changed = format!("{bad:?}") != format!("{good:?}");
            prop_assert_eq!(admit(&encode(&bad), &received(&bad), None).is_ok(), !changed, "{:?}", bad);
        }

        #[test]
        fn an_envelope_is_admitted_exactly_when_its_parts_agree(parts in parts()) {
            let admitted = admit(&encode(&parts), &received(&parts), None);
            prop_assert_eq!(admitted.is_ok(), agree(&parts), "{:?} -> {:?}", parts, admitted);
            if let Ok((opened, info)) = admitted {
                prop_assert_eq!(&opened.meta.event_type, &info.full_name);
                prop_assert_eq!(opened.payload, parts.payload);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_never_pass_incoherent(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            parts in parts(),
        ) {
            // Whatever the bytes say, an admitted one agrees with itself.
            if let Ok((opened, info)) = admit(&body, &received(&parts), None) {
                prop_assert_eq!(opened.meta.event_name, info.name);
                prop_assert_eq!(opened.meta.event_version, info.version);
                prop_assert_eq!(opened.meta.producer, info.producer);
                prop_assert!(parts.routing_key.as_deref().is_none_or(|key| key == info.routing_key));
            }
        }

        #[test]
        fn a_damaged_envelope_never_panics_and_never_passes_incoherent(
            parts in parts(),
            damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut body = encode(&parts);
            for (at, byte) in &damage {
                let at = at.index(body.len());
                body[at] = *byte;
            }
            body.truncate(cut.index(body.len() + 1));
            if let Ok((opened, info)) = admit(&body, &received(&parts), None) {
                prop_assert_eq!(opened.meta.event_name, info.name);
                prop_assert_eq!(opened.meta.event_version, info.version);
                prop_assert_eq!(opened.meta.producer, info.producer);
                prop_assert!(parts.routing_key.as_deref().is_none_or(|key| key == info.routing_key));
            }
        }
    }

    fn users() -> ProducerUsers {
        "auth=u-auth,tracker=u-tracker,billing=u-billing"
            .parse()
            .expect("a valid map")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        #[test]
        fn with_producer_users_only_the_producers_user_is_believed(
            parts in parts(),
            user in proptest::option::of(prop_oneof![
                Just("u-auth".to_owned()),
                Just("u-tracker".to_owned()),
                Just("u-billing".to_owned()),
                Just("guest".to_owned()),
                "[a-z-]{0,12}",
            ]),
        ) {
            let users = users();
            let received = Received { user_id: user.as_deref(), ..received(&parts) };
            let admitted = admit(&encode(&parts), &received, Some(&users));
            let authentic = lookup(&parts.payload_type)
                .is_some_and(|row| user.as_deref() == users.user_of(row.producer));
            prop_assert_eq!(admitted.is_ok(), agree(&parts) && authentic, "{:?} by {:?}", parts, user);
            if let Err(refused) = admitted {
                // Who published is judged once the envelope reads.
                prop_assert_eq!(
                    refused.unauthenticated,
                    refused.meta.is_some() && lookup(&parts.payload_type).is_some() && !authentic
                );
            }
        }
    }

    #[test]
    fn a_completion_dressed_as_an_assignment_is_refused() {
        let mut envelope = envelope::wrap(
            &popug_proto::pb::popug::events::tasks::v1::TaskCompleted::default(),
            "tracker",
            chrono::Utc::now(),
        );
        envelope.event_name = "TaskAssigned".into();
        let body = envelope.encode_to_vec();
        let on = |routing_key| Received {
            routing_key: Some(routing_key),
            ..Received::default()
        };
        for routing_key in [
            "task.assigned.v1",
            "account.created.v1",
            "task.completed.v1",
        ] {
            let refused = admit(&body, &on(routing_key), None).expect_err(routing_key);
            assert!(
                refused.reason.contains("names TaskAssigned v1"),
                "{}",
                refused.reason
            );
            assert!(refused.meta.is_some(), "the envelope was readable");
        }
        envelope.event_name = "TaskCompleted".into();
        let body = envelope.encode_to_vec();
        for routing_key in ["task.assigned.v1", "account.created.v1"] {
            let refused = admit(&body, &on(routing_key), None).expect_err(routing_key);
            assert!(
                refused.reason.contains("travels on `task.completed.v1`"),
                "{}",
                refused.reason
            );
        }
        admit(&body, &on("task.completed.v1"), None).expect("coherent");
    }
}
