//! The sans-IO driver of one actor process: everything between a datagram and the actor, with
//! no socket, no clock and no task of its own, so that the tokio back end
//! ([`super::runtime`]) and the deterministic simulator (`sim`) run exactly the same code.
//!
//! What it does, in order, for each datagram handed to it ([`Driver::admit`] then
//! [`Driver::step`]): count it; drop (and count) one that is not IPv4, from a peer's address
//! without a valid MAC, oversized or undecodable, or a message the actor takes only from peers;
//! run the actor's step with its own `Out`. Then [`Driver::commit`] carries out a group of
//! steps' commands: every save first, made durable together through the [`Store`], and only
//! then the messages (encoded, sealed with the cluster key for peers, refused and counted if
//! larger than a datagram) and the timer changes. A failed save returns the error before
//! anything of the group leaves: the caller stops the process (fail-stop), and a restart runs
//! [`Driver::start`] again from what the store holds.
//!
//! Time is the caller's: a `u64` of nanoseconds on the process's own clock (the tokio back end
//! counts from the process start; the simulator gives each node a skewed, drifting clock). Timer
//! deadlines are on that clock; [`Driver::next_deadline`] and [`Driver::fire_due`] let the back
//! end sleep and wake.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use super::auth::ClusterKey;
use super::codec::{self, DecodeError, MAX_DATAGRAM};
use super::storage::{StorageError, Store};

/// Counters of one actor's runtime.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams received.
    pub datagrams_in: AtomicU64,
    /// Datagrams sent.
    pub datagrams_out: AtomicU64,
    /// Dropped: larger than the codec's limit.
    pub dropped_oversized: AtomicU64,
    /// Dropped: not a well-formed message.
    pub dropped_undecodable: AtomicU64,
    /// Dropped: from a sender this actor may not hear that message from.
    pub dropped_unknown_sender: AtomicU64,
    /// Dropped: not IPv4 (actor ids are IPv4 socket addresses).
    pub dropped_not_ipv4: AtomicU64,
    /// Dropped: from a peer's address, but without a valid MAC under the cluster key.
    pub dropped_unauthenticated: AtomicU64,
    /// Not sent: the message (with its MAC) does not fit one datagram.
    pub unsent_too_large: AtomicU64,
    /// Timers fired.
    pub timers_fired: AtomicU64,
    /// Saves made durable.
    pub saves: AtomicU64,
    /// Bytes written to storage (snapshots, log records and their framing).
    pub saved_bytes: AtomicU64,
    /// Groups of steps made durable together (one storage write each).
    pub commits: AtomicU64,
}

impl Counters {
    /// A snapshot as (name, value) pairs.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("datagrams_in", g(&self.datagrams_in)),
            ("datagrams_out", g(&self.datagrams_out)),
            ("dropped_oversized", g(&self.dropped_oversized)),
            ("dropped_undecodable", g(&self.dropped_undecodable)),
            ("dropped_unknown_sender", g(&self.dropped_unknown_sender)),
            ("dropped_not_ipv4", g(&self.dropped_not_ipv4)),
            ("dropped_unauthenticated", g(&self.dropped_unauthenticated)),
            ("unsent_too_large", g(&self.unsent_too_large)),
            ("timers_fired", g(&self.timers_fired)),
            ("saves", g(&self.saves)),
            ("saved_bytes", g(&self.saved_bytes)),
            ("commits", g(&self.commits)),
        ]
    }

    /// The snapshot as a JSON object.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        self.snapshot()
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// All datagrams dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_oversized.load(Ordering::Relaxed)
            + self.dropped_undecodable.load(Ordering::Relaxed)
            + self.dropped_unknown_sender.load(Ordering::Relaxed)
            + self.dropped_not_ipv4.load(Ordering::Relaxed)
            + self.dropped_unauthenticated.load(Ordering::Relaxed)
    }
}

/// Called with the actor's state after it starts and after every event: how an
/// operator (gauges, a status line) sees inside an actor without the actor doing I/O.
pub type Observer<S> = Box<dyn FnMut(&S) + Send>;

