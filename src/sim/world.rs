//! The simulated world: one deterministic run of a cluster from a [`SimCase`] (a seed plus what
//! it drew), over the same [`Driver`] the UDP runtime uses.
//!
//! **What is simulated.** Virtual time in nanoseconds and one event queue ordered by (time,
//! insertion number): no wall clock, no threads, no hashed iteration, one ChaCha8 generator per
//! concern, all seeded from the case. The network carries the driver's encoded, MAC-sealed
//! datagrams with a per-link base latency plus jitter (wide jitter reorders), loss,
//! duplication, byte corruption, and partitions (symmetric, one-way, or a node isolated); the
//! receiving driver decodes and filters them exactly as over UDP. Each server has a simulated
//! disk ([`SimFs`]) under the real storage code (the same `StorageFile` and `HostLog` as at run
//! time): a crash is a power cut that keeps only what was synced, some crashes fall inside a
//! storage write and tear it (`torn-write`), appends and syncs fail with EIO or ENOSPC (the
//! driver then stops the process before any of the group's messages leave), and a record file
//! may be found damaged at the next start (the driver must refuse to start). Processes crash
//! (their state and timers are gone) and restart from their disk, pause (what arrives waits),
//! and run on their own clock, which drifts and jumps; timer deadlines are on the node's clock.
//!
//! **What is checked.** After every step (or every k-th), the system's safety monitor looks at
//! the node's actual state and at every message sent; at the end, the clients' history (taken
//! from the client actors' own transitions) must be linearizable. Then liveness: at the end of
//! the fault phase everything heals (partitions and per-datagram faults stop, every server with
//! a readable disk restarts, pauses end, clocks run at the true rate) and every client must
//! finish its operations within the stated virtual-time bound.
//!
//! **What is not.** The socket layer of the tokio back end is not run (listed in its module
//! doc), nor the operating system's file calls under [`crate::net::fs::OsFs`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use super::disk::{DiskMutation, SimFs};
use super::faults::{draw_schedule, FaultEvent, FaultKind, FaultMix, Scheduled};
use super::history::{self, Operation, SeqSpec};
use crate::net::auth::ClusterKey;
use crate::net::driver::{Driver, Nanos, Outgoing, RuntimeMutation};
use crate::net::runtime::{Counters, RuntimeConfig};
use crate::net::storage::{StorageError, Store};

/// What the simulator must know about a system: its actors, its clients' operations, its disk
/// semantics, and the safety properties it can evaluate on a running cluster.
pub trait SimSystem {
    /// The messages, sent as datagrams.
    type Msg: Serialize + DeserializeOwned + std::fmt::Debug;
    /// The timers, ordered (the driver keeps them in a map).
    type Timer: Ord;
    /// What a server stores, on a simulated disk.
    type Storage: Clone + Send + Sync + 'static;
    /// The actor type of every node (servers and clients).
    type Actor: Actor<Msg = Self::Msg, Timer = Self::Timer, Storage = Self::Storage> + Clone;
    /// The sequential spec of what the clients do, for the linearizability check.
    type Spec: SeqSpec;
    /// The safety monitor's state (what it remembers across steps).
    type Monitor;

