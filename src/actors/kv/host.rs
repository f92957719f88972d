//! The IronKV host: its belief about who owns what ([`DelegationMap`]), its slice of the hash
//! table, and its [`SingleDelivery`] channels. It answers requests for keys it owns, redirects
//! the others, honours a shard request only for a range it owns entirely, and installs the
//! ranges delegated to it. What it keeps durable, and how, is in `durable`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use stateright::actor::{Actor, Id, Out};

use super::delegation::DelegationMap;
use super::durable::{HostRecord, HostSave, HostStorage, SendDelta};
use super::params::{KvModelSwitches, KvMutation, KvParams};
use super::single_delivery::SingleDelivery;
use super::types::{Key, KvMsg, KvPayload, KvTimer, Value};

/// A host's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostConfig {
    /// Every host, in configuration order; `hosts[0]` is the root that owns everything at start.
    pub hosts: Arc<Vec<Id>>,
    /// This host's index.
    pub me: usize,
    /// Its SingleDelivery epoch (0 in models; the clock at run time).
    pub epoch: u64,
    /// Protocol parameters.
    pub params: KvParams,
    /// Model-only settings ([`KvModelSwitches::default`] at run time).
    pub switches: KvModelSwitches,
    /// What the host stores, and how.
    pub persistence: Persistence,
}

/// How a host stores its durable state (see `durable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// Nothing: a restart starts empty (models without crashes; `--ephemeral` at run time,
    /// unsafe across restarts).
    Off,
    /// A whole snapshot after every step that changed the state (models with crashes).
    Snapshots,
    /// Journal records per step, a snapshot every `KvParams::snapshot_every` records (run time).
    Journal,
}

/// Milestones, for the checker's `sometimes` properties and for operators. They are left out
/// of the state's hash (see the `Hash` impl below).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostMilestones {
    /// Installed a delegated range that carried data.
    pub received_data: bool,
    /// Ignored a duplicate (an already delivered sequence number).
    pub ignored_duplicate: bool,
    /// Closed a client channel (beyond `max_client_channels`, or idle).
    pub closed_channel: bool,
    /// Refused a message of an incarnation whose channel it closed.
    pub refused_closed: bool,
}

/// Hashes nothing, as RSL's replica milestones (`crate::actors::rsl::replica::Milestones`,
/// whose doc has the argument): no step reads a milestone, only `sometimes` properties do, so
/// every checker identifies states that differ only by them, and a step that sets only a mark
/// is a self-loop of the view that the engine still judges (`Search::judge_step`). The lasso
/// checker makes no edge of such a step and replays along fingerprints (see "twins" in
/// `check::lasso`). `check-kv` went from 39,621 states to 6,996, with every `sometimes`
/// property still reached. Equality still compares them.
impl std::hash::Hash for HostMilestones {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// A host's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostState {
    /// Who owns what, as far as this host knows.
    pub delegation: DelegationMap,
    /// This host's pairs.
    pub table: BTreeMap<Key, Value>,
    /// Reliable channels.
    pub sd: SingleDelivery<KvPayload>,
    /// Milestones.
    pub milestones: HostMilestones,
    /// Journal records of the current step, not saved yet (empty unless journaling).
    pub journal: Vec<HostRecord>,
    /// Records journaled since the last snapshot.
    pub journaled: u64,
    /// Client channels that carried nothing since the last idle sweep (kept only while hosts
    /// sweep): the next sweep closes them.
    pub quiet: BTreeSet<Id>,
    /// Ghost: [`HostStorage::restarts`], carried so that every snapshot keeps it.
    pub restarts: u8,
}

impl HostState {
    /// The durable part of the state.
    pub fn storage(&self) -> HostStorage {
        HostStorage {
            delegation: self.delegation.clone(),
            table: self.table.clone(),
            sd: self.sd.clone(),
            restarts: self.restarts,
        }
    }
}

/// The host actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host {
    /// Its configuration.
    pub cfg: Arc<HostConfig>,
}

impl Host {
    /// A host with this configuration.
    pub fn new(cfg: HostConfig) -> Self {
        Host { cfg: Arc::new(cfg) }
    }

