//! IronRSL's protocol parameters, the model-only switches, and the deliberately broken variants ("mutations") that tests and
//! demonstrations switch on to prove the checker catches real bugs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// IronRSL's protocol parameters: what a cluster file's `[params]` table holds, and all a
/// replica needs at run time. Defaults are IronFleet's, except `propose_when_idle`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// A proposer never proposes a slot `max_log_length` or more beyond its log truncation point,
    /// and an acceptor never keeps a vote that far ahead: logs stay bounded.
    pub max_log_length: u64,
    /// The first epoch length (view timeout), in milliseconds.
    pub baseline_view_timeout_ms: u64,
    /// The epoch length never grows beyond this (the original's `max_integer_val` guard).
    pub max_view_timeout_ms: u64,
    /// How often a replica sends a heartbeat, in milliseconds.
    pub heartbeat_period_ms: u64,
    /// A batch is proposed as soon as it holds this many requests.
    pub max_batch_size: usize,
    /// An incomplete batch is proposed after this delay, in milliseconds.
    pub max_batch_delay_ms: u64,
    /// The leader's request queue holds at most this many requests (more are dropped; clients
    /// retransmit).
    pub max_request_queue: usize,
    /// Propose an incomplete batch at once when the pipeline is idle (every slot this leader
    /// proposed is already executed here), instead of waiting `max_batch_delay_ms`. IronRSL
    /// always waits for the incomplete-batch timer, which puts the whole batch delay on every
    /// request at low load; proposing when idle keeps batching under load and costs nothing in
    /// safety (when a leader nominates is a liveness and performance choice only). `false`
    /// gives the original's behaviour.
    pub propose_when_idle: bool,
    /// State transfer cuts the executor's snapshot into chunks of this many bytes, one per
    /// message, so a snapshot of any size gets through (it must leave room in a datagram).
    pub state_chunk_bytes: usize,
    /// The client session table holds at most this many sessions (the last reply per client);
    /// beyond it the session idle longest is evicted, and its client's next request at or below
    /// the expiry watermark is refused with `SessionExpired` rather than risk executing it twice.
    /// It bounds the replica's memory and every snapshot; set it above the number of clients
    /// active at once.
    pub max_client_sessions: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_log_length: 7,
            baseline_view_timeout_ms: 1000,
            max_view_timeout_ms: 60_000,
            heartbeat_period_ms: 100,
            max_batch_size: 32,
            max_batch_delay_ms: 10,
            max_request_queue: 1024,
            propose_when_idle: true,
            state_chunk_bytes: 32_000,
            max_client_sessions: 10_000,
        }
    }
}

impl Params {
    /// The heartbeat timer's duration.
    pub(crate) fn heartbeat_period(&self) -> std::ops::Range<Duration> {
        let d = Duration::from_millis(self.heartbeat_period_ms);
        d..d
    }

    /// The batch timer's duration.
    pub(crate) fn batch_delay(&self) -> std::ops::Range<Duration> {
        let d = Duration::from_millis(self.max_batch_delay_ms);
        d..d
    }
}

/// Settings that exist only to check the protocol: a bound that keeps a model finite, reductions
/// that are sound only under a particular network, and deliberately broken variants. The
/// default is the runtime's behaviour (no bound, no reduction, no mutation); models derive theirs
/// in one place, the model builder, from the network they run under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelSwitches {
    /// A replica never suspects a view numbered `max_view` or higher, so at most `max_view` view
    /// changes happen. `None` at run time.
    pub max_view: Option<u64>,
    /// Send a heartbeat as soon as its content (view, suspicion, checkpoint) changes, and never
    /// on a timer; no vote repair, no client retransmission. Sound only on a lossless
    /// duplicating network: there a message can be delayed arbitrarily and delivered any number
    /// of times, so sending it at the earliest moment covers every later resend (it only adds
    /// behaviours), while periodic resends and the timers' interleavings multiply states.
    /// `false` at run time, where messages get lost and are resent on timers.
    pub eager_heartbeats: bool,
    /// Whether replicas report their checkpoints in heartbeats, which drives log truncation.
    /// Always on at run time. A model may turn it off when its few requests fit in
    /// `max_log_length` anyway: the checkpoint heartbeats and their deliveries multiply the state
    /// space about 300-fold (measured: 1,785 vs 567,454 unique states for one request).
    pub report_checkpoints: bool,
    /// Timers carry no time: a model fires any armed timer at any moment, whatever its duration,
    /// so a replica keeps no durations (the view timeout stays at its baseline instead of
    /// doubling on each view change and resetting after a quiet epoch). Nothing but the timer's
    /// duration reads it, so this changes no behaviour the model can show; what it saves is a
    /// field that split every model state by a number no action looks at (measured: 1.6 times
    /// fewer replica-state combinations with one view change). `false` at run time and in the
    /// simulator, where durations are real.
    pub timeless: bool,
    /// Replicas count their restarts ([`ReplicaState::restarts`](super::ReplicaState)), so a
    /// model can bound the crashes of a whole run rather than only those down at once. `false`
    /// at run time and in the simulator.
    pub counts_restarts: bool,
    /// A deliberately broken variant, for tests and demonstrations only. `None` in production.
    pub mutation: Option<Mutation>,
}

