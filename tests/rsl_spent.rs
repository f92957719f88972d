//! What the checker's reduced view leaves out of the RSL states it tells apart, checked on
//! seeded random walks of the RSL model.
//!
//! Spent messages (`Replica::spent`, `Client::spent`: a message that can never change its
//! receiver again): at every state on a walk, delivering each message the rule calls spent to
//! its receiver changes nothing, sends nothing and records nothing in the history, and every
//! message spent before a step is still spent after it, crashes and restarts included. A
//! message to a crashed replica is judged, as the view judges it, by the state the replica
//! restarts in. Four deliberately broken rules must be caught.
//!
//! Crashed replicas' states: no property reads them (the view leaves them out), so at every
//! state with a crashed replica every property gives the same verdict whatever state the
//! replica crashed with. A property that reads them must be caught.

use std::borrow::Cow;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::actor::{Actor, ActorModelAction, Envelope, Id, Out};
use stateright::Model;

use ironfleet::actors::rsl::{Counter, Mutation, ReplicaState, RslMsg, RslNode, RslNodeState};
use ironfleet::model::rsl::{rsl_model, RslModel, RslModelCfg};
use ironfleet::model::NetworkKind;

type Rule<'a> = &'a dyn Fn(&RslNode<Counter>, &RslNodeState<Counter>, Id, &RslMsg<Counter>) -> bool;

fn real_rule(
    actor: &RslNode<Counter>,
    state: &RslNodeState<Counter>,
    src: Id,
    msg: &RslMsg<Counter>,
) -> bool {
    actor.spent(state, src, msg)
}

type State = <RslModel<Counter> as Model>::State;

/// The states by which the view judges the messages to each actor: its own, or, crashed, the
/// state it restarts in from its storage.
fn judged_states(model: &RslModel<Counter>, state: &State) -> Vec<RslNodeState<Counter>> {
    (0..state.actor_states.len())
        .map(|i| {
            if state.crashed[i] {
                model.actors[i].on_start(Id::from(i), &state.actor_storages[i], &mut Out::new())
            } else {
                (*state.actor_states[i]).clone()
            }
        })
        .collect()
}

/// The messages in `state`'s network that `rule` calls spent, judged by `judged`
/// ([`judged_states`]).
fn spent(
    model: &RslModel<Counter>,
    state: &State,
    judged: &[RslNodeState<Counter>],
    rule: Rule,
) -> Vec<Envelope<RslMsg<Counter>>> {
    state
        .network
        .iter_all()
        .filter(|env| {
            let dst = usize::from(env.dst);
            rule(&model.actors[dst], &judged[dst], env.src, env.msg)
        })
        .map(|env| env.to_cloned_msg())
        .collect()
}

/// A successor of `state` by an action picked at random among those that lead somewhere
/// within the model's boundary (`None`: there is none).
fn random_step(model: &RslModel<Counter>, state: &State, rng: &mut ChaCha8Rng) -> Option<State> {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    while !actions.is_empty() {
        let a = actions.swap_remove(rng.random_range(0..actions.len()));
        if let Some(next) = model.next_state(state, a) {
            if model.within_boundary(&next) {
                return Some(next);
            }
        }
    }
    None
}

