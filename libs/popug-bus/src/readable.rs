//! A dead letter made readable: its body as a `popug.events.v1.Envelope` in
//! protobuf's JSON mapping, the payload decoded by its type, through the
//! descriptors of the whole buf module ([`popug_proto::FILE_DESCRIPTOR_SET`]),
//! so every event type and version reads without code per type.
//!
//! A dead letter may be hostile or huge (a ten-million-character field), so
//! every string in the JSON is cut to [`MAX_STRING_CHARS`], with a marker;
//! the exact bytes stay in the row.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as Field};
use serde_json::Value;

/// Longest string kept whole in the JSON.
pub const MAX_STRING_CHARS: usize = 10_000;

/// The JSON of a dead letter's body, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable {
    /// The envelope as pretty JSON; `None` when the body is no envelope.
    pub envelope_json: Option<String>,
    /// Why the body or its payload could not be decoded.
    pub decode_error: Option<String>,
}

fn envelope_descriptor() -> Result<&'static MessageDescriptor, String> {
    static ENVELOPE: OnceLock<Result<MessageDescriptor, String>> = OnceLock::new();
    ENVELOPE
        .get_or_init(|| {
            let pool = DescriptorPool::decode(popug_proto::FILE_DESCRIPTOR_SET)
                .map_err(|error| format!("the event descriptors do not load: {error}"))?;
            pool.get_message_by_name("popug.events.v1.Envelope")
                .ok_or_else(|| "popug.events.v1.Envelope is not in the descriptors".to_owned())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `body` as readable JSON (see the module docs).
pub fn readable(body: &[u8]) -> Readable {
    let descriptor = match envelope_descriptor() {
        Ok(descriptor) => descriptor.clone(),
        Err(error) => {
            return Readable {
                envelope_json: None,
                decode_error: Some(error),
            };
        }
    };
    let mut envelope = match DynamicMessage::decode(descriptor, body) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Readable {
                envelope_json: None,
                decode_error: Some(format!(
                    "the body ({} bytes) is not a popug.events.v1.Envelope: {error}",
                    body.len()
                )),
            };
        }
    };
    match serde_json::to_value(&envelope) {
        Ok(json) => Readable {
            envelope_json: Some(pretty(json)),
            decode_error: None,
        },
        // The payload's type is unknown or its bytes are not that type:
        // show the rest, and the payload as what it claims to be.
        Err(error) => {
            let (type_url, size) = match envelope.get_field_by_name("payload").as_deref() {
                Some(Field::Message(any)) => (
                    any.get_field_by_name("type_url")
                        .and_then(|url| url.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    any.get_field_by_name("value")
                        .and_then(|value| value.as_bytes().map(bytes::Bytes::len))
                        .unwrap_or(0),
                ),
                _ => (String::new(), 0),
            };
            envelope.clear_field_by_name("payload");
            let mut json = serde_json::to_value(&envelope).unwrap_or(Value::Null);
            if let Value::Object(fields) = &mut json {
                fields.insert(
                    "payload".into(),
                    serde_json::json!({ "@type": type_url, "undecodedBytes": size }),
                );
            }
            Readable {
                envelope_json: Some(pretty(json)),
                decode_error: Some(format!("the payload could not be decoded: {error}")),
            }
        }
    }
}

fn pretty(mut json: Value) -> String {
    cut_strings(&mut json);
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

/// Cuts every string longer than [`MAX_STRING_CHARS`], with a marker.
fn cut_strings(json: &mut Value) {
    match json {
        Value::String(text) => {
            if let Some((at, _)) = text.char_indices().nth(MAX_STRING_CHARS) {
                let more = text[at..].chars().count();
                text.truncate(at);
                text.push_str(&format!("… [cut: {more} more characters]"));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(cut_strings),
        Value::Object(fields) => fields.values_mut().for_each(cut_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use popug_proto::pb::popug::events::accounts::v1::{AccountCreated, Role};
    use prost::Message as _;

    use super::*;

    fn account(login: &str) -> AccountCreated {
        AccountCreated {
            account_id: "0b5b1e6e-8f43-4c55-9d0c-0c7a8e3f2a11".into(),
            login: login.into(),
            name: "Kesha".into(),
            email: "kesha@popug.inc".into(),
            role: Role::Worker.into(),
            active: true,
            version: 1,
        }
    }

    #[test]
    fn an_envelope_reads_as_json_with_its_payload_decoded() {
        let envelope = crate::envelope::wrap(&account("kesha"), "auth", chrono::Utc::now());
        let readable = readable(&envelope.encode_to_vec());
        assert_eq!(readable.decode_error, None);
        let json: Value =
            serde_json::from_str(&readable.envelope_json.expect("json")).expect("valid JSON");
        assert_eq!(json["eventId"], envelope.event_id.as_str());
        assert_eq!(json["producer"], "auth");
        assert_eq!(
            json["payload"]["@type"],
            "type.googleapis.com/popug.events.accounts.v1.AccountCreated"
        );
        assert_eq!(json["payload"]["login"], "kesha");
        assert_eq!(json["payload"]["role"], "ROLE_WORKER");
    }

    #[test]
    fn a_huge_field_is_cut_and_the_json_stays_valid() {
        let envelope =
            crate::envelope::wrap(&account(&"x".repeat(100_000)), "auth", chrono::Utc::now());
        let readable = readable(&envelope.encode_to_vec());
        let text = readable.envelope_json.expect("json");
        assert!(text.len() < 20_000, "{} bytes", text.len());
        let json: Value = serde_json::from_str(&text).expect("valid JSON");
        let login = json["payload"]["login"].as_str().expect("login");
        assert!(
            login.ends_with("[cut: 90000 more characters]"),
            "{}",
            &login[9_990..]
        );
    }

    #[test]
    fn a_payload_that_is_not_its_type_still_shows_the_envelope_and_says_why() {
        let mut envelope = crate::envelope::wrap(&account("kesha"), "auth", chrono::Utc::now());
        if let Some(payload) = envelope.payload.as_mut() {
            payload.value = vec![0xff, 0xff, 0xff];
        }
        let readable = readable(&envelope.encode_to_vec());
        let json: Value =
            serde_json::from_str(&readable.envelope_json.expect("json")).expect("valid JSON");
        assert_eq!(json["eventId"], envelope.event_id.as_str());
        assert_eq!(json["payload"]["undecodedBytes"], 3);
        assert!(
            readable
                .decode_error
                .is_some_and(|error| error.starts_with("the payload could not be decoded")),
        );
    }

    #[test]
    fn bytes_that_are_no_envelope_say_so() {
        let readable = readable(b"\xff\x00 not protobuf");
        assert_eq!(readable.envelope_json, None);
        assert!(
            readable
                .decode_error
                .is_some_and(|error| error.contains("is not a popug.events.v1.Envelope")),
        );
    }
}