/// How one actor runs.
pub struct RuntimeConfig<A: Actor> {
    /// Senders the actor hears from unconditionally (its peers).
    pub peers: Vec<SocketAddrV4>,
    /// The cluster key: with it, every datagram to or from a peer carries a MAC, and one from a
    /// peer's address without a valid MAC is dropped. Without it peers are recognised by
    /// address alone (spoofable).
    pub key: Option<Arc<ClusterKey>>,
    /// Whether a message from a sender outside `peers` is accepted (e.g. client requests); a
    /// stranger's datagram sealed with the cluster key is accepted as a peer's.
    pub accept_from_stranger: fn(&A::Msg) -> bool,
    /// Where the actor's storage lives (`None`: not persisted, which is unsafe across restarts
    /// for an actor that saves).
    pub storage: Option<Box<dyn Store<A::Storage>>>,
    /// The actor is new: create its storage file (which must not exist yet) instead of reading
    /// it.
    pub init: bool,
    /// Seed of the timer-jitter generator.
    pub seed: u64,
    /// Sees the state after every change.
    pub observe: Option<Observer<A::State>>,
}

/// Nanoseconds on a process's own clock.
pub type Nanos = u64;

/// Deliberately broken runtime behaviour, for showing that the simulator catches what the model
/// cannot express. Never set outside tests and `sim --mutation`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum RuntimeMutation {
    /// The correct runtime.
    #[default]
    None,
    /// A failed storage write is logged and the group's messages leave anyway.
    SendAfterFailedSave,
    /// Every send postpones the actor's armed timers by their own period again (a
    /// retransmission timer that a busy actor never reaches).
    SendPostponesTimers,
    /// A client's new incarnation numbers its requests from 1 again (a client reusing its
    /// sequence numbers after a restart or a timeout). Not the driver's: the simulated systems
    /// read it when they build a client.
    ClientReusesSeqno,
    /// A restarted process starts as if its storage were empty (a storage layer that reads
    /// nothing back, or a data directory that moved): a KV host forgets its delegations and
    /// claims every key again; a replica forgets its promises and votes.
    RestartWithoutStorage,
    /// State transfer sends the whole snapshot in one message, as IronRSL does, instead of in
    /// chunks that fit a datagram: once the app state outgrows a datagram the message is never
    /// sent, and a replica behind the log's truncation point never catches up. Not the
    /// driver's: the simulated RSL system reads it when it sets the replicas' parameters.
    StateTransferInOneMessage,
    /// The storage code's file `fsync`s and `fdatasync`s do nothing: acknowledged records live
    /// in the page cache only. Not the driver's: the simulated disk applies it.
    StorageSkipsFsync,
    /// The storage code's directory `fsync`s do nothing: a record renamed into place may come
    /// back as the old one after a power cut. Not the driver's: the simulated disk applies it.
    StorageSkipsDirectoryFsync,
}

/// A datagram the driver wants sent, with the message it carries (for observers such as the
/// simulator's safety monitors; the tokio back end sends only the bytes).
pub struct Outgoing<M> {
    /// Where to.
    pub to: SocketAddrV4,
    /// The message.
    pub msg: M,
    /// The encoded (and, for a peer, sealed) datagram.
    pub bytes: Vec<u8>,
}

/// The datagrams a step asks to send.
pub type Sends<M> = Vec<Outgoing<M>>;

/// One actor process without I/O: its state, its timers, its store.
pub struct Driver<A: Actor> {
    actor: A,
    id: Id,
    /// `None` only while a step runs (the state moves into the step's `Cow` and back).
    state: Option<A::State>,
    timers: BTreeMap<A::Timer, (Nanos, Nanos)>,
    rng: ChaCha8Rng,
    cfg: RuntimeConfig<A>,
    store: Option<Box<dyn Store<A::Storage>>>,
    counters: Arc<Counters>,
    mutation: RuntimeMutation,
}

