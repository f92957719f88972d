//! IronKV: a sharded key-value store with delegation and exactly-once delivery.
//!
//! [`Host`]s each hold a [`DelegationMap`] (who owns which key range; at start the root,
//! `hosts[0]`, owns everything) and their slice of the hash table. Every message, client traffic
//! included, travels through [`SingleDelivery`]. A [`KvClient`] follows redirects and records
//! its replies; its `Shard` operations are the admin's requests to move a range. [`KvNode`]
//! wraps both for a stateright `ActorModel`.

pub mod client;
pub mod delegation;
pub mod host;
pub mod node;
pub mod params;
pub mod single_delivery;
pub mod types;

pub use client::{ClientOp, KvClient, KvClientConfig, KvClientState};
pub use delegation::DelegationMap;
pub use host::{Host, HostConfig, HostMilestones, HostState};
pub use node::{KvNode, KvNodeState};
pub use params::{KvMutation, KvParams};
pub use single_delivery::{Received, RecvChannel, SdMsg, SendChannel, SingleDelivery};
pub use types::{Key, KeyRange, KvMsg, KvPayload, KvTimer, Pairs, Value};
