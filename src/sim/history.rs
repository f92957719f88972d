//! The clients' history and its linearizability check, fast enough for long histories.
//!
//! The history is what the client code itself did: an invocation when a client starts an
//! operation, a return when the client's own handler takes a reply as the answer (recorded by
//! the simulator from the client's transitions, never re-derived from messages). An operation
//! without a return (the client stopped, or the run ended) may or may not have taken effect.
//!
//! The check is Wing and Gong's search with Lowe's memoisation, split per partition
//! (linearizability is compositional: a history is linearizable iff its restriction to each
//! object is). The search walks a linked list of call and return entries in real-time order,
//! lifting a call whose operation the spec accepts with the recorded result, and backtracking
//! when it meets a return. States already seen, identified by the set of lifted operations (a
//! 128-bit Zobrist hash) and the spec state, are not searched again. The cost is exponential
//! only in the number of concurrent operations (at most the number of clients), not in the
//! length of the history. stateright's `LinearizabilityTester` enumerates interleavings of the
//! whole history, which is fine for a model's few operations but not for 100,000.
//!
//! Operations without an answer (a client that restarted, or stopped) multiply the choices: each
//! may have taken effect anywhere after its call, or never. Two unanswered operations that are
//! equal (two increments) are interchangeable except for their call times, and lifting the one
//! called earlier first is never worse (it may go wherever the later one may), so the search
//! lifts equal unanswered operations only in call order. Without this, 26 unanswered increments
//! of a simulated counter took 22 s to check; with it, milliseconds. Nor does it lift an
//! unanswered operation that would leave the state as it is (an abandoned read): that changes
//! nothing but the set of lifted operations, and each such set was another state to search.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A sequential specification of the service the clients use.
pub trait SeqSpec {
    /// An operation.
    type Op: Clone + Debug + PartialEq;
    /// What an operation returns.
    type Ret: Clone + Debug + PartialEq;
    /// The state of one partition (one key, one counter).
    type State: Clone + Eq + Hash + Debug;
    /// The partition an operation is about (operations of different partitions commute).
    fn partition(op: &Self::Op) -> u64;
    /// The state of a partition before any operation.
    fn init() -> Self::State;
    /// Applies `op` and returns its result.
    fn step(state: &mut Self::State, op: &Self::Op) -> Self::Ret;
}

/// One operation of the history. Times are the simulator's event numbers: strictly increasing,
/// and a return at the same number as a call precedes it.
#[derive(Clone, Debug)]
pub struct Operation<S: SeqSpec> {
    /// The client.
    pub client: usize,
    /// The operation.
    pub op: S::Op,
    /// When it was invoked.
    pub call: u64,
    /// When it returned and with what (`None`: no answer taken).
    pub ret: Option<(u64, S::Ret)>,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug)]
pub struct NotLinearizable {
    /// The partition with no linearization.
    pub partition: u64,
    /// The search gave up after [`SEARCH_BUDGET`] states without an answer (not a proof).
    pub undecided: bool,
    /// Its operations, in call order (at most the first 40, for the report).
    pub operations: Vec<String>,
}

/// The most search states per partition before the check gives up undecided.
pub const SEARCH_BUDGET: usize = 5_000_000;

/// Checks the history: `Ok` with the number of partitions checked, or the first partition with
/// no linearization (or none found within the search budget).
pub fn check<S: SeqSpec>(ops: &[Operation<S>]) -> Result<usize, NotLinearizable> {
    check_with_witness(ops, None)
}

