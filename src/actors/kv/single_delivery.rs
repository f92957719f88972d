//! SingleDelivery: exactly-once, in-order delivery over a network that loses, duplicates and
//! reorders. Per channel the sender numbers messages from 1 and keeps them until acknowledged
//! (retransmitting them on a timer); the receiver delivers only the next sequence number, acks
//! cumulatively, and ignores everything else. The unacknowledged queue is bounded.
//!
//! Generic over the payload `M`: [`SingleDelivery<M>`] keeps the channels, [`SdMsg<M>`] is what
//! goes on the wire. IronKV uses it for every message, client traffic included.

use std::collections::BTreeMap;

use std::ops::Range;
use std::time::Duration;

use stateright::actor::{Actor, Id, Out};

use serde::{Deserialize, Serialize};
use std::fmt;

/// SingleDelivery's wire message, for any payload type `M` (IronKV's is
/// [`super::KvMsg`] = `SdMsg<KvPayload>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SdMsg<M> {
    /// A payload with its per-channel sequence number.
    Single {
        /// The sender's epoch (see [`SingleDelivery`]); 0 in models.
        epoch: u64,
        /// The receiver's epoch it is addressed to (0: any, not known yet).
        to: u64,
        /// Sequence number on the (sender, receiver) channel, from 1.
        seqno: u64,
        /// The payload.
        payload: M,
    },
    /// Cumulative acknowledgement: every sequence number up to this one was delivered.
    Ack {
        /// The epoch of the channel acknowledged (the original sender's).
        epoch: u64,
        /// The acknowledging receiver's own epoch.
        from: u64,
        /// The highest sequence number delivered.
        seqno: u64,
    },
    /// The receiver closed the channel of the sender's incarnation `epoch` (it keeps a bounded
    /// number of client channels): nothing more of that incarnation will be delivered, and
    /// whether its unacknowledged messages were is unknown. The sender may go on only as a new
    /// incarnation, with an epoch above `watermark`. (Last in the enum: the encoding of the
    /// others is unchanged.)
    Closed {
        /// The sender's epoch whose channel was closed.
        epoch: u64,
        /// The highest epoch of any channel the receiver closed.
        watermark: u64,
    },
}

impl<M: fmt::Display> fmt::Display for SdMsg<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdMsg::Single {
                epoch: 0,
                seqno,
                payload,
                ..
            } => write!(f, "#{seqno} {payload}"),
            SdMsg::Single {
                epoch,
                seqno,
                payload,
                ..
            } => write!(f, "#{epoch}.{seqno} {payload}"),
            SdMsg::Ack {
                epoch: 0, seqno, ..
            } => write!(f, "Ack(#{seqno})"),
            SdMsg::Ack { epoch, seqno, .. } => write!(f, "Ack(#{epoch}.{seqno})"),
            SdMsg::Closed { epoch, watermark } => {
                write!(f, "Closed(epoch {epoch}, watermark {watermark})")
            }
        }
    }
}

/// Per-destination sending state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SendChannel<M> {
    /// The receiver's epoch this channel talks to (0: not known yet). When the receiver turns
    /// up with another epoch (it restarted), the channel starts afresh: what was unacked was
    /// for a process that is gone.
    pub to_epoch: u64,
    /// The last sequence number used.
    pub last_sent: u64,
    /// Sent and not yet acknowledged, in sequence order.
    pub unacked: Vec<(u64, M)>,
}

impl<M> Default for SendChannel<M> {
    fn default() -> Self {
        SendChannel {
            to_epoch: 0,
            last_sent: 0,
            unacked: Vec::new(),
        }
    }
}

/// Per-source receiving state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecvChannel {
    /// The sender's epoch this channel counts in (a sender that restarts with a higher epoch
    /// starts the channel afresh; messages of a lower epoch are stale and ignored).
    pub epoch: u64,
    /// The highest sequence number delivered (all below it were too).
    pub last_delivered: u64,
    /// How many messages were delivered (equals `last_delivered` unless a duplicate was).
    pub delivered: u64,
}

