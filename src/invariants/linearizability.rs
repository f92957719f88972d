//! A linearizability tester for ghost histories whose client ids can be renamed.
//!
//! It records, per client, the operations it completed and the one in flight, each with its
//! real-time predecessors: how many operations every other client had completed when it was
//! invoked. A history is linearizable if some order of all completed operations (and any of
//! the operations in flight) respects those predecessors and each client's own order, and
//! gives every recorded return when run on the sequential spec.
//!
//! stateright's `LinearizabilityTester` records the same, but its fields are private, so a
//! state holding one cannot have its client ids rewritten. Symmetry reduction needs exactly
//! that (a state and the one with two clients' ids swapped must be recognised as the same
//! orbit), so the RSL ghost history keeps this tester, which implements stateright's
//! [`Rewrite`] over actor ids.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use stateright::actor::Id;
use stateright::semantics::SequentialSpec;
use stateright::{Rewrite, RewritePlan};

/// How many operations each other client had completed when an operation was invoked.
type Predecessors = BTreeMap<Id, usize>;

/// One client's operations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientOps<Op, Ret> {
    /// Completed operations in order: (predecessors, operation, return).
    done: Vec<(Predecessors, Op, Ret)>,
    /// The operation in flight, if any.
    pending: Option<(Predecessors, Op)>,
}

/// A client with its operations, as the search walks them.
type Walked<'a, S> = (
    &'a Id,
    &'a ClientOps<<S as SequentialSpec>::Op, <S as SequentialSpec>::Ret>,
);

/// A history of client operations, checked for linearizability against a sequential spec.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Linearizability<S: SequentialSpec> {
    init: S,
    clients: BTreeMap<Id, ClientOps<S::Op, S::Ret>>,
    /// False once an invocation or return broke the protocol (a second invocation in flight,
    /// a return with none): the history is then not linearizable.
    well_formed: bool,
}

impl<S> Linearizability<S>
where
    S: SequentialSpec + Clone,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug + PartialEq,
{
    /// An empty history over the spec's initial state.
    pub fn new(init: S) -> Self {
        Linearizability {
            init,
            clients: BTreeMap::new(),
            well_formed: true,
        }
    }

    /// Client `client` invokes `op`. An error if it already has one in flight.
    pub fn on_invoke(&mut self, client: Id, op: S::Op) -> Result<(), String> {
        let before: Predecessors = self
            .clients
            .iter()
            .filter(|(c, ops)| **c != client && !ops.done.is_empty())
            .map(|(c, ops)| (*c, ops.done.len()))
            .collect();
        let ops = self.clients.entry(client).or_insert_with(|| ClientOps {
            done: Vec::new(),
            pending: None,
        });
        if ops.pending.is_some() {
            self.well_formed = false;
            return Err(format!(
                "{client:?} invoked {op:?} with an operation in flight"
            ));
        }
        ops.pending = Some((before, op));
        Ok(())
    }

    /// Client `client`'s operation in flight returns `ret`. An error if it has none.
    pub fn on_return(&mut self, client: Id, ret: S::Ret) -> Result<(), String> {
        let Some((before, op)) = self.clients.get_mut(&client).and_then(|c| c.pending.take())
        else {
            self.well_formed = false;
            return Err(format!(
                "{client:?} returned {ret:?} with nothing in flight"
            ));
        };
        let ops = self.clients.get_mut(&client).expect("looked up above");
        ops.done.push((before, op, ret));
        Ok(())
    }

    /// An order of the operations that explains every return, if there is one.
    pub fn serialized_history(&self) -> Option<Vec<(S::Op, S::Ret)>> {
        if !self.well_formed {
            return None;
        }
        let clients: Vec<Walked<S>> = self.clients.iter().collect();
        let mut taken = vec![0usize; clients.len()];
        let mut order = Vec::new();
        self.extend(&clients, &mut taken, &self.init, &mut order)
            .then_some(order)
    }

    /// Whether the history is linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.serialized_history().is_some()
    }

    /// Depth-first: extends `order` (with `taken[i]` operations of client `i` in it, the
    /// pending one counting as `done.len() + 1`) to one that takes every completed operation.
    fn extend(
        &self,
        clients: &[Walked<S>],
        taken: &mut [usize],
        spec: &S,
        order: &mut Vec<(S::Op, S::Ret)>,
    ) -> bool {
        if clients
            .iter()
            .zip(taken.iter())
            .all(|((_, ops), &t)| t >= ops.done.len())
        {
            return true;
        }
        let completed = |id: &Id, taken: &[usize]| -> usize {
            let i = clients.iter().position(|(c, _)| *c == id);
            i.map_or(0, |i| taken[i].min(clients[i].1.done.len()))
        };
        for i in 0..clients.len() {
            let ops = clients[i].1;
            let t = taken[i];
            let (before, op, ret) = if t < ops.done.len() {
                let (before, op, ret) = &ops.done[t];
                (before, op, Some(ret))
            } else if t == ops.done.len() {
                match &ops.pending {
                    Some((before, op)) => (before, op, None),
                    None => continue,
                }
            } else {
                continue;
            };
            // Every operation that completed before this one was invoked must be in already.
            if before.iter().any(|(c, n)| completed(c, taken) < *n) {
                continue;
            }
            let mut next = spec.clone();
            let ret = match ret {
                Some(ret) => {
                    if !next.is_valid_step(op, ret) {
                        continue;
                    }
                    ret.clone()
                }
                None => next.invoke(op),
            };
            order.push((op.clone(), ret));
            taken[i] += 1;
            if self.extend(clients, taken, &next, order) {
                return true;
            }
            taken[i] -= 1;
            order.pop();
        }
        false
    }
}