/// [`check`], trying first a `witness`: a claimed order in which operations (indices into
/// `ops`) took effect, such as the order in which the servers executed the clients' requests,
/// matched to operations by their unique request ids. A witness is a proof, checked in linear
/// time per partition: every answered operation is in it once, the sequential spec run in its
/// order gives every answered operation its recorded result, and the order respects real time
/// (nothing is placed after an operation that returned before it was called). Unanswered
/// operations in it took effect; those not in it never did. A partition whose witness fails
/// these checks (or that has none) is searched as by [`check`], so a wrong witness can cost
/// time but never change a verdict.
pub fn check_with_witness<S: SeqSpec>(
    ops: &[Operation<S>],
    witness: Option<&[usize]>,
) -> Result<usize, NotLinearizable> {
    let mut parts: BTreeMap<u64, Vec<&Operation<S>>> = BTreeMap::new();
    for o in ops {
        parts.entry(S::partition(&o.op)).or_default().push(o);
    }
    let mut claimed: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for &i in witness.unwrap_or(&[]) {
        if let Some(o) = ops.get(i) {
            claimed.entry(S::partition(&o.op)).or_default().push(i);
        }
    }
    for (p, part) in &parts {
        let witnessed = witness.is_some()
            && witness_holds(ops, part, claimed.get(p).map_or(&[][..], |w| &w[..]));
        if witnessed {
            continue;
        }
        let verdict = check_partition::<S>(part);
        if verdict != Some(true) {
            let mut sorted = part.clone();
            sorted.sort_by_key(|o| o.call);
            return Err(NotLinearizable {
                partition: *p,
                undecided: verdict.is_none(),
                operations: sorted
                    .iter()
                    .take(40)
                    .map(|o| match &o.ret {
                        Some((t, r)) => format!(
                            "client {} {:?} -> {:?}  [{}..{}]",
                            o.client, o.op, r, o.call, t
                        ),
                        None => format!(
                            "client {} {:?} -> (no answer)  [{}..]",
                            o.client, o.op, o.call
                        ),
                    })
                    .collect(),
            });
        }
    }
    Ok(parts.len())
}

/// Whether `order` (indices into `ops`, all of one partition whose operations are `part`) is a
/// linearization of the partition's history (see [`check_with_witness`]).
fn witness_holds<S: SeqSpec>(
    ops: &[Operation<S>],
    part: &[&Operation<S>],
    order: &[usize],
) -> bool {
    let mut seen = HashSet::with_capacity(order.len());
    if !order.iter().all(|&i| seen.insert(i)) {
        return false;
    }
    let answered = part.iter().filter(|o| o.ret.is_some()).count();
    let answered_in = order.iter().filter(|&&i| ops[i].ret.is_some()).count();
    if answered_in != answered {
        return false;
    }
    let mut state = S::init();
    // The latest call among the operations placed so far: an operation that returned at or
    // before it cannot come after that one (a return at t precedes a call at t).
    let mut latest_call: Option<u64> = None;
    for &i in order {
        let o = &ops[i];
        let result = S::step(&mut state, &o.op);
        if let Some((ret, r)) = &o.ret {
            if *r != result || latest_call.is_some_and(|c| c >= *ret) {
                return false;
            }
        }
        latest_call = Some(latest_call.map_or(o.call, |c| c.max(o.call)));
    }
    true
}

const NIL: usize = usize::MAX;