    /// The system's name (`rsl`, `kv`, `lock`).
    fn name(&self) -> &'static str;
    /// How many servers: nodes `0..servers`. They crash, restart and have disks.
    fn servers(&self) -> usize;
    /// How many clients: nodes after the servers.
    fn clients(&self) -> usize;
    /// The fault kinds that apply to this system.
    fn fault_kinds(&self) -> Vec<FaultKind>;
    /// How many servers may be down (crashed or with a lost disk) at once: a crash that would
    /// exceed it is skipped.
    fn max_down(&self) -> usize;
    /// How many servers may lose their disk for good.
    fn max_lost(&self) -> usize;
    /// Draws `n` operations for client `client`.
    fn draw_ops(
        &self,
        client: usize,
        n: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<<Self::Spec as SeqSpec>::Op>;
    /// The actor of `node`, starting when its own clock reads `start_us` microseconds (for
    /// what a runtime derives from its clock, such as an incarnation's epoch); a client gets
    /// its operations. `variant` is the case's random word for the system's own choices (the
    /// swarm idea applied to the system: RSL draws which clients track the leader).
    fn actor(
        &self,
        node: usize,
        start_us: u64,
        variant: u64,
        ops: &Arc<Vec<<Self::Spec as SeqSpec>::Op>>,
    ) -> Self::Actor;
    /// The unique id the servers know client `actor`'s `k`-th call of this incarnation by (an
    /// RSL request's sequence number), to match their [`SimSystem::witness`] to the history.
    fn request_id(&self, _actor: &Self::Actor, _k: usize) -> Option<u64> {
        None
    }
    /// The order in which the servers executed the clients' requests, as (client index,
    /// request id): a claimed linearization that the history check verifies first (see
    /// [`history::check_with_witness`]). `None`: search.
    fn witness(&self, _mon: &Self::Monitor) -> Option<Vec<(usize, u64)>> {
        None
    }
    /// Whether a client operation is a call the history records (one the client waits for an
    /// answer to); others (an admin's range move) are not.
    fn is_call(&self, _op: &<Self::Spec as SeqSpec>::Op) -> bool {
        true
    }
    /// Which messages a server takes from a node that is not a peer.
    fn accept_from_stranger(&self) -> fn(&<Self::Actor as Actor>::Msg) -> bool;
    /// Server `node`'s storage code over its simulated disk (the code the runtime runs, on
    /// another file system), and the record file a damaged disk has a byte flipped in.
    fn store(&self, fs: Arc<SimFs>, node: usize) -> (Box<dyn Store<Self::Storage>>, PathBuf);
    /// Whether a client in `state` stopped in a way its deployed version answers by starting
    /// a new incarnation (a KV client whose channel a host closed, or that gave up an operation
    /// at its caller's timeout): the world then restarts it at once, as a client restart,
    /// abandoning the operation it waited for. Giving up an operation called after the heal is
    /// a liveness failure: once the faults are over, every operation must be answered.
    fn client_starts_over(&self, _state: &<Self::Actor as Actor>::State) -> Option<StartOver> {
        None
    }
    /// A client's progress: (operations invoked, operations answered, finished).
    fn client_progress(
        &self,
        actor: &Self::Actor,
        state: &<Self::Actor as Actor>::State,
    ) -> (usize, usize, bool);
    /// The answer the client took for its `k`-th operation.
    fn client_answer(
        &self,
        state: &<Self::Actor as Actor>::State,
        k: usize,
    ) -> <Self::Spec as SeqSpec>::Ret;
    /// A fresh safety monitor.
    fn monitor(&self) -> Self::Monitor;
    /// Checks `node`'s state after a step.
    fn check_state(
        &self,
        mon: &mut Self::Monitor,
        node: usize,
        state: &<Self::Actor as Actor>::State,
    ) -> Result<(), String>;
    /// Checks a message as it is sent.
    fn check_send(
        &self,
        mon: &mut Self::Monitor,
        from: usize,
        to: usize,
        msg: &<Self::Actor as Actor>::Msg,
    ) -> Result<(), String>;
    /// `node` (re)started: a monitor that caches what it checked of a node forgets it.
    fn started(&self, _mon: &mut Self::Monitor, _node: usize) {}
    /// Milestones the monitor saw (view changes, state transfers, range moves...).
    fn milestones(&self, mon: &Self::Monitor) -> Vec<(&'static str, u64)>;
    /// What the system still waits for once every client finished, judged from the monitor and
    /// the states of the servers that are up (`None` for one that is down); `None` when the
    /// run can end. By default nothing: the run ends when every client finished.
    fn waiting_for(
        &self,
        _mon: &Self::Monitor,
        _servers: &[Option<&<Self::Actor as Actor>::State>],
    ) -> Option<String> {
        None
    }
}

/// Why a client starts over as a new incarnation (see [`SimSystem::client_starts_over`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOver {
    /// A server told it (a KV host closed its channel).
    Told,
    /// It gave up the operation it waited for (its caller's timeout).
    GaveUp,
}

/// Everything a run depends on: replaying a case gives the same run, event for event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimCase {
    /// The seed.
    pub seed: u64,
    /// Operations per client.
    pub ops: usize,
    /// Virtual length of the fault phase, milliseconds.
    pub duration_ms: u64,
    /// Virtual time allowed after the heal for every client to finish, milliseconds.
    pub liveness_ms: u64,
    /// The fault mix.
    pub mix: FaultMix,
    /// The scheduled faults.
    pub schedule: Vec<Scheduled>,
    /// A deliberately broken runtime behaviour.
    pub runtime_mutation: RuntimeMutation,
    /// Check safety after every k-th step (1: every step).
    pub check_every: u64,
    /// A random word the system uses for its own choices (see [`SimSystem::actor`]); drawn
    /// from the seed apart from everything else, so it changes no other draw.
    #[serde(default)]
    pub variant: u64,
}

impl SimCase {
    /// The case `seed` draws: its fault mix (from `allowed`, or exactly `pinned`) and schedule.
    pub fn draw<S: SimSystem>(
        sys: &S,
        seed: u64,
        ops: usize,
        duration_ms: u64,
        pinned: Option<&[FaultKind]>,
    ) -> Self {
        let allowed = sys.fault_kinds();
        let mix = FaultMix::draw(seed, &allowed, pinned);
        let nodes = sys.servers() + sys.clients();
        let schedule = draw_schedule(seed, &mix, sys.servers(), nodes, duration_ms);
        SimCase {
            seed,
            ops,
            duration_ms,
            liveness_ms: 20_000,
            mix,
            schedule,
            runtime_mutation: RuntimeMutation::None,
            check_every: 1,
            variant: ChaCha8Rng::seed_from_u64(seed ^ 0x5641_5249_414e_5421).next_u64(),
        }
    }
}

/// What kind of property failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// A safety monitor.
    Safety,
    /// The clients' history.
    Linearizability,
    /// Not every client finished within the bound after the heal.
    Liveness,
}

/// A failed run: what broke, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Which property.
    pub kind: FailureKind,
    /// What broke, in words.
    pub what: String,
    /// At which event.
    pub event: u64,
    /// At what virtual time, microseconds.
    pub at_us: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimOutcome {
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end, microseconds.
    pub virtual_us: u64,
    /// Running hash of the event log (the determinism check compares it).
    pub hash: u64,
    /// The running hash after each event (kept only when asked for).
    pub hashes: Vec<u64>,
    /// Faults injected, by kind.
    pub faults: Vec<(String, u64)>,
    /// Milestones reached.
    pub milestones: Vec<(String, u64)>,
    /// Client operations answered.
    pub answered: u64,
    /// Operations in the history.
    pub operations: u64,
    /// Datagrams the drivers dropped (corrupt, unauthenticated...), summed over nodes.
    pub dropped: u64,
    /// The linearizability search gave up within its budget: the history was not judged.
    pub undecided: bool,
}

/// How a run is observed (none of it changes the run).
#[derive(Default)]
pub struct Observe {
    /// Writes the event log as JSON lines.
    pub trace: Option<Box<dyn Write>>,
    /// Keeps the running hash after every event.
    pub keep_hashes: bool,
}