    fn me(&self) -> Id {
        self.cfg.hosts[self.cfg.me]
    }

    fn params(&self) -> &KvParams {
        &self.cfg.params
    }

    fn switches(&self) -> &KvModelSwitches {
        &self.cfg.switches
    }

    /// Where this host sends a client's Get (`write: false`) or Set of `key`: `None` when it
    /// answers it itself, else the host it redirects the client to (the owner in its delegation
    /// map). The request handler decides by it, and so does the KV liveness exemption, which
    /// follows these redirects to tell a route that leads to an answer from a redirect loop.
    pub fn redirect_for(&self, s: &HostState, key: &Key, write: bool) -> Option<Id> {
        let me = self.me();
        let owner = s.delegation.owner(key);
        if owner == me && self.switches().has(KvMutation::OwnerRedirects) {
            let hosts = &self.cfg.hosts;
            return Some(hosts[(self.cfg.me + 1) % hosts.len()]);
        }
        let answers_delegated = !write && self.switches().has(KvMutation::AnswerDelegated);
        if owner == me || answers_delegated {
            None
        } else {
            Some(owner)
        }
    }

    /// Whether `id` is a client (any peer that is not a host of the configuration).
    fn is_client(&self, id: Id) -> bool {
        !self.cfg.hosts.contains(&id)
    }

    /// Keeps at most `max_client_channels` client channels: a new one (from `src`) closes those
    /// of the incarnations with the lowest epochs (see `SingleDelivery::close_idle` for what
    /// that means for exactly-once).
    fn close_idle_clients(&self, s: &mut HostState, src: Id) {
        let max = self.params().max_client_channels;
        let closed = s.sd.close_idle(|id| self.is_client(id), max, src);
        if closed.is_empty() {
            return;
        }
        s.milestones.closed_channel = true;
        for peer in closed {
            self.journal(s, || HostRecord::Channel {
                peer,
                send: None,
                recv: None,
            });
        }
        let w = s.sd.closed_through;
        self.journal(s, || HostRecord::ClosedThrough(w));
    }

    /// The idle sweep: closes the client channels quiet since the last sweep (so a channel is
    /// closed after between one and two quiet periods), then marks every client channel quiet.
    /// Returns whether it closed any.
    fn sweep_idle_clients(&self, s: &mut HostState) -> bool {
        let quiet: Vec<Id> = std::mem::take(&mut s.quiet)
            .into_iter()
            .filter(|id| s.sd.recv.contains_key(id) || s.sd.send.contains_key(id))
            .collect();
        s.sd.close(&quiet);
        for &peer in &quiet {
            self.journal(s, || HostRecord::Channel {
                peer,
                send: None,
                recv: None,
            });
        }
        if !quiet.is_empty() {
            s.milestones.closed_channel = true;
            let w = s.sd.closed_through;
            self.journal(s, || HostRecord::ClosedThrough(w));
        }
        s.quiet =
            s.sd.recv
                .keys()
                .chain(s.sd.send.keys())
                .filter(|id| self.is_client(**id))
                .copied()
                .collect();
        !quiet.is_empty()
    }

    /// Adds a journal record (built only if the host journals).
    fn journal(&self, s: &mut HostState, record: impl FnOnce() -> HostRecord) {
        if self.cfg.persistence == Persistence::Journal {
            s.journal.push(record());
        }
    }