/// What receiving a `Single` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received<M> {
    /// The payload to act on, if this was the next message in order.
    pub deliver: Option<M>,
    /// The ack to send back (`None` for a message of a stale epoch).
    pub ack: Option<SdMsg<M>>,
    /// Whether it was a duplicate (already delivered) that was ignored.
    pub duplicate: bool,
}

/// One actor's SingleDelivery state: its epoch and its channels by peer.
///
/// Epochs are not in IronFleet (its hosts never restart and its clients are fixed); they are
/// our answer to a real network, where a client process starts again, possibly on a port an
/// earlier client used. The new process takes a higher epoch (the runtime gives it the clock):
/// its first message, numbered 1, restarts the receiving channel instead of being ignored as an
/// old duplicate, and the sending channel back to it starts afresh too, addressed to the new
/// epoch, so the old process's unacked replies are neither resent nor mistaken for new ones.
/// Messages and acks addressed to an older incarnation are ignored. In models every epoch is 0
/// and none of this ever triggers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "SdDurable<M>")]
pub struct SingleDelivery<M> {
    /// This actor's epoch, stamped on everything it sends.
    pub epoch: u64,
    /// Sending channels.
    pub send: BTreeMap<Id, SendChannel<M>>,
    /// Receiving channels.
    pub recv: BTreeMap<Id, RecvChannel>,
    /// The highest epoch of any channel closed by `SingleDelivery::close_idle` (`None`:
    /// none). A sender with no channel here and an epoch at or below it is refused: it may be
    /// an incarnation whose channel was closed, whose messages must never be delivered again.
    pub closed_through: Option<u64>,
    /// Messages waiting for an ack, over every sending channel: a function of `send`, kept so
    /// that "is anything unacked" costs nothing however many channels there are (not stored:
    /// recounted when decoded).
    #[serde(skip_serializing)]
    unacked_total: usize,
}

/// [`SingleDelivery`] as stored: everything but the derived count.
#[derive(Deserialize)]
struct SdDurable<M> {
    epoch: u64,
    send: BTreeMap<Id, SendChannel<M>>,
    recv: BTreeMap<Id, RecvChannel>,
    closed_through: Option<u64>,
}

impl<M> From<SdDurable<M>> for SingleDelivery<M> {
    fn from(d: SdDurable<M>) -> Self {
        let unacked_total = d.send.values().map(|c| c.unacked.len()).sum();
        SingleDelivery {
            epoch: d.epoch,
            send: d.send,
            recv: d.recv,
            closed_through: d.closed_through,
            unacked_total,
        }
    }
}

impl<M> Default for SingleDelivery<M> {
    fn default() -> Self {
        SingleDelivery {
            epoch: 0,
            send: BTreeMap::new(),
            recv: BTreeMap::new(),
            closed_through: None,
            unacked_total: 0,
        }
    }
}

impl<M: Clone> SingleDelivery<M> {
    /// Replaces (or, with `None`, removes) both channels with `peer`: how a host's journal
    /// replays the channel states it recorded.
    pub fn restore_channel(
        &mut self,
        peer: Id,
        send: Option<SendChannel<M>>,
        recv: Option<RecvChannel>,
    ) {
        if let Some(old) = self.send.remove(&peer) {
            self.unacked_total -= old.unacked.len();
        }
        if let Some(ch) = send {
            self.unacked_total += ch.unacked.len();
            self.send.insert(peer, ch);
        }
        match recv {
            Some(ch) => {
                self.recv.insert(peer, ch);
            }
            None => {
                self.recv.remove(&peer);
            }
        }
    }

    /// Whether a message of incarnation `epoch` from `src` must be refused with
    /// [`SdMsg::Closed`]: `src` has no channel here and `epoch` is at or below the watermark of
    /// closed channels.
    pub(crate) fn is_closed(&self, src: Id, epoch: u64) -> bool {
        self.closed_through.is_some_and(|w| epoch <= w) && !self.recv.contains_key(&src)
    }