/// A node's storage code with the disk's drawn failures: each save draws whether one of its
/// appends or syncs fails (see [`SimFs::draw_save_failure`]).
struct FailingSaves<T> {
    store: Box<dyn Store<T>>,
    disk: Arc<SimFs>,
}

impl<T> Store<T> for FailingSaves<T> {
    fn init(&mut self) -> Result<(), StorageError> {
        self.store.init()
    }

    fn load(&mut self) -> Result<Option<T>, StorageError> {
        self.store.load()
    }

    fn save_all(&mut self, saves: Vec<T>) -> Result<u64, StorageError> {
        self.disk.draw_save_failure();
        let r = self.store.save_all(saves);
        match self.disk.take_unused_failure() {
            Some(source) if r.is_ok() => Err(StorageError::Io {
                path: "/sim".into(),
                op: "write",
                source,
            }),
            _ => r,
        }
    }
}

/// A node's clock: local time runs at `1 + ppm/10^6` of virtual time from an anchor.
#[derive(Clone, Copy, Debug)]
struct Clock {
    anchor_g: u64,
    anchor_l: u64,
    ppm: i64,
}

impl Clock {
    fn local(&self, g: u64) -> Nanos {
        let d = (g.saturating_sub(self.anchor_g)) as i128;
        let l = self.anchor_l as i128 + d * (1_000_000 + self.ppm as i128) / 1_000_000;
        l.clamp(0, u64::MAX as i128) as u64
    }

    /// The first virtual time at which the local clock reads at least `l`.
    fn global_of(&self, l: Nanos) -> u64 {
        if l <= self.anchor_l {
            return self.anchor_g;
        }
        let d = (l - self.anchor_l) as i128;
        let rate = 1_000_000 + self.ppm as i128;
        let g = self.anchor_g as i128 + (d * 1_000_000 + rate - 1) / rate;
        g.clamp(0, u64::MAX as i128) as u64
    }

    fn reanchor(&mut self, g: u64, ppm: i64, jump: u64) {
        self.anchor_l = self.local(g).saturating_add(jump);
        self.anchor_g = g;
        self.ppm = ppm;
    }
}

enum Ev {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    Wake {
        node: usize,
        inc: u64,
    },
    Fault(usize),
    Restart {
        node: usize,
    },
    /// A power cut armed inside the next write of `node` did not come (it wrote nothing): the
    /// power goes now.
    CutDue {
        node: usize,
        inc: u64,
    },
    /// A client starts over as a new incarnation (see [`SimSystem::client_starts_over`]).
    StartOver {
        node: usize,
        inc: u64,
        why: StartOver,
    },
    Heal,
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Node<A: Actor, Op> {
    driver: Option<Driver<A>>,
    inc: u64,
    disk: Option<Arc<SimFs>>,
    lost: bool,
    /// A power cut is armed inside the next storage write: the server stays down this long.
    cut_down_ms: Option<u64>,
    /// Whether the server has started once (later starts are from its disk).
    initialised: bool,
    paused_until: u64,
    clock: Clock,
    wake: Option<u64>,
    counters: Arc<Counters>,
    /// Client: its operations, and the history entry of each invoked one.
    ops: Arc<Vec<Op>>,
    entries: Vec<usize>,
    answered: usize,
    done: bool,
}

/// Mixes a word into a running hash (splitmix64 finaliser).
fn mix(h: u64, w: u64) -> u64 {
    let mut z = h ^ w.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn mix_bytes(mut h: u64, b: &[u8]) -> u64 {
    for c in b.chunks(8) {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    mix(h, b.len() as u64)
}

fn addr(node: usize) -> SocketAddrV4 {
    SocketAddrV4::from(Id::from(node))
}

const MS: u64 = 1_000_000;

/// One run of `sys` on `case`.
pub fn run<S>(sys: &S, case: &SimCase, observe: &mut Observe) -> SimOutcome
where
    S: SimSystem,
{
    World::new(sys, case, observe).run()
}

struct World<'a, S: SimSystem> {
    sys: &'a S,
    case: &'a SimCase,
    obs: &'a mut Observe,
    nodes: Vec<Node<S::Actor, <S::Spec as SeqSpec>::Op>>,
    servers: usize,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    now: u64,
    event: u64,
    steps: u64,
    hash: u64,
    net_rng: ChaCha8Rng,
    /// Whether a crash falls inside a write, and where (drawn apart from every other draw).
    torn_rng: ChaCha8Rng,
    link_latency: Vec<u64>,
    blocked: Vec<(usize, usize, u64)>,
    healed: bool,
    /// The event number of the heal, once it happened.
    heal_event: Option<u64>,
    heal_at: u64,
    key: Arc<ClusterKey>,
    monitor: S::Monitor,
    history: Vec<Operation<S::Spec>>,
    /// The history entry of each (client index, request id) (see [`SimSystem::request_id`]).
    requests: std::collections::HashMap<(usize, u64), usize>,
    faults: std::collections::BTreeMap<&'static str, u64>,
    failure: Option<Failure>,
    undecided: bool,
}

impl<'a, S> World<'a, S>
where
    S: SimSystem,
{
    fn new(sys: &'a S, case: &'a SimCase, obs: &'a mut Observe) -> Self {
        let servers = sys.servers();
        let n = servers + sys.clients();
        let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
        let mut key = [0u8; 32];
        rng.fill(&mut key);
        let mut link_latency = Vec::with_capacity(n * n);
        for _ in 0..n * n {
            let base = case.mix.latency_us.max(1);
            link_latency.push(rng.random_range(base / 2..=base + base / 2) * 1_000);
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            // Every draw is made whatever the mix, so that a shrunk mix keeps the same
            // workload and latencies.
            let drift: i64 = rng.random_range(-1_000_000..=1_000_000);
            let ppm = drift * case.mix.drift_ppm as i64 / 1_000_000;
            let offset = rng.random_range(0..10_000u64) * MS;
            let offset = if case.mix.has(FaultKind::Clock) {
                offset
            } else {
                0
            };
            let ops = if i >= servers {
                let mut ops_rng = ChaCha8Rng::seed_from_u64(case.seed ^ ((i as u64) << 40));
                Arc::new(sys.draw_ops(i - servers, case.ops, &mut ops_rng))
            } else {
                Arc::new(Vec::new())
            };
            let disk = (i < servers).then(|| {
                Arc::new(SimFs::new(
                    case.seed ^ (i as u64) << 32 ^ 0xd15c,
                    case.mix.disk_error,
                    DiskMutation::of(case.runtime_mutation),
                ))
            });
            nodes.push(Node {
                driver: None,
                inc: 0,
                disk,
                lost: false,
                cut_down_ms: None,
                initialised: false,
                paused_until: 0,
                clock: Clock {
                    anchor_g: 0,
                    anchor_l: offset,
                    ppm,
                },
                wake: None,
                counters: Arc::new(Counters::default()),
                ops,
                entries: Vec::new(),
                answered: 0,
                done: i < servers,
            });
        }
        World {
            sys,
            case,
            obs,
            nodes,
            servers,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            event: 0,
            steps: 0,
            hash: mix(0, case.seed),
            net_rng: ChaCha8Rng::seed_from_u64(case.seed ^ 0x6e65_7477),
            torn_rng: ChaCha8Rng::seed_from_u64(case.seed ^ 0x546f_726e_5772_6974),
            link_latency,
            blocked: Vec::new(),
            healed: false,
            heal_event: None,
            heal_at: case.duration_ms * MS,
            key: Arc::new(ClusterKey::from_bytes(key)),
            monitor: sys.monitor(),
            history: Vec::new(),
            requests: std::collections::HashMap::new(),
            faults: Default::default(),
            failure: None,
            undecided: false,
        }
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn count(&mut self, what: &'static str) {
        *self.faults.entry(what).or_default() += 1;
    }

    fn trace(&mut self, node: usize, event: &str, detail: impl FnOnce() -> String) {
        if let Some(w) = self.obs.trace.as_mut() {
            let line = serde_json::json!({
                "event_no": self.event,
                "t_us": self.now / 1_000,
                "node": node,
                "event": event,
                "detail": detail(),
            });
            let _ = writeln!(w, "{line}");
        }
    }

    fn fail(&mut self, kind: FailureKind, what: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                kind,
                what,
                event: self.event,
                at_us: self.now / 1_000,
            });
        }
    }

