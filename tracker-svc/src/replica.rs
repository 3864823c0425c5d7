//! The accounts replica: auth's account events keep the tracker's view of
//! who is an active worker. The handlers are the bus's shared ones
//! ([`popug_bus::accounts`]), writing the shared columns (login, role by
//! version, active); the tracker keeps no profile fields.

use popug_bus::{Handlers, accounts::Directory};
use popug_token::Standings;

/// The handlers of every account event the tracker consumes; each change
/// also clears the account from `standings`, so its next call is judged by it.
pub fn handlers(standings: &Standings) -> Handlers {
    Handlers::new().with_accounts(Directory, standings)
}
