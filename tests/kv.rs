//! IronKV model checks: small configurations explored exhaustively with every property holding,
//! the four safety mutations caught (shortest counterexamples, snapshotted), liveness under
//! fairness over a lossy network (and a SingleDelivery that never retransmits caught as a
//! lasso).

use ironfleet::actors::kv::{ClientOp, Key, KeyRange, KvMutation, KvParams};
use ironfleet::model::kv::{kv_liveness, kv_model, KvModelCfg};

/// The safety properties the KV model registers, in report order.
const SAFETY: [&str; 5] = [
    "one hash table",
    "every key owned once",
    "exactly once, in order",
    "linearizable",
    "delegation maps bounded",
];
use ironfleet::check::fairness::{actor_action_kind, actor_action_kind_restarting};
use ironfleet::check::lasso::{check_liveness, LiveVerdict, LivenessOptions};
use ironfleet::check::report::format_trace;
use ironfleet::check::report::print_live_report;
use ironfleet::check::run::{run, Mode, RunOptions, Verdict};
use ironfleet::model::NetworkKind;

fn opts(mode: Mode) -> RunOptions {
    RunOptions {
        mode,
        threads: 2,
        progress: None,
        ..RunOptions::default()
    }
}

const SOMETIMES: [&str; 4] = [
    "a redirect is followed",
    "a range moves with its data",
    "a duplicate is ignored",
    "every client is answered",
];

/// Checks `cfg` exhaustively (BFS); asserts every safety property holds and every `sometimes`
/// property is reached; returns the number of unique states.
fn holds_exhaustively(cfg: KvModelCfg, max_depth: Option<usize>) -> usize {
    exhaustive(cfg, max_depth).0
}

/// [`holds_exhaustively`], returning the verdict of "eventually every request is answered" too.
fn exhaustive(cfg: KvModelCfg, max_depth: Option<usize>) -> (usize, Verdict) {
    let mut o = opts(Mode::Bfs);
    o.max_depth = max_depth;
    let outcome = run(kv_model(cfg), &o, &mut std::io::sink());
    assert!(outcome.complete, "the run must finish");
    let registered: Vec<&str> = outcome.safety().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        registered, SAFETY,
        "the model registers exactly these safety properties"
    );
    for name in SAFETY {
        let v = &outcome.property(name).unwrap().verdict;
        assert_eq!(*v, Verdict::Holds, "{name} must hold");
    }
    for name in SOMETIMES {
        assert_eq!(
            outcome.property(name).unwrap().verdict,
            Verdict::Reached,
            "{name} must be reached"
        );
    }
    let eventually = outcome
        .property("eventually every request is answered")
        .unwrap()
        .verdict
        .clone();
    (outcome.unique, eventually)
}

fn shard(range: KeyRange, from: usize, to: usize) -> ClientOp {
    ClientOp::Shard { range, from, to }
}

/// Three hosts: keys `[1..2)` move from the root to host 1, then `[1..)` (which the root then
/// owns only in part) is asked of the root for host 2.
fn three_hosts_partial_ownership() -> KvModelCfg {
    let mut cfg = KvModelCfg::small();
    cfg.hosts = 3;
    cfg.clients[1] = vec![
        shard(KeyRange::new(1, Some(Key::from(2))), 0, 1),
        shard(KeyRange::new(0, None), 0, 2),
    ];
    cfg
}

#[test]
fn the_default_configuration_holds_exhaustively() {
    assert_eq!(holds_exhaustively(KvModelCfg::small(), None), 2_332); // 18,938 unreduced
}

#[test]
fn a_range_moved_there_and_back_holds_exhaustively() {
    let mut cfg = KvModelCfg::small();
    cfg.clients[1].push(shard(KeyRange::new(1, None), 1, 0));
    assert_eq!(holds_exhaustively(cfg, None), 35_108); // 406,056 unreduced
}

#[test]
fn three_hosts_and_a_partly_owned_range_hold_exhaustively() {
    assert_eq!(
        holds_exhaustively(three_hosts_partial_ownership(), None),
        11_594 // 102,589 unreduced
    );
}

