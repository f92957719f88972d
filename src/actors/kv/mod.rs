//! IronKV: a sharded key-value store with delegation and exactly-once delivery.
//!
//! [`Host`]s each hold a [`DelegationMap`] (who owns which key range; at start the root,
//! `hosts[0]`, owns everything) and their slice of the hash table. Every message, client traffic
//! included, travels through [`SingleDelivery`]. A [`KvClient`] follows redirects and records
//! its replies; its `Shard` operations are the admin's requests to move a range. [`KvNode`]
//! wraps both for a stateright `ActorModel`.

mod client;
mod delegation;
mod durable;
mod host;
mod node;
mod params;
mod single_delivery;
mod types;

pub use client::{ClientOp, KvClient, KvClientConfig, KvClientState};
pub use delegation::DelegationMap;
pub use durable::{HostRecord, HostSave, HostStorage, SendDelta};
pub use host::{Host, HostConfig, HostMilestones, HostState, Persistence};
pub use node::{KvNode, KvNodeState};
pub use params::{KvModelSwitches, KvMutation, KvParams};
pub use single_delivery::{Received, RecvChannel, SdMsg, SendChannel, SingleDelivery};
pub use types::{Key, KeyRange, KvMsg, KvPayload, KvTimer, Pairs, Value};
