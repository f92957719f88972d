//! IronRSL over UDP: one replica on its socket ([`spawn_replica`]), a whole cluster on loopback in
//! one process ([`LocalCluster`], whose replicas can be killed and restarted), gauges that show a
//! running replica's protocol state, and an async client that tracks the leader.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use stateright::actor::{Id, Out};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::codec;
use super::config::{load_key, RslClusterConfig};
use super::driver::{Driver, Nanos};
use super::runtime::{bind_udp, next_wake, run_actor, send_all, Counters, RuntimeConfig};
use crate::actors::rsl::{
    App, Client, ClientConfig, ModelSwitches, Phase, Replica, ReplicaConfig, ReplicaState, RslMsg,
};

/// A running replica's protocol state, updated after every step that changes it.
#[derive(Debug, Default)]
pub struct ReplicaGauges {
    /// The view (ballot sequence number) the replica is in.
    pub view: AtomicU64,
    /// The index of that view's leader.
    pub view_leader: AtomicU64,
    /// 1 while this replica leads its view in phase 2.
    pub leading: AtomicU64,
    /// Slots executed.
    pub ops_complete: AtomicU64,
    /// The acceptor's log truncation point.
    pub log_truncation_point: AtomicU64,
    /// Votes the acceptor holds (bounded by `max_log_length`).
    pub votes: AtomicU64,
    /// Requests waiting in the proposer's queue.
    pub queued_requests: AtomicU64,
    /// 1 once the replica has caught up through state transfer.
    pub state_transfer: AtomicU64,
    /// Sessions in the client session table (bounded by `max_client_sessions`).
    pub client_sessions: AtomicU64,
    /// The session table's expiry watermark (0 until a session is evicted).
    pub session_watermark: AtomicU64,
}

/// A snapshot of [`ReplicaGauges`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GaugeSnapshot {
    /// See [`ReplicaGauges::view`].
    pub view: u64,
    /// See [`ReplicaGauges::view_leader`].
    pub view_leader: u64,
    /// See [`ReplicaGauges::leading`].
    pub leading: u64,
    /// See [`ReplicaGauges::ops_complete`].
    pub ops_complete: u64,
    /// See [`ReplicaGauges::log_truncation_point`].
    pub log_truncation_point: u64,
    /// See [`ReplicaGauges::votes`].
    pub votes: u64,
    /// See [`ReplicaGauges::queued_requests`].
    pub queued_requests: u64,
    /// See [`ReplicaGauges::state_transfer`].
    pub state_transfer: u64,
    /// See [`ReplicaGauges::client_sessions`].
    pub client_sessions: u64,
    /// See [`ReplicaGauges::session_watermark`].
    pub session_watermark: u64,
}

impl ReplicaGauges {
    fn update<A: App>(&self, me: usize, s: &ReplicaState<A>) {
        let set = |g: &AtomicU64, v: u64| g.store(v, Ordering::Relaxed);
        set(&self.view, s.election.view.seqno);
        set(&self.view_leader, s.election.view.proposer as u64);
        let leading = s.proposer.phase == Phase::Phase2 && s.election.view.proposer as usize == me;
        set(&self.leading, leading as u64);
        set(&self.ops_complete, s.executor.ops_complete);
        set(&self.log_truncation_point, s.acceptor.log_truncation_point);
        set(&self.votes, s.acceptor.votes.len() as u64);
        set(&self.queued_requests, s.proposer.request_queue.len() as u64);
        set(&self.state_transfer, s.milestones.state_transfer as u64);
        set(&self.client_sessions, s.executor.sessions.len() as u64);
        set(&self.session_watermark, s.executor.sessions.watermark());
    }

    /// The current values.
    pub fn snapshot(&self) -> GaugeSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GaugeSnapshot {
            view: g(&self.view),
            view_leader: g(&self.view_leader),
            leading: g(&self.leading),
            ops_complete: g(&self.ops_complete),
            log_truncation_point: g(&self.log_truncation_point),
            votes: g(&self.votes),
            queued_requests: g(&self.queued_requests),
            state_transfer: g(&self.state_transfer),
            client_sessions: g(&self.client_sessions),
            session_watermark: g(&self.session_watermark),
        }
    }
}

/// What a running replica exposes.
#[derive(Clone, Debug, Default)]
pub struct ReplicaStats {
    /// Runtime counters (datagrams, drops, timers, saves).
    pub counters: Arc<Counters>,
    /// Protocol gauges.
    pub gauges: Arc<ReplicaGauges>,
}