impl<A> Driver<A>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned,
    A::Timer: Ord,
{
    /// Starts `actor` as `id` at time `now`: initialises its store if `cfg.init`, loads it, runs
    /// `on_start`, and commits what the start asked for. Returns the driver and the datagrams
    /// to send. A store that is missing, corrupt or foreign is an error: the process must not
    /// start without what it promised.
    pub fn start(
        actor: A,
        id: Id,
        cfg: RuntimeConfig<A>,
        counters: Arc<Counters>,
        now: Nanos,
    ) -> Result<(Self, Sends<A::Msg>), StorageError> {
        Self::start_mutated(actor, id, cfg, counters, now, RuntimeMutation::None)
    }

    /// [`Driver::start`] with a deliberately broken behaviour switched on (tests and the
    /// simulator only).
    pub fn start_mutated(
        actor: A,
        id: Id,
        mut cfg: RuntimeConfig<A>,
        counters: Arc<Counters>,
        now: Nanos,
        mutation: RuntimeMutation,
    ) -> Result<(Self, Sends<A::Msg>), StorageError> {
        let mut store = cfg.storage.take();
        let storage: Option<A::Storage> = match store.as_mut() {
            None => None,
            Some(f) => {
                if cfg.init {
                    f.init()?;
                }
                f.load()?
            }
        };
        let storage = match mutation {
            RuntimeMutation::RestartWithoutStorage => None,
            _ => storage,
        };
        let mut out = Out::new();
        let state = actor.on_start(id, &storage, &mut out);
        drop(storage);
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut d = Driver {
            actor,
            id,
            state: Some(state),
            timers: BTreeMap::new(),
            rng,
            cfg,
            store,
            counters,
            mutation,
        };
        d.observe();
        let sends = d.commit(out, now)?;
        Ok((d, sends))
    }

    /// The actor's current state.
    pub fn state(&self) -> &A::State {
        self.state
            .as_ref()
            .expect("the state is back after every step")
    }

    /// Runs `f` on the actor's state moved into a `Cow` (an actor may update it in place), and
    /// puts it back.
    fn with_state(&mut self, f: impl FnOnce(&A, Id, &mut Cow<A::State>)) {
        let state = self
            .state
            .take()
            .expect("the state is back after every step");
        let mut cow = Cow::Owned(state);
        f(&self.actor, self.id, &mut cow);
        self.state = Some(cow.into_owned());
        self.observe();
    }

    /// The actor.
    pub fn actor(&self) -> &A {
        &self.actor
    }

    /// This process's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Whether the actor has a store: only then is grouping steps worth it (see the runtime's
    /// group commit).
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    fn observe(&mut self) {
        if let (Some(f), Some(s)) = (self.cfg.observe.as_mut(), self.state.as_ref()) {
            f(s);
        }
    }

    /// The sender and message of a datagram the actor may take, or `None` (counted): not IPv4,
    /// a peer's address without a valid MAC, undecodable or oversized, or a message the actor
    /// takes only from peers.
    pub fn admit(&self, datagram: &[u8], from: SocketAddr) -> Option<(SocketAddrV4, A::Msg)> {
        let counters = &*self.counters;
        counters.datagrams_in.fetch_add(1, Ordering::Relaxed);
        let SocketAddr::V4(from) = from else {
            counters.dropped_not_ipv4.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        // A peer's datagram must carry a valid MAC; a stranger's may (an operator's tool
        // holding the cluster key), and is then trusted as a peer's would be.
        let is_peer = self.cfg.peers.contains(&from);
        let (bytes, trusted) = match (self.cfg.key.as_deref(), is_peer) {
            (Some(key), true) => match key.open(datagram) {
                Some(body) => (body, true),
                None => {
                    counters
                        .dropped_unauthenticated
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            (Some(key), false) => match key.open(datagram) {
                Some(body) => (body, true),
                None => (datagram, false),
            },
            (None, _) => (datagram, is_peer),
        };
        let msg: A::Msg = match codec::decode(bytes) {
            Ok(m) => m,
            Err(DecodeError::Oversized(_)) => {
                counters.dropped_oversized.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Err(e) => {
                tracing::debug!(%from, %e, "undecodable datagram");
                counters.dropped_undecodable.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        if !trusted && !(self.cfg.accept_from_stranger)(&msg) {
            counters
                .dropped_unknown_sender
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some((from, msg))
    }

    /// Runs the actor's step for an admitted message; its commands are appended to `group`
    /// (the step itself gets a fresh `Out`: an actor may look at what its own step sent).
    pub fn step(&mut self, from: SocketAddrV4, msg: A::Msg, group: &mut Out<A>) {
        let mut step = Out::new();
        self.with_state(|actor, id, cow| actor.on_msg(id, cow, Id::from(from), msg, &mut step));
        group.append(&mut step);
    }

    /// Runs a step the application asks for rather than a datagram (a runtime client handing
    /// its actor a new operation): `f` gets the actor, the process's id, the state and the
    /// step's own `Out`, whose commands are appended to `group`.
    pub fn input(
        &mut self,
        f: impl FnOnce(&A, Id, &mut Cow<A::State>, &mut Out<A>),
        group: &mut Out<A>,
    ) {
        let mut step = Out::new();
        self.with_state(|actor, id, cow| f(actor, id, cow, &mut step));
        group.append(&mut step);
    }

    /// Replaces the actor (its configuration: a runtime client's next operation), keeping the
    /// state, the timers and the store.
    pub fn replace_actor(&mut self, actor: A) {
        self.actor = actor;
    }

    /// The earliest timer deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.timers.values().map(|(d, _)| *d).min()
    }

    /// Fires every timer due at `now` (each with its own commit) and returns what to send.
    pub fn fire_due(&mut self, now: Nanos) -> Result<Vec<Outgoing<A::Msg>>, StorageError> {
        let due: Vec<A::Timer> = self
            .timers
            .iter()
            .filter(|(_, (d, _))| *d <= now)
            .map(|(t, _)| t.clone())
            .collect();
        let mut sends = Vec::new();
        for t in due {
            // An earlier timer's step may have cancelled or re-armed this one.
            match self.timers.get(&t) {
                Some((d, _)) if *d <= now => {}
                _ => continue,
            }
            self.timers.remove(&t);
            self.counters.timers_fired.fetch_add(1, Ordering::Relaxed);
            let mut out = Out::new();
            self.with_state(|actor, id, cow| actor.on_timeout(id, cow, &t, &mut out));
            sends.extend(self.commit(out, now)?);
        }
        Ok(sends)
    }

    /// Carries out a group of steps' commands at `now`: every save first, made durable
    /// together, then sends and timers in order. A failed save is returned at once, before
    /// anything of the group leaves: the caller stops the process (a fail-stop crash, which the
    /// protocol tolerates) rather than let a message promise what was not stored.
    pub fn commit(
        &mut self,
        out: Out<A>,
        now: Nanos,
    ) -> Result<Vec<Outgoing<A::Msg>>, StorageError> {
        // Storage first: a message may promise what the storage records (a 1b, a 2b, a reply
        // to a write), so it must not leave before the record is durable, or a crash in
        // between would break the promise.
        let mut saves = Vec::new();
        let mut rest = Vec::new();
        for c in out {
            match c {
                Command::Save(s) => saves.push(s),
                c => rest.push(c),
            }
        }
        let mut failed = None;
        if !saves.is_empty() {
            if let Some(store) = self.store.as_mut() {
                let n = saves.len() as u64;
                match store.save_all(saves) {
                    Ok(bytes) => {
                        self.counters.saves.fetch_add(n, Ordering::Relaxed);
                        self.counters
                            .saved_bytes
                            .fetch_add(bytes, Ordering::Relaxed);
                        self.counters.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(%e, "storage write failed: stopping");
                        if self.mutation != RuntimeMutation::SendAfterFailedSave {
                            return Err(e);
                        }
                        failed = Some(e);
                    }
                }
            }
        }
        let mut sends = Vec::new();
        for c in rest {
            match c {
                Command::Send(dst, msg) => {
                    if let Some(o) = self.seal(dst, msg) {
                        sends.push(o);
                    }
                }
                Command::SetTimer(t, range) => {
                    let d = if range.end > range.start {
                        self.rng.random_range(range.start..range.end)
                    } else {
                        range.start
                    };
                    let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                    self.timers.insert(t, (now.saturating_add(d), d));
                }
                Command::CancelTimer(t) => {
                    self.timers.remove(&t);
                }
                Command::Save(_) => unreachable!("saves were taken out above"),
                Command::ChooseRandom(key, _) => {
                    tracing::warn!(key, "random choices are not supported by the runtime");
                }
            }
        }
        if self.mutation == RuntimeMutation::SendPostponesTimers && !sends.is_empty() {
            for (deadline, period) in self.timers.values_mut() {
                *deadline = now.saturating_add(*period);
            }
        }
        self.counters
            .datagrams_out
            .fetch_add(sends.len() as u64, Ordering::Relaxed);
        match failed {
            // Only under the mutation: the messages left although the save failed; the
            // process goes on as if it had been stored.
            Some(e) => {
                tracing::error!(%e, "mutation: sent although the save failed");
                Ok(sends)
            }
            None => Ok(sends),
        }
    }

    /// Encodes (and for a peer seals) one message; `None` (counted) if it does not fit a
    /// datagram.
    fn seal(&self, dst: Id, msg: A::Msg) -> Option<Outgoing<A::Msg>> {
        let to = SocketAddrV4::from(dst);
        match codec::encode(&msg) {
            Ok(mut bytes) => {
                if let Some(key) = self
                    .cfg
                    .key
                    .as_deref()
                    .filter(|_| self.cfg.peers.contains(&to))
                {
                    key.seal(&mut bytes);
                    if bytes.len() > MAX_DATAGRAM {
                        self.counters
                            .unsent_too_large
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%to, len = bytes.len(), "message not sent: too large");
                        return None;
                    }
                }
                Some(Outgoing { to, msg, bytes })
            }
            Err(e) => {
                self.counters
                    .unsent_too_large
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%e, "message not sent");
                None
            }
        }
    }
}
