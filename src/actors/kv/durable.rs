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
    /// Both channels with a peer, as they are now (`None`: no such channel).
    Channel {
        /// The peer.
        peer: Id,
        /// The sending channel to it.
        send: Option<SendChannel<KvPayload>>,
        /// The receiving channel from it.
        recv: Option<RecvChannel>,
    },
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
                self.table.retain(|k, _| !range.contains(*k));
            }
            HostRecord::Owner(range, owner) => {
                if !range.is_empty() {
                    self.delegation.set(range, owner);
                }
            }
            HostRecord::Channel { peer, send, recv } => {
                self.sd.restore_channel(peer, send, recv);
            }
        }
    }
}