    /// Saves what the step changed, before its messages leave: the whole state (models), or the
    /// step's journal records plus the channels it touched (its source, and every peer it sent
    /// to), or a snapshot once `snapshot_every` records went to the log.
    fn persist(
        &self,
        state: &mut Cow<HostState>,
        changed: bool,
        src: Option<Id>,
        o: &mut Out<Self>,
    ) {
        match self.cfg.persistence {
            Persistence::Off => {}
            Persistence::Snapshots => {
                if changed {
                    o.save(HostSave::Snapshot(state.storage()));
                }
            }
            Persistence::Journal => {
                if !changed {
                    return;
                }
                // The step's new messages, by peer (only a step sends new ones: a timer resends).
                let mut sent: BTreeMap<Id, Vec<(u64, KvPayload)>> =
                    src.into_iter().map(|s| (s, vec![])).collect();
                for c in o.iter() {
                    if let stateright::actor::Command::Send(
                        dst,
                        KvMsg::Single { seqno, payload, .. },
                    ) = c
                    {
                        sent.entry(*dst)
                            .or_default()
                            .push((*seqno, payload.clone()));
                    }
                }
                let s = state.to_mut();
                for (peer, sent) in sent {
                    let record = HostRecord::Channel {
                        peer,
                        send: s.sd.send.get(&peer).map(|ch| SendDelta::of(ch, sent)),
                        recv: s.sd.recv.get(&peer).copied(),
                    };
                    s.journal.push(record);
                }
                s.journaled = s.journaled.saturating_add(s.journal.len() as u64);
                if s.journaled >= self.params().snapshot_every {
                    s.journal.clear();
                    s.journaled = 0;
                    o.save(HostSave::Snapshot(s.storage()));
                } else {
                    o.save(HostSave::Journal(std::mem::take(&mut s.journal)));
                }
            }
        }
    }

    /// Sends `payload` reliably; arms the retransmission timer.
    fn send(&self, s: &mut HostState, dst: Id, payload: KvPayload, o: &mut Out<Self>) {
        let p = self.params();
        let timer = self.switches().retransmit_timer(p);
        s.sd.send_out(dst, payload, p.max_unacked, timer, o);
    }

    /// Whether handling `payload` from `src` needs room on a channel that has none: the reply
    /// (or the delegation) must be queued, never dropped, so the request is not even
    /// acknowledged; its sender retransmits it later.
    ///
    /// Likewise a `Delegate` that would grow this host's delegation map beyond
    /// `max_delegations` (IronKV bounds the map at both ends; the sender checked only its own):
    /// unacknowledged, it stays with the sender, who resends it, rather than be dropped with
    /// the range it carries.
    fn blocked(&self, s: &HostState, src: Id, payload: &KvPayload) -> bool {
        let dst = match payload {
            KvPayload::Get { .. } | KvPayload::Set { .. } => src,
            KvPayload::Shard { recipient, .. } => *recipient,
            KvPayload::Delegate { range, .. } => {
                let mut after = s.delegation.clone();
                after.set(range, self.me());
                return after.len() > self.params().max_delegations;
            }
            _ => return false,
        };
        s.sd.is_full(dst, self.params().max_unacked)
    }