impl ReplicaStats {
    /// One JSON object with the replica's index, counters and gauges: the status line of
    /// `ironfleet rsl replica`.
    pub fn status_json(&self, id: usize) -> serde_json::Value {
        serde_json::json!({
            "replica": id,
            "counters": self.counters.to_json(),
            "gauges": self.gauges.snapshot(),
            "rss_kib": resident_kib(),
        })
    }
}

/// This process's resident set size in KiB (Linux; `None` elsewhere).
pub(crate) fn resident_kib() -> Option<u64> {
    resident_kib_of("self")
}

/// The resident set size in KiB of process `pid` (`"self"` for this one; Linux only).
pub fn resident_kib_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn v4(a: SocketAddr) -> Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(a) => bail!("expected an IPv4 address, got {a}"),
    }
}

pub use super::storage::Startup;
use super::storage::{cluster_startup, prepare_storage};

/// Starts replica `id` of `cluster` (app `A`) on `socket` as a tokio task; it runs until
/// `shutdown` turns true, or until a storage write fails (the task then ends with the error).
/// Storage is `cluster.storage_of(id)`; a cluster without `data_dir` runs only with
/// [`Startup::Ephemeral`], and an ephemeral replica only without `data_dir`.
pub fn spawn_replica<A: App>(
    cluster: &RslClusterConfig,
    id: usize,
    startup: Startup,
    socket: UdpSocket,
    stats: ReplicaStats,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<Result<()>>> {
    if id >= cluster.replicas.len() {
        bail!(
            "replica id {id} is not in the configuration (it has {} replicas: ids 0..{})",
            cluster.replicas.len(),
            cluster.replicas.len()
        );
    }
    prepare_storage(
        &cluster.data_dir,
        startup,
        "a replica must keep its votes and promises",
    )?;
    let ids: Arc<Vec<Id>> = Arc::new(cluster.replicas.iter().map(|a| Id::from(*a)).collect());
    let replica = Replica::<A>::new(ReplicaConfig {
        replicas: ids,
        me: id,
        params: cluster.params.clone(),
        switches: ModelSwitches::default(),
    });
    let gauges = stats.gauges.clone();
    let cfg = RuntimeConfig::<Replica<A>> {
        peers: cluster.replicas.clone(),
        key: load_key(&cluster.key_file)?,
        accept_from_stranger: |m: &RslMsg<A>| matches!(m, RslMsg::Request { .. }),
        storage: cluster
            .storage_of(id)
            .map(|f| Box::new(f) as Box<dyn crate::net::storage::Store<_>>),
        init: startup == Startup::Init,
        seed: id as u64,
        observe: Some(Box::new(move |s: &ReplicaState<A>| gauges.update(id, s))),
    };
    Ok(tokio::spawn(run_actor(
        replica,
        socket,
        cfg,
        stats.counters,
        shutdown,
    )))
}

fn loopback_any() -> SocketAddrV4 {
    SocketAddrV4::new([127, 0, 0, 1].into(), 0)
}

/// A replica task: its shutdown switch and its handle.
type Running = (watch::Sender<bool>, JoinHandle<Result<()>>);

/// Replicas running as tasks of this process, on loopback.
pub struct LocalCluster<A: App> {
    /// The cluster's configuration (its addresses are the replicas' real ones).
    pub config: RslClusterConfig,
    /// Each replica's counters and gauges (a restarted replica gets fresh ones).
    pub stats: Vec<ReplicaStats>,
    replicas: Vec<Option<Running>>,
    _app: std::marker::PhantomData<A>,
}

impl<A: App> LocalCluster<A> {
    /// Starts the replicas of `config` on its addresses; a port 0 in `config` means "any free
    /// port" and is replaced by the port bound.
    pub async fn start(mut config: RslClusterConfig) -> Result<Self> {
        if config.replicas.is_empty() {
            bail!("a cluster needs at least one replica");
        }
        let mut sockets = Vec::new();
        for (i, a) in config.replicas.iter_mut().enumerate() {
            let s = bind_udp(*a).with_context(|| format!("starting replica {i}"))?;
            *a = v4(s.local_addr()?)?;
            sockets.push(s);
        }
        let mut cluster = LocalCluster {
            config,
            stats: Vec::new(),
            replicas: Vec::new(),
            _app: std::marker::PhantomData,
        };
        let startup = cluster.startup()?;
        for (i, s) in sockets.into_iter().enumerate() {
            let stats = ReplicaStats::default();
            let (tx, rx) = watch::channel(false);
            let h = spawn_replica::<A>(&cluster.config, i, startup, s, stats.clone(), rx)?;
            cluster.stats.push(stats);
            cluster.replicas.push(Some((tx, h)));
        }
        Ok(cluster)
    }

    /// How the whole cluster starts (see [`cluster_startup`]).
    fn startup(&self) -> Result<Startup> {
        let files = self.config.data_dir.as_ref().map(|_| {
            (0..self.config.replicas.len())
                .filter_map(|i| self.config.storage_of(i))
                .map(|f| f.path().to_owned())
                .collect()
        });
        cluster_startup(files, "replicas")
    }

    /// `n` replicas on free loopback ports, default parameters, no storage.
    pub async fn loopback(n: usize) -> Result<Self> {
        let any: SocketAddrV4 = "127.0.0.1:0".parse().expect("literal address");
        Self::start(RslClusterConfig::new(vec![any; n])).await
    }

    /// The replicas' addresses.
    pub fn addrs(&self) -> Vec<SocketAddrV4> {
        self.config.replicas.clone()
    }

    /// Kills replica `i` abruptly (its task is aborted mid-step, as a crashed process would be):
    /// only what it saved to storage survives.
    pub async fn kill(&mut self, i: usize) {
        if let Some((_, h)) = self.replicas[i].take() {
            h.abort();
            let _ = h.await;
        }
    }

    /// Restarts replica `i` on its address, from its storage if the cluster keeps it.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i).await;
        let s = bind_udp(self.config.replicas[i])?;
        let stats = ReplicaStats::default();
        let (tx, rx) = watch::channel(false);
        let startup = match self.config.data_dir {
            Some(_) => Startup::Restore,
            None => Startup::Ephemeral,
        };
        let h = spawn_replica::<A>(&self.config, i, startup, s, stats.clone(), rx)?;
        self.stats[i] = stats;
        self.replicas[i] = Some((tx, h));
        Ok(())
    }

    /// The index of the replica leading in phase 2, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let leading: Vec<usize> = (0..self.stats.len())
            .filter(|&i| self.replicas[i].is_some())
            .filter(|&i| self.stats[i].gauges.leading.load(Ordering::Relaxed) == 1)
            .collect();
        (leading.len() == 1).then(|| leading[0])
    }

    /// Stops every replica gracefully and waits for them.
    pub async fn stop(self) -> Result<()> {
        for (tx, _) in self.replicas.iter().flatten() {
            let _ = tx.send(true);
        }
        for (_, h) in self.replicas.into_iter().flatten() {
            h.await.context("replica task panicked")??;
        }
        Ok(())
    }
}

