//! # ironfleet
//!
//! IronFleet's systems — IronRSL (a MultiPaxos replicated state machine), IronKV (a sharded
//! key-value store with delegation) and IronLock (a ring lock) — written once as [stateright]
//! actors, and run from the same code under an exhaustive model checker, as seeded walks through
//! the same model, in stateright's explorer, in a deterministic simulator of the deployed stack,
//! and over real UDP sockets.
//!
//! ## Layers
//! Each folder is one layer; a layer imports only the layers below it:
//!
//! | layer | holds |
//! | --- | --- |
//! | `cmd` (and `main.rs`) | everything the binary and the examples parse and print: flags, verbs, benchmarks, soak, charts |
//! | [`check`], [`sim`] | the system-blind checker engine over any stateright `Model`; the deterministic simulator over any stateright `Actor` (it runs the runtime's process driver, so it sits above `net`) |
//! | [`net`] | the runtime (codec, the sans-IO process driver and its tokio back end, cluster files, clusters, clients) with no printing |
//! | [`model`] | per system: the model configuration and builder, ghost-history recorders, the model-only switches, every property registered by name |
//! | [`liveness`] | per system: what must eventually happen |
//! | [`invariants`] | per system: specs, abstraction functions, ghost histories, safety properties |
//! | [`actors`] | the protocols: pure, deterministic step functions that assert their local invariants |
//!
//! The names are the same in every layer: `rsl`, `kv`, `lock`.
//!
//! ## Check a model
//! Build a model from its configuration and run a checker over it; every property is registered
//! on the model by name:
//!
//! ```
//! use ironfleet::check::run::{run, Mode, RunOptions, Verdict};
//! use ironfleet::model::lock::{lock_model, LockModelCfg};
//!
//! let model = lock_model(LockModelCfg { nodes: 2, max_epoch: 3, ..LockModelCfg::default() });
//! let opts = RunOptions { mode: Mode::Bfs, ..RunOptions::default() };
//! let outcome = run(model, &opts, &mut std::io::sink());
//! assert!(outcome.complete);
//! assert_eq!(outcome.verdict("mutual exclusion"), Some(Verdict::Holds));
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod actors;
pub mod check;
#[doc(hidden)]
pub mod cmd;
pub mod invariants;
pub mod liveness;
pub mod model;
pub mod net;
pub mod sim;
