//! Each RSL safety property bites: a deliberately broken variant is caught, and its shrunk
//! counterexample (seeded walk, cut at the first violation, every removable step removed, each
//! removal re-validated by replay) is snapshotted.

mod common;

use common::{caught, cfg};
use ironfleet::actors::rsl::Mutation;

fn with_view_change(
    clients: usize,
) -> ironfleet::model::rsl::RslModelCfg<ironfleet::actors::rsl::Counter> {
    let mut c = cfg(clients);
    c.max_view_changes = 1;
    c
}

#[test]
fn accepting_below_the_promised_ballot_breaks_agreement() {
    insta::assert_snapshot!(caught(
        with_view_change(2),
        Mutation::AcceptBelowPromise,
        "agreement",
        0
    ));
}

#[test]
fn ignoring_1b_votes_breaks_agreement() {
    insta::assert_snapshot!(caught(
        with_view_change(2),
        Mutation::IgnoreOneBVotes,
        "agreement",
        0
    ));
}

#[test]
fn deciding_without_a_quorum_breaks_refinement() {
    insta::assert_snapshot!(caught(
        cfg(1),
        Mutation::DecideWithoutQuorum,
        "refinement",
        0
    ));
}

#[test]
fn executing_a_retransmitted_request_twice_is_caught() {
    insta::assert_snapshot!(caught(
        with_view_change(2),
        Mutation::ExecuteTwice,
        "executed at most once",
        0
    ));
}

#[test]
fn truncating_beyond_the_quorum_checkpoint_is_caught() {
    let mut c = cfg(1);
    c.truncation = true;
    insta::assert_snapshot!(caught(
        c,
        Mutation::TruncateBeyondQuorum,
        "truncation below quorum checkpoint",
        0
    ));
}

#[test]
fn a_restarted_replica_that_forgets_its_votes_breaks_agreement() {
    let mut c = with_view_change(2);
    c.max_crashes = 1;
    insta::assert_snapshot!(caught(c, Mutation::ForgetVotesOnRestart, "agreement", 0));
}

#[test]
fn executing_a_request_of_an_expired_session_is_caught() {
    let mut c = ironfleet::model::rsl::RslModelCfg::counter(2, 2, 1);
    c.params.max_client_sessions = 1;
    insta::assert_snapshot!(caught(
        c,
        Mutation::ExecuteExpired,
        "executed at most once",
        0
    ));
}

/// A client that takes a late copy of an earlier reply as the answer to its outstanding
/// request. The history records what the client's own handler took, so the stale answer is in
/// it and linearizability fails; a recorder that re-applied the correct sequence-number filter
/// would have recorded the right answer and passed the broken client.
#[test]
fn a_client_taking_a_stale_reply_is_not_linearizable() {
    let c = ironfleet::model::rsl::RslModelCfg::counter(3, 1, 2);
    insta::assert_snapshot!(caught(
        c,
        Mutation::ClientAcceptsStaleReply,
        "linearizable",
        0
    ));
}
