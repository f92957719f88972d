//! A replica fed arbitrary well-formed messages, with extreme field values (ballots and slots at
//! `u64::MAX`, huge sequence numbers, votes far outside the log window), from its peers and from
//! strangers, interleaved with its timers: it never panics and never overflows (overflow checks
//! are on in every profile), through both the in-place and the copied step.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use stateright::actor::{Actor, Id, Out};

use ironfleet::actors::rsl::{
    snapshot_chunks, Ballot, Chunk, ClientSessions, Counter, CounterOp, ModelSwitches, Params,
    Replica, ReplicaConfig, Request, RslMsg, RslTimer, Vote,
};

/// Numbers drawn from a small set, so that messages agree often enough to make progress (a
/// quorum of equal 2bs, a supply matching a request), with the extremes among them.
fn big() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..4,
        2 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(u64::MAX / 2),
        1 => any::<u64>(),
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (
        big(),
        prop_oneof![4 => 0u32..3, 1 => Just(u32::MAX), 1 => any::<u32>()],
    )
        .prop_map(|(seqno, proposer)| Ballot { seqno, proposer })
}

fn sender() -> impl Strategy<Value = Id> {
    (0usize..6).prop_map(Id::from)
}

fn batch() -> impl Strategy<Value = Arc<Vec<Request<Counter>>>> {
    proptest::collection::vec(
        (
            sender(),
            big(),
            prop_oneof![Just(CounterOp::Inc), Just(CounterOp::Get)],
        )
            .prop_map(|(client, seqno, op)| Request { client, seqno, op }),
        0..3,
    )
    .prop_map(Arc::new)
}

fn msg() -> impl Strategy<Value = RslMsg<Counter>> {
    let votes = proptest::collection::btree_map(
        big(),
        (ballot(), batch()).prop_map(|(bal, batch)| Vote { bal, batch }),
        0..3,
    )
    .prop_map(Arc::new);
    prop_oneof![
        (
            big(),
            prop_oneof![Just(CounterOp::Inc), Just(CounterOp::Get)]
        )
            .prop_map(|(seqno, op)| RslMsg::Request { seqno, op }),
        (big(), big()).prop_map(|(seqno, reply)| RslMsg::Reply { seqno, reply }),
        (big(), big()).prop_map(|(seqno, watermark)| RslMsg::SessionExpired { seqno, watermark }),
        ballot().prop_map(|bal| RslMsg::OneA { bal }),
        (ballot(), big(), votes).prop_map(|(bal, log_truncation_point, votes)| RslMsg::OneB {
            bal,
            log_truncation_point,
            votes
        }),
        (ballot(), big()).prop_map(|(bal, log_truncation_point)| RslMsg::StartingPhase2 {
            bal,
            log_truncation_point
        }),
        (ballot(), big(), batch()).prop_map(|(bal, opn, batch)| RslMsg::TwoA { bal, opn, batch }),
        (ballot(), big(), batch()).prop_map(|(bal, opn, batch)| RslMsg::TwoB { bal, opn, batch }),
        (ballot(), any::<bool>(), big()).prop_map(|(bal, suspicious, opn_ckpt)| {
            RslMsg::Heartbeat {
                bal,
                suspicious,
                opn_ckpt,
            }
        }),
        (ballot(), big()).prop_map(|(bal, opn)| RslMsg::AppStateRequest { bal, opn }),
        (
            ballot(),
            big(),
            any::<u8>(),
            0u32..4,
            0u32..4,
            proptest::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(bal, opn, d, total, index, bytes)| RslMsg::AppStateChunk {
                bal,
                chunk: Chunk {
                    opn,
                    digest: [d; 32],
                    total,
                    index,
                    bytes: Arc::new(bytes),
                },
            }),
    ]
}