/// Renames client ids: the clients' keys and their operations' predecessors. Operations and
/// returns are kept as they are: a spec whose operations name clients is not symmetric in them
/// anyway.
impl<S> Rewrite<Id> for Linearizability<S>
where
    S: SequentialSpec + Clone,
    S::Op: Clone,
    S::Ret: Clone,
{
    fn rewrite<P>(&self, plan: &RewritePlan<Id, P>) -> Self {
        let preds = |p: &Predecessors| -> Predecessors {
            p.iter().map(|(c, n)| (plan.rewrite(c), *n)).collect()
        };
        Linearizability {
            init: self.init.clone(),
            clients: self
                .clients
                .iter()
                .map(|(c, ops)| {
                    let ops = ClientOps {
                        done: ops
                            .done
                            .iter()
                            .map(|(p, op, ret)| (preds(p), op.clone(), ret.clone()))
                            .collect(),
                        pending: ops.pending.as_ref().map(|(p, op)| (preds(p), op.clone())),
                    };
                    (plan.rewrite(c), ops)
                })
                .collect(),
            well_formed: self.well_formed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
    use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

    type Reg = Register<u8>;

    fn c(i: usize) -> Id {
        Id::from(i)
    }

    #[test]
    fn a_read_of_a_value_written_after_it_returned_is_not_linearizable() {
        let mut h = Linearizability::new(Reg::default());
        h.on_invoke(c(0), RegisterOp::Write(1)).unwrap();
        h.on_return(c(0), RegisterRet::WriteOk).unwrap();
        h.on_invoke(c(1), RegisterOp::Read).unwrap();
        h.on_return(c(1), RegisterRet::ReadOk(1)).unwrap();
        assert!(h.is_linearizable());
        // A third client reads the initial value after the write completed: stale.
        h.on_invoke(c(2), RegisterOp::Read).unwrap();
        h.on_return(c(2), RegisterRet::ReadOk(0)).unwrap();
        assert!(!h.is_linearizable());
    }

    #[test]
    fn concurrent_operations_may_take_either_order_and_pending_ones_may_have_happened() {
        let mut h = Linearizability::new(Reg::default());
        h.on_invoke(c(0), RegisterOp::Write(1)).unwrap();
        h.on_invoke(c(1), RegisterOp::Read).unwrap();
        // The write is still in flight: a read that saw it is fine.
        h.on_return(c(1), RegisterRet::ReadOk(1)).unwrap();
        assert!(h.is_linearizable());
        assert!(h.on_return(c(1), RegisterRet::ReadOk(1)).is_err());
        assert!(
            !h.is_linearizable(),
            "a malformed history is not linearizable"
        );
    }

    /// The same verdicts as stateright's tester on every history of two clients doing two
    /// operations each on a register, with every return the register could give.
    #[test]
    fn agrees_with_stateright_on_every_small_history() {
        let ops = [RegisterOp::Write(1), RegisterOp::Read];
        let rets = |op: &RegisterOp<u8>| match op {
            RegisterOp::Write(_) => vec![RegisterRet::WriteOk],
            RegisterOp::Read => (0..2).map(RegisterRet::ReadOk).collect(),
        };
        // A history: events (client, Some(op): an invocation | None: a return of `ret`).
        type Event = (usize, Option<RegisterOp<u8>>, Option<RegisterRet<u8>>);
        let mut histories: Vec<Vec<Event>> = Vec::new();
        let mut level: Vec<Vec<Event>> = vec![vec![]];
        for _ in 0..8 {
            let mut next = Vec::new();
            for h in &level {
                for client in 0..2 {
                    let invoked = h.iter().filter(|e| e.0 == client && e.1.is_some()).count();
                    let returned = h.iter().filter(|e| e.0 == client && e.1.is_none()).count();
                    if invoked == returned && invoked < 2 {
                        for op in &ops {
                            let mut h = h.clone();
                            h.push((client, Some(op.clone()), None));
                            next.push(h);
                        }
                    } else if invoked > returned {
                        let op = h
                            .iter()
                            .rev()
                            .find(|e| e.0 == client && e.1.is_some())
                            .and_then(|e| e.1.clone())
                            .unwrap();
                        for ret in rets(&op) {
                            let mut h = h.clone();
                            h.push((client, None, Some(ret)));
                            next.push(h);
                        }
                    }
                }
            }
            histories.extend(next.iter().cloned());
            level = next;
        }
        let mut disagreements = 0;
        let mut checked = 0;
        for h in &histories {
            let mut ours = Linearizability::new(Reg::default());
            let mut theirs = LinearizabilityTester::new(Reg::default());
            for (client, op, ret) in h {
                match (op, ret) {
                    (Some(op), _) => {
                        ours.on_invoke(c(*client), op.clone()).unwrap();
                        theirs.on_invoke(c(*client), op.clone()).unwrap();
                    }
                    (None, Some(ret)) => {
                        ours.on_return(c(*client), ret.clone()).unwrap();
                        theirs.on_return(c(*client), ret.clone()).unwrap();
                    }
                    _ => unreachable!(),
                }
            }
            checked += 1;
            if ours.is_linearizable() != theirs.is_consistent() {
                disagreements += 1;
            }
        }
        assert!(checked > 1000, "{checked} histories");
        assert_eq!(disagreements, 0);
    }

    #[test]
    fn renaming_clients_renames_keys_and_predecessors() {
        let mut h = Linearizability::new(Reg::default());
        h.on_invoke(c(3), RegisterOp::Write(1)).unwrap();
        h.on_return(c(3), RegisterRet::WriteOk).unwrap();
        h.on_invoke(c(4), RegisterOp::Read).unwrap();
        let swap = RewritePlan::new(vec![c(0), c(1), c(2), c(4), c(3)], |x: &Id, s: &Vec<Id>| {
            s.get(usize::from(*x)).copied().unwrap_or(*x)
        });
        let mut mirrored = Linearizability::new(Reg::default());
        mirrored.on_invoke(c(4), RegisterOp::Write(1)).unwrap();
        mirrored.on_return(c(4), RegisterRet::WriteOk).unwrap();
        mirrored.on_invoke(c(3), RegisterOp::Read).unwrap();
        assert_eq!(h.rewrite(&swap), mirrored);
        assert_ne!(h, mirrored);
    }
}