#[test]
fn ordered_and_unordered_networks_hold_to_a_depth() {
    for network in [NetworkKind::Ordered, NetworkKind::Unordered] {
        let mut cfg = KvModelCfg::small();
        cfg.network = network;
        let mut o = opts(Mode::Bfs);
        o.max_depth = Some(11);
        let outcome = run(kv_model(cfg), &o, &mut std::io::sink());
        for name in SAFETY {
            assert_ne!(
                outcome.property(name).unwrap().verdict,
                Verdict::Violated,
                "{name} under {network:?}"
            );
        }
    }
}

#[test]
fn a_lossy_network_keeps_every_property() {
    let mut cfg = KvModelCfg::small();
    cfg.lossy = true;
    cfg.clients[1].clear();
    cfg.clients.pop();
    let outcome = run(kv_model(cfg), &opts(Mode::Bfs), &mut std::io::sink());
    assert!(outcome.complete);
    assert_eq!(outcome.unique, 7_058, "the state space changed"); // 36,890 unreduced
    for name in SAFETY {
        assert_eq!(outcome.property(name).unwrap().verdict, Verdict::Holds);
    }
}

#[test]
fn seeded_walks_of_two_clients_and_two_moves_stay_safe() {
    let mut cfg = KvModelCfg::small();
    cfg.hosts = 3;
    cfg.clients.insert(
        1,
        vec![
            ClientOp::Set(Key::from(0), Some(b"w".to_vec())),
            ClientOp::Get(Key::from(1)),
            ClientOp::Set(Key::from(1), None),
        ],
    );
    cfg.clients[2].push(shard(KeyRange::new(0, Some(Key::from(1))), 0, 2));
    let outcome = run(
        kv_model(cfg),
        &opts(Mode::Simulate {
            seed: 7,
            walks: 3_000,
            depth: 60,
        }),
        &mut std::io::sink(),
    );
    for name in SAFETY {
        assert_ne!(
            outcome.property(name).unwrap().verdict,
            Verdict::Violated,
            "{name}"
        );
    }
    assert_eq!(
        outcome
            .property("every client is answered")
            .unwrap()
            .verdict,
        Verdict::Reached
    );
}

/// Checks `cfg` with `mutation` (BFS, stopping at the first violation); asserts `property` is
/// violated and returns its shortest counterexample.
fn caught(mut cfg: KvModelCfg, mutation: KvMutation, property: &'static str) -> String {
    cfg.mutation = Some(mutation);
    let mut o = opts(Mode::Bfs);
    o.threads = 1;
    o.stop_on_violation = true;
    o.target = Some(property);
    let outcome = run(kv_model(cfg.clone()), &o, &mut std::io::sink());
    let p = outcome.property(property).unwrap();
    assert_eq!(
        p.verdict,
        Verdict::Violated,
        "{mutation:?} must violate {property}"
    );
    format_trace(&kv_model(cfg), p.path.as_ref().unwrap())
}

#[test]
fn a_host_that_answers_for_a_delegated_key_is_caught() {
    insta::assert_snapshot!(caught(
        KvModelCfg::small(),
        KvMutation::AnswerDelegated,
        "linearizable"
    ));
}

/// A client that takes a redirect as "absent": the history records what the client's own
/// handler took (the recorder runs it on a mirror of the client's state), so the wrong answer
/// is in the history and linearizability fails.
#[test]
fn a_client_taking_a_redirect_as_absent_is_caught() {
    insta::assert_snapshot!(caught(
        KvModelCfg::small(),
        KvMutation::ClientTakesRedirectAsAbsent,
        "linearizable"
    ));
}

#[test]
fn single_delivery_accepting_a_duplicate_is_caught() {
    insta::assert_snapshot!(caught(
        KvModelCfg::small(),
        KvMutation::AcceptDuplicate,
        "exactly once, in order"
    ));
}

#[test]
fn honouring_a_shard_of_a_partly_owned_range_is_caught() {
    insta::assert_snapshot!(caught(
        three_hosts_partial_ownership(),
        KvMutation::PartialShard,
        "every key owned once"
    ));
}

#[test]
fn a_delegation_that_drops_a_pair_is_caught() {
    insta::assert_snapshot!(caught(
        KvModelCfg::small(),
        KvMutation::DropPair,
        "one hash table"
    ));
}

