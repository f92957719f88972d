//! IronRSL: a MultiPaxos replicated state machine library.
//!
//! A [`Replica`] is made of a [`Proposer`], an [`Acceptor`], a [`Learner`], an [`Executor`] and an
//! [`Election`]; it replicates any deterministic [`App`] (the [`Counter`] of IronFleet, or the
//! small [`KvStore`]). [`Client`]s issue requests and retransmit them. [`RslNode`] wraps both for
//! a stateright `ActorModel`.

pub mod acceptor;
pub mod app;
pub mod client;
pub mod election;
pub mod executor;
pub mod learner;
pub mod node;
pub mod params;
pub mod proposer;
pub mod replica;
pub mod types;

pub use acceptor::{Acceptor, TwoAOutcome};
pub use app::{App, Counter, CounterOp, KvOp, KvReply, KvStore};
pub use client::{Client, ClientConfig, ClientState};
pub use election::Election;
pub use executor::Executor;
pub use learner::Learner;
pub use node::{RslNode, RslNodeState};
pub use params::{Mutation, Params};
pub use proposer::{Phase, Proposer};
pub use replica::{Milestones, Replica, ReplicaConfig, ReplicaState, ReplicaStorage};
pub use types::{Ballot, Batch, OpNum, Request, RslMsg, RslTimer, Vote, Votes};