#[derive(Clone, Debug)]
enum Event {
    Deliver(Id, RslMsg<Counter>),
    Timer(RslTimer),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (sender(), msg()).prop_map(|(src, m)| Event::Deliver(src, m)),
        1 => prop_oneof![
            Just(RslTimer::Heartbeat),
            Just(RslTimer::Epoch),
            Just(RslTimer::Batch)
        ]
        .prop_map(Event::Timer),
    ]
}

fn replica(me: usize) -> Replica<Counter> {
    Replica::new(ReplicaConfig {
        replicas: Arc::new((0..3).map(Id::from).collect()),
        me,
        params: Params::default(),
        switches: ModelSwitches::default(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn any_well_formed_message_is_handled_without_panic(
        me in 0usize..3,
        events in proptest::collection::vec(event(), 1..40),
    ) {
        let r = replica(me);
        let id = Id::from(me);
        let mut out = Out::new();
        let mut state = r.on_start(id, &None, &mut out);
        for e in events {
            let mut copied = Cow::Borrowed(&state);
            let mut in_place = Cow::Owned(state.clone());
            let (mut o1, mut o2) = (Out::new(), Out::new());
            match &e {
                Event::Deliver(src, m) => {
                    r.on_msg(id, &mut copied, *src, m.clone(), &mut o1);
                    r.on_msg(id, &mut in_place, *src, m.clone(), &mut o2);
                }
                Event::Timer(t) => {
                    r.on_timeout(id, &mut copied, t, &mut o1);
                    r.on_timeout(id, &mut in_place, t, &mut o2);
                }
            }
            prop_assert_eq!(&*copied, &*in_place);
            state = in_place.into_owned();
        }
    }
}

/// A replica restored from storage holding extreme values starts without panic.
#[test]
fn extreme_storage_restores_without_panic() {
    let r = replica(0);
    let mut out = Out::new();
    let mut state = r.on_start(Id::from(0usize), &None, &mut out);
    let big = Ballot {
        seqno: u64::MAX,
        proposer: u32::MAX,
    };
    let mut o = Out::new();
    let mut cow = Cow::Owned(state.clone());
    r.on_msg(
        Id::from(0usize),
        &mut cow,
        Id::from(1usize),
        RslMsg::OneA { bal: big },
        &mut o,
    );
    state = cow.into_owned();
    for t in [RslTimer::Heartbeat, RslTimer::Epoch, RslTimer::Batch] {
        let mut o = Out::new();
        let mut cow = Cow::Owned(state.clone());
        r.on_timeout(Id::from(0usize), &mut cow, &t, &mut o);
        state = cow.into_owned();
    }
}

/// Regression: a leader whose executor jumped ahead of its proposals through a state transfer
/// panicked on its next heartbeat tick (`BTreeMap::range` with start above end, while resending
/// the 2a of undecided slots). Found by the property above.
#[test]
fn a_leader_overtaken_by_a_state_transfer_keeps_running() {
    let r = replica(0);
    let me = Id::from(0usize);
    let peer = Id::from(1usize);
    let step = |state: ReplicaStateOf, e: Event| -> ReplicaStateOf {
        let mut o = Out::new();
        let mut cow = Cow::Owned(state);
        match e {
            Event::Deliver(src, m) => r.on_msg(me, &mut cow, src, m, &mut o),
            Event::Timer(t) => r.on_timeout(me, &mut cow, &t, &mut o),
        }
        cow.into_owned()
    };
    let mut state = r.on_start(me, &None, &mut Out::new());
    let view = state.election.view;
    state = step(
        state,
        Event::Deliver(
            peer,
            RslMsg::OneB {
                bal: view,
                log_truncation_point: 0,
                votes: Arc::new(BTreeMap::new()),
            },
        ),
    );
    assert_eq!(
        state.proposer.phase,
        ironfleet::actors::rsl::Phase::Phase2,
        "replica 0 leads view 0"
    );
    // A client request: the leader proposes slot 0 and votes for it.
    state = step(
        state,
        Event::Deliver(
            Id::from(5usize),
            RslMsg::Request {
                seqno: 1,
                op: CounterOp::Inc,
            },
        ),
    );
    assert_eq!(state.proposer.next_opn, 1);
    assert!(!state.acceptor.votes.is_empty());
    for chunk in snapshot_chunks::<Counter>(5, &5, &ClientSessions::default(), 3) {
        state = step(
            state,
            Event::Deliver(peer, RslMsg::AppStateChunk { bal: view, chunk }),
        );
    }
    assert_eq!(state.executor.ops_complete, 5);
    step(state, Event::Timer(RslTimer::Heartbeat));
}

type ReplicaStateOf = <Replica<Counter> as Actor>::State;

/// Regression: a 1b carrying a vote far outside the sender's log window (slot `u64::MAX`) was
/// taken, and the new leader set out to re-propose every slot up to it (memory without bound).
/// Such a 1b is one no correct acceptor sends: it is ignored.
#[test]
fn a_1b_with_a_vote_outside_the_senders_window_is_ignored() {
    let r = replica(0);
    let me = Id::from(0usize);
    let mut state = r.on_start(me, &None, &mut Out::new());
    let view = state.election.view;
    let far = BTreeMap::from([(
        u64::MAX,
        Vote {
            bal: view,
            batch: Arc::new(Vec::new()),
        },
    )]);
    let mut cow = Cow::Owned(state);
    r.on_msg(
        me,
        &mut cow,
        Id::from(1usize),
        RslMsg::OneB {
            bal: view,
            log_truncation_point: 0,
            votes: Arc::new(far),
        },
        &mut Out::new(),
    );
    state = cow.into_owned();
    assert_ne!(
        state.proposer.phase,
        ironfleet::actors::rsl::Phase::Phase2,
        "the malformed 1b must not complete the quorum"
    );
}

/// Regression: the in-place step snapshotted the whole durable state before each event, so the
/// executor's first write to the reply cache (one entry per client) and to the app state copied
/// them whole on every executed batch. Stepped in place, a replica now executes a batch in the
/// maps it has.
#[test]
fn executing_in_place_does_not_copy_the_session_table() {
    let r = replica(0);
    let me = Id::from(0usize);
    let mut state = r.on_start(me, &None, &mut Out::new());
    let view = state.election.view;
    let step = |state: ReplicaStateOf, src: usize, m: RslMsg<Counter>| {
        let mut cow = Cow::Owned(state);
        r.on_msg(me, &mut cow, Id::from(src), m, &mut Out::new());
        cow.into_owned()
    };
    state = step(
        state,
        1,
        RslMsg::OneB {
            bal: view,
            log_truncation_point: 0,
            votes: Arc::new(BTreeMap::new()),
        },
    );
    let request = |seqno| RslMsg::Request {
        seqno,
        op: CounterOp::Inc,
    };
    let two_b = |opn: u64, client: usize, seqno: u64| RslMsg::TwoB {
        bal: view,
        opn,
        batch: Arc::new(vec![Request {
            client: Id::from(client),
            seqno,
            op: CounterOp::Inc,
        }]),
    };
    // Slot 0: client 5's request, voted by replica 1 too: decided and executed.
    state = step(state, 5, request(1));
    state = step(state, 1, two_b(0, 5, 1));
    assert_eq!(state.executor.ops_complete, 1);
    let cache = Arc::as_ptr(&state.executor.sessions);
    let app = Arc::as_ptr(&state.executor.app_state);
    // Slot 1: the next request, executed in place.
    state = step(state, 5, request(2));
    state = step(state, 1, two_b(1, 5, 2));
    assert_eq!(state.executor.ops_complete, 2);
    assert_eq!(
        Arc::as_ptr(&state.executor.sessions),
        cache,
        "the reply cache was copied"
    );
    assert_eq!(
        Arc::as_ptr(&state.executor.app_state),
        app,
        "the app state was copied"
    );
}
