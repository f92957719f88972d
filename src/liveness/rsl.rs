//! IronRSL's liveness: every client request is eventually answered, once faults stop and while a
//! quorum of replicas is up (IronFleet's liveness theorem, with the lasso checker's fairness
//! model).
//!
//! The model bounds the number of view changes (`max_view`), which real replicas do not: a
//! bounded model cannot survive more leader failures than views it allows. A state where some
//! replica has reached the last view while that view's leader cannot lead it (crashed, or
//! restarted after beginning it) is where the bound, not the protocol, stops progress
//! ([`view_bound_spent`]). The model registers it as the property's exemption: a fair cycle that
//! never answers is excused only if the bound is spent at every one of its states, so a path that
//! passes a spent state (a leader crash) and then recovers is still judged.

use crate::actors::rsl::{Ballot, Phase, RslNodeState};
use crate::invariants::rsl::{replicas, RslState};
use crate::invariants::spec::AppSpec;

/// The name of the `eventually` property.
pub const EVERY_CLIENT_ANSWERED: &str = "eventually every client is answered";

/// Every client (the actors after the `n` replicas; client `i` issues `client_ops[i]`) has
/// received a reply to each of its operations, or was told its session expired (an explicit
/// answer: the client stops there).
pub fn all_clients_answered<A: AppSpec>(
    n: usize,
    client_ops: &[Vec<A::Op>],
    s: &RslState<A>,
) -> bool {
    client_ops
        .iter()
        .enumerate()
        .all(|(i, ops)| match &*s.actor_states[n + i] {
            RslNodeState::Client(c) => c.replies.len() >= ops.len() || c.expired,
            RslNodeState::Replica(_) => true,
        })
}

/// The model's view bound is spent: some replica is in the last view the model allows
/// (`max_view`) and that view's leader cannot lead it: it is crashed, or it restarted after
/// sending the view's 1a (a restarted replica never re-leads a view it began, so only a further
/// view change, beyond the bound, would help).
pub fn view_bound_spent<A: AppSpec>(n: usize, max_view: Option<u64>, s: &RslState<A>) -> bool {
    let Some(max) = max_view else {
        return false;
    };
    let last = Ballot::of_view(max, n);
    if !replicas(n, s).any(|(_, r)| r.election.view >= last) {
        return false;
    }
    let leader = last.proposer as usize;
    s.crashed[leader]
        || s.actor_states[leader].replica().is_some_and(|r| {
            r.proposer.phase == Phase::Idle && r.proposer.max_ballot_sent_1a >= Some(last)
        })
}

/// The view bound is spent for good: the last view's leader began that view (it sent the view's
/// 1a, which it keeps in its storage) and then crashed, or restarted; a restarted replica never
/// re-leads a view it began, and no view beyond the bound can come. Nothing undoes this: the
/// storage keeps the 1a ballot, a restart from it leaves the leader idle in that view, and a
/// later crash finds it begun again. (It implies [`view_bound_spent`]: the leader itself is in
/// the last view, or restarts into it.) So every state after one where it holds holds it too,
/// and the `eventually` property checkers judge at terminal states takes it as its exemption:
/// it then excuses exactly the terminal states where the bound, not the protocol, stopped the
/// run. [`view_bound_spent`] is not permanent (a leader that crashed before beginning the view
/// may restart and lead it), which is why the lasso checker judges it over a whole cycle.
pub fn view_bound_spent_for_good<A: AppSpec>(
    n: usize,
    max_view: Option<u64>,
    s: &RslState<A>,
) -> bool {
    let Some(max) = max_view else {
        return false;
    };
    let last = Ballot::of_view(max, n);
    let leader = last.proposer as usize;
    if s.crashed[leader] {
        return s.actor_storages[leader]
            .as_ref()
            .is_some_and(|st| st.max_ballot_sent_1a >= Some(last));
    }
    s.actor_states[leader].replica().is_some_and(|r| {
        r.proposer.phase == Phase::Idle && r.proposer.max_ballot_sent_1a >= Some(last)
    })
}
