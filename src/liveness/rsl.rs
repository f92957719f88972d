//! IronRSL's bounded liveness: every client eventually gets all its replies (judged by stateright
//! at terminal states only; see the module doc of [`crate::liveness`]).

use crate::invariants::rsl::{client_done, RslModel, RslState};
use crate::invariants::spec::AppSpec;

/// The name of the `eventually` property.
pub const EVERY_CLIENT_ANSWERED: &str = "eventually every client is answered";

/// Every client has received a reply to each of its operations.
pub fn all_clients_answered<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    (m.cfg.replicas..m.cfg.replicas + m.cfg.client_ops.len()).all(|i| client_done(&m.cfg, s, i))
}
