//! Safety: the high-level specs, abstraction functions from system states to spec states, the
//! ghost histories the models record, and the properties every explored state is checked
//! against.
//!
//! Nothing here calls protocol code to decide what is correct: a property reads actor states and
//! the ghost history (what was sent), and compares them with a small sequential spec. Each
//! property is a plain function of what it needs (the number of replicas or hosts, a bound, the
//! state); the model builders in [`crate::model`] register them by name.

pub mod ghost;
pub mod kv;
pub mod linearizability;
pub mod lock;
pub mod rsl;
pub mod spec;