    /// Starts (or restarts) `node` from its disk; a disk that is corrupt keeps it down.
    fn start(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.inc += 1;
        n.wake = None;
        let servers: Vec<SocketAddrV4> = (0..self.servers).map(addr).collect();
        n.cut_down_ms = None;
        // A server that never started is initialised, on a wiped disk (an operator running
        // `--init` again: it never promised anything); one that did starts from its disk.
        let init = match n.disk.as_ref() {
            Some(d) => {
                d.take_power_cut(); // the power is back
                d.disarm_power_cut(); // a cut armed for the last incarnation never came
                if !n.initialised {
                    d.wipe();
                }
                !n.initialised
            }
            None => false,
        };
        let store = n.disk.clone().map(|d| {
            Box::new(FailingSaves {
                store: self.sys.store(d.clone(), node).0,
                disk: d,
            }) as Box<dyn Store<S::Storage>>
        });
        // Servers are peers (every datagram between them sealed with the cluster key); a client
        // is a stranger to them, and takes what it gets (its own code filters replies).
        let is_server = node < self.servers;
        let cfg = RuntimeConfig::<S::Actor> {
            peers: if is_server { servers } else { Vec::new() },
            key: Some(self.key.clone()),
            accept_from_stranger: if is_server {
                self.sys.accept_from_stranger()
            } else {
                |_| true
            },
            storage: store,
            init,
            seed: self.case.seed ^ ((node as u64) << 20) ^ n.inc,
            observe: None,
        };
        let local = n.clock.local(self.now);
        let actor = self
            .sys
            .actor(node, local / 1_000, self.case.variant, &n.ops);
        let counters = n.counters.clone();
        let mutation = self.case.runtime_mutation;
        match Driver::start_mutated(actor, Id::from(node), cfg, counters, local, mutation) {
            Ok((d, sends)) => {
                self.nodes[node].driver = Some(d);
                if self.power_cut_inside_a_write(node) {
                    return;
                }
                self.nodes[node].initialised = true;
                self.sys.started(&mut self.monitor, node);
                let inc = self.nodes[node].inc;
                self.trace(node, "start", || format!("incarnation {inc}"));
                self.after_step(node, sends);
            }
            Err(e) => {
                self.nodes[node].driver = None;
                if self.power_cut_inside_a_write(node) {
                    return;
                }
                if self.nodes[node].lost {
                    // The disk is corrupt: refusing to start is the right answer; it stays down.
                    self.count("refused to start (corrupt disk)");
                    self.trace(node, "refused-start", || e.to_string());
                } else if self.nodes[node].initialised && !matches!(e, StorageError::Io { .. }) {
                    // Only a failed write or a power cut may stop a start: storage that does
                    // not load at a restart lost what the server acknowledged.
                    self.trace(node, "refused-start", || e.to_string());
                    self.fail(
                        FailureKind::Safety,
                        format!("server {node}'s storage does not load at its restart: {e}"),
                    );
                } else {
                    // The start's own save failed: the process stops, and is restarted.
                    self.count("stops on a failed write");
                    self.trace(node, "start-failed", || e.to_string());
                    let at = self.now + 50 * MS;
                    self.push(at, Ev::Restart { node });
                }
            }
        }
    }

