//! The client session table: the executor's bounded replacement for IronRSL's reply cache.
//!
//! IronRSL keeps the last reply per client address for ever, so a retransmitted request is
//! answered and never executed twice; a server that meets unboundedly many clients grows without
//! bound (and so does every snapshot it transfers). Here the table holds at most
//! `Params::max_client_sessions` sessions. When a new session would exceed it, the session with
//! the lowest last sequence number is evicted (ties by client id), and the table remembers the
//! highest sequence number it ever evicted: the **expiry watermark**.
//!
//! What that means for at-most-once: a request `(client, seqno)` is
//! - *executed before* if the client has a session whose last seqno is `>= seqno` (answered from
//!   the table when equal, otherwise dropped: the client has moved on);
//! - *refused* ([`Lookup::Expired`]) if the client has no session and `seqno <= watermark`: it may
//!   be a retransmission of a request executed in a session since evicted, so it is never
//!   executed; the client is told its session expired and the outcome of that request is unknown;
//! - otherwise *new*: executed, and it opens or advances the client's session.
//!
//! Every request ever executed in an evicted session has a seqno at most that session's last,
//! hence at most the watermark, so it can never be executed again. A fresh client must start
//! above the watermark; the runtime's client takes its sequence numbers from the wall clock in
//! microseconds (never below its previous one plus one), which keeps fresh clients above it and
//! makes "lowest last seqno" the session idle longest. The decision is a function of the
//! executed prefix alone, so every replica makes the same one.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use stateright::{Rewrite, RewritePlan};

/// What the table says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a, R> {
    /// Executed before; the cached reply if it is the session's last request.
    Executed(Option<&'a R>),
    /// Refused: no session and `seqno <= watermark` (the session may have been evicted).
    Expired {
        /// The table's expiry watermark.
        watermark: u64,
    },
    /// Not executed yet: execute it.
    New,
}

/// The bounded client session table (see the module doc).
#[derive(Clone, Debug)]
pub struct ClientSessions<R> {
    /// Each client's last executed sequence number and the reply to it.
    by_client: BTreeMap<Id, (u64, R)>,
    /// `by_client` ordered by (last seqno, client): the eviction order. Derived from `by_client`,
    /// so equality and hashing leave it out.
    by_seqno: BTreeSet<(u64, Id)>,
    /// The highest last seqno of any evicted session (0: none evicted).
    watermark: u64,
}

impl<R> Default for ClientSessions<R> {
    fn default() -> Self {
        ClientSessions {
            by_client: BTreeMap::new(),
            by_seqno: BTreeSet::new(),
            watermark: 0,
        }
    }
}

impl<R: PartialEq> PartialEq for ClientSessions<R> {
    fn eq(&self, other: &Self) -> bool {
        self.watermark == other.watermark && self.by_client == other.by_client
    }
}

impl<R: Eq> Eq for ClientSessions<R> {}

impl<R: Hash> Hash for ClientSessions<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.watermark.hash(state);
        self.by_client.hash(state);
    }
}

/// Renames client ids (see `super::rename`). The eviction order is rebuilt from the renamed
/// ids, so it can change: a table that evicts is not symmetric in its clients, and a model
/// refuses symmetry where sessions can be evicted.
impl<R: Clone> Rewrite<Id> for ClientSessions<R> {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        let by_client = super::rename::rename_keys(&self.by_client, plan);
        let by_seqno = by_client.iter().map(|(c, (s, _))| (*s, *c)).collect();
        ClientSessions {
            by_client,
            by_seqno,
            watermark: self.watermark,
        }
    }
}

impl<R> ClientSessions<R> {
    /// What the table says about request `(client, seqno)`.
    pub fn lookup(&self, client: Id, seqno: u64) -> Lookup<'_, R> {
        match self.by_client.get(&client) {
            Some((last, reply)) if *last >= seqno => {
                Lookup::Executed((*last == seqno).then_some(reply))
            }
            Some(_) => Lookup::New,
            None if seqno <= self.watermark => Lookup::Expired {
                watermark: self.watermark,
            },
            None => Lookup::New,
        }
    }

    /// Whether the request needs nothing more from the log: executed before, or refused.
    pub fn is_settled(&self, client: Id, seqno: u64) -> bool {
        !matches!(self.lookup(client, seqno), Lookup::New)
    }

    /// Records that `(client, seqno)` was executed with `reply`, then evicts the sessions with
    /// the lowest last seqno (never `client`'s) while more than `max` remain.
    pub fn record(&mut self, client: Id, seqno: u64, reply: R, max: usize) {
        if let Some((old, _)) = self.by_client.insert(client, (seqno, reply)) {
            assert!(old < seqno, "a session's seqno only grows");
            self.by_seqno.remove(&(old, client));
        }
        self.by_seqno.insert((seqno, client));
        while self.by_client.len() > max.max(1) {
            let victim = *self
                .by_seqno
                .iter()
                .find(|(_, c)| *c != client)
                .expect("more than one session, so one is not the client's");
            self.by_seqno.remove(&victim);
            self.by_client.remove(&victim.1);
            self.watermark = self.watermark.max(victim.0);
        }
        debug_assert_eq!(self.by_client.len(), self.by_seqno.len());
    }

    /// The number of sessions.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// The expiry watermark.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// The sessions: (client, last seqno, reply), by client.
    pub fn iter(&self) -> impl Iterator<Item = (Id, u64, &R)> {
        self.by_client.iter().map(|(c, (s, r))| (*c, *s, r))
    }
}