/// One entry of the search's list: a call or a return of operation `op`.
#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// Wing-Gong-Lowe on one partition: `Some(linearizable)`, or `None` past the search budget.
fn check_partition<S: SeqSpec>(ops: &[&Operation<S>]) -> Option<bool> {
    let n = ops.len();
    // Entries in time order; at equal times returns before calls. Operations without a
    // return get none: they may be lifted any time after their call, or never.
    // Keys: a call at t is 2t+1 and a return at t is 2t, so returns at t come before calls at
    // t; an operation that returns when it is called comes right after its own call.
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        let call = o.call.saturating_mul(2).saturating_add(1);
        order.push((call, true, i));
        if let Some((t, _)) = &o.ret {
            order.push((t.saturating_mul(2).max(call.saturating_add(1)), false, i));
        }
    }
    order.sort_by_key(|&(t, is_call, i)| (t, is_call, i));
    let len = order.len();
    // Index 0 is a sentinel head; entries are 1..=len.
    let mut entries = Vec::with_capacity(len + 1);
    entries.push(Entry {
        op: NIL,
        is_call: false,
        prev: NIL,
        next: if len > 0 { 1 } else { NIL },
    });
    let mut call_of = vec![NIL; n];
    let mut ret_of = vec![NIL; n];
    for (k, &(_, is_call, i)) in order.iter().enumerate() {
        let idx = k + 1;
        entries.push(Entry {
            op: i,
            is_call,
            prev: idx - 1,
            next: if idx < len { idx + 1 } else { NIL },
        });
        if is_call {
            call_of[i] = idx;
        } else {
            ret_of[i] = idx;
        }
    }
    let mut completed_left = ops.iter().filter(|o| o.ret.is_some()).count();
    // For an unanswered operation, the equal unanswered one called just before it (see the
    // module doc): it must be lifted first.
    let mut prev_same = vec![NIL; n];
    {
        let mut pending: Vec<usize> = (0..n).filter(|&i| ops[i].ret.is_none()).collect();
        pending.sort_by_key(|&i| (ops[i].call, i));
        for (k, &i) in pending.iter().enumerate() {
            if let Some(&j) = pending[..k].iter().rev().find(|&&j| ops[j].op == ops[i].op) {
                prev_same[i] = j;
            }
        }
    }
    let mut lifted = vec![false; n];
    let mut rng = ChaCha8Rng::seed_from_u64(0x5a0b_4157);
    let zobrist: Vec<u128> = (0..n).map(|_| rng.random()).collect();
    let mut lifted_hash: u128 = 0;
    // aHash with fixed seeds: the memo is only inserted into, never iterated, so its hasher
    // changes no result; SipHash made hashing a quarter of a 16-client simulation's time.
    let hasher = ahash::RandomState::with_seeds(0x1d, 0x2e, 0x3f, 0x40);
    let mut seen: HashSet<(u128, S::State), ahash::RandomState> =
        HashSet::with_capacity_and_hasher(4 * n, hasher);
    let mut state = S::init();
    // The stack of lifted operations: (op, state before it).
    let mut stack: Vec<(usize, S::State, u8)> = Vec::new();
    let unlink = |entries: &mut Vec<Entry>, e: usize| {
        let (p, nx) = (entries[e].prev, entries[e].next);
        entries[p].next = nx;
        if nx != NIL {
            entries[nx].prev = p;
        }
    };
    let relink = |entries: &mut Vec<Entry>, e: usize| {
        let (p, nx) = (entries[e].prev, entries[e].next);
        entries[p].next = e;
        if nx != NIL {
            entries[nx].prev = e;
        }
    };
    // Two passes over the candidates: answered operations first, then unanswered ones. Lifting
    // an unanswered operation always fits (nothing to match), so trying it first sent the search
    // down long branches that only failed much later (an increment placed too early); most
    // histories need it only where no answered operation fits.
    let mut pass = 1u8;
    let mut cur = entries[0].next;
    loop {
        if completed_left == 0 {
            return Some(true);
        }
        if seen.len() > SEARCH_BUDGET {
            return None;
        }
        if cur != NIL && entries[cur].is_call {
            let i = entries[cur].op;
            let answered = ops[i].ret.is_some();
            if answered != (pass == 1) || (prev_same[i] != NIL && !lifted[prev_same[i]]) {
                cur = entries[cur].next;
                continue;
            }
            let mut next_state = state.clone();
            let got = S::step(&mut next_state, &ops[i].op);
            if !answered && next_state == state {
                // An unanswered operation with no effect here: lifting it now changes nothing
                // but the memo key (see the module doc), and leaving it keeps every choice.
                cur = entries[cur].next;
                continue;
            }
            let ok = match &ops[i].ret {
                Some((_, want)) => *want == got,
                None => true,
            };
            if ok {
                let h = lifted_hash ^ zobrist[i];
                if seen.insert((h, next_state.clone())) {
                    stack.push((i, std::mem::replace(&mut state, next_state), pass));
                    lifted[i] = true;
                    lifted_hash = h;
                    unlink(&mut entries, call_of[i]);
                    if ret_of[i] != NIL {
                        unlink(&mut entries, ret_of[i]);
                        completed_left -= 1;
                    }
                    pass = 1;
                    cur = entries[0].next;
                    continue;
                }
            }
            cur = entries[cur].next;
        } else if pass == 1 {
            pass = 2;
            cur = entries[0].next;
        } else {
            // A return (or the end with calls only left): some operation must come earlier.
            let Some((i, before, its_pass)) = stack.pop() else {
                return Some(false);
            };
            state = before;
            lifted[i] = false;
            lifted_hash ^= zobrist[i];
            if ret_of[i] != NIL {
                relink(&mut entries, ret_of[i]);
                completed_left += 1;
            }
            relink(&mut entries, call_of[i]);
            pass = its_pass;
            cur = entries[call_of[i]].next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register per key: `(key, Some(v))` writes, `(key, None)` reads.
    struct Register;

    impl SeqSpec for Register {
        type Op = (u64, Option<u64>);
        type Ret = u64;
        type State = u64;
        fn partition(op: &Self::Op) -> u64 {
            op.0
        }
        fn init() -> u64 {
            0
        }
        fn step(s: &mut u64, op: &Self::Op) -> u64 {
            match op.1 {
                Some(v) => {
                    *s = v;
                    v
                }
                None => *s,
            }
        }
    }

    fn op(
        client: usize,
        o: (u64, Option<u64>),
        call: u64,
        ret: Option<(u64, u64)>,
    ) -> Operation<Register> {
        Operation {
            client,
            op: o,
            call,
            ret,
        }
    }

    #[test]
    fn concurrent_operations_may_take_either_order() {
        // A write of 1 overlaps a read that sees 1 and a read that sees 0.
        let h = vec![
            op(0, (0, Some(1)), 1, Some((10, 1))),
            op(1, (0, None), 2, Some((3, 0))),
            op(2, (0, None), 4, Some((5, 1))),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let h = vec![
            op(0, (0, Some(1)), 1, Some((2, 1))),
            op(1, (0, None), 3, Some((4, 0))),
        ];
        let e = check(&h).unwrap_err();
        assert_eq!(e.partition, 0);
        assert_eq!(e.operations.len(), 2);
    }

    #[test]
    fn an_unanswered_write_may_or_may_not_have_happened() {
        let took = vec![
            op(0, (0, Some(1)), 1, None),
            op(1, (0, None), 3, Some((4, 1))),
            op(1, (0, None), 5, Some((6, 1))),
        ];
        assert!(check(&took).is_ok());
        let did_not = vec![
            op(0, (0, Some(1)), 1, None),
            op(1, (0, None), 3, Some((4, 0))),
        ];
        assert!(check(&did_not).is_ok());
        // But not both: once seen, it stays.
        let flicker = vec![
            op(0, (0, Some(1)), 1, None),
            op(1, (0, None), 3, Some((4, 1))),
            op(1, (0, None), 5, Some((6, 0))),
        ];
        assert!(check(&flicker).is_err());
    }

    /// Regression: an operation answered at the instant it was called sorted its return before
    /// its own call, so no history containing one was ever linearizable.
    #[test]
    fn an_operation_answered_when_called_is_fine() {
        let h = vec![
            op(0, (0, Some(1)), 5, Some((5, 1))),
            op(1, (0, None), 5, Some((6, 1))),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn partitions_are_checked_separately() {
        let h = vec![
            op(0, (1, Some(5)), 1, Some((2, 5))),
            op(1, (2, None), 3, Some((4, 0))),
            op(1, (1, None), 5, Some((6, 5))),
        ];
        assert_eq!(check(&h).unwrap(), 2);
    }

    /// A witness proves a history at once; a wrong witness (wrong order, a result that does
    /// not match, a missing answered operation, an order against real time) is not taken, and
    /// the search decides; and no witness makes a history that is not linearizable pass.
    #[test]
    fn a_witness_proves_but_never_decides_wrongly() {
        let h = vec![
            op(0, (0, Some(1)), 1, Some((10, 1))),
            op(1, (0, None), 2, Some((3, 0))),
            op(2, (0, None), 4, Some((5, 1))),
            op(3, (0, Some(2)), 6, None),
        ];
        assert!(witness_holds(&h, &h.iter().collect::<Vec<_>>(), &[1, 0, 2]));
        assert!(witness_holds(
            &h,
            &h.iter().collect::<Vec<_>>(),
            &[1, 0, 2, 3]
        ));
        // Read of 0 after the write: wrong result. Missing the second read. Read of 1 placed
        // before the read of 0 that returned before it was called.
        for bad in [
            &[0, 1, 2][..],
            &[1, 0][..],
            &[0, 2, 1][..],
            &[1, 0, 0, 2][..],
        ] {
            assert!(
                !witness_holds(&h, &h.iter().collect::<Vec<_>>(), bad),
                "{bad:?}"
            );
            assert!(check_with_witness(&h, Some(bad)).is_ok());
        }
        // A stale read after a completed write: no witness passes it.
        let stale = vec![
            op(0, (0, Some(1)), 1, Some((2, 1))),
            op(1, (0, None), 3, Some((4, 0))),
        ];
        for w in [&[0, 1][..], &[1, 0][..], &[1][..], &[][..]] {
            assert!(check_with_witness(&stale, Some(w)).is_err(), "{w:?}");
        }
    }

    /// A long history of 16 clients over a few keys, generated by executing a real
    /// linearization with overlapping intervals: it must pass, and pass quickly (the search is
    /// near-linear: a quadratic one would take minutes here).
    #[test]
    fn a_hundred_thousand_operations_check() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut regs = [0u64; 8];
        let mut h = Vec::new();
        let mut t = 10u64;
        // Clients' current intervals: each op's effect happens at its own "point" between call
        // and return; calls and returns are spread around the point.
        let mut next_value = 1;
        for _ in 0..100_000 {
            t += 3;
            let client = rng.random_range(0..16);
            let key = rng.random_range(0..8u64);
            let write = rng.random_bool(0.5);
            let o = if write {
                next_value += 1;
                (key, Some(next_value))
            } else {
                (key, None)
            };
            let ret = Register::step(&mut regs[key as usize], &o);
            let (call, back) = (t - rng.random_range(0..6), t + rng.random_range(0..6));
            h.push(op(client, o, call, Some((back, ret))));
        }
        assert_eq!(check(&h).unwrap(), 8);
    }
}

#[cfg(test)]
mod unanswered {
    use super::*;

    /// A counter: `true` increments, `false` reads.
    struct Counter;
    impl SeqSpec for Counter {
        type Op = bool;
        type Ret = u64;
        type State = u64;
        fn partition(_: &bool) -> u64 {
            0
        }
        fn init() -> u64 {
            0
        }
        fn step(s: &mut u64, inc: &bool) -> u64 {
            if *inc {
                *s += 1;
            }
            *s
        }
    }

    /// Regression: 30 unanswered increments, of which every other one took effect (late, as a
    /// restarted client's abandoned request may). Each is a choice of "where, or never"; before
    /// equal unanswered operations were lifted in call order the search tried the subsets (a
    /// simulated history like this one took 22 s); now it is linear.
    #[test]
    fn many_unanswered_increments_check_quickly() {
        let mut h = Vec::new();
        let mut value = 0;
        for i in 0..300u64 {
            let t = 10 + 10 * i;
            if i % 10 == 0 {
                // Called here; every other one takes effect, unanswered.
                h.push(Operation::<Counter> {
                    client: 100 + i as usize,
                    op: true,
                    call: t,
                    ret: None,
                });
                if i % 20 == 0 {
                    value += 1;
                }
            }
            value += 1;
            h.push(Operation {
                client: (i % 2) as usize,
                op: true,
                call: t + 1,
                ret: Some((t + 2, value)),
            });
        }
        // Unanswered reads too (abandoned gets): lifting them changes nothing.
        for i in 0..30u64 {
            h.push(Operation::<Counter> {
                client: 500 + i as usize,
                op: false,
                call: 5 + 97 * i,
                ret: None,
            });
        }
        assert!(check(&h).is_ok());
        // And a value no choice of the unanswered ones explains is still refused.
        h.last_mut().unwrap().ret = Some((10_000, value + 100));
        assert!(check(&h).is_err());
    }
}