    fn handle(&self, s: &mut HostState, src: Id, payload: KvPayload, o: &mut Out<Self>) {
        let me = self.me();
        let p = self.params();
        match payload {
            KvPayload::Get { key } => {
                let reply = match self.redirect_for(s, &key, false) {
                    None => {
                        let value = s.table.get(&key).cloned();
                        KvPayload::Reply {
                            key,
                            value,
                            write: false,
                        }
                    }
                    Some(owner) => KvPayload::Redirect { key, owner },
                };
                self.send(s, src, reply, o);
            }
            KvPayload::Set { key, value } => {
                let reply = if let Some(owner) = self.redirect_for(s, &key, true) {
                    KvPayload::Redirect { key, owner }
                } else {
                    match &value {
                        Some(v) => s.table.insert(key.clone(), v.clone()),
                        None => s.table.remove(&key),
                    };
                    self.journal(s, || match &value {
                        Some(v) => HostRecord::Put(key.clone(), v.clone()),
                        None => HostRecord::Remove(key.clone()),
                    });
                    KvPayload::Reply {
                        key,
                        value,
                        write: true,
                    }
                };
                self.send(s, src, reply, o);
            }
            KvPayload::Shard { range, recipient } => {
                let owned = if self.switches().has(KvMutation::PartialShard) {
                    s.delegation.owns_some(&range, me)
                } else {
                    s.delegation.owns_all(&range, me)
                };
                // Setting a range adds at most two entries to the map.
                let room = s.delegation.len() + 2 <= p.max_delegations;
                let bytes: usize = s
                    .table
                    .iter()
                    .filter(|(k, _)| range.contains(k))
                    .map(|(k, v)| 10 + k.as_bytes().len() + v.len())
                    .sum();
                let fits = bytes <= p.max_delegate_bytes;
                // Only to another host of the configuration: a range handed to any other
                // address (an admin's typo) would be neither served nor ever acknowledged.
                let to_host = recipient != me && self.cfg.hosts.contains(&recipient);
                if !to_host || !owned || !room || !fits || range.is_empty() {
                    return;
                }
                let keys: Vec<Key> = s
                    .table
                    .keys()
                    .filter(|k| range.contains(k))
                    .cloned()
                    .collect();
                let mut pairs = BTreeMap::new();
                for k in keys {
                    let v = s.table.remove(&k).expect("listed key");
                    pairs.insert(k, v);
                }
                if self.switches().has(KvMutation::DropPair) {
                    pairs.pop_first();
                }
                s.delegation.set(&range, recipient);
                self.journal(s, || HostRecord::RemoveRange(range.clone()));
                self.journal(s, || HostRecord::Owner(range.clone(), recipient));
                let delegate = KvPayload::Delegate {
                    range,
                    pairs: Arc::new(pairs),
                };
                self.send(s, recipient, delegate, o);
            }
            KvPayload::Delegate { range, pairs } => {
                s.delegation.set(&range, me);
                if !pairs.is_empty() {
                    s.milestones.received_data = true;
                }
                s.table
                    .extend(pairs.iter().map(|(k, v)| (k.clone(), v.clone())));
                self.journal(s, || HostRecord::Owner(range.clone(), me));
                for (k, v) in pairs.iter() {
                    self.journal(s, || HostRecord::Put(k.clone(), v.clone()));
                }
            }
            KvPayload::Reply { .. } | KvPayload::Redirect { .. } => {}
        }
    }
}

impl Actor for Host {
    type Msg = KvMsg;
    type Timer = KvTimer;
    type State = HostState;
    type Storage = HostSave;
    type Random = ();

    fn name(&self) -> String {
        format!("host {}", self.cfg.me)
    }