impl Default for ModelSwitches {
    fn default() -> Self {
        ModelSwitches {
            max_view: None,
            eager_heartbeats: false,
            report_checkpoints: true,
            timeless: false,
            counts_restarts: false,
            mutation: None,
        }
    }
}

impl ModelSwitches {
    /// Repair lost votes: on each heartbeat tick a proposer resends its 1a (in phase 1) or the 2a
    /// of its proposed but unexecuted slots (in phase 2), and an acceptor answers a duplicate 1a
    /// or 2a with its 1b or 2b again. IronRSL has none of this, so one lost 1b, 2a or 2b stalls
    /// the log until a view change (seconds). Always at run time; off with `eager_heartbeats`,
    /// since there every message can be redelivered anyway and the resends would only multiply
    /// transitions.
    pub(crate) fn repair_lost_votes(&self) -> bool {
        !self.eager_heartbeats
    }

    /// Whether clients retransmit: always at run time; not where `eager_heartbeats` makes every
    /// request redeliverable, nor with the `ClientNeverRetransmits` mutation.
    pub(crate) fn client_retransmits(&self) -> bool {
        !self.eager_heartbeats && !self.has(Mutation::ClientNeverRetransmits)
    }

    /// Whether `m` is switched on.
    pub fn has(&self, m: Mutation) -> bool {
        self.mutation == Some(m)
    }
}

mutations! {
    /// A deliberately broken protocol variant. Each one must be caught: the safety ones by a safety
    /// property (`tests/rsl_mutations.rs`), the liveness ones by the liveness checkers
    /// (`tests/liveness.rs`); the tests snapshot the counterexamples.
    pub enum Mutation {
        /// The acceptor accepts a 2a whose ballot is below the one it promised.
        AcceptBelowPromise => "accept-below-promise",
        /// The proposer ignores the votes reported in 1b messages and proposes fresh requests.
        IgnoreOneBVotes => "ignore-1b-votes",
        /// The learner decides a slot on the first 2b, without a quorum.
        DecideWithoutQuorum => "decide-without-quorum",
        /// The executor ignores the session table and executes a retransmitted request again.
        ExecuteTwice => "execute-twice",
        /// The acceptor truncates its log at the highest checkpoint any replica reported, not at the
        /// one a quorum reached.
        TruncateBeyondQuorum => "truncate-beyond-quorum",
        /// The executor executes a request from a client without a session even at or below the
        /// expiry watermark, as if an evicted session were a new one: a retransmission of a request
        /// executed before the eviction runs again.
        ExecuteExpired => "execute-expired",
        /// A restarted replica comes back without its votes.
        ForgetVotesOnRestart => "forget-votes-on-restart",
        /// A replica never suspects its view's leader, so no view change ever happens: after the
        /// leader crashes nothing moves (a liveness bug: safety still holds).
        NeverSuspect => "never-suspect",
        /// A client sends each request once and never retransmits: over a lossy network one lost
        /// request or reply leaves it waiting forever (a liveness bug).
        ClientNeverRetransmits => "client-never-retransmits",
        /// A client takes a reply to any of its earlier requests (a late or duplicated copy) as
        /// the answer to the outstanding one: its sequence-number filter is `<=` instead of `==`.
        /// Caught by linearizability only because the history records what the client's own
        /// handler took.
        ClientAcceptsStaleReply => "client-accepts-stale-reply",
    }
}
