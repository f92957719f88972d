//! Liveness properties: what must eventually happen in each system, once faults stop.
//!
//! **What stateright concludes, and why we built more.** stateright 0.31 judges an
//! `Expectation::Eventually` property only at *terminal* states (states with no successor inside
//! the boundary). A path that loops, or that joins a state already visited, is never judged, and
//! a depth cut-off never yields a counterexample. Our replicas and clients keep periodic timers
//! armed, so almost no RSL state is terminal: stateright's verdict rules out dead ends, not
//! livelock. So each system states its properties here as a [`LivenessProperty`], and the checker
//! engine judges them on cycles under weak fairness (`check::lasso`) or on fair continuations
//! of seeded walks (`check::bounded`). The stateright `eventually` properties stay on the
//! models too (their terminal-state check is cheap and sometimes enough: IronLock's bounded
//! model has terminal states).
//!
//! The predicates of each system read the actors' states only; they are registered on the models
//! by the model builders.

pub mod kv;
pub mod lock;
pub mod rsl;

use stateright::Model;

/// When a liveness property applies.
pub enum Premise<M: Model> {
    /// At the initial states: `eventually Q`.
    Init,
    /// At every reachable state where the predicate holds: `P leads-to Q`.
    When(fn(&M, &M::State) -> bool),
}

/// A liveness property: from every state where the premise holds, the goal must eventually hold
/// on every weakly fair continuation in which faults stop.
pub struct LivenessProperty<M: Model> {
    /// Its name, as printed.
    pub name: &'static str,
    /// Where it applies.
    pub premise: Premise<M>,
    /// What must eventually hold.
    pub goal: fn(&M, &M::State) -> bool,
    /// States where a bound of the model, not the protocol, stops progress. A continuation that
    /// never reaches the goal is excused only if it stays in such states for good: a fair cycle
    /// is exempt only if every one of its states is, a dead end only if it is. (A state
    /// predicate folded into the goal would excuse a whole path from one passing state.)
    pub exempt: Option<fn(&M, &M::State) -> bool>,
}

impl<M: Model> LivenessProperty<M> {
    /// `eventually goal`, judged from the initial states.
    pub fn eventually(name: &'static str, goal: fn(&M, &M::State) -> bool) -> Self {
        LivenessProperty {
            name,
            premise: Premise::Init,
            goal,
            exempt: None,
        }
    }

    /// The same property, with the states where the model's bounds stop progress (see
    /// [`LivenessProperty::exempt`]).
    pub fn unless_stuck_by_bound(mut self, exempt: fn(&M, &M::State) -> bool) -> Self {
        self.exempt = Some(exempt);
        self
    }
}