    /// Starts from the stored state if there is one (keeping its epoch, so peers and clients go
    /// on with the same channels, and resending what was unacked), else as a new host: the root
    /// owns every key. A new journaling host saves its first snapshot before anything else, so
    /// its epoch is durable before any message carries it.
    fn on_start(&self, _id: Id, storage: &Option<HostSave>, o: &mut Out<Self>) -> HostState {
        let stored = match storage {
            Some(HostSave::Snapshot(st)) if !self.switches().has(KvMutation::ForgetStorage) => {
                Some(st.clone())
            }
            _ => None,
        };
        let fresh = stored.is_none();
        // A model that counts restarts saves at every start: a restart's count must reach the
        // storage, and a host must have storage from its first start on, or a crash before its
        // first save would restart it from nothing, uncounted. (The model's boundary stops a run
        // long before 255 restarts; saturating keeps even a boundless one from overflowing.)
        let counts = self.switches().counts_restarts;
        let st = stored.unwrap_or_else(|| HostStorage {
            delegation: DelegationMap::new(self.cfg.hosts[0]),
            table: BTreeMap::new(),
            sd: SingleDelivery::new(self.cfg.epoch),
            restarts: 0,
        });
        let restarts = match storage {
            Some(HostSave::Snapshot(old)) if counts => old.restarts.saturating_add(1),
            _ => st.restarts,
        };
        let s = HostState {
            delegation: st.delegation,
            table: st.table,
            sd: st.sd,
            milestones: HostMilestones::default(),
            journal: Vec::new(),
            journaled: 0,
            quiet: BTreeSet::new(),
            restarts,
        };
        if let Some((t, period)) = self.switches().idle_sweep_timer(self.params()) {
            o.set_timer(t, period);
        }
        if s.sd.has_unacked() {
            if let Some((t, period)) = self.switches().retransmit_timer(self.params()) {
                o.set_timer(t, period);
            }
        }
        if (fresh && self.cfg.persistence == Persistence::Journal) || counts {
            o.save(HostSave::Snapshot(s.storage()));
        }
        s
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<HostState>, src: Id, msg: KvMsg, o: &mut Out<Self>) {
        let changed = match msg {
            KvMsg::Ack { epoch, from, seqno } => {
                let acked = state.sd.acks_something(src, epoch, from, seqno);
                if SingleDelivery::on_ack(state, src, epoch, from, seqno)
                    && self.switches().retransmits()
                {
                    o.cancel_timer(KvTimer::Retransmit);
                }
                if acked && state.quiet.contains(&src) {
                    state.to_mut().quiet.remove(&src);
                }
                acked
            }
            KvMsg::Closed { .. } => false, // hosts close channels; none closes theirs
            KvMsg::Single {
                epoch,
                to,
                seqno,
                payload,
            } => {
                let client = self.is_client(src);
                if client
                    && state.sd.is_closed(src, epoch)
                    && !self.switches().has(KvMutation::ReopenClosed)
                {
                    let watermark = state.sd.closed_through.unwrap_or(0);
                    o.send(src, KvMsg::Closed { epoch, watermark });
                    if !state.milestones.refused_closed {
                        state.to_mut().milestones.refused_closed = true;
                    }
                    return;
                }
                if self.blocked(state, src, &payload) {
                    return; // no ack: the sender retransmits once we have room
                }
                let dupes = self.switches().has(KvMutation::AcceptDuplicate);
                if !dupes && !self.switches().retransmit && state.sd.is_old(src, epoch, to, seqno) {
                    // A redelivery by the model's duplicating network: nobody retransmits
                    // there, so the ack already sent is all a re-ack would say.
                    if !state.milestones.ignored_duplicate {
                        state.to_mut().milestones.ignored_duplicate = true;
                    }
                    return;
                }
                let s = state.to_mut();
                s.quiet.remove(&src);
                let new_channel = client && !s.sd.recv.contains_key(&src);
                let r = s.sd.receive(src, epoch, to, seqno, payload, dupes);
                if r.duplicate {
                    s.milestones.ignored_duplicate = true;
                }
                if let Some(ack) = r.ack {
                    o.send(src, ack);
                }
                if let Some(p) = r.deliver {
                    self.handle(s, src, p, o);
                }
                if new_channel {
                    self.close_idle_clients(s, src);
                }
                true
            }
        };
        self.persist(state, changed, Some(src), o);
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<HostState>, t: &KvTimer, o: &mut Out<Self>) {
        match t {
            KvTimer::Retransmit => {
                if let Some(timer) = self.switches().retransmit_timer(self.params()) {
                    state.sd.resend_unacked(timer, o);
                }
            }
            KvTimer::IdleSweep => {
                let Some((t, period)) = self.switches().idle_sweep_timer(self.params()) else {
                    return;
                };
                o.set_timer(t, period);
                let closed = self.sweep_idle_clients(state.to_mut());
                self.persist(state, closed, None, o);
            }
            KvTimer::GiveUp => {} // a client's timer
        }
    }
}

impl AsRef<SingleDelivery<KvPayload>> for HostState {
    fn as_ref(&self) -> &SingleDelivery<KvPayload> {
        &self.sd
    }
}

