//! # ironfleet
//!
//! IronFleet's systems — the IronRSL MultiPaxos replicated state machine, the IronLock ring lock
//! (and, as it lands, the IronKV sharded store) — written once as [stateright] actors and run
//! three ways: under stateright's exhaustive model checkers, as seeded random walks through the
//! same model, and (in [`net`]) over real sockets.
//!
//! * [`actors`] holds the protocol code: pure, deterministic step functions.
//! * [`invariants`] holds the specs, abstraction functions and safety properties, and the model
//!   builders that put actors, network and properties together.
//! * [`liveness`] holds the `eventually` properties and documents what stateright's check of them
//!   can and cannot conclude.
//! * [`runner`] drives a model: exhaustive BFS/DFS, seeded simulation, the explorer, progress and
//!   readable counterexample traces.
//! * [`net`] is the real UDP runtime: codec, event loop, cluster files, clusters, benchmark.
//! * [`plot`] draws SVG charts (latency-throughput curves).

#![warn(missing_docs)]

pub mod actors;
pub mod cli;
pub mod invariants;
pub mod liveness;
pub mod net;
pub mod plot;
pub mod runner;