    /// Closes the channels (both directions) of the peers `closable` selects, the lowest
    /// (epoch, id) first, never `keep`'s, while more than `max` of them have a receiving
    /// channel; raises the watermark to each closed epoch. Returns the peers closed.
    ///
    /// What it means for exactly-once: every message delivered on a closed channel came from an
    /// incarnation whose epoch is at most the watermark, and [`SingleDelivery::is_closed`]
    /// refuses any such incarnation without a channel, so none is delivered twice. An
    /// incarnation whose channel was closed learns it from `Closed` and must start again above
    /// the watermark; the outcome of what it had not seen acknowledged is unknown to it. Its
    /// unacked messages on the channel back are dropped.
    pub(crate) fn close_idle(
        &mut self,
        closable: impl Fn(Id) -> bool,
        max: usize,
        keep: Id,
    ) -> Vec<Id> {
        let mut open: Vec<(u64, Id)> = self
            .recv
            .iter()
            .filter(|(id, _)| closable(**id))
            .map(|(id, c)| (c.epoch, *id))
            .collect();
        if open.len() <= max {
            return Vec::new();
        }
        open.sort();
        let excess = open.len() - max;
        let victims: Vec<(u64, Id)> = open
            .into_iter()
            .filter(|(_, id)| *id != keep)
            .take(excess)
            .collect();
        let ids: Vec<Id> = victims.into_iter().map(|(_, id)| id).collect();
        self.close(&ids);
        ids
    }

    /// Closes the channels (both directions) with `peers` and raises the watermark to the
    /// epochs of their receiving channels (see [`SingleDelivery::close_idle`]).
    pub(crate) fn close(&mut self, peers: &[Id]) {
        for id in peers {
            if let Some(ch) = self.recv.remove(id) {
                let epoch = ch.epoch;
                self.closed_through = Some(self.closed_through.map_or(epoch, |w| w.max(epoch)));
            }
            if let Some(ch) = self.send.remove(id) {
                self.unacked_total -= ch.unacked.len();
            }
        }
    }

    /// An actor's SingleDelivery with this epoch and no channel yet.
    pub fn new(epoch: u64) -> Self {
        SingleDelivery {
            epoch,
            ..SingleDelivery::default()
        }
    }

    /// Queues `payload` for `dst`; returns the wire message, or `None` if `max_unacked` messages
    /// already wait for an ack on that channel (the caller drops or retries later).
    pub fn send(&mut self, dst: Id, payload: M, max_unacked: usize) -> Option<SdMsg<M>> {
        let ch = self.send.entry(dst).or_default();
        if ch.unacked.len() >= max_unacked {
            return None;
        }
        ch.last_sent += 1;
        assert!(
            ch.unacked.last().is_none_or(|(s, _)| *s < ch.last_sent),
            "sequence numbers grow along a channel"
        );
        ch.unacked.push((ch.last_sent, payload.clone()));
        self.unacked_total += 1;
        assert!(
            ch.unacked.len() <= max_unacked,
            "the unacked queue is bounded"
        );
        Some(SdMsg::Single {
            epoch: self.epoch,
            to: ch.to_epoch,
            seqno: ch.last_sent,
            payload,
        })
    }

    /// Queues `payload` for `dst` and emits it into `o`. Returns whether it was queued
    /// (`false`: the channel is full).
    ///
    /// `timer` (the retransmission timer and its period, if SingleDelivery retransmits) is armed
    /// only if nothing was waiting for an ack before this send: the timer is armed exactly while
    /// something is unacked, and a send never postpones it. (Re-arming on every send pushed a
    /// real deadline out each time, so a host that sent anything at least once a period never
    /// resent a lost reply or `Delegate`. A model's timers carry no deadline, so it could not
    /// see this.)
    pub(crate) fn send_out<A: Actor<Msg = SdMsg<M>>>(
        &mut self,
        dst: Id,
        payload: M,
        max_unacked: usize,
        timer: Option<(A::Timer, Range<Duration>)>,
        o: &mut Out<A>,
    ) -> bool {
        let was_idle = !self.has_unacked();
        let Some(m) = self.send(dst, payload, max_unacked) else {
            return false;
        };
        o.send(dst, m);
        if let Some((t, period)) = timer.filter(|_| was_idle) {
            o.set_timer(t, period);
        }
        true
    }

