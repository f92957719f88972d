//! IronRSL: a MultiPaxos replicated state machine library.
//!
//! A [`Replica`] is made of a [`Proposer`], an [`Acceptor`], a [`Learner`], an [`Executor`] and an
//! [`Election`]; it replicates any deterministic [`App`] (the [`Counter`] of IronFleet, or the
//! small [`MapApp`] and [`StoreApp`]). [`Client`]s issue requests and retransmit them. [`RslNode`] wraps both for
//! a stateright `ActorModel`.

mod acceptor;
mod app;
mod client;
mod election;
mod executor;
mod learner;
mod node;
mod params;
mod proposer;
mod rename;
mod replica;
mod sessions;
mod transfer;
mod types;

pub use acceptor::{Acceptor, TwoAOutcome};
pub use app::{
    App, Blob, Counter, CounterOp, MapApp, MapOp, MapReply, StoreApp, StoreOp, StoreReply,
};
pub use client::{Answer, Client, ClientConfig, ClientPosition, ClientState};
pub use election::Election;
pub use executor::{Executor, Outcome};
pub use learner::Learner;
pub use node::{RslNode, RslNodeState};
pub use params::{ModelSwitches, Mutation, Params};
pub use proposer::{Phase, Proposer};
pub use replica::{Milestones, Replica, ReplicaConfig, ReplicaState, ReplicaStorage};
pub use sessions::{ClientSessions, Lookup};
pub use transfer::{chunks as snapshot_chunks, Chunk, Transfer};
pub use types::{Ballot, Batch, OpNum, Request, RslMsg, RslTimer, Vote, Votes};