/// A client of an IronRSL cluster: one request in flight. A request goes to the replica that
/// answered last (only a view's leader replies), or to every replica when the leader is unknown
/// or silent for one retransmission period (which is also what makes the other replicas suspect
/// a dead leader); retransmitted until a reply with its sequence number comes back.
///
/// There is no client logic here: each call runs one instance of the checked client actor
/// ([`Client`], with leader tracking on) through the runtime's sans-IO [`Driver`], the same
/// actor and driver the model checker and the simulator run. What stays here is the socket, the
/// clock, the caller's deadline, and reading the watermark of a refusal.
pub struct RslClient<A: App> {
    socket: UdpSocket,
    replicas: Vec<SocketAddrV4>,
    replica_ids: Arc<Vec<Id>>,
    id: Id,
    leader: Option<usize>,
    next_seqno: u64,
    buf: Vec<u8>,
    counters: Arc<Counters>,
    epoch: tokio::time::Instant,
    /// Retransmission period.
    pub retransmit: Duration,
    _app: std::marker::PhantomData<A>,
}

/// The wall clock in microseconds since the Unix epoch (1 if the clock is before it).
fn clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(1)
        .max(1)
}

/// The error [`RslClient::call`] returns when the cluster refused the request because the
/// client's session expired (it was evicted from the replicas' bounded session table). Whether
/// the operation was executed before the eviction is unknown; the client has already moved its
/// sequence numbers above the watermark, so its next call starts a new session.
#[derive(Debug, thiserror::Error)]
#[error(
    "the cluster refused request {seqno}: this client's session expired (watermark {watermark});      whether the operation took effect is unknown, and the next call starts a new session"
)]
pub struct SessionExpired {
    /// The sequence number of the refused request.
    pub seqno: u64,
    /// The replicas' expiry watermark.
    pub watermark: u64,
}

impl<A: App> RslClient<A> {
    /// A client on a fresh loopback socket.
    pub async fn connect(replicas: Vec<SocketAddrV4>) -> Result<Self> {
        Self::connect_from(loopback_any(), replicas).await
    }