#[test]
fn a_host_crash_and_restart_from_storage_keeps_every_property_exhaustively() {
    // Either host may crash at any point and restart from what it stored (a whole snapshot after
    // every step that changed it, before the step's messages left).
    let mut cfg = KvModelCfg::small();
    cfg.max_crashes = 1;
    assert_eq!(holds_exhaustively(cfg, None), 6_996); // 56,814 unreduced
}

#[test]
fn a_host_that_forgets_its_storage_on_restart_is_caught() {
    // IronKV's in-memory host: restarted, it has lost the acknowledged write, and believes it
    // owns the range it delegated away.
    let mut cfg = KvModelCfg::small();
    cfg.max_crashes = 1;
    insta::assert_snapshot!(caught(
        cfg.clone(),
        KvMutation::ForgetStorage,
        "one hash table"
    ));
    insta::assert_snapshot!(caught(
        cfg,
        KvMutation::ForgetStorage,
        "every key owned once"
    ));
}

/// Crashes so far in a state of the KV model: restarts the hosts counted in their storage plus
/// hosts down now.
fn crashes_so_far(s: &<ironfleet::model::kv::KvModel as stateright::Model>::State) -> usize {
    use ironfleet::actors::kv::HostSave;
    let restarts: usize = s
        .actor_storages
        .iter()
        .flatten()
        .map(|save| match save {
            HostSave::Snapshot(st) => usize::from(st.restarts),
            HostSave::Journal(_) => 0,
        })
        .sum();
    restarts + s.crashed.iter().filter(|&&c| c).count()
}

#[test]
fn a_bound_on_all_host_crashes_is_kept_and_reached_and_every_request_is_answered() {
    for (bound, states) in [(1, 11_660), (2, 27_984)] {
        let mut cfg = KvModelCfg::small();
        cfg.max_crashes = 1;
        cfg.max_total_crashes = Some(bound);
        // Every state stateright's own successors reach, transition by transition: never more
        // crashes than the bound, and the bound reached (one bound: unreduced, two take 10 s).
        if bound == 1 {
            assert_eq!(most_crashes(&cfg), bound);
        }
        // With runs that end (no crash is left to take), the `eventually` property is judged
        // at terminal states, and holds there.
        assert_eq!(
            exhaustive(cfg, None),
            (states, Verdict::NoTerminalCounterexample)
        );
    }
}

/// The most crashes so far in any state of `cfg`'s model, explored without reduction.
fn most_crashes(cfg: &KvModelCfg) -> usize {
    use ironfleet::check::reduce::Reduce;
    use stateright::Model;
    let bound = cfg.max_total_crashes.unwrap();
    let model = kv_model(cfg.clone());
    let mut seen = std::collections::HashSet::new();
    let mut queue: std::collections::VecDeque<_> = model.init_states().into();
    let mut most = 0;
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        let n = crashes_so_far(&s);
        assert!(n <= bound, "{n} crashes, bound {bound}");
        most = most.max(n);
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            let is_crash = matches!(a, stateright::actor::ActorModelAction::Crash(_));
            if let Some(next) = model.next_state(&s, a) {
                // Exact: a crash adds one, nothing else (a restart included) adds or removes.
                assert_eq!(crashes_so_far(&next), n + usize::from(is_crash));
                if Model::within_boundary(&model, &next)
                    && seen.insert(Reduce::fingerprint(&model, &next, true))
                {
                    queue.push_back(next);
                }
            }
        }
    }
    most
}

/// Two clients writing one key, with room for one client channel per host: each new client
/// closes the other's channel.
fn one_client_channel_racing_clients() -> KvModelCfg {
    let mut cfg = KvModelCfg::small();
    cfg.params.max_client_channels = 1;
    cfg.clients = vec![
        vec![ClientOp::Set(Key::from(1), Some(b"a".to_vec()))],
        vec![
            ClientOp::Set(Key::from(1), Some(b"b".to_vec())),
            ClientOp::Get(Key::from(1)),
        ],
    ];
    cfg
}

/// Checks `cfg` exhaustively: every safety property holds, a client channel is closed and a
/// closed client refused; returns the number of unique states.
fn closes_channels_safely(cfg: KvModelCfg) -> usize {
    let outcome = run(kv_model(cfg), &opts(Mode::Bfs), &mut std::io::sink());
    assert!(outcome.complete);
    for name in SAFETY {
        assert_eq!(
            outcome.property(name).unwrap().verdict,
            Verdict::Holds,
            "{name}"
        );
    }
    for name in ["a client channel is closed", "a closed client is refused"] {
        assert_eq!(
            outcome.property(name).unwrap().verdict,
            Verdict::Reached,
            "{name}"
        );
    }
    outcome.unique
}