    /// If the power of `node` went inside a storage write (an armed cut came): it is down
    /// until its restart.
    fn power_cut_inside_a_write(&mut self, node: usize) -> bool {
        if !self.nodes[node].disk.as_ref().is_some_and(|d| d.is_cut()) {
            return false;
        }
        self.count("crashes inside a write");
        let down_ms = self.nodes[node].cut_down_ms.take().unwrap_or(50);
        self.crash(node, "power cut inside a storage write");
        let at = (self.now + down_ms * MS).min(self.heal_at.max(self.now));
        self.push(at, Ev::Restart { node });
        true
    }

    /// A crash of server `node` as a power cut (what was not synced is lost); it restarts
    /// `down_ms` later (at the heal at the latest).
    fn power_down(&mut self, node: usize, why: &str, down_ms: u64) {
        if let Some(d) = self.nodes[node].disk.as_ref() {
            d.power_cut();
        }
        self.nodes[node].cut_down_ms = None;
        self.crash(node, why);
        let at = (self.now + down_ms * MS).min(self.heal_at.max(self.now));
        self.push(at, Ev::Restart { node });
    }

    fn crash(&mut self, node: usize, why: &str) {
        if self.nodes[node].driver.take().is_some() {
            self.nodes[node].inc += 1;
            self.nodes[node].wake = None;
            self.trace(node, "crash", || why.to_string());
        }
    }

    /// Servers down, or about to go down at a power cut armed inside their next write.
    fn servers_down(&self) -> usize {
        (0..self.servers)
            .filter(|&i| self.nodes[i].driver.is_none() || self.nodes[i].cut_down_ms.is_some())
            .count()
    }

    /// After a step of `node`: check it, record client history, send, re-arm its wake-up.
    fn after_step(&mut self, node: usize, sends: Vec<Outgoing<<S::Actor as Actor>::Msg>>) {
        self.steps += 1;
        let Some(d) = self.nodes[node].driver.as_ref() else {
            return;
        };
        if self.failure.is_none() && self.steps.is_multiple_of(self.case.check_every.max(1)) {
            if let Err(e) = self.sys.check_state(&mut self.monitor, node, d.state()) {
                self.fail(FailureKind::Safety, format!("node {node}: {e}"));
            }
        }
        if node >= self.servers {
            self.record_client(node);
        }
        for o in sends {
            let to = usize::from(Id::from(o.to));
            if self.failure.is_none() {
                if let Err(e) = self.sys.check_send(&mut self.monitor, node, to, &o.msg) {
                    self.fail(FailureKind::Safety, format!("{node} -> {to}: {e}"));
                }
            }
            self.trace(node, "send", || format!("to {to}: {:?}", o.msg));
            self.transmit(node, to, o.bytes);
        }
        self.rearm(node);
    }

    fn record_client(&mut self, node: usize) {
        let Some(d) = self.nodes[node].driver.as_ref() else {
            return;
        };
        let (invoked, answered, done) = self.sys.client_progress(d.actor(), d.state());
        let client = node - self.servers;
        let n = &self.nodes[node];
        let mut new_answers = Vec::new();
        for k in n.answered..answered.min(n.entries.len()) {
            new_answers.push((n.entries[k], self.sys.client_answer(d.state(), k)));
        }
        let new_calls: Vec<_> = n
            .ops
            .iter()
            .filter(|o| self.sys.is_call(o))
            .skip(n.entries.len())
            .take(invoked.saturating_sub(n.entries.len()))
            .enumerate()
            .map(|(i, o)| {
                (
                    o.clone(),
                    self.sys.request_id(d.actor(), n.entries.len() + i),
                )
            })
            .collect();
        let starts_over = self.sys.client_starts_over(d.state());
        // The call time of the operation it waits for (the last one invoked, if unanswered).
        let waiting_since = self.nodes[node]
            .entries
            .last()
            .map(|&e| &self.history[e])
            .filter(|op| op.ret.is_none())
            .map(|op| op.call);
        for (entry, ret) in new_answers {
            self.history[entry].ret = Some((self.event, ret));
        }
        if let Some(why) = starts_over {
            if why == StartOver::GaveUp
                && self.failure.is_none()
                && waiting_since.is_some_and(|call| self.heal_event.is_some_and(|h| call > h))
            {
                self.fail(
                    FailureKind::Liveness,
                    format!(
                        "client {} gave up an operation it called after the heal",
                        node - self.servers
                    ),
                );
            }
            let inc = self.nodes[node].inc;
            let at = self.now + MS;
            self.push(at, Ev::StartOver { node, inc, why });
        }
        let n = &mut self.nodes[node];
        n.answered = n.answered.max(answered.min(n.entries.len()));
        for (op, id) in new_calls {
            n.entries.push(self.history.len());
            if let Some(id) = id {
                self.requests.insert((client, id), self.history.len());
            }
            self.history.push(Operation {
                client,
                op,
                call: self.event,
                ret: None,
            });
        }
        n.done = done;
    }

