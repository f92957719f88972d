//! IronRSL's liveness: every client request is eventually answered, once faults stop and while a
//! quorum of replicas is up (IronFleet's liveness theorem, with our fairness model: see
//! [`super::checker`]).
//!
//! The model bounds the number of view changes (`max_view`), which real replicas do not: a
//! bounded model cannot survive more leader failures than views it allows. A state where some
//! replica has reached the last view while that view's leader cannot lead it (crashed, or
//! restarted after beginning it) is therefore not judged (it counts as reaching the goal): the
//! bound, not the protocol, stops progress there. See [`view_bound_spent`].

use crate::actors::rsl::{Ballot, Phase};
use crate::invariants::rsl::{client_done, replicas, RslModel, RslState};
use crate::invariants::spec::AppSpec;

use super::checker::{LivenessProperty, Premise};

/// The name of the `eventually` property.
pub const EVERY_CLIENT_ANSWERED: &str = "eventually every client is answered";

/// Every client has received a reply to each of its operations.
pub fn all_clients_answered<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    (m.cfg.replicas..m.cfg.replicas + m.cfg.client_ops.len()).all(|i| client_done(&m.cfg, s, i))
}

/// The model's view bound is spent: some replica is in the last view the model allows and that
/// view's leader cannot lead it: it is crashed, or it restarted after sending the view's 1a (a
/// restarted replica never re-leads a view it began, so only a further view change, beyond the
/// bound, would help).
pub fn view_bound_spent<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    let Some(max) = m.cfg.params.max_view else {
        return false;
    };
    let last = Ballot::of_view(max, m.cfg.replicas);
    if !replicas(&m.cfg, s).any(|(_, r)| r.election.view >= last) {
        return false;
    }
    let leader = last.proposer as usize;
    s.crashed[leader]
        || s.actor_states[leader].replica().is_some_and(|r| {
            r.proposer.phase == Phase::Idle && r.proposer.max_ballot_sent_1a >= Some(last)
        })
}

/// Answered, or stopped by the model's bound rather than the protocol.
pub fn answered_or_bound_spent<A: AppSpec>(m: &RslModel<A>, s: &RslState<A>) -> bool {
    all_clients_answered(m, s) || view_bound_spent(m, s)
}

/// The RSL liveness properties for the liveness checkers.
pub fn properties<A: AppSpec>() -> Vec<LivenessProperty<RslModel<A>>> {
    vec![LivenessProperty {
        name: EVERY_CLIENT_ANSWERED,
        premise: Premise::Init,
        goal: answered_or_bound_spent::<A>,
    }]
}
