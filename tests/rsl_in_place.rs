//! The runtime steps a replica in place (`Cow::Owned`: the state is mutated where it lies); the
//! model checker steps it on a copy (`Cow::Borrowed`: the copy is kept only if it differs). These
//! tests walk the model at random and, at every state on the walks, run every event a replica
//! could take next through both branches: the next state and every output command must agree,
//! so what the checker explored is what the runtime executes.

use std::borrow::Cow;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::actor::{Actor, ActorModelAction, Id, Out};
use stateright::Model;

use ironfleet::actors::rsl::{Counter, CounterOp, Replica, RslNode};
use ironfleet::model::rsl::{rsl_model, RslModel, RslModelCfg};
use ironfleet::model::NetworkKind;

/// Runs `event` on a replica from `state`, through the copy branch and the in-place branch;
/// panics with `what` if the next states or the outputs differ. Returns whether the event
/// changed the state.
fn both_branches(
    state: &<Replica<Counter> as Actor>::State,
    what: &str,
    event: impl Fn(&mut Cow<<Replica<Counter> as Actor>::State>, &mut Out<Replica<Counter>>),
) -> bool {
    let mut copied = Cow::Borrowed(state);
    let mut copied_out = Out::new();
    event(&mut copied, &mut copied_out);
    let mut in_place = Cow::Owned(state.clone());
    let mut in_place_out = Out::new();
    event(&mut in_place, &mut in_place_out);
    assert_eq!(
        *copied, *in_place,
        "{what}: the in-place step reached another state"
    );
    assert_eq!(
        format!("{:?}", &*copied_out),
        format!("{:?}", &*in_place_out),
        "{what}: the in-place step emitted other commands"
    );
    matches!(copied, Cow::Owned(_))
}

/// Walks `model` from seed `seed` for `depth` steps; at every state, every delivery to a
/// replica and every replica timer goes through both branches. Returns how many events changed
/// a state (so a test can check it compared real steps, not only no-ops).
fn compare_on_walk(model: &RslModel<Counter>, seed: u64, depth: usize) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state = model.init_states().remove(0);
    let mut changed = 0;
    for step in 0..depth {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        for a in &actions {
            let (id, what) = match a {
                ActorModelAction::Deliver { dst, msg, .. } => (*dst, format!("deliver {msg}")),
                ActorModelAction::Timeout(id, t) => (*id, format!("timer {t:?}")),
                _ => continue,
            };
            let i = usize::from(id);
            let (RslNode::Replica(r), Some(rs)) =
                (&model.actors[i], state.actor_states[i].replica())
            else {
                continue;
            };
            if state.crashed[i] {
                continue;
            }
            let what = format!("seed {seed}, step {step}, replica {i}: {what}");
            let did = match a {
                ActorModelAction::Deliver { src, msg, .. } => {
                    both_branches(rs, &what, |s, o| r.on_msg(id, s, *src, msg.clone(), o))
                }
                ActorModelAction::Timeout(_, t) => {
                    both_branches(rs, &what, |s, o| r.on_timeout(id, s, t, o))
                }
                _ => unreachable!(),
            };
            changed += usize::from(did);
        }
        let mut next = None;
        while next.is_none() && !actions.is_empty() {
            let a = actions.swap_remove(rng.random_range(0..actions.len()));
            next = model.next_state(&state, a);
        }
        match next {
            Some(n) => state = n,
            None => break,
        }
    }
    changed
}

#[test]
fn in_place_and_copied_steps_agree_through_view_changes_crashes_and_truncation() {
    let mut cfg = RslModelCfg::counter(3, 2, 3);
    cfg.max_view_changes = 2;
    cfg.max_crashes = 1;
    cfg.truncation = true;
    cfg.params.max_log_length = 2;
    cfg.params.max_batch_size = 2;
    // Unordered, so heartbeats, vote repair and client retransmission run on timers as at run
    // time (the duplicating network's eager heartbeats would hide those paths).
    cfg.network = NetworkKind::Unordered;
    let model = rsl_model(cfg);
    let changed: usize = (0..60).map(|seed| compare_on_walk(&model, seed, 80)).sum();
    assert!(
        changed > 10_000,
        "only {changed} state-changing events compared"
    );
}

#[test]
fn in_place_and_copied_steps_agree_on_the_default_model() {
    let model = rsl_model(RslModelCfg::counter(3, 2, 1));
    let changed: usize = (0..40).map(|seed| compare_on_walk(&model, seed, 40)).sum();
    assert!(
        changed > 1_000,
        "only {changed} state-changing events compared"
    );
}

/// The comparison is not vacuous: a replica stepped in place from a state that differs from
/// the copied one is told apart.
#[test]
#[should_panic(expected = "the in-place step reached another state")]
fn a_difference_between_the_branches_is_reported() {
    let model = rsl_model(RslModelCfg::counter(3, 1, 1));
    let state = model.init_states().remove(0);
    let RslNode::Replica(r) = &model.actors[0] else {
        unreachable!()
    };
    let rs = state.actor_states[0].replica().unwrap();
    let client = Id::from(3usize);
    let request = ironfleet::actors::rsl::RslMsg::Request {
        seqno: 1,
        op: CounterOp::Inc,
    };
    both_branches(rs, "a rigged step", |s, o| {
        if matches!(s, Cow::Owned(_)) {
            // Only the in-place branch gets the request: the branches must disagree.
            r.on_msg(Id::from(0usize), s, client, request.clone(), o);
        }
    });
}