    /// A retransmission timer step: resends every unacknowledged message and re-arms the timer;
    /// emits nothing if nothing waits for an ack.
    pub(crate) fn resend_unacked<A: Actor<Msg = SdMsg<M>>>(
        &self,
        timer: (A::Timer, Range<Duration>),
        o: &mut Out<A>,
    ) {
        if !self.has_unacked() {
            return;
        }
        for (dst, m) in self.unacked() {
            o.send(dst, m);
        }
        o.set_timer(timer.0, timer.1);
    }

    /// Whether `Single(epoch, to, seqno)` from `src` is already delivered or stale: receiving it
    /// again delivers nothing.
    pub(crate) fn is_old(&self, src: Id, epoch: u64, to: u64, seqno: u64) -> bool {
        self.is_for_another_incarnation(to)
            || self
                .recv
                .get(&src)
                .is_some_and(|c| epoch < c.epoch || (epoch == c.epoch && seqno <= c.last_delivered))
    }

    /// Whether a message addressed to receiver epoch `to` was meant for an earlier process on
    /// this address.
    fn is_for_another_incarnation(&self, to: u64) -> bool {
        to != 0 && to != self.epoch
    }

    /// Receives `Single(epoch, to, seqno, payload)` from `src`. With `accept_duplicates` (a
    /// mutation) an already delivered message is delivered again (once per channel).
    pub(crate) fn receive(
        &mut self,
        src: Id,
        epoch: u64,
        to: u64,
        seqno: u64,
        payload: M,
        accept_duplicates: bool,
    ) -> Received<M> {
        let stale = Received {
            deliver: None,
            ack: None,
            duplicate: true,
        };
        if self.is_for_another_incarnation(to) {
            return stale;
        }
        let ch = self.recv.entry(src).or_default();
        if epoch < ch.epoch {
            return stale;
        }
        if epoch > ch.epoch {
            *ch = RecvChannel {
                epoch,
                ..RecvChannel::default()
            };
        }
        // Address the channel back to `src` to this incarnation of it; if it was addressed to
        // an earlier one, that process is gone: start afresh.
        let back = self.send.entry(src).or_default();
        if back.to_epoch != epoch {
            if back.to_epoch != 0 {
                self.unacked_total -= back.unacked.len();
                *back = SendChannel::default();
            }
            back.to_epoch = epoch;
        }
        let ch = self.recv.get_mut(&src).expect("entered above");
        let next = seqno == ch.last_delivered + 1;
        let dup = seqno <= ch.last_delivered;
        // The mutation accepts one duplicate per channel: enough to break exactly-once, and the
        // mutated model stays finite.
        let accept_dup = dup && accept_duplicates && seqno > 0 && ch.delivered == ch.last_delivered;
        let delivered_before = ch.last_delivered;
        let deliver = if next || accept_dup {
            ch.last_delivered = ch.last_delivered.max(seqno);
            assert!(
                ch.last_delivered >= delivered_before,
                "the receive sequence number only grows"
            );
            ch.delivered += 1;
            Some(payload)
        } else {
            None
        };
        Received {
            deliver,
            ack: Some(SdMsg::Ack {
                epoch,
                from: self.epoch,
                seqno: ch.last_delivered,
            }),
            duplicate: dup && !accept_dup,
        }
    }

    /// Whether a cumulative `Ack(epoch, from, seqno)` from `src` acknowledges anything still
    /// unacked (an ack of another epoch of ours, or from another incarnation of `src`, does
    /// not).
    pub(crate) fn acks_something(&self, src: Id, epoch: u64, from: u64, seqno: u64) -> bool {
        epoch == self.epoch
            && self.send.get(&src).is_some_and(|c| {
                (c.to_epoch == 0 || c.to_epoch == from)
                    && c.unacked.first().is_some_and(|(s, _)| *s <= seqno)
            })
    }

    /// Handles a cumulative ack from `src`. Returns whether anything was acknowledged.
    pub(crate) fn ack(&mut self, src: Id, epoch: u64, from: u64, seqno: u64) -> bool {
        if !self.acks_something(src, epoch, from, seqno) {
            return false;
        }
        let Some(ch) = self.send.get_mut(&src) else {
            return false;
        };
        let before = ch.unacked.len();
        ch.unacked.retain(|(s, _)| *s > seqno);
        self.unacked_total -= before - ch.unacked.len();
        ch.unacked.len() != before
    }