#[test]
fn closing_client_channels_keeps_every_property_exhaustively() {
    assert_eq!(
        closes_channels_safely(one_client_channel_racing_clients()),
        598 // 2,742 unreduced
    );
}

#[test]
fn a_host_that_reopens_a_closed_channel_is_caught() {
    // A late copy of a closed client's Set is delivered again, after the other client's Set:
    // the table no longer holds what the replies said.
    insta::assert_snapshot!(caught(
        one_client_channel_racing_clients(),
        KvMutation::ReopenClosed,
        "one hash table"
    ));
}

/// The same two clients, no channel bound, but hosts sweep idle client channels on a timer that
/// may fire at any point.
fn idle_sweep_racing_clients() -> KvModelCfg {
    let mut cfg = one_client_channel_racing_clients();
    cfg.params.max_client_channels = KvParams::default().max_client_channels;
    cfg.idle_sweep = true;
    cfg
}

#[test]
fn sweeping_idle_client_channels_keeps_every_property_exhaustively() {
    assert_eq!(closes_channels_safely(idle_sweep_racing_clients()), 4_833); // 24,918 unreduced
}

#[test]
fn reopening_a_channel_closed_as_idle_is_caught() {
    let outcome_trace = caught(
        idle_sweep_racing_clients(),
        KvMutation::ReopenClosed,
        "one hash table",
    );
    assert!(outcome_trace.contains("Set(1, \"a\")"), "{outcome_trace}");
}

/// The lasso checker on the KV liveness properties: `Ok(states)` when both hold, else the
/// counterexample part of the report.
fn lasso(cfg: KvModelCfg) -> Result<usize, String> {
    lasso_with(cfg, false)
}

/// [`lasso`], with a host's restart a weakly fair task where `fair_restarts`.
fn lasso_with(cfg: KvModelCfg, fair_restarts: bool) -> Result<usize, String> {
    let model = kv_model(cfg);
    type Action = <ironfleet::model::kv::KvModel as stateright::Model>::Action;
    let classify: fn(&Action) -> ironfleet::check::lasso::ActionKind = if fair_restarts {
        actor_action_kind_restarting
    } else {
        actor_action_kind
    };
    let o = check_liveness(
        &model,
        &kv_liveness(),
        &classify,
        &LivenessOptions::default(),
    );
    assert!(o.complete);
    let mut report = Vec::new();
    let violated = print_live_report(&model, &o, "(replay)", &mut report);
    if o.properties
        .iter()
        .all(|(_, v)| matches!(v, LiveVerdict::Holds))
    {
        return Ok(o.states);
    }
    assert!(violated);
    let text = String::from_utf8(report).unwrap();
    let at = text.find("Lasso counterexample").expect("a lasso");
    Err(text[at..].to_string())
}

fn lossy_one_client() -> KvModelCfg {
    let mut cfg = KvModelCfg::small();
    cfg.lossy = true;
    cfg.clients.pop();
    cfg
}

#[test]
fn every_request_is_answered_with_shard_moves() {
    assert_eq!(lasso(KvModelCfg::small()), Ok(2_332)); // 18,938 without the view
}

#[test]
fn every_request_is_answered_over_a_lossy_network() {
    assert!(lasso(lossy_one_client()).is_ok());
}

#[test]
fn single_delivery_that_never_retransmits_is_caught_as_a_lasso() {
    let mut cfg = lossy_one_client();
    cfg.mutation = Some(KvMutation::NeverRetransmit);
    let trace = lasso(cfg).expect_err("the mutation must be caught");
    insta::assert_snapshot!(trace);
}

/// IronKV stays live across host crashes when a crashed host comes back: with restarts weakly
/// fair, every request is answered and everything sent is delivered, one host down at a time as
/// often as a run likes. With restarts as faults, faults may stop with a host down for good,
/// and its keys are stranded: a one-step dead end.
#[test]
fn a_host_crash_stays_live_when_the_host_comes_back() {
    let mut cfg = KvModelCfg::small();
    cfg.max_crashes = 1;
    assert_eq!(lasso_with(cfg.clone(), true), Ok(6_996));
    let trace = lasso_with(cfg, false).expect_err("a host down for good strands its keys");
    assert!(trace.contains("crashes\nthen nothing"), "{trace}");
}

