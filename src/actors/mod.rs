//! Protocol code: every host of every system is a stateright [`Actor`](stateright::actor::Actor)
//! whose handlers are pure step functions (no clock, socket, thread or unseeded randomness).
//!
//! * [`rsl`]: IronRSL, MultiPaxos with batching, log truncation, state transfer and a reply cache.
//! * [`kv`]: IronKV, the sharded hash table with delegation and SingleDelivery.
//! * [`lock`]: IronLock, the ring lock with epochs.

pub mod kv;
pub mod lock;
pub mod rsl;
