//! IronKV's protocol parameters, its model-only switches and its deliberately broken variants.

use serde::{Deserialize, Serialize};

use super::types::KvTimer;

/// IronKV's protocol parameters for hosts and clients: what a cluster file's `[params]` table
/// holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvParams {
    /// Retransmission period in milliseconds.
    pub retransmit_ms: u64,
    /// A host's delegation map holds at most this many ranges; a shard request that would need
    /// more is refused.
    pub max_delegations: usize,
    /// At most this many messages wait for an ack per channel; a host does not accept a request
    /// whose reply it could not queue (the sender retransmits it later).
    pub max_unacked: usize,
    /// A shard request is refused if its `Delegate` would carry more than this many bytes of
    /// pairs (estimated: 16 bytes per pair plus the value): the message must fit one datagram,
    /// or the range would wait in the unacked queue for ever. IronKV bounded a delegated range
    /// to fewer than 62 keys instead.
    pub max_delegate_bytes: usize,
    /// A durable host writes a whole snapshot after this many journal records (and the log
    /// starts again empty): it bounds the log a restart replays, at the cost of rewriting the
    /// table once per this many records.
    pub snapshot_every: u64,
    /// A host keeps at most this many client channels. A new client beyond it closes the
    /// channel of the incarnation with the lowest epoch (the clock when it started), whose later
    /// messages are refused with `Closed`: it must start again as a new incarnation. Bounds a
    /// host's memory however many clients come and go.
    pub max_client_channels: usize,
    /// A host closes a client channel that carried nothing for between one and two of these
    /// periods, in milliseconds (see `max_client_channels` for what closing means). 0: never.
    pub client_idle_close_ms: u64,
}

impl Default for KvParams {
    fn default() -> Self {
        KvParams {
            retransmit_ms: 200,
            max_delegations: 64,
            max_unacked: 1024,
            max_delegate_bytes: 60_000,
            snapshot_every: 200_000,
            max_client_channels: 10_000,
            client_idle_close_ms: 60_000,
        }
    }
}

impl KvParams {
    /// The retransmission timer's period.
    pub(crate) fn retransmit_period(&self) -> std::ops::Range<std::time::Duration> {
        let d = std::time::Duration::from_millis(self.retransmit_ms);
        d..d
    }
}

/// Settings that exist only to check IronKV: a reduction sound only on one network, the bound
/// that keeps a model finite, and deliberately broken variants. The default is the runtime's
/// behaviour; models derive theirs in the model builder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvModelSwitches {
    /// Whether to retransmit at all: always at run time; a model on a lossless duplicating
    /// network turns it off (there the message already sent can be delivered again at any time,
    /// which is what a retransmission would add).
    pub retransmit: bool,
    /// A client follows at most this many redirects for one operation, then gives up on it
    /// (`None`: no bound, as at run time). Models need the bound: while a delegation is in
    /// flight, the old owner redirects to the new one and the new one (which does not know yet)
    /// back to the old, each time on a fresh sequence number, so without it the state space is
    /// infinite.
    pub max_redirects: Option<u32>,
    /// Whether hosts sweep idle client channels on a timer (`client_idle_close_ms`): always at
    /// run time; a model leaves it off unless asked, since the sweep timer multiplies its states.
    pub idle_sweep: bool,
    /// Hosts count their restarts (`HostStorage::restarts`), so a model can bound the crashes
    /// of a whole run rather than only those down at once. `false` at run time and in the
    /// simulator.
    pub counts_restarts: bool,
    /// A deliberately broken variant, or `None`.
    pub mutation: Option<KvMutation>,
}

impl Default for KvModelSwitches {
    fn default() -> Self {
        KvModelSwitches {
            retransmit: true,
            max_redirects: None,
            idle_sweep: true,
            counts_restarts: false,
            mutation: None,
        }
    }
}

impl KvModelSwitches {
    /// Whether SingleDelivery resends on a timer: always at run time; not where the model's
    /// lossless duplicating network makes it redundant, nor with the `NeverRetransmit` mutation.
    pub fn retransmits(&self) -> bool {
        self.retransmit && !self.has(KvMutation::NeverRetransmit)
    }

    /// The retransmission timer to arm after a send, if SingleDelivery retransmits.
    pub(crate) fn retransmit_timer(
        &self,
        p: &KvParams,
    ) -> Option<(KvTimer, std::ops::Range<std::time::Duration>)> {
        self.retransmits()
            .then(|| (KvTimer::Retransmit, p.retransmit_period()))
    }

    /// The idle-sweep timer, if hosts sweep.
    pub(crate) fn idle_sweep_timer(
        &self,
        p: &KvParams,
    ) -> Option<(KvTimer, std::ops::Range<std::time::Duration>)> {
        (self.idle_sweep && p.client_idle_close_ms > 0).then(|| {
            let d = std::time::Duration::from_millis(p.client_idle_close_ms);
            (KvTimer::IdleSweep, d..d)
        })
    }

    /// Whether `m` is switched on.
    pub fn has(&self, m: KvMutation) -> bool {
        self.mutation == Some(m)
    }
}

mutations! {
    /// A deliberately broken IronKV variant; each must be caught (`tests/kv.rs`).
    pub enum KvMutation {
        /// A host answers a Get from its own table for a key it has delegated away.
        AnswerDelegated => "answer-delegated",
        /// SingleDelivery delivers a duplicate (an already delivered sequence number) again, once
        /// per channel.
        AcceptDuplicate => "accept-duplicate",
        /// A shard request is honoured when the host owns only part of the range.
        PartialShard => "partial-shard",
        /// A delegation drops one of the range's pairs.
        DropPair => "drop-pair",
        /// SingleDelivery never retransmits (a liveness bug over a lossy network).
        NeverRetransmit => "never-retransmit",
        /// A host takes a message of an incarnation whose channel it closed as a new channel's
        /// (ignoring the watermark): a late copy of an old request is delivered again.
        ReopenClosed => "reopen-closed-channel",
        /// A restarted host ignores what it stored and starts as a new host (the root owning
        /// every key again): IronKV's in-memory hosts.
        ForgetStorage => "forget-storage-on-restart",
        /// A client takes a redirect as the answer "absent" instead of following it. Caught by
        /// linearizability because the history records what the client's own handler took.
        ClientTakesRedirectAsAbsent => "client-takes-redirect-as-absent",
        /// The owner of a key redirects a client's Get or Set of it to the next host instead of
        /// answering: with two hosts each sends the client to the other for ever (a liveness
        /// bug; the model's redirect bound makes the client give up, which the KV liveness
        /// exemption must not excuse).
        OwnerRedirects => "owner-redirects",
    }
}