impl AsMut<SingleDelivery<KvPayload>> for HostState {
    fn as_mut(&mut self) -> &mut SingleDelivery<KvPayload> {
        &mut self.sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::kv::KeyRange;

    fn host(params: KvParams) -> Host {
        Host::new(HostConfig {
            hosts: Arc::new(vec![Id::from(0), Id::from(1)]),
            me: 0,
            epoch: 0,
            params,
            switches: KvModelSwitches::default(),
            persistence: Persistence::Off,
        })
    }

    /// Delivers `payloads` in order from the admin (id 9) and returns the state and what the
    /// last step sent.
    fn deliver(h: &Host, payloads: &[KvPayload]) -> (HostState, Vec<KvMsg>) {
        let mut o = Out::new();
        let mut state = h.on_start(Id::from(0), &None, &mut o);
        let mut sent = Vec::new();
        for (n, p) in payloads.iter().enumerate() {
            let mut o = Out::new();
            let mut cow = Cow::Owned(state);
            let msg = KvMsg::Single {
                epoch: 0,
                to: 0,
                seqno: n as u64 + 1,
                payload: p.clone(),
            };
            h.on_msg(Id::from(0), &mut cow, Id::from(9), msg, &mut o);
            state = cow.into_owned();
            sent = o
                .into_iter()
                .filter_map(|c| match c {
                    stateright::actor::Command::Send(_, m) => Some(m),
                    _ => None,
                })
                .collect();
        }
        (state, sent)
    }

    /// A one-byte key: byte order is number order, so the tests can count.
    fn k(n: u64) -> Key {
        Key(vec![n as u8])
    }

    fn set(key: u64, len: usize) -> KvPayload {
        KvPayload::Set {
            key: k(key),
            value: Some(vec![7; len]),
        }
    }

    fn shard(lo: u64, hi: Option<u64>, to: usize) -> KvPayload {
        KvPayload::Shard {
            range: KeyRange::new(k(lo), hi.map(k)),
            recipient: Id::from(to),
        }
    }

    fn delegated(sent: &[KvMsg]) -> bool {
        sent.iter().any(|m| {
            matches!(
                m,
                KvMsg::Single {
                    payload: KvPayload::Delegate { .. },
                    ..
                }
            )
        })
    }

    #[test]
    fn a_shard_moves_the_range_with_its_pairs() {
        let (s, sent) = deliver(
            &host(KvParams::default()),
            &[set(3, 4), set(12, 4), shard(10, None, 1)],
        );
        assert!(delegated(&sent));
        assert_eq!(s.table.keys().cloned().collect::<Vec<_>>(), vec![k(3)]);
        assert_eq!(s.delegation.owner(&k(12)), Id::from(1));
    }

    #[test]
    fn a_shard_to_an_address_that_is_not_a_host_is_refused() {
        let (s, sent) = deliver(&host(KvParams::default()), &[set(3, 4), shard(0, None, 5)]);
        assert!(!delegated(&sent));
        assert_eq!(s.table.len(), 1);
        assert_eq!(s.delegation.owner(&k(3)), Id::from(0));
    }

    #[test]
    fn a_shard_whose_pairs_would_not_fit_a_datagram_is_refused() {
        let params = KvParams {
            max_delegate_bytes: 100,
            ..KvParams::default()
        };
        let (_, sent) = deliver(
            &host(params.clone()),
            &[set(1, 60), set(2, 60), shard(0, None, 1)],
        );
        assert!(!delegated(&sent));
        let (_, sent) = deliver(&host(params), &[set(1, 60), set(2, 60), shard(2, None, 1)]);
        assert!(delegated(&sent), "one pair fits");
    }

    #[test]
    fn a_shard_that_would_overfill_the_delegation_map_is_refused() {
        let params = KvParams {
            max_delegations: 3,
            ..KvParams::default()
        };
        // The first move splits the map into three ranges; a second would need five.
        let (s, sent) = deliver(
            &host(params),
            &[shard(10, Some(20), 1), shard(30, Some(40), 1)],
        );
        assert!(!delegated(&sent));
        assert_eq!(s.delegation.len(), 3);
        assert_eq!(s.delegation.owner(&k(35)), Id::from(0));
    }

    /// Regression: a recipient installed every `Delegate`, however large its map grew (only the
    /// sender checked the bound). One that would overfill the map is now left unacknowledged.
    #[test]
    fn a_delegate_that_would_overfill_the_recipients_map_is_not_taken() {
        let params = KvParams {
            max_delegations: 3,
            ..KvParams::default()
        };
        let delegate = |lo: u64, hi: u64| KvPayload::Delegate {
            range: KeyRange::new(k(lo), Some(k(hi))),
            pairs: Arc::new(BTreeMap::from([(k(lo), vec![1])])),
        };
        // Host 0 gives [5, 50) to host 1 (its map: three ranges); taking [10, 20) back would
        // make five.
        let (s, sent) = deliver(
            &host(params.clone()),
            &[shard(5, Some(50), 1), delegate(10, 20)],
        );
        assert_eq!(s.delegation.len(), 3);
        assert!(!s.table.contains_key(&k(10)));
        assert!(sent.is_empty(), "the Delegate was acknowledged: {sent:?}");
        // Taking back [5, 50) whole fits (the map coalesces to one range).
        let (s, sent) = deliver(&host(params), &[shard(5, Some(50), 1), delegate(5, 50)]);
        assert_eq!(s.delegation.len(), 1);
        assert!(s.table.contains_key(&k(5)) && !sent.is_empty());
    }

    /// Regression: every send re-armed the one retransmission timer, and at run time re-arming
    /// pushes the deadline out, so a host that kept sending (a steady client load) never resent
    /// a lost reply or `Delegate`. The timer is now armed only when the first message starts
    /// waiting for an ack: a `Delegate` followed by a stream of replies arms it once.
    #[test]
    fn sends_while_something_is_unacked_do_not_postpone_the_retransmission_timer() {
        let h = host(KvParams::default());
        let mut state = h.on_start(Id::from(0), &None, &mut Out::new());
        let mut arms = 0;
        let mut step = |state: HostState, seqno: u64, payload: KvPayload| -> HostState {
            let mut o = Out::new();
            let mut cow = Cow::Owned(state);
            let msg = KvMsg::Single {
                epoch: 0,
                to: 0,
                seqno,
                payload,
            };
            h.on_msg(Id::from(0), &mut cow, Id::from(9), msg, &mut o);
            arms += o
                .iter()
                .filter(|c| {
                    matches!(
                        c,
                        stateright::actor::Command::SetTimer(KvTimer::Retransmit, _)
                    )
                })
                .count();
            cow.into_owned()
        };
        state = step(state, 1, shard(10, None, 1));
        for seqno in 2..50 {
            state = step(state, seqno, KvPayload::Get { key: k(1) });
        }
        assert!(state.sd.has_unacked());
        assert_eq!(arms, 1, "the timer was re-armed by later sends");
    }

    /// In a model that bounds all crashes a restart is counted and saved in a snapshot (the
    /// model's boundary reads it); at run time nothing is counted, and the count never reaches
    /// the bytes on disk.
    #[test]
    fn restarts_are_counted_only_where_a_model_asks_and_never_written_to_disk() {
        let restart = |counts_restarts: bool, from: &HostSave| -> Option<HostStorage> {
            let h = Host::new(HostConfig {
                hosts: Arc::new(vec![Id::from(0), Id::from(1)]),
                me: 0,
                epoch: 0,
                params: KvParams::default(),
                switches: KvModelSwitches {
                    counts_restarts,
                    ..KvModelSwitches::default()
                },
                persistence: Persistence::Snapshots,
            });
            let mut o = Out::new();
            let s = h.on_start(Id::from(0), &Some(from.clone()), &mut o);
            let saved = o.into_iter().find_map(|c| match c {
                stateright::actor::Command::Save(HostSave::Snapshot(st)) => Some(st),
                _ => None,
            });
            if let Some(st) = &saved {
                assert_eq!(st.restarts, s.restarts, "the state and its storage agree");
            }
            saved
        };
        let first = host(KvParams::default())
            .on_start(Id::from(0), &None, &mut Out::new())
            .storage();
        let once = restart(true, &HostSave::Snapshot(first.clone())).unwrap();
        assert_eq!(once.restarts, 1);
        let twice = restart(true, &HostSave::Snapshot(once)).unwrap();
        assert_eq!(twice.restarts, 2);
        assert_eq!(restart(false, &HostSave::Snapshot(first)), None);

        let bytes = postcard::to_allocvec(&twice).unwrap();
        let uncounted = HostStorage {
            restarts: 0,
            ..twice
        };
        assert_eq!(bytes, postcard::to_allocvec(&uncounted).unwrap());
    }
}