    fn transmit(&mut self, from: usize, to: usize, mut bytes: Vec<u8>) {
        let n = self.nodes.len();
        if to >= n {
            self.count("sent to no node");
            return;
        }
        if !self.healed {
            if self
                .blocked
                .iter()
                .any(|&(a, b, until)| a == from && b == to && until > self.now)
            {
                self.count("partition drops");
                return;
            }
            let m = &self.case.mix;
            if m.loss > 0.0 && self.net_rng.random_bool(m.loss) {
                self.count("losses");
                return;
            }
            if m.corruption > 0.0 && self.net_rng.random_bool(m.corruption) && !bytes.is_empty() {
                let i = self.net_rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << self.net_rng.random_range(0..8);
                self.count("corruptions");
            }
            if m.duplication > 0.0 && self.net_rng.random_bool(m.duplication) {
                self.count("duplicates");
                let at = self.now + self.latency(from, to);
                self.push(
                    at,
                    Ev::Deliver {
                        to,
                        from,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
        let at = self.now + self.latency(from, to);
        self.push(at, Ev::Deliver { to, from, bytes });
    }

    fn latency(&mut self, from: usize, to: usize) -> u64 {
        let base = self.link_latency[from * self.nodes.len() + to];
        let jitter = if self.healed {
            0
        } else {
            self.case.mix.jitter_us * 1_000
        };
        base + if jitter > 0 {
            self.net_rng.random_range(0..jitter)
        } else {
            0
        }
    }

    /// Schedules `node`'s next wake-up at its earliest timer deadline (on its own clock).
    fn rearm(&mut self, node: usize) {
        let n = &self.nodes[node];
        let Some(d) = n.driver.as_ref() else {
            return;
        };
        let Some(deadline) = d.next_deadline() else {
            return;
        };
        let at = n.clock.global_of(deadline).max(self.now);
        if n.wake.is_some_and(|w| w <= at) {
            return;
        }
        let inc = n.inc;
        self.nodes[node].wake = Some(at);
        self.push(at, Ev::Wake { node, inc });
    }

    /// Restarts client `node` as a new incarnation on the same address: it takes the operations
    /// after the one it abandons (which stays in the history without an answer: it may or may
    /// not have happened).
    fn restart_client(&mut self, node: usize, why: &str) {
        let n = &self.nodes[node];
        let invoked = n.entries.len();
        let mut calls = 0;
        let cut = n
            .ops
            .iter()
            .position(|o| {
                if self.sys.is_call(o) {
                    calls += 1;
                }
                calls > invoked
            })
            .unwrap_or(n.ops.len());
        let cut = if invoked == 0 { 0 } else { cut };
        let rest: Vec<_> = n.ops[cut..].to_vec();
        self.crash(node, why);
        let n = &mut self.nodes[node];
        n.ops = Arc::new(rest);
        n.entries.clear();
        n.answered = 0;
        self.start(node);
    }

    fn apply_fault(&mut self, i: usize) {
        let ev = self.case.schedule[i].event.clone();
        self.trace(usize::MAX, "fault", || format!("{ev:?}"));
        match ev {
            FaultEvent::Crash { node, down_ms } => {
                let alive = self.nodes[node].driver.is_some();
                if !alive || self.servers_down() >= self.sys.max_down() {
                    self.count("crashes skipped (too many down)");
                    return;
                }
                if self.case.mix.has(FaultKind::TornWrite)
                    && self.torn_rng.random_bool(self.case.mix.torn_write)
                {
                    // The power goes at the k-th file operation of the next writes.
                    let k = self.torn_rng.random_range(1..=6);
                    self.count("power cuts armed inside a write");
                    if let Some(d) = self.nodes[node].disk.as_ref() {
                        d.arm_power_cut(k);
                    }
                    self.nodes[node].cut_down_ms = Some(down_ms);
                    let inc = self.nodes[node].inc;
                    let at = self.now + 200 * MS;
                    self.push(at, Ev::CutDue { node, inc });
                    return;
                }
                self.count("crashes");
                self.power_down(node, "scheduled crash (power cut)", down_ms);
            }
            FaultEvent::LoseDisk { node } => {
                let lost = (0..self.servers).filter(|&s| self.nodes[s].lost).count();
                let alive = self.nodes[node].driver.is_some();
                if !alive
                    || lost >= self.sys.max_lost()
                    || self.servers_down() >= self.sys.max_down()
                {
                    self.count("disk losses skipped");
                    return;
                }
                self.count("disk losses");
                self.nodes[node].lost = true;
                if let Some(d) = self.nodes[node].disk.as_ref() {
                    d.power_cut();
                    let (_, record) = self.sys.store(d.clone(), node);
                    d.damage(&record);
                }
                self.crash(node, "disk lost");
                // It tries to come back at once: the driver must refuse the corrupt disk.
                let at = self.now + MS;
                self.push(at, Ev::Restart { node });
            }
            FaultEvent::Partition {
                a,
                b,
                symmetric,
                for_ms,
            } => {
                self.count(if symmetric {
                    "partitions"
                } else {
                    "one-way partitions"
                });
                let until = self.now + for_ms * MS;
                for &x in &a {
                    for &y in &b {
                        self.blocked.push((x, y, until));
                        if symmetric {
                            self.blocked.push((y, x, until));
                        }
                    }
                }
            }
            FaultEvent::RestartClient { client } => {
                let node = self.servers + client;
                if node >= self.nodes.len()
                    || self.nodes[node].driver.is_none()
                    || self.nodes[node].done
                {
                    return;
                }
                self.count("client restarts");
                self.restart_client(node, "client restart");
            }
            FaultEvent::Pause { node, for_ms } => {
                self.count("pauses");
                let until = self.now + for_ms * MS;
                let n = &mut self.nodes[node];
                n.paused_until = n.paused_until.max(until);
            }
            FaultEvent::ClockJump { node, ms } => {
                self.count("clock jumps");
                let now = self.now;
                let n = &mut self.nodes[node];
                let ppm = n.clock.ppm;
                n.clock.reanchor(now, ppm, ms * MS);
                self.nodes[node].wake = None;
                self.rearm(node);
            }
        }
    }

    fn heal(&mut self) {
        self.healed = true;
        self.heal_event = Some(self.event);
        self.blocked.clear();
        let now = self.now;
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            n.paused_until = n.paused_until.min(now);
            n.clock.reanchor(now, 0, 0);
            if let Some(d) = n.disk.as_ref() {
                d.set_fail_p(0.0);
                d.disarm_power_cut();
            }
            n.cut_down_ms = None;
            n.wake = None;
            if i < self.servers && n.driver.is_none() && !n.lost {
                self.count("restarts at heal");
                self.start(i);
            } else {
                self.rearm(i);
            }
        }
        self.trace(usize::MAX, "heal", String::new);
    }

    fn clients_done(&self) -> bool {
        self.nodes[self.servers..].iter().all(|n| n.done) && self.system_waits_for().is_none()
    }

    /// What the system still waits for (see [`SimSystem::waiting_for`]).
    fn system_waits_for(&self) -> Option<String> {
        let servers: Vec<Option<&<S::Actor as Actor>::State>> = self.nodes[..self.servers]
            .iter()
            .map(|n| n.driver.as_ref().map(|d| d.state()))
            .collect();
        self.sys.waiting_for(&self.monitor, &servers)
    }

    fn run(mut self) -> SimOutcome {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
        for i in 0..self.case.schedule.len() {
            let at = self.case.schedule[i].at_us * 1_000;
            self.push(at, Ev::Fault(i));
        }
        self.push(self.heal_at, Ev::Heal);
        let deadline = self.heal_at + self.case.liveness_ms * MS;
        let mut hashes = Vec::new();
        while self.failure.is_none() {
            if self.healed && self.clients_done() {
                break;
            }
            if !self.healed && self.clients_done() {
                // The workload is over before the fault phase: heal now and finish.
                self.heal();
                continue;
            }
            let Some(Reverse(q)) = self.queue.pop() else {
                break;
            };
            if q.at > deadline {
                self.now = deadline;
                break;
            }
            self.now = q.at;
            self.event += 1;
            self.hash = mix(mix(self.hash, q.at), q.seq);
            match q.ev {
                Ev::Deliver { to, from, bytes } => {
                    self.hash = mix_bytes(mix(self.hash, to as u64), &bytes);
                    let n = &self.nodes[to];
                    if n.paused_until > self.now {
                        let at = n.paused_until;
                        self.push(at, Ev::Deliver { to, from, bytes });
                        continue;
                    }
                    self.deliver(to, from, &bytes);
                }
                Ev::Wake { node, inc } => {
                    self.hash = mix(self.hash, node as u64 + 1);
                    let n = &self.nodes[node];
                    if n.inc != inc || n.wake != Some(q.at) {
                        continue;
                    }
                    if n.paused_until > self.now {
                        let at = n.paused_until;
                        self.nodes[node].wake = Some(at);
                        self.push(at, Ev::Wake { node, inc });
                        continue;
                    }
                    self.nodes[node].wake = None;
                    self.wake(node);
                }
                Ev::Fault(i) => {
                    if !self.healed {
                        self.apply_fault(i);
                    }
                }
                Ev::Restart { node } => {
                    if self.nodes[node].driver.is_none() {
                        self.count("restarts");
                        self.start(node);
                    }
                }
                Ev::CutDue { node, inc } => {
                    self.hash = mix(self.hash, node as u64 + 11);
                    let n = &self.nodes[node];
                    let armed = n.disk.as_ref().is_some_and(|d| d.power_cut_armed());
                    if !self.healed && n.inc == inc && n.driver.is_some() && armed {
                        if let Some(d) = n.disk.as_ref() {
                            d.disarm_power_cut();
                        }
                        let down_ms = self.nodes[node].cut_down_ms.unwrap_or(50);
                        self.count("crashes");
                        self.power_down(
                            node,
                            "scheduled crash (power cut, no write came)",
                            down_ms,
                        );
                    }
                }
                Ev::StartOver { node, inc, why } => {
                    self.hash = mix(self.hash, node as u64 + 7);
                    if self.nodes[node].inc == inc && self.nodes[node].driver.is_some() {
                        self.count(match why {
                            StartOver::Told => "clients starting over (channel closed)",
                            StartOver::GaveUp => "clients starting over (gave up an operation)",
                        });
                        self.restart_client(node, "starting over as a new incarnation");
                    }
                }
                Ev::Heal => {
                    if !self.healed {
                        self.heal();
                    }
                }
            }
            if self.obs.keep_hashes {
                hashes.push(self.hash);
            }
        }
        if self.obs.trace.is_some() {
            for i in 0..self.nodes.len() {
                let st = self.nodes[i]
                    .driver
                    .as_ref()
                    .map(|d| format!("{:?}", d.state()));
                self.trace(i, "final-state", || st.unwrap_or_else(|| "down".into()));
            }
        }
        if self.failure.is_none() && !self.clients_done() {
            let waiting: Vec<String> = (self.servers..self.nodes.len())
                .filter(|&i| !self.nodes[i].done)
                .map(|i| {
                    let n = &self.nodes[i];
                    let calls = n.ops.iter().filter(|o| self.sys.is_call(o)).count();
                    format!(
                        "client {} ({} of {} answered)",
                        i - self.servers,
                        n.answered,
                        calls
                    )
                })
                .collect();
            let down: Vec<usize> = (0..self.servers)
                .filter(|&i| self.nodes[i].driver.is_none())
                .collect();
            let waiting = if waiting.is_empty() {
                self.system_waits_for().unwrap_or_default()
            } else {
                waiting.join(", ")
            };
            self.fail(
                FailureKind::Liveness,
                format!(
                    "{} ms after the heal, not finished: {}{}",
                    self.case.liveness_ms,
                    waiting,
                    if down.is_empty() {
                        String::new()
                    } else {
                        format!(" (servers down for good: {down:?})")
                    }
                ),
            );
        }
        if self.failure.is_none() {
            // The servers' execution order, if every request in it is one the history holds.
            let witness: Option<Vec<usize>> = self.sys.witness(&self.monitor).and_then(|w| {
                w.iter()
                    .map(|key| self.requests.get(key).copied())
                    .collect()
            });
            match history::check_with_witness::<S::Spec>(&self.history, witness.as_deref()) {
                Ok(_) => {}
                // The search gave up: not a proof of anything. Counted and reported, so a
                // person sees which seeds were not judged; the seed does not fail.
                Err(e) if e.undecided => self.undecided = true,
                Err(e) => self.fail(
                    FailureKind::Linearizability,
                    format!(
                        "the clients' history is not linearizable (partition {}):\n    {}",
                        e.partition,
                        e.operations.join("\n    ")
                    ),
                ),
            }
        }
        let mut faults: Vec<(String, u64)> = self
            .faults
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let disks = || self.nodes.iter().filter_map(|n| n.disk.as_ref());
        let failed_writes: u64 = disks().map(|d| d.failed_writes()).sum();
        if failed_writes > 0 {
            faults.push(("failed disk writes".into(), failed_writes));
        }
        let torn: u64 = disks().map(|d| d.torn_writes()).sum();
        if torn > 0 {
            faults.push(("torn writes".into(), torn));
        }
        let dropped = self.nodes.iter().map(|n| n.counters.dropped()).sum();
        SimOutcome {
            failure: self.failure.clone(),
            events: self.event,
            virtual_us: self.now / 1_000,
            hash: self.hash,
            hashes,
            faults,
            milestones: self
                .sys
                .milestones(&self.monitor)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            answered: self.history.iter().filter(|o| o.ret.is_some()).count() as u64,
            operations: self.history.len() as u64,
            dropped,
            undecided: self.undecided,
        }
    }

    fn deliver(&mut self, to: usize, from: usize, bytes: &[u8]) {
        let Some(d) = self.nodes[to].driver.as_ref() else {
            return;
        };
        let Some((src, msg)) = d.admit(bytes, SocketAddr::V4(addr(from))) else {
            self.trace(to, "dropped", || {
                format!("from {from}: {} bytes", bytes.len())
            });
            return;
        };
        self.trace(to, "deliver", || format!("from {from}: {msg:?}"));
        let mut out = Out::new();
        let d = self.nodes[to].driver.as_mut().expect("checked above");
        d.step(src, msg, &mut out);
        let local = self.nodes[to].clock.local(self.now);
        let d = self.nodes[to].driver.as_mut().expect("checked above");
        let r = d.commit(out, local);
        self.committed(to, r);
    }

    fn wake(&mut self, node: usize) {
        let local = self.nodes[node].clock.local(self.now);
        if self.nodes[node].driver.is_none() {
            return;
        }
        self.trace(node, "timers", String::new);
        let d = self.nodes[node].driver.as_mut().expect("checked above");
        let r = d.fire_due(local);
        self.committed(node, r);
    }

    /// After a step's commit: its sends leave, or the process stops on a failed save. If the
    /// power went inside one of the step's writes, the process is gone whatever the driver
    /// made of the failure, and nothing leaves.
    fn committed(&mut self, node: usize, r: Result<Vec<Outgoing<S::Msg>>, StorageError>) {
        if self.power_cut_inside_a_write(node) {
            return;
        }
        match r {
            Ok(sends) => self.after_step(node, sends),
            Err(e) => self.storage_failed(node, e),
        }
    }

    /// A failed save: the driver returned before sending; the process stops and restarts.
    fn storage_failed(&mut self, node: usize, e: StorageError) {
        self.count("stops on a failed write");
        self.crash(node, &format!("storage write failed: {e}"));
        let at = self.now + 50 * MS;
        self.push(at, Ev::Restart { node });
    }
}

/// One run of `sys` on `case`; with `determinism`, run again and compare the event logs (the
/// self-check), an error naming the first event that differs.
pub fn run_checked<S>(
    sys: &S,
    case: &SimCase,
    observe: &mut Observe,
    determinism: bool,
) -> Result<SimOutcome, String>
where
    S: SimSystem,
{
    observe.keep_hashes |= determinism;
    let out = run(sys, case, observe);
    if determinism {
        let mut again = Observe {
            trace: None,
            keep_hashes: true,
        };
        compare_runs(&out, &run(sys, case, &mut again))?;
    }
    Ok(out)
}

/// Whether `a` and `b` are the same run (the determinism self-check); on a mismatch, the first
/// event whose running hash differs.
pub fn compare_runs(a: &SimOutcome, b: &SimOutcome) -> Result<(), String> {
    if a.hash == b.hash && a.events == b.events {
        return Ok(());
    }
    let first = a
        .hashes
        .iter()
        .zip(&b.hashes)
        .position(|(x, y)| x != y)
        .map_or_else(
            || format!("after {} events", a.hashes.len().min(b.hashes.len())),
            |i| format!("at event {}", i + 1),
        );
    Err(format!(
        "the same case ran differently twice: the event logs differ {first} ({} and {} events)",
        a.events, b.events
    ))
}
