//! The rules every piece of outside input meets before popug keeps it,
//! written once for requests and events alike: which characters a text
//! field may hold ([`text`]) and which days exist ([`day`]).
//!
//! Services parse request fields into their domain newtypes with these
//! rules, and `popug_proto::events::rules` validates events with the same
//! ones, so whatever a producer accepts, its consumers accept too, and a
//! forged event that a producer would have refused is refused on arrival.
//! Each rule answers [`Invalid`], naming the offending field; services turn
//! it into `INVALID_ARGUMENT` (never `INTERNAL`), consumers into a dead letter.

pub mod day;
pub mod text;

/// Why a value breaks an input rule; names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct Invalid {
    /// The field, as named in the `.proto` file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Invalid {
    /// An error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