    /// Every unacknowledged message, to resend.
    pub(crate) fn unacked(&self) -> Vec<(Id, SdMsg<M>)> {
        let epoch = self.epoch;
        self.send
            .iter()
            .flat_map(|(&dst, ch)| {
                ch.unacked.iter().map(move |(s, p)| {
                    (
                        dst,
                        SdMsg::Single {
                            epoch,
                            to: ch.to_epoch,
                            seqno: *s,
                            payload: p.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    /// Whether anything waits for an ack.
    pub(crate) fn has_unacked(&self) -> bool {
        debug_assert_eq!(
            self.unacked_total,
            self.send.values().map(|c| c.unacked.len()).sum::<usize>()
        );
        self.unacked_total > 0
    }

    /// An actor's step on `Ack(epoch, from, seqno)` from `src`, for a state `S` whose
    /// SingleDelivery `sd` reaches: leaves the state borrowed (a no-op step) if the ack
    /// acknowledges nothing, and returns whether the actor now has nothing left unacked (it may
    /// cancel its retransmission timer).
    pub(crate) fn on_ack<S: Clone + AsMut<SingleDelivery<M>> + AsRef<SingleDelivery<M>>>(
        state: &mut std::borrow::Cow<S>,
        src: Id,
        epoch: u64,
        from: u64,
        seqno: u64,
    ) -> bool {
        let current: &S = state;
        if !current.as_ref().acks_something(src, epoch, from, seqno) {
            return false;
        }
        let sd: &mut SingleDelivery<M> = state.to_mut().as_mut();
        sd.ack(src, epoch, from, seqno);
        !sd.has_unacked()
    }

    /// Whether the channel to `dst` has `max_unacked` messages waiting for an ack.
    pub(crate) fn is_full(&self, dst: Id, max_unacked: usize) -> bool {
        self.send
            .get(&dst)
            .is_some_and(|c| c.unacked.len() >= max_unacked)
    }

    /// Messages sent to `dst` that `dst`, whose receiving state for us is `theirs`, has not yet
    /// delivered: the ones still "in flight" for the abstraction.
    pub(crate) fn undelivered<'a>(
        &'a self,
        dst: Id,
        theirs: Option<&RecvChannel>,
    ) -> impl Iterator<Item = &'a M> + 'a {
        let done = theirs
            .filter(|c| c.epoch == self.epoch)
            .map_or(0, |c| c.last_delivered);
        self.send
            .get(&dst)
            .into_iter()
            .flat_map(move |ch| ch.unacked.iter().filter(move |(s, _)| *s > done))
            .map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::kv::{KvMsg, KvPayload};
    use proptest::prelude::*;

    fn get(key: u64) -> KvPayload {
        KvPayload::Get { key: key.into() }
    }

    proptest! {
        /// Whatever the network does to the datagrams (loss, duplication, reordering), the
        /// receiver delivers a prefix of what was sent, each message once and in order, and
        /// retransmission until acked delivers everything.
        #[test]
        fn exactly_once_in_order(n in 1usize..8, schedule in proptest::collection::vec(0usize..64, 0..80)) {
            let (a, b) = (Id::from(0), Id::from(1));
            let mut tx = SingleDelivery::<KvPayload>::default();
            let mut rx = SingleDelivery::<KvPayload>::default();
            let mut wire: Vec<KvMsg> = (0..n as u64).map(|k| tx.send(b, get(k), 100).unwrap()).collect();
            let mut delivered = Vec::new();
            let deliver = |m: KvMsg, rx: &mut SingleDelivery<KvPayload>, tx: &mut SingleDelivery<KvPayload>, delivered: &mut Vec<KvPayload>| {
                if let SdMsg::Single { epoch, to, seqno, payload } = m {
                    let r = rx.receive(a, epoch, to, seqno, payload, false);
                    delivered.extend(r.deliver);
                    if let Some(SdMsg::Ack { epoch, from, seqno }) = r.ack { tx.ack(b, epoch, from, seqno); }
                }
            };
            // Adversarial phase: deliver arbitrary (possibly repeated) datagrams from the wire.
            for i in schedule {
                if wire.is_empty() { break; }
                let m = wire[i % wire.len()].clone();
                if i % 5 == 0 { wire.remove(i % wire.len()); } // loss
                deliver(m, &mut rx, &mut tx, &mut delivered);
                prop_assert!(delivered.iter().enumerate().all(|(k, p)| *p == get(k as u64)));
            }
            // Stabilization: retransmit until everything is acked.
            for _ in 0..n + 1 {
                for (_, m) in tx.unacked() { deliver(m, &mut rx, &mut tx, &mut delivered); }
            }
            wire.clear();
            prop_assert_eq!(delivered, (0..n as u64).map(get).collect::<Vec<_>>());
            prop_assert!(!tx.has_unacked());
        }
    }

    #[test]
    fn bounded_queue_refuses_more() {
        let mut tx = SingleDelivery::<KvPayload>::default();
        assert!(tx.send(Id::from(1), get(0), 1).is_some());
        assert!(tx.send(Id::from(1), get(1), 1).is_none());
    }

    #[test]
    fn duplicates_are_ignored_unless_mutated() {
        let mut rx = SingleDelivery::<KvPayload>::default();
        let a = Id::from(0);
        assert!(rx.receive(a, 0, 0, 1, get(0), false).deliver.is_some());
        let r = rx.receive(a, 0, 0, 1, get(0), false);
        assert!(r.deliver.is_none() && r.duplicate);
        assert!(rx.receive(a, 0, 0, 1, get(0), true).deliver.is_some());
        assert_eq!(rx.recv[&a].delivered, 2);
        // Once per channel only.
        assert!(rx.receive(a, 0, 0, 1, get(0), true).deliver.is_none());
    }

    #[test]
    fn a_restarted_sender_with_a_higher_epoch_starts_the_channel_afresh() {
        let a = Id::from(0);
        let mut rx = SingleDelivery::new(3);
        for seqno in 1..=3 {
            assert!(rx
                .receive(a, 5, 0, seqno, get(seqno), false)
                .deliver
                .is_some());
            // Replies to the first process, never acknowledged (it dies).
            assert!(rx.send(a, get(100 + seqno), 8).is_some());
        }
        assert_eq!(rx.send[&a].to_epoch, 5);
        // The same address, a new process: epoch 9 starts at 1 again.
        let r = rx.receive(a, 9, 0, 1, get(7), false);
        assert_eq!(r.deliver, Some(get(7)));
        assert_eq!(
            r.ack,
            Some(SdMsg::Ack {
                epoch: 9,
                from: 3,
                seqno: 1
            })
        );
        // The channel back starts afresh, addressed to the new process.
        assert_eq!(rx.send[&a].unacked, vec![]);
        assert_eq!(
            rx.send(a, get(8), 8),
            Some(SdMsg::Single {
                epoch: 3,
                to: 9,
                seqno: 1,
                payload: get(8)
            })
        );
        // The old process's stragglers are stale: not delivered, not acked.
        let r = rx.receive(a, 5, 3, 4, get(4), false);
        assert_eq!((r.deliver, r.ack), (None, None));
        assert!(rx.is_old(a, 5, 0, 4) && rx.is_old(a, 9, 0, 1) && !rx.is_old(a, 9, 0, 2));
        // Its acks acknowledge nothing on the new channel, the new process's do.
        assert!(!rx.acks_something(a, 3, 5, 1) && !rx.ack(a, 3, 5, 1));
        assert!(rx.ack(a, 3, 9, 1));
        // A message addressed to an earlier incarnation of the receiver is ignored.
        let mut fresh = SingleDelivery::new(11);
        assert!(fresh.is_old(a, 3, 4, 1));
        assert_eq!(fresh.receive(a, 3, 4, 1, get(0), false).deliver, None);
        assert!(fresh.receive(a, 3, 11, 1, get(0), false).deliver.is_some());
    }
}
