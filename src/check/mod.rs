//! The checker engine: system-blind, over any stateright `Model` (actor models get a fairness
//! model and readable traces from their structure alone).
//!
//! * [`run`]: runs a model in any mode: exhaustive BFS with our engine or stateright's, DFS
//!   through stateright's, seeded random walks of our own (every reported path replays);
//!   per-property verdicts and the minimisation of every counterexample to a shortest one.
//! * [`engine`]: our exhaustive BFS: multi-threaded, hash compaction, sleep sets.
//! * [`reduce`]: what the engine needs to know of a model to reduce it, derived for any actor
//!   model from its structure (which actions are independent).
//! * [`lasso`]: the fairness-aware liveness checker: the bounded reachable graph kept compactly,
//!   strongly connected components, fair lassos or a proof for the bounded model.
//! * [`bounded`]: the cheaper liveness mode for configurations too large to keep: from states on
//!   seeded walks, faults stop and a weakly fair scheduler must reach the goal in K steps.
//! * [`symmetry`]: states identified up to a renaming of interchangeable actors (clients with
//!   the same workload), by the fingerprint of their orbit.
//! * [`fairness`]: which actions of an actor model are faults and which are weakly fair tasks.
//! * [`report`]: what every checker prints: figures, verdicts, numbered traces, replay paths
//!   and explorer links.
//!
//! The properties come from the model ([`crate::model`]); the engine imports no system.

pub mod bounded;
pub mod engine;
pub mod fairness;
mod graph;
pub mod lasso;
pub mod reduce;
pub mod report;
pub mod run;
pub mod symmetry;