/// Fair restarts excuse no bug: a SingleDelivery that never retransmits is still caught over a
/// lossy network with a host crash.
#[test]
fn never_retransmitting_is_caught_with_fair_restarts() {
    let mut cfg = lossy_one_client();
    cfg.max_crashes = 1;
    cfg.mutation = Some(KvMutation::NeverRetransmit);
    assert!(
        lasso_with(cfg, true).is_err(),
        "the mutation must be caught"
    );
}

/// A permanent redirect loop is a liveness bug, not the model's redirect bound. Before the
/// exemption followed the hosts' redirects, a client that gave up excused every path after it
/// ("some client gave up"), and this mutation passed the lasso checker.
#[test]
fn a_redirect_loop_is_caught_not_excused_as_the_redirect_bound() {
    let mut cfg = KvModelCfg::small();
    cfg.mutation = Some(KvMutation::OwnerRedirects);
    let trace = lasso(cfg).expect_err("the loop must be caught");
    assert!(trace.contains("Redirect"), "{trace}");
    insta::assert_snapshot!(trace);
}

#[test]
fn check_kv_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_ironfleet");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run(&["kv", "check"]), Some(0));
    assert_eq!(run(&["kv", "--mutation", "drop-pair", "check"]), Some(1));
    assert_eq!(run(&["kv", "--move", "1..:7:1", "check"]), Some(2));
    assert_eq!(run(&["kv", "--mutation", "nonsense", "check"]), Some(2));
    assert_eq!(run(&["kv", "--reduction", "nonsense", "check"]), Some(2));
    assert_eq!(run(&["kv", "--engine", "nonsense", "check"]), Some(2));
    // The default has a host crash; the mutation that forgets storage on restart is caught by it.
    assert_eq!(
        run(&["kv", "--mutation", "forget-storage-on-restart", "check"]),
        Some(1)
    );
    assert_eq!(
        run(&["kv", "--engine", "stateright", "--crashes", "0", "check"]),
        Some(0)
    );
    assert_eq!(run(&["kv", "--reduction", "none", "dfs"]), Some(0));
    assert_eq!(run(&["kv", "--liveness", "check"]), Some(0));
    assert_eq!(
        run(&["kv", "--liveness", "simulate", "--walks", "20"]),
        Some(0)
    );
    assert_eq!(
        run(&[
            "kv",
            "--lossy",
            "--shards",
            "0",
            "--liveness",
            "--mutation",
            "never-retransmit",
            "check"
        ]),
        Some(1)
    );
}

/// 79,987 states in under 2 s on 2 cores. Before host milestones hashed to nothing it was
/// 2,887,800 states, about 70 s, and ran only with `--ignored`.
#[test]
fn two_clients_and_a_move_hold_exhaustively() {
    let mut cfg = KvModelCfg::small();
    cfg.clients = vec![
        vec![ClientOp::Set(Key::from(1), Some(b"a".to_vec()))],
        vec![ClientOp::Get(Key::from(1))],
        vec![shard(KeyRange::new(1, None), 0, 1)],
    ];
    assert_eq!(holds_exhaustively(cfg, None), 79_987);
}

#[test]
fn two_clients_racing_on_one_key_stay_linearizable() {
    let mut cfg = KvModelCfg::small();
    cfg.clients = vec![
        vec![
            ClientOp::Set(Key::from(1), Some(b"a".to_vec())),
            ClientOp::Get(Key::from(1)),
        ],
        vec![
            ClientOp::Set(Key::from(1), Some(b"b".to_vec())),
            ClientOp::Set(Key::from(1), None),
        ],
    ];
    let outcome = run(kv_model(cfg), &opts(Mode::Bfs), &mut std::io::sink());
    assert!(outcome.complete);
    for name in SAFETY {
        assert_eq!(
            outcome.property(name).unwrap().verdict,
            Verdict::Holds,
            "{name}"
        );
    }
    assert_eq!(
        outcome
            .property("every client is answered")
            .unwrap()
            .verdict,
        Verdict::Reached
    );
}