/// Walks `model` at random; returns how many deliveries of spent messages were tried, or what
/// broke the rule first.
fn check_rule(
    model: &RslModel<Counter>,
    rule: Rule,
    seed: u64,
    walks: usize,
    depth: usize,
) -> Result<usize, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tried = 0;
    for walk in 0..walks {
        let mut state = model.init_states().remove(0);
        for step in 0..depth {
            let judged = judged_states(model, &state);
            let before = spent(model, &state, &judged, rule);
            for env in &before {
                let dst = usize::from(env.dst);
                let receiver = &judged[dst];
                let mut next = Cow::Borrowed(receiver);
                let mut out = Out::new();
                model.actors[dst].on_msg(env.dst, &mut next, env.src, env.msg.clone(), &mut out);
                // The history too: a model records what a client takes from a delivery.
                let history_changed = !state.crashed[dst]
                    && model
                        .next_state(
                            &state,
                            ActorModelAction::Deliver {
                                src: env.src,
                                dst: env.dst,
                                msg: env.msg.clone(),
                            },
                        )
                        .is_some_and(|n| *n.history != *state.history);
                if history_changed {
                    return Err(format!(
                        "walk {walk}, step {step}: {} -> {}: {} is called spent, yet \
                         delivering it changes the history",
                        usize::from(env.src),
                        dst,
                        env.msg,
                    ));
                }
                if *next != *receiver || !out.is_empty() {
                    return Err(format!(
                        "walk {walk}, step {step}: {} -> {}: {} is called spent, yet \
                         delivering it changes the receiver or sends {:?}",
                        usize::from(env.src),
                        dst,
                        env.msg,
                        &*out
                    ));
                }
                tried += 1;
            }
            let Some(next) = random_step(model, &state, &mut rng) else {
                break;
            };
            // A message delivered (or dropped) off a network that does not keep it is gone, not
            // live again.
            let after = spent(model, &next, &judged_states(model, &next), rule);
            let still_there: Vec<_> = next.network.iter_all().map(|e| e.to_cloned_msg()).collect();
            let revived = before
                .iter()
                .find(|e| still_there.contains(e) && !after.contains(e));
            if let Some(env) = revived {
                return Err(format!(
                    "walk {walk}, step {step}: {} -> {}: {} was spent and is not after a step",
                    usize::from(env.src),
                    usize::from(env.dst),
                    env.msg
                ));
            }
            state = next;
        }
    }
    Ok(tried)
}

/// Configurations that reach view changes, crashes and restarts, checkpoints, and a lossy
/// network (where a 1a equal to the promise is answered again).
fn configurations() -> Vec<(&'static str, RslModelCfg<Counter>)> {
    let mut two_clients = RslModelCfg::counter(3, 2, 1);
    two_clients.max_view_changes = 2;
    two_clients.max_crashes = 1;
    let mut checkpoints = RslModelCfg::counter(3, 1, 2);
    checkpoints.max_view_changes = 1;
    checkpoints.max_crashes = 1;
    checkpoints.truncation = true;
    let mut lossy = RslModelCfg::counter(3, 1, 1);
    lossy.max_view_changes = 1;
    lossy.max_crashes = 1;
    lossy.network = NetworkKind::Unordered;
    lossy.lossy = true;
    let mut two_replicas = RslModelCfg::counter(2, 1, 2);
    two_replicas.max_view_changes = 1;
    two_replicas.max_crashes = 1;
    vec![
        (
            "3 replicas, 2 clients, 2 view changes, 1 crash",
            two_clients,
        ),
        ("checkpoints", checkpoints),
        ("lossy unordered network", lossy),
        ("2 replicas", two_replicas),
    ]
}

#[test]
fn a_spent_message_changes_nothing_and_stays_spent_under_every_mutation() {
    let mutations = std::iter::once(None).chain(Mutation::ALL.iter().copied().map(Some));
    for mutation in mutations {
        for (name, cfg) in configurations() {
            let mut cfg = cfg;
            cfg.mutation = mutation;
            let model = rsl_model(cfg);
            let tried = check_rule(&model, &real_rule, 7, 60, 80)
                .unwrap_or_else(|e| panic!("{name}, mutation {mutation:?}: {e}"));
            assert!(
                tried > 100,
                "{name}, {mutation:?}: only {tried} spent messages tried"
            );
        }
    }
}

/// The real rule, broken by also calling spent what `extra` says of a replica's state.
fn broken_by(
    extra: fn(&RslMsg<Counter>, &ReplicaState<Counter>) -> bool,
) -> impl Fn(&RslNode<Counter>, &RslNodeState<Counter>, Id, &RslMsg<Counter>) -> bool {
    move |actor, state, src, msg| {
        state.replica().is_some_and(|r| extra(msg, r)) || actor.spent(state, src, msg)
    }
}

/// The real rule, broken by calling spent every reply to a client: the one to its outstanding
/// request is its answer.
fn every_reply_to_a_client(
    actor: &RslNode<Counter>,
    state: &RslNodeState<Counter>,
    src: Id,
    msg: &RslMsg<Counter>,
) -> bool {
    (matches!(state, RslNodeState::Client(_)) && matches!(msg, RslMsg::Reply { .. }))
        || actor.spent(state, src, msg)
}

/// Ignores a heartbeat's suspicion and the view a restart rejoins at: a suspicious heartbeat of
/// the current view still counts, and one below the view can raise a restarted replica's view.
fn heartbeat_at_or_below_the_view(msg: &RslMsg<Counter>, r: &ReplicaState<Counter>) -> bool {
    matches!(msg, RslMsg::Heartbeat { bal, .. } if *bal <= r.election.view)
}