    /// A client on a fresh socket bound at `local` (port 0: any free port).
    pub async fn connect_from(local: SocketAddrV4, replicas: Vec<SocketAddrV4>) -> Result<Self> {
        if replicas.is_empty() {
            bail!("a client needs at least one replica address");
        }
        let socket = bind_udp(local)?;
        let id = match socket.local_addr()? {
            SocketAddr::V4(a) => Id::from(a),
            SocketAddr::V6(a) => bail!("the client's socket is not IPv4: {a}"),
        };
        Ok(RslClient {
            socket,
            replica_ids: Arc::new(replicas.iter().map(|r| Id::from(*r)).collect()),
            replicas,
            id,
            leader: None,
            next_seqno: 1,
            buf: vec![0u8; codec::MAX_DATAGRAM + 1],
            counters: Arc::new(Counters::default()),
            epoch: tokio::time::Instant::now(),
            retransmit: Duration::from_millis(200),
            _app: std::marker::PhantomData,
        })
    }

    /// The replica this client believes leads.
    pub fn leader(&self) -> Option<usize> {
        self.leader
    }

    /// What this client's driver counted: datagrams in and out, and those dropped (from a
    /// stranger, undecodable, damaged).
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Nanoseconds since the client was made, on the clock its driver's timers run on.
    fn now(&self) -> Nanos {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Executes `op`, waiting at most `timeout`.
    ///
    /// Each call takes a fresh sequence number, whatever happened to the last one: a call that
    /// timed out may still be executed later, and its number must never name another operation
    /// (replicas answer a number they executed from their session table, so a reused number
    /// would be answered with the earlier operation's reply and the new operation never run). A
    /// late reply to an abandoned call is recognised by its number and ignored.
    ///
    /// The number is the wall clock in microseconds, or the previous number plus one if that is
    /// larger: a new client (perhaps on the port of an earlier one) starts above the numbers
    /// replicas remember, and the replicas' eviction of the session with the lowest number
    /// evicts the one idle longest. A refusal because the session expired is returned as a
    /// [`SessionExpired`] error (downcast the `anyhow` error to see it).
    pub async fn call(&mut self, op: A::Op, timeout: Duration) -> Result<A::Reply> {
        let seqno = self.next_seqno.max(clock_micros());
        self.next_seqno = seqno
            .checked_add(1)
            .context("the client's sequence numbers are exhausted")?;
        let actor = Client::new(ClientConfig {
            index: 0,
            replicas: self.replica_ids.clone(),
            ops: Arc::new(vec![op.clone()]),
            retransmit_ms: u64::try_from(self.retransmit.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            retransmit: true,
            first_seqno: seqno,
            accepts_stale: false,
            track_leader: true,
            leader: self.leader,
        });
        let cfg = RuntimeConfig::<Client<A>> {
            peers: self.replicas.clone(),
            key: None,
            // Only the replicas answer a client.
            accept_from_stranger: |_| false,
            storage: None,
            init: false,
            seed: seqno,
            observe: None,
        };
        let (mut driver, sends) =
            Driver::start(actor, self.id, cfg, self.counters.clone(), self.now())
                .context("starting the client")?;
        send_all(&self.socket, sends).await;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut watermark: u64 = 0;
        loop {
            let s = driver.state();
            if let Some(reply) = s.replies.first() {
                self.leader = s.leader;
                return Ok(reply.clone());
            }
            if s.expired {
                self.next_seqno = self.next_seqno.max(watermark.saturating_add(1));
                return Err(SessionExpired { seqno, watermark }.into());
            }
            let wake = next_wake(&driver, self.epoch, deadline);
            match tokio::time::timeout_at(wake, self.socket.recv_from(&mut self.buf)).await {
                Err(_) => {
                    if tokio::time::Instant::now() >= deadline {
                        bail!("no reply to {op:?} (seqno {seqno}) within {timeout:?}");
                    }
                    let sends = driver.fire_due(self.now())?;
                    send_all(&self.socket, sends).await;
                }
                // ICMP "port unreachable" from a dead replica surfaces here.
                Ok(Err(e)) => tracing::debug!(%e, "client recv error"),
                Ok(Ok((n, from))) => {
                    let Some((from, msg)) = driver.admit(&self.buf[..n], from) else {
                        continue;
                    };
                    if let RslMsg::SessionExpired {
                        seqno: s,
                        watermark: w,
                    } = &msg
                    {
                        if *s == seqno {
                            watermark = *w;
                        }
                    }
                    let mut out = Out::new();
                    driver.step(from, msg, &mut out);
                    let sends = driver.commit(out, self.now())?;
                    send_all(&self.socket, sends).await;
                }
            }
        }
    }
}