/// The encoded form: the sessions by client and the watermark (the eviction index is rebuilt).
#[derive(Serialize, Deserialize)]
struct Encoded<T> {
    sessions: T,
    watermark: u64,
}

impl<R: Serialize> Serialize for ClientSessions<R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Encoded {
            sessions: &self.by_client,
            watermark: self.watermark,
        }
        .serialize(s)
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for ClientSessions<R> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Encoded::<BTreeMap<Id, (u64, R)>>::deserialize(d)?;
        let by_seqno = e.sessions.iter().map(|(c, (s, _))| (*s, *c)).collect();
        Ok(ClientSessions {
            by_client: e.sessions,
            by_seqno,
            watermark: e.watermark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(i: usize) -> Id {
        Id::from(i)
    }

    #[test]
    fn an_evicted_session_is_refused_and_a_fresh_one_above_the_watermark_is_new() {
        let mut t = ClientSessions::default();
        t.record(id(1), 5, "a", 2);
        t.record(id(2), 7, "b", 2);
        t.record(id(3), 9, "c", 2); // evicts client 1 (lowest seqno 5)
        assert_eq!(t.len(), 2);
        assert_eq!(t.watermark(), 5);
        assert_eq!(t.lookup(id(1), 5), Lookup::Expired { watermark: 5 });
        assert_eq!(t.lookup(id(1), 3), Lookup::Expired { watermark: 5 });
        assert_eq!(t.lookup(id(1), 6), Lookup::New);
        assert_eq!(t.lookup(id(2), 7), Lookup::Executed(Some(&"b")));
        assert_eq!(t.lookup(id(2), 6), Lookup::Executed(None));
        assert_eq!(t.lookup(id(4), 1), Lookup::Expired { watermark: 5 });
        assert!(t.is_settled(id(1), 5) && !t.is_settled(id(2), 8));
    }

    #[test]
    fn the_client_just_executed_is_never_the_one_evicted() {
        let mut t = ClientSessions::default();
        t.record(id(1), 50, 0u8, 1);
        t.record(id(2), 3, 0u8, 1);
        assert_eq!(t.lookup(id(2), 3), Lookup::Executed(Some(&0)));
        assert_eq!(t.watermark(), 50);
    }

    #[test]
    fn encoding_round_trips_and_rebuilds_the_eviction_order() {
        let mut t = ClientSessions::default();
        for i in 0..10 {
            t.record(id(i), 100 - i as u64, i as u32, 4);
        }
        let bytes = postcard::to_allocvec(&t).unwrap();
        let mut back: ClientSessions<u32> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, t);
        let mut orig = t.clone();
        back.record(id(42), 1000, 0, 4);
        orig.record(id(42), 1000, 0, 4);
        assert_eq!(back, orig);
    }

    proptest! {
        /// Against a plain model: at most `max` sessions; a request is executed at most once
        /// whatever the order and repetition of requests; the watermark only grows.
        #[test]
        fn never_executes_a_request_twice(
            max in 1usize..4,
            reqs in proptest::collection::vec((0usize..5, 1u64..8), 0..60),
        ) {
            let mut t = ClientSessions::default();
            let mut executed = BTreeSet::new();
            let mut watermark = 0;
            for (c, s) in reqs {
                if t.lookup(id(c), s) == Lookup::New {
                    prop_assert!(executed.insert((c, s)), "({c}, {s}) executed twice");
                    t.record(id(c), s, (), max);
                }
                prop_assert!(t.len() <= max);
                prop_assert!(t.watermark() >= watermark);
                watermark = t.watermark();
            }
        }
    }
}