/// Forgets that a restart rejoins at the view of the durable ballots, which may be below the
/// view the replica had reached: a heartbeat below the view can raise it again after a restart.
fn heartbeat_below_the_view(msg: &RslMsg<Counter>, r: &ReplicaState<Counter>) -> bool {
    matches!(msg, RslMsg::Heartbeat { bal, opn_ckpt: 0, .. } if *bal < r.election.view)
}

/// Forgets that over a lossy network an acceptor answers a 1a equal to its promise again.
fn one_a_at_the_promise(msg: &RslMsg<Counter>, r: &ReplicaState<Counter>) -> bool {
    matches!(msg, RslMsg::OneA { bal } if Some(*bal) <= r.acceptor.max_bal)
}

#[test]
fn broken_rules_are_caught() {
    let heartbeats = broken_by(heartbeat_at_or_below_the_view);
    let after_restart = broken_by(heartbeat_below_the_view);
    let one_a = broken_by(one_a_at_the_promise);
    let rules: [(Rule, &str); 4] = [
        (&heartbeats, "heartbeats"),
        (&after_restart, "heartbeats after a restart"),
        (&one_a, "1a"),
        (&every_reply_to_a_client, "replies"),
    ];
    for (rule, name) in rules {
        let caught = configurations()
            .into_iter()
            .find_map(|(_, cfg)| check_rule(&rsl_model(cfg), rule, 7, 60, 80).err());
        let Some(why) = caught else {
            panic!("the broken rule on {name} went unnoticed")
        };
        println!("{name}: {why}");
    }
}

type Property = fn(&RslModel<Counter>, &State) -> bool;

/// Walks `model` at random; at each state with a crashed replica, compares every property's
/// verdict with its verdict when the replica had crashed with its restart state, or with its
/// initial state, instead. Returns how many states were compared, or the first difference.
fn check_crashed_states_unread(
    model: &RslModel<Counter>,
    properties: &[(&'static str, Property)],
    seed: u64,
    walks: usize,
    depth: usize,
) -> Result<usize, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut compared = 0;
    for walk in 0..walks {
        let mut state = model.init_states().remove(0);
        for step in 0..depth {
            for i in (0..state.crashed.len()).filter(|&i| state.crashed[i]) {
                let id = Id::from(i);
                let others = [
                    model.actors[i].on_start(id, &state.actor_storages[i], &mut Out::new()),
                    model.actors[i].on_start(id, &None, &mut Out::new()),
                ];
                for other in others {
                    let mut swapped = state.clone();
                    swapped.actor_states[i] = std::sync::Arc::new(other);
                    for (name, p) in properties {
                        if p(model, &state) != p(model, &swapped) {
                            return Err(format!(
                                "walk {walk}, step {step}: \"{name}\" reads crashed replica {i}"
                            ));
                        }
                    }
                    compared += 1;
                }
            }
            let Some(next) = random_step(model, &state, &mut rng) else {
                break;
            };
            state = next;
        }
    }
    Ok(compared)
}

#[test]
fn no_property_reads_a_crashed_replicas_state() {
    for (name, cfg) in configurations() {
        let model = rsl_model(cfg);
        let properties: Vec<(&'static str, Property)> = model
            .properties()
            .into_iter()
            .map(|p| (p.name, p.condition))
            .collect();
        let compared = check_crashed_states_unread(&model, &properties, 7, 60, 80)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(compared > 100, "{name}: only {compared} states compared");
    }
}

/// A property that reads every replica's promise, crashed or not.
fn every_promise_kept(_: &RslModel<Counter>, s: &State) -> bool {
    s.actor_states.iter().enumerate().all(|(i, a)| {
        a.replica().is_none_or(|r| {
            s.history
                .promised
                .get(&Id::from(i))
                .is_none_or(|&b| r.acceptor.max_bal >= Some(b))
        })
    })
}

#[test]
fn a_property_that_reads_crashed_replicas_is_caught() {
    let (_, cfg) = configurations().remove(0);
    let model = rsl_model(cfg);
    let broken: [(&'static str, Property); 1] = [("every promise kept", every_promise_kept)];
    let why = check_crashed_states_unread(&model, &broken, 7, 60, 80)
        .expect_err("a property that reads crashed replicas went unnoticed");
    println!("{why}");
}
