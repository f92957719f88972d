//! Liveness: `eventually` properties of each system.
//!
//! **What stateright concludes from them, and what it does not.** stateright 0.31 judges an
//! `Expectation::Eventually` property only at *terminal* states (states with no successor inside
//! the boundary). A path that loops, or that joins a state already visited, is never judged, and
//! a depth cut-off never yields a counterexample. Our replicas and clients keep periodic timers
//! armed (heartbeats, epochs, retransmission), so almost no RSL state is terminal: a "holds"
//! verdict for an RSL `eventually` property means only that no *dead end* was found in which a
//! client is still unanswered. It does not rule out livelock (dueling proposers, endless
//! retransmission). Checking liveness under fairness, with lasso counterexamples, is the job of
//! the liveness checker planned for this module (its own issue); until then the `sometimes`
//! property "every client is answered" shows that progress is at least reachable.

pub mod lock;
pub mod rsl;
