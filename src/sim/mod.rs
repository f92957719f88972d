//! The deterministic simulator of the deployed stack: each seed is a cluster's life under
//! faults, run in virtual time through the same sans-IO driver as the UDP runtime, checked on
//! every step, and replayable.
//!
//! * [`disk`]: the simulated disk under the real storage code: power cuts lose what was not
//!   synced and tear what was being written.
//! * [`faults`]: the fault kinds, the swarm mix a seed draws, and the timed fault schedule.
//! * [`world`]: the simulated world (network, disks, processes, clocks) generic over any
//!   stateright `Actor` through the [`world::SimSystem`] trait, and one run of a [`SimCase`].
//! * [`history`]: the clients' history and a linearizability check for long histories.
//! * [`rsl`], [`kv`], [`lock`]: the IronFleet systems as [`world::SimSystem`]s, with their
//!   safety monitors.
//! * [`shrink`]: minimising a failing case; seeds, summaries and the determinism check.

pub mod disk;
pub mod faults;
pub mod history;
pub mod kv;
pub mod lock;
pub mod rsl;
pub mod shrink;
pub mod world;

pub use faults::{FaultEvent, FaultKind, FaultMix};
pub use world::{Failure, FailureKind, Observe, SimCase, SimOutcome, SimSystem};
