//! What an IronKV host keeps durable, and the journal records that change it.
//!
//! IronKV's hosts keep everything in memory: a crashed host loses its slice of the table, and a
//! restarted one believes again that the root owns every key (two hosts then answer for the same
//! range). Here a host's durable state is [`HostStorage`]: its delegation map, its table slice
//! and its SingleDelivery channels (unacked messages included, so a `Delegate` or reply in
//! flight is resent after a restart, and the receive counters, so a retransmitted `Set` is not
//! applied twice), and its epoch, which a restarted host keeps: peers and clients go on talking to
//! it on the same channels.
//!
//! The host says what to store through `Out::save` with a [`HostSave`], before the step's
//! messages leave (the runtime writes it first, and stops the host if the write fails):
//! - a model saves a whole [`HostSave::Snapshot`] after every step that changed the state (its
//!   states are small and shared);
//! - at run time a host journals: each step saves the [`HostRecord`]s of what it changed
//!   ([`HostSave::Journal`]), appended to a write-ahead log, and every
//!   `KvParams::snapshot_every` records a whole snapshot, after which the log starts empty. A
//!   restart replays the log over the last snapshot ([`HostStorage::apply`]).
//!
//! A test drives hosts with arbitrary messages and checks that replaying every journal a host
//! saved rebuilds exactly its durable state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

use super::delegation::DelegationMap;
use super::single_delivery::{RecvChannel, SendChannel, SingleDelivery};
use super::types::{Key, KeyRange, KvPayload, Value};

/// A host's durable state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostStorage {
    /// Who owns what.
    pub delegation: DelegationMap,
    /// The host's pairs.
    pub table: BTreeMap<Key, Value>,
    /// Its channels and its epoch.
    pub sd: SingleDelivery<KvPayload>,
    /// Ghost: how many times the host restarted from storage, counted only where a model bounds
    /// the crashes of a whole run (`KvModelSwitches::counts_restarts`); no step reads it. Never
    /// written (`serde(skip)`): the on-disk format is the runtime's, which counts nothing.
    #[serde(skip)]
    pub restarts: u8,
}

/// One change to a [`HostStorage`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostRecord {
    /// A pair written.
    Put(Key, Value),
    /// A key deleted.
    Remove(Key),
    /// Every pair of a range removed (it was delegated away).
    RemoveRange(KeyRange),
    /// A range's owner set.
    Owner(KeyRange, Id),
    /// The watermark of closed client channels raised.
    ClosedThrough(Option<u64>),
    /// Both channels with a peer after a step: the receiving one whole (it is small), the
    /// sending one as a change, so that a record does not repeat the messages still unacked
    /// from earlier steps (`None`: no such channel).
    Channel {
        /// The peer.
        peer: Id,
        /// The change to the sending channel to it.
        send: Option<SendDelta>,
        /// The receiving channel from it.
        recv: Option<RecvChannel>,
    },
}

/// What a step did to a sending channel: its address and counter now, the first message still
/// unacked (those before were acked), and the messages the step sent on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SendDelta {
    /// The receiver epoch the channel is addressed to. A change from another non-zero epoch
    /// means the receiver restarted and the channel started afresh.
    pub to_epoch: u64,
    /// The last sequence number used.
    pub last_sent: u64,
    /// Messages below this sequence number are acked.
    pub first_unacked: u64,
    /// The messages the step sent, with their sequence numbers.
    pub sent: Vec<(u64, KvPayload)>,
}

impl SendDelta {
    /// The change from a channel's state after a step in which `sent` went out on it.
    pub fn of(ch: &SendChannel<KvPayload>, sent: Vec<(u64, KvPayload)>) -> Self {
        SendDelta {
            to_epoch: ch.to_epoch,
            last_sent: ch.last_sent,
            first_unacked: ch
                .unacked
                .first()
                .map_or(ch.last_sent.saturating_add(1), |(s, _)| *s),
            sent,
        }
    }

    /// Applies the change to the channel as stored (`None`: none yet).
    fn apply(self, old: Option<SendChannel<KvPayload>>) -> SendChannel<KvPayload> {
        let mut ch = old.unwrap_or_default();
        if ch.to_epoch != 0 && ch.to_epoch != self.to_epoch {
            ch = SendChannel::default();
        }
        ch.to_epoch = self.to_epoch;
        ch.unacked.retain(|(s, _)| *s >= self.first_unacked);
        for (s, p) in self.sent {
            if ch.unacked.last().is_none_or(|(last, _)| *last < s) {
                ch.unacked.push((s, p));
            }
        }
        ch.last_sent = self.last_sent;
        ch
    }
}

/// What a host asks to store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostSave {
    /// The whole durable state (the log, if any, starts again empty after it).
    Snapshot(HostStorage),
    /// Changes to append to the log, in order.
    Journal(Vec<HostRecord>),
}

impl HostStorage {
    /// Applies one journal record.
    pub fn apply(&mut self, r: HostRecord) {
        match r {
            HostRecord::Put(k, v) => {
                self.table.insert(k, v);
            }
            HostRecord::Remove(k) => {
                self.table.remove(&k);
            }
            HostRecord::RemoveRange(range) => {
                self.table.retain(|k, _| !range.contains(k));
            }
            HostRecord::Owner(range, owner) => {
                if !range.is_empty() {
                    self.delegation.set(&range, owner);
                }
            }
            HostRecord::ClosedThrough(w) => {
                self.sd.closed_through = w;
            }
            HostRecord::Channel { peer, send, recv } => {
                let old = self.sd.send.get(&peer).cloned();
                let send = send.map(|d| d.apply(old));
                self.sd.restore_channel(peer, send, recv);
            }
        }
    }
}
